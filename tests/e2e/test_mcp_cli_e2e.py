"""`lms mcp` as a user runs it, against the real server: add (JSON and deeplink), ls with a real stdio
server's tools (the FastMCP test server and the published `mcp-server-time`), rm, a malformed mcp.json."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest

from openlms.core.mcp_deeplink import make_deeplink
from tests.support.mcp.helpers import http_server, stdio_config
from tests.support.server import Server

pytestmark = pytest.mark.e2e

TIME_SERVER = Path(sys.executable).with_name("mcp-server-time")


@pytest.fixture
def mcp_json(server: Server) -> Iterator[Path]:
    path = server.home / "mcp.json"
    path.unlink(missing_ok=True)
    yield path
    path.unlink(missing_ok=True)


def servers_in(path: Path) -> dict[str, object]:
    document: dict[str, dict[str, object]] = json.loads(path.read_text())
    return document["mcpServers"]


def test_add_ls_with_tools_rm(server: Server, mcp_json: Path) -> None:
    test_server = stdio_config()
    added = server.lms("mcp", "add", "test", "--config", json.dumps(test_server))
    assert "Added MCP server 'test' (stdio)" in added.stdout
    time_server = {"command": str(TIME_SERVER), "args": ["--local-timezone", "UTC"]}
    server.lms("mcp", "add", "time", "--config", json.dumps({"mcpServers": {"time": time_server}}))
    assert servers_in(mcp_json) == {"test": test_server, "time": time_server}

    listed = server.lms("mcp", "ls", timeout=180).stdout.splitlines()
    assert listed[0].split() == ["NAME", "TYPE", "STATUS", "TOOLS"]
    rows = {line.split()[0]: line for line in listed[1:]}
    assert rows["test"].split()[1:3] == ["stdio", "running"]
    assert "add" in rows["test"] and "echo" in rows["test"]
    assert "get_current_time" in rows["time"]
    as_json = {s["name"]: s for s in json.loads(server.lms("mcp", "ls", "--json", timeout=180).stdout)}
    add_tool = next(t for t in as_json["test"]["tools"] if t["name"] == "add")
    assert set(add_tool["input_schema"]["properties"]) == {"a", "b"}

    assert "Removed MCP server 'test'" in server.lms("mcp", "rm", "test").stdout
    assert list(servers_in(mcp_json)) == ["time"]
    assert [s["name"] for s in json.loads(server.lms("mcp", "ls", "--json", "--no-tools").stdout)] == ["time"]
    missing = server.lms("mcp", "rm", "test", check=False)
    assert missing.returncode == 1 and "No MCP server named 'test'" in missing.stderr


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_ls_lists_a_remote_servers_tools(
    server: Server, mcp_json: Path, transport: Literal["http", "sse"]
) -> None:
    with http_server(transport) as url:
        server.lms("mcp", "add", "remote", "--config", json.dumps({"url": url}))
        [listed] = json.loads(server.lms("mcp", "ls", "--json", timeout=180).stdout)
    assert listed["type"] == transport and listed["status"] == "running" and listed["url"] == url
    assert {"add", "echo"} <= {tool["name"] for tool in listed["tools"]}


def test_a_server_that_cannot_start_is_listed_with_its_error(server: Server, mcp_json: Path) -> None:
    server.lms("mcp", "add", "nope", "--config", json.dumps({"command": "openlms-no-such-program-xyz"}))
    result = server.lms("mcp", "ls", timeout=180)
    row, error = result.stdout.splitlines()[1:3]
    assert row.split()[:3] == ["nope", "stdio", "failed"]
    assert error.strip().startswith("error:")


def test_deeplink_round_trip(server: Server, mcp_json: Path) -> None:
    entry = {"command": "uvx", "args": ["mcp-server-fetch"], "env": {"TOKEN": "a+b/c=="}}
    link = make_deeplink("fetch", entry)
    refused = server.lms("mcp", "add", "--deeplink", link, check=False)  # no TTY and no --yes
    assert refused.returncode == 1 and "--yes" in refused.stderr and not mcp_json.exists()
    assert "untrusted sources" in refused.stdout and "uvx mcp-server-fetch" in refused.stdout
    installed = server.lms("mcp", "add", "--deeplink", link, "--yes")
    assert "Added MCP server 'fetch' (stdio)" in installed.stdout
    assert servers_in(mcp_json) == {"fetch": entry}
    docs_button = link.replace("lmstudio://add_mcp", "https://lmstudio.ai/install-mcp")
    again = server.lms("mcp", "add", "--deeplink", docs_button, "--yes")
    assert "Replaced MCP server 'fetch'" in again.stdout and servers_in(mcp_json) == {"fetch": entry}


def test_a_malformed_file_is_an_error_with_its_line(server: Server, mcp_json: Path) -> None:
    mcp_json.write_text(
        '{\n  "mcpServers": {\n    "a": {"command": "x"},\n    "b": {"args": ["y"]}\n  }\n}\n'
    )
    for args in (("mcp", "ls"), ("mcp", "rm", "a"), ("mcp", "add", "c", "--config", '{"command": "z"}')):
        result = server.lms(*args, check=False)
        assert result.returncode == 1, result
        assert "line 4" in result.stderr and "'b'" in result.stderr and "command" in result.stderr
        assert "Traceback" not in result.stderr + result.stdout
    mcp_json.write_text('{"mcpServers": {"a": {"command": "x"}')
    broken = server.lms("mcp", "ls", check=False)
    assert broken.returncode == 1 and "not valid JSON" in broken.stderr and "line 1" in broken.stderr
    assert server.lms("ps").returncode == 0  # the server is fine
