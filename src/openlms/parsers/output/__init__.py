"""Incremental parsers for a model's output: content, reasoning and tool calls, as they stream.

`build_output_parser` picks the parser for one generation; `parse_all` / `collect` give the one-shot
message. Tool formats and their detection from a chat template are in `registry`; tool-name
normalisation and LM Studio's default (prompt-based) tool format in `toolspec`.
"""

from __future__ import annotations

from collections.abc import Collection

from openlms.parsers.output.base import IdFactory, TextParser, random_call_id
from openlms.parsers.output.events import (
    ContentDelta,
    OutputParser,
    ParsedEvent,
    ParsedMessage,
    ReasoningDelta,
    ToolCall,
    ToolCallArgs,
    ToolCallBegin,
    ToolCallEnd,
    collect,
    parse_all,
)
from openlms.parsers.output.qwen_xml import ToolSchemas
from openlms.parsers.output.reasoning import ThinkTagParser, prompt_opens_reasoning
from openlms.parsers.output.registry import FORMATS, ToolFormat, detect_tool_format, get_tool_format
from openlms.parsers.output.toolspec import (
    default_tools_system_prompt,
    normalize_tool_names,
    to_default_format_messages,
)

__all__ = [
    "FORMATS",
    "ContentDelta",
    "OutputParser",
    "ParsedEvent",
    "ParsedMessage",
    "ReasoningDelta",
    "TextParser",
    "ThinkTagParser",
    "ToolCall",
    "ToolCallArgs",
    "ToolCallBegin",
    "ToolCallEnd",
    "ToolFormat",
    "build_output_parser",
    "collect",
    "default_tools_system_prompt",
    "detect_tool_format",
    "get_tool_format",
    "normalize_tool_names",
    "parse_all",
    "prompt_opens_reasoning",
    "random_call_id",
    "to_default_format_messages",
]


def build_output_parser(
    tool_format: ToolFormat | None,
    tool_names: Collection[str],
    *,
    reasoning: bool,
    starts_in_reasoning: bool = False,
    new_id: IdFactory | None = None,
    tool_schemas: ToolSchemas | None = None,
) -> OutputParser:
    """The parser for one generation.

    Without a format or tool names, tool calls are not parsed. With `reasoning`, `<think>` blocks become
    reasoning (`starts_in_reasoning` when the prompt already opened one, see `prompt_opens_reasoning`);
    without it they stay in content. Harmony always strips its markup and splits its channels: the
    analysis channel is reasoning, or content when `reasoning` is False. `tool_schemas` (parameters schema
    by tool name) lets formats that write raw values (qwen3_xml) type them.
    """
    if tool_format is not None and tool_format.parses_reasoning:
        return tool_format.parser(tool_names, reasoning=reasoning, new_id=new_id, tool_schemas=tool_schemas)
    inner: OutputParser = TextParser()
    if tool_format is not None and tool_names:
        inner = tool_format.parser(tool_names, new_id=new_id, tool_schemas=tool_schemas)
    if reasoning:
        return ThinkTagParser(inner, starts_in_reasoning=starts_in_reasoning)
    return inner
