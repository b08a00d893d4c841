"""MCP test servers: a FastMCP (`MCPServer`) script over stdio, streamable HTTP or SSE
(`server_script.py`), `write_mcp_json` for a test home, and `http_server` (a context manager)."""

from tests.support.mcp.helpers import (
    SERVER_SCRIPT,
    http_server,
    stdio_config,
    write_mcp_json,
)

__all__ = ["SERVER_SCRIPT", "http_server", "stdio_config", "write_mcp_json"]
