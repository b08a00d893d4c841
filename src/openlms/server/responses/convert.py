"""Pure conversions: a Responses request into the services' ChatRequest, a result into a `response`."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.core.types import GenerationStats, SamplingParams, StopReason
from openlms.parsers.output.events import ParsedMessage, ToolCall
from openlms.server.openai.convert import IMAGE_PARTS, image_refused
from openlms.server.responses.protocol import ResponsesRequest
from openlms.server.responses.tools import RequestTools, request_tools
from openlms.services.generation import ChatRequest
from openlms.services.mcp.types import McpTool
from openlms.services.params import PredictionParams
from openlms.services.reasoning import openai_effort
from openlms.services.structured import response_format_grammar
from openlms.services.toolcalls import ToolChoice

TEXT_PARTS = {"input_text", "output_text", "text"}
SILENT_ITEMS = {
    "reasoning",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "item_reference",
}
LIMITS = {StopReason.MAX_TOKENS, StopReason.CONTEXT_LENGTH}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def chat_request(
    req: ResponsesRequest,
    history: list[dict[str, Any]] | None = None,
    mcp_tools: Sequence[McpTool] = (),
    tools: RequestTools | None = None,
) -> ChatRequest:
    """The chat for this request: `instructions` (not carried over from a previous response) as the system
    message, then the stored conversation `history` (previous_response_id), then `input`. Its tools are
    the request's function tools; `mcp_tools` (listed by the host for the request's `mcp` tools, which the
    tool loop offers beside them) only resolve a tool_choice naming one."""
    tools = tools or request_tools(req.tools, req.tool_choice)  # `tools`: already converted
    functions = tools.functions
    params = PredictionParams(
        temperature=req.temperature,
        top_p=req.top_p,
        max_tokens=req.max_output_tokens,
        structured=response_format_grammar(_response_format(req.text)),
        tools=functions,
        tool_choice=_mcp_choice(tools, mcp_tools) if tools.mcp_choice else tools.choice,
        reasoning_effort=openai_effort((req.reasoning or {}).get("effort"), "reasoning.effort"),
    )
    messages = [{"role": "system", "content": req.instructions}] if req.instructions else []
    turn = [*(history or []), *input_messages(req.input, req.model)]
    return ChatRequest(req.model, messages + turn, params, ttl_seconds=req.ttl)


def _mcp_choice(tools: RequestTools, mcp_tools: Sequence[McpTool]) -> ToolChoice:
    """tool_choice {"type": "mcp", "server_label", "name"?}: that tool required (any, without a name)."""
    assert tools.mcp_choice is not None
    label, name = tools.mcp_choice
    if name is None:
        return "required"
    if not any(t.source.label == label and t.name == name for t in mcp_tools):
        raise InvalidRequestError(
            f"tool_choice names the tool '{name}' of MCP server '{label}', which that server does not offer "
            "(or allowed_tools leaves out).",
            param="tool_choice",
        )
    return {"type": "function", "function": {"name": name}}


def conversation(
    req: ResponsesRequest,
    history: list[dict[str, Any]],
    output: list[dict[str, Any]],
    added: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """What a stored response keeps: the history, this input, and the answer as template messages (the
    tool loop's `added` messages when it ran: its calls, their results and the answer)."""
    if added is not None:
        return [*history, *input_messages(req.input), *added]
    texts = [p["text"] for i in output if i["type"] == "message" for p in i["content"]]
    calls = [
        _call(i["call_id"], {"name": i["name"], "arguments": i["arguments"]})
        for i in output
        if i["type"] == "function_call"
    ]
    answer: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    return [*history, *input_messages(req.input), answer | ({"tool_calls": calls} if calls else {})]


def input_messages(value: str | list[dict[str, Any]], model: str = "") -> list[dict[str, Any]]:
    """`input` as template messages: a string is one user message; items are messages, function calls
    (an assistant message with tool_calls), function call outputs (tool messages) and mcp calls (both);
    reasoning and mcp_list_tools items (a previous output sent back) add nothing."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not value:
        raise InvalidRequestError("'input' must not be empty.", param="input")
    return [m for i, item in enumerate(value) for m in _item_messages(item, f"input[{i}]", model)]


def _item_messages(item: dict[str, Any], where: str, model: str) -> list[dict[str, Any]]:
    kind = item.get("type", "message")
    if kind == "message" and item.get("role") in {"user", "assistant", "system", "developer"}:
        return [{"role": item["role"], "content": _text(item.get("content"), where, model)}]
    if kind == "function_call" and isinstance(item.get("name"), str):
        call = {"name": item["name"], "arguments": str(item.get("arguments", "{}"))}
        call_id = str(item.get("call_id", ""))
        return [{"role": "assistant", "content": "", "tool_calls": [_call(call_id, call)]}]
    if kind == "function_call_output" and "call_id" in item:
        output = item.get("output", "")
        text = output if isinstance(output, str) else _text(output, where, model)
        return [{"role": "tool", "content": text, "tool_call_id": str(item["call_id"])}]
    if kind == "mcp_call" and isinstance(item.get("name"), str):
        call_id = str(item.get("id", ""))
        call = {"name": item["name"], "arguments": str(item.get("arguments", "{}"))}
        result = item.get("output") or str(item.get("error") or "")
        return [
            {"role": "assistant", "content": "", "tool_calls": [_call(call_id, call)]},
            {"role": "tool", "content": str(result), "tool_call_id": call_id},
        ]
    if kind in SILENT_ITEMS:
        return []
    if kind in IMAGE_PARTS:
        raise image_refused(model, where)
    raise InvalidRequestError(
        f"{where} must be a message (role user/assistant/system/developer), a function_call, a "
        f"function_call_output or an mcp_call item; got type {kind!r}.",
        param=where,
    )


def _call(call_id: str, function: dict[str, str]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": function}


def _text(content: Any, where: str, model: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}.content must be a string or a list of parts.", param=where)
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            if kind in IMAGE_PARTS:
                raise image_refused(model, f"{where}.content")
            raise InvalidRequestError(
                f"{where}.content has a {kind!r} part; this model accepts input_text parts only.", param=where
            )
        texts.append(str(part.get("text", "")))
    return "".join(texts)


def _response_format(text: dict[str, Any] | None) -> dict[str, Any] | None:
    """`text.format` as a chat `response_format` (json_schema's fields sit flat in Responses)."""
    fmt = (text or {}).get("format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return fmt if isinstance(fmt, dict) else None
    keys = ("name", "schema", "strict", "description")
    return {"type": "json_schema", "json_schema": {k: fmt[k] for k in keys if k in fmt}}


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": []}
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": [part]}


def call_item(item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
    }


def mcp_list_item(item_id: str, label: str, tools: Sequence[McpTool]) -> dict[str, Any]:
    listed = [
        {
            "name": t.name,
            "description": t.description,
            "input_schema": dict(t.input_schema),
            "annotations": None,
        }
        for t in tools
    ]
    return {"type": "mcp_list_tools", "id": item_id, "server_label": label, "tools": listed, "error": None}


def mcp_call_item(item_id: str, label: str, name: str) -> dict[str, Any]:
    """An MCP call as it starts (the stream and the tool's outcome fill in arguments, output, error)."""
    return {
        "type": "mcp_call",
        "id": item_id,
        "server_label": label,
        "name": name,
        "arguments": "",
        "output": None,
        "error": None,
        "status": "in_progress",
    }


def mcp_error(message: str) -> dict[str, Any]:
    """An MCP call's `error`: the tool's failure, crash or timeout, as the model was told."""
    return {"type": "mcp_tool_execution_error", "content": [{"type": "text", "text": message}]}


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": item_id,
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def output_items(message: ParsedMessage, parallel: bool | None = None) -> list[dict[str, Any]]:
    """The answer's items: reasoning, the message (unless only calls), the calls (the first one only when
    `parallel_tool_calls` is false)."""
    items = [reasoning_item(new_id("rs"), message.reasoning)] if message.reasoning else []
    if message.content.strip() or not message.tool_calls:
        items.append(message_item(new_id("msg"), message.content))
    calls = message.tool_calls[:1] if parallel is False else message.tool_calls
    items += [call_item(new_id("fc"), call) for call in calls]
    return items


def _without_secrets(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool as echoed (and stored): an mcp tool's `headers` and `authorization` are not sent back."""
    if tool.get("type") != "mcp":
        return tool
    return {k: v for k, v in tool.items() if k not in ("headers", "authorization")}


def usage(stats: GenerationStats, reasoning_tokens: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": stats.prompt_tokens,
        "input_tokens_details": {"cached_tokens": stats.cached_prompt_tokens},
        "output_tokens": stats.predicted_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": stats.total_tokens,
    }


def response(
    rid: str,
    created: int,
    req: ResponsesRequest,
    output: list[dict[str, Any]],
    stats: GenerationStats | None,
    sampling: SamplingParams | None = None,
    reasoning_tokens: int = 0,
) -> dict[str, Any]:
    """The `response` object; without stats it is still in progress. `sampling`: the settings the
    prediction used (echoed as temperature and top_p; else what the request sent)."""
    cut = stats is not None and stats.stop_reason in LIMITS
    status = "in_progress" if stats is None else "incomplete" if cut else "completed"
    texts = [p["text"] for i in output if i["type"] == "message" for p in i["content"]]
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": req.model,
        "output": output,
        "output_text": "".join(texts),
        "instructions": req.instructions,
        "max_output_tokens": req.max_output_tokens,
        "temperature": sampling.temperature if sampling else req.temperature,
        "top_p": sampling.top_p if sampling else req.top_p,
        "reasoning": {"effort": (req.reasoning or {}).get("effort"), "summary": None},
        "tools": [_without_secrets(t) for t in req.tools or []],
        "tool_choice": req.tool_choice or "auto",
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "text": req.text or {"format": {"type": "text"}},
        "metadata": req.metadata or {},
        "previous_response_id": req.previous_response_id,
        "store": req.store is not False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "usage": usage(stats, reasoning_tokens) if stats is not None else None,
    }
