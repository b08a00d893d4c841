"""Whether a text is the start of a JSON document: what a JSON grammar guarantees about an output that was
cut by `max_tokens` (some JSON document begins this way), where `json.loads` needs the whole of it."""

from __future__ import annotations

import re

NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
NUMBER_CHARS = frozenset("0123456789+-.eE")
ESCAPES = frozenset('"\\/bfnrt')
HEX = frozenset("0123456789abcdefABCDEF")
LITERALS = ("true", "false", "null")
WHITESPACE = frozenset(" \t\n\r")
CLOSING = {"{": "}", "[": "]"}


def json_prefix_error(text: str) -> str | None:
    """None when some JSON document starts with `text` (the whole document included), else what is
    wrong and where."""
    return _Scanner(text).run()


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.stack: list[str] = []  # the open "{" and "["
        # what may come next: value, value-or-close, key, key-or-close, colon, comma-or-close, end
        self.expect = "value"

    def run(self) -> str | None:
        i, text = 0, self.text
        while i < len(text):
            if text[i] in WHITESPACE:
                i += 1
                continue
            step = self._step(i)
            if isinstance(step, str):
                return f"{step} at offset {i} of {text!r}"
            if step is None:  # the text ends inside a string, number or literal that can go on
                return None
            i = step
        return None

    def _step(self, i: int) -> int | str | None:
        char = self.text[i]
        if self.expect == "end":
            return "text after the document"
        if self.expect == "colon":
            return self._then(i + 1, "value") if char == ":" else "expected ':'"
        if self.expect == "comma-or-close":
            if char == ",":
                return self._then(i + 1, "key" if self.stack[-1] == "{" else "value")
            return self._close(i) if char == CLOSING[self.stack[-1]] else "expected ',' or a closing bracket"
        if self.expect in ("key", "key-or-close"):
            if char == "}" and self.expect == "key-or-close":
                return self._close(i)
            if char != '"':
                return "expected a key"
            end = self._string_end(i)
            return end if not isinstance(end, int) else self._then(end, "colon")
        return self._value(i)

    def _value(self, i: int) -> int | str | None:
        char, text = self.text[i], self.text
        if char == "]" and self.expect == "value-or-close":
            return self._close(i)
        if char in CLOSING:
            self.stack.append(char)
            return self._then(i + 1, "key-or-close" if char == "{" else "value-or-close")
        if char == '"':
            end = self._string_end(i)
            return end if not isinstance(end, int) else self._after_value(end)
        if char == "-" or char.isdigit():
            j = i
            while j < len(text) and text[j] in NUMBER_CHARS:
                j += 1
            number = text[i:j]
            if j == len(text):  # cut: some digits must be able to complete it
                return None if NUMBER.fullmatch(number) or NUMBER.fullmatch(number + "0") else "bad number"
            return self._after_value(j) if NUMBER.fullmatch(number) else "bad number"
        for literal in LITERALS:
            if text.startswith(literal, i):
                return self._after_value(i + len(literal))
            if literal.startswith(text[i:]):
                return None
        return "expected a value"

    def _string_end(self, i: int) -> int | str | None:
        """The offset after the string that starts at `i`; None when the text ends inside it."""
        text, j = self.text, i + 1
        while j < len(text):
            char = text[j]
            if char == '"':
                return j + 1
            if ord(char) < 0x20:
                return "a control character in a string"
            if char == "\\":
                escape = text[j + 1 : j + 2]
                if escape == "u":
                    digits = text[j + 2 : j + 6]
                    if not all(d in HEX for d in digits):
                        return "a bad \\u escape"
                    j += 6
                    continue
                if escape and escape not in ESCAPES:
                    return "a bad escape"
                j += 2
                continue
            j += 1
        return None

    def _close(self, i: int) -> int:
        self.stack.pop()
        return self._after_value(i + 1)

    def _after_value(self, i: int) -> int:
        return self._then(i, "comma-or-close" if self.stack else "end")

    def _then(self, i: int, expect: str) -> int:
        self.expect = expect
        return i
