"""The user's own management of `<home>/mcp.json` (`lms mcp`, `/api/v1/mcp/servers`): list the servers with
the host's view of them, add or replace one, remove one.

Listing and editing are the user's actions, not a model's: they need none of the consent settings that a
request calling the servers needs. Edits stop the host's running copy of the server, so that its next use
starts it with the new entry. A file edit is one read-modify-write with no await inside, so two requests
cannot interleave and lose one another's change.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from openlms.core.errors import McpServerNotFoundError
from openlms.core.settings import Settings
from openlms.services.mcp.types import ServerStatus
from openlms.store.mcp_config import (
    McpServerConfig,
    add_server,
    mcp_config_path,
    parse_server_entry,
    read_mcp_config,
    remove_server,
)


class McpStatusHost(Protocol):
    """What the admin needs of the MCP host (`McpHost`)."""

    async def statuses(self, with_tools: bool = False) -> list[ServerStatus]: ...

    async def stop(self, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ServerEntry:
    """One server of the file with what the host knows of it."""

    config: McpServerConfig
    status: ServerStatus


@dataclass(frozen=True, slots=True)
class PutResult:
    config: McpServerConfig
    created: bool  # False: an existing server of that name was replaced


class McpAdmin:
    """`settings.home / "mcp.json"`, edited for the user; `host` (None before the host is wired) is asked
    for the servers' states and tools and told to stop a server whose entry changed."""

    def __init__(self, settings: Settings, host: McpStatusHost | None) -> None:
        self._settings = settings
        self._host = host

    @property
    def path(self) -> Path:
        return mcp_config_path(self._settings.home)

    async def servers(self, *, with_tools: bool = False) -> list[ServerEntry]:
        """Every server of the file in file order (`McpConfigError` for a malformed file); `with_tools`
        asks the host to start them to list their tools."""
        configs = await asyncio.to_thread(read_mcp_config, self.path)
        live = {s.name: s for s in await self._host.statuses(with_tools)} if self._host else {}
        return [
            ServerEntry(config, live.get(name) or ServerStatus(name=name, kind=config.kind, state="stopped"))
            for name, config in configs.items()
        ]

    async def put(self, name: str, entry: Mapping[str, Any]) -> PutResult:
        """Add or replace `name` (`McpConfigError` for a bad name or entry, or a malformed file)."""
        config = parse_server_entry(name, entry)
        replaced = add_server(self.path, name, entry)
        if replaced:
            await self._stop(name)
        return PutResult(config, created=not replaced)

    async def remove(self, name: str) -> None:
        """Remove `name` (`McpServerNotFoundError` when the file has no such server)."""
        remove_server(self.path, name)
        await self._stop(name)

    async def _stop(self, name: str) -> None:
        """Stop the host's running copy, if any (the host may already have seen the change)."""
        if self._host is not None:
            with contextlib.suppress(McpServerNotFoundError):
                await self._host.stop(name)
