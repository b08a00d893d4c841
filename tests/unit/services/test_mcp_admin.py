"""McpAdmin: the file's servers merged with the host's view; edits stop the host's running copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlms.core.errors import McpServerNotFoundError
from openlms.core.settings import Settings
from openlms.services.mcp.admin import McpAdmin
from openlms.services.mcp.types import McpTool, ServerStatus, ToolSource


class FakeHost:
    def __init__(self, statuses: list[ServerStatus]) -> None:
        self._statuses = statuses
        self.asked: list[bool] = []
        self.stopped: list[str] = []

    async def statuses(self, with_tools: bool = False) -> list[ServerStatus]:
        self.asked.append(with_tools)
        return self._statuses

    async def stop(self, name: str) -> None:
        self.stopped.append(name)
        if name == "gone":
            raise McpServerNotFoundError("the host no longer knows it")


ADD = McpTool(ToolSource("calc"), "add", "Add two numbers", {"type": "object"})


async def test_the_file_order_with_the_hosts_states_and_tools(tmp_path: Path) -> None:
    host = FakeHost(
        [ServerStatus("calc", "stdio", "running", tools=(ADD,)), ServerStatus("x", "http", "failed")]
    )
    admin = McpAdmin(Settings(home=tmp_path), host)
    await admin.put("remote", {"url": "https://example.com/mcp"})
    await admin.put("calc", {"command": "python"})
    servers = await admin.servers(with_tools=True)
    assert host.asked == [True]
    assert [(s.config.name, s.status.state) for s in servers] == [("remote", "stopped"), ("calc", "running")]
    assert servers[1].status.tools == (ADD,) and servers[0].status.kind == "http"


async def test_replacing_or_removing_stops_the_running_copy(tmp_path: Path) -> None:
    host = FakeHost([])
    admin = McpAdmin(Settings(home=tmp_path), host)
    assert (await admin.put("calc", {"command": "python"})).created is True
    assert host.stopped == []  # nothing of that name could be running
    assert (await admin.put("calc", {"command": "python3"})).created is False
    await admin.put("gone", {"command": "x"})
    await admin.remove("calc")
    await admin.remove("gone")  # the host had already dropped it: still removed, no error
    assert host.stopped == ["calc", "calc", "gone"]
    assert await admin.servers() == []
    with pytest.raises(McpServerNotFoundError):
        await admin.remove("calc")


async def test_without_a_host_every_server_is_stopped(tmp_path: Path) -> None:
    admin = McpAdmin(Settings(home=tmp_path), None)
    await admin.put("calc", {"command": "python"})
    [entry] = await admin.servers(with_tools=True)
    assert entry.status == ServerStatus("calc", "stdio", "stopped")
