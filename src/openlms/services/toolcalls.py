"""Tool use for one chat request: validate `tools`/`tool_choice`, choose the model's tool format, shape the
conversation for the template, and build the grammar that forces a call when one is required (each tool
format's registry entry writes its own calls' grammar; this module bounds free text and chooses when).

Native formats go through the model's own template (it renders `tools`, assistant `tool_calls` and `tool`
messages); every other model gets LM Studio's default format (a system prompt with AVAILABLE TOOLS,
`[TOOL_REQUEST]...[END_TOOL_REQUEST]`, tool results as user turns).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.parsers.grammar import check_schema_size
from openlms.parsers.output.registry import ToolFormat, detect_tool_format
from openlms.parsers.output.toolspec import normalize_tool_names, to_default_format_messages

ToolChoice = str | Mapping[str, Any] | None
log = logging.getLogger("openlms.server")

# In a forced call, a string argument whose schema sets no `maxLength` gets this one: a small model can
# otherwise write inside a string until the context ends, and the call never completes. A schema's own
# `maxLength` (llama.cpp takes up to ~2000) allows longer strings. Formats that write text arguments raw
# (qwen3_xml) get the same bound.
FORCED_STRING_MAX_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """How one request uses tools. `tools` is None when nothing is rendered (no tools, or choice "none")."""

    format: ToolFormat
    tools: list[dict[str, Any]] | None = None  # as the model sees them (normalised names)
    names: Mapping[str, str] = field(default_factory=dict)  # model's name -> the caller's name
    grammar: str | None = None  # set when a call is required, or (lazy, with `trigger`) to keep calls whole
    trigger: str | None = None  # the grammar is lazy: it applies from this text of the output on

    @property
    def active(self) -> bool:
        return self.tools is not None


def plan_tools(
    tools: Sequence[Mapping[str, Any]] | None, choice: ToolChoice, template_source: str | None
) -> ToolPlan:
    """The plan for a request; `template_source` is the Jinja template in use (None for a manual one)."""
    fmt = detect_tool_format(template_source)
    if not tools:
        if choice not in (None, "auto", "none"):
            raise InvalidRequestError("'tool_choice' needs a non-empty 'tools' list.", param="tool_choice")
        return ToolPlan(fmt)
    checked = [_checked_tool(i, t) for i, t in enumerate(tools)]
    _check_unique([t["function"]["name"] for t in checked])
    forced = _forced(choice, [t["function"]["name"] for t in checked])
    if forced is None and choice == "none":
        return ToolPlan(fmt)
    model_tools, names = normalize_tool_names(checked)
    if forced is None:  # the model decides; once it starts a call, the call is kept whole
        lazy = _lazy_grammar(fmt, model_tools, template_source)
        return ToolPlan(fmt, model_tools, names, lazy, fmt.lazy_trigger if lazy else None)
    wanted = {n for n, original in names.items() if forced == "*" or original == forced}
    chosen = [t for t in model_tools if t["function"]["name"] in wanted]
    return ToolPlan(fmt, model_tools, names, required_grammar(fmt, chosen, template_source))


def _lazy_grammar(
    fmt: ToolFormat, tools: Sequence[Mapping[str, Any]], template_source: str | None
) -> str | None:
    """The grammar that keeps a call whole once the model starts one; None for formats without a textual
    trigger, or tools whose schemas a grammar cannot express (then calls are parsed as written)."""
    if fmt.lazy_trigger is None:
        return None
    try:
        return required_grammar(fmt, tools, template_source, many=True)
    except InvalidRequestError as exc:
        log.info("tool calls stay unconstrained: %s", exc.message)
        return None


def _checked_tool(index: int, tool: Mapping[str, Any]) -> dict[str, Any]:
    param = f"tools[{index}]"
    if not isinstance(tool, Mapping) or tool.get("type", "function") != "function":
        raise InvalidRequestError(
            f"{param} must be {{'type': 'function', 'function': {{...}}}}.", param=param
        )
    function = tool.get("function")
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str) or not function["name"]:
        raise InvalidRequestError(f"{param}.function.name must be a non-empty string.", param=param)
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise InvalidRequestError(f"{param}.function.parameters must be a JSON schema object.", param=param)
    return {"type": "function", "function": dict(function)}


def _check_unique(names: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            param = f"tools[{index}]"
            raise InvalidRequestError(f"{param}.function.name '{name}' is used by another tool.", param=param)
        seen.add(name)


def _forced(choice: ToolChoice, names: list[str]) -> str | None:
    """None: the model decides (or "none"); "*": some call is required; else the one function required."""
    if choice is None or choice in ("auto", "none"):
        return None
    if choice == "required":
        return "*"
    if isinstance(choice, Mapping):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        if choice.get("type") == "function" and isinstance(name, str):
            if name not in names:
                raise InvalidRequestError(
                    f"tool_choice names the function '{name}', which is not in 'tools' ({', '.join(names)}).",
                    param="tool_choice",
                )
            return name
    raise InvalidRequestError(
        "'tool_choice' must be 'auto', 'none', 'required' or "
        "{'type': 'function', 'function': {'name': ...}}.",
        param="tool_choice",
    )


def required_grammar(
    fmt: ToolFormat, tools: Sequence[Mapping[str, Any]], template_source: str | None, *, many: bool = False
) -> str:
    """GBNF that makes the model write exactly one call (`many`: one or more, for lazy grammars of the
    formats with a `lazy_trigger`), in its own format, to one of `tools`; free text is bounded."""
    specs = [(t["function"]["name"], _bounded(t["function"].get("parameters"))) for t in tools]
    return fmt.call_grammar(specs, template_source, many=many, max_text=FORCED_STRING_MAX_LENGTH)


def _bounded(schema: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """`schema` with `maxLength: FORCED_STRING_MAX_LENGTH` on every free-text string without a bound."""
    if schema is None:
        return None
    check_schema_size(schema, param="tools")
    return _bounded_node(schema)  # type: ignore[no-any-return]


def _bounded_node(node: Any) -> Any:
    if isinstance(node, list):
        return [_bounded_node(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    out = {key: _bounded_node(value) for key, value in node.items()}
    kinds = out.get("type")
    is_string = kinds == "string" or (isinstance(kinds, list) and "string" in kinds)
    free = not {"maxLength", "pattern", "enum", "const", "format"}.intersection(out)
    if is_string and free:
        out["maxLength"] = FORCED_STRING_MAX_LENGTH
    return out


def messages_for_template(plan: ToolPlan, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as the template should see it, with the tools' names as the model knows them."""
    to_model = {original: name for name, original in plan.names.items()}
    native = [_native_message(m, to_model) for m in messages]
    if plan.format.native:
        return native
    return to_default_format_messages(native, plan.tools or [])


