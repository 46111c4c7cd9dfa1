"""Make torchvision importable beside a torch whose build its compiled ops do not match.

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

import torch

_BLOCK = 1024  # boxes per block of the IoU matrix: bounds memory at _BLOCK x N floats
_state: dict[str, bool] = {}


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix of ``(x1, y1, x2, y2)`` boxes, with torchvision's NMS arithmetic (no +1 on widths)."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp_(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def nms_cpu(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS, exactly torchvision's result, without a Python loop over boxes.

    Boxes are processed in score order, a block at a time. Inside a block the greedy result is the fixed point
    of "keep a box unless a kept, higher-scoring box overlaps it" (Cluster-NMS, Zheng et al. 2021), reached
    by a few matrix passes; the block's kept boxes then suppress all later boxes in one pass.
    """
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = scores.argsort(descending=True)
    b = boxes[order].float()
    n = b.shape[0]
    keep = torch.ones(n, dtype=torch.bool, device=b.device)
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        alive = keep[start:stop]
        if not alive.any():
            continue
        over = box_iou(b[start:stop], b[start:stop]).triu_(diagonal=1) > iou_threshold
        k = alive.clone()
        while True:
            suppressed = (over & k[:, None]).any(dim=0)
            k_new = alive & ~suppressed
            if torch.equal(k_new, k):
                break
            k = k_new
        keep[start:stop] = k
        if stop < n and k.any():
            later = box_iou(b[start:stop][k], b[stop:]) > iou_threshold
            keep[stop:] &= ~later.any(dim=0)
    return order[keep]


def _compiled_ops_load() -> bool:
    """Try to load torchvision's own extension without importing torchvision."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    folder = Path(next(iter(spec.submodule_search_locations)))
    for lib in sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd")):
        try:
            torch.ops.load_library(str(lib))
            return True
        except (OSError, RuntimeError, ImportError):
            return False
    return False


def _define_ops() -> None:
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
