"""The compiled pixel steps of CPU detection (:mod:`ferhub._mtcnn_kernels`) against their definitions: the
torch path's crops (``grid_sample`` at twice the size, 2x2 means, black outside) and the exact halving."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ferhub._mtcnn import _sample_crops
from ferhub._mtcnn_kernels import SCALE, SHIFT, crops_of_levels, crops_of_pixels, halve


def boxes(rng: np.random.Generator, count: int, height: int, width: int) -> np.ndarray:
    """Square boxes of 2-150% of the shorter side, some partly or wholly outside, some at fractional edges;
    and two degenerate ones: a box of zero width and one of a single pixel."""
    side = rng.uniform(0.02, 1.5, count) * min(height, width)
    x = rng.uniform(-0.5, 1.0, count) * width
    y = rng.uniform(-0.5, 1.0, count) * height
    out = np.stack([x, y, x + side, y + side], axis=1)
    out = np.concatenate([out, [[3.0, 4.0, 3.0, 9.0], [5.0, 5.0, 6.0, 6.0], [-20, -20, -5, -5]]])
    return out.astype(np.float32)


def reference(source: np.ndarray, rois: np.ndarray, size: int) -> np.ndarray:
    """The torch path's crops of ``source`` (1, 3, H, W) MTCNN values."""
    with torch.inference_mode():
        crops = _sample_crops([], torch.from_numpy(source), torch.from_numpy(rois), size)
    return np.ascontiguousarray(crops.numpy())


