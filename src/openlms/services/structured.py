"""Structured output: an OpenAI `response_format` (or an SDK `structured` setting) as a grammar."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.parsers.grammar import check_json_schema, json_object_grammar, json_schema_grammar
from openlms.parsers.unicode import check_unicode

PARAM = "response_format"


def response_format_grammar(response_format: Mapping[str, Any] | None) -> str | None:
    """GBNF for `{"type": "json_schema", ...}` and `{"type": "json_object"}`; None for text or nothing."""
    if response_format is None:
        return None
    if not isinstance(response_format, Mapping):
        raise InvalidRequestError("'response_format' must be an object with a 'type'.", param=PARAM)
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return json_object_grammar()
    if kind == "json_schema":
        return schema_grammar(_schema_of(response_format.get("json_schema")))
    raise InvalidRequestError(
        f"response_format.type must be 'text', 'json_object' or 'json_schema'; got {kind!r}.", param=PARAM
    )


def schema_grammar(schema: Any, *, param: str = PARAM) -> str:
    check_unicode(schema, param)
    return json_schema_grammar(check_json_schema(schema, param=param))


def _schema_of(json_schema: Any) -> Any:
    if not isinstance(json_schema, Mapping):
        raise InvalidRequestError(
            "response_format.json_schema must be an object: {name, strict, schema}.", param=PARAM
        )
    if "schema" not in json_schema:
        raise InvalidRequestError("response_format.json_schema.schema is missing.", param=PARAM)
    return json_schema["schema"]
