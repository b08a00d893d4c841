"""`McpScope`: one request's view of the MCP host (a `ToolHost`). mcp.json servers are the host's,
shared; remote servers named by the request are connected once per scope and closed when it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import mcp_types as mt
from mcp import MCPError

from openlms.core.errors import McpConnectionError, McpServerNotFoundError, OpenLMSError
from openlms.services.mcp import outcome
from openlms.services.mcp.connection import ServerConnection, describe
from openlms.services.mcp.types import McpTool, ToolOutcome, ToolSource
from openlms.store.mcp_config import McpServerConfig

if TYPE_CHECKING:
    from openlms.services.mcp.host import McpHost

RemoteKey = tuple[str, str, tuple[tuple[str, str], ...]]


class McpScope:
    def __init__(self, host: McpHost, *, user_consented: bool = False) -> None:
        """`user_consented`: the user allowed each call themselves (the app's consent dialog), so the
        server-wide consent settings, which guard calls a request makes on its own, are not asked."""
        self._host = host
        self._user_consented = user_consented
        self._remote: dict[RemoteKey, ServerConnection] = {}
        self._connecting = asyncio.Lock()  # parallel calls in one request connect a remote server once

    async def tools(self, sources: Sequence[ToolSource]) -> list[McpTool]:
        for source in sources:
            if not self._user_consented:
                self._host.check_allowed(source)
        if any(source.remote is None for source in sources):
            configs = await self._host.refresh()
            for source in sources:
                if source.remote is None and source.label not in configs:
                    raise McpServerNotFoundError(self._host.not_found_message(source.label, configs))
        result: list[McpTool] = []
        for source in sources:
            conn = await self._connection(source)
            try:
                listed = await conn.list_tools()
            except Exception as exc:  # a timeout, a transport failure, an answer that is not MCP
                conn.lost(f"listing its tools failed: {describe(exc)}")
                raise McpConnectionError(
                    f"The MCP server {source.label!r} did not list its tools: {describe(exc)}."
                ) from exc
            result.extend(
                McpTool(source, tool.name, tool.description or "", tool.input_schema)
                for tool in listed
                if _allowed(source, tool.name)
            )
        return result

    async def call(self, tool: McpTool, arguments: Mapping[str, Any]) -> ToolOutcome:
        source = tool.source
        if not _allowed(source, tool.name):
            allowed = ", ".join(source.allowed_tools or ()) or "none"
            return outcome.failed(
                tool.name, f"it is not among the allowed tools of {source.label} ({allowed})."
            )
        try:
            if not self._user_consented:
                self._host.check_allowed(source)
            conn = await self._connection(source)
        except OpenLMSError as exc:
            return outcome.failed(tool.name, exc.message)
        timeout = self._host.settings.mcp_tool_timeout_s
        try:
            result = await conn.call_tool(tool.name, dict(arguments), timeout)
        except MCPError as exc:
            return self._mcp_error(conn, tool, exc, timeout)
        except OpenLMSError as exc:
            return outcome.failed(tool.name, exc.message)
        except Exception as exc:  # a transport failure (HTTP, pipes): the tool's failure, never ours
            conn.lost(f"a call to {tool.name} failed: {describe(exc)}")
            return outcome.failed(tool.name, f"the MCP server {source.label} failed: {describe(exc)}.")
        return outcome.from_result(tool.name, result)

    async def aclose(self) -> None:
        connections, self._remote = list(self._remote.values()), {}
        for conn in connections:
            await conn.close()

    async def _connection(self, source: ToolSource) -> ServerConnection:
        if source.remote is None:
            return await self._host.connection(source.label)
        remote = source.remote
        key: RemoteKey = (source.label, remote.url, tuple(sorted(remote.headers.items())))
        async with self._connecting:
            conn = self._remote.get(key)
            if conn is not None and conn.usable:
                return conn
            if conn is not None:
                await conn.close()
            config = McpServerConfig(name=source.label, url=remote.url, headers=dict(remote.headers))
            conn = self._host.new_connection(config, idle_s=None)
            self._remote[key] = conn
            await conn.start()
            return conn

    def _mcp_error(self, conn: ServerConnection, tool: McpTool, exc: MCPError, timeout: float) -> ToolOutcome:
        if exc.code == mt.REQUEST_TIMEOUT:
            return outcome.timed_out(tool.name, timeout)
        if exc.code == mt.CONNECTION_CLOSED:
            conn.lost(f"it stopped during a call to {tool.name}")
            return outcome.failed(
                tool.name,
                f"the MCP server {tool.source.label} stopped during the call; it restarts on its next use.",
            )
        return outcome.failed(tool.name, exc.message)


def _allowed(source: ToolSource, name: str) -> bool:
    return source.allowed_tools is None or name in source.allowed_tools
