"""Real zip bombs for tests, made in a second instead of deflating a gigabyte.

Deflating zeros with a full flush after each MiB gives the same compressed block for every MiB, so a member of
N MiB of zeros is that block N times plus the stream's end: a genuine deflate stream any unzip inflates to N
MiB. The zip around it is written field by field (APPNOTE 4.3.7, 4.3.12, 4.3.16).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

MiB = 1 << 20


def _zeros_stream(mib: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``mib`` MiB of zeros and its CRC-32."""
    chunk = bytes(MiB)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(chunk) + c.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
    return block * mib + c.flush(), crc


def write_bomb(path: Path, members: Sequence[tuple[str, int | bytes]]) -> Path:
    """A zip whose members are ``(name, MiB of zeros)`` bombs or ``(name, bytes)`` stored as they are."""
    local, central = bytearray(), bytearray()
    for name, content in members:
        raw = name.encode()
        if isinstance(content, bytes):
            data, crc, size, method = content, zlib.crc32(content), len(content), 0
        else:
            (data, crc), size, method = _zeros_stream(content), content * MiB, 8
        offset = len(local)
        local += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0
        )
        local += raw + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(data),
            size,
            len(raw),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += raw
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path
