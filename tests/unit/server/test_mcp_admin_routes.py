"""The MCP admin routes over the real app: mcp.json written, listed and removed; errors in OpenAI's shape;
writes refused to other machines and to foreign browser pages."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from openlms.engine.fake import FakeBackend
from tests.unit.server.conftest import make_app

SERVERS = "/api/v1/mcp/servers"
TIME = {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"], "env": {"TZ": "UTC"}}


async def test_put_list_replace_delete(client: httpx.AsyncClient, home: Path) -> None:
    created = await client.put(f"{SERVERS}/time", json=TIME)
    assert created.status_code == 200, created.text
    assert created.json() == {
        "name": "time",
        "type": "stdio",
        "created": True,
        "path": str(home / "mcp.json"),
    }
    assert json.loads((home / "mcp.json").read_text()) == {"mcpServers": {"time": TIME}}

    remote = {
        "url": "https://user:secret@example.com:8443/mcp?token=abc",
        "headers": {"Authorization": "B x"},
    }
    assert (await client.put(f"{SERVERS}/hf", json=remote)).json()["created"] is True
    listed = (await client.get(SERVERS)).json()
    assert listed["path"] == str(home / "mcp.json")
    by_name = {server["name"]: server for server in listed["servers"]}
    assert list(by_name) == ["time", "hf"]
    assert by_name["time"]["type"] == "stdio" and by_name["time"]["command"] == "mcp-server-time"
    assert by_name["time"]["status"] == "stopped" and by_name["time"]["tools"] is None
    assert by_name["hf"]["url"] == "https://example.com:8443/mcp"  # no credentials, no query
    assert "secret" not in json.dumps(listed) and "B x" not in json.dumps(listed)

    replaced = await client.put(f"{SERVERS}/time", json={"url": "http://127.0.0.1:9/sse"})
    assert replaced.json()["created"] is False and replaced.json()["type"] == "sse"

    removed = await client.delete(f"{SERVERS}/time")
    assert removed.status_code == 200, removed.text
    assert removed.json()["removed"] is True
    assert list(json.loads((home / "mcp.json").read_text())["mcpServers"]) == ["hf"]
    missing = await client.delete(f"{SERVERS}/time")
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert (
        error["code"] == "mcp_server_not_found" and "'time'" in error["message"] and "hf" in error["message"]
    )


async def test_no_file_lists_nothing(client: httpx.AsyncClient, home: Path) -> None:
    listed = await client.get(SERVERS)
    assert listed.status_code == 200 and listed.json()["servers"] == []
    assert not (home / "mcp.json").exists()


async def test_the_list_says_whether_requests_may_call_the_servers(
    client: httpx.AsyncClient, home: Path
) -> None:
    assert (await client.get(SERVERS)).json()["calls_allowed"] is False  # off by default, as in LM Studio
    app = make_app(home, FakeBackend(), mcp_allow_json_servers=True)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            assert (await http.get(SERVERS)).json()["calls_allowed"] is True


async def test_a_bad_entry_or_name_is_a_400_that_says_what_to_fix(
    client: httpx.AsyncClient, home: Path
) -> None:
    for name, body, says in (
        ("t", {"args": ["x"]}, 'needs "command"'),
        ("t", {"command": "x", "url": "http://a"}, "both"),
        ("t", {"command": "x", "args": None}, '"args"'),
        ("t", {"url": "ftp://example.com"}, '"url"'),
        ("t", ["not", "an", "object"], ""),
        (" padded", {"command": "x"}, "name"),
    ):
        response = await client.put(f"{SERVERS}/{name}", json=body)
        assert response.status_code == 400, (name, body, response.text)
        assert says in response.json()["error"]["message"]
    assert not (home / "mcp.json").exists()


async def test_a_malformed_file_is_a_400_naming_its_line(client: httpx.AsyncClient, home: Path) -> None:
    broken = '{\n  "mcpServers": {\n    "time": {"command": "x"},\n    "oops": 42\n  }\n}\n'
    (home / "mcp.json").write_text(broken)
    for response in (
        await client.get(SERVERS),
        await client.get(SERVERS, params={"tools": "true"}),
        await client.put(f"{SERVERS}/other", json=TIME),
        await client.delete(f"{SERVERS}/time"),
    ):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "mcp_config_invalid"
        assert "line 4" in error["message"] and "'oops'" in error["message"]
    assert (home / "mcp.json").read_text() == broken  # never rewritten
    (home / "mcp.json").write_text('{"mcpServers": {,}}')
    bad_json = (await client.get(SERVERS)).json()["error"]["message"]
    assert "not valid JSON" in bad_json and "line 1, column 17" in bad_json


async def test_writes_refuse_a_foreign_origin_and_other_machines(home: Path) -> None:
    app = make_app(home, FakeBackend())
    async with app.router.lifespan_context(app):
        local = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=local, base_url="http://localhost:1234") as http:
            evil = await http.put(f"{SERVERS}/evil", json=TIME, headers={"Origin": "http://evil.example"})
            assert evil.status_code == 403 and evil.json()["error"]["type"] == "permission_error"
        remote = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
        async with httpx.AsyncClient(transport=remote, base_url="http://localhost") as http:
            assert (await http.get(SERVERS)).status_code == 200  # listing is fine from anywhere allowed
            for method in ("PUT", "DELETE"):
                denied = await http.request(method, f"{SERVERS}/evil", json=TIME)
                assert denied.status_code == 403 and "local machine" in denied.json()["error"]["message"]
    assert not (home / "mcp.json").exists()


async def test_the_routes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    put = spec["paths"][f"{SERVERS}/{{name}}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["properties"]["url"]
    assert {"200", "400", "403"} <= set(put["responses"])
    assert "404" in spec["paths"][f"{SERVERS}/{{name}}"]["delete"]["responses"]
    assert (
        "McpServerList"
        in spec["paths"][SERVERS]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    )
