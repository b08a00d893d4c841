"""The prediction use cases: chat (prompt template, tools, structured output, reasoning), raw completion,
and embeddings.

A route turns its wire request into a `ChatRequest` or `CompletionRequest` (a pure conversion: the
settings the client set, as `PredictionParams`), calls `prepare_chat` or `prepare_completion` (the settings
are resolved there, in `params.resolve`, and every error a request can cause is raised before anything is
sent), then `async with predictor.run(prepared) as prediction` and iterates `prediction.output()`: the
model's text parsed into content, reasoning and tool-call events, plus progress and the final `Done`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from openlms.core.errors import InvalidRequestError, ModelUnloadedError
from openlms.core.types import (
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
from openlms.parsers.sandbox import RenderLimits
from openlms.parsers.unicode import check_unicode
from openlms.services.logbus import LogBus, model_input_event, model_output_event, prediction_stats
from openlms.services.models import ModelRef, ModelService
from openlms.services.overflow import FittedPrompt, Truncation, fit
from openlms.services.params import PredictionParams, ResolvedParams, resolve
from openlms.services.prompting import ChatPrompt, chat_prompt
from openlms.services.request_limits import check_counts
from openlms.services.toolcalls import ToolPlan, check_history_calls

log = logging.getLogger("openlms.server")

VALID_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})

OutputEvent = ParsedEvent | GenerationEvent


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A chat prediction, as every surface asks for it: a model, the conversation, and the settings the
    client set (`params`: unset fields stay None; `resolve` fills them), optionally a config preset."""

    model: ModelRef
    messages: Sequence[Mapping[str, Any]]
    params: PredictionParams = field(default_factory=PredictionParams)
    preset: str | None = None  # a config preset's name (fuzzy, as LM Studio matches it)
    ttl_seconds: float | None = None  # for a JIT load triggered by this request


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """A raw completion: the prompt goes to the model as it is, no template."""

    model: ModelRef
    prompt: str
    params: PredictionParams = field(default_factory=PredictionParams)
    preset: str | None = None
    ttl_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """How the model's text is read back: tool format and names, reasoning separation."""

    tool_format: ToolFormat | None = None
    tool_names: Mapping[str, str] = field(default_factory=dict)  # model's name -> the caller's name
    tool_schemas: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)  # by model's name
    reasoning: bool = False
    starts_in_reasoning: bool = False
    # the format carries reasoning in its own channels (gpt-oss Harmony), not in <think> tags
    reasoning_in_channels: bool = False

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
    """Everything checked before anything is sent: the instance, the exact prompt, the engine request
    (its tokens and the resolved sampling, stops, grammar, overflow and draft) and the settings used."""

    instance: Instance
    prompt: str
    request: GenerationRequest
    settings: ResolvedParams
    output: OutputSpec = field(default_factory=OutputSpec)
    truncation: Truncation | None = None


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


PredictionObserver = Callable[[str, GenerationStats], None]  # (instance identifier, its stats)


