"""Pure conversions between Anthropic Messages shapes and openlms's service types."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import replace
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.core.types import GenerationStats, StopReason
from openlms.parsers.output.events import ParsedMessage
from openlms.server.anthropic.protocol import (
    Block,
    CountTokensRequest,
    MessagesRequest,
    OutputConfig,
    Thinking,
    Tool,
    ToolChoice,
)
from openlms.services.generation import ChatRequest
from openlms.services.params import PredictionParams
from openlms.services.structured import schema_grammar
from openlms.services.toolcalls import ToolChoice as ServiceToolChoice

# Anthropic's error type per HTTP status (the status comes from server/errors.py's one table)
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(status), "message": message}}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def chat_request(req: CountTokensRequest) -> ChatRequest:
    effort = reasoning_effort(req.thinking, req.output_config)
    params = PredictionParams(
        tools=tools(req),
        tool_choice=tool_choice(req.tool_choice),
        reasoning_effort=effort,
        reasoning_parsing=True if effort not in (None, "off") else None,  # thinking blocks, never <think>
    )
    if isinstance(req, MessagesRequest):
        params = replace(
            params,
            temperature=req.temperature,
            top_p=req.top_p,
            top_k=req.top_k,
            max_tokens=req.max_tokens,
            stop=tuple(s for s in req.stop_sequences or () if s) or None,
            structured=structured(req),
        )
    return ChatRequest(req.model, template_messages(req), params)


EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


def reasoning_effort(thinking: Thinking | None, output: OutputConfig | None) -> str | None:
    """The reasoning switch: thinking disabled → off; output_config.effort → its level; thinking enabled
    (or between_tools) → on; adaptive or unset → the model's own default."""
    if thinking is not None and thinking.type == "disabled":
        return "off"
    if output is not None and output.effort is not None:
        return EFFORTS[output.effort]
    if thinking is None or thinking.type == "adaptive":
        return None
    return "on"


def structured(req: MessagesRequest) -> str | None:
    """`output_config.format` (or `output_format`) as the grammar the answer follows."""
    if req.output_config is not None and req.output_config.format is not None:
        fmt, where = req.output_config.format, "output_config.format.schema"
    elif req.output_format is not None:
        fmt, where = req.output_format, "output_format.schema"
    else:
        return None
    return schema_grammar(fmt.schema_, param=where)


def tools(req: CountTokensRequest) -> list[dict[str, Any]] | None:
    if not req.tools or (req.tool_choice and req.tool_choice.type == "none"):
        return None
    return [_function(tool, f"tools[{index}]") for index, tool in enumerate(req.tools)]


def _function(tool: Tool, where: str) -> dict[str, Any]:
    if tool.type not in (None, "custom"):
        raise InvalidRequestError(
            f"{where} is Anthropic's server tool '{tool.type}', which this server cannot run; send custom "
            "tools (name, description, input_schema) that your client runs.",
            param=f"{where}.type",
        )
    if tool.input_schema is None:
        raise InvalidRequestError(
            f"{where} ('{tool.name}') has no input_schema; give its arguments as a JSON schema.",
            param=f"{where}.input_schema",
        )
    function = {"name": tool.name, "description": tool.description or "", "parameters": tool.input_schema}
    return {"type": "function", "function": function}


def tool_choice(choice: ToolChoice | None) -> ServiceToolChoice:
    if choice is None or choice.type == "auto":
        return None
    if choice.type == "any":
        return "required"
    if choice.type == "none":
        return "none"
    if not choice.name:
        raise InvalidRequestError(
            "tool_choice of type 'tool' needs the tool's 'name'.", param="tool_choice.name"
        )
    return {"type": "function", "function": {"name": choice.name}}


def template_messages(req: CountTokensRequest) -> list[dict[str, Any]]:
    """The conversation as chat templates expect it (OpenAI-style roles, tool calls and tool results)."""
    out: list[dict[str, Any]] = []
    system = _text(req.system, "system") if req.system is not None else ""
    if system:
        out.append({"role": "system", "content": system})
    for index, message in enumerate(req.messages):
        where = f"messages[{index}].content"
        if isinstance(message.content, str):
            out.append({"role": message.role, "content": message.content})
        elif message.role == "assistant":
            out.append(_assistant(message.content, where))
        else:
            out += _user(message.content, where)
    return out


