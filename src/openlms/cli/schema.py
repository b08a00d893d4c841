"""Typed views of the server's JSON (docs/http-api.md), parsed leniently.

The server is another process, possibly another version, so parsing never fails on a missing or odd
field: it falls back to a neutral default. Only a response that is not the documented shape at all
(e.g. `models` missing) is an error, raised by the client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return value if isinstance(value, list) else []


def _dict(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class LoadedInstance:
    """One loaded instance of a model (an entry of `loaded_instances`, plus its model's fields)."""

    identifier: str
    model_key: str
    type: str
    path: str
    architecture: str | None
    size_bytes: int
    status: str
    active_requests: int
    queued_requests: int
    jit: bool
    ttl_seconds: int | None
    idle_seconds: float | None
    context_length: int | None
    gpu: str | float | None = None  # the effective gpu setting: "off" when the server has no GPU backend
    gpu_layers: int | None = None  # layers offloaded to the GPU
    parallel: int | None = None  # predictions served at once (None: an embedding model, or an old server)

    def to_json(self) -> dict[str, Any]:
        """The shape `lms ps --json` prints."""
        return {
            "identifier": self.identifier,
            "modelKey": self.model_key,
            "type": self.type,
            "path": self.path,
            "sizeBytes": self.size_bytes,
            "architecture": self.architecture,
            "status": self.status,
            "parallel": self.parallel,
            "active": self.active_requests,
            "queued": self.queued_requests,
            "ttl": self.ttl_seconds,
            "contextLength": self.context_length,
            "jit": self.jit,
            "idleSeconds": self.idle_seconds,
            "gpu": self.gpu,
            "gpuLayers": self.gpu_layers,
        }


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One downloaded model from `GET /api/v1/models`; `raw` is the server's object, untouched."""

    key: str
    type: str
    publisher: str | None
    display_name: str | None
    architecture: str | None
    params_string: str | None
    quantization: str | None
    bits_per_weight: float | None
    size_bytes: int
    max_context_length: int | None
    path: str
    error: str | None
    vision: bool
    tool_use: bool
    instances: tuple[LoadedInstance, ...]
    raw: Mapping[str, Any]
    reasoning: bool = False
    variants: tuple[str, ...] = ()  # the keys of every file of the same model (2 or more)
    selected_variant: str | None = None
    virtual: bool = False  # a model.yaml model: its key is the model.yaml's, its path the file it loads

    @property
    def is_embedding(self) -> bool:
        return self.type == "embedding"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelInfo:
        key = _str(data, "key") or _str(data, "path") or "?"
        quant = _dict(data, "quantization")
        caps = _dict(data, "capabilities")
        model = cls(
            key=key,
            type=_str(data, "type") or "llm",
            publisher=_str(data, "publisher"),
            display_name=_str(data, "display_name"),
            architecture=_str(data, "architecture"),
            params_string=_str(data, "params_string"),
            quantization=_str(quant, "name"),
            bits_per_weight=_float(quant, "bits_per_weight"),
            size_bytes=_int(data, "size_bytes") or 0,
            max_context_length=_int(data, "max_context_length"),
            path=_str(data, "path") or "",
            error=_str(data, "error"),
            vision=caps.get("vision") is True,
            tool_use=caps.get("trained_for_tool_use") is True,
            instances=(),
            raw=data,
            reasoning=caps.get("reasoning") is True,
            variants=tuple(v for v in _list(data, "variants") if isinstance(v, str)),
            selected_variant=_str(data, "selected_variant"),
            virtual=data.get("virtual") is True,
        )
        raw_instances = data.get("loaded_instances")
        items = raw_instances if isinstance(raw_instances, list) else []
        instances = tuple(_instance(model, item) for item in items if isinstance(item, Mapping))
        return replace(model, instances=instances)


def _instance(model: ModelInfo, data: Mapping[str, Any]) -> LoadedInstance:
    config = _dict(data, "config")
    return LoadedInstance(
        identifier=_str(data, "id") or model.key,
        model_key=model.key,
        type=model.type,
        path=model.path,
        architecture=model.architecture,
        size_bytes=_int(data, "size_bytes") or model.size_bytes,
        status=_str(data, "status") or "idle",
        active_requests=_int(data, "active_requests") or 0,
        queued_requests=_int(data, "queued_requests") or 0,
        jit=data.get("jit") is True,
        ttl_seconds=_int(data, "ttl_seconds"),
        idle_seconds=_float(data, "idle_seconds"),
        context_length=_int(config, "context_length"),
        gpu=_gpu(config.get("gpu")),
        gpu_layers=_int(config, "gpu_layers"),
        parallel=_int(config, "parallel"),
    )


def _gpu(value: Any) -> str | float | None:
    if isinstance(value, str) or value is None:
        return value
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class LoadResult:
    """The body of a successful `POST /api/v1/models/load` (or its `loaded` event)."""

    type: str
    identifier: str
    load_time_seconds: float | None
    context_length: int | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], fallback_identifier: str) -> LoadResult:
        return cls(
            type=_str(data, "type") or "llm",
            identifier=_str(data, "model_instance_id") or fallback_identifier,
            load_time_seconds=_float(data, "load_time_seconds"),
            context_length=_int(_dict(data, "config"), "context_length"),
        )


def loaded_instances(models: list[ModelInfo]) -> list[LoadedInstance]:
    return [instance for model in models for instance in model.instances]


@dataclass(frozen=True, slots=True)
class CrashInfo:
    """A model worker that crashed (`recent_crashes` of GET /api/v1/models, newest first)."""

    model: str
    instance_id: str
    at: float | None
    exit: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CrashInfo:
        return cls(
            model=_str(data, "model") or "?",
            instance_id=_str(data, "instance_id") or _str(data, "model") or "?",
            at=_float(data, "at"),
            exit=_str(data, "exit") or "crashed",
        )
