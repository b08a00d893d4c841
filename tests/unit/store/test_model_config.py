"""Per-model settings files: openlms's folder under the home (LM Studio's read as a fallback), atomic
writes, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from openlms.core.errors import InvalidRequestError
from openlms.core.types import ContextOverflowPolicy
from openlms.store.model_config import (
    CONFIG_DIR,
    ModelConfig,
    ModelConfigError,
    ModelConfigStore,
    parse_model_config,
)

REL = "acme/tiny-chat-GGUF/tiny-chat-F32.gguf"
FULL: dict[str, Any] = {
    "load": {
        "contextLength": 8192,
        "gpu": "max",
        "flashAttention": True,
        "kCacheType": "q8_0",
        "nThreads": 2,
    },
    "prediction": {
        "promptTemplate": {"type": "jinja", "jinjaPromptTemplate": {"template": "x"}, "stopStrings": []},
        "contextOverflowPolicy": "rollingWindow",
        "reasoningParsing": False,
        "customFields": {"enableThinking": False},
    },
}


def test_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    config = ModelConfigStore(tmp_path).get(REL)
    assert config == ModelConfig() and config.to_json() == {"load": {}, "prediction": {}}


def test_put_get_reset_round_trip_in_openlms_folder(tmp_path: Path) -> None:
    store = ModelConfigStore(tmp_path)
    path = store.put(REL, parse_model_config(FULL))
    assert path == (tmp_path / "openlms/model-config" / f"{REL}.json").resolve()
    assert not (tmp_path / ".internal").exists()  # LM Studio's files are never written
    assert json.loads(path.read_text()) == FULL
    config = store.get(REL)
    assert config.to_json() == FULL
    assert config.load.fields_set() == {
        "context_length": 8192,
        "gpu": "max",
        "flash_attention": True,
        "k_cache_type": "q8_0",
        "n_threads": 2,
    }
    assert config.prediction.context_overflow_policy is ContextOverflowPolicy.ROLLING_WINDOW
    assert store.reset(REL) is True and not path.exists() and store.reset(REL) is False
    assert store.get(REL) == ModelConfig()


def test_put_is_atomic_and_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ModelConfigStore(tmp_path)
    path = store.put(REL, parse_model_config({"load": {"contextLength": 1024}}))

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put(REL, parse_model_config({"load": {"contextLength": 2048}}))
    assert json.loads(path.read_text()) == {"load": {"contextLength": 1024}, "prediction": {}}
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.parametrize(
    "text", ["{not json", '["a list"]', '{"load": {"contextLength": "big"}}', '{"extra": 1}']
)
def test_a_corrupt_file_is_a_clear_error_naming_it(tmp_path: Path, text: str) -> None:
    store = ModelConfigStore(tmp_path)
    path = store.path_for(REL)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ModelConfigError) as info:
        store.get(REL)
    assert str(path) in info.value.message and "delete it" in info.value.message
    assert store.reset(REL) is True  # a corrupt file can always be reset


@pytest.mark.parametrize("rel", ["../../etc/passwd", "/etc/passwd", "acme/../../../x.gguf", "", "acme/"])
def test_paths_never_escape_the_config_directory(tmp_path: Path, rel: str) -> None:
    store = ModelConfigStore(tmp_path / "home")
    with pytest.raises(InvalidRequestError):
        store.put(rel, ModelConfig())
    with pytest.raises(InvalidRequestError):
        store.get(rel)
    assert not any((tmp_path / "home").rglob("*.json"))
    assert not (tmp_path / "etc").exists()


def test_a_symlink_out_of_the_directory_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "home" / CONFIG_DIR
    root.mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "acme").symlink_to(tmp_path / "outside")
    with pytest.raises(InvalidRequestError, match="outside"):
        ModelConfigStore(tmp_path / "home").put("acme/repo/m.gguf", ModelConfig())
    assert not any((tmp_path / "outside").iterdir())


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"load": {"contextLength": 10}}, "load.contextLength"),
        ({"load": {"contextLenght": 4096}}, "load.contextLenght"),
        ({"load": {"gpu": 2.0}}, "load.gpu"),
        ({"load": {"kCacheType": "q3"}}, "load.kCacheType"),
        ({"prediction": {"contextOverflowPolicy": "drop"}}, "prediction.contextOverflowPolicy"),
        ({"prediction": {"promptTemplate": "chatml"}}, "prediction.promptTemplate"),
        ({"predictions": {}}, "predictions"),
    ],
)
def test_validation_errors_name_the_field(data: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_model_config(data)
    assert info.value.param == param and param in info.value.message


def test_lmstudios_own_key_value_files_are_read_best_effort(tmp_path: Path) -> None:
    store = ModelConfigStore(tmp_path)
    path = store.path_for(REL, root=store.lmstudio_root)
    path.parent.mkdir(parents=True)
    template = {"type": "jinja", "jinjaPromptTemplate": {"template": "T"}, "stopStrings": []}
    lmstudio = {
        "preset": "",
        "operation": {"fields": [{"key": "llm.prediction.promptTemplate", "value": template}]},
        "load": {
            "fields": [
                {"key": "llm.load.contextLength", "value": 32768},
                {"key": "llm.load.llama.acceleration.offloadRatio", "value": 1},
                {"key": "llm.load.llama.kCacheQuantizationType", "value": {"checked": True, "value": "q8_0"}},
                {
                    "key": "llm.load.llama.vCacheQuantizationType",
                    "value": {"checked": False, "value": "q4_0"},
                },
                {"key": "llm.load.numParallelSessions", "value": 4},
                {"key": "llm.load.llama.evalBatchSize", "value": -5},
            ]
        },
    }
    path.write_text(json.dumps(lmstudio))
    config = store.get(REL)
    assert config.load.fields_set() == {
        "context_length": 32768,
        "gpu": 1.0,
        "k_cache_type": "q8_0",
        "parallel": 4,  # LM Studio's numParallelSessions
    }
    assert config.prediction.prompt_template == template
    store.put(REL, ModelConfig())  # openlms's own file wins from now on; LM Studio's is left alone
    assert store.get(REL) == ModelConfig() and json.loads(path.read_text()) == lmstudio
