"""One prediction running in a slot of the batched step loop: its prompt progress, sampler, output and stats.

The step loop (`batching.py`) owns the batch; a `Prediction` says what it needs from each step (prompt
tokens to prefill, or its last sampled token) and takes the result (`took_prompt`, `sampled`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from openlms.core.types import (
    ContextOverflowPolicy,
    Done,
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    PromptProgress,
    StopReason,
)
from openlms.engine.llama.generator import TokenOutput
from openlms.engine.llama.native import LlamaContext
from openlms.engine.llama.sampler import SamplerChain
from openlms.engine.llama.slots import Slot
from openlms.engine.scheduler import Cancellation

Sink = Callable[[GenerationEvent | BaseException], None]  # a request's events, or its error


class Prediction:
    """A request admitted into `slot` whose KV already holds `tokens[:reused]`."""

    def __init__(
        self,
        slot: Slot,
        request: GenerationRequest,
        tokens: list[int],
        reused: int,
        sampler: SamplerChain,
        out: TokenOutput,
        cancelled: Cancellation,
        started: float,
        sink: Sink,
    ) -> None:
        self.slot, self.seq_id = slot, slot.seq_id
        self.request, self.tokens, self.reused = request, tokens, reused
        self.sampler, self.out, self.cancelled = sampler, out, cancelled
        self.emit = sink
        self.started = started
        self.prompt_done = 0.0
        self.pos = reused  # the position of the next token to evaluate
        self.next_token = -1  # sampled, evaluated in the next step (-1: the prompt is still being read)
        self.idx = -1  # the row of its logits in this step's batch (-1: none)
        self.chunk = 0  # prompt tokens it put in this step's batch
        self.shifted = 0
        self.kept: int | None = None  # fewest leading tokens a context shift kept (None: no shift)

    @property
    def prefilling(self) -> bool:
        return self.next_token < 0

    def took_prompt(self) -> bool:
        """This step evaluated `chunk` more prompt tokens; True when the prompt is complete (logits ready)."""
        start = self.pos
        self.pos += self.chunk
        self.slot.tokens.extend(self.tokens[start : self.pos])
        total = len(self.tokens) - self.reused
        self.emit(PromptProgress(min(1.0, (self.pos - self.reused) / total)))
        if self.pos < len(self.tokens):
            return False
        self.prompt_done = time.perf_counter()
        self.slot.cache.prompt_len = len(self.tokens)
        self.sampler.prime_penalties(self.tokens)
        return True

    def sampled(self, ctx: LlamaContext) -> bool:
        """Sample the next token from this step's logits; True when the prediction is over."""
        token = self.sampler.sample_at(ctx.ptr, self.idx)
        if self.out.push(token, False):
            return True
        self.next_token = token
        return False

    def shift(self, ctx: LlamaContext) -> bool:
        """llama.cpp's context shift for this sequence at the end of the positions: keep the first tokens
        (the BOS for a rolling window, `keep_tokens` for truncate-middle), drop half of the rest (and at least
        the cells another sequence shares, which must not move). False when the policy stops here."""
        policy = self.request.overflow
        if policy is ContextOverflowPolicy.STOP_AT_LIMIT:
            return False
        n_past = self.pos
        keep = 1 if policy is ContextOverflowPolicy.ROLLING_WINDOW else max(1, self.request.keep_tokens)
        keep = min(keep, n_past - 2)
        discard = max((n_past - keep) // 2, self.slot.shared - keep)
        if keep < 0 or discard < 1 or keep + discard >= n_past:
            return False
        if not ctx.shift(keep, discard, n_past, self.seq_id):
            return False
        del self.slot.tokens[keep : keep + discard]
        self.slot.borrowed = min(self.slot.borrowed, keep)
        self.slot.shared = min(self.slot.shared, keep)
        self.pos -= discard
        self.shifted += discard
        self.kept = keep if self.kept is None else min(self.kept, keep)
        self.slot.clean = self.kept
        return True

    def done(self, reason: StopReason | None = None) -> Done:
        """The final event; `reason` overrides the output's (a cancel before the first token)."""
        out = self.out
        if reason is None:
            reason = out.finish(self.cancelled)
        now = time.perf_counter()
        first_at = out.first_at or now
        return Done(
            GenerationStats(
                stop_reason=reason,
                prompt_tokens=len(self.tokens),
                predicted_tokens=out.predicted,
                time_to_first_token_s=first_at - self.started,
                generation_time_s=now - first_at,
                prompt_eval_time_s=(self.prompt_done or now) - self.started,
                cached_prompt_tokens=self.reused,
                stop_string=out.stop_string,
                context_shift_tokens=self.shifted,
            )
        )
