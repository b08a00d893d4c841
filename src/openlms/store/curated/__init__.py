"""The curated catalog shipped with openlms: good current GGUF models as model.yaml entries.

Each `<name>.yaml` in this package is a model.yaml (modelyaml.org) whose first line is a `# description`
comment; its `model` is `publisher/name`, its `base` lists GGUF repos on Hugging Face (preferred first)
and its `metadataOverrides` say what it needs (`minMemoryUsageBytes`: the Q4_K_M file plus a 4k-token KV
cache, roughly). `lms get <name>` resolves a name here before searching the Hub, and a download of one
installs its model.yaml as a virtual model (`install_virtual_model`) in LM Studio's place for them,
`<home>/hub/models/<publisher>/<name>/model.yaml`, so the model is listed and loaded under its `model` key.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from openlms.core.fsutil import atomic_write_text
from openlms.store.model_yaml import HubSource, ModelYaml, parse_model_yaml
from openlms.store.virtual import hub_models_dir

__all__ = [
    "CuratedModel",
    "HubSource",
    "curated_models",
    "find_curated",
    "install_virtual_model",
]


@dataclass(frozen=True, slots=True)
class CuratedModel:
    model: str  # "meta/llama-3.1-8b" (model.yaml `model`)
    name: str  # "llama-3.1-8b": what users type
    description: str
    sources: tuple[HubSource, ...]  # huggingface sources of its GGUF base entries, preferred first
    min_memory_bytes: int | None  # metadataOverrides.minMemoryUsageBytes
    params: str | None  # "8B"
    yaml_text: str  # the entry's model.yaml text

    @property
    def publisher(self) -> str:
        return self.model.split("/", 1)[0]


def curated_models() -> list[CuratedModel]:
    """Every curated entry, sorted by name. Read from the package data on each call (a few small files)."""
    folder = resources.files(__package__ or __name__)
    entries = [
        _entry(item.name, item.read_text("utf-8"))
        for item in folder.iterdir()
        if item.name.endswith(".yaml") and item.is_file()
    ]
    return sorted(entries, key=lambda entry: entry.name)


def find_curated(name: str) -> CuratedModel | None:
    """The entry for `llama-3.1-8b` or `meta/llama-3.1-8b` (any case); None when there is none."""
    wanted = name.strip().lower()
    for entry in curated_models():
        if wanted in (entry.name.lower(), entry.model.lower()):
            return entry
    return None


def install_virtual_model(entry: CuratedModel, home: Path) -> Path:
    """Write the entry's model.yaml to `<home>/hub/models/<publisher>/<name>/model.yaml` (atomic)."""
    publisher, name = entry.model.split("/", 1)
    path = hub_models_dir(home) / publisher / name / "model.yaml"
    atomic_write_text(path, entry.yaml_text)
    return path


def _entry(file_name: str, text: str) -> CuratedModel:
    parsed = parse_model_yaml(text, f"openlms curated catalog: {file_name}")
    if parsed.model is None:
        raise ValueError(f"openlms curated catalog: {file_name} has no 'model'.")
    return CuratedModel(
        model=parsed.model,
        name=parsed.model.split("/", 1)[1],
        description=_description(text),
        sources=gguf_sources(parsed),
        min_memory_bytes=parsed.metadata.min_memory_usage_bytes,
        params=parsed.metadata.params_strings[0] if parsed.metadata.params_strings else None,
        yaml_text=text,
    )


def gguf_sources(parsed: ModelYaml) -> tuple[HubSource, ...]:
    """The Hugging Face sources of a model.yaml's GGUF base entries (by key or repo name), in order."""
    if isinstance(parsed.base, str):
        return ()
    return tuple(
        source
        for base in parsed.base
        for source in base.sources
        if "gguf" in base.key.lower() or "gguf" in source.repo.lower()
    )


def _description(text: str) -> str:
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    return first.lstrip("#").strip() if first.startswith("#") else ""
