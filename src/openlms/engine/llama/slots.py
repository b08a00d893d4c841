"""The slots of a batched LLM instance: one llama sequence each, whose KV cache stays after a prediction so
that the next prompt sharing its prefix skips that part.

Where a new prompt goes (`SlotTable.place`):
1. an idle slot holding the same conversation (the new prompt starts with its whole last prompt: a
   follow-up or a regenerate): it keeps the shared prefix and drops only the old answer where it differs;
2. otherwise an empty idle slot, else the least recently used idle one (its KV saved to the host-RAM prompt
   cache first when that can spare a later prompt `min_tokens` or more), which then borrows the longest
   prefix any other slot holds (`llama_memory_seq_cp`: the cells carry both sequence ids, nothing is copied
   or computed: four chats with one long system prompt hold it once);
3. a state saved in host RAM sharing `min_tokens` more than that replaces it (`llama_state_seq_set_data`).
Scheduler thread only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openlms.engine.llama.generator import SequenceCache
from openlms.engine.llama.native import LlamaContext
from openlms.engine.llama.prompt_cache import PromptCache, common_prefix

MIN_SHARE = 16  # fewest tokens worth borrowing from another slot


@dataclass(eq=False)
class Slot:
    seq_id: int
    cache: SequenceCache = field(default_factory=SequenceCache)  # the tokens its KV holds, in order
    busy: bool = False
    last_used: float = 0.0
    borrowed: int = 0  # leading tokens whose cells came from another slot (counted once in `used_cells`)
    shared: int = 0  # leading positions whose cells another slot may also hold (a shift must not move them)
    clean: int | None = None  # after a context shift: how many leading tokens may still be reused

    @property
    def tokens(self) -> list[int]:
        return self.cache.tokens

    def reusable(self) -> list[int]:
        return self.tokens if self.clean is None else self.tokens[: self.clean]


class SlotTable:
    def __init__(self, ctx: LlamaContext, n_slots: int, store: PromptCache | None, can_share: bool) -> None:
        self.ctx = ctx
        self.slots = [Slot(i, SequenceCache(store=store)) for i in range(n_slots)]
        self.store = store
        self.can_share = can_share

    @property
    def used_cells(self) -> int:
        return sum(len(s.tokens) - min(s.borrowed, len(s.tokens)) for s in self.slots)

    def has_free(self) -> bool:
        return any(not s.busy for s in self.slots)

    def place(self, tokens: list[int]) -> tuple[Slot, int]:
        """An idle slot for the prompt `tokens`, its KV cut to the prefix it keeps; (slot, kept tokens).
        At least the last prompt token is always left to evaluate (its logits start the answer)."""
        limit = len(tokens) - 1
        idle = [s for s in self.slots if not s.busy]
        own = max(idle, key=lambda s: (common_prefix(s.reusable(), tokens), s.last_used))
        keep = min(common_prefix(own.reusable(), tokens), limit)
        if own.tokens and keep >= own.cache.prompt_len - 1:  # its follow-up or a regenerate
            target = own
        else:
            empty = [s for s in idle if not s.tokens]
            target = empty[0] if empty else min(idle, key=lambda s: s.last_used)
            if target is not own:
                self.retire(target)
            if not target.tokens:
                keep = self._borrow(target, tokens, limit)
        restored = self._restore(target, tokens, limit, keep)
        if restored is not None:
            keep = restored
        elif keep < target.cache.prompt_len - 1:  # another conversation: save what it loses
            self._save(target)
        self._cut(target, keep)
        return target, keep

    def _borrow(self, target: Slot, tokens: list[int], limit: int) -> int:
        """Let the empty `target` share the longest prefix of `tokens` another slot holds; tokens kept."""
        if not self.can_share:
            return 0
        best, length = None, 0
        for slot in self.slots:
            if slot is not target:
                n = min(common_prefix(slot.reusable(), tokens), limit)
                if n > length:
                    best, length = slot, n
        if best is None or length < MIN_SHARE:
            return 0
        self.ctx.copy_prefix(best.seq_id, target.seq_id, length)
        target.tokens[:] = tokens[:length]
        target.borrowed = target.shared = length
        best.shared = max(best.shared, length)
        return length

    def _restore(self, target: Slot, tokens: list[int], limit: int, keep: int) -> int | None:
        """Load the saved state sharing `min_tokens` more of `tokens` than `keep` into `target` (saving
        what `target` held); the tokens kept then, or None when no saved state is that much better."""
        store = self.store
        if store is None:
            return None
        key, shared = store.best(tokens)
        shared = min(shared, limit)
        if shared - keep < store.min_tokens:
            return None
        state = store.take(key)  # before saving `target`: that may push states out
        self.retire(target)
        if not self.ctx.load_state(state.data, target.seq_id):
            return 0
        target.tokens[:] = state.tokens
        target.cache.prompt_len = len(state.tokens)
        return shared

    def _cut(self, slot: Slot, keep: int) -> None:
        if keep < len(slot.tokens) and not self.ctx.keep_prefix(keep, slot.seq_id):
            self.ctx.drop_sequence(slot.seq_id)
            keep = 0
        del slot.tokens[keep:]
        slot.borrowed = min(slot.borrowed, keep)
        slot.clean = None

    def release(self, slot: Slot) -> None:
        """A prediction in `slot` ended. After a context shift the cache past the kept tokens was computed
        with the dropped ones in view: a later prompt must not reuse it, so the slot ends there."""
        slot.busy = False
        if slot.clean is not None:
            self._cut(slot, slot.clean)
            slot.cache.prompt_len = min(slot.cache.prompt_len, len(slot.tokens))

    def _save(self, slot: Slot) -> None:
        """Copy what the idle `slot` holds to the host-RAM cache, when that can spare a later prompt."""
        store = self.store
        if store is not None and len(slot.reusable()) >= store.min_tokens:
            if slot.clean is not None:
                self._cut(slot, slot.clean)
            store.save(self.ctx, slot.tokens, slot.seq_id)

    def retire(self, slot: Slot) -> None:
        """Empty an idle slot, saving what it holds to the host-RAM cache when worth it."""
        if not slot.tokens:
            return
        self._save(slot)
        self.ctx.drop_sequence(slot.seq_id)
        slot.tokens.clear()
        slot.cache.prompt_len = 0
        slot.borrowed = slot.shared = 0
        slot.clean = None

    def evict_one(self) -> bool:
        """Retire the least recently used idle slot that holds cells; False when none does."""
        holding = [s for s in self.slots if not s.busy and s.tokens]
        if not holding:
            return False
        self.retire(min(holding, key=lambda s: s.last_used))
        return True

    def clear_for_exclusive(self) -> Slot:
        """Retire every idle slot but the first (exclusive work, e.g. speculative decoding, runs on
        sequence 0 with the whole cache); the first slot."""
        for slot in self.slots[1:]:
            self.retire(slot)
        first = self.slots[0]
        if first.shared or first.clean is not None:  # its cells may be shared: start it afresh
            self.retire(first)
        return first

    def close(self) -> None:
        if self.store is not None:
            self.store.clear()
