"""load_image: every awkward input becomes an upright RGB image or a clear ImageDecodeError."""

from __future__ import annotations

import gc
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from images_corpus import bomb_gif, bomb_png, encode, exif_rotated, gradient, write_corpus
from PIL import Image

from ferhub.images import ImageDecodeError, load_image


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


CORPUS_NAMES = [
    "zero_bytes",
    "truncated_jpeg",
    "text_as_jpg",
    "cmyk_jpeg",
    "png_16bit",
    "palette_transparency",
    "gray_alpha",
    "one_bit",
    "exif_rotated",
    "one_pixel",
    "bomb_header_png",
    "bomb_header_gif",
    "animated_gif",
    "webp",
    "animated_webp",
]


@pytest.mark.parametrize("name", CORPUS_NAMES)
@pytest.mark.parametrize("as_bytes", [False, True], ids=["path", "bytes"])
def test_corpus_decodes_or_fails_clearly(corpus, name: str, as_bytes: bool) -> None:
    item = corpus[name]
    src = item.path.read_bytes() if as_bytes else item.path
    if item.ok:
        image = load_image(src)
        assert image.mode == "RGB"
        assert image.size == item.size
        image.load()
    else:
        with pytest.raises(ImageDecodeError) as e:
            load_image(src)
        message = str(e.value)
        assert len(message) > 30
        if not as_bytes:
            assert str(item.path) in message  # says which file


def test_error_messages_say_what_is_wrong(corpus) -> None:
    def message(name: str) -> str:
        with pytest.raises(ImageDecodeError) as e:
            load_image(corpus[name].path)
        return str(e.value)

    assert "empty (0 bytes)" in message("zero_bytes")
    assert "truncated" in message("truncated_jpeg")
    assert "not an image" in message("text_as_jpg")
    for name in ("zero_bytes", "truncated_jpeg", "text_as_jpg"):
        # the formats, not the Python types: the CLI's and the app's users read these messages too
        assert "accepted: JPEG, PNG" in message(name) and "numpy" not in message(name)
    assert "1600.0 MP" in message("bomb_header_png")
    assert "over the limit" in message("bomb_header_png")
    with pytest.raises(
        ImageDecodeError, match=re.escape("9000x9000 = 81.0 MP, over the limit of 50.0 MP")
    ) as e:
        load_image(bomb_png(9000, 9000))  # under Pillow's own limit: ferhub's check, from the header
    assert "downscale it first (from Python, load_image's max_pixels sets the limit)" in str(e.value)


def test_bomb_header_fails_fast_before_decoding(monkeypatch) -> None:
    """Refused from the header: no pixel is decoded (1.6 GP would take seconds and gigabytes)."""
    from PIL import ImageFile

    decoded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def spy(self):  # any decode of a file-backed image goes through ImageFile.load
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    for data in (bomb_png(), bomb_gif(), bomb_png(9000, 9000)):
        with pytest.raises(ImageDecodeError, match="MP"):
            load_image(data)
    assert decoded == []
    load_image(encode(Image.fromarray(gradient(8, 8)), "PNG"))  # the spy sees a real decode
    assert set(decoded) == {(8, 8)}


def test_pixel_limit_is_configurable() -> None:
    data = encode(Image.new("RGB", (200, 100)), "PNG")
    with pytest.raises(ImageDecodeError, match="over the limit"):
        load_image(data, max_pixels=19_999)
    assert load_image(data, max_pixels=20_000).size == (200, 100)
    assert load_image(data, max_pixels=None).size == (200, 100)
    with pytest.raises(ImageDecodeError, match="over the limit"):
        load_image(np.zeros((200, 100, 3), np.uint8), max_pixels=100)


def test_16bit_is_scaled_not_clipped(corpus) -> None:
    gray = np.asarray(load_image(corpus["png_16bit"].path))[:, :, 0].astype(int)
    assert gray.min() == 0 and gray.max() == 255
    # a linear ramp over 0..65535 stays a ramp: mid-image is mid-gray (clipping would make it 255)
    assert abs(int(gray[24, 32]) - 128) <= 3
    assert np.all(np.diff(gray.ravel()) >= 0)