def template_tools(plan: ToolPlan) -> list[dict[str, Any]] | None:
    """What the template's `tools` variable holds (nothing for the default format: it is in the prompt)."""
    return plan.tools if plan.format.native else None


def _native_message(message: Mapping[str, Any], to_model: Mapping[str, str]) -> dict[str, Any]:
    out = dict(message)
    calls = out.get("tool_calls")
    if out.get("function_call") and not calls:  # the legacy single-call form
        calls = [{"id": "call_0", "type": "function", "function": out.pop("function_call")}]
    if calls:
        out["tool_calls"] = [_native_call(c, to_model) for c in calls]
    if out.get("content") is None:
        out["content"] = ""
    return out


def check_history_calls(message: Mapping[str, Any], param: str) -> None:
    """An assistant message's `tool_calls` must be a list of {id?, type?, function: {name, arguments}}."""
    calls = message.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list):
        raise InvalidRequestError(f"{param}.tool_calls must be a list.", param=f"{param}.tool_calls")
    for j, call in enumerate(calls):
        where = f"{param}.tool_calls[{j}]"
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidRequestError(
                f"{where} must be {{'id', 'type': 'function', 'function': {{'name', 'arguments'}}}}.",
                param=where,
            )
        if not isinstance(function.get("arguments", "{}"), str | Mapping):
            raise InvalidRequestError(f"{where}.function.arguments must be a JSON string.", param=where)


def _native_call(call: Mapping[str, Any], to_model: Mapping[str, str]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    name = function.get("name", "")
    function["name"] = to_model.get(name, name)
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        # a template that needs a dict will say so; invalid JSON is kept as the caller sent it
        with contextlib.suppress(ValueError):
            function["arguments"] = json.loads(arguments) if arguments.strip() else {}
    return {"id": call.get("id", ""), "type": "function", "function": function}