class Predictor:
    """Prepare (resolve the model, JIT-load it, render and tokenize the prompt: every error a request can
    cause is raised here), then run (mark the instance busy and stream the events)."""

    def __init__(self, models: ModelService, bus: LogBus | None = None) -> None:
        self.models = models
        self.bus = bus
        self.observers: list[PredictionObserver] = []  # told of every finished prediction (metrics)

    async def prepare_chat(self, chat: ChatRequest) -> PreparedPrediction:
        check_counts(self.models.settings, chat.params, chat.messages)
        instance = await self._llm(chat.model, chat.ttl_seconds)
        settings, variables = self._resolve(instance, chat.params, chat.preset)
        # rendering, tokenizing, the overflow cut and grammars are CPU work: off the event loop
        built = await asyncio.to_thread(self._build_chat, instance, chat.messages, settings, variables)
        if built.fitted.truncation:
            log.warning(
                "prompt for %s truncated (%s)", instance.identifier, built.fitted.truncation.describe()
            )
        request = await self._request(
            settings,
            built.fitted.tokens,
            built.extra_stops,
            grammar=built.grammar,
            grammar_trigger=built.trigger,
            render_special=built.output.tool_format is not None
            and built.output.tool_format.needs_special_tokens,
            keep_tokens=built.fitted.keep_tokens,
        )
        return PreparedPrediction(
            instance, built.text, request, settings, built.output, built.fitted.truncation
        )

    def _build_chat(
        self,
        instance: Instance,
        messages: Sequence[Mapping[str, Any]],
        settings: ResolvedParams,
        variables: Mapping[str, Any],
    ) -> _BuiltChat:
        """The chat's prompt, fitted to the context, and how its output is read (in a worker thread)."""
        prompt = self._chat_prompt(instance, messages, settings, variables)
        grammar, trigger = _one_grammar(settings.structured, prompt.plan)
        fitted = fit(
            with_system_prompt(_checked(messages), settings.system_prompt),
            prompt.tokenize,
            n_ctx=instance.runtime.context_length,
            policy=settings.overflow,
            max_tokens=settings.max_tokens,
        )
        text = prompt.text_of(fitted)
        # a grammar constrains the answer from its first token: nothing of it is reasoning
        opens_reasoning = prompt_opens_reasoning(text) and (grammar is None or trigger is not None)
        output = _output_spec(prompt.plan, settings.reasoning_parsing, opens_reasoning)
        return _BuiltChat(text, fitted, prompt.extra_stops, grammar, trigger, output)

    def _chat_prompt(
        self,
        instance: Instance,
        messages: Sequence[Mapping[str, Any]],
        settings: ResolvedParams,
        variables: Mapping[str, Any],
    ) -> ChatPrompt:
        """The request's text checked, then the model's chat prompt for these settings."""
        check_request_text(messages, settings)
        return chat_prompt(instance.runtime, instance.descriptor, settings, variables, self.limits)

    @property
    def limits(self) -> RenderLimits:
        server = self.models.settings
        return RenderLimits(server.template_timeout_s, server.template_max_chars)

    async def prepare_completion(self, completion: CompletionRequest) -> PreparedPrediction:
        """Raw completion: the prompt goes to the model as it is, no template."""
        check_counts(self.models.settings, completion.params)
        instance = await self._llm(completion.model, completion.ttl_seconds)
        settings, _ = self._resolve(instance, completion.params, completion.preset)
        check_unicode(completion.prompt, "prompt")
        prompt = (settings.system_prompt or "") + completion.prompt
        runtime = instance.runtime
        tokens = await asyncio.to_thread(runtime.tokenize, prompt, add_special=True, parse_special=True)
        fitted = fit(
            [{"role": "user", "content": prompt}],
            lambda _messages, _gen: tokens,
            n_ctx=runtime.context_length,
            policy=settings.overflow,
            max_tokens=settings.max_tokens,
        )
        request = await self._request(settings, fitted.tokens, grammar=settings.structured, keep_tokens=1)
        text = prompt if fitted.truncation is None else runtime.detokenize(fitted.tokens)
        return PreparedPrediction(instance, text, request, settings, truncation=fitted.truncation)

    async def _request(
        self,
        settings: ResolvedParams,
        tokens: Sequence[int],
        template_stops: Sequence[str] = (),
        **options: Any,
    ) -> GenerationRequest:
        """The engine's request: the prompt's tokens with the resolved sampling, limits, stops (the
        settings' and then the template's own), overflow policy and draft model, plus `options`."""
        stops = settings.stops + tuple(s for s in template_stops if s not in settings.stops)
        return GenerationRequest(
            tuple(tokens),
            settings.sampling,
            settings.max_tokens,
            stops,
            overflow=settings.overflow,
            draft=await self._draft(settings),
            **options,
        )

    def _resolve(
        self, instance: Instance, params: PredictionParams, preset: str | None
    ) -> tuple[ResolvedParams, Mapping[str, Any]]:
        """The prediction's settings (request > preset > the model's own > the server's) and the
        model's template variables."""
        setup = self.models.model_setup(instance.descriptor)
        preset_params = self.models.preset_params(preset) if preset else None
        return resolve(params, preset_params, setup.params, self.models.settings), setup.variables

    async def apply_template(
        self,
        model: ModelRef,
        messages: Sequence[Mapping[str, Any]],
        params: PredictionParams | None = None,
        *,
        omit_bos: bool = False,
        omit_eos: bool = False,
    ) -> TemplateResult:
        """The exact prompt (and its token count) a chat request would send, without generating."""
        check_counts(self.models.settings, params or PredictionParams(), messages)
        instance = await self._llm(model, None)
        settings, variables = self._resolve(instance, params or PredictionParams(), None)
        text, tokens = await asyncio.to_thread(self._render_template, instance, messages, settings, variables)
        bos, eos = instance.runtime.bos_token, instance.runtime.eos_token
        if omit_bos and bos and text.startswith(bos):
            text = text[len(bos) :]
        if omit_eos and eos and text.endswith(eos):
            text = text[: -len(eos)]
        return TemplateResult(instance, text, tokens)

    def _render_template(
        self,
        instance: Instance,
        messages: Sequence[Mapping[str, Any]],
        settings: ResolvedParams,
        variables: Mapping[str, Any],
    ) -> tuple[str, int]:
        """The prompt text and its token count (in a worker thread)."""
        prompt = self._chat_prompt(instance, messages, settings, variables)
        checked = _checked(messages)
        text = prompt.render(checked, add_generation_prompt=True)
        return text, len(prompt.tokenize(checked, True))

    @asynccontextmanager
    async def run(self, prepared: PreparedPrediction) -> AsyncIterator[Prediction]:
        instance = prepared.instance
        async with self.models.manager.use(instance):
            events = instance.runtime.generate(prepared.request)  # a full queue raises ServerBusyError here
            self._publish_input(prepared)  # only predictions that start are logged
            prediction = Prediction(prepared, _unload_checked(events), events.cancel)
            try:
                yield prediction
            finally:
                await events.aclose()
                self._publish_output(prediction)
                self._observe(prediction)

    def _observe(self, prediction: Prediction) -> None:
        if prediction.stats is not None:
            for observer in self.observers:
                observer(prediction.instance.identifier, prediction.stats)

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
        self, model: ModelRef, texts: Sequence[str], *, ttl_seconds: float | None = None
    ) -> tuple[Instance, EmbeddingResult]:
        instance = await self.models.for_inference(model, ModelKind.EMBEDDING, ttl_seconds=ttl_seconds)
        check_unicode(list(texts), "input")
        async with self.models.manager.use(instance):
            return instance, await instance.runtime.embed(texts)

    async def _draft(self, settings: ResolvedParams) -> DraftSpec | None:
        """The draft model's descriptor and settings (the engine loads it on first use)."""
        if settings.draft_model is None:  # settings without a draft model: speculative decoding is off
            return None
        return DraftSpec(
            await self.models.find_downloaded(settings.draft_model),
            num_draft_tokens=settings.num_draft_tokens,
            min_draft_length=settings.min_draft_length,
            min_continue_probability=settings.min_continue_probability,
        )

    async def _llm(self, model: ModelRef, ttl_seconds: float | None) -> Instance:
        return await self.models.for_inference(model, ModelKind.LLM, ttl_seconds=ttl_seconds)


