"""The MCP host: servers from `<home>/mcp.json` and per-request remote servers, through the official `mcp`
SDK (see `types.py` for what the rest of openlms sees of it)."""
