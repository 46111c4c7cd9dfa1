"""The process's glibc, for the app's explicit native-memory tuning (``ferhub.ui.state.tune_native_memory``).

ferhub sets nothing in glibc's malloc on import. An earlier version raised glibc's mmap and trim thresholds at
import so that the torch detection path's MB-sized buffers stayed mapped between calls (1.26x faster
detection on AMD EPYC VMs); the default CPU path now runs in ONNX Runtime, whose arena keeps its own buffers,
and measured here it faults no pages in per call with glibc's defaults (``bench/detect.py``).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Any

# from glibc's <malloc.h>
M_ARENA_MAX = -8


def glibc() -> ctypes.CDLL | None:
    """The process's glibc, or ``None`` on other C libraries (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def resident_bytes() -> int | None:
    """This process's resident memory in bytes (``/proc/self/statm``), or ``None`` where it cannot be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc 2.33 and later)."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in [
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        ]
    ]


def free_bytes(libc: Any) -> int | None:
    """The bytes malloc holds free in its arenas (``mallinfo2().fordblks``, pages already handed back
    included), or ``None`` where glibc has no ``mallinfo2``."""
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    return int(libc.mallinfo2().fordblks)


class Trimmer:
    """Hands the memory malloc holds free back to the OS (``malloc_trim``), except after a trim that gave back
    less than ``slack`` bytes: then only once malloc holds more than ``slack`` bytes more free than after that
    trim, or the process has grown by more than ``slack`` since the step before.

    A trim on every tick of a timer also released the pages that each request's buffers reuse, so a request
    coming after a trim faulted them in again: ``classify`` on a 640x480 photo took 26.6 against 22.1 ms,
    1,372 page faults against 0 (in-process, medians of 30; AMD EPYC, 2026-12-05), which a server's sporadic
    visitors (a request every 10 s or more) paid on nearly every request; a trim then gives back ~6 MB. A
    burst of concurrent requests grows the process quickly and frees tens of MB when it ends (malloc's free
    bytes rise): it is trimmed during and after, as before. A slow growth of a few MB between steps (new
    worker threads, the pages a trim gave back faulted in again) does not restart the trims.
    """

    def __init__(
        self,
        libc: Any,
        slack: int = 8 << 20,
        resident: Callable[[], int | None] = resident_bytes,
        free: Callable[[], int | None] | None = None,
    ) -> None:
        self.libc, self.slack, self.resident = libc, slack, resident
        self.free = free if free is not None else (lambda: free_bytes(libc))
        self.held: int | None = None  # malloc's free bytes after a trim that gave back little
        self.size = resident()  # the process's resident size at the last step

    def _grew(self, value: int | None, before: int | None) -> bool:
        return value is None or before is None or value > before + self.slack

    def step(self) -> bool:
        """Trim unless there is little to give back (see the class); True when it trimmed."""
        free, size, before = self.free(), self.resident(), self.size
        self.size = size
        if self.held is not None and not (self._grew(free, self.held) or self._grew(size, before)):
            return False
        self.libc.malloc_trim(0)
        self.size = self.resident()
        gave_little = size is not None and self.size is not None and size - self.size < self.slack
        self.held = self.free() if gave_little else None
        return True
