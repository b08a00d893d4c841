"""The app's Program panel routes: mcp.json as text (read, replaced atomically, a bad edit a 400 naming
its line), install links previewed and installed, a tool called for the user (no consent setting needed),
all refused to other machines."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from openlms.core.mcp_deeplink import make_deeplink
from openlms.engine.fake import FakeBackend
from tests.support.mcp.helpers import stdio_config, write_mcp_json
from tests.unit.server.conftest import make_app

CONFIG = "/api/v1/mcp/config"
LINK = "/api/v1/mcp/deeplink"


async def test_the_file_is_read_and_replaced_as_text(client: httpx.AsyncClient, home: Path) -> None:
    empty = (await client.get(CONFIG)).json()
    assert empty == {"path": str(home / "mcp.json"), "text": "", "exists": False, "max_tool_rounds": 8}
    text = "{\n  // not JSON\n}"
    bad = await client.put(CONFIG, json={"text": text})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "mcp_config_invalid"
    assert "line 2" in bad.json()["error"]["message"]
    assert not (home / "mcp.json").exists()
    wrong = '{\n  "mcpServers": {\n    "a": {"command": "x"},\n    "b": {"args": []}\n  }\n}\n'
    refused = (await client.put(CONFIG, json={"text": wrong})).json()["error"]
    assert "line 4" in refused["message"] and '"command"' in refused["message"]
    good = (
        '{\n  "mcpServers": {"b": {"url": "http://127.0.0.1:9/mcp"}, "a": {"command": "x"}},\n  "x": 1\n}\n'
    )
    saved = await client.put(CONFIG, json={"text": good})
    assert saved.status_code == 200, saved.text
    assert saved.json()["servers"] == ["b", "a"]
    assert (home / "mcp.json").read_text() == good  # kept as the user wrote it
    assert (await client.get(CONFIG)).json()["text"] == good


async def test_a_link_is_previewed_without_secrets_then_installed(
    client: httpx.AsyncClient, home: Path
) -> None:
    entry = {"command": "uvx", "args": ["mcp-server-time"], "env": {"API_KEY": "s3cret"}}
    link = make_deeplink("time", entry)
    preview = await client.post(LINK, json={"link": link})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["name"] == "time" and body["type"] == "stdio" and body["command"] == "uvx"
    assert body["env_keys"] == ["API_KEY"] and body["installed"] is False and body["replaces"] is False
    assert "s3cret" not in preview.text
    assert not (home / "mcp.json").exists()
    installed = (await client.post(LINK, json={"link": link, "install": True})).json()
    assert installed["installed"] is True
    assert json.loads((home / "mcp.json").read_text())["mcpServers"]["time"] == entry
    assert (await client.post(LINK, json={"link": link})).json()["replaces"] is True
    bad = await client.post(LINK, json={"link": "lmstudio://add_mcp?name=x"})
    assert bad.status_code == 400 and "'config'" in bad.json()["error"]["message"]


async def test_a_tool_is_called_for_the_user(client: httpx.AsyncClient, home: Path) -> None:
    write_mcp_json(home, {"test": stdio_config()})
    url = "/api/v1/mcp/servers/test/tools/add/call"
    result = await client.post(url, json={"arguments": {"a": 2, "b": 40}})
    assert result.status_code == 200, result.text
    assert result.json() == {"ok": True, "output": "42", "error": None}
    failed = (await client.post("/api/v1/mcp/servers/test/tools/fail/call", json={})).json()
    assert failed["ok"] is False and failed["error"]
    missing = (await client.post("/api/v1/mcp/servers/nope/tools/add/call", json={})).json()
    assert missing["ok"] is False and "nope" in missing["output"]


async def test_other_machines_are_refused(home: Path) -> None:
    app = make_app(home, FakeBackend())
    async with app.router.lifespan_context(app):
        remote = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
        async with httpx.AsyncClient(transport=remote, base_url="http://localhost") as http:
            for method, path, body in (
                ("GET", CONFIG, None),
                ("PUT", CONFIG, {"text": "{}"}),
                ("POST", LINK, {"link": make_deeplink("t", {"command": "x"}), "install": True}),
                ("POST", "/api/v1/mcp/servers/t/tools/x/call", {}),
            ):
                denied = await http.request(method, path, json=body)
                assert denied.status_code == 403, (path, denied.text)
    assert not (home / "mcp.json").exists()


async def test_saving_the_file_stops_a_server_whose_entry_changed(
    client: httpx.AsyncClient, home: Path
) -> None:
    write_mcp_json(home, {"test": stdio_config()})
    called = await client.post(
        "/api/v1/mcp/servers/test/tools/add/call", json={"arguments": {"a": 1, "b": 1}}
    )
    assert called.json()["ok"] is True
    assert (await client.get("/api/v1/mcp/servers")).json()["servers"][0]["status"] == "running"
    changed = {"mcpServers": {"test": stdio_config({"X": "1"})}}
    saved = await client.put(CONFIG, json={"text": json.dumps(changed)})
    assert saved.status_code == 200, saved.text
    assert (await client.get("/api/v1/mcp/servers")).json()["servers"][0]["status"] == "stopped"


async def test_one_servers_tools_are_listed_without_starting_the_others(
    client: httpx.AsyncClient, home: Path
) -> None:
    write_mcp_json(home, {"test": stdio_config(), "other": stdio_config()})
    listed = await client.get("/api/v1/mcp/servers/test/tools")
    assert listed.status_code == 200, listed.text
    assert listed.json()["name"] == "test"
    assert {"add", "echo"} <= {tool["name"] for tool in listed.json()["tools"]}
    states = {s["name"]: s["status"] for s in (await client.get("/api/v1/mcp/servers")).json()["servers"]}
    assert states == {"test": "running", "other": "stopped"}
    missing = await client.get("/api/v1/mcp/servers/nope/tools")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "mcp_server_not_found"
