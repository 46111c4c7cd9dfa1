"""Pixel values by their declared depth: 16-bit data gives one picture whatever its container or its brightest
pixel, stretched ranges reach white, arrays that hold no pixels are a clear error, a non-finite float pixel
leaves the others alone; and the Predictor's no-copy entry."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from images_corpus import exif_rotated, gradient
from PIL import Image

from ferhub.images import ImageDecodeError, load_image, upright_rgb


def _gray(image: Image.Image) -> np.ndarray:
    out = np.asarray(image)
    assert out.shape[2] == 3 and np.array_equal(out[:, :, 0], out[:, :, 2])
    return out[:, :, 0]


def _encoded(values: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, fmt)
    return buffer.getvalue()


def _sixteen_bit_sources(values: np.ndarray) -> dict[str, object]:
    """``values`` (uint16) in every container that declares 16-bit pixels."""
    return {
        "uint16": values,
        ">u2": values.astype(">u2"),
        "PIL I;16": Image.fromarray(values),
        "PIL I;16B": Image.frombytes(
            "I;16B", (values.shape[1], values.shape[0]), values.astype(">u2").tobytes()
        ),
        "PNG": _encoded(values, "PNG"),
        "TIFF": _encoded(values, "TIFF"),
        "PGM": _encoded(values, "PPM"),  # Pillow opens it as mode I: its depth comes from the file
        "PGM opened": Image.open(io.BytesIO(_encoded(values, "PPM"))),
    }


@pytest.mark.parametrize("top", [127, 255, 256, 4095, 40000, 65535])
def test_16bit_pixels_are_scaled_by_their_depth_whatever_their_values(top: int) -> None:
    """A dim 16-bit exposure was read as 8-bit from a PGM or big-endian image, then, under a rule by value,
    from every 16-bit container whose brightest pixel was at most 255: 257x brighter than the same picture
    with one pixel at 256. The container's depth decides: 16-bit data is scaled by 255/65535 always."""
    values = np.linspace(0, top, 48 * 64).reshape(48, 64).astype(np.uint16)
    expected = ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    for name, src in _sixteen_bit_sources(values).items():
        assert np.array_equal(_gray(load_image(src)), expected), name
    assert expected.max() == round(top * 255 / 65535)  # dim stays dim: 255 and 256 both give 1, not 255 and 1


def test_no_jump_at_255_for_16bit_data() -> None:
    """Frames of a dim 16-bit sequence (a 12-bit sensor, an IR camera) whose brightest pixel crosses 255
    flickered between an 8-bit and a 16-bit reading."""
    for container in ("uint16", "PNG", "PGM", "TIFF"):
        tops = []
        for top in (254, 255, 256, 257):
            values = np.full((4, 4), 100, np.uint16)
            values[0, 0] = top
            tops.append(_gray(load_image(_sixteen_bit_sources(values)[container])).astype(int))
        assert all(np.array_equal(t[1:], tops[0][1:]) for t in tops), container  # the other pixels alike
        assert tops[0][1:].max() == 0  # 100/65535: black, in every frame


@pytest.mark.parametrize("top", [127, 255, 256, 40000, 65535])
def test_integers_of_no_declared_depth_go_by_their_range(top: int) -> None:
    """int32/int64 arrays and PIL mode I made in memory say no depth: values within 0..255 are 8-bit,
    within 0..65535 16-bit (the rule by value is kept for them alone)."""
    values = np.linspace(0, top, 48 * 64).reshape(48, 64).astype(np.uint16)
    sources = {
        "int32": values.astype(np.int32),
        "int64": values.astype(np.int64),
        "PIL I": Image.fromarray(values.astype(np.int32)),
    }
    if top <= 255:
        expected = values.astype(np.uint8)
    else:
        expected = ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    for name, src in sources.items():
        assert np.array_equal(_gray(load_image(src)), expected), name


