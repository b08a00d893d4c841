"""llama.cpp implementations of `ModelRuntime`: a chat/completion LLM and an embedding model."""

from __future__ import annotations

import asyncio
import math
import platform
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import llama_cpp

from openlms.core.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    OpenLMSError,
    WrongModelTypeError,
)
from openlms.core.offload import offloadable_layers
from openlms.core.types import (
    Done,
    DraftSpec,
    EmbeddingResult,
    EngineUsage,
    GenerationEvent,
    GenerationRequest,
    LoadConfig,
    ModelDescriptor,
    ModelKind,
)
from openlms.engine.llama.batching import BatchScheduler
from openlms.engine.llama.draft import Drafter
from openlms.engine.llama.generator import Emit, run_generation
from openlms.engine.llama.native import ContextParams, LlamaContext, LlamaModel, backend, default_threads
from openlms.engine.llama.prompt_cache import PromptCache
from openlms.engine.llama.speculative import SpeculativeGeneration
from openlms.engine.runtime import (
    DEFAULT_PARALLEL,
    LoadProgress,
    ModelRuntime,
    WorkerBacked,
    generation_channel,
    validate_draft,
)
from openlms.engine.scheduler import EventStream, Job, Worker

DEFAULT_CONTEXT = 4096
DEFAULT_BATCH = 512
EMBED_SEQ_MAX = 16
EMBED_BATCH_ALIGN = 64


class LlamaBackend:
    """Loads GGUF models with llama.cpp. `default_context_length` applies when a load does not set one;
    each LLM instance keeps up to `prompt_cache_mb` of other conversations' KV states (0: off)."""

    def __init__(
        self,
        *,
        default_context_length: int = DEFAULT_CONTEXT,
        n_threads: int | None = None,
        prompt_cache_mb: int = 0,
        max_queued: int = 32,
    ) -> None:
        self.default_context_length = default_context_length
        self.max_queued = max_queued  # predictions that may wait for a slot; more: ServerBusyError
        self.n_threads = n_threads or default_threads()
        self.prompt_cache_bytes = prompt_cache_mb * 1024 * 1024
        self._lib = backend()

    @property
    def name(self) -> str:
        simd = (
            "avx512"
            if "AVX512 = 1" in self._lib.system_info
            else "avx2"
            if "AVX2 = 1" in self._lib.system_info
            else "cpu"
        )
        gpu = f"{_gpu_backend(self._lib.system_info)}-" if self._lib.gpu_offload else ""
        return f"llama.cpp-{platform.system().lower()}-{platform.machine()}-{gpu}{simd}"

    @property
    def version(self) -> str:
        return str(llama_cpp.__version__)

    def load(
        self, descriptor: ModelDescriptor, config: LoadConfig, on_progress: LoadProgress
    ) -> ModelRuntime:
        threads = config.n_threads or self.n_threads

        def progress(fraction: float) -> bool:
            on_progress(fraction)
            return True

        model = LlamaModel(
            descriptor.path,
            config,
            architecture=descriptor.architecture,
            n_layers=offloadable_layers(descriptor.n_layers),  # llama.cpp's count: blocks + output
            on_progress=progress,
        )
        try:
            if descriptor.kind is ModelKind.EMBEDDING:
                return LlamaEmbeddingRuntime(model, config, threads)
            store_bytes = (
                0 if model.is_recurrent else self.prompt_cache_bytes
            )  # recurrent: cannot cut a state
            return LlamaLlmRuntime(
                model,
                config,
                threads,
                self.default_context_length,
                store=PromptCache(store_bytes) if store_bytes > 0 else None,
                max_queued=self.max_queued,
            )
        except BaseException:
            model.close()
            raise


class _RuntimeBase(WorkerBacked):
    """What both kinds share: the model, its worker thread, and the context the worker created."""

    kind: ModelKind
    worker: Any  # Worker, or the LLM's BatchScheduler (same call/close/queued/busy)

    def __init__(self, model: LlamaModel, worker: Any, params: ContextParams, config: LoadConfig) -> None:
        self.model = model
        self.worker = worker
        try:
            self.ctx: LlamaContext = self.worker.call(lambda: LlamaContext(model, params))
        except BaseException:
            self.worker.close()
            raise
        self._config = _effective(config, self.ctx.n_ctx, self.ctx.n_batch, params.n_threads)

    @property
    def context_length(self) -> int:
        return self.ctx.n_ctx

    @property
    def load_config(self) -> LoadConfig:
        return self._config

    def close(self) -> None:
        def free() -> None:
            self.ctx.close()
            self.model.close()

        self.worker.close(free)

    @property
    def chat_template(self) -> str | None:
        return self.model.chat_template

    @property
    def bos_token(self) -> str:
        return self.model.bos_text

    @property
    def eos_token(self) -> str:
        return self.model.eos_text

    def tokenize(self, text: str, *, add_special: bool = False, parse_special: bool = True) -> list[int]:
        return self.model.tokenize(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, tokens: Sequence[int]) -> str:
        return self.model.detokenize(tokens)


