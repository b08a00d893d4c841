"""`/v1/messages` extended thinking (thinking blocks, thinking and signature deltas, the reasoning
switch), image blocks, and the stream's event order (ping, an `error` event when the model fails), over
the fake engine with the real `anthropic` client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from openlms.core.errors import InferenceError
from openlms.engine.fake import FakeBackend, FakeRuntime
from openlms.server.anthropic import convert
from openlms.server.anthropic.protocol import MessagesRequest
from tests.unit.server.conftest import make_app

CHAT = "tiny-chat"
ASK = [{"role": "user", "content": "What is the capital of France?"}]
THOUGHT = "<think>The user wants a capital.</think>Paris."
ON = {"type": "enabled", "budget_tokens": 2048}


@pytest.fixture
async def claude(home: Path, fake: FakeBackend) -> AsyncIterator[anthropic.AsyncAnthropic]:
    app = make_app(home, fake)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://openlms.test") as http:
            yield anthropic.AsyncAnthropic(
                base_url="http://openlms.test", api_key="lm-studio", http_client=http, max_retries=0
            )


def body(**extra: Any) -> dict[str, Any]:
    return {"model": CHAT, "max_tokens": 64, "messages": ASK} | extra


def test_thinking_maps_to_the_reasoning_switch() -> None:
    on = convert.chat_request(MessagesRequest.model_validate(body(thinking=ON))).params
    assert on.reasoning_effort == "on" and on.reasoning_parsing is True
    off = convert.chat_request(MessagesRequest.model_validate(body(thinking={"type": "disabled"}))).params
    assert off.reasoning_effort == "off" and off.reasoning_parsing is None
    unset = convert.chat_request(MessagesRequest.model_validate(body())).params
    assert unset.reasoning_effort is None and unset.reasoning_parsing is None
    adaptive = MessagesRequest.model_validate(body(thinking={"type": "adaptive"}))
    assert convert.chat_request(adaptive).params.reasoning_effort is None


async def test_thinking_block_before_the_text(claude: anthropic.AsyncAnthropic, fake: FakeBackend) -> None:
    fake.reply = lambda prompt: THOUGHT
    reply = await claude.messages.create(model=CHAT, max_tokens=64, messages=ASK, thinking=ON)  # type: ignore[arg-type]
    assert [b.type for b in reply.content] == ["thinking", "text"]
    thinking, text = reply.content
    assert thinking.thinking == "The user wants a capital." and thinking.signature  # type: ignore[union-attr]
    assert text.text.strip() == "Paris."  # type: ignore[union-attr]


async def test_stream_has_thinking_and_signature_deltas(
    claude: anthropic.AsyncAnthropic, fake: FakeBackend
) -> None:
    fake.reply = lambda prompt: THOUGHT
    kinds: list[str] = []
    async with claude.messages.stream(model=CHAT, max_tokens=64, messages=ASK, thinking=ON) as stream:  # type: ignore[arg-type]
        async for event in stream:
            kinds.append(event.type if event.type != "content_block_delta" else event.delta.type)
        final = await stream.get_final_message()
    assert kinds.index("thinking_delta") < kinds.index("signature_delta") < kinds.index("text_delta")
    assert [b.type for b in final.content] == ["thinking", "text"]
    thinking = final.content[0]
    assert thinking.thinking == "The user wants a capital."  # type: ignore[union-attr]
    assert thinking.signature == convert.signature(thinking.thinking)  # type: ignore[union-attr]


async def test_thinking_blocks_sent_back_are_accepted(claude: anthropic.AsyncAnthropic) -> None:
    earlier = [
        {"type": "thinking", "thinking": "Capital of France.", "signature": "abc"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Paris."},
    ]
    turns = [*ASK, {"role": "assistant", "content": earlier}, {"role": "user", "content": "And Italy?"}]
    reply = await claude.messages.create(model=CHAT, max_tokens=16, messages=turns, thinking=ON)  # type: ignore[arg-type]
    assert reply.content[-1].type == "text" and reply.stop_reason in ("end_turn", "max_tokens")
    chat = convert.chat_request(MessagesRequest.model_validate(body(messages=turns)))
    assert chat.messages[1] == {
        "role": "assistant",
        "content": "Paris.",
        "reasoning_content": "Capital of France.",
    }


async def test_image_is_a_400_saying_the_model_has_no_vision(claude: anthropic.AsyncAnthropic) -> None:
    for source in (
        {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        {"type": "url", "url": "https://example.com/cat.png"},
    ):
        parts = [{"type": "image", "source": source}, {"type": "text", "text": "What is this?"}]
        with pytest.raises(anthropic.BadRequestError) as refused:
            await claude.messages.create(
                model=CHAT,
                max_tokens=8,
                messages=[{"role": "user", "content": parts}],  # type: ignore[list-item]
            )
        error = refused.value.body["error"]  # type: ignore[index]
        assert error["type"] == "invalid_request_error" and "no vision" in error["message"]
        assert "vision model" in error["message"] and "messages[0].content" in error["message"]


async def test_stream_order_with_ping_and_options(client: httpx.AsyncClient) -> None:
    options = {"top_k": 20, "metadata": {"user_id": "u-1"}, "stop_sequences": ["capital"], "stream": True}
    async with client.stream("POST", "/v1/messages", json=body(**options)) as response:
        names = [line[7:] for line in [x async for x in response.aiter_lines()] if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    reply = (await client.post("/v1/messages", json=body(stop_sequences=["capital"]))).json()
    assert reply["stop_reason"] == "stop_sequence" and reply["stop_sequence"] == "capital"
    assert "capital" not in reply["content"][0]["text"]


async def test_model_failure_mid_stream_is_an_error_event(
    client: httpx.AsyncClient, fake: FakeBackend
) -> None:
    def fail(prompt: str) -> str:
        raise InferenceError("llama_decode failed")

    fake.reply = fail
    async with client.stream("POST", "/v1/messages", json=body(stream=True)) as response:
        assert response.status_code == 200
        lines = [x async for x in response.aiter_lines()]
    names = [line[7:] for line in lines if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "error" and "message_stop" not in names
    data = [line for line in lines if line.startswith("data: ")][-1]
    assert '"type": "error"' in data and "llama_decode failed" in data and "api_error" in data


def test_output_config_effort_and_thinking_types() -> None:
    def effort(**extra: Any) -> str | None:
        return convert.chat_request(MessagesRequest.model_validate(body(**extra))).params.reasoning_effort

    assert effort(output_config={"effort": "low"}) == "low"
    assert effort(output_config={"effort": "max"}) == "high"
    assert effort(thinking={"type": "adaptive"}, output_config={"effort": "medium"}) == "medium"
    assert effort(thinking={"type": "disabled"}, output_config={"effort": "high"}) == "off"
    assert effort(thinking={"type": "between_tools"}) == "on"


async def test_output_config_format_is_enforced_by_a_grammar(
    claude: anthropic.AsyncAnthropic, fake: FakeBackend
) -> None:
    fake.reply = lambda prompt: '{"city": "Paris"}'
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    reply = await claude.messages.create(
        model=CHAT,
        max_tokens=32,
        messages=ASK,  # type: ignore[arg-type]
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert reply.content[0].text == '{"city": "Paris"}'  # type: ignore[union-attr]
    assert fake.requests[-1].grammar and "city" in fake.requests[-1].grammar
    with pytest.raises(anthropic.BadRequestError) as refused:
        await claude.messages.create(
            model=CHAT,
            max_tokens=8,
            messages=ASK,  # type: ignore[arg-type]
            output_config={"format": {"type": "json_schema", "schema": {"type": "nonsense"}}},
        )
    assert "JSON schema" in refused.value.body["error"]["message"]  # type: ignore[index]


async def test_message_start_counts_the_prompt(client: httpx.AsyncClient) -> None:
    async with client.stream("POST", "/v1/messages", json=body(stream=True)) as response:
        lines = [x async for x in response.aiter_lines() if x.startswith("data: ")]
    start, delta = json.loads(lines[0][6:]), json.loads(lines[-2][6:])
    assert start["type"] == "message_start" and delta["type"] == "message_delta"
    assert start["message"]["usage"]["input_tokens"] == delta["usage"]["input_tokens"] > 0


async def test_server_tools_and_tools_without_a_schema_are_refused_clearly(client: httpx.AsyncClient) -> None:
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    refused = await client.post("/v1/messages", json=body(tools=[search]))
    error = refused.json()["error"]
    assert refused.status_code == 400 and error["type"] == "invalid_request_error"
    assert "web_search_20250305" in error["message"] and "custom" in error["message"]
    bare = await client.post("/v1/messages", json=body(tools=[{"name": "lookup"}]))
    assert bare.status_code == 400 and "input_schema" in bare.json()["error"]["message"]
    custom = {"type": "custom", "name": "lookup", "input_schema": {"type": "object", "properties": {}}}
    assert (await client.post("/v1/messages", json=body(tools=[custom]))).status_code == 200


def test_a_failed_tool_result_reads_as_an_error() -> None:
    use = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}
    failed = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "timed out", "is_error": True}
    turns = [*ASK, {"role": "assistant", "content": [use]}, {"role": "user", "content": [failed]}]
    chat = convert.chat_request(MessagesRequest.model_validate(body(messages=turns)))
    assert chat.messages[-1] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: timed out"}


QWEN3_LIKE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)


async def test_thinking_flips_the_templates_switch(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template with Qwen3's `enable_thinking`: disabled renders the empty think block, enabled not."""
    monkeypatch.setattr(FakeRuntime, "chat_template", QWEN3_LIKE)

    async def count(**extra: Any) -> int:
        answer = await client.post("/v1/messages/count_tokens", json={"model": CHAT, "messages": ASK} | extra)
        assert answer.status_code == 200, answer.text
        return int(answer.json()["input_tokens"])

    unset, enabled = await count(), await count(thinking=ON)
    disabled = await count(thinking={"type": "disabled"})
    assert unset == enabled < disabled


