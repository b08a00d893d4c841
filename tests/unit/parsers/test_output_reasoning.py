"""<think> reasoning, and which parser build_output_parser gives."""

from __future__ import annotations

import pytest

from openlms.parsers.output import (
    ContentDelta,
    ParsedMessage,
    ReasoningDelta,
    TextParser,
    ThinkTagParser,
    ToolCallBegin,
    build_output_parser,
    collect,
    get_tool_format,
    parse_all,
    prompt_opens_reasoning,
)
from openlms.parsers.output.harmony import HarmonyParser


def think(starts: bool = False) -> ThinkTagParser:
    return ThinkTagParser(TextParser(), starts_in_reasoning=starts)


def test_reasoning_streams_at_once() -> None:
    parser = think()
    assert parser.feed("<think>\nabc") == [ReasoningDelta("abc")]
    assert parser.feed(" d</th") == [ReasoningDelta(" d")]
    assert parser.feed("ink>\n\nHel") == [ContentDelta("Hel")]
    assert parser.feed("lo") == [ContentDelta("lo")]
    assert parser.finish() == []


@pytest.mark.parametrize("cut", range(1, 30))
def test_tags_split_anywhere(cut: int) -> None:
    text = "  <think>plan</think>answer <think> x"
    parser = think()
    message = parse_all_pieces(parser, [text[:cut], text[cut:]])
    assert (message.reasoning, message.content) == ("plan", "answer <think> x")


def parse_all_pieces(parser: ThinkTagParser, pieces: list[str]) -> ParsedMessage:
    events = [event for piece in pieces for event in parser.feed(piece)]
    return collect(events + parser.finish())


def test_starts_in_reasoning() -> None:
    message = parse_all(think(starts=True), "\nfirst thoughts\n</think>\n\nThe answer.")
    assert (message.reasoning, message.content) == ("first thoughts\n", "The answer.")


def test_tag_after_content_is_content() -> None:
    message = parse_all(think(), "Hello <think>x</think>")
    assert (message.reasoning, message.content) == ("", "Hello <think>x</think>")


def test_unterminated_reasoning_stays_reasoning() -> None:
    message = parse_all(think(), "<think>still thinking </thi")
    assert (message.reasoning, message.content) == ("still thinking </thi", "")


def test_empty_reasoning_emits_no_reasoning_event() -> None:
    parser = think()
    events = parser.feed("<think>\n\n</think>\n\nHi") + parser.finish()
    assert events == [ContentDelta("Hi")]


def test_only_whitespace_output_stays_content() -> None:
    assert parse_all(think(), " \n").content == " \n"


@pytest.mark.parametrize(
    ("prompt", "opens"),
    [
        ("<|im_start|>assistant\n<think>\n", True),
        ("<｜Assistant｜><think>", True),
        ("<think>\n\n</think>\n\n", False),
        ("<think>x", False),
        ("", False),
    ],
)
def test_prompt_opens_reasoning(prompt: str, opens: bool) -> None:
    assert prompt_opens_reasoning(prompt) is opens


def test_build_picks_the_plain_parsers() -> None:
    hermes = get_tool_format("hermes")
    assert isinstance(build_output_parser(None, [], reasoning=False), TextParser)
    assert isinstance(build_output_parser(hermes, [], reasoning=False), TextParser)
    assert isinstance(build_output_parser(hermes, ["f"], reasoning=True), ThinkTagParser)
    assert isinstance(build_output_parser(get_tool_format("harmony"), [], reasoning=True), HarmonyParser)
    assert isinstance(build_output_parser(get_tool_format("harmony"), ["f"], reasoning=False), HarmonyParser)


def test_build_without_reasoning_keeps_think_tags_in_content() -> None:
    parser = build_output_parser(get_tool_format("hermes"), ["f"], reasoning=False)
    text = '<think>x</think><tool_call>{"name": "f", "arguments": {}}</tool_call>'
    message = parse_all(parser, text)
    assert message.content == "<think>x</think>" and message.tool_calls[0].name == "f"


def test_build_with_reasoning_and_tools() -> None:
    parser = build_output_parser(
        get_tool_format("mistral"), ["f"], reasoning=True, starts_in_reasoning=True, new_id=lambda: "c1"
    )
    events = parser.feed("hmm</think>[TOOL_CALLS]f[ARGS]{}") + parser.finish()
    assert events[0] == ReasoningDelta("hmm")
    assert ToolCallBegin(0, "c1", "f") in events


def test_harmony_reasoning_flag() -> None:
    text = "<|channel|>analysis<|message|>a<|end|><|start|>assistant<|channel|>final<|message|>b"
    on = parse_all(build_output_parser(get_tool_format("harmony"), [], reasoning=True), text)
    off = parse_all(build_output_parser(get_tool_format("harmony"), [], reasoning=False), text)
    assert (on.reasoning, on.content) == ("a", "b")
    assert (off.reasoning, off.content) == ("", "ab")
