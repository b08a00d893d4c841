"""A fast reader of GGUF headers: the key/value metadata and the tensor infos, never the tensor data.

`gguf.GGUFReader` turns every vocabulary string into numpy objects (seconds for a 262k vocabulary).
This reader reads just the header and walks it with `struct.unpack_from`. It keeps scalars, strings and
string arrays of at most `SMALL_ARRAY_MAX` elements and number arrays of at most `NUMBER_ARRAY_MAX`
(per-layer hyperparameters); larger arrays (token lists, scores, merges) are skipped,
numeric ones by size and string ones by hopping over their length prefixes, and only their length is
kept in `GGUFMetadata.array_lengths`. Little-endian GGUF versions 2 and 3 are supported.

Array values are tuples (immutable), not lists.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Final

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from openlms.store._gguf_cursor import Cursor, GGUFFormatError

__all__ = [
    "GGUFFormatError",
    "GGUFMetadata",
    "TensorInfo",
    "has_gguf_magic",
    "merge_shards",
    "parse_gguf_metadata",
    "read_gguf_metadata",
]

GGUF_MAGIC: Final = b"GGUF"
SUPPORTED_VERSIONS: Final = (2, 3)
SMALL_ARRAY_MAX: Final = 64
NUMBER_ARRAY_MAX: Final = 512  # per-layer hyperparameters (head counts, ...) of up to 512 layers are kept
DEFAULT_ALIGNMENT: Final = 32
MAX_DIMS: Final = 4

Scalar = int | float | bool | str
KVValue = Scalar | tuple[Scalar, ...]

_STRING: Final = 8
_ARRAY: Final = 9
_SCALARS: Final[Mapping[int, struct.Struct]] = MappingProxyType(
    {
        t: struct.Struct("<" + c)
        for t, c in {
            0: "B",
            1: "b",
            2: "H",
            3: "h",
            4: "I",
            5: "i",
            6: "f",
            7: "?",
            10: "Q",
            11: "q",
            12: "d",
        }.items()
    }
)
_MIN_KV_BYTES: Final = 8 + 4 + 1  # empty key, value type, one-byte value
_MIN_TENSOR_INFO_BYTES: Final = 8 + 4 + 4 + 8  # empty name, n_dims, type, offset


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # ggml order: ne[0] first (the reverse of numpy's shape)
    ggml_type: int
    offset: int  # relative to the start of the tensor data

    @property
    def n_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def n_bytes(self) -> int | None:
        """Bytes of tensor data, or None for a ggml type this gguf package does not know."""
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(self.ggml_type)]
        except (ValueError, KeyError):
            return None
        return self.n_elements // block * type_size

    @property
    def type_name(self) -> str:
        try:
            return GGMLQuantizationType(self.ggml_type).name
        except ValueError:
            return f"TYPE_{self.ggml_type}"


@dataclass(frozen=True, slots=True)
class GGUFMetadata:
    """What a GGUF header says. For a split model, see `merge_shards`."""

    version: int
    kv: Mapping[str, KVValue]
    tensor_count: int
    n_params: int
    tensors: tuple[TensorInfo, ...] = field(default=(), repr=False)
    array_lengths: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    tensor_bytes: int | None = None  # None when a tensor has an unknown ggml type
    data_offset: int = 0
    file_size: int = 0

    # -- typed access -------------------------------------------------------------------------------

    def get_str(self, key: str) -> str | None:
        value = self.kv.get(key)
        return value if isinstance(value, str) else None

    def get_int(self, key: str) -> int | None:
        value = self.kv.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def get_bool(self, key: str) -> bool | None:
        value = self.kv.get(key)
        return value if isinstance(value, bool) else None

    def arch_key(self, suffix: str) -> str:
        """`<architecture>.<suffix>`, e.g. `llama.context_length`."""
        return f"{self.architecture or ''}.{suffix}"

    # -- convenience --------------------------------------------------------------------------------

    @property
    def alignment(self) -> int:
        """Of the tensor data (`general.alignment`, checked to be a power of two when read)."""
        return self.get_int("general.alignment") or DEFAULT_ALIGNMENT

    @property
    def architecture(self) -> str | None:
        return self.get_str("general.architecture")

    @property
    def name(self) -> str | None:
        return self.get_str("general.name")

    @property
    def basename(self) -> str | None:
        return self.get_str("general.basename")

    @property
    def size_label(self) -> str | None:
        return self.get_str("general.size_label")

    @property
    def file_type(self) -> int | None:
        return self.get_int("general.file_type")

    @property
    def context_length(self) -> int | None:
        return self.get_int(self.arch_key("context_length"))

    @property
    def embedding_length(self) -> int | None:
        return self.get_int(self.arch_key("embedding_length"))

    @property
    def block_count(self) -> int | None:
        return self.get_int(self.arch_key("block_count"))

    @property
    def pooling_type(self) -> int | None:
        return self.get_int(self.arch_key("pooling_type"))

    @property
    def causal_attention(self) -> bool | None:
        return self.get_bool(self.arch_key("attention.causal"))

    @property
    def chat_template(self) -> str | None:
        return self.get_str("tokenizer.chat_template")

    @property
    def vocab_size(self) -> int | None:
        return self.array_lengths.get("tokenizer.ggml.tokens")

    @property
    def split_count(self) -> int | None:
        return self.get_int("split.count")

    @property
    def quantization(self) -> str | None:
        """ "Q4_K_M", "F16", ... from `general.file_type`, else the type holding most weights."""
        file_type = self.file_type
        if file_type is not None:
            try:
                name = LlamaFileType(file_type).name
            except ValueError:
                name = "GUESSED"
            if name != "GUESSED":
                return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        return self.dominant_tensor_type

    @property
    def dominant_tensor_type(self) -> str | None:
        """The ggml type holding the most elements, not counting F32 unless everything is F32."""
        totals: dict[str, int] = {}
        for tensor in self.tensors:
            totals[tensor.type_name] = totals.get(tensor.type_name, 0) + tensor.n_elements
        if len(totals) > 1:
            totals.pop("F32", None)
        return max(totals, key=lambda name: totals[name]) if totals else None

    @property
    def bits_per_weight(self) -> float | None:
        if not self.n_params or self.tensor_bytes is None:
            return None
        return round(self.tensor_bytes * 8 / self.n_params, 2)


# ---------------------------------------------------------------------------------------------------
# Public entry points


def read_gguf_metadata(path: Path | str) -> GGUFMetadata:
    """Read a GGUF file's header. Raises `GGUFFormatError` for a bad file and `OSError` for I/O errors."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < 24:
            raise GGUFFormatError(f"{size} bytes is too small to be a GGUF file")
        return _parse(Cursor.over_file(handle, size))


