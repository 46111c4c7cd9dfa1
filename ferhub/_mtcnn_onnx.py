"""MTCNN on the CPU without torch's thread pool: ONNX Runtime graphs for every pixel step, numpy for the
boxes.

The same computation as :class:`ferhub._mtcnn.FastMTCNN`, step for step (facenet-pytorch's P/R/O-net weights,
MTCNN's thresholds, the pyramid of exact halvings plus one bilinear step per level, the packing of small
levels into one P-net call, the 3x3 local-maximum NMS within a level, crops sampled from the pyramid level
closest to their size), so it finds the same faces with the same boxes to float rounding. What differs is
where it runs: torch's intra-op pool wakes its threads for every operator, which made detection 1.6-2x slower
or faster depending on the CPU and ``OMP_WAIT_POLICY``; here each pixel step is an ONNX Runtime session of one
thread:

- ``prepare``: uint8 HWC pixels -> MTCNN's ``(x - 127.5) / 128`` plus 1 (black is 0, see
  ``_mtcnn._to_tensor``), NCHW;
- ``resize``: bilinear resize (ONNX ``Resize``, half-pixel: torch's ``interpolate(align_corners=False)``);
- ``pnet``: P-net on one (packed) level;
- ``rnet`` / ``onet``: crops of the candidate boxes (``RoiAlign``: the bilinear samples at twice the size and
  2x2 means of ``_mtcnn._sample_crops``) and the net on them, one call per source level.

Thresholds, peaks, NMS and regression are numpy on a few thousand numbers.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ferhub import _compat, _onnx
from ferhub._mtcnn import CELL, PYRAMID_FACTOR, _load_nets, _Nets, _pack, auto_min_face_size
from ferhub.device import cpu_cores


def _prelu(x: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
    """PReLU written as ``(1 - a) relu(x) + a x``: ONNX Runtime's own PRelu kernel broadcasts slowly and keeps
    the convolutions before it from running in its blocked layout (R-net on 70 crops: 9.3 -> 5.0 ms)."""
    a = slope.view(1, -1, 1, 1) if x.ndim == 4 else slope
    return (1 - a) * F.relu(x) + a * x


class _Prepare(nn.Module):
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(1, H, W, 3) uint8 -> (1, 3, H, W) float, MTCNN's normalisation plus 1."""
        return pixels.permute(0, 3, 1, 2).float() * 0.0078125 + (1 - 127.5 * 0.0078125)


def _resize_graph() -> bytes:
    """``x`` (1, 3, H, W) resized to ``size`` (int64 [h, w]): bilinear, half-pixel centres, no
    antialiasing."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Shape", ["x"], ["shape"], start=0, end=2),
        helper.make_node("Concat", ["shape", "size"], ["sizes"], axis=0),
        helper.make_node(
            "Resize",
            ["x", "", "", "sizes"],
            ["y"],
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "resize",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"]),
            helper.make_tensor_value_info("size", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "oh", "ow"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _onnx.OPSET)])
    model.ir_version = _onnx.IR_VERSION  # not the onnx package's newest, which older runtimes refuse
    onnx.checker.check_model(model)
    return model.SerializeToString()


class _PNet(nn.Module):
    def __init__(self, nets: _Nets) -> None:
        super().__init__()
        self.n = nets.pnet
        self.conv1_weight, self.conv1_bias = (
            nn.Parameter(t.clone(), requires_grad=False) for t in nets.p_conv1
        )
        self.head = nn.Parameter(nets.p_head[0][:, :, None, None].clone(), requires_grad=False)
        self.head_bias = nn.Parameter(nets.p_head[1].clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 3, H, W) prepared pixels -> face probability (H', W') and box offsets (4, H', W')."""
        n = self.n
        x = F.conv2d(x, self.conv1_weight, self.conv1_bias)
        x = F.max_pool2d(_prelu(x, n.prelu1.weight), 2, 2, ceil_mode=True)
        x = _prelu(n.conv2(x), n.prelu2.weight)
        x = _prelu(n.conv3(x), n.prelu3.weight)
        out = F.conv2d(x, self.head, self.head_bias)[0]
        return torch.sigmoid(out[1] - out[0]), out[2:6]


