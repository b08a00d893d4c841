"""Host allowlist and browser Origin checks on every API prefix, over the real app and the fake engine."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from openlms.core.settings import Settings
from openlms.engine.fake import FakeBackend
from openlms.server.guard.policy import HostPolicy, OriginPolicy, canonical_origin, cors_origins
from tests.unit.server.conftest import make_app

ROUTES = ["/v1/models", "/api/v0/models", "/api/v1/models", "/lmstudio-greeting"]
EVIL = "http://evil.example"


@asynccontextmanager
async def serve(home: Path, fake: FakeBackend, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings.setdefault("allowed_hosts", [])
    app = make_app(home, fake, **settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:1234") as http:
            yield http


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["type"] == "permission_error" and error["code"] == code


@pytest.mark.parametrize("route", ROUTES)
async def test_a_rebinding_host_is_refused_on_every_prefix(home: Path, fake: FakeBackend, route: str) -> None:
    async with serve(home, fake) as http:
        refused = await http.get(route, headers={"Host": "evil.example:1234"})
        local = [
            await http.get(route, headers={"Host": h}) for h in ("localhost:1234", "127.0.0.1", "[::1]:9")
        ]
    assert_refused(refused, "host_not_allowed")
    assert "allowed_hosts" in refused.json()["error"]["message"]
    assert [r.status_code for r in local] == [200, 200, 200]


async def test_allowed_hosts_and_require_auth_widen_the_hosts(home: Path, fake: FakeBackend) -> None:
    async with serve(home, fake, allowed_hosts=["MyBox.lan"]) as http:
        listed = await http.get("/v1/models", headers={"Host": "mybox.lan:1234"})
        other = await http.get("/v1/models", headers={"Host": "otherbox.lan:1234"})
    assert listed.status_code == 200
    assert_refused(other, "host_not_allowed")
    async with serve(home, fake, require_auth=True) as http:
        greeting = await http.get("/lmstudio-greeting", headers={"Host": "anything.example"})
    assert greeting.status_code == 200  # the Host check leaves it to the token (greeting stays open)


def test_host_policy_on_a_network_bind() -> None:
    network = HostPolicy.from_settings(Settings(host="0.0.0.0"))
    loopback = HostPolicy.from_settings(Settings(host="127.0.0.1"))
    hostname = socket.gethostname()
    assert network.allows(f"{hostname}:1234", None) and not loopback.allows(f"{hostname}:1234", None)
    assert network.allows("192.168.1.20:1234", "192.168.1.20")  # the address the client reached
    assert not network.allows("192.168.1.99:1234", "192.168.1.20")
    assert not network.allows("evil.example:1234", "192.168.1.20")
    assert loopback.allows(None, None)  # no Host header (HTTP/1.0): not a browser
    assert loopback.allows("127.0.0.2:80", None) and loopback.allows("LOCALHOST.:1", None)
    assert not loopback.allows("localhost.evil.example", None)


async def test_a_request_without_host_header_passes(home: Path, fake: FakeBackend) -> None:
    app = make_app(home, fake, allowed_hosts=[])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.0", "method": "GET",
             "scheme": "http", "path": "/lmstudio-greeting", "raw_path": b"/lmstudio-greeting",
             "query_string": b"", "root_path": "", "headers": [], "client": ("127.0.0.1", 1),
             "server": ("127.0.0.1", 1234)}  # fmt: skip
    await app(scope, receive, send)
    assert sent[0]["status"] == 200


@pytest.mark.parametrize("route", ROUTES)
async def test_a_foreign_browser_origin_is_refused_on_every_prefix(
    home: Path, fake: FakeBackend, route: str
) -> None:
    async with serve(home, fake) as http:
        evil = await http.get(route, headers={"Origin": EVIL})
        null = await http.get(route, headers={"Origin": "null"})
        other_port = await http.get(route, headers={"Origin": "http://localhost:5173"})
        own = await http.get(route, headers={"Origin": "http://localhost:1234"})
        script = await http.get(route)
    for response in (evil, null, other_port):
        assert_refused(response, "origin_not_allowed")
    assert own.status_code == 200 and script.status_code == 200
    assert "access-control-allow-origin" not in own.headers  # no CORS without cors/allowed_origins


async def test_csrf_with_a_text_plain_body_is_refused(home: Path, fake: FakeBackend) -> None:
    body = b'{"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}]}'
    headers = {"content-type": "text/plain", "Origin": EVIL}
    async with serve(home, fake) as http:
        cross_site = await http.post("/v1/chat/completions", content=body, headers=headers)
        no_origin = await http.post(
            "/v1/chat/completions", content=body, headers={"content-type": "text/plain"}
        )
    assert_refused(cross_site, "origin_not_allowed")
    assert no_origin.status_code == 400  # not JSON: never parsed as a request (as before)
    assert fake.requests == []


async def test_allowed_origins_pass_with_cors_headers(home: Path, fake: FakeBackend) -> None:
    async with serve(home, fake, allowed_origins=["http://localhost:5173/"]) as http:
        listed = await http.get("/v1/models", headers={"Origin": "http://localhost:5173"})
        preflight = await http.options(
            "/v1/chat/completions",
            headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"},
        )
        evil = await http.options(
            "/v1/chat/completions", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"}
        )
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert_refused(evil, "origin_not_allowed")


async def test_cors_allows_any_origin(home: Path, fake: FakeBackend) -> None:
    async with serve(home, fake, cors=True) as http:
        evil = await http.get("/api/v0/models", headers={"Origin": EVIL})
        null = await http.get("/api/v0/models", headers={"Origin": "null"})
    assert evil.status_code == 200 and evil.headers["access-control-allow-origin"] == "*"
    assert null.status_code == 200


def test_origin_spelling() -> None:
    assert canonical_origin("HTTP://LocalHost:80/") == "http://localhost"
    assert canonical_origin("https://[::1]:8443") == "https://[::1]:8443"
    assert canonical_origin("null") is None and canonical_origin("http://x:99999") is None
    assert cors_origins(Settings(allowed_origins=["http://a.test:8080/", "null"])) == [
        "http://a.test:8080",
        "null",
    ]
    policy = OriginPolicy.from_settings(Settings(allowed_origins=["null"]))
    assert policy.allows("null", "localhost", "http") and not policy.allows(EVIL, "localhost", "http")
    own = OriginPolicy.from_settings(Settings())
    assert own.allows("http://127.0.0.1:1234", "127.0.0.1:1234", "ws")  # a websocket from the own page
    assert not own.allows("https://127.0.0.1:1234", "127.0.0.1:1234", "http")  # another scheme
    assert not own.allows("http://localhost", None, "http")


async def test_loopback_routes_refuse_a_rebinding_host_even_when_allowed(
    home: Path, fake: FakeBackend
) -> None:
    body = {"path": str(home / "missing.gguf")}
    async with serve(home, fake, allowed_hosts=["mybox.lan"]) as http:
        rebound = await http.post("/api/v1/models/import", json=body, headers={"Host": "mybox.lan:1234"})
        local = await http.post("/api/v1/models/import", json=body)
    assert_refused(rebound, "permission_denied")
    assert "local machine only" in rebound.json()["error"]["message"]
    assert local.status_code in (400, 404) and "local machine" not in local.text  # the file is missing


def test_a_dual_stack_bind_sees_ipv4_clients_as_mapped_addresses() -> None:
    network = HostPolicy.from_settings(Settings(host="::"))
    assert network.allows("192.168.1.20:1234", "::ffff:192.168.1.20")
    assert network.allows("[fe80::1]:1234", "fe80::1")
