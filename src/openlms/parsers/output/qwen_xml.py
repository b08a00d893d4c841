"""Qwen3-Coder / Qwen 3.5 XML tool calls ("qwen3_xml").

```
<tool_call>
<function=get_weather>
<parameter=city>
Paris
</parameter>
</function>
</tool_call>
```

Values are raw text: one leading and one trailing newline of each value are markup, the rest is kept as
written. The tools' parameter schemas decide how a value becomes JSON (`json_value`); a parameter whose
schema says "string" (or that the schema does not list) streams as a JSON string while it is written,
any other value goes out whole when its `</parameter>` comes.

`ToolCallBegin` goes out when `<function=NAME>` is complete and NAME is one of the tools; the arguments
object streams as `{`, then `"name": value` per parameter (`, ` between), then `}` at `</function>` (or at
`</tool_call>` when `</function>` is missing). Text before, between and after calls is content;
whitespace between calls and after the last one is dropped, and `</tool_call>` is optional, as in hermes.
A `<tool_call>` not followed by `<function=` and a known name stays in content with the text after it,
as written.

Once a call has begun it always ends with `ToolCallEnd` and a complete JSON object: markup that does not
belong inside a call (anything but `<parameter=`, `</function>`, `</tool_call>` and whitespace) closes the
call and goes back to content from there; at the end of the text (truncated) a parameter being written is
closed with what it has (a cut `</parameter>` is dropped) and a cut parameter or closing tag is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any

from openlms.parsers.output.base import (
    WHITESPACE,
    CallIds,
    IdFactory,
    StepParser,
    could_start,
    partial_suffix,
    skip_whitespace,
)
from openlms.parsers.output.events import ToolCallArgs, ToolCallEnd

ToolSchemas = Mapping[str, Mapping[str, Any] | None]  # tool name -> its `parameters` JSON schema

TOOL_CALL = "<tool_call>"
TOOL_CALL_END = "</tool_call>"
FUNCTION = "<function="
FUNCTION_END = "</function>"
PARAMETER = "<parameter="
PARAMETER_END = "</parameter>"
MAX_PARAMETER_NAME = 200  # a longer `<parameter=...` is not markup
_BODY_MARKERS = (PARAMETER, FUNCTION_END, TOOL_CALL_END)
_STRING = frozenset({"string"})
_PYTHON_CONSTANTS = MappingProxyType(
    {"True": ("boolean", "true"), "False": ("boolean", "false"), "None": ("null", "null")}
)


def parameter_types(tool_schema: Mapping[str, Any] | None, name: str) -> frozenset[str] | None:
    """The JSON types a parameter may have: {"string"} for one the schema does not list, None if unknown."""
    if not isinstance(tool_schema, Mapping):
        return None
    properties = tool_schema.get("properties")
    if not isinstance(properties, Mapping):
        return None
    if name not in properties:
        return _STRING
    return _schema_types(properties[name]) or None


def _schema_types(schema: Any) -> frozenset[str]:
    if not isinstance(schema, Mapping):
        return frozenset()
    kind = schema.get("type")
    if isinstance(kind, str):
        return frozenset({kind})
    if isinstance(kind, list):
        return frozenset(k for k in kind if isinstance(k, str))
    members = [m for key in ("anyOf", "oneOf") if isinstance(schema.get(key), list) for m in schema[key]]
    return frozenset().union(*(_schema_types(m) for m in members))


def json_value(raw: str, types: frozenset[str] | None) -> str:
    """The JSON text of a parameter value written as `raw`, for a parameter of `types` (None: unknown).

    A string parameter's value is a string; any other is the JSON it holds, or a string when it holds no
    JSON (or, for a parameter that may also be a string, JSON of none of its other types). A boolean or
    null parameter also takes Python's `True`, `False` and `None`.
    """
    if types == _STRING:
        return _string(raw)
    python = _PYTHON_CONSTANTS.get(raw.strip(WHITESPACE))
    if types is not None and python is not None and python[0] in types:
        return python[1]  # as Jinja's `| string` writes it, which the template shows the model
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return _string(raw)
    if types is not None and "string" in types and not _has_type(value, types):
        return _string(raw)
    return raw.strip(WHITESPACE)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _has_type(value: Any, types: frozenset[str]) -> bool:
    checks = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
    }
    return any(checks.get(kind, False) for kind in types)


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _escaped(text: str) -> str:
    """`text` as it reads inside a JSON string (a piece of one: escapes never straddle pieces)."""
    return _string(text)[1:-1]


class _State(Enum):
    TEXT = "text"  # content, looking for <tool_call>
    HEAD = "head"  # `_buf` starts with <tool_call>: waiting for <function=NAME>
    BODY = "body"  # inside a call, between parameters
    VALUE = "value"  # inside a parameter value
    AFTER = "after"  # after a call: whitespace, maybe </tool_call>, maybe the next call


@dataclass(slots=True)
class _Value:
    """The parameter being written."""

    types: frozenset[str] | None
    started: bool = False  # its leading newline was handled
    scanned: int = 0  # `_buf` before this holds no `</parameter>` (values that do not stream)

    @property
    def streams(self) -> bool:
        return self.types == _STRING


class QwenXmlParser(StepParser):
    def __init__(
        self,
        tool_names: Collection[str],
        *,
        tool_schemas: ToolSchemas | None = None,
        new_id: IdFactory | None = None,
    ) -> None:
        super().__init__()
        self._names = frozenset(tool_names)
        self._schemas: ToolSchemas = tool_schemas or {}
        self._calls = CallIds(new_id)
        self._state = _State.TEXT
        self._index = -1  # the open call
        self._tool = ""
        self._members = 0  # parameters written in the open call
        self._value: _Value | None = None
        self._closed = False  # AFTER: the call's </tool_call> was seen

    def _step(self) -> bool:
        if self._state is _State.TEXT:
            return self._text()
        if self._state is _State.HEAD:
            return self._head()
        if self._state is _State.BODY:
            return self._body()
        if self._state is _State.VALUE and self._value is not None:
            return self._read_value(self._value)
        return self._after_call()

    def _text(self) -> bool:
        if self._content_until((TOOL_CALL,)) is None:
            return False
        self._state = _State.HEAD
        return True

    def _head(self) -> bool:
        rest = self._buf[skip_whitespace(self._buf, len(TOOL_CALL)) :]
        if not rest.startswith(FUNCTION):
            if could_start(rest, (FUNCTION,)) and not self._done:
                return False
            return self._reject()
        name_part = rest[len(FUNCTION) :]
        end = name_part.find(">")
        if end == -1:
            if not self._done and any(n.startswith(name_part) for n in self._names):
                return False
            return self._reject()
        if name_part[:end] not in self._names:
            return self._reject()
        self._buf = name_part[end + 1 :]
        self._begin(name_part[:end])
        return True

    def _reject(self) -> bool:
        """The <tool_call> tag is content; what follows it is read again as text."""
        self._content(TOOL_CALL)
        self._buf = self._buf[len(TOOL_CALL) :]
        self._state = _State.TEXT
        return True

    def _begin(self, name: str) -> None:
        begin = self._calls.begin(name)
        self._emit(begin)
        self._index, self._tool, self._members = begin.index, name, 0
        self._args("{")
        self._state = _State.BODY

    def _body(self) -> bool:
        rest = self._buf[skip_whitespace(self._buf) :]
        if rest.startswith(PARAMETER):
            return self._open_parameter(rest[len(PARAMETER) :])
        for closer in (FUNCTION_END, TOOL_CALL_END):
            if rest.startswith(closer):
                self._buf = rest[len(closer) :]
                self._end_call(_State.AFTER)
                self._closed = closer == TOOL_CALL_END
                return True
        if could_start(rest, _BODY_MARKERS):
            return self._truncated() if self._done else False
        self._end_call(_State.TEXT)  # not this format: content again, from here
        return True

    def _open_parameter(self, name_part: str) -> bool:
        end = name_part.find(">")
        name = name_part if end == -1 else name_part[:end]
        if "<" in name or "\n" in name or len(name) > MAX_PARAMETER_NAME or end == 0:
            self._end_call(_State.TEXT)
            return True
        if end == -1:
            return self._truncated() if self._done else False
        self._buf = name_part[end + 1 :]
        self._start_value(name)
        return True

    def _truncated(self) -> bool:
        """The text ended inside a tag between parameters: the cut tag is dropped."""
        self._buf = ""
        self._end_call(_State.TEXT)
        return False

    def _start_value(self, name: str) -> None:
        value = _Value(parameter_types(self._schemas.get(self._tool), name))
        separator = ", " if self._members else ""
        self._args(f"{separator}{_string(name)}: " + ('"' if value.streams else ""))
        self._members += 1
        self._value = value
        self._state = _State.VALUE

    def _read_value(self, value: _Value) -> bool:
        if not value.started:
            if not self._buf and not self._done:
                return False
            self._buf = self._buf.removeprefix("\n")
            value.started = True
        buf = self._buf
        pos = buf.find(PARAMETER_END, value.scanned)
        if pos != -1 or self._done:
            cut = pos if pos != -1 else len(buf) - partial_suffix(buf, PARAMETER_END)
            self._end_value(value, buf[:cut])
            self._buf = buf[pos + len(PARAMETER_END) :] if pos != -1 else ""
            return True
        if value.streams:
            self._stream_value(buf)
        else:
            value.scanned = max(0, len(buf) - len(PARAMETER_END) + 1)
        return False

    def _stream_value(self, buf: str) -> None:
        """Send what cannot be the closing tag, nor the newline just before it."""
        safe = len(buf) - partial_suffix(buf, PARAMETER_END)
        if safe and buf[safe - 1] == "\n":
            safe -= 1
        self._args(_escaped(buf[:safe]))
        self._buf = buf[safe:]

    def _end_value(self, value: _Value, text: str) -> None:
        text = text.removesuffix("\n")
        self._args(_escaped(text) + '"' if value.streams else json_value(text, value.types))
        self._value = None
        self._state = _State.BODY

    def _end_call(self, then: _State) -> None:
        self._args("}")
        self._emit(ToolCallEnd(self._index))
        self._value = None
        self._state = then

    def _after_call(self) -> bool:
        i = self._past_whitespace()
        if i is None:
            return False
        rest = self._buf[i:]
        if not self._closed and rest.startswith(TOOL_CALL_END):
            self._buf = rest[len(TOOL_CALL_END) :]
            self._closed = True
            return True
        if rest.startswith(TOOL_CALL):
            self._buf = rest
            self._state = _State.HEAD
            return True
        expected = (TOOL_CALL,) if self._closed else (TOOL_CALL, TOOL_CALL_END)
        if could_start(rest, expected) and not self._done:
            return False
        self._state = _State.TEXT  # other text: content again, whitespace included
        return True

    def _args(self, text: str) -> None:
        self._emit(ToolCallArgs(self._index, text))


def qwen_xml_parser(
    tool_names: Collection[str], *, tool_schemas: ToolSchemas | None = None, new_id: IdFactory | None = None
) -> QwenXmlParser:
    return QwenXmlParser(tool_names, tool_schemas=tool_schemas, new_id=new_id)
