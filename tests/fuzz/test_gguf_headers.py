"""Property tests of the GGUF header reader and the catalog on hostile files.

Truncated files, huge array/string/key/tensor counts, wrong value types for the keys the catalog reads,
random bytes after a valid magic, flipped bytes in a real file: the reader raises the store's
`GGUFFormatError` (nothing else), never allocates more than a few megabytes (tracemalloc), and the
catalog lists such a file with an `error` instead of failing the whole scan.
"""

from __future__ import annotations

import os
import struct
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openlms.store import ModelCatalog
from openlms.store.gguf_meta import GGUFFormatError, GGUFMetadata, parse_gguf_metadata, read_gguf_metadata
from tests.support.tiny_gguf import write_tiny_llama_gguf

PEAK_LIMIT = 32 * 2**20  # bytes: a header reader needs far less, whatever the counts claim
# Fixed examples in CI (a new finding must not fail someone else's submission); new ones elsewhere.
FUZZ = settings(
    derandomize=bool(os.environ.get("CI")),
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
U64 = st.integers(min_value=0, max_value=2**64 - 1)
HUGE = st.sampled_from([2**31, 2**32 - 1, 2**32, 2**40, 2**63, 2**64 - 1]) | U64
SCALAR_TYPES = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
HYPERPARAMETERS = (
    "general.architecture", "general.alignment", "general.file_type", "llama.block_count",
    "llama.context_length", "llama.embedding_length", "llama.attention.head_count",
    "llama.attention.head_count_kv", "llama.feed_forward_length", "tokenizer.ggml.tokens",
    "tokenizer.chat_template", "split.count",
)  # fmt: skip


def gguf_string(text: bytes, length: int | None = None) -> bytes:
    return struct.pack("<Q", len(text) if length is None else length) + text


def gguf_file(
    kvs: list[bytes], tensors: list[bytes] | None = None, *, version: int = 3, counts: Any = None
) -> bytes:
    """A GGUF header from raw entries; `counts` (tensor_count, kv_count) may lie about them."""
    tensors = tensors or []
    tensor_count, kv_count = counts or (len(tensors), len(kvs))
    head = b"GGUF" + struct.pack("<IQQ", version, tensor_count, kv_count)
    return head + b"".join(kvs) + b"".join(tensors) + b"\0" * 64


@st.composite
def kv_entries(draw: st.DrawFn) -> bytes:
    """One key/value entry: any key the catalog reads (or any), any type code, any payload."""
    key = draw(st.sampled_from(HYPERPARAMETERS) | st.text(max_size=12)).encode("utf-8", "surrogatepass")
    vtype = draw(st.sampled_from([*SCALAR_TYPES, 8, 9]) | st.integers(min_value=0, max_value=2**32 - 1))
    if vtype in SCALAR_TYPES:
        size = struct.calcsize("<" + SCALAR_TYPES[vtype])
        payload = draw(st.binary(min_size=size, max_size=size))
    elif vtype == 8:
        text = draw(st.binary(max_size=16))
        payload = gguf_string(text, draw(st.none() | HUGE))
    elif vtype == 9:
        etype = draw(st.sampled_from([*SCALAR_TYPES, 8, 9]) | st.integers(min_value=0, max_value=2**32 - 1))
        count = draw(st.integers(min_value=0, max_value=8) | HUGE)
        payload = struct.pack("<IQ", etype, count) + draw(st.binary(max_size=64))
    else:
        payload = draw(st.binary(max_size=16))
    return gguf_string(key, draw(st.none() | st.none() | HUGE)) + struct.pack("<I", vtype) + payload


@st.composite
def tensor_infos(draw: st.DrawFn) -> bytes:
    name = gguf_string(draw(st.binary(max_size=12)))
    n_dims = draw(st.integers(min_value=0, max_value=6) | st.integers(min_value=0, max_value=2**32 - 1))
    dims = b"".join(struct.pack("<Q", draw(st.integers(0, 64) | HUGE)) for _ in range(min(n_dims, 6)))
    ggml_type = draw(st.integers(min_value=0, max_value=40) | st.integers(min_value=0, max_value=2**32 - 1))
    offset = draw(st.integers(0, 4096) | HUGE)
    return name + struct.pack("<I", n_dims) + dims + struct.pack("<IQ", ggml_type, offset)


synthetic_headers = st.builds(
    lambda kvs, tensors, version, lie, counts: gguf_file(
        kvs, tensors, version=version, counts=counts if lie else None
    ),
    st.lists(kv_entries(), max_size=6),
    st.lists(tensor_infos(), max_size=3),
    st.sampled_from([2, 3]) | st.integers(min_value=0, max_value=2**32 - 1),
    st.booleans(),
    st.tuples(U64 | HUGE, U64 | HUGE),
)  # fmt: skip
magic_then_noise = st.builds(
    lambda version, noise: b"GGUF" + struct.pack("<I", version) + noise,
    st.sampled_from([2, 3]),
    st.binary(min_size=0, max_size=400),
)


@pytest.fixture(scope="module")
def real_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("gguf") / "tiny-F32.gguf").read_bytes()


