"""POST /v1/responses: the OpenAI Responses API, stateless (no `store` / `previous_response_id` yet)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from openlms.core.types import Done
from openlms.parsers.output.events import ContentDelta, ReasoningDelta, ToolCallArgs, ToolCallBegin
from openlms.server.openai.convert import now, truncation_headers
from openlms.server.responses import convert
from openlms.server.responses.events import ResponseEvents
from openlms.server.responses.protocol import ResponsesRequest
from openlms.server.sse import sse_response
from openlms.server.state import State
from openlms.services.generation import Predictor, PreparedPrediction

router = APIRouter()


@router.post("/v1/responses", response_model=None)
async def create_response(body: ResponsesRequest, state: State) -> Response:
    prepared = await state.predictor.prepare_chat(convert.chat_request(body))
    headers = truncation_headers(prepared.truncation)
    rid, created = convert.new_id("resp"), now()
    if body.stream:
        events = _events(state.predictor, prepared, ResponseEvents(rid, created, body))
        await anext(events)  # the prediction's slot is taken (or refused: a 503) before the 200 stream
        return sse_response(events, done_marker=False, headers=headers)
    async with state.predictor.run(prepared) as prediction:
        message, stats = await prediction.collect()
    reply = convert.response(rid, created, body, convert.output_items(message), stats)
    return JSONResponse(reply, headers=headers)


async def _events(
    predictor: Predictor, prepared: PreparedPrediction, machine: ResponseEvents
) -> AsyncGenerator[dict[str, Any], None]:
    async with predictor.run(prepared) as prediction:
        yield {}  # started (never sent)
        for event in machine.start():
            yield event
        async for output in prediction.output():
            if isinstance(output, Done):
                for event in machine.finish(output.stats):
                    yield event
            elif isinstance(output, ContentDelta | ReasoningDelta | ToolCallBegin | ToolCallArgs):
                for event in machine.on(output):
                    yield event
