"""Read `.safetensors` files with numpy only (no torch, no safetensors package).

Format: an 8-byte little-endian header length N, N bytes of JSON (`name -> {dtype, shape, data_offsets}`
plus an optional `__metadata__`), then the raw tensor data. Tensors come back as read-only views of one
memory map of the file; BF16 tensors are widened to float32.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt

MAX_HEADER_BYTES: Final = 100 * 1024 * 1024

_DTYPES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "F64": "<f8",
        "F32": "<f4",
        "F16": "<f2",
        "BF16": "<u2",
        "I64": "<i8",
        "I32": "<i4",
        "I16": "<i2",
        "I8": "i1",
        "U8": "u1",
        "BOOL": "?",
    }
)


class SafetensorsError(ValueError):
    """The file is not a valid safetensors file."""


def read_safetensors(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Every tensor of the file, by name, as numpy arrays backed by a read-only memory map."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise SafetensorsError(f"{path.name}: too small to be a safetensors file")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > min(MAX_HEADER_BYTES, size - 8):
            raise SafetensorsError(f"{path.name}: header length {header_len} is absurd ({size}-byte file)")
        header = _parse_header(handle.read(header_len), path.name)
    data = np.memmap(path, dtype=np.uint8, mode="r")
    base = 8 + header_len
    return {name: _tensor(data, base, name, info, path.name) for name, info in header.items()}


def _parse_header(raw: bytes, file_name: str) -> dict[str, dict[str, Any]]:
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise SafetensorsError(f"{file_name}: the header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise SafetensorsError(f"{file_name}: the header is not a JSON object")
    header.pop("__metadata__", None)
    return header


def _tensor(data: npt.NDArray[np.uint8], base: int, name: str, info: Any, file_name: str) -> npt.NDArray[Any]:
    try:
        dtype_name, shape = info["dtype"], tuple(int(d) for d in info["shape"])
        begin, end = (int(x) for x in info["data_offsets"])
    except (TypeError, KeyError, ValueError) as exc:
        raise SafetensorsError(f"{file_name}: malformed entry for tensor '{name}'") from exc
    dtype = _DTYPES.get(dtype_name)
    if dtype is None:
        raise SafetensorsError(f"{file_name}: tensor '{name}' has unsupported dtype {dtype_name}")
    count = int(np.prod(shape, dtype=np.int64))
    if not 0 <= begin <= end <= data.size - base or end - begin != count * np.dtype(dtype).itemsize:
        raise SafetensorsError(f"{file_name}: tensor '{name}' has bad data offsets")
    array = data[base + begin : base + end].view(dtype).reshape(shape)
    if dtype_name == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array


def write_safetensors(path: Path, tensors: Mapping[str, npt.NDArray[Any]]) -> None:
    """Write float32/float16/int64 tensors as safetensors (used to build test fixtures)."""
    names = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64", np.dtype("<i4"): "I32"}
    header: dict[str, Any] = {}
    blobs: list[bytes] = []
    offset = 0
    for name, array in tensors.items():
        blob = np.ascontiguousarray(array).tobytes()
        header[name] = {
            "dtype": names[array.dtype.newbyteorder("<")],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        for blob in blobs:
            handle.write(blob)
