"""`POST /v1/messages` and `/v1/messages/count_tokens` through the real routes and the `anthropic` client,
over the fake engine (its scripted reply plays the model)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import httpx
import httpx2
import pytest

from openlms.core.settings import Settings
from openlms.core.tokens import TokenStore
from openlms.engine.fake import FakeBackend
from openlms.server.anthropic import convert
from openlms.server.anthropic.protocol import MessagesRequest, ToolChoice
from tests.support.tools import DELIVERY_TOOL
from tests.unit.server.conftest import make_app

CHAT = "tiny-chat"
CALL = '[TOOL_REQUEST]{"name": "get_delivery_date", "arguments": {"order_id": "123"}}[END_TOOL_REQUEST]'
TOOL = {
    "name": DELIVERY_TOOL["function"]["name"],
    "description": DELIVERY_TOOL["function"]["description"],
    "input_schema": DELIVERY_TOOL["function"]["parameters"],
}
ASK = [{"role": "user", "content": "Get me delivery date for order 123"}]


@pytest.fixture
async def claude(home: Path, fake: FakeBackend) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The `anthropic` client (on its own HTTP stack, httpx2) over the app in this process."""
    app = make_app(home, fake)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://openlms.test") as http:
            yield anthropic.AsyncAnthropic(
                base_url="http://openlms.test", api_key="lm-studio", http_client=http, max_retries=0
            )


async def test_text_message(claude: anthropic.AsyncAnthropic) -> None:
    reply = await claude.messages.create(
        model=CHAT, max_tokens=64, system=[{"type": "text", "text": "Be brief."}], messages=ASK
    )
    assert reply.type == "message" and reply.role == "assistant" and reply.id.startswith("msg_")
    assert reply.content[0].type == "text" and "Paris" in reply.content[0].text
    assert reply.stop_reason == "end_turn"
    assert reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0


async def test_max_tokens_stops_with_max_tokens(claude: anthropic.AsyncAnthropic) -> None:
    reply = await claude.messages.create(model=CHAT, max_tokens=2, messages=ASK)
    assert reply.stop_reason == "max_tokens" and reply.usage.output_tokens == 2


async def test_tool_use_then_tool_result(claude: anthropic.AsyncAnthropic, fake: FakeBackend) -> None:
    fake.reply = lambda prompt: CALL
    reply = await claude.messages.create(model=CHAT, max_tokens=64, tools=[TOOL], messages=ASK)  # type: ignore[list-item]
    assert reply.stop_reason == "tool_use"
    use = [b for b in reply.content if b.type == "tool_use"][0]
    assert (
        use.name == "get_delivery_date" and use.input == {"order_id": "123"} and use.id.startswith("toolu_")
    )
    fake.reply = lambda prompt: "It arrives on Monday."
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "2025-01-06"}
    turns = [*ASK, {"role": "assistant", "content": reply.content}, {"role": "user", "content": [result]}]
    final = await claude.messages.create(model=CHAT, max_tokens=64, tools=[TOOL], messages=turns)  # type: ignore[arg-type,list-item]
    assert final.content[0].type == "text" and final.content[0].text == "It arrives on Monday."


async def test_stream_events(claude: anthropic.AsyncAnthropic, fake: FakeBackend) -> None:
    async with claude.messages.stream(model=CHAT, max_tokens=64, messages=ASK) as stream:  # type: ignore[arg-type]
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Paris is the capital of France." and final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    fake.reply = lambda prompt: CALL
    async with claude.messages.stream(model=CHAT, max_tokens=64, tools=[TOOL], messages=ASK) as stream:  # type: ignore[arg-type,list-item]
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [(b.type, getattr(b, "input", None)) for b in final.content] == [("tool_use", {"order_id": "123"})]


async def test_openapi_documents_the_routes(claude: anthropic.AsyncAnthropic) -> None:
    spec = (await claude.get("/openapi.json", cast_to=httpx2.Response)).json()
    ok = spec["paths"]["/v1/messages"]["post"]["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/event-stream"}
    assert "200" in spec["paths"]["/v1/messages/count_tokens"]["post"]["responses"]


async def test_count_tokens(claude: anthropic.AsyncAnthropic) -> None:
    short = await claude.messages.count_tokens(model=CHAT, messages=ASK)  # type: ignore[arg-type]
    longer = await claude.messages.count_tokens(
        model=CHAT, messages=ASK, system="Answer in French, politely."
    )  # type: ignore[arg-type]
    assert 0 < short.input_tokens < longer.input_tokens


async def test_errors_in_anthropic_shape(client: httpx.AsyncClient, claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        await claude.messages.create(model="no-such-model", max_tokens=8, messages=ASK)  # type: ignore[arg-type]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    response = await client.post("/v1/messages", json={"model": CHAT, "messages": ASK})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in body["error"]["message"]
    image = {"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}
    response = await client.post(
        "/v1/messages",
        json={"model": CHAT, "max_tokens": 8, "messages": [{"role": "user", "content": [image]}]},
    )
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    response = await client.post(
        "/v1/messages", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["type"] == "error"


def test_history_converts_to_template_messages() -> None:
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_delivery_date", "input": {"order_id": "123"}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "soon"}]}
    body = {
        "model": CHAT,
        "max_tokens": 8,
        "system": [{"type": "text", "text": "Be "}, {"type": "text", "text": "brief."}],
        "messages": [
            *ASK,
            {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, use]},
            {"role": "user", "content": [result, {"type": "text", "text": "Thanks"}]},
        ],
        "tools": [TOOL],
        "tool_choice": {"type": "tool", "name": "get_delivery_date"},
        "stop_sequences": ["END"],
    }
    chat = convert.chat_request(MessagesRequest.model_validate(body))
    call = {
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "get_delivery_date", "arguments": '{"order_id": "123"}'},
    }
    assert list(chat.messages) == [
        {"role": "system", "content": "Be brief."},
        *ASK,
        {"role": "assistant", "content": "Checking.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "soon"},
        {"role": "user", "content": "Thanks"},
    ]
    assert chat.params.max_tokens == 8 and chat.params.stop == ("END",)
    assert chat.params.tool_choice == {"type": "function", "function": {"name": "get_delivery_date"}}
    assert chat.params.tools and chat.params.tools[0]["function"]["parameters"] == TOOL["input_schema"]
    assert convert.tool_choice(ToolChoice(type="any")) == "required"
    none = MessagesRequest.model_validate(body | {"tool_choice": {"type": "none"}})
    assert convert.chat_request(none).params.tools is None


def test_error_types_follow_the_status() -> None:
    assert [convert.error_type(s) for s in (400, 401, 403, 404, 500, 503)] == [
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "api_error",
        "overloaded_error",
    ]


async def test_require_auth_takes_the_clients_x_api_key(home: Path, fake: FakeBackend) -> None:
    token = TokenStore(Settings(home=home).tokens_file).create("tests")
    app = make_app(home, fake, require_auth=True)
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://openlms.test") as http:
            for key, allowed in (("wrong", False), (token.token, True)):
                client = anthropic.AsyncAnthropic(
                    base_url="http://openlms.test", api_key=key, http_client=http, max_retries=0
                )
                if allowed:
                    reply = await client.messages.create(model=CHAT, max_tokens=8, messages=ASK)  # type: ignore[arg-type]
                    assert reply.content[0].type == "text"
                else:
                    with pytest.raises(anthropic.AuthenticationError):
                        await client.messages.create(model=CHAT, max_tokens=8, messages=ASK)  # type: ignore[arg-type]
