"""MTCNN's steps outside its nets on the CPU, compiled by Numba (:mod:`ferhub._mtcnn_onnx`): the pyramid's
first halving straight from the photo's pixels, its bilinear resizes, the crops R- and O-net read, the greedy
NMS of the candidates after each stage (:func:`nms`), and the rest of the boxes' arithmetic between the nets
(P-net's candidate boxes, each stage's thresholds, regression and squaring).

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

Each kernel is compiled by Numba on its first call in a process and cached (:func:`ferhub._numba.kernel`).
"""

from __future__ import annotations

import numpy as np

from ferhub._numba import kernel as _kernel

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
def crops_of_levels(source, top, left, height, width, rois, out):  # type: ignore[no-untyped-def]  # pragma: no cover
    """``out`` (N, 3, S, S) float32: box ``n`` of ``rois`` (N, 4; x1, y1, x2, y2, pixel edges) of the level
    ``source[:, top:top + height, left:left + width]`` (``source`` (3, H, W) float32, C-contiguous: the level
    itself, or the canvas the small levels share; one compiled version for both), sampled bilinearly at
    2S x 2S points (black outside the level) and averaged over 2x2 blocks: ``_mtcnn._sample_crops``' crops.

    Separably: an output row's four source rows blended over the columns the crop reads (:func:`_blend`),
    then each output's four columns of that blend (:func:`_sample`). A sample at a time with its four pixels
    cost 2.5x the time on AMD EPYC (25.5 against 9.5 us a 24x24 crop)."""
    size = out.shape[2]
    ry, wy = np.empty((size, 4), np.int64), np.empty((size, 4), np.float32)
    cx, wx = np.empty((size, 4), np.int64), np.empty((size, 4), np.float32)
    blend = np.empty(width, np.float32)
    zero, one = np.float32(0.0), np.float32(1.0)
    for n in range(rois.shape[0]):
        first, count = _box_taps(rois[n], size, height, width, 1, ry, wy, cx, wx)
        ry += top  # the level's rows and columns in source's
        first += left
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
def resize(source, out, top, left, height, width):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """``out[:, top:top + height, left:left + width]`` (``out`` (3, H, W) float32, C-contiguous: a level, or
    the canvas the small levels share; one compiled version for both): ``source`` (3, H', W') float32 resized
    bilinearly, half-pixel centres, no antialiasing (torch's ``interpolate(mode="bilinear")``).

    Separably, as the crops: an output row's two source rows blended over the whole width (contiguous, so
    vectorised), then two columns of that blend an output (0.6-0.9x the time of four taps an output on AMD
    EPYC, a 640x480 photo's levels)."""
    y_low, y_high, fy = _axis(source.shape[1], height)
    x_low, x_high, fx = _axis(source.shape[2], width)
    one = np.float32(1.0)
    blend = np.empty(source.shape[2], np.float32)
    for c in range(3):
        plane = source[c]
        for y in range(height):
            # the region's row as a view: indexed from 0 in the loop, as numba vectorises it (an offset
            # index there took 1.28x the time)
            up, down, row = plane[y_low[y]], plane[y_high[y]], out[c, top + y, left : left + width]
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
def _by_score(scores):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """The indices of ``scores``, highest first, ties in index order: ``np.argsort(-scores,
    kind="mergesort")``, as a bottom-up merge sort of its own. Numba takes ~2 s to compile ``np.argsort`` for
    each kernel that calls it; this compiles in a fraction of that."""
    n = scores.shape[0]
    order, spare = np.arange(n), np.empty(n, np.int64)
    width = 1
    while width < n:
        for low in range(0, n, 2 * width):
            middle, high = min(low + width, n), min(low + 2 * width, n)
            i, j = low, middle
            for k in range(low, high):
                # the right run's next goes first only when strictly higher: equal scores keep their order
                if i < middle and (j >= high or scores[order[j]] <= scores[order[i]]):
                    spare[k] = order[i]
                    i += 1
                else:
                    spare[k] = order[j]
                    j += 1
        order, spare = spare, order
        width *= 2
    return order


@_kernel()
def nms(boxes, scores, threshold, smaller):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """Greedy NMS of ``boxes`` (N, 4; x1, y1, x2, y2) float32: the indices of the kept boxes, highest
    ``scores`` first (ties in index order). A box is suppressed by a kept one whose overlap with it is above
    ``threshold`` (float32, compared as it is): intersection over union, in torchvision's arithmetic
    operation for operation; with ``smaller``, over the smaller box's area (MTCNN's "Min", at least 1e-9).
    """
    order = _by_score(scores)
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


# -- the boxes between the nets
# Each step's box arithmetic is one compiled call. As ~15 numpy operations it ran right after a net's call, on
# caches that call had filled: ~200 us for a P-net call's candidates against ~70 us here (AMD EPYC). Each is
# the numpy steps' arithmetic in the same order and types (float32, or float64 where numpy promoted), so the
# boxes are the same to the bit (``tests/test_mtcnn_kernels.py``).
# The stage kernels call :func:`nms` with C-contiguous arrays and take its ``smaller`` flag as an argument,
# though each caller always passes the same value: a strided view or a literal ``False`` inside a kernel made
# Numba compile ``nms`` once more for that call (~0.8 s each on a fresh install).