def parse_gguf_metadata(data: bytes) -> GGUFMetadata:
    """Like `read_gguf_metadata`, for a whole file already in memory."""
    if len(data) < 24:
        raise GGUFFormatError(f"{len(data)} bytes is too small to be a GGUF file")
    return _parse(Cursor(data, len(data)))


def has_gguf_magic(path: Path | str) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == GGUF_MAGIC
    except OSError:
        return False


def merge_shards(shards: Sequence[GGUFMetadata]) -> GGUFMetadata:
    """One view of a split model: the first shard's metadata, every shard's tensors."""
    if not shards:
        raise ValueError("merge_shards needs at least one shard")
    first = shards[0]
    sizes = [s.tensor_bytes for s in shards]
    return replace(
        first,
        tensor_count=sum(s.tensor_count for s in shards),
        n_params=sum(s.n_params for s in shards),
        tensors=tuple(t for s in shards for t in s.tensors),
        tensor_bytes=None if any(b is None for b in sizes) else sum(b or 0 for b in sizes),
        file_size=sum(s.file_size for s in shards),
    )


# ---------------------------------------------------------------------------------------------------
# Parsing


def _parse(cur: Cursor) -> GGUFMetadata:
    version = _read_preamble(cur)
    tensor_count, kv_count = cur.u64(), cur.u64()
    cur.need(kv_count, _MIN_KV_BYTES, "key/value count")
    cur.need(tensor_count, _MIN_TENSOR_INFO_BYTES, "tensor count")
    kv: dict[str, KVValue] = {}
    arrays: dict[str, int] = {}
    for _ in range(kv_count):
        key = cur.string()
        value = _read_value(cur, cur.u32(), key, arrays)
        if value is not None:
            kv[key] = value
    tensors = tuple(_read_tensor_info(cur) for _ in range(tensor_count))
    data_offset = _aligned(cur.pos, _alignment(kv))
    tensor_bytes = _check_tensor_data(tensors, data_offset, cur.size)
    return GGUFMetadata(
        version=version,
        kv=MappingProxyType(kv),
        tensor_count=tensor_count,
        n_params=sum(t.n_elements for t in tensors),
        tensors=tensors,
        array_lengths=MappingProxyType(arrays),
        tensor_bytes=tensor_bytes,
        data_offset=data_offset,
        file_size=cur.size,
    )


