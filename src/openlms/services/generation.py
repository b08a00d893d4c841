"""The prediction use cases: chat (prompt template, tools, structured output, reasoning), raw completion,
and embeddings.

A route turns its wire request into `PredictionParams` (+ `ChatOptions` for chat), calls `prepare_chat` or
`prepare_completion` (every error a request can cause is raised there, before anything is sent), then
`async with predictor.run(prepared) as prediction` and iterates `prediction.output()`: the model's text
parsed into content, reasoning and tool-call events, plus progress and the final `Done`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from openlms.core.errors import InvalidRequestError, ModelUnloadedError
from openlms.core.types import (
    ContextOverflowPolicy,
    Done,
    DraftSpec,
    EmbeddingResult,
    FirstToken,
    Fragment,
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    ModelKind,
    PromptProgress,
    SamplingParams,
    StopReason,
)
from openlms.engine.manager import Instance
from openlms.engine.scheduler import EventStream
from openlms.parsers.output import build_output_parser
from openlms.parsers.output.events import (
    OutputParser,
    ParsedEvent,
    ParsedMessage,
    ToolCallBegin,
    collect,
)
from openlms.parsers.output.reasoning import prompt_opens_reasoning
from openlms.parsers.output.registry import ToolFormat
from openlms.parsers.templates import PromptTemplateSpec
from openlms.services.logbus import LogBus, model_input_event, model_output_event, prediction_stats
from openlms.services.models import ModelService, PromptSetup
from openlms.services.overflow import Truncation, fit
from openlms.services.prompting import chat_prompt
from openlms.services.toolcalls import ToolChoice, ToolPlan, check_history_calls

log = logging.getLogger("openlms.server")

VALID_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})

OutputEvent = ParsedEvent | GenerationEvent
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DraftRequest:
    """Speculative decoding: a downloaded model's key (the engine loads it) and its settings."""

    model: str
    num_draft_tokens: int | None = None  # numDraftTokensExact
    min_draft_length: int | None = None  # minDraftLengthToConsider
    min_continue_probability: float | None = None  # minContinueDraftingProbability


@dataclass(frozen=True, slots=True)
class PredictionParams:
    sampling: SamplingParams = field(default_factory=SamplingParams)
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    ttl_seconds: float | None = None  # for a JIT load triggered by this request
    overflow: ContextOverflowPolicy | None = None  # None: the model's setting, else the server's
    grammar: str | None = None  # structured output (response_format) as GBNF
    draft: DraftRequest | None = None  # speculative decoding


@dataclass(frozen=True, slots=True)
class ChatOptions:
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: ToolChoice = None
    separate_reasoning: bool | None = None  # None: the model's setting, else the server's
    template: PromptTemplateSpec | None = None  # this request's prompt template (over the model's)


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """How the model's text is read back: tool format and names, reasoning separation."""

    tool_format: ToolFormat | None = None
    tool_names: Mapping[str, str] = field(default_factory=dict)  # model's name -> the caller's name
    tool_schemas: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)  # by model's name
    reasoning: bool = False
    starts_in_reasoning: bool = False
    reasoning_field: str = "reasoning_content"  # "reasoning" for gpt-oss (Harmony)

    def new_parser(self) -> OutputParser:
        return build_output_parser(
            self.tool_format,
            list(self.tool_names),
            reasoning=self.reasoning,
            starts_in_reasoning=self.starts_in_reasoning,
            tool_schemas=self.tool_schemas,
        )


@dataclass(frozen=True, slots=True)
class PreparedPrediction:
    """Everything checked before anything is sent: the instance, the exact prompt and its tokens."""

    instance: Instance
    prompt: str
    tokens: tuple[int, ...]
    params: PredictionParams
    stops: tuple[str, ...]
    output: OutputSpec = field(default_factory=OutputSpec)
    grammar: str | None = None
    grammar_trigger: str | None = None
    render_special: bool = False
    overflow: ContextOverflowPolicy = ContextOverflowPolicy.STOP_AT_LIMIT
    keep_tokens: int = 0
    truncation: Truncation | None = None
    draft: DraftSpec | None = None

    def request(self) -> GenerationRequest:
        return GenerationRequest(
            self.tokens,
            self.params.sampling,
            self.params.max_tokens,
            self.stops,
            grammar=self.grammar,
            grammar_trigger=self.grammar_trigger,
            render_special=self.render_special,
            overflow=self.overflow,
            keep_tokens=self.keep_tokens,
            draft=self.draft,
        )