@_kernel()
def _regress_row(boxes, i, reg, r, out, o):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """Row ``o`` of ``out`` (N, >= 4): box ``i`` of ``boxes`` (x1, y1, x2, y2) moved by row ``r`` of ``reg``
    (fractions of its width and height)."""
    w, h = boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1]
    out[o, 0] = boxes[i, 0] + reg[r, 0] * w
    out[o, 1] = boxes[i, 1] + reg[r, 1] * h
    out[o, 2] = boxes[i, 2] + reg[r, 2] * w
    out[o, 3] = boxes[i, 3] + reg[r, 3] * h


@_kernel()
def _square_row(boxes, i):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """Box ``i`` of ``boxes`` made square in place around its centre, its side the longer of its two."""
    two = np.float32(2.0)
    w, h = boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1]
    side = w if w >= h else h
    cx, cy = boxes[i, 0] + w / two, boxes[i, 1] + h / two
    boxes[i, 0], boxes[i, 1] = cx - side / two, cy - side / two
    boxes[i, 2], boxes[i, 3] = cx + side / two, cy + side / two


@_kernel()
def pnet_boxes(cells, score, offsets, level_of, scales, origins, cell):  # type: ignore[no-untyped-def]  # pragma: no cover
    """P-net's candidates ``(N, 9)`` float32 (x1, y1, x2, y2 in photo pixels, score, 4 box offsets) from the
    ``cells`` (N, 2; row, column) its graph found, with their ``score`` (N,) and ``offsets`` (N, 4).

    ``level_of``: each cell's level of a packed canvas (int16, ``_mtcnn_onnx._level_map``), or an empty
    array when the call is one level (0); ``scales``: each level's (x, y) scale relative to the photo;
    ``origins``: its (y, x) on the canvas, float32; ``cell``: P-net's window. A cell's window is
    ``2 * column - x`` over the scale, in float64, its width ``cell / scale`` in float32."""
    n = cells.shape[0]
    out = np.empty((n, 9), np.float32)
    window = np.float32(cell)
    for i in range(n):
        row, col = cells[i, 0], cells[i, 1]
        level = 0 if level_of.shape[0] == 0 else level_of[row, col]
        sx, sy = scales[level, 0], scales[level, 1]
        x1 = (np.float64(2 * col) - np.float64(origins[level, 1])) / np.float64(sx)
        y1 = (np.float64(2 * row) - np.float64(origins[level, 0])) / np.float64(sy)
        out[i, 0], out[i, 1] = x1, y1
        out[i, 2], out[i, 3] = x1 + np.float64(window / sx), y1 + np.float64(window / sy)
        out[i, 4] = score[i]
        for k in range(4):
            out[i, 5 + k] = offsets[i, k]
    return out


@_kernel()
def candidates(found, threshold, smaller):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """Stage 1's result ``(K, 5)`` (x1, y1, x2, y2, score) from every level's P-net candidates ``found``
    (N, 9): greedy NMS across levels (:func:`nms`, IoU above ``threshold``; ``smaller`` is False), then each
    kept box regressed by its offsets and squared, highest score first."""
    n = found.shape[0]
    boxes, scores = np.empty((n, 4), np.float32), np.empty(n, np.float32)
    reg = np.empty((n, 4), np.float32)  # contiguous, as the other callers' offsets: one _regress_row
    for i in range(n):
        for k in range(4):
            boxes[i, k] = found[i, k]
            reg[i, k] = found[i, 5 + k]
        scores[i] = found[i, 4]
    keep = nms(boxes, scores, threshold, smaller)
    out = np.empty((keep.shape[0], 5), np.float32)
    for i in range(keep.shape[0]):
        _regress_row(boxes, keep[i], reg, keep[i], out, i)
        _square_row(out, i)
        out[i, 4] = scores[keep[i]]
    return out


@_kernel()
def crop_sources(scales, boxes, size):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """Where each box's crop is read from, grouped by source: ``(order, index, rois)``, the rows of ``boxes``
    sorted by source (stable), each one's source index and its box in that source's pixels.

    ``scales``: each source's (x, y) scale relative to the photo, ``(L, 2)`` float32, starting with the photo
    itself (1, 1) and falling. Each box is read from the smallest source where it is still at least ``2 *
    size`` pixels wide (else the photo), as ``_mtcnn._sample_crops`` does."""
    n = boxes.shape[0]
    index = np.empty(n, np.int64)
    for i in range(n):
        side = boxes[i, 2] - boxes[i, 0]
        fits = 0
        for level in range(scales.shape[0]):
            if side * scales[level, 0] >= 2 * size:
                fits += 1
        index[i] = max(fits - 1, 0)
    # a stable counting sort of the source indices (a few levels)
    count = np.zeros(scales.shape[0] + 1, np.int64)
    for i in range(n):
        count[index[i] + 1] += 1
    for level in range(scales.shape[0]):
        count[level + 1] += count[level]
    order = np.empty(n, np.int64)
    for i in range(n):
        order[count[index[i]]] = i
        count[index[i]] += 1
    rois, sorted_index = np.empty((n, 4), np.float32), np.empty(n, np.int64)
    for i in range(n):
        b, source = order[i], index[order[i]]
        sorted_index[i] = source
        rois[i, 0], rois[i, 1] = boxes[b, 0] * scales[source, 0], boxes[b, 1] * scales[source, 1]
        rois[i, 2], rois[i, 3] = boxes[b, 2] * scales[source, 0], boxes[b, 3] * scales[source, 1]
    return order, sorted_index, rois


