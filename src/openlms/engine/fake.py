"""A scripted stand-in for llama.cpp, for fast tests of the manager, services and routes.

Tokens are whitespace-separated words (plus one token per special marker); the "model" answers with a
fixed reply or echoes the last line of the prompt. It honours max_tokens, stop strings, cancellation and
the context overflow policy (counting context-shift tokens), and emits the same events as the real
engine. Grammars and `render_special` are accepted and ignored. With `request.draft` it reports
speculative decoding deterministically (see `FakeDraft`); keys in `incompatible_drafts` fail the way
a draft with another vocabulary fails on llama.cpp.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from openlms.core.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ModelLoadError,
    WrongModelTypeError,
)
from openlms.core.types import (
    ContextOverflowPolicy,
    Done,
    DraftSpec,
    EmbeddingResult,
    EngineUsage,
    FirstToken,
    Fragment,
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    LoadConfig,
    ModelDescriptor,
    ModelKind,
    PromptProgress,
    StopReason,
)
from openlms.engine.runtime import (
    DEFAULT_PARALLEL,
    LoadProgress,
    ModelRuntime,
    WorkerBacked,
    generation_channel,
    validate_draft,
)
from openlms.engine.scheduler import Cancellation, EventStream, Job, Worker
from openlms.engine.textstream import StopMatcher

_TOKEN = re.compile(r"<\|[^|]+\|>|\S+\s*|\s+")


@dataclass
class FakeBackend:
    """`reply(prompt) -> text` decides the answer; `token_delay` slows generation for cancel tests;
    `requests` records every generation request its runtimes received, in order (grammar included);
    draft models whose key is in `incompatible_drafts` are refused as llama.cpp refuses another
    vocabulary."""

    reply: Callable[[str], str] = lambda prompt: "Hello from the fake model."
    token_delay: float = 0.0
    load_delay: float = 0.0
    context_length: int = 2048
    fail_load: bool = False
    name: str = "fake"
    version: str = "0"
    requests: list[GenerationRequest] = field(default_factory=list)
    incompatible_drafts: tuple[str, ...] = ()

    def load(
        self, descriptor: ModelDescriptor, config: LoadConfig, on_progress: LoadProgress
    ) -> ModelRuntime:
        for step in range(1, 5):
            time.sleep(self.load_delay / 4)
            on_progress(step / 4)
        if self.fail_load or descriptor.error:
            raise ModelLoadError(f"fake backend refused to load {descriptor.key}")
        trained = descriptor.max_context_length or self.context_length
        n_ctx = config.context_length or min(self.context_length, trained)  # as llama.cpp's runtimes
        return FakeRuntime(
            descriptor.kind,
            replace(
                config,
                context_length=n_ctx,
                eval_batch_size=512,
                parallel=config.parallel or DEFAULT_PARALLEL,
            ),
            self,
        )


class FakeRuntime(WorkerBacked):
    chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    bos_token = "<s>"
    eos_token = "<|im_end|>"

    def __init__(self, kind: ModelKind, config: LoadConfig, backend: FakeBackend) -> None:
        self.kind = kind
        self._config = config
        self._backend = backend
        self.worker = Worker("openlms-fake")
        self.closed = threading.Event()

    @property
    def usage(self) -> EngineUsage:
        """One prediction at a time (no batching), reported with the load config's parallel setting."""
        return EngineUsage(
            running=int(self.worker.busy), queued=self.worker.queued, parallel=self._config.parallel or 1
        )

    @property
    def context_length(self) -> int:
        return self._config.context_length or 2048

    @property
    def load_config(self) -> LoadConfig:
        return self._config

    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = True) -> list[int]:
        return [hash(piece) & 0xFFFF for piece in _TOKEN.findall(text)]

    def detokenize(self, tokens: Sequence[int]) -> str:
        return " ".join(str(t) for t in tokens)

    def generate(self, request: GenerationRequest) -> EventStream[GenerationEvent]:
        if self.kind is not ModelKind.LLM:
            raise WrongModelTypeError(
                "This model is an embedding model; it cannot generate text.", param="model"
            )
        if request.draft is not None:
            validate_draft(request.draft)
        self._backend.requests.append(request)
        channel = generation_channel(asyncio.get_running_loop())
        job = Job(lambda j: self._run(request, channel.put, j.cancelled), channel.put)
        self.worker.submit(job)
        return EventStream(channel, job, lambda ev: isinstance(ev, Done))

    def _run(
        self, request: GenerationRequest, emit: Callable[[GenerationEvent], None], cancelled: Cancellation
    ) -> None:
        started = time.perf_counter()
        draft = None if request.draft is None else FakeDraft(request.draft, self._backend.incompatible_drafts)
        prompt = request.prompt if isinstance(request.prompt, str) else " ".join(map(str, request.prompt))
        n_prompt = len(self.tokenize(prompt))
        if n_prompt >= self.context_length:
            raise ContextLengthExceededError(n_prompt, self.context_length)
        emit(PromptProgress(1.0))
        pieces = _TOKEN.findall(self._backend.reply(prompt))
        stops = StopMatcher(request.stop)
        reason, stop_string, predicted, shifted = StopReason.EOS, None, 0, 0
        first = time.perf_counter()
        emit(FirstToken(first - started))
        for piece in pieces:
            if cancelled.is_set():
                reason = cancelled.reason
                break
            time.sleep(self._backend.token_delay)
            predicted += 1
            drafted = draft is not None and draft.next_token()
            match = stops.push(piece)
            if match.emit:
                emit(Fragment(match.emit, 1, drafted))
            if match.stop is not None:
                reason, stop_string = StopReason.STOP_STRING, match.stop
                break
            if request.max_tokens is not None and predicted >= request.max_tokens:
                reason = StopReason.MAX_TOKENS
                break
            if n_prompt + predicted - shifted >= self.context_length:
                if request.overflow is ContextOverflowPolicy.STOP_AT_LIMIT:
                    reason = StopReason.CONTEXT_LENGTH
                    break
                shifted += _shift(request, n_prompt + predicted - shifted)
        if reason is not StopReason.STOP_STRING and (tail := stops.flush()):
            emit(Fragment(tail, 0))
        now = time.perf_counter()
        stats = GenerationStats(
            reason,
            n_prompt,
            predicted,
            first - started,
            now - first,
            first - started,
            0,
            stop_string,
            context_shift_tokens=shifted,
        )
        emit(Done(stats if draft is None else draft.stats(stats)))

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        if self.kind is not ModelKind.EMBEDDING:
            raise WrongModelTypeError("This model is an LLM, not an embedding model.", param="model")
        vectors = []
        for text in texts:
            raw = [float((hash(text) >> i) & 0xFF) + 1.0 for i in range(0, 32, 4)]
            norm = sum(x * x for x in raw) ** 0.5
            vectors.append([x / norm for x in raw])
        return EmbeddingResult(vectors, sum(len(self.tokenize(t)) for t in texts))

    def close(self) -> None:
        self.worker.close()
        self.closed.set()


