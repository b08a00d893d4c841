"""JSON schema -> GBNF: grammars parse in llama.cpp, accept exactly what they should, and bad or
unenforceable schemas are refused with a message naming the problem."""

from __future__ import annotations

import ctypes
import math
from collections.abc import Iterator
from typing import Any

import llama_cpp.llama_cpp as C
import pytest

from openlms.core.errors import InvalidRequestError
from openlms.parsers.grammar import (
    args_grammar,
    args_grammars,
    check_json_schema,
    gbnf_literal,
    json_object_grammar,
    json_schema_grammar,
    tool_call_grammar,
)
from tests.support.tiny_gguf import EOS_ID, write_tiny_llama_gguf

POINT = {
    "type": "object",
    "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
    "required": ["x", "y"],
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "enum": {"enum": ["red", "green", 3, None]},
    "nested": {"type": "object", "properties": {"p": POINT, "q": {"type": "array", "items": POINT}}},
    "array_bounds": {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 3},
    "defs": {"type": "object", "properties": {"a": {"$ref": "#/$defs/point"}}, "$defs": {"point": POINT}},
    "definitions": {"$ref": "#/definitions/p", "definitions": {"p": POINT}},
    "recursive": {
        "$ref": "#/$defs/node",
        "$defs": {"node": {"type": "object", "properties": {"kids": {"items": {"$ref": "#/$defs/node"}}}}},
    },
    "closed": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
    "open_values": {"type": "object", "additionalProperties": {"type": "integer"}},
    "formats": {
        "type": "object",
        "properties": {
            f: {"type": "string", "format": f} for f in ("date", "time", "date-time", "uuid", "email")
        },
    },
    "nullable": {"anyOf": [{"type": "string", "maxLength": 4}, {"type": "null"}], "description": "maybe"},
    "type_list": {"type": ["integer", "null"], "minimum": 1},
    "ranges": {"type": "object", "properties": {"i": {"type": "integer", "exclusiveMaximum": 10}}},
    "pattern": {"type": "string", "pattern": r"^[A-Z]{2}-\d+(\.\w)?$"},
    "all_of": {"allOf": [POINT, {"properties": {"z": {"type": "number"}}}]},
    "tuple": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
    "any": {"description": "anything"},
    "boolean_subschema": {"type": "object", "properties": {"x": True}},
}


@pytest.fixture(scope="module")
def vocab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path = write_tiny_llama_gguf(tmp_path_factory.mktemp("g") / "tiny.gguf")
    params = C.llama_model_default_params()
    params.vocab_only = True
    model = C.llama_model_load_from_file(str(path).encode(), params)
    assert model
    yield C.llama_model_get_vocab(model)
    C.llama_model_free(model)


@pytest.fixture(scope="module")
def char_tokens(vocab: Any) -> dict[str, int]:
    """One token id per character that some single-character token spells."""
    out: dict[str, int] = {}
    buf = ctypes.create_string_buffer(64)
    for token in range(C.llama_vocab_n_tokens(vocab)):
        n = C.llama_token_to_piece(vocab, token, buf, 64, 0, False)
        text = buf.raw[: max(n, 0)].decode("utf-8", "replace")
        if len(text) == 1:
            out.setdefault(text, token)
    return out


def parses(vocab: Any, grammar: str) -> bool:
    sampler = C.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    if sampler:
        C.llama_sampler_free(sampler)
    return bool(sampler)


def accepts(vocab: Any, chars: dict[str, int], grammar: str, text: str) -> bool:
    """Feed `text` character by character; True if the grammar allows every one and then the end."""
    sampler = C.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    assert sampler, grammar
    try:
        for token in [chars[c] for c in text] + [EOS_ID]:
            data = (C.llama_token_data * 1)(C.llama_token_data(token, 1.0, 0.0))
            array = C.llama_token_data_array(data, 1, -1, False)
            C.llama_sampler_apply(sampler, ctypes.byref(array))
            if math.isinf(data[0].logit):
                return False
            if token != EOS_ID:
                C.llama_sampler_accept(sampler, token)
        return True
    finally:
        C.llama_sampler_free(sampler)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_grammars_parse_in_llama_cpp(vocab: Any, name: str) -> None:
    schema = SCHEMAS[name]
    assert check_json_schema(schema, param="p") is schema
    grammar = json_schema_grammar(schema)
    assert "root ::=" in grammar and parses(vocab, grammar)


