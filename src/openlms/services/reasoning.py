"""The reasoning switch: one `reasoning_effort` (off|low|medium|high|on) turned into the Jinja variables
the model's template reads, when the prompt is built.

- A template that reads a boolean switch (`enable_thinking`, Qwen3 style; `thinking`): off → False, any
  other effort → True.
- A template that reads `reasoning_effort` (gpt-oss): low/medium/high as given, on → medium, off → low
  (gpt-oss cannot stop reasoning; low is the least).
- A model.yaml `customFields` entry whose effect sets one of those variables (`enableThinking` →
  `enable_thinking`) gets the same mapping, over the field's default and the per-model value.
- A model with no switch ignores the effort (a debug log says so).

Unset (`None`) leaves the variables as the model's own settings made them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta

from openlms.core.errors import InvalidRequestError

EFFORTS = ("off", "low", "medium", "high", "on")
# OpenAI's reasoning efforts (Responses' reasoning.effort, chat completions' reasoning_effort) as ours
OPENAI_EFFORTS = {"none": "off", "minimal": "low", "xhigh": "high", "max": "high"} | {e: e for e in EFFORTS}
BOOLEAN_SWITCHES = ("enable_thinking", "thinking")  # True: think before answering
LEVEL_SWITCHES = ("reasoning_effort",)  # "low" | "medium" | "high"
_LEVELS = {"off": "low", "low": "low", "medium": "medium", "high": "high", "on": "medium"}
_MAX_PARSED_CHARS = 128 * 1024  # as parsers.templates.MAX_TEMPLATE_CHARS: longer sources are refused there

log = logging.getLogger(__name__)


def check_effort(value: str | None, param: str) -> str | None:
    """`value` when it is one of EFFORTS (or None); else a 400 naming `param` and the allowed values."""
    if value is None or value in EFFORTS:
        return value
    raise InvalidRequestError(
        f"'{param}' must be one of {', '.join(EFFORTS)}; got {value!r}.",
        param=param,
    )


def openai_effort(value: object, param: str) -> str | None:
    """An OpenAI effort (none, minimal, low, medium, high, xhigh; or LM Studio's off/on) as the switch's
    effort; None when unset; a 400 naming `param` otherwise."""
    if value is None:
        return None
    effort = OPENAI_EFFORTS.get(value) if isinstance(value, str) else None
    if effort is None:
        raise InvalidRequestError(
            f"'{param}' must be one of {', '.join(OPENAI_EFFORTS)}; got {value!r}.", param=param
        )
    return effort


def reasoning_variables(
    effort: str | None,
    template_source: str | None,
    variables: Mapping[str, Any],
    model: str = "",
) -> Mapping[str, Any]:
    """`variables` with the reasoning switches the template (or the model.yaml's custom fields, whose
    variables are already in `variables`) reads set from `effort`; `variables` itself when unset."""
    if effort is None:
        return variables
    switches = set(template_reads(template_source)) | set(variables)
    updates: dict[str, bool | str] = {name: effort != "off" for name in BOOLEAN_SWITCHES if name in switches}
    updates |= {name: _LEVELS[effort] for name in LEVEL_SWITCHES if name in switches}
    if not updates:
        log.debug(
            "Model %s has no reasoning switch in its template; reasoning effort %r ignored.", model, effort
        )
        return variables
    log.debug("Reasoning effort %r for %s: %s", effort, model, updates)
    return {**variables, **updates}


def template_reads(source: str | None) -> frozenset[str]:
    """The reasoning switches a template reads (as undeclared variables, so loop names do not count)."""
    if not source:
        return frozenset()
    return _switches_read(source)


@lru_cache(maxsize=32)
def _switches_read(source: str) -> frozenset[str]:
    names = (*BOOLEAN_SWITCHES, *LEVEL_SWITCHES)
    if not any(name in source for name in names):
        return frozenset()
    if len(source) > _MAX_PARSED_CHARS:
        return frozenset()
    try:
        ast = jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(source)
    except jinja2.TemplateSyntaxError:
        return frozenset()  # rendering reports it
    return frozenset(_known(meta.find_undeclared_variables(ast), names))


def _known(found: Iterable[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in found if name in names]
