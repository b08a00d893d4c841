"""OpenAI-compatible routes, checked with the real `openai` client over the ASGI app (fake engine)."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

CHAT = "tiny-chat"
EMBED = "text-embedding-tiny-embed"


@pytest.fixture
def oai(client: httpx.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://openlms.test/v1", api_key="lm-studio", http_client=client)


async def test_models_lists_downloaded_with_jit(oai: openai.AsyncOpenAI) -> None:
    ids = [m.id async for m in oai.models.list()]
    assert CHAT in ids and EMBED in ids


async def test_chat_completion_shape(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "Capital of France?"}], temperature=0.7
    )
    assert completion.choices[0].message.content == "Paris is the capital of France."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 6
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 6


async def test_chat_stream_with_usage(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model=CHAT,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert text == "Paris is the capital of France." and finish == "stop"
    assert usage is not None and usage.completion_tokens == 6


async def test_max_tokens_gives_length(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.chat.completions.create(
        model=CHAT, messages=[{"role": "user", "content": "x"}], max_tokens=2
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "Paris is "


async def test_text_completion_and_stop(oai: openai.AsyncOpenAI) -> None:
    completion = await oai.completions.create(model=CHAT, prompt="The capital", stop=["capital"])
    assert completion.choices[0].text == "Paris is the "
    assert completion.choices[0].finish_reason == "stop"


async def test_embeddings_float_and_base64(oai: openai.AsyncOpenAI) -> None:
    result = await oai.embeddings.create(model=EMBED, input=["a cat", "a dog"])  # the client asks for base64
    assert [d.index for d in result.data] == [0, 1]
    assert abs(sum(x * x for x in result.data[0].embedding) - 1.0) < 1e-5
    floats = await oai.embeddings.create(model=EMBED, input="a cat", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(result.data[0].embedding, abs=1e-6)


async def test_unknown_model_is_404(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        await oai.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert "no-such-model" in str(err.value)


async def test_embedding_model_cannot_chat(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="embedding model"):
        await oai.chat.completions.create(model=EMBED, messages=[{"role": "user", "content": "x"}])


async def test_llm_cannot_embed(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="not an embedding model"):
        await oai.embeddings.create(model=CHAT, input="x")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": CHAT, "messages": []}, "messages"),
        ({"model": CHAT, "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        (
            {"model": CHAT, "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature",
        ),
        ({"model": CHAT, "messages": [{"role": "user", "content": "x"}], "max_tokens": -5}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], param: str
) -> None:
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]


async def test_malformed_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/chat/completions",
        content=b'{"model": "x", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


async def test_context_overflow_is_a_400_before_streaming(client: httpx.AsyncClient) -> None:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "word " * 5000}], "stream": True}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"


async def test_a_malformed_tool_is_refused_naming_it(client: httpx.AsyncClient) -> None:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and response.json()["error"]["param"] == "tools[0]"
    assert "function.name" in response.json()["error"]["message"]


async def test_stream_wire_format_ends_with_done(client: httpx.AsyncClient) -> None:
    body = {"model": CHAT, "messages": [{"role": "user", "content": "x"}], "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    first = json.loads(lines[0][6:])
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"


async def test_unknown_route_is_an_openai_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nope")
    assert response.status_code == 404 and "error" in response.json()


async def test_unload_during_a_stream_ends_it_with_an_error_event(home, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    app_state = client._transport.app.state.openlms  # type: ignore[attr-defined]
    app_state.models.manager.backend.token_delay = 0.01
    app_state.models.manager.backend.reply = lambda prompt: " ".join(["word"] * 300)
    body = {"model": CHAT, "messages": [{"role": "user", "content": "x"}], "stream": True}

    async def unload_soon() -> None:
        await asyncio.sleep(0.1)
        await client.post("/api/v1/models/unload", json={"instance_id": CHAT})

    task = asyncio.create_task(unload_soon())
    response = await client.post("/v1/chat/completions", json=body)
    await task
    payloads = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert payloads[-1] == "[DONE]"
    error = json.loads(payloads[-2])["error"]
    assert error["code"] == "model_unloaded" and "incomplete" in error["message"]


async def test_unload_during_a_request_is_a_503(client: httpx.AsyncClient) -> None:
    app_state = client._transport.app.state.openlms  # type: ignore[attr-defined]
    app_state.models.manager.backend.token_delay = 0.01
    app_state.models.manager.backend.reply = lambda prompt: " ".join(["word"] * 300)

    async def unload_soon() -> None:
        await asyncio.sleep(0.1)
        await client.post("/api/v1/models/unload", json={"instance_id": CHAT})

    task = asyncio.create_task(unload_soon())
    response = await client.post(
        "/v1/chat/completions", json={"model": CHAT, "messages": [{"role": "user", "content": "x"}]}
    )
    await task
    assert response.status_code == 503 and response.json()["error"]["code"] == "model_unloaded"


async def test_body_that_is_not_a_json_object_is_explained(client: httpx.AsyncClient) -> None:
    form = await client.post(
        "/v1/chat/completions", content=b"model=x", headers={"content-type": "text/plain"}
    )
    array = await client.post("/v1/chat/completions", json=[1, 2])
    for response in (form, array):
        assert response.status_code == 400
        assert "must be a JSON object" in response.json()["error"]["message"]


async def test_wrong_kind_is_refused_before_any_jit_load(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", json={"model": CHAT, "input": "x"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "wrong_model_type"
    models = (await client.get("/api/v1/models")).json()["models"]
    assert all(m["loaded_instances"] == [] for m in models)
