"""openlms's `POST /api/v1/models/estimate` `{model, config?}`: what loading a downloaded model with this
load config would take in memory (weights, KV cache, compute buffers, vocabulary, vision projector; on
the GPU and in total) and the `load_guardrails` verdict, without loading anything. The config is the one
`POST /api/v1/models/load` takes; `lms load --estimate-only` prints the answer."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from openlms.server import openapi as doc
from openlms.server.rest_v1.routes import LoadConfigBody
from openlms.server.state import State
from openlms.services.estimate import MemoryEstimate, estimate_memory

router = APIRouter(prefix="/api/v1")


class EstimateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=2048, description="A downloaded model's key or path")
    config: LoadConfigBody = Field(default_factory=LoadConfigBody)


class GuardrailVerdict(BaseModel):
    mode: str = Field(description="The load_guardrails setting: strict, relaxed or off")
    fits: bool = Field(description="A load with this config passes the guardrail now")
    limit_bytes: int | None = Field(description="The memory the estimate is compared with (None: off)")
    message: str


class EstimateResponse(BaseModel):
    model: str
    path: str
    context_length: int
    kv_cells: int
    parallel: int | None = Field(description="Predictions served at once (None: an embedding model)")
    flash_attention: bool | None = Field(description="As set (None: auto, on where llama.cpp supports it)")
    gpu_offload: bool = Field(description="The runtime offloads to a GPU (else gpu_bytes is 0)")
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    runtime_bytes: int
    mmproj_bytes: int
    gpu_bytes: int
    total_bytes: int
    guardrails: GuardrailVerdict


@router.post(
    "/models/estimate",
    response_model=None,
    responses=doc.responses(doc.ok(EstimateResponse), 400, 404),
)
async def estimate(body: EstimateRequest, state: State) -> dict[str, Any]:
    result = await estimate_memory(state.models, body.model, body.config.to_load_config())
    return estimate_json(result)


def estimate_json(result: MemoryEstimate) -> dict[str, Any]:
    e, verdict = result.estimate, result.verdict
    return {
        "model": result.descriptor.key,
        "path": result.descriptor.rel_path,
        "context_length": e.context_length,
        "kv_cells": e.kv_cells,
        "parallel": result.parallel,
        "flash_attention": result.config.flash_attention,
        "gpu_offload": result.gpu_offload,
        "weights_bytes": e.weights_bytes,
        "kv_cache_bytes": e.kv_cache_bytes,
        "compute_bytes": e.compute_bytes,
        "runtime_bytes": e.runtime_bytes,
        "mmproj_bytes": e.mmproj_bytes,
        "gpu_bytes": e.gpu_bytes,
        "total_bytes": e.total_bytes,
        "guardrails": {
            "mode": verdict.guardrails,
            "fits": verdict.fits,
            "limit_bytes": verdict.limit_bytes,
            "message": result.message,
        },
    }
