"""Streaming behaviour: what goes out at once, what is held back, and pinned edge cases."""

from __future__ import annotations

import itertools
import json

import pytest

from openlms.parsers.output import (
    ContentDelta,
    OutputParser,
    ParsedEvent,
    ReasoningDelta,
    TextParser,
    ToolCallArgs,
    ToolCallBegin,
    ToolCallEnd,
    collect,
    get_tool_format,
    parse_all,
    random_call_id,
)

TOOLS = frozenset({"get_weather", "search"})


def make(fmt: str) -> OutputParser:
    counter = itertools.count()
    return get_tool_format(fmt).parser(TOOLS, new_id=lambda: f"id{next(counter)}")


def test_content_goes_out_at_once() -> None:
    parser = make("hermes")
    assert parser.feed("Hello wor") == [ContentDelta("Hello wor")]
    assert parser.feed("ld") == [ContentDelta("ld")]
    assert parser.finish() == []


def test_only_a_possible_tag_is_held_back() -> None:
    parser = make("hermes")
    assert parser.feed("a <tool") == [ContentDelta("a ")]
    assert parser.feed("s> b <") == [ContentDelta("<tools> b ")]
    assert parser.finish() == [ContentDelta("<")]


def test_hermes_call_streams_its_arguments() -> None:
    parser = make("hermes")
    assert parser.feed("Hi <tool_") == [ContentDelta("Hi ")]
    assert parser.feed("call>\n") == []
    assert parser.feed('{"name": "get_weather", "arguments": {"ci') == [
        ToolCallBegin(0, "id0", "get_weather"),
        ToolCallArgs(0, '{"ci'),
    ]
    assert parser.feed('ty": "Par') == [ToolCallArgs(0, 'ty": "Par')]
    assert parser.feed('is"}}\n</tool_') == [
        ToolCallArgs(0, 'is"}'),
        ToolCallEnd(0),
    ]
    assert parser.feed("call>") == []
    assert parser.finish() == []


STREAM_PREFIXES = {
    "hermes": '<tool_call>{"name": "get_weather", "arguments": {"city": "Pa',
    "default": '[TOOL_REQUEST]{"name": "get_weather", "arguments": {"city": "Pa',
    "llama3": '{"name": "get_weather", "parameters": {"city": "Pa',
    "mistral": '[TOOL_CALLS]get_weather[ARGS]{"city": "Pa',
    "harmony": '<|channel|>commentary to=functions.get_weather<|message|>{"city": "Pa',
}


@pytest.mark.parametrize("fmt", sorted(STREAM_PREFIXES))
def test_arguments_stream_before_the_call_ends(fmt: str) -> None:
    parser = make(fmt)
    events = [event for char in STREAM_PREFIXES[fmt] for event in parser.feed(char)]
    assert events[0] == ToolCallBegin(0, "id0", "get_weather")
    assert "".join(e.text for e in events if isinstance(e, ToolCallArgs)) == '{"city": "Pa'
    assert not any(isinstance(e, ToolCallEnd | ContentDelta) for e in events)


@pytest.mark.parametrize("fmt", sorted(STREAM_PREFIXES))
def test_truncated_call_is_closed_with_its_partial_arguments(fmt: str) -> None:
    """Generation cut inside the arguments: the call ends; its arguments are the partial, invalid JSON."""
    parser = make(fmt)
    events = parser.feed(STREAM_PREFIXES[fmt]) + parser.finish()
    assert events[-1] == ToolCallEnd(0)
    message = collect(events)
    assert message.content == ""
    assert [(c.name, c.arguments) for c in message.tool_calls] == [("get_weather", '{"city": "Pa')]
    with pytest.raises(json.JSONDecodeError):
        json.loads(message.tool_calls[0].arguments)


def test_invalid_json_arguments_are_streamed_as_written() -> None:
    """The scanner finds the object's end; invalid JSON inside it is passed on (service decides)."""
    message = parse_all(make("hermes"), '<tool_call>{"name": "search", "arguments": {"q": x}}</tool_call>')
    assert [(c.name, c.arguments) for c in message.tool_calls] == [("search", '{"q": x}')]
    assert message.content == ""


def test_mismatched_bracket_ends_the_call_and_the_rest_is_content() -> None:
    text = '<tool_call>{"name": "search", "arguments": {"q": "x"]}</tool_call> after'
    events = make("hermes").feed(text)
    message = collect(events)
    assert [(c.name, c.arguments) for c in message.tool_calls] == [("search", '{"q": "x"')]
    assert message.content == "]}</tool_call> after"
    assert events.index(ToolCallEnd(0)) < events.index(ContentDelta("]}</tool_call> after"))


def test_malformed_before_begin_is_content_at_once() -> None:
    parser = make("hermes")
    assert parser.feed('<tool_call>\n["name"') == [ContentDelta('<tool_call>\n["name"')]


def test_unknown_name_is_content_as_soon_as_the_header_shows_it() -> None:
    parser = make("hermes")
    assert parser.feed('<tool_call>{"name": "nope", "arguments": {') == [
        ContentDelta('<tool_call>{"name": "nope", "arguments": {')
    ]


