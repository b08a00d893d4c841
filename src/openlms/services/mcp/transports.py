"""Opening an MCP session over each transport: a program over stdio (its stderr to the server log), a
remote server over streamable HTTP, or SSE (a URL whose path ends in `/sse`)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TextIO

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from openlms.services.mcp.connection import ServerConnection
from openlms.services.mcp.types import ServerKind

MAX_LOG_LINE = 4000


@asynccontextmanager
async def stdio_session(
    conn: ServerConnection, command: str, args: Sequence[str], env: Mapping[str, str], log: logging.Logger
) -> AsyncIterator[ClientSession]:
    """Start `command args` with `env` over this server's environment; each stderr line goes to `log`
    prefixed with the server's name, and the end of stderr (the process exited) marks it lost."""
    merged = {**os.environ, **env}
    if shutil.which(command, path=merged.get("PATH")) is None:  # else only "[Errno 2] No such file ..."
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), command)
    params = StdioServerParameters(command=command, args=list(args), env=merged)
    errlog = _stderr_pipe(conn, log, asyncio.get_running_loop())
    try:
        async with stdio_client(params, errlog=errlog) as (read, write):
            errlog.close()  # the child has its own copy: its exit ends the reader's file
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session
    finally:
        errlog.close()


@asynccontextmanager
async def remote_session(
    url: str, headers: Mapping[str, str], kind: ServerKind
) -> AsyncIterator[ClientSession]:
    """A remote server over streamable HTTP, or SSE (`kind` "sse"), sending `headers` with each request."""
    async with contextlib.AsyncExitStack() as stack:
        if kind == "sse":
            read, write = await stack.enter_async_context(sse_client(url, headers=dict(headers)))
        else:
            client = await stack.enter_async_context(create_mcp_http_client(headers=dict(headers)))
            read, write = await stack.enter_async_context(streamable_http_client(url, http_client=client))
        session = await stack.enter_async_context(ClientSession(read, write))
        await session.initialize()
        yield session


def _stderr_pipe(conn: ServerConnection, log: logging.Logger, loop: asyncio.AbstractEventLoop) -> TextIO:
    """A pipe for the child's stderr; a thread logs its lines until the child (and all holders) exit."""
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb")

    def pump() -> None:
        with reader:
            for raw in reader:
                line = raw.decode("utf-8", "replace").rstrip()
                if line:
                    conn.stderr_tail.append(line[:200])
                    log.info("[mcp/%s] %s", conn.name, line[:MAX_LOG_LINE])
        with contextlib.suppress(RuntimeError):  # the loop is closed: the app is gone
            loop.call_soon_threadsafe(conn.lost, "its process exited")

    threading.Thread(target=pump, name=f"mcp-stderr-{conn.name}", daemon=True).start()
    return open(write_fd, "w", encoding="utf-8")  # noqa: SIM115 (closed by stdio_session)
