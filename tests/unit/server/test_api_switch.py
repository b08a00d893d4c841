"""The API switch (`api_enabled`, `server/guard/switch.py`) on the real app over the fake engine: switched
off through the settings API, other programs get a 503 in each API's shape (OpenAI, Anthropic, the SDK's
handshake), the app and `lms` keep working, the app's own routes stay open, on again works, and the switch
is saved for the next start."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from openlms.core.settings import Settings, settings_file_for
from openlms.core.tokens import TokenStore
from openlms.engine.fake import FakeBackend
from openlms.server.guard.switch import SWITCHED_OFF
from tests.unit.server.conftest import make_app

URL = "/api/v1/app/server/settings"
APP_HEADERS = {"Sec-Fetch-Site": "same-origin"}  # what the browser sends for the app's own requests
CHAT = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
API_GETS = ("/v1/models", "/api/v0/models", "/api/v1/models")


@pytest.fixture
async def off_app(home: Path, fake: FakeBackend) -> AsyncIterator[FastAPI]:
    app = make_app(home, fake)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def http(off_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=off_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        response = await client.patch(URL, json={"api_enabled": False})
        assert response.status_code == 200, response.text
        assert response.json()["settings"]["api_enabled"] is False
        yield client


def assert_switched_off(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["message"] == SWITCHED_OFF and error["code"] == "server_switched_off"
    assert error["type"] == "server_error"


async def test_other_programs_get_a_503_on_every_api(http: httpx.AsyncClient) -> None:
    for path in API_GETS:
        assert_switched_off(await http.get(path))
    assert_switched_off(await http.post("/v1/chat/completions", json=CHAT))
    assert_switched_off(await http.post("/api/v1/chat", json={"model": "tiny-chat", "input": "hi"}))
    assert_switched_off(await http.get("/v1/models", headers={"Sec-Fetch-Site": "cross-site"}))
    assert_switched_off(await http.get("/v1/models", headers={"X-OpenLMS-Client": "curl"}))


async def test_anthropic_gets_its_own_error_shape(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/messages", json={**CHAT, "max_tokens": 4})
    assert response.status_code == 503
    body = response.json()
    assert body["type"] == "error" and body["error"]["message"] == SWITCHED_OFF


async def test_the_openai_and_anthropic_clients_report_the_message(
    http: httpx.AsyncClient, off_app: FastAPI
) -> None:
    oai = openai.AsyncOpenAI(base_url="http://localhost/v1", api_key="x", http_client=http, max_retries=0)
    with pytest.raises(openai.APIStatusError) as failed:
        await oai.models.list()
    assert failed.value.status_code == 503 and SWITCHED_OFF in str(failed.value)
    transport = httpx2.ASGITransport(app=off_app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://localhost") as http2:
        ant = anthropic.AsyncAnthropic(
            base_url="http://localhost", api_key="x", http_client=http2, max_retries=0
        )
        with pytest.raises(anthropic.APIStatusError) as refused:
            await ant.messages.create(
                model="tiny-chat", max_tokens=4, messages=[{"role": "user", "content": "hi"}]
            )
    assert refused.value.status_code == 503 and SWITCHED_OFF in str(refused.value)


async def test_the_app_and_lms_keep_working(http: httpx.AsyncClient) -> None:
    for headers in (APP_HEADERS, {"X-OpenLMS-Client": "app"}, {"X-OpenLMS-Client": "lms"}):
        for path in API_GETS:
            response = await http.get(path, headers=headers)
            assert response.status_code == 200, (path, headers, response.text)
    chat = await http.post("/v1/chat/completions", json=CHAT, headers=APP_HEADERS)
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"]


async def test_the_openai_client_does_not_retry_the_refusal(off_app: FastAPI) -> None:
    sent: list[str] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request.url.path)

    transport = httpx.ASGITransport(app=off_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://localhost", event_hooks={"request": [count]}
    ) as http:
        assert (await http.patch(URL, json={"api_enabled": False})).status_code == 200
        oai = openai.AsyncOpenAI(base_url="http://localhost/v1", api_key="x", http_client=http)  # retries: 2
        with pytest.raises(openai.APIStatusError) as failed:
            await oai.models.list()
    assert failed.value.response.headers["x-should-retry"] == "false"
    assert sent == [URL, "/v1/models"]  # asked once


async def test_the_page_greeting_and_the_apps_own_routes_stay_open(http: httpx.AsyncClient) -> None:
    assert (await http.get("/lmstudio-greeting")).json() == {"lmstudio": True}
    assert (await http.get("/")).status_code == 200
    assert (await http.get("/assets/missing.js")).status_code == 404  # served (and not there), not a 503
    assert (await http.get("/api/v1/app/conversations")).status_code == 200
    assert (await http.get(URL)).json()["settings"]["api_enabled"] is False


async def test_switched_on_again_the_api_answers_everyone(http: httpx.AsyncClient) -> None:
    response = await http.patch(URL, json={"api_enabled": True})
    assert response.status_code == 200 and response.json()["settings"]["api_enabled"] is True
    for path in API_GETS:
        assert (await http.get(path)).status_code == 200, path


async def test_the_switch_is_saved_for_the_next_start(
    http: httpx.AsyncClient, home: Path, fake: FakeBackend
) -> None:
    saved: dict[str, Any] = json.loads(settings_file_for(home).read_text())
    assert saved["api_enabled"] is False and Settings(home=home).api_enabled is False
    restarted = make_app(home, fake, api_enabled=Settings(home=home).api_enabled)
    async with (
        restarted.router.lifespan_context(restarted),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=restarted), base_url="http://localhost") as again,
    ):
        assert_switched_off(await again.get("/v1/models"))
        assert (await again.get("/v1/models", headers=APP_HEADERS)).status_code == 200


@pytest.fixture
def ws_client(home: Path, fake: FakeBackend) -> Iterator[TestClient]:
    with TestClient(make_app(home, fake, api_enabled=False)) as client:
        yield client


AUTH = {"authVersion": 1, "clientIdentifier": "switch-test", "clientPasskey": "made-up"}


@pytest.mark.parametrize("namespace", ["llm", "system", "repository"])
def test_the_sdk_handshake_is_refused_with_the_message(ws_client: TestClient, namespace: str) -> None:
    with ws_client.websocket_connect(f"/{namespace}") as ws:
        ws.send_json(AUTH)
        reply: dict[str, Any] = ws.receive_json()
    assert reply["success"] is False and reply["error"]["title"] == SWITCHED_OFF


def test_lms_websockets_pass(ws_client: TestClient) -> None:
    with ws_client.websocket_connect("/system", headers={"X-OpenLMS-Client": "lms"}) as ws:
        ws.send_json(AUTH)
        assert ws.receive_json() == {"success": True}


async def test_with_tokens_required_a_caller_without_one_gets_the_401_first(
    home: Path, fake: FakeBackend
) -> None:
    app = make_app(home, fake, require_auth=True, api_enabled=False)
    token = TokenStore(Settings(home=home).tokens_file).create("switch").token
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as http,
    ):
        assert (await http.get("/v1/models")).status_code == 401
        assert_switched_off(await http.get("/v1/models", headers={"Authorization": f"Bearer {token}"}))
        app_call = await http.get("/v1/models", headers={**APP_HEADERS, "Authorization": f"Bearer {token}"})
        assert app_call.status_code == 200
