"""Lone UTF-16 surrogates: `"\\ud800"` is valid JSON but not Unicode text, has no UTF-8 form, and
llama.cpp cannot take it. openlms refuses such text with a 400 that names the field, on every surface:
pydantic already answers so for the API's typed string fields (`model`, `role`, ...), and OpenAI refuses
them too; replacing them silently in free-form fields only (message content, tools, prompts) would make
the same string valid in one field and invalid in the next, and change what the client sent without a
word."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from openlms.core.errors import InvalidRequestError

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAX_DEPTH = 256


def has_surrogate(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def surrogate_path(value: Any, path: str) -> str | None:
    """Where (`messages[2].content`) the first string holding a lone surrogate is in `value`, or None.
    Keys count as well as values."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            if has_surrogate(item):
                return where
        elif depth < _MAX_DEPTH and isinstance(item, Mapping):
            for key, child in reversed(list(item.items())):
                if isinstance(key, str) and has_surrogate(key):
                    return where
                stack.append((child, f"{where}.{key}", depth + 1))
        elif depth < _MAX_DEPTH and isinstance(item, list | tuple):
            stack.extend((child, f"{where}[{i}]", depth + 1) for i, child in reversed(list(enumerate(item))))
    return None


def check_unicode(value: Any, param: str) -> None:
    """Raise an InvalidRequestError naming the field if `value` holds a lone UTF-16 surrogate."""
    where = surrogate_path(value, param)
    if where is not None:
        raise InvalidRequestError(
            f"'{where}' holds a lone UTF-16 surrogate (such as \\ud800), which is not valid Unicode text. "
            "Send whole characters (a surrogate pair), or U+FFFD in place of a broken one.",
            param=where,
        )
