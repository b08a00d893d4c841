"""The whole model.yaml format (LM Studio's docs, modelyaml.org): every field read, every bad shape a
ModelYamlError naming the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from openlms.store.model_yaml import BaseModel, HubSource, ModelYamlError, parse_model_yaml, read_model_yaml

DOCS = Path(__file__).resolve().parents[4] / "shared" / "lmstudio-docs" / "0_app" / "3_modelyaml" / "index.md"
COMPLETE = """\
model: qwen/qwen3-8b
base:
  - key: lmstudio-community/qwen3-8b-gguf
    sources:
      - type: huggingface
        user: lmstudio-community
        repo: Qwen3-8B-GGUF
      - type: somewhere-else
        url: https://example.invalid/x
  - key: lmstudio-community/qwen3-8b-mlx-4bit
    sources:
      - type: huggingface
        user: lmstudio-community
        repo: Qwen3-8B-MLX-4bit
metadataOverrides:
  domain: llm
  architectures: [qwen3]
  compatibilityTypes: [gguf, safetensors]
  paramsStrings: [8B]
  minMemoryUsageBytes: 4600000000
  contextLengths: [40960]
  vision: false
  reasoning: true
  trainedForToolUse: mixed
config:
  operation:
    fields:
      - key: llm.prediction.topKSampling
        value: 20
      - key: llm.prediction.minPSampling
        value: {checked: true, value: 0}
  load:
    fields:
      - key: llm.load.contextLength
        value: 42690
customFields:
  - key: enableThinking
    displayName: Enable Thinking
    type: boolean
    defaultValue: true
    effects:
      - type: setJinjaVariable
        variable: enable_thinking
suggestions:
  - message: The following parameters are recommended for thinking mode
    conditions:
      - type: equals
        key: $.enableThinking
        value: true
    fields:
      - key: llm.prediction.temperature
        value: 0.6
"""


def test_every_field_is_read() -> None:
    parsed = parse_model_yaml(COMPLETE)
    assert parsed.model == "qwen/qwen3-8b"
    assert parsed.base == (
        BaseModel("lmstudio-community/qwen3-8b-gguf", (HubSource("lmstudio-community", "Qwen3-8B-GGUF"),)),
        BaseModel(
            "lmstudio-community/qwen3-8b-mlx-4bit", (HubSource("lmstudio-community", "Qwen3-8B-MLX-4bit"),)
        ),
    )
    assert parsed.base_keys == ("lmstudio-community/qwen3-8b-gguf", "lmstudio-community/qwen3-8b-mlx-4bit")
    meta = parsed.metadata
    assert (meta.domain, meta.architectures, meta.compatibility_types) == (
        "llm",
        ("qwen3",),
        ("gguf", "safetensors"),
    )
    assert (meta.params_strings, meta.min_memory_usage_bytes, meta.context_lengths) == (
        ("8B",),
        4600000000,
        (40960,),
    )
    assert (meta.vision, meta.reasoning, meta.trained_for_tool_use) == (False, True, "mixed")
    assert parsed.operation_fields == (
        ("llm.prediction.topKSampling", 20),
        ("llm.prediction.minPSampling", {"checked": True, "value": 0}),
    )
    assert parsed.load_fields == (("llm.load.contextLength", 42690),)
    assert [(f.key, f.variables, f.default) for f in parsed.custom_fields] == [
        ("enableThinking", ("enable_thinking",), True)
    ]
    (suggestion,) = parsed.suggestions
    assert suggestion.fields == (("llm.prediction.temperature", 0.6),)
    assert suggestion.conditions[0]["key"] == "$.enableThinking"


@pytest.mark.skipif(not DOCS.is_file(), reason="the LM Studio docs are not on this machine")
def test_the_docs_examples_parse() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    complete = parse_model_yaml(blocks[-1])
    assert complete.model == "qwen/qwen3-8b" and len(complete.base_keys) == 3
    assert complete.custom_fields[0].variables == ("enable_thinking",)


def test_a_chain_and_an_empty_file() -> None:
    chained = parse_model_yaml("model: me/pirate\nbase: qwen/qwen3-8b\n")
    assert (
        chained.base == "qwen/qwen3-8b" and chained.base_keys == ("qwen/qwen3-8b",) and chained.sources == ()
    )
    empty = parse_model_yaml("")
    assert empty.model is None and empty.base == () and empty.operation_fields == ()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("model: qwen\n", "'model'"),
        ("model: a/b/c\n", "'model'"),
        ("base: 3\n", "'base'"),
        ("base: [{sources: []}]\n", "base[0].key"),
        ("base: [{key: a/b, sources: [{type: huggingface, user: a}]}]\n", "base[0].sources[0].repo"),
        ("metadataOverrides: [1]\n", "metadataOverrides"),
        ("metadataOverrides: {minMemoryUsageBytes: -1}\n", "minMemoryUsageBytes"),
        ("metadataOverrides: {contextLengths: 4096}\n", "contextLengths"),
        ("metadataOverrides: {vision: sometimes}\n", "vision"),
        ("metadataOverrides: {paramsStrings: [8]}\n", "paramsStrings"),
        ("config: {operation: {fields: [{value: 1}]}}\n", "config.operation.fields[0].key"),
        ("config: {load: {fields: {key: x}}}\n", "config.load.fields"),
        ("suggestions: {message: hi}\n", "suggestions"),
        ("customFields: [{key: x, effects: [{type: setJinjaVariable, variable: not a name}]}]\n", "variable"),
        ("model: [unclosed\n", "Cannot read"),
        ("- a\n- list\n", "mapping at the top level"),
    ],
)
def test_bad_shapes_name_the_field(text: str, named: str) -> None:
    with pytest.raises(ModelYamlError) as info:
        parse_model_yaml(text, "x/model.yaml")
    assert named in info.value.message and "x/model.yaml" in info.value.message


def test_read_model_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ModelYamlError) as info:
        read_model_yaml(path)
    assert str(path) in info.value.message
