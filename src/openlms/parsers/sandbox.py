"""The Jinja sandbox chat templates render in: immutable, strict, and bounded in time and size.

A render runs in a worker thread, and a thread cannot be killed, so the template checks its own budget
(`RenderLimits`: a deadline and a largest value) as it runs:

- the code generator wraps every for-loop's iterable in a guard (a filter no template can name) that
  checks the deadline on each iteration (loops that output nothing are stopped too), and every filter's
  and concatenation's result in a size check;
- every call (functions, methods, macros: recursion included) checks the deadline and its result's size;
- the operators that can build a huge value in one step (`*`, `**`, `%`, `+`) and the filters and string
  methods that take a width or repeat their input (`center`, `indent`, `batch`, `slice`, `format`,
  `replace`, `join`, `ljust`, `zfill`, `lipsum()`, ...) are refused before they allocate more than the limit;
- every output expression is weighed (`finalize`) before it is turned into text, and the rendered text is
  counted as it is produced.

A value's weight is the number of characters and items reachable from it (shared references counted each
time, as `str()` would write them), so `[s] * 1000` with a long `s` is refused before it is printed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from jinja2 import nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

from openlms.core.errors import TemplateLimitError

# The render context's key for the budget: not a Jinja identifier, so no template can read or replace it.
BUDGET_KEY = "openlms render budget"
MAX_INT_BITS = 1 << 16  # integers a template computes stay below 2**65536
_PRINTF_WIDTH = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """How long one render may take and how large a value (and the rendered text) may grow."""

    timeout_s: float = 10.0
    max_chars: int = 16 * 1024 * 1024

    def start(self) -> RenderBudget:
        return RenderBudget(time.monotonic() + self.timeout_s, self)


@dataclass(frozen=True, slots=True)
class RenderBudget:
    """One render's budget: an absolute deadline and the limits it came from."""

    deadline: float
    limits: RenderLimits

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(
                f"The chat template took longer than {self.limits.timeout_s:g} s to render and was stopped "
                "(setting template_timeout_s). Simplify the template or the conversation."
            )

    def check_size(self, size: int, what: str = "a value") -> None:
        if size > self.limits.max_chars:
            raise TemplateLimitError(
                f"The chat template built {what} larger than {self.limits.max_chars} characters and was "
                "stopped (setting template_max_chars)."
            )

    def weigh(self, value: Any) -> Any:
        """`value`, after checking the deadline and that its weight is within the size limit."""
        self.check_time()
        if isinstance(value, str):
            if len(value) > self.limits.max_chars:
                self.check_size(len(value))
        elif isinstance(value, list | tuple | dict | set | frozenset):
            self.check_size(weight(value, self.limits.max_chars, self))
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > MAX_INT_BITS:
            _too_big_number()
        return value


def weight(value: Any, limit: int, budget: RenderBudget | None = None) -> int:
    """Characters and items reachable from `value` (each reference counted), stopping past `limit`."""
    if isinstance(value, str):
        return len(value)
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, Mapping):
            total += 1 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1 + len(item)
            stack.extend(item)
        else:
            total += 1
        if budget is not None and total & 0xFFF == 0:
            budget.check_time()
    return total


def budget_of(context: Context) -> RenderBudget:
    budget = context.parent.get(BUDGET_KEY)  # the render's own variables, where render() put it
    if not isinstance(budget, RenderBudget):  # rendered without a budget: the defaults apply
        raise TemplateLimitError("The chat template was rendered without limits.")
    return budget


