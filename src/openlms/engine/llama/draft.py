"""The draft model of speculative decoding: loaded by its target's runtime, checked for a shared
vocabulary, and asked for greedy drafts that continue the target's sequence.

A `Drafter` owns a second model and context with its own prefix cache; it lives on the target instance's
worker thread (like the target's context) and is freed with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import llama_cpp.llama_cpp as C
import numpy as np

from openlms.core.errors import InvalidRequestError
from openlms.core.offload import offloadable_layers
from openlms.core.types import LoadConfig, ModelDescriptor
from openlms.engine.llama.generator import SequenceCache
from openlms.engine.llama.native import ContextParams, LlamaContext, LlamaModel
from openlms.engine.scheduler import Cancellation

DEFAULT_MAX_DRAFT = 16  # llama.cpp's --draft-max
VOCAB_MAX_SIZE_DIFFERENCE = 128  # llama.cpp's SPEC_VOCAB_MAX_SIZE_DIFFERENCE (padded vocabularies)
VOCAB_CHECK_START = 5  # llama.cpp's SPEC_VOCAB_CHECK_START_TOKEN_ID: the first ids are often specials


def incompatibility(target: LlamaModel, draft: LlamaModel) -> str | None:
    """Why `draft` cannot draft for `target` (llama.cpp's common_speculative_are_compatible), or None."""
    if draft.is_recurrent or target.is_recurrent:
        which = "main" if target.is_recurrent else "draft"
        return f"the {which} model has recurrent memory, which cannot be rolled back to a drafted position"
    if not draft.has_decoder or draft.has_encoder:
        return "it is not a decoder-only text generation model"
    mine, theirs = target.vocab_signature(), draft.vocab_signature()
    for what, value in mine.items():
        if theirs[what] != value:
            return f"its {what} differs ({theirs[what]} in the draft model, {value} in the main model)"
    if abs(target.n_vocab - draft.n_vocab) > VOCAB_MAX_SIZE_DIFFERENCE:
        return (
            f"its vocabulary has {draft.n_vocab} tokens and the main model's {target.n_vocab} "
            f"(more than {VOCAB_MAX_SIZE_DIFFERENCE} apart)"
        )
    for token in range(VOCAB_CHECK_START, min(target.n_vocab, draft.n_vocab)):
        if target.token_text(token) != draft.token_text(token):
            spelled = draft.token_text(token).decode("utf-8", "replace")
            wanted = target.token_text(token).decode("utf-8", "replace")
            return f"token {token} is {spelled!r} in the draft model but {wanted!r} in the main model"
    return None


class Drafter:
    """A draft model, its context (sequence 0) and what that context holds (`cache`)."""

    def __init__(
        self, descriptor: ModelDescriptor, model: LlamaModel, ctx: LlamaContext, target_vocab: int
    ) -> None:
        self.key = descriptor.key
        self.path = descriptor.path
        self.model = model
        self.ctx = ctx
        self.cache = SequenceCache()
        self.synced = 0  # leading tokens of `cache` known to equal the target's sequence
        self._n_vocab = model.n_vocab
        self._shared_vocab = min(model.n_vocab, target_vocab)  # ids both models know

    @classmethod
    def load(
        cls, descriptor: ModelDescriptor, target: LlamaModel, config: LoadConfig, n_ctx: int, threads: int
    ) -> Drafter:
        """Load `descriptor` to draft for `target` (config: the target's load settings, for GPU and mmap);
        InvalidRequestError (param draftModel) when the two do not share a vocabulary."""
        model = LlamaModel(
            descriptor.path,
            LoadConfig(
                gpu=config.gpu, try_mmap=config.try_mmap, keep_model_in_memory=config.keep_model_in_memory
            ),
            architecture=descriptor.architecture,
            n_layers=offloadable_layers(descriptor.n_layers),  # llama.cpp's count: blocks + output
            on_progress=lambda _: True,
        )
        try:
            why = incompatibility(target, model)
            if why is not None:
                raise InvalidRequestError(
                    f"The draft model '{descriptor.key}' cannot draft for this model: {why}. A draft model "
                    "must have the same vocabulary as the main model (usually a smaller model of the same "
                    "family).",
                    param="draftModel",
                )
            ctx = LlamaContext(model, ContextParams(n_ctx=n_ctx, n_batch=min(n_ctx, 512), n_threads=threads))
        except BaseException:
            model.close()
            raise
        return cls(descriptor, model, ctx, target.n_vocab)

    @property
    def n_ctx(self) -> int:
        return self.ctx.n_ctx

    def prefill(self, tokens: Sequence[int], cancelled: Cancellation) -> bool:
        """Evaluate a new prompt (reusing the cached prefix). False when this draft cannot follow it."""
        self.synced = 0
        return self.sync(tokens[:-1], tokens[-1], cancelled)

    def sync(self, context: Sequence[int], last: int, cancelled: Cancellation | None = None) -> bool:
        """Make the context hold `context + [last]` with the logits after `last`. False when it cannot
        (too long for the draft context, a token the draft does not know, or cancelled)."""
        if len(context) + 1 >= self.ctx.n_ctx:
            return False
        cached = self.cache.tokens
        limit = min(len(cached), len(context))
        keep = min(self.synced, limit)
        while keep < limit and cached[keep] == context[keep]:
            keep += 1
        if keep < len(cached) and not self.ctx.keep_prefix(keep):
            self.ctx.clear()
            keep = 0
        del cached[keep:]
        self.synced = keep
        todo = [*context[keep:], last]
        if max(todo) >= self._shared_vocab:
            return False
        step = self.ctx.n_batch
        for start in range(0, len(todo), step):
            if cancelled is not None and cancelled.is_set():
                return False
            chunk = todo[start : start + step]
            self.ctx.decode(chunk, len(cached), logits_last=start + step >= len(todo))
            cached.extend(chunk)
        self.synced = len(cached)
        return True

    def draft(self, n_max: int, p_min: float | None) -> list[int]:
        """Up to `n_max` greedy tokens after the synced sequence; with `p_min`, stop before a token whose
        probability under the draft is below it. The context keeps all but the last drafted token."""
        cached, ctx, model = self.cache.tokens, self.ctx, self.model
        n_max = min(n_max, ctx.n_ctx - len(cached) - 1)
        drafted: list[int] = []
        while len(drafted) < n_max:
            logits = np.ctypeslib.as_array(C.llama_get_logits_ith(ctx.ptr, -1), shape=(self._n_vocab,))
            token = int(logits.argmax())
            if token >= self._shared_vocab:
                break
            if p_min is not None and p_min > 0.0:
                top = float(logits[token])
                if not math.isfinite(top) or 1.0 / float(np.exp(logits - top).sum()) < p_min:
                    break
            drafted.append(token)
            if len(drafted) == n_max or model.is_eog(token):
                break
            ctx.decode_one(token, len(cached))
            cached.append(token)
        return drafted

    def close(self) -> None:
        self.ctx.close()
        self.model.close()
