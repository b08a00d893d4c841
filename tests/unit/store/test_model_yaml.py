"""model.yaml customFields -> Jinja variables, with per-model values overriding the defaults by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlms.store.model_yaml import CustomField, ModelYamlError, custom_fields, jinja_variables

QWEN3 = """\
model: qwen/qwen3-8b
base:
  - key: lmstudio-community/qwen3-8b-gguf
    sources:
      - type: huggingface
        user: lmstudio-community
        repo: Qwen3-8B-GGUF
customFields:
  - key: enableThinking
    displayName: Enable Thinking
    description: Controls whether the model will think before replying
    type: boolean
    defaultValue: true
    effects:
      - type: setJinjaVariable
        variable: enable_thinking
  - key: style
    type: string
    defaultValue: terse
    effects:
      - type: somethingElse
      - type: setJinjaVariable
        variable: reply_style
  - key: decorative
    defaultValue: 1
"""


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    repo = tmp_path / "qwen" / "Qwen3-8B-GGUF"
    repo.mkdir(parents=True)
    (repo / "model.yaml").write_text(QWEN3)
    path = repo / "Qwen3-8B-Q4_K_M.gguf"
    path.write_bytes(b"GGUF")
    return path


def test_defaults_from_next_to_the_model_file_or_its_repo_folder(model_file: Path) -> None:
    expected = {"enable_thinking": True, "reply_style": "terse"}
    assert jinja_variables(model_file, {}) == expected
    assert jinja_variables(model_file.parent, {}) == expected
    assert custom_fields(model_file)[0] == CustomField("enableThinking", ("enable_thinking",), True)


def test_per_model_values_override_by_key_and_unknown_keys_are_ignored(model_file: Path) -> None:
    overrides = {"enableThinking": False, "enable_thinking": "ignored", "other": 1}
    assert jinja_variables(model_file, overrides) == {"enable_thinking": False, "reply_style": "terse"}


def test_no_model_yaml_means_no_variables(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert jinja_variables(tmp_path / "m.gguf", {"enableThinking": False}) == {}
    (tmp_path / "model.yaml").write_text("model: a/b\n")
    assert jinja_variables(tmp_path / "m.gguf", {}) == {}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("customFields: [\n", "Cannot read"),
        ("- a list\n", "mapping at the top level"),
        ("customFields: {key: x}\n", "'customFields' must be a list"),
        ("customFields:\n  - defaultValue: 1\n", r"customFields\[0\]\.key"),
        (
            "customFields:\n  - key: k\n    effects:\n"
            "      - type: setJinjaVariable\n        variable: 'a b'\n",
            r"effects\[0\]\.variable",
        ),
    ],
)
def test_a_broken_model_yaml_is_a_clear_error_naming_the_file(
    tmp_path: Path, text: str, problem: str
) -> None:
    (tmp_path / "model.yaml").write_text(text)
    with pytest.raises(ModelYamlError, match=problem) as info:
        jinja_variables(tmp_path, {})
    assert str(tmp_path / "model.yaml") in info.value.message
