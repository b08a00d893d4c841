"""The catalog of downloaded models: a scan of the models directory in LM Studio's layout.

Layout: `<models_dir>/<publisher>/<repo>/<file>.gguf`. Files from one to four levels deep are accepted
(`<models_dir>/<file>.gguf` has the publisher "local"). Hidden files and folders, `mmproj*` projector
files, and partial downloads (`*.part`, `*.tmp`, `*.download`, ... as a name component) are never
listed. A split model (`name-00001-of-00003.gguf`, ...) is one entry whose size counts every shard.
A file that cannot be read is listed with `error` set, never dropped and never fatal to the scan.

Metadata is cached per file by (path, size, mtime_ns), so a re-scan only re-reads what changed. One
`ModelCatalog` may be shared between threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from openlms.core.types import ModelDescriptor, ModelKind
from openlms.store import naming
from openlms.store.gguf_checks import check_hparams, check_tensors
from openlms.store.gguf_meta import GGUFFormatError, GGUFMetadata, merge_shards, read_gguf_metadata
from openlms.store.model_yaml import FILE_NAME, ModelYaml, ModelYamlError
from openlms.store.virtual import ModelYamlCache, resolve_virtual

MAX_DEPTH: Final = 4
PARTIAL_MARKERS: Final = frozenset({"part", "tmp", "temp", "download", "crdownload", "partial", "incomplete"})

_Stamp = tuple[int, int]  # (size, mtime_ns)


@dataclass(frozen=True, slots=True)
class _FileStat:
    path: Path
    name: str
    stamp: _Stamp | None  # None: could not stat (broken link, permission)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Group:
    """The files of one model in one folder: a single file, or the shards of a split model."""

    folder_parts: tuple[str, ...]  # folders below the models dir
    files: tuple[_FileStat, ...]  # shards in order (present ones)
    missing: tuple[str, ...]  # names of missing shards
    siblings: tuple[str, ...]  # every file name in the folder


def is_candidate_file(name: str) -> bool:
    """A visible `.gguf` file that is not a projector and not a partial download."""
    lowered = name.lower()
    if name.startswith(".") or not lowered.endswith(".gguf") or naming.is_mmproj(name):
        return False
    return not PARTIAL_MARKERS.intersection(lowered.split(".")[:-1])


class ModelCatalog:
    """Scans `models_dir` (and the virtual models' model.yaml files in `hub_dir`, LM Studio's
    `<home>/hub/models`; see `store/virtual.py`) and resolves model queries. Thread-safe."""

    def __init__(self, models_dir: Path, hub_dir: Path | None = None) -> None:
        self._models_dir = Path(models_dir).expanduser()
        self._hub_dir = hub_dir
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[_Stamp, GGUFMetadata | str]] = {}
        self._yaml = ModelYamlCache()
        self._models: list[ModelDescriptor] | None = None
        self._index: dict[str, ModelDescriptor] = {}
        self._missing: dict[str, str] = {}

    @property
    def models_dir(self) -> Path:
        return self._models_dir

    def scan(self) -> list[ModelDescriptor]:
        """Every model under the models directory, sorted by `rel_path`."""
        with self._lock:
            groups = sorted(_find_groups(self._models_dir), key=_group_rel_path)
            seen: set[Path] = set()
            drafts = [self._describe(group, seen) for group in groups]
            self._cache = {path: entry for path, entry in self._cache.items() if path in seen}
            models, self._index = _with_keys(drafts)
            virtual = resolve_virtual(self._yaml.entries(self._hub_dir), models)
            for alias, model in virtual.variants.items():
                self._index.setdefault(alias, model)
            self._index.update({model.key.lower(): model for model in virtual.listed})
            self._missing = virtual.missing
            self._models = models + virtual.listed
            return list(self._models)

    def models(self, *, refresh: bool = False) -> list[ModelDescriptor]:
        """The last scan's models (scanning if there was none, or if `refresh`)."""
        if refresh or self._models is None:
            return self.scan()
        return list(self._models)

    def keys(self, *, refresh: bool = False) -> list[str]:
        return [model.key for model in self.models(refresh=refresh)]

    def find(self, query: str, *, refresh: bool = True) -> ModelDescriptor | None:
        """Resolve a model key, `key@quant`, `publisher/key`, a rel_path (with or without `.gguf`),
        an absolute path, or a case-insensitive prefix of rel_paths: a folder such as `publisher/repo`
        first, else any prefix with a publisher, as LM Studio matches `hugging-quants/llama-3.2-1b-instruct`
        to `hugging-quants/Llama-3.2-1B-Instruct-Q8_0-GGUF/...` (the first loadable match in rel_path
        order). None when nothing matches."""
        models = self.models(refresh=refresh)
        text = query.strip().replace("\\", "/").removeprefix("./")
        if not text:
            return None
        found = self._index.get(text.lower())
        if found is not None:
            return found
        if Path(text).is_absolute():
            return _find_by_path(models, Path(text))
        folder = text.lower().rstrip("/")
        found = _find_by_prefix(models, folder + "/")
        if found is None and "/" in folder:
            found = _find_by_prefix(models, folder)
        return found

    def missing(self, query: str) -> str | None:
        """How to get a virtual model that has a model.yaml but none of its files (last scan)."""
        return self._missing.get(query.strip().lower())

    def model_yaml(self, model: ModelDescriptor) -> ModelYaml | None:
        """The model.yaml that applies to a model (a virtual model's, or the one beside its file), parsed;
        None when there is none. ModelYamlError when it is malformed."""
        path = model.model_yaml or model.path.parent / FILE_NAME
        with self._lock:
            parsed = self._yaml.read(path)
        if isinstance(parsed, str):
            raise ModelYamlError(parsed)
        return parsed

    def metadata(self, model: ModelDescriptor) -> GGUFMetadata | None:
        """A listed, loadable model's header (every shard's tensors), from the last scan's cache."""
        with self._lock:
            entries = [self._cache.get(path) for path in (model.shard_paths or (model.path,))]
        metas = [entry[1] for entry in entries if entry is not None and not isinstance(entry[1], str)]
        if model.error is not None or not metas or len(metas) != len(entries):
            return None
        return merge_shards(metas)

    # -- internals ----------------------------------------------------------------------------------

    def _describe(self, group: _Group, seen: set[Path]) -> _Draft:
        metas: list[GGUFMetadata] = []
        errors: list[str] = []
        if group.missing:
            errors.append(f"missing shard(s): {', '.join(group.missing)}")
        for file in group.files:
            seen.add(file.path)
            result = self._metadata(file)
            if isinstance(result, str):
                errors.append(f"{file.name}: {result}" if len(group.files) > 1 else result)
            else:
                metas.append(result)
        meta = merge_shards(metas) if metas and not errors else None
        problem = check_hparams(meta) if meta is not None else None
        if problem is not None:
            meta, errors = None, [problem]
        draft = _draft(self._models_dir, group, meta, "; ".join(errors) or None)
        return replace(draft, descriptor=self._yaml.with_local_yaml(draft.descriptor))

    def _metadata(self, file: _FileStat) -> GGUFMetadata | str:
        if file.stamp is None:
            return file.error or "cannot read the file"
        cached = self._cache.get(file.path)
        if cached is not None and cached[0] == file.stamp:
            return cached[1]
        result: GGUFMetadata | str
        try:
            result = read_gguf_metadata(file.path)
            result = check_tensors(result) or result
        except GGUFFormatError as exc:
            result = str(exc)
        except OSError as exc:
            result = f"cannot read the file: {exc.strerror or exc}"
        self._cache[file.path] = (file.stamp, result)
        return result


