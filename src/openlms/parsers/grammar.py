"""JSON schema -> GBNF for llama.cpp's grammar sampler: structured output and tool calls.

This module checks and normalises schemas and assembles grammars; `schema_gbnf.py` (openlms's own
converter, started from llama-cpp-python's `SchemaConverter`) writes the rules, and differs from the
library's where it gets things wrong for us:
* whitespace between tokens is bounded (nothing, one space, or a newline and up to 20 spaces or tabs),
  so a small model cannot loop on whitespace;
* string characters exclude raw control characters, literals are escaped fully, and regex patterns
  are rewritten so that they cannot produce a quote, a backslash or a control character;
* every `$ref` gets its own rule (the converter shares rules between equally named definitions);
* integer bounds, and integer-valued inclusive bounds on numbers, are enforced.
Objects with `properties` get exactly those properties (more only where `additionalProperties` is true or
a schema), so objects always end; strings are unbounded unless `maxLength` says otherwise.

Refused, with a message naming them: keywords a grammar cannot enforce (`UNSUPPORTED`), references
outside the document or to nothing, and combinations the converter would silently ignore. `format`s
other than date, time, date-time and uuid are annotations (JSON Schema's default) and generate plain
strings; `oneOf` is generated as `anyOf`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jsonschema
import llama_cpp.llama_cpp as C

from openlms.core.errors import InvalidRequestError
from openlms.parsers.grammar_pieces import BOUNDS, gbnf_literal, inclusive_bounds, safe_pattern
from openlms.parsers.schema_gbnf import GbnfConverter

_UNSUPPORTED_WORDS = """not if then else patternProperties propertyNames dependentRequired dependentSchemas
    dependencies contains minContains maxContains uniqueItems unevaluatedProperties unevaluatedItems
    minProperties maxProperties multipleOf $dynamicRef $recursiveRef"""
UNSUPPORTED = frozenset(_UNSUPPORTED_WORDS.split())
HARMLESS = {"uniqueItems": False, "unevaluatedProperties": False, "unevaluatedItems": False}
_VALIDATION_WORDS = """type enum const properties required additionalProperties items prefixItems minItems
    maxItems minLength maxLength pattern minimum maximum exclusiveMinimum exclusiveMaximum anyOf oneOf allOf
    $ref"""
VALIDATION = frozenset(_VALIDATION_WORDS.split())
_PLAIN_OBJECT = frozenset({"type", "properties", "required"})
_COMPOSED = frozenset({"type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const"})
TYPE_HINTS = (
    ("object", ("properties", "additionalProperties", "required")),
    ("array", ("items", "prefixItems", "minItems", "maxItems")),
    ("string", ("minLength", "maxLength", "pattern", "format")),
    ("number", BOUNDS),
)
ALL_TYPES = ["object", "array", "string", "number", "boolean", "null"]
_MAPS, _LISTS = ("properties", "$defs", "definitions"), ("anyOf", "oneOf", "allOf", "prefixItems", "items")


def check_json_schema(schema: object, *, param: str) -> dict[str, Any]:
    """`schema` if it is a valid JSON schema that a grammar can enforce, else InvalidRequestError."""
    if not isinstance(schema, dict):
        kind = _json_type(schema)
        raise InvalidRequestError(f"The JSON schema must be an object, not {kind}.", param=param)
    check_schema_size(schema, param=param)
    try:
        jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as e:
        where = "#" + "".join(f"/{p}" for p in e.absolute_path)
        raise InvalidRequestError(f"Invalid JSON schema at '{where}': {e.message}", param=param) from e
    _grammar_of(schema, param)
    return schema


MAX_SCHEMA_DEPTH = 64  # nesting of the schema document itself
MAX_SCHEMA_NODES = 20_000


def check_schema_size(schema: object, *, param: str | None) -> None:
    """Refuse schemas too deep or too big to turn into a grammar (before anything recursive sees them)."""
    stack: list[tuple[object, int]] = [(schema, 1)]
    nodes = 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_SCHEMA_DEPTH or nodes > MAX_SCHEMA_NODES:
            what = (
                f"nested deeper than {MAX_SCHEMA_DEPTH} levels" if depth > MAX_SCHEMA_DEPTH else "too large"
            )
            raise InvalidRequestError(f"The JSON schema is {what}; simplify it.", param=param)
        children = node.values() if isinstance(node, Mapping) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)


def json_schema_grammar(schema: Mapping[str, Any]) -> str:
    """A complete GBNF grammar (root rule `root`) for JSON values valid under `schema`."""
    return _grammar_of(schema, None)


def json_object_grammar() -> str:
    """Any JSON object (`response_format: {"type": "json_object"}`)."""
    return _grammar_of({"type": "object"}, None)


def args_grammar(schema: Mapping[str, Any] | None) -> tuple[str, str]:
    """GBNF rules (no `root`) for a bare tool-arguments object, and the name of its rule."""
    rules, names = args_grammars([schema])
    return rules, names[0]


def args_grammars(schemas: Sequence[Mapping[str, Any] | None]) -> tuple[str, list[str]]:
    """GBNF rules (no `root`) for several argument objects in one grammar, and each one's rule name.
    Use this, not several `args_grammar` results joined: rule names of separate calls can collide."""
    conv = GbnfConverter()
    names = [_visit_args(conv, schema, f"tool{i}", "tools") for i, schema in enumerate(schemas)]
    return _checked(conv.grammar(), " | ".join(names), "tools"), names


def value_grammars(schemas: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """GBNF rules (no `root`) for several JSON values in one grammar (each under its own schema), and
    each one's rule name; for formats that write arguments one value at a time."""
    conv = GbnfConverter()
    names = [
        _convert(conv, schema, f"value{i}", f"value{i}", "tools", "") for i, schema in enumerate(schemas)
    ]
    if not names:
        return "", []
    return _checked(conv.grammar(), " | ".join(names), "tools"), names


