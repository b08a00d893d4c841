"""Continuous batching: all the predictions of one loaded LLM share one `llama_decode` per step.

One thread per instance repeats: admit waiting requests into idle slots (`slots.py`: a slot is a llama
sequence whose KV stays for prefix reuse), build one batch with the next token of every decoding
prediction plus prompt chunks of the ones still reading their prompt (at most `PREFILL_SHARE` prompt tokens
per step while others decode, so that a long prompt never freezes their streams), decode, sample each
prediction with its own sampler chain, emit events, finish the ones that stopped. A request waits only
for a free slot; past `max_queued` waiting ones, `submit` refuses with ServerBusyError.

The KV cache is unified: any prediction may grow to the whole loaded context (nothing is divided by the
slot count). When llama.cpp finds no room for a step: idle slots give up their cells (least recently used
first, saved to the host-RAM prompt cache when on); then prompt chunks wait for a later step; and if the
running predictions alone overflow the cache, the one admitted last ends with ServerBusyError saying the
context is full. A prediction reaching the end of the positions shifts its own context (overflow policy).

Exclusive work (set-up, tear-down, speculative decoding, which verifies drafts on sequence 0 alone) waits
for the running predictions to finish, and later requests wait behind it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from openlms.core.errors import (
    ContextLengthExceededError,
    InvalidRequestError,
    ModelUnloadedError,
    OpenLMSError,
    ServerBusyError,
)
from openlms.core.types import (
    Done,
    EngineUsage,
    GenerationRequest,
    GenerationStats,
    StopReason,
)
from openlms.engine.llama.generator import TokenOutput, prompt_tokens, request_sampler
from openlms.engine.llama.native import LlamaContext, LlamaModel, evaluation_failed
from openlms.engine.llama.prediction import Prediction, Sink
from openlms.engine.llama.prompt_cache import PromptCache
from openlms.engine.llama.slots import SlotTable
from openlms.engine.scheduler import Job, call_on

log = logging.getLogger("openlms.engine")

T = TypeVar("T")
PREFILL_SHARE = 256  # prompt tokens per step while other predictions are decoding
NO_ROOM = 1  # llama_decode: no KV cells for the batch (nothing was evaluated)


class Pending:
    """A request waiting for a slot."""

    __slots__ = ("request", "emit", "job", "started")

    def __init__(self, request: GenerationRequest, emit: Sink, job: Job) -> None:
        self.request, self.emit, self.job = request, emit, job
        self.started = time.perf_counter()  # time to first token counts the wait


class BatchScheduler:
    """The step loop of one LLM instance. `submit`/`call`/`close` are thread-safe; the rest runs on the
    loop's own thread. `attach` gives it the context once `call` has created it there."""

    def __init__(self, name: str, *, n_slots: int, max_queued: int, default_seed: int | None) -> None:
        self.n_slots, self.max_queued, self.default_seed = n_slots, max_queued, default_seed
        self._cond = threading.Condition()
        self._waiting: collections.deque[Pending | Job] = collections.deque()
        self._active: list[Prediction] = []
        self._closed = False
        self._finalizer: Callable[[], None] | None = None
        self._exclusive: Job | None = None
        self.table: SlotTable | None = None
        self.model: LlamaModel | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def attach(self, ctx: LlamaContext, store: PromptCache | None) -> None:
        self.model = ctx.model
        self.table = SlotTable(ctx, self.n_slots, store, can_share=not ctx.model.is_recurrent)

    # -- any thread --------------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._waiting)

    @property
    def busy(self) -> bool:
        return bool(self._active) or self._exclusive is not None

    def usage(self) -> EngineUsage:
        table = self.table
        return EngineUsage(
            running=len(self._active) + (self._exclusive is not None),
            queued=len(self._waiting),
            parallel=self.n_slots,
            kv_used=table.used_cells if table else 0,
            kv_size=table.ctx.n_ctx if table else 0,
        )

    def submit(self, request: GenerationRequest, emit: Sink) -> Job:
        """Queue a prediction; its events go to `emit`. The returned job's `cancelled` stops it."""
        job = Job(_no_work, emit)
        with self._cond:
            if self._closed:
                raise ModelUnloadedError("The model is being unloaded.")
            if len(self._waiting) + len(self._active) >= self.n_slots + self.max_queued:
                raise ServerBusyError(
                    f"The model is busy: {len(self._active)} predictions are running (its parallel "
                    f"setting is {self.n_slots}) and {len(self._waiting)} are waiting, the most allowed "
                    "(max_queued_predictions). Retry shortly, or load the model with more parallel "
                    "predictions (lms load --parallel).",
                    retry_after_s=max(1, len(self._waiting) // max(1, self.n_slots)),
                )
            self._waiting.append(Pending(request, emit, job))
            self._cond.notify()
        return job

    def submit_job(self, job: Job) -> None:
        """Queue exclusive work (it runs when no prediction is running)."""
        with self._cond:
            if self._closed:
                raise ModelUnloadedError("The model is being unloaded.")
            self._waiting.append(job)
            self._cond.notify()

    def call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the loop's thread alone and wait for it (set-up and tear-down)."""
        return call_on(self.submit_job, fn)

    def close(self, finalizer: Callable[[], None] | None = None) -> None:
        """Stop: running predictions end (stop reason modelUnloaded), waiting ones fail, `finalizer` runs
        on the loop's thread, which then ends."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._finalizer = finalizer
            for prediction in self._active:
                prediction.cancelled.cancel(StopReason.MODEL_UNLOADED)
            if self._exclusive is not None:
                self._exclusive.cancelled.cancel(StopReason.MODEL_UNLOADED)
            self._cond.notify()
        self._thread.join()

    # -- the loop's thread -------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._waiting and not self._active:
                    self._cond.wait()
                if self._closed:
                    break
                head = self._waiting[0] if self._waiting else None
                exclusive = head if isinstance(head, Job) and not self._active else None
                if exclusive is not None:
                    self._waiting.popleft()
                    self._exclusive = exclusive
            if exclusive is not None:
                try:
                    exclusive.run()
                finally:
                    self._exclusive = None
                continue
            self._admit()
            if self._active:
                self._step()
        self._shutdown()

    def _admit(self) -> None:
        table = self.table
        while table is not None and table.has_free():
            with self._cond:
                head = self._waiting[0] if self._waiting else None
                if not isinstance(head, Pending):
                    return
                self._waiting.popleft()
            if head.job.cancelled.is_set():  # the client left while it waited
                head.emit(_not_started(head.job.cancelled.reason))
                continue
            try:
                self._start(head, table)
            except OpenLMSError as exc:
                head.emit(exc)
            except Exception as exc:  # a bug or a llama.cpp failure: this request fails, the loop goes on
                log.exception("starting a prediction failed")
                head.emit(evaluation_failed(f"the prompt ({exc})", -3))

    def _start(self, pending: Pending, table: SlotTable) -> None:
        request, model = pending.request, self.model
        assert model is not None
        tokens = prompt_tokens(request, model)
        if not tokens:
            raise InvalidRequestError("The prompt is empty.", param="prompt")
        if len(tokens) >= table.ctx.n_ctx:
            raise ContextLengthExceededError(len(tokens), table.ctx.n_ctx)
        sampler = request_sampler(request, model, self.default_seed)
        slot, reused = table.place(tokens)
        slot.busy = True
        out = TokenOutput(request, model, pending.emit, sampler, pending.started)
        self._active.append(
            Prediction(
                slot,
                request,
                tokens,
                reused,
                sampler,
                out,
                pending.job.cancelled,
                pending.started,
                pending.emit,
            )
        )

    def _step(self) -> None:
        """One llama_decode for every running prediction."""
        table = self.table
        assert table is not None
        ctx = table.ctx
        for prediction in [p for p in self._active if p.cancelled.is_set()]:
            self._finish(prediction)
        n_decode = self._fill_decode(ctx)
        n = self._fill_prompts(ctx, n_decode)
        if n == 0:
            return
        rc = ctx.decode_batch(n)
        while rc == NO_ROOM:
            if table.evict_one():
                rc = ctx.decode_batch(n)
            elif n > n_decode and n_decode > 0:  # prompts wait for a later step
                for p in self._active:
                    p.chunk = 0
                n = n_decode
                rc = ctx.decode_batch(n)
            else:
                self._context_full()
                return
        if rc != 0:
            self._fail_all(evaluation_failed(f"a batch of {n} tokens", rc))
            return
        self._take_results(ctx)

    def _fill_decode(self, ctx: LlamaContext) -> int:
        batch, n_ctx, n = ctx.batch, ctx.n_ctx, 0
        for p in self._active:
            p.idx = -1
            p.chunk = 0
            if p.prefilling:
                continue
            if p.pos + 1 >= n_ctx and not p.shift(ctx):
                p.out.reason = StopReason.CONTEXT_LENGTH
                continue
            batch.token[n] = p.next_token
            batch.pos[n] = p.pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = p.seq_id
            batch.logits[n] = 1
            p.idx = n
            n += 1
        for p in [p for p in self._active if p.out.reason is StopReason.CONTEXT_LENGTH]:
            self._finish(p)
        return n

    def _fill_prompts(self, ctx: LlamaContext, n: int) -> int:
        batch = ctx.batch
        budget = ctx.n_batch - n
        if n > 0:
            budget = min(budget, PREFILL_SHARE)
        for p in self._active:
            if not p.prefilling or budget <= 0:
                continue
            take = min(budget, len(p.tokens) - p.pos)
            last = p.pos + take == len(p.tokens)
            for i in range(take):
                batch.token[n + i] = p.tokens[p.pos + i]
                batch.pos[n + i] = p.pos + i
                batch.n_seq_id[n + i] = 1
                batch.seq_id[n + i][0] = p.seq_id
                batch.logits[n + i] = 0
            if last:
                batch.logits[n + take - 1] = 1
                p.idx = n + take - 1
            p.chunk = take
            n += take
            budget -= take
        return n

    def _take_results(self, ctx: LlamaContext) -> None:
        finished = []
        for p in self._active:
            try:
                if p.prefilling:
                    if p.chunk == 0 or not p.took_prompt():
                        continue
                elif p.idx >= 0:
                    p.slot.tokens.append(p.next_token)
                    p.pos += 1
                else:
                    continue
                if p.sampled(ctx):
                    finished.append(p)
            except OpenLMSError as exc:  # e.g. a grammar that allows no token of this vocabulary
                self._finish(p, exc)
        for p in finished:
            self._finish(p)

    def _finish(self, p: Prediction, error: OpenLMSError | None = None) -> None:
        if p not in self._active:
            return
        self._active.remove(p)
        slot = p.slot
        slot.last_used = time.monotonic()
        if self.table is not None:
            self.table.release(slot)
        try:
            if error is not None:
                p.emit(error)
            else:
                p.emit(p.done())
        finally:
            p.sampler.close()

    def _context_full(self) -> None:
        """No cell is left for the running predictions: the one admitted last ends with an error."""
        last = self._active[-1]
        table = self.table
        assert table is not None
        others = len(self._active) - 1
        if others == 0:
            self._finish(last, evaluation_failed("the next token", NO_ROOM))
        else:
            self._finish(
                last,
                ServerBusyError(
                    f"The model's context ({table.ctx.n_ctx} tokens) is full: {len(self._active)} "
                    "predictions share it, and this one was stopped to let the others finish. Retry, or load "
                    "the model with a larger context length (lms load --context-length) or fewer parallel "
                    "predictions (lms load --parallel).",
                ),
            )
        table.retire(last.slot)

    def _fail_all(self, error: OpenLMSError) -> None:
        table = self.table
        assert table is not None
        for p in list(self._active):
            self._finish(p, error)
            table.retire(p.slot)

    def _shutdown(self) -> None:
        for p in list(self._active):
            p.cancelled.cancel(StopReason.MODEL_UNLOADED)
            self._finish(p)
        while self._waiting:
            item = self._waiting.popleft()
            if isinstance(item, Job):
                item.abandon()
            else:
                item.emit(ModelUnloadedError("The model was unloaded before the request could run."))
        if self.table is not None:
            self.table.close()
        if self._finalizer is not None:
            try:
                self._finalizer()
            except Exception:
                log.exception("freeing the model failed")


def _no_work(_: Job) -> None:
    """A prediction's job only carries its cancel flag: the step loop does the work."""


def _not_started(reason: StopReason) -> Done:
    return Done(GenerationStats(reason, 0, 0, 0.0, 0.0, 0.0))