@pytest.mark.parametrize("size", [24, 48])
@pytest.mark.parametrize("shape", [(60, 80), (12, 16), (1, 7), (97, 130)])
def test_crops_of_a_level_are_the_torch_paths(size: int, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(size + shape[0])
    level = rng.uniform(0, 2, (1, 3, *shape)).astype(np.float32)
    rois = boxes(rng, 40, *shape)
    got = np.full((len(rois), 3, size, size), np.nan, dtype=np.float32)
    crops_of_levels(level[0], 0, 0, *shape, rois, got)
    np.testing.assert_allclose(got, reference(level, rois, size), rtol=0, atol=2e-5)
    # the level as a region of a larger canvas (the small levels'), bright all around: the same crops, to the
    # bit (nothing outside the region is read: black outside the level)
    canvas = np.full((3, shape[0] + 7, shape[1] + 11), 50.0, dtype=np.float32)
    canvas[:, 4 : 4 + shape[0], 3 : 3 + shape[1]] = level[0]
    on_canvas = np.full_like(got, np.nan)
    crops_of_levels(canvas, 4, 3, *shape, rois, on_canvas)
    np.testing.assert_array_equal(on_canvas, got)
    assert np.all(got[-1] == 0)  # a box wholly outside is black


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("size", [24, 48])
def test_crops_of_the_photo_read_its_pixels_as_mtcnns_values(size: int, channels: int) -> None:
    """From the uint8 pixels (RGB, or RGBX whose 4th byte is never read), the crops of the photo in MTCNN's
    values, black (0) outside."""
    rng = np.random.default_rng(channels * size)
    pixels = rng.integers(0, 256, (90, 120, channels), dtype=np.uint8)
    values = (pixels[None, :, :, :3].transpose(0, 3, 1, 2) * np.float32(SCALE) + np.float32(SHIFT)).astype(
        np.float32
    )
    rois = boxes(rng, 40, 90, 120)
    got = np.empty((len(rois), 3, size, size), dtype=np.float32)
    crops_of_pixels(pixels, rois, got)
    np.testing.assert_allclose(got, reference(np.ascontiguousarray(values), rois, size), rtol=0, atol=2e-5)
    if channels == 4:  # the 4th byte changes nothing
        pixels[..., 3] = 255 - pixels[..., 3]
        again = np.empty_like(got)
        crops_of_pixels(pixels, rois, again)
        np.testing.assert_array_equal(again, got)


def test_halving_is_the_exact_2x2_mean_in_mtcnns_values() -> None:
    rng = np.random.default_rng(5)
    for h, w, c in ((8, 10, 3), (480, 640, 4), (2, 2, 3)):
        pixels = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        sums = pixels[:, :, :3].astype(np.int64).reshape(h // 2, 2, w // 2, 2, 3).sum(axis=(1, 3))
        expected = (sums.transpose(2, 0, 1) * np.float32(SCALE / 4) + np.float32(SHIFT)).astype(np.float32)
        out = np.full((3, h // 2, w // 2), np.nan, dtype=np.float32)
        halve(pixels, out, 0, h)
        np.testing.assert_array_equal(out, expected)
        # in two bands of rows: the same rows
        if h >= 4:
            split = h // 4 * 2
            bands = np.full_like(out, np.nan)
            halve(pixels, bands, split, h)
            halve(pixels, bands, 0, split)
            np.testing.assert_array_equal(bands, expected)


def test_kernels_compile_without_a_writable_cache_folder() -> None:
    """Where Numba finds no folder to cache machine code in (a read-only install without a writable home), it
    refuses ``cache=True`` at decoration; the kernels are then compiled in each process instead."""
    import subprocess
    import sys

    code = """
import numba.core.caching as caching
impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # its name before Numba 0.62
impl._locator_classes = []  # no folder Numba could cache in
import numpy as np
from ferhub._mtcnn_kernels import halve
out = np.empty((3, 1, 1), np.float32)
halve(np.full((2, 2, 3), 4, np.uint8), out, 0, 2)
assert type(halve._cache).__name__ == "NullCache", halve._cache  # compiled, not cached
print(float(out[0, 0, 0]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split()[-1]) == np.float32(4 * SCALE + SHIFT)


SCIPY_SKIPPED = """
import importlib.util, sys
first = sys.argv[1]
if first:
    __import__(first)
import ferhub._numba
import numba.np.arraymath as arraymath
skipped = "scipy.linalg" not in sys.modules
print(skipped, arraymath._HAVE_BLAS == (importlib.util.find_spec("scipy") is not None))
import numba, numpy as np
@numba.njit
def dot(x, y):
    return np.dot(x, y)
x = np.arange(4.0)
print(dot(x, x), "scipy.linalg" in sys.modules)
"""


@pytest.mark.parametrize("first", ["", "scipy.linalg"])
def test_numba_loads_without_importing_scipy_linalg_and_blas_code_still_compiles(first: str) -> None:
    """Importing the kernels imports Numba's array implementations without the ``scipy.linalg`` import of
    their BLAS check (~0.25 s of each ``ferhub predict`` process), leaving that check's answer as it would
    have been; Numba code that uses BLAS still compiles, importing SciPy then. Where ``scipy.linalg`` is
    already imported, nothing is changed."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("scipy") is None:
        pytest.skip("SciPy is not installed: Numba imports nothing for BLAS")
    done = subprocess.run(
        [sys.executable, "-c", SCIPY_SKIPPED, first], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    skipped, same_answer, dot, imported = done.stdout.split()
    assert skipped == str(not first) and same_answer == "True"
    assert float(dot) == 14.0 and imported == "True"


def test_only_numbas_blas_check_is_refused_scipy() -> None:
    """The import hook refuses SciPy to Numba's BLAS check alone: any other import of it goes on."""
    from ferhub._numba import _NoScipyForBlasCheck

    finder = _NoScipyForBlasCheck()
    assert finder.find_spec("scipy.linalg") is None and not finder.blocked

    def _check_blas() -> None:  # the name alone is not enough: it must be Numba's arraymath's
        assert finder.find_spec("scipy") is None

    _check_blas()
    assert not finder.blocked


# -- the boxes between the nets, against the numpy steps they replaced (the same arithmetic, so to the bit)


def np_regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    wh = boxes[:, 2:] - boxes[:, :2]
    return boxes + reg * wh[:, [0, 1, 0, 1]]


def np_square(boxes: np.ndarray) -> np.ndarray:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    cx, cy = boxes[:, 0] + w / 2, boxes[:, 1] + h / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def candidate_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` boxes of 10-200 px within 600 px, many overlapping, a third of them squares; float32."""
    xy = rng.uniform(0, 600, (n, 2))
    wh = rng.uniform(10, 200, (n, 2))
    wh[: n // 3, 1] = wh[: n // 3, 0]
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


def test_p_net_boxes_are_the_numpy_steps_of_one_level_and_of_a_packed_canvas() -> None:
    from ferhub._mtcnn_kernels import pnet_boxes

    rng = np.random.default_rng(11)
    for levels in (1, 4):
        n = 60
        shape = (50, 70)
        cells = np.stack([rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)], axis=1)
        score = rng.random(n).astype(np.float32)
        offsets = rng.normal(0, 0.2, (n, 4)).astype(np.float32)
        scales = np.array([(0.4 * 0.709**k, 0.41 * 0.709**k) for k in range(levels)], np.float32)
        origins = np.array([(0, 0)] + [(2 * k, 30 * k) for k in range(1, levels)], np.float32)
        level_of = rng.integers(0, levels, shape).astype(np.int16)
        # numpy, as it was in _mtcnn_onnx.OnnxMTCNN._pnet
        ys, xs = cells[:, 0], cells[:, 1]
        level = 0 if levels == 1 else level_of[ys, xs]
        lsx, lsy, origin = scales[:, 0][level], scales[:, 1][level], origins[level]
        x1 = (2 * xs - origin[..., 1]) / lsx
        y1 = (2 * ys - origin[..., 0]) / lsy
        boxes = np.stack([x1, y1, x1 + 12 / lsx, y1 + 12 / lsy], axis=1)
        expected = np.concatenate([boxes, score[:, None], offsets], axis=1).astype(np.float32)
        packed = np.zeros((0, 0), np.int16) if levels == 1 else level_of
        got = pnet_boxes(cells, score, offsets, packed, scales, origins, 12)
        np.testing.assert_array_equal(got, expected)
    none = pnet_boxes(np.zeros((0, 2), np.int64), score[:0], offsets[:0], packed, scales, origins, 12)
    assert none.shape == (0, 9)


def test_stage_one_candidates_are_nms_then_regressed_squares() -> None:
    from ferhub._mtcnn_kernels import candidates
    from ferhub._mtcnn_onnx import _IOU, nms_iou

    rng = np.random.default_rng(12)
    for n in (0, 1, 5, 80):
        found = np.concatenate(
            [
                candidate_boxes(rng, n),
                np.round(rng.random((n, 1)) * 8).astype(np.float32) / 8,  # ties
                rng.normal(0, 0.2, (n, 4)).astype(np.float32),
            ],
            axis=1,
        )
        kept = found[nms_iou(found[:, :4], found[:, 4], 0.7)]
        expected = np.concatenate([np_square(np_regress(kept[:, :4], kept[:, 5:9])), kept[:, 4:5]], axis=1)
        got = candidates(found, _IOU, False)
        assert got.shape == (len(kept), 5) and got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)


def np_crop_sources(scales: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    side = boxes[:, 2] - boxes[:, 0]
    index = np.maximum((side[:, None] * scales[None, :, 0] >= 2 * size).sum(axis=1) - 1, 0)
    order = np.argsort(index, kind="stable")
    index = index[order]
    rois = boxes[order, :4] * scales[index][:, [0, 1, 0, 1]]
    return order, index, rois.astype(np.float32, copy=False)


def test_crop_sources_group_boxes_by_the_smallest_level_twice_their_crop() -> None:
    from ferhub._mtcnn_kernels import crop_sources

    rng = np.random.default_rng(13)
    scales = np.array([(1, 1)] + [(0.3 * 0.709**k, 0.31 * 0.709**k) for k in range(6)], np.float32)
    for size in (24, 48):
        boxes = np.concatenate([4 * candidate_boxes(rng, 70), rng.random((70, 1), np.float32)], axis=1)
        boxes[0, 2] = boxes[0, 0] + 2 * size / scales[3, 0]  # exactly twice the crop on level 3
        for got, expected in zip(crop_sources(scales, boxes, size), np_crop_sources(scales, boxes, size)):
            np.testing.assert_array_equal(got, expected)
        assert len(set(crop_sources(scales, boxes, size)[1].tolist())) > 2  # several sources


def net_outputs(rng: np.random.Generator, n: int, *widths: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """A random crop order of ``n`` boxes, and a net's outputs in that order: a score with ties around 0.7,
    then arrays of ``widths`` columns."""
    order = rng.permutation(n).astype(np.int64)
    score = np.round(rng.random(n) * 10).astype(np.float32) / 10
    score[:2] = np.float32(0.7)  # at the threshold: not above it
    return order, [score, *(rng.normal(0, 0.15, (n, w)).astype(np.float32) for w in widths)]


def in_box_order(order: np.ndarray, outputs: list[np.ndarray]) -> list[np.ndarray]:
    back = [np.empty_like(o) for o in outputs]
    for b, o in zip(back, outputs):
        b[order] = o
    return back


def test_stage_two_refines_the_boxes_r_net_passes_as_the_numpy_steps() -> None:
    from ferhub._mtcnn_kernels import refined
    from ferhub._mtcnn_onnx import _IOU, nms_iou

    rng = np.random.default_rng(14)
    for n in (0, 1, 9, 70):
        boxes = np.concatenate([candidate_boxes(rng, n), rng.random((n, 1), np.float32)], axis=1)
        order, (score, reg) = net_outputs(rng, n, 4)
        s, r = in_box_order(order, [score, reg])
        ok = s > 0.7
        b, s, r = boxes[ok, :4], s[ok], r[ok]
        keep = nms_iou(b, s, 0.7)
        got_boxes, got_score = refined(boxes, order, score, reg, np.float32(0.7), _IOU, False)
        np.testing.assert_array_equal(got_boxes, np_square(np_regress(b[keep], r[keep])))
        np.testing.assert_array_equal(got_score, s[keep])


def test_stage_three_faces_are_the_numpy_steps_scaled_to_the_photo() -> None:
    from ferhub._mtcnn_kernels import faces
    from ferhub._mtcnn_onnx import _MIN_OVERLAP, nms_min

    rng = np.random.default_rng(15)
    for n in (0, 1, 3, 12):
        boxes = np_square(candidate_boxes(rng, n)).astype(np.float32)
        order, (score, reg, marks) = net_outputs(rng, n, 4, 10)
        marks = np.abs(marks)
        s, r, m = in_box_order(order, [score, reg, marks])
        ok = s > 0.7
        b, s, r, m = boxes[ok], s[ok], r[ok], m[ok]
        wh = b[:, 2:] - b[:, :2]
        points = np.stack([m[:, :5], m[:, 5:]], axis=2) * wh[:, None, :] + b[:, None, :2]
        moved = np_regress(b, r)
        keep = nms_min(moved, s, 0.7)
        scale = np.array([1.5, 2.0], dtype=np.float32)
        got = faces(boxes, order, score, reg, marks, np.float32(0.7), _MIN_OVERLAP, True, *scale)
        np.testing.assert_array_equal(got[0], (moved[keep] * np.tile(scale, 2)).astype(np.float32))
        np.testing.assert_array_equal(got[1], s[keep])
        np.testing.assert_array_equal(got[2], (points[keep] * scale).astype(np.float32))
        assert got[0].shape == (len(keep), 4) and got[2].shape == (len(keep), 5, 2)


def test_nms_of_boxes_without_area_is_torchvisions_not_an_error() -> None:
    """Two boxes of zero area give an IoU of 0 / 0: NaN in torchvision's float arithmetic, above no threshold,
    so both are kept. The kernels compile with numpy's error model; with Python's (Numba's default) the NMS
    raised ZeroDivisionError and the detection failed."""
    from ferhub._compat import nms_cpu
    from ferhub._mtcnn_kernels import nms

    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [1, 1, 3, 3], [1, 1, 3, 3.1]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    with np.errstate(invalid="ignore"):  # the reference's 0 / 0
        expected = nms_cpu(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    np.testing.assert_array_equal(nms(boxes, scores, np.float32(0.5), False), expected)
    assert list(expected) == [0, 1, 2]  # the two empty boxes kept; the last overlaps the third
    # "Min" divides by the smaller area, at least 1e-9: an empty box's intersection is 0, so it keeps them too
    np.testing.assert_array_equal(nms(boxes, scores, np.float32(0.5), True), [0, 1, 2])


def test_the_nms_score_order_is_a_stable_descending_sort() -> None:
    """``_by_score`` (the NMS's order, a merge sort of its own) is ``np.argsort(-scores, kind="mergesort")``:
    highest first, equal scores in index order; lengths around the powers of two its runs double through."""
    from ferhub._mtcnn_kernels import _by_score

    rng = np.random.default_rng(16)
    for n in (0, 1, 2, 3, 7, 8, 9, 31, 64, 65, 200):
        for levels in (3, 1000):  # many ties, few ties
            scores = (rng.integers(0, levels, n) / levels).astype(np.float32)
            np.testing.assert_array_equal(_by_score(scores), np.argsort(-scores, kind="mergesort"))
