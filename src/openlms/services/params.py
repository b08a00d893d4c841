"""The one place where a prediction's settings are resolved.

Every surface (OpenAI `/v1`, REST `/api/v0`, the `lmstudio` SDK, the web app) turns what its client sent
into a `PredictionParams` holding only what the client set: a field left as None is unset. `resolve` then
applies the precedence LM Studio documents, field by field:

    request  >  preset (config-presets/*.preset.json)  >  the model's own settings (per-model config,
    model.yaml)  >  the server's defaults (settings.json, LM Studio's sampling defaults)

and returns `ResolvedParams`, where nothing is unset any more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from openlms.core.settings import Settings
from openlms.core.types import ContextOverflowPolicy, DraftSpec, SamplingParams
from openlms.parsers.templates import PromptTemplateSpec
from openlms.services.toolcalls import ToolChoice

_SAMPLING = tuple(f.name for f in fields(SamplingParams) if f.name != "repeat_last_n")


@dataclass(frozen=True, slots=True)
class PredictionParams:
    """One layer of a prediction's settings (a request, a preset, a model's own settings); None: unset."""

    # sampling (SamplingParams' fields)
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: Mapping[int, float] | None = None
    seed: int | None = None
    xtc_probability: float | None = None
    xtc_threshold: float | None = None
    # limits and stops
    max_tokens: int | None = None  # None: until the model stops or the context ends
    stop: tuple[str, ...] | None = None
    tool_call_stops: tuple[str, ...] | None = None  # stop strings that end the prediction as a tool call
    overflow: ContextOverflowPolicy | None = None
    # what the prompt and the output look like
    structured: str | None = None  # structured output, as GBNF
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: ToolChoice = None
    reasoning_parsing: bool | None = None  # separate <think> reasoning from the content
    template: PromptTemplateSpec | None = None  # the prompt template (over the model's own)
    system_prompt: str | None = None  # put first when the conversation has no system message
    reasoning_effort: str | None = None  # off|low|medium|high|on: the template's reasoning switch
    # speculative decoding
    draft_model: str | None = None  # a downloaded model's key
    num_draft_tokens: int | None = None  # numDraftTokensExact
    min_draft_length: int | None = None  # minDraftLengthToConsider
    min_continue_probability: float | None = None  # minContinueDraftingProbability


@dataclass(frozen=True, slots=True)
class ResolvedParams:
    """A prediction's settings after precedence: what the prediction really uses."""

    sampling: SamplingParams
    max_tokens: int | None
    stop: tuple[str, ...]
    tool_call_stops: tuple[str, ...]
    overflow: ContextOverflowPolicy
    structured: str | None
    tools: Sequence[Mapping[str, Any]] | None
    tool_choice: ToolChoice
    reasoning_parsing: bool
    template: PromptTemplateSpec | None
    system_prompt: str | None
    draft_model: str | None
    num_draft_tokens: int | None
    min_draft_length: int
    min_continue_probability: float
    reasoning_effort: str | None = None  # None: the model's own default (its template, customFields)

    @property
    def stops(self) -> tuple[str, ...]:
        """Every string that ends the prediction (stop strings, then tool-call stop strings)."""
        return self.stop + tuple(s for s in self.tool_call_stops if s not in self.stop)


_DRAFT_DEFAULTS = {f.name: f.default for f in fields(DraftSpec)}  # LM Studio's speculative defaults


def resolve(
    request: PredictionParams,
    preset: PredictionParams | None,
    model: PredictionParams,
    server: Settings,
) -> ResolvedParams:
    """Each field from the first layer that sets it: request, preset, model, then the server's default.

    A model's default `tool_choice` applies only to requests with tools."""
    layers = (request, preset or PredictionParams(), model)

    def first(name: str) -> Any:
        return next((getattr(layer, name) for layer in layers if getattr(layer, name) is not None), None)

    base = SamplingParams()
    sampling = {name: first(name) for name in _SAMPLING}
    tools = first("tools")
    choice = first("tool_choice") if tools else request.tool_choice
    return ResolvedParams(
        sampling=SamplingParams(**{n: getattr(base, n) if v is None else v for n, v in sampling.items()}),
        max_tokens=first("max_tokens"),
        stop=first("stop") or (),
        tool_call_stops=first("tool_call_stops") or (),
        overflow=first("overflow") or server.context_overflow_policy,
        structured=first("structured"),
        tools=tools,
        tool_choice=choice,
        reasoning_parsing=_first(first("reasoning_parsing"), server.separate_reasoning_content),
        template=first("template"),
        system_prompt=first("system_prompt"),
        draft_model=first("draft_model") or None,
        num_draft_tokens=first("num_draft_tokens"),
        min_draft_length=_first(first("min_draft_length"), _DRAFT_DEFAULTS["min_draft_length"]),
        min_continue_probability=_first(
            first("min_continue_probability"), _DRAFT_DEFAULTS["min_continue_probability"]
        ),
        reasoning_effort=first("reasoning_effort"),
    )


def _first(value: Any, default: Any) -> Any:
    return default if value is None else value
