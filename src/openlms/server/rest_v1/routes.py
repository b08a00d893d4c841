"""LM Studio 0.4-style model management: GET /api/v1/models, POST /api/v1/models/load|unload|import, and
per-model settings: GET|PUT|DELETE /api/v1/models/config?model=<key> (writes from the local machine only)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from openlms.core.errors import InvalidRequestError, OpenLMSError
from openlms.core.offload import offload_of
from openlms.core.types import (
    MAX_PARALLEL,
    CrashRecord,
    KvCacheType,
    LoadConfig,
    LoadedInstance,
    ModelKind,
)
from openlms.server import openapi as doc
from openlms.server.errors import domain_error_body
from openlms.server.loopback import require_loopback
from openlms.server.sse import dumps
from openlms.server.state import AppState, State
from openlms.services.models import ModelView

router = APIRouter(prefix="/api/v1")


class LoadConfigBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    context_length: int | None = Field(default=None, ge=64)
    eval_batch_size: int | None = Field(default=None, ge=1, le=65536)
    flash_attention: bool | None = None
    num_experts: int | None = Field(default=None, ge=1)
    offload_kv_cache_to_gpu: bool | None = None
    gpu: Literal["max", "off"] | float | None = None
    k_cache_type: KvCacheType | None = None
    v_cache_type: KvCacheType | None = None
    try_mmap: bool | None = None
    keep_model_in_memory: bool | None = None
    seed: int | None = None
    rope_frequency_base: float | None = Field(default=None, gt=0)
    rope_frequency_scale: float | None = Field(default=None, gt=0)
    parallel: int | None = Field(
        default=None, ge=1, le=MAX_PARALLEL, description="Predictions served at once (1..64; default 4)"
    )

    def to_load_config(self) -> LoadConfig:
        if isinstance(self.gpu, float) and not 0.0 <= self.gpu <= 1.0:
            raise InvalidRequestError(
                "config.gpu must be 'max', 'off' or a number between 0 and 1.", param="config.gpu"
            )
        fields = self.model_dump(exclude_none=True, exclude={"offload_kv_cache_to_gpu"})
        return LoadConfig(**fields)


FLAT_LOAD_FIELDS = (
    "context_length",
    "eval_batch_size",
    "flash_attention",
    "num_experts",
    "offload_kv_cache_to_gpu",
)


class LoadRequest(BaseModel):
    """LM Studio 0.4's flat load request; `config` (every load setting) is an openlms extension."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    context_length: int | None = Field(default=None, ge=64)
    eval_batch_size: int | None = Field(default=None, ge=1, le=65536)
    flash_attention: bool | None = None
    num_experts: int | None = Field(default=None, ge=1)
    offload_kv_cache_to_gpu: bool | None = None
    identifier: str | None = Field(default=None, min_length=1, max_length=256)
    ttl: int | None = Field(default=None, ge=1)
    config: LoadConfigBody = Field(default_factory=LoadConfigBody)
    echo_load_config: bool = False
    stream: bool = False

    def merged_config(self) -> LoadConfigBody:
        """The flat fields over `config`; one setting given both ways with different values is a 400."""
        flat = {name: getattr(self, name) for name in FLAT_LOAD_FIELDS if getattr(self, name) is not None}
        for name, value in flat.items():
            nested = getattr(self.config, name)
            if nested is not None and nested != value:
                raise InvalidRequestError(
                    f"'{name}' is given twice with different values ({value!r} and config.{name} "
                    f"{nested!r}); set it in one place.",
                    param=name,
                )
        return self.config.model_copy(update=flat)


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, description="A .gguf file or a BERT sentence-transformers folder")
    publisher: str | None = Field(default=None, min_length=1, max_length=128)
    repo: str | None = Field(default=None, min_length=1, max_length=256)
    mode: Literal["copy", "move", "hardlink", "symlink"] = "copy"


class UnloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    instance_id: str = Field(min_length=1)


