"""Integration fixtures: the MCP host over real MCP servers (subprocesses), no openlms server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from openlms.core.settings import Settings
from openlms.services.mcp.host import McpHost

HostFactory = Callable[..., McpHost]


@pytest.fixture
async def make_host(tmp_path: Path) -> AsyncIterator[HostFactory]:
    """`make_host(**settings)`: an `McpHost` on `tmp_path` as home (both consents on unless given);
    every host made is closed after the test."""
    hosts: list[McpHost] = []

    def make(**overrides: Any) -> McpHost:
        values: dict[str, Any] = {"mcp_allow_json_servers": True, "mcp_allow_remote_servers": True}
        values.update(overrides)
        host = McpHost(Settings(home=tmp_path, **values))
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        await host.aclose()
