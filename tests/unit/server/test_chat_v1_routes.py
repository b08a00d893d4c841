"""LM Studio 0.4's POST /api/v1/chat through the real app over the fake engine (its scripted reply plays
the model), with the stdio MCP test server (tests/support/mcp) for `integrations`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openlms.engine.fake import FakeBackend
from openlms.services.response_store import ResponseStore
from tests.support.mcp.helpers import http_server, stdio_config, write_mcp_json
from tests.unit.server.conftest import make_app

CHAT = "tiny-chat"
STATS = {
    "input_tokens",
    "total_output_tokens",
    "reasoning_output_tokens",
    "tokens_per_second",
    "time_to_first_token_seconds",
}


def call(name: str, arguments: dict[str, Any]) -> str:
    return f'[TOOL_REQUEST]{{"name": "{name}", "arguments": {json.dumps(arguments)}}}[END_TOOL_REQUEST]'


class Script:
    """The fake model: `first` in the first round of each request, `then` after a tool result."""

    def __init__(self, first: str, then: str) -> None:
        self.first, self.then = first, then
        self.calls = 0

    def __call__(self, prompt: str) -> str:
        self.calls += 1
        return self.first if self.calls % 2 == 1 else self.then


@pytest.fixture
async def mcp_client(home: Path, fake: FakeBackend) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the stdio test server in mcp.json as "calc" and the user's consent given."""
    write_mcp_json(home, {"calc": stdio_config()})
    app = make_app(home, fake, mcp_allow_json_servers=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=60) as http:
            yield http


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each event of a stream."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