def tool_call_grammar(
    tools: Sequence[tuple[str, Mapping[str, Any] | None]],
    *,
    name_key: str = "name",
    args_key: str = "arguments",
) -> tuple[str, str]:
    """GBNF rules (no `root`) for one call object `{name_key: <a tool name>, args_key: <its arguments>}`
    and the name of that rule. A tool without a parameters schema (None) takes `{}`."""
    if not tools:
        raise InvalidRequestError("There are no tools to call.", param="tools")
    conv = GbnfConverter()
    name_lit, args_lit = gbnf_literal(json.dumps(name_key)), gbnf_literal(json.dumps(args_key))
    calls = []
    for i, (name, schema) in enumerate(tools):
        args = _visit_args(conv, schema, f"tool{i}", "tools", label=f"Tool '{name}': ")
        body = f'"{{" space {name_lit} space ":" space {gbnf_literal(json.dumps(name))} space "," space '
        body += f'{args_lit} space ":" space {args} "}}" space'
        calls.append(conv.add_rule(f"tool{i}-call", body))
    rule = conv.add_rule("tool-call", " | ".join(calls))
    return _checked(conv.grammar(), rule, "tools"), rule


# ---------------------------------------------------------------------------------------------------
# Conversion


def _keyed_refs(conv: GbnfConverter, schema: dict[str, Any], url: str) -> dict[str, Any]:
    """`schema` with every local `$ref` (those inside a schema whose root is a `$ref` included) prefixed
    with `url`, so that several schemas can share one converter, and registered with `conv`."""
    for _, node in _walk(schema, "#"):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            conv.add_ref(url + ref, _resolve(ref, schema))
            node["$ref"] = url + ref  # type: ignore[index]
    return schema


def _grammar_of(schema: Mapping[str, Any], param: str | None) -> str:
    conv = GbnfConverter()
    rule = _convert(conv, schema, "", "schema", param, "")
    if rule != "root":
        conv.set_rule("root", rule)
    return _checked(conv.grammar(), None, param)


