"""The tool-call formats, and which one a model's chat template speaks."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from openlms.core.errors import InvalidRequestError
from openlms.parsers.output.base import IdFactory, TextParser
from openlms.parsers.output.events import OutputParser
from openlms.parsers.output.harmony import HarmonyParser
from openlms.parsers.output.llama3 import Llama3Parser
from openlms.parsers.output.mistral import MistralParser
from openlms.parsers.output.qwen_xml import ToolSchemas, qwen_xml_parser
from openlms.parsers.output.tagged import default_format_parser, hermes_parser

ParserFactory = Callable[[Collection[str], bool, IdFactory | None, ToolSchemas], OutputParser]


@dataclass(frozen=True, slots=True)
class ToolFormat:
    name: str  # "hermes", "qwen3_xml", "llama3", "mistral", "harmony", "default"
    native: bool  # False only for "default" (LM Studio's prompt-based format)
    needs_special_tokens: bool  # the engine must render control tokens as text for this format's markup
    parses_reasoning: bool  # the format carries reasoning itself (harmony channels), no <think> tags
    factory: ParserFactory = field(repr=False, compare=False)

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


FORMATS = MappingProxyType(
    {
        "hermes": ToolFormat("hermes", True, False, False, _tools_or_text(hermes_parser)),
        "qwen3_xml": ToolFormat("qwen3_xml", True, False, False, _qwen_xml),
        "llama3": ToolFormat("llama3", True, True, False, _tools_or_text(Llama3Parser)),
        "mistral": ToolFormat("mistral", True, True, False, _tools_or_text(MistralParser)),
        "harmony": ToolFormat("harmony", True, True, True, _harmony),
        "default": ToolFormat("default", False, False, False, _tools_or_text(default_format_parser)),
    }
)

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
