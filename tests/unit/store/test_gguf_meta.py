from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest

from openlms.store.gguf_meta import (
    NUMBER_ARRAY_MAX,
    SMALL_ARRAY_MAX,
    GGUFFormatError,
    GGUFMetadata,
    merge_shards,
    parse_gguf_metadata,
    read_gguf_metadata,
)
from tests.support.tiny_gguf import CHATML, write_tiny_llama_gguf


def _reader_value(field: gguf.ReaderField) -> object:
    value = field.contents()
    return tuple(value) if isinstance(value, list) else value


def assert_matches_reader(path: Path, meta: GGUFMetadata) -> None:
    """Every key, small array, array length and tensor info agrees with gguf's own reader."""
    reader = gguf.GGUFReader(path)
    for key, field in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        if field.types[0] == gguf.GGUFValueType.ARRAY:
            assert meta.array_lengths[key] == len(field.data), key
            strings = field.types[-1] == gguf.GGUFValueType.STRING
            if len(field.data) > (SMALL_ARRAY_MAX if strings else NUMBER_ARRAY_MAX):
                assert key not in meta.kv
                continue
        expected = _reader_value(field)
        if isinstance(expected, float):
            assert meta.kv[key] == pytest.approx(expected), key
        else:
            assert meta.kv[key] == expected, key
    assert meta.tensor_count == len(reader.tensors)
    assert meta.data_offset == reader.data_offset
    assert [t.name for t in meta.tensors] == [t.name for t in reader.tensors]
    assert [t.shape for t in meta.tensors] == [tuple(int(d) for d in t.shape) for t in reader.tensors]
    assert [t.ggml_type for t in meta.tensors] == [int(t.tensor_type) for t in reader.tensors]
    assert meta.n_params == sum(int(t.n_elements) for t in reader.tensors)
    assert meta.tensor_bytes == sum(int(t.n_bytes) for t in reader.tensors)


def test_tiny_file_matches_gguf_reader(tiny_llama: Path) -> None:
    meta = read_gguf_metadata(tiny_llama)
    assert_matches_reader(tiny_llama, meta)
    assert meta.version == 3
    assert meta.architecture == "llama"
    assert meta.name == "Tiny Llama"
    assert meta.context_length == 2048
    assert meta.block_count == 2
    assert meta.embedding_length == 64
    assert meta.chat_template == CHATML
    assert meta.file_type == 0
    assert meta.quantization == "F32"
    assert meta.bits_per_weight == 32.0
    assert meta.size_label is None
    assert meta.pooling_type is None
    assert meta.vocab_size == meta.array_lengths["tokenizer.ggml.tokens"] > SMALL_ARRAY_MAX
    assert "tokenizer.ggml.tokens" not in meta.kv
    assert meta.get_int("tokenizer.ggml.eos_token_id") == 4
    assert meta.get_bool("tokenizer.ggml.add_bos_token") is True
    assert meta.file_size == tiny_llama.stat().st_size


@pytest.mark.slow
def test_real_smollm_matches_gguf_reader(smollm_path: Path) -> None:
    meta = read_gguf_metadata(smollm_path)
    assert_matches_reader(smollm_path, meta)
    assert (meta.architecture, meta.size_label, meta.quantization) == ("llama", "135M", "Q4_1")
    assert meta.context_length == 8192
    assert meta.bits_per_weight == 5.74
    assert meta.vocab_size == 49152
    assert meta.chat_template and "<|im_start|>" in meta.chat_template


