"""Incremental JSON structure scanning, and decoding of a complete call object.

`JsonScanner` does not validate JSON; it tracks strings, escapes and the bracket stack across any split
of the text, so a parser knows where an object starts, nests and ends while it streams.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from typing import Any

_STRING_RUN = re.compile(r'[^"\\]+')
_PLAIN_RUN = re.compile(r'[^"{}\[\]]+')
_CLOSER = {"}": "{", "]": "["}
MISMATCH = "!"


class JsonScanner:
    """Bracket depth of a JSON text fed in pieces, aware of strings and escapes."""

    __slots__ = ("_escape", "_in_string", "_stack")

    def __init__(self) -> None:
        self._stack: list[str] = []
        self._in_string = False
        self._escape = False

    @property
    def depth(self) -> int:
        return len(self._stack)

    def advance(self, text: str, i: int) -> tuple[int, str]:
        """Scan `text` from `i` to just after the next bracket outside strings.

        Returns (index after it, the bracket), or (len(text), "") when none came, or
        (index of the bracket, MISMATCH) for a closer that does not match the open bracket.
        """
        n = len(text)
        while i < n:
            if self._in_string:
                i = self._advance_string(text, i)
                continue
            run = _PLAIN_RUN.match(text, i)
            if run:
                i = run.end()
                continue
            char = text[i]
            if char == '"':
                self._in_string = True
                i += 1
            elif char in "{[":
                self._stack.append(char)
                return i + 1, char
            elif not self._stack or self._stack[-1] != _CLOSER[char]:
                return i, MISMATCH
            else:
                self._stack.pop()
                return i + 1, char
        return n, ""

    def _advance_string(self, text: str, i: int) -> int:
        if self._escape:
            self._escape = False
            return i + 1
        run = _STRING_RUN.match(text, i)
        if run:
            return run.end()
        if text[i] == "\\":
            self._escape = True
        else:
            self._in_string = False
        return i + 1


def object_members(text: str) -> dict[str, tuple[Any, str]] | None:
    """The top-level members of a JSON object text: key -> (value, the value's text as written)."""
    try:
        if not isinstance(json.loads(text), dict):
            return None
    except ValueError:
        return None
    decoder = json.JSONDecoder()
    members: dict[str, tuple[Any, str]] = {}
    i = _skip_ws(text, 0) + 1  # past "{"
    while True:
        i = _skip_ws(text, i)
        if text[i] == "}":
            return members
        key, i = decoder.raw_decode(text, i)
        i = _skip_ws(text, i) + 1  # past ":"
        start = _skip_ws(text, i)
        value, i = decoder.raw_decode(text, start)
        members[key] = (value, text[start:i])
        i = _skip_ws(text, i)
        if text[i] == ",":
            i += 1


def _skip_ws(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i


def decode_call(text: str, tool_names: Collection[str]) -> tuple[str, str] | None:
    """(name, arguments JSON text) of a complete `{"name": ..., "arguments": {...}}` object, else None.

    "parameters" is accepted for "arguments"; missing or null arguments give "{}"; arguments written as a
    JSON string holding an object give that string's text.
    """
    members = object_members(text)
    if members is None or "name" not in members:
        return None
    name = members["name"][0]
    if not isinstance(name, str) or name not in tool_names:
        return None
    args = members.get("arguments", members.get("parameters"))
    if args is None or args[0] is None:
        return name, "{}"
    value, written = args
    if isinstance(value, dict):
        return name, written
    if isinstance(value, str) and is_object_text(value):
        return name, value
    return None


def is_object_text(text: str) -> bool:
    """True when `text` is the JSON text of an object."""
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