class FakeDraft:
    """Deterministic speculative-decoding counts. The first token is the target's own; after it, each step
    drafts k tokens (`num_draft_tokens`, else 4) and accepts all but the last, which is rejected (the
    target's own token is output in its place). Drafts shorter than `min_draft_length` are ignored (one
    target token per step). What a step drafted beyond the end of the output counts as ignored."""

    def __init__(self, spec: DraftSpec, incompatible: Sequence[str]) -> None:
        if spec.descriptor.key in incompatible:
            raise InvalidRequestError(
                f"The draft model '{spec.descriptor.key}' cannot draft for this model: its vocabulary "
                "differs. A draft model must have the same vocabulary as the main model.",
                param="draftModel",
            )
        self.key = spec.descriptor.key
        self.k = spec.num_draft_tokens or 4
        self.verified = self.k >= spec.min_draft_length
        self.first = True
        self.open = 0  # draft tokens of the current step not yet accepted or rejected
        self.drafted = self.accepted = self.rejected = self.ignored = 0

    def next_token(self) -> bool:
        """Account for one output token; True when it is an accepted draft token."""
        if self.first:
            self.first = False
            return False
        if self.open == 0:
            self.drafted += self.k
            if not self.verified:
                self.ignored += self.k
                return False
            self.open = self.k
        if self.open > 1:
            self.open -= 1
            self.accepted += 1
            return True
        self.open = 0
        self.rejected += 1
        return False

    def stats(self, stats: GenerationStats) -> GenerationStats:
        self.ignored += self.open
        self.open = 0
        return replace(
            stats,
            draft_model_key=self.key,
            draft_tokens=self.drafted,
            accepted_draft_tokens=self.accepted,
            rejected_draft_tokens=self.rejected,
            ignored_draft_tokens=self.ignored,
        )


def _shift(request: GenerationRequest, n_past: int) -> int:
    """Tokens a context shift drops, as the real engine counts them (half of those after the kept ones)."""
    keep = 1 if request.overflow is ContextOverflowPolicy.ROLLING_WINDOW else max(1, request.keep_tokens)
    return max(1, (n_past - min(keep, n_past - 2)) // 2)
