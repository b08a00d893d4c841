"""/v1/responses with `mcp` tools over the fake engine and the real MCP host, with the stdio test server
of tests/support/mcp in the home's mcp.json: mcp_list_tools and mcp_call items, the stream's mcp
events, the consent settings, a failing tool, and a stored conversation that keeps the tool's result."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from openlms.core.settings import Settings
from openlms.engine.fake import FakeBackend
from openlms.services.response_store import ResponseStore
from tests.support.mcp import stdio_config, write_mcp_json
from tests.unit.server.conftest import make_app

CHAT = "tiny-chat"
CALC = {"type": "mcp", "server_label": "calc", "allowed_tools": ["add", "fail"], "require_approval": "never"}
BOTH = {"type": "mcp", "server_label": "calc", "allowed_tools": ["add", "echo"]}


def call(name: str, arguments: dict[str, Any]) -> str:
    return f'[TOOL_REQUEST]{{"name": "{name}", "arguments": {json.dumps(arguments)}}}[END_TOOL_REQUEST]'


class Script:
    """The fake model: a call in the first round of each request, then an answer."""

    def __init__(self, first: str, then: str = "The answer is 5.") -> None:
        self.first, self.then, self.rounds = first, then, 0

    def __call__(self, prompt: str) -> str:
        self.rounds += 1
        return self.first if self.rounds % 2 == 1 else self.then


@pytest.fixture
async def http(home: Path, fake: FakeBackend) -> AsyncIterator[httpx.AsyncClient]:
    write_mcp_json(home, {"calc": stdio_config()})
    app = make_app(home, fake, mcp_allow_json_servers=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


@pytest.fixture
def oai(http: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://openlms.test/v1", api_key="lm-studio", http_client=http)


async def test_an_mcp_tool_is_listed_called_and_answered(oai: openai.AsyncOpenAI, fake: FakeBackend) -> None:
    fake.reply = Script(call("add", {"a": 2, "b": 3}))
    reply = await oai.responses.create(model=CHAT, input="2 + 3?", tools=[CALC])  # type: ignore[list-item]
    assert [i.type for i in reply.output] == ["mcp_list_tools", "mcp_call", "message"]
    listed, called = reply.output[0], reply.output[1]
    assert listed.type == "mcp_list_tools" and listed.server_label == "calc"
    assert sorted(t.name for t in listed.tools) == ["add", "fail"]  # allowed_tools
    assert called.type == "mcp_call" and (called.server_label, called.name) == ("calc", "add")
    assert json.loads(called.arguments) == {"a": 2, "b": 3} and called.output == "5"
    assert called.status == "completed" and called.error is None
    assert reply.output_text == "The answer is 5." and reply.status == "completed"


async def test_the_stream_has_the_mcp_events(oai: openai.AsyncOpenAI, fake: FakeBackend) -> None:
    fake.reply = Script(call("add", {"a": 2, "b": 3}))
    async with oai.responses.stream(model=CHAT, input="2 + 3?", tools=[CALC]) as stream:  # type: ignore[list-item]
        events = [e async for e in stream]
        final = await stream.get_final_response()
    kinds = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    expected = [
        "response.mcp_list_tools.in_progress",
        "response.mcp_list_tools.completed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
        "response.output_text.delta",
        "response.completed",
    ]
    assert all(k in kinds for k in expected)
    positions = [kinds.index(k) for k in expected]
    assert positions == sorted(positions)
    args = "".join(e.delta for e in events if e.type == "response.mcp_call_arguments.delta")
    assert json.loads(args) == {"a": 2, "b": 3}
    assert [i.type for i in final.output] == ["mcp_list_tools", "mcp_call", "message"]
    assert final.output[1].output == "5"  # type: ignore[union-attr]


async def test_a_failing_tool_is_reported_and_the_answer_goes_on(
    oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    fake.reply = Script(call("fail", {}), "It failed.")
    reply = await oai.responses.create(model=CHAT, input="Try it", tools=[CALC])  # type: ignore[list-item]
    failed = reply.output[1]
    assert failed.type == "mcp_call" and failed.status == "failed" and failed.error is not None
    assert "always fails" in json.dumps(failed.model_dump()["error"])
    assert reply.output_text == "It failed."


async def test_a_continued_response_keeps_the_tool_result(
    http: httpx.AsyncClient, fake: FakeBackend, home: Path
) -> None:
    fake.reply = Script(call("add", {"a": 20, "b": 22}), "It is 42.")
    body = {"model": CHAT, "input": "20 + 22?", "tools": [CALC], "store": True}
    first = (await http.post("/v1/responses", json=body)).json()
    messages = ResponseStore(Settings(home=home).state_dir / "responses").load(first["id"])
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1]["tool_calls"][0]["function"]["name"] == "add" and messages[2]["content"] == "42"
    fake.reply = lambda prompt: "ok"
    follow = {"model": CHAT, "input": "And?", "previous_response_id": first["id"]}
    second = await http.post("/v1/responses", json=follow)
    assert second.status_code == 200 and second.json()["output_text"] == "ok"


async def test_mcp_json_servers_need_consent(home: Path, fake: FakeBackend) -> None:
    write_mcp_json(home, {"calc": stdio_config()})
    app = make_app(home, fake)  # mcp_allow_json_servers off (the default)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            local = await client.post("/v1/responses", json={"model": CHAT, "input": "x", "tools": [CALC]})
            remote_tool = CALC | {"server_url": "http://127.0.0.1:9/mcp"}
            remote = await client.post(
                "/v1/responses", json={"model": CHAT, "input": "x", "tools": [remote_tool]}
            )
    assert local.status_code == 403 and remote.status_code == 403
    assert "mcp.json" in local.json()["error"]["message"]
    assert local.json()["error"]["message"] != remote.json()["error"]["message"]


async def test_tool_choice_can_name_an_mcp_tool(http: httpx.AsyncClient, fake: FakeBackend) -> None:
    fake.reply = Script(call("add", {"a": 1, "b": 1}), "2.")
    body = {"model": CHAT, "input": "1 + 1?", "tools": [CALC]}
    forced = await http.post(
        "/v1/responses", json=body | {"tool_choice": {"type": "mcp", "server_label": "calc", "name": "add"}}
    )
    assert forced.status_code == 200 and forced.json()["output"][1]["output"] == "2"
    assert fake.requests[-2].grammar  # the first round was constrained to the call
    unknown = await http.post(
        "/v1/responses", json=body | {"tool_choice": {"type": "mcp", "server_label": "calc", "name": "echo"}}
    )
    assert unknown.status_code == 400 and "echo" in unknown.json()["error"]["message"]


async def test_a_client_function_call_ends_the_loop(oai: openai.AsyncOpenAI, fake: FakeBackend) -> None:
    mine: Any = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {}}}
    fake.reply = lambda prompt: call("lookup", {})
    reply = await oai.responses.create(model=CHAT, input="Look it up", tools=[CALC, mine])
    assert [i.type for i in reply.output] == ["mcp_list_tools", "function_call"]
    assert reply.output[1].name == "lookup"  # type: ignore[union-attr]  # the client runs it


async def test_an_unknown_label_is_a_404(http: httpx.AsyncClient) -> None:
    other = CALC | {"server_label": "weather"}
    reply = await http.post("/v1/responses", json={"model": CHAT, "input": "x", "tools": [other]})
    assert reply.status_code == 404 and "weather" in reply.json()["error"]["message"]


async def test_reasoning_tokens_are_counted(oai: openai.AsyncOpenAI, fake: FakeBackend) -> None:
    fake.reply = Script("<think>I should add them.</think>" + call("add", {"a": 2, "b": 3}))
    reply = await oai.responses.create(model=CHAT, input="2 + 3?", tools=[CALC])  # type: ignore[list-item]
    assert [i.type for i in reply.output] == ["mcp_list_tools", "reasoning", "mcp_call", "message"]
    assert reply.usage and reply.usage.output_tokens_details.reasoning_tokens > 0


async def test_two_calls_in_one_round_keep_their_places(oai: openai.AsyncOpenAI, fake: FakeBackend) -> None:
    fake.reply = Script(call("add", {"a": 1, "b": 2}) + call("echo", {"text": "hi"}), "Done.")
    async with oai.responses.stream(model=CHAT, input="Go", tools=[BOTH]) as stream:  # type: ignore[list-item]
        events = [e async for e in stream]
        final = await stream.get_final_response()
    assert [i.type for i in final.output] == ["mcp_list_tools", "mcp_call", "mcp_call", "message"]
    assert [(i.name, i.output) for i in final.output[1:3]] == [("add", "3"), ("echo", "hi")]  # type: ignore[union-attr]
    completed = [(e.item_id, e.output_index) for e in events if e.type == "response.mcp_call.completed"]
    assert completed == [(final.output[1].id, 1), (final.output[2].id, 2)]