def test_gemma_metadata_is_read_in_bounded_memory(gemma_path: Path) -> None:
    """The 262,144-token vocabulary is counted, not decoded into Python strings (its speed is measured
    by the bench, not here)."""
    tracemalloc.start()
    try:
        meta = read_gguf_metadata(gemma_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (meta.architecture, meta.quantization, meta.size_label) == ("gemma3", "Q4_K_M", "270M")
    assert meta.vocab_size == 262144
    assert meta.context_length == 32768
    assert meta.chat_template is None
    assert peak < 32 * 1024 * 1024, f"{peak / 1e6:.0f} MB"  # about 13 MB


def test_parse_bytes_equals_read_file(tiny_llama: Path) -> None:
    assert parse_gguf_metadata(tiny_llama.read_bytes()) == read_gguf_metadata(tiny_llama)


@pytest.mark.parametrize(
    ("file_type", "expected"),
    [
        (0, "F32"),
        (1, "F16"),
        (15, "Q4_K_M"),
        (3, "Q4_1"),
        (30, "IQ4_XS"),
        (32, "BF16"),
        (1024, "F32"),
        (None, "F32"),
    ],
)
def test_quantization_from_file_type(tmp_path: Path, file_type: int | None, expected: str) -> None:
    path = write_tiny_llama_gguf(tmp_path / "m.gguf", n_layer=1, file_type=file_type)
    assert read_gguf_metadata(path).quantization == expected


def test_dominant_tensor_type_ignores_f32_norms(tmp_path: Path) -> None:
    path = tmp_path / "mixed.gguf"
    w = gguf.GGUFWriter(path, "llama")
    w.add_tensor("norm.weight", np.ones(64, np.float32))
    w.add_tensor("big.weight", np.ones((64, 64), np.float16))
    w.add_tensor("small.weight", np.ones((4, 64), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    meta = read_gguf_metadata(path)
    assert meta.file_type is None
    assert meta.quantization == "F16"
    assert meta.n_params == 64 + 64 * 64 + 4 * 64
    assert meta.bits_per_weight == round((64 * 4 + 64 * 64 * 2 + 4 * 64 * 4) * 8 / meta.n_params, 2)


def test_small_arrays_are_kept_and_large_ones_skipped(tmp_path: Path) -> None:
    extra: dict[str, list[Any]] = {
        "test.ints": [1, 2, 3],
        "test.strings": ["a", "bé", ""],
        "test.floats": [0.5, 1.5],
        "test.bools": [True, False],
        "test.many_ints": list(range(NUMBER_ARRAY_MAX + 1)),
        "test.layer_ints": list(range(NUMBER_ARRAY_MAX)),
        "test.many_strings": [f"s{i}" for i in range(SMALL_ARRAY_MAX + 1)],
        "test.edge": list(range(SMALL_ARRAY_MAX)),
    }
    path = tmp_path / "arrays.gguf"
    w = gguf.GGUFWriter(path, "llama")
    for key, values in extra.items():
        w.add_array(key, values)
    w.add_float64("test.f64", 2.25)
    w.add_int64("test.i64", -(2**40))
    w.add_bool("test.flag", False)
    w.add_tensor("x.weight", np.zeros((2, 2), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    meta = read_gguf_metadata(path)
    assert_matches_reader(path, meta)
    assert meta.kv["test.ints"] == (1, 2, 3)
    assert meta.kv["test.strings"] == ("a", "bé", "")
    assert meta.kv["test.bools"] == (True, False)
    assert meta.kv["test.edge"] == tuple(range(SMALL_ARRAY_MAX))
    assert meta.kv["test.layer_ints"] == tuple(range(NUMBER_ARRAY_MAX))
    assert "test.many_ints" not in meta.kv and "test.many_strings" not in meta.kv
    assert meta.array_lengths["test.many_strings"] == SMALL_ARRAY_MAX + 1
    assert (meta.kv["test.f64"], meta.kv["test.i64"], meta.kv["test.flag"]) == (2.25, -(2**40), False)


def test_version_2_is_read(tiny_llama: Path) -> None:
    data = bytearray(tiny_llama.read_bytes())
    data[4:8] = struct.pack("<I", 2)
    assert parse_gguf_metadata(bytes(data)).version == 2


@pytest.mark.parametrize(
    ("version_bytes", "message"),
    [
        (struct.pack("<I", 1), "unsupported GGUF version 1"),
        (struct.pack("<I", 4), "unsupported GGUF version 4"),
        (struct.pack(">I", 3), "big-endian"),
    ],
)
def test_unsupported_versions(tiny_llama: Path, version_bytes: bytes, message: str) -> None:
    data = bytearray(tiny_llama.read_bytes())
    data[4:8] = version_bytes
    with pytest.raises(GGUFFormatError, match=message):
        parse_gguf_metadata(bytes(data))


def test_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "not.gguf"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(GGUFFormatError, match="bad magic"):
        read_gguf_metadata(path)


@pytest.mark.parametrize("size", [0, 3, 23])
def test_too_small(tmp_path: Path, size: int) -> None:
    path = tmp_path / "small.gguf"
    path.write_bytes(b"GGUF\x03\0\0\0" * 3)
    with open(path, "r+b") as handle:
        handle.truncate(size)
    with pytest.raises(GGUFFormatError, match="too small"):
        read_gguf_metadata(path)


def test_truncated_anywhere_is_a_format_error(tiny_llama: Path, tmp_path: Path) -> None:
    data = tiny_llama.read_bytes()
    meta = parse_gguf_metadata(data)
    cuts = [
        24,
        30,
        100,
        1000,
        5000,
        meta.data_offset - 40,
        meta.data_offset,
        meta.data_offset + 10,
        len(data) - 1,
    ]
    for cut in cuts:
        path = tmp_path / f"cut{cut}.gguf"
        path.write_bytes(data[:cut])
        with pytest.raises(GGUFFormatError, match="truncated"):
            read_gguf_metadata(path)


def test_absurd_counts(tiny_llama: Path) -> None:
    data = bytearray(tiny_llama.read_bytes())
    for offset, what in ((8, "tensor count"), (16, "key/value count")):
        patched = bytearray(data)
        patched[offset : offset + 8] = struct.pack("<Q", 2**60)
        with pytest.raises(GGUFFormatError, match=f"absurd {what}"):
            parse_gguf_metadata(bytes(patched))


def test_absurd_array_length(tmp_path: Path) -> None:
    path = tmp_path / "arr.gguf"
    w = gguf.GGUFWriter(path, "llama")
    w.add_array("test.many", [f"s{i}" for i in range(100)])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    data = bytearray(path.read_bytes())
    count_at = data.index(b"test.many") + len("test.many") + 4 + 4  # value type, element type
    assert struct.unpack_from("<Q", data, count_at)[0] == 100
    data[count_at : count_at + 8] = struct.pack("<Q", 2**59)
    with pytest.raises(GGUFFormatError, match="absurd string array length"):
        parse_gguf_metadata(bytes(data))


def test_random_corruption_only_raises_format_errors(tiny_llama: Path) -> None:
    data = tiny_llama.read_bytes()
    header_end = parse_gguf_metadata(data).data_offset
    rng = np.random.default_rng(1)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(300):
        mutated = bytearray(data)
        for pos in rng.integers(4, header_end, size=3):
            mutated[pos] = int(rng.integers(0, 256))
        try:
            parse_gguf_metadata(bytes(mutated))
            outcomes["ok"] += 1
        except GGUFFormatError:
            outcomes["error"] += 1
    assert outcomes["ok"] + outcomes["error"] == 300


def test_merge_shards(tmp_path: Path) -> None:
    whole = read_gguf_metadata(write_tiny_llama_gguf(tmp_path / "whole" / "m.gguf"))
    first = write_tiny_llama_gguf(tmp_path / "split" / "m.gguf", split_max_tensors=8)
    shards = [read_gguf_metadata(p) for p in sorted(first.parent.glob("m-*-of-*.gguf"))]
    assert len(shards) == 3
    merged = merge_shards(shards)
    assert merged.n_params == whole.n_params
    assert merged.tensor_count == whole.tensor_count
    assert merged.tensor_bytes == whole.tensor_bytes
    assert merged.architecture == "llama" and merged.split_count == 3
    with pytest.raises(ValueError):
        merge_shards([])


def test_a_file_that_shrinks_while_read_is_a_format_error(tiny_llama: Path) -> None:
    from openlms.store._gguf_cursor import FIRST_READ, Cursor
    from openlms.store.gguf_meta import _parse

    data = tiny_llama.read_bytes()
    assert len(data) > FIRST_READ // 4
    handle = io.BytesIO(data[:1000])
    cursor = Cursor(handle.read(100), size=len(data), handle=handle)  # the file claims more than it has
    with pytest.raises(GGUFFormatError, match="truncated at offset 1000"):
        _parse(cursor)


def test_reads_only_the_header(tiny_llama: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.gguf"
    meta = read_gguf_metadata(tiny_llama)
    with open(big, "wb") as handle:
        handle.write(tiny_llama.read_bytes())
        handle.truncate(64 * 1024 * 1024)  # sparse tail: the reader must not need it
    reads: list[int] = []
    real_open = open

    class CountingFile(io.FileIO):
        def readinto(self, buffer: Any) -> int | None:
            count = super().readinto(buffer)
            reads.append(count or 0)
            return count

    def counting_open(path: Path, mode: str = "r") -> object:
        return io.BufferedReader(CountingFile(path, mode)) if path == big else real_open(path, mode)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("builtins.open", counting_open)
        assert read_gguf_metadata(big).n_params == meta.n_params
    assert 0 < sum(reads) <= 2 * 1024 * 1024
