"""ferhub._png: the PNGs it takes decode to Pillow's pixels, through every filter type and layout; every other
PNG (and every broken one) is left to Pillow, so ``load_image`` gives what it gave before."""

from __future__ import annotations

import functools
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from fresh import passes_in_fresh_process
from images_corpus import encode, exif_rotated, png_chunk
from PIL import Image

from ferhub import _png
from ferhub.errors import ImageDecodeError
from ferhub.images import FAST_PNG_PIXELS, load_image

W, H = 331, 203  # odd sides, 67,193 pixels: over FAST_PNG_PIXELS
assert W * H >= FAST_PNG_PIXELS
MODES = {"L": 0, "LA": 4, "RGB": 2, "RGBA": 6}


def photo_like(mode: str, width: int = W, height: int = H, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise (a photo's mix of flat and busy rows), uint8 in ``mode``'s layout."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    channels = len(mode)
    planes = [
        ((x * (3 + k) + y * (5 - k)) % 256 + rng.integers(0, 40, (height, width))) % 256
        for k in range(channels)
    ]
    a = np.stack(planes, axis=2).astype(np.uint8)
    return a[:, :, 0] if channels == 1 else a


def pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return np.asarray(image).copy()


def filtered_rows(a: np.ndarray, kinds: list[int]) -> bytes:
    """``a``'s rows filtered as PNG does, row ``y`` with filter type ``kinds[y % len(kinds)]``."""
    h = a.shape[0]
    bpp = 1 if a.ndim == 2 else a.shape[2]
    rows = a.reshape(h, -1).astype(np.int32)
    prev = np.zeros_like(rows[0])
    out = []
    for y in range(h):
        row, kind = rows[y], kinds[y % len(kinds)]
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        upper_left = np.concatenate([np.zeros(bpp, np.int32), prev[:-bpp]])
        if kind == 0:
            predicted = np.zeros_like(row)
        elif kind == 1:
            predicted = left
        elif kind == 2:
            predicted = prev
        elif kind == 3:
            predicted = (left + prev) >> 1
        else:
            pa, pb, pc = abs(prev - upper_left), abs(left - upper_left), abs(left + prev - 2 * upper_left)
            predicted = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upper_left))
        out.append(bytes([kind]) + ((row - predicted) % 256).astype(np.uint8).tobytes())
        prev = row
    return b"".join(out)


def png(
    a: np.ndarray,
    mode: str,
    kinds: list[int] = [0, 1, 2, 3, 4],  # noqa: B006 - read only
    *,
    idat_size: int = 1 << 30,
    before: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
    ihdr: tuple[int, ...] | None = None,
    stream: bytes | None = None,
) -> bytes:
    """A PNG of ``a`` written here (not by Pillow): the given filter types, IDAT chunks of ``idat_size``
    bytes, further chunks before the first IDAT."""
    h, w = a.shape[:2]
    fields = ihdr or (w, h, 8, MODES[mode], 0, 0, 0)
    data = stream if stream is not None else zlib.compress(filtered_rows(a, kinds), 6)
    idats = b"".join(png_chunk(b"IDAT", data[i : i + idat_size]) for i in range(0, len(data), idat_size))
    return (
        _png.SIGNATURE
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", *fields))
        + b"".join(png_chunk(kind, body) for kind, body in before)
        + idats
        + png_chunk(b"IEND", b"")
    )


def fast(data: bytes) -> Image.Image | None:
    head = _png.header(data)
    return None if head is None else _png.decode(data, head)


@pytest.mark.parametrize("mode", list(MODES))
def test_every_filter_type_and_layout_decodes_to_the_pixels(mode: str) -> None:
    a = photo_like(mode)
    for kinds, idat_size in (([0, 1, 2, 3, 4], 1 << 30), ([4], 997), ([3, 1], 1), ([2, 0], 65536)):
        data = png(a, mode, kinds, idat_size=idat_size)
        image = fast(data)
        assert image is not None and image.mode == mode and image.size == (W, H), (kinds, idat_size)
        assert np.array_equal(np.asarray(image), a), (mode, kinds, idat_size)
        assert np.array_equal(pillow(data), a)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("size", [(W, H), (1, 70000), (70000, 1), (256, 256)])
