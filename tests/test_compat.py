"""The torchvision shim: its NMS equals a brute-force greedy reference, and it does nothing where ops load."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types

import numpy as np
import pytest
import torch

from ferhub import _compat


def reference_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    """Textbook greedy NMS in float64: take the best remaining box, drop every box overlapping it, repeat."""
    b = boxes.double().numpy()
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    suppressed = np.zeros(len(b), dtype=bool)
    keep: list[int] = []
    for i in np.argsort(-scores.double().numpy(), kind="stable"):
        if suppressed[i]:
            continue
        keep.append(int(i))
        iw = np.clip(np.minimum(b[i, 2], b[:, 2]) - np.maximum(b[i, 0], b[:, 0]), 0, None)
        ih = np.clip(np.minimum(b[i, 3], b[:, 3]) - np.maximum(b[i, 1], b[:, 1]), 0, None)
        inter = iw * ih
        suppressed |= inter / (area[i] + area - inter) > threshold
    return keep


def random_boxes(n: int, seed: int, spread: float = 200.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * spread
    wh = torch.rand(n, 2, generator=g) * 40 + 2
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.randperm(n, generator=g).float() / max(n, 1)  # distinct scores: no ties to break
    return boxes, scores


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU matrix of ``(x1, y1, x2, y2)`` boxes, with torchvision's NMS arithmetic (no +1 on widths)."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp_(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def far_from_threshold(boxes: torch.Tensor, threshold: float) -> bool:
    """No pair's IoU within 1e-4 of the threshold, where float32 and float64 could disagree."""
    iou = box_iou(boxes.double(), boxes.double())
    return bool(((iou - threshold).abs() > 1e-4).all())


CASES = [(n, t, seed) for n in (1, 2, 7, 60, 400) for t in (0.3, 0.5, 0.7) for seed in (0, 1)]
CASES += [(1500, t, 0) for t in (0.3, 0.5, 0.7)]  # several blocks of nms_cpu


@pytest.mark.parametrize(("n", "threshold", "seed"), CASES)
def test_nms_cpu_matches_reference(n: int, threshold: float, seed: int) -> None:
    spread = 60.0 if n <= 60 else 400.0  # dense enough that boxes overlap and suppress in chains
    boxes, scores = random_boxes(n, seed, spread)
    if not far_from_threshold(boxes, threshold):
        pytest.skip("a pair sits on the threshold")
    assert _compat.nms_cpu(boxes, scores, threshold).tolist() == reference_nms(boxes, scores, threshold)


@pytest.mark.parametrize("n", [0, 1, 50, 700])
def test_torchvision_ops_nms_matches_reference(n: int) -> None:
    tv = _compat.import_torchvision()
    boxes, scores = random_boxes(n, seed=3, spread=150.0)
    assert tv.ops.nms(boxes, scores, 0.5).tolist() == reference_nms(boxes, scores, 0.5)
    # batched_nms (used by facenet-pytorch) goes through the same op
    idxs = torch.arange(n) % 3
    kept = tv.ops.batched_nms(boxes, scores, idxs, 0.5).tolist()
    expected = []
    for c in range(3):
        members = [i for i in range(n) if i % 3 == c]
        expected += [members[k] for k in reference_nms(boxes[members], scores[members], 0.5)]
    assert sorted(kept) == sorted(expected)


def test_nms_cpu_edge_cases() -> None:
    empty = _compat.nms_cpu(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert empty.dtype == torch.long and empty.numel() == 0
    same = torch.tensor([[0.0, 0, 10, 10]] * 3)
    assert _compat.nms_cpu(same, torch.tensor([0.1, 0.9, 0.5]), 0.5).tolist() == [1]
    # a chain: A suppresses B, B would have suppressed C, so greedy keeps A and C
    chain = torch.tensor([[0.0, 0, 10, 10], [3.0, 0, 13, 10], [6.0, 0, 16, 10]])
    assert _compat.nms_cpu(chain, torch.tensor([0.9, 0.8, 0.7]), 0.4).tolist() == [0, 2]
    # float64 and integer-valued boxes are accepted (compared in float)
    assert _compat.nms_cpu(chain.double(), torch.tensor([0.9, 0.8, 0.7]), 0.4).tolist() == [0, 2]


class _FakeTorchvision(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves stand-in ``torchvision`` modules so import_torchvision's logic runs without re-importing it."""

    def __init__(self) -> None:
        self.modules = {
            "torchvision": types.ModuleType("torchvision"),
            "torchvision.extension": types.ModuleType("x"),
        }
        self.modules["torchvision"].__path__ = []  # a package, so the submodule import is allowed
        self.modules["torchvision.extension"]._has_ops = lambda: False
        self.modules["torchvision"].extension = self.modules["torchvision.extension"]

    def find_spec(self, name, path, target=None):
        if name in self.modules:
            return importlib.machinery.ModuleSpec(name, self, is_package=name == "torchvision")
        return None

    def create_module(self, spec):
        return self.modules[spec.name]

    def exec_module(self, module) -> None:
        pass


def _torchvision_modules() -> dict[str, object]:
    return {k: v for k, v in sys.modules.items() if k == "torchvision" or k.startswith("torchvision.")}


@pytest.fixture
def fake_torchvision(monkeypatch: pytest.MonkeyPatch):
    fake = _FakeTorchvision()
    real = _torchvision_modules()
    for name in real:
        del sys.modules[name]
    monkeypatch.setattr(sys, "meta_path", [fake, *sys.meta_path])
    monkeypatch.setattr(_compat, "_state", {})
    defined: list[bool] = []
    monkeypatch.setattr(_compat, "_define_ops", lambda: defined.append(True))
    yield fake, defined
    # the fake modules the test imported must not outlive it (when the real torchvision had not been imported
    # yet, nothing else would take them out, and every later test in this process would get the fake)
    for name in _torchvision_modules():
        del sys.modules[name]
    sys.modules.update(real)


def test_shim_is_a_noop_where_compiled_ops_load(fake_torchvision, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, defined = fake_torchvision
    monkeypatch.setattr(_compat, "_compiled_ops_load", lambda: True)
    tv = _compat.import_torchvision()
    assert tv is fake.modules["torchvision"]
    assert defined == []  # no op defined
    assert fake.modules["torchvision.extension"]._has_ops() is False  # torchvision's own answer left alone
    assert _compat.patched() is False


def test_shim_supplies_nms_where_ops_do_not_load(fake_torchvision, monkeypatch: pytest.MonkeyPatch) -> None:
    fake, defined = fake_torchvision
    monkeypatch.setattr(_compat, "_compiled_ops_load", lambda: False)
    _compat.import_torchvision()
    _compat.import_torchvision()  # idempotent: defined once
    assert defined == [True]
    assert fake.modules["torchvision.extension"]._has_ops() is True
    assert _compat.patched() is True


def test_shim_state_matches_this_environment() -> None:
    tv = _compat.import_torchvision()
    assert tv.extension._has_ops()
    if _compat.patched():  # CPU torch beside the CUDA torchvision build: our kernel is registered
        assert torch.ops.torchvision.nms.default is not None
