"""What the app's Program panel does for its user with `<home>/mcp.json`: read and replace the whole file
as text, preview and install an "Add to LM Studio" link, and call one tool that the user allowed in the
consent dialog (the user's own action: the server-wide consent settings for requests are not asked)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openlms.core.mcp_deeplink import parse_deeplink
from openlms.services.mcp.host import McpHost
from openlms.services.mcp.scope import McpScope
from openlms.services.mcp.types import McpTool, ToolOutcome, ToolSource
from openlms.store.mcp_config import (
    McpServerConfig,
    add_server,
    parse_server_entry,
    read_mcp_config,
    write_mcp_text,
)


@dataclass(frozen=True, slots=True)
class ConfigText:
    text: str
    exists: bool


@dataclass(frozen=True, slots=True)
class LinkPreview:
    """What an install link would add: shown for confirmation (env and header values left out)."""

    name: str
    config: McpServerConfig
    entry: Mapping[str, Any]
    replaces: bool  # a server of that name is in mcp.json already


async def read_text(path: Path) -> ConfigText:
    def read() -> ConfigText:
        try:
            return ConfigText(path.read_text(encoding="utf-8"), True)
        except FileNotFoundError:
            return ConfigText("", False)

    return await asyncio.to_thread(read)


async def replace_text(host: McpHost, text: str) -> list[str]:
    """Write the file (`McpConfigError` naming the line, the file untouched, when it does not read as
    written); the host stops servers whose entry changed. Answers the servers' names."""
    servers = await asyncio.to_thread(write_mcp_text, host.path, text)
    await host.refresh()
    return list(servers)


async def preview_link(host: McpHost, link: str) -> LinkPreview:
    """The server an `lmstudio://add_mcp` link installs (`McpConfigError` for a bad link or entry)."""
    name, entry = parse_deeplink(link)
    config = parse_server_entry(name, entry)
    known = await asyncio.to_thread(read_mcp_config, host.path)
    return LinkPreview(name, config, entry, replaces=name in known)


async def install_link(host: McpHost, link: str) -> LinkPreview:
    """Add (or replace) the link's server in mcp.json, keeping the rest of the file."""
    preview = await preview_link(host, link)
    await asyncio.to_thread(add_server, host.path, preview.name, preview.entry)
    await host.refresh()
    return preview


async def server_tools(host: McpHost, server: str) -> list[McpTool]:
    """The tools of one mcp.json server (started if need be; no other server is started).
    `McpServerNotFoundError`, or `McpConnectionError` when it cannot start or list them."""
    scope = McpScope(host, user_consented=True)
    try:
        return await scope.tools([ToolSource(label=server)])
    finally:
        await scope.aclose()


async def call_tool(host: McpHost, server: str, tool: str, arguments: Mapping[str, Any]) -> ToolOutcome:
    """Call `tool` of the mcp.json server `server` with the host's timeout; a failure is the outcome."""
    scope = McpScope(host, user_consented=True)
    try:
        return await scope.call(McpTool(ToolSource(label=server), tool, "", {}), arguments)
    finally:
        await scope.aclose()