PAD = (
    2  # zero border around a crop source: RoiAlign then blends into black as grid_sample's zero padding does
)


def _crop_graph(size: int, ir_version: int) -> Any:
    """``source`` (1, 3, H, W) and ``rois`` (N, 4) pixel-edge boxes -> ``crops`` (N, 3, size, size).

    ONNX ``RoiAlign`` (half-pixel, 2x2 samples per output pixel, averaged) is exactly
    ``_mtcnn._sample_crops``: bilinear samples at twice the size, 2x2 means. RoiAlign clamps samples within a
    pixel of the border to the edge where ``grid_sample`` blends them with zeros, so the source gets a zero
    border of ``PAD`` pixels
    first.
    """
    from onnx import TensorProto, helper

    pads = helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, PAD, PAD, 0, 0, PAD, PAD])
    shift = helper.make_tensor("shift", TensorProto.FLOAT, [], [float(PAD)])
    nodes = [
        helper.make_node("Pad", ["source", "pads"], ["padded"], mode="constant"),
        helper.make_node("Add", ["rois", "shift"], ["shifted"]),
        helper.make_node("Shape", ["rois"], ["count"], start=0, end=1),
        helper.make_node(
            "ConstantOfShape",
            ["count"],
            ["batch"],
            value=helper.make_tensor("z", TensorProto.INT64, [1], [0]),
        ),
        helper.make_node(
            "RoiAlign",
            ["padded", "shifted", "batch"],
            ["crops"],
            coordinate_transformation_mode="half_pixel",
            mode="avg",
            output_height=size,
            output_width=size,
            sampling_ratio=2,
            spatial_scale=1.0,
        ),
    ]
    graph = helper.make_graph(
        nodes,
        f"crop{size}",
        [
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 3, "height", "width"]),
            helper.make_tensor_value_info("rois", TensorProto.FLOAT, ["boxes", 4]),
        ],
        [helper.make_tensor_value_info("crops", TensorProto.FLOAT, ["boxes", 3, size, size])],
        initializer=[pads, shift],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _onnx.OPSET)])
    model.ir_version = ir_version
    return model


def _with_crops(net: bytes, size: int) -> bytes:
    """The net's graph preceded by :func:`_crop_graph`: inputs ``source`` and ``rois`` instead of crops."""
    import onnx
    from onnx import compose

    net_model = onnx.load_from_string(net)
    merged = compose.merge_models(
        _crop_graph(size, net_model.ir_version), net_model, io_map=[("crops", "crops")]
    )
    onnx.checker.check_model(merged)
    return merged.SerializeToString()


class _RNet(nn.Module):
    def __init__(self, nets: _Nets) -> None:
        super().__init__()
        self.n = nets.rnet
        self.conv1_weight, self.conv1_bias = (
            nn.Parameter(t.clone(), requires_grad=False) for t in nets.r_conv1
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 24, 24) crops -> face probability (N,) and box offsets (N, 4)."""
        n = self.n
        x = F.conv2d(x, self.conv1_weight, self.conv1_bias)
        x = F.max_pool2d(_prelu(x, n.prelu1.weight), 3, 2, ceil_mode=True)
        x = F.max_pool2d(_prelu(n.conv2(x), n.prelu2.weight), 3, 2, ceil_mode=True)
        x = _prelu(n.conv3(x), n.prelu3.weight)
        x = _prelu(n.dense4(x.permute(0, 3, 2, 1).flatten(1)), n.prelu4.weight)  # facenet's flatten order
        logits = n.dense5_1(x)
        return torch.sigmoid(logits[:, 1] - logits[:, 0]), n.dense5_2(x)


class _ONet(nn.Module):
    def __init__(self, nets: _Nets) -> None:
        super().__init__()
        self.n = nets.onet
        self.conv1_weight, self.conv1_bias = (
            nn.Parameter(t.clone(), requires_grad=False) for t in nets.o_conv1
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, 3, 48, 48) crops -> face probability (N,), box offsets (N, 4), landmarks (N, 10)."""
        n = self.n
        x = F.conv2d(x, self.conv1_weight, self.conv1_bias)
        x = F.max_pool2d(_prelu(x, n.prelu1.weight), 3, 2, ceil_mode=True)
        x = F.max_pool2d(_prelu(n.conv2(x), n.prelu2.weight), 3, 2, ceil_mode=True)
        x = F.max_pool2d(_prelu(n.conv3(x), n.prelu3.weight), 2, 2, ceil_mode=True)
        x = _prelu(n.conv4(x), n.prelu4.weight)
        x = _prelu(n.dense5(x.permute(0, 3, 2, 1).flatten(1)), n.prelu5.weight)
        logits = n.dense6_1(x)
        return torch.sigmoid(logits[:, 1] - logits[:, 0]), n.dense6_2(x), n.dense6_3(x)


