"""Reading one tool call's JSON as it streams: `{"name": "fn", "arguments": {...}}`, or a bare arguments
object when the markup already named the tool.

Before the call is recognised the reader only holds text back (its `raw`); if the text turns out not to
be a call to one of the given tools the reader is `REJECTED` and the caller puts `raw` back into content.
Once the header `{"name": "fn", "arguments": ` has parsed with a known name, `ToolCallBegin` goes out and
the arguments stream as they come. When the object's keys come in another order, or the arguments are a
JSON string, the call is recognised when the whole object has been read and goes out at once.

After `ToolCallBegin` the call always closes with `ToolCallEnd`: at the end of the arguments object, at a
bracket that does not match (the rest goes back to the caller as content), or when the text ends
(truncated). The arguments streamed so far are left as they were: in the last two cases, or when the
model wrote invalid JSON inside balanced brackets, `json.loads` of them fails and the service decides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from enum import Enum

from openlms.parsers.output.base import WHITESPACE, CallIds, IdFactory, StepParser
from openlms.parsers.output.events import ParsedEvent, ToolCallArgs, ToolCallEnd
from openlms.parsers.output.jsonscan import MISMATCH, JsonScanner, decode_call

_HEADER = re.compile(
    r'\{\s*(?:"type"\s*:\s*"function"\s*,\s*)?"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,'
    r'\s*"(?:arguments|parameters)"\s*:\s*\{\Z'
)


class ReadState(Enum):
    START = "start"  # whitespace before the object
    HEADER = "header"  # inside the call object, before the arguments (held back)
    ARGS = "args"  # streaming the arguments object
    TAIL = "tail"  # after the arguments, up to the end of the call object (dropped)
    DONE = "done"
    REJECTED = "rejected"


class CallObjectReader:
    """One call, fed in pieces; `feed` returns how many characters it consumed."""

    __slots__ = (
        "_base",
        "_calls",
        "_checked",
        "_emit",
        "_index",
        "_names",
        "_raw",
        "_scan",
        "name",
        "state",
    )

    def __init__(
        self,
        tool_names: Collection[str],
        calls: CallIds,
        emit: Callable[[ParsedEvent], None],
        *,
        name: str | None = None,
    ) -> None:
        """With `name`, the text is the bare arguments object of a call to that (known) tool."""
        self._names = tool_names
        self._calls = calls
        self._emit = emit
        self.name = name
        self._base = 0 if name is not None else 1  # scanner depth at which the arguments are closed
        self._raw: list[str] = []
        self._scan = JsonScanner()
        self._index = -1
        self._checked = False  # the streaming header shape was tried
        self.state = ReadState.START

    @property
    def raw(self) -> str:
        """The text consumed while the call was not yet recognised."""
        return "".join(self._raw)

    @property
    def finished(self) -> bool:
        return self.state in (ReadState.DONE, ReadState.REJECTED)

    def feed(self, text: str, final: bool = False) -> int:
        """Consume from `text`; with `final`, nothing more will come and the reader must finish."""
        i = 0
        while i < len(text) and not self.finished:
            i = self._step(text, i)
        if final and not self.finished:
            self._finalize()
        return i

    def _step(self, text: str, i: int) -> int:
        if self.state is ReadState.START:
            return self._start(text, i)
        if self.state is ReadState.HEADER:
            return self._header(text, i)
        if self.state is ReadState.ARGS:
            return self._arguments(text, i)
        return self._tail(text, i)

    def _start(self, text: str, i: int) -> int:
        j = i
        while j < len(text) and text[j] in WHITESPACE:
            j += 1
        self._raw.append(text[i:j])
        if j == len(text):
            return j
        if text[j] != "{":
            self.state = ReadState.REJECTED
        elif self.name is not None:
            self._begin(self.name)
        else:
            self.state = ReadState.HEADER
        return j

    def _header(self, text: str, i: int) -> int:
        j, bracket = self._scan.advance(text, i)
        self._raw.append(text[i:j])
        if bracket == MISMATCH:
            self.state = ReadState.REJECTED
        elif bracket and self._scan.depth == 0:
            self._whole_object()
        elif bracket in ("{", "[") and self._scan.depth == 2 and not self._checked:
            self._checked = True
            self._try_header()
        return j

    def _try_header(self) -> None:
        match = _HEADER.match(self.raw.lstrip(WHITESPACE))
        if match is None:
            return  # not the streaming shape: the whole object decides
        name = json.loads(match.group(1))
        if name not in self._names:
            self.state = ReadState.REJECTED
            return
        self.name = name
        self._begin(name)
        self._piece("{")

    def _whole_object(self) -> None:
        decoded = decode_call(self.raw.lstrip(WHITESPACE), self._names)
        if decoded is None:
            self.state = ReadState.REJECTED
            return
        name, arguments = decoded
        self._begin(name)
        self._piece(arguments)
        self._end()
        self.state = ReadState.DONE

    def _arguments(self, text: str, i: int) -> int:
        j, bracket = self._scan.advance(text, i)
        self._piece(text[i:j])
        if bracket == MISMATCH:
            self._end()
            self.state = ReadState.DONE
        elif bracket and self._scan.depth == self._base:
            self._end()
            self.state = ReadState.TAIL if self._base else ReadState.DONE
        return j

    def _tail(self, text: str, i: int) -> int:
        j, bracket = self._scan.advance(text, i)
        if bracket == MISMATCH or (bracket and self._scan.depth == 0):
            self.state = ReadState.DONE
        return j

    def _finalize(self) -> None:
        if self.state is ReadState.ARGS:  # truncated
            self._end()
            self.state = ReadState.DONE
        elif self.state is ReadState.TAIL:
            self.state = ReadState.DONE
        else:
            self.state = ReadState.REJECTED

    def _begin(self, name: str) -> None:
        begin = self._calls.begin(name)
        self._index = begin.index
        self._emit(begin)
        self._raw = []
        self.state = ReadState.ARGS

    def _piece(self, text: str) -> None:
        self._emit(ToolCallArgs(self._index, text))

    def _end(self) -> None:
        self._emit(ToolCallEnd(self._index))


class CallReadingParser(StepParser):
    """A `StepParser` whose markup wraps JSON tool calls: the tools, the message's call ids and the
    `CallObjectReader` of the call being read (None between calls)."""

    def __init__(self, tool_names: Collection[str], new_id: IdFactory | None) -> None:
        super().__init__()
        self._names = frozenset(tool_names)
        self._calls = CallIds(new_id)
        self._reader: CallObjectReader | None = None

    def _start_reader(self, name: str | None = None) -> None:
        """Read a call from the buffer on; with `name`, the bare arguments object of that (known) tool."""
        self._reader = CallObjectReader(self._names, self._calls, self._emit, name=name)

    def _feed_reader(self, end: int | None = None, final: bool | None = None) -> CallObjectReader | None:
        """Feed the buffer (up to `end`) to the current reader and drop what it consumed. Returns the reader
        once it has finished (the parser then has none), else None. `final` defaults to the end of text."""
        reader = self._reader
        assert reader is not None
        used = reader.feed(self._buf[:end], self._done if final is None else final)
        self._buf = self._buf[used:]
        if not reader.finished:
            return None
        self._reader = None
        return reader
