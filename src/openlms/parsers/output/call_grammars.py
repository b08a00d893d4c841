"""The GBNF that makes a model write a tool call in its own format: one builder per tool format, named by
the format's registry entry (`ToolFormat.call_grammar`).

A builder takes the tools as (name, parameters schema or None) pairs, the chat template's source (a
format may have variants: Mistral's `[ARGS]`), `many` (one or more calls, for lazy grammars that keep a
call whole once the model starts one) and `max_text`, the longest free-text value of formats that write
strings raw, outside JSON (qwen3_xml); JSON strings are bounded by their schema's own `maxLength`.
Schemas a grammar cannot express raise InvalidRequestError (from `parsers.grammar`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from openlms.parsers.grammar import args_grammars, tool_call_grammar, value_grammars
from openlms.parsers.grammar_pieces import gbnf_literal

ToolSpec = tuple[str, Mapping[str, Any] | None]  # a tool's name and its parameters schema


class CallGrammar(Protocol):
    def __call__(
        self, tools: Sequence[ToolSpec], template_source: str | None, *, many: bool, max_text: int
    ) -> str: ...


def json_call(head: str, tail: str, *, args_key: str = "arguments") -> CallGrammar:
    """Calls written as one JSON object `{"name": ..., args_key: {...}}` between the GBNF `head` and
    `tail` (either may be empty); with `many`, further calls follow after up to two spaces or newlines."""

    def grammar(tools: Sequence[ToolSpec], template_source: str | None, *, many: bool, max_text: int) -> str:
        rules, call = tool_call_grammar(tools, args_key=args_key)
        block = " ".join(part for part in (head, call, tail) if part)
        root = f"( {block} ) ( [ \\n]{{0,2}} ( {block} ) )*" if many else block
        return f"root ::= {root}\n{rules}"

    return grammar


def harmony_call(tools: Sequence[ToolSpec], template_source: str | None, *, many: bool, max_text: int) -> str:
    """gpt-oss: the commentary channel addressed to the function, JSON arguments, `<|call|>` (one call)."""

    def head(name: str) -> str:
        return gbnf_literal(f"<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>")

    return _name_outside(tools, lambda name, args: f'{head(name)} {args} "<|call|>"')


_MISTRAL_JSON = json_call('"[TOOL_CALLS]" "["', '"]"')


def mistral_call(tools: Sequence[ToolSpec], template_source: str | None, *, many: bool, max_text: int) -> str:
    """`[TOOL_CALLS][{...}]`, or `[TOOL_CALLS]NAME[ARGS]{...}` (one call) where the template writes calls
    that way (Mistral's newer templates)."""
    if "[ARGS]" in (template_source or ""):
        return _name_outside(tools, lambda name, args: f'"[TOOL_CALLS]" {gbnf_literal(name)} "[ARGS]" {args}')
    return _MISTRAL_JSON(tools, template_source, many=many, max_text=max_text)


def qwen_xml_call(
    tools: Sequence[ToolSpec], template_source: str | None, *, many: bool, max_text: int
) -> str:
    """Qwen3-Coder's XML calls: `<function=NAME>` and one `<parameter=KEY>` block per argument, in the
    schema's order (optional ones may be left out); text values are raw (up to `max_text` characters),
    the others JSON."""
    params = [(name, list(_properties(schema))) for name, schema in tools]
    json_schemas = [sub for _, props in params for _, sub, _ in props if not _raw_text(sub)]
    rules, names = value_grammars(json_schemas)
    json_rules = iter(names)
    text = f"[^<]{{0,{max_text}}}"
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


class _Alternative(Protocol):
    def __call__(self, name: str, args_rule: str) -> str: ...


def _name_outside(tools: Sequence[ToolSpec], alternative: _Alternative) -> str:
    """Formats that write the name as markup and only the arguments as JSON: one call, to any tool."""
    rules, arg_rules = args_grammars([schema for _, schema in tools])
    alternatives = [alternative(name, rule) for (name, _), rule in zip(tools, arg_rules, strict=True)]
    return "root ::= " + " | ".join(f"( {a} )" for a in alternatives) + "\n" + rules
