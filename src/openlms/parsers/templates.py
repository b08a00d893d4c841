"""Chat templates: the model's Jinja template rendered in an immutable sandbox, a built-in one, or a
user's override (LM Studio's `LLMPromptTemplate`: a Jinja template, or "manual" per-role prefixes and
suffixes).

A template may read `messages`, `tools`, `add_generation_prompt`, `bos_token`, `eos_token` and custom
variables (e.g. `enable_thinking`); it cannot reach Python internals: any access to an unsafe attribute
(`__class__`, `__globals__`, `__subclasses__`, ...) or a mutating method stops rendering at once with a
clear `TemplateError`, so the CVE-2024-34359 pattern (`os.popen` through `cycler`, `joiner`, `namespace`,
`self`, or a subclass walk) runs nothing.

Override shape (LM Studio's, camelCase, as stored in per-model settings):
    {"type": "manual" | "jinja",
     "manualPromptTemplate": {"beforeSystem", "afterSystem", "beforeUser", "afterUser",
                              "beforeAssistant", "afterAssistant"},   # strings; required for "manual"
     "jinjaPromptTemplate": {"template": "..."},                      # required for "jinja"
     "stopStrings": ["..."]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Literal, NoReturn

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from openlms.core.errors import InvalidRequestError, NoChatTemplateError, TemplateLimitError
from openlms.parsers.sandbox import BUDGET_KEY, BoundedSandbox, RenderBudget, RenderLimits

# Architectures whose GGUFs often ship without a template, and the built-in template they chat with.
BUILTIN_BY_ARCHITECTURE: Mapping[str, str] = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "gemma3n": "gemma",
}
# Extra stop strings a built-in template needs (turn ends that the vocab may not mark as end-of-generation).
BUILTIN_STOPS: Mapping[str, tuple[str, ...]] = {"gemma": ("<end_of_turn>",), "chatml": ("<|im_end|>",)}
# Longest template source compiled: real chat templates are under 20 kB; compiling costs ~1 s per 100 kB.
MAX_TEMPLATE_CHARS = 128 * 1024
COMPILED_TEMPLATES = 32  # compiled templates kept (models' own and recent overrides)
# Keys of older LM Studio `jinjaPromptTemplate` objects that are accepted and ignored.
_LEGACY_JINJA_KEYS = frozenset({"bosToken", "eosToken", "inputConfig"})


class TemplateError(InvalidRequestError):
    code = "template_error"


@dataclass(frozen=True, slots=True)
class ChatTemplate:
    """A compiled chat template and the tokens it is rendered with."""

    source: str
    bos_token: str = ""
    eos_token: str = ""
    name: str = "model"  # "model" for the GGUF's own template, "override" for a user's, else the built-in
    extra_stops: tuple[str, ...] = field(default=())

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
        variables: Mapping[str, Any] | None = None,
        limits: RenderLimits | RenderBudget | None = None,
    ) -> str:
        """The prompt text; `limits` bounds the render's time and size (a `TemplateLimitError` past them;
        a `RenderBudget` already started is shared with the renders before and after this one),
        and any other failure of the template is a `TemplateError` (both are the request's fault)."""
        template = _compile(self.source)
        context: dict[str, Any] = dict(variables or {})
        budget = limits if isinstance(limits, RenderBudget) else (limits or RenderLimits()).start()
        context.update(
            messages=[dict(m) for m in messages],
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token,
            eos_token=self.eos_token,
            tools=list(tools) if tools else None,
        )
        context[BUDGET_KEY] = budget
        try:
            return _generate(template, context, budget)
        except (TemplateError, TemplateLimitError):
            raise
        except SecurityError as exc:
            raise TemplateError(
                f"The chat template tried to access Python internals and was stopped ({exc}). "
                "Override the model's prompt template with a safe one."
            ) from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"The chat template failed to render: {exc}") from exc
        except RecursionError as exc:
            raise TemplateError("The chat template failed to render: it recursed too deeply.") from exc
        except MemoryError as exc:
            raise TemplateLimitError("The chat template ran out of memory and was stopped.") from exc
        except Exception as exc:  # OverflowError (range), TypeError, ValueError...: a template error
            raise TemplateError(f"The chat template failed to render: {type(exc).__name__}: {exc}") from exc


def _generate(template: jinja2.Template, context: dict[str, Any], budget: RenderBudget) -> str:
    """Render piece by piece, counting the text and checking the deadline as it is produced."""
    parts: list[str] = []
    size = 0
    for part in template.generate(context):
        size += len(part)
        budget.check_size(size, "a prompt")
        budget.check_time()
        parts.append(part)
    return "".join(parts)


