"""One generation on a llama context: prefix reuse, chunked prefill, and the C-sampled decode loop.

Runs on the instance's scheduler thread. Per-token Python work is kept small: one `llama_decode`, one
`llama_sampler_sample`, one `llama_token_to_piece`, then UTF-8/stop-string handling and one
thread-safe hand-off of the fragment to the event loop. At the end of the context, unless the request's
overflow policy is stopAtLimit, llama.cpp's context shift drops half of the tokens after the kept ones
and generation goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from openlms.core.errors import ContextLengthExceededError, InvalidRequestError
from openlms.core.types import (
    ContextOverflowPolicy,
    Done,
    FirstToken,
    Fragment,
    GenerationEvent,
    GenerationRequest,
    GenerationStats,
    PromptProgress,
    StopReason,
)
from openlms.engine.llama.native import LlamaContext, LlamaModel
from openlms.engine.llama.prompt_cache import PromptCache, common_prefix
from openlms.engine.llama.sampler import SamplerChain
from openlms.engine.scheduler import Cancellation
from openlms.engine.textstream import StopMatcher, Utf8Stream

Emit = Callable[[GenerationEvent], None]


@dataclass
class SequenceCache:
    """What sequence 0 of the KV cache holds now, token by token, for prefix reuse; `store` keeps the
    states of other recent conversations in host RAM (None: off)."""

    tokens: list[int] = field(default_factory=list)
    store: PromptCache | None = None
    prompt_len: int = 0  # how many of `tokens` were the last request's prompt (the rest: its answer)


def prompt_tokens(request: GenerationRequest, model: LlamaModel) -> list[int]:
    """The request's prompt as tokens (a text prompt tokenized with the model's BOS rule)."""
    prompt = request.prompt
    if not isinstance(prompt, str):
        return list(prompt)
    add_bos = model.add_bos if request.add_bos is None else request.add_bos
    return model.tokenize(prompt, add_special=add_bos, parse_special=True)


def request_sampler(request: GenerationRequest, model: LlamaModel, default_seed: int | None) -> SamplerChain:
    """The request's own sampler chain (a grammar llama.cpp refuses fails here, before any decoding)."""
    return SamplerChain(
        request.sampling,
        n_vocab=model.n_vocab,
        default_seed=default_seed,
        grammar=request.grammar,
        vocab=model.vocab,
        lazy_grammar=request.grammar_trigger is not None,
    )


