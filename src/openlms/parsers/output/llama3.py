"""Llama 3.1 / 3.2 JSON tool calls: `{"name": "fn", "parameters": {...}}` ("arguments" also accepted),
optionally after `<|python_tag|>`, several separated by `;` or newlines.

Calls are recognised only when the message, after leading whitespace, starts with `{` or
`<|python_tag|>`; any other message is all content. After the calls, the first text that does not start
another call makes the rest of the message content; a call that does not parse does the same (the held
text goes back into content as written).
"""

from __future__ import annotations

from collections.abc import Collection
from enum import Enum

from openlms.parsers.output.base import IdFactory, could_start, skip_whitespace
from openlms.parsers.output.callobj import CallReadingParser, ReadState

PYTHON_TAG = "<|python_tag|>"


class _Mode(Enum):
    START = "start"  # leading whitespace, or between calls (separators held)
    CALL = "call"
    TEXT = "text"  # everything else is content


class Llama3Parser(CallReadingParser):
    def __init__(self, tool_names: Collection[str], *, new_id: IdFactory | None = None) -> None:
        super().__init__(tool_names, new_id)
        self._mode = _Mode.START
        self._held = ""  # separators and tag before the current call, content if it fails
        self._any_call = False

    def _step(self) -> bool:
        if self._mode is _Mode.TEXT:
            self._content(self._buf)
            self._buf = ""
            return False
        if self._reader is not None:
            return self._read_call()
        return self._between()

    def _between(self) -> bool:
        separators = ";" if self._any_call else ""
        i = skip_whitespace(self._buf, 0, separators)
        rest = self._buf[i:]
        if rest.startswith(("{", PYTHON_TAG)):
            tag = PYTHON_TAG if rest.startswith(PYTHON_TAG) else ""
            self._held = self._buf[: i + len(tag)]
            self._buf = rest[len(tag) :]
            self._start_reader()
            return True
        if not self._done and (not rest or could_start(rest, (PYTHON_TAG,))):
            return False
        if not rest and self._any_call:
            self._buf = ""  # trailing separators after the calls
            return False
        self._mode = _Mode.TEXT
        return True

    def _read_call(self) -> bool:
        reader = self._feed_reader()
        if reader is None:
            return False
        if reader.state is ReadState.REJECTED:
            self._content(self._held + reader.raw)
            self._mode = _Mode.TEXT
        else:
            self._any_call = True
        self._held = ""
        return True
