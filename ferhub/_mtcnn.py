"""A faster MTCNN pipeline driving facenet-pytorch's P/R/O nets (their weights, read from its wheel).

facenet-pytorch's ``MTCNN.detect`` spends most of its time outside the nets' arithmetic: it resizes every
pyramid level and then every candidate box one at a time with ``interpolate(mode="area")``, runs a Python-loop
NMS, and its NCHW max-pooling is slow on the CPU. This module keeps the nets' weights, thresholds and box
arithmetic of MTCNN and changes how pixels reach them:

- the pyramid is built by halving one normalised tensor (a 2x2 box filter) and one bilinear step of less than
  2x per level, instead of an area resize of the full photo per level; the small levels share one P-net call;
- R-net and O-net inputs for all candidates are sampled by ``F.grid_sample``, one call per source level: each
  box is read from the pyramid level where it is closest to (and not smaller than) the net's input size, so
  sampling never shrinks by more than the pyramid step and needs no per-box area resize;
- the nets run channels-last (oneDNN's fast layout on the CPU) with their two or three heads fused into one
  layer;
- NMS is vectorised: within a P-net level a 3x3 local-maximum test (see :meth:`FastMTCNN._stage1`), elsewhere
  torchvision's op (or ferhub's exact kernel);
- the default minimum face size is relative to the image (see :func:`auto_min_face_size`).

Coordinates are continuous pixels: pixel ``i`` covers ``[i, i + 1)``, a box is ``(x1, y1, x2, y2)`` of its
edges. Everything stays on the nets' device until the final conversion to numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ferhub import _compat
from ferhub._mtcnn_onnx import CELL, _pack, _weights_file, auto_min_face_size, level_sizes

CL = torch.channels_last
Level = tuple[torch.Tensor, float, float]  # (1, 3, h, w) tensor, x scale, y scale relative to the input


@dataclass
class _Nets:
    """facenet-pytorch's P/R/O nets on one device, channels-last, with fused heads."""

    p_conv1: tuple[torch.Tensor, torch.Tensor]  # first convolutions, taking inputs shifted by +1
    r_conv1: tuple[torch.Tensor, torch.Tensor]
    o_conv1: tuple[torch.Tensor, torch.Tensor]
    pnet: torch.nn.Module
    rnet: torch.nn.Module
    onet: torch.nn.Module
    p_head: tuple[torch.Tensor, torch.Tensor]  # 1x1 conv as a (6, 32) matrix: 2 face logits + 4 box offsets
    r_dense: tuple[torch.Tensor, torch.Tensor]  # dense4 with inputs in channels-last flatten order
    r_head: tuple[torch.Tensor, torch.Tensor]  # 2 logits + 4 offsets
    o_dense: tuple[torch.Tensor, torch.Tensor]
    o_head: tuple[torch.Tensor, torch.Tensor]  # 2 logits + 4 offsets + 10 landmark coordinates


_NETS: dict[str, _Nets] = {}


