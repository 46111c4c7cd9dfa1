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
    crops_of_levels(level[0], rois, got)
    np.testing.assert_allclose(got, reference(level, rois, size), rtol=0, atol=2e-5)
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
