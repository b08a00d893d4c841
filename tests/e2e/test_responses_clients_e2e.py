"""/v1/responses on the real server with SmolLM2, as real clients use it: `client.responses.parse` with a
pydantic model, reasoning.effort, images refused, the remote MCP curl example of openai.md (pointed at
the loopback streamable-HTTP test server; refused while the setting is off), and the OpenAI Agents SDK's
Responses model (`Agent` + `Runner.run`). No assertion depends on the model's wording: answers are
bounded by a grammar (structured output, forced calls) or only their shape is checked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.support.mcp import http_server
from tests.support.server import CHAT_MODEL, Server, free_port, start_server

pytestmark = pytest.mark.e2e

IMAGE = "data:image/png;base64,iVBORw0KGgo="
LABEL = "tiktoken"


class Prime(BaseModel):
    number: int
    is_prime: bool


class Verdict(BaseModel):
    friendly: bool


@pytest.fixture(scope="module")
def oai(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0)


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with http_server() as url:
        yield url


@pytest.fixture(scope="module")
def remote_server(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Server]:
    """A server with per-request remote MCP servers allowed (one round of tool calls, to stay fast)."""
    settings = {"mcp_allow_remote_servers": True, "mcp_max_tool_rounds": 1}
    srv = start_server(tmp_path_factory.mktemp("mcp"), models_dir, free_port(), settings=settings)
    yield srv
    srv.lms("server", "stop", check=False)


def curl_mcp_example(url: str) -> dict[str, Any]:
    """openai.md's remote MCP payload: the model, server_url and allowed_tools replaced (the test server's
    echo tool), and the answer capped so that SmolLM2 cannot ramble for minutes."""
    return {
        "model": CHAT_MODEL,
        "tools": [{"type": "mcp", "server_label": LABEL, "server_url": url, "allowed_tools": ["echo"]}],
        "input": "What is the first sentence of the tiktoken documentation?",
        "max_output_tokens": 32,
    }


def test_parse_with_a_pydantic_model(oai: openai.OpenAI) -> None:
    reply = oai.responses.parse(
        model=CHAT_MODEL, input="Give a prime number below 50.", text_format=Prime, max_output_tokens=200
    )
    assert isinstance(reply.output_parsed, Prime)
    assert Prime.model_validate_json(reply.output_text) == reply.output_parsed


def test_reasoning_effort_is_accepted(oai: openai.OpenAI) -> None:
    for effort in ("low", "none", "high"):
        reply = oai.responses.create(
            model=CHAT_MODEL,
            input="Hi",
            reasoning={"effort": effort},  # type: ignore[typeddict-item]
            max_output_tokens=8,
        )
        assert reply.status in ("completed", "incomplete") and reply.reasoning is not None
        assert reply.reasoning.effort == effort
    with pytest.raises(openai.BadRequestError) as bad:
        oai.responses.create(model=CHAT_MODEL, input="Hi", reasoning={"effort": "extreme"})  # type: ignore[typeddict-item]
    assert "reasoning.effort" in str(bad.value)


def test_images_are_refused_with_a_clear_400(oai: openai.OpenAI) -> None:
    image: Any = [{"role": "user", "content": [{"type": "input_image", "image_url": IMAGE}]}]
    with pytest.raises(openai.BadRequestError) as responses:
        oai.responses.create(model=CHAT_MODEL, input=image)
    parts: Any = [{"type": "text", "text": "What is it?"}, {"type": "image_url", "image_url": {"url": IMAGE}}]
    with pytest.raises(openai.BadRequestError) as chat:
        oai.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": parts}])
    for refused in (responses.value, chat.value):
        assert refused.status_code == 400 and "no vision" in str(refused) and "vision model" in str(refused)


def test_remote_mcp_needs_the_setting(server: Server, mcp_url: str) -> None:
    reply = httpx.post(f"{server.url}/v1/responses", json=curl_mcp_example(mcp_url), timeout=60)
    assert reply.status_code == 403
    assert "mcp_allow_remote_servers" in reply.json()["error"]["message"]


def test_remote_mcp_curl_example(remote_server: Server, mcp_url: str) -> None:
    reply = httpx.post(f"{remote_server.url}/v1/responses", json=curl_mcp_example(mcp_url), timeout=300)
    assert reply.status_code == 200
    output = reply.json()["output"]
    assert output[0]["type"] == "mcp_list_tools" and output[0]["server_label"] == LABEL
    assert [t["name"] for t in output[0]["tools"]] == ["echo"]  # allowed_tools
    assert {i["type"] for i in output} <= {"mcp_list_tools", "mcp_call", "message"}
    for call in (i for i in output if i["type"] == "mcp_call"):
        assert call["server_label"] == LABEL and call["status"] in ("completed", "failed")


def test_a_forced_mcp_call_streams_its_events(remote_server: Server, mcp_url: str) -> None:
    client = openai.OpenAI(base_url=f"{remote_server.url}/v1", api_key="lm-studio", max_retries=0)
    tools: Any = [{"type": "mcp", "server_label": "calc", "server_url": mcp_url, "allowed_tools": ["add"]}]
    with client.responses.stream(
        model=CHAT_MODEL,
        input="What is 2 + 3?",
        tools=tools,
        tool_choice={"type": "mcp", "server_label": "calc", "name": "add"},  # a short call: two integers
        max_output_tokens=48,
    ) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    for kind in (
        "response.mcp_list_tools.completed",
        "response.mcp_call.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.completed",
    ):
        assert kind in kinds
    final = events[-1].response  # type: ignore[union-attr]
    call = next(i for i in final.output if i.type == "mcp_call")
    arguments = json.loads(call.arguments)
    assert call.name == "add" and call.output == str(arguments["a"] + arguments["b"])  # the tool really ran


async def test_openai_agents_sdk(server: Server) -> None:
    from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0)
    model = OpenAIResponsesModel(model=CHAT_MODEL, openai_client=client)
    settings = ModelSettings(max_tokens=200)
    plain = Agent(
        name="Assistant", instructions="Be brief.", model=model, output_type=Verdict, model_settings=settings
    )
    answered = await Runner.run(plain, "Say hello.")
    assert isinstance(answered.final_output, Verdict)

    cities: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather of a city."""
        cities.append(city)
        return f"Sunny, 21 C in {city}"

    weather = Agent(
        name="Weather",
        instructions="Use the tool.",
        model=model,
        tools=[get_weather],
        model_settings=ModelSettings(max_tokens=200, tool_choice="get_weather"),
        tool_use_behavior="stop_on_first_tool",
    )
    result = await Runner.run(weather, "Weather in Paris?", max_turns=2)
    assert len(cities) == 1 and result.final_output == f"Sunny, 21 C in {cities[0]}"
