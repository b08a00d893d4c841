"""Config presets read from `<home>/config-presets`."""

from __future__ import annotations

import json
from pathlib import Path

from openlms.store.presets import PresetStore


def write(folder: Path, name: str, data: object) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.preset.json").write_text(json.dumps(data) if not isinstance(data, str) else data)


def test_fuzzy_lookup_by_identifier_name_tail_and_file(tmp_path: Path) -> None:
    folder = tmp_path / "config-presets"
    fields = {"fields": [{"key": "llm.prediction.temperature", "value": 0.1}]}
    write(
        folder,
        "creative",
        {"identifier": "@local:creative-writer", "name": "Creative Writer", "operation": fields},
    )
    write(folder, "plain", {"operation": fields})
    store = PresetStore(folder)
    for query in ("@local:creative-writer", "creative writer", "creative-writer", "CREATIVE"):
        found = store.find(query)
        assert found is not None and found.name == "Creative Writer", query
    plain = store.find("plain")
    assert plain is not None and plain.identifier == "@local:plain" and plain.operation == fields
    assert store.find("nothing") is None


def test_broken_files_are_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "config-presets"
    write(folder, "broken", "{not json")
    write(folder, "list", [1, 2])
    write(folder, "good", {"name": "Good"})
    assert [p.name for p in PresetStore(folder).all()] == ["Good"]
    assert PresetStore(tmp_path / "missing").all() == []
