"""OpenAI-compatible endpoints: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from openlms.server import openapi as doc
from openlms.server.openai import convert
from openlms.server.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    SamplingFields,
)
from openlms.server.openai.streaming import ChunkShape, stream_chunks
from openlms.server.sse import sse_response
from openlms.server.state import State

router = APIRouter()


@router.get("/v1/models", response_model=None, responses=doc.responses(doc.ok(doc.ModelList)))
async def list_models(state: State) -> dict[str, Any]:
    ids: list[str] = []
    if state.settings.jit:
        ids += [d.key for d in await state.models.downloaded() if d.loadable]
    ids += [i.identifier for i in state.models.loaded() if i.identifier not in ids]
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "owned_by": "organization_owner"} for i in ids],
    }


@router.post(
    "/v1/chat/completions",
    response_model=None,
    responses=doc.prediction(doc.ChatCompletion, doc.CHAT_STREAM),
)
async def chat_completions(body: ChatCompletionRequest, state: State) -> Response:
    prepared = await state.predictor.prepare_chat(convert.chat_request(body))
    shape = ChunkShape.new(body.model, chat=True).with_reasoning(convert.reasoning_field(prepared.output))
    headers = convert.truncation_headers(prepared.truncation)
    if body.stream:
        chunks = await stream_chunks(state.predictor, prepared, shape, include_usage=_usage(body))
        return sse_response(chunks, headers=headers)
    async with state.predictor.run(prepared) as prediction:
        message, stats = await prediction.collect()
    reply = convert.chat_completion(
        shape.cid, body.model, shape.created, message, stats, shape.reasoning_field
    )
    return JSONResponse(reply, headers=headers)


@router.post(
    "/v1/completions",
    response_model=None,
    responses=doc.prediction(doc.TextCompletion, doc.TEXT_STREAM),
)
async def completions(body: CompletionRequest, state: State) -> Response:
    completion = convert.completion_request(body)
    prepared = await state.predictor.prepare_completion(completion)
    shape, echo = ChunkShape.new(body.model, chat=False), completion.prompt if body.echo else ""
    headers = convert.truncation_headers(prepared.truncation)
    if body.stream:
        chunks = await stream_chunks(state.predictor, prepared, shape, include_usage=_usage(body), echo=echo)
        return sse_response(chunks, headers=headers)
    async with state.predictor.run(prepared) as prediction:
        message, stats = await prediction.collect()
    reply = convert.text_completion(shape.cid, body.model, shape.created, echo + message.content, stats)
    return JSONResponse(reply, headers=headers)


def _usage(body: SamplingFields) -> bool:
    return bool(body.stream_options and body.stream_options.include_usage)


@router.post(
    "/v1/embeddings", response_model=None, responses=doc.responses(doc.ok(doc.EmbeddingList), 404, 500, 503)
)
async def embeddings(body: EmbeddingRequest, state: State) -> dict[str, Any]:
    texts = convert.embedding_texts(body.input)
    _, result = await state.predictor.embed(body.model, texts, ttl_seconds=body.ttl)
    return convert.embeddings_response(body.model, result.vectors, result.prompt_tokens, body.encoding_format)
