"""llama.cpp's C sampler chain built from one `SamplingParams` (sampling stays in C: that is the speed)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import llama_cpp.llama_cpp as C

from openlms.core.types import SamplingParams

LLAMA_DEFAULT_SEED = 0xFFFFFFFF


class SamplerChain:
    """Owns a `llama_sampler` chain. Order as llama.cpp's common defaults: logit bias, penalties, top-k,
    top-p, min-p, XTC, temperature, then a seeded draw (or greedy at temperature 0)."""

    def __init__(self, params: SamplingParams, *, n_vocab: int, default_seed: int | None = None) -> None:
        chain_params = C.llama_sampler_chain_default_params()
        chain_params.no_perf = True
        self.ptr = C.llama_sampler_chain_init(chain_params)
        self._penalties: C.llama_sampler_p | None = None
        self._penalty_window = 0
        self._build(params, n_vocab, default_seed)

    def _add(self, sampler: C.llama_sampler_p) -> None:
        C.llama_sampler_chain_add(self.ptr, sampler)

    def _build(self, p: SamplingParams, n_vocab: int, default_seed: int | None) -> None:
        if p.logit_bias:
            biases = (C.llama_logit_bias * len(p.logit_bias))()
            for i, (token, bias) in enumerate(p.logit_bias.items()):
                biases[i].token = int(token)  # type: ignore[assignment]
                biases[i].bias = float(bias)
            self._add(C.llama_sampler_init_logit_bias(n_vocab, len(p.logit_bias), biases))
        if p.repeat_penalty != 1.0 or p.frequency_penalty or p.presence_penalty:
            window = p.repeat_last_n if p.repeat_last_n >= 0 else 4096
            self._add(
                C.llama_sampler_init_penalties(
                    n_vocab, window, p.repeat_penalty, p.frequency_penalty, p.presence_penalty
                )
            )
            self._penalties = C.llama_sampler_chain_get(self.ptr, C.llama_sampler_chain_n(self.ptr) - 1)
            self._penalty_window = window
        if p.greedy:
            self._add(C.llama_sampler_init_greedy())
            return
        seed = _seed(p.seed if p.seed is not None else default_seed)
        if p.top_k > 0:
            self._add(C.llama_sampler_init_top_k(p.top_k))
        if 0.0 < p.top_p < 1.0:
            self._add(C.llama_sampler_init_top_p(p.top_p, 1))
        if p.min_p > 0.0:
            self._add(C.llama_sampler_init_min_p(p.min_p, 1))
        if p.xtc_probability > 0.0:
            self._add(C.llama_sampler_init_xtc(p.xtc_probability, p.xtc_threshold, 1, seed))
        self._add(C.llama_sampler_init_temp(p.temperature))
        self._add(C.llama_sampler_init_dist(seed))

    def prime_penalties(self, history: Sequence[int]) -> None:
        """Let the repetition penalties see the end of the prompt, as llama.cpp's CLI does."""
        if self._penalties is None or self._penalty_window == 0:
            return
        for token in history[-self._penalty_window :]:
            C.llama_sampler_accept(self._penalties, token)

    def sample(self, ctx: C.llama_context_p) -> int:
        """Sample (and accept) a token from the last output of the last decode."""
        return int(C.llama_sampler_sample(self.ptr, ctx, -1))

    def close(self) -> None:
        if self.ptr:
            C.llama_sampler_free(self.ptr)
            self.ptr = None


def _seed(seed: int | None) -> int:
    if seed is None or seed < 0:
        return random.getrandbits(32) % LLAMA_DEFAULT_SEED
    return seed & 0xFFFFFFFF
