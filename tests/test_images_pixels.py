"""Pixel values by one rule: 16-bit data gives one picture whatever its container, arrays that hold no pixels
are a clear error, a non-finite float pixel leaves the others alone; and the Predictor's no-copy entry."""

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


@pytest.mark.parametrize("top", [127, 255, 40000, 65535], ids=["dim", "8-bit range", "16-bit", "full"])
def test_16bit_values_give_one_picture_in_every_container(top: int) -> None:
    """A dim 16-bit exposure was black from a PNG or TIFF (I;16) and 257x brighter from a PGM (mode I) or a
    big-endian image: equal values must give equal pixels, whatever the format or byte order."""
    values = np.linspace(0, top, 48 * 64).reshape(48, 64).astype(np.uint16)
    sources = {
        "uint16": values,
        ">u2": values.astype(">u2"),
        "int32": values.astype(np.int32),
        "int64": values.astype(np.int64),
        "PIL I;16": Image.fromarray(values),
        "PIL I": Image.fromarray(values.astype(np.int32)),
        "PIL I;16B": Image.frombytes("I;16B", (64, 48), values.astype(">u2").tobytes()),
        "PNG": _encoded(values, "PNG"),
        "TIFF": _encoded(values, "TIFF"),
        "PGM": _encoded(values, "PPM"),
    }
    pictures = {name: _gray(load_image(src)) for name, src in sources.items()}
    expected = pictures["uint16"]
    for name, picture in pictures.items():
        assert np.array_equal(picture, expected), name
    if top <= 255:  # 8-bit values in a wider container are 8-bit values: a picture, not black
        assert np.array_equal(expected, values.astype(np.uint8))
    else:  # 16-bit: scaled by 255/65535, not clipped
        assert expected.max() == round(top * 255 / 65535)


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