@_kernel()
def _passing(order, score, threshold):  # type: ignore[no-untyped-def]  # pragma: no cover (compiled)
    """The boxes whose ``score`` (in crop order: crop ``i`` is box ``order[i]``) is above ``threshold``,
    in box order, and each box's crop."""
    crop_of = np.empty(order.shape[0], np.int64)
    for i in range(order.shape[0]):
        crop_of[order[i]] = i
    picked = np.empty(order.shape[0], np.int64)
    count = 0
    for b in range(order.shape[0]):
        if score[crop_of[b]] > threshold:
            picked[count] = b
            count += 1
    return picked[:count], crop_of


@_kernel()
def refined(boxes, order, score, reg, threshold, iou, smaller):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Stage 2's result from R-net's ``score`` (N,) and ``reg`` (N, 4) on the crops of ``boxes`` (N, >= 4),
    crop ``i`` being box ``order[i]``: the boxes scoring above ``threshold``, greedy NMS (IoU above ``iou``;
    ``smaller`` is False), each kept box regressed and squared; ``(boxes (K, 4), scores (K,))``, highest
    score first."""
    picked, crop_of = _passing(order, score, threshold)
    m = picked.shape[0]
    kept_boxes, kept_reg = np.empty((m, 4), np.float32), np.empty((m, 4), np.float32)
    kept_score = np.empty(m, np.float32)
    for j in range(m):
        crop = crop_of[picked[j]]
        for k in range(4):
            kept_boxes[j, k] = boxes[picked[j], k]
            kept_reg[j, k] = reg[crop, k]
        kept_score[j] = score[crop]
    keep = nms(kept_boxes, kept_score, iou, smaller)
    out, out_score = np.empty((keep.shape[0], 4), np.float32), np.empty(keep.shape[0], np.float32)
    for i in range(keep.shape[0]):
        _regress_row(kept_boxes, keep[i], kept_reg, keep[i], out, i)
        _square_row(out, i)
        out_score[i] = kept_score[keep[i]]
    return out, out_score


@_kernel()
def faces(boxes, order, score, reg, marks, threshold, overlap, smaller, sx, sy):  # type: ignore[no-untyped-def]  # pragma: no cover
    """Stage 3's result from O-net's ``score`` (N,), ``reg`` (N, 4) and ``marks`` (N, 10: five x then five
    y, fractions of the box) on the crops of ``boxes`` (N, 4), crop ``i`` being box ``order[i]``: the boxes
    scoring above ``threshold``, their landmarks placed in the box, the boxes regressed, MTCNN's "Min" NMS
    (:func:`nms` over the smaller area, above ``overlap``; ``smaller`` is True), then boxes and landmarks
    scaled by ``sx``, ``sy`` (float32) to the photo's pixels. ``(boxes (K, 4), scores (K,), landmarks (K, 5,
    2))``, highest score first."""
    picked, crop_of = _passing(order, score, threshold)
    m = picked.shape[0]
    moved, kept_score = np.empty((m, 4), np.float32), np.empty(m, np.float32)
    points = np.empty((m, 5, 2), np.float32)
    for j in range(m):
        b, crop = picked[j], crop_of[picked[j]]
        w, h = boxes[b, 2] - boxes[b, 0], boxes[b, 3] - boxes[b, 1]
        for p in range(5):
            points[j, p, 0] = marks[crop, p] * w + boxes[b, 0]
            points[j, p, 1] = marks[crop, 5 + p] * h + boxes[b, 1]
        _regress_row(boxes, b, reg, crop, moved, j)
        kept_score[j] = score[crop]
    keep = nms(moved, kept_score, overlap, smaller)
    k = keep.shape[0]
    out_boxes, out_points = np.empty((k, 4), np.float32), np.empty((k, 5, 2), np.float32)
    out_score = np.empty(k, np.float32)
    for i in range(k):
        j = keep[i]
        out_boxes[i, 0], out_boxes[i, 1] = moved[j, 0] * sx, moved[j, 1] * sy
        out_boxes[i, 2], out_boxes[i, 3] = moved[j, 2] * sx, moved[j, 3] * sy
        for p in range(5):
            out_points[i, p, 0], out_points[i, p, 1] = points[j, p, 0] * sx, points[j, p, 1] * sy
        out_score[i] = kept_score[j]
    return out_boxes, out_score, out_points