def test_whitespace_between_calls_is_dropped_and_text_after_kept() -> None:
    call = '<tool_call>{"name": "search", "arguments": {}}</tool_call>'
    message = parse_all(make("hermes"), f"{call}\n\n{call}\n")
    assert message.content == "" and len(message.tool_calls) == 2
    assert parse_all(make("hermes"), f"{call}\n\nbye").content == "\n\nbye"


@pytest.mark.parametrize("cut", ["\n[END", "[END_TOOL_REQ", " [", "\n"])
def test_a_closing_tag_cut_by_the_end_of_the_output_is_not_content(cut: str) -> None:
    """max_tokens ending the output inside `[END_TOOL_REQUEST]` left "\n[END" as a message of its own."""
    call = '[TOOL_REQUEST]{"name": "search", "arguments": {"q": "x"}}'
    message = parse_all(make("default"), call + cut)
    assert message.content == "" and [c.name for c in message.tool_calls] == ["search"]
    assert parse_all(make("hermes"), '<tool_call>{"name": "search", "arguments": {}}</tool').content == ""
    assert parse_all(make("default"), call + "[END_TOOL_REQUEST] [ENDING").content == " [ENDING"


@pytest.mark.parametrize("piece", [1, 7, 1000])
def test_bare_call_objects_after_a_tagged_call_are_calls_too(piece: int) -> None:
    """Qwen2.5-Coder 0.5B writes its first call in <tool_call> tags and the next ones as bare objects,
    which were left in the answer's text."""
    bare = '{"name": "search", "arguments": {"q": "b"}}'
    text = f'<tool_call>\n{{"name": "get_weather", "arguments": {{}}}}\n</tool_call>\n{bare}\n{bare}'
    parser = make("hermes")
    events = [e for i in range(0, len(text), piece) for e in parser.feed(text[i : i + piece])]
    message = collect(events + parser.finish())
    assert message.content == "" and [c.name for c in message.tool_calls] == [
        "get_weather",
        "search",
        "search",
    ]
    other = parse_all(make("hermes"), '<tool_call>{"name": "search", "arguments": {}}</tool_call>\n{"a": 1}')
    assert other.content == '\n{"a": 1}' and len(other.tool_calls) == 1  # not a call: text, as written


def test_harmony_streams_content_and_holds_markup() -> None:
    parser = make("harmony")
    assert parser.feed("<|channel|>analysis<|mess") == []
    assert parser.feed("age|>Thinking") == [ReasoningDelta("Thinking")]
    assert parser.feed(" more<|") == [ReasoningDelta(" more")]
    assert parser.feed("end|><|start|>assistant<|channel|>final<|message|>Hel") == [ContentDelta("Hel")]
    assert parser.feed("lo<|return|>") == [ContentDelta("lo")]
    assert parser.finish() == []


def test_mistral_and_llama3_hold_back_only_what_may_be_a_call() -> None:
    mistral = make("mistral")
    assert mistral.feed("Sure [TOOL_") == [ContentDelta("Sure ")]
    assert mistral.feed("CALLS]get_") == []
    assert mistral.feed("x") == [ContentDelta("[TOOL_CALLS]get_x")]
    llama = make("llama3")
    assert llama.feed("  ") == []
    assert llama.feed("Hello") == [ContentDelta("  Hello")]
    assert llama.feed(' {"name"') == [ContentDelta(' {"name"')]


def test_ids_are_nine_digits_and_unique() -> None:
    assert all(len(random_call_id()) == 9 and random_call_id().isdigit() for _ in range(100))
    call = '<tool_call>{"name": "search", "arguments": {}}</tool_call>'
    message = parse_all(get_tool_format("hermes").parser(TOOLS), call * 20)
    assert len({c.id for c in message.tool_calls}) == 20


def test_a_repeated_id_from_the_factory_is_skipped() -> None:
    given = iter(["7", "7", "8"])
    parser = get_tool_format("default").parser(TOOLS, new_id=lambda: next(given))
    call = '[TOOL_REQUEST]{"name": "search", "arguments": {}}[END_TOOL_REQUEST]'
    assert [c.id for c in parse_all(parser, call * 2).tool_calls] == ["7", "8"]


def test_text_parser_and_feed_after_finish() -> None:
    assert TextParser().feed("<tool_call>") == [ContentDelta("<tool_call>")]
    assert TextParser().feed("") == []
    parser = make("hermes")
    parser.finish()
    with pytest.raises(RuntimeError):
        parser.feed("x")


def test_collect_keeps_call_order_and_merges_pieces() -> None:
    events: list[ParsedEvent] = [
        ContentDelta("a"),
        ToolCallBegin(0, "1", "f"),
        ToolCallArgs(0, '{"x"'),
        ToolCallArgs(0, ": 1}"),
        ToolCallEnd(0),
        ReasoningDelta("r"),
        ContentDelta("b"),
    ]
    message = collect(events)
    assert (message.content, message.reasoning) == ("ab", "r")
    assert [(c.id, c.name, c.arguments) for c in message.tool_calls] == [("1", "f", '{"x": 1}')]
