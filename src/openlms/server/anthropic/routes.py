"""Anthropic-compatible endpoints: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Errors leave in Anthropic's shape (`{"type":"error","error":{"type","message"}}`), their status taken
from server/errors.py's one table."""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from openlms.core.errors import OpenLMSError, ServerBusyError
from openlms.server import openapi as doc
from openlms.server.anthropic import convert
from openlms.server.anthropic.protocol import (
    STREAM_EVENTS,
    CountTokensRequest,
    MessageResponse,
    MessagesRequest,
    TokenCount,
)
from openlms.server.anthropic.streaming import framed, stream_events
from openlms.server.errors import encodable, http_headers, status_of, validation_body
from openlms.server.state import State

router = APIRouter()
log = logging.getLogger("openlms.server")

T = TypeVar("T", bound=BaseModel)


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


async def _parse(request: Request, kind: type[T]) -> T:
    try:
        return kind.model_validate_json(await request.body())
    except ValidationError as exc:
        message = validation_body(exc.errors())["error"]["message"]
        raise BadRequest(400, str(message)) from exc


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(convert.error_body(status, encodable(message)), status_code=status, headers=headers)


def _domain_error(exc: OpenLMSError) -> JSONResponse:
    """A domain error with the one table's status and headers (`Retry-After` on a full queue)."""
    status, _ = status_of(exc)
    if status >= 500 and not isinstance(exc, ServerBusyError):
        log.error("%s: %s", type(exc).__name__, exc.message)
    return _error(status, exc.message, http_headers(exc))


# Errors are Anthropic's `{"type": "error", "error": {"type", "message"}}`, which the documented error
# object (`error.message`, `error.type`) also describes; the guard's 401/403/413 and FastAPI's 404/405
# are reshaped the same way (reshape.py).
MESSAGES_DOC = doc.responses(
    doc.ok_or_stream(MessageResponse, "Anthropic's stream events (`event:` names)", STREAM_EVENTS),
    404,
    500,
    503,
)


@router.post("/v1/messages", response_model=None, responses=MESSAGES_DOC)
async def messages(request: Request, state: State) -> Response:
    try:
        return await _messages(await _parse(request, MessagesRequest), state)
    except BadRequest as exc:
        return _error(exc.status, exc.message)
    except OpenLMSError as exc:
        return _domain_error(exc)


async def _messages(body: MessagesRequest, state: State) -> Response:
    prepared = await state.predictor.prepare_chat(convert.chat_request(body))
    mid, one_call = convert.new_id("msg"), convert.one_call_only(body)
    if body.stream:
        events = await stream_events(state.predictor, prepared, mid, body.model, one_call=one_call)
        return EventSourceResponse(
            framed(events), sep="\n", ping=15, background=BackgroundTask(events.aclose)
        )
    async with state.predictor.run(prepared) as prediction:
        parsed, stats = await prediction.collect()
    return JSONResponse(convert.message(mid, body.model, parsed, stats, one_call=one_call))


@router.post(
    "/v1/messages/count_tokens", response_model=None, responses=doc.responses(doc.ok(TokenCount), 404, 500)
)
async def count_tokens(request: Request, state: State) -> Response:
    try:
        body = await _parse(request, CountTokensRequest)
        chat = convert.chat_request(body)
        result = await state.predictor.apply_template(chat.model, chat.messages, chat.params)
    except BadRequest as exc:
        return _error(exc.status, exc.message)
    except OpenLMSError as exc:
        return _domain_error(exc)
    answer: dict[str, Any] = {"input_tokens": result.prompt_tokens}
    return Response(json.dumps(answer), media_type="application/json")
