"""`lms import` keeps to the models folder (issue 10 §3): destinations with `..`, absolute or hidden
names, or through a link planted in the models folder are refused before anything is written; a full disk
in the middle of a copy is a clear error that leaves nothing behind (no model listed, no temporary file).
"""

from __future__ import annotations

import errno
import os
import shutil
import time
from pathlib import Path

import pytest

from openlms.store.catalog import ModelCatalog
from openlms.store.importer import ModelImportError, import_model


@pytest.fixture
def source(tmp_path: Path, tiny_llama: Path) -> Path:
    path = tmp_path / "downloads" / "Cool-Model-7B-Q4_K_M.gguf"
    path.parent.mkdir(parents=True)
    shutil.copyfile(tiny_llama, path)
    return path


@pytest.fixture
def models(tmp_path: Path) -> Path:
    path = tmp_path / "models"
    path.mkdir()
    return path


def everything(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


@pytest.mark.parametrize(
    ("publisher", "repo"),
    [
        ("..", None),
        ("../..", "x"),
        ("local", ".."),
        ("local", "../escaped"),
        ("/tmp", "x"),
        ("local", "/tmp/escaped"),
        ("..\\..", "x"),
        ("local", "a\\..\\..\\escaped"),
        (".", "x"),
        (".hidden", "x"),
    ],
)
def test_destinations_out_of_the_folder_are_refused(
    source: Path, models: Path, tmp_path: Path, publisher: str, repo: str | None
) -> None:
    before = everything(tmp_path)
    with pytest.raises(ModelImportError, match="invalid|escapes"):
        import_model(source, models, publisher=publisher, repo=repo)
    assert everything(tmp_path) == before
    assert not Path("/tmp/escaped").exists()


@pytest.mark.parametrize("mode", ["copy", "move", "hardlink", "symlink"])
def test_a_link_planted_in_the_models_folder_is_not_followed(
    source: Path, models: Path, tmp_path: Path, mode: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (models / "local").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelImportError, match="escapes"):
        import_model(source, models, mode=mode)  # type: ignore[arg-type]
    assert list(outside.iterdir()) == [] and source.exists()


def test_a_full_disk_mid_copy_is_a_clear_error_and_leaves_nothing(
    source: Path, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def copy_until_full(src: Path, dst: Path) -> None:
        with open(src, "rb") as reader, open(dst, "wb") as writer:
            writer.write(reader.read(1000))  # part of the file lands, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("openlms.store.importer.shutil.copyfile", copy_until_full)
    with pytest.raises(ModelImportError, match="No space left on device"):
        import_model(source, models)
    assert [p for p in everything(models) if p.is_file()] == []  # the partial copy is gone
    assert ModelCatalog(models).models() == []
    assert source.exists()


def test_a_full_disk_during_a_move_across_file_systems_keeps_the_source(
    source: Path, models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cross_device(src: Path, dst: Path) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def full(src: Path, dst: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("openlms.store.importer.os.link", cross_device)
    monkeypatch.setattr("openlms.store.importer.shutil.copyfile", full)
    with pytest.raises(ModelImportError, match="No space left on device"):
        import_model(source, models, mode="move")
    assert source.exists() and ModelCatalog(models).models() == []


def test_a_copy_left_by_a_crash_is_removed_by_the_next_import(source: Path, models: Path) -> None:
    """A crash in the middle of a copy leaves a hidden temporary file (never listed); the next import of
    that file removes it once it is an hour old, and leaves a fresh one (a copy in progress) alone."""
    folder = models / "local" / "Cool-Model-7B-GGUF"
    folder.mkdir(parents=True)
    stale = folder / f".{source.name}.crashed.part"
    fresh = folder / f".{source.name}.running.part"
    stale.write_bytes(b"half a model")
    fresh.write_bytes(b"a copy in progress")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    assert ModelCatalog(models).models() == []
    target = import_model(source, models)
    assert target.read_bytes() == source.read_bytes()
    assert not stale.exists() and fresh.exists()
