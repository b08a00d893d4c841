"""The tool-call formats, and which one a model's chat template speaks.

A format is one `ToolFormat` entry: its parser (a module in this package), its call grammar
(`call_grammars.py`), its lazy trigger and how its output is shown; `detect_tool_format` recognises its
template. Services ask the entry and never compare format names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from openlms.core.errors import InvalidRequestError
from openlms.parsers.output.base import IdFactory, TextParser
from openlms.parsers.output.call_grammars import (
    CallGrammar,
    ToolSpec,
    harmony_call,
    json_call,
    mistral_call,
    qwen_xml_call,
)
from openlms.parsers.output.events import OutputParser
from openlms.parsers.output.harmony import HarmonyParser
from openlms.parsers.output.llama3 import Llama3Parser
from openlms.parsers.output.mistral import MistralParser
from openlms.parsers.output.qwen_xml import ToolSchemas, qwen_xml_parser
from openlms.parsers.output.tagged import default_format_parser, hermes_parser

ParserFactory = Callable[[Collection[str], bool, IdFactory | None, ToolSchemas], OutputParser]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolFormat:
    """Everything openlms knows about one tool-call format: how to parse it, how to force or keep whole a
    call in it, and how its output is shown."""

    name: str  # "hermes", "qwen3_xml", "llama3", "mistral", "harmony", "default"
    factory: ParserFactory = field(repr=False, compare=False)
    grammar: CallGrammar = field(repr=False, compare=False)  # see `call_grammar`
    native: bool = True  # False only for "default" (LM Studio's prompt-based format)
    needs_special_tokens: bool = False  # the engine must render control tokens as text for its markup
    parses_reasoning: bool = False  # the format carries reasoning itself (harmony channels), no <think>
    # The text that starts a call: a lazy grammar keeps calls whole from it on while the model may still
    # answer in text. None: calls stay free unless one is required (markup a grammar cannot wait for).
    lazy_trigger: str | None = None
    # The output goes through this format's parser even without tools (harmony: channels, reasoning).
    always_parsed: bool = False

    def call_grammar(
        self, tools: Sequence[ToolSpec], template_source: str | None, *, many: bool = False, max_text: int
    ) -> str:
        """GBNF that makes the model write a call in this format to one of `tools` ((name, parameters
        schema or None) pairs): exactly one, or with `many` (for lazy grammars) one or more. The template
        (None for a manual one) picks a variant where the format has several (Mistral's `[ARGS]`).
        `max_text` bounds the free-text values that a format writes raw, outside JSON (qwen3_xml).
        InvalidRequestError where a schema cannot become a grammar."""
        return self.grammar(tools, template_source, many=many, max_text=max_text)

    def parser(
        self,
        tool_names: Collection[str],
        *,
        reasoning: bool = True,
        new_id: IdFactory | None = None,
        tool_schemas: ToolSchemas | None = None,
    ) -> OutputParser:
        """A parser for one generation; without `tool_names`, text only (harmony still splits channels).

        `reasoning` matters only where `parses_reasoning`: False puts the reasoning into content.
        `new_id` makes call ids (tests); the default gives random 9-digit ids.
        `tool_schemas` maps a tool's name (as in `tool_names`) to its `parameters` JSON schema (or None);
        only formats that write arguments as untyped text use it (qwen3_xml: string or JSON values).
        """
        return self.factory(frozenset(tool_names), reasoning, new_id, tool_schemas or {})


class _MakeParser(Protocol):
    def __call__(self, tool_names: Collection[str], *, new_id: IdFactory | None = None) -> OutputParser: ...


def _tools_or_text(make: _MakeParser) -> ParserFactory:
    def factory(
        names: Collection[str], reasoning: bool, new_id: IdFactory | None, schemas: ToolSchemas
    ) -> OutputParser:
        return make(names, new_id=new_id) if names else TextParser()

    return factory


def _harmony(
    names: Collection[str], reasoning: bool, new_id: IdFactory | None, schemas: ToolSchemas
) -> OutputParser:
    return HarmonyParser(names, reasoning=reasoning, new_id=new_id)


def _qwen_xml(
    names: Collection[str], reasoning: bool, new_id: IdFactory | None, schemas: ToolSchemas
) -> OutputParser:
    return qwen_xml_parser(names, tool_schemas=schemas, new_id=new_id) if names else TextParser()


_ALL = (
    ToolFormat(
        name="hermes",
        factory=_tools_or_text(hermes_parser),
        grammar=json_call('"<tool_call>\\n"', '"\\n</tool_call>"'),
        lazy_trigger="<tool_call>",
    ),
    ToolFormat(
        name="qwen3_xml",
        factory=_qwen_xml,
        grammar=qwen_xml_call,
        lazy_trigger="<tool_call>",
    ),
    ToolFormat(
        name="llama3",
        needs_special_tokens=True,
        factory=_tools_or_text(Llama3Parser),
        grammar=json_call("", "", args_key="parameters"),
    ),
    ToolFormat(
        name="mistral",
        needs_special_tokens=True,
        factory=_tools_or_text(MistralParser),
        grammar=mistral_call,
    ),
    ToolFormat(
        name="harmony",
        needs_special_tokens=True,
        parses_reasoning=True,
        factory=_harmony,
        grammar=harmony_call,
        always_parsed=True,
    ),
    ToolFormat(
        name="default",
        native=False,
        factory=_tools_or_text(default_format_parser),
        grammar=json_call('"[TOOL_REQUEST]"', '"[END_TOOL_REQUEST]"'),
        lazy_trigger="[TOOL_REQUEST]",
    ),
)
FORMATS = MappingProxyType({fmt.name: fmt for fmt in _ALL})

_MENTIONS_TOOLS = re.compile(r"\btools\b")


class UnknownToolFormatError(InvalidRequestError):
    code = "unknown_tool_format"


def get_tool_format(name: str) -> ToolFormat:
    try:
        return FORMATS[name]
    except KeyError:
        known = ", ".join(FORMATS)
        raise UnknownToolFormatError(f"Unknown tool format '{name}' (known: {known})") from None


def detect_tool_format(template_source: str | None) -> ToolFormat:
    """The tool format of a Jinja chat template; "default" without tool support or for an unknown one."""
    source = template_source or ""
    if not _MENTIONS_TOOLS.search(source):
        return FORMATS["default"]
    if "<|channel|>" in source and ("<|call|>" in source or "to=functions." in source):
        return FORMATS["harmony"]
    if "[TOOL_CALLS]" in source:
        return FORMATS["mistral"]
    if "<tool_call>" in source and "<function=" in source and "<parameter=" in source:
        return FORMATS["qwen3_xml"]  # Qwen3-Coder's XML calls; before hermes, which shares <tool_call>
    if "<tool_call>" in source:
        return FORMATS["hermes"]
    llama_json = '"parameters": ' in source and "<|eom_id|>" in source
    if "<|python_tag|>" in source or "Environment: ipython" in source or llama_json:
        return FORMATS["llama3"]
    return FORMATS["default"]