def test_transparency_is_composited_on_white(corpus) -> None:
    la = np.asarray(load_image(corpus["gray_alpha"].path)).astype(int)
    gray = np.asarray(Image.fromarray(gradient()).convert("L")).astype(int)
    expected = (gray * 128 + 255 * 127) / 255  # alpha 128 over white
    assert np.abs(la[:, :, 0] - expected).max() <= 2
    palette = Image.open(corpus["palette_transparency"].path)
    transparent = np.asarray(palette) == 0
    rgb = np.asarray(load_image(corpus["palette_transparency"].path))
    assert transparent.any()
    assert np.all(rgb[transparent] == 255)


def test_rgba_array_and_image_on_white() -> None:
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 255  # one opaque red pixel, the rest fully transparent
    for src in (rgba, Image.fromarray(rgba, "RGBA")):
        out = np.asarray(load_image(src))
        assert out[0, 0].tolist() == [200, 0, 0]
        assert out[1, 1].tolist() == [255, 255, 255]


def test_exif_orientation_applied_exactly() -> None:
    upright = Image.fromarray(gradient(40, 30))
    decoded = load_image(exif_rotated(upright, "PNG"))
    assert decoded.size == (40, 30)
    assert np.array_equal(np.asarray(decoded), np.asarray(upright))


def test_cmyk_colours_survive() -> None:
    red = Image.new("RGB", (16, 16), (220, 30, 30))
    out = np.asarray(load_image(encode(red.convert("CMYK"), "JPEG", quality=95))).astype(int)
    assert np.abs(out.mean(axis=(0, 1)) - [220, 30, 30]).max() < 12


def test_animated_gif_gives_first_frame(corpus) -> None:
    assert np.asarray(load_image(corpus["animated_gif"].path)).max() == 0  # frames are black, gray, white
    assert np.asarray(load_image(corpus["animated_webp"].path)).max() == 0


def test_numpy_inputs() -> None:
    g = gradient(8, 6)
    assert np.array_equal(np.asarray(load_image(g)), g)
    gray = np.asarray(load_image(g[:, :, 0]))
    assert gray.shape == (6, 8, 3) and np.array_equal(gray[:, :, 1], g[:, :, 0])
    floats = np.asarray(load_image(g.astype(np.float32) / 255))
    assert np.abs(floats.astype(int) - g).max() <= 1
    sixteen = np.asarray(load_image(g.astype(np.uint16) * 257))
    assert np.array_equal(sixteen, g)
    assert np.asarray(load_image(np.ones((3, 3), bool))).min() == 255
    with pytest.raises(ImageDecodeError, match="not an image"):
        load_image(np.zeros((3, 3, 7)))


def test_pil_modes_to_rgb() -> None:
    base = Image.fromarray(gradient(16, 12))
    for mode in ("L", "P", "1", "RGBA", "LA", "PA", "CMYK", "YCbCr", "HSV", "I", "I;16", "F", "RGBX"):
        image = (
            base.convert(mode)
            if mode not in ("I;16",)
            else Image.fromarray(np.full((12, 16), 40000, np.uint16))
        )
        out = load_image(image)
        assert out.mode == "RGB" and out.size == (16, 12), mode
    # a passed-in RGB image is not the same object: callers may draw on what load_image returns
    assert load_image(base) is not base


def test_other_failures_are_decode_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageDecodeError, match="unsupported input type int; give a path, bytes, a PIL image"):
        load_image(12345)  # type: ignore[arg-type]
    with pytest.raises(ImageDecodeError, match=r"type BytesIO; .*\(a file object: pass its \.read\(\)\)"):
        load_image(io.BytesIO(b"\xff\xd8"))  # type: ignore[arg-type]
    with pytest.raises(ImageDecodeError, match="0 bytes"):
        load_image(b"")
    assert issubclass(ImageDecodeError, ValueError)


def test_bad_exif_keeps_the_pixels_and_files_are_closed(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 99  # not an orientation: ignored
    path = tmp_path / "odd.png"
    path.write_bytes(encode(Image.fromarray(gradient(20, 10)), "PNG", exif=exif.tobytes()))
    image = load_image(path)
    assert image.size == (20, 10) and np.array_equal(np.asarray(image), gradient(20, 10))
    anim = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (8, 8), c) for c in ((0, 0, 0), (255, 255, 255))]
    anim.write_bytes(encode(frames[0], "GIF", save_all=True, append_images=frames[1:]))
    first = load_image(anim)
    anim.unlink()  # the opened file is closed; the returned image does not depend on it
    assert np.asarray(first).max() == 0 and first.copy().size == (8, 8)


