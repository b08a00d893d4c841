"""The prediction use cases: chat (prompt template applied), raw completion, and embeddings.

A route turns its wire request into `PredictionParams` + messages or a prompt, opens a prediction with
`async with predictor.chat(...) as prediction`, and iterates `prediction.events`. The context manager
keeps the instance marked busy (so its TTL never fires mid-request) and stops generation when the client
goes away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from openlms.core.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ModelUnloadedError,
)
from openlms.core.types import (
    Done,
    EmbeddingResult,
    Fragment,
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    ModelKind,
    SamplingParams,
    StopReason,
)
from openlms.engine.manager import Instance
from openlms.engine.scheduler import EventStream
from openlms.parsers.templates import resolve_template
from openlms.services.models import ModelService

VALID_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})


@dataclass(frozen=True, slots=True)
class PredictionParams:
    sampling: SamplingParams = field(default_factory=SamplingParams)
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    ttl_seconds: float | None = None  # for a JIT load triggered by this request


@dataclass(slots=True)
class Prediction:
    """One running prediction: its instance, the exact prompt, and its event stream."""

    instance: Instance
    prompt: str
    prompt_tokens: int
    events: AsyncIterator[GenerationEvent]

    async def collect(self) -> tuple[str, GenerationStats]:
        """Run to the end (non-streaming responses)."""
        parts: list[str] = []
        async for event in self.events:
            if isinstance(event, Fragment):
                parts.append(event.text)
            elif isinstance(event, Done):
                return "".join(parts), event.stats
        raise InvalidRequestError("The prediction ended without a result.")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class PreparedPrediction:
    """Everything checked before anything is sent: the instance, the exact prompt and its tokens."""

    instance: Instance
    prompt: str
    tokens: tuple[int, ...]
    params: PredictionParams
    stops: tuple[str, ...]


class Predictor:
    """Prepare (resolve the model, JIT-load it, render and tokenize the prompt: every error a request can
    cause is raised here), then run (mark the instance busy and stream the events)."""

    def __init__(self, models: ModelService) -> None:
        self.models = models

    async def prepare_chat(
        self, model: str, messages: Sequence[Mapping[str, Any]], params: PredictionParams
    ) -> PreparedPrediction:
        instance = await self._llm(model, params)
        runtime = instance.runtime
        template = resolve_template(
            runtime.chat_template,
            instance.descriptor.architecture,
            bos_token=runtime.bos_token,
            eos_token=runtime.eos_token,
        )
        prompt = template.render(_checked(messages), add_generation_prompt=True)
        has_bos = bool(runtime.bos_token) and prompt.startswith(runtime.bos_token)
        tokens = runtime.tokenize(prompt, add_special=not has_bos, parse_special=True)
        stops = params.stop + tuple(s for s in template.extra_stops if s not in params.stop)
        return self._checked_length(instance, prompt, tokens, params, stops)

    async def prepare_completion(
        self, model: str, prompt: str, params: PredictionParams
    ) -> PreparedPrediction:
        """Raw completion: the prompt goes to the model as it is, no template."""
        instance = await self._llm(model, params)
        tokens = instance.runtime.tokenize(prompt, add_special=True, parse_special=True)
        return self._checked_length(instance, prompt, tokens, params, params.stop)

    @asynccontextmanager
    async def run(self, prepared: PreparedPrediction) -> AsyncIterator[Prediction]:
        instance = prepared.instance
        async with self.models.manager.use(instance):
            request = GenerationRequest(
                prepared.tokens, prepared.params.sampling, prepared.params.max_tokens, prepared.stops
            )
            events = instance.runtime.generate(request)
            try:
                yield Prediction(instance, prepared.prompt, len(prepared.tokens), _unload_checked(events))
            finally:
                await events.aclose()

    async def embed(
        self, model: str, texts: Sequence[str], *, ttl_seconds: float | None = None
    ) -> tuple[Instance, EmbeddingResult]:
        instance = await self.models.for_inference(model, ModelKind.EMBEDDING, ttl_seconds=ttl_seconds)
        async with self.models.manager.use(instance):
            return instance, await instance.runtime.embed(texts)

    async def _llm(self, model: str, params: PredictionParams) -> Instance:
        return await self.models.for_inference(model, ModelKind.LLM, ttl_seconds=params.ttl_seconds)

    @staticmethod
    def _checked_length(
        instance: Instance, prompt: str, tokens: list[int], params: PredictionParams, stops: tuple[str, ...]
    ) -> PreparedPrediction:
        n_ctx = instance.runtime.context_length
        if len(tokens) >= n_ctx:
            raise ContextLengthExceededError(len(tokens), n_ctx)
        return PreparedPrediction(instance, prompt, tuple(tokens), params, stops)


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
        checked.append(dict(message))
    return checked
