"""The Developer page's server settings API (`/api/v1/app/server/settings`) on the real app (fake engine):
the running values, a live change (JIT TTL, auto-evict, JIT) applied and saved, a restart-only change
saved and flagged, invalid values a 400 naming the field, remote clients refused, and token auth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from openlms import __version__
from openlms.core.settings import Settings, settings_file_for
from openlms.core.tokens import TokenStore
from openlms.engine.fake import FakeBackend
from tests.unit.server.conftest import make_app

URL = "/api/v1/app/server/settings"


def saved(home: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(settings_file_for(home).read_text())
    return data


async def test_get_answers_the_running_values_and_status(client: httpx.AsyncClient) -> None:
    response = await client.get(URL)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["settings"]["port"] == 1234 and body["settings"]["host"] == "127.0.0.1"
    assert body["settings"]["jit"] is True and body["settings"]["require_auth"] is False
    assert body["network"] is False and body["restart_required"] == {}
    assert set(body["live"]) == {"api_enabled", "jit", "jit_ttl_seconds", "auto_evict"}
    assert "lms server stop" in body["restart_command"]
    assert body["status"]["version"] == __version__ and body["status"]["uptime_seconds"] >= 0
    assert body["status"]["loaded_models"] == []


async def test_a_live_change_applies_at_once_and_is_saved(client: httpx.AsyncClient, home: Path) -> None:
    response = await client.patch(URL, json={"jit_ttl_seconds": 90, "auto_evict": False, "jit": False})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["settings"]["jit_ttl_seconds"] == 90 and body["settings"]["auto_evict"] is False
    assert body["restart_required"] == {}
    assert saved(home)["jit_ttl_seconds"] == 90 and saved(home)["auto_evict"] is False
    assert (await client.get(URL)).json()["settings"]["jit_ttl_seconds"] == 90
    # JIT off is in force: a request for a model that is not loaded is refused
    chat = await client.post(
        "/v1/chat/completions", json={"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert chat.status_code == 404 and "load" in chat.json()["error"]["message"].lower()


async def test_a_restart_change_is_saved_and_flagged(client: httpx.AsyncClient, home: Path) -> None:
    settings_file_for(home).parent.mkdir(parents=True, exist_ok=True)
    settings_file_for(home).write_text(json.dumps({"log_level": "debug"}))
    response = await client.patch(URL, json={"port": 5678, "host": "0.0.0.0", "cors": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["settings"]["port"] == 1234 and body["settings"]["cors"] is False  # still running as it was
    assert body["restart_required"] == {"port": 5678, "host": "0.0.0.0", "cors": True}
    assert saved(home) == {"log_level": "debug", "port": 5678, "host": "0.0.0.0", "cors": True}
    assert Settings(home=home).port == 5678  # what `lms server start` will read


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"jit_ttl_seconds": -1}, "jit_ttl_seconds"),
        ({"port": 70000}, "port"),
        ({"port": "eighty"}, None),
        ({"host": "my laptop"}, "host"),
        ({"log_level": "debug"}, None),
        ({"jit": "maybe"}, None),
    ],
)
async def test_an_invalid_value_is_a_400(
    client: httpx.AsyncClient, home: Path, change: dict[str, Any], param: str | None
) -> None:
    response = await client.patch(URL, json=change)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if param:
        assert error["param"] == param and param in error["message"]
    assert not settings_file_for(home).exists()  # nothing saved


async def test_remote_clients_may_not_read_or_change(home: Path, fake: FakeBackend) -> None:
    app = make_app(home, fake, allowed_hosts=["*"])
    transport = httpx.ASGITransport(app=app, client=("192.168.1.20", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        for response in (await http.get(URL), await http.patch(URL, json={"jit": False})):
            assert response.status_code == 403
            assert "local machine" in response.json()["error"]["message"]
    assert not settings_file_for(home).exists()


async def test_with_auth_on_the_app_opens_and_the_api_needs_a_token(home: Path, fake: FakeBackend) -> None:
    app = make_app(home, fake, require_auth=True)
    token = TokenStore(Settings(home=home).tokens_file).create("app").token
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://localhost") as http,
    ):
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/assets/missing.js")).status_code == 404  # open, and not there
        for path in (URL, "/api/v1/models", "/v1/models", "/api/v1/app/conversations"):
            refused = await http.get(path)
            assert refused.status_code == 401, path
            assert "token" in refused.json()["error"]["message"]
        wrong = await http.get(URL, headers={"Authorization": "Bearer sk-lm-nope:nope"})
        assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]["message"]
        good = await http.get(URL, headers={"Authorization": f"Bearer {token}"})
        assert good.status_code == 200 and good.json()["settings"]["require_auth"] is True


async def test_live_changes_reach_the_instance_manager(home: Path, fake: FakeBackend) -> None:
    app = make_app(home, fake)
    manager = app.state.openlms.models.manager
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://localhost") as http,
    ):
        assert manager.auto_evict is True and manager.jit_ttl_seconds == 3600
        response = await http.patch(URL, json={"auto_evict": False, "jit_ttl_seconds": 0})
        assert response.status_code == 200, response.text
        assert manager.auto_evict is False and manager.jit_ttl_seconds is None  # 0: never unloaded
        await http.patch(URL, json={"jit_ttl_seconds": 45})
        assert manager.jit_ttl_seconds == 45
