"""Chat templates render in an immutable sandbox; models without one chat through a built-in template."""

from __future__ import annotations

import pytest

from openlms.core.errors import NoChatTemplateError
from openlms.parsers.templates import ChatTemplate, TemplateError, resolve_template

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_model_template_renders_messages_and_generation_prompt() -> None:
    template = resolve_template(CHATML, "llama", bos_token="<s>", eos_token="</s>")
    out = template.render([{"role": "user", "content": "Hi"}])
    assert out == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert template.render([{"role": "user", "content": "Hi"}], add_generation_prompt=False).endswith(
        "<|im_end|>\n"
    )


def test_variables_tools_and_tokens_reach_the_template() -> None:
    source = "{{ bos_token }}{% if enable_thinking %}T{% endif %}{{ tools | length if tools else 0 }}"
    source += "{{ eos_token }}"
    template = ChatTemplate(source, "<s>", "</s>")
    assert (
        template.render([], tools=[{"type": "function"}], variables={"enable_thinking": True}) == "<s>T1</s>"
    )


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ self.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{% set x = messages.append({'role': 'x'}) %}",
    ],
)
def test_templates_cannot_reach_python_internals_or_mutate(attack: str) -> None:
    with pytest.raises(TemplateError):
        ChatTemplate(attack).render([{"role": "user", "content": "x"}])


def test_raise_exception_and_syntax_errors_are_clear() -> None:
    with pytest.raises(TemplateError, match="refused the conversation: roles must alternate"):
        ChatTemplate("{{ raise_exception('roles must alternate') }}").render([])
    with pytest.raises(TemplateError, match="not valid Jinja"):
        ChatTemplate("{% for %}").render([])


def test_gemma_without_template_uses_the_builtin_one() -> None:
    template = resolve_template(None, "gemma3", bos_token="<bos>", eos_token="<eos>")
    out = template.render(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ]
    )
    assert out == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
        "<start_of_turn>model\n"
    )
    assert "<end_of_turn>" in template.extra_stops


def test_unknown_family_without_template_is_a_clear_error() -> None:
    with pytest.raises(NoChatTemplateError, match="/v1/completions"):
        resolve_template("", "mamba", bos_token="", eos_token="")
