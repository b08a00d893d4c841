"""The curated model.yaml catalog shipped in openlms: entries parse, names resolve, installs are atomic."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlms.store.curated import CuratedModel, curated_models, find_curated, install_virtual_model
from openlms.store.model_yaml import parse_model_yaml, read_model_yaml


def test_the_catalog_has_a_dozen_entries_with_sources_and_memory() -> None:
    entries = curated_models()
    assert len(entries) >= 12
    assert len({e.model for e in entries}) == len(entries)
    for entry in entries:
        assert entry.sources, entry.model
        assert all(s.repo.lower().endswith("gguf") for s in entry.sources), entry.model
        assert entry.min_memory_bytes and entry.min_memory_bytes > 0, entry.model
        assert entry.params and entry.description, entry.model
        assert entry.model.endswith("/" + entry.name)


def test_every_entry_is_a_complete_model_yaml() -> None:
    for entry in curated_models():
        parsed = parse_model_yaml(entry.yaml_text)
        assert parsed.model == entry.model
        meta = parsed.metadata
        assert meta.domain == "llm" and meta.context_lengths and meta.architectures
        assert meta.compatibility_types == ("gguf",)
        assert isinstance(meta.trained_for_tool_use, bool) and isinstance(meta.vision, bool)


@pytest.mark.parametrize("text", ["llama-3.1-8b", "meta/llama-3.1-8b", "LLAMA-3.1-8B", " Meta/Llama-3.1-8B "])
def test_find_curated_accepts_the_name_and_publisher_slash_name(text: str) -> None:
    entry = find_curated(text)
    assert entry is not None and entry.model == "meta/llama-3.1-8b"
    assert entry.sources[0].repo_id == "lmstudio-community/Meta-Llama-3.1-8B-Instruct-GGUF"


def test_find_curated_says_none_for_unknown_names() -> None:
    assert find_curated("llama-9-900b") is None
    assert find_curated("") is None
    assert find_curated("lmstudio-community/Meta-Llama-3.1-8B-Instruct-GGUF") is None


def test_known_capabilities() -> None:
    qwen3 = parse_model_yaml(_entry("qwen3-8b").yaml_text)
    assert qwen3.metadata.reasoning is True and qwen3.metadata.trained_for_tool_use is True
    assert [f.variables for f in qwen3.custom_fields] == [("enable_thinking",)]
    assert parse_model_yaml(_entry("gemma-3-4b").yaml_text).metadata.vision is True
    assert parse_model_yaml(_entry("smollm2-135m-instruct").yaml_text).metadata.trained_for_tool_use is False


def test_install_virtual_model_writes_lm_studios_hub_folder(tmp_path: Path) -> None:
    entry = _entry("qwen3-8b")
    path = install_virtual_model(entry, tmp_path)
    assert path == tmp_path / "hub" / "models" / "qwen" / "qwen3-8b" / "model.yaml"
    assert read_model_yaml(path).model == "qwen/qwen3-8b"
    install_virtual_model(entry, tmp_path)  # again: replaced in place, no temp file left
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.yaml"]


def _entry(name: str) -> CuratedModel:
    entry = find_curated(name)
    assert entry is not None
    return entry


def test_the_default_and_extra_models_folders_are_sources_of_curated_entries() -> None:
    """`openlms-setup-models` (--extra) places SmolLM2 and the Qwen2.5-Coder models where a curated entry's
    source points, so an installed entry's virtual model resolves to them."""
    from openlms.store.defaults import ALL_MODELS

    folders = {s.repo_id.lower() for entry in curated_models() for s in entry.sources}
    placed = {m.rel_path.rsplit("/", 1)[0].lower() for m in ALL_MODELS}
    for folder in ("huggingfacetb/smollm2-135m-instruct-gguf", "qwen/qwen2.5-coder-0.5b-instruct-gguf"):
        assert folder in placed and folder in folders
    assert "qwen/qwen2.5-coder-1.5b-instruct-gguf" in placed & folders