async def test_plain_chat_answers_lm_studio_shape(client: httpx.AsyncClient) -> None:
    first = await client.post("/api/v1/chat", json={"model": CHAT, "input": "Capital of France?"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["model_instance_id"] == CHAT
    assert body["output"] == [{"type": "message", "content": "Paris is the capital of France."}]
    assert set(body["stats"]) >= STATS and body["stats"]["total_output_tokens"] > 0
    assert body["stats"]["model_load_time_seconds"] >= 0  # this request loaded the model
    assert body["response_id"].startswith("resp_")
    again = await client.post("/api/v1/chat", json={"model": CHAT, "input": "Again?", "store": False})
    assert "model_load_time_seconds" not in again.json()["stats"]  # loaded already
    assert "response_id" not in again.json()


async def test_stream_events_in_order_with_a_jit_load(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/chat", json={"model": CHAT, "input": "Hi", "stream": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse(response.text)
    names = [name for name, _ in events]
    assert all(data["type"] == name for name, data in events)
    assert names[:2] == ["chat.start", "model_load.start"]
    load_end = names.index("model_load.end")
    assert set(names[2:load_end]) <= {"model_load.progress"}
    rest = [n for n in names[load_end + 1 :] if not n.endswith((".delta", ".progress"))]
    assert rest == [
        "prompt_processing.start",
        "prompt_processing.end",
        "message.start",
        "message.end",
        "chat.end",
    ]
    text = "".join(d["content"] for n, d in events if n == "message.delta")
    result = events[-1][1]["result"]
    assert result["output"] == [{"type": "message", "content": text}]
    assert result["stats"]["model_load_time_seconds"] == events[load_end][1]["load_time_seconds"]


async def test_stored_chain_continues_and_unknown_id_is_404(client: httpx.AsyncClient, home: Path) -> None:
    first = (await client.post("/api/v1/chat", json={"model": CHAT, "input": "My color is blue."})).json()
    body = {"model": CHAT, "input": "Which color?", "previous_response_id": first["response_id"]}
    second = (await client.post("/api/v1/chat", json=body)).json()
    assert second["stats"]["input_tokens"] > first["stats"]["input_tokens"]
    kept = ResponseStore(home / "openlms" / "chat-responses").load(second["response_id"])
    assert [m["role"] for m in kept] == ["user", "assistant", "user", "assistant"]
    assert kept[0]["content"] == "My color is blue." and kept[2]["content"] == "Which color?"
    missing = await client.post(
        "/api/v1/chat", json={"model": CHAT, "input": "x", "previous_response_id": "resp_" + "0" * 24}
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "previous_response_not_found"


async def test_bad_requests_are_clear_400s(client: httpx.AsyncClient) -> None:
    cases = [
        ({"input": [{"type": "image", "data_url": "data:image/png;base64,AAAA"}]}, "input[0]"),
        ({"input": []}, "input"),
        ({"input": "x", "integrations": ["huggingface"]}, "integrations[0]"),
        ({"input": "x", "reasoning": "maybe"}, None),
    ]
    for extra, param in cases:
        response = await client.post("/api/v1/chat", json={"model": CHAT} | extra)
        assert response.status_code == 400, (extra, response.text)
        error = response.json()["error"]
        assert error["message"] and (param is None or error["param"] == param)
    await client.post("/api/v1/chat", json={"model": CHAT, "input": "load it"})
    other = await client.post("/api/v1/chat", json={"model": CHAT, "input": "x", "context_length": 1024})
    assert other.status_code == 400 and "lms unload" in other.json()["error"]["message"]


async def test_mcp_needs_consent(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/chat", json={"model": CHAT, "input": "x", "integrations": ["mcp/calc"]}
    )
    assert response.status_code == 403
    assert "mcp_allow_json_servers" in response.json()["error"]["message"]


async def test_mcp_tool_runs_server_side(mcp_client: httpx.AsyncClient, fake: FakeBackend) -> None:
    fake.reply = Script(call("add", {"a": 2, "b": 3}), "The sum is 5.")
    body = {"model": CHAT, "input": "2 + 3?", "integrations": [{"type": "plugin", "id": "mcp/calc"}]}
    answer = (await mcp_client.post("/api/v1/chat", json=body)).json()
    calls = [item for item in answer["output"] if item["type"] == "tool_call"]
    assert calls == [
        {
            "type": "tool_call",
            "tool": "add",
            "arguments": {"a": 2, "b": 3},
            "output": "5",
            "provider_info": {"type": "plugin", "plugin_id": "mcp/calc"},
        }
    ]
    assert answer["output"][-1] == {"type": "message", "content": "The sum is 5."}


async def test_streamed_tool_events_and_a_failing_tool(
    mcp_client: httpx.AsyncClient, fake: FakeBackend
) -> None:
    fake.reply = Script(call("fail", {}), "The tool failed.")
    body = {"model": CHAT, "input": "Try it", "integrations": ["mcp/calc"], "stream": True}
    events = sse((await mcp_client.post("/api/v1/chat", json=body)).text)
    names = [n for n, _ in events if n.startswith(("tool_call.", "message.start"))]
    assert names == ["tool_call.start", "tool_call.arguments", "tool_call.failure", "message.start"]
    failure = next(d for n, d in events if n == "tool_call.failure")
    assert "always fails" in failure["reason"]
    assert failure["metadata"]["type"] == "tool_error" and failure["metadata"]["tool_name"] == "fail"
    result = events[-1][1]["result"]
    assert result["output"][-1] == {"type": "message", "content": "The tool failed."}
    assert "always fails" in result["output"][0]["output"]


async def test_allowed_tools_limit_what_the_model_may_call(
    mcp_client: httpx.AsyncClient, fake: FakeBackend
) -> None:
    fake.reply = Script(call("add", {"a": 1, "b": 1}), "Done.")
    plugin = {"type": "plugin", "id": "mcp/calc", "allowed_tools": ["echo"]}
    body = {"model": CHAT, "input": "1 + 1?", "integrations": [plugin]}
    answer = (await mcp_client.post("/api/v1/chat", json=body)).json()
    assert not [item for item in answer["output"] if item["type"] == "tool_call"]  # add was not offered
    unknown = {"model": CHAT, "input": "x", "integrations": ["mcp/nosuch"]}
    response = await mcp_client.post("/api/v1/chat", json=unknown)
    assert response.status_code == 404 and "nosuch" in response.json()["error"]["message"]


async def test_reasoning_is_its_own_item_and_counted(client: httpx.AsyncClient, fake: FakeBackend) -> None:
    fake.reply = lambda prompt: "<think>Let me think.</think>Paris."
    answer = (await client.post("/api/v1/chat", json={"model": CHAT, "input": "Capital?"})).json()
    assert answer["output"] == [
        {"type": "reasoning", "content": "Let me think."},
        {"type": "message", "content": "Paris."},
    ]
    assert 0 < answer["stats"]["reasoning_output_tokens"] <= answer["stats"]["total_output_tokens"]
    streamed = await client.post("/api/v1/chat", json={"model": CHAT, "input": "Capital?", "stream": True})
    names = [n for n, _ in sse(streamed.text) if n.startswith(("reasoning.", "message."))]
    assert [n for n in names if not n.endswith(".delta")] == [
        "reasoning.start",
        "reasoning.end",
        "message.start",
        "message.end",
    ]


async def test_error_after_the_stream_started_is_an_error_event(client: httpx.AsyncClient) -> None:
    """The prompt is checked once the JIT load is done: a bad input then is an `error` event, and the
    stream still ends with `chat.end`."""
    raw = json.dumps({"model": CHAT, "input": "bad \ud800 text", "stream": True})
    response = await client.post("/api/v1/chat", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 200
    events = sse(response.text)
    names = [n for n, _ in events]
    assert names[-2:] == ["error", "chat.end"] and "model_load.end" in names
    error = events[-2][1]["error"]
    assert error["type"] == "invalid_request" and "surrogate" in error["message"].lower()
    assert events[-1][1]["result"]["output"] == [] and "response_id" not in events[-1][1]["result"]


async def test_remote_server_over_streamable_http(home: Path, fake: FakeBackend) -> None:
    fake.reply = Script(call("header", {"name": "X-Team"}), "Done.")
    app = make_app(home, fake, mcp_allow_remote_servers=True)
    with http_server() as url:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=60) as c:
                remote = {
                    "type": "ephemeral_mcp",
                    "server_label": "team",
                    "server_url": url,
                    "allowed_tools": ["header"],
                    "headers": {"X-Team": "blue"},
                }
                body = {"model": CHAT, "input": "Which team?", "integrations": [remote]}
                answer = (await c.post("/api/v1/chat", json=body)).json()
    call_item = answer["output"][0]
    assert call_item["type"] == "tool_call" and call_item["output"] == "blue"  # the header reached it
    assert call_item["provider_info"] == {"type": "ephemeral_mcp", "server_label": "team"}


async def test_a_hanging_tool_times_out_and_the_answer_comes(home: Path, fake: FakeBackend) -> None:
    write_mcp_json(home, {"calc": stdio_config()})
    app = make_app(home, fake, mcp_allow_json_servers=True, mcp_tool_timeout_s=1)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=60) as c:
            body = {"model": CHAT, "input": "Run it", "integrations": ["mcp/calc"]}
            fake.reply = Script(call("hang", {}), "It hung.")
            hung = (await c.post("/api/v1/chat", json=body | {"stream": True})).text
    failure = next(data for name, data in sse(hung) if name == "tool_call.failure")
    assert failure["metadata"]["tool_name"] == "hang" and "1" in failure["reason"]
    assert sse(hung)[-1][1]["result"]["output"][-1] == {"type": "message", "content": "It hung."}
