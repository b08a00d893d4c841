"""/v1/responses over the fake engine with the real `openai` client: conversion of the request into the
chat the model sees, the `response` object, the stream's event sequence, function tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from openlms.core.errors import InvalidRequestError, PreviousResponseNotFoundError, ResponseNotFoundError
from openlms.core.types import GenerationStats, StopReason
from openlms.engine.fake import FakeBackend
from openlms.parsers.output.events import ContentDelta, ToolCallArgs, ToolCallBegin
from openlms.server.responses import convert
from openlms.server.responses.events import ResponseEvents
from openlms.server.responses.protocol import ResponsesRequest
from openlms.services.response_store import ResponseStore

CHAT = "tiny-chat"
CALL = '[TOOL_REQUEST]{"name": "get_delivery_date", "arguments": {"order_id": "123"}}[END_TOOL_REQUEST]'
TOOL = {
    "type": "function",
    "name": "get_delivery_date",
    "description": "Delivery date of an order",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
}


def stats(reason: StopReason) -> GenerationStats:
    return GenerationStats(reason, 3, 2, 0.0, 0.0, 0.0)


@pytest.fixture
def oai(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://openlms.test/v1", api_key="lm-studio", http_client=client)


def test_items_become_chat_messages() -> None:
    req = ResponsesRequest(
        model=CHAT,
        instructions="Be brief.",
        input=[
            {
                "role": "user",
                "content": [{"type": "input_text", "text": "Order "}, {"type": "input_text", "text": "1"}],
            },
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a": 1}'},
            {"type": "function_call_output", "call_id": "call_1", "output": "done"},
        ],
        tools=[TOOL],
        tool_choice={"type": "function", "name": "get_delivery_date"},
        text={"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        max_output_tokens=7,
    )
    chat = convert.chat_request(req)
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "tool"]
    assert chat.messages[1]["content"] == "Order 1"
    assert chat.messages[2]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert chat.messages[3] == {"role": "tool", "content": "done", "tool_call_id": "call_1"}
    assert chat.params.tools and chat.params.tools[0]["function"]["name"] == "get_delivery_date"
    assert chat.params.tool_choice == {"type": "function", "function": {"name": "get_delivery_date"}}
    assert chat.params.max_tokens == 7 and chat.params.structured


@pytest.mark.parametrize(
    "body",
    [
        {"input": [{"type": "input_image", "image_url": "x"}]},
        {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
        {"input": "hi", "tools": [{"type": "web_search"}], "tool_choice": {"type": "web_search_preview"}},
        {"input": "hi", "reasoning": {"effort": "extreme"}},
        {"input": "hi", "tools": [{"type": "mcp"}]},
        {"input": "hi", "tool_choice": "sometimes"},
        {"input": []},
    ],
)
def test_unsupported_input_is_a_clear_error(body: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        convert.chat_request(ResponsesRequest(model=CHAT, **body))


def test_event_sequence_for_text_then_call() -> None:
    machine = ResponseEvents("resp_1", 0, ResponsesRequest(model=CHAT, input="hi"))
    events = machine.start()
    for parsed in (
        ContentDelta(" "),
        ContentDelta("Hi"),
        ToolCallBegin(0, "call_9", "f"),
        ToolCallArgs(0, "{}"),
    ):
        events += machine.on(parsed)
    events += machine.finish(stats(StopReason.TOOL_CALLS))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["message", "function_call"]
    assert final["output"][0]["content"][0]["text"] == " Hi"
    assert final["output"][1]["call_id"] == "call_9" and final["output"][1]["arguments"] == "{}"


def test_cut_by_max_tokens_is_incomplete() -> None:
    machine = ResponseEvents("resp_1", 0, ResponsesRequest(model=CHAT, input="hi"))
    events = machine.on(ContentDelta("abc")) + machine.finish(stats(StopReason.MAX_TOKENS))
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_create_with_string_input(oai: openai.AsyncOpenAI, fake: FakeBackend) -> None:
    fake.reply = lambda prompt: "Seven."
    reply = await oai.responses.create(model=CHAT, input="A prime below 10?", metadata={"k": "v"})
    assert reply.id.startswith("resp_") and reply.status == "completed"
    assert reply.output_text == "Seven." and reply.metadata == {"k": "v"}
    assert reply.output[0].type == "message"
    assert reply.usage and reply.usage.output_tokens > 0


async def test_stream_events_and_final_response(oai: openai.AsyncOpenAI, fake: FakeBackend) -> None:
    fake.reply = lambda prompt: "Hello there"
    async with oai.responses.stream(model=CHAT, input="Hello") as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert "".join(deltas) == "Hello there" == final.output_text
    assert final.status == "completed"


async def test_function_call_round_trip(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    fake.reply = lambda prompt: CALL
    ask = [{"role": "user", "content": "When does order 123 arrive?"}]
    first = await oai.responses.create(model=CHAT, input=ask, tools=[TOOL])  # type: ignore[arg-type, list-item]
    calls = [i for i in first.output if i.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_delivery_date"
    assert json.loads(calls[0].arguments) == {"order_id": "123"}
    fake.reply = lambda prompt: "Tomorrow."
    history: list[Any] = [
        *ask,
        calls[0].model_dump(),
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "2026-12-08"},
    ]
    second = await oai.responses.create(model=CHAT, input=history, tools=[TOOL])  # type: ignore[list-item]
    assert second.output_text == "Tomorrow." and second.status == "completed"
    messages = convert.input_messages(history)  # what the model saw: the call's output is in its prompt
    rendered = await client.post("/api/v1/apply-template", json={"model": CHAT, "messages": messages})
    assert "2026-12-08" in rendered.json()["prompt"]


async def test_bad_item_is_a_400(client: httpx.AsyncClient) -> None:
    reply = await client.post("/v1/responses", json={"model": CHAT, "input": [{"type": "computer_call"}]})
    assert reply.status_code == 400
    assert "function_call_output" in reply.json()["error"]["message"]


def test_empty_stream_still_has_a_message() -> None:
    machine = ResponseEvents("resp_1", 0, ResponsesRequest(model=CHAT, input="hi"))
    events = machine.finish(stats(StopReason.EOS))
    final = events[-1]["response"]
    assert final["status"] == "completed" and [i["type"] for i in final["output"]] == ["message"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


async def test_json_schema_format_constrains_the_answer(oai: openai.AsyncOpenAI, fake: FakeBackend) -> None:
    fake.reply = lambda prompt: '{"n": 7}'
    fmt = {
        "type": "json_schema",
        "name": "n",
        "schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
    }
    reply = await oai.responses.create(model=CHAT, input="A number", text={"format": fmt})  # type: ignore[typeddict-item]
    assert json.loads(reply.output_text) == {"n": 7}
    assert reply.text and reply.text.format and reply.text.format.type == "json_schema"


async def test_missing_input_is_an_openai_error(client: httpx.AsyncClient) -> None:
    reply = await client.post("/v1/responses", json={"model": CHAT})
    assert reply.status_code == 400
    assert "input" in json.dumps(reply.json()["error"])


async def test_stored_response_continues_by_previous_response_id(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, fake: FakeBackend, home: Path
) -> None:
    fake.reply = lambda prompt: "Seven."
    first = await oai.responses.create(model=CHAT, input="A prime below 10?", instructions="Be brief.")
    assert first.store is True
    async with oai.responses.stream(model=CHAT, input="Times 2?", previous_response_id=first.id) as stream:
        second = await stream.get_final_response()
    assert second.previous_response_id == first.id
    kept = ResponseStore(home / "openlms" / "responses").load(second.id)
    assert [(m["role"], m["content"]) for m in kept] == [
        ("user", "A prime below 10?"),
        ("assistant", "Seven."),
        ("user", "Times 2?"),
        ("assistant", "Seven."),
    ]  # the instructions are not carried over
    third = await oai.responses.create(model=CHAT, input="Again", store=False, previous_response_id=second.id)
    reply = await client.post(
        "/v1/responses", json={"model": CHAT, "input": "x", "previous_response_id": third.id}
    )
    assert reply.status_code == 404 and "not found" in reply.json()["error"]["message"]
    assert reply.json()["error"]["code"] == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):
        await oai.responses.create(model=CHAT, input="x", previous_response_id="resp_123")


async def test_a_stored_response_can_be_fetched_and_deleted(
    client: httpx.AsyncClient, oai: openai.AsyncOpenAI, fake: FakeBackend
) -> None:
    fake.reply = lambda prompt: "Seven."
    created = await oai.responses.create(model=CHAT, input="A prime below 10?")
    fetched = await oai.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == "Seven." and fetched.status == "completed"
    async with oai.responses.stream(model=CHAT, input="Again") as stream:
        streamed = await stream.get_final_response()
    assert (await oai.responses.retrieve(streamed.id)).output_text == streamed.output_text
    assert (await client.delete(f"/v1/responses/{created.id}")).json() == {
        "id": created.id,
        "object": "response",
        "deleted": True,
    }
    for call in (client.get, client.delete):
        gone = await call(f"/v1/responses/{created.id}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "response_not_found"
    unstored = await oai.responses.create(model=CHAT, input="x", store=False)
    with pytest.raises(openai.NotFoundError):
        await oai.responses.retrieve(unstored.id)


def test_store_refuses_odd_ids(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    for rid in ("resp_123", "../settings", "resp_" + "0" * 24):
        with pytest.raises(PreviousResponseNotFoundError, match="not found"):
            store.load(rid)
        with pytest.raises(ResponseNotFoundError):
            store.get(rid)
