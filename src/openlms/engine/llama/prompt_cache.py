"""Host-RAM prompt cache: the KV state of recent conversations, so that one served again after another
skips the prefix it shares with a saved state.

An instance's context holds one live sequence (sequence 0). When a request would throw away a long part
of it (a different conversation), the generator saves the live sequence here (`llama_state_seq_get_data`);
when a later prompt shares a longer prefix with a saved state than with the live one, it saves the live
one, restores the saved one (`llama_state_seq_set_data`), cuts it at the shared prefix and prefills only
the rest. Entries are bounded in bytes (the `prompt_cache_mb` setting), least recently used out first.
Scheduler thread only (one cache per instance: a state is only valid for the context it came from).
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from openlms.engine.llama.native import LlamaContext

MIN_TOKENS = 64  # a state is saved, and restored, only when it spares at least this many tokens


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(frozen=True, slots=True)
class SavedState:
    tokens: tuple[int, ...]
    data: ctypes.Array[ctypes.c_uint8]

    @property
    def size(self) -> int:
        return len(self.data)


class PromptCache:
    """Saved sequence states keyed by their tokens, at most `budget_bytes` in all (LRU out first)."""

    def __init__(self, budget_bytes: int, *, min_tokens: int = MIN_TOKENS) -> None:
        self.budget = budget_bytes
        self.min_tokens = min_tokens
        self._entries: OrderedDict[int, SavedState] = OrderedDict()
        self._next = 0
        self.used = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def states(self) -> list[SavedState]:
        """The saved states, least recently used first."""
        return list(self._entries.values())

    def best(self, tokens: Sequence[int]) -> tuple[int, int]:
        """(key, shared prefix length) of the saved state sharing the longest prefix with `tokens`;
        (-1, 0) when none shares any."""
        found, length = -1, 0
        for key, state in self._entries.items():
            n = common_prefix(state.tokens, tokens)
            if n > length:
                found, length = key, n
        return found, length

    def save(self, ctx: LlamaContext, tokens: Sequence[int], seq_id: int = 0) -> bool:
        """Copy a live sequence (holding `tokens`) into the cache. False when it is too short, too big
        for the budget, or llama.cpp could not copy it."""
        if len(tokens) < self.min_tokens:
            return False
        size = ctx.state_size(seq_id)
        if size <= 0 or size > self.budget:
            return False
        key_tokens = tuple(tokens)
        if self._covers(key_tokens):
            return False
        self._drop_prefixes_of(key_tokens)
        self._make_room(size)
        data = ctx.save_state(size, seq_id)
        if data is None:
            return False
        self._entries[self._next] = SavedState(key_tokens, data)
        self._next += 1
        self.used += size
        return True

    def take(self, key: int) -> SavedState:
        """Take the saved state `key` out of the cache (to restore it: the live sequence is saved again
        when it is replaced)."""
        state = self._entries.pop(key)
        self.used -= state.size
        return state

    def clear(self) -> None:
        self._entries.clear()
        self.used = 0

    def _covers(self, tokens: tuple[int, ...]) -> bool:
        """Whether a saved state starts with `tokens` (it can stand for them: states are cut on restore)."""
        n = len(tokens)
        return any(len(s.tokens) >= n and s.tokens[:n] == tokens for s in self._entries.values())

    def _drop_prefixes_of(self, tokens: tuple[int, ...]) -> None:
        """A state whose tokens start the new one's (or equal them) is worth nothing more."""
        for key, state in list(self._entries.items()):
            if len(state.tokens) <= len(tokens) and tokens[: len(state.tokens)] == state.tokens:
                del self._entries[key]
                self.used -= state.size

    def _make_room(self, size: int) -> None:
        while self._entries and self.used + size > self.budget:
            _, state = self._entries.popitem(last=False)
            self.used -= state.size