def _visit_args(
    conv: GbnfConverter, schema: Mapping[str, Any] | None, prefix: str, param: str, *, label: str = ""
) -> str:
    if schema is None:
        return conv.add_rule(f"{prefix}-args", '"{" space "}" space')
    if isinstance(schema, Mapping) and not _COMPOSED.intersection(schema):
        schema = {**schema, "type": "object"}  # arguments are an object even where the schema is silent
    return _convert(conv, schema, f"{prefix}-args", prefix, param, label)


def _convert(
    conv: GbnfConverter, schema: Mapping[str, Any], name: str, url: str, param: str | None, label: str
) -> str:
    if not isinstance(schema, Mapping):
        raise InvalidRequestError(f"{label}the JSON schema must be an object.", param=param)
    check_schema_size(schema, param=param)
    try:
        _check_supported(schema)
        return conv.visit(_keyed_refs(conv, _normalize(schema), url), name)
    except (ValueError, AssertionError, KeyError, TypeError, AttributeError, RecursionError) as e:
        reason = str(e) or type(e).__name__
        raise InvalidRequestError(f"{label}Unsupported JSON schema: {reason}", param=param) from e


def _checked(rules: str, root: str | None, param: str | None) -> str:
    """`rules` if llama.cpp parses them (with `root ::= <root>` added where given)."""
    text = rules if root is None else f"root ::= {root}\n{rules}"
    sampler = C.llama_sampler_init_grammar(None, text.encode("utf-8"), b"root")
    if not sampler:
        raise InvalidRequestError(
            "The JSON schema produced a grammar that llama.cpp cannot parse (an unusual pattern?).",
            param=param,
        )
    C.llama_sampler_free(sampler)
    return rules


# ---------------------------------------------------------------------------------------------------
# Checks and normalization


def _check_supported(schema: Mapping[str, Any]) -> None:
    for path, node in _walk(schema, "#"):
        try:
            _check_node(node, schema)
        except ValueError as e:
            raise ValueError(f"at '{path}': {e}") from None