@pytest.mark.parametrize("span", [66502, 66656, 68364, 70000, 2**31 - 1, 2**40 + 7])
def test_a_stretched_range_reaches_white(span: int) -> None:
    """Float arithmetic truncated span * (255 / span) to 254.999... for some spans: the brightest pixel was
    254, not 255."""
    for lo in (0, -5):
        a = np.linspace(lo, lo + span, 64).astype(np.int64)
        a[-1] = lo + span
        out = _gray(load_image(a.reshape(8, 8)))
        assert out.min() == 0 and out.max() == 255, (lo, span)
    extremes = np.array([[np.iinfo(np.int64).min, 0], [1, np.iinfo(np.int64).max]], np.int64)
    assert _gray(load_image(extremes)).tolist() == [[0, 127], [127, 255]]
    top = np.array([[0, 2**64 - 1]], np.uint64)
    assert _gray(load_image(top)).tolist() == [[0, 255]]


def test_every_stretched_span_reaches_white() -> None:
    """The review found 6,768 of ~48k spans topping out at 254."""
    spans = np.arange(65536, 65536 + 50_000)
    tops = [_gray(load_image(np.array([[0, s]], np.int32))).max() for s in spans[::97]]
    assert set(tops) == {255}
    from ferhub.images import _stretch

    for s in spans:  # the stretch itself, over every span (fast: no decoding)
        assert _stretch(np.array([0, s], np.int64), 0, int(s))[1] == 255, s


@pytest.mark.parametrize(
    "array",
    [
        np.full((8, 8), "a"),
        np.zeros((8, 8), object),
        np.zeros((8, 8, 3), np.complex64),
        np.zeros((8, 8), "datetime64[s]"),
    ],
    ids=["str", "object", "complex", "datetime"],
)
def test_arrays_of_no_pixel_values_are_decode_errors(array: np.ndarray) -> None:
    dtype = re.escape(str(array.dtype))
    with pytest.raises(ImageDecodeError, match=rf"dtype {dtype} does not hold pixel values; expected"):
        load_image(array)


def test_a_non_finite_float_pixel_leaves_the_others_alone() -> None:
    """One inf in a 0..1 image read as its maximum: every other pixel scaled by 1 instead of 255, black."""
    g = gradient(16, 12)
    floats = g.astype(np.float32) / 255
    for bad, value in ((np.inf, 255), (-np.inf, 0), (np.nan, 0)):
        damaged = floats.copy()
        damaged[0, 0, 0] = bad
        out = np.asarray(load_image(damaged)).astype(int)
        assert out[0, 0, 0] == value, bad
        assert np.abs(out - g)[1:].max() <= 1, bad  # the rest as without the bad pixel
    assert np.asarray(load_image(np.full((4, 4), np.nan))).max() == 0
    assert np.asarray(load_image(np.full((4, 4), np.inf))).min() == 255
    huge = np.full((4, 4), 1e300)  # float64 past float32's range: the brightest, and no overflow warning
    with np.errstate(all="raise"):
        assert np.asarray(load_image(huge)).min() == 255


def test_premultiplied_gray_alpha_is_composited() -> None:
    """Mode La: Pillow converts it to LA only; it was "cannot decode image data"."""
    la = Image.merge("LA", [Image.new("L", (6, 4), 100), Image.new("L", (6, 4), 255)])
    out = np.asarray(load_image(la.convert("La")))
    assert out.shape == (4, 6, 3) and np.abs(out.astype(int) - 100).max() <= 1


def test_upright_rgb_copies_nothing_that_needs_no_change() -> None:
    """The Predictor's entries read a caller's upright RGB image as it is (no copy per image); anything that
    must change (EXIF orientation, another mode) comes out as load_image gives it."""
    rgb = Image.fromarray(gradient(8, 6))
    assert upright_rgb(rgb) is rgb
    assert load_image(rgb) is not rgb  # load_image still hands out a new image
    gray = rgb.convert("L")
    assert upright_rgb(gray, keep_gray=True) is gray
    assert upright_rgb(gray).mode == "RGB"
    turned = Image.open(io.BytesIO(exif_rotated(rgb, "PNG")))
    for out in (upright_rgb(turned), upright_rgb(turned, keep_gray=True)):
        assert out.size == (8, 6) and np.array_equal(np.asarray(out), np.asarray(rgb))
