"""A faster MTCNN pipeline driving facenet-pytorch's own P/R/O nets (weights from its wheel).

facenet-pytorch's ``MTCNN.detect`` spends most of its time outside the nets: it resizes every pyramid level and
then every candidate box one at a time with ``interpolate(mode="area")``, and runs a Python-loop NMS. This
module keeps the nets, thresholds and box arithmetic of MTCNN and changes how pixels reach them:

- pyramid levels are antialiased bilinear resizes of one normalised tensor;
- R-net and O-net inputs for all candidates are sampled by one ``F.grid_sample`` per source level: each box is
  read from the pyramid level where it is closest to (and not smaller than) the net's input size, so sampling
  never shrinks by more than ~1.4x and needs no per-box area resize;
- NMS is vectorised (torchvision's op, or ferhub's exact CPU kernel);
- the default minimum face size is relative to the image (see :func:`auto_min_face_size`).

Coordinates are continuous pixels: pixel ``i`` covers ``[i, i + 1)``, a box is ``(x1, y1, x2, y2)`` of its
edges. Everything stays on the nets' device until the final conversion to numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ferhub import _compat

PYRAMID_FACTOR = 0.709  # MTCNN's: each level has half the area of the one before
MIN_NET_FACE = 12  # P-net's window: a face of min_face_size px is scaled to 12 px at the first level
_NETS: dict[str, tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]] = {}


def auto_min_face_size(width: int, height: int) -> float:
    """Default smallest face: 1/16 of the image's shorter side, but never above 40 px nor below 12 px.

    Faces much smaller than 1/16 of the frame are rare in photos people classify expressions on, and P-net's
    cost scales with ``(1 / min_face_size)^2``; the 40 px cap keeps small faces of large group photos found,
    the 12 px floor is P-net's window (tiny images such as 25x25 face crops are searched at full resolution).
    """
    return float(min(40.0, max(12.0, min(width, height) / 16)))


def _load_nets(device: str) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    if device not in _NETS:
        _compat.import_torchvision()
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

        _NETS[device] = tuple(net.to(device).eval() for net in (PNet(), RNet(), ONet()))  # type: ignore[assignment]
    return _NETS[device]


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy IoU NMS on any device: torchvision's op where it can run there, else ferhub's exact kernel."""
    if boxes.device.type == "cpu" or not _compat.patched():
        from torchvision.ops import nms as tv_nms

        return tv_nms(boxes, scores, threshold)
    return _compat.nms_cpu(boxes, scores, threshold)  # pure tensor ops: runs on the GPU too


