"""Images for tests, made on the fly: real faces that ship in registry packages, and a corpus of awkward
files.

Real faces: scikit-image's astronaut (Eileen Collins) and LFW crops (``lfw_subset``: the first 100 of its 200
25x25 images are faces, the rest are not), and matplotlib's ``grace_hopper.jpg``.

The awkward-file corpus (:func:`write_corpus`) covers what people upload: empty, truncated and mislabelled
files, every PIL mode that needs converting, EXIF rotation, animations, and a decompression bomb header.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image

# where the face is in each real photo (x1, y1, x2, y2), by eye from the images, generous by a few pixels
ASTRONAUT_FACE = (170, 55, 275, 180)
GRACE_HOPPER_FACE = (160, 100, 365, 350)


@cache
def _astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def astronaut() -> Image.Image:
    """scikit-image's astronaut photo, 512x512 RGB, one face."""
    return _astronaut().copy()


@cache
def _grace_hopper() -> Image.Image:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return Image.open(f).convert("RGB")


def grace_hopper() -> Image.Image:
    """matplotlib's portrait of Grace Hopper, 512x600 RGB, one face."""
    return _grace_hopper().copy()


@cache
def _lfw() -> np.ndarray:
    from skimage import data

    return data.lfw_subset()


def lfw_face(index: int) -> Image.Image:
    """LFW face crop ``index`` (0-99) of scikit-image's subset: 25x25 gray, as RGB."""
    if not 0 <= index < 100:
        raise IndexError("lfw_subset holds faces at 0-99 (100-199 are non-faces)")
    return Image.fromarray((_lfw()[index] * 255).round().astype(np.uint8)).convert("RGB")


def lfw_nonface(index: int) -> Image.Image:
    """One of the subset's 100 non-face 25x25 patches (``index`` 0-99), as RGB."""
    return Image.fromarray((_lfw()[100 + index] * 255).round().astype(np.uint8)).convert("RGB")


def multi_face_canvas() -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """A 960x640 canvas with six faces pasted apart: the astronaut's and Grace Hopper's heads and four LFW
    faces upscaled to 110 px; returns the image and each pasted region (x1, y1, x2, y2)."""
    canvas = Image.new("RGB", (960, 640), (118, 124, 131))
    pieces = [
        (astronaut().crop((130, 10, 320, 230)), (20, 20)),
        (grace_hopper().crop((120, 60, 410, 400)).resize((190, 223)), (290, 30)),
    ]
    for i, (x, y) in zip((0, 11, 23, 42), ((560, 40), (760, 60), (120, 420), (560, 400))):
        pieces.append((lfw_face(i).resize((110, 110), Image.Resampling.BICUBIC), (x, y)))
    regions = []
    for piece, (x, y) in pieces:
        canvas.paste(piece, (x, y))
        regions.append((x, y, x + piece.width, y + piece.height))
    return canvas, regions


# -- awkward files ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusItem:
    """A file of the corpus: ``ok`` says whether it must decode (to RGB) or fail with ImageDecodeError."""

    path: Path
    ok: bool
    size: tuple[int, int] | None = None  # expected upright (width, height) when ok


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def bomb_png(width: int = 40000, height: int = 40000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` RGB (its data is one empty deflate stream)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )


def bomb_gif(width: int = 40000, height: int = 40000) -> bytes:
    """A tiny GIF whose logical screen and only frame claim ``width`` x ``height``."""
    header = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return header + frame + b"\x3b"


def encode(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def exif_rotated(image: Image.Image, fmt: str = "PNG") -> bytes:
    """``image`` stored rotated 90 degrees counter-clockwise with EXIF Orientation 6 ("rotate 90 CW to view"),
    as cameras write portrait shots; decoding with the orientation applied gives ``image`` back exactly (PNG).
    """
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image.transpose(Image.Transpose.ROTATE_90), fmt, exif=exif.tobytes())


def gradient(width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth RGB test pattern, uint8 (height, width, 3)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack(
        [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=2
    ).astype(np.uint8)


def write_corpus(folder: Path) -> dict[str, CorpusItem]:
    """Write the awkward-file corpus into ``folder``; returns name -> item."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(gradient())
    jpeg = encode(rgb, "JPEG", quality=90)
    frames = [Image.fromarray(np.full((40, 50, 3), c, np.uint8)) for c in (0, 128, 255)]
    sixteen = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    la = Image.merge("LA", (rgb.convert("L"), Image.new("L", rgb.size, 128)))
    files: dict[str, tuple[str, bytes, bool, tuple[int, int] | None]] = {
        "zero_bytes": ("empty.jpg", b"", False, None),
        "truncated_jpeg": ("truncated.jpg", jpeg[: len(jpeg) // 2], False, None),
        "text_as_jpg": ("notes.jpg", b"this is a text file, not a photo\n" * 20, False, None),
        "cmyk_jpeg": ("cmyk.jpg", encode(rgb.convert("CMYK"), "JPEG", quality=95), True, (64, 48)),
        "png_16bit": ("gray16.png", encode(Image.fromarray(sixteen), "PNG"), True, (64, 48)),
        "palette_transparency": ("palette.png", encode(palette, "PNG", transparency=0), True, (64, 48)),
        "gray_alpha": ("la.png", encode(la, "PNG"), True, (64, 48)),
        "one_bit": ("bw.png", encode(rgb.convert("1"), "PNG"), True, (64, 48)),
        "exif_rotated": ("rotated.jpg", exif_rotated(rgb, "JPEG"), True, (64, 48)),
        "one_pixel": ("dot.png", encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"), True, (1, 1)),
        "bomb_header_png": ("bomb.png", bomb_png(), False, None),
        "bomb_header_gif": ("bomb.gif", bomb_gif(), False, None),
        "animated_gif": (
            "anim.gif",
            encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0),
            True,
            (50, 40),
        ),
        "webp": ("photo.webp", encode(rgb, "WEBP", quality=90), True, (64, 48)),
        "animated_webp": (
            "anim.webp",
            encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50, lossless=True),
            True,
            (50, 40),
        ),
    }
    items = {}
    for name, (filename, data, ok, size) in files.items():
        path = folder / filename
        path.write_bytes(data)
        items[name] = CorpusItem(path, ok, size)
    return items
