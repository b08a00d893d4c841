"""LM Link's admin routes over the real app, with a second real app (fake engine) as the peer: peers
written, the status with the peer's loaded models, tokens never shown, errors in OpenAI's shape, and
everything refused to other machines."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from openlms.engine.fake import FakeBackend
from openlms.services.peers import LinkService
from tests.unit.server.conftest import make_app

LINK = "/api/v1/link"


@pytest.fixture
async def linked(home: Path, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """This device's app; its LinkService reaches a second app (own home, one model loaded) for any URL."""
    peer_home = tmp_path / "peer"
    peer_home.mkdir()
    (peer_home / "models").symlink_to(home / "models")
    peer = make_app(peer_home, FakeBackend())
    app = make_app(home, FakeBackend())
    async with peer.router.lifespan_context(peer), app.router.lifespan_context(app):
        peer_http = httpx.ASGITransport(app=peer)
        async with httpx.AsyncClient(transport=peer_http, base_url="http://localhost") as http:
            loaded = await http.post("/api/v1/models/load", json={"model": "acme/tiny-chat"})
            assert loaded.status_code == 200, loaded.text
        app.state.openlms.link = LinkService(app.state.openlms.settings, transport=peer_http)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield http


async def test_add_status_patch_remove(linked: httpx.AsyncClient, home: Path) -> None:
    empty = (await linked.get(f"{LINK}/status")).json()
    assert empty["peers"] == [] and empty["enabled"] is False and empty["routing"] is False

    body = {"url": "http://localhost:1234/", "token": "s3cret-value"}
    added = await linked.put(f"{LINK}/peers/desktop", json=body)
    assert added.status_code == 200, added.text
    assert added.json() == {
        "name": "desktop",
        "url": "http://localhost:1234",
        "engine": "openlms",
        "has_token": True,
        "created": True,
    }
    path = home / "openlms" / "link.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    patched = await linked.patch(
        LINK, json={"enabled": True, "device_name": "laptop", "preferred_device": "desktop"}
    )
    assert patched.json() == {"device_name": "laptop", "enabled": True, "preferred_device": "desktop"}

    status = (await linked.get(f"{LINK}/status")).json()
    assert "s3cret" not in json.dumps(status)
    assert status["device_name"] == "laptop" and status["preferred_device"] == "desktop"
    [desktop] = status["peers"]
    assert desktop["state"] == "online", desktop
    assert desktop["loaded_models"] == ["tiny-chat"] and desktop["has_token"] is True

    cleared = await linked.patch(LINK, json={"preferred_device": None})
    assert cleared.json()["preferred_device"] is None and cleared.json()["enabled"] is True

    removed = await linked.delete(f"{LINK}/peers/desktop")
    assert removed.json() == {"name": "desktop", "removed": True}
    missing = await linked.delete(f"{LINK}/peers/desktop")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "peer_not_found"
    assert "No LM Link peer named 'desktop'" in missing.json()["error"]["message"]


async def test_bad_input_is_a_400_that_says_what_to_fix(linked: httpx.AsyncClient, home: Path) -> None:
    for name, body, says in (
        ("desk", {"url": "http://me:pw@desk:1234"}, "--token"),
        ("desk", {"url": "desk:1234"}, "Invalid peer URL"),
        ("bad name", {"url": "http://desk"}, "Invalid peer name"),
        ("desk", {"url": "http://desk", "engine": "vllm"}, "engine"),
        ("desk", {}, "url"),
    ):
        response = await linked.put(f"{LINK}/peers/{name}", json=body)
        assert response.status_code == 400, (name, body, response.text)
        assert says in response.json()["error"]["message"], response.text
    for patch, says in (
        ({"device_name": "my laptop"}, "Invalid device name"),
        ({"preferred_device": "nowhere"}, "No device named 'nowhere'"),
        ({"routing": True}, "routing"),
    ):
        response = await linked.patch(LINK, json=patch)
        assert response.status_code in (400, 404), response.text
        assert says in response.json()["error"]["message"], response.text
    assert not (home / "openlms" / "link.json").exists()


async def test_a_broken_file_is_a_400_naming_it(linked: httpx.AsyncClient, home: Path) -> None:
    (home / "openlms").mkdir(exist_ok=True)
    (home / "openlms" / "link.json").write_text("{")
    response = await linked.get(f"{LINK}/status")
    assert response.status_code == 400
    assert "link.json is not a valid LM Link file" in response.json()["error"]["message"]


async def test_other_machines_are_refused(home: Path) -> None:
    app = make_app(home, FakeBackend())
    async with app.router.lifespan_context(app):
        remote = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
        async with httpx.AsyncClient(transport=remote, base_url="http://localhost") as http:
            for method, path, body in (
                ("GET", f"{LINK}/status", None),
                ("PUT", f"{LINK}/peers/x", {"url": "http://x"}),
                ("DELETE", f"{LINK}/peers/x", None),
                ("PATCH", LINK, {"enabled": True}),
            ):
                denied = await http.request(method, path, json=body)
                assert denied.status_code == 403, (method, path, denied.text)
                assert "local machine only" in denied.json()["error"]["message"]
    assert not (home / "openlms" / "link.json").exists()


async def test_the_routes_are_in_the_openapi_document(linked: httpx.AsyncClient) -> None:
    paths = (await linked.get("/openapi.json")).json()["paths"]
    assert {"get"} <= set(paths[f"{LINK}/status"]) and {"patch"} <= set(paths[LINK])
    assert {"put", "delete"} <= set(paths[f"{LINK}/peers/{{name}}"])
