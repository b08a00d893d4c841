"""`GET /api/v1/logs/stream`: the app's log bus as server-sent events, for local clients only.

The stream never ends by itself, which `httpx.ASGITransport` cannot read (it waits for the whole
body), so these tests drive the ASGI app directly and disconnect when done.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from openlms.engine.fake import FakeBackend
from openlms.server.logs import routes
from openlms.services.logbus import LogBus, model_input_event, model_output_event
from tests.unit.server.conftest import make_app


class SseClient:
    """One GET request to an ASGI app, read as server-sent events."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self.gone = asyncio.Event()
        self.status = 0
        self._buffer = ""
        self._asked = False

    async def receive(self) -> dict[str, Any]:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        await self.messages.put(message)

    async def next_block(self, timeout: float = 5.0) -> list[str]:
        """The lines of the next SSE block (an event, or a `: ping` comment)."""
        while "\n\n" not in self._buffer:
            message = await asyncio.wait_for(self.messages.get(), timeout)
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message["type"] == "http.response.body":
                self._buffer += message.get("body", b"").decode()
        block, self._buffer = self._buffer.split("\n\n", 1)
        return block.splitlines()

    async def next_event(self, timeout: float = 5.0) -> tuple[str, Any]:
        while True:
            lines = await self.next_block(timeout)
            if all(line.startswith(":") for line in lines):
                continue  # keep-alive comment
            fields = dict(line.split(": ", 1) for line in lines)
            return fields.get("event", "message"), json.loads(fields["data"])


@asynccontextmanager
async def open_stream(app: FastAPI, source: str) -> AsyncIterator[SseClient]:
    client = SseClient()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/logs/stream",
        "raw_path": b"/api/v1/logs/stream",
        "query_string": f"source={source}".encode(),
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    task = asyncio.create_task(app(scope, client.receive, client.send))
    try:
        assert await client.next_event() == ("ready", {"source": source})
        assert client.status == 200
        yield client
    finally:
        client.gone.set()
        await asyncio.wait_for(task, 5)


@pytest.fixture
async def app(home: Path, fake: FakeBackend) -> AsyncIterator[FastAPI]:
    application = make_app(home, fake)
    async with application.router.lifespan_context(application):
        yield application


def bus_of(app: FastAPI) -> LogBus:
    bus: LogBus = app.state.logbus
    return bus


async def test_model_events_stream_to_a_local_client(app: FastAPI) -> None:
    bus = bus_of(app)
    async with open_stream(app, "model") as stream:
        prompt = model_input_event("tiny-chat", "acme/tiny-chat-GGUF/tiny-chat-F32.gguf", "<|user|>\nHi")
        bus.publish("server", {"message": "not for model subscribers"})
        bus.publish("model", prompt)
        bus.publish("model", model_output_event("tiny-chat", "acme/x.gguf", "Hello! 👋", None))
        assert await stream.next_event() == ("message", prompt)
        event, answer = await stream.next_event()
        assert answer["type"] == "llm.prediction.output" and answer["output"] == "Hello! 👋"
        assert bus.subscriber_count("model") == 1
    assert bus.subscriber_count("model") == 0  # the client left: unsubscribed


async def test_server_logs_stream_with_the_recent_backlog(app: FastAPI) -> None:
    logger = logging.getLogger("openlms.server")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        logger.info("before anyone listens")
        async with open_stream(app, "server") as stream:
            assert (await stream.next_event())[1]["message"] == "before anyone listens"
            logger.info("GET /v1/models %d", 200)
            event, record = await stream.next_event()
    finally:
        logger.setLevel(level)
    assert event == "message" and record["message"] == "GET /v1/models 200" and record["level"] == "INFO"


async def test_a_client_that_falls_behind_is_told_how_many_events_it_lost(app: FastAPI) -> None:
    app.state.logbus = bus = LogBus(queue_size=2)
    async with open_stream(app, "model") as stream:
        for i in range(5):
            bus.publish("model", {"i": i})
        assert await stream.next_event() == ("dropped", {"dropped": 3})
        assert [(await stream.next_event())[1]["i"] for _ in range(2)] == [3, 4]


async def test_keep_alive_pings(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "PING_SECONDS", 0.05)
    async with open_stream(app, "server") as stream:
        while True:
            lines = await stream.next_block(timeout=2)
            if lines and lines[0].startswith(": ping"):
                break


async def test_remote_clients_and_bad_sources_are_refused(app: FastAPI) -> None:
    remote = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
    async with httpx.AsyncClient(transport=remote, base_url="http://localhost") as http:
        refused = await http.get("/api/v1/logs/stream", params={"source": "model"})
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["type"] == "permission_error" and "local machine only" in error["message"]
    local = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=local, base_url="http://localhost") as http:
        bad = await http.get("/api/v1/logs/stream", params={"source": "everything"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "query.source"
