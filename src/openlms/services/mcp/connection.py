"""One MCP server's connection: its `ClientSession` lives in its own asyncio task.

The `mcp` SDK's transports and sessions are anyio task groups, which must be entered and left in the same
task; so a connection runs one long-lived task that opens the transport and the session, sets `ready`,
and waits until it is told to stop (`close()`), its server goes away (`lost()`), or it has been idle for
`idle_s`. Requests from other tasks talk to the session object while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, suppress
from typing import Any

import mcp_types as mt
from mcp import ClientSession, MCPError

from openlms.core.errors import McpConnectionError
from openlms.services.mcp.types import ServerKind, ServerState

Opener = Callable[["ServerConnection"], AbstractAsyncContextManager[ClientSession]]
CLOSE_TIMEOUT_S = 15.0  # the SDK bounds its own shutdown (stdin close, SIGTERM, SIGKILL) well below this
MAX_TOOL_PAGES = 100
STDERR_TAIL_LINES = 3  # a failed server's last stderr lines, in its error


class ServerConnection:
    """A started (or failed) MCP server; `state` and `error` are what `lms mcp ls` shows."""

    def __init__(
        self,
        name: str,
        kind: ServerKind,
        opener: Opener,
        *,
        log: logging.Logger,
        start_timeout_s: float,
        idle_s: float | None = None,
        hint: str = "",
    ) -> None:
        self.name = name
        self.kind = kind
        self.state: ServerState = "stopped"
        self.error: str | None = None
        self._opener = opener
        self._log = log
        self._start_timeout_s = start_timeout_s
        self._idle_s = idle_s
        self._hint = hint
        self._session: ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._busy = 0
        self._last_used = time.monotonic()
        self._tools: list[mt.Tool] | None = None
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)  # appended by the stderr reader

    @property
    def usable(self) -> bool:
        return self.state == "running" and self._session is not None and not self._stop.is_set()

    async def start(self) -> None:
        """Start the server and its session; raises `McpConnectionError` (state "failed") if it cannot."""
        self.state = "starting"
        self._task = asyncio.create_task(self._run(), name=f"mcp-server-{self.name}")
        try:
            await asyncio.wait_for(self._ready.wait(), self._start_timeout_s)
        except TimeoutError:
            self.error = f"it did not start within {self._start_timeout_s:g} s"
            await self._cancel()
        if not self.usable:
            self.state = "failed"
            raise McpConnectionError(
                f"The MCP server {self.name!r} could not be started: {self.error or 'it stopped at once'}. "
                + self._hint
            )

    def touch(self) -> None:
        self._last_used = time.monotonic()

    async def list_tools(self) -> list[mt.Tool]:
        """The server's tools (all pages), listed once per start."""
        if self._tools is None:
            session = self._require()
            self._busy += 1
            try:
                self._tools = await asyncio.wait_for(_all_tools(session), self._start_timeout_s)
            finally:
                self._busy -= 1
                self.touch()
        return self._tools

    async def call_tool(self, name: str, arguments: dict[str, Any], timeout_s: float) -> mt.CallToolResult:
        """One `tools/call`; the SDK raises `MCPError` (REQUEST_TIMEOUT, CONNECTION_CLOSED, the server's
        error) and the caller turns that into an outcome."""
        session = self._require()
        self._busy += 1
        try:
            return await session.call_tool(name, arguments, read_timeout_seconds=timeout_s)
        finally:
            self._busy -= 1
            self.touch()

    def lost(self, why: str) -> None:
        """The server went away (its process exited, its connection closed): failed until restarted."""
        if self._stop.is_set() or self.state != "running":  # a failing start says why itself
            return
        self.state = "failed"
        self.error = self._with_stderr(why)
        self._log.warning("MCP server %s: %s", self.name, why)
        self._stop.set()

    async def close(self) -> None:
        """Stop the session and the server (its process too, for stdio); waits for it."""
        self._stop.set()
        task = self._task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), CLOSE_TIMEOUT_S)
        except TimeoutError:
            await self._cancel()

    def _with_stderr(self, why: str) -> str:
        if not self.stderr_tail:
            return why
        return f"{why}; its last words on stderr: " + " | ".join(self.stderr_tail)

    def _require(self) -> ClientSession:
        if not self.usable or self._session is None:
            raise McpConnectionError(
                f"The MCP server {self.name!r} is not running ({self.error or self.state})."
            )
        return self._session

    async def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        try:
            async with self._opener(self) as session:
                self._session = session
                self.state = "running"
                self.error = None
                self.touch()  # idle time counts from here
                self._ready.set()
                await self._serve()
                self._stop.set()  # from here on, the server going away is our doing
        except Exception as exc:  # a failed start or a broken transport: shown as the server's error
            if self.state != "failed":  # else lost() already said why (its process exited)
                self.state = "failed"
                self.error = self._with_stderr(describe(exc))
                self._log.warning("MCP server %s failed: %s", self.name, self.error)
        finally:
            self._stop.set()
            self._session = None
            if self.state in ("running", "starting"):
                self.state = "stopped"
            self._ready.set()

    async def _serve(self) -> None:
        """Wait for `close()`/`lost()`, or until idle for `idle_s` with no call in flight."""
        while not self._stop.is_set():
            if self._idle_s is None:
                await self._stop.wait()
                return
            remaining = self._last_used + self._idle_s - time.monotonic()
            if remaining <= 0 and self._busy == 0:
                self._log.info("MCP server %s stopped after %g s unused", self.name, self._idle_s)
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stop.wait(), max(remaining, 0.05) if self._busy == 0 else self._idle_s
                )


async def _all_tools(session: ClientSession) -> list[mt.Tool]:
    tools: list[mt.Tool] = []
    cursor: str | None = None
    for _ in range(MAX_TOOL_PAGES):
        params = mt.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def describe(exc: BaseException) -> str:
    """One line for an error that may be an (anyio) exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, MCPError) and exc.code == mt.CONNECTION_CLOSED:
        text = "the connection closed (the server exited or hung up)"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        text = f"the command {exc.filename!r} was not found"
    return text
