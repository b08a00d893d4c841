"""Virtual models (model.yaml in <home>/hub/models) resolved against downloaded files, variants, and a
model.yaml beside a concrete file (metadataOverrides shown, a malformed one listed with its error)."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from openlms.core.types import ModelDescriptor
from openlms.store.catalog import ModelCatalog
from openlms.store.curated import find_curated, install_virtual_model
from tests.support.tiny_gguf import write_tiny_llama_gguf

QWEN_YAML = """\
model: qwen/qwen3-8b
base:
  - key: lmstudio-community/qwen3-8b-gguf
    sources:
      - type: huggingface
        user: lmstudio-community
        repo: Qwen3-8B-GGUF
  - key: someone/other-qwen3-8b-gguf
    sources:
      - type: huggingface
        user: Qwen
        repo: Qwen3-8B-GGUF
metadataOverrides:
  domain: llm
  architectures: [qwen3]
  paramsStrings: [8B]
  contextLengths: [40960]
  vision: false
  reasoning: true
  trainedForToolUse: true
config:
  load:
    fields:
      - key: llm.load.contextLength
        value: 1024
"""

Q4, Q8 = int(gguf.LlamaFileType.MOSTLY_Q4_K_M), int(gguf.LlamaFileType.MOSTLY_Q8_0)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    return tmp_path


def _catalog(home: Path) -> ModelCatalog:
    return ModelCatalog(home / "models", home / "hub" / "models")


def _gguf(home: Path, rel: str, file_type: int = Q4) -> Path:
    path = home / "models" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_tiny_llama_gguf(path, file_type=file_type)


def _hub_yaml(home: Path, key: str, text: str) -> Path:
    path = home / "hub" / "models" / key / "model.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _by_key(models: list[ModelDescriptor]) -> dict[str, ModelDescriptor]:
    return {m.key: m for m in models}


def test_a_virtual_model_with_nothing_downloaded_is_not_listed_and_says_how_to_get_it(home: Path) -> None:
    _hub_yaml(home, "qwen/qwen3-8b", QWEN_YAML)
    catalog = _catalog(home)
    assert catalog.scan() == []
    assert catalog.find("qwen/qwen3-8b") is None
    hint = catalog.missing("Qwen/Qwen3-8B")
    assert hint is not None and "lms get qwen/qwen3-8b" in hint and "lmstudio-community/Qwen3-8B-GGUF" in hint


def test_a_virtual_model_resolves_to_its_downloaded_file_with_overrides(home: Path) -> None:
    concrete = _gguf(home, "lmstudio-community/Qwen3-8B-GGUF/Qwen3-8B-Q4_K_M.gguf")
    yaml_path = _hub_yaml(home, "qwen/qwen3-8b", QWEN_YAML)
    catalog = _catalog(home)
    models = _by_key(catalog.scan())
    virtual = models["qwen/qwen3-8b"]
    assert virtual.virtual and virtual.loadable
    assert virtual.path == concrete and virtual.model_yaml == yaml_path
    assert virtual.publisher == "qwen"
    assert (virtual.params_string, virtual.architecture, virtual.max_context_length) == ("8B", "qwen3", 40960)
    assert virtual.reasoning and virtual.trained_for_tool_use and not virtual.vision
    assert virtual.variants == ()  # one file: no variants
    assert catalog.find("QWEN/qwen3-8b") == virtual
    plain = models["qwen3-8b"]  # the concrete file is still listed as itself
    assert not plain.virtual and plain.params_string != "8B"
    parsed = catalog.model_yaml(virtual)
    assert parsed is not None and parsed.load_fields == (("llm.load.contextLength", 1024),)


def test_variants_from_several_files_and_sources(home: Path) -> None:
    _gguf(home, "lmstudio-community/Qwen3-8B-GGUF/Qwen3-8B-Q8_0.gguf", Q8)
    q4 = _gguf(home, "lmstudio-community/Qwen3-8B-GGUF/Qwen3-8B-Q4_K_M.gguf", Q4)
    other = _gguf(home, "Qwen/Qwen3-8B-GGUF/Qwen3-8B-Q4_0.gguf", int(gguf.LlamaFileType.MOSTLY_Q4_0))
    _hub_yaml(home, "qwen/qwen3-8b", QWEN_YAML)
    catalog = _catalog(home)
    virtual = _by_key(catalog.scan())["qwen/qwen3-8b"]
    assert set(virtual.variants) == {"qwen/qwen3-8b@q4_k_m", "qwen/qwen3-8b@q8_0", "qwen/qwen3-8b@q4_0"}
    assert virtual.selected_variant == "qwen/qwen3-8b@q4_k_m" and virtual.path == q4  # preferred quant
    picked = catalog.find("qwen/qwen3-8b@q4_0")
    assert picked is not None and picked.path == other and picked.selected_variant == "qwen/qwen3-8b@q4_0"
    # concrete files of one model (one base key: several quantizations) are variants of each other too
    concrete = [m for m in catalog.models() if not m.virtual]
    keys = {"qwen3-8b@q4_k_m", "qwen3-8b@q8_0", "qwen3-8b@q4_0"}
    assert {m.key for m in concrete} == keys
    assert all(set(m.variants) == keys for m in concrete)
    assert {m.selected_variant for m in concrete} == keys


def test_a_chained_virtual_model_takes_its_parents_files(home: Path) -> None:
    concrete = _gguf(home, "lmstudio-community/Qwen3-8B-GGUF/Qwen3-8B-Q4_K_M.gguf")
    _hub_yaml(home, "qwen/qwen3-8b", QWEN_YAML)
    _hub_yaml(home, "me/qwen3-8b-pirate", "model: me/qwen3-8b-pirate\nbase: qwen/qwen3-8b\n")
    _hub_yaml(home, "me/loop", "model: me/loop\nbase: me/loop\n")
    catalog = _catalog(home)
    models = _by_key(catalog.scan())
    assert models["me/qwen3-8b-pirate"].path == concrete
    assert "me/loop" not in models and catalog.missing("me/loop") is not None


@pytest.mark.parametrize(
    "text",
    [
        "model: [not, a, name]\n",
        "model: qwen/qwen3-8b\nbase: [{sources: []}]\n",
        "model: qwen/qwen3-8b\nmetadataOverrides: {contextLengths: [big]}\n",
        "model: qwen/qwen3-8b\nconfig: {load: {fields: [{value: 1}]}}\n",
        "model: qwen/qwen3-8b\nbase: [\n",
        "- just\n- a list\n",
    ],
)
def test_a_malformed_virtual_model_is_listed_with_its_error(home: Path, text: str) -> None:
    _gguf(home, "lmstudio-community/Qwen3-8B-GGUF/Qwen3-8B-Q4_K_M.gguf")
    path = _hub_yaml(home, "qwen/qwen3-8b", text)
    models = _by_key(_catalog(home).scan())
    broken = models["qwen/qwen3-8b"]
    assert not broken.loadable and broken.error is not None and str(path) in broken.error
    assert models["qwen3-8b"].loadable  # the concrete file is not affected


def test_a_model_yaml_beside_a_file_shows_its_overrides_or_its_error(home: Path) -> None:
    concrete = _gguf(home, "me/Tiny-GGUF/Tiny-Q4_K_M.gguf")
    beside = concrete.parent / "model.yaml"
    beside.write_text("metadataOverrides:\n  paramsStrings: [1B]\n  vision: mixed\n  reasoning: true\n")
    catalog = _catalog(home)
    (model,) = catalog.scan()
    assert model.params_string == "1B" and model.vision and model.reasoning and model.loadable
    assert model.model_yaml == beside
    beside.write_text("metadataOverrides:\n  vision: maybe\n")
    (model,) = catalog.scan()
    assert not model.loadable and model.error is not None and "vision" in model.error


def test_an_installed_curated_entry_resolves_to_the_downloaded_file(home: Path) -> None:
    entry = find_curated("smollm2-135m-instruct")
    assert entry is not None
    concrete = _gguf(home, "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_K_M.gguf")
    install_virtual_model(entry, home)
    virtual = _by_key(_catalog(home).scan())["huggingfacetb/smollm2-135m-instruct"]
    assert virtual.path == concrete and virtual.params_string == "135M" and not virtual.trained_for_tool_use
