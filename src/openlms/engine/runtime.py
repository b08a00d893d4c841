"""The narrow interface between the instance manager and a model implementation.

`Backend.load()` turns a `ModelDescriptor` + `LoadConfig` into a `ModelRuntime`. The real backend is
llama.cpp (`engine/llama/`); `engine/fake.py` is a scripted stand-in for fast tests of everything above.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from openlms.core.errors import InvalidRequestError
from openlms.core.types import (
    DraftSpec,
    EmbeddingResult,
    EngineUsage,
    Fragment,
    GenerationEvent,
    GenerationRequest,
    LoadConfig,
    ModelDescriptor,
    ModelKind,
)
from openlms.engine.scheduler import EventChannel, EventStream, Worker

LoadProgress = Callable[[float], None]


class ModelRuntime(Protocol):
    """A loaded model. Methods other than `close` must be called from the event loop's thread."""

    @property
    def kind(self) -> ModelKind: ...

    @property
    def context_length(self) -> int: ...

    @property
    def load_config(self) -> LoadConfig:
        """The effective configuration (every field resolved to the value in use)."""
        ...

    @property
    def chat_template(self) -> str | None: ...

    @property
    def bos_token(self) -> str: ...

    @property
    def eos_token(self) -> str: ...

    @property
    def queued(self) -> int: ...

    @property
    def busy(self) -> bool: ...

    @property
    def usage(self) -> EngineUsage:
        """Predictions running and queued, and KV cache use (thread-safe, cheap: read by listings and
        /metrics)."""
        ...

    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = True) -> list[int]: ...

    def detokenize(self, tokens: Sequence[int]) -> str: ...

    def generate(self, request: GenerationRequest) -> EventStream[GenerationEvent]: ...

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult: ...

    def close(self) -> None:
        """Free the model (blocking: cancels running work, fails queued work, joins the thread)."""
        ...


class WorkerBacked:
    """The part of a runtime that reports its worker thread's load."""

    worker: Worker

    @property
    def queued(self) -> int:
        return self.worker.queued

    @property
    def busy(self) -> bool:
        return self.worker.busy

    @property
    def usage(self) -> EngineUsage:
        return EngineUsage(running=int(self.worker.busy), queued=self.worker.queued)


class Backend(Protocol):
    def load(
        self, descriptor: ModelDescriptor, config: LoadConfig, on_progress: LoadProgress
    ) -> ModelRuntime:
        """Load synchronously (the manager calls this in a worker thread)."""
        ...

    @property
    def name(self) -> str:
        """Runtime name, e.g. "llama.cpp-linux-x86_64-avx512"."""
        ...

    @property
    def version(self) -> str: ...


DEFAULT_PARALLEL = 4  # LM Studio 0.4's "Max Concurrent Predictions" default
FRAGMENT_INTERVAL_S = 0.025  # text reaches the event loop at most ~40 times a second while it streams fast


def _merge_fragments(a: GenerationEvent, b: GenerationEvent) -> GenerationEvent | None:
    if isinstance(a, Fragment) and isinstance(b, Fragment):
        return Fragment(
            a.text + b.text, a.token_count + b.token_count, a.contains_drafted or b.contains_drafted
        )
    return None


def generation_channel(loop: asyncio.AbstractEventLoop) -> EventChannel[GenerationEvent]:
    """The channel a runtime streams one generation through (fragments coalesced, see EventChannel)."""
    return EventChannel(
        loop, interval=FRAGMENT_INTERVAL_S, can_wait=lambda e: isinstance(e, Fragment), merge=_merge_fragments
    )


def validate_draft(spec: DraftSpec) -> None:
    """Refuse a draft model or settings no engine can use (InvalidRequestError, param draftModel), before
    anything is loaded. Every backend calls this from `generate()`."""
    if spec.descriptor.kind is not ModelKind.LLM:
        raise InvalidRequestError(
            f"The draft model '{spec.descriptor.key}' is an embedding model; a draft model must be an LLM "
            "with the same vocabulary as the main model.",
            param="draftModel",
        )
    if not spec.descriptor.loadable:
        raise InvalidRequestError(
            f"The draft model '{spec.descriptor.key}' cannot be loaded: {spec.descriptor.error}",
            param="draftModel",
        )
    if spec.num_draft_tokens is not None and spec.num_draft_tokens < 1:
        raise InvalidRequestError(
            f"numDraftTokensExact must be at least 1 (got {spec.num_draft_tokens}).", param="draftModel"
        )
    if spec.min_draft_length < 0:
        raise InvalidRequestError(
            f"minDraftLengthToConsider must not be negative (got {spec.min_draft_length}).",
            param="draftModel",
        )
    if not 0.0 <= spec.min_continue_probability <= 1.0:
        raise InvalidRequestError(
            f"minContinueDraftingProbability must be between 0 and 1 (got {spec.min_continue_probability}).",
            param="draftModel",
        )
