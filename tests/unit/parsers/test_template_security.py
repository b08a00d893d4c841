"""CVE-2024-34359 ("Llama Drama"): a GGUF chat template that reaches Python internals must fail with a
clear TemplateError and run nothing. Each payload tries to `touch` a sentinel file."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlms.parsers.templates import (
    ChatTemplate,
    PromptTemplateSpec,
    TemplateError,
    resolve_template,
)

# The payload published in the llama-cpp-python advisory (GHSA-56xg-wfcc-g829), then variants through
# Jinja's globals (cycler, joiner, namespace, lipsum), `self`, the `attr` filter and str.format.
PAYLOADS = [
    '{% for x in ().__class__.__base__.__subclasses__() %}{% if "warning" in x.__name__ %}'
    "{{x()._module.__builtins__['__import__']('os').popen(\"CMD\")}}{%endif%}{% endfor %}",
    "{{ cycler.__init__.__globals__.os.popen('CMD').read() }}",
    "{{ joiner.__init__.__globals__.os.popen('CMD').read() }}",
    "{{ namespace.__init__.__globals__.os.popen('CMD').read() }}",
    "{{ lipsum.__globals__['os'].popen('CMD').read() }}",
    "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('CMD').read() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('CMD').read() }}",
    "{% set ns = namespace() %}{{ ns.__class__.__init__.__globals__.os.popen('CMD').read() }}",
    "{{ (cycler|attr('__init__')|attr('__globals__'))['os'].popen('CMD').read() }}",
    "{{ '{0.__init__.__globals__[os].popen}'.format(cycler) }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for m in messages %}{{ m.__class__.__base__.__subclasses__() }}{% endfor %}",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_exploit_payloads_fail_clearly_and_run_nothing(payload: str, tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    source = payload.replace("CMD", f"touch {sentinel}")
    with pytest.raises(TemplateError, match="Python internals"):
        ChatTemplate(source).render([{"role": "user", "content": "hi"}])
    assert not sentinel.exists()


@pytest.mark.parametrize("payload", PAYLOADS[:3])
def test_an_override_template_is_sandboxed_too(payload: str, tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    spec = PromptTemplateSpec.from_json(
        {"type": "jinja", "jinjaPromptTemplate": {"template": payload.replace("CMD", f"touch {sentinel}")}}
    )
    template = resolve_template(None, None, bos_token="", eos_token="", override=spec)
    with pytest.raises(TemplateError):
        template.render([{"role": "user", "content": "hi"}])
    assert not sentinel.exists()


def test_probing_an_internal_attribute_alone_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(TemplateError, match="__class__"):
        ChatTemplate("{{ messages.__class__ }}").render([])


def test_mutating_the_messages_is_refused() -> None:
    messages = [{"role": "user", "content": "x"}]
    with pytest.raises(TemplateError):
        ChatTemplate("{% set _ = messages[0].update({'content': 'y'}) %}").render(messages)
    assert messages[0]["content"] == "x"
