"""OpenAI-compatible endpoints: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from openlms.core.types import Done, Fragment
from openlms.server.openai import convert
from openlms.server.openai.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from openlms.server.sse import sse_response
from openlms.server.state import AppState, State
from openlms.services.generation import PreparedPrediction

router = APIRouter()


@router.get("/v1/models")
async def list_models(state: State) -> dict[str, Any]:
    ids: list[str] = []
    if state.settings.jit:
        ids += [d.key for d in await state.models.downloaded() if d.loadable]
    ids += [i.identifier for i in state.models.manager.instances if i.identifier not in ids]
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "owned_by": "organization_owner"} for i in ids],
    }


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionRequest, state: State) -> Response | dict[str, Any]:
    convert.check_unsupported(body)
    params = convert.to_params(body)
    prepared = await state.predictor.prepare_chat(
        body.model, convert.template_messages(body.messages), params
    )
    cid, created = convert.new_id("chatcmpl"), convert.now()
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse_response(_chat_stream(state, prepared, cid, created, body.model, usage))
    async with state.predictor.run(prepared) as prediction:
        text, stats = await prediction.collect()
    return convert.chat_completion(cid, body.model, created, text, stats)


async def _chat_stream(
    state: AppState, prepared: PreparedPrediction, cid: str, created: int, model: str, include_usage: bool
) -> AsyncIterator[dict[str, Any]]:
    async with state.predictor.run(prepared) as prediction:
        yield convert.chat_chunk(cid, model, created, {"role": "assistant", "content": ""})
        async for event in prediction.events:
            if isinstance(event, Fragment):
                if event.text:
                    yield convert.chat_chunk(cid, model, created, {"content": event.text})
            elif isinstance(event, Done):
                finish = convert.FINISH_REASONS.get(event.stats.stop_reason, "stop")
                yield convert.chat_chunk(cid, model, created, {}, finish)
                if include_usage:
                    yield convert.usage_chunk(cid, model, created, event.stats, "chat.completion.chunk")


@router.post("/v1/completions", response_model=None)
async def completions(body: CompletionRequest, state: State) -> Response | dict[str, Any]:
    prompt = convert.single_prompt(body.prompt)
    prepared = await state.predictor.prepare_completion(body.model, prompt, convert.to_params(body))
    cid, created = convert.new_id("cmpl"), convert.now()
    if body.stream:
        usage = bool(body.stream_options and body.stream_options.include_usage)
        return sse_response(_completion_stream(state, prepared, cid, created, body.model, body.echo, usage))
    async with state.predictor.run(prepared) as prediction:
        text, stats = await prediction.collect()
    return convert.text_completion(cid, body.model, created, (prompt if body.echo else "") + text, stats)


async def _completion_stream(
    state: AppState,
    prepared: PreparedPrediction,
    cid: str,
    created: int,
    model: str,
    echo: bool,
    include_usage: bool,
) -> AsyncIterator[dict[str, Any]]:
    async with state.predictor.run(prepared) as prediction:
        if echo:
            yield convert.text_chunk(cid, model, created, prepared.prompt)
        async for event in prediction.events:
            if isinstance(event, Fragment):
                if event.text:
                    yield convert.text_chunk(cid, model, created, event.text)
            elif isinstance(event, Done):
                finish = convert.FINISH_REASONS.get(event.stats.stop_reason, "stop")
                yield convert.text_chunk(cid, model, created, "", finish)
                if include_usage:
                    yield convert.usage_chunk(cid, model, created, event.stats, "text_completion")


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, state: State) -> dict[str, Any]:
    texts = convert.embedding_texts(body.input)
    _, result = await state.predictor.embed(body.model, texts, ttl_seconds=body.ttl)
    return convert.embeddings_response(body.model, result.vectors, result.prompt_tokens, body.encoding_format)
