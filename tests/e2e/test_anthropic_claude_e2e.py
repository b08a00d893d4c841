"""A Claude-style client against `/v1/messages` on a real server that requires a token (`lms server start
--require-auth`, a token from `lms token create`), on SmolLM2: the `anthropic` package built with no
base_url, reading `ANTHROPIC_BASE_URL` and `ANTHROPIC_AUTH_TOKEN` as Claude Code does; a forced tool
call round trip, `tool_choice` any/none, thinking on a model without reasoning, the stream's events in
order, and errors in Anthropic's shape (401, image without vision)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.support.server import CHAT_MODEL, Server, free_port, start_server

pytestmark = pytest.mark.e2e

WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
GREEDY = {"temperature": 0}  # the anthropic package has no sampling arguments any more; the API takes them


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("claude"), models_dir, free_port(), "--require-auth")
    yield srv
    srv.lms("server", "stop", check=False)


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return str(json.loads(server.lms("token", "create", "--name", "claude", "--json").stdout)["token"])


@pytest.fixture
def claude(server: Server, token: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[anthropic.Anthropic]:
    """Built as Claude Code's environment has it: no base_url, no api_key argument."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", token)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with anthropic.Anthropic(max_retries=0) as client:
        assert str(client.base_url).rstrip("/") == server.url
        yield client


def test_forced_tool_call_then_answer(claude: anthropic.Anthropic) -> None:
    forced: Any = {"type": "tool", "name": "get_weather"}
    call = claude.messages.create(
        model=CHAT_MODEL,
        max_tokens=128,
        extra_body=GREEDY,
        tools=[WEATHER],
        tool_choice=forced,
        messages=ASK,  # type: ignore[list-item,arg-type]
    )
    uses = [b for b in call.content if b.type == "tool_use"]
    assert call.stop_reason == "tool_use" and uses and {u.name for u in uses} == {"get_weather"}
    assert uses[0].id.startswith("toolu_") and isinstance(uses[0].input.get("city"), str)  # type: ignore[union-attr]
    result = {
        "type": "tool_result",
        "tool_use_id": uses[0].id,
        "content": [{"type": "text", "text": "Sunny, 21 C"}],
    }
    turns: Any = [*ASK, {"role": "assistant", "content": call.content}, {"role": "user", "content": [result]}]
    with claude.messages.stream(model=CHAT_MODEL, max_tokens=24, tools=[WEATHER], messages=turns) as stream:  # type: ignore[list-item]
        final = stream.get_final_message()
    assert final.stop_reason in ("end_turn", "max_tokens", "tool_use") and final.content
    assert final.usage.input_tokens > call.usage.input_tokens  # the tool's result is in the prompt


def test_tool_choice_any_and_none(claude: anthropic.Anthropic) -> None:
    anything = claude.messages.create(
        model=CHAT_MODEL,
        max_tokens=128,
        extra_body=GREEDY,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=ASK,  # type: ignore[list-item,arg-type]
    )
    assert anything.stop_reason == "tool_use"
    assert {b.name for b in anything.content if b.type == "tool_use"} == {"get_weather"}
    nothing = claude.messages.create(
        model=CHAT_MODEL,
        max_tokens=16,
        tools=[WEATHER],
        tool_choice={"type": "none"},
        messages=ASK,  # type: ignore[list-item,arg-type]
    )
    assert nothing.stop_reason in ("end_turn", "max_tokens") and nothing.content[0].type == "text"
    assert not [b for b in nothing.content if b.type == "tool_use"]


def test_thinking_on_a_model_without_reasoning(claude: anthropic.Anthropic) -> None:
    reply = claude.messages.create(
        model=CHAT_MODEL,
        max_tokens=16,
        extra_body=GREEDY,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=ASK,  # type: ignore[arg-type]
    )
    assert [b.type for b in reply.content] == ["text"] and reply.usage.output_tokens > 0


def test_stream_events_in_order(server: Server, token: str) -> None:
    body = {
        "model": CHAT_MODEL,
        "max_tokens": 12,
        "messages": ASK,
        "stream": True,
        "top_k": 40,
        "stop_sequences": ["\n\n\n"],
        "metadata": {"user_id": "e2e"},
    }
    with httpx.stream(
        "POST", f"{server.url}/v1/messages", json=body, headers={"x-api-key": token}, timeout=120
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        lines = list(response.iter_lines())
    names = [line[len("event: ") :] for line in lines if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) <= {"content_block_delta", "ping"}
    delta = json.loads([line for line in lines if line.startswith("data: ")][-2][len("data: ") :])
    assert delta["type"] == "message_delta" and delta["delta"]["stop_reason"] in ("end_turn", "max_tokens")


def test_errors_in_anthropic_shape(server: Server, token: str) -> None:
    wrong = anthropic.Anthropic(base_url=server.url, api_key="sk-lm-wrong:token", max_retries=0)
    with wrong, pytest.raises(anthropic.AuthenticationError) as refused:
        wrong.messages.create(model=CHAT_MODEL, max_tokens=8, messages=ASK)  # type: ignore[arg-type]
    assert refused.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    client = anthropic.Anthropic(base_url=server.url, api_key=token, max_retries=0)  # sent as x-api-key
    with client, pytest.raises(anthropic.BadRequestError) as no_vision:
        client.messages.create(
            model=CHAT_MODEL,
            max_tokens=8,
            messages=[{"role": "user", "content": [image]}],  # type: ignore[list-item]
        )
    body = no_vision.value.body
    assert body["type"] == "error" and "no vision" in body["error"]["message"]  # type: ignore[index]
