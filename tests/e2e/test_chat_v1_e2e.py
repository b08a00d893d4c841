"""LM Studio 0.4's POST /api/v1/chat on the real server with SmolLM2, driven by httpx: plain and streamed
answers, a stored chain, and MCP tools run server-side (the stdio FastMCP test server of
tests/support/mcp, its call forced with the `tool_choice` extension). Requests are greedy
(`temperature` 0) and short; no assertion depends on the model's wording."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.mcp.helpers import stdio_config, write_mcp_json
from tests.support.server import CHAT_MODEL, Server, free_port, start_server

pytestmark = pytest.mark.e2e

SHORT = {"temperature": 0, "max_output_tokens": 16}
TOOL_ROOM = 64  # output tokens for a round with a call: a call cut short is an invalid_tool_call
STATS = {
    "input_tokens",
    "total_output_tokens",
    "reasoning_output_tokens",
    "tokens_per_second",
    "time_to_first_token_seconds",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    """The user consented to mcp.json's servers (not to per-request remote ones); two tool rounds."""
    settings = {"mcp_allow_json_servers": True, "mcp_max_tool_rounds": 2}
    srv = start_server(tmp_path_factory.mktemp("chat"), models_dir, free_port(), settings=settings)
    write_mcp_json(srv.home, {"calc": stdio_config()})
    yield srv
    srv.lms("server", "stop", check=False)


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def chat(http: httpx.Client, **body: Any) -> dict[str, Any]:
    response = http.post("/api/v1/chat", json={"model": CHAT_MODEL} | SHORT | body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def streamed(http: httpx.Client, **body: Any) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each event, read as an SSE client reads them."""
    events: list[tuple[str, dict[str, Any]]] = []
    request = {"model": CHAT_MODEL, "stream": True} | SHORT | body
    with http.stream("POST", "/api/v1/chat", json=request) as response:
        assert response.status_code == 200
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: ") and name is not None:
                events.append((name, json.loads(line[len("data: ") :])))
                name = None
    return events


def ended(answer: dict[str, Any]) -> bool:
    """The loop ended as it should: with the model's message, or at the round limit (greedy decoding
    decides which; the fake-engine tests check each case exactly)."""
    last = answer["output"][-1]
    return last["type"] == "message" or "mcp_max_tool_rounds" in last.get("output", "")


def test_plain_chat(http: httpx.Client) -> None:
    answer = chat(http, input="Write a haiku about sunrise.", system_prompt="You are a poet.")
    assert answer["model_instance_id"] == CHAT_MODEL
    assert [item["type"] for item in answer["output"]] == ["message"]
    assert answer["output"][0]["content"].strip()
    assert set(answer["stats"]) >= STATS and answer["stats"]["total_output_tokens"] > 0
    assert answer["response_id"].startswith("resp_")


def test_stream_event_order(http: httpx.Client) -> None:
    events = streamed(http, input="Say hello.")
    names = [n for n, _ in events if not n.endswith((".delta", ".progress"))]
    assert names[0] == "chat.start" and names[-1] == "chat.end"
    core = [n for n in names if not n.startswith("model_load.")]  # the first test may have loaded it
    assert core == [
        "chat.start",
        "prompt_processing.start",
        "prompt_processing.end",
        "message.start",
        "message.end",
        "chat.end",
    ]
    text = "".join(d["content"] for n, d in events if n == "message.delta")
    result = events[-1][1]["result"]
    assert result["output"] == [{"type": "message", "content": text}]
    assert set(result["stats"]) >= STATS and result["response_id"].startswith("resp_")


def test_stored_chain(http: httpx.Client) -> None:
    first = chat(http, input="My favorite color is blue.")
    second = chat(http, input="What color did I mention?", previous_response_id=first["response_id"])
    assert second["response_id"] != first["response_id"]
    assert second["stats"]["input_tokens"] > first["stats"]["input_tokens"]  # the history came along
    unstored = chat(http, input="A joke.", store=False)
    assert "response_id" not in unstored
    missing = http.post(
        "/api/v1/chat",
        json={"model": CHAT_MODEL, "input": "x", "previous_response_id": "resp_" + "0" * 24},
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "previous_response_not_found"


def test_mcp_tool_called_server_side(http: httpx.Client) -> None:
    calc = {"type": "plugin", "id": "mcp/calc", "allowed_tools": ["add"]}
    answer = chat(
        http,
        input="What is 2 + 3?",
        integrations=[calc],
        tool_choice="required",
        max_output_tokens=TOOL_ROOM,
    )
    calls = [item for item in answer["output"] if item["type"] == "tool_call"]
    assert calls, answer
    first = calls[0]
    assert first["tool"] == "add"
    assert first["provider_info"] == {"type": "plugin", "plugin_id": "mcp/calc"}
    assert first["output"] == str(first["arguments"]["a"] + first["arguments"]["b"])  # the real tool's
    assert len(calls) <= 3  # mcp_max_tool_rounds made, one more not made
    assert ended(answer)


def test_failing_tool_streams_a_failure_and_the_answer_comes(http: httpx.Client) -> None:
    calc = {"type": "plugin", "id": "mcp/calc", "allowed_tools": ["fail"]}
    events = streamed(
        http,
        input="Run the tool.",
        integrations=[calc],
        tool_choice="required",
        max_output_tokens=TOOL_ROOM,
    )
    names = [n for n, _ in events]
    assert names.index("tool_call.start") < names.index("tool_call.arguments")
    assert names.index("tool_call.arguments") < names.index("tool_call.failure")
    failure = next(d for n, d in events if n == "tool_call.failure")
    assert "always fails" in failure["reason"] and failure["metadata"]["tool_name"] == "fail"
    assert "error" not in names and names[-1] == "chat.end"
    assert ended(events[-1][1]["result"])


def test_remote_mcp_needs_consent(http: httpx.Client) -> None:
    remote = {"type": "ephemeral_mcp", "server_label": "hf", "server_url": "http://127.0.0.1:9/mcp"}
    response = http.post("/api/v1/chat", json={"model": CHAT_MODEL, "input": "x", "integrations": [remote]})
    assert response.status_code == 403
    assert "mcp_allow_remote_servers" in response.json()["error"]["message"]
