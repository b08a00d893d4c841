"""`/api/v1/presets` on the real app (fake engine) with httpx: list, create, read, update, delete, import
from a client's JSON and from a URL (a local http.server), errors in the OpenAI shape, local-only."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from openlms.engine.fake import FakeBackend
from tests.unit.server.conftest import make_app

BASE = "/api/v1/presets"
TEMP = {"key": "llm.prediction.temperature", "value": 0.25}
SYSTEM = {"key": "llm.prediction.systemPrompt", "value": "Answer in French."}


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    message: str = response.json()["error"]["message"]
    assert message
    return message


async def test_create_read_update_delete(client: httpx.AsyncClient, home: Path) -> None:
    created = await client.post(BASE, json={"name": "French Tutor", "operation": {"fields": [TEMP, SYSTEM]}})
    assert created.status_code == 200, created.text
    preset = created.json()
    assert preset["identifier"] == "@local:french-tutor"
    on_disk = json.loads((home / "config-presets" / "french-tutor.preset.json").read_text())
    assert on_disk["operation"]["fields"] == [TEMP, SYSTEM] and on_disk["name"] == "French Tutor"

    listed = (await client.get(BASE)).json()["presets"]
    assert [p["identifier"] for p in listed] == ["@local:french-tutor"]
    assert (await client.get(f"{BASE}/@local:french-tutor")).json()["name"] == "French Tutor"

    updated = await client.put(
        f"{BASE}/@local:french-tutor", json={"name": "Tutor", "operation": {"fields": [TEMP]}}
    )
    assert updated.status_code == 200, updated.text
    on_disk = json.loads((home / "config-presets" / "french-tutor.preset.json").read_text())
    assert on_disk["name"] == "Tutor" and on_disk["operation"]["fields"] == [TEMP]

    deleted = await client.delete(f"{BASE}/@local:french-tutor")
    assert deleted.json() == {"identifier": "@local:french-tutor", "deleted": True}
    assert not (home / "config-presets" / "french-tutor.preset.json").exists()
    assert "No preset matching" in error_of(await client.get(f"{BASE}/@local:french-tutor"), 404)


async def test_bad_values_are_400_and_nothing_is_written(client: httpx.AsyncClient, home: Path) -> None:
    bad = {"name": "Hot", "operation": {"fields": [{"key": "llm.prediction.temperature", "value": "hot"}]}}
    assert "temperature" in error_of(await client.post(BASE, json=bad), 400)
    assert error_of(await client.post(BASE, json={"name": ""}), 400)
    assert error_of(await client.put(f"{BASE}/@local:none", json={"name": "x"}), 404)
    assert not (home / "config-presets").exists() or not list((home / "config-presets").iterdir())


async def test_import_from_json(client: httpx.AsyncClient) -> None:
    lm_studio_file = {"identifier": "@local:elsewhere", "name": "Imported", "operation": {"fields": [TEMP]}}
    imported = await client.post(f"{BASE}/import", json={"preset": lm_studio_file})
    assert imported.status_code == 200, imported.text
    assert imported.json()["identifier"] == "@local:imported"
    message = error_of(await client.post(f"{BASE}/import", json={"preset": {"fields": []}}), 400)
    assert "not an LM Studio preset" in message
    assert "either" in error_of(await client.post(f"{BASE}/import", json={}), 400)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "good.preset.json").write_text(
        json.dumps({"name": "From Web", "operation": {"fields": [SYSTEM]}})
    )
    (tmp_path / "page.html").write_text("<html>not a preset</html>")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_import_from_url(client: httpx.AsyncClient, served: str, home: Path) -> None:
    imported = await client.post(f"{BASE}/import", json={"url": f"{served}/good.preset.json"})
    assert imported.status_code == 200, imported.text
    assert imported.json()["name"] == "From Web"
    assert (home / "config-presets" / "from-web.preset.json").is_file()
    assert "not JSON" in error_of(
        await client.post(f"{BASE}/import", json={"url": f"{served}/page.html"}), 400
    )
    assert "404" in error_of(await client.post(f"{BASE}/import", json={"url": f"{served}/missing"}), 502)
    assert "http" in error_of(await client.post(f"{BASE}/import", json={"url": "file:///etc/passwd"}), 400)


async def test_remote_clients_are_refused(home: Path) -> None:
    app = make_app(home, FakeBackend(reply=lambda _: "x"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.0.0.8", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://openlms.test") as http_client:
            assert "local machine only" in error_of(await http_client.get(BASE), 403)


async def test_the_routes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths[BASE]) == {"get", "post"}
    assert set(paths[f"{BASE}/import"]) == {"post"}
    assert set(paths[f"{BASE}/{{identifier}}"]) == {"get", "put", "delete"}
    assert "404" in paths[f"{BASE}/{{identifier}}"]["get"]["responses"]


async def test_names_and_identifiers_never_reach_outside_the_folder(
    client: httpx.AsyncClient, home: Path
) -> None:
    created = await client.post(BASE, json={"name": "../../evil", "operation": {"fields": []}})
    assert created.json()["identifier"] == "@local:evil"
    assert [p.name for p in (home / "config-presets").iterdir()] == ["evil.preset.json"]
    for path in ("../../config-presets/evil.preset.json", "%2E%2E%2Fevil", "evil.preset.json"):
        assert error_of(await client.delete(f"{BASE}/{path}"), 404)
    assert (home / "config-presets" / "evil.preset.json").is_file()


async def test_every_field_the_app_writes_is_accepted(client: httpx.AsyncClient) -> None:
    """What the chat's settings sidebar saves (app/src/chat/settings/settings.ts, toFields)."""
    fields = [
        {"key": f"llm.prediction.{key}", "value": value}
        for key, value in (
            ("systemPrompt", "Be brief."),
            ("temperature", 0.2),
            ("maxPredictedTokens", {"checked": True, "value": 64}),
            ("topKSampling", 20),
            ("topPSampling", {"checked": True, "value": 0.9}),
            ("minPSampling", {"checked": True, "value": 0.05}),
            ("repeatPenalty", {"checked": True, "value": 1.1}),
            ("contextOverflowPolicy", "rollingWindow"),
            ("stopStrings", ["END"]),
            ("speculativeDecoding.draftModel", "tiny-chat"),
            (
                "structured",
                {"type": "json", "jsonSchema": {"type": "object", "properties": {"a": {"type": "string"}}}},
            ),
        )
    ]
    created = await client.post(BASE, json={"name": "Everything", "operation": {"fields": fields}})
    assert created.status_code == 200, created.text
    assert created.json()["operation"]["fields"] == fields
