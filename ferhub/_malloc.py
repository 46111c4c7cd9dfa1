"""The process's glibc, for the app's explicit native-memory tuning (``ferhub.ui.state.tune_native_memory``).

ferhub sets nothing in glibc's malloc on import. An earlier version raised glibc's mmap and trim thresholds at
import so that the torch detection path's MB-sized buffers stayed mapped between calls (1.26x faster
detection on AMD EPYC VMs); the default CPU path now runs in ONNX Runtime, whose arena keeps its own buffers,
and measured here it faults no pages in per call with glibc's defaults (``bench/detect.py``).
"""

from __future__ import annotations

import ctypes

# from glibc's <malloc.h>
M_ARENA_MAX = -8


def glibc() -> ctypes.CDLL | None:
    """The process's glibc, or ``None`` on other C libraries (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None
