"""/v1/responses on the real server with SmolLM2, driven by the `openai` package and httpx (the spec's
openai.md curl examples, model replaced). No assertion depends on the model's wording."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.support.server import CHAT_MODEL, Server

pytestmark = pytest.mark.e2e

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
SHORT = 24  # output tokens per request: the tests check shapes, not answers


@pytest.fixture(scope="module")
def oai(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="lm-studio", max_retries=0)


def test_string_and_item_input(oai: openai.OpenAI) -> None:
    first = oai.responses.create(model=CHAT_MODEL, input="Say hi", max_output_tokens=SHORT)
    items = [{"role": "user", "content": [{"type": "input_text", "text": "Say hi"}]}]
    second = oai.responses.create(
        model=CHAT_MODEL,
        input=items,
        instructions="Be brief.",
        max_output_tokens=SHORT,  # type: ignore[arg-type]
    )
    for reply in (first, second):
        assert reply.id.startswith("resp_") and reply.status in ("completed", "incomplete")
        assert reply.output[0].type == "message" and reply.output_text
        assert (
            reply.usage and reply.usage.total_tokens == reply.usage.input_tokens + reply.usage.output_tokens
        )


def test_stream_deltas_add_up_to_the_final_response(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model=CHAT_MODEL, input="Hello", max_output_tokens=SHORT) as stream:
        events = list(stream)
    final = events[-1].response  # type: ignore[union-attr]  # completed, or incomplete at the token limit
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas and deltas == final.output_text


def test_forced_function_call_round_trip(oai: openai.OpenAI) -> None:
    ask: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = oai.responses.create(
        model=CHAT_MODEL,
        input=ask,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
    )
    calls = [i for i in first.output if i.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].call_id
    assert isinstance(json.loads(calls[0].arguments), dict)
    output = {"type": "function_call_output", "call_id": calls[0].call_id, "output": '{"temp_c": 21}'}
    second = oai.responses.create(
        model=CHAT_MODEL,
        input=[*ask, calls[0].model_dump(exclude_none=True), output],
        tools=[WEATHER],  # type: ignore[list-item]
        max_output_tokens=SHORT,
    )
    assert second.status in ("completed", "incomplete") and second.output


def test_openai_md_curl_examples(server: Server) -> None:
    url = f"{server.url}/v1/responses"
    plain = httpx.post(
        url,
        json={
            "model": CHAT_MODEL,
            "input": "Provide a prime number less than 50",
            "reasoning": {"effort": "low"},
        },
        timeout=120,
    )
    assert plain.status_code == 200 and plain.json()["object"] == "response"
    with httpx.stream(
        "POST", url, json={"model": CHAT_MODEL, "input": "Hello", "stream": True}, timeout=120
    ) as r:
        assert r.status_code == 200
        types = [json.loads(line[5:])["type"] for line in r.iter_lines() if line.startswith("data:")]
    assert types[0] == "response.created" and "response.output_text.delta" in types
    assert types[-1] in ("response.completed", "response.incomplete")
    follow_up = {"model": CHAT_MODEL, "input": "Multiply it by 2", "previous_response_id": plain.json()["id"]}
    stateful = httpx.post(url, json=follow_up, timeout=120)
    assert stateful.status_code == 200 and stateful.json()["previous_response_id"] == plain.json()["id"]
    unknown = httpx.post(url, json=follow_up | {"previous_response_id": "resp_123"}, timeout=60)
    assert unknown.status_code == 404 and "resp_123" in unknown.json()["error"]["message"]
    assert unknown.json()["error"]["code"] == "previous_response_not_found"
    kept = httpx.get(f"{url}/{plain.json()['id']}", timeout=60)
    assert kept.status_code == 200 and kept.json()["output"] == plain.json()["output"]
