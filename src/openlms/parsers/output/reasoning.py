"""`<think>...</think>` reasoning (DeepSeek R1, Qwen3, ...), split off before the tool or text parser.

The opening tag is recognised only before any content (leading whitespace aside); with
`starts_in_reasoning` (the prompt already ends with `<think>`) the output begins as reasoning. Whitespace
right after `<think>` and right after `</think>` is dropped; the rest of the reasoning is kept as written.
Everything after `</think>` goes to the inner parser, which may hold tool calls. Reasoning cut off by the
end of generation stays reasoning.
"""

from __future__ import annotations

import re
from enum import Enum

from openlms.parsers.output.base import StepParser, could_start, find_marker, skip_whitespace
from openlms.parsers.output.events import OutputParser, ParsedEvent, ReasoningDelta

OPEN = "<think>"
CLOSE = "</think>"
_PROMPT_OPENS = re.compile(r"<think>\s*\Z")


def prompt_opens_reasoning(prompt: str) -> bool:
    """True when the rendered prompt ends with `<think>` (and optional whitespace)."""
    return _PROMPT_OPENS.search(prompt) is not None


class _Mode(Enum):
    START = "start"  # before any content: an opening tag may come
    REASONING = "reasoning"
    CONTENT = "content"


class ThinkTagParser(StepParser):
    def __init__(self, inner: OutputParser, *, starts_in_reasoning: bool = False) -> None:
        super().__init__()
        self._inner = inner
        self._mode = _Mode.REASONING if starts_in_reasoning else _Mode.START
        self._trim = starts_in_reasoning  # drop the whitespace that comes next

    def finish(self) -> list[ParsedEvent]:
        events = super().finish()
        return [*events, *self._inner.finish()]

    def _step(self) -> bool:
        if self._trim:
            return self._drop_leading()
        if self._mode is _Mode.START:
            return self._start()
        if self._mode is _Mode.REASONING:
            return self._reasoning()
        self._pass(self._buf)
        self._buf = ""
        return False

    def _drop_leading(self) -> bool:
        i = skip_whitespace(self._buf)
        self._buf = self._buf[i:]
        if not self._buf:
            return False
        self._trim = False
        return True

    def _start(self) -> bool:
        i = skip_whitespace(self._buf)
        rest = self._buf[i:]
        if rest.startswith(OPEN):
            self._buf = rest[len(OPEN) :]
            self._mode, self._trim = _Mode.REASONING, True
            return True
        if not self._done and (not rest or could_start(rest, (OPEN,))):
            return False
        self._mode = _Mode.CONTENT
        return True

    def _reasoning(self) -> bool:
        pos, marker = find_marker(self._buf, (CLOSE,))
        if marker is None and self._done:
            pos = len(self._buf)
        self._emit(ReasoningDelta(self._buf[:pos]))
        if marker is None:
            self._buf = self._buf[pos:]
            return False
        self._buf = self._buf[pos + len(marker) :]
        self._mode, self._trim = _Mode.CONTENT, True
        return True

    def _pass(self, text: str) -> None:
        if text:
            self._sink.extend(self._inner.feed(text))
