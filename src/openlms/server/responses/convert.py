"""Pure conversions: a Responses request into the services' ChatRequest, a result into a `response`."""

from __future__ import annotations

import secrets
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.core.types import GenerationStats, StopReason
from openlms.parsers.output.events import ParsedMessage, ToolCall
from openlms.server.responses.protocol import ResponsesRequest
from openlms.services.generation import ChatRequest
from openlms.services.params import PredictionParams
from openlms.services.structured import response_format_grammar

TEXT_PARTS = {"input_text", "output_text", "text"}
LIMITS = {StopReason.MAX_TOKENS, StopReason.CONTEXT_LENGTH}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def chat_request(req: ResponsesRequest, history: list[dict[str, Any]] | None = None) -> ChatRequest:
    """The chat for this request: `instructions` (not carried over from a previous response) as the system
    message, then the stored conversation `history` (previous_response_id), then `input`."""
    params = PredictionParams(
        temperature=req.temperature,
        top_p=req.top_p,
        max_tokens=req.max_output_tokens,
        structured=response_format_grammar(_response_format(req.text)),
        tools=_tools(req.tools),
        tool_choice=_tool_choice(req.tool_choice),
    )
    messages = [{"role": "system", "content": req.instructions}] if req.instructions else []
    turn = [*(history or []), *input_messages(req.input)]
    return ChatRequest(req.model, messages + turn, params, ttl_seconds=req.ttl)


def conversation(
    req: ResponsesRequest, history: list[dict[str, Any]], output: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """What a stored response keeps: the history, this input, and the answer as template messages."""
    texts = [p["text"] for i in output if i["type"] == "message" for p in i["content"]]
    calls = [
        _call(i["call_id"], {"name": i["name"], "arguments": i["arguments"]})
        for i in output
        if i["type"] == "function_call"
    ]
    answer: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    return [*history, *input_messages(req.input), answer | ({"tool_calls": calls} if calls else {})]


def input_messages(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`input` as template messages: a string is one user message; items are messages, function calls
    (an assistant message with tool_calls) and function call outputs (tool messages)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not value:
        raise InvalidRequestError("'input' must not be empty.", param="input")
    return [_item_message(item, f"input[{i}]") for i, item in enumerate(value)]


def _item_message(item: dict[str, Any], where: str) -> dict[str, Any]:
    kind = item.get("type", "message")
    if kind == "message" and item.get("role") in {"user", "assistant", "system", "developer"}:
        return {"role": item["role"], "content": _text(item.get("content"), where)}
    if kind == "function_call" and isinstance(item.get("name"), str):
        call = {"name": item["name"], "arguments": str(item.get("arguments", "{}"))}
        call_id = str(item.get("call_id", ""))
        return {"role": "assistant", "content": "", "tool_calls": [_call(call_id, call)]}
    if kind == "function_call_output" and "call_id" in item:
        output = item.get("output", "")
        text = output if isinstance(output, str) else _text(output, where)
        return {"role": "tool", "content": text, "tool_call_id": str(item["call_id"])}
    if kind == "reasoning":
        return {"role": "assistant", "content": ""}
    raise InvalidRequestError(
        f"{where} must be a message (role user/assistant/system/developer), a function_call or a "
        f"function_call_output item; got type {kind!r}.",
        param=where,
    )


def _call(call_id: str, function: dict[str, str]) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": function}


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequestError(f"{where}.content must be a string or a list of parts.", param=where)
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise InvalidRequestError(
                f"{where}.content has a {kind!r} part; this model accepts input_text parts only.", param=where
            )
        texts.append(str(part.get("text", "")))
    return "".join(texts)


def _tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Flat Responses function tools as chat-completions tools."""
    if not tools:
        return None
    out = []
    for i, tool in enumerate(tools):
        if tool.get("type") != "function" or not isinstance(tool.get("name"), str):
            raise InvalidRequestError(
                f"tools[{i}] must be {{'type': 'function', 'name': ..., 'parameters': ...}}; "
                f"only function tools are supported (got type {tool.get('type')!r}).",
                param=f"tools[{i}]",
            )
        keys = ("name", "description", "parameters", "strict")
        out.append({"type": "function", "function": {k: tool[k] for k in keys if k in tool}})
    return out


def _tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    if isinstance(choice, dict) and choice.get("type") == "function" and "function" not in choice:
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice


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


def reasoning_item(item_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "reasoning",
        "id": item_id,
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def output_items(message: ParsedMessage) -> list[dict[str, Any]]:
    items = [reasoning_item(new_id("rs"), message.reasoning)] if message.reasoning else []
    if message.content.strip() or not message.tool_calls:
        items.append(message_item(new_id("msg"), message.content))
    items += [call_item(new_id("fc"), call) for call in message.tool_calls]
    return items


def usage(stats: GenerationStats) -> dict[str, Any]:
    return {
        "input_tokens": stats.prompt_tokens,
        "input_tokens_details": {"cached_tokens": stats.cached_prompt_tokens},
        "output_tokens": stats.predicted_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": stats.total_tokens,
    }


def response(
    rid: str, created: int, req: ResponsesRequest, output: list[dict[str, Any]], stats: GenerationStats | None
) -> dict[str, Any]:
    """The `response` object; without stats it is still in progress."""
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
        "temperature": req.temperature,
        "top_p": req.top_p,
        "tools": req.tools or [],
        "tool_choice": req.tool_choice or "auto",
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "text": req.text or {"format": {"type": "text"}},
        "metadata": req.metadata or {},
        "previous_response_id": req.previous_response_id,
        "store": req.store is not False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "usage": usage(stats) if stats is not None else None,
    }
