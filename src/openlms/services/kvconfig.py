"""LM Studio's prediction keys (`llm.prediction.*`, in SDK config stacks and config presets): one table,
read into a `PredictionParams` layer and written back from `ResolvedParams` (a prediction's `success`
message reports the config it used). The KV format itself and the load keys are in `core.kvconfig`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.core.kvconfig import LOAD_PREFIXES, checkbox, number, strings, unsupported
from openlms.core.types import ContextOverflowPolicy
from openlms.parsers.templates import PromptTemplateSpec
from openlms.services.params import PredictionParams, ResolvedParams
from openlms.services.structured import schema_grammar

PREFIX = "llm.prediction."

Reader = Callable[[str, Any], dict[str, Any]]  # (key, value) -> the PredictionParams fields it sets
Writer = Callable[[ResolvedParams], Any]


@dataclass(frozen=True, slots=True)
class PredictionKey:
    name: str  # the key after `llm.prediction.`
    read: Reader
    write: Writer | None = None  # the value reported as used; None: reported as received (`echo`) or not
    echo: bool = False

    @property
    def key(self) -> str:
        return PREFIX + self.name


def _value(
    field: str, *, integer: bool = False, is_checkbox: bool = False, at_least: int | None = None
) -> Reader:
    def read(key: str, value: Any) -> dict[str, Any]:
        value = checkbox(value) if is_checkbox else value
        if value is None:
            return {}
        number(key, value, integer=integer)
        if at_least is not None and value < at_least:
            raise InvalidRequestError(f"'{key}' must be at least {at_least}.", param=key)
        return {field: value}

    return read


def _strings(field: str) -> Reader:
    return lambda key, value: {field: strings(key, value)}


def _overflow(key: str, value: Any) -> dict[str, Any]:
    try:
        return {"overflow": ContextOverflowPolicy(value)}
    except ValueError:
        allowed = ", ".join(p.value for p in ContextOverflowPolicy)
        raise InvalidRequestError(f"'{key}' must be one of {allowed}; got {value!r}.", param=key) from None


def _structured(key: str, value: Any) -> dict[str, Any]:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "none" or value is None:
        return {}
    if kind == "json":
        return {"structured": schema_grammar(value.get("jsonSchema"), param=key)}
    if kind == "gbnf":
        grammar = value.get("gbnfGrammar")
        if not isinstance(grammar, str) or not grammar.strip():
            raise InvalidRequestError(f"'{key}.gbnfGrammar' must be a GBNF grammar.", param=key)
        return {"structured": grammar}
    raise InvalidRequestError(f"'{key}.type' must be json, gbnf or none; got {kind!r}.", param=key)


def _tools(key: str, value: Any) -> dict[str, Any]:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "none" or value is None:
        return {}
    if kind == "toolArray" and isinstance(value.get("tools"), list):
        return {"tools": [dict(t) for t in value["tools"]]}
    raise InvalidRequestError(f"'{key}' must be {{type: toolArray, tools: [...]}} or none.", param=key)


def _template(key: str, value: Any) -> dict[str, Any]:
    return {} if value is None else {"template": PromptTemplateSpec.from_json(value, param=key)}


def _reasoning(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"'{key}' must be {{enabled, startString, endString}}.", param=key)
    for name, expected in (("startString", "<think>"), ("endString", "</think>")):
        given = value.get(name)
        if given not in (None, "", expected):
            raise InvalidRequestError(
                f"'{key}.{name}' {given!r} is not supported yet: openlms parses {expected} only.", param=key
            )
    return {"reasoning_parsing": bool(value.get("enabled"))}


def _draft_model(key: str, value: Any) -> dict[str, Any]:
    if value in (None, ""):
        return {}
    if not isinstance(value, str):
        raise InvalidRequestError(f"'{key}' must be a model key.", param=key)
    return {"draft_model": value}


def _system_prompt(_key: str, value: Any) -> dict[str, Any]:
    return {"system_prompt": value} if isinstance(value, str) and value.strip() else {}


def _checked(value: Any) -> dict[str, Any]:
    return {"checked": True, "value": value}


PREDICTION_KEYS: tuple[PredictionKey, ...] = (
    PredictionKey("temperature", _value("temperature"), lambda r: r.sampling.temperature),
    PredictionKey("topKSampling", _value("top_k", integer=True), lambda r: r.sampling.top_k),
    PredictionKey("topPSampling", _value("top_p", is_checkbox=True), lambda r: _checked(r.sampling.top_p)),
    PredictionKey("minPSampling", _value("min_p", is_checkbox=True), lambda r: _checked(r.sampling.min_p)),
    PredictionKey(
        "repeatPenalty",
        _value("repeat_penalty", is_checkbox=True),
        lambda r: _checked(r.sampling.repeat_penalty),
    ),
    PredictionKey(
        "maxPredictedTokens",
        _value("max_tokens", integer=True, is_checkbox=True, at_least=1),
        lambda r: {"checked": r.max_tokens is not None, "value": r.max_tokens or 1000},
    ),
    PredictionKey("stopStrings", _strings("stop"), lambda r: list(r.stop)),
    PredictionKey("toolCallStopStrings", _strings("tool_call_stops"), lambda r: list(r.tool_call_stops)),
    PredictionKey("contextOverflowPolicy", _overflow, lambda r: r.overflow.value),
    PredictionKey("seed", _value("seed", integer=True, is_checkbox=True)),
    PredictionKey("xtcProbability", _value("xtc_probability", is_checkbox=True)),
    PredictionKey("xtcThreshold", _value("xtc_threshold", is_checkbox=True)),
    PredictionKey("structured", _structured, echo=True),
    PredictionKey("tools", _tools, echo=True),
    PredictionKey("promptTemplate", _template, echo=True),
    PredictionKey("reasoning.parsing", _reasoning, echo=True),
    PredictionKey("speculativeDecoding.draftModel", _draft_model),
    PredictionKey(
        "speculativeDecoding.numDraftTokensExact",
        _value("num_draft_tokens", integer=True, is_checkbox=True),
    ),
    PredictionKey(
        "speculativeDecoding.minDraftLengthToConsider",
        _value("min_draft_length", integer=True, is_checkbox=True),
    ),
    PredictionKey(
        "speculativeDecoding.minContinueDraftingProbability",
        _value("min_continue_probability", is_checkbox=True),
    ),
    PredictionKey("systemPrompt", _system_prompt),
)
_BY_KEY = {spec.key: spec for spec in PREDICTION_KEYS}


def read_prediction(fields: Mapping[str, Any], *, strict: bool = True) -> PredictionParams:
    """The prediction settings merged KV fields set. `strict`: an unknown key is an error naming it
    (a preset's unknown keys are skipped); load keys are left to loads."""
    updates: dict[str, Any] = {}
    for key, value in fields.items():
        if key.startswith(LOAD_PREFIXES):
            continue  # load fields in a preset apply to loads, not to this prediction
        spec = _BY_KEY.get(key)
        if spec is None:
            if strict:
                raise unsupported(key)
            continue
        updates.update(spec.read(key, value))
    return PredictionParams(**updates)


def prediction_fields(resolved: ResolvedParams, received: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The prediction config used, as KV fields (the `success` message's `predictionConfig`)."""
    out = []
    for spec in PREDICTION_KEYS:
        if spec.write is not None:
            out.append({"key": spec.key, "value": spec.write(resolved)})
        elif spec.echo and spec.key in received:
            out.append({"key": spec.key, "value": received[spec.key]})
    return out
