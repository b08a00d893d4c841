"""`McpHost`: the MCP servers of `<home>/mcp.json` and per-request remote servers (a `ToolHost`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from openlms.core.errors import McpConnectionError, McpNotAllowedError
from openlms.core.settings import Settings, settings_file_for
from openlms.services.mcp.types import McpTool, ServerStatus, ToolHost, ToolOutcome, ToolSource


def consent_hint(settings: Settings, key: str) -> str:
    """How to turn a consent setting on: the settings file's key or the environment variable."""
    return (
        f'Turn it on with "{key}": true in {settings_file_for(settings.home)} (or the environment variable '
        f"OPENLMS_{key.upper()}=true), then restart the server (`lms server stop`, `lms server start`)."
    )


class McpHost:
    """Starts mcp.json servers lazily, lists and calls their tools, stops them when idle or closed."""

    def __init__(self, settings: Settings, log: logging.Logger | None = None) -> None:
        self._settings = settings
        self._log = log or logging.getLogger("openlms.mcp")

    async def tools(self, sources: Sequence[ToolSource]) -> list[McpTool]:
        for source in sources:
            self._check_allowed(source)
        if not sources:
            return []
        raise McpConnectionError("The MCP host is not built yet.")

    async def call(self, tool: McpTool, arguments: Mapping[str, Any]) -> ToolOutcome:
        return ToolOutcome(ok=False, output=f"The tool {tool.name} is not available.", error="not built yet")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[ToolHost]:
        """A request's scope: remote servers opened in it are closed when it ends."""
        yield self

    async def statuses(self, with_tools: bool = False) -> list[ServerStatus]:
        return []

    async def stop(self, name: str) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _check_allowed(self, source: ToolSource) -> None:
        if source.remote is not None and not self._settings.mcp_allow_remote_servers:
            raise McpNotAllowedError(
                f"Per-request remote MCP servers are off on this server ({source.label!r} asked for "
                f"{source.remote.url}). {consent_hint(self._settings, 'mcp_allow_remote_servers')}"
            )
        if source.remote is None and not self._settings.mcp_allow_json_servers:
            raise McpNotAllowedError(
                f"Calling the servers of mcp.json is off on this server ({source.label!r} asked for). "
                f"{consent_hint(self._settings, 'mcp_allow_json_servers')}"
            )
