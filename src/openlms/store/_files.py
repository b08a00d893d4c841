"""Temporary files beside their destination, so that a final rename is atomic and a crash leaves only
a hidden file that the catalog never lists."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

FILE_MODE: Final = 0o644  # mkstemp creates 0600 files; models are meant to be readable
STALE_SECONDS: Final = 3600  # a temporary file untouched this long was left by a crash


@contextmanager
def temp_sibling(final: Path, suffix: str = ".part") -> Iterator[Path]:
    """An empty hidden file `.<name>.<random><suffix>` in `final`'s folder (mode 0644), removed on exit
    unless it was renamed away."""
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
    os.close(fd)
    path = Path(name)
    try:
        os.chmod(path, FILE_MODE)
        yield path
    finally:
        path.unlink(missing_ok=True)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def remove_stale_siblings(final: Path, suffixes: tuple[str, ...] = (".part",)) -> None:
    """Remove the temporary files of `final` (`temp_sibling`'s) that an interrupted run left behind: those
    untouched for an hour (a copy in progress keeps its file's mtime fresh)."""
    cutoff = time.time() - STALE_SECONDS
    for suffix in suffixes:
        for leftover in final.parent.glob(f".{final.name}.*{suffix}"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