def _read_preamble(cur: Cursor) -> int:
    magic = bytes(cur.data[0:4])
    if magic != GGUF_MAGIC:
        raise GGUFFormatError(f"bad magic {magic!r}: not a GGUF file (expected {GGUF_MAGIC!r})")
    cur.pos = 4
    version = cur.u32()
    if version in SUPPORTED_VERSIONS:
        return version
    if version & 0xFFFF == 0 and (version >> 24) in SUPPORTED_VERSIONS:
        raise GGUFFormatError("big-endian GGUF files are not supported")
    raise GGUFFormatError(f"unsupported GGUF version {version} (supported: 2 and 3)")


def _read_value(cur: Cursor, vtype: int, key: str, arrays: dict[str, int]) -> KVValue | None:
    if vtype == _STRING:
        return cur.string()
    if vtype == _ARRAY:
        return _read_array(cur, key, arrays)
    st = _SCALARS.get(vtype)
    if st is None:
        raise GGUFFormatError(f"unknown value type {vtype} for key '{key}' at offset {cur.pos - 4}")
    value: KVValue = cur.unpack(st)
    return value


def _read_array(cur: Cursor, key: str, arrays: dict[str, int]) -> tuple[Scalar, ...] | None:
    etype, count = cur.u32(), cur.u64()
    arrays[key] = count
    if etype == _STRING:
        if count <= SMALL_ARRAY_MAX:
            cur.need(count, 8, "string array length")
            return tuple(cur.string() for _ in range(count))
        cur.skip_strings(count)
        return None
    if etype == _ARRAY:
        cur.need(count, 12, "nested array length")
        for _ in range(count):
            _skip_array(cur)
        return None
    st = _SCALARS.get(etype)
    if st is None:
        raise GGUFFormatError(f"unknown array element type {etype} for key '{key}' at offset {cur.pos - 12}")
    cur.need(count, st.size, "array length")
    if count > NUMBER_ARRAY_MAX:
        cur.skip(count * st.size)
        return None
    return cur.unpack_many(st.format[-1], count, st.size)


def _skip_array(cur: Cursor) -> None:
    etype, count = cur.u32(), cur.u64()
    if etype == _STRING:
        cur.skip_strings(count)
    elif etype == _ARRAY:
        cur.need(count, 12, "nested array length")
        for _ in range(count):
            _skip_array(cur)
    elif (st := _SCALARS.get(etype)) is not None:
        cur.need(count, st.size, "array length")
        cur.skip(count * st.size)
    else:
        raise GGUFFormatError(f"unknown array element type {etype} at offset {cur.pos - 12}")


def _read_tensor_info(cur: Cursor) -> TensorInfo:
    name = cur.string()
    n_dims = cur.u32()
    if n_dims > MAX_DIMS:
        raise GGUFFormatError(f"tensor '{name}' has {n_dims} dimensions (at most {MAX_DIMS})")
    shape = tuple(cur.u64() for _ in range(n_dims))
    ggml_type = cur.u32()
    return TensorInfo(name=name, shape=shape, ggml_type=ggml_type, offset=cur.u64())


def _alignment(kv: Mapping[str, KVValue]) -> int:
    value = kv.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value & (value - 1):
        raise GGUFFormatError(f"general.alignment must be a power of two, not {value!r}")
    return value


def _aligned(offset: int, alignment: int) -> int:
    return offset + (-offset % alignment)


def _check_tensor_data(tensors: Sequence[TensorInfo], data_offset: int, size: int) -> int | None:
    """Total tensor bytes (None if a type is unknown); raises if the data runs past the end of the file."""
    total, end, known = 0, 0, True
    for tensor in tensors:
        nbytes = tensor.n_bytes
        if nbytes is None:
            known = False
            continue
        total += nbytes
        end = max(end, tensor.offset + nbytes)
    if data_offset + end > size:
        raise GGUFFormatError(
            f"truncated: the tensor data ends at offset {data_offset + end} but the file has {size} bytes"
        )
    return total if known else None
