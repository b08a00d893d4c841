"""Tool use for one chat request: validate `tools`/`tool_choice`, choose the model's tool format, shape the
conversation for the template, and build the grammar that forces a call when one is required.

Native formats go through the model's own template (it renders `tools`, assistant `tool_calls` and `tool`
messages); every other model gets LM Studio's default format (a system prompt with AVAILABLE TOOLS,
`[TOOL_REQUEST]...[END_TOOL_REQUEST]`, tool results as user turns).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from openlms.core.errors import InvalidRequestError
from openlms.parsers.grammar import args_grammars, check_schema_size, tool_call_grammar, value_grammars
from openlms.parsers.grammar_pieces import gbnf_literal
from openlms.parsers.output.registry import ToolFormat, detect_tool_format
from openlms.parsers.output.toolspec import normalize_tool_names, to_default_format_messages

ToolChoice = str | Mapping[str, Any] | None
log = logging.getLogger("openlms.server")

# In a forced call, a string argument whose schema sets no `maxLength` gets this one: a small model can
# otherwise write inside a string until the context ends, and the call never completes. A schema's own
# `maxLength` (llama.cpp takes up to ~2000) allows longer strings.
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
        return ToolPlan(fmt, model_tools, names, lazy, lazy_trigger(fmt) if lazy else None)
    wanted = {n for n, original in names.items() if forced == "*" or original == forced}
    chosen = [t for t in model_tools if t["function"]["name"] in wanted]
    return ToolPlan(fmt, model_tools, names, required_grammar(fmt, chosen, template_source))


# The text that starts a call in each format that can take a lazy grammar (the others stay free).
LAZY_TRIGGERS = {"default": "[TOOL_REQUEST]", "hermes": "<tool_call>", "qwen3_xml": "<tool_call>"}


def lazy_trigger(fmt: ToolFormat) -> str | None:
    return LAZY_TRIGGERS.get(fmt.name)


def _lazy_grammar(
    fmt: ToolFormat, tools: Sequence[Mapping[str, Any]], template_source: str | None
) -> str | None:
    """The grammar that keeps a call whole once the model starts one; None for formats without a textual
    trigger, or tools whose schemas a grammar cannot express (then calls are parsed as written)."""
    if lazy_trigger(fmt) is None:
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
    formats in LAZY_TRIGGERS), in its own format, to one of `tools`."""
    specs = [(t["function"]["name"], _bounded(t["function"].get("parameters"))) for t in tools]
    if fmt.name == "qwen3_xml":
        return _xml_grammar(specs, many=many)
    if fmt.name == "harmony" or (fmt.name == "mistral" and "[ARGS]" in (template_source or "")):
        return _name_outside_grammar(fmt.name, specs)
    args_key = "parameters" if fmt.name == "llama3" else "arguments"
    rules, call = tool_call_grammar(specs, args_key=args_key)
    block = {
        "hermes": f'"<tool_call>\\n" {call} "\\n</tool_call>"',
        "llama3": call,
        "mistral": f'"[TOOL_CALLS]" "[" {call} "]"',
    }.get(fmt.name, f'"[TOOL_REQUEST]" {call} "[END_TOOL_REQUEST]"')
    root = f"( {block} ) ( [ \\n]{{0,2}} ( {block} ) )*" if many else block
    return f"root ::= {root}\n{rules}"


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


def _xml_grammar(specs: Sequence[tuple[str, Mapping[str, Any] | None]], *, many: bool) -> str:
    """Qwen3-Coder's XML calls: `<function=NAME>` and one `<parameter=KEY>` block per argument, in the
    schema's order (optional ones may be left out); text values are raw, the others JSON."""
    params = [(name, list(_properties(schema))) for name, schema in specs]
    json_schemas = [sub for _, props in params for _, sub, _ in props if not _raw_text(sub)]
    rules, names = value_grammars(json_schemas)
    json_rules = iter(names)
    text = f"[^<]{{0,{FORCED_STRING_MAX_LENGTH}}}"
    close_param, close_call = gbnf_literal("\n</parameter>\n"), gbnf_literal("</function>\n</tool_call>")
    calls = []
    for name, props in params:
        parts = []
        for key, sub, required in props:
            value = _raw_value(sub, text) if _raw_text(sub) else next(json_rules)
            item = f"{gbnf_literal(f'<parameter={key}>' + chr(10))} {value} {close_param}"
            parts.append(item if required else f"( {item} )?")
        head = gbnf_literal(f"<tool_call>\n<function={name}>\n")
        calls.append(f"( {head} {' '.join(parts)} {close_call} )")
    root = "xml-call ( [ \\n]{0,2} xml-call )*" if many else "xml-call"
    return f"root ::= {root}\nxml-call ::= " + " | ".join(calls) + "\n" + rules


def _properties(schema: Mapping[str, Any] | None) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    schema = schema or {}
    required = set(schema.get("required") or ())
    for key, sub in (schema.get("properties") or {}).items():
        yield key, sub if isinstance(sub, Mapping) else {}, key in required


def _raw_text(schema: Mapping[str, Any]) -> bool:
    """A string parameter: written raw between the tags, not as JSON (as the qwen3_xml parser reads it)."""
    return schema.get("type") == "string"


def _raw_value(schema: Mapping[str, Any], free_text: str) -> str:
    """Raw text: one of the enum's (or the const's) strings, else free text (`pattern` and `format` are
    not enforced in this format's raw values)."""
    choices = schema.get("enum", [schema["const"]] if "const" in schema else None)
    if isinstance(choices, list) and choices and all(isinstance(c, str) for c in choices):
        return "( " + " | ".join(gbnf_literal(c) for c in choices) + " )"
    return free_text


def _name_outside_grammar(fmt_name: str, specs: Sequence[tuple[str, Mapping[str, Any] | None]]) -> str:
    """Formats that write the name as markup and only the arguments as JSON."""
    rules, arg_rules = args_grammars([schema for _, schema in specs])
    alternatives = []
    for (name, _), rule in zip(specs, arg_rules, strict=True):
        if fmt_name == "harmony":
            head = gbnf_literal(f"<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>")
            alternatives.append(f'{head} {rule} "<|call|>"')
        else:
            alternatives.append(f'"[TOOL_CALLS]" {gbnf_literal(name)} "[ARGS]" {rule}')
    return "root ::= " + " | ".join(f"( {a} )" for a in alternatives) + "\n" + rules


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
