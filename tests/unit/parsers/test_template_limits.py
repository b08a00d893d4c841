"""Chat templates are bounded: a render past its time limit or size limit is stopped (the template checks
its own budget, since the render's thread cannot be killed), and any runtime failure is a clear request
error, never an unexpected exception."""

from __future__ import annotations

import time

import pytest

from openlms.core.errors import InvalidRequestError, TemplateLimitError
from openlms.parsers.sandbox import RenderBudget, RenderLimits
from openlms.parsers.templates import (
    MAX_TEMPLATE_CHARS,
    ChatTemplate,
    PromptTemplateSpec,
    TemplateError,
    resolve_template,
)

LIMITS = RenderLimits(timeout_s=0.5, max_chars=100_000)
MESSAGES = [{"role": "user", "content": "hi"}]

# Templates that would run for minutes or hours: each must be stopped by the deadline.
ENDLESS = {
    "nested loops, no output": "{% for i in range(100000) %}{% for j in range(100000) %}"
    "{% endfor %}{% endfor %}",
    "nested loops over messages": "{% for i in range(100000) %}{% for j in range(100000) %}"
    "{% for m in messages %}"
    "{% if m.role == 'x' %}{% endif %}{% endfor %}{% endfor %}{% endfor %}",
    "exponential macro recursion": "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
    "{% endmacro %}{{ f(60) }}",
    "loop with a filter test": "{% for i in range(100000) if i >= 0 %}{% for j in range(100000) %}"
    "{% endfor %}{% endfor %}",
}

# Templates that would build a value (or a prompt) far larger than the size limit.
HUGE = {
    "rendered prompt": "{% for i in range(100000) %}{% for j in range(100) %}xxxxxxxx"
    "{% endfor %}{% endfor %}",
    "string repeat": "{{ 'a' * 100000000000 }}",
    "doubling in a namespace": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    "string concat": "{% set ns = namespace(s='ab') %}{% for i in range(64) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
    "list printed": "{% set s = 'a' * 90000 %}{{ [s] * 1000 }}",
    "center filter": "{{ 'a' | center(1000000000) }}",
    "ljust method": "{{ 'a'.ljust(1000000000) }}",
    "printf width": "{{ '%0999999999d' % 1 }}",
    "printf star width": "{{ '%*d' % (999999999, 1) }}",
    "str.format width": "{{ '{:>999999999}'.format(1) }}",
    "format filter": "{{ '%999999999s' | format('x') }}",
    "join": "{% set s = 'a' * 90000 %}{{ ([s] * 100) | join }}",
    "replace": "{% set s = 'a' * 10000 %}{{ s | replace('a', s) }}",
    "tojson": "{% set s = 'a' * 90000 %}{{ ([s] * 100) | tojson }}",
    "batch fill": "{{ range(2) | batch(1000000000, 'x') | list | length }}",
    "lipsum": "{{ lipsum(100000000) }}",
    "indent": "{% set s = '\n' * 10000 %}{{ s | indent(1000000) }}",
}

# Runtime failures of a template: a clear TemplateError (400), not an OverflowError or RecursionError.
FAILING = {
    "range too big": "{{ range(10**9) | length }}",
    "deep recursion": "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
    "division by zero": "{{ 1 / 0 }}",
    "type error": "{{ 1 + 'a' }}",
}


@pytest.mark.parametrize("source", ENDLESS.values(), ids=ENDLESS.keys())
def test_a_template_that_runs_too_long_is_stopped(source: str) -> None:
    with pytest.raises(TemplateLimitError, match="template_timeout_s"):
        ChatTemplate(source).render(MESSAGES, limits=LIMITS)


@pytest.mark.parametrize("source", HUGE.values(), ids=HUGE.keys())
def test_a_template_that_builds_too_much_is_stopped(source: str) -> None:
    with pytest.raises(TemplateLimitError, match="template_max_chars"):
        ChatTemplate(source).render(MESSAGES, limits=LIMITS)


def test_huge_numbers_are_refused() -> None:
    with pytest.raises(TemplateLimitError, match="number larger"):
        ChatTemplate("{{ 9 ** (9 ** 9) }}").render(MESSAGES, limits=LIMITS)
    with pytest.raises(TemplateLimitError, match="number larger"):
        ChatTemplate(
            "{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}"
            "{% endfor %}{{ ns.n }}"
        ).render(MESSAGES, limits=LIMITS)