@dataclass(slots=True)
class Prediction:
    """One running prediction: its instance, the exact prompt, and its event stream."""

    prepared: PreparedPrediction
    events: AsyncIterator[GenerationEvent]
    cancel: Callable[[], None] = lambda: None  # stop generating (the stream still ends with Done)
    text: list[str] = field(default_factory=list)  # the model's raw output so far
    tokens: int = 0  # tokens predicted so far (the parsed events yielded so far come from them)
    drafted: bool = False  # the last fragment holds tokens a draft model proposed
    stats: GenerationStats | None = None  # set when the prediction is done

    @property
    def instance(self) -> Instance:
        return self.prepared.instance

    @property
    def prompt(self) -> str:
        return self.prepared.prompt

    async def output(self) -> AsyncIterator[OutputEvent]:
        """Engine events with the text parsed: content, reasoning and tool-call events (tool names as
        the caller wrote them), progress events, then `Done`."""
        parser = self.prepared.output.new_parser()
        names = self.prepared.output.tool_names
        async for event in self.events:
            if isinstance(event, Fragment):
                self.text.append(event.text)
                self.tokens += event.token_count
                self.drafted = event.contains_drafted
                for parsed in parser.feed(event.text):
                    yield _caller_names(parsed, names)
            elif isinstance(event, Done):
                for parsed in parser.finish():
                    yield _caller_names(parsed, names)
                self.stats = event.stats
                yield event
            else:
                yield event

    async def collect(self) -> tuple[ParsedMessage, GenerationStats]:
        """Run to the end (non-streaming responses)."""
        parsed: list[ParsedEvent] = []
        async for event in self.output():
            if isinstance(event, Done):
                return collect(parsed), event.stats
            if not isinstance(event, PromptProgress | FirstToken | Fragment):
                parsed.append(event)
        raise InvalidRequestError("The prediction ended without a result.")  # pragma: no cover


def _caller_names(event: ParsedEvent, names: Mapping[str, str]) -> ParsedEvent:
    if isinstance(event, ToolCallBegin) and event.name in names:
        return ToolCallBegin(event.index, event.id, names[event.name])
    return event