def instance_config(instance: LoadedInstance) -> dict[str, Any]:
    cfg = instance.load_config
    out: dict[str, Any] = {"context_length": instance.context_length}
    if instance.descriptor.kind is ModelKind.LLM:
        out |= {
            "eval_batch_size": cfg.eval_batch_size,
            "flash_attention": bool(cfg.flash_attention),
            "num_experts": cfg.num_experts or 0,
            "parallel": cfg.parallel,  # effective: the engine's default (4) when the load left it unset
            "offload_kv_cache_to_gpu": cfg.gpu not in ("off", 0, 0.0),
            "gpu": cfg.gpu,  # the effective setting: "off" when llama.cpp has no GPU backend
            "gpu_layers": offload_of(cfg.gpu, instance.descriptor.n_layers).gpu_layers,
        }
    return out


def instance_entry(state: AppState, instance: LoadedInstance) -> dict[str, Any]:
    usage = instance.usage
    return {
        "id": instance.identifier,
        "config": instance_config(instance),
        "status": instance.status,
        "active_requests": usage.running,  # predictions running in the instance's parallel slots
        "queued_requests": usage.queued,  # waiting for a free slot
        "jit": instance.jit,
        "ttl_seconds": instance.ttl_seconds,
        "idle_seconds": round(state.models.idle_seconds(instance), 1),
        "size_bytes": instance.descriptor.size_bytes,
        "instance_reference": instance.reference,
    }


def model_entry(state: AppState, view: ModelView) -> dict[str, Any]:
    d = view.descriptor
    entry: dict[str, Any] = {
        "type": d.kind.value,
        "publisher": d.publisher,
        "key": d.key,
        "display_name": d.display_name,
        "architecture": d.architecture,
        "quantization": {"name": d.quantization, "bits_per_weight": d.bits_per_weight}
        if d.quantization
        else None,
        "size_bytes": d.size_bytes,
        "params_string": d.params_string,
        "loaded_instances": [instance_entry(state, i) for i in view.instances]
        + [
            {"id": entry.identifier, "config": {}, "status": "loading", "progress": round(entry.progress, 3)}
            for entry in view.loading
        ],
        "max_context_length": d.max_context_length,
        "format": d.format,
        "path": d.rel_path,
        "error": d.error,
    }
    if d.kind is ModelKind.LLM:
        entry["capabilities"] = {
            "vision": d.vision,
            "trained_for_tool_use": d.trained_for_tool_use,
            "reasoning": d.reasoning,
        }
        entry["description"] = None
    if d.variants:  # several files of one model (quantizations, a model.yaml's bases)
        entry["variants"], entry["selected_variant"] = list(d.variants), d.selected_variant
    if d.virtual:  # a model.yaml model (`key` is its `model`); `path` is the file it loads
        entry["virtual"] = True
    if d.domain:
        entry["domain"] = d.domain
    return entry


@router.get("/models", response_model=None, responses=doc.responses(doc.ok(doc.V1ModelList)))
async def list_models(state: State) -> dict[str, Any]:
    return {
        "models": [model_entry(state, v) for v in await state.models.views()],
        "recent_crashes": [crash_entry(c) for c in state.models.manager.recent_crashes],  # lms ps shows them
    }


def crash_entry(crash: CrashRecord) -> dict[str, Any]:
    return {"model": crash.model_key, "instance_id": crash.identifier, "at": crash.at, "exit": crash.exit}


def load_response(instance: LoadedInstance, seconds: float, *, echo: bool = False) -> dict[str, Any]:
    """LM Studio 0.4's answer (`load_config` only when asked); `model_instance_id` and `config` are kept
    for older openlms clients."""
    config = instance_config(instance)
    out: dict[str, Any] = {
        "type": instance.descriptor.kind.value,
        "instance_id": instance.identifier,
        "load_time_seconds": round(seconds, 3),
        "status": "loaded",
        "model_instance_id": instance.identifier,
        "config": config,
    }
    if echo:
        out["load_config"] = config
    return out