def _assistant(blocks: list[Block], where: str) -> dict[str, Any]:
    calls = [
        {
            "id": b.id or new_id("toolu"),
            "type": "function",
            "function": {"name": b.name or "", "arguments": json.dumps(b.input or {})},
        }
        for b in blocks
        if b.type == "tool_use"
    ]
    texts = [b for b in blocks if b.type not in ("tool_use", "thinking", "redacted_thinking")]
    entry: dict[str, Any] = {"role": "assistant", "content": _text(texts, where)}
    thinking = "".join(b.thinking or "" for b in blocks if b.type == "thinking")
    if thinking:  # as chat templates read earlier reasoning (most drop it); redacted_thinking is dropped
        entry["reasoning_content"] = thinking
    if calls:
        entry["tool_calls"] = calls
    return entry


def _user(blocks: list[Block], where: str) -> list[dict[str, Any]]:
    """Tool results become `tool` messages (in order); the rest of the text one user message."""
    out: list[dict[str, Any]] = []
    for block in blocks:
        if block.type == "tool_result":
            content = "" if block.content is None else _text(block.content, where)
            if block.is_error:  # templates have no error flag: the model reads it in the text
                content = f"Error: {content}"
            out.append({"role": "tool", "tool_call_id": block.tool_use_id or "", "content": content})
    texts = [b for b in blocks if b.type != "tool_result"]
    if texts or not out:
        out.append({"role": "user", "content": _text(texts, where)})
    return out


def _text(content: str | list[Block], where: str) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if block.type == "image":
            raise InvalidRequestError(
                f"{where} has an image, and this model has no vision support (openlms runs no vision "
                "models yet): load a vision model (one whose capabilities list 'vision') to send "
                "images, or describe the image in text.",
                param=where,
            )
        if block.type != "text" or block.text is None:
            raise InvalidRequestError(
                f"{where} has a '{block.type}' block here; send text blocks (this server takes text, "
                "tool_use, tool_result and thinking blocks).",
                param=where,
            )
        parts.append(block.text)
    return "".join(parts)


def signature(thinking: str) -> str:
    """A thinking block's `signature`: a digest of its text (clients send it back; it is not checked)."""
    return base64.b64encode(hashlib.sha256(thinking.encode("utf-8", "replace")).digest()).decode()


STOP_REASONS = {
    StopReason.STOP_STRING: "stop_sequence",
    StopReason.MAX_TOKENS: "max_tokens",
    StopReason.CONTEXT_LENGTH: "max_tokens",
    StopReason.TOOL_CALLS: "tool_use",
}


def stop_reason(stats: GenerationStats, tool_calls: bool) -> str:
    reason = STOP_REASONS.get(stats.stop_reason, "end_turn")
    return "tool_use" if tool_calls and reason != "max_tokens" else reason


def tool_id(call_id: str) -> str:
    """A call's id as Anthropic spells them (`toolu_...`); a `tool_result` sends it back as it is."""
    return call_id if call_id.startswith("toolu_") else f"toolu_{call_id}"


def tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def one_call_only(req: CountTokensRequest) -> bool:
    """`tool_choice.disable_parallel_tool_use`: the answer keeps its first tool call only."""
    return bool(req.tool_choice and req.tool_choice.disable_parallel_tool_use)


def content_blocks(message: ParsedMessage, *, one_call: bool = False) -> list[dict[str, Any]]:
    calls = message.tool_calls[:1] if one_call else message.tool_calls
    blocks: list[dict[str, Any]] = []
    if message.reasoning:
        thinking = message.reasoning
        blocks.append({"type": "thinking", "thinking": thinking, "signature": signature(thinking)})
    if message.content or not message.tool_calls:
        blocks.append({"type": "text", "text": message.content})
    blocks += [
        {"type": "tool_use", "id": tool_id(c.id), "name": c.name, "input": tool_input(c.arguments)}
        for c in calls
    ]
    return blocks


def usage(stats: GenerationStats) -> dict[str, Any]:
    return {
        "input_tokens": stats.prompt_tokens,
        "output_tokens": stats.predicted_tokens,
        "cache_read_input_tokens": stats.cached_prompt_tokens,
    }


def message_shell(mid: str, model: str) -> dict[str, Any]:
    return {
        "id": mid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }


def message(
    mid: str, model: str, parsed: ParsedMessage, stats: GenerationStats, *, one_call: bool = False
) -> dict[str, Any]:
    reason = stop_reason(stats, bool(parsed.tool_calls))
    return message_shell(mid, model) | {
        "content": content_blocks(parsed, one_call=one_call),
        "stop_reason": reason,
        "stop_sequence": stats.stop_string if reason == "stop_sequence" else None,
        "usage": usage(stats),
    }
