"""Shape checks for model.yaml values: each returns the typed value or raises `ShapeError` naming it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal


class ShapeError(ValueError):
    """A model.yaml value that does not have the documented shape (the message names the field)."""


def mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ShapeError(f"'{where}' must be a mapping.")
    return value


def items(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ShapeError(f"'{where}' must be a list.")
    return value


def text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ShapeError(f"'{where}' must be a non-empty string.")
    return value.strip()


def optional_text(value: object, where: str) -> str | None:
    return None if value is None else text(value, where)


def texts(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(text(v, where) for v in items(value, where))


def optional_int(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or value != int(value):
        raise ShapeError(f"'{where}' must be a non-negative integer, got {value!r}.")
    return int(value)


def ints(value: object, where: str) -> tuple[int, ...]:
    if value is None:
        return ()
    return tuple(n for v in items(value, where) if (n := optional_int(v, where)) is not None)


def flag(value: object, where: str) -> bool | Literal["mixed"] | None:
    if value is None or isinstance(value, bool):
        return value
    if value == "mixed":
        return "mixed"
    raise ShapeError(f"'{where}' must be true, false or mixed, got {value!r}.")


def model_name(value: object) -> str | None:
    """`model`: `publisher/name` (one slash, both parts non-empty)."""
    if value is None:
        return None
    name = text(value, "model")
    publisher, _, rest = name.partition("/")
    if not publisher or not rest or "/" in rest:
        raise ShapeError(f"'model' must be 'publisher/name', got {name!r}.")
    return name


def field_list(value: object, where: str) -> tuple[tuple[str, Any], ...]:
    """`[{key, value}, ...]` as (key, value) pairs, in order."""
    if value is None:
        return ()
    out = []
    for i, entry in enumerate(items(value, where)):
        item = mapping(entry, f"{where}[{i}]")
        out.append((text(item.get("key"), f"{where}[{i}].key"), item.get("value")))
    return tuple(out)


def fields(value: object, where: str) -> tuple[tuple[str, Any], ...]:
    """`config.operation` / `config.load`: `{fields: [{key, value}]}`."""
    return field_list(mapping(value, where).get("fields"), f"{where}.fields")
