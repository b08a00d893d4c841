"""Crafted GGUF files for tests of the header checks: a tiny llama GGUF with one integer of its header
changed in place (the file stays otherwise valid), as an attacker's file would be."""

from __future__ import annotations

import struct
from pathlib import Path

from tests.support.tiny_gguf import write_tiny_llama_gguf

_INT_FORMATS = {4: "<I", 5: "<i", 10: "<Q", 11: "<q"}  # GGUF value types: u32, i32, u64, i64


def patch_int(path: Path, key: str, value: int) -> Path:
    """Overwrite the integer value of `key` in `path`'s header (same type, so the layout is unchanged)."""
    data = bytearray(path.read_bytes())
    needle = struct.pack("<Q", len(key)) + key.encode()
    at = data.index(needle) + len(needle)
    (vtype,) = struct.unpack_from("<I", data, at)
    struct.pack_into(_INT_FORMATS[vtype], data, at + 4, value)
    path.write_bytes(bytes(data))
    return path


def crafted_llama(path: Path, key: str, value: int) -> Path:
    """A tiny llama GGUF whose header says `key = value`."""
    return patch_int(write_tiny_llama_gguf(path), key, value)
