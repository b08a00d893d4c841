"""The Anthropic Messages API (`/v1/messages`) on the real server with SmolLM2, driven by the real
`anthropic` package (text, stream, a forced tool call round trip, count_tokens, errors)."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.support.server import CHAT_MODEL, Server

pytestmark = pytest.mark.e2e

WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def claude(server: Server) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=server.url, api_key="lm-studio", max_retries=0) as client:
        yield client


def test_text_and_stream(claude: anthropic.Anthropic) -> None:
    reply = claude.messages.create(model=CHAT_MODEL, max_tokens=16, system="Be brief.", messages=ASK)  # type: ignore[arg-type]
    assert reply.type == "message" and reply.content[0].type == "text"
    assert reply.stop_reason in ("end_turn", "max_tokens") and 0 < reply.usage.output_tokens <= 16
    with claude.messages.stream(model=CHAT_MODEL, max_tokens=16, messages=ASK) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason in ("end_turn", "max_tokens") and 0 < final.usage.output_tokens <= 16


def test_forced_tool_call_round_trip(claude: anthropic.Anthropic) -> None:
    forced = {"type": "tool", "name": "get_weather"}
    reply = claude.messages.create(
        model=CHAT_MODEL,
        max_tokens=64,
        tools=[WEATHER],
        tool_choice=forced,
        messages=ASK,  # type: ignore[arg-type,list-item]
    )
    uses = [b for b in reply.content if b.type == "tool_use"]
    assert reply.stop_reason == "tool_use" and uses and uses[0].name == "get_weather"
    assert isinstance(uses[0].input, dict) and isinstance(uses[0].input.get("city"), str)
    result = {"type": "tool_result", "tool_use_id": uses[0].id, "content": "Sunny, 21 C"}
    turns = [*ASK, {"role": "assistant", "content": reply.content}, {"role": "user", "content": [result]}]
    final = claude.messages.create(model=CHAT_MODEL, max_tokens=16, tools=[WEATHER], messages=turns)  # type: ignore[arg-type,list-item]
    assert final.type == "message" and final.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert final.usage.input_tokens > reply.usage.input_tokens


def test_count_tokens_and_errors(claude: anthropic.Anthropic, server: Server) -> None:
    short = claude.messages.count_tokens(model=CHAT_MODEL, messages=ASK)  # type: ignore[arg-type]
    more = [{"role": "user", "content": "What is the weather in Paris, London and Rome this weekend?"}]
    longer = claude.messages.count_tokens(model=CHAT_MODEL, messages=more)  # type: ignore[arg-type]
    assert 0 < short.input_tokens < longer.input_tokens
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="no-such-model", max_tokens=8, messages=ASK)  # type: ignore[arg-type]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    response = httpx.post(
        f"{server.url}/v1/messages", json={"model": CHAT_MODEL, "messages": ASK}, timeout=30
    )
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
