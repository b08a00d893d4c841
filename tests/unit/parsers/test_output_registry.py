"""Tool formats: the registry, and detection from chat template text."""

from __future__ import annotations

from importlib import resources

import pytest

from openlms.core.errors import InvalidRequestError
from openlms.parsers.output import FORMATS, TextParser, detect_tool_format, get_tool_format

# Short templates with the markers of each family (not the real templates, just their tool parts).
QWEN = """{%- if tools %}{{- '<|im_start|>system\\n# Tools\\n<tools>' }}
{%- for tool in tools %}{{- tool | tojson }}{%- endfor %}
{{- '</tools>\\nreturn a json object within <tool_call></tool_call> tags:\\n<tool_call>\\n' }}
{%- endif %}{%- for message in messages %}{%- if message.tool_calls %}<tool_call>{%- endif %}{%- endfor %}"""
LLAMA31 = """{%- if tools is not none %}{{- "Environment: ipython\\n" }}{%- endif %}
{%- for tool in tools %}{{- tool | tojson(indent=4) }}{%- endfor %}
{{- '{"name": function name, "parameters": dictionary of argument name and its value}' }}
{%- if message.role == "ipython" %}<|python_tag|>{{ message.content }}<|eom_id|>{%- endif %}"""
LLAMA32_JSON_ONLY = """{%- if tools %}Respond in the format {"name": function name, "parameters": dictionary}.
{%- for t in tools %}{{ t | tojson }}{%- endfor %}{%- endif %}{{- "<|eom_id|>" }}"""
MISTRAL = """{%- if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{%- endif %}
{%- if message.tool_calls %}[TOOL_CALLS]{{ message.tool_calls | tojson }}{%- endif %}"""
GPT_OSS = """{%- if tools %}namespace functions {{ tools }}{%- endif %}
{{- '<|start|>assistant to=functions.' + name + '<|channel|>commentary json<|message|>' + args + '<|call|>' }}
{{- '<|start|>assistant<|channel|>final<|message|>' + content + '<|end|>' }}"""
NO_TOOLS = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}"
UNKNOWN_TOOLS = "{% if tools %}<functions>{{ tools | tojson }}</functions>{% endif %}<function_call>"


@pytest.mark.parametrize(
    ("template", "name"),
    [
        (QWEN, "hermes"),
        (LLAMA31, "llama3"),
        (LLAMA32_JSON_ONLY, "llama3"),
        (MISTRAL, "mistral"),
        (GPT_OSS, "harmony"),
        (NO_TOOLS, "default"),
        (UNKNOWN_TOOLS, "default"),
        ("<tool_call> without the word", "default"),
        ("", "default"),
        (None, "default"),
    ],
)
def test_detect(template: str | None, name: str) -> None:
    assert detect_tool_format(template).name == name


@pytest.mark.parametrize("builtin", ["chatml.jinja", "gemma.jinja"])
def test_builtin_templates_have_no_native_tools(builtin: str) -> None:
    source = resources.files("openlms.parsers").joinpath("builtin_templates", builtin).read_text("utf-8")
    assert detect_tool_format(source).name == "default"


def test_registry_flags() -> None:
    assert set(FORMATS) == {"hermes", "qwen3_xml", "llama3", "mistral", "harmony", "default"}
    assert [f.name for f in FORMATS.values() if not f.native] == ["default"]
    assert get_tool_format("mistral").needs_special_tokens
    assert get_tool_format("harmony").needs_special_tokens and get_tool_format("harmony").parses_reasoning
    assert not get_tool_format("hermes").needs_special_tokens
    assert not get_tool_format("default").needs_special_tokens
    assert all(FORMATS[name].name == name for name in FORMATS)


def test_unknown_format_name() -> None:
    with pytest.raises(InvalidRequestError, match="Unknown tool format 'xml'"):
        get_tool_format("xml")


@pytest.mark.parametrize("name", ["hermes", "llama3", "mistral", "default"])
def test_no_tool_names_means_text_only(name: str) -> None:
    assert isinstance(get_tool_format(name).parser([]), TextParser)
