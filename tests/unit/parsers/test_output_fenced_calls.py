"""Hermes calls in the other shapes Qwen2.5-Coder models write (and llama.cpp takes): a fenced JSON block
(```json ... ```), <json>...</json>, and a bare call object at the start of the output."""

from __future__ import annotations

import itertools
import json

import pytest

from openlms.parsers.output import (
    ContentDelta,
    OutputParser,
    ParsedMessage,
    ToolCallArgs,
    ToolCallBegin,
    ToolCallEnd,
    collect,
    get_tool_format,
    parse_all,
)

TOOLS = frozenset({"say_hello", "get_current_time"})
# What Qwen2.5-Coder-0.5B-Instruct wrote for "Can you say hello to Bob the Builder?" with say_hello offered
QWEN_CODER_CALL = (
    '```json\n{\n    "name": "say_hello",\n    "arguments": {\n'
    '        "name": "Bob the Builder"\n    }\n}\n```'
)


def make(fmt: str = "hermes") -> OutputParser:
    counter = itertools.count()
    return get_tool_format(fmt).parser(TOOLS, new_id=lambda: f"id{next(counter)}")


def char_by_char(parser: OutputParser, text: str) -> ParsedMessage:
    return collect([*(e for ch in text for e in parser.feed(ch)), *parser.finish()])


def calls(message: ParsedMessage) -> list[tuple[str, object]]:
    return [(c.name, json.loads(c.arguments)) for c in message.tool_calls]


def test_a_fenced_call_is_a_tool_call_with_no_markup_left() -> None:
    for message in (parse_all(make(), QWEN_CODER_CALL), char_by_char(make(), QWEN_CODER_CALL)):
        assert message.content == ""
        assert calls(message) == [("say_hello", {"name": "Bob the Builder"})]


def test_a_fenced_call_streams_its_arguments() -> None:
    parser = make()
    assert parser.feed("Sure!\n```js") == [ContentDelta("Sure!\n")]
    assert parser.feed('on\n{"name": "say_hello", "arguments": {"na') == [
        ToolCallBegin(0, "id0", "say_hello"),
        ToolCallArgs(0, '{"na'),
    ]
    assert parser.feed('me": "Bob"}}\n``') == [ToolCallArgs(0, 'me": "Bob"}'), ToolCallEnd(0)]
    assert parser.feed("`\nDone.") == [ContentDelta("\nDone.")]
    assert parser.finish() == []


def test_two_fenced_calls_and_a_tagged_one() -> None:
    block = '```json\n{"name": "get_current_time", "arguments": {}}\n```'
    tagged = '<tool_call>\n{"name": "say_hello", "arguments": {"name": "Ann"}}\n</tool_call>'
    text = f"{block}\n{block}\n{tagged}"
    for message in (parse_all(make(), text), char_by_char(make(), text)):
        assert message.content == ""
        assert calls(message) == [
            ("get_current_time", {}),
            ("get_current_time", {}),
            ("say_hello", {"name": "Ann"}),
        ]


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"name": "Joke", "arguments": {"message": "hi"}}\n```',  # not one of the tools
        '```json\n{"a": 1, "b": [1, 2]}\n```',  # JSON, not a call
        "```json\n[1, 2]\n```",
        "```python\nprint('hi')\n```",
        "Use ```json fences for JSON.",
        "``` json\n{}",
    ],
)
def test_other_fenced_blocks_stay_content_as_written(text: str) -> None:
    for message in (parse_all(make(), text), char_by_char(make(), text)):
        assert message.content == text and not message.tool_calls


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "say_hello", "arguments": {"name": "Bob"}}',
        '\n  {\n"name": "say_hello",\n"arguments": {\n"name": "Bob"\n}\n}\n',
        '<json>\n{"name": "say_hello", "arguments": {"name": "Bob"}}\n</json>',
        '<response>\n{"name": "say_hello", "arguments": {"name": "Bob"}}\n</response>',
        '{"arguments": {"name": "Bob"}, "name": "say_hello"}',  # keys in another order: read whole
    ],
)
def test_a_bare_call_at_the_start_and_a_json_tagged_call(text: str) -> None:
    for message in (parse_all(make(), text), char_by_char(make(), text)):
        assert message.content == ""
        assert calls(message) == [("say_hello", {"name": "Bob"})]


@pytest.mark.parametrize(
    "text",
    [
        ' {"answer": 42, "names": ["a", "b"]}',  # JSON, not a call: kept with its leading space
        '{"name": "Joke", "arguments": {}}',  # not one of the tools
        'Here it is: {"name": "say_hello", "arguments": {"name": "Bob"}}',  # a bare object only at the start
        "<json>[1]</json>",
        "   ",
    ],
)
def test_bare_objects_that_are_no_call_stay_content(text: str) -> None:
    for message in (parse_all(make(), text), char_by_char(make(), text)):
        assert message.content == text and not message.tool_calls


def test_a_bare_call_streams_and_text_after_it_is_content() -> None:
    parser = make()
    assert parser.feed("  ") == []
    assert parser.feed('{"name": "say_hello", "arguments": {"na') == [
        ToolCallBegin(0, "id0", "say_hello"),
        ToolCallArgs(0, '{"na'),
    ]
    assert parser.feed('me": "Bob"}}') == [ToolCallArgs(0, 'me": "Bob"}'), ToolCallEnd(0)]
    assert parser.feed("\nDone.") == [ContentDelta("\nDone.")]
    assert parser.finish() == []


def test_the_default_format_takes_no_fenced_call() -> None:
    for text in (
        '```json\n{"name": "say_hello", "arguments": {"name": "Bob"}}\n```',
        '{"name": "say_hello"}',
    ):
        message = parse_all(make("default"), text)
        assert message.content == text and not message.tool_calls