def truncations(data: bytes) -> st.SearchStrategy[bytes]:
    return st.integers(min_value=0, max_value=len(data) - 1).map(lambda n: data[:n])


def flips(data: bytes) -> st.SearchStrategy[bytes]:
    """The real file with a few bytes of its header replaced (counts, lengths, type codes)."""
    header = min(len(data), 8192)

    def apply(changes: list[tuple[int, int]]) -> bytes:
        out = bytearray(data)
        for pos, value in changes:
            out[pos] = value
        return bytes(out)

    return st.lists(st.tuples(st.integers(0, header - 1), st.integers(0, 255)), min_size=1, max_size=8).map(
        apply
    )


def parse_bounded(read: Callable[[], GGUFMetadata]) -> GGUFMetadata | GGUFFormatError:
    """Run the reader under tracemalloc: its result or its GGUFFormatError, and a bounded peak."""
    tracemalloc.start()
    try:
        try:
            result: GGUFMetadata | GGUFFormatError = read()
        except GGUFFormatError as exc:
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"the reader allocated {peak / 2**20:.0f} MiB"
    if isinstance(result, GGUFFormatError):
        assert str(result)
    return result


def hostile(real: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(truncations(real), flips(real), synthetic_headers, magic_then_noise)


@FUZZ
@given(data=st.data())
def test_parse_raises_only_the_store_error(real_file: bytes, data: st.DataObject) -> None:
    blob = data.draw(hostile(real_file))
    parse_bounded(lambda: parse_gguf_metadata(blob))


@FUZZ
@given(data=st.data())
def test_read_from_disk_raises_only_the_store_error(
    real_file: bytes, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    path = tmp_path_factory.mktemp("one") / "model.gguf"
    path.write_bytes(data.draw(hostile(real_file)))
    parse_bounded(lambda: read_gguf_metadata(path))


def with_block_count(real: bytes, value: int) -> bytes:
    """The real file whose `llama.block_count` (a u32) claims `value` layers: its tensors disagree."""
    key = gguf_string(b"llama.block_count") + struct.pack("<I", 4)
    at = real.index(key) + len(key)
    return real[:at] + struct.pack("<I", value) + real[at + 4 :]


@pytest.fixture(scope="module")
def hostile_models(
    real_file: bytes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, bytes]]]:
    """A models folder with one file per kind of damage (and the intact file beside them)."""
    root = tmp_path_factory.mktemp("models")
    block_count = b"llama.block_count"
    files = {
        "intact": real_file,
        "truncated-header": real_file[:200],
        "truncated-data": real_file[: len(real_file) // 2],
        "huge-kv-count": gguf_file([], counts=(0, 2**63)),
        "huge-tensor-count": gguf_file([], counts=(2**40, 0)),
        "huge-string": gguf_file([gguf_string(b"general.name", 2**62) + struct.pack("<I", 8) + b"x"]),
        "huge-array": gguf_file(
            [gguf_string(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2**61) + b"\0" * 32]
        ),
        "wrong-type-block-count": gguf_file(
            [
                gguf_string(b"general.architecture") + struct.pack("<I", 8) + gguf_string(b"llama"),
                gguf_string(block_count) + struct.pack("<I", 8) + gguf_string(b"twelve"),
            ]
        ),  # fmt: skip
        "noise-after-magic": b"GGUF" + struct.pack("<I", 3) + bytes(range(256)) * 4,
        "block-count-100000": with_block_count(real_file, 100_000),  # aborted llama.cpp (issue 10)
    }
    for name, blob in files.items():
        folder = root / "fuzz" / f"{name}-GGUF"
        folder.mkdir(parents=True)
        (folder / f"{name}-F32.gguf").write_bytes(blob)
    yield root, files


def test_catalog_lists_hostile_files_with_an_error(hostile_models: tuple[Path, dict[str, bytes]]) -> None:
    root, files = hostile_models
    tracemalloc.start()
    try:
        models = ModelCatalog(root).scan()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT * 2
    by_folder = {m.rel_path.split("/")[1].removesuffix("-GGUF"): m for m in models}
    assert set(by_folder) == set(files)
    assert by_folder["intact"].error is None
    for name in set(files) - {"intact"}:
        assert by_folder[name].error, f"{name} is listed as loadable"
        assert not by_folder[name].loadable


@FUZZ
@given(data=st.data())
def test_catalog_never_fails_a_scan(
    real_file: bytes, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    root = tmp_path_factory.mktemp("scan")
    blobs = data.draw(st.lists(hostile(real_file), min_size=1, max_size=3))
    for i, blob in enumerate(blobs):
        folder = root / "fuzz" / f"m{i}-GGUF"
        folder.mkdir(parents=True)
        (folder / f"m{i}-Q4_K_M.gguf").write_bytes(blob)
    models = ModelCatalog(root).scan()
    assert len(models) == len(blobs)
    for model in models:
        assert model.error is None or isinstance(model.error, str)