class LlamaLlmRuntime(_RuntimeBase):
    """An LLM whose predictions run `parallel` at a time in one step loop (`batching.py`)."""

    kind = ModelKind.LLM
    worker: BatchScheduler

    def __init__(
        self,
        model: LlamaModel,
        config: LoadConfig,
        threads: int,
        default_ctx: int,
        *,
        store: PromptCache | None = None,
        max_queued: int = 32,
    ) -> None:
        n_ctx = config.context_length or min(default_ctx, model.n_ctx_train or default_ctx)
        parallel = config.parallel or DEFAULT_PARALLEL
        params = ContextParams(
            n_ctx=n_ctx,
            n_batch=config.eval_batch_size or DEFAULT_BATCH,
            n_threads=threads,
            n_seq_max=parallel,
            kv_unified=True,  # every prediction may use the whole context
            flash_attention=config.flash_attention,
            k_cache_type=config.k_cache_type,
            v_cache_type=config.v_cache_type,
            rope_frequency_base=config.rope_frequency_base,
            rope_frequency_scale=config.rope_frequency_scale,
        )
        scheduler = BatchScheduler(
            "openlms-llm", n_slots=parallel, max_queued=max_queued, default_seed=config.seed
        )
        super().__init__(model, scheduler, params, config)
        scheduler.attach(self.ctx, store)
        self._threads = threads
        # loop thread only: the draft model in use (at most one), and drafts found incompatible
        self._drafter: Drafter | None = None
        self._refused: dict[tuple[Path, int], InvalidRequestError] = {}

    @property
    def usage(self) -> EngineUsage:
        return self.worker.usage()

    def generate(self, request: GenerationRequest) -> EventStream[GenerationEvent]:
        channel = generation_channel(asyncio.get_running_loop())
        if request.draft is None:
            job = self.worker.submit(request, channel.put)
        else:
            validate_draft(request.draft)
            job = Job(lambda job: self._speculate(request, channel.put, job), channel.put)
            self.worker.submit_job(job)
        return EventStream(channel, job, lambda ev: isinstance(ev, Done))

    def _speculate(self, request: GenerationRequest, emit: Emit, job: Job) -> None:
        """Speculative decoding, alone on sequence 0 (the loop runs it when no other prediction runs)."""
        assert request.draft is not None and self.worker.table is not None
        slot = self.worker.table.clear_for_exclusive()
        drafter = self._draft_model(request.draft)
        generation = SpeculativeGeneration(
            self.ctx, slot.cache, request, emit, job.cancelled, drafter, default_seed=self._config.seed
        )
        try:
            run_generation(generation)
        finally:
            slot.last_used = time.monotonic()

    def _draft_model(self, spec: DraftSpec) -> Drafter:
        """The loaded draft model for `spec` (worker thread): loaded on first use, kept until another draft
        model is asked for or this instance closes."""
        descriptor = spec.descriptor
        if self._drafter is not None and self._drafter.path == descriptor.path:
            return self._drafter
        refused = self._refused.get((descriptor.path, descriptor.size_bytes))
        if refused is not None:
            raise refused
        if self._drafter is not None:
            self._drafter.close()
            self._drafter = None
        try:
            self._drafter = Drafter.load(descriptor, self.model, self._config, self.ctx.n_ctx, self._threads)
        except InvalidRequestError as exc:
            self._refused[(descriptor.path, descriptor.size_bytes)] = exc
            raise
        return self._drafter

    def close(self) -> None:
        def free() -> None:
            if self._drafter is not None:
                self._drafter.close()
            self.ctx.close()
            self.model.close()

        self.worker.close(free)

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        raise WrongModelTypeError(
            "This model is an LLM, not an embedding model. Use an embedding model "
            "(e.g. text-embedding-all-minilm-l6-v2) for embeddings.",
            param="model",
        )


