"""Conformance of every output format: one-shot results, and the same results for any split of the text."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest

from openlms.parsers.output import (
    ContentDelta,
    OutputParser,
    ParsedEvent,
    ReasoningDelta,
    ToolCallArgs,
    ToolCallBegin,
    ToolCallEnd,
    build_output_parser,
    collect,
    get_tool_format,
    parse_all,
)

TOOLS = frozenset({"get_weather", "search", "noargs"})


@dataclass(frozen=True)
class Case:
    id: str
    fmt: str
    text: str
    content: str = ""
    reasoning: str = ""
    calls: tuple[tuple[str, str], ...] = ()  # (name, arguments text)
    tools: frozenset[str] = TOOLS
    think: bool = True  # reasoning on
    starts_in_reasoning: bool = False

    def parser(self) -> OutputParser:
        return build_output_parser(
            get_tool_format(self.fmt),
            self.tools,
            reasoning=self.think,
            starts_in_reasoning=self.starts_in_reasoning,
        )


W = ("get_weather", '{"city": "Paris"}')
S = ("search", '{"q": "x"}')
NESTED_ARGS = (
    '{"q": "a } { ] [ \\" \\\\", "filters": {"tags": ["x", {"y": [1, 2.5e3]}], "n": null, "ok": true}}'
)
UNICODE_ARGS = '{"city": "Zürich 東京 🌧", "esc": "\\u00e9\\n"}'
HERMES_W = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
HERMES_S = '<tool_call>\n{"name": "search", "arguments": {"q": "x"}}\n</tool_call>'
BAD_HERMES = '<tool_call>\n["name": "get_delivery_date", function: "date"]\n</tool_call>'  # from tools.md
DEFAULT_W = '[TOOL_REQUEST]{"name": "get_weather", "arguments": {"city": "Paris"}}[END_TOOL_REQUEST]'
LLAMA_W = '{"name": "get_weather", "parameters": {"city": "Paris"}}'
HARMONY_THINK = "<|channel|>analysis<|message|>User says hi.<|end|>"
HARMONY_FINAL = "<|start|>assistant<|channel|>final<|message|>Hi!<|return|>"
HARMONY_CALL = (
    "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
    '{"city": "Paris"}<|call|>'
)


def hermes(name: str, arguments: str) -> str:
    return f'<tool_call>{{"name": "{name}", "arguments": {arguments}}}</tool_call>'


# fmt: off
CASES = [
    # hermes
    Case("hermes-text", "hermes", "Hello! 1 < 2 and <b>x</b>.", content="Hello! 1 < 2 and <b>x</b>."),
    Case("hermes-call", "hermes", HERMES_W, calls=(W,)),
    Case("hermes-compact", "hermes",
         '<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>',
         calls=(("get_weather", '{"city":"Paris"}'),)),
    Case("hermes-text-before", "hermes", "Let me check.\n" + HERMES_W, content="Let me check.\n", calls=(W,)),
    Case("hermes-two-calls", "hermes", HERMES_W + "\n" + HERMES_S, calls=(W, S)),
    Case("hermes-text-after", "hermes", HERMES_W + "\nDone.", content="\nDone.", calls=(W,)),
    Case("hermes-text-between", "hermes", "A" + HERMES_W + "B" + HERMES_S + "C", content="ABC", calls=(W, S)),
    Case("hermes-malformed", "hermes", BAD_HERMES, content=BAD_HERMES),
    Case("hermes-malformed-then-call", "hermes", BAD_HERMES + "\n" + HERMES_W, content=BAD_HERMES + "\n",
         calls=(W,)),
    Case("hermes-unknown-tool", "hermes", '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>',
         content='<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'),
    Case("hermes-name-not-string", "hermes", '<tool_call>{"name": 3, "arguments": {}}</tool_call>',
         content='<tool_call>{"name": 3, "arguments": {}}</tool_call>'),
    Case("hermes-array-args", "hermes", '<tool_call>{"name": "search", "arguments": [1]}</tool_call>',
         content='<tool_call>{"name": "search", "arguments": [1]}</tool_call>'),
    Case("hermes-unicode", "hermes", hermes("get_weather", UNICODE_ARGS),
         calls=(("get_weather", UNICODE_ARGS),)),
    Case("hermes-nested", "hermes", hermes("search", NESTED_ARGS), calls=(("search", NESTED_ARGS),)),
    Case("hermes-no-args", "hermes", '<tool_call>{"name": "noargs"}</tool_call>', calls=(("noargs", "{}"),)),
    Case("hermes-null-args", "hermes", '<tool_call>{"name": "noargs", "arguments": null}</tool_call>',
         calls=(("noargs", "{}"),)),
    Case("hermes-empty-args", "hermes", hermes("noargs", "{}"), calls=(("noargs", "{}"),)),
    Case("hermes-reordered", "hermes", '<tool_call>{"arguments": {"city": "Paris"}, "name": "get_weather"}',
         calls=(W,)),
    Case("hermes-string-args", "hermes",
         '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}</tool_call>',
         calls=(("get_weather", '{"city": "Oslo"}'),)),
    Case("hermes-parameters-key", "hermes",
         '<tool_call>{"name": "get_weather", "parameters": {"city": "Paris"}}</tool_call>', calls=(W,)),
    Case("hermes-extra-key", "hermes",
         '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "x{"}</tool_call>',
         calls=(W,)),
    Case("hermes-no-close-tag", "hermes",
         '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}',
         calls=(W,)),
    Case("hermes-unclosed-header", "hermes", 'Hi <tool_call>{"name": "get_wea',
         content='Hi <tool_call>{"name": "get_wea'),
    Case("hermes-lone-tag-prefix", "hermes", "a <tool> b <tool_cal", content="a <tool> b <tool_cal"),
    Case("hermes-no-tools", "hermes", HERMES_W, content=HERMES_W, tools=frozenset()),
    Case("hermes-think-and-call", "hermes", "<think>\nI should call it.\n</think>\n\n" + HERMES_W,
         reasoning="I should call it.\n", calls=(W,)),
    Case("hermes-starts-in-reasoning", "hermes", "plan <x>\n</think>\n\nOK " + HERMES_W,
         reasoning="plan <x>\n", content="OK ", calls=(W,), starts_in_reasoning=True),
    Case("hermes-think-off", "hermes", "<think>x</think>" + HERMES_W, content="<think>x</think>", calls=(W,),
         think=False),
    # LM Studio's default format
    Case("default-call", "default", DEFAULT_W, calls=(W,)),
    Case("default-several", "default", DEFAULT_W + "\n" + DEFAULT_W.replace("Paris", "Rome"),
         calls=(W, ("get_weather", '{"city": "Rome"}'))),
    Case("default-noargs", "default", '[TOOL_REQUEST]{"name": "noargs", "arguments": {}}[END_TOOL_REQUEST]',
         calls=(("noargs", "{}"),)),
    Case("default-text-around", "default", "Sure. " + DEFAULT_W + " Bye", content="Sure.  Bye", calls=(W,)),
    Case("default-unknown", "default", '[TOOL_REQUEST]{"name": "nope", "arguments": {}}[END_TOOL_REQUEST]',
         content='[TOOL_REQUEST]{"name": "nope", "arguments": {}}[END_TOOL_REQUEST]'),
    Case("default-brackets-in-text", "default", "[TOOL] [x] [TOOL_REQ", content="[TOOL] [x] [TOOL_REQ"),
    Case("default-nested", "default",
         f'[TOOL_REQUEST]{{"name": "search", "arguments": {NESTED_ARGS}}}[END_TOOL_REQUEST]',
         calls=(("search", NESTED_ARGS),)),
    # llama3
    Case("llama3-call", "llama3", LLAMA_W, calls=(W,)),
    Case("llama3-leading-ws", "llama3", '\n {"name": "get_weather", "arguments": {"city": "Paris"}}',
         calls=(W,)),
    Case("llama3-python-tag", "llama3", "<|python_tag|>" + LLAMA_W, calls=(W,)),
    Case("llama3-semicolons", "llama3", LLAMA_W + '; {"name": "search", "parameters": {"q": "x"}}',
         calls=(W, S)),
    Case("llama3-newlines", "llama3", LLAMA_W + '\n{"name": "noargs", "parameters": {}}\n',
         calls=(W, ("noargs", "{}"))),
    Case("llama3-text", "llama3", 'Sure! {"name": "get_weather", "parameters": {}}',
         content='Sure! {"name": "get_weather", "parameters": {}}'),
    Case("llama3-json-answer", "llama3", '{"answer": 42, "list": [1, {"a": "}"}]}',
         content='{"answer": 42, "list": [1, {"a": "}"}]}'),
    Case("llama3-text-after", "llama3", LLAMA_W + "\nThat is all.", content="\nThat is all.", calls=(W,)),
    Case("llama3-unknown", "llama3", '{"name": "nope", "parameters": {}}',
         content='{"name": "nope", "parameters": {}}'),
    Case("llama3-nested-unicode", "llama3",
         f'{{"name": "search", "parameters": {NESTED_ARGS}}};'
         f'{{"name": "get_weather", "parameters": {UNICODE_ARGS}}}',
         calls=(("search", NESTED_ARGS), ("get_weather", UNICODE_ARGS))),
    Case("llama3-think", "llama3", "<think>hmm</think>" + LLAMA_W, reasoning="hmm", calls=(W,)),
    # mistral
    Case("mistral-array", "mistral",
         '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}, '
         '{"name": "search", "arguments": {"q": "x"}}]', calls=(W, S)),
    Case("mistral-v11", "mistral", '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', calls=(W,)),
    Case("mistral-v11-several", "mistral",
         '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]search[ARGS]{"q": "x"}', calls=(W, S)),
    Case("mistral-call-id", "mistral", '[TOOL_CALLS]get_weather[CALL_ID]a1B2c3D4e[ARGS]{"city": "Paris"}',
         calls=(W,)),
    Case("mistral-text-before-after", "mistral", 'Checking.[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"} ok',
         content="Checking. ok", calls=(W,)),
    Case("mistral-unknown", "mistral", "[TOOL_CALLS]get_time[ARGS]{}",
         content="[TOOL_CALLS]get_time[ARGS]{}"),
    Case("mistral-not-a-name", "mistral", "[TOOL_CALLS] I cannot help.",
         content="[TOOL_CALLS] I cannot help."),
    Case("mistral-array-unknown", "mistral", '[TOOL_CALLS][{"name": "x", "arguments": {}}]',
         content='[TOOL_CALLS][{"name": "x", "arguments": {}}]'),
    Case("mistral-nested-unicode", "mistral",
         f"[TOOL_CALLS]search[ARGS]{NESTED_ARGS}[TOOL_CALLS]get_weather[ARGS]{UNICODE_ARGS}",
         calls=(("search", NESTED_ARGS), ("get_weather", UNICODE_ARGS))),
    Case("mistral-prefix-name", "mistral", "[TOOL_CALLS]get[ARGS]{}", content="[TOOL_CALLS]get[ARGS]{}"),
    # harmony
    Case("harmony-final", "harmony", "<|channel|>final<|message|>Hello!<|return|>", content="Hello!"),
    Case("harmony-analysis-final", "harmony", HARMONY_THINK + HARMONY_FINAL, reasoning="User says hi.",
         content="Hi!"),
    Case("harmony-analysis-off", "harmony", HARMONY_THINK + HARMONY_FINAL, content="User says hi.Hi!",
         think=False),
    Case("harmony-analysis-call", "harmony", HARMONY_THINK + HARMONY_CALL, reasoning="User says hi.",
         calls=(W,)),
    Case("harmony-call-at-start", "harmony",
         '<|channel|>commentary to=functions.get_weather<|message|>{"city": "Paris"}<|call|>', calls=(W,)),
    Case("harmony-recipient-first", "harmony",
         ' to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris"}<|call|>',
         calls=(W,)),
    Case("harmony-two-calls", "harmony",
         HARMONY_CALL + '<|start|>assistant<|channel|>commentary to=functions.search<|message|>'
         '{"q": "x"}<|call|>',
         calls=(W, S)),
    Case("harmony-preamble", "harmony", "<|channel|>commentary<|message|>Checking...<|end|>" + HARMONY_CALL,
         content="Checking...", calls=(W,)),
    Case("harmony-unknown-function", "harmony",
         '<|channel|>commentary to=functions.nope<|message|>{"a": 1}<|call|>', content='{"a": 1}'),
    Case("harmony-no-tools", "harmony", HARMONY_THINK + HARMONY_CALL, reasoning="User says hi.",
         content='{"city": "Paris"}', tools=frozenset()),
    Case("harmony-nested-unicode", "harmony",
         f"<|channel|>commentary to=functions.search <|constrain|>json<|message|>{NESTED_ARGS}<|call|>"
         f"<|start|>assistant<|channel|>commentary to=functions.get_weather<|message|>{UNICODE_ARGS}<|call|>",
         calls=(("search", NESTED_ARGS), ("get_weather", UNICODE_ARGS))),
    Case("harmony-lt-in-text", "harmony", "<|channel|>final<|message|>a < b <| c |> <|x",
         content="a < b <| c |> <|x"),
    Case("harmony-plain-text", "harmony", "No markup here.", content="No markup here."),
    Case("harmony-cut-header", "harmony", "<|channel|>final<|message|>ok<|end|><|start|>assistant<|chan",
         content="ok"),
    Case("harmony-missing-end", "harmony",
         "<|channel|>analysis<|message|>a<|start|>assistant<|channel|>final<|message|>b", reasoning="a",
         content="b"),
    Case("harmony-call-body-not-object", "harmony",
         "<|channel|>commentary to=functions.search<|message|>hello<|call|>", content="hello"),
]
# fmt: on


Summary = tuple[str, str, list[tuple[str, str]]]  # content, reasoning, (name, arguments) per call


def _summary(events: list[ParsedEvent]) -> Summary:
    message = collect(events)
    return message.content, message.reasoning, [(c.name, c.arguments) for c in message.tool_calls]


def _feed_pieces(parser: OutputParser, pieces: list[str]) -> list[ParsedEvent]:
    events: list[ParsedEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.finish()


def _random_pieces(text: str, rng: random.Random) -> list[str]:
    pieces, i = [], 0
    while i < len(text):
        size = rng.choice((1, 1, 2, 3, 5, 8, 13)) if rng.random() < 0.9 else rng.randint(1, len(text))
        pieces.append(text[i : i + size])
        i += size
    return pieces


def _check_well_formed(events: list[ParsedEvent]) -> None:
    """Begin, then Args, then exactly one End, for indexes 0, 1, ... in order; ids unique; no empty deltas."""
    open_index: int | None = None
    ended: list[int] = []
    ids: set[str] = set()
    for event in events:
        if isinstance(event, ContentDelta | ReasoningDelta):
            assert event.text
            assert open_index is None, "text inside a call"
        elif isinstance(event, ToolCallBegin):
            assert open_index is None and event.index == len(ended)
            assert event.id not in ids
            ids.add(event.id)
            open_index = event.index
        elif isinstance(event, ToolCallArgs):
            assert event.index == open_index and event.text
        elif isinstance(event, ToolCallEnd):
            assert event.index == open_index
            ended.append(event.index)
            open_index = None
    assert open_index is None


def every_split(text: str, rng: random.Random) -> list[list[str]]:
    """One character at a time, every cut into two pieces (markup split mid-token), and 30 random splits."""
    splits = [list(text)] + [[text[:k], text[k:]] for k in range(1, len(text))]
    return splits + [_random_pieces(text, rng) for _ in range(30)]


def assert_splits_agree(
    make: Callable[[], OutputParser], splits: Iterable[list[str]], expected: Summary
) -> None:
    """Each split, fed to a new parser, gives well-formed events that sum up to `expected`."""
    for pieces in splits:
        events = _feed_pieces(make(), pieces)
        _check_well_formed(events)
        assert _summary(events) == expected, pieces


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_one_shot(case: Case) -> None:
    message = parse_all(case.parser(), case.text)
    assert message.content == case.content
    assert message.reasoning == case.reasoning
    assert [(c.name, c.arguments) for c in message.tool_calls] == list(case.calls)
    for call in message.tool_calls:
        assert call.id.isdigit() and len(call.id) == 9


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_any_split_gives_the_same_result(case: Case) -> None:
    """One character at a time, every cut into two pieces (markup split mid-token), and random splits."""
    whole = case.parser()
    expected = _summary([*whole.feed(case.text), *whole.finish()])
    assert_splits_agree(case.parser, every_split(case.text, random.Random(case.id)), expected)


CALL_HEAD = '{"name": "search", "arguments": '
FRAGMENTS = {
    "hermes": ["<tool_call>", "</tool_call>", "<tool_", CALL_HEAD, "<think>", "</think>"],
    "default": ["[TOOL_REQUEST]", "[END_TOOL_REQUEST]", "[TOOL_", CALL_HEAD],
    "llama3": ["<|python_tag|>", '{"name": "search", "parameters": ', ";", "<|py"],
    "mistral": ["[TOOL_CALLS]", "search", "[ARGS]", "[CALL_ID]", "abc", CALL_HEAD, "[TOOL"],
    "harmony": ["<|start|>assistant", "<|channel|>", "analysis", "final", "commentary",
                " to=functions.search", " to=functions.zz", "<|constrain|>json", "<|message|>", "<|end|>",
                "<|call|>", "<|", "|>"],
}  # fmt: skip
JSON_BITS = ["{", "}", "[", "]", '"', "\\", '"q"', ": ", ", ", "x", " ", "\n", "é"]


def _soup_parser(fmt: str, think: bool) -> OutputParser:
    return build_output_parser(get_tool_format(fmt), TOOLS, reasoning=think)


@pytest.mark.parametrize("fmt", sorted(FRAGMENTS))
def test_random_markup_soup(fmt: str) -> None:
    """Random mixes of markup and JSON pieces: no errors, well-formed events, any split gives the same."""
    rng = random.Random(fmt)
    for _ in range(150):
        text = "".join(rng.choice(FRAGMENTS[fmt] + JSON_BITS) for _ in range(rng.randint(0, 30)))
        think = rng.random() < 0.5
        expected = _summary(_feed_pieces(_soup_parser(fmt, think), [text]))
        splits = (list(text), _random_pieces(text, rng))
        assert_splits_agree(functools.partial(_soup_parser, fmt, think), splits, expected)
        if not expected[2] and not think and fmt != "harmony":
            assert expected[0] == text  # nothing recognised: the text is content, as written


@pytest.mark.parametrize("case", [c for c in CASES if c.fmt == "harmony"], ids=lambda c: c.id)
def test_harmony_markup_never_reaches_text(case: Case) -> None:
    for pieces in (list(case.text), [case.text]):
        for event in _feed_pieces(case.parser(), pieces):
            if isinstance(event, ContentDelta | ReasoningDelta):
                assert "<|channel|>" not in event.text and "<|message|>" not in event.text
                assert "<|end|>" not in event.text and "<|call|>" not in event.text