class _BuiltChat(NamedTuple):
    text: str
    fitted: FittedPrompt
    extra_stops: tuple[str, ...]
    grammar: str | None
    trigger: str | None
    output: OutputSpec


class TemplateResult(NamedTuple):
    instance: Instance
    prompt: str
    prompt_tokens: int


def _output_spec(plan: ToolPlan, reasoning: bool, opens_reasoning: bool) -> OutputSpec:
    parsed = plan.active or plan.format.always_parsed  # e.g. harmony's channels, tools or not
    return OutputSpec(
        plan.format if parsed else None,
        plan.names,
        {t["function"]["name"]: t["function"].get("parameters") for t in plan.tools or []},
        reasoning=reasoning,
        starts_in_reasoning=opens_reasoning,
        reasoning_in_channels=plan.format.parses_reasoning,
    )


def check_request_text(messages: Sequence[Mapping[str, Any]], settings: ResolvedParams) -> None:
    """A 400 naming the field for a lone UTF-16 surrogate in what goes into the prompt or the grammar."""
    check_unicode(list(messages), "messages")
    check_unicode(settings.tools, "tools")
    check_unicode(settings.tool_choice, "tool_choice")
    check_unicode(settings.stops, "stop")
    check_unicode(settings.system_prompt, "system_prompt")


def with_system_prompt(messages: list[dict[str, Any]], prompt: str | None) -> list[dict[str, Any]]:
    """A preset's system prompt goes first, unless the conversation has its own."""
    if not prompt or any(m.get("role") == "system" for m in messages):
        return messages
    return [{"role": "system", "content": prompt}, *messages]


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