def test_single_frame_files_are_not_copied_and_not_left_open(tmp_path: Path, monkeypatch) -> None:
    """load() reads and closes a single-frame file, so its pixels come back without a copy (0.3-0.5 ms of a
    640x480 photo) and still belong to the image alone: the file can then be overwritten or deleted."""
    real_copy = Image.Image.copy
    for fmt in ("JPEG", "PNG", "BMP", "PPM", "TIFF", "WEBP"):
        path = tmp_path / f"photo.{fmt.lower()}"
        Image.fromarray(gradient(40, 30)).save(path, fmt)
        with Image.open(path) as reference:
            expected = np.asarray(reference.convert("RGB")).copy()
        copies: list[Image.Image] = []
        with monkeypatch.context() as patch, warnings.catch_warnings():
            patch.setattr(Image.Image, "copy", lambda self, seen=copies: seen.append(self) or real_copy(self))
            warnings.simplefilter("error", ResourceWarning)  # an unclosed file is reported when collected
            image = load_image(path)
            gc.collect()
        assert copies == [], fmt
        # a plain image, as a copy was: not the decoded file's object, which names the file (the app's JSON
        # carried the server's temporary path then, and gradio_client took that result for a file)
        assert type(image) is Image.Image and not getattr(image, "filename", None), fmt
        path.write_bytes(bytes(path.stat().st_size))  # other bytes in place: a memory map would show them
        path.unlink()
        assert np.array_equal(np.asarray(image), expected), fmt


def test_folder_scans_take_every_photo_suffix_pillow_opens(tmp_path: Path) -> None:
    from ferhub.images import image_suffixes
    from ferhub.predict import iter_image_files

    suffixes = image_suffixes()
    assert {".jpg", ".jpeg", ".jfif", ".png", ".webp", ".tif"} <= suffixes
    assert ".h5" not in suffixes and ".mpg" not in suffixes  # Pillow only identifies these (stub plugins)
    from PIL import Image as PILImage

    opened = {e for e, f in PILImage.registered_extensions().items() if f in PILImage.OPEN}
    assert (".avif" in suffixes) == (".avif" in opened)  # AVIF exactly where this Pillow decodes it
    for name in ("a.JFIF", "b.jpg", "c.h5", "d.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in iter_image_files([tmp_path])] == ["a.JFIF", "b.jpg"]


def test_rgb_pixels_are_pillows_own_memory_and_outlive_the_image(monkeypatch) -> None:
    """Detection reads an RGB image's pixels without a copy (Pillow's RGBX memory, through the Arrow C data
    interface): the colours are ``np.asarray``'s, the view sees a change to the image, is read-only and stays
    valid after the image is gone; where Pillow cannot export, the copy."""
    import ctypes
    import gc

    from ferhub.images import rgb_pixels

    shared = ctypes.pythonapi.PyCapsule_GetPointer
    prototype = (shared.restype, shared.argtypes)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    expected = np.asarray(image).copy()
    view = rgb_pixels(image)
    assert (shared.restype, shared.argtypes) == prototype  # ctypes' shared function object left as it was
    assert view.shape == (48, 64, 4) and view.dtype == np.uint8 and not view.flags.writeable
    np.testing.assert_array_equal(view[..., :3], expected)
    image.putpixel((5, 7), (1, 2, 3))  # the same memory: no copy was made
    assert tuple(view[7, 5, :3]) == (1, 2, 3)
    expected[7, 5] = (1, 2, 3)
    del image
    gc.collect()
    filler = [np.full((256, 256, 4), 255, np.uint8) for _ in range(64)]  # reuses freed memory, if any
    np.testing.assert_array_equal(view[..., :3], expected)
    del filler
    # no export (an older Pillow, or an image in several memory blocks): np.asarray's copy
    image = Image.fromarray(expected)
    monkeypatch.setattr(
        Image.Image, "__arrow_c_array__", lambda self: (_ for _ in ()).throw(ValueError("blocks"))
    )
    copy = rgb_pixels(image)
    assert copy.shape == (48, 64, 3)
    np.testing.assert_array_equal(copy, expected)