def test_grammar_accepts_valid_and_refuses_invalid_documents(vocab: Any, char_tokens: dict[str, int]) -> None:
    def ok(schema: dict[str, Any], text: str) -> bool:
        return accepts(vocab, char_tokens, json_schema_grammar(schema), text)

    assert (
        ok(SCHEMAS["enum"], '"green"') and ok(SCHEMAS["enum"], "null") and not ok(SCHEMAS["enum"], '"blue"')
    )
    assert ok(SCHEMAS["array_bounds"], "[true,false]") and not ok(SCHEMAS["array_bounds"], "[]")
    assert not ok(SCHEMAS["array_bounds"], "[true,true,true,true]")
    assert ok(SCHEMAS["defs"], '{"a":{"x":1,"y":-2}}') and not ok(SCHEMAS["defs"], '{"a":{"x":1}}')
    assert ok(SCHEMAS["recursive"], '{"kids":[{"kids":[]},{}]}')
    assert not ok(SCHEMAS["closed"], '{"a":"x","b":1}')
    assert not ok(SCHEMAS["nested"], '{"z":1}')  # no additionalProperties: only the listed properties
    assert ok(SCHEMAS["open_values"], '{"k":1,"j":2}') and not ok(SCHEMAS["open_values"], '{"k":"v"}')
    assert ok(SCHEMAS["pattern"], '"AB-12.x"') and not ok(SCHEMAS["pattern"], '"AB-"')
    assert ok(SCHEMAS["tuple"], '["a",1]') and not ok(SCHEMAS["tuple"], '["a",1,2]')
    assert ok(SCHEMAS["all_of"], '{"x":1,"y":2,"z":0.5}') and ok(SCHEMAS["type_list"], "null")
    assert not ok(SCHEMAS["type_list"], "0") and ok(SCHEMAS["any"], '[1,"a",{}]')


def test_whitespace_is_bounded(vocab: Any, char_tokens: dict[str, int]) -> None:
    grammar = json_schema_grammar(SCHEMAS["nested"])
    assert accepts(vocab, char_tokens, grammar, '{"p": {"x": 1, "y": 2}}')
    assert accepts(vocab, char_tokens, grammar, '{\n  "p": {\n    "x": 1,\n\t"y": 2\n  }\n}')
    assert not accepts(vocab, char_tokens, grammar, '{  "p": {"x": 1, "y": 2}}')
    assert not accepts(vocab, char_tokens, grammar, '{\n\n"p": {"x": 1, "y": 2}}')
    assert not accepts(vocab, char_tokens, grammar, "{\n" + " " * 21 + '"p": {"x": 1, "y": 2}}')


def test_strings_never_hold_raw_control_characters(vocab: Any, char_tokens: dict[str, int]) -> None:
    grammar = json_object_grammar()
    assert accepts(vocab, char_tokens, grammar, '{"a": "x\\ny\\"", "b": [1.5e3, null, {}]}')
    assert not accepts(vocab, char_tokens, grammar, '{"a": "x\ny"}')
    dot = json_schema_grammar({"type": "string", "pattern": "^.+$"})
    assert accepts(vocab, char_tokens, dot, '"a b"') and not accepts(vocab, char_tokens, dot, '"a\\b"')
    negated = json_schema_grammar({"type": "string", "pattern": "[^a]+"})
    assert accepts(vocab, char_tokens, negated, '"bc"') and not accepts(vocab, char_tokens, negated, '"b"c"')


@pytest.mark.parametrize(
    ("bounds", "lo", "hi"),
    [
        ({"minimum": -12, "maximum": 105}, -12, 105),
        ({"exclusiveMinimum": 7, "exclusiveMaximum": 300}, 8, 299),
        ({"minimum": 0}, 0, None),
        ({"maximum": -3}, None, -3),
        ({"minimum": 1.5, "maximum": 19}, 2, 19),
    ],
)
def test_integer_bounds_are_exact(
    vocab: Any, char_tokens: dict[str, int], bounds: dict[str, Any], lo: int | None, hi: int | None
) -> None:
    grammar = json_schema_grammar({"type": "integer", **bounds})
    for n in range(-350, 351):
        inside = (lo is None or n >= lo) and (hi is None or n <= hi)
        assert accepts(vocab, char_tokens, grammar, str(n)) is inside, n
    assert not accepts(vocab, char_tokens, grammar, "007")


def test_number_bounds(vocab: Any, char_tokens: dict[str, int]) -> None:
    grammar = json_schema_grammar({"type": "number", "minimum": -1, "maximum": 2})
    good = ["0", "-1", "-0.5", "1.25", "2", "2.000", "-1.0"]
    bad = ["2.5", "-1.5", "3", "-2", "1e3"]
    assert all(accepts(vocab, char_tokens, grammar, t) for t in good)
    assert not any(accepts(vocab, char_tokens, grammar, t) for t in bad)


def test_tool_call_grammar_keeps_schemas_apart(vocab: Any, char_tokens: dict[str, int]) -> None:
    same_def = {"type": "object", "properties": {"v": {"$ref": "#/$defs/item"}}, "required": ["v"]}
    tools = [
        ("a", {**same_def, "$defs": {"item": {"type": "string", "maxLength": 3}}}),
        ("b", {**same_def, "$defs": {"item": {"type": "integer"}}}),
        ("c", None),
    ]
    rules, name = tool_call_grammar(tools, name_key="tool", args_key="args")
    assert "root ::=" not in rules
    grammar = f'root ::= "<" {name} ">"\n{rules}'

    def ok(text: str) -> bool:
        return accepts(vocab, char_tokens, grammar, f"<{text}>")

    assert ok('{"tool": "a", "args": {"v": "xy"}}') and ok('{"tool": "b", "args": {"v": 42}}')
    assert ok('{"tool":"c","args":{}}')
    assert not ok('{"tool": "a", "args": {"v": 42}}') and not ok('{"tool": "b", "args": {"v": "xy"}}')
    assert not ok('{"tool": "d", "args": {}}') and not ok('{"tool": "c", "args": {"v": 1}}')
    rules, name = args_grammar(None)
    assert accepts(vocab, char_tokens, f"root ::= {name}\n{rules}", "{}")
    rules, name = args_grammar({"description": "no type: still an object"})
    assert accepts(vocab, char_tokens, f"root ::= {name}\n{rules}", '{"k": [1]}')
    assert not accepts(vocab, char_tokens, f"root ::= {name}\n{rules}", "[1]")
    rules, name = args_grammar(POINT)
    assert accepts(vocab, char_tokens, f"root ::= {name}\n{rules}", '{"x": 1, "y": 2}')


