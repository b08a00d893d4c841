"""GBNF building blocks for `grammar.py` and `schema_gbnf.py`: string literals, decimal ranges, JSON-safe
regex patterns.

Pure functions; no llama.cpp. Ranges produce rules for integers lo..hi without leading zeros (at most
`MAX_DIGITS` digits where a side is open) and for numbers with whole-number bounds (`inclusive_bounds`
reads them from a schema). Patterns are rewritten for the converter's regex translation so that every
match is a string a JSON string may hold unescaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

MAX_DIGITS = 15  # unbounded integers get at most this many digits, as the converter's own rule
FRACTION, ZERO_FRACTION = r'("." [0-9]{1,15})?', r'("." "0"{1,15})?'
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_CLASS_ESCAPES = {"d": [(48, 57)], "w": [(48, 57), (65, 90), (95, 95), (97, 122)], "s": [(32, 32)]}
_UNSAFE = ((0x00, 0x1F), (0x22, 0x22), (0x5C, 0x5C), (0x7F, 0x7F))  # never raw inside a JSON string
META_ESCAPES = frozenset("[]()|{}*+?")  # `\X` in a pattern is the literal X for these (schema_gbnf)


def gbnf_literal(text: str) -> str:
    """`text` as a quoted GBNF string literal."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_code(ord(ch)))
    return '"' + "".join(out) + '"'


# ---------------------------------------------------------------------------------------------------
# Numeric ranges


def inclusive_bounds(node: Mapping[str, Any], *, integer: bool) -> tuple[int | None, int | None]:
    """A schema's inclusive integer bounds (ValueError where unsupported): for numbers, only
    integer-valued inclusive bounds are supported."""
    if any(isinstance(node.get(k), bool) for k in BOUNDS):
        raise ValueError("boolean exclusive bounds (draft 4) are not supported; give the bound itself")
    lows = [math.ceil(node["minimum"])] if "minimum" in node else []
    highs = [math.floor(node["maximum"])] if "maximum" in node else []
    if not integer:
        if "exclusiveMinimum" in node or "exclusiveMaximum" in node:
            raise ValueError("exclusive bounds on 'number' are not supported (use inclusive ones)")
        if any(float(node[k]) != int(node[k]) for k in ("minimum", "maximum") if k in node):
            raise ValueError("only whole-number bounds are supported on 'number'")
    lows += [math.floor(node["exclusiveMinimum"]) + 1] if "exclusiveMinimum" in node else []
    highs += [math.ceil(node["exclusiveMaximum"]) - 1] if "exclusiveMaximum" in node else []
    lo, hi = max(lows, default=None), min(highs, default=None)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError("no value lies between the minimum and the maximum")
    return lo, hi


def int_range(lo: int | None, hi: int | None) -> str:
    cap = 10**MAX_DIGITS - 1
    lo, hi = -cap if lo is None else lo, cap if hi is None else hi
    parts = []
    if lo < 0:
        parts.append('"-" ' + _uint_range(max(1, -min(hi, -1)), -lo))
    if hi >= 0:
        parts.append(_uint_range(max(lo, 0), hi))
    return "(" + " | ".join(parts) + ")"


def number_range(lo: int | None, hi: int | None) -> str:
    parts = []
    if lo is None or lo < 0:
        parts.append('"-" ' + _magnitude(0 if hi is None or hi >= 0 else -hi, None if lo is None else -lo))
    if hi is None or hi >= 0:
        parts.append(_magnitude(max(lo or 0, 0), hi))
    return "(" + " | ".join(parts) + ")"


