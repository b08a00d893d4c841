"""What the rest of openlms sees of MCP: the tools a request may use, and the outcome of a call.

A request names its tool sources (`ToolSource`): a server of `mcp.json` by its label, or a remote server
given in the request itself (`/api/v1/chat`'s `ephemeral_mcp`, `/v1/responses`' `mcp` tools). The host
(`host.McpHost`, implementing `ToolHost`) checks the settings that allow each kind, starts servers lazily,
lists their tools (filtered by `allowed_tools`) and calls them with a timeout. A failing, crashing or
timing-out tool is an outcome with `ok=False` and a message for the model, never an exception: the
prediction goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ServerKind = Literal["stdio", "http", "sse"]
ServerState = Literal["stopped", "starting", "running", "failed"]


@dataclass(frozen=True, slots=True)
class RemoteServer:
    """A remote MCP server named by a request (streamable HTTP, or SSE when the URL ends in `/sse`)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolSource:
    """One tool source a request asks for: `label` is the mcp.json server's name (`remote` None) or the
    request's `server_label` for a remote server; `allowed_tools` None means all of its tools."""

    label: str
    allowed_tools: tuple[str, ...] | None = None
    remote: RemoteServer | None = None


@dataclass(frozen=True, slots=True)
class McpTool:
    """A tool as its server lists it."""

    source: ToolSource
    name: str
    description: str
    input_schema: Mapping[str, Any]  # a JSON schema object ({"type": "object", ...})

    def as_function(self) -> dict[str, Any]:
        """The tool in OpenAI's function-tool shape (what `PredictionParams.tools` holds)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.input_schema),
            },
        }


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """A call's result: `output` is the text for the model (the tool's text content joined, or what went
    wrong and what to do); `ok` False for an error the tool reported, a crash, or a timeout."""

    ok: bool
    output: str
    error: str | None = None  # for the client: why it failed (None when ok)


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """One server of mcp.json, for `lms mcp ls` and the app."""

    name: str
    kind: ServerKind
    state: ServerState
    error: str | None = None  # why it failed to start (state "failed")
    tools: tuple[McpTool, ...] | None = None  # None: not listed (not started and not asked to)


class ToolHost(Protocol):
    async def tools(self, sources: Sequence[ToolSource]) -> list[McpTool]:
        """The tools of these sources (servers started as needed). Raises `McpNotAllowedError` when the
        settings do not allow a source's kind, `McpServerNotFoundError` for an unknown mcp.json label,
        `McpConnectionError` when a server cannot be started or reached, `McpConfigError` for a broken
        mcp.json."""
        ...

    async def call(self, tool: McpTool, arguments: Mapping[str, Any]) -> ToolOutcome:
        """Call one tool (timeout: the `mcp_tool_timeout_s` setting). Never raises for the tool's own
        failure, a crash of its server or a timeout: those are `ok=False` outcomes."""
        ...


class ScopedToolHost(ToolHost, Protocol):
    """A `ToolHost` with request scopes (what `McpHost` is): `async with host.session() as scope:` gives a
    `ToolHost` whose per-request remote servers stay connected for the whole request (listed once, called
    many times) and are closed when the scope ends. Without a scope, `tools()`/`call()` connect to a
    remote server for that one call; mcp.json servers are shared either way."""

    def session(self) -> AbstractAsyncContextManager[ToolHost]: ...