Export = tuple[nn.Module, tuple[torch.Tensor, ...], list[str], list[str], dict[str, dict[int, str]]]


def net_modules() -> dict[str, Export]:
    """The exportable steps: name -> (module, example inputs, input names, output names, dynamic axes)."""
    nets = _load_nets("cpu")
    source = torch.zeros(1, 3, 40, 50)
    boxes = {"crops": {0: "boxes"}}
    return {
        "prepare": (
            _Prepare(),
            (torch.zeros(1, 40, 50, 3, dtype=torch.uint8),),
            ["pixels"],
            ["x"],
            {"pixels": {1: "height", 2: "width"}, "x": {2: "height", 3: "width"}},
        ),
        "pnet": (
            _PNet(nets).eval(),
            (source,),
            ["x"],
            ["prob", "reg"],
            {"x": {2: "height", 3: "width"}, "prob": {0: "rows", 1: "cols"}, "reg": {1: "rows", 2: "cols"}},
        ),
        "rnet": (
            _RNet(nets).eval(),
            (torch.zeros(2, 3, 24, 24),),
            ["crops"],
            ["prob", "reg"],
            {**boxes, "prob": {0: "boxes"}, "reg": {0: "boxes"}},
        ),
        "onet": (
            _ONet(nets).eval(),
            (torch.zeros(2, 3, 48, 48),),
            ["crops"],
            ["prob", "reg", "landmarks"],
            {**boxes, "prob": {0: "boxes"}, "reg": {0: "boxes"}, "landmarks": {0: "boxes"}},
        ),
    }


# R- and O-net run on crops of this size, cut by the graph in front of them (:func:`_with_crops`).
_CROP_SIZE = {"rnet": 24, "onet": 48}


