"""Text from JSON may hold lone UTF-16 surrogates (`"\\ud800"` is valid JSON, but not Unicode): they have
no UTF-8 form, so llama.cpp cannot take them. openlms replaces each with U+FFFD, the replacement character,
as LM Studio does (a Node.js string becomes UTF-8 that way) and as browsers' `TextEncoder` does: a client
that cut a string in the middle of an emoji keeps working, and the model sees a visible marker where the
broken character was."""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (unchanged, and fast, when it has none)."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(REPLACEMENT, text)