# ---------------------------------------------------------------------------------------------------
# Walking the models directory


def _find_groups(root: Path) -> Iterator[_Group]:
    for folder_parts, files, names in _walk(root):
        yield from _group_folder(folder_parts, files, names)


def _walk(root: Path) -> Iterator[tuple[tuple[str, ...], list[_FileStat], tuple[str, ...]]]:
    stack: list[tuple[Path, tuple[str, ...]]] = [(root, ())]
    while stack:
        folder, parts = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue
        files: list[_FileStat] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if _is_dir(entry):
                if len(parts) + 1 < MAX_DEPTH:
                    stack.append((Path(entry.path), (*parts, entry.name)))
            elif is_candidate_file(entry.name):
                files.append(_stat(entry))
        yield parts, files, tuple(e.name for e in entries)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _stat(entry: os.DirEntry[str]) -> _FileStat:
    path = Path(entry.path)
    try:
        st = entry.stat()
    except OSError as exc:
        return _FileStat(path, entry.name, None, f"cannot read the file: {exc.strerror or exc}")
    return _FileStat(path, entry.name, (st.st_size, st.st_mtime_ns))


def _group_folder(parts: tuple[str, ...], files: list[_FileStat], names: tuple[str, ...]) -> Iterator[_Group]:
    splits: dict[tuple[str, int], dict[int, _FileStat]] = {}
    for file in files:
        split = naming.parse_split_name(file.name)
        if split is None or split.total < 1 or not 1 <= split.index <= split.total:
            yield _Group(parts, (file,), (), names)
        else:
            splits.setdefault((split.base, split.total), {})[split.index] = file
    for (base, total), shards in splits.items():
        template = naming.SplitName(base, 1, total)
        missing = tuple(naming.shard_file_name(template, i) for i in range(1, total + 1) if i not in shards)
        yield _Group(parts, tuple(shards[i] for i in sorted(shards)), missing, names)


