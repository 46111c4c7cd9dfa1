"""Zip archives from strangers: checked before anything is inflated, members streamed under caps.

A zip's central directory declares every member's sizes, so entry count, member size, total size and
compression ratio are all checked before a single byte is decompressed. Reading then streams each member in
chunks and counts what actually comes out, so an archive whose headers lie is stopped at the cap too; no
member is ever inflated whole into memory first.

>>> with SafeZip("faces.zip", ArchiveLimits(max_members=5000)) as z:     # doctest: +SKIP
...     data = z.read(z.names()[0])
"""

from __future__ import annotations

import os
import struct
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ferhub.errors import ArchiveRefused

_CHUNK = 1 << 16
MiB = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on one archive. The defaults admit real datasets (FER2013 as images is ~36k small members);
    a public server sets tighter ones (``ferhub.ui.visitors``)."""

    max_members: int = 200_000
    max_member_bytes: int = 256 * MiB
    max_total_bytes: int = 64 * 1024 * MiB
    # uncompressed / compressed; photos barely compress (JPEG, PNG ~1x, BMP a few x), bombs reach 1000x
    max_ratio: float = 100.0
    # members this small are never refused for their ratio (a blank 48x48 BMP compresses 50x, harmlessly)
    ratio_floor_bytes: int = MiB


def _short(name: str, limit: int = 80) -> str:
    """A member name fit for a message (names come from the archive's author and can be anything)."""
    return repr(name if len(name) <= limit else name[: limit - 3] + "...")


def _size(n: float) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{int(n):,} bytes"


def _declared_entries(path: Path) -> int | None:
    """The entry count a zip's end record declares (APPNOTE 4.3.16; 4.3.14-15 past 65,535 entries), read from
    its last 64 KiB. ``zipfile`` parses the whole central directory first: 250,000 entries cost seconds and
    ~150 MB before any count could be checked. None when no end record is found (zipfile then reports it)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - (22 + 0xFFFF + 20), 0))
            tail = f.read()
            at = tail.rfind(b"PK\x05\x06")
            if at < 0 or len(tail) - at < 22:
                return None
            entries = struct.unpack_from("<H", tail, at + 10)[0]
            if entries == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
                f.seek(struct.unpack_from("<Q", tail, at - 12)[0])  # the zip64 end record's offset
                record = f.read(40)
                if len(record) == 40 and record[:4] == b"PK\x06\x06":
                    entries = struct.unpack_from("<Q", record, 32)[0]
            return entries
    except OSError:
        return None  # unreadable: zipfile's own error says so


class SafeZip:
    """A zip file opened for reading under :class:`ArchiveLimits` (see the module docstring).

    Safe to share between threads (reads are serialised) and across ``fork`` (reopened in a new process).
    """

    def __init__(self, path: str | os.PathLike, limits: ArchiveLimits | None = None) -> None:
        self.path = Path(path)
        self.limits = limits or ArchiveLimits()
        self._lock = threading.Lock()
        self._zip: zipfile.ZipFile | None = None
        self._pid = -1
        self._check_count(_declared_entries(self.path))  # before zipfile builds an object per entry
        zf = self._file()
        infos = zf.infolist()
        self._check(infos)
        # every file entry in archive order: a name the archive holds twice is two entries (read_entry), of
        # which read(name) gives the last, as zipfile does
        self._entries = [i for i in infos if not i.is_dir()]
        self._infos = {i.filename: i for i in self._entries}

    def _check(self, infos: list[zipfile.ZipInfo]) -> None:
        lim, name = self.limits, self.path.name
        self._check_count(len(infos))
        total = 0
        for info in infos:
            if info.flag_bits & 0x1:
                raise ArchiveRefused(
                    f"{name}: {_short(info.filename)} is encrypted; zip the images without a password"
                )
            if info.file_size > lim.max_member_bytes:
                raise ArchiveRefused(
                    f"{name}: {_short(info.filename)} inflates to {_size(info.file_size)}; the limit for one"
                    f" file is {_size(lim.max_member_bytes)}"
                )
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > lim.ratio_floor_bytes and ratio > lim.max_ratio:
                raise ArchiveRefused(
                    f"{name}: {_short(info.filename)} expands {ratio:,.0f}x (limit {lim.max_ratio:g}x): it"
                    " looks like a zip bomb, not a photo; zip the image files themselves"
                )
            total += info.file_size
        if total > lim.max_total_bytes:
            raise ArchiveRefused(
                f"{name} inflates to {_size(total)} in all; the limit here is {_size(lim.max_total_bytes)}. "
                "Evaluate on a smaller sample of the images."
            )

    def _check_count(self, entries: int | None) -> None:
        if entries is not None and entries > self.limits.max_members:
            raise ArchiveRefused(
                f"{self.path.name} holds {entries:,} entries; the limit here is {self.limits.max_members:,}. "
                "Evaluate on a smaller sample of the images."
            )

    def _file(self) -> zipfile.ZipFile:
        # a ZipFile handle must not cross fork(); reopen in each process
        if self._zip is None or self._pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as e:
                raise ArchiveRefused(f"{self.path.name} is not a readable zip file ({e})") from e
            self._pid = os.getpid()
        return self._zip

    def names(self) -> list[str]:
        """Member file names (folders left out), one per entry in archive order: a name the archive holds
        twice is listed twice, and ``names()[i]`` is the name of :meth:`read_entry` ``(i)``."""
        return [i.filename for i in self._entries]

    def read(self, name: str) -> bytes:
        """One member's bytes, streamed: refused as soon as more comes out than its header declared or a cap
        allows, so a lying header costs at most one cap's worth of work. (Reading never passes the total
        cap either: each member stops at its declared size, and the declared sizes were checked.) A name held
        twice reads the last entry of that name (as ``zipfile`` and ``unzip`` do); :meth:`read_entry` reads
        any."""
        info = self._infos.get(name)
        if info is None:
            raise KeyError(f"{self.path.name} has no member {_short(name)}")
        return self._read(info)

    def read_entry(self, index: int) -> bytes:
        """The bytes of file entry ``index`` (in :meth:`names` order), streamed as :meth:`read` does."""
        if not 0 <= index < len(self._entries):
            raise IndexError(f"{self.path.name} has {len(self._entries)} file entries, not {index + 1}")
        return self._read(self._entries[index])

    def _read(self, info: zipfile.ZipInfo) -> bytes:
        name = info.filename
        cap = min(info.file_size, self.limits.max_member_bytes)
        parts, got = [], 0
        with self._lock:
            try:
                with self._file().open(info) as member:
                    while chunk := member.read(min(_CHUNK, cap + 1 - got)):
                        got += len(chunk)
                        if got > cap:
                            raise ArchiveRefused(
                                f"{self.path.name}: {_short(name)} inflates past the {_size(cap)} its header"
                                " declares"
                            )
                        parts.append(chunk)
            except (zipfile.BadZipFile, EOFError, NotImplementedError) as e:  # CRC, truncation, compression
                raise ArchiveRefused(f"{self.path.name}: {_short(name)} cannot be read ({e})") from e
        return b"".join(parts)

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_zip": None, "_pid": -1, "_lock": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