def nms_min(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy NMS with MTCNN's "Min" overlap (intersection over the smaller area), exact, without a box loop.

    Used on the few O-net survivors; the greedy result is the fixed point of "keep a box unless a kept,
    higher-scoring box overlaps it", reached in a few matrix passes.
    """
    order = scores.argsort(descending=True)
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)
    over = (inter / torch.minimum(area[:, None], area[None, :]).clamp(min=1e-9)).triu(diagonal=1) > threshold
    keep = torch.ones(len(b), dtype=torch.bool, device=b.device)
    for _ in range(len(b)):
        new = ~(over & keep[:, None]).any(dim=0)
        if torch.equal(new, keep):
            break
        keep = new
    return order[keep]


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Expand boxes to squares about their centres (MTCNN's ``rerec``)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    cx, cy = boxes[:, 0] + w / 2, boxes[:, 1] + h / 2
    return torch.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], dim=1)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply the nets' box regression (offsets in units of the box's width/height)."""
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + reg * wh


class FastMTCNN:
    """MTCNN detection (facenet-pytorch's nets) with batched crops, bilinear pyramid and vectorised NMS."""

    def __init__(self, thresholds: Sequence[float] = (0.6, 0.7, 0.7), device: str = "cpu") -> None:
        self.thresholds = tuple(float(t) for t in thresholds)
        self.device = torch.device(device)
        self.pnet, self.rnet, self.onet = _load_nets(str(self.device))

    def detect(
        self, image: Image.Image, *, min_face_size: float | None = None, max_side: int = 1024
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``(N, 4)``, scores ``(N,)`` and landmarks ``(N, 5, 2)`` in ``image``'s pixels."""
        with torch.inference_mode():
            boxes, scores, points = self._detect(image, min_face_size, max_side)
            return boxes.cpu().numpy(), scores.cpu().numpy(), points.cpu().numpy()

    # -- stages ---------------------------------------------------------------------------------------------
    def _detect(
        self, image: Image.Image, min_face_size: float | None, max_side: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width, height = image.size
        # large photos: detect on a copy whose longer side is max_side, map back at the end
        shrink = min(1.0, max_side / max(width, height))
        if shrink < 1.0:
            small = (max(1, round(width * shrink)), max(1, round(height * shrink)))
            image = image.resize(small, Image.Resampling.BILINEAR, reducing_gap=2.0)
        sx, sy = width / image.width, height / image.height
        min_face = auto_min_face_size(width, height) if min_face_size is None else float(min_face_size)
        min_face = max(min_face / max(sx, sy), 1.0)  # in detection-image pixels

        x = torch.from_numpy(np.array(image)).to(self.device)  # np.array: a writable copy
        x = x.permute(2, 0, 1).unsqueeze(0).float().sub_(127.5).mul_(0.0078125)
        levels = self._pyramid(x, min_face)
        empty = (x.new_zeros(0, 4), x.new_zeros(0), x.new_zeros(0, 5, 2))
        if not levels:
            return empty
        boxes = self._stage1(levels)
        if len(boxes) == 0:
            return empty
        boxes, scores = self._stage2(levels, x, boxes)
        if len(boxes) == 0:
            return empty
        boxes, scores, points = self._stage3(levels, x, boxes)
        scale = boxes.new_tensor([sx, sy])
        return boxes * scale.repeat(2), scores, points * scale

    def _pyramid(self, x: torch.Tensor, min_face: float) -> list[tuple[torch.Tensor, float, float]]:
        """Levels ``(tensor, x scale, y scale)`` from ``12 / min_face`` down to a 12 px shorter side."""
        h, w = x.shape[2:]
        levels = []
        scale = MIN_NET_FACE / min_face
        while min(h, w) * scale >= MIN_NET_FACE:
            lh, lw = max(MIN_NET_FACE, round(h * scale)), max(MIN_NET_FACE, round(w * scale))
            if (lh, lw) == (h, w):
                level = x
            else:
                # antialias: a plain bilinear shrink by 3-10x aliases and costs P-net recall
                level = F.interpolate(
                    x, size=(lh, lw), mode="bilinear", align_corners=False, antialias=lh < h
                )
            levels.append((level, lw / w, lh / h))
            scale *= PYRAMID_FACTOR
        return levels

    def _stage1(self, levels: list[tuple[torch.Tensor, float, float]]) -> torch.Tensor:
        """P-net over every level -> candidate boxes ``(N, 5)`` (x1, y1, x2, y2, score), regressed and squared."""
        threshold = self.thresholds[0]
        found = []
        for level, lsx, lsy in levels:
            reg, prob = self.pnet(level)
            prob = prob[0, 1]
            ys, xs = torch.nonzero(prob >= threshold, as_tuple=True)
            if len(ys) == 0:
                continue
            score = prob[ys, xs]
            offsets = reg[0, :, ys, xs].T
            # the window at (xs, ys) of the 2-strided score map covers [2x, 2x + 12) of the level
            x1, y1 = 2 * xs.float() / lsx, 2 * ys.float() / lsy
            boxes = torch.stack([x1, y1, x1 + MIN_NET_FACE / lsx, y1 + MIN_NET_FACE / lsy], dim=1)
            keep = nms(boxes, score, 0.5)  # within a level, as MTCNN does
            found.append(torch.cat([boxes[keep], score[keep, None], offsets[keep]], dim=1))
        if not found:
            return levels[0][0].new_zeros(0, 5)
        cand = torch.cat(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]  # across levels
        return torch.cat([_square(_regress(cand[:, :4], cand[:, 5:9])), cand[:, 4:5]], dim=1)

    def _stage2(
        self, levels: list[tuple[torch.Tensor, float, float]], x: torch.Tensor, boxes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """R-net on 24x24 crops of every candidate: refine, threshold, NMS."""
        reg, prob = self.rnet(_sample_crops(levels, x, boxes[:, :4], 24))
        score = prob[:, 1]
        ok = score > self.thresholds[1]
        boxes, score, reg = boxes[ok, :4], score[ok], reg[ok]
        keep = nms(boxes, score, 0.7)
        return _square(_regress(boxes[keep], reg[keep])), score[keep]

    def _stage3(
        self, levels: list[tuple[torch.Tensor, float, float]], x: torch.Tensor, boxes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """O-net on 48x48 crops: final score, box and 5 landmarks; MTCNN's "Min" NMS."""
        reg, marks, prob = self.onet(_sample_crops(levels, x, boxes, 48))
        score = prob[:, 1]
        ok = score > self.thresholds[2]
        boxes, score, reg, marks = boxes[ok], score[ok], reg[ok], marks[ok]
        wh = boxes[:, 2:] - boxes[:, :2]
        # O-net gives landmarks as fractions of the box: 5 x values then 5 y values
        points = torch.stack([marks[:, :5], marks[:, 5:]], dim=2) * wh[:, None, :] + boxes[:, None, :2]
        boxes = _regress(boxes, reg)
        keep = nms_min(boxes, score, 0.7)
        return boxes[keep], score[keep], points[keep]


def _sample_crops(
    levels: list[tuple[torch.Tensor, float, float]], x: torch.Tensor, boxes: torch.Tensor, size: int
) -> torch.Tensor:
    """``size`` x ``size`` crops of ``boxes`` (original pixels), zero (black) outside the image.

    Each box is read from the smallest pyramid level (or the full image) where it is still at least ``size``
    pixels wide, so bilinear sampling never shrinks by more than the pyramid step and needs no antialiasing.
    Outside the image the crop is black, as in the original MTCNN (facenet-pytorch instead stretches the
    in-image part of the box; its own boxes differ there).
    """
    sources = [(x, 1.0, 1.0), *levels]
    side = boxes[:, 2] - boxes[:, 0]
    # per box: index of the last source in which it is >= size px (sources are ordered by decreasing scale)
    source_scale = boxes.new_tensor([s[1] for s in sources])
    fits = side[:, None] * source_scale[None, :] >= size
    choice = (fits.long().cumsum(dim=1) == fits.long().sum(dim=1, keepdim=True)) & fits
    index = torch.where(
        fits.any(dim=1), choice.float().argmax(dim=1), torch.zeros_like(side, dtype=torch.long)
    )
    crops = x.new_empty(len(boxes), 3, size, size)
    steps = (torch.arange(size, device=x.device, dtype=x.dtype) + 0.5) / size  # pixel centres in [0, 1]
    for i in index.unique().tolist():
        source, ssx, ssy = sources[i]
        sel = torch.nonzero(index == i, as_tuple=True)[0]
        b = boxes[sel]
        h, w = source.shape[2:]
        # grid_sample (align_corners=False): normalised -1 is the left edge of pixel 0, +1 the right edge
        gx = (b[:, 0:1] + (b[:, 2:3] - b[:, 0:1]) * steps) * (2 * ssx / w) - 1
        gy = (b[:, 1:2] + (b[:, 3:4] - b[:, 1:2]) * steps) * (2 * ssy / h) - 1
        grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=3)
        # out-of-image pixels are 0 in pixel values, i.e. -1 after MTCNN's normalisation
        crops[sel] = F.grid_sample((source + 1).expand(len(b), -1, -1, -1), grid, align_corners=False) - 1
    return crops
