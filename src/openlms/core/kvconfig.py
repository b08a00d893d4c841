"""LM Studio's key/value config format, which the SDK's config stacks, config presets and LM Studio's own
per-model settings files share, and the one table of its load keys (read and written from it).

A KV config is `{"fields": [{"key", "value"}]}`; a stack is `{"layers": [{"layerName", "config": KV}]}`,
and for each key the first layer that sets it wins (`apiOverride` comes first). "Checkbox" values are
`{"checked", "value"}`: an unchecked one leaves the setting unset. A key openlms does not implement is an
error naming it, never silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.core.types import KV_CACHE_TYPES, MAX_PARALLEL, LoadConfig, ModelKind

LOAD_PREFIXES = ("llm.load.", "embedding.load.", "load.")


def merge_layers(*stacks: Any) -> dict[str, Any]:
    """One `key -> value` map from config stacks (or single KV configs); earlier layers win."""
    merged: dict[str, Any] = {}
    for stack in stacks:
        for fields in _layer_fields(stack):
            for item in fields:
                if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
                    raise InvalidRequestError("A config field must be {key, value}.", param="config")
                merged.setdefault(item["key"], item.get("value"))
    return merged


def _layer_fields(stack: Any) -> Iterable[list[Any]]:
    if stack is None:
        return
    if not isinstance(stack, Mapping):
        raise InvalidRequestError("A config stack must be an object with 'layers'.", param="config")
    if "fields" in stack:  # a single KV config
        yield list(stack.get("fields") or [])
        return
    for layer in stack.get("layers") or []:
        config = layer.get("config") if isinstance(layer, Mapping) else None
        if isinstance(config, Mapping):
            yield list(config.get("fields") or [])


def checkbox(value: Any) -> Any:
    """The value of a checkbox field, None when unchecked (a plain value is its own value)."""
    if isinstance(value, Mapping) and "checked" in value:
        return value.get("value") if value.get("checked") else None
    return value


def number(key: str, value: Any, *, integer: bool = False) -> Any:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok:
        kind = "an integer" if integer else "a number"
        raise InvalidRequestError(f"Config field '{key}' must be {kind}, got {value!r}.", param=key)
    return value


def strings(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequestError(f"Config field '{key}' must be a list of strings.", param=key)
    return tuple(v for v in value if v)


def unsupported(key: str, what: str = "Config field") -> InvalidRequestError:
    return InvalidRequestError(
        f"{what} '{key}' is not supported by openlms yet; remove it from the config.", param=key
    )


# ---------------------------------------------------------------------------------------------------
# Load keys: one table, read (`load_config`) and written (`load_fields`)

Reader = Callable[[str, Any], Any]
Writer = Callable[[LoadConfig, int], Any]  # (config, loaded context length) -> value; None: not reported


def _plain(_key: str, value: Any) -> Any:
    return value


def _integer(key: str, value: Any) -> Any:
    return number(key, value, integer=True)


def _parallel(key: str, value: Any) -> Any:
    if not 1 <= number(key, value, integer=True) <= MAX_PARALLEL:
        raise InvalidRequestError(
            f"Config field '{key}' (parallel predictions) must be an integer from 1 to {MAX_PARALLEL}, "
            f"got {value!r}.",
            param=key,
        )
    return value


def _ratio(key: str, value: Any) -> Any:
    return "off" if number(key, value) <= 0 else ("max" if value >= 1 else float(value))


def _cache_type(key: str, value: Any) -> Any:
    if value not in KV_CACHE_TYPES:
        raise InvalidRequestError(f"'{key}' must be one of {', '.join(KV_CACHE_TYPES)}.", param=key)
    return value


def _attr(name: str) -> Writer:
    return lambda config, _: getattr(config, name)


def _checked_if_set(name: str) -> Writer:
    def write(config: LoadConfig, _: int) -> Any:
        value = getattr(config, name)
        return None if value is None else {"checked": True, "value": value}

    return write


def _offload_ratio(config: LoadConfig, _: int) -> float:
    gpu = config.gpu
    return 1.0 if gpu == "max" else 0.0 if gpu in ("off", None) else float(gpu)


@dataclass(frozen=True, slots=True)
class LoadKey:
    name: str  # the key after `llm.load.`, `embedding.load.` or `load.`
    field: str | None  # the LoadConfig field; None: accepted and not applicable (GPU placement on a CPU)
    read: Reader = _plain
    write: Writer | None = None  # how getLoadConfig reports it (None: not reported)
    llm_only: bool = False  # reported for LLMs only


LOAD_KEYS: tuple[LoadKey, ...] = (
    LoadKey("contextLength", "context_length", _integer, lambda _, n_ctx: n_ctx),
    LoadKey("llama.acceleration.offloadRatio", "gpu", _ratio, _offload_ratio),
    LoadKey("llama.tryMmap", "try_mmap", write=_attr("try_mmap")),
    LoadKey("llama.keepModelInMemory", "keep_model_in_memory", write=_attr("keep_model_in_memory")),
    LoadKey("llama.ropeFrequencyBase", "rope_frequency_base", write=_checked_if_set("rope_frequency_base")),
    LoadKey(
        "llama.ropeFrequencyScale", "rope_frequency_scale", write=_checked_if_set("rope_frequency_scale")
    ),
    LoadKey(
        "llama.evalBatchSize",
        "eval_batch_size",
        _integer,
        lambda config, _: config.eval_batch_size or 512,
        llm_only=True,
    ),
    LoadKey(
        "seed",
        "seed",
        _integer,
        lambda config, _: {"checked": config.seed is not None, "value": config.seed or 0},
        llm_only=True,
    ),
    LoadKey("llama.flashAttention", "flash_attention", write=_attr("flash_attention"), llm_only=True),
    LoadKey(
        "llama.kCacheQuantizationType", "k_cache_type", _cache_type, _checked_if_set("k_cache_type"), True
    ),
    LoadKey(
        "llama.vCacheQuantizationType", "v_cache_type", _cache_type, _checked_if_set("v_cache_type"), True
    ),
    LoadKey("numExperts", "num_experts", _integer, _attr("num_experts"), llm_only=True),
    LoadKey("llama.cpuThreadPoolSize", "n_threads", _integer),
    # LM Studio 0.4's "Max Concurrent Predictions" (lmstudio-js `maxParallelPredictions`); the KV cache is
    # always unified (every sequence may use the whole context), so `useUnifiedKvCache` reads true.
    LoadKey("numParallelSessions", "parallel", _parallel, _attr("parallel"), llm_only=True),
    LoadKey("useUnifiedKvCache", None, write=lambda _config, _n_ctx: True, llm_only=True),
    LoadKey("offloadKVCacheToGpu", None),
    LoadKey("gpuSplitConfig", None),
    LoadKey("gpuStrictVramCap", None),
    LoadKey("llama.useFp16ForKVCache", None),
)
_BY_NAME = {key.name: key for key in LOAD_KEYS}


def load_prefix(kind: ModelKind) -> str:
    return f"{'llm' if kind is ModelKind.LLM else 'embedding'}.load."


def load_config(fields: Mapping[str, Any], kind: ModelKind) -> LoadConfig:
    """A `loadConfigStack`'s merged fields as a LoadConfig; unknown keys are an error naming them."""
    config: dict[str, Any] = {}
    for key, value in fields.items():
        spec = _BY_NAME.get(_strip_kind(key, kind))
        if spec is None:
            raise unsupported(key, "Load config field")
        value = checkbox(value)
        if value is None or spec.field is None:
            continue
        config[spec.field] = spec.read(key, value)
    return LoadConfig(**config)


def _strip_kind(key: str, kind: ModelKind) -> str:
    for prefix in LOAD_PREFIXES:
        if key.startswith(prefix):
            if prefix != "load." and not key.startswith(load_prefix(kind)):
                return "?" + key  # an LLM key on an embedding load (or the reverse)
            return key[len(prefix) :]
    return "?" + key


def load_fields(config: LoadConfig, context_length: int, kind: ModelKind) -> list[dict[str, Any]]:
    """An instance's load config as KV fields (`getLoadConfig`, a prediction's `loadModelConfig`)."""
    out = []
    for spec in LOAD_KEYS:
        if spec.write is None or (spec.llm_only and kind is not ModelKind.LLM):
            continue
        value = spec.write(config, context_length)
        if value is not None:
            out.append({"key": load_prefix(kind) + spec.name, "value": value})
    return out


def lmstudio_load_keys() -> dict[str, str]:
    """LM Studio's `llm.load.*` keys -> the LoadConfig field each one sets."""
    return {f"llm.load.{spec.name}": spec.field for spec in LOAD_KEYS if spec.field}