def test_several_argument_grammars_share_one_rule_set(vocab: Any, char_tokens: dict[str, int]) -> None:
    schemas = [
        {"type": "object", "properties": {"v": {"type": t}}, "required": ["v"]} for t in ("string", "integer")
    ]
    rules, (first, second) = args_grammars([*schemas, None])[0], args_grammars([*schemas, None])[1][:2]
    grammar = f'root ::= "a" {first} | "b" {second}\n{rules}'
    assert accepts(vocab, char_tokens, grammar, 'a{"v":"s"}') and accepts(
        vocab, char_tokens, grammar, 'b{"v":1}'
    )
    assert not accepts(vocab, char_tokens, grammar, 'a{"v":1}') and not accepts(
        vocab, char_tokens, grammar, 'b{"v":"s"}'
    )


def test_gbnf_literal_escapes(vocab: Any, char_tokens: dict[str, int]) -> None:
    assert gbnf_literal('a"b\\c\nd\té') == '"a\\"b\\\\c\\x0Ad\\x09é"'
    text = '{"k\\'
    assert accepts(vocab, char_tokens, "root ::= " + gbnf_literal(text), text)
    enum = json_schema_grammar({"enum": ['a\\b"c']})
    assert accepts(vocab, char_tokens, enum, '"a\\\\b\\"c"')


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([1], "must be an object, not array"),
        ({"type": "strin"}, "Invalid JSON schema at '#/type'"),
        ({"properties": {"a": {"minimum": "x"}}}, "'#/properties/a/minimum'"),
        ({"$ref": "https://example.com/s.json"}, "only local references"),
        ({"$ref": "#/$defs/missing"}, "points to nothing"),
        ({"properties": {"a": {"not": {"type": "null"}}}}, "at '#/properties/a': 'not' cannot be enforced"),
        ({"if": {}, "then": {}, "else": {}}, "'else' cannot be enforced"),
        ({"patternProperties": {"^a": {}}}, "'patternProperties'"),
        ({"dependentRequired": {"a": ["b"]}}, "'dependentRequired'"),
        ({"type": "array", "uniqueItems": True}, "'uniqueItems'"),
        ({"type": "array", "contains": {"type": "string"}}, "'contains'"),
        ({"type": "number", "multipleOf": 2}, "'multipleOf'"),
        ({"type": "object", "required": ["a"]}, "required property 'a' is not in 'properties'"),
        ({"$ref": "#/$defs/a", "type": "string", "$defs": {"a": {}}}, "'$ref' next to type"),
        ({"type": "number", "exclusiveMinimum": 0}, "exclusive bounds on 'number'"),
        ({"type": "number", "maximum": 0.5}, "whole-number bounds"),
        (
            {
                "$schema": "http://json-schema.org/draft-04/schema#",
                "type": "integer",
                "minimum": 0,
                "exclusiveMinimum": True,
            },
            "draft 4",
        ),
        ({"type": "integer", "minimum": 3, "maximum": 2}, "no value lies between"),
        ({"type": "array", "minItems": 3, "maxItems": 2}, "'minItems' is greater than 'maxItems'"),
        ({"type": "string", "pattern": "(?=a)b"}, "Unsupported pattern syntax"),
        ({"type": "string", "pattern": r"\bword"}, "escape '\\b'"),
        ({"type": "string", "pattern": '"'}, "pattern character"),
        ({"type": "string", "enum": [1, 2]}, "no value of 'enum'/'const' is of type string"),
        ({"properties": {"a": False}}, "a schema must be an object or true"),
    ],
)
def test_bad_or_unenforceable_schemas_name_the_problem(schema: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_json_schema(schema, param="response_format")
    assert message in info.value.message and info.value.param == "response_format"


def test_unsupported_tool_schema_names_the_tool() -> None:
    with pytest.raises(InvalidRequestError, match="Tool 'f'.*'not'") as info:
        tool_call_grammar([("f", {"not": {}})])
    assert info.value.param == "tools"
    with pytest.raises(InvalidRequestError):
        tool_call_grammar([])


def test_harmless_keywords_are_accepted() -> None:
    schema = {
        "type": "array",
        "uniqueItems": False,
        "items": {"type": "string"},
        "title": "t",
        "$comment": "c",
    }
    assert "root ::=" in json_schema_grammar(schema)