def _assembled_key(*parts: object) -> str:
    """Cache key of a graph ferhub assembles with the ``onnx`` package (resize, crops + net): a hash of this
    file (the code building it), the opset and IR version it is written in and ``parts`` (what it is made of),
    so that a warm start reads it from the cache without importing ``onnx`` (~0.6 s, ml_dtypes)."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(repr((_onnx.EXPORT_VERSION, _onnx.OPSET, _onnx.IR_VERSION, PAD, *parts)).encode())
    return h.hexdigest()


def net_graphs() -> dict[str, bytes]:
    """Every step's ONNX graph, each built once per machine and cached: the nets by their weights' hash, the
    assembled graphs (resize; R-/O-net behind their crop step) by :func:`_assembled_key`."""
    graphs = {"resize": _onnx.cached(_assembled_key("mtcnn", "resize"), _resize_graph)}
    for name, (module, example, inputs, outputs, axes) in net_modules().items():
        key = _onnx.weights_hash(module, _onnx.EXPORT_VERSION, _onnx.OPSET, torch.__version__, "mtcnn", name)
        export = functools.partial(_onnx.export_bytes, module, example, inputs, outputs, axes)
        if name not in _CROP_SIZE:
            graphs[name] = _onnx.cached(key, export)
            continue
        size = _CROP_SIZE[name]
        # the bare net's graph is read (or exported) only when its merged graph is not cached yet
        graphs[name] = _onnx.cached(
            _assembled_key("mtcnn", "crops", size, key),
            lambda k=key, build=export, s=size: _with_crops(_onnx.cached(k, build), s),
        )
    return graphs


def _peaks(prob: np.ndarray, level_of: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Cells at or above ``threshold`` that are the maximum of their 3x3 neighbours of the same level.

    See ``FastMTCNN._stage1``: within a level, this is MTCNN's greedy NMS at IoU 0.5 without a sequential
    pass.
    """
    prob = np.where(level_of >= 0, prob, -1.0)
    h, w = prob.shape
    padded = np.pad(prob, 1, constant_values=-1.0)
    padded_level = np.pad(level_of, 1, constant_values=-1)
    neighbours = np.full(prob.shape, -1.0, dtype=prob.dtype)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if (dy, dx) != (1, 1):
                same = padded_level[dy : dy + h, dx : dx + w] == level_of
                np.maximum(neighbours, np.where(same, padded[dy : dy + h, dx : dx + w], -1.0), out=neighbours)
    return np.nonzero((prob >= threshold) & (prob >= neighbours))


