"""Each tool format's registry entry owns its call knowledge: lazy trigger, forced-call grammar, and how
its output and reasoning are shown."""

from __future__ import annotations

import llama_cpp.llama_cpp as C
import pytest

from openlms.parsers.output import FORMATS, get_tool_format

TOOLS = [
    ("search", {"type": "object", "properties": {"query": {"type": "string", "maxLength": 9}}}),
    ("now", None),
]


def parses(grammar: str) -> bool:
    sampler = C.llama_sampler_init_grammar(None, grammar.encode(), b"root")
    if sampler:
        C.llama_sampler_free(sampler)
    return bool(sampler)


def test_lazy_triggers() -> None:
    triggers = {name: fmt.lazy_trigger for name, fmt in FORMATS.items()}
    assert triggers == {
        "hermes": "<tool_call>",
        "qwen3_xml": "<tool_call>",
        "llama3": None,
        "mistral": None,
        "harmony": None,
        "default": "[TOOL_REQUEST]",
    }


def test_only_harmony_is_always_parsed_and_carries_its_own_reasoning() -> None:
    assert [name for name, fmt in FORMATS.items() if fmt.always_parsed] == ["harmony"]
    assert [name for name, fmt in FORMATS.items() if fmt.parses_reasoning] == ["harmony"]


@pytest.mark.parametrize(
    ("name", "template", "start"),
    [
        ("hermes", None, 'root ::= "<tool_call>\\n" tool-call "\\n</tool_call>"\n'),
        ("default", None, 'root ::= "[TOOL_REQUEST]" tool-call "[END_TOOL_REQUEST]"\n'),
        ("llama3", None, "root ::= tool-call\n"),
        ("mistral", None, 'root ::= "[TOOL_CALLS]" "[" tool-call "]"\n'),
        ("mistral", "[TOOL_CALLS]{{ name }}[ARGS]", 'root ::= ( "[TOOL_CALLS]" "search" "[ARGS]" tool0-args'),
        ("harmony", None, 'root ::= ( "<|channel|>commentary to=functions.search <|constrain|>json<|'),
        ("qwen3_xml", None, 'root ::= xml-call\nxml-call ::= ( "<tool_call>\\x0A<function=search>\\x0A"'),
    ],
)
def test_forced_call_grammars(name: str, template: str | None, start: str) -> None:
    grammar = get_tool_format(name).call_grammar(TOOLS, template, max_text=7)
    assert grammar.startswith(start), grammar
    assert parses(grammar)


def test_many_calls_and_raw_text_bound() -> None:
    hermes = get_tool_format("hermes").call_grammar(TOOLS, None, many=True, max_text=7)
    assert hermes.startswith('root ::= ( "<tool_call>\\n" tool-call "\\n</tool_call>" ) ( [ \\n]{0,2} (')
    xml = get_tool_format("qwen3_xml").call_grammar(
        [("f", {"type": "object", "properties": {"a": {"type": "string"}}})], None, many=True, max_text=7
    )
    assert xml.startswith("root ::= xml-call ( [ \\n]{0,2} xml-call )*\n") and "[^<]{0,7}" in xml
    assert parses(hermes) and parses(xml)
    llama3 = get_tool_format("llama3").call_grammar(TOOLS, None, max_text=7)
    assert '"\\"parameters\\""' in llama3  # llama3 writes its arguments under "parameters"