def _nhwc_dense(
    dense: torch.nn.Linear, channels: int, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense layer's weight re-ordered for inputs flattened as (h, w, c) instead of facenet's (w, h, c).

    facenet-pytorch flattens ``x.permute(0, 3, 2, 1)``; re-ordering the weight once lets a channels-last
    tensor be flattened without a copy.
    """
    w = dense.weight.view(-1, width, height, channels).permute(0, 2, 1, 3).reshape(dense.weight.shape[0], -1)
    return w.contiguous(), dense.bias


def _shifted_conv(conv: torch.nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of an unpadded convolution that gives ``conv(x)`` when fed ``x + 1``."""
    return conv.weight.contiguous(memory_format=CL), conv.bias - conv.weight.sum(dim=(1, 2, 3))


def _net(name: str, layers: dict[str, torch.nn.Module]) -> torch.nn.Module:
    """One of MTCNN's nets with facenet-pytorch's layer names, its weights read as plain tensors."""
    net = torch.nn.Module()
    for key, layer in layers.items():
        net.add_module(key, layer)
    state = torch.load(
        _weights_file(name), map_location="cpu", weights_only=True
    )  # a state dict: no pickle code
    net.load_state_dict(state, strict=True)
    return net


def _pnet() -> torch.nn.Module:
    conv, prelu = torch.nn.Conv2d, torch.nn.PReLU
    return _net(
        "pnet",
        {
            "conv1": conv(3, 10, 3),
            "prelu1": prelu(10),
            "conv2": conv(10, 16, 3),
            "prelu2": prelu(16),
            "conv3": conv(16, 32, 3),
            "prelu3": prelu(32),
            "conv4_1": conv(32, 2, 1),
            "conv4_2": conv(32, 4, 1),
        },
    )


def _rnet() -> torch.nn.Module:
    conv, prelu, dense = torch.nn.Conv2d, torch.nn.PReLU, torch.nn.Linear
    return _net(
        "rnet",
        {
            "conv1": conv(3, 28, 3), "prelu1": prelu(28), "conv2": conv(28, 48, 3), "prelu2": prelu(48),
            "conv3": conv(48, 64, 2), "prelu3": prelu(64), "dense4": dense(576, 128), "prelu4": prelu(128),
            "dense5_1": dense(128, 2), "dense5_2": dense(128, 4),
        },
    )  # fmt: skip


def _onet() -> torch.nn.Module:
    conv, prelu, dense = torch.nn.Conv2d, torch.nn.PReLU, torch.nn.Linear
    return _net(
        "onet",
        {
            "conv1": conv(3, 32, 3), "prelu1": prelu(32), "conv2": conv(32, 64, 3), "prelu2": prelu(64),
            "conv3": conv(64, 64, 3), "prelu3": prelu(64), "conv4": conv(64, 128, 2), "prelu4": prelu(128),
            "dense5": dense(1152, 256), "prelu5": prelu(256), "dense6_1": dense(256, 2),
            "dense6_2": dense(256, 4), "dense6_3": dense(256, 10),
        },
    )  # fmt: skip


def _load_nets(device: str) -> _Nets:
    if device not in _NETS:
        # channels-last: on the CPU oneDNN's convolutions and max-pooling are several times faster for these
        # small nets in NHWC than in NCHW (R-net on ~100 crops: ~8 ms against ~25 ms here)
        p, r, o = (
            n().to(device, memory_format=CL).eval().requires_grad_(False) for n in (_pnet, _rnet, _onet)
        )
        _NETS[device] = _Nets(
            _shifted_conv(p.conv1),
            _shifted_conv(r.conv1),
            _shifted_conv(o.conv1),
            p,
            r,
            o,
            p_head=(
                torch.cat([p.conv4_1.weight, p.conv4_2.weight]).flatten(1),
                torch.cat([p.conv4_1.bias, p.conv4_2.bias]),
            ),
            r_dense=_nhwc_dense(r.dense4, 64, 3, 3),
            r_head=(
                torch.cat([r.dense5_1.weight, r.dense5_2.weight]),
                torch.cat([r.dense5_1.bias, r.dense5_2.bias]),
            ),
            o_dense=_nhwc_dense(o.dense5, 128, 3, 3),
            o_head=(
                torch.cat([o.dense6_1.weight, o.dense6_2.weight, o.dense6_3.weight]),
                torch.cat([o.dense6_1.bias, o.dense6_2.bias, o.dense6_3.bias]),
            ),
        )
    return _NETS[device]


def _face_prob(logits: torch.Tensor) -> torch.Tensor:
    """P(face) of a 2-way softmax over (not-face, face) logits in dim 1."""
    return torch.sigmoid(logits[:, 1] - logits[:, 0])


def _pool2(x: torch.Tensor) -> torch.Tensor:
    """2x2 / stride 2 max-pool with ceil mode, as four strided maxima (faster than max_pool2d here)."""
    h, w = x.shape[2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), value=float("-inf"))
    return torch.maximum(
        torch.maximum(x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2]),
        torch.maximum(x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]),
    )


def _pool3(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 2, ceil_mode=True)


