"""llama.cpp's C sampler chain built from one `SamplingParams` (sampling stays in C: that is the speed).

With a grammar, sampling follows llama.cpp's common sampler: the chain picks a token from the raw
logits, the grammar checks that one token, and only when it refuses is the whole vocabulary masked by
the grammar and the chain run again. Masking a 49k vocabulary costs milliseconds; checking one token
costs microseconds, and a model that follows the format is refused rarely.
"""

from __future__ import annotations

import ctypes
import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import llama_cpp.llama_cpp as C
import numpy as np

from openlms.core.errors import InvalidRequestError
from openlms.core.types import SamplingParams

LLAMA_DEFAULT_SEED = 0xFFFFFFFF
TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])


class SamplerChain:
    """Owns a `llama_sampler` chain. Order as llama.cpp's common defaults: logit bias, penalties, top-k,
    top-p, min-p, XTC, temperature, then a seeded draw (or greedy at temperature 0). `sample(ctx)` picks
    and accepts one token; with `grammar` (GBNF, root rule `root`) every token obeys it. With
    `lazy_grammar`, sampling stays free until `arm()` hands the grammar the text it must start from."""

    sample: Callable[[C.llama_context_p], int]

    def __init__(
        self,
        params: SamplingParams,
        *,
        n_vocab: int,
        default_seed: int | None = None,
        grammar: str | None = None,
        vocab: C.llama_vocab_p | None = None,
        lazy_grammar: bool = False,
    ) -> None:
        self._grammar = None if grammar is None else GrammarGate(grammar, vocab, n_vocab)
        self._armed = self._grammar is not None and not lazy_grammar
        chain_params = C.llama_sampler_chain_default_params()
        chain_params.no_perf = True
        self.ptr = C.llama_sampler_chain_init(chain_params)
        self._penalties: C.llama_sampler_p | None = None
        self._penalty_window = 0
        self._build(params, n_vocab, default_seed)
        self.sample = self._sample_with_grammar if self._armed else self._sample

    def arm(self, tokens: Sequence[int]) -> bool:
        """Start a lazy grammar: feed it `tokens` (the output from the trigger on, re-tokenized) and
        constrain every later token. False (and sampling stays free) when those tokens already break the
        grammar: then the text is left as the model wrote it."""
        gate = self._grammar
        if gate is None or self._armed:
            return self._armed
        for token in tokens:
            if not gate.allows(token):  # checked first: llama.cpp aborts on accepting a refused token
                self._grammar = None
                gate.close()
                return False
            gate.accept(token)
        self._armed = True
        self.sample = self._sample_with_grammar
        return True

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

    def sample_at(self, ctx: C.llama_context_p, idx: int) -> int:
        """`sample()` from output `idx` of the last decode (speculative verification), grammar included."""
        return self._sample_with_grammar(ctx, idx) if self._armed else self._sample(ctx, idx)

    def _sample(self, ctx: C.llama_context_p, idx: int = -1) -> int:
        """Sample (and accept) a token from output `idx` of the last decode (-1: the last one)."""
        return int(C.llama_sampler_sample(self.ptr, ctx, idx))

    def _sample_with_grammar(self, ctx: C.llama_context_p, idx: int = -1) -> int:
        gate = self._grammar
        assert gate is not None
        token = gate.draw(self.ptr, ctx, masked=False, idx=idx)
        if not gate.allows(token):
            token = gate.draw(self.ptr, ctx, masked=True, idx=idx)
        C.llama_sampler_accept(self.ptr, token)
        gate.accept(token)
        return token

    def close(self) -> None:
        if self.ptr:
            C.llama_sampler_free(self.ptr)
            self.ptr = None
        if self._grammar is not None:
            self._grammar.close()


class GrammarGate:
    """llama.cpp's grammar sampler plus the candidate buffers to run a chain on raw logits."""

    def __init__(self, grammar: str, vocab: C.llama_vocab_p | None, n_vocab: int) -> None:
        if not grammar.strip():
            raise InvalidRequestError("The grammar is empty.", param="grammar")
        try:
            text = grammar.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidRequestError(f"The grammar is not valid UTF-8 text: {e}", param="grammar") from e
        self.ptr = C.llama_sampler_init_grammar(vocab, text, b"root")
        if not self.ptr:
            raise InvalidRequestError(
                "llama.cpp refused the grammar: a GBNF syntax error, an undefined rule, left recursion, or "
                "no rule named 'root'.",
                param="grammar",
            )
        self.n_vocab = n_vocab
        self._data = (C.llama_token_data * n_vocab)()
        self._view: np.ndarray[Any, Any] = np.frombuffer(memoryview(self._data), dtype=TOKEN_DATA)
        self._ids = np.arange(n_vocab, dtype=np.int32)
        self._cur = C.llama_token_data_array(self._data, n_vocab, -1, False)
        self._one = (C.llama_token_data * 1)()
        self._one_cur = C.llama_token_data_array(self._one, 1, -1, False)

    def draw(self, chain: C.llama_sampler_p, ctx: C.llama_context_p, *, masked: bool, idx: int = -1) -> int:
        """Run `chain` (without accepting) on output `idx`'s logits, masked by the grammar first if asked."""
        logits = np.ctypeslib.as_array(C.llama_get_logits_ith(ctx, idx), shape=(self.n_vocab,))
        view, cur = self._view, self._cur
        view["id"] = self._ids
        view["logit"] = logits
        cur.data, cur.size, cur.selected, cur.sorted = self._data, self.n_vocab, -1, False
        if masked:
            C.llama_sampler_apply(self.ptr, ctypes.byref(cur))
            if not np.isfinite(view["logit"]).any():
                raise InvalidRequestError(
                    "The grammar allows no token of this model here (its vocabulary cannot spell what the "
                    "grammar requires).",
                    param="grammar",
                )
        C.llama_sampler_apply(chain, ctypes.byref(cur))
        return int(cur.data[cur.selected].id)

    def allows(self, token: int) -> bool:
        one, cur = self._one[0], self._one_cur
        one.id, one.logit, one.p = token, 1.0, 0.0  # type: ignore[assignment]
        cur.data, cur.size, cur.selected, cur.sorted = self._one, 1, -1, False
        C.llama_sampler_apply(self.ptr, ctypes.byref(cur))
        return not math.isinf(self._one[0].logit)

    def accept(self, token: int) -> None:
        C.llama_sampler_accept(self.ptr, token)

    def close(self) -> None:
        if self.ptr:
            C.llama_sampler_free(self.ptr)
            self.ptr = None


def _seed(seed: int | None) -> int:
    if seed is None or seed < 0:
        return random.getrandbits(32) % LLAMA_DEFAULT_SEED
    return seed & 0xFFFFFFFF
