"""Config presets (LM Studio's `~/.lmstudio/config-presets/*.preset.json`): named bundles of prediction
settings (system prompt, temperature, ...) that an SDK request names with `preset=`.

A preset file holds `{"identifier", "name", "operation": {"fields": [{"key", "value"}]}, "load": {...}}`
(LM Studio 0.3 format). Files are only read; a file that is not valid JSON (a half-written one, say) is
skipped with a warning, and so is a link that leads out of the presets folder: presets are read from that
folder only, and a name in a request is matched against what was read, never used as a path.
A fuzzy identifier matches, in order: the identifier, the name (case-insensitive), the identifier's last
path segment (`@local:my-preset` or `user/my-preset` answer to `my-preset`), the file name without
`.preset.json`.

Writes (`save`, `delete`) go through the presets' own paths: a new preset's file is named after a slug of
its name (`Creative Writer` -> `creative-writer.preset.json`, `-2`... when taken), an update rewrites the
file it was read from, always atomically (a temporary file beside it, then a rename).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openlms.store._files import temp_sibling

log = logging.getLogger("openlms.store")

SUFFIX = ".preset.json"


@dataclass(frozen=True, slots=True)
class Preset:
    identifier: str
    name: str
    path: Path
    operation: dict[str, Any] = field(default_factory=dict)  # KV config: {"fields": [...]}
    load: dict[str, Any] = field(default_factory=dict)


class PresetStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def all(self) -> list[Preset]:
        if not self.directory.is_dir():
            return []
        presets = []
        root = self.directory.resolve()
        for path in sorted(self.directory.rglob(f"*{SUFFIX}")):
            if root not in path.resolve().parents:
                log.warning("skipping preset %s: it links out of %s", path, self.directory)
                continue
            preset = _read(path, self.directory)
            if preset is not None:
                presets.append(preset)
        return presets

    def find(self, query: str) -> Preset | None:
        presets = self.all()
        wanted = query.strip().lower()
        rules: tuple[Callable[[Preset], bool], ...] = (
            lambda p: p.identifier == query,
            lambda p: p.identifier.lower() == wanted or p.name.lower() == wanted,
            lambda p: _tail(p.identifier) == wanted,
            lambda p: p.path.name[: -len(SUFFIX)].lower() == wanted,
        )
        for matches in rules:
            found = next((p for p in presets if matches(p)), None)
            if found is not None:
                return found
        return None

    def get(self, identifier: str) -> Preset | None:
        """The preset with exactly this identifier (what writes address)."""
        return next((p for p in self.all() if p.identifier == identifier), None)

    def save(
        self,
        name: str,
        operation: Mapping[str, Any],
        load: Mapping[str, Any] | None = None,
        *,
        identifier: str | None = None,
    ) -> Preset:
        """Write a preset in LM Studio's format: over the file of `identifier`'s preset when it exists,
        else as a new file named after `name` (identifier `@local:<slug>`)."""
        existing = self.get(identifier) if identifier is not None else None
        if existing is not None:
            path, ident = existing.path, existing.identifier
        else:
            path = self._free_path(slug(name))
            ident = f"@local:{path.name[: -len(SUFFIX)]}"
        preset = Preset(ident, name, path, _kv(operation), _kv(load or {}))
        _write_json(path, to_json(preset))
        return preset

    def delete(self, identifier: str) -> Preset | None:
        """Remove the preset with this identifier (None when there is none)."""
        preset = self.get(identifier)
        if preset is not None:
            preset.path.unlink(missing_ok=True)
        return preset

    def _free_path(self, stem: str) -> Path:
        taken = {p.identifier for p in self.all()}
        for n in range(1, 10_000):
            candidate = stem if n == 1 else f"{stem}-{n}"
            path = self.directory / f"{candidate}{SUFFIX}"
            if not path.exists() and f"@local:{candidate}" not in taken:
                return path
        raise OSError(f"no free file name for preset '{stem}' in {self.directory}")  # pragma: no cover


def to_json(preset: Preset) -> dict[str, Any]:
    """A preset as LM Studio writes it."""
    return {
        "identifier": preset.identifier,
        "name": preset.name,
        "changed": False,
        "operation": preset.operation or {"fields": []},
        "load": preset.load or {"fields": []},
    }


def slug(name: str) -> str:
    """A file-name-safe slug of a preset's name: lowercase letters, digits and dashes, at most 60."""
    text = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")[:60].strip("-")
    return text or "preset"


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    with temp_sibling(path, ".tmp") as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
        os.replace(tmp, path)


def _tail(identifier: str) -> str:
    return identifier.replace(":", "/").rsplit("/", 1)[-1].lower()


def _read(path: Path, root: Path) -> Preset | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("skipping preset %s: %s", path, exc)
        return None
    if not isinstance(data, Mapping):
        log.warning("skipping preset %s: not a JSON object", path)
        return None
    stem = path.relative_to(root).as_posix()[: -len(SUFFIX)]
    given_id, given_name = data.get("identifier"), data.get("name")
    identifier = given_id if isinstance(given_id, str) else f"@local:{stem}"
    name = given_name if isinstance(given_name, str) else path.name[: -len(SUFFIX)]
    return Preset(identifier, name, path, _kv(data.get("operation")), _kv(data.get("load")))


def _kv(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping) and isinstance(value.get("fields"), list):
        return {"fields": [f for f in value["fields"] if isinstance(f, Mapping) and "key" in f]}
    return {"fields": []}