class LlamaEmbeddingRuntime(_RuntimeBase):
    kind = ModelKind.EMBEDDING

    def __init__(self, model: LlamaModel, config: LoadConfig, threads: int) -> None:
        n_ctx = min(config.context_length or model.n_ctx_train or 512, model.n_ctx_train or 512)
        # One input is one ubatch; llama.cpp's graph for a ubatch that is not a multiple of 64 tokens fails
        # an assert in ggml (the process aborts: a BERT model loaded with a context of 300 did).
        n_batch = -(-n_ctx // EMBED_BATCH_ALIGN) * EMBED_BATCH_ALIGN
        params = ContextParams(
            n_ctx=n_ctx, n_batch=n_batch, n_threads=threads, embeddings=True, n_seq_max=EMBED_SEQ_MAX
        )
        super().__init__(model, Worker("openlms-embedding"), params, config)
        # llama.cpp pads the context of each of the EMBED_SEQ_MAX sequences (to 256 tokens), so its n_ctx is
        # larger than what one input may hold: the model's trained length (and the batch) is the limit
        self._limit = min(n_ctx, self.ctx.n_batch)
        self._config = replace(self._config, context_length=self._limit)

    @property
    def context_length(self) -> int:
        return self._limit

    def generate(self, request: GenerationRequest) -> EventStream[GenerationEvent]:
        raise WrongModelTypeError(
            "This model is an embedding model; it cannot generate text. Use it with /v1/embeddings.",
            param="model",
        )

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        inputs = [self.model.tokenize(t, add_special=True, parse_special=False) for t in texts]
        for i, tokens in enumerate(inputs):
            if len(tokens) > self._limit:
                raise ContextLengthExceededError(len(tokens), self._limit, param=f"input[{i}]")
            if not tokens:
                raise InvalidRequestError(f"input[{i}] is empty.", param="input")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[list[float]]] = loop.create_future()

        def resolve(result: list[list[float]] | BaseException) -> None:
            if future.done():
                return
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

        def work(job: Job) -> None:
            vectors = self._embed_batches(inputs, job.cancelled)
            loop.call_soon_threadsafe(resolve, vectors)

        def fail(exc: OpenLMSError) -> None:
            loop.call_soon_threadsafe(resolve, exc)

        job = Job(work, fail)
        self.worker.submit(job)
        try:
            vectors = await future
        except asyncio.CancelledError:
            job.cancelled.cancel()
            raise
        return EmbeddingResult(vectors=vectors, prompt_tokens=sum(len(t) for t in inputs))

    def _embed_batches(self, inputs: list[list[int]], cancelled: threading.Event) -> list[list[float]]:
        vectors: list[list[float]] = []
        batch: list[list[int]] = []
        used = 0
        for tokens in inputs + [[]]:  # the empty sentinel flushes the last batch
            full = len(batch) == EMBED_SEQ_MAX or used + len(tokens) > self.ctx.n_batch
            if batch and (not tokens or full):
                if cancelled.is_set():
                    return vectors
                vectors.extend(self._embed_batch(batch))
                batch, used = [], 0
            if tokens:
                batch.append(tokens)
                used += len(tokens)
        return vectors

    def _embed_batch(self, batch: list[list[int]]) -> list[list[float]]:
        self.ctx.clear()
        self.ctx.encode_sequences(batch)
        return [_normalise(self.ctx.sequence_embedding(i)) for i in range(len(batch))]


def _gpu_backend(system_info: str) -> str:
    """The GPU backend llama.cpp lists first in its system info ("CUDA : ARCHS = 900 | ..."), for the
    runtime name as LM Studio's "...-nvidia-cuda-avx2"; "gpu" when none is named."""
    for name in ("CUDA", "Metal", "Vulkan", "ROCm", "SYCL"):
        if f"{name} :" in system_info:
            return name.lower()
    return "gpu"


def _normalise(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else vector


def _effective(config: LoadConfig, n_ctx: int, n_batch: int, threads: int) -> LoadConfig:
    from dataclasses import replace

    return replace(
        config,
        context_length=n_ctx,
        eval_batch_size=n_batch,
        gpu="off" if not backend().gpu_offload else (config.gpu if config.gpu is not None else "max"),
        flash_attention=bool(config.flash_attention),
        n_threads=threads,
        parallel=config.parallel or DEFAULT_PARALLEL,
    )