def run_pnet(nets: _Nets, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """P-net on one level -> (face probability (h', w'), box offsets (4, h', w'))."""
    prob, reg = run_pnet_batch(nets, x)
    return prob[0], reg[0]


def run_pnet_batch(nets: _Nets, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """P-net on (N, 3, h, w) -> (face probability (N, h', w'), box offsets (N, 4, h', w'))."""
    n = nets.pnet
    x = _pool2(F.prelu(F.conv2d(x, *nets.p_conv1), n.prelu1.weight))
    x = F.prelu(n.conv2(x), n.prelu2.weight)
    x = F.prelu(n.conv3(x), n.prelu3.weight)
    # the 1x1 head as one matmul over the channels-last pixels: (N, h', w', 32) @ (32, 6)
    out = F.linear(x.permute(0, 2, 3, 1), *nets.p_head).permute(0, 3, 1, 2)
    return torch.sigmoid(out[:, 1] - out[:, 0]), out[:, 2:]


def run_rnet(nets: _Nets, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """R-net on (N, 3, 24, 24) crops -> (face probability (N,), box offsets (N, 4))."""
    n = nets.rnet
    x = _pool3(F.prelu(F.conv2d(x, *nets.r_conv1), n.prelu1.weight))
    x = _pool3(F.prelu(n.conv2(x), n.prelu2.weight))
    x = F.prelu(n.conv3(x), n.prelu3.weight)
    x = F.prelu(F.linear(x.permute(0, 2, 3, 1).flatten(1), *nets.r_dense), n.prelu4.weight)
    out = F.linear(x, *nets.r_head)
    return _face_prob(out), out[:, 2:6]


def run_onet(nets: _Nets, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """O-net on (N, 3, 48, 48) crops -> (face probability, box offsets (N, 4), landmarks (N, 10))."""
    n = nets.onet
    x = _pool3(F.prelu(F.conv2d(x, *nets.o_conv1), n.prelu1.weight))
    x = _pool3(F.prelu(n.conv2(x), n.prelu2.weight))
    x = _pool2(F.prelu(n.conv3(x), n.prelu3.weight))
    x = F.prelu(n.conv4(x), n.prelu4.weight)
    x = F.prelu(F.linear(x.permute(0, 2, 3, 1).flatten(1), *nets.o_dense), n.prelu5.weight)
    out = F.linear(x, *nets.o_head)
    return _face_prob(out), out[:, 2:6], out[:, 6:16]


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy IoU NMS, exactly torchvision's result.

    On the CPU ferhub's kernel (the one the torchvision shim registers), called directly so detection never
    imports torchvision (~1 s of start-up); on a GPU torchvision's op where its compiled ops load.
    """
    if boxes.device.type == "cpu" or _compat.patched():
        return _compat.nms_cpu(boxes, scores, threshold)
    from torchvision.ops import nms as tv_nms

    return tv_nms(boxes, scores, threshold)


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


def _to_tensor(images: Image.Image | Sequence[Image.Image], device: torch.device) -> torch.Tensor:
    """RGB image(s) of one size -> (N, 3, H, W) channels-last float on ``device``: MTCNN's ``(x - 127.5) /
    128``,
    plus 1.

    The +1 makes black 0, so crops sampled partly outside the image are zero-padded with black (as in the
    original MTCNN) by ``grid_sample``'s own zero padding; the nets' first convolutions take the +1 back out
    through their bias (:func:`_shifted_conv`). The HWC pixel array permuted to NCHW is already
    channels-last in memory: no copy to change layout.
    """
    images = [images] if isinstance(images, Image.Image) else images
    x = torch.from_numpy(np.stack([np.asarray(im) for im in images])).to(device)  # a copy torch can own
    return x.permute(0, 3, 1, 2).float().mul_(0.0078125).add_(1 - 127.5 * 0.0078125)


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
    """MTCNN detection (facenet-pytorch's nets) with batched crops, a cheap pyramid and vectorised NMS."""

    def __init__(self, thresholds: Sequence[float] = (0.6, 0.7, 0.7), device: str = "cpu") -> None:
        self.thresholds = tuple(float(t) for t in thresholds)
        self.device = torch.device(device)
        self.nets = _load_nets(str(self.device))

    def detect(
        self, image: Image.Image, *, min_face_size: float | None = None, max_side: int = 1024
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``(N, 4)``, scores ``(N,)`` and landmarks ``(N, 5, 2)`` in ``image``'s pixels."""
        return self.detect_batch([image], min_face_size=min_face_size, max_side=max_side)[0]

    def detect_batch(
        self, images: Sequence[Image.Image], *, min_face_size: float | None = None, max_side: int = 1024
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """:meth:`detect` of each image, every net run once over all of them (the frames of a video on a GPU,
        where one call per frame leaves it mostly idle). Images of different sizes are detected one by one."""
        if len({im.size for im in images}) > 1:
            return [self.detect(im, min_face_size=min_face_size, max_side=max_side) for im in images]
        if not images:
            return []
        with torch.inference_mode():
            found = self._detect(images, min_face_size, max_side)
            return [(b.cpu().numpy(), s.cpu().numpy(), p.cpu().numpy()) for b, s, p in found]

    # -- stages ---------------------------------------------------------------------------------------------
    def _detect(
        self, images: Sequence[Image.Image], min_face_size: float | None, max_side: int
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        width, height = images[0].size
        # large photos: P-net's levels are those of a copy whose longer side is max_side (the automatic
        # minimum face size is relative to that copy). The pixels come from an integer box reduce of the photo
        # (Pillow's SIMD ``reduce``, a few ms for 12 MP, where an exact resize to max_side costs ~10x more)
        # that is still at least that large; the pyramid's halvings do the rest and R-/O-net crops read from
        # it.
        shrink = min(1.0, max_side / max(width, height))
        reduce = int(1 / shrink + 1e-9)
        if reduce >= 2:
            images = [im.reduce(reduce) for im in images]
        image = images[0]
        sx, sy = width / image.width, height / image.height
        if min_face_size is None:
            detection_w, detection_h = width * shrink, height * shrink
            min_face = auto_min_face_size(round(detection_w), round(detection_h)) * image.width / detection_w
        else:
            min_face = max(float(min_face_size) / sx, image.width / (width * shrink))  # >= 1 px of the copy

        x = _to_tensor(images, self.device)
        levels = self._pyramid(x, min_face)
        empty = (x.new_zeros(0, 4), x.new_zeros(0), x.new_zeros(0, 5, 2))
        if not levels:
            return [empty] * len(images)
        # each net runs once over all images (R-net and O-net on the crops of every image together); each
        # image keeps its own thresholds and NMS, so the result is that of one image at a time
        candidates = self._stage1(levels)
        refined = self._stage2(levels, x, candidates)
        found = self._stage3(levels, x, [boxes for boxes, _ in refined])
        scale = x.new_tensor([sx, sy])
        return [(b * scale.repeat(2), sc, pts * scale) for b, sc, pts in found]

    def _pyramid(self, x: torch.Tensor, min_face: float) -> list[Level]:
        """Levels from scale ``12 / min_face`` down to a 12 px shorter side, each ``PYRAMID_FACTOR`` smaller.

        The input is halved repeatedly (bilinear sampling at exactly half size reads the centre of each 2x2
        block: a box filter); each level is one bilinear step of less than 2x from the smallest halving that
        is still larger. A plain bilinear shrink by 3-10x would alias and cost P-net recall;
        ``F.interpolate(antialias=True)`` per level costs several times more on the CPU.
        """
        h, w = x.shape[2:]
        halvings = [x]
        levels: list[Level] = []
        for size in level_sizes(h, w, min_face):
            while halvings[-1].shape[2] >= 2 * size[0] and halvings[-1].shape[3] >= 2 * size[1]:
                last = halvings[-1]
                half = (last.shape[2] // 2, last.shape[3] // 2)
                # torch's CPU resize returns NCHW, and resizes NCHW inputs several times slower than NHWC ones
                halved = F.interpolate(last, size=half, mode="bilinear", align_corners=False)
                halvings.append(halved.contiguous(memory_format=CL))
            # the smallest halving still at least this large (the input itself when upscaling tiny images)
            source = next(
                (t for t in reversed(halvings) if t.shape[2] >= size[0] and t.shape[3] >= size[1]), x
            )
            if tuple(source.shape[2:]) != size:
                source = F.interpolate(source, size=size, mode="bilinear", align_corners=False)
            levels.append((source.contiguous(memory_format=CL), size[1] / w, size[0] / h))
        return levels

    def _stage1(self, levels: list[Level]) -> list[torch.Tensor]:
        """P-net over every level -> per image, candidate boxes ``(k, 5)`` (x1, y1, x2, y2, score), regressed
        and squared.

        Within a level P-net's windows are equal 12 px squares on a 2 px grid, so two of them overlap with
        IoU > 0.5 exactly when they are 8-neighbours on the score map. MTCNN's greedy NMS at 0.5 there is
        replaced by keeping the cells that are the maximum of their 3x3 neighbourhood within their level:
        every one of them survives greedy NMS too, every cluster keeps its peak, and no sequential pass over
        thousands of windows is needed.
        """
        maps, origins = self._score_maps(levels)
        return [
            self._candidates(levels, [(p[i], r[i], level_of) for p, r, level_of in maps], origins)
            for i in range(levels[0][0].shape[0])
        ]

    def _candidates(
        self,
        levels: list[Level],
        maps: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
        origins: torch.Tensor,
    ) -> torch.Tensor:
        """One image's P-net candidates from its score maps (see :meth:`_stage1`)."""
        threshold = self.thresholds[0]
        scale_x = levels[0][0].new_tensor([lsx for _, lsx, _ in levels])
        scale_y = levels[0][0].new_tensor([lsy for _, _, lsy in levels])
        found = []
        for prob, reg, level_of in maps:
            w = prob.shape[1]
            prob = torch.where(level_of >= 0, prob, -1.0)  # cells of no level (canvas padding) never pass
            ys, xs = torch.nonzero(prob >= threshold, as_tuple=True)
            if len(ys) == 0:
                continue
            # the 3x3 neighbourhood of each passing cell, from a copy padded by one cell of "no level"
            padded_prob = F.pad(prob, (1, 1, 1, 1), value=-1.0).flatten()
            padded_level = F.pad(level_of, (1, 1, 1, 1), value=-1).flatten()
            steps = torch.arange(-1, 2, device=prob.device)
            around = ((steps[:, None] * (w + 2) + steps[None, :]).flatten() + (w + 2) + 1)[None, :]
            cell = (ys * (w + 2) + xs)[:, None] + around
            level = level_of[ys, xs]
            same_level = padded_level[cell] == level[:, None]
            neighbours = torch.where(same_level, padded_prob[cell], -1.0)
            score = prob[ys, xs]
            peak = score >= neighbours.amax(dim=1)
            ys, xs, score, level = ys[peak], xs[peak], score[peak], level[peak]
            # the window at score cell (x, y) covers [2x, 2x + 12) of the canvas, which holds its level at
            # origin
            lsx, lsy = scale_x[level], scale_y[level]
            x1 = (2 * xs - origins[level, 1]).to(prob.dtype) / lsx
            y1 = (2 * ys - origins[level, 0]).to(prob.dtype) / lsy
            boxes = torch.stack([x1, y1, x1 + CELL / lsx, y1 + CELL / lsy], dim=1)
            found.append(torch.cat([boxes, score[:, None], reg[:, ys, xs].T], dim=1))
        if not found:
            return levels[0][0].new_zeros(0, 5)
        cand = torch.cat(found)
        cand = cand[nms(cand[:, :4], cand[:, 4], 0.7)]  # across levels, as MTCNN does
        return torch.cat([_square(_regress(cand[:, :4], cand[:, 5:9])), cand[:, 4:5]], dim=1)

    def _score_maps(
        self, levels: list[Level]
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], torch.Tensor]:
        """P-net's maps per call: (face probability (N, h, w), box offsets (N, 4, h, w), index of the level
        each cell belongs to or -1 (h, w)), and each level's origin (y, x) in its call's canvas.

        The two largest levels run alone; the small ones are packed into one canvas and run as one call: a
        handful of tiny convolutions costs more in per-call overhead (and slower small-input kernels) than the
        padding wastes. P-net has no padding and a 12 px receptive field on a 2 px grid, so with every level
        at an even offset a window inside a level sees exactly what it would see alone.
        """
        device = levels[0][0].device
        maps = []
        for index, (level, _, _) in enumerate(levels[:2]):
            prob, reg = run_pnet_batch(self.nets, level)
            maps.append((prob, reg, torch.full(prob.shape[1:], index, device=device)))
        origins = [(0, 0)] * min(len(levels), 2)
        small = levels[2:]
        if small:
            offsets, size = _pack(tuple(tuple(level.shape[2:]) for level, _, _ in small))
            canvas = small[0][0].new_zeros(len(small[0][0]), 3, *size).contiguous(memory_format=CL)
            for (level, _, _), (oy, ox) in zip(small, offsets):
                canvas[:, :, oy : oy + level.shape[2], ox : ox + level.shape[3]] = level
            prob, reg = run_pnet_batch(self.nets, canvas)
            level_of = torch.full(prob.shape[1:], -1, device=device)
            for index, ((level, _, _), (oy, ox)) in enumerate(zip(small, offsets), start=2):
                # the cells whose 12 px window lies wholly inside the level
                rows, cols = (level.shape[2] - CELL) // 2 + 1, (level.shape[3] - CELL) // 2 + 1
                level_of[oy // 2 : oy // 2 + rows, ox // 2 : ox // 2 + cols] = index
            maps.append((prob, reg, level_of))
            origins += offsets
        return maps, torch.tensor(origins, device=device)

    def _stage2(
        self, levels: list[Level], x: torch.Tensor, candidates: list[torch.Tensor]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """R-net on 24x24 crops of every candidate of every image: per image refine, threshold, NMS."""
        nets_out = _each_image(
            levels, x, [c[:, :4] for c in candidates], 24, lambda c: run_rnet(self.nets, c)
        )
        found = []
        for boxes, (score, reg) in zip(candidates, nets_out):
            ok = score > self.thresholds[1]
            boxes, score, reg = boxes[ok, :4], score[ok], reg[ok]
            keep = nms(boxes, score, 0.7)
            found.append((_square(_regress(boxes[keep], reg[keep])), score[keep]))
        return found

    def _stage3(
        self, levels: list[Level], x: torch.Tensor, candidates: list[torch.Tensor]
    ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """O-net on 48x48 crops: per image final score, box and 5 landmarks; MTCNN's "Min" NMS."""
        nets_out = _each_image(levels, x, candidates, 48, lambda c: run_onet(self.nets, c))
        found = []
        for boxes, (score, reg, marks) in zip(candidates, nets_out):
            ok = score > self.thresholds[2]
            boxes, score, reg, marks = boxes[ok], score[ok], reg[ok], marks[ok]
            wh = boxes[:, 2:] - boxes[:, :2]
            # O-net gives landmarks as fractions of the box: 5 x values then 5 y values
            points = torch.stack([marks[:, :5], marks[:, 5:]], dim=2) * wh[:, None, :] + boxes[:, None, :2]
            boxes = _regress(boxes, reg)
            keep = nms_min(boxes, score, 0.7)
            found.append((boxes[keep], score[keep], points[keep]))
        return found


def _each_image(
    levels: list[Level],
    x: torch.Tensor,
    boxes: list[torch.Tensor],
    size: int,
    net: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
) -> list[tuple[torch.Tensor, ...]]:
    """``net`` run once on the ``size`` crops of every image's ``boxes``; its outputs split back per image
    (images without boxes get empty outputs, and no call is made when none has any)."""
    counts = [len(b) for b in boxes]
    crops = [
        _sample_crops([(t[i : i + 1], lsx, lsy) for t, lsx, lsy in levels], x[i : i + 1], b, size)
        for i, b in enumerate(boxes)
        if len(b)
    ]
    if not crops:  # the nets take an empty batch, which gives outputs of the right shapes to split
        crops = [x.new_zeros(0, 3, size, size).contiguous(memory_format=CL)]
    outputs = net(torch.cat(crops))
    return list(zip(*(o.split(counts) for o in outputs)))


def _sample_crops(levels: list[Level], x: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """``size`` x ``size`` crops of ``boxes`` (input pixels), black outside the image, channels-last.

    Each crop is sampled bilinearly at twice its size and averaged over 2x2 blocks, from the smallest pyramid
    level (or the input) where the box is still at least ``2 * size`` pixels wide: every output pixel averages
    four samples spaced at most one source pixel apart, close to the area resize MTCNN uses (a plain bilinear
    shrink aliases, which showed as extra false positives), in one ``grid_sample`` per source level instead of
    one resize per box. Outside the image the crop is black, as in the original MTCNN (facenet-pytorch
    instead stretches the in-image part of the box; its boxes differ there).
    """
    sources = [(x, 1.0, 1.0), *levels]
    side = boxes[:, 2] - boxes[:, 0]
    source_scale = boxes.new_tensor([s[1] for s in sources])
    fine = 2 * size
    fits = (side[:, None] * source_scale[None, :] >= fine).long()
    # sources are ordered by decreasing scale: the last one that fits is the smallest that fits (else the
    # input)
    index = (fits.cumsum(dim=1) * fits).argmax(dim=1)
    crops = x.new_empty(len(boxes), 3, fine, fine)
    steps = (torch.arange(fine, device=x.device, dtype=x.dtype) + 0.5) / fine  # sample centres in [0, 1]
    for i in index.unique().tolist():
        source, ssx, ssy = sources[i]
        sel = torch.nonzero(index == i, as_tuple=True)[0]
        b = boxes[sel]
        h, w = source.shape[2:]
        # grid_sample (align_corners=False): normalised -1 is the left edge of pixel 0, +1 the right edge
        gx = (b[:, 0:1] + (b[:, 2:3] - b[:, 0:1]) * steps) * (2 * ssx / w) - 1
        gy = (b[:, 1:2] + (b[:, 3:4] - b[:, 1:2]) * steps) * (2 * ssy / h) - 1
        grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=3)
        crops[sel] = F.grid_sample(source.expand(len(b), -1, -1, -1), grid, align_corners=False)
    return F.avg_pool2d(crops, 2).contiguous(memory_format=CL)
