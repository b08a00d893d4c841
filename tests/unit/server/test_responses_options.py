"""/v1/responses options over the fake engine: reasoning.effort (the model's reasoning switch), images
refused with a clear 400 (here and on /v1/chat/completions), sampling and metadata echoed,
parallel_tool_calls, the Responses forms of tool_choice, tool types openlms cannot run, reasoning items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from openlms.core.errors import InvalidRequestError
from openlms.core.types import GenerationStats, StopReason
from openlms.engine.fake import FakeBackend
from openlms.parsers.output.events import ReasoningDelta, ToolCallArgs, ToolCallBegin
from openlms.server.responses import convert
from openlms.server.responses.events import ResponseEvents
from openlms.server.responses.protocol import ResponsesRequest
from openlms.server.responses.tools import request_tools

CHAT = "tiny-chat"
TOOL = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}
G = {"type": "function", "name": "g", "parameters": {"type": "object", "properties": {}}}
TWO_CALLS = (
    '[TOOL_REQUEST]{"name": "f", "arguments": {}}[END_TOOL_REQUEST]'
    '[TOOL_REQUEST]{"name": "g", "arguments": {}}[END_TOOL_REQUEST]'
)
IMAGE = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture
def oai(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://openlms.test/v1", api_key="lm-studio", http_client=client)


@pytest.mark.parametrize(
    ("effort", "switch"),
    [("none", "off"), ("minimal", "low"), ("low", "low"), ("high", "high"), ("xhigh", "high"), ("on", "on")],
)
def test_reasoning_effort_becomes_the_switch(effort: str, switch: str) -> None:
    req = ResponsesRequest(model=CHAT, input="hi", reasoning={"effort": effort, "summary": "auto"})
    assert convert.chat_request(req).params.reasoning_effort == switch
    assert convert.chat_request(ResponsesRequest(model=CHAT, input="hi")).params.reasoning_effort is None


async def test_reasoning_effort_reaches_the_template(  # /v1/responses and /v1/chat/completions
    client: httpx.AsyncClient, fake: FakeBackend, home: Path
) -> None:
    template = "{% for m in messages %}{{ m.content }} {% endfor %}thinking={{ enable_thinking }}"
    config = {
        "prediction": {"promptTemplate": {"type": "jinja", "jinjaPromptTemplate": {"template": template}}}
    }
    put = await client.put("/api/v1/models/config", params={"model": CHAT}, json=config)
    assert put.status_code == 200
    # the fake engine gets the prompt as tokens (a hash per piece): it answers with the switch it saw
    said = {str(hash(f"thinking={value}") & 0xFFFF): value for value in ("True", "False")}
    # the template ends with the switch: only the last piece counts (a 16-bit hash of an earlier piece
    # can equal one of these under some PYTHONHASHSEED, which made this test fail now and then)
    fake.reply = lambda prompt: said.get(prompt.split()[-1], "?")
    body = {"model": CHAT, "input": "hi", "reasoning": {"effort": "none"}}
    off = (await client.post("/v1/responses", json=body)).json()
    on = (await client.post("/v1/responses", json=body | {"reasoning": {"effort": "low"}})).json()
    assert (off["output_text"], on["output_text"]) == ("False", "True")
    assert off["reasoning"]["effort"] == "none"
    chat = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "none"}
    chat_off = (await client.post("/v1/chat/completions", json=chat)).json()
    chat_on = (await client.post("/v1/chat/completions", json=chat | {"reasoning_effort": "high"})).json()
    assert chat_off["choices"][0]["message"]["content"] == "False"
    assert chat_on["choices"][0]["message"]["content"] == "True"
    bad = await client.post("/v1/chat/completions", json=chat | {"reasoning_effort": "lots"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "reasoning_effort"


@pytest.mark.parametrize(
    "items",
    [
        [{"role": "user", "content": [{"type": "input_image", "image_url": IMAGE}]}],
        [{"type": "input_image", "image_url": IMAGE}],
    ],
)
async def test_an_image_is_a_400_saying_the_model_has_no_vision(
    client: httpx.AsyncClient, items: list[dict[str, Any]]
) -> None:
    reply = await client.post("/v1/responses", json={"model": CHAT, "input": items})
    error = reply.json()["error"]
    assert reply.status_code == 400 and "no vision" in error["message"] and "vision model" in error["message"]
    assert CHAT in error["message"] and error["param"].startswith("input[0]")


async def test_an_image_in_chat_completions_is_a_400_too(oai: openai.AsyncOpenAI) -> None:
    content: Any = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": IMAGE}},
    ]
    with pytest.raises(openai.BadRequestError) as err:
        await oai.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": content}])
    assert "no vision" in str(err.value) and err.value.body["param"] == "messages[0].content"  # type: ignore[index]


async def test_sampling_and_metadata_are_echoed(oai: openai.AsyncOpenAI) -> None:
    reply = await oai.responses.create(
        model=CHAT, input="hi", temperature=0.3, top_p=0.9, metadata={"run": "7"}, parallel_tool_calls=False
    )
    assert (reply.temperature, reply.top_p, reply.metadata) == (0.3, 0.9, {"run": "7"})
    assert reply.parallel_tool_calls is False
    default = await oai.responses.create(model=CHAT, input="hi")
    assert default.temperature == 0.8 and default.top_p == 0.95  # what the prediction used (LM Studio's)


async def test_parallel_tool_calls_false_keeps_one_call(oai: openai.AsyncOpenAI, fake: FakeBackend) -> None:
    fake.reply = lambda prompt: TWO_CALLS
    tools: Any = [TOOL, G]
    both = await oai.responses.create(model=CHAT, input="go", tools=tools)
    one = await oai.responses.create(model=CHAT, input="go", tools=tools, parallel_tool_calls=False)
    assert [i.name for i in both.output if i.type == "function_call"] == ["f", "g"]
    assert [i.name for i in one.output if i.type == "function_call"] == ["f"]
    async with oai.responses.stream(model=CHAT, input="go", tools=tools, parallel_tool_calls=False) as stream:
        final = await stream.get_final_response()
    assert [i.name for i in final.output if i.type == "function_call"] == ["f"]


def test_tool_choice_forms() -> None:
    assert request_tools([TOOL], "required").choice == "required"
    named = request_tools([TOOL], {"type": "function", "name": "f"})
    assert named.choice == {"type": "function", "function": {"name": "f"}}
    allowed = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "g"}]}
    only_g = request_tools([TOOL, G], allowed)
    assert only_g.choice == "required" and [t["function"]["name"] for t in only_g.functions or []] == ["g"]
    mcp = {"type": "mcp", "server_label": "time", "server_url": "http://127.0.0.1:9/mcp"}
    forced = request_tools([mcp], {"type": "mcp", "server_label": "time", "name": "now"})
    assert forced.mcp_choice == ("time", "now") and forced.choice == "required"
    with pytest.raises(InvalidRequestError, match="server_label"):
        request_tools([TOOL], {"type": "mcp", "server_label": "other"})
    with pytest.raises(InvalidRequestError, match="lists no function tool"):
        request_tools([TOOL], allowed | {"tools": []})


def test_tool_types_openlms_cannot_run_are_left_out(caplog: pytest.LogCaptureFixture) -> None:
    codex = [{"type": "web_search"}, {"type": "local_shell"}, {"type": "custom", "name": "apply_patch"}, TOOL]
    with caplog.at_level("WARNING", logger="openlms.server"):
        tools = request_tools(codex, "auto")
    assert tools.skipped == ("web_search", "local_shell", "custom")
    assert [t["function"]["name"] for t in tools.functions or []] == ["f"]
    assert "web_search, local_shell, custom" in caplog.text
    with pytest.raises(InvalidRequestError, match="'web_search'"):
        request_tools(codex, {"type": "web_search"})


def test_mcp_tools_become_tool_sources() -> None:
    remote = {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "https://example.test/mcp",
        "allowed_tools": ["search"],
        "headers": {"X-Key": "k"},
        "authorization": "tok",
        "require_approval": "always",
    }
    local = {"type": "mcp", "server_label": "time", "allowed_tools": {"tool_names": ["now"]}}
    tools = request_tools([remote, local], None)
    docs, time = (m.source for m in tools.mcp)
    assert docs.remote is not None and docs.remote.url == "https://example.test/mcp"
    assert docs.remote.headers == {"X-Key": "k", "Authorization": "Bearer tok"}
    assert docs.allowed_tools == ("search",) and tools.mcp[0].require_approval == "always"
    assert time.remote is None and time.allowed_tools == ("now",) and tools.functions is None
    with pytest.raises(InvalidRequestError, match="http"):
        request_tools([{"type": "mcp", "server_label": "x", "server_url": "file:///etc"}], None)


def test_reasoning_streams_as_reasoning_text_events() -> None:
    machine = ResponseEvents("resp_1", 0, ResponsesRequest(model=CHAT, input="hi", parallel_tool_calls=False))
    events = machine.start()
    for parsed in (
        ReasoningDelta("Let me think."),
        ToolCallBegin(0, "call_1", "f"),
        ToolCallArgs(0, "{}"),
        ToolCallBegin(1, "call_2", "g"),
        ToolCallArgs(1, "{}"),
    ):
        events += machine.on(parsed)
    events += machine.finish(GenerationStats(StopReason.TOOL_CALLS, 3, 2, 0.0, 0.0, 0.0))
    kinds = [e["type"] for e in events]
    assert kinds[2:8] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["reasoning", "function_call"]
    assert final["output"][0]["content"] == [{"type": "reasoning_text", "text": "Let me think."}]
    assert json.loads(final["output"][1]["arguments"]) == {}


async def test_reasoning_text_is_a_reasoning_item(oai: openai.AsyncOpenAI, fake: FakeBackend) -> None:
    fake.reply = lambda prompt: "<think>Primes below 10: 2, 3, 5, 7.</think>Seven."
    reply = await oai.responses.create(model=CHAT, input="A prime below 10?")
    assert [i.type for i in reply.output] == ["reasoning", "message"] and reply.output_text == "Seven."
    reasoning = reply.output[0]
    assert reasoning.type == "reasoning" and reasoning.content is not None
    assert [c.text for c in reasoning.content] == ["Primes below 10: 2, 3, 5, 7."]
    async with oai.responses.stream(model=CHAT, input="A prime below 10?") as stream:
        events = [e async for e in stream]
    thought = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    done = [e.text for e in events if e.type == "response.reasoning_text.done"]
    assert thought == "Primes below 10: 2, 3, 5, 7." and done == [thought]


def test_mcp_secrets_are_not_echoed() -> None:
    tool = {"type": "mcp", "server_label": "docs", "server_url": "https://x.test/mcp", "headers": {"K": "s"}}
    req = ResponsesRequest(model=CHAT, input="hi", tools=[tool | {"authorization": "tok"}, TOOL])
    echoed = convert.response("resp_1", 0, req, [], None)["tools"]
    assert echoed == [{"type": "mcp", "server_label": "docs", "server_url": "https://x.test/mcp"}, TOOL]
