"""services/discover.py's pure parts: which repos hold a downloaded model, the `downloaded` mark of search
results (a curated entry by any of its repos), and what a `model` names for its download options."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlms.core.errors import InvalidRequestError, ModelNotFoundError
from openlms.core.types import ModelDescriptor
from openlms.services.discover import downloaded_repos, mark, target
from openlms.services.download_choice import SearchResult, curated_result
from openlms.store.curated import find_curated


def descriptor(rel_path: str, *, virtual: bool = False) -> ModelDescriptor:
    return ModelDescriptor(
        key=rel_path.rsplit("/", 1)[-1],
        path=Path("/models") / rel_path,
        rel_path=rel_path,
        publisher=rel_path.split("/", 1)[0],
        kind="llm",
        display_name=rel_path,
        size_bytes=1,
        virtual=virtual,
    )


def test_downloaded_repos_are_the_files_folders_lower_case() -> None:
    repos = downloaded_repos(
        [
            descriptor("Acme/Tiny-GGUF/Tiny-Q4_K_M.gguf"),
            descriptor("acme/other-GGUF/sub/part-00001-of-00002.gguf"),
            descriptor("loose.gguf"),
            descriptor("meta/llama-3.1-8b/model.yaml", virtual=True),
        ]
    )
    assert repos == {"acme/tiny-gguf", "acme/other-gguf"}


def test_mark_finds_a_hub_repo_and_a_curated_entry_by_any_of_its_repos() -> None:
    entry = find_curated("smollm2-135m-instruct")
    assert entry is not None and entry.sources
    source = entry.sources[-1]
    hub_hit = SearchResult(name="Acme/Tiny-GGUF", kind="hf", identifier="Acme/Tiny-GGUF")
    other = SearchResult(name="acme/none-GGUF", kind="hf", identifier="acme/none-GGUF")
    repos = frozenset({"acme/tiny-gguf", f"{source.user}/{source.repo}".lower()})
    found = mark([curated_result(entry), hub_hit, other], repos)
    assert [f.downloaded for f in found] == [True, True, False]
    assert found[0].curated == entry and found[1].curated is None
    assert [f.downloaded for f in mark([curated_result(entry)], frozenset())] == [False]


def test_target_names_a_curated_model_or_a_repo() -> None:
    entry = find_curated("smollm2-135m-instruct")
    assert entry is not None
    assert target("SmolLM2-135M-Instruct") == ("catalog", entry.model)
    assert target(entry.model) == ("catalog", entry.model)
    assert target("acme/Tiny-GGUF") == ("hf", "acme/Tiny-GGUF")
    assert target("https://huggingface.co/acme/Tiny-GGUF/tree/main") == ("hf", "acme/Tiny-GGUF")
    with pytest.raises(ModelNotFoundError, match="Search for it first"):
        target("just words")
    with pytest.raises(InvalidRequestError):
        target("a/b/c/d")
