"""Tool-name normalisation and LM Studio's default tool format (prompt and conversation rewrite)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from openlms.parsers.output import (
    default_tools_system_prompt,
    get_tool_format,
    normalize_tool_names,
    parse_all,
    to_default_format_messages,
)
from openlms.parsers.output.toolspec import snake_case
from tests.support.tools import DELIVERY_TOOL

# Copied byte for byte from tools.md ("Expand to see example of default tool use format").
EXPECTED_PROMPT = (
    "You are a tool-calling AI. You can request calls to available tools with this EXACT format:\n"
    """[TOOL_REQUEST]{"name": "tool_name", "arguments": {"param1": "value1"}}[END_TOOL_REQUEST]

AVAILABLE TOOLS:
{
  "type": "toolArray",
  "tools": [
    {
      "type": "function",
      "function": {
        "name": "get_delivery_date",
        "description": "Get the delivery date for a customer's order",
        "parameters": {
          "type": "object",
          "properties": {
            "order_id": {
              "type": "string"
            }
          },
          "required": [
            "order_id"
          ]
        }
      }
    }
  ]
}

RULES:
- Only use tools from AVAILABLE TOOLS
- Include all required arguments
- Use one [TOOL_REQUEST] block per tool
- Never use [TOOL_RESULT]
- If you decide to call one or more tools, there should be no other text in your message

Examples:
"Check Paris weather"
[TOOL_REQUEST]{"name": "get_weather", "arguments": {"location": "Paris"}}[END_TOOL_REQUEST]

"Send email to John about meeting and open browser"
[TOOL_REQUEST]{"name": "send_email", "arguments": {"to": "John", "subject": "meeting"}}[END_TOOL_REQUEST]
[TOOL_REQUEST]{"name": "open_browser", "arguments": {}}[END_TOOL_REQUEST]