_LOOP_GUARD = "openlms loop guard"  # a filter name no template can write (it has spaces)


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):  # before the dependencies (filters) are collected
            guarded = isinstance(loop.iter, nodes.Filter) and loop.iter.name == _LOOP_GUARD
            if not guarded:
                loop.iter = nodes.Filter(loop.iter, _LOOP_GUARD, [], [], None, None, lineno=loop.lineno)
        super().visit_Template(node, frame)

    def visit_Filter(self, node: nodes.Filter, frame: Frame) -> None:
        if node.name == _LOOP_GUARD:
            super().visit_Filter(node, frame)
            return
        self.write("environment.guard_value(context, ")
        super().visit_Filter(node, frame)
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.guard_value(context, ")
        super().visit_Concat(node, frame)
        self.write(")")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, strict about unsafe attributes (one fails at once instead of rendering
    as undefined, so no probe of Python internals goes unnoticed), and bounded (see the module)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.filters.update(_bounded_filters())
        self.globals["lipsum"] = _lipsum

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        return None if wrapped is None else _StrFormat(wrapped, value.__self__)

    def guard_value(self, context: Context, value: Any) -> Any:
        return budget_of(context).weigh(value)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = budget_of(context)
        if operator == "+" and type(left) is str and type(right) is str:  # the common case, kept fast
            budget.check_size(len(left) + len(right))
            return left + right
        budget.check_time()
        _check_binop(budget, operator, left, right)  # refused before it is built
        result = super().call_binop(context, operator, left, right)
        return budget.weigh(result) if operator == "%" else result

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = budget_of(context)
        budget.check_time()
        _check_method(budget, obj, args)
        return budget.weigh(super().call(context, obj, *args, **kwargs))


@dataclass(frozen=True, slots=True)
class _StrFormat:
    """The sandbox's `str.format` (or `format_map`) of `text`, which `call` checks for huge widths."""

    format: Callable[..., str]
    text: str

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        return self.format(*args, **kwargs)


@pass_context
def _guard_loop(context: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    budget = budget_of(context)
    for item in iterable:
        budget.check_time()
        yield item


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:  # noqa: A002
    """Jinja's `lipsum`, bounded: it loops `n` times in Python, where no guard can stop it."""
    if not all(_is_int(v) and 0 <= v <= 1000 for v in (n, min, max)):
        raise TemplateLimitError(
            "The chat template asked lipsum() for more than 1000 paragraphs or words (template_max_chars)."
        )
    return str(generate_lorem_ipsum(n=n, html=html, min=min, max=max))


@pass_context
def _finalize(context: Context, value: Any) -> Any:
    return budget_of(context).weigh(value)


def _too_big_number() -> NoReturn:
    raise TemplateLimitError(f"The chat template computed a number larger than 2**{MAX_INT_BITS}.")


def _check_binop(budget: RenderBudget, operator: str, left: Any, right: Any) -> None:
    limit = budget.limits.max_chars
    if operator == "*":
        if _is_int(left) and _is_int(right):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                _too_big_number()
        elif _is_int(right) and isinstance(left, str | list | tuple):
            budget.check_size(max(0, right) * weight(left, limit, budget))
        elif _is_int(left) and isinstance(right, str | list | tuple):
            budget.check_size(max(0, left) * weight(right, limit, budget))
    elif operator == "**" and _is_int(left) and _is_int(right) and right > 0:
        if left.bit_length() * right > MAX_INT_BITS:
            _too_big_number()
    elif operator == "%" and isinstance(left, str):
        _check_printf(budget, left, right)
    elif operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
        budget.check_size(weight(left, limit, budget) + weight(right, limit, budget))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_widths(budget: RenderBudget, widths: Iterable[str]) -> None:
    for width in widths:
        if width.isdigit() and len(width) > 3:
            budget.check_size(int(width), "a formatted field")


def _check_printf(budget: RenderBudget, fmt: str, args: Any) -> None:
    found = _PRINTF_WIDTH.findall(fmt)
    _check_widths(budget, (w for pair in found for w in pair))
    if any("*" in pair for pair in found):
        values = args if isinstance(args, tuple) else (args,)
        for value in values:
            if _is_int(value):
                budget.check_size(value, "a formatted field")


def _check_method(budget: RenderBudget, obj: Any, args: tuple[Any, ...]) -> None:
    """Refuse a string method call whose result would be larger than the limit, before it runs."""
    if isinstance(obj, _StrFormat):
        specs = _FORMAT_SPEC.findall(obj.text)
        _check_widths(budget, (w for spec in specs for w in re.findall(r"\d+", spec)))
        return
    target = getattr(obj, "__self__", None)
    if not isinstance(target, str):
        return
    name = getattr(obj, "__name__", "")
    if name in _WIDTH_METHODS and args and _is_int(args[0]):
        budget.check_size(args[0], "a padded string")
    elif name == "expandtabs":
        size = args[0] if args and _is_int(args[0]) else 8
        budget.check_size(len(target) + target.count("\t") * max(0, size))
    elif name == "replace" and len(args) >= 2:
        _check_replace(budget, target, args[0], args[1])
    elif name == "join" and args:
        _check_join(budget, target, args[0])


def _check_replace(budget: RenderBudget, text: Any, old: Any, new: Any) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        count = text.count(old) if old else len(text) + 1
        budget.check_size(len(text) + count * max(0, len(new) - len(old)))


def _check_join(budget: RenderBudget, separator: str, items: Any) -> None:
    if isinstance(items, list | tuple):
        limit = budget.limits.max_chars
        budget.check_size(weight(list(items), limit, budget) + len(separator) * len(items))


def _bounded_filters() -> dict[str, Callable[..., Any]]:
    """The filters that take a width or a count, checked before they build their result."""

    @pass_context
    def center(context: Context, value: Any, width: int = 80) -> Any:
        budget_of(context).check_size(width if _is_int(width) else 0, "a padded string")
        return FILTERS["center"](value, width)

    @pass_context
    def indent(context: Context, value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> Any:
        size = width if _is_int(width) else len(width) if isinstance(width, str) else 0
        text = str(value)
        budget_of(context).check_size(len(text) + (text.count("\n") + 1) * max(0, size))
        return FILTERS["indent"](value, width, *args, **kwargs)

    @pass_context
    def batch(context: Context, value: Any, linecount: int, *args: Any) -> Any:
        budget_of(context).check_size(linecount if _is_int(linecount) else 0, "a batch")
        return FILTERS["batch"](value, linecount, *args)

    @pass_context
    def slice_(context: Context, value: Any, slices: int, *args: Any) -> Any:
        budget_of(context).check_size(slices if _is_int(slices) else 0, "a slice count")
        return FILTERS["slice"](value, slices, *args)

    @pass_context
    def format_(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            _check_printf(budget_of(context), value, args)
        return FILTERS["format"](value, *args, **kwargs)

    @pass_context
    def replace(context: Context, value: Any, old: Any, new: Any, count: Any = None) -> Any:
        _check_replace(budget_of(context), str(value), old, new)
        return FILTERS["replace"](context.eval_ctx, value, old, new, count)

    @pass_context
    def join(context: Context, value: Any, d: str = "", attribute: Any = None) -> Any:
        items = list(value)
        _check_join(budget_of(context), d if isinstance(d, str) else "", items)
        return FILTERS["join"](context.eval_ctx, items, d, attribute)

    @pass_context
    def tojson(
        context: Context, value: Any, indent: Any = None, ensure_ascii: bool = False, sort_keys: bool = False
    ) -> str:
        """JSON as chat templates expect it (no HTML escaping), written in pieces and counted."""
        budget = budget_of(context)
        if (_is_int(indent) and not 0 <= indent <= 64) or (isinstance(indent, str) and len(indent) > 64):
            raise TemplateLimitError("The chat template asked tojson for an indent wider than 64.")
        encoder = json.JSONEncoder(indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)
        parts: list[str] = []
        size = 0
        for chunk in encoder.iterencode(value):
            size += len(chunk)
            budget.check_size(size, "a JSON text")
            parts.append(chunk)
        return "".join(parts)

    return {
        _LOOP_GUARD: _guard_loop,
        "center": center,
        "indent": indent,
        "batch": batch,
        "slice": slice_,
        "format": format_,
        "replace": replace,
        "join": join,
        "tojson": tojson,
    }
