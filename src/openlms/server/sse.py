"""Server-sent events: JSON payloads in `data:` lines, `[DONE]` at the end, errors as an event."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from openlms.core.errors import OpenLMSError
from openlms.server.errors import domain_error_body, error_body

log = logging.getLogger("openlms.server")


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


async def _framed(chunks: AsyncIterator[dict[str, Any]], done_marker: bool) -> AsyncIterator[dict[str, str]]:
    try:
        async for chunk in chunks:
            yield {"data": dumps(chunk)}
    except OpenLMSError as exc:
        yield {"data": dumps(domain_error_body(exc)[1])}
    except Exception as exc:  # never a half-open stream: tell the client what happened
        log.exception("stream failed")
        yield {"data": dumps(error_body(f"Internal error: {exc}", "server_error"))}
    if done_marker:
        yield {"data": "[DONE]"}


def sse_response(
    chunks: AsyncIterator[dict[str, Any]],
    *,
    done_marker: bool = True,
    headers: dict[str, str] | None = None,
) -> EventSourceResponse:
    """Stream `chunks` as OpenAI-style SSE. The client going away cancels the iterator; a generator that
    was already started (a prediction holding its slot) is closed at the end even if never iterated."""
    close = getattr(chunks, "aclose", None)
    return EventSourceResponse(
        _framed(chunks, done_marker),
        sep="\n",
        ping=15,
        headers=headers,
        background=BackgroundTask(close) if close is not None else None,
    )
