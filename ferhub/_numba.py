"""Numba for ferhub's compiled kernels (:mod:`ferhub._mtcnn_kernels`, :mod:`ferhub._png`): the decorator that
compiles and caches them, and the import of Numba's array code without SciPy.

Numba compiles each kernel on its first call in a process and caches the machine code beside the kernel's
module (a read-only install caches in the user's cache folder instead), so later processes load it; where
neither is writable, or the folder's disk takes no more (full, a quota), each process compiles them again
rather than failing (a first detection then took 8.0-8.8 s on AMD EPYC, 2 cores, 2026-12-03, against ~20 ms
from the cache). The kernels avoid ``np.argsort``, which took Numba ~2 s to compile in each kernel that called
it, and each is called with one set of argument types (a kernel compiles once per set: the level-or-canvas
kernels take a region of a C-contiguous array rather than a view, which took 10.6-11.1 s with four kernels
compiled twice). From the cache, a process's first detection
takes 0.25-0.28 s, mostly Numba setting itself up (0.60-0.76 s before, with SciPy's ``linalg`` imported on the
way, which :func:`_import_numba_arrays` avoids, and four kernels loaded twice).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
from collections.abc import Callable
from typing import Any

import numba

log = logging.getLogger(__name__)


class _NoScipyForBlasCheck(importlib.abc.MetaPathFinder):
    """Fails the imports of SciPy made by Numba's BLAS check (``numba.np.arraymath._check_blas``, run when
    that module is imported) in the thread that runs it, and no other import."""

    blocked = False

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] == "scipy" and _in_blas_check(sys._getframe(1)):
            self.blocked = True
            raise ImportError("imported when Numba compiles a function that needs BLAS")
        return None


def _in_blas_check(frame: Any) -> bool:
    while frame is not None:
        code = frame.f_code
        if code.co_name == "_check_blas" and code.co_filename.endswith("arraymath.py"):
            return True
        frame = frame.f_back
    return False


def _import_numba_arrays() -> None:
    """``numba.np.arraymath`` imported without the ``scipy.linalg`` import its BLAS check makes.

    Numba imports that module in every process before it loads the first cached kernel, and the check
    imports ``scipy.linalg`` wherever SciPy is installed (0.24-0.29 s of a ~1.5 s ``ferhub predict`` process
    on AMD EPYC, 2026-12-03); no kernel here uses BLAS. The check's answer is then set to what it would have
    been (SciPy installed), so Numba code that does use BLAS (``np.dot``) imports SciPy when it is compiled
    (``numba.np.linalg.ensure_blas``), as it does anyway."""
    if "numba.np.arraymath" in sys.modules or "scipy.linalg.cython_blas" in sys.modules:
        return  # imported already, or its check finds SciPy's BLAS in place: nothing to keep out
    finder = _NoScipyForBlasCheck()
    sys.meta_path.insert(0, finder)
    try:
        from numba.np import arraymath
    finally:
        sys.meta_path.remove(finder)
    if finder.blocked and hasattr(arraymath, "_HAVE_BLAS"):
        arraymath._HAVE_BLAS = importlib.util.find_spec("scipy") is not None


_import_numba_arrays()


def kernel(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(nogil=True, cache=True, error_model="numpy")``: compiled on first call, releasing the GIL,
    its machine code cached; without the cache where Numba finds no writable folder for it (it raises at
    decoration then) or cannot save into the one it found (:func:`_saved_if_possible`). numpy's error model: a
    float division by zero gives inf or NaN, as in the numpy and torchvision arithmetic the kernels repeat
    (the IoU of two empty boxes is 0 / 0, NaN, above no threshold), where Python's, Numba's default, raised
    ZeroDivisionError; it also compiled the kernels ~0.5 s faster (first detection 9.7 / 10.4 against 10.2 /
    11.0 s, AMD EPYC, alternating) with the same boxes."""

    options = {"nogil": True, "error_model": "numpy", **options}

    def compile_(fn: Callable[..., Any]) -> Any:
        try:
            return _saved_if_possible(numba.njit(cache=True, **options)(fn))
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(**options)(fn)

    return compile_


def _saved_if_possible(dispatcher: Any) -> Any:
    """``dispatcher`` (a cached kernel), whose machine code, saved on its first call, is only logged where it
    cannot be saved. Numba checks the cache folder at decoration (writable) but saves into it later, from
    the call that compiles: a full disk or used-up quota raised ``OSError`` out of the first face detection
    and ended the command. The kernel is compiled by then (Numba adds it before saving), so it runs, as it
    does where no folder is writable. Numba's cache is a private attribute; a Numba without it is left as is.
    """
    cache = getattr(dispatcher, "_cache", None)
    save = getattr(cache, "save_overload", None)
    if save is None:
        return dispatcher

    def save_overload(sig: Any, data: Any) -> None:
        try:
            save(sig, data)
        except OSError as e:
            log.info(
                "could not cache the compiled %s in %s (%s); the next process compiles it again",
                dispatcher.py_func.__name__,
                getattr(cache, "cache_path", "Numba's cache"),
                e.strerror or e,
            )

    cache.save_overload = save_overload
    return dispatcher
