"""The Qwen3-Coder XML tool-call format ("qwen3_xml"): conformance, streaming, value types, detection."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from openlms.parsers.output import (
    ContentDelta,
    OutputParser,
    TextParser,
    ThinkTagParser,
    ToolCallArgs,
    ToolCallBegin,
    ToolCallEnd,
    detect_tool_format,
    get_tool_format,
    parse_all,
)
from openlms.parsers.output.qwen_xml import json_value, parameter_types
from openlms.parsers.templates import ChatTemplate
from tests.unit.parsers.test_output_conformance import (
    _feed_pieces,
    _random_pieces,
    _summary,
    assert_splits_agree,
    every_split,
)
from tests.unit.parsers.test_output_registry import QWEN as HERMES_QWEN_TEMPLATE

TOOLS = frozenset({"get_weather", "search", "noargs", "run_code"})
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name"},
        "days": {"type": "integer"},
        "metric": {"type": "boolean"},
        "where": {"type": "object"},
        "hours": {"type": "array", "items": {"type": "integer"}},
        "ratio": {"type": "number"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "any": {},
    },
    "required": ["city"],
}
SCHEMAS: Mapping[str, Mapping[str, Any] | None] = {
    "get_weather": WEATHER_SCHEMA,
    "search": {"type": "object", "properties": {"q": {"type": "string"}}},
    "noargs": {"type": "object", "properties": {}},
    "run_code": {"type": "object", "properties": {"code": {"type": "string"}}},
}


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    content: str = ""
    calls: tuple[tuple[str, str], ...] = ()  # (name, arguments text)
    tools: frozenset[str] = TOOLS
    schemas: Mapping[str, Mapping[str, Any] | None] | None = field(default_factory=lambda: SCHEMAS)
    think: bool = True
    reasoning: str = ""

    def parser(self) -> OutputParser:
        inner = get_tool_format("qwen3_xml").parser(self.tools, tool_schemas=self.schemas)
        return ThinkTagParser(inner) if self.think else inner


def call(name: str, *params: tuple[str, str], end: str = "</function>\n</tool_call>") -> str:
    body = "".join(f"<parameter={key}>\n{value}\n</parameter>\n" for key, value in params)
    return f"<tool_call>\n<function={name}>\n{body}{end}"


QW_W = call("get_weather", ("city", "Paris"))
QW_S = call("search", ("q", "x"))
W = ("get_weather", '{"city": "Paris"}')
S = ("search", '{"q": "x"}')
CODE = "if a < b and c > d:\n    s = '</param' + '</parameter' + '<parameter=y>' + '</function>'\n\n\n"
UNICODE = 'Zürich 東京 🌧 "quoted" back\\slash\ttab'
UNKNOWN = call("get_time", ("tz", "UTC"))
OFF_FORMAT_BODY = "\n<param=city>Paris</param>\n</function>\n</tool_call>"

# fmt: off
CASES = [
    Case("text", "Hello! 1 < 2 and <b>x</b> <function=get_weather>.",
         content="Hello! 1 < 2 and <b>x</b> <function=get_weather>."),
    Case("call", QW_W, calls=(W,)),
    Case("compact",
         "<tool_call><function=get_weather><parameter=city>Paris</parameter></function></tool_call>",
         calls=(W,)),
    Case("text-before", "Let me check.\n" + QW_W, content="Let me check.\n", calls=(W,)),
    Case("two-calls", QW_W + "\n" + QW_S, calls=(W, S)),
    Case("three-calls-no-ws", QW_W + QW_S + QW_W, calls=(W, S, W)),
    Case("text-after", QW_W + "\nDone.", content="\nDone.", calls=(W,)),
    Case("text-between", "A" + QW_W + "B" + QW_S + "C", content="ABC", calls=(W, S)),
    Case("typed", call("get_weather", ("city", "Paris"), ("days", "3"), ("metric", "true"),
                       ("where", '{"lat": 48.8, "lon": 2.3}'), ("hours", "[1, 2]"), ("ratio", "-0.5e1"),
                       ("note", "null"), ("any", "x y")),
         calls=(("get_weather", '{"city": "Paris", "days": 3, "metric": true, "where": {"lat": 48.8, '
                 '"lon": 2.3}, "hours": [1, 2], "ratio": -0.5e1, "note": null, "any": "x y"}'),)),
    Case("string-stays-string", call("get_weather", ("city", "123"), ("note", "5"), ("any", "[1]")),
         calls=(("get_weather", '{"city": "123", "note": "5", "any": [1]}'),)),
    Case("not-json-falls-back", call("get_weather", ("days", "three"), ("metric", "yes"), ("where", "{oops")),
         calls=(("get_weather", '{"days": "three", "metric": "yes", "where": "{oops"}'),)),
    Case("unknown-parameter", call("get_weather", ("city", "Oslo"), ("extra", "42")),
         calls=(("get_weather", '{"city": "Oslo", "extra": "42"}'),)),
    Case("no-schemas", call("get_weather", ("city", "Paris"), ("days", "3"), ("q", '"quoted"')),
         calls=(("get_weather", '{"city": "Paris", "days": 3, "q": "quoted"}'),), schemas=None),
    Case("lookalikes", call("run_code", ("code", CODE)), calls=(("run_code", json.dumps({"code": CODE})),)),
    Case("newlines-inside", call("search", ("q", "\nline1\n\nline2\n")),
         calls=(("search", '{"q": "\\nline1\\n\\nline2\\n"}'),)),
    Case("unicode-escapes", call("search", ("q", UNICODE)),
         calls=(("search", json.dumps({"q": UNICODE}, ensure_ascii=False)),)),
    Case("empty-values", "<tool_call><function=search><parameter=q></parameter></function></tool_call>"
         + call("search", ("q", "")), calls=(("search", '{"q": ""}'),) * 2),
    Case("no-parameters", "<tool_call>\n<function=noargs>\n</function>\n</tool_call>",
         calls=(("noargs", "{}"),)),
    Case("unknown-tool", "Hm. " + UNKNOWN, content="Hm. " + UNKNOWN),
    Case("unknown-then-known", UNKNOWN + "\n" + QW_W, content=UNKNOWN + "\n", calls=(W,)),
    Case("prefix-of-a-name", call("get", ("city", "Paris")), content=call("get", ("city", "Paris"))),
    Case("hermes-json-is-content", '<tool_call>\n{"name": "search", "arguments": {"q": "x"}}\n</tool_call>',
         content='<tool_call>\n{"name": "search", "arguments": {"q": "x"}}\n</tool_call>'),
    Case("function-space", "<tool_call>\n<function= search>\n</function>",
         content="<tool_call>\n<function= search>\n</function>"),
    Case("double-open-tag", "<tool_call>\n" + QW_W, content="<tool_call>\n", calls=(W,)),
    Case("off-format-body", "<tool_call>\n<function=get_weather>" + OFF_FORMAT_BODY,
         content=OFF_FORMAT_BODY, calls=(("get_weather", "{}"),)),
    Case("bad-parameter-name", "<tool_call><function=search><parameter=a\nb>x</parameter></function>",
         content="<parameter=a\nb>x</parameter></function>", calls=(("search", "{}"),)),
    Case("text-after-function", QW_W.removesuffix("</tool_call>") + "ok</tool_call>",
         content="\nok</tool_call>", calls=(W,)),
    Case("no-close-tags", QW_W.removesuffix("\n</function>\n</tool_call>"), calls=(W,)),
    Case("no-function-close", call("get_weather", ("city", "Paris"), end="</tool_call>") + " bye",
         content=" bye", calls=(W,)),
    Case("no-tool-call-close", QW_W.removesuffix("</tool_call>") + QW_S, calls=(W, S)),
    Case("cut-in-header", "Hi <tool_call>\n<function=get_wea", content="Hi <tool_call>\n<function=get_wea"),
    Case("cut-in-value", "<tool_call>\n<function=get_weather>\n<parameter=city>\nPar",
         calls=(("get_weather", '{"city": "Par"}'),)),
    Case("cut-in-close-tag", "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</param",
         calls=(W,)),
    Case("cut-in-typed-value", call("get_weather", ("city", "Paris")).split("</function>")[0]
         + "<parameter=days>\n3\n</para", calls=(("get_weather", '{"city": "Paris", "days": 3}'),)),
    Case("cut-in-parameter-name", QW_W.split("</function>")[0] + "<parameter=da", calls=(W,)),
    Case("cut-in-function-close", QW_W.split("</function>")[0] + "</func", calls=(W,)),
    Case("lone-tag-prefix", "a <tool> b <tool_cal", content="a <tool> b <tool_cal"),
    Case("no-tools", QW_W, content=QW_W, tools=frozenset()),
    Case("think-and-call", "<think>\nI should call it.\n</think>\n\n" + QW_W, reasoning="I should call it.\n",
         calls=(W,)),
    Case("think-off", "<think>x</think>" + QW_W, content="<think>x</think>", calls=(W,), think=False),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_one_shot(case: Case) -> None:
    message = parse_all(case.parser(), case.text)
    assert message.content == case.content
    assert message.reasoning == case.reasoning
    assert [(c.name, c.arguments) for c in message.tool_calls] == list(case.calls)
    for tool_call in message.tool_calls:
        assert tool_call.id.isdigit() and len(tool_call.id) == 9
        assert isinstance(json.loads(tool_call.arguments), dict)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_any_split_gives_the_same_result(case: Case) -> None:
    """One character at a time, every cut into two pieces (markup split mid-token), and random splits."""
    whole = case.parser()
    expected = _summary([*whole.feed(case.text), *whole.finish()])
    assert_splits_agree(case.parser, every_split(case.text, random.Random(case.id)), expected)


FRAGMENTS = ["<tool_call>", "</tool_call>", "<function=search>", "<function=zz>", "<function=", "</function>",
             "<parameter=q>", "<parameter=", "</parameter>", "</param", "<tool_", "<think>", "</think>",
             "<tool_call>\n<function=search>\n", "<tool_call><function=get_weather>",
             "<parameter=days>\n", "<parameter=where>"]  # fmt: skip
BITS = ["\n", " ", "x", "3", "{", "}", '"', "<", ">", "=", "é", "null", "[1]"]


def test_random_markup_soup() -> None:
    """Random mixes of markup and text: no errors, well-formed events, valid arguments, any split the same."""
    rng = random.Random("qwen3_xml")
    for _ in range(300):
        text = "".join(rng.choice(FRAGMENTS + BITS) for _ in range(rng.randint(0, 30)))
        case = Case("soup", text, think=rng.random() < 0.5, schemas=rng.choice((SCHEMAS, None)))
        expected = _summary(_feed_pieces(case.parser(), [text]))
        assert_splits_agree(case.parser, (list(text), _random_pieces(text, rng)), expected)
        assert all(isinstance(json.loads(args), dict) for _, args in expected[2])
        if not expected[2] and not case.think:
            assert expected[0] == text  # nothing recognised: the text is content, as written


def make() -> OutputParser:
    counter = itertools.count()
    return get_tool_format("qwen3_xml").parser(
        TOOLS, tool_schemas=SCHEMAS, new_id=lambda: f"id{next(counter)}"
    )


def test_string_values_stream_and_others_go_out_whole() -> None:
    parser = make()
    assert parser.feed("Hi <tool_call>\n<function=get_wea") == [ContentDelta("Hi ")]
    assert parser.feed("ther>\n<parameter=city>\nPa") == [
        ToolCallBegin(0, "id0", "get_weather"),
        ToolCallArgs(0, '{"city": "Pa'),
    ]
    assert parser.feed("ris\n") == [ToolCallArgs(0, "ris")]  # the newline may be the last one
    assert parser.feed("\n</param") == [ToolCallArgs(0, "\\n")]  # it was not
    assert parser.feed("eter>\n<parameter=days>\n1") == [ToolCallArgs(0, '", "days": ')]
    assert parser.feed("4\n</parameter>\n") == [ToolCallArgs(0, "14")]
    assert parser.feed("</function>\n</tool") == [ToolCallArgs(0, "}"), ToolCallEnd(0)]
    assert parser.feed("_call>") == []
    assert parser.finish() == []


def test_without_schemas_every_value_waits_for_its_end() -> None:
    parser = get_tool_format("qwen3_xml").parser(TOOLS, new_id=lambda: "id0")
    events = parser.feed("<tool_call><function=search><parameter=q>\nhello wor")
    assert events == [ToolCallBegin(0, "id0", "search"), ToolCallArgs(0, '{"q": ')]
    assert parser.feed("ld\n</parameter>") == [ToolCallArgs(0, '"hello world"')]
    assert parser.finish() == [ToolCallArgs(0, "}"), ToolCallEnd(0)]


@pytest.mark.parametrize(
    ("raw", "types", "expected"),
    [
        ("Paris", frozenset({"string"}), '"Paris"'),
        ("42", frozenset({"string"}), '"42"'),
        (" 42 ", frozenset({"integer"}), "42"),
        ("4.5", frozenset({"integer"}), "4.5"),  # JSON of another type than declared: kept
        ("NaN", frozenset({"number"}), '"NaN"'),
        ("-Infinity", None, '"-Infinity"'),
        ("true", None, "true"),
        ("True", frozenset({"boolean"}), "true"),  # as the template writes a Python bool in the history
        ("False", frozenset({"boolean", "string"}), "false"),
        ("None", frozenset({"integer", "null"}), "null"),
        ("None", frozenset({"string"}), '"None"'),
        ("False", None, '"False"'),
        ('{"a": [1, {"b": null}]}', frozenset({"object"}), '{"a": [1, {"b": null}]}'),
        ("[1, 2", frozenset({"array"}), '"[1, 2"'),
        ("null", frozenset({"string", "null"}), "null"),
        ("12", frozenset({"string", "null"}), '"12"'),
        ("12", frozenset({"string", "integer"}), "12"),
        ("", None, '""'),
        ("[" * 100_000, None, json.dumps("[" * 100_000)),
    ],
)
def test_json_value(raw: str, types: frozenset[str] | None, expected: str) -> None:
    assert json_value(raw, types) == expected


def test_parameter_types() -> None:
    assert parameter_types(WEATHER_SCHEMA, "city") == frozenset({"string"})
    assert parameter_types(WEATHER_SCHEMA, "note") == frozenset({"string", "null"})
    assert parameter_types(WEATHER_SCHEMA, "any") is None
    assert parameter_types(WEATHER_SCHEMA, "nope") == frozenset({"string"})  # unknown ones stay strings
    nullable = {"type": "object", "properties": {"x": {"type": ["integer", "null"]}}}
    assert parameter_types(nullable, "x") == frozenset({"integer", "null"})
    assert parameter_types(None, "city") is None
    assert parameter_types({"type": "object"}, "city") is None


# A Qwen3-Coder-like template: its tool parts, written for this test (not the real template).
QWEN3_CODER = """{%- if tools is iterable and tools | length > 0 %}
{{- '<|im_start|>system\\n# Tools\\n\\nYou can call these functions:\\n<tools>' }}
{%- for tool in tools %}{%- set fn = tool.function if tool.function is defined else tool %}
{{- '\\n<function>\\n<name>' ~ fn.name ~ '</name>' }}
{%- for pname, pfields in fn.parameters.properties | items %}
{{- '\\n<parameter>\\n<name>' ~ pname ~ '</name>\\n<type>' ~ pfields.type ~ '</type>\\n</parameter>' }}
{%- endfor %}{{- '\\n</function>' }}{%- endfor %}
{{- '\\n</tools>\\n\\nTo call a function, reply exactly like this:\\n<tool_call>\\n<function=name>\\n'
    '<parameter=arg>\\nvalue\\n</parameter>\\n</function>\\n</tool_call><|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}{%- if message.role == "assistant" and message.tool_calls %}
{%- for tc in message.tool_calls %}{%- set tc = tc.function if tc.function is defined else tc %}
{{- '<tool_call>\\n<function=' ~ tc.name ~ '>\\n' }}
{%- for key, val in tc.arguments | items %}
{{- '<parameter=' ~ key ~ '>\\n' }}{{- val | tojson if val is mapping else val | string }}
{{- '\\n</parameter>\\n' }}
{%- endfor %}{{- '</function>\\n</tool_call>' }}{%- endfor %}{%- endif %}{%- endfor %}"""
HERMES_ONLY = (
    "{% if tools %}<tools>{{ tools | tojson }}</tools>{% endif %}<tool_call>{{ c | tojson }}</tool_call>"
)
# Llama 3.1's custom-tool prose uses <function=...> but no <parameter=...>: not this format.
LLAMA_FUNCTION_TAG = "{% if tools %}Environment: ipython\n<function=fn_name>{...}</function>{% endif %}"


@pytest.mark.parametrize(
    ("template", "name"),
    [
        (QWEN3_CODER, "qwen3_xml"),
        (HERMES_QWEN_TEMPLATE, "hermes"),
        (HERMES_ONLY, "hermes"),
        (LLAMA_FUNCTION_TAG, "llama3"),
        (QWEN3_CODER.replace("tools", "functions_list"), "default"),  # no tool support
    ],
)
def test_detect(template: str, name: str) -> None:
    assert detect_tool_format(template).name == name


def test_registry_entry() -> None:
    fmt = get_tool_format("qwen3_xml")
    assert (fmt.name, fmt.native, fmt.needs_special_tokens, fmt.parses_reasoning) == (
        "qwen3_xml",
        True,
        False,
        False,
    )
    assert isinstance(fmt.parser([]), TextParser)
    assert isinstance(fmt.parser([], tool_schemas=SCHEMAS), TextParser)


def test_other_formats_ignore_schemas() -> None:
    text = '<tool_call>{"name": "search", "arguments": {"q": 1}}</tool_call>'
    message = parse_all(get_tool_format("hermes").parser(TOOLS, tool_schemas=SCHEMAS), text)
    assert [(c.name, c.arguments) for c in message.tool_calls] == [("search", '{"q": 1}')]


def test_template_round_trip() -> None:
    """A call as the template renders it in the history reads back as the same call."""
    arguments = {"city": "Paris", "days": 3, "metric": False, "where": {"lat": 48.8}, "note": "a\nb"}
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}]
    history = {
        "role": "assistant",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": arguments}}],
    }
    rendered = ChatTemplate(QWEN3_CODER).render([history], tools=tools, add_generation_prompt=False)
    message = parse_all(get_tool_format("qwen3_xml").parser(TOOLS, tool_schemas=SCHEMAS), rendered)
    assert "<function=name>" in message.content  # the prompt's example names no tool
    assert [c.name for c in message.tool_calls] == ["get_weather"]
    assert json.loads(message.tool_calls[0].arguments) == arguments
