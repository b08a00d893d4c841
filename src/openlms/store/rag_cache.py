"""The documents (RAG) index cache: a document's chunk spans and their embeddings, so that a second
question about the same file does not embed it again.

    <home>/openlms/rag-cache/<sha256 of the text>-<16 hex of (model, chunking)>.npz

One `.npz` per (document content, embedding model, chunking parameters), written atomically, holding
`vectors` (float32, one unit row per chunk), `starts`, `ends`, `pages` (int64, -1 for no page). An entry
that cannot be read, or whose spans do not fit the text, is a miss (and is removed). Reading an entry
refreshes its mtime; past `max_entries` the least recently used are removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from openlms.core.fsutil import atomic_write_bytes

log = logging.getLogger("openlms.store")

RAG_CACHE_DIR: Final = "rag-cache"
DEFAULT_MAX_ENTRIES: Final = 2000

Vectors = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class CachedIndex:
    """A document's chunks as spans of its text (`pages[i]` None without pages) and their vectors."""

    spans: list[tuple[int, int, int | None]]  # (start, end, page)
    vectors: Vectors


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class RagCache:
    def __init__(self, root: Path, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.root = root
        self.max_entries = max_entries

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> RagCache:
        """The cache in `<home>/openlms` (`Settings.state_dir`)."""
        return cls(state_dir / RAG_CACHE_DIR)

    def path_for(self, text: str, variant: str) -> Path:
        """`variant` names the embedding model and the chunking parameters."""
        tail = hashlib.sha256(variant.encode("utf-8")).hexdigest()[:16]
        return self.root / f"{content_hash(text)}-{tail}.npz"

    def get(self, text: str, variant: str) -> CachedIndex | None:
        path = self.path_for(text, variant)
        try:
            with np.load(path, allow_pickle=False) as data:
                index = _index_of(data["vectors"], data["starts"], data["ends"], data["pages"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("RAG cache entry %s unreadable (%s): removed", path.name, exc)
            path.unlink(missing_ok=True)
            return None
        if index is None or any(end > len(text) for _, end, _ in index.spans):
            path.unlink(missing_ok=True)
            return None
        with contextlib.suppress(OSError):
            os.utime(path)
        return index

    def put(self, text: str, variant: str, index: CachedIndex) -> None:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            vectors=np.asarray(index.vectors, dtype=np.float32),
            starts=np.array([s for s, _, _ in index.spans], dtype=np.int64),
            ends=np.array([e for _, e, _ in index.spans], dtype=np.int64),
            pages=np.array([-1 if p is None else p for _, _, p in index.spans], dtype=np.int64),
        )
        try:
            atomic_write_bytes(self.path_for(text, variant), buffer.getvalue())
            self._prune()
        except OSError as exc:  # a cache that cannot be written only costs time
            log.warning("RAG cache not written (%s)", exc)

    def _prune(self) -> None:
        entries = list(self.root.glob("*.npz"))
        if len(entries) <= self.max_entries:
            return
        entries.sort(key=_mtime)
        for path in entries[: len(entries) - self.max_entries]:
            path.unlink(missing_ok=True)


def _index_of(
    vectors: npt.NDArray[np.generic],
    starts: npt.NDArray[np.generic],
    ends: npt.NDArray[np.generic],
    pages: npt.NDArray[np.generic],
) -> CachedIndex | None:
    n = len(starts)
    if vectors.ndim != 2 or vectors.shape[0] != n or len(ends) != n or len(pages) != n:
        return None
    spans = [
        (int(s), int(e), None if int(p) < 0 else int(p))
        for s, e, p in zip(starts.tolist(), ends.tolist(), pages.tolist(), strict=True)
    ]
    if any(not 0 <= s < e for s, e, _ in spans):
        return None
    return CachedIndex(spans, vectors.astype(np.float32, copy=False))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