# ---------------------------------------------------------------------------------------------------
# Overrides: LM Studio's LLMPromptTemplate


@dataclass(frozen=True, slots=True)
class ManualParts:
    """LM Studio's `LLMManualPromptTemplate`: what goes before and after each role's message."""

    before_system: str = ""
    after_system: str = ""
    before_user: str = ""
    after_user: str = ""
    before_assistant: str = ""
    after_assistant: str = ""

    def wrap(self, role: str) -> tuple[str, str]:
        if role == "system":
            return self.before_system, self.after_system
        if role == "assistant":
            return self.before_assistant, self.after_assistant
        return self.before_user, self.after_user


_MANUAL_KEYS: Mapping[str, str] = {  # wire key -> ManualParts field
    "beforeSystem": "before_system",
    "afterSystem": "after_system",
    "beforeUser": "before_user",
    "afterUser": "after_user",
    "beforeAssistant": "before_assistant",
    "afterAssistant": "after_assistant",
}


@dataclass(frozen=True, slots=True)
class PromptTemplateSpec:
    """A prompt template override (LM Studio's `LLMPromptTemplate`). Both forms may be kept (LM Studio
    remembers the one not in use); `type` says which one renders."""

    type: Literal["manual", "jinja"]
    manual: ManualParts | None = None
    jinja: str | None = None
    stop_strings: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: object, *, param: str = "promptTemplate") -> PromptTemplateSpec:
        """Parse and validate the camelCase shape; an InvalidRequestError names the bad field."""
        obj = _object(data, param, {"type", "manualPromptTemplate", "jinjaPromptTemplate", "stopStrings"})
        kind = obj.get("type")
        if kind not in ("manual", "jinja"):
            _bad(f"{param}.type", f"must be 'manual' or 'jinja', got {kind!r}")
        manual = _manual(obj.get("manualPromptTemplate"), f"{param}.manualPromptTemplate")
        jinja = _jinja(obj.get("jinjaPromptTemplate"), f"{param}.jinjaPromptTemplate")
        if kind == "manual" and manual is None:
            _bad(f"{param}.manualPromptTemplate", "is required when type is 'manual'")
        if kind == "jinja" and jinja is None:
            _bad(f"{param}.jinjaPromptTemplate", "is required when type is 'jinja'")
        stops = _stop_strings(obj.get("stopStrings", []), f"{param}.stopStrings")
        return cls(kind, manual, jinja, stops)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.manual is not None:
            out["manualPromptTemplate"] = {k: getattr(self.manual, n) for k, n in _MANUAL_KEYS.items()}
        if self.jinja is not None:
            out["jinjaPromptTemplate"] = {"template": self.jinja}
        out["stopStrings"] = list(self.stop_strings)
        return out


@dataclass(frozen=True, slots=True)
class ManualTemplate:
    """A manual (prefix/suffix) template with the `ChatTemplate` interface. `tool` messages render as user
    turns, `developer` ones as system turns; `tools` and `variables` are accepted and not used."""

    parts: ManualParts
    bos_token: str = ""
    eos_token: str = ""
    name: str = "manual"
    extra_stops: tuple[str, ...] = field(default=())

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        tools: Sequence[Mapping[str, Any]] | None = None,
        variables: Mapping[str, Any] | None = None,
        limits: RenderLimits | RenderBudget | None = None,
    ) -> str:
        out: list[str] = []
        for index, message in enumerate(messages):
            before, after = self.parts.wrap(_manual_role(message.get("role"), index))
            out.append(before + _message_text(message) + after)
        if add_generation_prompt:
            out.append(self.parts.before_assistant)
        return "".join(out)


def template_from_spec(
    spec: PromptTemplateSpec, bos_token: str, eos_token: str
) -> ChatTemplate | ManualTemplate:
    """The renderer for an override; its `stopStrings` become the template's extra stops."""
    if spec.type == "manual":
        return ManualTemplate(spec.manual or ManualParts(), bos_token, eos_token, "manual", spec.stop_strings)
    return ChatTemplate(spec.jinja or "", bos_token, eos_token, "override", spec.stop_strings)


