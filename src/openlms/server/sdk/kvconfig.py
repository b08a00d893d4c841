"""The SDK's KV config stacks, read into openlms's own types, and openlms's settings written back as KV
fields (`getLoadConfig`, the `success` message of a prediction).

A stack is `{"layers": [{"layerName", "config": {"fields": [{"key", "value"}]}}]}`; for each key the first
layer that sets it wins (`apiOverride` comes first). "Checkbox" values are `{"checked", "value"}`: an
unchecked one leaves the setting at its default. A key openlms does not implement is an error naming it,
never silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.core.types import ContextOverflowPolicy, LoadConfig, ModelKind, SamplingParams
from openlms.parsers.templates import PromptTemplateSpec
from openlms.services.generation import DraftRequest
from openlms.services.structured import schema_grammar

P = "llm.prediction."
COMPLETION_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"


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


def _checkbox(value: Any) -> Any:
    """The value of a checkbox field, None when unchecked."""
    if isinstance(value, Mapping) and "checked" in value:
        return value.get("value") if value.get("checked") else None
    return value


def _number(key: str, value: Any, *, integer: bool = False) -> Any:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok:
        kind = "an integer" if integer else "a number"
        raise InvalidRequestError(f"Config field '{key}' must be {kind}, got {value!r}.", param=key)
    return value


# ---------------------------------------------------------------------------------------------------
# Prediction


@dataclass(frozen=True, slots=True)
class PredictionSettings:
    """What a `predict` request's config stack asks for."""

    sampling: SamplingParams = field(default_factory=SamplingParams)
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    tool_call_stops: tuple[str, ...] = ()
    overflow: ContextOverflowPolicy | None = None
    grammar: str | None = None
    structured: bool = False
    tools: list[dict[str, Any]] | None = None
    template: PromptTemplateSpec | None = None
    completion_mode: bool = False  # `complete()`: the user text is the raw prompt
    reasoning_parsing: bool | None = None
    draft: DraftRequest | None = None
    system_prompt: str | None = None  # from a preset
    fields: dict[str, Any] = field(default_factory=dict)  # every key as received (for the result)


def prediction_settings(fields: Mapping[str, Any], *, strict: bool = True) -> PredictionSettings:
    """Read the merged prediction fields. `strict`: an unknown key is an error (presets: skipped)."""
    settings = PredictionSettings(fields=dict(fields))
    sampling: dict[str, Any] = {}
    for key, value in fields.items():
        if key.startswith(("llm.load.", "load.", "embedding.load.")):
            continue  # load fields in a preset apply to loads, not to this prediction
        reader = _PREDICTION_READERS.get(key)
        if reader is None:
            if strict:
                raise InvalidRequestError(
                    f"Config field '{key}' is not supported by openlms yet; remove it from the config.",
                    param=key,
                )
            continue
        settings = reader(settings, sampling, key, value)
    return replace(settings, sampling=replace(settings.sampling, **sampling)) if sampling else settings


Reader = Callable[[PredictionSettings, dict[str, Any], str, Any], PredictionSettings]


def _sampling(name: str, *, integer: bool = False, checkbox: bool = False) -> Reader:
    def read(s: PredictionSettings, sampling: dict[str, Any], key: str, value: Any) -> PredictionSettings:
        value = _checkbox(value) if checkbox else value
        if value is not None:
            sampling[name] = _number(key, value, integer=integer)
        return s

    return read


def _max_tokens(s: PredictionSettings, _: dict[str, Any], key: str, value: Any) -> PredictionSettings:
    value = _checkbox(value)
    if value is None:
        return s
    if _number(key, value, integer=True) < 1:
        raise InvalidRequestError(f"'{key}' must be at least 1.", param=key)
    return replace(s, max_tokens=value)


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequestError(f"Config field '{key}' must be a list of strings.", param=key)
    return tuple(v for v in value if v)


def _stops(s: PredictionSettings, _: dict[str, Any], key: str, value: Any) -> PredictionSettings:
    return replace(s, stop=_strings(key, value))


def _tool_stops(s: PredictionSettings, _: dict[str, Any], key: str, value: Any) -> PredictionSettings:
    return replace(s, tool_call_stops=_strings(key, value))


def _overflow(s: PredictionSettings, _: dict[str, Any], key: str, value: Any) -> PredictionSettings:
    try:
        return replace(s, overflow=ContextOverflowPolicy(value))
    except ValueError:
        allowed = ", ".join(p.value for p in ContextOverflowPolicy)
        raise InvalidRequestError(f"'{key}' must be one of {allowed}; got {value!r}.", param=key) from None


