"""MTCNN on the CPU without torch's thread pool: ONNX Runtime graphs for the nets, compiled kernels for the
pixel steps and the NMS, numpy for the boxes.

The same computation as :class:`ferhub._mtcnn.FastMTCNN`, step for step (facenet-pytorch's P/R/O-net weights,
MTCNN's thresholds, the pyramid of exact halvings plus one bilinear step per level, the packing of small
levels into one P-net call, the 3x3 local-maximum NMS within a level, crops sampled from the pyramid level
closest to their size), so it finds the same faces with the same boxes to float rounding. What differs is
where it runs: torch's intra-op pool wakes its threads for every operator, which made detection 1.6-2x slower
or faster depending on the CPU and ``OMP_WAIT_POLICY``; here every step runs on the thread that calls it, each
ONNX Runtime session on one thread:

- the pyramid's first halving, which is all the pyramid needs of the photo: straight from the uint8 HWC pixels
  (RGB or RGBX, :func:`ferhub.images.rgb_pixels`) to MTCNN's ``(x - 127.5) / 128`` plus 1 (black is 0, see
  ``_mtcnn._to_tensor``), NCHW, by :func:`ferhub._mtcnn_kernels.halve` for even sides, else resized, then
  normalised (:func:`ferhub._mtcnn_kernels.resize_pixels`);
- the other levels: bilinear resizes (half-pixel: torch's ``interpolate(align_corners=False)``,
  :func:`ferhub._mtcnn_kernels.resize`);
- ``pnet``: P-net on one (packed) level, and the cells of its map that are candidates (threshold, 3x3 local
  maximum: :func:`_peaks_graph`) with their scores and box offsets;
- ``rnet`` / ``onet``: the net on crops of the candidate boxes, cut from the pyramid's levels or from the
  photo's pixels (:mod:`ferhub._mtcnn_kernels`: the bilinear samples at twice the size and 2x2 means of
  ``_mtcnn._sample_crops``), in one call, or two side by side on half the crops each.

The boxes between the nets are compiled too, one call a step (:mod:`ferhub._mtcnn_kernels`: ``pnet_boxes``
after each P-net call; ``candidates``, ``refined`` and ``faces`` at the end of each stage: the thresholds, the
greedy NMS of :func:`nms_iou` and :func:`nms_min`, the boxes' regression; ``crop_sources`` before R- and
O-net).

Detection imports no torch (1.2 s of a CLI start): the graphs are cached per machine under keys made from
the files they come from (:func:`_graph_key`), and the torch modules they are exported from
(:mod:`ferhub._mtcnn_export`) are imported only on a cache miss. The geometry both implementations share
(``CELL``, ``PYRAMID_FACTOR``, :func:`auto_min_face_size`, :func:`level_sizes`, ``_pack``) lives here for the
same reason.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ferhub import _compat, _onnx
from ferhub._mtcnn_kernels import (
    SCALE,
    candidates,
    crop_sources,
    crops_of_levels,
    crops_of_pixels,
    faces,
    halve,
    nms,
    pnet_boxes,
    refined,
    resize,
    resize_pixels,
)
from ferhub.device import cpu_cores
from ferhub.images import rgb_pixels

PYRAMID_FACTOR = 0.709  # MTCNN's: each level has half the area of the one before
CELL = 12  # P-net's window: a face of min_face_size px is scaled to 12 px at the first level
# The first level is at most this many times the detection image's size: a min_face_size under CELL / 4 = 3
# detection pixels searches from 3 px. P-net's work and memory grow with (CELL / min_face_size)^2: 1 px on a
# 640x480 photo asked for a 7680x5760 first level (13-40 s, 5-10 GB), 0.5 px for four times that.
MAX_UPSCALE = 4


def auto_min_face_size(width: int, height: int) -> float:
    """Default smallest face (detection-image pixels): 1/16 of the shorter side, within [12, 40] px.

    Faces much smaller than 1/16 of the frame are rare in photos people classify expressions on, and P-net's
    cost scales with ``(1 / min_face_size)^2``; the 40 px cap keeps small faces of large group photos found,
    the 12 px floor is P-net's window (tiny images such as 25x25 face crops are searched at full resolution).
    """
    return float(min(40.0, max(12.0, min(width, height) / 16)))


def level_sizes(height: int, width: int, min_face: float) -> list[tuple[int, int]]:
    """The pyramid's level sizes (h, w) for a ``height`` x ``width`` image: from scale ``12 / min_face`` (at
    most :data:`MAX_UPSCALE`), each ``PYRAMID_FACTOR`` smaller, down to a 12 px shorter side. Both detectors
    (ONNX Runtime and torch) take their levels from here."""
    sizes = []
    scale = min(CELL / min_face, MAX_UPSCALE)
    while min(height, width) * scale >= CELL:
        sizes.append((max(CELL, round(height * scale)), max(CELL, round(width * scale))))
        scale *= PYRAMID_FACTOR
    return sizes


def _weights_file(name: str) -> Path:
    """facenet-pytorch's MTCNN weights (``pnet.pt`` ...), found without importing facenet-pytorch.

    Importing facenet-pytorch imports torchvision, ~1 s of start-up that detection does not need.
    """
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:  # a dependency of ferhub's: a broken install
        raise _compat.missing_package("facenet-pytorch", None, "Face detection (MTCNN's weights)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.pt"


@functools.lru_cache(maxsize=16)
def _pack(sizes: tuple[tuple[int, int], ...]) -> tuple[tuple[tuple[int, int], ...], tuple[int, int]]:
    """Offsets (y, x) that place images of ``sizes`` (h, w), largest first, on a canvas as tall as the first;
    all even. Returns the offsets and the canvas size (h, w); cached (a video's frames share one layout).

    Skyline packing: each image goes where the canvas stays narrowest, then lowest, on top of what lies below
    it. A 640x480 photo's small levels fill 1/1.13 of the canvas (28224 pixels), where stacking them in
    columns left 1/1.27 (31556): P-net reads every pixel of the canvas.
    """
    height = sizes[0][0] + sizes[0][0] % 2
    skyline = [(0, 0)]  # (x, y): free from y on, from x to the next segment's x (the last: to the right)
    offsets, width = [], 0
    for h, w in sizes:
        h, w = h + h % 2, w + w % 2
        spots = []
        for i, (x, _) in enumerate(skyline):
            y = max(top for left, top in skyline[i:] if left < x + w)  # resting on what lies below
            if y + h <= height:
                spots.append((max(width, x + w), y, x))
        _, y, x = min(spots)  # the last segment is free from 0: there is always a spot
        offsets.append((y, x))
        width = max(width, x + w)
        below = [top for left, top in skyline if left < x + w][-1]  # what continues right of the image
        right = [(left, top) for left, top in skyline if left >= x + w]
        edge = [] if right and right[0][0] == x + w else [(x + w, below)]
        skyline = [(left, top) for left, top in skyline if left < x] + [(x, y + h)] + edge + right
    return tuple(offsets), (height, width)


def _merged(
    first: Any, second: Any, io_map: list[tuple[str, str]], outputs: list[str] | None = None
) -> bytes:
    """Two ONNX models as one checked graph, ``first``'s outputs named in ``io_map`` feeding ``second``."""
    import onnx
    from onnx import compose

    merged = compose.merge_models(first, second, io_map=io_map, outputs=outputs)
    onnx.checker.check_model(merged)
    return merged.SerializeToString()


def _peaks_graph(ir_version: int) -> Any:
    """P-net's maps ``prob`` (H', W') and ``reg`` (4, H', W'), ``outside`` (broadcast to H' x W': 0 for
    cells of a level, -inf for the others of a packed call, :func:`_level_map`) and ``threshold`` ->
    ``cells`` (K, 2) (row, column), ``score`` (K,) and ``offsets`` (K, 4) of the cells at or above the
    threshold that are the maximum of their 3x3 neighbours of the same level.

    See ``FastMTCNN._stage1``: within a level, this is MTCNN's greedy NMS at IoU 0.5 without a sequential
    pass. The levels of a packed map never touch (:func:`_level_map`), so a cell's neighbours are of its
    level or of none (-inf, which never peaks nor holds a neighbour down), and the test is a 3x3 max-pool.
    It runs in the graph because numpy's passes over the map and the look-ups of the cells' scores and offsets
    took ~70 us a P-net call on the thread between the nets (detection 0.985x in the graph, Intel Xeon).
    """
    from onnx import TensorProto, helper

    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [0, 1])
    nodes = [
        helper.make_node("Add", ["prob", "outside"], ["masked"]),
        helper.make_node("Unsqueeze", ["masked", "axes"], ["masked4"]),
        helper.make_node("MaxPool", ["masked4"], ["local4"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Squeeze", ["local4", "axes"], ["local"]),
        helper.make_node("GreaterOrEqual", ["masked", "local"], ["top"]),
        helper.make_node("GreaterOrEqual", ["masked", "threshold"], ["above"]),
        helper.make_node("And", ["top", "above"], ["peak"]),
        helper.make_node("NonZero", ["peak"], ["where"]),
        helper.make_node("Transpose", ["where"], ["cells"], perm=[1, 0]),
        helper.make_node("GatherND", ["prob", "cells"], ["score"]),
        helper.make_node("Transpose", ["reg"], ["reg_last"], perm=[1, 2, 0]),
        helper.make_node("GatherND", ["reg_last", "cells"], ["offsets"]),
    ]
    graph = helper.make_graph(
        nodes,
        "peaks",
        [
            helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["rows", "cols"]),
            helper.make_tensor_value_info("reg", TensorProto.FLOAT, [4, "rows", "cols"]),
            helper.make_tensor_value_info("outside", TensorProto.FLOAT, ["out_rows", "out_cols"]),
            helper.make_tensor_value_info("threshold", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cells", TensorProto.INT64, ["found", 2]),
            helper.make_tensor_value_info("score", TensorProto.FLOAT, ["found"]),
            helper.make_tensor_value_info("offsets", TensorProto.FLOAT, ["found", 4]),
        ],
        initializer=[axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _onnx.OPSET)])
    model.ir_version = ir_version
    return model


def _with_peaks(net: bytes) -> bytes:
    """P-net's graph followed by :func:`_peaks_graph`: outputs ``cells``, ``score`` and ``offsets``, then
    P-net's own maps ``prob`` and ``reg``."""
    import onnx

    net_model = onnx.load_from_string(net)
    return _merged(
        net_model,
        _peaks_graph(net_model.ir_version),
        [("prob", "prob"), ("reg", "reg")],
        outputs=["cells", "score", "offsets", "prob", "reg"],
    )


# R- and O-net run on crops of this size (:meth:`OnnxMTCNN._crops_net`)
_CROP_SIZE = {"rnet": 24, "onet": 48}
# With two streams, the crops go in two halves side by side from this many: fewer R-net crops are
# not worth the hand-off; an O-net crop costs several R-net ones (detection on Intel Xeon: 0.97-0.98x the time
# with O-net's split from 2 crops instead of 8; on AMD EPYC, 0.98-1.01x)
_SPLIT_FROM = {"rnet": 8, "onet": 2}


@functools.cache
def _nets_hash() -> str:
    """A hash of facenet-pytorch's P/R/O-net weight files (read once per process)."""
    h = hashlib.sha256()
    for net in _NETS:
        h.update(_weights_file(net).read_bytes())
    return h.hexdigest()


def _graph_key(name: str) -> str:
    """Cache key of one step's graph, from what it is made of, read without importing torch: facenet-pytorch's
    weight files; ferhub's code, torch's version (its exporter) and the opset
    (:func:`ferhub._onnx.source_hash`); the IR version. A warm start reads every graph from the cache."""
    parts = ("mtcnn", name, _nets_hash(), _onnx.source_hash(), _onnx.IR_VERSION)
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _build(name: str) -> bytes:
    """Build one net's graph, exported from facenet-pytorch's in torch (a cache miss only); P-net's with the
    peaks of its maps (:func:`_with_peaks`)."""
    from ferhub._mtcnn_export import net_modules

    module, example, inputs, outputs, axes = net_modules()[name]
    graph = _onnx.export_bytes(module, example, inputs, outputs, axes)
    return graph if name in _CROP_SIZE else _with_peaks(graph)


def net_graphs() -> dict[str, bytes]:
    """The nets' ONNX graphs (P-net with its peaks, R-net, O-net), each built once per machine and cached by
    :func:`_graph_key`."""
    return {name: _onnx.cached(_graph_key(name), functools.partial(_build, name)) for name in _NETS}


def net_session(name: str, threads: int) -> Any:
    """An ONNX Runtime session of one net's graph (see :func:`net_graphs`); a cached graph that does not load
    is built again (:func:`ferhub._onnx.cached_session`)."""
    return _onnx.cached_session(_graph_key(name), functools.partial(_build, name), threads)[0]


def graphs_cached() -> bool:
    """Whether :func:`net_graphs` finds every net's graph in this process or on this machine. Without them, a
    process's first detection exports them and, on a fresh install, Numba compiles the kernels too: ~10 s
    (11.8 s for a first ``ferhub predict`` of one photo against ~1 s after it; AMD EPYC, 2 cores)."""
    return all(_onnx.is_cached(_graph_key(name)) for name in _NETS)


@functools.lru_cache(maxsize=16)
def _level_map(
    shape: tuple[int, int], sizes: tuple[tuple[int, int], ...], offsets: tuple[tuple[int, int], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Which level each cell of P-net's map of a packed canvas (:func:`_pack`) belongs to, -1 for none, and
    the ``outside`` input of :func:`_peaks_graph` (0 for a level's cells, -inf for the others); read-only,
    made once per layout (a video's frames share one).

    A level of h rows has ``(h - CELL) // 2 + 1`` rows of cells (P-net: a 12 px window, stride 2, no padding),
    and the next level in its column starts ``h // 2`` or more cells further, so at least 5 cells of no level
    lie between two levels (as between columns): :func:`_peaks_graph` relies on it.
    """
    level_of = np.full(shape, -1, dtype=np.int16)
    for index, ((h, w), (oy, ox)) in enumerate(zip(sizes, offsets)):
        rows, cols = (h - CELL) // 2 + 1, (w - CELL) // 2 + 1
        level_of[oy // 2 : oy // 2 + rows, ox // 2 : ox // 2 + cols] = index
    outside = np.where(level_of >= 0, np.float32(0), np.float32(-np.inf)).astype(np.float32)
    level_of.flags.writeable = outside.flags.writeable = False
    return level_of, outside


# the ``outside`` input of a P-net call on one level: every cell is the level's
_INSIDE = np.zeros((1, 1), dtype=np.float32)
# the ``level_of`` of a P-net call on one level (see _mtcnn_kernels.pnet_boxes); read-only as a canvas's
# (_level_map), so that the kernel has one compiled version for both
_ONE_LEVEL = np.zeros((0, 0), dtype=np.int16)
_ONE_LEVEL.flags.writeable = False
# the P-net graph's outputs detection reads (:func:`_with_peaks`)
_PEAKS = ["cells", "score", "offsets"]


def _map_shape(size: tuple[int, int]) -> tuple[int, int]:
    """The shape of P-net's maps of an input of ``size`` (h, w): a 3x3 convolution, a 2x2 max-pool that
    keeps a half window at an odd edge, two 3x3 convolutions."""
    h, w = size
    return (h - 1) // 2 - 4, (w - 1) // 2 - 4


def iou_threshold(threshold: float) -> np.float32:
    """The float32 threshold with which :func:`ferhub._mtcnn_kernels.nms` keeps exactly torchvision's boxes:
    torchvision compares the float32 IoU with the float64 threshold, which the largest float32 not above it
    does exactly."""
    return np.float32(_compat.threshold_for(np.dtype(np.float32), threshold))


def nms_iou(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """MTCNN's NMS across levels and after R-net, as the stages run it (``_IOU``): greedy, intersection over
    union above ``threshold``, exactly torchvision's; the kept rows, highest score first."""
    return nms(boxes, scores, iou_threshold(threshold), False)


def nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """MTCNN's "Min" NMS after O-net, as the stages run it (``_MIN_OVERLAP``): intersection over the smaller
    area above ``threshold``, compared in float32 as torch does, greedy and exact; see ``_mtcnn.nms_min``."""
    return nms(boxes, scores, np.float32(threshold), True)


# MTCNN's NMS thresholds as the compiled stages take them: IoU 0.7 across P-net's levels and after R-net
# (:func:`nms_iou`), "Min" 0.7 after O-net (:func:`nms_min`)
_IOU = iou_threshold(0.7)
_MIN_OVERLAP = np.float32(0.7)


# (1, 3, h, w) MTCNN's values (None for the first level while the second stream makes it, see
# OnnxMTCNN._pyramid), x and y scale relative to the photo
Level = tuple[np.ndarray | None, float, float]


def _halve(pixels: np.ndarray, out: np.ndarray, start: int, stop: int) -> None:
    """Rows ``start:stop`` (even) of ``pixels`` (1, H, W, C) uint8, W even, halved into their rows of ``out``
    (1, 3, H // 2, W // 2) as MTCNN's values (:func:`ferhub._mtcnn_kernels.halve`: the bilinear halving,
    exactly)."""
    halve(pixels[0], out[0], start, stop)


def _queued(
    stream: ThreadPoolExecutor, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Callable[[], Any]:
    """Queue ``fn(*args, **kwargs)`` on ``stream``; the function returned gives its result, and runs it on the
    calling thread when the stream has not started it yet: a stream held up on a busy machine never makes the
    caller wait longer than doing the work itself."""
    future = stream.submit(fn, *args, **kwargs)
    return lambda: fn(*args, **kwargs) if future.cancel() else future.result()


class _Sources:
    """What R-net's and O-net's crops are read from: the photo's pixels (H, W, C) uint8, then the pyramid's
    levels, each as an array (3, H, W) and its region there (top, left, height, width): the level's own, or
    its place on the canvas the small levels share (``packed``, :meth:`OnnxMTCNN._pyramid`)."""

    def __init__(
        self,
        pixels: np.ndarray,
        levels: list[Level],
        packed: tuple[np.ndarray, tuple[tuple[int, int], ...]] | None = None,
    ) -> None:
        self.pixels = pixels
        self.levels: list[tuple[np.ndarray, int, int, int, int]] = []
        for i, (level, _, _) in enumerate(levels):
            height, width = level.shape[2:]  # type: ignore[union-attr]
            if packed is not None and i >= 2:
                (oy, ox), canvas = packed[1][i - 2], packed[0]
                self.levels.append((canvas[0], oy, ox, height, width))
            else:
                self.levels.append((level[0], 0, 0, height, width))  # type: ignore[index]
        self.scales = np.array([(1.0, 1.0)] + [(sx, sy) for _, sx, sy in levels], dtype=np.float32)

    def crops(self, index: np.ndarray, rois: np.ndarray, size: int) -> np.ndarray:
        """``size`` x ``size`` crops (N, 3, size, size) of ``rois`` (N, 4), each in source ``index[i]``'s
        pixels (0: the photo; a source's rows adjacent, as :func:`crop_sources` gives them)."""
        out = np.empty((len(rois), 3, size, size), dtype=np.float32)
        starts = [0, *(np.flatnonzero(np.diff(index)) + 1).tolist()]
        for start, stop in zip(starts, [*starts[1:], len(index)]):
            part, source = slice(start, stop), int(index[start])
            if source == 0:
                crops_of_pixels(self.pixels, rois[part], out[part])
            else:
                crops_of_levels(*self.levels[source - 1], rois[part], out[part])
        return out


_NETS = ("pnet", "rnet", "onet")


class OnnxMTCNN:
    """MTCNN detection on the CPU in ONNX Runtime (see the module docstring); the ``FastMTCNN.detect``
    contract."""

    def __init__(
        self,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        threads: int | None = None,
        *,
        streams: int = 2,
    ) -> None:
        """``threads``: the threads detection may use (default: every core this process may use).
        ``streams``: the nets run in this many streams (1 or 2; one when there is one thread), each session
        on ``threads / streams`` threads: P-net's largest level beside the others (:meth:`_stage1`), R-
        and O-net's crops in two halves (:meth:`_net_on_crops`). The compiled steps
        (:mod:`ferhub._mtcnn_kernels`) run on the thread that calls them."""
        self.thresholds = tuple(float(t) for t in thresholds)
        self._pnet_threshold = np.array(self.thresholds[0], dtype=np.float32)
        self._thresholds = tuple(np.float32(t) for t in self.thresholds)  # as the nets' float32 scores
        self.threads = cpu_cores() if threads is None else max(1, int(threads))
        self.streams = 2 if streams >= 2 and self.threads >= 2 else 1
        # The nets are where the time goes (P-net over the pyramid, R-net over ~100 crops: ~20 of ~28 ms on a
        # 640x480 photo). Split across threads that never spin (see _onnx.session), one photo on 2 cores took
        # 25.2 -> 23.8 ms quiet, 72.8 -> 47.7 ms with the load average at 18; split into two streams of whole
        # calls instead, no operator waits for the other thread (bench/detect.py --streams).
        per_stream = self.threads // self.streams
        self.sessions = {name: net_session(name, per_stream) for name in _NETS}
        # the second stream: one worker thread, started on first use; a forked child does not have it (it
        # would wait for it forever), so only the process that made it uses it
        self._stream = ThreadPoolExecutor(1, thread_name_prefix="ferhub-nets") if self.streams == 2 else None
        self._pid = os.getpid()
        self._callers = 0  # detect() calls under way
        self._callers_lock = threading.Lock()

    def _run(self, name: str, outputs: list[str] | None = None, **inputs: np.ndarray) -> list[np.ndarray]:
        return self.sessions[name].run(outputs, inputs)

    def _second_stream(self) -> ThreadPoolExecutor | None:
        """The second stream, when this detection may use it: only while it is the only one. Callers side by
        side (a folder's photos, ``Predictor._detect_all``) already keep every core busy, one each; they would
        all queue for the one second stream (a folder of 640x480 photos: 1.02-1.14x the time a photo)."""
        alone = self._callers == 1 and os.getpid() == self._pid
        return self._stream if alone else None

    @staticmethod
    def _side_by_side(
        calls: list[functools.partial], stream: ThreadPoolExecutor | None
    ) -> list[list[np.ndarray]]:
        """Each call's outputs, in order. With a second ``stream``, every call is queued on it and this thread
        takes calls from the back of the queue while the stream takes them from the front, so the two share
        the work whatever each call costs (when the calls were one per source level, of few or many crops,
        handing every other call to the stream took 1.02-1.04x the time); a call the stream has not started
        when this thread reaches it runs here."""
        if stream is None or len(calls) < 2:
            return [call() for call in calls]
        queued = [_queued(stream, call) for call in calls]
        return [result() for result in reversed(queued)][::-1]

    @staticmethod
    def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """``x`` (1, 3, H, W) resized bilinearly to ``size`` (h, w) (:func:`ferhub._mtcnn_kernels.resize`)."""
        out = np.empty((1, 3, *size), dtype=np.float32)
        resize(x[0], out[0], 0, 0, *size)
        return out

    def detect(
        self, image: Image.Image, *, min_face_size: float | None = None, max_side: int = 1024
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes ``(N, 4)``, scores ``(N,)`` and landmarks ``(N, 5, 2)`` in ``image``'s pixels."""
        with self._callers_lock:
            self._callers += 1
        try:
            return self._detect(image, min_face_size, max_side)
        finally:
            with self._callers_lock:
                self._callers -= 1

    def _detect(
        self, image: Image.Image, min_face_size: float | None, max_side: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        pixels = rgb_pixels(image)[None]
        levels, first, canvas = self._pyramid(pixels, min_face, self._second_stream())
        if not levels:
            return empty
        boxes = self._stage1(levels, first, canvas)
        if len(boxes) == 0:
            return empty
        sources = _Sources(pixels[0], levels, canvas)
        boxes, _ = self._stage2(sources, boxes)
        if len(boxes) == 0:
            return empty
        return self._stage3(sources, boxes, (sx, sy))

    def _pyramid(
        self, pixels: np.ndarray, min_face: float, stream: ThreadPoolExecutor | None = None
    ) -> tuple[list[Level], Callable[[], Any] | None, tuple[np.ndarray, tuple[tuple[int, int], ...]] | None]:
        """Levels from scale ``12 / min_face`` down to a 12 px shorter side (``FastMTCNN._pyramid``'s
        steps) of ``pixels`` (1, H, W, 3 or 4) uint8; with a second ``stream``, what gives the first level's
        pixels and P-net's candidates on them, which that stream makes (queued as soon as the level's source
        exists, beside the resizing of the others; the first level's pixels are ``None`` until
        :meth:`_stage1` has them); and the canvas the levels from the third on are resized into, with their
        offsets (``_pack``; their pixels in ``levels`` are its regions). Work queued on the stream that it
        has not started when its result is wanted runs on this thread (:func:`_queued`).

        When the photo is halved before the first level (the usual case: faces of 24 px or more), the first
        halving comes straight from the pixels (:meth:`_first_halving`), in two bands of rows side by side
        with a second stream; the photo itself is never made in MTCNN's values (its crops read the pixels).
        """
        h, w = pixels.shape[1:3]
        sizes = level_sizes(h, w, min_face)
        if not sizes:
            return [], None, None
        if h >= 2 * sizes[0][0] and w >= 2 * sizes[0][1]:
            halvings = [self._first_halving(pixels, stream)]
        else:  # the first level, or the photo itself, is larger than half the photo: it is resized from it
            # MTCNN's values, exactly: (x + 0.5) * SCALE is x * SCALE + SHIFT, each step exact
            halvings = [(pixels[:, :, :, :3].transpose(0, 3, 1, 2) + np.float32(0.5)) * np.float32(SCALE)]
        levels: list[Level] = []
        first: Callable[[], Any] | None = None
        # the levels from the third on share one zero canvas for P-net (see _stage1), each resized straight
        # into its place there
        offsets, canvas_size = _pack(tuple(sizes[2:])) if len(sizes) > 2 else ((), (0, 0))
        canvas = np.zeros((1, 3, *canvas_size), dtype=np.float32) if offsets else None
        for i, size in enumerate(sizes):
            while halvings[-1].shape[2] >= 2 * size[0] and halvings[-1].shape[3] >= 2 * size[1]:
                last = halvings[-1]
                halvings.append(self._resize(last, (last.shape[2] // 2, last.shape[3] // 2)))
            # the smallest halving still at least this large; the photo itself when a min_face_size under
            # P-net's 12 px window asks for a first level larger than the photo (then halvings[0])
            source = next(
                (t for t in reversed(halvings) if t.shape[2] >= size[0] and t.shape[3] >= size[1]),
                halvings[0],
            )
            if stream is not None and not levels:  # the second stream resizes it and runs P-net on it
                levels.append((None, size[1] / w, size[0] / h))
                first = _queued(stream, self._first_level, source, size, levels[0])
                continue
            if canvas is not None and i >= 2:
                oy, ox = offsets[i - 2]
                resize(source[0], canvas[0], oy, ox, *size)  # the same size: a copy
                source = canvas[:, :, oy : oy + size[0], ox : ox + size[1]]
            elif tuple(source.shape[2:]) != size:
                source = self._resize(source, size)
            levels.append((source, size[1] / w, size[0] / h))
        packed = None if canvas is None else (canvas, tuple(offsets))
        return levels, first, packed

    def _first_halving(self, pixels: np.ndarray, stream: ThreadPoolExecutor | None) -> np.ndarray:
        """The photo at half its size, (1, 3, H // 2, W // 2), straight from ``pixels``; with a second
        ``stream``, the top and bottom bands of rows side by side.

        A halving of an even number of rows averages row pairs, so two bands of an even height give the rows
        of the whole halving, computed alike (``tests/test_runtime.py``); with an odd number the sample
        positions depend on the height, and the photo goes in one piece. Pixels of even sides are halved
        by :func:`_halve`, others resized (:meth:`_halve_resized`), each band straight into its rows of the
        one array.
        """
        h, w = pixels.shape[1:3]
        if stream is None or h % 2 or h < 4 * CELL:
            stream = None
        split = 0 if stream is None else h // 4 * 2
        halve = _halve if h % 2 == 0 and w % 2 == 0 else self._halve_resized
        out = np.empty((1, 3, h // 2, w // 2), dtype=np.float32)
        band = None if stream is None else _queued(stream, halve, pixels, out, 0, split)
        halve(pixels, out, split, h)
        if band is not None:
            band()
        return out

    @staticmethod
    def _halve_resized(pixels: np.ndarray, out: np.ndarray, start: int, stop: int) -> None:
        """Rows ``start:stop`` of ``pixels`` resized to half their size into their rows of ``out`` (as
        :func:`_halve`), by :func:`ferhub._mtcnn_kernels.resize_pixels`: the halving of odd sides."""
        resize_pixels(np.ascontiguousarray(pixels[0, start:stop]), out[0, :, start // 2 : stop // 2])

    def _stage1(
        self,
        levels: list[Level],
        first: Callable[[], Any] | None = None,
        packed: tuple[np.ndarray, tuple[tuple[int, int], ...]] | None = None,
    ) -> np.ndarray:
        """P-net over every level -> candidates ``(N, 5)`` (x1, y1, x2, y2, score), regressed and squared.

        The two largest levels run alone; the small ones share one zero-padded canvas (see
        ``FastMTCNN._score_maps``: P-net has no padding, so a window inside a level sees only that level):
        ``packed``, the canvas :meth:`_pyramid` resized them into and their offsets (y, x) on it.
        ``first``: gives the first level's pixels and candidates, from the second stream (:meth:`_pyramid`
        queues it; its pixels complete ``levels``). That level is about half of P-net's work (each level has
        half the area of the one before), so the two streams, each on half the threads, finish together, and
        neither waits for the other's threads op by op as one stream on all of them does.
        """
        found = [self._pnet(level[0], [level]) for level in levels[1 if first is not None else 0 : 2]]
        small = levels[2:]
        if packed is not None:  # there are small levels
            canvas, offsets = packed
            sizes = tuple(level.shape[2:] for level, _, _ in small)  # type: ignore[union-attr]
            level_map = _level_map(_map_shape(canvas.shape[2:]), sizes, offsets)
            found.append(self._pnet(canvas, small, offsets, level_map))
        if first is not None:
            pixels, first_found = first()
            levels[0] = (pixels, *levels[0][1:])
            found.append(first_found)
        return candidates(np.concatenate(found), _IOU, False)  # NMS across levels, as MTCNN does

    def _first_level(
        self, source: np.ndarray, size: tuple[int, int], level: Level
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first level's pixels, resized from ``source`` to ``size``, and P-net's candidates on them (the
        second stream's share of P-net; see :meth:`_stage1`)."""
        x = source if tuple(source.shape[2:]) == size else self._resize(source, size)
        return x, self._pnet(x, [(x, level[1], level[2])])

    def _pnet(
        self,
        x: np.ndarray,
        levels: list[Level],
        origins: tuple[tuple[int, int], ...] = ((0, 0),),
        packed: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """P-net's candidates on ``x``, one level or a packed canvas: ``(N, 9)`` boxes (x1, y1, x2, y2) in
        photo pixels, score, box offsets. ``levels``: the call's levels, at ``origins`` (y, x) of ``x``;
        ``packed``: a canvas's :func:`_level_map`. The graph finds the cells (:func:`_peaks_graph`)."""
        outside = _INSIDE if packed is None else packed[1]
        cells, score, offsets = self._run(
            "pnet", outputs=_PEAKS, x=x, outside=outside, threshold=self._pnet_threshold
        )
        if len(cells) == 0:
            return np.zeros((0, 9), dtype=np.float32)
        scales = np.array([(sx, sy) for _, sx, sy in levels], dtype=np.float32)
        level_of = _ONE_LEVEL if packed is None else packed[0]
        return pnet_boxes(cells, score, offsets, level_of, scales, np.array(origins, np.float32), CELL)

    def _net_on_crops(
        self, name: str, sources: _Sources, boxes: np.ndarray, size: int
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """R- or O-net's outputs for ``size`` x ``size`` crops of ``boxes`` (N, >= 4), in crop order, and
        that order (crop ``i`` is box ``order[i]``: the crops go grouped by source). One call, or, with two
        streams, from ``_SPLIT_FROM`` crops, two calls side by side on half the crops each, whatever their
        sources (a call per source level left the streams up to 1.3 ms apart on AMD EPYC: one level had
        half the crops)."""
        stream = self._second_stream()
        order, index, rois = crop_sources(sources.scales, boxes, size)
        n = len(order)
        # the smaller half first: the second stream takes it, and starts a wake-up later than this thread
        # (3 O-net crops: stage 3 in 1.18 against 1.31 ms, this thread no longer waiting for the stream)
        cut = n // 2 if n >= _SPLIT_FROM[name] and stream is not None else n
        parts = (slice(0, cut), slice(cut, None)) if cut < n else (slice(None),)
        calls = [functools.partial(self._crops_net, name, sources, index[p], rois[p]) for p in parts]
        results = self._side_by_side(calls, stream)
        return order, results[0] if len(results) == 1 else [np.concatenate(o) for o in zip(*results)]

    def _crops_net(
        self, name: str, sources: _Sources, index: np.ndarray, rois: np.ndarray
    ) -> list[np.ndarray]:
        """R- or O-net on crops of ``rois`` in sources ``index``, cut on the thread that runs the call."""
        return self._run(name, crops=sources.crops(index, rois, _CROP_SIZE[name]))

    def _stage2(self, sources: _Sources, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R-net on 24x24 crops of every candidate: threshold, NMS, refine
        (:func:`ferhub._mtcnn_kernels.refined`)."""
        order, (score, reg) = self._net_on_crops("rnet", sources, boxes, 24)
        return refined(boxes, order, score, reg, self._thresholds[1], _IOU, False)

    def _stage3(
        self, sources: _Sources, boxes: np.ndarray, scale: tuple[float, float]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """O-net on 48x48 crops: final score, box and 5 landmarks; MTCNN's "Min" NMS; boxes and landmarks
        scaled by ``scale`` (x, y) from the detection image to the photo
        (:func:`ferhub._mtcnn_kernels.faces`)."""
        order, (score, reg, marks) = self._net_on_crops("onet", sources, boxes, 48)
        sx, sy = np.float32(scale[0]), np.float32(scale[1])
        return faces(boxes, order, score, reg, marks, self._thresholds[2], _MIN_OVERLAP, True, sx, sy)
