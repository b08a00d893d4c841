"""POST /v1/responses: the OpenAI Responses API (stored conversations continue by `previous_response_id`)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from openlms.core.types import Done
from openlms.parsers.output.events import ContentDelta, ReasoningDelta, ToolCallArgs, ToolCallBegin
from openlms.server import openapi as doc
from openlms.server.openai.convert import now, truncation_headers
from openlms.server.responses import convert, with_mcp
from openlms.server.responses.events import ResponseEvents
from openlms.server.responses.protocol import (
    STREAM_DESCRIPTION,
    DeletedResponse,
    ResponseObject,
    ResponsesRequest,
)
from openlms.server.responses.tools import request_tools
from openlms.server.sse import sse_response
from openlms.server.state import State
from openlms.services.generation import Predictor, PreparedPrediction
from openlms.services.response_store import ResponseStore

router = APIRouter()


@router.post(
    "/v1/responses",
    response_model=None,
    responses=doc.prediction(ResponseObject, STREAM_DESCRIPTION) | doc.errors(403, 502),  # mcp tools
)
async def create_response(body: ResponsesRequest, state: State) -> Response:
    store = ResponseStore(state.settings.state_dir / "responses")
    rid, created = convert.new_id("resp"), now()
    history = (
        await to_thread.run_sync(store.load, body.previous_response_id) if body.previous_response_id else []
    )
    keep = _keeper(store, rid, body, history)
    tools = request_tools(body.tools, body.tool_choice)
    if tools.mcp:
        return await with_mcp.respond(state, body, tools, (rid, created), history, keep)
    prepared = await state.predictor.prepare_chat(convert.chat_request(body, history, tools=tools))
    headers = truncation_headers(prepared.truncation)
    if body.stream:
        machine = ResponseEvents(rid, created, body, sampling=prepared.settings.sampling)
        events = _events(state.predictor, prepared, machine, keep)
        await anext(events)  # the prediction's slot is taken (or refused: a 503) before the 200 stream
        return sse_response(events, done_marker=False, headers=headers)
    async with state.predictor.run(prepared) as prediction:
        message, stats = await prediction.collect()
    output = convert.output_items(message, body.parallel_tool_calls)
    reply = convert.response(rid, created, body, output, stats, prepared.settings.sampling)
    await keep(reply, None)
    return JSONResponse(reply, headers=headers)


def _keeper(
    store: ResponseStore, rid: str, body: ResponsesRequest, history: list[dict[str, Any]]
) -> Callable[[dict[str, Any], list[dict[str, Any]] | None], Awaitable[None]]:
    """Saves the response and its conversation (unless `store` is false): it can be fetched and continued.
    `added`: the messages a tool loop added (its calls and their results), else read from the output."""

    async def keep(response: dict[str, Any], added: list[dict[str, Any]] | None = None) -> None:
        if body.store is not False:
            messages = convert.conversation(body, history, response["output"], added)
            await to_thread.run_sync(store.save, rid, messages, response)

    return keep


@router.get(
    "/v1/responses/{response_id}",
    response_model=None,
    responses=doc.responses(doc.ok(ResponseObject), 404),
)
async def get_response(response_id: str, state: State) -> JSONResponse:
    store = ResponseStore(state.settings.state_dir / "responses")
    return JSONResponse(await to_thread.run_sync(store.get, response_id))


@router.delete(
    "/v1/responses/{response_id}",
    response_model=None,
    responses=doc.responses(doc.ok(DeletedResponse), 404),
)
async def delete_response(response_id: str, state: State) -> JSONResponse:
    store = ResponseStore(state.settings.state_dir / "responses")
    await to_thread.run_sync(store.delete, response_id)
    return JSONResponse({"id": response_id, "object": "response", "deleted": True})


async def _events(
    predictor: Predictor,
    prepared: PreparedPrediction,
    machine: ResponseEvents,
    keep: Callable[[dict[str, Any], list[dict[str, Any]] | None], Awaitable[None]],
) -> AsyncGenerator[dict[str, Any], None]:
    async with predictor.run(prepared) as prediction:
        yield {}  # started (never sent)
        for event in machine.start():
            yield event
        async for output in prediction.output():
            if isinstance(output, Done):
                final = machine.finish(output.stats)
                await keep(final[-1]["response"], None)  # the response.completed (or .incomplete) event's
                for event in final:
                    yield event
            elif isinstance(output, ContentDelta | ReasoningDelta | ToolCallBegin | ToolCallArgs):
                for event in machine.on(output):
                    yield event