def test_pillows_own_pngs_decode_to_pillows_pixels(mode: str, size: tuple[int, int]) -> None:
    data = encode(Image.fromarray(photo_like(mode, *size, seed=size[0])), "PNG")
    image = fast(data)
    assert image is not None and image.mode == mode
    assert np.array_equal(np.asarray(image), pillow(data))


def test_load_image_takes_the_fast_path_with_the_same_result(tmp_path: Path, monkeypatch) -> None:
    """From a path and from bytes: the same RGB pixels as Pillow's decode gave (RGBA and LA composited on
    white, grey as RGB), a plain image that holds no file."""
    taken: list[int] = []
    real = _png.decode
    monkeypatch.setattr(_png, "decode", lambda data, head: taken.append(1) or real(data, head))
    for mode in MODES:
        data = encode(Image.fromarray(photo_like(mode)), "PNG")
        path = tmp_path / f"{mode}.png"
        path.write_bytes(data)
        with Image.open(io.BytesIO(data)) as reference:
            reference.load()
            if "A" in mode:
                background = Image.new("RGB", reference.size, (255, 255, 255))
                background.paste(reference.convert("RGBA"), mask=reference.convert("RGBA").getchannel("A"))
                expected = np.asarray(background)
            else:
                expected = np.asarray(reference.convert("RGB"))
        for src in (path, str(path), data, bytearray(data), memoryview(data)):
            image = load_image(src)
            assert type(image) is Image.Image and image.mode == "RGB" and not getattr(image, "filename", None)
            assert np.array_equal(np.asarray(image), expected), (mode, type(src))
    assert len(taken) == 5 * len(MODES)


def test_small_pngs_stay_with_pillow(monkeypatch) -> None:
    monkeypatch.setattr(_png, "decode", lambda data, head: pytest.fail("small PNG sent to ferhub._png"))
    small = photo_like("RGB", 255, 256)  # 65,280 pixels, under FAST_PNG_PIXELS
    assert np.array_equal(np.asarray(load_image(encode(Image.fromarray(small), "PNG"))), small)