def resolve_template(
    gguf_template: str | None,
    architecture: str | None,
    *,
    bos_token: str,
    eos_token: str,
    override: PromptTemplateSpec | None = None,
) -> ChatTemplate | ManualTemplate:
    """The user's override, else the model's own template, else the built-in one for its family, else a
    clear error."""
    if override is not None:
        return template_from_spec(override, bos_token, eos_token)
    if gguf_template and gguf_template.strip():
        return ChatTemplate(gguf_template, bos_token, eos_token)
    builtin = BUILTIN_BY_ARCHITECTURE.get((architecture or "").lower())
    if builtin is None:
        raise NoChatTemplateError(
            "This model has no chat template, and openlms has no built-in template for its architecture "
            f"({architecture or 'unknown'}). Use /v1/completions with a raw prompt instead, or set a "
            "prompt template for the model (PUT /api/v1/models/config).",
            param="model",
        )
    return ChatTemplate(
        builtin_source(builtin), bos_token, eos_token, builtin, BUILTIN_STOPS.get(builtin, ())
    )


@cache
def builtin_source(name: str) -> str:
    return resources.files("openlms.parsers").joinpath(f"builtin_templates/{name}.jinja").read_text("utf-8")


# ---------------------------------------------------------------------------------------------------
# Sandbox


@cache
def _environment() -> ImmutableSandboxedEnvironment:
    env = BoundedSandbox(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"], autoescape=False
    )
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


@lru_cache(maxsize=COMPILED_TEMPLATES)
def _compile(source: str) -> jinja2.Template:
    """The compiled template (compiling takes about 10 µs a character, so sources are bounded)."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateLimitError(
            f"The chat template is {len(source)} characters long; at most {MAX_TEMPLATE_CHARS} are accepted."
        )
    try:
        return _environment().from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"The chat template is not valid Jinja: {exc}") from exc
    except (RecursionError, SyntaxError, MemoryError, ValueError, OverflowError) as exc:
        # nesting deeper than Python compiles (IndentationError, RecursionError in the parser)
        raise TemplateError(
            f"The chat template is too deeply nested to compile ({type(exc).__name__})."
        ) from exc


def _raise_exception(message: str) -> None:
    raise TemplateError(f"The chat template refused the conversation: {message}")


# ---------------------------------------------------------------------------------------------------
# Helpers: override parsing and manual rendering


def _bad(param: str, problem: str) -> NoReturn:
    raise InvalidRequestError(f"Invalid prompt template: '{param}' {problem}.", param=param)


def _object(data: object, param: str, allowed: frozenset[str] | set[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        _bad(param, f"must be an object, got {type(data).__name__}")
    for key in data:
        if key not in allowed:
            _bad(f"{param}.{key}", f"is not a known field (expected one of: {', '.join(sorted(allowed))})")
    return data


def _string(value: object, param: str) -> str:
    if not isinstance(value, str):
        _bad(param, f"must be a string, got {type(value).__name__}")
    return value


def _manual(data: object, param: str) -> ManualParts | None:
    if data is None:
        return None
    obj = _object(data, param, set(_MANUAL_KEYS))
    return ManualParts(
        **{name: _string(obj.get(key, ""), f"{param}.{key}") for key, name in _MANUAL_KEYS.items()}
    )


def _jinja(data: object, param: str) -> str | None:
    if data is None:
        return None
    obj = _object(data, param, {"template"} | _LEGACY_JINJA_KEYS)
    source = _string(obj.get("template"), f"{param}.template")
    if not source.strip():
        _bad(f"{param}.template", "must not be empty")
    try:
        _compile(source)
    except (TemplateError, TemplateLimitError) as exc:
        _bad(f"{param}.template", f"is not valid Jinja ({exc.message})")
    return source


def _stop_strings(data: object, param: str) -> tuple[str, ...]:
    if not isinstance(data, list):
        _bad(param, f"must be a list of strings, got {type(data).__name__}")
    stops = tuple(_string(item, f"{param}[{i}]") for i, item in enumerate(data))
    if any(not s for s in stops):
        _bad(param, "must not contain empty strings")
    return stops


def _manual_role(role: object, index: int) -> str:
    if role in ("system", "developer"):
        return "system"
    if role in ("user", "tool"):
        return "user"
    if role == "assistant":
        return "assistant"
    raise TemplateError(f"messages[{index}].role {role!r} has no place in a manual prompt template.")


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, Sequence):
        text = "".join(
            p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text"
        )
    else:
        text = ""
    calls = message.get("tool_calls") or []
    rendered = [json.dumps(c.get("function", c), ensure_ascii=False) for c in calls if isinstance(c, Mapping)]
    return "\n".join(part for part in (text, *rendered) if part)
