"""A Responses request's `tools` and `tool_choice`, converted (pure): function tools into chat-completions
tools, `mcp` tools into the host's `ToolSource`s, and the choice into the chat form.

Tool types that openlms cannot run (OpenAI's hosted tools: `web_search`, `file_search`, `code_interpreter`,
`image_generation`, `computer_use_preview`, and `local_shell`, `shell`, `apply_patch`, `custom` ...) are
left out with a warning instead of refusing the request: Codex-style clients send several of them with
every request, next to the function tools they really use, and a 400 would make them unusable. The model
is simply not offered them (the `tools` echoed in the response still lists them). A `tool_choice` that
insists on one of them is a 400: that request cannot be answered as asked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.services.mcp.types import RemoteServer, ToolSource
from openlms.services.toolcalls import ToolChoice

log = logging.getLogger("openlms.server")

CHOICES = ("auto", "none", "required")


@dataclass(frozen=True, slots=True)
class McpRequest:
    """One `mcp` tool of the request: where its tools come from, and how the model may use them."""

    source: ToolSource
    require_approval: Any = None  # "never" | "always" | {...}: openlms runs calls without asking


@dataclass(frozen=True, slots=True)
class RequestTools:
    functions: list[dict[str, Any]] | None  # the function tools, chat-completions shaped
    choice: ToolChoice
    mcp: tuple[McpRequest, ...] = ()
    mcp_choice: tuple[str, str | None] | None = None  # tool_choice {"type": "mcp"}: (label, tool name)
    skipped: tuple[str, ...] = ()  # tool types left out


def request_tools(tools: list[dict[str, Any]] | None, choice: str | dict[str, Any] | None) -> RequestTools:
    functions: list[dict[str, Any]] = []
    servers: list[McpRequest] = []
    skipped: list[str] = []
    for i, tool in enumerate(tools or []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            functions.append(_function(tool, f"tools[{i}]"))
        elif kind == "mcp":
            servers.append(_mcp(tool, f"tools[{i}]"))
        elif isinstance(kind, str) and kind:
            skipped.append(kind)
        else:
            raise InvalidRequestError(f"tools[{i}] must be an object with a 'type'.", param=f"tools[{i}]")
    if skipped:
        log.warning("/v1/responses: tool types openlms cannot run were left out: %s", ", ".join(skipped))
    functions, chat_choice, mcp_choice = _choice(choice, functions, skipped)
    labels = [s.source.label for s in servers]
    if mcp_choice is not None and mcp_choice[0] not in labels:
        raise InvalidRequestError(
            f"tool_choice names the MCP server '{mcp_choice[0]}', which no 'mcp' tool in 'tools' has as its "
            "server_label.",
            param="tool_choice",
        )
    return RequestTools(functions or None, chat_choice, tuple(servers), mcp_choice, tuple(skipped))


def _function(tool: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(tool.get("name"), str) or not tool["name"]:
        raise InvalidRequestError(
            f"{where} must be {{'type': 'function', 'name': ..., 'parameters': ...}} (a non-empty 'name').",
            param=where,
        )
    keys = ("name", "description", "parameters", "strict")
    return {"type": "function", "function": {k: tool[k] for k in keys if k in tool}}


def _mcp(tool: Mapping[str, Any], where: str) -> McpRequest:
    label = tool.get("server_label")
    if not isinstance(label, str) or not label:
        raise InvalidRequestError(f"{where}.server_label must be a non-empty string.", param=where)
    if tool.get("connector_id") is not None:
        raise InvalidRequestError(
            f"{where}: connectors (connector_id) are OpenAI-hosted and not available in openlms; give a "
            "server_url, or no URL to use the mcp.json server of that server_label.",
            param=where,
        )
    url = tool.get("server_url")
    remote = RemoteServer(url, _headers(tool, where)) if url is not None else None
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        raise InvalidRequestError(f"{where}.server_url must be an http(s) URL.", param=where)
    source = ToolSource(label, _allowed(tool.get("allowed_tools"), where), remote)
    approval = tool.get("require_approval")
    if approval not in (None, "never"):
        log.info(
            "MCP server '%s': require_approval %r: openlms runs its tools without asking", label, approval
        )
    return McpRequest(source, approval)


def _headers(tool: Mapping[str, Any], where: str) -> dict[str, str]:
    headers = tool.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise InvalidRequestError(f"{where}.headers must be an object of strings.", param=where)
    token = tool.get("authorization")
    if isinstance(token, str) and token:
        headers = {**headers, "Authorization": f"Bearer {token}"}
    return {str(k): v for k, v in headers.items()}


def _allowed(value: Any, where: str) -> tuple[str, ...] | None:
    """`allowed_tools`: a list of names, or `{"tool_names": [...]}`; None: all of the server's tools."""
    if value is None:
        return None
    names = value.get("tool_names") if isinstance(value, dict) else value
    if names is None and isinstance(value, dict):
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidRequestError(
            f"{where}.allowed_tools must be a list of tool names (or {{'tool_names': [...]}}).", param=where
        )
    return tuple(names)


def _choice(
    choice: str | dict[str, Any] | None, functions: list[dict[str, Any]], skipped: list[str]
) -> tuple[list[dict[str, Any]], ToolChoice, tuple[str, str | None] | None]:
    """(the function tools offered, the chat tool_choice, an mcp choice)."""
    if choice is None or isinstance(choice, str):
        if choice is not None and choice not in CHOICES:
            raise InvalidRequestError(
                f"'tool_choice' must be one of {', '.join(CHOICES)}.", param="tool_choice"
            )
        return functions, choice, None
    kind = choice.get("type")
    if kind == "function":
        return functions, {"type": "function", "function": {"name": choice.get("name")}}, None
    if kind == "allowed_tools":
        return _allowed_choice(choice, functions)
    if kind == "mcp":
        label, name = choice.get("server_label"), choice.get("name")
        if not isinstance(label, str) or not (name is None or isinstance(name, str)):
            raise InvalidRequestError(
                "tool_choice {'type': 'mcp'} needs a 'server_label' (and optionally a tool 'name').",
                param="tool_choice",
            )
        return functions, "required", (label, name)
    raise InvalidRequestError(
        f"tool_choice of type {kind!r} cannot be honoured: openlms runs function and mcp tools only"
        + (f" (left out: {', '.join(skipped)})" if skipped else "")
        + ". Use 'auto', 'required', or a function or mcp tool.",
        param="tool_choice",
    )


def _allowed_choice(
    choice: Mapping[str, Any], functions: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], ToolChoice, None]:
    """`{"type": "allowed_tools", "mode": "auto"|"required", "tools": [{"type": "function", "name"}...]}`:
    only the listed function tools are offered."""
    mode, listed = choice.get("mode", "auto"), choice.get("tools")
    if mode not in ("auto", "required") or not isinstance(listed, list):
        raise InvalidRequestError(
            "tool_choice {'type': 'allowed_tools'} needs 'mode' ('auto' or 'required') and a 'tools' list.",
            param="tool_choice",
        )
    names = {t.get("name") for t in listed if isinstance(t, dict) and t.get("type") == "function"}
    kept = [f for f in functions if f["function"]["name"] in names]
    if not kept and mode == "required":
        raise InvalidRequestError(
            "tool_choice {'type': 'allowed_tools', 'mode': 'required'} lists no function tool of 'tools'.",
            param="tool_choice",
        )
    return kept, mode if kept else None, None
