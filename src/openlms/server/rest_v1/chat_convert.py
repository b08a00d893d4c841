"""Pure conversions for `/api/v1/chat`: the request into the services' `ChatRequest` and tool sources, the
tool loop's results into LM Studio's output items and stats."""

from __future__ import annotations

import json
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.core.types import GenerationStats
from openlms.server.openai.convert import image_refused
from openlms.server.rest_v1.chat_protocol import (
    ChatRequestBody,
    EphemeralMcpIntegration,
    Integration,
    PluginIntegration,
)
from openlms.services.generation import ChatRequest
from openlms.services.mcp.types import McpTool, RemoteServer, ToolSource
from openlms.services.params import PredictionParams

PLUGIN_PREFIX = "mcp/"


def tool_sources(integrations: list[Integration] | None) -> list[ToolSource]:
    """`"mcp/<label>"`, `{type: plugin, id: "mcp/<label>"}` (servers of mcp.json) and `ephemeral_mcp`
    (a remote server named here) as the MCP host's tool sources."""
    return [_source(item, f"integrations[{i}]") for i, item in enumerate(integrations or [])]


def _source(item: Integration, where: str) -> ToolSource:
    if isinstance(item, EphemeralMcpIntegration):
        allowed = tuple(item.allowed_tools) if item.allowed_tools is not None else None
        remote = RemoteServer(item.server_url, dict(item.headers or {}))
        return ToolSource(item.server_label, allowed, remote)
    plugin_id = item.id if isinstance(item, PluginIntegration) else item
    label = plugin_id[len(PLUGIN_PREFIX) :] if plugin_id.startswith(PLUGIN_PREFIX) else ""
    if not label:
        raise InvalidRequestError(
            f"{where} names plugin {plugin_id!r}; openlms runs MCP servers only: name a server of mcp.json "
            "as 'mcp/<name>' (see `lms mcp ls`), or a remote one as {'type': 'ephemeral_mcp', ...}.",
            param=where,
        )
    names = item.allowed_tools if isinstance(item, PluginIntegration) else None
    return ToolSource(label, tuple(names) if names is not None else None)


def provider_info(tool: McpTool) -> dict[str, str]:
    if tool.source.remote is not None:
        return {"type": "ephemeral_mcp", "server_label": tool.source.label}
    return {"type": "plugin", "plugin_id": PLUGIN_PREFIX + tool.source.label}


def input_messages(body: ChatRequestBody) -> list[dict[str, Any]]:
    """`input` as one user message: a string, or its text items joined (an image is a clear 400)."""
    if isinstance(body.input, str):
        return [{"role": "user", "content": body.input}]
    if not body.input:
        raise InvalidRequestError("'input' must not be empty: send a string or text items.", param="input")
    texts = []
    for i, item in enumerate(body.input):
        if item.type == "image":
            raise image_refused(body.model, f"input[{i}]")
        if item.content is None:
            raise InvalidRequestError(
                f"input[{i}] is a {item.type!r} item without 'content'; give its text as 'content'.",
                param=f"input[{i}].content",
            )
        texts.append(item.content)
    return [{"role": "user", "content": "\n".join(texts)}]


def conversation(body: ChatRequestBody, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat: the system prompt (the request's, else the stored one), the stored history, the input."""
    stored = [m for m in history if m.get("role") != "system"]
    system = [{"role": "system", "content": body.system_prompt}] if body.system_prompt else []
    if not system:
        system = [m for m in history[:1] if m.get("role") == "system"]
    return [*system, *stored, *input_messages(body)]


def chat_request(body: ChatRequestBody, messages: list[dict[str, Any]], model: str) -> ChatRequest:
    """The services' request, with only the settings the client set (`model`: the instance to use)."""
    params = PredictionParams(
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        min_p=body.min_p,
        repeat_penalty=body.repeat_penalty,
        max_tokens=body.max_output_tokens,
        reasoning_effort=body.reasoning,
        tool_choice=body.tool_choice,
    )
    return ChatRequest(model, messages, params, ttl_seconds=body.ttl)


def arguments_object(text: str) -> dict[str, Any]:
    """A call's arguments as an object for the client (text that is no JSON object is kept as `_raw`)."""
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_raw": text}


def stats(summed: GenerationStats, reasoning_tokens: int, load_time_s: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": summed.prompt_tokens,
        "total_output_tokens": summed.predicted_tokens,
        "reasoning_output_tokens": reasoning_tokens,
        "tokens_per_second": summed.tokens_per_second,
        "time_to_first_token_seconds": round(summed.time_to_first_token_s, 3),
    }
    if load_time_s is not None:
        out["model_load_time_seconds"] = round(load_time_s, 3)
    return out
