"""model.yaml models: virtual models from LM Studio's hub folder, and a model.yaml's metadataOverrides.

LM Studio keeps the model.yaml of catalog models (`lms get qwen/qwen3-8b`) in
`<home>/hub/models/<publisher>/<name>/model.yaml` and their concrete files in the models folder
(`lmstudio-community/Qwen3-8B-GGUF/...`). A virtual model is listed under its `model` key when one of its
`base` entries (its `key`, or a Hugging Face source `user/repo`, compared with a downloaded model's
`<publisher>/<repo>` folder, any case) resolves to a downloaded model; a `base` that names another
virtual model (a chain) takes that one's files. Every matching file is a variant
(`qwen/qwen3-8b@q4_k_m`); the selected one is the first base entry's Q4_K_M file, else its first file.
A virtual model with nothing downloaded is not listed; `missing` says how to get it.

A model.yaml beside a concrete file (in its `<publisher>/<repo>/` folder) still applies to that file:
its metadataOverrides are shown and its config and customFields apply. A malformed model.yaml is listed
with its `error` (the concrete file it sits beside too), never fatal to the scan.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from openlms.core.types import ModelDescriptor, ModelKind
from openlms.store.model_yaml import FILE_NAME, MetadataOverrides, ModelYaml, ModelYamlError, read_model_yaml

MAX_CHAIN = 8
PREFERRED_QUANT = "Q4_K_M"

_Stamp = tuple[int, int]


def hub_models_dir(home: Path) -> Path:
    """Where LM Studio keeps virtual models' model.yaml: `<home>/hub/models`."""
    return home / "hub" / "models"


@dataclass(frozen=True, slots=True)
class VirtualEntry:
    key: str  # the model.yaml's `model` ("qwen/qwen3-8b"), else `<publisher>/<name>` of its folder
    path: Path
    parsed: ModelYaml | None
    error: str | None


@dataclass(frozen=True, slots=True)
class VirtualModels:
    listed: list[ModelDescriptor]  # resolved virtual models, and malformed ones with their error
    variants: dict[str, ModelDescriptor]  # lower-cased "<key>@<variant>" -> that variant selected
    missing: dict[str, str]  # lower-cased key of a virtual model with nothing downloaded -> how to get it


class ModelYamlCache:
    """Parsed model.yaml files by (size, mtime); one per catalog (not thread-safe: the catalog locks)."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[_Stamp, ModelYaml | str]] = {}

    def read(self, path: Path) -> ModelYaml | str | None:
        """The parsed file, its error message, or None when there is no file."""
        try:
            st = path.stat()
        except OSError:
            self._cache.pop(path, None)
            return None
        stamp = (st.st_size, st.st_mtime_ns)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        result: ModelYaml | str
        try:
            result = read_model_yaml(path)
        except ModelYamlError as exc:
            result = exc.message
        self._cache[path] = (stamp, result)
        return result

    def with_local_yaml(self, descriptor: ModelDescriptor) -> ModelDescriptor:
        """A concrete model with the model.yaml beside it applied (metadataOverrides, or its error)."""
        path = descriptor.path.parent / FILE_NAME
        parsed = self.read(path)
        if parsed is None:
            return descriptor
        if isinstance(parsed, str):
            return replace(descriptor, model_yaml=path, error=descriptor.error or parsed)
        return with_overrides(replace(descriptor, model_yaml=path), parsed.metadata)

    def entries(self, hub_dir: Path | None) -> list[VirtualEntry]:
        if hub_dir is None:
            return []
        out = []
        for folder_key, path in _yaml_files(hub_dir):
            parsed = self.read(path)
            if parsed is None:
                continue
            if isinstance(parsed, str):
                out.append(VirtualEntry(folder_key, path, None, parsed))
            else:
                out.append(VirtualEntry(parsed.model or folder_key, path, parsed, None))
        return sorted(out, key=lambda entry: entry.key.lower())


def with_overrides(descriptor: ModelDescriptor, meta: MetadataOverrides) -> ModelDescriptor:
    """What a model.yaml's metadataOverrides say, over what the GGUF header said."""
    return replace(
        descriptor,
        params_string=meta.params_strings[0] if meta.params_strings else descriptor.params_string,
        architecture=meta.architectures[0] if meta.architectures else descriptor.architecture,
        max_context_length=max(meta.context_lengths, default=None) or descriptor.max_context_length,
        domain=meta.domain or descriptor.domain,
        vision=_flag(meta.vision, descriptor.vision),
        reasoning=_flag(meta.reasoning, descriptor.reasoning),
        trained_for_tool_use=_flag(meta.trained_for_tool_use, descriptor.trained_for_tool_use),
    )