def _magnitude(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"{_uint_range(lo, 10**MAX_DIGITS - 1)} {FRACTION}"
    if lo == hi:
        return f'"{hi}" {ZERO_FRACTION}'
    return f'({_uint_range(lo, hi - 1)} {FRACTION} | "{hi}" {ZERO_FRACTION})'


def _uint_range(lo: int, hi: int) -> str:
    """Decimal integers lo..hi (0 <= lo <= hi), without leading zeros."""
    alts = []
    for n in range(len(str(lo)), len(str(hi)) + 1):
        a, b = max(lo, 10 ** (n - 1) if n > 1 else 0), min(hi, 10**n - 1)
        alts.append(_digits_range(str(a), str(b)))
    return "(" + " | ".join(alts) + ")"


def _digits_range(a: str, b: str) -> str:
    """Digit strings of one length between a and b."""
    if a == b:
        return f'"{a}"'
    if a[0] == b[0]:
        return f'"{a[0]}" ' + _digits_range(a[1:], b[1:])
    rest = len(a) - 1
    low_full, high_full = a[1:] == "0" * rest, b[1:] == "9" * rest
    first, last = int(a[0]) + (not low_full), int(b[0]) - (not high_full)
    alts = [] if low_full else [f'"{a[0]}" ' + _digits_range(a[1:], "9" * rest)]
    if first <= last:
        alts.append(f"[{first}-{last}]" + (f" [0-9]{{{rest}}}" if rest else ""))
    alts += [] if high_full else [f'"{b[0]}" ' + _digits_range("0" * rest, b[1:])]
    return "(" + " | ".join(alts) + ")"


# ---------------------------------------------------------------------------------------------------
# Regex patterns


def safe_pattern(pattern: str) -> str:
    """An anchored pattern for the converter whose every match is a JSON-safe string: classes lose quote,
    backslash and control characters, `\\d \\w \\s` become classes; other escapes and quotes are refused."""
    anchored = pattern.startswith("^") and pattern.endswith("$") and not pattern.endswith("\\$")
    if not anchored:  # JSON Schema patterns search; matching the whole string is a safe subset
        body = pattern[1:] if pattern.startswith("^") else pattern
        body = body[:-1] if body.endswith("$") and not body.endswith("\\$") else body
        pattern = f"^({body})$"
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "[":
            i, text = _class(pattern, i + 1)
            out.append(text)
            continue
        if ch == "\\":
            nxt = pattern[i + 1 : i + 2]
            out.append("\\" + nxt if nxt in META_ESCAPES else _class_text(_escape(nxt), negate=False))
            i += 2
            continue
        if ch == '"' or not ch.isprintable():
            raise ValueError(f"the pattern character {ch!r} is not supported")
        out.append(ch)
        i += 1
    return "".join(out)


def _class(pattern: str, i: int) -> tuple[int, str]:
    negate = pattern.startswith("^", i)
    i += negate
    ranges: list[tuple[int, int]] = []
    while i < len(pattern) and pattern[i] != "]":
        first, i = _class_item(pattern, i)
        if pattern.startswith("-", i) and not pattern.startswith("-]", i) and len(first) == 1:
            last, i = _class_item(pattern, i + 1)
            if len(last) != 1:
                raise ValueError("a class range ends in a class escape")
            first = [(first[0][0], last[0][1])]
        ranges += first
    if i >= len(pattern):
        raise ValueError("unbalanced '[' in the pattern")
    return i + 1, _class_text(ranges, negate=negate)


def _class_item(pattern: str, i: int) -> tuple[list[tuple[int, int]], int]:
    if pattern[i] == "\\":
        return _escape(pattern[i + 1 : i + 2]), i + 2
    return [(ord(pattern[i]), ord(pattern[i]))], i + 1


def _escape(ch: str) -> list[tuple[int, int]]:
    if ch in _CLASS_ESCAPES:
        return _CLASS_ESCAPES[ch]
    if ch and not ch.isalnum() and ch.isprintable():
        return [(ord(ch), ord(ch))]
    raise ValueError(f"the pattern escape '\\{ch}' is not supported")


def _class_text(ranges: list[tuple[int, int]], *, negate: bool) -> str:
    if negate:
        ranges = ranges + list(_UNSAFE)
    else:
        ranges = [safe for lo, hi in ranges for safe in _safe_ranges(lo, hi)]
        if not ranges:
            raise ValueError("a pattern class allows no character a JSON string may hold unescaped")
    body = "".join(_code(lo) if lo == hi else f"{_code(lo)}-{_code(hi)}" for lo, hi in ranges)
    return f"[{'^' if negate else ''}{body}]"


def _safe_ranges(lo: int, hi: int) -> list[tuple[int, int]]:
    out, start = [], lo
    for bad_lo, bad_hi in _UNSAFE:
        if bad_hi < start or bad_lo > hi:
            continue
        if bad_lo > start:
            out.append((start, bad_lo - 1))
        start = max(start, bad_hi + 1)
    if start <= hi:
        out.append((start, hi))
    return out


def _code(cp: int) -> str:
    return f"\\x{cp:02X}" if cp < 0x100 else f"\\u{cp:04X}" if cp < 0x10000 else f"\\U{cp:08X}"
