"""LM Studio REST API v0 (rest.md): model listing with state, and inference with stats."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from openlms.core.errors import ModelNotFoundError
from openlms.core.offload import offload_of
from openlms.core.types import GenerationStats, ModelKind
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
        "capabilities": [
            name for name, on in (("tool_use", d.trained_for_tool_use), ("reasoning", d.reasoning)) if on
        ],
        "params_string": d.params_string,
    }
    if d.variants:  # several files of one model (quantizations, a model.yaml's bases)
        entry["variants"], entry["selected_variant"] = list(d.variants), d.selected_variant
    if view.loaded:
        instance = view.instances[0]
        entry["loaded_context_length"] = instance.context_length
        usage = instance.usage
        if d.kind is ModelKind.LLM:
            entry["parallel"] = instance.load_config.parallel  # predictions served at once (effective)
        entry["active_requests"], entry["queued_requests"] = usage.running, usage.queued
        # What really runs where: a llama.cpp build without a GPU backend reads "off" / cpu / 0 layers.
        offload = offload_of(instance.load_config.gpu, d.n_layers)
        entry["gpu_offload"] = {"gpu": instance.load_config.gpu, **offload.to_json()}
    if d.error:
        entry["error"] = d.error
    return entry


@router.get("/models", response_model=None, responses=doc.responses(doc.ok(doc.V0ModelList)))
async def list_models(state: State) -> dict[str, Any]:
    return {"object": "list", "data": [model_entry(v) for v in await state.models.views()]}


@router.get("/models/{model:path}", response_model=None, responses=doc.responses(doc.ok(doc.V0Model), 404))
async def get_model(model: str, state: State) -> dict[str, Any]:
    views = await state.models.views()
    descriptor = state.models.find_model(model)
    for view in views:
        if descriptor is not None and view.descriptor.key == descriptor.key:
            return model_entry(view)
    raise ModelNotFoundError(model, available=[v.descriptor.key for v in views])


def draft_stats(stats: GenerationStats) -> dict[str, Any]:
    """Speculative decoding's counts (api-changelog 0.3.10), when a draft model was used."""
    if not stats.draft_model_key:
        return {}
    return {
        "draft_model": stats.draft_model_key,
        "total_draft_tokens_count": stats.draft_tokens,
        "accepted_draft_tokens_count": stats.accepted_draft_tokens,
        "rejected_draft_tokens_count": stats.rejected_draft_tokens,
        "ignored_draft_tokens_count": stats.ignored_draft_tokens,
    }


def extras(state: AppState, prepared: PreparedPrediction, stats: GenerationStats) -> dict[str, Any]:
    instance = prepared.instance
    d = instance.descriptor
    truncation = prepared.truncation
    return {
        "stats": {
            "tokens_per_second": stats.tokens_per_second,
            "time_to_first_token": round(stats.time_to_first_token_s, 3),
            "generation_time": round(stats.generation_time_s, 3),
            "stop_reason": stats.stop_reason.value,
            "prompt_truncated_tokens": truncation.dropped_tokens if truncation else 0,
            "prompt_truncated_messages": truncation.dropped_messages if truncation else 0,
            "context_shift_tokens": stats.context_shift_tokens,
            "cached_tokens": stats.cached_prompt_tokens,  # prompt tokens reused, not recomputed
            **draft_stats(stats),
        },
        "model_info": {
            "arch": d.architecture,
            "quant": d.quantization,
            "format": d.format,
            "context_length": instance.context_length,
        },
        "runtime": {
            "name": state.models.runtime_name,
            "version": state.models.runtime_version,
            "supported_formats": ["gguf"],
        },
    }


@router.post(
    "/chat/completions",
    response_model=None,
    responses=doc.prediction(doc.V0ChatCompletion, doc.CHAT_STREAM),
)
async def chat_completions(body: ChatCompletionRequest, state: State) -> Response:
    prepared = await state.predictor.prepare_chat(convert.chat_request(body))
    shape = ChunkShape.new(body.model, chat=True).with_reasoning(convert.reasoning_field(prepared.output))
    return await _respond(state, prepared, body, shape)


@router.post(
    "/completions",
    response_model=None,
    responses=doc.prediction(doc.V0TextCompletion, doc.TEXT_STREAM),
)
async def completions(body: CompletionRequest, state: State) -> Response:
    prepared = await state.predictor.prepare_completion(convert.completion_request(body))
    return await _respond(state, prepared, body, ChunkShape.new(body.model, chat=False))


async def _respond(
    state: State, prepared: PreparedPrediction, body: SamplingFields, shape: ChunkShape
) -> Response:
    """The OpenAI response (or stream) plus LM Studio's `stats`, `model_info` and `runtime`."""

    def final(stats: GenerationStats) -> dict[str, Any]:
        return {"usage": convert.usage(stats)} | extras(state, prepared, stats)

    headers = convert.truncation_headers(prepared.truncation)
    if body.stream:
        chunks = await stream_chunks(state.predictor, prepared, shape, final_extras=final, mark_drafted=True)
        return sse_response(chunks, headers=headers)
    async with state.predictor.run(prepared) as prediction:
        message, stats = await prediction.collect()
    if shape.chat:
        reply = convert.chat_completion(
            shape.cid, shape.model, shape.created, message, stats, shape.reasoning_field
        )
    else:
        reply = convert.text_completion(shape.cid, shape.model, shape.created, message.content, stats)
    return JSONResponse(reply | extras(state, prepared, stats), headers=headers)


@router.post(
    "/embeddings", response_model=None, responses=doc.responses(doc.ok(doc.EmbeddingList), 404, 500, 503)
)
async def embeddings(body: EmbeddingRequest, state: State) -> dict[str, Any]:
    texts = convert.embedding_texts(body.input)
    _, result = await state.predictor.embed(body.model, texts, ttl_seconds=body.ttl)
    return convert.embeddings_response(body.model, result.vectors, result.prompt_tokens, body.encoding_format)
