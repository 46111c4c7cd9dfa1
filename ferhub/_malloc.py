"""glibc malloc settings for ferhub's allocation pattern: the same few MB-sized tensors, freed and made again.

glibc serves blocks above its mmap threshold (128 KiB at first, raised adaptively up to 32 MiB) with ``mmap``
and hands the top of its heap back to the OS once more than the trim threshold (2x the mmap threshold) is
free. Each detection allocates and frees activations of 0.1-4 MB (MTCNN's pyramid, R-/O-net batches), so
memory went back to the OS after one call and was faulted in again, page by page, in the next. Page faults
are expensive in a virtual machine: measured on these 2-core VMs, R-net on 69 crops took 8.8 ms with glibc's
defaults and 4.7 ms with the settings below, and a whole 640x480 detection ran 1.26x as fast
(``python bench/detect.py`` compares both in one run).

:func:`tune` keeps blocks up to 32 MiB (glibc's maximum for this setting) inside the heap and lets up to
128 MiB of free heap stay mapped. A long-running server should still call ``malloc_trim`` now and then (the
app does, see ``ferhub.ui.state.tune_native_memory``) so memory freed after a burst goes back.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Mapping

# from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 128 << 20

# a user's own glibc malloc settings win over ferhub's
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def glibc() -> ctypes.CDLL | None:
    """The process's glibc, or ``None`` on other C libraries (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt") else None


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether :func:`tune` should act: not when ``FERHUB_MALLOC=default`` or the user tuned malloc already."""
    if environ.get("FERHUB_MALLOC", "").strip().lower() == "default":
        return False
    if any(name in environ for name in _USER_SETTINGS):
        return False
    return "malloc" not in environ.get("GLIBC_TUNABLES", "")


def tune() -> bool:
    """Apply the thresholds (see the module docstring); ``True`` when glibc took them."""
    if not wanted():
        return False
    libc = glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