def _group_rel_path(group: _Group) -> str:
    return "/".join((*group.folder_parts, _first_name(group)))


def _first_name(group: _Group) -> str:
    first = group.files[0].name
    split = naming.parse_split_name(first)
    if split is not None and group.missing:
        return naming.shard_file_name(split, 1, first[len(naming.strip_gguf_suffix(first)) :])
    return first


# ---------------------------------------------------------------------------------------------------
# Building descriptors


@dataclass(frozen=True, slots=True)
class _Draft:
    descriptor: ModelDescriptor  # key still the base key
    request: naming.KeyRequest


def _draft(root: Path, group: _Group, meta: GGUFMetadata | None, error: str | None) -> _Draft:
    rel_path = _group_rel_path(group)
    file_name = rel_path.rsplit("/", 1)[-1]
    publisher = group.folder_parts[0] if group.folder_parts else "local"
    split = len(group.files) > 1 or bool(group.missing)
    base = ModelDescriptor(
        key=naming.model_key(file_name),
        path=root / rel_path if group.missing else group.files[0].path,
        rel_path=rel_path,
        publisher=publisher,
        kind=ModelKind.LLM,
        display_name=naming.display_name(None, file_name),
        size_bytes=sum(f.stamp[0] for f in group.files if f.stamp is not None),
        quantization=naming.quantization_from_name(file_name),
        shard_paths=tuple(f.path for f in group.files) if split else (),
        error=error or "unreadable",
    )
    descriptor = base if meta is None else _with_metadata(base, meta, group.siblings)
    request = naming.KeyRequest(descriptor.key, descriptor.quantization, publisher, rel_path)
    return _Draft(descriptor, request)


def _with_metadata(base: ModelDescriptor, meta: GGUFMetadata, siblings: Sequence[str]) -> ModelDescriptor:
    file_name = base.rel_path.rsplit("/", 1)[-1]
    embedding = naming.is_embedding_model(
        meta.architecture, pooling_type=meta.pooling_type, causal_attention=meta.causal_attention
    )
    template = meta.chat_template
    return replace(
        base,
        key=naming.model_key(file_name, embedding=embedding),
        kind=ModelKind.EMBEDDING if embedding else ModelKind.LLM,
        display_name=naming.display_name(meta.name, file_name, meta.basename),
        architecture=meta.architecture,
        params_string=naming.params_string(meta.size_label, meta.n_params),
        quantization=meta.quantization or base.quantization,
        bits_per_weight=meta.bits_per_weight,
        max_context_length=meta.context_length,
        n_layers=meta.block_count,
        has_chat_template=bool(template),
        trained_for_tool_use=naming.trained_for_tool_use(template),
        vision=naming.has_vision_projector(siblings),
        error=None,
    )


def _with_keys(drafts: Sequence[_Draft]) -> tuple[list[ModelDescriptor], dict[str, ModelDescriptor]]:
    """Descriptors with their final keys, and the lookup index (lower-cased query -> model).

    The index holds keys first, then collision aliases, then the other spellings of each model.
    """
    keys, aliases = naming.assign_keys([d.request for d in drafts])
    variants: dict[str, list[str]] = {}  # the keys of each collided base key (several quantizations)
    for draft, key in zip(drafts, keys, strict=True):
        variants.setdefault(draft.request.base_key.lower(), []).append(key)
    models = [
        _with_variants(replace(d.descriptor, key=key), variants[d.request.base_key.lower()])
        for d, key in zip(drafts, keys, strict=True)
    ]
    index = {model.key.lower(): model for model in models}
    for alias, position in aliases.items():
        index.setdefault(alias.lower(), models[position])
    for model, draft in zip(models, drafts, strict=True):
        base = draft.request.base_key
        spellings = [model.rel_path, naming.strip_gguf_suffix(model.rel_path), f"{model.publisher}/{base}"]
        if model.quantization:
            spellings.append(f"{base}@{model.quantization}")
        for spelling in spellings:
            index.setdefault(spelling.lower(), model)
    return models, index


def _with_variants(model: ModelDescriptor, keys: Sequence[str]) -> ModelDescriptor:
    return replace(model, variants=tuple(keys), selected_variant=model.key) if len(keys) > 1 else model


def _find_by_path(models: Sequence[ModelDescriptor], path: Path) -> ModelDescriptor | None:
    try:
        wanted = path.resolve()
    except OSError:
        return None
    for model in models:
        if wanted in {p.resolve() for p in (model.path, *model.shard_paths)}:
            return model
    return None


def _find_by_prefix(models: Sequence[ModelDescriptor], prefix: str) -> ModelDescriptor | None:
    matches = [model for model in models if model.rel_path.lower().startswith(prefix)]
    loadable = [model for model in matches if model.loadable]
    candidates = loadable or matches
    return candidates[0] if candidates else None
