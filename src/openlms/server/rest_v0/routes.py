"""LM Studio REST API v0 (rest.md): model listing with state, and inference with stats."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from openlms.core.errors import ModelNotFoundError
from openlms.core.types import GenerationStats, ModelKind
from openlms.engine.manager import Instance
from openlms.server.openai import convert
from openlms.server.openai.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    SamplingFields,
)
from openlms.server.openai.streaming import ChunkShape, stream_chunks
from openlms.server.sse import sse_response
from openlms.server.state import AppState, State
from openlms.services.generation import PreparedPrediction
from openlms.services.models import ModelView

router = APIRouter(prefix="/api/v0")


def model_entry(view: ModelView) -> dict[str, Any]:
    d = view.descriptor
    entry: dict[str, Any] = {
        "id": d.key,
        "object": "model",
        "type": "embeddings" if d.kind is ModelKind.EMBEDDING else ("vlm" if d.vision else "llm"),
        "publisher": d.publisher,
        "arch": d.architecture,
        "compatibility_type": d.format,
        "quantization": d.quantization,
        "state": "loaded" if view.loaded else "not-loaded",
        "max_context_length": d.max_context_length,
    }
    if view.loaded:
        entry["loaded_context_length"] = view.instances[0].runtime.context_length
    if d.error:
        entry["error"] = d.error
    return entry


@router.get("/models")
async def list_models(state: State) -> dict[str, Any]:
    return {"object": "list", "data": [model_entry(v) for v in await state.models.views()]}


@router.get("/models/{model:path}")
async def get_model(model: str, state: State) -> dict[str, Any]:
    views = await state.models.views()
    instance = state.models.manager.find(model)
    descriptor = instance.descriptor if instance else state.models.catalog.find(model, refresh=False)
    for view in views:
        if descriptor is not None and view.descriptor.key == descriptor.key:
            return model_entry(view)
    raise ModelNotFoundError(model, available=[v.descriptor.key for v in views])


def extras(state: AppState, instance: Instance, stats: GenerationStats) -> dict[str, Any]:
    d = instance.descriptor
    return {
        "stats": {
            "tokens_per_second": stats.tokens_per_second,
            "time_to_first_token": round(stats.time_to_first_token_s, 3),
            "generation_time": round(stats.generation_time_s, 3),
            "stop_reason": stats.stop_reason.value,
        },
        "model_info": {
            "arch": d.architecture,
            "quant": d.quantization,
            "format": d.format,
            "context_length": instance.runtime.context_length,
        },
        "runtime": {
            "name": state.backend.name,
            "version": state.backend.version,
            "supported_formats": ["gguf"],
        },
    }


@router.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionRequest, state: State) -> Response | dict[str, Any]:
    convert.check_unsupported(body)
    prepared = await state.predictor.prepare_chat(
        body.model, convert.template_messages(body.messages), convert.to_params(body)
    )
    return await _respond(
        state, prepared, body, ChunkShape(convert.new_id("chatcmpl"), body.model, convert.now(), True)
    )


@router.post("/completions", response_model=None)
async def completions(body: CompletionRequest, state: State) -> Response | dict[str, Any]:
    prepared = await state.predictor.prepare_completion(
        body.model, convert.single_prompt(body.prompt), convert.to_params(body)
    )
    return await _respond(
        state, prepared, body, ChunkShape(convert.new_id("cmpl"), body.model, convert.now(), False)
    )


async def _respond(
    state: State, prepared: PreparedPrediction, body: SamplingFields, shape: ChunkShape
) -> Response | dict[str, Any]:
    """The OpenAI response (or stream) plus LM Studio's `stats`, `model_info` and `runtime`."""

    def final(stats: GenerationStats) -> dict[str, Any]:
        return {"usage": convert.usage(stats)} | extras(state, prepared.instance, stats)

    if body.stream:
        return sse_response(stream_chunks(state.predictor, prepared, shape, final_extras=final))
    async with state.predictor.run(prepared) as prediction:
        text, stats = await prediction.collect()
    build = convert.chat_completion if shape.chat else convert.text_completion
    return build(shape.cid, shape.model, shape.created, text, stats) | extras(state, prepared.instance, stats)


@router.post("/embeddings")
async def embeddings(body: EmbeddingRequest, state: State) -> dict[str, Any]:
    texts = convert.embedding_texts(body.input)
    _, result = await state.predictor.embed(body.model, texts, ttl_seconds=body.ttl)
    return convert.embeddings_response(body.model, result.vectors, result.prompt_tokens, body.encoding_format)
