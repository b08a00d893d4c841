"""Calls wrapped in an opening and a closing tag, one JSON object each.

Hermes / Qwen: `<tool_call>\n{"name": "fn", "arguments": {...}}\n</tool_call>`.
LM Studio's default format: `[TOOL_REQUEST]{"name": "fn", "arguments": {...}}[END_TOOL_REQUEST]`.

Text before, between and after calls is content. The closing tag is optional (a call is complete when its
object is); whitespace between calls, and after the last one, is dropped. An opening tag that is not
followed by a well-formed call to one of the tools stays in content with the text after it, as written.
"""

from __future__ import annotations

from collections.abc import Collection

from openlms.parsers.output.base import (
    CallIds,
    IdFactory,
    StepParser,
    could_start,
    find_marker,
    skip_whitespace,
)
from openlms.parsers.output.callobj import CallObjectReader, ReadState


class TaggedCallParser(StepParser):
    def __init__(
        self, tool_names: Collection[str], open_tag: str, close_tag: str, *, new_id: IdFactory | None = None
    ) -> None:
        super().__init__()
        self._names = frozenset(tool_names)
        self._open = open_tag
        self._close = close_tag
        self._calls = CallIds(new_id)
        self._reader: CallObjectReader | None = None
        self._after = False  # just after a call: holding whitespace, maybe a closing tag
        self._closed = False  # the closing tag of the last call was seen

    def _step(self) -> bool:
        if self._reader is not None:
            return self._read_call(self._reader)
        if self._after:
            return self._after_call()
        return self._text()

    def _text(self) -> bool:
        pos, marker = find_marker(self._buf, (self._open,))
        if marker is None and self._done:
            pos = len(self._buf)
        self._content(self._buf[:pos])
        if marker is None:
            self._buf = self._buf[pos:]
            return False
        self._start_call(pos + len(marker))
        return True

    def _start_call(self, skip: int) -> None:
        self._buf = self._buf[skip:]
        self._reader = CallObjectReader(self._names, self._calls, self._emit)

    def _read_call(self, reader: CallObjectReader) -> bool:
        used = reader.feed(self._buf, self._done)
        self._buf = self._buf[used:]
        if not reader.finished:
            return False
        self._reader = None
        if reader.state is ReadState.REJECTED:
            self._content(self._open + reader.raw)
        else:
            self._after, self._closed = True, False
        return True

    def _after_call(self) -> bool:
        i = skip_whitespace(self._buf)
        rest = self._buf[i:]
        if not rest:
            if self._done:
                self._buf = ""
            return False
        if not self._closed and rest.startswith(self._close):
            self._buf = rest[len(self._close) :]
            self._closed = True
            return True
        if rest.startswith(self._open):
            self._after = False
            self._start_call(i + len(self._open))
            return True
        expected = (self._open,) if self._closed else (self._open, self._close)
        if could_start(rest, expected) and not self._done:
            return False
        self._after = False  # other text: content again, whitespace included
        return True


def hermes_parser(tool_names: Collection[str], *, new_id: IdFactory | None = None) -> TaggedCallParser:
    return TaggedCallParser(tool_names, "<tool_call>", "</tool_call>", new_id=new_id)


def default_format_parser(
    tool_names: Collection[str], *, new_id: IdFactory | None = None
) -> TaggedCallParser:
    return TaggedCallParser(tool_names, "[TOOL_REQUEST]", "[END_TOOL_REQUEST]", new_id=new_id)
