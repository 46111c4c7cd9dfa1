"""Make torchvision importable beside a torch whose build its compiled ops do not match; import ferhub's
optional packages (its extras) with the ``pip install`` that brings them (:func:`import_extra`).

The only torchvision for torch 2.13 is a CUDA build; on the CPU torch its ``_C`` extension does not load and
``import torchvision`` fails with ``operator torchvision::nms does not exist`` (its fake-kernel registrations
look the op up at import time). ferhub needs exactly one of those ops, NMS (MTCNN uses it), so where the
extension does not load we define ``torchvision::nms`` with a vectorised CPU kernel (and declare ``qnms``,
which torchvision's registrations also look up) before torchvision is imported, then tell torchvision its ops
are present. Where the compiled ops load, this module does nothing.

Import :func:`import_torchvision` (or this module) before ``torchvision`` or ``facenet_pytorch`` anywhere in
ferhub.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from ferhub.errors import MissingExtraError  # importable from here too: its home before errors.py

if TYPE_CHECKING:  # importing this module must not import torch (~1.2 s): ONNX detection imports it
    import torch

_BLOCK = 512  # boxes per block of the overlap matrix: bounds memory at _BLOCK x N floats
_state: dict[str, bool] = {}


def threshold_for(dtype: np.dtype, iou_threshold: float) -> float:
    """A threshold ``t`` in ``dtype`` with ``iou > t`` (in ``dtype``) exactly when ``iou > iou_threshold``.

    torchvision compares a float IoU with the double threshold; torch would round the threshold to the IoU's
    dtype, which can round it up past an IoU equal to the rounded value. Rounding down instead is exact.
    """
    if dtype == np.float64:
        return iou_threshold
    t = np.array(iou_threshold, dtype=np.float32)
    if float(t) > iou_threshold:
        t = np.nextafter(t, np.float32(-np.inf))
    return float(t)


def keep_greedy(over: np.ndarray, suppressed: np.ndarray) -> list[int]:
    """The greedy pass over boxes sorted by decreasing score: row ``i`` of ``over`` (boolean) marks the
    boxes box ``i`` suppresses, among ``suppressed`` (the same boxes, updated in place). Each box is visited
    once and only a kept one does vector work; returns the kept rows."""
    keep: list[int] = []
    for row in range(over.shape[0]):
        if not suppressed[row]:
            keep.append(row)
            suppressed[row + 1 :] |= over[row, row + 1 :]
    return keep


def greedy_sorted(boxes: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy NMS over ``(x1, y1, x2, y2)`` boxes already sorted by decreasing score: the kept rows.

    Boxes are taken a block at a time: one matrix operation gives the block's overlaps with every later box,
    then a pass over the block's rows visits each box once, and only a kept box does vector work (it
    suppresses everything it overlaps). Memory stays at ``_BLOCK`` x N booleans. The arithmetic is
    torchvision's, operation for operation, in the boxes' dtype, and numpy's, single-threaded: on a busy
    2-core machine threaded small ops can wait on each other for longer than this whole kernel takes.
    """
    threshold = threshold_for(boxes.dtype, iou_threshold)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    n = boxes.shape[0]
    suppressed = np.zeros(n, dtype=bool)
    keep: list[int] = []
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        if suppressed[start:stop].all():
            continue
        a, c = boxes[start:stop, None, :], boxes[None, start:, :]
        w = np.clip(np.minimum(a[..., 2], c[..., 2]) - np.maximum(a[..., 0], c[..., 0]), 0, None)
        h = np.clip(np.minimum(a[..., 3], c[..., 3]) - np.maximum(a[..., 1], c[..., 1]), 0, None)
        inter = w * h
        over = inter / (area[start:stop, None] + area[None, start:] - inter) > threshold
        # ``suppressed[start:]`` is a view: the pass's updates land in ``suppressed``
        keep += [start + row for row in keep_greedy(over, suppressed[start:])]
    return keep


def nms_cpu(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS with exactly torchvision's result (its arithmetic, in the boxes' dtype)."""
    import torch

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    device = boxes.device
    order = scores.argsort(descending=True)
    b = boxes[order].cpu()
    if not b.is_floating_point():
        b = b.float()
    keep = greedy_sorted(b.numpy(), iou_threshold)
    return order[torch.tensor(keep, dtype=torch.long, device=device)]


def _install_hint(package: str, extra: str | None) -> str:
    """The ``pip install`` that brings ``package``: ferhub's ``extra``, or, for a dependency of ferhub itself
    (``extra`` None), ferhub installed again."""
    if extra is None:
        return f"pip install --force-reinstall ferhub (or pip install {package})"
    return f"pip install 'ferhub[{extra}]' (or pip install {package})"


def missing_package(package: str, extra: str | None, needed_for: str) -> MissingExtraError:
    """The error saying ``needed_for`` needs ``package`` (its name on PyPI), which is not installed, and
    which ``pip install`` brings it (see :func:`import_extra`); for callers that look a package up without
    importing it."""
    return MissingExtraError(
        f"{needed_for} needs {package}, which is not installed. Fix: {_install_hint(package, extra)}"
    )


def import_extra(module: str, extra: str | None, needed_for: str, package: str | None = None) -> ModuleType:
    """Import ``module`` of an optional package, else raise :class:`MissingExtraError` saying that
    ``needed_for`` needs it and which ``pip install`` brings it: ``ferhub[extra]``, or ``package`` (its name
    on PyPI; default the top-level module's name) alone. ``extra`` None: a dependency of ferhub itself, which
    a broken install lacks.

    A ferhub error, so the CLI ends with its one line and exit 1, not as a bug of ferhub's (exit 4).
    """
    top = module.partition(".")[0]
    package = package or top
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if _not_installed(top):
            raise missing_package(package, extra, needed_for) from e
        # installed, but broken or of a version without ``module`` (or one of its own dependencies missing)
        upgrade = "pip install --upgrade " + ("ferhub" if extra is None else f"'ferhub[{extra}]'")
        raise MissingExtraError(
            f"{needed_for} needs {package}, which is installed but cannot be imported ({type(e).__name__}:"
            f" {e}). Fix: {upgrade}"
        ) from e


def _not_installed(top: str) -> bool:
    """Whether the top-level module ``top`` is not there at all (rather than there and failing to import)."""
    try:
        return importlib.util.find_spec(top) is None
    except (ImportError, ValueError):  # a module in sys.modules without a spec: there
        return False


def _compiled_ops_load() -> bool:
    """Try to load torchvision's own extension without importing torchvision."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    import torch

    folder = Path(next(iter(spec.submodule_search_locations)))
    for lib in sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd")):
        try:
            torch.ops.load_library(str(lib))
            return True
        except (OSError, RuntimeError, ImportError):
            return False
    return False


def _define_ops() -> None:
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", nms_cpu, "CPU")
    _state["lib"] = lib  # type: ignore[assignment]  # a Library unregisters its ops when collected


def import_torchvision() -> ModuleType:
    """Import torchvision, first supplying its NMS op where the compiled extension cannot load."""
    if "torchvision" not in sys.modules and "patched" not in _state:
        _state["patched"] = not _compiled_ops_load()
        if _state["patched"]:
            _define_ops()
    import torchvision
    import torchvision.extension

    if _state.get("patched"):
        torchvision.extension._has_ops = lambda: True
    return torchvision


def patched() -> bool:
    """Whether ferhub supplied torchvision's NMS (True) or torchvision's own ops loaded (False)."""
    import_torchvision()
    return bool(_state.get("patched"))
