"""Tools as the model sees them: normalised names, and LM Studio's default (prompt-based) tool format for
templates without tool support (tools.md, "Default tool use support").
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_PROMPT_HEAD = (
    "You are a tool-calling AI. You can request calls to available tools with this EXACT format:\n"
    '[TOOL_REQUEST]{"name": "tool_name", "arguments": {"param1": "value1"}}[END_TOOL_REQUEST]\n'
    "\n"
    "AVAILABLE TOOLS:\n"
)
_PROMPT_TAIL = (
    "\n\n"
    "RULES:\n"
    "- Only use tools from AVAILABLE TOOLS\n"
    "- Include all required arguments\n"
    "- Use one [TOOL_REQUEST] block per tool\n"
    "- Never use [TOOL_RESULT]\n"
    "- If you decide to call one or more tools, there should be no other text in your message\n"
    "\n"
    "Examples:\n"
    '"Check Paris weather"\n'
    '[TOOL_REQUEST]{"name": "get_weather", "arguments": {"location": "Paris"}}[END_TOOL_REQUEST]\n'
    "\n"
    '"Send email to John about meeting and open browser"\n'
    '[TOOL_REQUEST]{"name": "send_email", "arguments": {"to": "John", "subject": "meeting"}}'
    "[END_TOOL_REQUEST]\n"
    '[TOOL_REQUEST]{"name": "open_browser", "arguments": {}}[END_TOOL_REQUEST]\n'
    "\n"
    "Respond conversationally if no matching tools exist."
)
_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_NOT_NAME = re.compile(r"[^a-z0-9_]+")
_EMPTY_PARAMETERS: Mapping[str, Any] = {"type": "object", "properties": {}}


def snake_case(name: str) -> str:
    """`getWeather`, `get-weather`, `Get Weather` -> `get_weather` ("tool" when nothing is left)."""
    text = _CAMEL.sub(r"\1_\2", _ACRONYM.sub(r"\1_\2", name))
    return _NOT_NAME.sub("_", text.lower()).strip("_") or "tool"


def _function_of(tool: Mapping[str, Any]) -> dict[str, Any] | None:
    """The function definition inside a tool (OpenAI's nested form, or the flat one), if any."""
    function = tool.get("function", tool)
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return function
    return None


def normalize_tool_names(tools: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The tools with names the model handles well, and normalised name -> original name.

    Names become snake_case and unique (`_2`, `_3`, ... on collision); a function without `parameters`
    gets an empty object schema. Everything else, root-level `$defs` included, is kept as given.
    """
    out = [copy.deepcopy(dict(tool)) for tool in tools]
    functions = [f for f in map(_function_of, out) if f is not None]
    # names that need no change keep it; the others take what is left
    taken = {f["name"]: f["name"] for f in functions if snake_case(f["name"]) == f["name"]}
    originals: dict[str, str] = {}
    for function in functions:
        original = function["name"]
        if taken.get(original) == original and original not in originals:
            name = original
        else:
            name = _unique(snake_case(original), taken | originals)
        originals[name] = original
        function["name"] = name
        if function.get("parameters") is None:
            function["parameters"] = dict(_EMPTY_PARAMETERS)
    return out, originals


def _unique(name: str, taken: Mapping[str, str]) -> str:
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    return candidate


def default_tools_system_prompt(tools: Sequence[Mapping[str, Any]]) -> str:
    """LM Studio's system prompt for the default tool format, with the tools listed as a toolArray."""
    listing = json.dumps({"type": "toolArray", "tools": list(tools)}, indent=2, ensure_ascii=False)
    return _PROMPT_HEAD + listing + _PROMPT_TAIL


def to_default_format_messages(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The conversation for a template without tool support.

    With tools, the tool prompt becomes the system message (after the conversation's own system message,
    if any, and a blank line); `tool` messages become `user` messages `[TOOL_RESULT]...[END_TOOL_RESULT]`
    (results next to each other share one message); an assistant's `tool_calls` (or legacy
    `function_call`) become `[TOOL_REQUEST]{"name": ..., "arguments": {...}}[END_TOOL_REQUEST]` lines
    after its text.
    """
    names = _call_names(messages)
    out: list[dict[str, Any]] = []
    from_tool = False  # the last message of `out` holds tool results
    for message in messages:
        role = message.get("role")
        if role == "tool":
            text = _tool_result(message, names)
            if from_tool:
                out[-1]["content"] += "\n" + text
            else:
                out.append({"role": "user", "content": text})
            from_tool = True
            continue
        if role == "user" and from_tool and isinstance(message.get("content"), str):
            out[-1]["content"] += "\n\n" + message["content"]
        elif role == "assistant":
            out.append(_assistant(message))
        else:
            out.append(dict(message))
        from_tool = False
    return _with_system_prompt(out, default_tools_system_prompt(tools)) if tools else out


def _with_system_prompt(messages: list[dict[str, Any]], prompt: str) -> list[dict[str, Any]]:
    if messages and messages[0].get("role") == "system":
        own = _text(messages[0].get("content"))
        messages[0] = {**messages[0], "content": f"{own}\n\n{prompt}" if own else prompt}
        return messages
    return [{"role": "system", "content": prompt}, *messages]


def _call_names(messages: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            if isinstance(call.get("id"), str) and isinstance(function.get("name"), str):
                names[call["id"]] = function["name"]
    return names


def _tool_result(message: Mapping[str, Any], names: Mapping[str, str]) -> str:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    name = name or message.get("name")
    if name and call_id:
        head = f"Result of {name} (call {call_id}):\n"
    elif name or call_id:
        head = f"Result of {name}:\n" if name else f"Result of call {call_id}:\n"
    else:
        head = ""
    return f"[TOOL_RESULT]{head}{_text(message.get('content'))}[END_TOOL_RESULT]"


def _assistant(message: Mapping[str, Any]) -> dict[str, Any]:
    calls = [call.get("function") or {} for call in message.get("tool_calls") or ()]
    if isinstance(message.get("function_call"), Mapping):
        calls.append(message["function_call"])
    out = {k: v for k, v in message.items() if k not in ("tool_calls", "function_call")}
    if not calls:
        return out
    lines = [_text(message.get("content"))] if _text(message.get("content")) else []
    lines += [_tool_request(call) for call in calls]
    out["content"] = "\n".join(lines)
    return out


def _tool_request(function: Mapping[str, Any]) -> str:
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # else kept as the string the client sent
            arguments = json.loads(arguments) if arguments.strip() else {}
    if arguments is None:
        arguments = {}
    body = json.dumps({"name": function.get("name", ""), "arguments": arguments}, ensure_ascii=False)
    return f"[TOOL_REQUEST]{body}[END_TOOL_REQUEST]"


def _text(content: Any) -> str:
    """A message's content as text: a string, None, or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return str(content)