Respond conversationally if no matching tools exist."""
)

TOOLS_MD = Path(__file__).resolve().parents[4] / "shared" / "lmstudio-docs" / "0_app" / "4_api" / "tools.md"


def test_default_prompt_is_byte_exact() -> None:
    assert default_tools_system_prompt([DELIVERY_TOOL]) == EXPECTED_PROMPT


@pytest.mark.skipif(not TOOLS_MD.is_file(), reason="LM Studio docs not checked out next to the repo")
def test_default_prompt_matches_the_docs() -> None:
    doc = TOOLS_MD.read_text("utf-8")
    start = doc.index("You are a tool-calling AI")
    end = doc.index("Respond conversationally if no matching tools exist.", start)
    assert (
        default_tools_system_prompt([DELIVERY_TOOL])
        == doc[start:end] + "Respond conversationally if no matching tools exist."
    )


def test_default_prompt_keeps_unicode() -> None:
    tool = {"type": "function", "function": {"name": "wetter", "description": "Das Wetter in Zürich"}}
    assert '"description": "Das Wetter in Zürich"' in default_tools_system_prompt([tool])


@pytest.mark.parametrize(
    ("name", "snake"),
    [
        ("get_weather", "get_weather"),
        ("getWeather", "get_weather"),
        ("GetWeather", "get_weather"),
        ("get-weather", "get_weather"),
        ("Get Weather!", "get_weather"),
        ("parseHTTPResponse", "parse_http_response"),
        ("tool.v2", "tool_v2"),
        ("search2Web", "search2_web"),
        ("天気", "tool"),
    ],
)
def test_snake_case(name: str, snake: str) -> None:
    assert snake_case(name) == snake


def test_normalize_tool_names() -> None:
    defs = {
        "$defs": {"Point": {"type": "object"}},
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/Point"}},
    }
    tools = [
        {"type": "function", "function": {"name": "getWeather", "parameters": defs}},
        {"type": "function", "function": {"name": "get-weather"}},
        {"type": "function", "function": {"name": "get_weather", "parameters": None}},
        {"type": "function", "function": {"name": "search"}},
    ]
    before = copy.deepcopy(tools)
    normalized, originals = normalize_tool_names(tools)
    assert tools == before  # the input is not changed
    # a name that is already snake_case keeps it; the others take the next free ones
    assert [t["function"]["name"] for t in normalized] == [
        "get_weather_2",
        "get_weather_3",
        "get_weather",
        "search",
    ]
    assert originals == {
        "get_weather_2": "getWeather",
        "get_weather_3": "get-weather",
        "get_weather": "get_weather",
        "search": "search",
    }
    assert normalized[0]["function"]["parameters"] == defs
    assert normalized[1]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert normalized[2]["function"]["parameters"] == {"type": "object", "properties": {}}


def test_normalize_keeps_other_tool_shapes() -> None:
    flat = {"type": "function", "name": "myTool", "parameters": {"type": "object", "properties": {}}}
    odd = {"type": "web_search"}
    normalized, originals = normalize_tool_names([flat, odd])
    assert normalized == [{**flat, "name": "my_tool"}, odd]
    assert originals == {"my_tool": "myTool"}


CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "When will orders 1 and 2 arrive?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "111",
                "type": "function",
                "function": {"name": "get_delivery_date", "arguments": '{"order_id": "1"}'},
            },
            {
                "id": "222",
                "type": "function",
                "function": {"name": "get_delivery_date", "arguments": {"order_id": "2"}},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "111", "content": "2024-03-15"},
    {"role": "tool", "tool_call_id": "222", "content": "2024-03-16"},
    {"role": "assistant", "content": "Soon."},
]


def test_to_default_format_messages() -> None:
    out = to_default_format_messages(CONVERSATION, [DELIVERY_TOOL])
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user", "assistant"]
    assert out[0]["content"] == "Be brief.\n\n" + EXPECTED_PROMPT
    assert out[2] == {
        "role": "assistant",
        "content": '[TOOL_REQUEST]{"name": "get_delivery_date", "arguments": {"order_id": "1"}}'
        '[END_TOOL_REQUEST]\n[TOOL_REQUEST]{"name": "get_delivery_date", "arguments": {"order_id": "2"}}'
        "[END_TOOL_REQUEST]",
    }
    assert out[3]["content"] == (
        "[TOOL_RESULT]Result of get_delivery_date (call 111):\n2024-03-15[END_TOOL_RESULT]\n"
        "[TOOL_RESULT]Result of get_delivery_date (call 222):\n2024-03-16[END_TOOL_RESULT]"
    )
    assert out[4] == {"role": "assistant", "content": "Soon."}
    assert CONVERSATION[2]["tool_calls"]  # the input is not changed


def test_rewritten_tool_requests_parse_back() -> None:
    out = to_default_format_messages(CONVERSATION, [DELIVERY_TOOL])
    message = parse_all(get_tool_format("default").parser(["get_delivery_date"]), out[2]["content"])
    assert [json.loads(c.arguments) for c in message.tool_calls] == [{"order_id": "1"}, {"order_id": "2"}]
    assert message.content == ""


FakeTool: dict[str, Any] = {"type": "function", "function": {"name": "f", "parameters": {}}}


def test_without_system_message_and_other_cases() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "function_call": {"name": "f", "arguments": "not json"},
        },
        {"role": "tool", "content": "done"},
        {"role": "user", "content": "thanks"},
        {"role": "assistant", "content": None},
    ]
    out = [{"role": "system", "content": "x"}, *to_default_format_messages(messages, [])]
    assert to_default_format_messages(messages, [FakeTool])[0] == {
        "role": "system",
        "content": default_tools_system_prompt([FakeTool]),
    }
    assert (
        out[2]["content"]
        == 'Let me look.\n[TOOL_REQUEST]{"name": "f", "arguments": "not json"}[END_TOOL_REQUEST]'
    )
    assert "function_call" not in out[2]
    assert out[3] == {"role": "user", "content": "[TOOL_RESULT]done[END_TOOL_RESULT]\n\nthanks"}
    assert out[4] == {"role": "assistant", "content": None}


def test_tool_result_with_unknown_id() -> None:
    out = to_default_format_messages([{"role": "tool", "tool_call_id": "9", "content": None}], [])
    assert len(out) == 1  # no tools: the history is converted, but no tool prompt is added
    assert out[0]["content"] == "[TOOL_RESULT]Result of call 9:\n[END_TOOL_RESULT]"
