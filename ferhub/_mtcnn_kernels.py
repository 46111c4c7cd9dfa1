"""MTCNN's steps outside its nets on the CPU, compiled by Numba (:mod:`ferhub._mtcnn_onnx`): the pyramid's
first halving straight from the photo's pixels, its bilinear resizes, the crops R- and O-net read, and the
greedy NMS of the candidates after each stage (:func:`nms`).

Each is one pass over the pixels it needs, in compiled code that releases the GIL, so the two detection
streams run them side by side. They replaced numpy passes and ONNX Runtime operators (2026-12-03, Intel Xeon,
2 cores): numpy made the halving in ~14 array passes (0.86 ms for a 640x480 photo against 0.17 here), and its
passes on two threads at once waited on each other for the GIL; ONNX Runtime's ``RoiAlign`` cost ~45 us a
24x24 crop and ~170 us a 48x48 one (16 and 64 us for the first kernels here; the separable ones since take
9.5 and 39 us on AMD EPYC, where the first took 25 and 97), and needed the photo converted to a padded float
copy first (0.77 ms), which the crops here do not: they read the uint8 pixels; its ``Resize`` was one call a
level.

The NMS replaced numpy's, which did one vector operation per kept box: 300 against 26 us for the 73
candidates P-net finds on a 640x480 one-face photo (AMD EPYC), all of them kept.

Numba compiles each kernel on its first call in a process and caches the machine code beside this file (a
read-only install caches in the user's cache folder instead), so later processes load it; where neither is
writable, each process compiles them again (~2 s) rather than failing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np


def _kernel(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(nogil=True, cache=True)``: compiled on first call, releasing the GIL, its machine code
    cached; without the cache where Numba finds no writable folder for it (it raises at decoration then)."""

    def compile_(fn: Callable[..., Any]) -> Any:
        try:
            return numba.njit(nogil=True, cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(nogil=True, **options)(fn)

    return compile_


# MTCNN's input (x - 127.5) / 128 plus 1 (black is 0, see ``_mtcnn._to_tensor``): x * SCALE + SHIFT
SCALE, SHIFT = 0.0078125, 1 - 127.5 * 0.0078125


@_kernel(inline="always")
def _sum4(a, b, c, d, k):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """The sum of channel ``k`` of four pixels, as an int32."""
    return np.int32(a[k]) + np.int32(b[k]) + np.int32(c[k]) + np.int32(d[k])


@_kernel()
def halve(pixels: np.ndarray, out: np.ndarray, start: int, stop: int) -> None:  # pragma: no cover (compiled)
    """Rows ``start:stop`` (even) of ``pixels`` (H, W, C >= 3, uint8, W even) halved into their rows of
    ``out`` (3, H // 2, W // 2) float32, as MTCNN's values: each the sum of a 2x2 block times SCALE / 4 plus
    SHIFT, exact in float32 (integers times a power of two)."""
    quarter = np.float32(SCALE / 4)
    shift = np.float32(SHIFT)
    for y in range(start // 2, stop // 2):
        top, bottom = pixels[2 * y], pixels[2 * y + 1]
        red, green, blue = out[0, y], out[1, y], out[2, y]
        # a pixel's channels together, each output plane written in order: ~2.5x faster than a plane at a
        # time, which reads every pixel three times
        for x in range(pixels.shape[1] // 2):
            a, b, c, d = top[2 * x], top[2 * x + 1], bottom[2 * x], bottom[2 * x + 1]
            red[x] = np.float32(_sum4(a, b, c, d, 0)) * quarter + shift
            green[x] = np.float32(_sum4(a, b, c, d, 1)) * quarter + shift
            blue[x] = np.float32(_sum4(a, b, c, d, 2)) * quarter + shift


@_kernel()
def _crop_taps(start, length, size, limit, index, weight):  # type: ignore[no-untyped-def]  # pragma: no cover
    """The taps of a crop's ``size`` outputs along one axis of ``limit`` pixels, over ``[start, start +
    length)`` (pixel edges), into ``index`` and ``weight`` (size, 4): each output is the mean of two bilinear
    samples (at the centres of ``2 * size`` equal steps), each two pixels, so four taps, each weight halved.
    A tap outside the axis weighs 0 (``grid_sample``'s zero padding), its index clamped inside so that it is
    read harmlessly. Returns the lowest and highest index."""
    step = length / np.float32(2 * size)
    half = np.float32(0.5)
    lowest, highest = limit - 1, 0
    for s in range(2 * size):
        pos = start + (np.float32(s) + half) * step - half  # pixel centres at integers
        below = np.int64(np.floor(pos))
        frac = pos - np.float32(below)
        a = np.float32(1.0) - frac
        if below < 0 or below >= limit:
            a = np.float32(0.0)
        if below + 1 < 0 or below + 1 >= limit:
            frac = np.float32(0.0)
        low, high = min(max(below, 0), limit - 1), min(max(below + 1, 0), limit - 1)
        lowest, highest = min(lowest, low), max(highest, high)
        k = 2 * (s % 2)
        index[s // 2, k], index[s // 2, k + 1] = low, high
        weight[s // 2, k], weight[s // 2, k + 1] = a * half, frac * half
    return lowest, highest


@_kernel(inline="always")
def _box_taps(roi, size, height, width, channels, ry, wy, cx, wx):  # type: ignore[no-untyped-def]  # pragma: no cover
    """The taps of box ``roi`` (x1, y1, x2, y2) for a ``size`` x ``size`` crop of a source of ``height`` rows
    of ``width`` pixels, ``channels`` values each (:func:`_crop_taps`): the rows into ``ry``/``wy``, the
    columns into ``cx``/``wx`` as offsets from the first value the crop reads. Returns that value's index in a
    row and the number of values read from it."""
    _crop_taps(roi[1], roi[3] - roi[1], size, height, ry, wy)
    x0, x1 = _crop_taps(roi[0], roi[2] - roi[0], size, width, cx, wx)
    cx -= x0
    cx *= channels
    return x0 * channels, (x1 + 1 - x0) * channels


@_kernel(inline="always")
def _blend(rows, ry, wy, py, first, count, offset, blend):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``blend[:count]``: output row ``py``'s four source rows of ``rows`` (from value ``first`` on), each
    value plus ``offset``, weighted (contiguous, so vectorised)."""
    r0, r1, r2, r3 = (
        rows[ry[py, 0], first:],
        rows[ry[py, 1], first:],
        rows[ry[py, 2], first:],
        rows[ry[py, 3], first:],
    )
    w0, w1, w2, w3 = wy[py, 0], wy[py, 1], wy[py, 2], wy[py, 3]
    for k in range(count):
        blend[k] = (
            w0 * (np.float32(r0[k]) + offset)
            + w1 * (np.float32(r1[k]) + offset)
            + w2 * (np.float32(r2[k]) + offset)
            + w3 * (np.float32(r3[k]) + offset)
        )


@_kernel(inline="always")
def _sample(blend, cx, wx, c, scale, row):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """``row``: each output's four columns of ``blend`` (value ``c`` of each pixel), weighted, times
    ``scale``."""
    for px in range(row.shape[0]):
        row[px] = (
            wx[px, 0] * blend[cx[px, 0] + c]
            + wx[px, 1] * blend[cx[px, 1] + c]
            + wx[px, 2] * blend[cx[px, 2] + c]
            + wx[px, 3] * blend[cx[px, 3] + c]
        ) * scale


@_kernel()
def crops_of_levels(source, rois, out):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """``out`` (N, 3, S, S) float32: box ``n`` of ``rois`` (N, 4; x1, y1, x2, y2, pixel edges) of ``source``
    (3, H, W) float32, sampled bilinearly at 2S x 2S points (black outside the source) and averaged over 2x2
    blocks: ``_mtcnn._sample_crops``' crops.

    Separably: an output row's four source rows blended over the columns the crop reads (:func:`_blend`),
    then each output's four columns of that blend (:func:`_sample`). A sample at a time with its four pixels
    cost 2.5x the time on AMD EPYC (25.5 against 9.5 us a 24x24 crop)."""
    size = out.shape[2]
    height, width = source.shape[1], source.shape[2]
    ry, wy = np.empty((size, 4), np.int64), np.empty((size, 4), np.float32)
    cx, wx = np.empty((size, 4), np.int64), np.empty((size, 4), np.float32)
    blend = np.empty(width, np.float32)
    zero, one = np.float32(0.0), np.float32(1.0)
    for n in range(rois.shape[0]):
        first, count = _box_taps(rois[n], size, height, width, 1, ry, wy, cx, wx)
        for c in range(3):
            for py in range(size):
                _blend(source[c], ry, wy, py, first, count, zero, blend)
                _sample(blend, cx, wx, 0, one, out[n, c, py])


@_kernel()
def crops_of_pixels(pixels, rois, out):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """:func:`crops_of_levels` of the photo itself, read from its ``pixels`` (H, W, C >= 3, uint8,
    C-contiguous) as MTCNN's values: ``(value + 0.5) * SCALE`` (``x * SCALE + SHIFT`` exactly), so that black
    outside stays 0. The rows' blend runs over every byte of the columns read (all C channels, contiguous)."""
    size = out.shape[2]
    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels)
    ry, wy = np.empty((size, 4), np.int64), np.empty((size, 4), np.float32)
    cx, wx = np.empty((size, 4), np.int64), np.empty((size, 4), np.float32)
    blend = np.empty(width * channels, np.float32)
    half, scale = np.float32(0.5), np.float32(SCALE)
    for n in range(rois.shape[0]):
        first, count = _box_taps(rois[n], size, height, width, channels, ry, wy, cx, wx)
        for py in range(size):
            _blend(rows, ry, wy, py, first, count, half, blend)
            for c in range(3):
                _sample(blend, cx, wx, c, scale, out[n, c, py])


@_kernel()
def _axis(size_in, size_out):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """Bilinear resize taps along an axis, half-pixel centres (torch's ``interpolate(align_corners=False)``):
    ``(low, high, frac)``, output ``i`` being ``1 - frac[i]`` times input ``low[i]`` plus ``frac[i]`` times
    input ``high[i]``."""
    low, high = np.empty(size_out, np.int64), np.empty(size_out, np.int64)
    frac = np.empty(size_out, np.float32)
    scale = np.float32(size_in) / np.float32(size_out)
    for i in range(size_out):
        pos = max((np.float32(i) + np.float32(0.5)) * scale - np.float32(0.5), np.float32(0.0))
        below = min(np.int64(pos), size_in - 1)
        low[i] = below
        high[i] = min(below + 1, size_in - 1)
        frac[i] = pos - np.float32(below)
    return low, high, frac


@_kernel()
def resize(source, out):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """``out`` (3, h, w), any strides (a region of a larger canvas): ``source`` (3, H, W) float32 resized
    bilinearly, half-pixel centres, no antialiasing (torch's ``interpolate(mode="bilinear")``).

    Separably, as the crops: an output row's two source rows blended over the whole width (contiguous, so
    vectorised), then two columns of that blend an output (0.6-0.9x the time of four taps an output on AMD
    EPYC, a 640x480 photo's levels)."""
    height, width = out.shape[1], out.shape[2]
    y_low, y_high, fy = _axis(source.shape[1], height)
    x_low, x_high, fx = _axis(source.shape[2], width)
    one = np.float32(1.0)
    blend = np.empty(source.shape[2], np.float32)
    for c in range(3):
        plane = source[c]
        for y in range(height):
            up, down, row = plane[y_low[y]], plane[y_high[y]], out[c, y]
            wy = fy[y]
            vy = one - wy
            for x in range(blend.shape[0]):
                blend[x] = vy * up[x] + wy * down[x]
            for x in range(width):
                row[x] = (one - fx[x]) * blend[x_low[x]] + fx[x] * blend[x_high[x]]


@_kernel()
def resize_pixels(pixels, out):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """:func:`resize` of the photo's ``pixels`` (H, W, C >= 3) uint8, C-contiguous, into ``out`` (3, h, w),
    then turned into MTCNN's values (``* SCALE + SHIFT``): the pyramid's first step where it is not an exact
    halving (a side of odd length).

    Separably, as :func:`resize`: an output row's two source rows blended over their whole length, channels
    interleaved as they are stored (one contiguous, vectorised pass; an RGBX fourth byte is blended along and
    never used), then two pixels of that blend a value (0.45-0.75x the time of four taps a value on AMD EPYC,
    641x481 and 1919x1081 photos)."""
    height, width = out.shape[1], out.shape[2]
    y_low, y_high, fy = _axis(pixels.shape[0], height)
    x_low, x_high, fx = _axis(pixels.shape[1], width)
    one, scale, shift = np.float32(1.0), np.float32(SCALE), np.float32(SHIFT)
    channels = pixels.shape[2]
    length = pixels.shape[1] * channels
    blend = np.empty(length, np.float32)
    for y in range(height):
        up, down = pixels[y_low[y]].reshape(length), pixels[y_high[y]].reshape(length)
        wy = fy[y]
        vy = one - wy
        for i in range(length):
            blend[i] = vy * np.float32(up[i]) + wy * np.float32(down[i])
        for c in range(3):
            row = out[c, y]
            for x in range(width):
                left, right = blend[x_low[x] * channels + c], blend[x_high[x] * channels + c]
                row[x] = ((one - fx[x]) * left + fx[x] * right) * scale + shift


@_kernel()
def nms(boxes, scores, threshold, smaller):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """Greedy NMS of ``boxes`` (N, 4; x1, y1, x2, y2) float32: the indices of the kept boxes, highest
    ``scores`` first (ties in index order). A box is suppressed by a kept one whose overlap with it is above
    ``threshold`` (float32, compared as it is): intersection over union, in torchvision's arithmetic
    operation for operation; with ``smaller``, over the smaller box's area (MTCNN's "Min", at least 1e-9).
    """
    order = np.argsort(-scores, kind="mergesort")
    n = order.shape[0]
    sorted_boxes = np.empty((n, 4), np.float32)
    area = np.empty(n, np.float32)
    for i in range(n):
        for k in range(4):
            sorted_boxes[i, k] = boxes[order[i], k]
        area[i] = (sorted_boxes[i, 2] - sorted_boxes[i, 0]) * (sorted_boxes[i, 3] - sorted_boxes[i, 1])
    suppressed = np.zeros(n, np.bool_)
    keep = np.empty(n, np.int64)
    kept = 0
    zero, tiny = np.float32(0.0), np.float32(1e-9)
    for i in range(n):
        if suppressed[i]:
            continue
        keep[kept] = order[i]
        kept += 1
        a = sorted_boxes[i]
        for j in range(i + 1, n):
            if suppressed[j]:
                continue
            b = sorted_boxes[j]
            inter = max(min(a[2], b[2]) - max(a[0], b[0]), zero) * max(
                min(a[3], b[3]) - max(a[1], b[1]), zero
            )
            if smaller:
                overlap = inter / max(min(area[i], area[j]), tiny)
            else:
                overlap = inter / (area[i] + area[j] - inter)
            if overlap > threshold:
                suppressed[j] = True
    return keep[:kept]
