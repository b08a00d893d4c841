"""OpenAI Harmony (gpt-oss): messages with headers, channels and recipients, all in control tokens.

    <|channel|>analysis<|message|>thinking...<|end|>
    <|start|>assistant<|channel|>final<|message|>the answer<|return|>
    <|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{args}<|call|>

The header is everything up to `<|message|>` (the first `<|start|>assistant` is usually in the prompt);
`to=functions.NAME` may come before or after the channel. The analysis channel is reasoning (content when
reasoning is off); a message to a known function is a tool call whose body is the arguments object; every
other message body is content. A body ends at `<|end|>`, `<|call|>`, `<|return|>`, or at a `<|start|>` or
`<|channel|>` that begins the next header. No `<|...|>` token ever reaches content or reasoning. Text after
a call's arguments object, up to the end of its body, is dropped; a call body that is not an object is
content. Output that never reaches `<|message|>` (a model writing plain text) becomes content after
`MAX_HEADER` characters or at the end; a header cut off by the end of generation is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from enum import Enum

from openlms.parsers.output.base import IdFactory
from openlms.parsers.output.callobj import CallReadingParser, ReadState
from openlms.parsers.output.events import ReasoningDelta

MESSAGE = "<|message|>"
MAX_HEADER = 256
_TOKEN = re.compile(r"<\|[A-Za-z0-9_]{1,32}\|>")
_PARTIAL_TOKEN = re.compile(r"<(?:\|[A-Za-z0-9_]{0,32}\|?)?")
_CHANNEL = re.compile(r"<\|channel\|>\s*([A-Za-z0-9_]+)")
_RECIPIENT = re.compile(r"\bto=([^\s<]+)")
_ENDS = frozenset({"<|end|>", "<|call|>", "<|return|>", "<|endoftext|>"})


class _Mode(Enum):
    HEADER = "header"
    CONTENT = "content"
    REASONING = "reasoning"
    CALL = "call"
    SKIP = "skip"  # the rest of a call's body


def split_token(text: str) -> tuple[int, str | None]:
    """(start, token) of the first complete `<|...|>` token, else (start of a possible partial one, None)."""
    match = _TOKEN.search(text)
    if match:
        return match.start(), match.group()
    last = text.rfind("<")
    if last != -1 and _PARTIAL_TOKEN.fullmatch(text, last):
        return last, None
    return len(text), None


class HarmonyParser(CallReadingParser):
    def __init__(
        self, tool_names: Collection[str], *, reasoning: bool = True, new_id: IdFactory | None = None
    ) -> None:
        super().__init__(tool_names, new_id)
        self._reasoning = reasoning
        self._mode = _Mode.HEADER

    def _step(self) -> bool:
        if self._mode is _Mode.HEADER:
            return self._read_header()
        if self._mode is _Mode.CALL:
            return self._read_call()
        return self._body()

    def _read_header(self) -> bool:
        """The header stays in the buffer until `<|message|>` ends it (or it cannot be a header)."""
        pos = self._buf.find(MESSAGE)
        if pos != -1 and pos <= MAX_HEADER:
            self._open_body(self._buf[:pos])
            self._buf = self._buf[pos + len(MESSAGE) :]
            return True
        if pos != -1 or len(self._buf) >= MAX_HEADER + len(MESSAGE):
            token = _TOKEN.match(self._buf)  # not a header: a body of plain text from here
            self._buf = self._buf[token.end() :] if token else self._buf
            self._mode = _Mode.CONTENT
            return True
        if self._done:
            if _TOKEN.search(self._buf) is None:
                self._content(self._buf)  # plain text, no markup at all
            self._buf = ""  # else a header cut off by the end of generation
        return False

    def _open_body(self, header: str) -> None:
        header = header.rsplit("<|start|>", 1)[-1]
        channel = _CHANNEL.findall(header)
        recipient = _RECIPIENT.search(header)
        target = recipient.group(1) if recipient else None
        if target is not None and target.startswith("functions."):
            name = target[len("functions.") :]
            if name in self._names:
                self._start_reader(name)
                self._mode = _Mode.CALL
                return
        analysis = bool(channel) and channel[-1] == "analysis" and target is None
        self._mode = _Mode.REASONING if analysis and self._reasoning else _Mode.CONTENT

    def _body(self) -> bool:
        pos, token = split_token(self._buf)
        self._text(self._take_before(pos, token))
        if token is None:
            return False
        if token == "<|channel|>":  # the next header begins (its <|start|> is missing)
            self._mode = _Mode.HEADER
            return True
        self._buf = self._buf[len(token) :]
        if token in _ENDS or token == "<|start|>":
            self._mode = _Mode.HEADER
        return True  # other tokens in a body (<|message|>, <|constrain|>, reserved ones) are dropped

    def _text(self, text: str) -> None:
        if self._mode is _Mode.CONTENT:
            self._content(text)
        elif self._mode is _Mode.REASONING:
            self._emit(ReasoningDelta(text))

    def _read_call(self) -> bool:
        pos, token = split_token(self._buf)
        reader = self._feed_reader(pos, token is not None or self._done)
        if reader is None:
            return False
        if reader.state is ReadState.REJECTED:
            self._content(reader.raw)
            self._mode = _Mode.CONTENT
        else:
            self._mode = _Mode.SKIP
        return True
