"""`GET /api/v1/logs/stream?source=model|server`: the app's `LogBus` as server-sent events.

Local clients only (model logs carry the users' prompts). The stream opens with `event: ready` once the
subscription is live, then sends one `data:` JSON object per log event; `event: dropped` (with the total
so far) tells a client that fell behind how many events it lost. A comment line every 15 s keeps idle
connections alive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sse_starlette import EventSourceResponse

from openlms.server import openapi as doc
from openlms.server.loopback import require_loopback
from openlms.server.sse import dumps
from openlms.services.logbus import LogBus, Source

router = APIRouter(prefix="/api/v1/logs")

PING_SECONDS = 15


def log_bus(request: Request) -> LogBus:
    bus: LogBus = request.app.state.logbus
    return bus


async def log_events(bus: LogBus, source: Source) -> AsyncIterator[dict[str, str]]:
    """SSE messages for one subscriber; leaving (client gone, shutdown) unsubscribes."""
    async with bus.subscribe(source) as events:
        yield {"event": "ready", "data": dumps({"source": source})}
        reported = 0
        async for event in events:
            if events.dropped > reported:
                reported = events.dropped
                yield {"event": "dropped", "data": dumps({"dropped": reported})}
            yield {"data": dumps(event)}


@router.get(
    "/stream",
    response_model=None,
    response_class=EventSourceResponse,  # documents text/event-stream (the route returns one itself)
    responses=doc.responses(
        doc.sse_only("`event: ready`, then one `data:` JSON object per log event; `event: dropped`"), 403
    ),
)
async def stream_logs(
    request: Request, source: Annotated[Source, Query(description="model or server")] = "model"
) -> EventSourceResponse:
    require_loopback(request, "Streaming logs")
    return EventSourceResponse(log_events(log_bus(request), source), sep="\n", ping=PING_SECONDS)
