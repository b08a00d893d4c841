"""The chat prompt of one request: the model's template (or its override), custom Jinja variables, and
the tools shaped for the model's tool format. Rendering is bounded (`RenderLimits`) and, like tokenizing,
is CPU work: the predictor calls these from a worker thread, never on the event loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openlms.core.types import ModelDescriptor
from openlms.engine.runtime import ModelRuntime
from openlms.parsers.sandbox import RenderBudget, RenderLimits
from openlms.parsers.templates import ChatTemplate, ManualTemplate, resolve_template
from openlms.parsers.unicode import check_unicode
from openlms.services.overflow import FittedPrompt
from openlms.services.params import ResolvedParams
from openlms.services.reasoning import reasoning_variables
from openlms.services.toolcalls import (
    ToolPlan,
    messages_for_template,
    plan_tools,
    template_tools,
)


@dataclass(frozen=True, slots=True)
class ChatPrompt:
    runtime: ModelRuntime
    template: ChatTemplate | ManualTemplate
    plan: ToolPlan
    variables: Mapping[str, Any]
    budget: RenderBudget  # one request's renders share one deadline (the overflow cut renders several times)

    @property
    def extra_stops(self) -> tuple[str, ...]:
        return self.template.extra_stops

    def render(self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool) -> str:
        """The prompt text (one with a lone surrogate, which only the template can have put there once the
        request was checked, is refused: see `parsers.unicode`)."""
        text = self.template.render(
            messages_for_template(self.plan, messages),
            add_generation_prompt=add_generation_prompt,
            tools=template_tools(self.plan),
            variables=self.variables,
            limits=self.budget,
        )
        check_unicode(text, "promptTemplate")
        return text

    def tokenize(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool) -> list[int]:
        prompt = self.render(messages, add_generation_prompt=add_generation_prompt)
        bos = self.runtime.bos_token
        has_bos = bool(bos) and prompt.startswith(bos)
        return self.runtime.tokenize(prompt, add_special=not has_bos, parse_special=True)

    def text_of(self, fitted: FittedPrompt) -> str:
        """The prompt text the model receives (decoded from the tokens when tokens were cut)."""
        if fitted.token_cut:
            return self.runtime.detokenize(fitted.tokens)
        return self.render(fitted.messages, add_generation_prompt=True)


def chat_prompt(
    runtime: ModelRuntime,
    descriptor: ModelDescriptor,
    settings: ResolvedParams,
    variables: Mapping[str, Any],
    limits: RenderLimits,
) -> ChatPrompt:
    """The prompt of one request: the settings' template (else the model's), its Jinja `variables` (with
    the settings' reasoning effort applied to the template's reasoning switch), and the settings' tools
    planned for the template's tool format."""
    template = resolve_template(
        runtime.chat_template,
        descriptor.architecture,
        bos_token=runtime.bos_token,
        eos_token=runtime.eos_token,
        override=settings.template,
    )
    source = template.source if isinstance(template, ChatTemplate) else None
    plan = plan_tools(settings.tools, settings.tool_choice, source)
    variables = reasoning_variables(settings.reasoning_effort, source, variables, descriptor.key)
    return ChatPrompt(runtime, template, plan, variables, limits.start())