def _structured(s: PredictionSettings, _: dict[str, Any], key: str, value: Any) -> PredictionSettings:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "none" or value is None:
        return s
    if kind == "json":
        return replace(s, grammar=schema_grammar(value.get("jsonSchema"), param=key), structured=True)
    if kind == "gbnf":
        grammar = value.get("gbnfGrammar")
        if not isinstance(grammar, str) or not grammar.strip():
            raise InvalidRequestError(f"'{key}.gbnfGrammar' must be a GBNF grammar.", param=key)
        return replace(s, grammar=grammar, structured=True)
    raise InvalidRequestError(f"'{key}.type' must be json, gbnf or none; got {kind!r}.", param=key)


def _tools(s: PredictionSettings, _: dict[str, Any], key: str, value: Any) -> PredictionSettings:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "none" or value is None:
        return s
    if kind == "toolArray" and isinstance(value.get("tools"), list):
        return replace(s, tools=[dict(t) for t in value["tools"]])
    raise InvalidRequestError(f"'{key}' must be {{type: toolArray, tools: [...]}} or none.", param=key)


def _template(s: PredictionSettings, _: dict[str, Any], key: str, value: Any) -> PredictionSettings:
    if value is None:
        return s
    jinja = value.get("jinjaPromptTemplate") if isinstance(value, Mapping) else None
    if (
        value.get("type") == "jinja"
        and isinstance(jinja, Mapping)
        and jinja.get("template") == COMPLETION_TEMPLATE
    ):
        return replace(s, completion_mode=True)
    return replace(s, template=PromptTemplateSpec.from_json(value, param=key))


def _reasoning(s: PredictionSettings, _: dict[str, Any], key: str, value: Any) -> PredictionSettings:
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"'{key}' must be {{enabled, startString, endString}}.", param=key)
    for name, expected in (("startString", "<think>"), ("endString", "</think>")):
        given = value.get(name)
        if given not in (None, "", expected):
            raise InvalidRequestError(
                f"'{key}.{name}' {given!r} is not supported yet: openlms parses {expected} only.", param=key
            )
    return replace(s, reasoning_parsing=bool(value.get("enabled")))


def _draft(s: PredictionSettings, _: dict[str, Any], key: str, value: Any) -> PredictionSettings:
    if value in (None, ""):
        return s
    if not isinstance(value, str):
        raise InvalidRequestError(f"'{key}' must be a model key.", param=key)
    return replace(s, draft=replace(s.draft, model=value) if s.draft else DraftRequest(value))


def _draft_option(name: str, *, integer: bool) -> Reader:
    def read(s: PredictionSettings, _: dict[str, Any], key: str, value: Any) -> PredictionSettings:
        value = _checkbox(value)
        if value is None:
            return s
        draft = s.draft or DraftRequest("")
        return replace(s, draft=replace(draft, **{name: _number(key, value, integer=integer)}))

    return read


def _system_prompt(s: PredictionSettings, _: dict[str, Any], key: str, value: Any) -> PredictionSettings:
    return replace(s, system_prompt=value if isinstance(value, str) and value.strip() else None)


_PREDICTION_READERS: dict[str, Reader] = {
    P + "temperature": _sampling("temperature"),
    P + "topKSampling": _sampling("top_k", integer=True),
    P + "topPSampling": _sampling("top_p", checkbox=True),
    P + "minPSampling": _sampling("min_p", checkbox=True),
    P + "repeatPenalty": _sampling("repeat_penalty", checkbox=True),
    P + "seed": _sampling("seed", integer=True, checkbox=True),
    P + "xtcProbability": _sampling("xtc_probability", checkbox=True),
    P + "xtcThreshold": _sampling("xtc_threshold", checkbox=True),
    P + "maxPredictedTokens": _max_tokens,
    P + "stopStrings": _stops,
    P + "toolCallStopStrings": _tool_stops,
    P + "contextOverflowPolicy": _overflow,
    P + "structured": _structured,
    P + "tools": _tools,
    P + "promptTemplate": _template,
    P + "reasoning.parsing": _reasoning,
    P + "speculativeDecoding.draftModel": _draft,
    P + "speculativeDecoding.numDraftTokensExact": _draft_option("num_draft_tokens", integer=True),
    P + "speculativeDecoding.minDraftLengthToConsider": _draft_option("min_draft_length", integer=True),
    P + "speculativeDecoding.minContinueDraftingProbability": _draft_option(
        "min_continue_probability", integer=False
    ),
    P + "systemPrompt": _system_prompt,
}


def prediction_fields(settings: PredictionSettings) -> list[dict[str, Any]]:
    """The prediction config used, as KV fields (the `success` message's `predictionConfig`)."""
    s = settings.sampling
    out: dict[str, Any] = {
        P + "temperature": s.temperature,
        P + "topKSampling": s.top_k,
        P + "topPSampling": {"checked": True, "value": s.top_p},
        P + "minPSampling": {"checked": True, "value": s.min_p},
        P + "repeatPenalty": {"checked": True, "value": s.repeat_penalty},
        P + "maxPredictedTokens": {
            "checked": settings.max_tokens is not None,
            "value": settings.max_tokens or 1000,
        },
        P + "stopStrings": list(settings.stop),
        P + "toolCallStopStrings": list(settings.tool_call_stops),
        P + "contextOverflowPolicy": (settings.overflow or ContextOverflowPolicy.STOP_AT_LIMIT).value,
    }
    for key in (P + "structured", P + "tools", P + "promptTemplate", P + "reasoning.parsing"):
        if key in settings.fields:
            out[key] = settings.fields[key]
    return [{"key": k, "value": v} for k, v in out.items()]