def _walk(node: object, path: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if not isinstance(node, Mapping):
        return
    yield path, node
    for key, value in node.items():
        if key in _MAPS and isinstance(value, Mapping):
            for name, sub in value.items():
                yield from _walk(sub, f"{path}/{key}/{name}")
        elif key in _LISTS and isinstance(value, list):
            for i, sub in enumerate(value):
                yield from _walk(sub, f"{path}/{key}/{i}")
        elif key in ("items", "additionalProperties"):
            yield from _walk(value, f"{path}/{key}")


def _check_node(node: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    for key in sorted(UNSUPPORTED.intersection(node)):
        if key not in HARMLESS or node[key] is not HARMLESS[key]:
            raise ValueError(f"'{key}' cannot be enforced by a grammar; remove it")
    for key in ("$ref", "anyOf", "oneOf"):
        others = sorted(VALIDATION.intersection(node) - {key})
        if key in node and others:
            raise ValueError(f"'{key}' next to {', '.join(others)} is not supported; move them inside")
    if "$ref" in node:
        _check_ref(node["$ref"], root)
    if "allOf" in node:
        _check_all_of(node, root)
    _check_values(node)


def _check_values(node: Mapping[str, Any]) -> None:
    missing = [k for k in node.get("required", ()) if k not in node.get("properties", {})]
    if missing:
        raise ValueError(f"required property '{missing[0]}' is not in 'properties'")
    if "prefixItems" in node and node.get("items", False) is not False:
        raise ValueError("'prefixItems' with 'items' is not supported (use 'items': false)")
    if isinstance(node.get("pattern"), str):
        safe_pattern(node["pattern"])
    if "pattern" in node and ("minLength" in node or "maxLength" in node):
        raise ValueError(
            "'pattern' with 'minLength'/'maxLength' is not supported; put lengths in the pattern"
        )
    for low, high in (("minItems", "maxItems"), ("minLength", "maxLength")):
        if node.get(low, 0) > node.get(high, math.inf):
            raise ValueError(f"'{low}' is greater than '{high}'")
    types = _types(node)
    for kind in ("integer", "number"):
        if kind in types and any(k in node for k in BOUNDS):
            inclusive_bounds(node, integer=kind == "integer")


def _check_ref(ref: object, root: Mapping[str, Any]) -> None:
    if not isinstance(ref, str) or not ref.startswith("#/"):
        raise ValueError(f"'$ref' {ref!r} is not supported: only local references ('#/$defs/...')")
    target: object = root
    for part in ref[2:].split("/"):
        if not isinstance(target, Mapping) or part not in target:
            raise ValueError(f"'$ref' {ref!r} points to nothing")
        target = target[part]


def _check_all_of(node: Mapping[str, Any], root: Mapping[str, Any]) -> None:
    parts, others = node["allOf"], VALIDATION.intersection(node) - {"allOf", "type"}
    if len(parts) == 1 and not others:
        return
    if others or node.get("type", "object") != "object":
        raise ValueError("'allOf' next to other keywords is only supported for plain objects")
    seen: set[str] = set()
    for part in parts:
        while isinstance(part, Mapping) and "$ref" in part:
            part = _resolve(part["$ref"], root)
        if not isinstance(part, Mapping) or VALIDATION.intersection(part) - _PLAIN_OBJECT:
            raise ValueError("'allOf' of several schemas is only supported for objects with 'properties'")
        names = set(part.get("properties", {}))
        if names & seen:
            raise ValueError(f"'allOf' parts share the property '{sorted(names & seen)[0]}'")
        seen |= names


def _resolve(ref: str, root: Mapping[str, Any]) -> object:
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    return target


def _types(node: Mapping[str, Any]) -> list[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [str(k) for k in kind]
    if any(k in node for k in ("enum", "const", "$ref", "anyOf", "oneOf", "allOf")):
        return []
    hinted = [t for t, keys in TYPE_HINTS if any(k in node for k in keys)]
    return hinted[:1] if hinted else list(ALL_TYPES)


def _normalize(node: object) -> Any:
    """A copy the converter handles: booleans and type lists expanded, types inferred, enums filtered."""
    if node is True:
        return {"anyOf": [{"type": t} for t in ALL_TYPES]}
    if not isinstance(node, Mapping):
        raise ValueError(f"a schema must be an object or true, not {json.dumps(node)}")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _MAPS and isinstance(value, Mapping):
            out[key] = {k: _normalize(v) for k, v in value.items()}
        elif key in _LISTS and isinstance(value, list):
            out[key] = [_normalize(v) for v in value]
        elif key in ("items", "additionalProperties") and value is not False:
            out[key] = _normalize(value)
        else:
            out[key] = value
    if out.get("items") is False and "prefixItems" not in out:
        del out["items"]
        out["maxItems"] = 0
    if out.get("type") == "array" and "items" not in out and "prefixItems" not in out:
        out["items"] = _normalize(True)
    if len(out.get("allOf", ())) == 1 and not VALIDATION.intersection(out) - {"allOf", "type"}:
        return {**out["allOf"][0], **{k: v for k, v in out.items() if k in _MAPS[1:]}}
    if "enum" in out or "const" in out:
        return _filter_enum(out)
    types = _types(out)
    if len(types) == 1:
        return {**out, "type": types[0]}
    if types:
        rest = {k: v for k, v in out.items() if k not in _MAPS[1:] and k != "type"}
        defs = {k: v for k, v in out.items() if k in _MAPS[1:]}
        return {"anyOf": [{**rest, "type": t} for t in types], **defs}
    return out


def _filter_enum(node: dict[str, Any]) -> dict[str, Any]:
    types = node.pop("type", None)
    if types is None:
        return node
    allowed = [types] if isinstance(types, str) else types
    values = [node["const"]] if "const" in node else node["enum"]
    kept = [
        v for v in values if _json_type(v) in allowed or {_json_type(v), "number"} <= {"integer", *allowed}
    ]
    if not kept:
        raise ValueError(f"no value of 'enum'/'const' is of type {', '.join(allowed)}")
    node.pop("const", None)
    return {**node, "enum": kept}


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return next((n for t, n in names.items() if isinstance(value, t)), type(value).__name__)
