"""The JSON schema -> GBNF converter under `grammar.py`: turns a checked, normalised schema into rules.

Owned by openlms. It started as llama-cpp-python's `llama_grammar.SchemaConverter` (a port of llama.cpp's
`json_schema_to_grammar.py`; both MIT-licensed), which offers no public way to change what it writes; the
changes openlms needs are built in here instead of patched into the library's private members:
* whitespace between tokens is `SPACE` (nothing, one space, or a newline and up to 20 spaces or tabs);
* string characters (`SAFE_CHAR`) and a pattern's `.` (`SAFE_DOT`) exclude raw control characters, and
  literals are escaped fully (`gbnf_literal`); patterns are rewritten by `safe_pattern` first;
* every `$ref` gets its own rule, named after its target (`add_ref` registers the targets);
* integer bounds, and integer-valued inclusive bounds on numbers, are enforced (`int_range`,
  `number_range`).
Only what openlms uses is kept: no remote references, properties in the schema's order, patterns always
inside a JSON string. `grammar.py` checks and normalises schemas before they get here; what this
converter cannot handle raises ValueError (or a KeyError/TypeError on a malformed schema), which
`grammar.py` turns into a request error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from itertools import groupby
from typing import Any

from openlms.parsers.grammar_pieces import (
    BOUNDS,
    META_ESCAPES,
    gbnf_literal,
    inclusive_bounds,
    int_range,
    number_range,
    safe_pattern,
)

SPACE = r'( " " | "\n" [ \t]{0,20} )?'
SAFE_CHAR = r'[^"\\\x00-\x1F\x7F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
SAFE_DOT = r'[^"\\\x00-\x1F\x7F]'
INVALID_RULE_CHARS = re.compile(r"[^a-zA-Z0-9-]+")
NON_LITERAL = frozenset("|.()[]{}*+?")


def repetition(
    item: str, min_items: int, max_items: int | None, separator: str | None = None, literal: bool = False
) -> str:
    """`item` repeated min..max times (max None: unbounded), with `separator` between; `literal`: `item`
    is a quoted literal that can be repeated inside its quotes."""
    if not separator:
        if min_items == 0 and max_items == 1:
            return f"{item}?"
        if min_items == 1 and max_items is None:
            return f"{item}+"
    result = ""
    if min_items > 0:
        if literal and separator is None:
            result = '"' + (item[1:-1] * min_items) + '"'
        else:
            result = (f" {separator} " if separator else " ").join([item] * min_items)
    if min_items > 0 and max_items != min_items:
        result += " "
    if max_items is not None:
        result += _optional_repetitions(item, max_items - min_items, separator, prefix=min_items > 0)
    else:
        one_more = f"({separator + ' ' if separator else ''}{item})"
        result = f"({item} {one_more}*)?" if min_items == 0 and separator else result + f"{one_more}*"
    return result


def _optional_repetitions(item: str, up_to: int, separator: str | None, *, prefix: bool) -> str:
    """n=4, no sep: '(a (a (a (a)?)?)?)?'; sep ',' with prefix: '("," a ("," a ("," a ("," a)?)?)?)?';
    sep ',' without prefix: '(a ("," a ("," a ("," a)?)?)?)?'."""
    content = f"{separator} {item}" if prefix and separator else item
    if up_to == 0:
        return ""
    if up_to == 1:
        return f"({content})?"
    if separator and not prefix:
        return f"({content} {_optional_repetitions(item, up_to - 1, separator, prefix=True)})?"
    return (f"({content} " * up_to).rstrip() + (")?" * up_to)


_UP_TO_15_DIGITS = repetition("[0-9]", 0, 15)
_UUID = r'"\"" ' + ' "-" '.join("[0-9a-fA-F]" * n for n in [8, 4, 4, 4, 12]) + r' "\"" space'
# name -> (rule body, the rules it uses)
PRIMITIVES: dict[str, tuple[str, tuple[str, ...]]] = {
    "boolean": ('("true" | "false") space', ()),
    "decimal-part": ("[0-9] " + _UP_TO_15_DIGITS, ()),
    "integral-part": ("[0-9] | [1-9] " + _UP_TO_15_DIGITS, ()),
    "number": (
        '("-"? integral-part) ("." decimal-part)? ([eE] [-+]? integral-part)? space',
        ("integral-part", "decimal-part"),
    ),
    "integer": ('("-"? integral-part) space', ("integral-part",)),
    "value": (
        "object | array | string | number | boolean | null",
        ("object", "array", "string", "number", "boolean", "null"),
    ),
    "object": (
        '"{" space ( string ":" space value ("," space string ":" space value)* )? "}" space',
        ("string", "value"),
    ),
    "array": ('"[" space ( value ("," space value)* )? "]" space', ("value",)),
    "uuid": (_UUID, ()),
    "char": (SAFE_CHAR, ()),
    "string": (r'"\"" char* "\"" space', ("char",)),
    "null": ('"null" space', ()),
}
STRING_FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "date": (
        '[0-9] [0-9] [0-9] [0-9] "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [1-2] [0-9] | "3" [0-1] )',
        (),
    ),
    "time": (
        '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9] [0-9] [0-9] )? '
        '( "Z" | ( "+" | "-" ) ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )',
        (),
    ),
    "date-time": ('date "T" time', ("date", "time")),
    "date-string": ('"\\"" date "\\"" space', ("date",)),
    "time-string": ('"\\"" time "\\"" space', ("time",)),
    "date-time-string": ('"\\"" date-time "\\"" space', ("date-time",)),
}
RESERVED_NAMES = frozenset({"root", "dot", *PRIMITIVES, *STRING_FORMATS})


class GbnfConverter:
    """Rules for one grammar; several schemas may be converted into it (rule names stay apart)."""

    def __init__(self) -> None:
        self._rules: dict[str, str] = {"space": SPACE}
        self._refs: dict[str, Any] = {}  # "$ref" value (keyed by its document) -> target schema
        self._ref_rules: dict[str, str] = {}  # "$ref" value -> its rule's name

    def add_ref(self, ref: str, target: Any) -> None:
        """Make `ref` (a `$ref` value as it appears in the schemas to convert) stand for `target`."""
        self._refs[ref] = target

    def add_rule(self, name: str, body: str) -> str:
        """Add `name ::= body` and return the rule's name: `name` made valid, with a number appended where
        that name is taken by another body."""
        esc_name = INVALID_RULE_CHARS.sub("-", name)
        key = esc_name
        if esc_name in self._rules and self._rules[esc_name] != body:
            i = 0
            while f"{esc_name}{i}" in self._rules and self._rules[f"{esc_name}{i}"] != body:
                i += 1
            key = f"{esc_name}{i}"
        self._rules[key] = body
        return key

    def set_rule(self, name: str, body: str) -> None:
        """Set `name ::= body`, replacing any rule of that name."""
        self._rules[name] = body

    def grammar(self) -> str:
        """The rules so far, one per line, sorted by name."""
        return "\n".join(f"{name} ::= {rule}" for name, rule in sorted(self._rules.items()))

    def visit(self, schema: Mapping[str, Any], name: str) -> str:
        """Add the rules for values valid under `schema`; returns the name of the rule that matches them."""
        kind = schema.get("type")
        rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
        if kind in ("integer", "number") and any(k in schema for k in BOUNDS):
            lo, hi = inclusive_bounds(schema, integer=kind == "integer")
            body = int_range(lo, hi) if kind == "integer" else number_range(lo, hi)
            return self.add_rule(rule_name, body + " space")
        if kind == "string" and "pattern" in schema:
            schema = {**schema, "pattern": safe_pattern(schema["pattern"])}
        if (ref := schema.get("$ref")) is not None:
            return self.add_rule(rule_name, self._resolve_ref(ref))
        if "oneOf" in schema or "anyOf" in schema:
            return self.add_rule(rule_name, self._union(name, schema.get("oneOf") or schema["anyOf"]))
        if isinstance(kind, list):
            return self.add_rule(rule_name, self._union(name, [{"type": t} for t in kind]))
        if "const" in schema:
            return self.add_rule(rule_name, _constant(schema["const"]))
        if "enum" in schema:
            return self.add_rule(rule_name, " | ".join(_constant(v) for v in schema["enum"]))
        if kind in (None, "object"):
            additional = schema.get("additionalProperties")
            if "properties" in schema or ("additionalProperties" in schema and additional is not True):
                properties = list(schema.get("properties", {}).items())
                required = set(schema.get("required", []))
                return self.add_rule(rule_name, self._object(properties, required, name, additional))
            if "allOf" in schema:
                return self.add_rule(rule_name, self._all_of(schema["allOf"], name))
        if kind in (None, "array") and ("items" in schema or "prefixItems" in schema):
            return self.add_rule(rule_name, self._array(schema, name))
        if kind in (None, "string"):
            string_rule = self._string(schema, kind, rule_name)
            if string_rule is not None:
                return string_rule
        if kind == "object" or len(schema) == 0:
            return self.add_rule(rule_name, self._add_primitive("object"))
        if kind not in PRIMITIVES:
            raise ValueError(f"Unrecognized schema: {schema}")
        return self._add_primitive("root" if rule_name == "root" else kind, kind)

    # -----------------------------------------------------------------------------------------------
    # Pieces

    def _resolve_ref(self, ref: str) -> str:
        if ref in self._ref_rules:
            return self._ref_rules[ref]
        base = INVALID_RULE_CHARS.sub("-", f"ref-{ref.rsplit('/', 1)[-1]}")
        name, i, taken = base, 0, set(self._ref_rules.values())
        while name in self._rules or name in taken:
            i, name = i + 1, f"{base}{i + 1}"
        self._ref_rules[ref] = name
        actual = self.visit(self._refs[ref], name)
        if actual != name:
            self._rules[name] = actual
        return name

    def _union(self, name: str, alternatives: list[Any]) -> str:
        prefix = f"{name}-" if name else "alternative-"
        return " | ".join(self.visit(alt, f"{prefix}{i}") for i, alt in enumerate(alternatives))

    def _all_of(self, parts: list[Any], name: str) -> str:
        required: set[str] = set()
        properties: list[tuple[str, Any]] = []

        def add_component(component: Mapping[str, Any], is_required: bool) -> None:
            if (ref := component.get("$ref")) is not None:
                component = self._refs[ref]
            for prop_name, prop_schema in component.get("properties", {}).items():
                properties.append((prop_name, prop_schema))
                if is_required:
                    required.add(prop_name)

        for part in parts:
            if "anyOf" in part:
                for alternative in part["anyOf"]:
                    add_component(alternative, is_required=False)
            else:
                add_component(part, is_required=True)
        return self._object(properties, required, name, None)

    def _array(self, schema: Mapping[str, Any], name: str) -> str:
        items = schema.get("items") or schema["prefixItems"]
        prefix = f"{name}-" if name else ""
        if isinstance(items, list):
            tuple_rules = [self.visit(item, f"{prefix}tuple-{i}") for i, item in enumerate(items)]
            return '"[" space ' + ' "," space '.join(tuple_rules) + ' "]" space'
        item_rule = self.visit(items, f"{prefix}item")
        each = repetition(item_rule, schema.get("minItems", 0), schema.get("maxItems"), '"," space')
        return f'"[" space {each} "]" space'

    def _string(self, schema: Mapping[str, Any], kind: str | None, rule_name: str) -> str | None:
        """The rule for a string with a pattern, a known format or a length; None for a plain one."""
        string_format = schema.get("format")
        if "pattern" in schema:
            return self._pattern(schema["pattern"], rule_name)
        if re.match(r"^uuid[1-5]?$", string_format or ""):
            return self._add_primitive("root" if rule_name == "root" else str(string_format), "uuid")
        if f"{string_format}-string" in STRING_FORMATS:
            return self.add_rule(rule_name, self._add_primitive(f"{string_format}-string"))
        if kind == "string" and ("minLength" in schema or "maxLength" in schema):
            char = self._add_primitive("char")
            chars = repetition(char, schema.get("minLength", 0), schema.get("maxLength"))
            return self.add_rule(rule_name, rf'"\"" {chars} "\"" space')
        return None

    def _add_primitive(self, name: str, primitive: str | None = None) -> str:
        """Add the built-in rule `primitive` (default: `name`) as `name`, and the built-ins it uses."""
        body, deps = PRIMITIVES.get(primitive or name) or STRING_FORMATS[primitive or name]
        added = self.add_rule(name, body)
        for dep in deps:
            if dep not in self._rules:
                self._add_primitive(dep)
        return added

    def _object(
        self, properties: list[tuple[str, Any]], required: set[str], name: str, additional: Any
    ) -> str:
        prefix = f"{name}-" if name else ""
        kv_rules = {}
        for prop_name, prop_schema in properties:
            value_rule = self.visit(prop_schema, f"{prefix}{prop_name}")
            kv = f'{gbnf_literal(json.dumps(prop_name))} space ":" space {value_rule}'
            kv_rules[prop_name] = self.add_rule(f"{prefix}{prop_name}-kv", kv)
        required_props = [k for k, _ in properties if k in required]
        optional_props = [k for k, _ in properties if k not in required]
        if additional is True or isinstance(additional, dict):
            value_rule = self.visit({} if additional is True else additional, f"{prefix}additional-value")
            string_rule = self._add_primitive("string")
            kv_rules["*"] = self.add_rule(f"{prefix}additional-kv", f'{string_rule} ":" space {value_rule}')
            optional_props.append("*")
        rule = '"{" space ' + ' "," space '.join(kv_rules[k] for k in required_props)
        if optional_props:
            rule += " ("
            if required_props:
                rule += ' "," space ( '
            rule += " | ".join(
                self._optional_kvs(optional_props[i:], kv_rules, prefix, first_is_optional=False)
                for i in range(len(optional_props))
            )
            if required_props:
                rule += " )"
            rule += " )?"
        return rule + ' "}" space'

    def _optional_kvs(
        self, keys: list[str], kv_rules: Mapping[str, str], prefix: str, *, first_is_optional: bool
    ) -> str:
        """Optional properties `keys` in order, the first one present (unless `first_is_optional`)."""
        key, *rest = keys
        kv_rule = kv_rules[key]
        if key == "*":
            out = self.add_rule(f"{prefix}additional-kvs", f'{kv_rule} ( "," space {kv_rule} )*')
        elif first_is_optional:
            out = f'( "," space {kv_rule} )?'
        else:
            out = kv_rule
        if rest:
            tail = self._optional_kvs(rest, kv_rules, prefix, first_is_optional=True)
            out += " " + self.add_rule(f"{prefix}{key}-rest", tail)
        return out

    def _pattern(self, pattern: str, name: str) -> str:
        """A JSON string matching the anchored regex `pattern` (a subset: no lookarounds, no lazy
        quantifiers); `{m,n}` repetitions get their own sub-rules to keep the grammar small."""
        if not (pattern.startswith("^") and pattern.endswith("$")):
            raise ValueError('Pattern must start with "^" and end with "$"')
        body = _PatternConverter(self, pattern[1:-1], name).sequence()
        return self.add_rule(name, '"\\"" ' + _to_rule(body) + ' "\\"" space')


# ---------------------------------------------------------------------------------------------------
# Regex patterns


Piece = tuple[str, bool]  # GBNF text, and whether it is a literal's inside (not yet quoted)


def _to_rule(piece: Piece) -> str:
    text, is_literal = piece
    return '"' + text + '"' if is_literal else text


class _PatternConverter:
    """One pattern's translation, a near 1:1 mapping of regex syntax to GBNF."""

    def __init__(self, conv: GbnfConverter, pattern: str, name: str) -> None:
        self.conv, self.pattern, self.name = conv, pattern, name
        self.i = 0
        self.sub_rules: dict[str, str] = {}

    def sequence(self) -> Piece:
        """Parse from `i` to the end or to the `)` that closes the group `i` is in."""
        pattern, start = self.pattern, self.i
        seq: list[Piece] = []
        while self.i < len(pattern):
            c = pattern[self.i]
            if c == ".":
                seq.append((self.conv.add_rule("dot", SAFE_DOT), False))
                self.i += 1
            elif c == "(":
                self.i += 1
                if self.i < len(pattern) and pattern[self.i] == "?":
                    raise ValueError(f'Unsupported pattern syntax "?" at index {self.i} of /{pattern}/')
                seq.append((f"({_to_rule(self.sequence())})", False))
            elif c == ")":
                self.i += 1
                if not (start > 0 and pattern[start - 1] == "("):
                    where = f"start = {start}, i = {self.i}, pattern = {pattern}"
                    raise ValueError(f"Unbalanced parentheses; {where}")
                return _joined(seq)
            elif c == "[":
                seq.append((self._bracketed("[", "]", "square", start), False))
            elif c == "|":
                seq.append(("|", False))
                self.i += 1
            elif c in ("*", "+", "?", "{") and not seq:
                raise ValueError(f"Nothing to repeat at index {self.i} of /{pattern}/")
            elif c in ("*", "+", "?"):
                seq[-1] = (_to_rule(seq[-1]) + c, False)
                self.i += 1
            elif c == "{":
                self._repeat_last(seq, self._bracketed("{", "}", "curly", start))
            elif c in ("]", "}"):  # unopened: a literal character, as in Python's `re`
                seq.append((c, True))
                self.i += 1
            else:
                literal = self._literal()
                if literal:
                    seq.append((literal, True))
        return _joined(seq)

    def _bracketed(self, opening: str, closing: str, kind: str, start: int) -> str:
        pattern, text = self.pattern, opening
        self.i += 1
        while self.i < len(pattern) and pattern[self.i] != closing:
            step = 2 if opening == "[" and pattern[self.i] == "\\" else 1
            text += pattern[self.i : self.i + step]
            self.i += step
        if self.i >= len(pattern):
            where = f"start = {start}, i = {self.i}, pattern = {pattern}"
            raise ValueError(f"Unbalanced {kind} brackets; {where}")
        self.i += 1
        return text + closing

    def _repeat_last(self, seq: list[Piece], quantifier: str) -> None:
        nums = [s.strip() for s in quantifier[1:-1].split(",")]
        high: int | None
        try:
            if len(nums) == 1:
                low = high = int(nums[0])
            elif len(nums) == 2:
                low, high = int(nums[0]) if nums[0] else 0, int(nums[1]) if nums[1] else None
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"Invalid quantifier {quantifier} in /{self.pattern}/") from None
        sub, is_literal = seq[-1]
        if not is_literal:
            rule = self.sub_rules.get(sub)
            if rule is None:
                rule = self.conv.add_rule(f"{self.name}-{len(self.sub_rules) + 1}", sub)
                self.sub_rules[sub] = rule
            sub = rule
        item = f'"{sub}"' if is_literal else sub
        seq[-1] = repetition(item, low, high, literal=is_literal), False

    def _literal(self) -> str:
        pattern, literal = self.pattern, ""
        length = len(pattern)
        while self.i < length:
            i = self.i
            if pattern[i] == "\\" and i < length - 1:
                if pattern[i + 1] in META_ESCAPES:
                    literal += pattern[i + 1]
                else:
                    literal += pattern[i : i + 2]
                self.i += 2
            elif pattern[i] == '"':
                literal += '\\"'
                self.i += 1
            elif pattern[i] not in NON_LITERAL and (
                i == length - 1 or literal == "" or pattern[i + 1] == "." or pattern[i + 1] not in NON_LITERAL
            ):
                literal += pattern[i]
                self.i += 1
            else:
                break
        return literal


def _joined(seq: list[Piece]) -> Piece:
    """A sequence as one piece: a single literal stays a literal."""
    merged: list[Piece] = []
    for is_literal, group in groupby(seq, lambda piece: piece[1]):
        if is_literal:
            merged.append(("".join(text for text, _ in group), True))
        else:
            merged.extend(group)
    if len(merged) == 1:
        return merged[0]
    return " ".join(_to_rule(piece) for piece in seq), False


def _constant(value: Any) -> str:
    return gbnf_literal(json.dumps(value))
