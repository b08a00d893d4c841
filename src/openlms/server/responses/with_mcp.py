"""/v1/responses with `mcp` tools: the host lists the servers' tools (in a request scope that keeps
remote servers connected), services' tool loop runs the calls, and `LoopEvents` turns its events into
the Responses items and stream. Which servers may run is the host's call (the consent settings)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

from fastapi.responses import JSONResponse, Response

from openlms.server.openai.convert import truncation_headers
from openlms.server.responses import convert
from openlms.server.responses.events import ResponseEvents
from openlms.server.responses.loop_events import LoopEvents
from openlms.server.responses.protocol import ResponsesRequest
from openlms.server.responses.tools import RequestTools
from openlms.server.sse import sse_response
from openlms.server.state import State
from openlms.services.mcp.types import McpTool, ToolHost
from openlms.services.tool_loop import LoopDone, ToolLoop

Keep = Callable[[dict[str, Any], list[dict[str, Any]]], Awaitable[None]]


async def respond(
    state: State,
    body: ResponsesRequest,
    tools: RequestTools,
    ids: tuple[str, int],
    history: list[dict[str, Any]],
    keep: Keep,
) -> Response:
    events = _events(state, body, tools, ids, history, keep)
    headers = await anext(events)  # tools listed and the first round prepared: errors are raised here
    if body.stream:
        return sse_response(events, done_marker=False, headers=headers)
    final: dict[str, Any] = {}
    async for event in events:
        final = event
    return JSONResponse(final["response"], headers=headers)


async def _events(
    state: State,
    body: ResponsesRequest,
    tools: RequestTools,
    ids: tuple[str, int],
    history: list[dict[str, Any]],
    keep: Keep,
) -> AsyncGenerator[dict[str, Any], None]:
    """First the response headers (never sent as an event), then the stream's events."""
    async with state.mcp.session() as host:
        listed = await host.tools([m.source for m in tools.mcp])
        loop = _loop(state, host, body, history, listed, tools)
        prepared = await loop.prepare()
        yield truncation_headers(prepared.truncation)
        base = ResponseEvents(*ids, body, sampling=prepared.settings.sampling)
        machine = LoopEvents(base, frozenset(loop.client_names))
        for event in [*base.start(), *machine.lists(_list_items(tools, listed))]:
            yield event
        async for output in loop.events():
            if isinstance(output, LoopDone):
                final = base.finish(output.stats, output.reasoning_tokens)
                await keep(final[-1]["response"], output.messages)
                for event in final:
                    yield event
            else:
                for event in machine.on(output):
                    yield event


def _loop(
    state: State,
    host: ToolHost,
    body: ResponsesRequest,
    history: list[dict[str, Any]],
    listed: list[McpTool],
    tools: RequestTools,
) -> ToolLoop:
    chat = convert.chat_request(body, history, listed, tools)
    return ToolLoop(state.predictor, host, chat, listed, state.settings.mcp_max_tool_rounds)


def _list_items(tools: RequestTools, listed: Sequence[McpTool]) -> list[dict[str, Any]]:
    """One mcp_list_tools item per mcp tool of the request, with the tools its server offers."""
    return [
        convert.mcp_list_item(
            convert.new_id("mcpl"), m.source.label, [t for t in listed if t.source.label == m.source.label]
        )
        for m in tools.mcp
    ]
