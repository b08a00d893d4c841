"""Preset names never reach outside the presets folder (issue 10 §3): a request's preset name is matched
against the presets read from the folder, never used as a path, and a link out of the folder is not read.
openlms only reads presets (LM Studio's app writes them), so a half-written file, as a crash of that writer
would leave it, is skipped, never half-read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openlms.store.presets import PresetStore

OUTSIDE = {"identifier": "@local:outside", "name": "Outside", "operation": {"fields": []}}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    presets = tmp_path / "home" / "config-presets"
    presets.mkdir(parents=True)
    (presets / "good.preset.json").write_text(json.dumps({"name": "Good"}))
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "outside.preset.json").write_text(json.dumps(OUTSIDE))
    (outside / "sub" / "deep.preset.json").write_text(json.dumps({"name": "Deep"}))
    return presets


@pytest.mark.parametrize(
    "query",
    [
        "../../outside/outside",
        "../../outside/outside.preset.json",
        "@local:../../outside/outside",
        "/etc/passwd",
        "..%2F..%2Foutside%2Foutside",
        "%2e%2e/%2e%2e/outside/outside",
    ],
)
def test_a_preset_name_is_never_a_path(folder: Path, query: str) -> None:
    assert PresetStore(folder).find(query) is None


def test_links_out_of_the_folder_are_not_read(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (folder / "linked.preset.json").symlink_to(outside / "outside.preset.json")
    (folder / "linked-dir").symlink_to(outside / "sub", target_is_directory=True)
    store = PresetStore(folder)
    assert [p.name for p in store.all()] == ["Good"]
    for query in ("outside", "@local:outside", "linked", "deep", "Deep"):
        assert store.find(query) is None, query


def test_links_inside_the_folder_and_a_linked_folder_itself_are_fine(folder: Path, tmp_path: Path) -> None:
    (folder / "alias.preset.json").symlink_to(folder / "good.preset.json")
    linked_home = tmp_path / "linked-presets"
    linked_home.symlink_to(folder, target_is_directory=True)
    assert [p.path.name for p in PresetStore(folder).all()] == ["alias.preset.json", "good.preset.json"]
    assert [p.name for p in PresetStore(linked_home).all()] == ["Good", "Good"]


def test_a_half_written_preset_is_skipped_never_half_read(folder: Path) -> None:
    full = json.dumps({"name": "Half", "operation": {"fields": [{"key": "k", "value": "v" * 100}]}})
    for cut in range(1, len(full), 7):
        (folder / "half.preset.json").write_text(full[:cut])
        assert [p.name for p in PresetStore(folder).all()] == ["Good"], cut
