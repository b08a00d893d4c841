"""`lms import`: bring a model from elsewhere into the models directory, in LM Studio's layout.

* A `.gguf` file goes to `<models>/<publisher>/<repo>/<file name>`. The publisher defaults to "local",
  the repository to the file's model stem (no quantization, no split suffix) plus `-GGUF`:
  `Foo-7B-Q4_K_M.gguf` -> `local/Foo-7B-GGUF/Foo-7B-Q4_K_M.gguf`. The header must read as GGUF.
  Importing one shard of a split model imports every shard.
* A folder holding a BERT sentence-transformers model is converted to an F16 GGUF,
  `<models>/<publisher>/<folder name>-GGUF/<folder name>-F16.gguf` (only `mode="copy"` applies).

An existing destination is never overwritten. Files appear atomically: copies go through a hidden
temporary file in the destination folder (one that a crash left is removed by the next import of that
file, once an hour old); moves, hard links and symbolic links are single operations.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from openlms.core.fsutil import contained_path
from openlms.store import naming
from openlms.store._files import fsync_file, remove_stale_siblings, temp_sibling
from openlms.store.convert_bert import ConversionError, check_bert_folder, convert_bert_folder
from openlms.store.gguf_meta import GGUF_MAGIC, GGUFFormatError, read_gguf_metadata

ImportMode = Literal["copy", "move", "hardlink", "symlink"]
DEFAULT_PUBLISHER = "local"


class ModelImportError(ValueError):
    """The source cannot be imported; the message says why."""


def import_model(
    source: Path,
    models_dir: Path,
    *,
    publisher: str | None = None,
    repo: str | None = None,
    mode: ImportMode = "copy",
) -> Path:
    """Import `source` and return the path of the (first) imported GGUF file."""
    source = Path(source).expanduser()
    if mode not in ("copy", "move", "hardlink", "symlink"):
        raise ModelImportError(f"unknown import mode {mode!r}")
    if source.is_dir():
        return _import_folder(source, Path(models_dir), publisher, repo, mode)
    if not source.is_file():
        raise ModelImportError(f"{source} does not exist")
    shards = _shards_of(source)
    dest_dir = _destination(Path(models_dir), publisher, repo or naming.default_repo_name(source.name))
    targets = [dest_dir / shard.name for shard in shards]
    taken = [str(t) for t in targets if t.exists() or t.is_symlink()]
    if taken:
        raise ModelImportError(f"{', '.join(taken)} already exists; not overwriting it")
    for shard in shards:
        _check_gguf(shard)
    dest_dir.mkdir(parents=True, exist_ok=True)
    for shard, target in zip(shards, targets, strict=True):
        _transfer(shard, target, mode)
    return targets[0]


def _destination(models_dir: Path, publisher: str | None, repo: str) -> Path:
    publisher = publisher or DEFAULT_PUBLISHER
    for label, value in (("publisher", publisher), ("repo", repo)):
        if not value or value in (".", "..") or value.startswith(".") or "/" in value or "\\" in value:
            raise ModelImportError(f"invalid {label} name {value!r}: use a plain folder name")
    try:
        return contained_path(models_dir, f"{publisher}/{repo}")
    except ValueError as exc:
        raise ModelImportError(str(exc)) from exc


def _shards_of(source: Path) -> list[Path]:
    split = naming.parse_split_name(source.name)
    if split is None:
        return [source]
    suffix = source.name[len(naming.strip_gguf_suffix(source.name)) :]
    shards = [source.with_name(naming.shard_file_name(split, i, suffix)) for i in range(1, split.total + 1)]
    missing = [s.name for s in shards if not s.is_file()]
    if missing:
        raise ModelImportError(
            f"{source.name} is part of a split model; missing shard(s): {', '.join(missing)}"
        )
    return shards


def _check_gguf(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelImportError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if magic != GGUF_MAGIC:
        raise ModelImportError(f"{path} is not a GGUF file (it does not start with {GGUF_MAGIC!r})")
    try:
        read_gguf_metadata(path)
    except GGUFFormatError as exc:
        raise ModelImportError(f"{path} is not a valid GGUF file: {exc}") from exc


def _transfer(source: Path, target: Path, mode: ImportMode) -> None:
    try:
        if mode == "symlink":
            os.symlink(source.resolve(), target)
        elif mode == "hardlink":
            os.link(source, target)
        elif mode == "move":
            _move(source, target)
        else:
            _copy(source, target)
    except FileExistsError as exc:
        raise ModelImportError(f"{target} already exists; not overwriting it") from exc
    except OSError as exc:
        hint = " (hard links need the same file system; use copy)" if exc.errno == errno.EXDEV else ""
        raise ModelImportError(f"cannot {mode} {source} to {target}: {exc.strerror or exc}{hint}") from exc


def _copy(source: Path, target: Path) -> None:
    remove_stale_siblings(target)  # what a crash during an earlier copy of this file left
    with temp_sibling(target) as tmp:
        shutil.copyfile(source, tmp)
        fsync_file(tmp)
        _publish(tmp, target)


def _move(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # same file system: atomic and never overwrites
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        _copy(source, target)
    source.unlink()


def _publish(tmp: Path, target: Path) -> None:
    """Give `tmp` the name `target`, refusing to replace an existing file."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:
        if target.exists():
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from None
        os.replace(tmp, target)


def _import_folder(
    source: Path, models_dir: Path, publisher: str | None, repo: str | None, mode: ImportMode
) -> Path:
    try:
        check_bert_folder(source)
    except ConversionError as exc:
        raise ModelImportError(f"cannot import the folder: {exc}") from exc
    if mode != "copy":
        raise ModelImportError(
            f"a model folder is converted to GGUF, so mode {mode!r} does not apply; use copy"
        )
    name = _folder_model_name(source)
    dest_dir = _destination(models_dir, publisher, repo or f"{name}-GGUF")
    target = dest_dir / f"{name}-F16.gguf"
    if target.exists():
        raise ModelImportError(f"{target} already exists; not overwriting it")
    remove_stale_siblings(target, (".tmp",))
    try:
        return convert_bert_folder(source, target, outtype="f16", name=name)
    except ConversionError as exc:
        raise ModelImportError(f"cannot convert {source}: {exc}") from exc


def _folder_model_name(folder: Path) -> str:
    """The folder's name, or its parent's when the folder is a generic `model`/`snapshot` folder."""
    generic: Sequence[str] = ("model", "models", "snapshot", "onnx")
    name = folder.resolve().name
    if name.lower() in generic and folder.resolve().parent.name:
        name = folder.resolve().parent.name
    return name
