"""Prompt template overrides (LM Studio's LLMPromptTemplate): parsing, manual rendering, Jinja overrides,
and variables such as `enable_thinking` reaching the template."""

from __future__ import annotations

from typing import Any

import pytest

from openlms.core.errors import InvalidRequestError
from openlms.parsers.templates import (
    ChatTemplate,
    ManualParts,
    ManualTemplate,
    PromptTemplateSpec,
    TemplateError,
    resolve_template,
    template_from_spec,
)

MANUAL: dict[str, Any] = {
    "type": "manual",
    "manualPromptTemplate": {
        "beforeSystem": "<|system|>\n",
        "afterSystem": "\n",
        "beforeUser": "<|user|>\n",
        "afterUser": "\n",
        "beforeAssistant": "<|assistant|>\n",
        "afterAssistant": "</s>\n",
    },
    "stopStrings": ["</s>", "<|user|>"],
}
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Qwen3-style: an empty think block when thinking is off.
THINKING = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)


def test_manual_spec_round_trips_and_renders_each_role() -> None:
    spec = PromptTemplateSpec.from_json(MANUAL)
    assert spec.type == "manual" and spec.stop_strings == ("</s>", "<|user|>")
    assert spec.to_json() == MANUAL
    template = template_from_spec(spec, "<s>", "</s>")
    assert isinstance(template, ManualTemplate) and template.extra_stops == ("</s>", "<|user|>")
    out = template.render(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "tool", "content": '{"temp": 21}'},
        ]
    )
    assert out == (
        '<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\nHello</s>\n<|user|>\n{"temp": 21}\n'
        "<|assistant|>\n"
    )
    assert not template.render([{"role": "user", "content": "Hi"}], add_generation_prompt=False).endswith(
        "<|assistant|>\n"
    )


def test_manual_template_reads_text_parts_and_tool_calls() -> None:
    template = ManualTemplate(ManualParts(before_user="U:", after_user="|", before_assistant="A:"))
    call = {"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}
    out = template.render(
        [
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": None, "tool_calls": [call]},
        ],
        add_generation_prompt=False,
    )
    assert out == 'U:ab|A:{"name": "f", "arguments": {"x": 1}}'
    with pytest.raises(TemplateError, match=r"messages\[0\]\.role"):
        template.render([{"role": "narrator", "content": "x"}])


def test_missing_manual_parts_default_to_empty_and_stop_strings_are_optional() -> None:
    spec = PromptTemplateSpec.from_json({"type": "manual", "manualPromptTemplate": {"beforeUser": "> "}})
    assert spec.manual == ManualParts(before_user="> ") and spec.stop_strings == ()


def test_jinja_override_wins_over_the_gguf_template() -> None:
    spec = PromptTemplateSpec.from_json(
        {
            "type": "jinja",
            "jinjaPromptTemplate": {"template": "[{{ messages[0].content }}]"},
            "stopStrings": [],
        }
    )
    template = resolve_template(CHATML, "llama", bos_token="<s>", eos_token="</s>", override=spec)
    assert isinstance(template, ChatTemplate) and template.name == "override"
    assert template.render([{"role": "user", "content": "Hi"}]) == "[Hi]"
    no_template = resolve_template(None, "mamba", bos_token="", eos_token="", override=spec)
    assert no_template.render([{"role": "user", "content": "x"}]) == "[x]"


def test_both_forms_may_be_kept_and_type_picks_one() -> None:
    data = dict(MANUAL, type="jinja", jinjaPromptTemplate={"template": "J", "bosToken": "<s>"})
    spec = PromptTemplateSpec.from_json(data)
    assert spec.manual is not None and spec.jinja == "J"
    assert template_from_spec(spec, "", "").render([]) == "J"


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ([], "promptTemplate"),
        ({"type": "raw"}, "promptTemplate.type"),
        ({"type": "manual"}, "promptTemplate.manualPromptTemplate"),
        ({"type": "jinja", "manualPromptTemplate": {}}, "promptTemplate.jinjaPromptTemplate"),
        ({"type": "jinja", "jinjaPromptTemplate": {}}, "promptTemplate.jinjaPromptTemplate.template"),
        (
            {"type": "jinja", "jinjaPromptTemplate": {"template": " "}},
            "promptTemplate.jinjaPromptTemplate.template",
        ),
        (
            {"type": "jinja", "jinjaPromptTemplate": {"template": "{% for %}"}},
            "promptTemplate.jinjaPromptTemplate.template",
        ),
        (
            {"type": "manual", "manualPromptTemplate": {"beforeUsr": ""}},
            "promptTemplate.manualPromptTemplate.beforeUsr",
        ),
        (
            {"type": "manual", "manualPromptTemplate": {"afterUser": 3}},
            "promptTemplate.manualPromptTemplate.afterUser",
        ),
        ({"type": "manual", "manual": {}}, "promptTemplate.manual"),
        (dict(MANUAL, stopStrings="</s>"), "promptTemplate.stopStrings"),
        (dict(MANUAL, stopStrings=["</s>", 1]), "promptTemplate.stopStrings[1]"),
        (dict(MANUAL, stopStrings=[""]), "promptTemplate.stopStrings"),
    ],
)
def test_bad_specs_name_the_field(data: object, param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        PromptTemplateSpec.from_json(data)
    assert info.value.param == param and f"'{param}'" in info.value.message


def test_enable_thinking_reaches_the_template() -> None:
    template = ChatTemplate(THINKING)
    messages = [{"role": "user", "content": "Hi"}]
    off = template.render(messages, variables={"enable_thinking": False})
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert template.render(messages, variables={"enable_thinking": True}).endswith("<|im_start|>assistant\n")
    assert template.render(messages).endswith("<|im_start|>assistant\n")


def test_messages_tools_and_dict_arguments_pass_through_unchanged() -> None:
    source = (
        "{{ tools | map(attribute='function') | map(attribute='name') | join(',') }}|"
        "{% for m in messages %}{% for c in m.tool_calls or [] %}"
        "{{ c.function.name }}({{ c.function.arguments.city }}){% endfor %}{% endfor %}"
    )
    tools = ({"type": "function", "function": {"name": "weather"}},)
    call = {"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}}
    out = ChatTemplate(source).render(
        [{"role": "assistant", "content": "", "tool_calls": [call]}], tools=tools
    )
    assert out == "weather|weather(Paris)"
