"""Turning a stream of token pieces into text: UTF-8 safe decoding and stop-string matching.

Both are pure and incremental, so streaming and one-shot generation give the same text.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass


class Utf8Stream:
    """Decodes byte pieces as they come, holding back an incomplete multi-byte character."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, piece: bytes) -> str:
        return self._decoder.decode(piece)

    def flush(self) -> str:
        """The end of the output: an incomplete character held back (the token limit cut the model off
        inside it: an emoji is often 2 tokens) is dropped, not shown as U+FFFD; invalid bytes were
        already replaced as they came."""
        self._decoder.reset()
        return ""


@dataclass(frozen=True, slots=True)
class StopMatch:
    emit: str  # text that is safe to show now
    stop: str | None = None  # the stop string found, if any (never part of `emit`)


class StopMatcher:
    """Finds stop strings in streamed text, even when one is split across tokens.

    Text that could be the start of a stop string is held back until it is ruled out, so a stop string
    never reaches the client. Everything before a found stop string is emitted; nothing after it.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._held = ""

    def push(self, text: str) -> StopMatch:
        if not self._stops:
            return StopMatch(text)
        buffer = self._held + text
        first = self._earliest_stop(buffer)
        if first is not None:
            index, stop = first
            self._held = ""
            return StopMatch(buffer[:index], stop)
        keep = self._longest_partial_suffix(buffer)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return StopMatch(buffer[: len(buffer) - keep])

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    def _earliest_stop(self, buffer: str) -> tuple[int, str] | None:
        best: tuple[int, str] | None = None
        for stop in self._stops:
            index = buffer.find(stop)
            if index >= 0 and (best is None or index < best[0]):
                best = (index, stop)
        return best

    def _longest_partial_suffix(self, buffer: str) -> int:
        """Length of the longest suffix of `buffer` that is a proper prefix of some stop string."""
        longest = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(buffer)), longest, -1):
                if buffer.endswith(stop[:length]):
                    longest = length
                    break
        return longest
