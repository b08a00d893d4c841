"""LM Link's rule for device and peer names, shared by the store and `lms link` (it checks first)."""

from __future__ import annotations

import re

from openlms.core.errors import LinkConfigError

NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_name(name: str, what: str = "peer name") -> str:
    """`name` when it follows the rule; else a `LinkConfigError` that states the rule."""
    if not _NAME.fullmatch(name):
        raise LinkConfigError(f"Invalid {what} '{name}': use {NAME_RULE}.", param="name")
    return name