class Generation:
    """Runs one `GenerationRequest` to completion, emitting events. Call `run()` on the scheduler thread."""

    def __init__(
        self,
        ctx: LlamaContext,
        cache: SequenceCache,
        request: GenerationRequest,
        emit: Emit,
        cancelled: Cancellation,
        *,
        default_seed: int | None = None,
    ) -> None:
        self.ctx = ctx
        self.model: LlamaModel = ctx.model
        self.cache = cache
        self.request = request
        self.emit = emit
        self.cancelled = cancelled
        self.default_seed = default_seed
        self.shifted = 0  # tokens dropped by context shifts
        self.kept: int | None = None  # fewest leading tokens a shift kept (None: no shift)

    def run(self) -> GenerationStats:
        started = time.perf_counter()
        tokens = prompt_tokens(self.request, self.model)
        if not tokens:
            raise InvalidRequestError("The prompt is empty.", param="prompt")
        if len(tokens) >= self.ctx.n_ctx:
            raise ContextLengthExceededError(len(tokens), self.ctx.n_ctx)
        sampler = request_sampler(self.request, self.model, self.default_seed)
        try:
            reused = self._prefill(tokens)
            prompt_done = time.perf_counter()
            if self.cancelled.is_set():
                return self._stats(self.cancelled.reason, tokens, reused, started, prompt_done)
            sampler.prime_penalties(tokens)
            return self._decode_loop(tokens, reused, sampler, started, prompt_done)
        finally:
            self._forget_shifted()
            sampler.close()

    def _prefill(self, tokens: list[int]) -> int:
        """Evaluate the prompt, reusing the longest prefix already in the KV cache. Returns reused count."""
        cached = self.cache.tokens
        keep = min(common_prefix(cached, tokens), len(tokens) - 1)  # re-evaluate >= 1 token for logits
        if self.cache.store is not None:
            keep = self._switch_state(self.cache.store, tokens, keep)
        if keep < len(cached) and not self.ctx.keep_prefix(keep):
            self.ctx.clear()
            keep = 0
        del cached[keep:]
        todo = tokens[keep:]
        step = self.ctx.n_batch
        for start in range(0, len(todo), step):
            if self.cancelled.is_set():
                return keep
            chunk = todo[start : start + step]
            last = start + step >= len(todo)
            self.ctx.decode(chunk, keep + start, logits_last=last)
            cached.extend(chunk)
            self.emit(PromptProgress(min(1.0, (start + len(chunk)) / len(todo))))
        self.cache.prompt_len = len(tokens)
        return keep

    def _switch_state(self, store: PromptCache, tokens: list[int], keep: int) -> int:
        """Before cutting the live sequence at `keep`: restore the saved state sharing a longer prefix
        with `tokens` if there is one, and save the live sequence if that, or the cut, would lose a
        worthwhile part of it. Returns how many leading tokens of the (new) live sequence to keep."""
        cached = self.cache.tokens
        key, shared = store.best(tokens)
        shared = min(shared, len(tokens) - 1)
        if shared - keep < store.min_tokens:
            # another conversation cuts into the last prompt (not only into its answer, which a
            # regenerate or a re-rendered follow-up drops): keep it for when that conversation comes back
            if keep < self.cache.prompt_len - 1 and len(cached) - keep >= store.min_tokens:
                store.save(self.ctx, cached)
            return keep
        state = store.take(key)
        if tuple(cached) != state.tokens[: len(cached)]:  # not already part of the state restored
            store.save(self.ctx, cached)
        if not self.ctx.load_state(state.data):  # llama.cpp refused it: the sequence is empty
            cached.clear()
            return 0
        cached[:] = state.tokens
        self.cache.prompt_len = len(state.tokens)
        return shared

    def _decode_loop(
        self, tokens: list[int], reused: int, sampler: SamplerChain, started: float, prompt_done: float
    ) -> GenerationStats:
        ctx, cached = self.ctx, self.cache.tokens
        out = TokenOutput(self.request, self.model, self.emit, sampler, started)
        push, n_ctx, pos = out.push, ctx.n_ctx, len(tokens)
        while not self.cancelled.is_set():
            token = sampler.sample(ctx.ptr)  # an attribute: arming a lazy grammar swaps it
            if push(token, False):
                break
            if pos + 1 >= n_ctx:
                dropped = self._shift(pos)
                if not dropped:
                    out.reason = StopReason.CONTEXT_LENGTH
                    break
                pos -= dropped
            ctx.decode_one(token, pos)
            cached.append(token)
            pos += 1
        return self._stats(out.finish(self.cancelled), tokens, reused, started, prompt_done, out)

    def _shift(self, n_past: int) -> int:
        """llama.cpp's context shift at the end of the context: keep the first tokens (the BOS for a rolling
        window, `keep_tokens` for truncate-middle), drop half of the rest, move what follows down.
        Returns how many tokens were dropped; 0 when the policy stops here or the model cannot shift."""
        policy = self.request.overflow
        if policy is ContextOverflowPolicy.STOP_AT_LIMIT:
            return 0
        keep = 1 if policy is ContextOverflowPolicy.ROLLING_WINDOW else max(1, self.request.keep_tokens)
        keep = min(keep, n_past - 2)
        discard = (n_past - keep) // 2
        if keep < 0 or discard < 1 or not self.ctx.shift(keep, discard, n_past):
            return 0
        del self.cache.tokens[keep : keep + discard]
        self.shifted += discard
        self.kept = keep if self.kept is None else min(self.kept, keep)
        return discard

    def _forget_shifted(self) -> None:
        """After a shift the cache past the kept tokens was computed with the dropped ones in view: a later
        prompt must not reuse it, so the cache ends after the kept tokens."""
        if self.kept is None:
            return
        if not self.ctx.keep_prefix(self.kept):
            self.ctx.clear()
            self.kept = 0
        del self.cache.tokens[self.kept :]
        self.cache.prompt_len = min(self.cache.prompt_len, self.kept)

    def _stats(
        self,
        reason: StopReason,
        tokens: list[int],
        reused: int,
        started: float,
        prompt_done: float,
        out: TokenOutput | None = None,  # None: stopped before the first token
    ) -> GenerationStats:
        now = time.perf_counter()
        first_at = (out.first_at if out else None) or now
        return GenerationStats(
            stop_reason=reason,
            prompt_tokens=len(tokens),
            predicted_tokens=out.predicted if out else 0,
            time_to_first_token_s=first_at - started,
            generation_time_s=now - first_at,
            prompt_eval_time_s=prompt_done - started,
            cached_prompt_tokens=reused,
            stop_string=out.stop_string if out else None,
            context_shift_tokens=self.shifted,
        )