class Predictor:
    """Prepare (resolve the model, JIT-load it, render and tokenize the prompt: every error a request can
    cause is raised here), then run (mark the instance busy and stream the events)."""

    def __init__(self, models: ModelService, bus: LogBus | None = None) -> None:
        self.models = models
        self.bus = bus

    async def prepare_chat(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: PredictionParams,
        options: ChatOptions | None = None,
    ) -> PreparedPrediction:
        options = options or ChatOptions()
        instance = await self._llm(model, params)
        setup = self.models.prompt_setup(instance.descriptor)
        if options.template is not None:
            setup = setup._replace(template=options.template)
        choice = (
            options.tool_choice if options.tool_choice is not None or not options.tools else setup.tool_choice
        )
        prompt = chat_prompt(instance.runtime, instance.descriptor, setup, options.tools, choice)
        grammar, trigger = _one_grammar(params.grammar, prompt.plan)
        policy = self._policy(params, setup)
        fitted = fit(
            _checked(messages),
            prompt.tokenize,
            n_ctx=instance.runtime.context_length,
            policy=policy,
            max_tokens=params.max_tokens,
        )
        text = prompt.text_of(fitted)
        # a grammar constrains the answer from its first token: nothing of it is reasoning
        opens_reasoning = prompt_opens_reasoning(text) and (grammar is None or trigger is not None)
        output = self._output_spec(prompt.plan, setup, options, opens_reasoning)
        if fitted.truncation:
            log.warning("prompt for %s truncated (%s)", instance.identifier, fitted.truncation.describe())
        return PreparedPrediction(
            instance,
            text,
            tuple(fitted.tokens),
            params,
            params.stop + tuple(s for s in prompt.extra_stops if s not in params.stop),
            output,
            grammar=grammar,
            grammar_trigger=trigger,
            render_special=output.tool_format is not None and output.tool_format.needs_special_tokens,
            overflow=policy,
            keep_tokens=fitted.keep_tokens,
            truncation=fitted.truncation,
            draft=await self._draft(params),
        )

    def _policy(self, params: PredictionParams, setup: PromptSetup) -> ContextOverflowPolicy:
        """The request's overflow policy, else the model's, else the server's."""
        return params.overflow or setup.overflow or self.models.settings.context_overflow_policy

    def _output_spec(
        self, plan: ToolPlan, setup: PromptSetup, options: ChatOptions, opens_reasoning: bool
    ) -> OutputSpec:
        separate = _first(
            options.separate_reasoning,
            setup.reasoning_parsing,
            self.models.settings.separate_reasoning_content,
        )
        harmony = plan.format.name == "harmony"  # its channels are always parsed, tools or not
        return OutputSpec(
            plan.format if (plan.active or harmony) else None,
            plan.names,
            {t["function"]["name"]: t["function"].get("parameters") for t in plan.tools or []},
            reasoning=bool(separate),
            starts_in_reasoning=opens_reasoning,
            reasoning_field="reasoning" if harmony else "reasoning_content",
        )

    async def prepare_completion(
        self, model: str, prompt: str, params: PredictionParams
    ) -> PreparedPrediction:
        """Raw completion: the prompt goes to the model as it is, no template."""
        instance = await self._llm(model, params)
        policy = self._policy(params, self.models.prompt_setup(instance.descriptor))
        tokens = instance.runtime.tokenize(prompt, add_special=True, parse_special=True)
        fitted = fit(
            [{"role": "user", "content": prompt}],
            lambda _messages, _gen: tokens,
            n_ctx=instance.runtime.context_length,
            policy=policy,
            max_tokens=params.max_tokens,
        )
        return PreparedPrediction(
            instance,
            prompt if fitted.truncation is None else instance.runtime.detokenize(fitted.tokens),
            tuple(fitted.tokens),
            params,
            params.stop,
            grammar=params.grammar,
            overflow=policy,
            keep_tokens=1,
            truncation=fitted.truncation,
            draft=await self._draft(params),
        )

    async def apply_template(
        self,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        options: ChatOptions | None = None,
    ) -> tuple[Instance, str, int]:
        """The exact prompt (and its token count) a chat request would send, without generating."""
        options = options or ChatOptions()
        instance = await self._llm(model, PredictionParams())
        setup = self.models.prompt_setup(instance.descriptor)
        if options.template is not None:
            setup = setup._replace(template=options.template)
        prompt = chat_prompt(instance.runtime, instance.descriptor, setup, options.tools, options.tool_choice)
        checked = _checked(messages)
        text = prompt.render(checked, add_generation_prompt=True)
        return instance, text, len(prompt.tokenize(checked, True))

    @asynccontextmanager
    async def run(self, prepared: PreparedPrediction) -> AsyncIterator[Prediction]:
        instance = prepared.instance
        async with self.models.manager.use(instance):
            self._publish_input(prepared)
            events = instance.runtime.generate(prepared.request())
            prediction = Prediction(prepared, _unload_checked(events), events.cancel)
            try:
                yield prediction
            finally:
                await events.aclose()
                self._publish_output(prediction)

    def _publish_input(self, prepared: PreparedPrediction) -> None:
        if self.bus is not None and self.bus.wants("model"):
            d = prepared.instance.descriptor
            self.bus.publish(
                "model", model_input_event(prepared.instance.identifier, d.rel_path, prepared.prompt)
            )

    def _publish_output(self, prediction: Prediction) -> None:
        if self.bus is None or not self.bus.wants("model"):
            return
        d = prediction.instance.descriptor
        stats = prediction.stats
        summary = None if stats is None else prediction_stats(stats)
        self.bus.publish(
            "model",
            model_output_event(prediction.instance.identifier, d.rel_path, "".join(prediction.text), summary),
        )

    async def embed(
        self, model: str, texts: Sequence[str], *, ttl_seconds: float | None = None
    ) -> tuple[Instance, EmbeddingResult]:
        instance = await self.models.for_inference(model, ModelKind.EMBEDDING, ttl_seconds=ttl_seconds)
        async with self.models.manager.use(instance):
            return instance, await instance.runtime.embed(texts)

    async def _draft(self, params: PredictionParams) -> DraftSpec | None:
        """The draft model's descriptor and settings (the engine loads it on first use)."""
        draft = params.draft
        if draft is None or not draft.model:  # settings without a draft model: speculative decoding is off
            return None
        descriptor = await self.models.find_downloaded(draft.model)
        spec = DraftSpec(descriptor)
        return replace(
            spec,
            num_draft_tokens=draft.num_draft_tokens,
            min_draft_length=_pick(draft.min_draft_length, spec.min_draft_length),
            min_continue_probability=_pick(draft.min_continue_probability, spec.min_continue_probability),
        )

    async def _llm(self, model: str, params: PredictionParams) -> Instance:
        return await self.models.for_inference(model, ModelKind.LLM, ttl_seconds=params.ttl_seconds)


def _pick(value: T | None, default: T) -> T:
    return default if value is None else value


def _first(*values: bool | None) -> bool | None:
    return next((v for v in values if v is not None), None)


def _one_grammar(structured: str | None, plan: ToolPlan) -> tuple[str | None, str | None]:
    """The grammar and its trigger: structured output, a required call, or a lazy one for calls the
    model starts on its own (structured output wins over that one: no call can start then)."""
    if structured and plan.grammar and plan.trigger is None:
        raise InvalidRequestError(
            "'response_format' and a required tool call cannot be combined: choose one.",
            param="response_format",
        )
    if structured:
        return structured, None
    return plan.grammar, plan.trigger


async def _unload_checked(events: EventStream[GenerationEvent]) -> AsyncIterator[GenerationEvent]:
    """The engine's events, but a prediction cut short by an unload is an error, not a silent stop."""
    async for event in events:
        if isinstance(event, Done) and event.stats.stop_reason is StopReason.MODEL_UNLOADED:
            raise ModelUnloadedError("The model was unloaded while generating; the answer is incomplete.")
        yield event


def _checked(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not messages:
        raise InvalidRequestError("'messages' must contain at least one message.", param="messages")
    checked = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in VALID_ROLES:
            raise InvalidRequestError(
                f"messages[{index}].role must be one of system, user, assistant, tool; got {role!r}.",
                param=f"messages[{index}].role",
            )
        check_history_calls(message, f"messages[{index}]")
        checked.append(dict(message))
    return checked
