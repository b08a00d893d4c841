"""The MCP host inside the real server (`lms server start`): an mcp.json server started on use, its stderr
in the server log, and no MCP server process left after `lms server stop`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.mcp import stdio_config, write_mcp_json
from tests.support.server import Server, free_port, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def mcp_server(tmp_path: Path, models_dir: Path) -> Iterator[Server]:
    srv = start_server(tmp_path, models_dir, free_port(), settings={"mcp_allow_json_servers": True})
    yield srv
    srv.lms("server", "stop", check=False)


def mcp_children(pid: int) -> list[psutil.Process]:
    """The daemon's descendants that run the test MCP server."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if any("server_script.py" in part for part in child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def gone(process: psutil.Process) -> bool:
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_server_started_on_use_logged_and_stopped_with_the_server(mcp_server: Server) -> None:
    write_mcp_json(mcp_server.home, {"test": stdio_config()})
    daemon_pid = json.loads((mcp_server.home / "openlms" / "server.json").read_text())["pid"]
    assert mcp_children(daemon_pid) == []  # nothing starts before it is used

    with mcp_server.http() as http:
        listed = http.get("/api/v1/mcp/servers", params={"tools": "true"})
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()["servers"]
    assert entry["status"] == "running"
    assert "add" in {tool["name"] for tool in entry["tools"]}
    [child] = mcp_children(daemon_pid)

    log_file = mcp_server.home / "server-logs" / "openlms-server.log"
    assert "[mcp/test] mcp-test-server started" in log_file.read_text()

    mcp_server.lms("server", "stop")
    deadline = time.monotonic() + 30
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(child), "the MCP server process outlived `lms server stop`"
