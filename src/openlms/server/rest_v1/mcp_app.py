"""The app's Program panel routes over `<home>/mcp.json` (local only: the file holds programs to run and
their secrets): `GET/PUT /api/v1/mcp/config` (the whole file as text), `POST /api/v1/mcp/deeplink` (preview
or install an `lmstudio://add_mcp` link), `POST /api/v1/mcp/servers/{name}/tools/{tool}/call` (one call the
user allowed in the app's consent dialog)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from openlms.server import openapi as doc
from openlms.server.loopback import require_loopback
from openlms.server.rest_v1.mcp import McpToolInfo, ServerName, _without_secrets, tool_json
from openlms.server.state import State
from openlms.services.mcp import user_actions
from openlms.services.mcp.user_actions import LinkPreview

router = APIRouter(prefix="/api/v1/mcp")
_WHAT = "Reading, changing or calling mcp.json's servers from the app"
ToolName = Annotated[str, Path(min_length=1, max_length=256, description="The tool's name")]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class McpConfigText(_Open):
    path: str
    text: str = Field(description="The file as written (empty when there is none)")
    exists: bool
    max_tool_rounds: int = Field(
        description="Tool rounds a chat makes before it answers (mcp_max_tool_rounds)"
    )


class McpConfigBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=1_000_000, description="The whole new mcp.json")


class McpConfigSaved(_Open):
    path: str
    servers: list[str] = Field(description="The servers of the saved file, in file order")


class McpLinkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    link: str = Field(min_length=1, max_length=65_536, description="lmstudio://add_mcp?name=...&config=...")
    install: bool = Field(default=False, description="False: only say what it would add")


class McpLinkPreview(_Open):
    name: str
    type: Literal["stdio", "http", "sse"]
    command: str | None
    args: list[str]
    url: str | None = Field(description="Without its query and credentials")
    env_keys: list[str] = Field(description="The environment variables it sets (values not shown)")
    header_keys: list[str] = Field(description="The HTTP headers it sends (values not shown)")
    replaces: bool = Field(description="A server of that name is in mcp.json (installing replaces it)")
    installed: bool


class McpToolList(_Open):
    name: str
    tools: list[McpToolInfo]


class McpCallBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arguments: dict[str, Any] = Field(default_factory=dict)


class McpCallResult(_Open):
    ok: bool
    output: str = Field(description="The text for the model (the result, or what went wrong)")
    error: str | None


@router.get("/config", response_model=None, responses=doc.responses(doc.ok(McpConfigText), 500))
async def get_config(request: Request, state: State) -> dict[str, Any]:
    """mcp.json as text, for the app's editor."""
    require_loopback(request, _WHAT)
    text = await user_actions.read_text(state.mcp.path)
    path, rounds = str(state.mcp.path), state.settings.mcp_max_tool_rounds
    return {"path": path, "text": text.text, "exists": text.exists, "max_tool_rounds": rounds}


@router.put("/config", response_model=None, responses=doc.responses(doc.ok(McpConfigSaved), 500))
async def put_config(body: McpConfigBody, request: Request, state: State) -> dict[str, Any]:
    """Replace mcp.json (atomically); a file that does not read is a 400 naming its line and field."""
    require_loopback(request, _WHAT)
    servers = await user_actions.replace_text(state.mcp, body.text)
    return {"path": str(state.mcp.path), "servers": servers}


@router.post("/deeplink", response_model=None, responses=doc.responses(doc.ok(McpLinkPreview), 500))
async def deeplink(body: McpLinkBody, request: Request, state: State) -> dict[str, Any]:
    """What an install link adds (`install: false`), or add it to mcp.json (`install: true`)."""
    require_loopback(request, _WHAT)
    if body.install:
        preview = await user_actions.install_link(state.mcp, body.link)
    else:
        preview = await user_actions.preview_link(state.mcp, body.link)
    return preview_json(preview, installed=body.install)


@router.get(
    "/servers/{name}/tools",
    response_model=None,
    responses=doc.responses(doc.ok(McpToolList), 404, 502, 500),
)
async def list_tools(name: ServerName, request: Request, state: State) -> dict[str, Any]:
    """One server's tools (it is started if need be; no other server is): what the app offers a chat."""
    require_loopback(request, _WHAT)
    tools = await user_actions.server_tools(state.mcp, name)
    return {"name": name, "tools": [tool_json(tool) for tool in tools]}


@router.post(
    "/servers/{name}/tools/{tool}/call",
    response_model=None,
    responses=doc.responses(doc.ok(McpCallResult), 500),
)
async def call_tool(
    name: ServerName, tool: ToolName, body: McpCallBody, request: Request, state: State
) -> dict[str, Any]:
    """Call one tool the user allowed (the host's timeout); a tool's failure is `ok: false`, not an error."""
    require_loopback(request, _WHAT)
    result = await user_actions.call_tool(state.mcp, name, tool, body.arguments)
    return {"ok": result.ok, "output": result.output, "error": result.error}


def preview_json(preview: LinkPreview, *, installed: bool) -> dict[str, Any]:
    config = preview.config
    return {
        "name": preview.name,
        "type": config.kind,
        "command": config.command,
        "args": list(config.args),
        "url": _without_secrets(config.url),
        "env_keys": list(config.env),
        "header_keys": list(config.headers),
        "replaces": preview.replaces,
        "installed": installed,
    }