@router.post(
    "/models/load",
    response_model=None,
    responses=doc.responses(
        doc.ok_or_stream(doc.V1LoadResponse, doc.LOAD_STREAM, ("progress", "loaded", "error")), 404, 409, 500
    ),
)
async def load(body: LoadRequest, state: State) -> Response | dict[str, Any]:
    config = body.merged_config().to_load_config()
    await state.models.find_downloaded(body.model)  # a clear 404 before any stream starts
    if body.stream:
        return EventSourceResponse(_load_stream(state, body, config), sep="\n", ping=15)
    started = time.perf_counter()
    instance = await state.models.load(body.model, config, identifier=body.identifier, ttl_seconds=body.ttl)
    return load_response(instance, time.perf_counter() - started, echo=body.echo_load_config)


async def _load_stream(
    state: AppState, body: LoadRequest, config: LoadConfig
) -> AsyncIterator[dict[str, str]]:
    progress: asyncio.Queue[float] = asyncio.Queue()
    started = time.perf_counter()
    task = asyncio.create_task(
        state.models.load(
            body.model,
            config,
            identifier=body.identifier,
            ttl_seconds=body.ttl,
            on_progress=progress.put_nowait,
        )
    )
    last = -1.0
    try:
        while not task.done():
            getter = asyncio.ensure_future(progress.get())
            await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                value = getter.result()
                if value > last:
                    last = value
                    yield {"event": "progress", "data": dumps({"progress": round(value, 4)})}
            else:
                getter.cancel()
        while not progress.empty():  # updates queued while the load finished
            value = progress.get_nowait()
            if value > last:
                last = value
                yield {"event": "progress", "data": dumps({"progress": round(value, 4)})}
        instance = task.result()
        yield {
            "event": "loaded",
            "data": dumps(load_response(instance, time.perf_counter() - started, echo=body.echo_load_config)),
        }
    except OpenLMSError as exc:
        yield {"event": "error", "data": dumps(domain_error_body(exc)[1])}
    finally:
        if not task.done():  # the client went away: the load finishes, the model stays loaded
            task.add_done_callback(lambda t: t.exception())


@router.post(
    "/models/import",
    response_model=None,
    responses=doc.responses(doc.ok(doc.V1ImportResponse), 404, 409, 500),
)
async def import_model(body: ImportRequest, request: Request, state: State) -> dict[str, Any]:
    """Import a file from the server's own disk (`lms import`); only local clients may ask for it."""
    require_loopback(request, "Importing models")
    descriptor = await state.models.import_model(
        Path(body.path), publisher=body.publisher, repo=body.repo, mode=body.mode
    )
    return {
        "key": descriptor.key,
        "path": descriptor.rel_path,
        "type": descriptor.kind.value,
        "error": descriptor.error,
    }


@router.post(
    "/models/unload", response_model=None, responses=doc.responses(doc.ok(doc.V1UnloadResponse), 404)
)
async def unload(body: UnloadRequest, state: State) -> dict[str, Any]:
    instance = await state.models.unload(body.instance_id)
    return {"instance_id": instance.identifier}


ModelQuery = Annotated[str, Query(min_length=1, description="Model key (or any query `lms load` accepts)")]


@router.get("/models/config", response_model=None, responses=doc.MODEL_CONFIG_RESPONSES)
async def get_model_config(model: ModelQuery, state: State) -> dict[str, Any]:
    """A downloaded model's per-model settings (`{"load": {...}, "prediction": {...}}`)."""
    return (await state.models.model_config(model)).to_json()


@router.put(
    "/models/config",
    response_model=None,
    responses=doc.MODEL_CONFIG_RESPONSES,
    openapi_extra=doc.model_config_body(),
)
async def put_model_config(
    model: ModelQuery, body: Annotated[dict[str, Any], Body()], request: Request, state: State
) -> dict[str, Any]:
    """Replace a model's per-model settings; the body has the shape GET returns."""
    require_loopback(request, "Changing model settings")
    return (await state.models.put_model_config(model, body)).to_json()


@router.delete(
    "/models/config", response_model=None, responses=doc.responses(doc.ok(doc.V1ConfigReset), 404, 500)
)
async def reset_model_config(model: ModelQuery, request: Request, state: State) -> dict[str, Any]:
    """Forget a model's per-model settings (back to the defaults)."""
    require_loopback(request, "Changing model settings")
    removed = await state.models.reset_model_config(model)
    return {"model": model, "reset": removed}