@functools.cache  # built once for the parametrised test's 17 cases, not once a case
def other_pngs() -> dict[str, bytes]:
    """PNGs ferhub._png leaves to Pillow (``None``), each of the kind a user may upload or a broken one."""
    rgb = photo_like("RGB")
    image = Image.fromarray(rgb)
    good = png(rgb, "RGB")
    idat = good.index(b"IDAT") - 4
    exif = Image.Exif()
    exif[0x0112] = 6
    split = png(rgb, "RGB", idat_size=4096)
    cut = split.index(b"IDAT", split.index(b"IDAT") + 1) - 4  # where the second IDAT chunk starts
    bad_crc = bytearray(png(rgb, "RGB", before=[(b"gAMA", struct.pack(">I", 45455))]))
    bad_crc[good.index(b"IDAT") + 4] ^= 0xFF  # a byte of gAMA's data: its checksum no longer matches
    return {
        "16-bit": encode(Image.fromarray(photo_like("L").astype(np.uint16) * 257), "PNG"),
        "palette": encode(image.convert("P"), "PNG"),
        "interlaced": png(rgb, "RGB", ihdr=(W, H, 8, 2, 0, 0, 1)),
        "transparency": encode(image, "PNG", transparency=(0, 0, 0)),
        "colour profile": encode(image, "PNG", icc_profile=b"\0" * 200),
        "EXIF": exif_rotated(image),
        "EXIF as text": png(rgb, "RGB", before=[(b"tEXt", b"Raw profile type exif\0\nexif\n  8\n00\n")]),
        "XMP": png(rgb, "RGB", before=[(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0<x/>")]),
        "unknown chunk": png(rgb, "RGB", before=[(b"vpAg", b"\0" * 9)]),
        "bad checksum": bytes(bad_crc),
        "truncated": good[: len(good) // 2],
        "no IEND": good[:-12],
        "filter type 5": png(rgb, "RGB", stream=zlib.compress(b"\x05" * (H * (3 * W + 1)))),
        "stream too long": png(rgb, "RGB", stream=zlib.compress(filtered_rows(rgb, [0]) + b"\0" * 99)),
        "stream too short": png(rgb, "RGB", stream=zlib.compress(filtered_rows(rgb, [0])[:-1])),
        "not a stream": good[:idat] + png_chunk(b"IDAT", b"\x78\x9c\xff\xff") + png_chunk(b"IEND", b""),
        "image data split by a chunk": split[:cut] + png_chunk(b"tIME", bytes(7)) + split[cut:],
    }


@pytest.mark.parametrize("name", list(other_pngs()))
def test_other_and_broken_pngs_are_left_to_pillow(name: str) -> None:
    """``None`` from ferhub._png, so ``load_image`` does what Pillow does with them: the same pixels, or the
    same error."""
    data = other_pngs()[name]
    assert fast(data) is None
    try:
        with Image.open(io.BytesIO(data)) as reference:
            reference.load()
    except Exception:  # whatever Pillow raises, load_image must refuse it clearly too
        with pytest.raises(ImageDecodeError):
            load_image(data)
        return
    decoded = load_image(data)
    assert decoded.mode == "RGB"
    if name == "EXIF":  # turned upright, as before
        assert decoded.size == (W, H)
        assert np.array_equal(np.asarray(decoded), photo_like("RGB"))


def test_text_chunks_without_exif_or_xmp_keep_the_fast_path() -> None:
    rgb = photo_like("RGB")
    chunks = [(b"tEXt", b"Software\0GIMP"), (b"pHYs", struct.pack(">IIB", 2835, 2835, 1)), (b"sRGB", b"\0")]
    image = fast(png(rgb, "RGB", before=chunks))
    assert image is not None and np.array_equal(np.asarray(image), rgb)


def test_a_header_over_the_pixel_limit_is_refused_before_inflating(monkeypatch) -> None:
    monkeypatch.setattr(_png, "decode", lambda data, head: pytest.fail("decoded a bomb"))
    huge = png(np.zeros((1, 1, 3), np.uint8), "RGB", ihdr=(9000, 9000, 8, 2, 0, 0, 0), stream=b"")
    with pytest.raises(ImageDecodeError, match=r"81\.0 MP"):
        load_image(huge)


def test_a_stream_that_inflates_past_the_rows_stops_there() -> None:
    """An inflation bomb (a few KB that inflate to 200 MB) is read no further than the rows' size + 1."""
    bomb = png(photo_like("RGB"), "RGB", stream=zlib.compress(b"\0" * 200_000_000, 9))
    assert len(bomb) < 300_000
    assert fast(bomb) is None


def test_a_file_much_larger_than_its_rows_is_left_to_pillow(tmp_path: Path, monkeypatch) -> None:
    """Reading the whole file would read whatever follows the image (here 2 MB appended; a sparse file could
    be gigabytes): Pillow reads only what it needs."""
    monkeypatch.setattr(_png, "decode", lambda data, head: pytest.fail("read the whole file"))
    rgb = photo_like("RGB")
    path = tmp_path / "padded.png"
    path.write_bytes(png(rgb, "RGB") + bytes(2 << 20))
    assert np.array_equal(np.asarray(load_image(path)), rgb)


def test_pillows_own_pixel_limit_still_applies_without_ferhubs(monkeypatch) -> None:
    """``max_pixels=None`` lifts ferhub's limit only: a PNG over Pillow's decompression-bomb limit goes to
    Pillow, which refuses it, rather than being decoded here."""
    monkeypatch.setattr(_png, "decode", lambda data, head: pytest.fail("decoded past Pillow's limit"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30_000)  # Pillow refuses twice that: 60,000 < 67,193
    with pytest.raises(ImageDecodeError, match="decompression"):
        load_image(png(photo_like("RGB"), "RGB"), max_pixels=None)


def test_warm_up_prepares_the_kernel_photos_then_use(tmp_path: Path) -> None:
    """The app's warm-up decodes a generated PNG through ``load_image``: afterwards the kernel has the one
    specialisation that photos from bytes and from a path use, so the first visitor's PNG does not compile
    another (a fresh process, as a server is)."""
    photo = np.random.default_rng(3).integers(0, 256, (480, 640, 3), np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    code = f"""
from pathlib import Path
from ferhub import _png
from ferhub.images import load_image, warm_up_png
assert not _png.unfilter.signatures
warm_up_png()
compiled = list(_png.unfilter.signatures)
path = Path({str(tmp_path / "photo.png")!r})
for src in (path, path.read_bytes()):
    load_image(src)
assert len(compiled) == 1 and _png.unfilter.signatures == compiled, (compiled, _png.unfilter.signatures)
print("ok")
"""
    passes_in_fresh_process(code)
