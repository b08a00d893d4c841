"""Calls wrapped in an opening and a closing tag, one JSON object each.

Hermes / Qwen: `<tool_call>\n{"name": "fn", "arguments": {...}}\n</tool_call>`.
LM Studio's default format: `[TOOL_REQUEST]{"name": "fn", "arguments": {...}}[END_TOOL_REQUEST]`.

Text before, between and after calls is content. The closing tag is optional (a call is complete when its
object is); whitespace between calls, and after the last one, is dropped. An opening tag that is not
followed by a well-formed call to one of the tools stays in content with the text after it, as written.

Hermes also takes the other shapes llama.cpp's Hermes parser takes, which Qwen2.5-Coder models write
instead of `<tool_call>`: a fenced JSON block (`` ```json\n{"name": "fn", "arguments": {...}}\n``` ``),
`<json>`, `<response>`, `<tool>`, `<function_call>`... tags, and a bare call object that starts the
output. What turns out not to be a call to one of the tools (other JSON, another name) stays in content
as written.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from openlms.parsers.output.base import IdFactory, could_start, skip_whitespace
from openlms.parsers.output.callobj import CallReadingParser, ReadState

# llama.cpp's Hermes parser's other openings of a call (common/chat.cpp), each with its closing
HERMES_ALTERNATIVES = {
    "```json": "```",
    **{
        f"<{tag}>": f"</{tag}>"
        for tag in ("function_call", "tool", "tools", "response", "json", "JSON", "xml")
    },
}


class TaggedCallParser(CallReadingParser):
    def __init__(
        self,
        tool_names: Collection[str],
        open_tag: str,
        close_tag: str,
        *,
        alternatives: Mapping[str, str] | None = None,
        bare_start: bool = False,
        new_id: IdFactory | None = None,
    ) -> None:
        """`alternatives`: more (opening, closing) markers of calls; `bare_start`: a call object may
        start the output without any marker."""
        super().__init__(tool_names, new_id)
        self._closing = {open_tag: close_tag, **(alternatives or {}), "": ""}
        self._opens = tuple(m for m in self._closing if m)
        self._open = open_tag  # the opening marker of the call being read (or the last one)
        self._bare = bare_start  # nothing but whitespace has come yet, and a bare call may start
        self._bare_after = bare_start  # a bare call object may also follow a call (small models mix forms)
        self._after = False  # just after a call: holding whitespace, maybe a closing tag
        self._closed = False  # the closing tag of the last call was seen

    def _step(self) -> bool:
        if self._reader is not None:
            return self._read_call()
        if self._after:
            return self._after_call()
        return self._text()

    def _text(self) -> bool:
        if self._bare:
            return self._bare_call()
        marker = self._content_until(self._opens)
        if marker is None:
            return False
        self._start_call(0, marker)
        return True

    def _bare_call(self) -> bool:
        """At the start of the output: a `{` after whitespace may open a call (the reader decides)."""
        i = skip_whitespace(self._buf)
        if i == len(self._buf) and not self._done:
            return False
        self._bare = False
        if i < len(self._buf) and self._buf[i] == "{":
            self._start_call(0, "")  # the whitespace goes to the reader: back into content if rejected
        return True

    def _start_call(self, start: int, marker: str) -> None:
        self._open = marker
        self._buf = self._buf[start + len(marker) :]
        self._start_reader()

    def _read_call(self) -> bool:
        reader = self._feed_reader()
        if reader is None:
            return False
        if reader.state is ReadState.REJECTED:
            self._content(self._open + reader.raw)
        else:
            self._after, self._closed = True, not self._closing[self._open]
        return True

    def _after_call(self) -> bool:
        i = self._past_whitespace()
        if i is None:
            return False
        rest = self._buf[i:]
        close = self._closing[self._open]
        if not self._closed and rest.startswith(close):
            self._buf = rest[len(close) :]
            self._closed = True
            return True
        marker = next((m for m in self._opens if rest.startswith(m)), None)
        if marker is not None:
            self._after = False
            self._start_call(i, marker)
            return True
        if self._bare_after and rest.startswith("{"):
            self._after = False
            self._start_call(0, "")  # the whitespace goes to the reader: back into content if rejected
            return True
        expected = self._opens if self._closed else (*self._opens, close)
        if could_start(rest, expected) and not self._done:
            return False
        if not self._closed and close.startswith(rest):  # the end of the output cut the closing tag
            self._buf, self._after = "", False
            return False
        self._after = False  # other text: content again, whitespace included
        return True


def hermes_parser(tool_names: Collection[str], *, new_id: IdFactory | None = None) -> TaggedCallParser:
    return TaggedCallParser(
        tool_names,
        "<tool_call>",
        "</tool_call>",
        alternatives=HERMES_ALTERNATIVES,
        bare_start=True,
        new_id=new_id,
    )


def default_format_parser(
    tool_names: Collection[str], *, new_id: IdFactory | None = None
) -> TaggedCallParser:
    return TaggedCallParser(tool_names, "[TOOL_REQUEST]", "[END_TOOL_REQUEST]", new_id=new_id)
