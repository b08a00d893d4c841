"""Errors on `/v1/messages*` in Anthropic's shape, whoever refuses: the guard's 401/403/413, FastAPI's
404/405, the routes' own; the `anthropic` package raises its matching exception. Other paths keep
OpenAI's shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anthropic
import httpx
import httpx2
import pytest
from fastapi import FastAPI

from openlms.core.settings import Settings
from openlms.core.tokens import TokenStore
from openlms.engine.fake import FakeBackend
from openlms.server.anthropic.reshape import anthropic_error, is_anthropic_path
from tests.unit.server.conftest import make_app
from tests.unit.server.test_server_busy import RETRY_S, BusyBackend

CHAT = "tiny-chat"
ASK = [{"role": "user", "content": "Hello"}]
BASE = "http://openlms.test"


@pytest.fixture
async def guarded(home: Path, fake: FakeBackend) -> AsyncIterator[FastAPI]:
    """An app that requires a token and takes bodies of at most 2 KiB."""
    app = make_app(home, fake, require_auth=True, max_request_bytes=2048)
    async with app.router.lifespan_context(app):
        yield app


def _http(app: FastAPI, host: str = "openlms.test") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{host}")


async def test_401_without_a_valid_token_is_an_authentication_error(guarded: FastAPI) -> None:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=guarded), base_url=BASE) as http:
        client = anthropic.AsyncAnthropic(base_url=BASE, api_key="wrong", http_client=http, max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as refused:
            await client.messages.create(model=CHAT, max_tokens=8, messages=ASK)  # type: ignore[arg-type]
    body = refused.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "authentication_error" and "lms token" in body["error"]["message"]
    async with _http(guarded) as http:
        missing = await http.post("/v1/messages/count_tokens", json={"model": CHAT, "messages": ASK})
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.json()["error"]["type"] == "authentication_error"
        other = await http.post("/v1/chat/completions", json={"model": CHAT, "messages": ASK})
        assert other.status_code == 401 and other.json()["error"]["code"] == "invalid_api_key"  # OpenAI's


async def test_413_is_request_too_large(home: Path, guarded: FastAPI) -> None:
    token = TokenStore(Settings(home=home).tokens_file).create("tests").token
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=guarded), base_url=BASE) as http:
        client = anthropic.AsyncAnthropic(base_url=BASE, api_key=token, http_client=http, max_retries=0)
        big = [{"role": "user", "content": "x" * 4096}]
        with pytest.raises(anthropic.RequestTooLargeError) as refused:
            await client.messages.create(model=CHAT, max_tokens=8, messages=big)  # type: ignore[arg-type]
        assert refused.value.status_code == 413
        assert refused.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]
        reply = await client.messages.create(model=CHAT, max_tokens=8, messages=ASK)  # type: ignore[arg-type]
        assert reply.content[0].type == "text"  # a small body with the token goes through


async def test_403_host_and_404_405_routes(home: Path, fake: FakeBackend) -> None:
    app = make_app(home, fake)
    async with app.router.lifespan_context(app):
        async with _http(app, "evil.example") as http:
            refused = await http.post("/v1/messages", json={"model": CHAT, "max_tokens": 8, "messages": ASK})
        assert refused.status_code == 403 and refused.json()["type"] == "error"
        assert refused.json()["error"]["type"] == "permission_error" and "evil.example" in refused.text
        async with _http(app) as http:
            unknown = await http.post("/v1/messages/batches", json={})
            assert unknown.status_code == 404 and unknown.json()["type"] == "error"
            assert unknown.json()["error"]["type"] == "not_found_error"
            method = await http.get("/v1/messages")
            assert method.status_code == 405 and method.json()["error"]["type"] == "invalid_request_error"
            assert method.json()["type"] == "error"
            elsewhere = await http.get("/v1/nothing-here")
            assert elsewhere.status_code == 404 and "type" not in elsewhere.json()  # OpenAI's shape


def test_only_openai_error_objects_are_rewritten() -> None:
    assert is_anthropic_path("/v1/messages") and is_anthropic_path("/v1/messages/count_tokens")
    assert not is_anthropic_path("/v1/messagesX") and not is_anthropic_path("/v1/chat/completions")
    reshaped = anthropic_error(429, b'{"error": {"message": "slow down", "type": "rate_limit_error"}}')
    assert reshaped == b'{"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}'
    assert anthropic_error(400, b'{"type": "error", "error": {"type": "x", "message": "y"}}') is None
    assert anthropic_error(400, b"not json") is None and anthropic_error(400, b'{"detail": 1}') is None


@pytest.mark.parametrize("stream", [False, True])
async def test_a_full_queue_is_overloaded_with_retry_after(home: Path, stream: bool) -> None:
    app = make_app(home, BusyBackend())
    async with app.router.lifespan_context(app), _http(app) as http:
        body = {"model": CHAT, "max_tokens": 8, "messages": ASK, "stream": stream}
        busy = await http.post("/v1/messages", json=body)
    assert busy.status_code == 503 and busy.headers["retry-after"] == str(RETRY_S)
    assert busy.json()["type"] == "error" and busy.json()["error"]["type"] == "overloaded_error"
    assert "already runs 4 predictions" in busy.json()["error"]["message"]