TWO_CALLS = (
    '[TOOL_REQUEST]{"name": "lookup", "arguments": {"q": "a"}}[END_TOOL_REQUEST]'
    '[TOOL_REQUEST]{"name": "lookup", "arguments": {"q": "b"}}[END_TOOL_REQUEST]'
)
LOOKUP = {"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}


async def test_disable_parallel_tool_use_keeps_the_first_call(
    claude: anthropic.AsyncAnthropic, fake: FakeBackend
) -> None:
    fake.reply = lambda prompt: TWO_CALLS
    both = await claude.messages.create(model=CHAT, max_tokens=64, messages=ASK, tools=[LOOKUP])  # type: ignore[list-item]
    assert [b.input for b in both.content if b.type == "tool_use"] == [{"q": "a"}, {"q": "b"}]
    one: Any = {"type": "auto", "disable_parallel_tool_use": True}
    first = await claude.messages.create(
        model=CHAT,
        max_tokens=64,
        messages=ASK,
        tools=[LOOKUP],
        tool_choice=one,  # type: ignore[list-item]
    )
    assert [b.input for b in first.content if b.type == "tool_use"] == [{"q": "a"}]
    assert first.stop_reason == "tool_use"
    async with claude.messages.stream(
        model=CHAT,
        max_tokens=64,
        messages=ASK,
        tools=[LOOKUP],
        tool_choice=one,  # type: ignore[list-item]
    ) as stream:
        final = await stream.get_final_message()
    assert [b.input for b in final.content if b.type == "tool_use"] == [{"q": "a"}]
