"""The user's consent for MCP (both off by default, as in LM Studio): `mcp_allow_json_servers` for the
servers of mcp.json, `mcp_allow_remote_servers` for remote servers named by a request."""

from __future__ import annotations

from openlms.core.errors import McpNotAllowedError
from openlms.core.settings import Settings, settings_file_for
from openlms.services.mcp.types import ToolSource


def check_allowed(settings: Settings, source: ToolSource) -> None:
    """Raise `McpNotAllowedError` (saying which setting to turn on, and how) unless allowed."""
    if source.remote is not None and not settings.mcp_allow_remote_servers:
        raise McpNotAllowedError(
            f"Per-request remote MCP servers are off on this server ({source.label!r} names "
            f"{source.remote.url}). {consent_hint(settings, 'mcp_allow_remote_servers')}"
        )
    if source.remote is None and not settings.mcp_allow_json_servers:
        raise McpNotAllowedError(
            f"Calling the servers of mcp.json is off on this server (the request asked for "
            f"{source.label!r}). {consent_hint(settings, 'mcp_allow_json_servers')}"
        )


_FLAGS = {"mcp_allow_json_servers": "--allow-mcp-json", "mcp_allow_remote_servers": "--allow-remote-mcp"}


def consent_hint(settings: Settings, key: str) -> str:
    """How to turn a consent setting on: the server's flag, the settings file's key or the environment."""
    return (
        f"Turn it on with `lms server stop` then `lms server start {_FLAGS[key]}` (kept for later starts), "
        f'or "{key}": true in {settings_file_for(settings.home)} (or the environment variable '
        f"OPENLMS_{key.upper()}=true) and a restart."
    )
