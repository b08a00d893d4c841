"""The MCP host on remote servers: the FastMCP test server over streamable HTTP and SSE on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from openlms.core.errors import McpConnectionError
from openlms.services.mcp.types import McpTool, RemoteServer, ToolSource
from tests.integration.conftest import HostFactory
from tests.support.mcp import http_server, write_mcp_json
from tests.support.server import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    with http_server("http") as url:
        yield url


async def test_request_scope_lists_filters_and_calls(http_url: str, make_host: HostFactory) -> None:
    host = make_host()
    remote = RemoteServer(http_url, headers={"X-Test-Token": "secret-123"})
    source = ToolSource("remote", allowed_tools=("echo", "header"), remote=remote)
    async with host.session() as scope:
        tools = {tool.name: tool for tool in await scope.tools([source])}
        assert set(tools) == {"echo", "header"}
        assert (await scope.call(tools["echo"], {"text": "over http"})).output == "over http"
        sent = await scope.call(tools["header"], {"name": "x-test-token"})
        assert sent.output == "secret-123"  # the request's headers reach the server
    assert await host.statuses() == []  # a per-request server is no mcp.json server


async def test_parallel_calls_in_a_scope_share_one_session(http_url: str, make_host: HostFactory) -> None:
    host = make_host()
    source = ToolSource("remote", remote=RemoteServer(http_url))
    header = McpTool(source, "header", "", {"type": "object"})
    async with host.session() as scope:  # calls before any listing: each would connect on its own
        results = await asyncio.gather(*(scope.call(header, {"name": "mcp-session-id"}) for _ in range(4)))
    assert all(result.ok for result in results)
    assert len({result.output for result in results}) == 1 and results[0].output


async def test_remote_call_without_a_scope(http_url: str, make_host: HostFactory) -> None:
    host = make_host()
    source = ToolSource("remote", remote=RemoteServer(http_url))
    tools = {tool.name: tool for tool in await host.tools([source])}
    assert (await host.call(tools["add"], {"a": 40, "b": 2})).output == "42"


async def test_mcp_json_http_server(tmp_path: Path, http_url: str, make_host: HostFactory) -> None:
    write_mcp_json(tmp_path, {"web": {"url": http_url, "headers": {"X-Test-Token": "from-file"}}})
    host = make_host()
    tools = {tool.name: tool for tool in await host.tools([ToolSource("web")])}
    assert (await host.call(tools["header"], {"name": "X-Test-Token"})).output == "from-file"
    [status] = await host.statuses()
    assert (status.kind, status.state) == ("http", "running")


async def test_sse_server(make_host: HostFactory) -> None:
    host = make_host()
    with http_server("sse") as url:
        assert url.endswith("/sse")
        source = ToolSource("legacy", remote=RemoteServer(url))
        async with host.session() as scope:
            tools = {tool.name: tool for tool in await scope.tools([source])}
            assert (await scope.call(tools["add"], {"a": 1, "b": 2})).output == "3"


async def test_unreachable_server(make_host: HostFactory) -> None:
    host = make_host(mcp_tool_timeout_s=10)
    url = f"http://127.0.0.1:{free_port()}/mcp"  # nothing listens there
    with pytest.raises(McpConnectionError, match="could not be started"):
        await host.tools([ToolSource("gone", remote=RemoteServer(url))])
