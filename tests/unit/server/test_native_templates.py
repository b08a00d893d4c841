"""A real native tool template (Qwen2.5's, as its GGUFs ship it) set as a model's prompt template: tools,
assistant calls and tool results render as the model was trained on, calls parse back, and a required
call is forced in the model's own `<tool_call>` format."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from openlms.engine.fake import FakeBackend
from tests.support.tools import DELIVERY_TOOL

CHAT = "tiny-chat"
QWEN = (Path(__file__).parents[2] / "support" / "templates" / "qwen2_5.jinja").read_text()
TOOL = DELIVERY_TOOL
HISTORY = [
    {"role": "user", "content": "Where is order 123?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "1",
                "type": "function",
                "function": {"name": "get_delivery_date", "arguments": '{"order_id": "123"}'},
            },
            {
                "id": "2",
                "type": "function",
                "function": {"name": "get_delivery_date", "arguments": '{"order_id": "124"}'},
            },
        ],
    },
    {"role": "tool", "content": "2024-03-15", "tool_call_id": "1"},
    {"role": "tool", "content": "2024-03-16", "tool_call_id": "2"},
]


@pytest.fixture
async def qwen(client: httpx.AsyncClient) -> httpx.AsyncClient:
    template = {"type": "jinja", "jinjaPromptTemplate": {"template": QWEN}, "stopStrings": []}
    response = await client.put(
        "/api/v1/models/config", params={"model": CHAT}, json={"prediction": {"promptTemplate": template}}
    )
    assert response.status_code == 200, response.text
    return client


async def test_tools_calls_and_results_render_as_qwen_expects(qwen: httpx.AsyncClient) -> None:
    body = {"model": CHAT, "messages": HISTORY, "tools": [TOOL]}
    prompt = (await qwen.post("/api/v1/apply-template", json=body)).json()["prompt"]
    assert prompt.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")
    assert "<tools>\n" + json.dumps(TOOL, ensure_ascii=False) + "\n</tools>" in prompt
    assert (
        "<|im_start|>assistant\n"
        '<tool_call>\n{"name": "get_delivery_date", "arguments": {"order_id": "123"}}\n'
        '</tool_call>\n<tool_call>\n{"name": "get_delivery_date", "arguments": {"order_id": "124"}}\n'
        "</tool_call><|im_end|>\n"
    ) in prompt
    assert (
        "<|im_start|>user\n<tool_response>\n2024-03-15\n</tool_response>\n<tool_response>\n2024-03-16\n"
        "</tool_response><|im_end|>\n<|im_start|>assistant\n"
    ) in prompt
    assert "TOOL_REQUEST" not in prompt


async def test_several_qwen_calls_parse_into_tool_calls(qwen: httpx.AsyncClient, fake: FakeBackend) -> None:
    fake.reply = lambda prompt: (
        "Checking both. "
        '<tool_call>\n{"name": "get_delivery_date", "arguments": {"order_id": "1"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_delivery_date", "arguments": {"order_id": "2"}}\n</tool_call>'
    )
    oai = openai.AsyncOpenAI(base_url="http://openlms.test/v1", api_key="x", http_client=qwen)
    message = (
        (await oai.chat.completions.create(model=CHAT, messages=HISTORY[:1], tools=[TOOL])).choices[0].message
    )  # type: ignore[arg-type,list-item]
    assert message.content == "Checking both. "
    args = [json.loads(c.function.arguments) for c in message.tool_calls or []]  # type: ignore[union-attr]
    assert args == [{"order_id": "1"}, {"order_id": "2"}]
    assert len({c.id for c in message.tool_calls or []}) == 2


async def test_a_required_call_is_forced_in_qwens_format(qwen: httpx.AsyncClient, fake: FakeBackend) -> None:
    body = {"model": CHAT, "messages": HISTORY[:1], "tools": [TOOL], "tool_choice": "required"}
    assert (await qwen.post("/v1/chat/completions", json=body)).status_code == 200
    grammar = fake.requests[-1].grammar or ""
    assert grammar.startswith('root ::= "<tool_call>\\n"') and "get_delivery_date" in grammar