# ---------------------------------------------------------------------------------------------------
# Load


def _load_key(kind: ModelKind, name: str) -> str:
    return f"{'llm' if kind is ModelKind.LLM else 'embedding'}.load.{name}"


_CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")


def load_config(fields: Mapping[str, Any], kind: ModelKind) -> LoadConfig:
    """A `loadConfigStack`'s merged fields as a LoadConfig; unknown keys are an error naming them."""
    config: dict[str, Any] = {}
    for key, value in fields.items():
        name = _LOAD_NAMES.get(_strip_kind(key, kind))
        if name is None:
            raise InvalidRequestError(
                f"Load config field '{key}' is not supported by openlms yet; remove it from the config.",
                param=key,
            )
        value = _checkbox(value)
        if value is None or name == "":
            continue
        if name == "gpu":
            value = "off" if _number(key, value) <= 0 else ("max" if value >= 1 else float(value))
        elif name in ("k_cache_type", "v_cache_type") and value not in _CACHE_TYPES:
            raise InvalidRequestError(f"'{key}' must be one of {', '.join(_CACHE_TYPES)}.", param=key)
        elif name in ("context_length", "seed", "eval_batch_size", "num_experts"):
            value = _number(key, value, integer=True)
        config[name] = value
    return LoadConfig(**config)


def _strip_kind(key: str, kind: ModelKind) -> str:
    for prefix in ("llm.load.", "embedding.load.", "load."):
        if key.startswith(prefix):
            if prefix != "load." and not key.startswith(_load_key(kind, "")):
                return "?" + key  # an LLM key on an embedding load (or the reverse)
            return key[len(prefix) :]
    return "?" + key


# "" marks a key accepted and not applicable on this machine (CPU inference: GPU placement)
_LOAD_NAMES: dict[str, str] = {
    "contextLength": "context_length",
    "seed": "seed",
    "numExperts": "num_experts",
    "offloadKVCacheToGpu": "",
    "gpuSplitConfig": "",
    "gpuStrictVramCap": "",
    "llama.evalBatchSize": "eval_batch_size",
    "llama.flashAttention": "flash_attention",
    "llama.kCacheQuantizationType": "k_cache_type",
    "llama.vCacheQuantizationType": "v_cache_type",
    "llama.useFp16ForKVCache": "",
    "llama.keepModelInMemory": "keep_model_in_memory",
    "llama.tryMmap": "try_mmap",
    "llama.ropeFrequencyBase": "rope_frequency_base",
    "llama.ropeFrequencyScale": "rope_frequency_scale",
    "llama.acceleration.offloadRatio": "gpu",
}


def load_fields(config: LoadConfig, context_length: int, kind: ModelKind) -> list[dict[str, Any]]:
    """An instance's load config as KV fields (`getLoadConfig`, a prediction's `loadModelConfig`)."""

    def k(name: str) -> str:
        return _load_key(kind, name)

    gpu = config.gpu
    ratio = 1.0 if gpu == "max" else 0.0 if gpu in ("off", None) else float(gpu)
    out: list[tuple[str, Any]] = [
        (k("contextLength"), context_length),
        (k("llama.acceleration.offloadRatio"), ratio),
        (k("llama.tryMmap"), config.try_mmap),
        (k("llama.keepModelInMemory"), config.keep_model_in_memory),
    ]
    if config.rope_frequency_base is not None:
        out.append((k("llama.ropeFrequencyBase"), {"checked": True, "value": config.rope_frequency_base}))
    if config.rope_frequency_scale is not None:
        out.append((k("llama.ropeFrequencyScale"), {"checked": True, "value": config.rope_frequency_scale}))
    if kind is ModelKind.LLM:
        out.append((k("llama.evalBatchSize"), config.eval_batch_size or 512))
        out.append((k("seed"), {"checked": config.seed is not None, "value": config.seed or 0}))
        if config.flash_attention is not None:
            out.append((k("llama.flashAttention"), config.flash_attention))
        for name, value in (
            ("kCacheQuantizationType", config.k_cache_type),
            ("vCacheQuantizationType", config.v_cache_type),
        ):
            if value is not None:
                out.append((k(f"llama.{name}"), {"checked": True, "value": value}))
        if config.num_experts is not None:
            out.append((k("numExperts"), config.num_experts))
    return [{"key": key, "value": value} for key, value in out]
