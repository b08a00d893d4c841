"""`McpHost`: the MCP servers of `<home>/mcp.json` and per-request remote servers (a `ToolHost`).

mcp.json servers start on first use (`tools()` / `call()`), are shared by all requests, stop after
`mcp_idle_stop_s` unused, on `stop(name)` and on `aclose()`; a crashed one is "failed" until its next use
restarts it. The file is read again when it changes, and a server whose entry changed is restarted on its
next use. Remote servers named by a request get a session per request scope (`session()`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp import ClientSession

from openlms.core.errors import McpConnectionError, McpServerNotFoundError
from openlms.core.settings import Settings
from openlms.services.mcp.connection import ServerConnection, describe
from openlms.services.mcp.consent import check_allowed
from openlms.services.mcp.scope import McpScope
from openlms.services.mcp.transports import remote_session, stdio_session
from openlms.services.mcp.types import McpTool, ServerStatus, ToolHost, ToolOutcome, ToolSource
from openlms.store.mcp_config import McpServerConfig, mcp_config_path, read_mcp_config

MIN_START_TIMEOUT_S = 60.0  # a first `npx`/`uvx` run downloads the server: starts may be slow
FileStamp = tuple[int, int]  # (mtime_ns, size) of mcp.json; (0, -1) when it does not exist


class McpHost:
    """Starts mcp.json servers lazily, lists and calls their tools, stops them when idle or closed.

    Public API: `tools(sources)`, `call(tool, arguments)` (the `ToolHost` protocol), `session()` (a
    request's scope, itself a `ToolHost`), `statuses(with_tools)`, `stop(name)`, `aclose()`."""

    def __init__(self, settings: Settings, log: logging.Logger | None = None) -> None:
        self.settings = settings
        self.log = log or logging.getLogger("openlms.mcp")
        self.path = mcp_config_path(settings.home)
        self._stamp: FileStamp | None = None
        self._configs: dict[str, McpServerConfig] = {}
        self._servers: dict[str, tuple[McpServerConfig, ServerConnection]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closed = False

    async def tools(self, sources: Sequence[ToolSource]) -> list[McpTool]:
        async with self.session() as scope:
            return await scope.tools(sources)

    async def call(self, tool: McpTool, arguments: Mapping[str, Any]) -> ToolOutcome:
        async with self.session() as scope:
            return await scope.call(tool, arguments)

    def session(self) -> AbstractAsyncContextManager[ToolHost]:
        """A request's scope (`async with host.session() as scope:`): a `ToolHost` whose remote servers
        stay connected until the scope ends; mcp.json servers are shared with the host."""
        return self._scope()

    @asynccontextmanager
    async def _scope(self) -> AsyncIterator[ToolHost]:
        scope = McpScope(self)
        try:
            yield scope
        finally:
            await scope.aclose()

    async def statuses(self, with_tools: bool = False) -> list[ServerStatus]:
        """Every server of mcp.json with its state; `with_tools` starts each (a failure is its status)."""
        configs = await self.refresh()
        names = list(configs)
        listed: list[tuple[McpTool, ...] | None] = [None] * len(names)
        if with_tools:  # started side by side: one slow server does not hold up the others
            listed = list(await asyncio.gather(*(self._listed(name) for name in names)))
        result: list[ServerStatus] = []
        for name, tools in zip(names, listed, strict=True):
            running = self._servers.get(name)
            conn = running[1] if running else None
            state = conn.state if conn else "stopped"
            error = conn.error if conn and state == "failed" else None
            result.append(
                ServerStatus(name=name, kind=configs[name].kind, state=state, error=error, tools=tools)
            )
        return result

    async def stop(self, name: str) -> None:
        """Stop one mcp.json server (it starts again on its next use)."""
        configs = await self.refresh()
        if name not in configs and name not in self._servers:
            raise McpServerNotFoundError(self.not_found_message(name, configs))
        await self._retire(name)

    async def aclose(self) -> None:
        """Stop every server (no child process outlives this)."""
        self._closed = True
        names = list(self._servers)
        await asyncio.gather(*(self._retire(name) for name in names), return_exceptions=True)

    # For McpScope.

    async def refresh(self) -> dict[str, McpServerConfig]:
        """mcp.json as it is now (read again when its mtime or size changed); servers whose entry changed
        or went away are stopped. Raises `McpConfigError` for a broken file."""
        stamp = self._file_stamp()
        if stamp != self._stamp:
            configs = read_mcp_config(self.path)
            self._configs, self._stamp = configs, stamp
            for name, (started_with, _) in list(self._servers.items()):
                if configs.get(name) != started_with:
                    self.log.info("MCP server %s: its mcp.json entry changed; restarting on next use", name)
                    await self._retire(name)
        return self._configs

    async def connection(self, name: str) -> ServerConnection:
        """The running connection of an mcp.json server, started when needed."""
        configs = await self.refresh()
        config = configs.get(name)
        if config is None:
            raise McpServerNotFoundError(self.not_found_message(name, configs))
        if self._closed:
            raise McpConnectionError("The server is stopping: MCP servers are not started any more.")
        async with self._locks.setdefault(name, asyncio.Lock()):
            current = self._servers.get(name)
            if current is not None and current[0] == config and current[1].usable:
                current[1].touch()
                return current[1]
            if current is not None:
                await current[1].close()
            conn = self.new_connection(config, idle_s=self.settings.mcp_idle_stop_s)
            self._servers[name] = (config, conn)
            self.log.info("MCP server %s: starting (%s)", name, config.kind)
            await conn.start()
            return conn

    def new_connection(self, config: McpServerConfig, *, idle_s: float | None) -> ServerConnection:
        def opener(conn: ServerConnection) -> AbstractAsyncContextManager[ClientSession]:
            if config.url is not None:
                return remote_session(config.url, config.headers, config.kind)
            assert config.command is not None
            return stdio_session(conn, config.command, config.args, config.env, self.log)

        return ServerConnection(
            config.name,
            config.kind,
            opener,
            log=self.log,
            start_timeout_s=max(self.settings.mcp_tool_timeout_s, MIN_START_TIMEOUT_S),
            idle_s=idle_s,
            hint=(
                "Check its URL and headers, and that it is up."
                if idle_s is None
                else f"Check its entry in {self.path} and the server log (`lms log stream --source server`)."
            ),
        )

    def check_allowed(self, source: ToolSource) -> None:
        check_allowed(self.settings, source)

    def not_found_message(self, name: str, configs: Mapping[str, McpServerConfig]) -> str:
        known = ", ".join(sorted(configs)) or "none"
        return (
            f"No MCP server named {name!r} in {self.path} (servers there: {known}). "
            "Add it with `lms mcp add` or edit the file."
        )

    async def _listed(self, name: str) -> tuple[McpTool, ...] | None:
        try:
            conn = await self.connection(name)
        except Exception as exc:  # shown as the server's state and error
            self.log.warning("MCP server %s: not started to list its tools: %s", name, describe(exc))
            return None
        try:
            listed = await conn.list_tools()
        except Exception as exc:
            conn.lost(f"listing its tools failed: {describe(exc)}")
            return None
        source = ToolSource(label=name)
        return tuple(McpTool(source, t.name, t.description or "", t.input_schema) for t in listed)

    async def _retire(self, name: str) -> None:
        entry = self._servers.pop(name, None)
        if entry is not None:
            await entry[1].close()

    def _file_stamp(self) -> FileStamp:
        try:
            stat = os.stat(self.path)
        except OSError:
            return (0, -1)
        return (stat.st_mtime_ns, stat.st_size)
