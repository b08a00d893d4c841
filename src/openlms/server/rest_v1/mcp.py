"""openlms's MCP admin routes over `<home>/mcp.json` (what `lms mcp` uses): `GET /api/v1/mcp/servers`
(`?tools=true` starts the servers to list their tools), `PUT /api/v1/mcp/servers/{name}` (body: the
server's mcp.json entry), `DELETE /api/v1/mcp/servers/{name}`. Writes come from the local machine only:
an mcp.json entry is a program this machine may run."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from openlms.server import openapi as doc
from openlms.server.loopback import require_loopback
from openlms.server.state import AppState, State
from openlms.services.mcp.admin import McpAdmin, ServerEntry
from openlms.services.mcp.types import McpTool

router = APIRouter(prefix="/api/v1/mcp")

ServerName = Annotated[str, Path(min_length=1, max_length=128, description="The server's name in mcp.json")]
_WRITES = "Changing mcp.json"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class McpToolInfo(_Open):
    name: str
    description: str
    input_schema: dict[str, Any] = Field(description="The tool's arguments, a JSON schema object")


class McpServerInfo(_Open):
    name: str
    type: Literal["stdio", "http", "sse"] = Field(description="stdio: a program; http / sse: a remote server")
    status: Literal["stopped", "starting", "running", "failed"]
    error: str | None = Field(description="Why the server failed to start (status failed)")
    command: str | None = Field(description="The program a stdio server runs (its arguments are not shown)")
    url: str | None = Field(description="A remote server's URL")
    tools: list[McpToolInfo] | None = Field(description="Its tools (null unless listed: ?tools=true)")


class McpServerList(_Open):
    path: str = Field(description="The mcp.json file")
    calls_allowed: bool = Field(
        description="Whether requests may call these servers (the mcp_allow_json_servers setting)"
    )
    servers: list[McpServerInfo]


class McpServerWritten(_Open):
    name: str
    type: Literal["stdio", "http", "sse"]
    created: bool = Field(description="False when a server of that name was replaced")
    path: str


class McpServerRemoved(_Open):
    name: str
    removed: bool
    path: str


MCP_ENTRY_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "The server's mcp.json entry (Cursor's notation): a program to start, "
                    "or a remote server",
                    "properties": {
                        "command": {"type": "string", "minLength": 1},
                        "args": {"type": "array", "items": {"type": "string"}},
                        "env": {"type": "object", "additionalProperties": {"type": "string"}},
                        "url": {"type": "string", "pattern": "^https?://[^/?#]"},
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    "oneOf": [{"required": ["command"]}, {"required": ["url"]}],
                }
            }
        },
    }
}


def admin(state: AppState) -> McpAdmin:
    return McpAdmin(state.settings, state.mcp)


@router.get("/servers", response_model=None, responses=doc.responses(doc.ok(McpServerList), 500))
async def list_servers(
    state: State,
    tools: Annotated[bool, Query(description="Start the servers to list their tools")] = False,
) -> dict[str, Any]:
    """The servers of mcp.json in file order, with their state (and tools when asked)."""
    mcp = admin(state)
    entries = await mcp.servers(with_tools=tools)
    return {
        "path": str(mcp.path),
        "calls_allowed": state.settings.mcp_allow_json_servers,
        "servers": [server_json(entry) for entry in entries],
    }


@router.put(
    "/servers/{name}",
    response_model=None,
    responses=doc.responses(doc.ok(McpServerWritten), 500),
    openapi_extra=MCP_ENTRY_BODY,
)
async def put_server(
    name: ServerName, body: Annotated[dict[str, Any], Body()], request: Request, state: State
) -> dict[str, Any]:
    """Add a server to mcp.json, or replace the one of that name (the rest of the file is kept)."""
    require_loopback(request, _WRITES)
    mcp = admin(state)
    result = await mcp.put(name, body)
    return {"name": name, "type": result.config.kind, "created": result.created, "path": str(mcp.path)}


@router.delete(
    "/servers/{name}", response_model=None, responses=doc.responses(doc.ok(McpServerRemoved), 404, 500)
)
async def delete_server(name: ServerName, request: Request, state: State) -> dict[str, Any]:
    """Remove a server from mcp.json (stopping it if it runs); 404 when there is none of that name."""
    require_loopback(request, _WRITES)
    mcp = admin(state)
    await mcp.remove(name)
    return {"name": name, "removed": True, "path": str(mcp.path)}


def server_json(entry: ServerEntry) -> dict[str, Any]:
    status, config = entry.status, entry.config
    return {
        "name": config.name,
        "type": config.kind,
        "status": status.state,
        "error": status.error,
        "command": config.command,
        "url": _without_secrets(config.url),
        "tools": None if status.tools is None else [tool_json(tool) for tool in status.tools],
    }


def tool_json(tool: McpTool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": dict(tool.input_schema)}


def _without_secrets(url: str | None) -> str | None:
    """The URL without its query and credentials (they may hold tokens)."""
    if url is None:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
