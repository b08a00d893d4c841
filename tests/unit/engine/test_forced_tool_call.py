"""A forced tool call always completes: even random weights, which never choose to close a string, end
with a whole, valid call once free-text strings are bounded (services.toolcalls)."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from openlms.core.types import GenerationRequest, SamplingParams, StopReason
from openlms.engine.runtime import ModelRuntime
from openlms.parsers.output import build_output_parser
from openlms.parsers.output.events import parse_all
from openlms.parsers.output.registry import get_tool_format
from openlms.services import toolcalls
from tests.unit.engine.test_llama_runtime import run

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"query": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}}},
    "required": ["query"],
}
TOOL = {"type": "function", "function": {"name": "search", "parameters": PARAMETERS}}


TINY_CONTEXT = 2048


def test_free_strings_get_a_bound_and_bounded_ones_keep_theirs() -> None:
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string"},
            "b": {"type": "string", "maxLength": 5},
            "c": {"type": "string", "enum": ["x"]},
            "d": {"type": ["string", "null"]},
        },
        "$defs": {"e": {"type": "string"}},
    }
    bounded: Any = toolcalls._bounded(schema)
    props = bounded["properties"]
    assert props["a"]["maxLength"] == props["d"]["maxLength"] == toolcalls.FORCED_STRING_MAX_LENGTH
    assert props["b"]["maxLength"] == 5 and "maxLength" not in props["c"]
    assert bounded["$defs"]["e"]["maxLength"] == toolcalls.FORCED_STRING_MAX_LENGTH
    assert "maxLength" not in schema["properties"]["a"]  # type: ignore[index]  # the caller's is untouched


WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"type": "string", "enum": ["c", "f"]},
        "code": {"enum": ["a", 1]},
        "alerts": {"type": "boolean"},
    },
    "required": ["city", "days"],
    "additionalProperties": False,
}
TOOLS = [TOOL, {"type": "function", "function": {"name": "weather", "parameters": WEATHER}}]
SHAPES = {
    "default": r"\[TOOL_REQUEST\].*\[END_TOOL_REQUEST\]",
    "hermes": r"<tool_call>\n.*\n</tool_call>",
    "qwen3_xml": r"<tool_call>\n<function=\w+>\n.*</function>\n</tool_call>",
    "llama3": r"\{.*\}\s*",
    "mistral": r"\[TOOL_CALLS\]\[.*\]\s*",
    "harmony": r"<\|channel\|>commentary to=functions\.\w+ <\|constrain\|>json<\|message\|>"
    r"\{.*\}\s*<\|call\|>",
}


@pytest.mark.parametrize("fmt_name", sorted(SHAPES))
@pytest.mark.parametrize("seed", range(3))
async def test_random_weights_complete_a_forced_call_in_every_format(
    llm: ModelRuntime, seed: int, fmt_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the weights, a forced call is a whole call in the format's own markup, and the format's
    parser reads it back as a call whose arguments validate against the tool's schema."""
    monkeypatch.setattr(toolcalls, "FORCED_STRING_MAX_LENGTH", 24)
    fmt = get_tool_format(fmt_name)
    grammar = toolcalls.required_grammar(fmt, TOOLS, None)
    sampling = SamplingParams(temperature=1.0, seed=seed, top_k=0, min_p=0.0)
    text, done, _ = await run(llm, GenerationRequest("hello", sampling, max_tokens=1500, grammar=grammar))
    assert done.stats.stop_reason is StopReason.EOS, text
    assert re.fullmatch(SHAPES[fmt_name], text, flags=re.S), text
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    parser = build_output_parser(fmt, list(schemas), reasoning=False, tool_schemas=schemas)
    message = parse_all(parser, text)
    assert len(message.tool_calls) == 1, (text, message)
    call = message.tool_calls[0]
    jsonschema.validate(json.loads(call.arguments), schemas[call.name])
