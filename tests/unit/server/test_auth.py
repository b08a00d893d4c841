"""Require Authentication: every HTTP route and SDK websocket needs a live token; the greeting stays open."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from openlms.core.settings import Settings
from openlms.core.tokens import CreatedToken, TokenStore, local_secret_file, split_token
from openlms.engine.fake import FakeBackend
from openlms.server.guard.auth import warn_if_exposed
from tests.unit.server.conftest import make_app

ROUTES = [
    ("GET", "/v1/models", None),
    (
        "POST",
        "/v1/chat/completions",
        {"model": "acme/tiny-chat", "messages": [{"role": "user", "content": "hi"}]},
    ),
    ("POST", "/v1/completions", {"model": "acme/tiny-chat", "prompt": "hi"}),
    ("POST", "/v1/embeddings", {"model": "acme/tiny-embed", "input": "hi"}),
    ("GET", "/api/v0/models", None),
    ("GET", "/api/v1/models", None),
    ("POST", "/api/v1/models/load", {"model": "acme/tiny-chat"}),
    ("GET", "/api/v1/logs/stream", None),
    ("GET", "/openapi.json", None),
    ("GET", "/no/such/route", None),
]


@pytest.fixture
def token(home: Path) -> CreatedToken:
    return TokenStore(Settings(home=home).tokens_file).create("tests")


@pytest.fixture
def app(home: Path, fake: FakeBackend) -> FastAPI:
    return make_app(home, fake, require_auth=True)


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://openlms.test") as client:
            yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response: httpx.Response, *, invalid: bool) -> None:
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_api_key"
    assert ("not valid" in error["message"]) is invalid
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_route_refuses_a_request_without_a_token(
    http: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    assert_401(await http.request(method, path, json=body), invalid=False)
    assert_401(await http.request(method, path, json=body, headers=bearer("sk-lm-nope")), invalid=True)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES[:7])
async def test_every_route_answers_with_a_token(
    http: httpx.AsyncClient, token: CreatedToken, method: str, path: str, body: Any
) -> None:
    response = await http.request(method, path, json=body, headers=bearer(token.token))
    assert response.status_code == 200, response.text


async def test_x_api_key_and_basic_user_info_are_accepted(
    http: httpx.AsyncClient, token: CreatedToken
) -> None:
    assert (await http.get("/api/v1/models", headers={"x-api-key": token.token})).status_code == 200
    basic = base64.b64encode(token.token.encode()).decode()
    assert (await http.get("/api/v1/models", headers={"Authorization": f"Basic {basic}"})).status_code == 200
    # httpx turns a URL's user info into Basic auth, as the lmstudio SDK's websocket client does
    user, secret = token.token.split(":")
    url = f"http://{user}:{secret}@openlms.test/v1/models"
    assert (await http.get(url)).status_code == 200
    garbage = {"Authorization": "Basic !!!"}
    assert_401(await http.get("/v1/models", headers=garbage), invalid=False)


async def test_greeting_and_cors_preflight_stay_open(http: httpx.AsyncClient) -> None:
    greeting = await http.get("/lmstudio-greeting")
    assert greeting.status_code == 200 and greeting.json() == {"lmstudio": True}
    preflight = await http.options(
        "/v1/chat/completions",
        headers={"Origin": "http://openlms.test", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code != 401
    assert_401(await http.options("/v1/chat/completions"), invalid=False)  # not a preflight


async def test_revoked_and_expired_tokens_are_refused_on_a_running_server(
    http: httpx.AsyncClient, home: Path, token: CreatedToken
) -> None:
    store = TokenStore(Settings(home=home).tokens_file)
    assert (await http.get("/v1/models", headers=bearer(token.token))).status_code == 200
    store.revoke("tests")
    assert_401(await http.get("/v1/models", headers=bearer(token.token)), invalid=True)
    old = store.create("old", expires_in=timedelta(hours=1), now=datetime.now(UTC) - timedelta(hours=2))
    assert_401(await http.get("/v1/models", headers=bearer(old.token)), invalid=True)
    later = store.create("later")  # created while the server runs
    assert (await http.get("/v1/models", headers=bearer(later.token))).status_code == 200


async def test_the_local_cli_secret_is_accepted_from_loopback_only(app: FastAPI, home: Path) -> None:
    secret = local_secret_file(home).read_text().strip()
    async with app.router.lifespan_context(app):
        for peer, status in ((("127.0.0.1", 5000), 200), (("10.1.2.3", 5000), 401)):
            transport = httpx.ASGITransport(app=app, client=peer)
            async with httpx.AsyncClient(transport=transport, base_url="http://openlms.test") as client:
                response = await client.get("/api/v1/models", headers=bearer(secret))
                assert response.status_code == status


async def test_the_openai_client_with_and_without_a_token(
    http: httpx.AsyncClient, token: CreatedToken
) -> None:
    base = "http://openlms.test/v1"
    good = openai.AsyncOpenAI(base_url=base, api_key=token.token, http_client=http)
    reply = await good.chat.completions.create(
        model="acme/tiny-chat", messages=[{"role": "user", "content": "Capital of France?"}]
    )
    assert reply.choices[0].message.content == "Paris is the capital of France."
    bad = openai.AsyncOpenAI(base_url=base, api_key="lm-studio", http_client=http, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        await bad.models.list()
    assert caught.value.code == "invalid_api_key"


async def test_without_require_auth_no_token_is_needed(home: Path, fake: FakeBackend) -> None:
    app = make_app(home, fake)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://openlms.test") as client:
            assert (await client.get("/v1/models")).status_code == 200
    assert not local_secret_file(home).exists()


# -- the SDK's websockets ---------------------------------------------------------------------------


@pytest.fixture
def sdk(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def handshake(
    client: TestClient, identifier: str, passkey: str, headers: dict[str, str] | None = None
) -> Any:
    with client.websocket_connect("/system", headers=dict(headers or {})) as ws:
        ws.send_json({"authVersion": 1, "clientIdentifier": identifier, "clientPasskey": passkey})
        reply = ws.receive_json()
        if reply.get("success"):
            ws.send_json({"type": "rpcCall", "endpoint": "listDownloadedModels", "callId": 0})
            listed = ws.receive_json()
            assert listed["type"] == "rpcResult" and listed["result"], listed
        if not reply["success"]:
            assert reply["error"]["title"] == reply["error"]["rootTitle"]
            return {"success": False, "error": reply["error"]["title"]}
        return reply


def test_sdk_handshake_needs_a_token(sdk: TestClient, token: CreatedToken) -> None:
    reply = handshake(sdk, "guest:6f1c", "d2a7")
    assert reply["success"] is False
    assert "requires an API token" in reply["error"] and "api_token" in reply["error"]
    token_id, secret = split_token(token.token) or ("", "")
    assert handshake(sdk, "guest:6f1c", secret)["success"] is False


def test_sdk_handshake_accepts_the_token_split_as_lmstudio_16_sends_it(
    sdk: TestClient, token: CreatedToken
) -> None:
    token_id, secret = split_token(token.token) or ("", "")
    assert handshake(sdk, token_id, secret) == {"success": True}
    assert handshake(sdk, f"sk-lm-{token_id}", secret) == {"success": True}
    assert handshake(sdk, "any-client", token.token) == {"success": True}
    wrong = handshake(sdk, token_id, "x" * 20)
    assert wrong["success"] is False


def test_sdk_upgrade_headers_carry_the_token(sdk: TestClient, token: CreatedToken) -> None:
    basic = base64.b64encode(token.token.encode()).decode()
    assert handshake(sdk, "uuid-1", "uuid-2", {"Authorization": f"Basic {basic}"}) == {"success": True}
    assert handshake(sdk, "uuid-3", "uuid-4", bearer(token.token)) == {"success": True}
    refused = handshake(sdk, "uuid-5", "uuid-6", bearer("sk-lm-AAAAAAAA:" + "b" * 20))
    assert refused["success"] is False and "not valid" in refused["error"]


def test_sdk_revoked_token_is_refused(sdk: TestClient, home: Path, token: CreatedToken) -> None:
    token_id, secret = split_token(token.token) or ("", "")
    TokenStore(Settings(home=home).tokens_file).revoke(token_id)
    assert handshake(sdk, token_id, secret)["success"] is False


def test_a_network_bind_without_auth_is_warned_about(tmp_path: Path) -> None:
    exposed = warn_if_exposed(Settings(home=tmp_path, host="0.0.0.0"))
    assert exposed is not None and "0.0.0.0" in exposed and "--require-auth" in exposed
    assert warn_if_exposed(Settings(home=tmp_path, host="0.0.0.0", require_auth=True)) is None
    assert warn_if_exposed(Settings(home=tmp_path, host="127.0.0.1")) is None
    assert warn_if_exposed(Settings(home=tmp_path, host="::1")) is None


async def test_a_browser_app_allowed_by_cors_can_read_a_401(home: Path, fake: FakeBackend) -> None:
    """CORS wraps the token check: without its headers a browser would hide the 401's message."""
    app = make_app(home, fake, require_auth=True, cors=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:1234") as client:
            response = await client.get("/v1/models", headers={"Origin": "http://localhost:5173"})
    assert_401(response, invalid=False)
    assert response.headers["access-control-allow-origin"] in ("*", "http://localhost:5173")
