"""Chat templates: the model's Jinja template rendered in an immutable sandbox, or a built-in one.

A template may read `messages`, `tools`, `add_generation_prompt`, `bos_token`, `eos_token` and custom
variables; it cannot reach Python internals (the CVE-2024-34359 pattern fails with a clear error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from openlms.core.errors import InvalidRequestError, NoChatTemplateError

# Architectures whose GGUFs often ship without a template, and the built-in template they chat with.
BUILTIN_BY_ARCHITECTURE: Mapping[str, str] = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "gemma3n": "gemma",
}
# Extra stop strings a built-in template needs (turn ends that the vocab may not mark as end-of-generation).
BUILTIN_STOPS: Mapping[str, tuple[str, ...]] = {"gemma": ("<end_of_turn>",), "chatml": ("<|im_end|>",)}


class TemplateError(InvalidRequestError):
    code = "template_error"


@dataclass(frozen=True, slots=True)
class ChatTemplate:
    """A compiled chat template and the tokens it is rendered with."""

    source: str
    bos_token: str = ""
    eos_token: str = ""
    name: str = "model"  # "model" for the GGUF's own template, else the built-in's name
    extra_stops: tuple[str, ...] = field(default=())

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> str:
        template = _compile(self.source)
        context: dict[str, Any] = dict(variables or {})
        context.update(
            messages=[dict(m) for m in messages],
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            tools=list(tools) if tools else None,
        )
        try:
            return template.render(**context)
        except SecurityError as exc:
            raise TemplateError(
                f"The chat template tried to access Python internals and was stopped ({exc}). "
                "Override the model's prompt template with a safe one."
            ) from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"The chat template failed to render: {exc}") from exc


def resolve_template(
    gguf_template: str | None, architecture: str | None, *, bos_token: str, eos_token: str
) -> ChatTemplate:
    """The model's own template, else the built-in one for its family, else a clear error."""
    if gguf_template and gguf_template.strip():
        return ChatTemplate(gguf_template, bos_token, eos_token)
    builtin = BUILTIN_BY_ARCHITECTURE.get((architecture or "").lower())
    if builtin is None:
        raise NoChatTemplateError(
            "This model has no chat template, and openlms has no built-in template for its architecture "
            f"({architecture or 'unknown'}). Use /v1/completions with a raw prompt instead.",
            param="model",
        )
    return ChatTemplate(
        builtin_source(builtin), bos_token, eos_token, builtin, BUILTIN_STOPS.get(builtin, ())
    )


@cache
def builtin_source(name: str) -> str:
    return resources.files("openlms.parsers").joinpath(f"builtin_templates/{name}.jinja").read_text("utf-8")


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"], autoescape=False
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


@cache
def _compile(source: str) -> jinja2.Template:
    try:
        return _environment().from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"The chat template is not valid Jinja: {exc}") from exc


def _tojson(
    value: Any, indent: int | None = None, ensure_ascii: bool = False, sort_keys: bool = False
) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=ensure_ascii, sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    raise TemplateError(f"The chat template refused the conversation: {message}")