def _square(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    cx, cy = boxes[:, 0] + w / 2, boxes[:, 1] + h / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    wh = np.tile(boxes[:, 2:] - boxes[:, :2], 2)
    return boxes + reg * wh


def nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """MTCNN's "Min" NMS (intersection over the smaller area), greedy and exact; see ``_mtcnn.nms_min``."""
    order = np.argsort(-scores, kind="stable")
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(b[:, None, :2], b[None, :, :2])
    rb = np.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    over = np.triu(inter / np.maximum(np.minimum(area[:, None], area[None, :]), 1e-9), k=1) > threshold
    keep = np.ones(len(b), dtype=bool)
    for _ in range(len(b)):
        new = ~(over & keep[:, None]).any(axis=0)
        if np.array_equal(new, keep):
            break
        keep = new
    return order[keep]


Level = tuple[np.ndarray, float, float]  # (1, 3, h, w) prepared pixels, x and y scale relative to the photo


def crop_sources(
    levels: list[Level], boxes: np.ndarray, size: int
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Per source level: (level index, rows of ``boxes`` read from it, those boxes in its pixels).

    ``levels`` start with the photo itself (scale 1). Each box is read from the smallest level where it is
    still at least ``2 * size`` pixels wide (else the photo), as ``_mtcnn._sample_crops`` does.
    """
    scales = np.array([sx for _, sx, _ in levels], dtype=np.float32)
    side = boxes[:, 2] - boxes[:, 0]
    fits = (side[:, None] * scales[None, :] >= 2 * size).astype(np.int64)
    index = (np.cumsum(fits, axis=1) * fits).argmax(axis=1)
    out = []
    for i in np.unique(index).tolist():
        _, ssx, ssy = levels[i]
        rows = np.nonzero(index == i)[0]
        rois = boxes[rows, :4] * np.array([ssx, ssy, ssx, ssy], dtype=np.float32)
        out.append((i, rows, np.ascontiguousarray(rois, dtype=np.float32)))
    return out


_NETS = ("pnet", "rnet", "onet")


class OnnxMTCNN:
    """MTCNN detection on the CPU in ONNX Runtime (see the module docstring); the ``FastMTCNN.detect``
    contract."""

    def __init__(
        self, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7), threads: int | None = None
    ) -> None:
        """``threads``: intra-op threads of the P/R/O-net sessions (default: every core this process may use);
        the pixel steps (``prepare``, ``resize``) always run on one, they are memory-bound."""
        self.thresholds = tuple(float(t) for t in thresholds)
        self.threads = cpu_cores() if threads is None else max(1, int(threads))
        # The nets are where the time goes (P-net over the pyramid, R-net over ~100 crops: ~20 of ~28 ms on a
        # 640x480 photo) and their convolutions split across threads that never spin (see _onnx.session). On
        # 2 cores, one photo: 25.2 -> 23.8 ms quiet, 72.8 -> 47.7 ms with the load average at 18.
        self.sessions = {
            name: _onnx.session(graph, self.threads if name in _NETS else 1)
            for name, graph in net_graphs().items()
        }

    def _run(self, name: str, **inputs: np.ndarray) -> list[np.ndarray]:
        return self.sessions[name].run(None, inputs)

    def _resize(self, x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        return self._run("resize", x=x, size=np.array(size, dtype=np.int64))[0]

    def detect(
        self, image: Image.Image, *, min_face_size: float | None = None, max_side: int = 1024
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``(N, 4)``, scores ``(N,)`` and landmarks ``(N, 5, 2)`` in ``image``'s pixels."""
        width, height = image.size
        # large photos: detected on an integer box-reduced copy at least max_side large (see
        # FastMTCNN._detect)
        shrink = min(1.0, max_side / max(width, height))
        reduce = int(1 / shrink + 1e-9)
        if reduce >= 2:
            image = image.reduce(reduce)
        sx, sy = width / image.width, height / image.height
        if min_face_size is None:
            detection_w, detection_h = width * shrink, height * shrink
            min_face = auto_min_face_size(round(detection_w), round(detection_h)) * image.width / detection_w
        else:
            min_face = max(float(min_face_size) / sx, image.width / (width * shrink))
        empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
        x = self._run("prepare", pixels=np.asarray(image)[None])[0]
        levels = self._pyramid(x, min_face)
        if not levels:
            return empty
        boxes = self._stage1(levels)
        if len(boxes) == 0:
            return empty
        sources = [(x, 1.0, 1.0), *levels]
        boxes, _ = self._stage2(sources, boxes)
        if len(boxes) == 0:
            return empty
        boxes, scores, points = self._stage3(sources, boxes)
        scale = np.array([sx, sy], dtype=np.float32)
        return (boxes * np.tile(scale, 2)).astype(np.float32), scores, (points * scale).astype(np.float32)

    def _pyramid(self, x: np.ndarray, min_face: float) -> list[Level]:
        """Levels from scale ``12 / min_face`` down to a 12 px shorter side (``FastMTCNN._pyramid``'s
        steps)."""
        h, w = x.shape[2:]
        halvings = [x]
        levels: list[Level] = []
        scale = CELL / min_face
        while min(h, w) * scale >= CELL:
            size = (max(CELL, round(h * scale)), max(CELL, round(w * scale)))
            while halvings[-1].shape[2] >= 2 * size[0] and halvings[-1].shape[3] >= 2 * size[1]:
                last = halvings[-1]
                halvings.append(self._resize(last, (last.shape[2] // 2, last.shape[3] // 2)))
            source = next(
                (t for t in reversed(halvings) if t.shape[2] >= size[0] and t.shape[3] >= size[1]), x
            )
            if tuple(source.shape[2:]) != size:
                source = self._resize(source, size)
            levels.append((source, size[1] / w, size[0] / h))
            scale *= PYRAMID_FACTOR
        return levels

    def _score_maps(
        self, levels: list[Level]
    ) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
        """P-net's maps per call (probability, offsets, level index of each cell or -1) and each level's
        origin.

        The two largest levels run alone; the small ones share one zero-padded canvas (see
        ``FastMTCNN._score_maps``: P-net has no padding, so a window inside a level sees only that level).
        """
        maps = []
        for index, (level, _, _) in enumerate(levels[:2]):
            prob, reg = self._run("pnet", x=level)
            maps.append((prob, reg, np.full(prob.shape, index)))
        origins = [(0, 0)] * min(len(levels), 2)
        small = levels[2:]
        if small:
            offsets, size = _pack([level.shape[2:] for level, _, _ in small])
            canvas = np.zeros((1, 3, *size), dtype=np.float32)
            for (level, _, _), (oy, ox) in zip(small, offsets):
                canvas[:, :, oy : oy + level.shape[2], ox : ox + level.shape[3]] = level
            prob, reg = self._run("pnet", x=canvas)
            level_of = np.full(prob.shape, -1)
            for index, ((level, _, _), (oy, ox)) in enumerate(zip(small, offsets), start=2):
                rows, cols = (level.shape[2] - CELL) // 2 + 1, (level.shape[3] - CELL) // 2 + 1
                level_of[oy // 2 : oy // 2 + rows, ox // 2 : ox // 2 + cols] = index
            maps.append((prob, reg, level_of))
            origins += offsets
        return maps, np.array(origins, dtype=np.float32)

    def _stage1(self, levels: list[Level]) -> np.ndarray:
        """P-net over every level -> candidates ``(N, 5)`` (x1, y1, x2, y2, score), regressed and squared."""
        scale_x = np.array([lsx for _, lsx, _ in levels], dtype=np.float32)
        scale_y = np.array([lsy for _, _, lsy in levels], dtype=np.float32)
        maps, origins = self._score_maps(levels)
        found = []
        for prob, reg, level_of in maps:
            ys, xs = _peaks(prob, level_of, self.thresholds[0])
            if len(ys) == 0:
                continue
            level = level_of[ys, xs]
            lsx, lsy = scale_x[level], scale_y[level]
            x1 = (2 * xs - origins[level, 1]) / lsx
            y1 = (2 * ys - origins[level, 0]) / lsy
            boxes = np.stack([x1, y1, x1 + CELL / lsx, y1 + CELL / lsy], axis=1)
            found.append(np.concatenate([boxes, prob[ys, xs][:, None], reg[:, ys, xs].T], axis=1))
        if not found:
            return np.zeros((0, 5), dtype=np.float32)
        cand = np.concatenate(found).astype(np.float32)
        cand = cand[_compat.nms_numpy(cand[:, :4], cand[:, 4], 0.7)]  # across levels, as MTCNN does
        return np.concatenate([_square(_regress(cand[:, :4], cand[:, 5:9])), cand[:, 4:5]], axis=1)

    def _net_on_crops(
        self, name: str, sources: list[Level], boxes: np.ndarray, size: int
    ) -> list[np.ndarray]:
        """R- or O-net's outputs for ``size`` x ``size`` crops of ``boxes``, one call per source level."""
        outputs: list[np.ndarray] | None = None
        for index, rows, rois in crop_sources(sources, boxes, size):
            result = self._run(name, source=sources[index][0], rois=rois)
            if outputs is None:
                outputs = [np.empty((len(boxes), *r.shape[1:]), dtype=r.dtype) for r in result]
            for out, r in zip(outputs, result):
                out[rows] = r
        assert outputs is not None
        return outputs

    def _stage2(self, sources: list[Level], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R-net on 24x24 crops of every candidate: refine, threshold, NMS."""
        score, reg = self._net_on_crops("rnet", sources, boxes[:, :4], 24)
        ok = score > self.thresholds[1]
        boxes, score, reg = boxes[ok, :4], score[ok], reg[ok]
        keep = _compat.nms_numpy(boxes, score, 0.7)
        return _square(_regress(boxes[keep], reg[keep])), score[keep]

    def _stage3(self, sources: list[Level], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """O-net on 48x48 crops: final score, box and 5 landmarks; MTCNN's "Min" NMS."""
        score, reg, marks = self._net_on_crops("onet", sources, boxes, 48)
        ok = score > self.thresholds[2]
        boxes, score, reg, marks = boxes[ok], score[ok], reg[ok], marks[ok]
        wh = boxes[:, 2:] - boxes[:, :2]
        # O-net gives landmarks as fractions of the box: 5 x values then 5 y values
        points = np.stack([marks[:, :5], marks[:, 5:]], axis=2) * wh[:, None, :] + boxes[:, None, :2]
        boxes = _regress(boxes, reg)
        keep = nms_min(boxes, score, 0.7)
        return boxes[keep], score[keep], points[keep]
