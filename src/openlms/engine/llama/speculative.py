"""Speculative decoding: a draft model proposes tokens, the target checks them all in one batch.

Each step, the draft continues the target's sequence greedily (`Drafter.draft`); the target evaluates
the last sampled token plus the draft in one `llama_decode` with logits at every position, then its own
sampler chain (temperature, penalties, grammar) samples position by position: while the sampled token
equals the drafted one, the draft token is accepted and the next position is sampled; the first token
that differs is the step's new token, and both caches are cut back past it. Every output token is thus
sampled by the target from the same logits (up to batch numerics) as without a draft, in the same order,
through the same stop-string, EOS, max-tokens and UTF-8 handling: at temperature 0 the text is the same.

When the context is about to fill up, drafting is bounded to the room left and then stops; a context
shift (when the policy allows one) ends drafting for the rest of the generation (the draft context holds
the unshifted sequence), which then goes on one token at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from openlms.core.errors import EngineError
from openlms.core.types import (
    DraftSpec,
    GenerationRequest,
    GenerationStats,
    StopReason,
)
from openlms.engine.llama.draft import DEFAULT_MAX_DRAFT, Drafter
from openlms.engine.llama.generator import Emit, Generation, SequenceCache, TokenOutput
from openlms.engine.llama.native import LlamaContext
from openlms.engine.llama.sampler import SamplerChain
from openlms.engine.scheduler import Cancellation


@dataclass
class DraftCounts:
    drafted: int = 0
    accepted: int = 0
    rejected: int = 0
    ignored: int = 0


class SpeculativeGeneration(Generation):
    """A `Generation` whose decode loop drafts with `drafter` (the request's `draft` settings)."""

    def __init__(
        self,
        ctx: LlamaContext,
        cache: SequenceCache,
        request: GenerationRequest,
        emit: Emit,
        cancelled: Cancellation,
        drafter: Drafter,
        *,
        default_seed: int | None = None,
    ) -> None:
        super().__init__(ctx, cache, request, emit, cancelled, default_seed=default_seed)
        assert request.draft is not None
        self.spec: DraftSpec = request.draft
        self.drafter = drafter
        self.drafting = True
        self.counts = DraftCounts()

    def _prefill(self, tokens: list[int]) -> int:
        reused = super()._prefill(tokens)
        if not self.cancelled.is_set():
            self.drafting = self.drafter.prefill(tokens, self.cancelled)
        return reused

    def _decode_loop(
        self, tokens: list[int], reused: int, sampler: SamplerChain, started: float, prompt_done: float
    ) -> GenerationStats:
        ctx, cached, counts, sample = self.ctx, self.cache.tokens, self.counts, sampler.sample_at
        out = TokenOutput(self.request, self.model, self.emit, sampler, started)
        n_ctx, pos = ctx.n_ctx, len(tokens)
        token = sample(ctx.ptr, -1)
        stop = out.push(token, drafted=False)
        while not stop and not self.cancelled.is_set():
            if pos + 1 >= n_ctx:
                dropped = self._shift(pos)
                if not dropped:
                    out.reason = StopReason.CONTEXT_LENGTH
                    break
                pos -= dropped
                self.drafting = False
            draft = self._draft(token, pos, out.predicted)
            ctx.decode_all_logits([token, *draft], pos)
            cached.append(token)
            pos += 1
            end = pos + len(draft)  # the target's cache now ends here
            for i in range(len(draft) + 1):
                token = sample(ctx.ptr, i)
                hit = i < len(draft) and token == draft[i]
                stop = out.push(token, drafted=hit)
                if not hit:
                    counts.rejected += len(draft) - i
                    break
                counts.accepted += 1
                if stop:
                    counts.ignored += len(draft) - i - 1
                    break
                cached.append(token)
                pos += 1
            if pos < end and not ctx.keep_prefix(pos):
                raise EngineError("llama.cpp could not roll the KV cache back after a rejected draft.")
        return self._stats(out.finish(self.cancelled), tokens, reused, started, prompt_done, out)

    def _draft(self, token: int, pos: int, predicted: int) -> list[int]:
        """The draft to verify after `token` (at `pos`): [] when drafting is off, there is no room, or the
        draft came out shorter than `min_draft_length` (then it counts as ignored)."""
        if not self.drafting:
            return []
        spec = self.spec
        room = self.ctx.n_ctx - 2 - pos  # drafted tokens sit at pos+1.., where the plain loop decodes too
        room = min(room, self.ctx.n_batch - 1)  # the step's token and its draft are one batch
        if self.request.max_tokens is not None:
            room = min(room, self.request.max_tokens - predicted - 1)  # the step's own token comes on top
        n_max = min(spec.num_draft_tokens or DEFAULT_MAX_DRAFT, room)
        if n_max < max(1, spec.min_draft_length):
            return []
        if not self.drafter.sync(self.cache.tokens, token):
            self.drafting = False
            return []
        p_min = None if spec.num_draft_tokens else spec.min_continue_probability
        draft = self.drafter.draft(n_max, p_min)
        self.counts.drafted += len(draft)
        if len(draft) < spec.min_draft_length:
            self.counts.ignored += len(draft)
            return []
        return draft

    def run(self) -> GenerationStats:
        stats = super().run()
        c = self.counts
        return replace(
            stats,
            draft_model_key=self.drafter.key,
            draft_tokens=c.drafted,
            accepted_draft_tokens=c.accepted,
            rejected_draft_tokens=c.rejected,
            ignored_draft_tokens=c.ignored,
        )