@pytest.mark.parametrize("source", FAILING.values(), ids=FAILING.keys())
def test_runtime_failures_are_template_errors(source: str) -> None:
    with pytest.raises(TemplateError, match="failed to render") as info:
        ChatTemplate(source).render(MESSAGES, limits=LIMITS)
    assert isinstance(info.value, InvalidRequestError)


def test_limit_errors_are_request_errors() -> None:
    assert issubclass(TemplateLimitError, InvalidRequestError)


def test_real_templates_render_unchanged_under_limits() -> None:
    """The guards change no output: loop variables, filters, tojson and the built-in template still work."""
    source = (
        "{% for m in messages %}{{ loop.index }}/{{ loop.length }}{{ '!' if loop.last }}"
        " {{ m.role | upper }}: {{ m.content | trim | center(9) }}{% endfor %}{{ tools | tojson(indent=2) }}"
        "{{ '%s-%03d' % ('a', 7) }}{{ '{}+{}'.format(1, 2) }}{{ ['x', 'y'] | join(',') }}"
    )
    tools = [{"type": "function", "function": {"name": "f"}}]
    out = ChatTemplate(source).render(MESSAGES * 2, tools=tools, limits=LIMITS)
    assert out == (
        '1/2 USER:     hi   2/2! USER:     hi   [\n  {\n    "type": "function",\n    "function": {\n'
        '      "name": "f"\n    }\n  }\n]a-0071+2x,y'
    )
    gemma = resolve_template(None, "gemma3", bos_token="<bos>", eos_token="<eos>")
    text = gemma.render(MESSAGES * 500, limits=LIMITS)
    assert text.count("<start_of_turn>user") == 500


def test_limits_apply_per_render() -> None:
    """A budget is per render: one render that used its time does not shorten the next."""
    slow = ChatTemplate(ENDLESS["nested loops, no output"])
    with pytest.raises(TemplateLimitError):
        slow.render(MESSAGES, limits=LIMITS)
    assert ChatTemplate("{{ messages[0].content }}").render(MESSAGES, limits=LIMITS) == "hi"


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
        "{% if 1 %}" * 200 + "x" + "{% endif %}" * 200,
        "{% for a in [1] %}" * 100 + "x" + "{% endfor %}" * 100,
    ],
    ids=["parentheses", "ifs", "loops"],
)
def test_a_template_nested_too_deeply_to_compile_is_a_template_error(source: str) -> None:
    with pytest.raises(TemplateError, match="too deeply nested"):
        ChatTemplate(source).render(MESSAGES, limits=LIMITS)


def test_a_huge_template_source_is_refused_before_compiling() -> None:
    source = "{{ messages[0].content }}" * (MAX_TEMPLATE_CHARS // 10)
    with pytest.raises(TemplateLimitError, match="characters long"):
        ChatTemplate(source).render(MESSAGES, limits=LIMITS)
    override = {"type": "jinja", "jinjaPromptTemplate": {"template": source}}
    with pytest.raises(InvalidRequestError, match="characters long") as info:
        PromptTemplateSpec.from_json(override)
    assert info.value.param == "promptTemplate.jinjaPromptTemplate.template"


def test_recursive_loops_still_work() -> None:
    source = "{% for x in [[1, [2]], [3]] recursive %}{{ x if x is number else loop(x) }}{% endfor %}"
    assert ChatTemplate(source).render(MESSAGES, limits=LIMITS) == "123"


def test_a_started_budget_is_shared_by_the_renders_that_use_it() -> None:
    """One request's renders (the overflow cut renders several times) share one deadline."""
    spent = RenderBudget(time.monotonic() - 1, LIMITS)
    with pytest.raises(TemplateLimitError, match="template_timeout_s"):
        ChatTemplate("{{ messages[0].content }}").render(MESSAGES, limits=spent)
    fresh = LIMITS.start()
    assert ChatTemplate("{{ messages[0].content }}").render(MESSAGES, limits=fresh) == "hi"
