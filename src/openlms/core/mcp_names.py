"""The names of mcp.json's servers: each is a label (`mcp/<name>` in requests) and a URL path segment
(`/api/v1/mcp/servers/{name}`), so it may hold neither slashes nor control characters. Pure: the store,
the server and `lms mcp` check names the same way."""

from __future__ import annotations

import re

from openlms.core.errors import McpConfigError

MAX_NAME_LENGTH = 128
_BAD_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def check_server_name(name: str) -> None:
    """Refuse names that cannot be a label or could be read as a path (`McpConfigError`, param `name`)."""
    if not name or not name.strip():
        raise McpConfigError("An MCP server needs a name: give a non-empty one (e.g. 'time').", param="name")
    if name != name.strip() or _BAD_NAME.search(name) or name in {".", ".."} or len(name) > MAX_NAME_LENGTH:
        raise McpConfigError(
            f"MCP server name {name!r} is not usable: use letters, digits, '-', '_' or '.' without slashes, "
            f"control characters or surrounding spaces (at most {MAX_NAME_LENGTH} characters).",
            param="name",
        )
