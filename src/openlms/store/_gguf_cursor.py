"""The bounds-checked read position used by the GGUF header reader (see `gguf_meta`).

The header is read with plain reads into a growing buffer, not memory-mapped: a file truncated by
someone else while it is read then gives a `GGUFFormatError`, never a SIGBUS, and only the header
(about 6 MB for a 262k-token vocabulary) is ever read.
"""

from __future__ import annotations

import struct
from itertools import repeat
from typing import Any, BinaryIO, Final

U32: Final = struct.Struct("<I")
U64: Final = struct.Struct("<Q")
FIRST_READ: Final = 1 << 20
MAX_STRING: Final = 64 << 20  # longer than any chat template; a crafted length never allocates more
_BLOCK: Final = 4096  # strings hopped between buffer checks

_OutOfBuffer = (struct.error, OverflowError)


class GGUFFormatError(ValueError):
    """The file is not a GGUF file this reader understands, or it is corrupt or truncated."""


class Cursor:
    """A read position over a file's first bytes; reads past the buffer read more of the file."""

    __slots__ = ("data", "size", "pos", "_handle")

    def __init__(self, data: bytes, size: int, handle: BinaryIO | None = None) -> None:
        self.data = bytearray(data)
        self.size = size  # of the whole file
        self.pos = 0
        self._handle = handle  # positioned just after `data`

    @classmethod
    def over_file(cls, handle: BinaryIO, size: int) -> Cursor:
        return cls(handle.read(min(size, FIRST_READ)), size, handle)

    def truncated(self, at: int | None = None) -> GGUFFormatError:
        where = self.pos if at is None else at
        return GGUFFormatError(f"truncated at offset {where} (the file has {self.size} bytes)")

    def ensure(self, end: int) -> None:
        """Make the buffer cover bytes [0, end), reading more of the file (at least doubling)."""
        have = len(self.data)
        if end <= have:
            return
        if end > self.size or self._handle is None:
            raise self.truncated(min(end, self.size))
        target = min(self.size, max(end, 2 * have))
        chunk = self._handle.read(target - have)
        self.data += chunk
        if len(self.data) < end:  # the file shrank while it was read
            raise self.truncated(len(self.data))

    def unpack(self, st: struct.Struct) -> Any:
        self.ensure(self.pos + st.size)
        (value,) = st.unpack_from(self.data, self.pos)
        self.pos += st.size
        return value

    def unpack_many(self, code: str, count: int, item_size: int) -> tuple[Any, ...]:
        self.ensure(self.pos + count * item_size)
        values = struct.unpack_from(f"<{count}{code}", self.data, self.pos)
        self.pos += count * item_size
        return values

    def u32(self) -> int:
        return int(self.unpack(U32))

    def u64(self) -> int:
        return int(self.unpack(U64))

    def string(self) -> str:
        length = self.u64()
        if length > MAX_STRING:
            raise GGUFFormatError(f"absurd string length {length} at offset {self.pos - 8} (corrupt file)")
        end = self.pos + length
        self.ensure(end)
        text = self.data[self.pos : end].decode("utf-8", errors="replace")
        self.pos = end
        return text

    def need(self, count: int, each: int, what: str) -> None:
        """Refuse counts that cannot fit in what is left of the file."""
        if count * each > self.size - self.pos:
            raise GGUFFormatError(
                f"absurd {what} {count} at offset {self.pos}: "
                f"the {self.size}-byte file cannot hold that many (corrupt or truncated)"
            )

    def skip(self, nbytes: int) -> None:
        if self.pos + nbytes > self.size:
            raise self.truncated()
        self.pos += nbytes

    def skip_strings(self, count: int) -> None:
        """Hop over `count` length-prefixed strings: the hot loop for vocabularies.

        Strings are hopped in blocks over the buffer as it is; a block that runs off the end of the
        buffer is redone after reading more of the file.
        """
        self.need(count, 8, "string array length")
        unpack, pos, remaining = U64.unpack_from, self.pos, count
        view = memoryview(self.data)  # faster to unpack from than the bytearray itself
        try:
            while remaining:
                block, start = min(remaining, _BLOCK), pos
                try:
                    for _ in repeat(None, block):
                        pos += 8 + unpack(view, pos)[0]
                except _OutOfBuffer:
                    if pos + 8 > self.size:
                        raise self.truncated(min(pos, self.size)) from None
                    view.release()  # a bytearray cannot grow while viewed
                    self.ensure(pos + 8)
                    view, pos = memoryview(self.data), start
                    continue
                remaining -= block
        finally:
            view.release()
        if pos > self.size:
            raise self.truncated(self.size)
        self.pos = pos