class TokenOutput:
    """One output token at a time: first-token event, EOS, UTF-8, lazy grammar trigger, stop strings,
    max_tokens; fragments say whether they carry accepted draft tokens. `push` returns True to stop."""

    def __init__(
        self, request: GenerationRequest, model: LlamaModel, emit: Emit, sampler: SamplerChain, started: float
    ) -> None:
        self.piece = model.fast_special_piece if request.render_special else model.fast_piece
        self.is_eog = model.is_eog
        self.emit = emit
        self.started = started
        self.utf8, self.stops = Utf8Stream(), StopMatcher(request.stop)
        self.trigger = LazyTrigger(request.grammar_trigger, sampler)
        self.max_tokens = request.max_tokens if request.max_tokens is not None else -1
        self.predicted = self.pending = 0
        self.pending_drafted = False
        self.first_at: float | None = None
        self.reason: StopReason | None = None
        self.stop_string: str | None = None

    def push(self, token: int, drafted: bool) -> bool:
        self.predicted += 1
        if self.first_at is None:
            self.first_at = time.perf_counter()
            self.emit(FirstToken(self.first_at - self.started))
        if self.is_eog(token):
            self.reason = StopReason.EOS
            return True
        text = self.utf8.push(self.piece(token))
        if self.trigger.waiting:
            self.trigger.seen(token, text)  # arms the sampler's grammar: its `sample`/`sample_at` follow
        match = self.stops.push(text)
        self.pending += 1
        self.pending_drafted = self.pending_drafted or drafted
        if match.emit:
            self._flush(match.emit)
        if match.stop is not None:
            self.reason, self.stop_string = StopReason.STOP_STRING, match.stop
            return True
        if self.predicted == self.max_tokens:
            self.reason = StopReason.MAX_TOKENS
            return True
        return False

    def finish(self, cancelled: Cancellation) -> StopReason:
        """The stop reason (a cancel's, if nothing else stopped the loop); flushes the held-back text."""
        if self.reason is None:  # left the loop because of a cancel
            self.reason = cancelled.reason
        if self.reason is not StopReason.STOP_STRING:
            tail = self.stops.push(self.utf8.flush()).emit + self.stops.flush()
            if tail:
                self._flush(tail)
        return self.reason

    def _flush(self, text: str) -> None:
        self.emit(Fragment(text, self.pending, self.pending_drafted))
        self.pending, self.pending_drafted = 0, False


class LazyTrigger:
    """Watches the output for a lazy grammar's trigger, then arms the grammar with the tokens written from
    the trigger on. The trigger must start a token (a call usually starts a line or the message); when it
    starts inside one, the grammar stays off and the text is parsed as written. `waiting` is False once
    the trigger was seen (or when there is no lazy grammar)."""

    WINDOW = 48  # recent tokens kept to find where the trigger starts

    def __init__(self, trigger: str | None, sampler: SamplerChain) -> None:
        self.trigger, self.sampler = trigger or "", sampler
        self.waiting = bool(trigger)
        self.recent: list[tuple[int, str]] = []

    def seen(self, token: int, text: str) -> bool:
        """Add one output token and its text; True when this armed the grammar."""
        self.recent.append((token, text))
        del self.recent[: -self.WINDOW]
        joined = "".join(t for _, t in self.recent)
        start = joined.find(self.trigger)
        if start < 0:
            return False
        self.waiting = False
        offset = 0
        for i, (_, piece) in enumerate(self.recent):
            if offset == start and piece:
                return self.sampler.arm([t for t, _ in self.recent[i:]])
            offset += len(piece)
            if offset > start:
                break
        return False


def run_generation(generation: Generation) -> None:
    """Run and emit the final `Done` (errors propagate to the scheduler, which reports them)."""
    stats = generation.run()
    generation.emit(Done(stats))
