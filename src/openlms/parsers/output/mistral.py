"""Mistral tool calls, after the `[TOOL_CALLS]` control token.

Older tokenizers: `[TOOL_CALLS][{"name": "fn", "arguments": {...}}, ...]` (a JSON array of calls).
v11+ / v13 tokenizers: `[TOOL_CALLS]fn[ARGS]{...}`, optionally `[TOOL_CALLS]fn[CALL_ID]abc123xyz[ARGS]{...}`,
repeated for several calls. The model's call ids are not reused: ids are always fresh and unique.

Text before and after the calls is content; whitespace between calls and after the last one is dropped.
A `[TOOL_CALLS]` that is not followed by a well-formed call to a known tool stays in content as written,
together with the text read after it (from an array, the calls already recognised are kept).
"""

from __future__ import annotations

from collections.abc import Collection
from enum import Enum

from openlms.parsers.output.base import IdFactory, could_start, find_marker, skip_whitespace
from openlms.parsers.output.callobj import CallReadingParser, ReadState

TOOL_CALLS = "[TOOL_CALLS]"
ARGS = "[ARGS]"
CALL_ID = "[CALL_ID]"
_MAX_CALL_ID = 64


class _Mode(Enum):
    TEXT = "text"
    MARKER = "marker"  # after [TOOL_CALLS]: an array or a name follows
    NAME = "name"
    CALL_ID = "call_id"
    ITEM = "item"  # an object of the array
    ARRAY_SEP = "array_sep"
    ARGS = "args"  # the arguments after [ARGS]
    AFTER = "after"  # after the calls: whitespace held


class MistralParser(CallReadingParser):
    def __init__(self, tool_names: Collection[str], *, new_id: IdFactory | None = None) -> None:
        super().__init__(tool_names, new_id)
        self._mode = _Mode.TEXT
        self._held = ""  # text since [TOOL_CALLS] not yet part of a call (content if none comes)
        self._name = ""

    def _step(self) -> bool:
        match self._mode:
            case _Mode.TEXT:
                return self._text()
            case _Mode.MARKER:
                return self._marker()
            case _Mode.NAME:
                return self._read_name()
            case _Mode.CALL_ID:
                return self._call_id()
            case _Mode.ITEM | _Mode.ARGS:
                return self._read_call()
            case _Mode.ARRAY_SEP:
                return self._array_sep()
            case _Mode.AFTER:
                return self._after()

    def _text(self) -> bool:
        marker = self._content_until((TOOL_CALLS,))
        if marker is None:
            return False
        self._hold(len(marker), marker, _Mode.MARKER)
        return True

    def _hold(self, size: int, text: str, mode: _Mode) -> None:
        """Move `size` characters of the buffer to the held text (`text` for what they were)."""
        self._held += text
        self._buf = self._buf[size:]
        self._mode = mode

    def _reject(self) -> bool:
        self._content(self._held)
        self._held = ""
        self._mode = _Mode.TEXT
        return True

    def _marker(self) -> bool:
        i = skip_whitespace(self._buf)
        if i == len(self._buf):
            return self._reject() if self._done else False
        if self._buf[i] == "[":
            self._hold(i + 1, self._buf[: i + 1], _Mode.ITEM)
            self._start_reader()
        else:
            self._hold(i, self._buf[:i], _Mode.NAME)
        return True

    def _read_name(self) -> bool:
        end = self._buf.find("[")
        name = self._buf if end == -1 else self._buf[:end]
        if not any(tool.startswith(name) for tool in self._names):
            return self._reject()
        if end == -1:
            return self._reject() if self._done else False
        rest = self._buf[end:]
        for tag, mode in ((ARGS, _Mode.ARGS), (CALL_ID, _Mode.CALL_ID)):
            if rest.startswith(tag) and name in self._names:
                self._name = name
                self._hold(end + len(tag), self._buf[: end + len(tag)], mode)
                if mode is _Mode.ARGS:
                    self._start_reader(name)
                return True
        if could_start(rest, (ARGS, CALL_ID)) and not self._done:
            return False
        return self._reject()

    def _call_id(self) -> bool:
        pos, marker = find_marker(self._buf, (ARGS,))
        if marker is None:
            if pos > _MAX_CALL_ID or self._done:
                return self._reject()
            return False
        if pos > _MAX_CALL_ID or not self._buf[:pos].strip().isalnum():
            return self._reject()
        self._hold(pos + len(marker), self._buf[: pos + len(marker)], _Mode.ARGS)
        self._start_reader(self._name)
        return True

    def _read_call(self) -> bool:
        reader = self._feed_reader()
        if reader is None:
            return False
        if reader.state is ReadState.REJECTED:
            self._held += reader.raw
            return self._reject()
        self._held = ""
        self._mode = _Mode.ARRAY_SEP if self._mode is _Mode.ITEM else _Mode.AFTER
        return True

    def _array_sep(self) -> bool:
        i = self._past_whitespace()
        if i is None:
            return False
        char = self._buf[i]
        if char not in ",]":
            self._mode = _Mode.TEXT  # not the array's syntax: content from here on
            return True
        self._buf = self._buf[i + 1 :]
        self._mode = _Mode.ITEM if char == "," else _Mode.AFTER
        if char == ",":
            self._start_reader()
        return True

    def _after(self) -> bool:
        i = self._past_whitespace()
        if i is None:
            return False
        rest = self._buf[i:]
        if rest.startswith(TOOL_CALLS):
            self._buf = rest
            self._mode = _Mode.TEXT  # it finds the marker at once
            return True
        if could_start(rest, (TOOL_CALLS,)) and not self._done:
            return False
        self._mode = _Mode.TEXT
        return True
