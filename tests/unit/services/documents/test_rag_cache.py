from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from openlms.store.rag_cache import CachedIndex, RagCache

TEXT = "some document text that is long enough"


def _index() -> CachedIndex:
    return CachedIndex([(0, 10, 1), (5, 20, None)], np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))


def test_round_trip_and_key(tmp_path: Path) -> None:
    cache = RagCache.in_state_dir(tmp_path / "openlms")
    assert cache.get(TEXT, "m|p") is None
    cache.put(TEXT, "m|p", _index())
    got = cache.get(TEXT, "m|p")
    assert got is not None and got.spans == [(0, 10, 1), (5, 20, None)]
    assert np.array_equal(got.vectors, _index().vectors)
    assert cache.get(TEXT, "other-model|p") is None  # the model and chunking are part of the key
    assert cache.get(TEXT + " changed", "m|p") is None  # so is the content
    (entry,) = (tmp_path / "openlms" / "rag-cache").glob("*.npz")
    assert entry.name.startswith(__import__("hashlib").sha256(TEXT.encode()).hexdigest())


def test_unreadable_or_mismatched_entry_is_a_miss_and_removed(tmp_path: Path) -> None:
    cache = RagCache(tmp_path)
    cache.put(TEXT, "v", _index())
    path = cache.path_for(TEXT, "v")
    path.write_bytes(b"not an npz")
    assert cache.get(TEXT, "v") is None and not path.exists()
    cache.put(TEXT, "v", _index())
    path.write_bytes(path.read_bytes()[:60])  # a truncated zip
    assert cache.get(TEXT, "v") is None and not path.exists()
    cache.put("short", "v", CachedIndex([(0, 50, None)], np.zeros((1, 2), dtype=np.float32)))
    assert cache.get("short", "v") is None  # a span past the text's end


def test_least_recently_used_entries_are_pruned(tmp_path: Path) -> None:
    cache = RagCache(tmp_path, max_entries=2)
    for n, text in enumerate(["one", "two"]):
        cache.put(text * 10, "v", _index())
        os.utime(cache.path_for(text * 10, "v"), (1000 + n, 1000 + n))
    assert cache.get("one" * 10, "v") is not None  # read: now the most recent
    cache.put("three" * 10, "v", _index())
    assert cache.get("two" * 10, "v") is None
    assert cache.get("one" * 10, "v") is not None and cache.get("three" * 10, "v") is not None
