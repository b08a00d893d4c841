"""`state.mcp`: the app's MCP host, built with the app and closed with it (no MCP child outlives it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest

from openlms.engine.fake import FakeBackend
from openlms.server.state import AppState
from openlms.services.mcp.host import McpHost
from openlms.services.mcp.types import ToolSource
from tests.support.mcp import stdio_config, write_mcp_json
from tests.unit.server.conftest import make_app


@pytest.mark.slow
async def test_app_shutdown_stops_mcp_servers(home: Path, fake: FakeBackend) -> None:
    write_mcp_json(home, {"test": stdio_config()})
    app = make_app(home, fake, mcp_allow_json_servers=True)
    state: AppState = app.state.openlms
    assert isinstance(state.mcp, McpHost)
    async with app.router.lifespan_context(app):
        tools = {tool.name: tool for tool in await state.mcp.tools([ToolSource("test")])}
        assert (await state.mcp.call(tools["add"], {"a": 1, "b": 2})).output == "3"
        children = psutil.Process().children(recursive=True)
        [server] = [child for child in children if "server_script.py" in command_line(child)]
        assert server.is_running()
        assert [s.state for s in await state.mcp.statuses()] == ["running"]
    for _ in range(300):  # the lifespan's shutdown closed the host: the child goes away
        if not server.is_running() or server.status() == psutil.STATUS_ZOMBIE:
            break
        await asyncio.sleep(0.1)
    assert not server.is_running() or server.status() == psutil.STATUS_ZOMBIE
    assert [s.state for s in await state.mcp.statuses()] == ["stopped"]


def command_line(process: psutil.Process) -> str:
    """A child's command line; "" for one that is gone or a zombie (an earlier test's child not yet
    reaped, whose command line cannot be read)."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""
