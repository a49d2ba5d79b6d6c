"""A gzip member written in parts, byte for byte what `gzip.GzipFile` writes (no name, no time)."""

from __future__ import annotations

import struct
import zlib


class GzipMember:
    """One gzip member written in parts: the bytes of ``gzip.GzipFile(filename="", mtime=0)`` at the same level.

    `compress` returns the compressed bytes of a part (the header first), `finish` the rest and the trailer,
    so callers choose where the bytes go and when.
    """

    def __init__(self, compresslevel: int) -> None:
        """Start a member at ``compresslevel`` (1 to 9)."""
        xfl = b"\002" if compresslevel == 9 else b"\004" if compresslevel == 1 else b"\000"
        self._header = b"\037\213\010\000" + struct.pack("<L", 0) + xfl + b"\377"
        self._z = zlib.compressobj(compresslevel, zlib.DEFLATED, -zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL, 0)
        self._crc = 0
        self._size = 0

    def compress(self, data: bytes) -> bytes:
        """Compress one part; the member's header comes before the first part's bytes."""
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        out = self._header + self._z.compress(data) if self._header else self._z.compress(data)
        self._header = b""
        return out

    def finish(self) -> bytes:
        """The last compressed bytes and the trailer (CRC-32 and size)."""
        head, self._header = self._header, b""
        return head + self._z.flush() + struct.pack("<LL", self._crc, self._size & 0xFFFFFFFF)
