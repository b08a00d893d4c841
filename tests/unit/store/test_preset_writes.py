"""PresetStore.save / delete: LM Studio-format files named after a slug of the name, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

from openlms.store.presets import PresetStore, slug

FIELDS = {"fields": [{"key": "llm.prediction.temperature", "value": 0.3}]}


def test_save_writes_lm_studio_format_named_after_a_slug(tmp_path: Path) -> None:
    store = PresetStore(tmp_path / "config-presets")
    preset = store.save("Creative Writer!", FIELDS)
    assert preset.identifier == "@local:creative-writer"
    data = json.loads((tmp_path / "config-presets" / "creative-writer.preset.json").read_text())
    assert data == {
        "identifier": "@local:creative-writer",
        "name": "Creative Writer!",
        "changed": False,
        "operation": FIELDS,
        "load": {"fields": []},
    }
    assert [p.identifier for p in store.all()] == ["@local:creative-writer"]
    assert not [p for p in (tmp_path / "config-presets").iterdir() if p.name.startswith(".")]


def test_same_name_gets_a_new_file_and_update_keeps_the_file(tmp_path: Path) -> None:
    store = PresetStore(tmp_path)
    first = store.save("Notes", FIELDS)
    second = store.save("Notes", {"fields": []})
    assert (first.identifier, second.identifier) == ("@local:notes", "@local:notes-2")
    updated = store.save("Renamed", {"fields": []}, identifier=first.identifier)
    assert updated.path == first.path and updated.identifier == first.identifier
    found = store.get("@local:notes")
    assert found is not None and found.name == "Renamed" and found.operation == {"fields": []}


def test_delete_removes_only_that_file(tmp_path: Path) -> None:
    store = PresetStore(tmp_path)
    keep = store.save("Keep", FIELDS)
    gone = store.save("Gone", FIELDS)
    assert store.delete(gone.identifier) is not None
    assert store.delete(gone.identifier) is None
    assert [p.identifier for p in store.all()] == [keep.identifier]


def test_slug_never_makes_a_path() -> None:
    assert slug("../../etc/passwd") == "etc-passwd"
    assert slug("日本語") == "preset"
    assert slug("  A  b ") == "a-b"
    assert len(slug("x" * 500)) == 60
