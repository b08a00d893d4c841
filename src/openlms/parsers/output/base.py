"""Building blocks shared by the output parsers: the step loop, event merging, call ids, marker search.

A `StepParser` keeps the text it has not decided on in `_buf`. `feed` appends and runs `_step` until it
makes no progress; `finish` sets `_done` and runs it again, so each step either decides with enough
lookahead or, at the end, decides with what there is. That makes the result independent of how the text
was split.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from openlms.parsers.output.events import (
    ContentDelta,
    ParsedEvent,
    ReasoningDelta,
    ToolCallArgs,
    ToolCallBegin,
)

IdFactory = Callable[[], str]
WHITESPACE = " \t\r\n"


def random_call_id() -> str:
    """A 9-digit id, like LM Studio's ("365174485")."""
    return str(100_000_000 + secrets.randbelow(900_000_000))


class CallIds:
    """Hands out call indexes (0, 1, ...) and ids unique within one message."""

    __slots__ = ("_new_id", "_next", "_used")

    def __init__(self, new_id: IdFactory | None = None) -> None:
        self._new_id = new_id or random_call_id
        self._next = 0
        self._used: set[str] = set()

    def begin(self, name: str) -> ToolCallBegin:
        call_id = self._new_id()
        while call_id in self._used:
            call_id = self._new_id()
        self._used.add(call_id)
        self._next += 1
        return ToolCallBegin(index=self._next - 1, id=call_id, name=name)


class EventSink:
    """An event list that merges adjacent deltas of the same kind and drops empty ones."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[ParsedEvent] = []

    def emit(self, event: ParsedEvent) -> None:
        last = self.events[-1] if self.events else None
        if isinstance(event, ContentDelta | ReasoningDelta | ToolCallArgs):
            if not event.text:
                return
            if isinstance(last, ContentDelta) and isinstance(event, ContentDelta):
                self.events[-1] = ContentDelta(last.text + event.text)
                return
            if isinstance(last, ReasoningDelta) and isinstance(event, ReasoningDelta):
                self.events[-1] = ReasoningDelta(last.text + event.text)
                return
            if (
                isinstance(last, ToolCallArgs)
                and isinstance(event, ToolCallArgs)
                and last.index == event.index
            ):
                self.events[-1] = ToolCallArgs(event.index, last.text + event.text)
                return
        self.events.append(event)

    def extend(self, events: Sequence[ParsedEvent]) -> None:
        for event in events:
            self.emit(event)

    def take(self) -> list[ParsedEvent]:
        events, self.events = self.events, []
        return events


class StepParser:
    """Base of the stateful parsers: a buffer, a step loop and an event sink."""

    def __init__(self) -> None:
        self._buf = ""
        self._done = False
        self._sink = EventSink()

    def feed(self, text: str) -> list[ParsedEvent]:
        if self._done:
            raise RuntimeError("feed() after finish()")
        self._buf += text
        self._run()
        return self._sink.take()

    def finish(self) -> list[ParsedEvent]:
        if not self._done:
            self._done = True
            self._run()
            self._buf = ""
        return self._sink.take()

    def _run(self) -> None:
        while self._step():
            pass

    def _step(self) -> bool:
        """Consume what can be decided from `_buf`; True when there is more to do now."""
        raise NotImplementedError

    def _emit(self, event: ParsedEvent) -> None:
        self._sink.emit(event)

    def _content(self, text: str) -> None:
        self._sink.emit(ContentDelta(text))

    def _take_before(self, pos: int, marker: str | None) -> str:
        """Remove and return the text before `pos`, where `marker` starts. With no marker (None), `pos` is
        where a partial one may start: the rest stays in `_buf` for more text, except at the end."""
        if marker is None and self._done:
            pos = len(self._buf)
        text, self._buf = self._buf[:pos], self._buf[pos:]
        return text

    def _content_until(self, markers: Sequence[str]) -> str | None:
        """Emit the content before the first complete marker and return the marker (`_buf` then starts
        with it); None when there is none yet."""
        pos, marker = find_marker(self._buf, markers)
        self._content(self._take_before(pos, marker))
        return marker

    def _past_whitespace(self) -> int | None:
        """Where the text after the buffer's leading whitespace starts; None while there is nothing else
        (the whitespace is held, and dropped at the end)."""
        i = skip_whitespace(self._buf)
        if i < len(self._buf):
            return i
        if self._done:
            self._buf = ""
        return None


class TextParser:
    """No markup at all: everything is content, emitted at once."""

    def feed(self, text: str) -> list[ParsedEvent]:
        return [ContentDelta(text)] if text else []

    def finish(self) -> list[ParsedEvent]:
        return []


def partial_suffix(text: str, marker: str) -> int:
    """Length of the longest proper suffix of `text` that is a prefix of `marker` (0 if none)."""
    start = max(0, len(text) - len(marker) + 1)
    k = text.find(marker[0], start)
    while k != -1:
        if marker.startswith(text[k:]):
            return len(text) - k
        k = text.find(marker[0], k + 1)
    return 0


def find_marker(text: str, markers: Sequence[str]) -> tuple[int, str | None]:
    """Where the first complete marker starts and which it is; else (start of what must be held back, None).

    Without a complete marker, `text[:pos]` is safe to emit and `text[pos:]` may still become a marker.
    """
    best, found = len(text), None
    for marker in markers:
        pos = text.find(marker)
        if pos != -1 and pos < best:
            best, found = pos, marker
    if found is not None:
        return best, found
    held = max(partial_suffix(text, marker) for marker in markers)
    return len(text) - held, None


def skip_whitespace(text: str, start: int = 0, extra: str = "") -> int:
    """Index of the first character at or after `start` that is not whitespace (nor in `extra`)."""
    chars = WHITESPACE + extra
    i = start
    while i < len(text) and text[i] in chars:
        i += 1
    return i


def could_start(rest: str, markers: Sequence[str]) -> bool:
    """True when `rest` is a proper prefix of one of the markers (more text is needed to know)."""
    return any(len(rest) < len(m) and m.startswith(rest) for m in markers)
