"""A loaded model whose prediction queue is full (ServerBusyError from the engine's `generate()`): 503 with
`Retry-After` on every HTTP API, streamed requests included (the status arrives before any event), and a
clear channel error on the SDK's websocket. The runtime is the fake one, refusing while `busy` is set."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from openlms.core.errors import ServerBusyError
from openlms.core.types import GenerationRequest, LoadConfig, ModelDescriptor
from openlms.engine.fake import FakeBackend
from openlms.engine.runtime import LoadProgress
from openlms.server.errors import install
from tests.unit.server.conftest import make_app
from tests.unit.server.test_sdk_protocol import connect, history, messages, query

CHAT = "tiny-chat"
RETRY_S = 3
MESSAGES = [{"role": "user", "content": "hi"}]


@dataclass(eq=False)
class Switch:
    busy: bool = True


class BusyRuntime:
    """The fake runtime, but `generate()` refuses as the engine does when the queue is full."""

    def __init__(self, inner: Any, switch: Switch) -> None:
        self._inner, self._switch = inner, switch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def generate(self, request: GenerationRequest) -> Any:
        if self._switch.busy:
            raise ServerBusyError(
                f"{CHAT} already runs 4 predictions and 32 more wait.", retry_after_s=RETRY_S
            )
        return self._inner.generate(request)


@dataclass
class BusyBackend(FakeBackend):
    switch: Switch = field(default_factory=Switch)

    def load(self, descriptor: ModelDescriptor, config: LoadConfig, on_progress: LoadProgress) -> Any:
        return BusyRuntime(super().load(descriptor, config, on_progress), self.switch)


@pytest.fixture
def backend() -> BusyBackend:
    return BusyBackend(reply=lambda prompt: "Paris is the capital of France.")


@pytest.fixture
async def http(home: Path, backend: BusyBackend) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(home, backend)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://openlms.test") as client:
            yield client


@pytest.fixture
def oai(http: httpx.AsyncClient) -> openai.AsyncOpenAI:
    # no retries: the client would honour Retry-After and ask again
    return openai.AsyncOpenAI(base_url="http://openlms.test/v1", api_key="x", http_client=http, max_retries=0)


def assert_busy(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(RETRY_S)
    assert response.headers["content-type"].startswith("application/json")  # not an event stream
    error = response.json()["error"]
    assert error["code"] == "server_busy" and error["type"] == "server_error"
    assert "already runs 4 predictions" in error["message"]


async def assert_served_afterwards(http: httpx.AsyncClient, backend: BusyBackend) -> None:
    """A refusal holds nothing: once there is room, the model answers, and nothing stays active."""
    backend.switch.busy = False
    done = await http.post("/v1/chat/completions", json={"model": CHAT, "messages": MESSAGES})
    assert done.status_code == 200 and done.json()["choices"][0]["message"]["content"]
    [instance] = [
        i for m in (await http.get("/api/v1/models")).json()["models"] for i in m["loaded_instances"]
    ]
    assert (instance["status"], instance["active_requests"], instance["queued_requests"]) == ("idle", 0, 0)


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/v0/chat/completions"])
@pytest.mark.parametrize("stream", [False, True])
async def test_chat_is_a_503_with_retry_after(
    http: httpx.AsyncClient, backend: BusyBackend, path: str, stream: bool
) -> None:
    body = {"model": CHAT, "messages": MESSAGES, "stream": stream}
    async with http.stream("POST", path, json=body) as response:
        await response.aread()
    assert_busy(response)
    await assert_served_afterwards(http, backend)


@pytest.mark.parametrize("path", ["/v1/completions", "/api/v0/completions"])
@pytest.mark.parametrize("stream", [False, True])
async def test_completion_is_a_503_with_retry_after(
    http: httpx.AsyncClient, backend: BusyBackend, path: str, stream: bool
) -> None:
    async with http.stream(
        "POST", path, json={"model": CHAT, "prompt": "Once", "stream": stream}
    ) as response:
        await response.aread()
    assert_busy(response)
    await assert_served_afterwards(http, backend)


async def test_the_openai_client_sees_a_503_streamed_or_not(oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as plain:
        await oai.chat.completions.create(model=CHAT, messages=MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(openai.InternalServerError) as streamed:
        await oai.chat.completions.create(model=CHAT, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    for error in (plain.value, streamed.value):
        assert error.status_code == 503 and error.code == "server_busy"
        assert error.response.headers["retry-after"] == str(RETRY_S)


async def test_a_stream_with_room_still_streams(http: httpx.AsyncClient, backend: BusyBackend) -> None:
    backend.switch.busy = False
    body = {"model": CHAT, "messages": MESSAGES, "stream": True}
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        lines = [line async for line in response.aiter_lines() if line.startswith("data: ")]
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]" and len(lines) > 2


def test_the_rest_apis_error_handler_sets_retry_after() -> None:
    """/api/v1 has no prediction route today; any route that meets a full queue answers the same way."""
    app = FastAPI()
    install(app)

    @app.get("/api/v1/anything")
    async def anything() -> None:
        raise ServerBusyError("The model is busy.", retry_after_s=0)

    response = TestClient(app).get("/api/v1/anything")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"  # never "0"
    assert response.json()["error"]["code"] == "server_busy"


@pytest.fixture
def sdk(home: Path, backend: BusyBackend) -> Iterator[Any]:
    with TestClient(make_app(home, backend)) as client:
        yield from connect(client, "llm")


def test_the_sdk_gets_a_channel_error_saying_busy_and_retry(sdk: Any) -> None:
    frames = sdk.channel("getOrLoad", {"identifier": CHAT, "loadConfigStack": {"layers": []}})
    assert frames[-1]["type"] == "channelClose"
    parameter = {
        "modelSpecifier": query(CHAT),
        "history": history("hi"),
        "predictionConfigStack": {"layers": []},
    }
    frames = sdk.channel("predict", parameter)
    assert not [m for m in messages(frames) if m.get("type") == "fragment"]
    error = frames[-1]
    assert error["type"] == "channelError"
    title = error["error"]["title"]
    assert title.startswith(f"Model busy (retry in {RETRY_S} s): ") and "already runs 4 predictions" in title
    assert error["error"]["errorData"] == {"code": "server_busy", "retryAfterSeconds": RETRY_S}