def _flag(value: bool | str | None, current: bool) -> bool:
    """An override (true, false, or "mixed": some variants can, so the model is shown as able)."""
    return current if value is None else value is not False


def resolve_virtual(entries: Sequence[VirtualEntry], concrete: Sequence[ModelDescriptor]) -> VirtualModels:
    """The virtual models `entries` describe, resolved against the downloaded `concrete` models."""
    by_key = {entry.key.lower(): entry for entry in entries}
    result = VirtualModels([], {}, {})
    for entry in entries:
        if entry.parsed is None:
            result.listed.append(_broken(entry))
            continue
        matches = _matches(entry.parsed, by_key, concrete, depth=0)
        if not matches:
            result.missing[entry.key.lower()] = missing_message(entry)
            continue
        names = _variant_names(entry.key, matches)
        selected = _select(matches)
        listed = _virtual(entry, selected, names, matches)
        result.listed.append(listed)
        for name, match in zip(names, matches, strict=True):
            chosen = listed if match is selected else _virtual(entry, match, names, matches)
            result.variants[name.lower()] = chosen
    return result


def missing_message(entry: VirtualEntry) -> str:
    sources = entry.parsed.sources if entry.parsed is not None else ()
    where = f" (from {', '.join(s.repo_id for s in sources)})" if sources else ""
    return (
        f"'{entry.key}' is a model.yaml model with none of its files downloaded{where}. "
        f"Download it with `lms get {entry.key}`."
    )


def _yaml_files(hub_dir: Path) -> Iterator[tuple[str, Path]]:
    for publisher in _subfolders(hub_dir):
        for name in _subfolders(publisher):
            yield f"{publisher.name}/{name.name}", name / FILE_NAME


def _subfolders(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as it:
            return sorted(Path(e.path) for e in it if not e.name.startswith(".") and e.is_dir())
    except OSError:
        return []


def _matches(
    parsed: ModelYaml, by_key: dict[str, VirtualEntry], concrete: Sequence[ModelDescriptor], depth: int
) -> list[ModelDescriptor]:
    if isinstance(parsed.base, str):
        parent = by_key.get(parsed.base.lower())
        if parent is None or parent.parsed is None or depth >= MAX_CHAIN:
            return []
        return _matches(parent.parsed, by_key, concrete, depth + 1)
    found: list[ModelDescriptor] = []
    for base in parsed.base:
        folders = {base.key.lower(), *(source.repo_id.lower() for source in base.sources)}
        found += [m for m in concrete if _folder(m) in folders and not m.virtual and m not in found]
    return found


def _folder(model: ModelDescriptor) -> str:
    return model.rel_path.rsplit("/", 1)[0].lower()


def _select(matches: Sequence[ModelDescriptor]) -> ModelDescriptor:
    loadable = [m for m in matches if m.loadable] or list(matches)
    first_folder = _folder(loadable[0])
    same = [m for m in loadable if _folder(m) == first_folder]
    return next((m for m in same if (m.quantization or "").upper() == PREFERRED_QUANT), same[0])


def _variant_names(key: str, matches: Sequence[ModelDescriptor]) -> list[str]:
    quants = [(m.quantization or "").lower() for m in matches]
    unique = all(quants) and len(set(quants)) == len(quants)
    return [f"{key}@{q}" if unique else f"{key}@{m.key}" for q, m in zip(quants, matches, strict=True)]


def _virtual(
    entry: VirtualEntry,
    concrete: ModelDescriptor,
    names: Sequence[str],
    matches: Sequence[ModelDescriptor],
) -> ModelDescriptor:
    assert entry.parsed is not None
    selected = names[list(matches).index(concrete)]
    base = replace(
        concrete,
        key=entry.key,
        publisher=entry.key.split("/", 1)[0],
        model_yaml=entry.path,
        virtual=True,
        variants=tuple(names) if len(names) > 1 else (),
        selected_variant=selected if len(names) > 1 else None,
    )
    return with_overrides(base, entry.parsed.metadata)


def _broken(entry: VirtualEntry) -> ModelDescriptor:
    return ModelDescriptor(
        key=entry.key,
        path=entry.path,
        rel_path=f"hub/models/{entry.key}/{FILE_NAME}",
        publisher=entry.key.split("/", 1)[0],
        kind=ModelKind.LLM,
        display_name=entry.key,
        size_bytes=0,
        model_yaml=entry.path,
        virtual=True,
        error=entry.error,
    )
