"""The schema converter's regex translation: patterns that once hung the converter or crashed it get a
grammar or a clear refusal."""

from __future__ import annotations

import pytest

from openlms.core.errors import InvalidRequestError
from openlms.parsers.grammar import json_schema_grammar
from openlms.parsers.schema_gbnf import GbnfConverter


def root_rule(pattern: str) -> str:
    grammar = json_schema_grammar({"type": "string", "pattern": pattern})
    return next(line for line in grammar.splitlines() if line.startswith("root ::= "))


@pytest.mark.parametrize(
    ("pattern", "rule"),
    [
        ("a}", 'root ::= "\\"" ("a}") "\\"" space'),
        ("^a]$", 'root ::= "\\"" "a]" "\\"" space'),
        ("a]{2}", 'root ::= "\\"" ("a" "]]") "\\"" space'),
    ],
)
def test_an_unopened_closing_bracket_is_a_literal(pattern: str, rule: str) -> None:
    assert root_rule(pattern) == rule


@pytest.mark.parametrize("pattern", ["*a", "^+a$", "{2}a", "(?a)"])
def test_nothing_to_repeat_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidRequestError, match="Unsupported JSON schema"):
        json_schema_grammar({"type": "string", "pattern": pattern})


def test_rule_names_stay_apart() -> None:
    conv = GbnfConverter()
    assert conv.add_rule("a b", "x") == "a-b"
    assert conv.add_rule("a b", "x") == "a-b"
    assert conv.add_rule("a-b", "y") == "a-b0"
    assert conv.grammar().splitlines()[:2] == ["a-b ::= x", "a-b0 ::= y"]
