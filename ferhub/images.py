"""Decoding any image ferhub is given into an upright 8-bit RGB :class:`PIL.Image.Image`.

Every source (path, bytes, PIL image, numpy array) goes through :func:`load_image` (or :func:`upright_rgb`,
the same without a copy of a caller's image that needs no change): EXIF orientation is applied, every PIL mode
becomes RGB (wide integers scaled by their declared depth, see :func:`_scale_to_uint8`; transparency
composited on white; the first frame of animations), and the pixel count is checked from the header *before*
any pixel is decoded, so a decompression bomb costs nothing but a clear :class:`ImageDecodeError`.

>>> load_image("photo.jpg").mode                    # doctest: +SKIP
'RGB'
"""

from __future__ import annotations

import ctypes
import functools
import io
import os
import re
import stat
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ferhub.errors import ImageDecodeError

DEFAULT_MAX_PIXELS = 50_000_000
# what a file must be (the CLI's and the app's users read this too: the Python types are in load_image's doc)
ACCEPTED = "JPEG, PNG, GIF, WebP, BMP, TIFF or any other format Pillow decodes"
_WHITE = (255, 255, 255)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNGs of fewer pixels go to Pillow: its decoder is as quick on them, and a process that only reads small
# ones (face-crop datasets) need not import Numba for ferhub._png
FAST_PNG_PIXELS = 1 << 16


@functools.cache
def image_suffixes() -> frozenset[str]:
    """Every file suffix (lower case, ``".jpg"``) Pillow can decode in this installation, plugins registered
    by import included (AVIF where the wheel carries it, HEIC with pillow-heif): what folder scans take."""
    from PIL import ImageFile

    Image.init()

    def decodes(fmt: str) -> bool:
        # stub plugins (BUFR, GRIB, HDF5, WMF) and MPEG only identify files; they decode no pixels
        factory = Image.OPEN.get(fmt, (None,))[0]
        return (
            fmt != "MPEG"
            and factory is not None
            and not (isinstance(factory, type) and issubclass(factory, ImageFile.StubImageFile))
        )

    return frozenset(s.lower() for s, fmt in Image.registered_extensions().items() if decodes(fmt))


def _name(src: object) -> str:
    if isinstance(src, (str, os.PathLike)):
        return os.fsdecode(src)  # any os.PathLike by its path (str() of one not a pathlib.Path: its repr)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<{len(src)} bytes>"
    return f"<{type(src).__name__}>"


def _check_pixels(width: int, height: int, max_pixels: int | None, name: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError(
            f"{name}: image header gives an empty size {width}x{height}; accepted: {ACCEPTED}"
        )
    if max_pixels is not None and width * height > max_pixels:
        raise ImageDecodeError(
            f"{name}: image is {width}x{height} = {width * height / 1e6:.1f} MP, over the limit of "
            f"{max_pixels / 1e6:.1f} MP (a decompression bomb or a very large photo); downscale it first"
            " (from Python, load_image's max_pixels sets the limit)"
        )


def _composite_on_white(image: Image.Image) -> Image.Image:
    """RGBA -> RGB over white, so transparent regions look like a plain background rather than black."""
    if image.mode == "La":  # premultiplied: Pillow converts it to LA only
        image = image.convert("LA")
    rgba = image.convert("RGBA") if image.mode != "RGBA" else image
    background = Image.new("RGB", rgba.size, _WHITE)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


# numpy dtype kinds that hold pixel values: bool, unsigned and signed integers, floats
_PIXEL_KINDS = "buif"
PIXEL_DTYPES = "uint8, uint16 or another integer type, bool, or float (0..1, or 0..255 when above 1)"
# PIL modes of 16-bit pixels (any byte order): their depth is declared, whatever their values
_MODES_16 = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
# formats Pillow opens as mode "I" (32-bit, no depth of its own) only from 16-bit files: a PGM/PPM of maxval
# over 255 (its values scaled to 0..65535 by Pillow) and, in older Pillows, a 16-bit PNG
_FORMATS_16 = frozenset({"PPM", "PNG"})
_BITS_PER_SAMPLE = 258  # TIFF tag


def _bit_depth(image: Image.Image) -> int | None:
    """16 where ``image``'s mode or file declares 16-bit pixels, else ``None`` (a depth the container does
    not say: mode ``I`` made in memory, a 32-bit TIFF)."""
    if image.mode in _MODES_16:
        return 16
    if image.mode != "I":
        return None
    fmt = getattr(image, "format", None)
    if fmt in _FORMATS_16:
        return 16
    if fmt == "TIFF":  # older Pillows open 16-bit TIFFs as mode I too
        bits = getattr(image, "tag_v2", {}).get(_BITS_PER_SAMPLE)
        if bits == 16 or bits == (16,):
            return 16
    return None


def _scale_to_uint8(a: np.ndarray, name: str = "<ndarray>", depth: int | None = None) -> np.ndarray:
    """Integer or float pixels of any range -> uint8, scaling (not clipping) wide ranges.

    The depth of the container decides, not the values: 16-bit pixels (``uint16`` in either byte order, as
    from a 16-bit PNG, TIFF or PGM, or ``depth=16`` where the file said so) are always scaled by 255/65535, so
    a dim 16-bit exposure stays dim whatever its container or its brightest pixel. Integers of no declared
    depth (``int32`` from PIL mode ``I``, ``int64``, ``int16``, ``uint32``) are read by their range: all
    within 0..255 as 8-bit values, kept; all within 0..65535 as 16-bit, scaled by 255/65535; any other range
    stretched over 0..255 (its lowest value black, its highest white). Floats in [0, 1] are scaled by 255,
    other floats taken as 0..255 and clipped; NaN and -inf are black, +inf white, the scale taken from the
    finite pixels alone, so one bad value does not change the others. Other dtypes (strings, objects,
    complex, dates) raise :class:`ImageDecodeError`.
    """
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind not in _PIXEL_KINDS:
        raise ImageDecodeError(
            f"{name}: numpy array of dtype {a.dtype} does not hold pixel values; expected {PIXEL_DTYPES}"
        )
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if a.dtype.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):  # float64 past float32's range: +-inf, as below
            a = a.astype(np.float32)  # a copy: changed in place below, never the caller's array
        finite = np.isfinite(a)
        if not finite.all():
            # the finite pixels decide the range (a lone inf read as the maximum made every other pixel
            # black); +inf is then white in it, NaN and -inf black
            hi = float(a[finite].max()) if finite.any() else 0.0
            np.nan_to_num(a, copy=False, nan=0.0, posinf=1.0 if hi <= 1.0 else 255.0, neginf=0.0)
        hi = float(a.max()) if a.size else 0.0
        # floats in [0, 1] are the usual convention (skimage, torchvision); otherwise assume 0..255
        scale = 255.0 if hi <= 1.0 else 1.0
        a *= np.float32(scale)
        a += np.float32(0.5)
        return np.clip(a, 0, 255, out=a).astype(np.uint8)
    if a.dtype.kind == "u" and a.dtype.itemsize == 2:  # uint16, little- or big-endian: 16-bit by its type
        return _sixteen_to_eight(a)
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    if depth == 16 and lo >= 0 and hi <= 65535:
        return _sixteen_to_eight(a)
    if depth is None and lo >= 0 and hi <= 255:  # no declared depth: 8-bit values
        return a.astype(np.uint8)
    if depth is None and lo >= 0 and hi <= 65535:  # no declared depth: 16-bit values
        return _sixteen_to_eight(a)
    return _stretch(a, lo, hi)


def _sixteen_to_eight(a: np.ndarray) -> np.ndarray:
    """Values in 0..65535 -> 0..255, rounded (65535 -> 255, 128 -> 0, 129 -> 1)."""
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


# spans up to this are stretched in exact int64 arithmetic ((value - lo) * 255 stays below 2**63)
_EXACT_SPAN = (2**63 - 1) // 255


def _stretch(a: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Integers of range ``lo..hi`` stretched over 0..255: ``lo`` black, ``hi`` 255, rounded down between."""
    span = max(hi - lo, 1)
    if span <= _EXACT_SPAN:
        # exact: (value - lo) fits int64 (a uint64 above int64's range is shifted in its own type first)
        shifted = (a - a.dtype.type(lo)).astype(np.int64) if a.dtype == np.uint64 else a.astype(np.int64) - lo
        return (shifted * 255 // span).astype(np.uint8)
    # wider (int64/uint64 extremes): float64, whose rounding could leave the top just under 255 without the
    # small lift (values that close to the top are white at any 8-bit precision)
    scaled = (a.astype(np.float64) - float(lo)) * (255.0 / span) + 1e-6
    return np.clip(np.floor(scaled), 0, 255).astype(np.uint8)


def _to_rgb(image: Image.Image, name: str, depth: int | None = None) -> Image.Image:
    """``image`` as RGB; ``depth``: the bit depth its file declared (:func:`_bit_depth`), where the mode
    alone does not say it."""
    mode = image.mode
    # RGB as it is, a colour key in its info too: Pillow compares a 16-bit PNG's key with the 8-bit pixels,
    # and an image converted to RGB in memory keeps its palette's key, matching opaque pixels of that colour
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "L") and "transparency" in image.info):
        return _composite_on_white(image)
    if mode == "P":
        return image.convert("RGB")
    if mode.startswith("I") or mode == "F":  # 16/32-bit gray: scale to 8 bit (PIL's convert would clip)
        gray = _scale_to_uint8(np.asarray(image), name, depth)
        return Image.fromarray(gray, "L").convert("RGB")
    try:
        return image.convert("RGB")  # 1, L, CMYK, YCbCr, HSV, ...
    except (ValueError, OSError) as e:
        raise ImageDecodeError(
            f"{name}: cannot convert PIL mode {mode!r} to RGB ({e}); accepted: {ACCEPTED}"
        ) from e


def _from_array(a: np.ndarray, max_pixels: int | None, name: str) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageDecodeError(
            f"{name}: numpy array of shape {a.shape} is not an image; expected HxW (gray), HxWx3 (RGB) or"
            " HxWx4 (RGBA)"
        )
    _check_pixels(a.shape[1], a.shape[0], max_pixels, name)
    a = np.ascontiguousarray(_scale_to_uint8(a, name))
    if a.ndim == 2:
        return Image.fromarray(a, "L").convert("RGB")
    if a.shape[2] == 4:
        return _composite_on_white(Image.fromarray(a, "RGBA"))
    return Image.fromarray(a, "RGB")


def _fast_png(
    src: str | os.PathLike | bytes | bytearray | memoryview, name: str, max_pixels: int | None
) -> Image.Image | None:
    """``src`` decoded by :mod:`ferhub._png` where it is a PNG of the kind that module takes (~2x Pillow's
    speed on photos), its size checked first; ``None`` for Pillow to open it."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        if _large_png_size(bytes(src[:24])) is None:
            return None  # not copied for nothing: _open copies it once
        data = bytes(src)
    else:
        try:
            found = os.stat(src)
            if not stat.S_ISREG(found.st_mode):  # a FIFO would block the read; _open refuses it
                return None
            with open(src, "rb") as f:
                data = f.read(24)
                size = _large_png_size(data)
                # deflate stores incompressible rows with ~0.01% overhead: a file much larger than its rows
                # (a sparse file, data appended) is left to Pillow, which reads only what it needs
                if size is None or found.st_size > size[1] * (4 * size[0] + 1) * 1.01 + (1 << 20):
                    return None
                data += f.read()
        except OSError:
            return None  # Pillow's opening says what is wrong
    from ferhub import _png

    head = _png.header(data)
    if head is None:
        return None
    _check_pixels(head.width, head.height, max_pixels, name)
    if Image.MAX_IMAGE_PIXELS and head.width * head.height > Image.MAX_IMAGE_PIXELS:
        return None  # over Pillow's own decompression-bomb limit: Pillow warns or refuses, as before
    return _png.decode(data, head)


def warm_up_png() -> None:
    """Compile :mod:`ferhub._png`'s kernel, or load it from Numba's cache, by decoding a small generated PNG
    the way :func:`load_image` decodes a photo. A server calls this in the background at start: the first PNG
    photo otherwise waits for it (1.8 s in a fresh install, where Numba compiles it; ~13 ms from the cache;
    AMD EPYC, 2026-12-05)."""
    buffer = io.BytesIO()  # 256x256: FAST_PNG_PIXELS, the fewest pixels that go through ferhub._png
    Image.linear_gradient("L").convert("RGB").save(buffer, "PNG", compress_level=1)
    load_image(buffer.getvalue())


def _large_png_size(start: bytes) -> tuple[int, int] | None:
    """(width, height) from ``start``, a file's first 24 bytes, where they begin a PNG whose header claims at
    least :data:`FAST_PNG_PIXELS` pixels; else ``None``."""
    if start[:8] != _PNG_SIGNATURE:
        return None
    width, height = int.from_bytes(start[16:20], "big"), int.from_bytes(start[20:24], "big")
    return (width, height) if width * height >= FAST_PNG_PIXELS else None


def _open(
    src: str | os.PathLike | bytes | bytearray | memoryview, name: str, max_pixels: int | None
) -> Image.Image:
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        if not data:
            raise ImageDecodeError(f"{name}: no data (0 bytes); accepted: {ACCEPTED}")
        fp: io.BytesIO | Path = io.BytesIO(data)
    else:
        fp = Path(os.fsdecode(src))
        if not fp.is_file():  # a FIFO would block the read, a device (/dev/zero) never end
            kind = "no such file" if not fp.exists() else "not a regular file (a folder, FIFO or device)"
            raise ImageDecodeError(f"{name}: {kind}")
        if fp.stat().st_size == 0:
            raise ImageDecodeError(f"{name}: file is empty (0 bytes); accepted: {ACCEPTED}")
    try:
        return Image.open(fp)
    except UnidentifiedImageError as e:
        raise ImageDecodeError(f"{name}: not an image file Pillow recognises; accepted: {ACCEPTED}") from e
    except Image.DecompressionBombError as e:
        # Pillow refuses headers over twice its own limit inside Image.open, before ferhub sees the size
        found = re.search(r"\((\d+) pixels\)", str(e))
        pixels = f"{int(found.group(1)) / 1e6:.1f} MP" if found else "too many pixels"
        raise ImageDecodeError(
            f"{name}: image header claims {pixels}, over the limit of"
            f" {max_pixels / 1e6 if max_pixels else 0:.1f} MP and Pillow's decompression-bomb limit (a"
            " decompression bomb or a very large photo); downscale it first"
        ) from e
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as e:
        raise ImageDecodeError(f"{name}: unreadable image header ({e}); accepted: {ACCEPTED}") from e


def load_image(
    src: str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode ``src`` into an upright RGB image (a new one: the caller's PIL image is never returned).

    Args:
        src: a file path, encoded bytes, a PIL image, or a numpy array (HxW, HxWx3 RGB, HxWx4 RGBA; uint8,
            uint16 or other integers, bool, or float in [0, 1]).
        max_pixels: refuse images with more pixels than this, judged from the header before decoding
            (``None``: no ferhub limit; Pillow's own decompression-bomb limit still applies).

    Raises:
        ImageDecodeError: empty, truncated, unrecognised or over-large input, with the reason in the message.
    """
    return _load(src, max_pixels, copy=True)


def pixel_limit(src: object) -> int | None:
    """The pixel limit the Predictor, the face detector and saliency decode ``src`` under:
    :data:`DEFAULT_MAX_PIXELS` for a path or encoded bytes, whose header can claim far more pixels than the
    file's size suggests (a decompression bomb); ``None`` for an image already in memory, a PIL image or a
    numpy array, whose size is the caller's choice (Pillow's own bomb check still guards a file it opened)."""
    return None if isinstance(src, (Image.Image, np.ndarray)) else DEFAULT_MAX_PIXELS


def upright_rgb(
    src: str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    keep_gray: bool = False,
) -> Image.Image:
    """:func:`load_image`, except that a PIL image already upright RGB (no EXIF orientation to apply, no
    transparency) comes back as it is, not copied: for callers that only read the pixels (the
    :class:`~ferhub.predict.Predictor`'s entries, saliency), so that a PIL image gives them what its file
    gives.

    ``keep_gray``: an upright 8-bit grey (``"L"``) image is kept as it is too (face crops: each model converts
    them to its own channels, and L -> RGB -> L gives the same pixels back, at two conversions a crop).
    """
    keep = ("RGB", "L") if keep_gray else ("RGB",)
    # the common case first, in well under a microsecond (a crop or video frame: every crop of a batch comes
    # this way): an in-memory image (no file to read, no frames) with no info where EXIF or transparency
    # could be, in a mode kept
    if type(src) is Image.Image and src.mode in keep and not src.info and getattr(src, "_exif", None) is None:
        _check_pixels(src.width, src.height, max_pixels, "<Image>")
        return src
    return _load(src, max_pixels, copy=False, keep=keep)


_ORIENTATION = 0x0112  # EXIF tag; values 2-8 ask for a flip or turn, 1 (or none) for none


def _turned(image: Image.Image) -> bool:
    """Whether ``image``'s EXIF orientation asks for a flip or turn (``exif_transpose`` would change it)."""
    if not image.info and getattr(image, "_exif", None) is None and not hasattr(image, "tag_v2"):
        return False  # nowhere an orientation could come from (a decoded frame, a crop): no Exif parsed
    return image.getexif().get(_ORIENTATION, 1) in range(2, 9)


def _load(
    src: str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray,
    max_pixels: int | None,
    *,
    copy: bool,
    keep: tuple[str, ...] = ("RGB",),
) -> Image.Image:
    name = _name(src)
    if isinstance(src, np.ndarray):
        return _from_array(src, max_pixels, name)
    if isinstance(src, Image.Image):
        image = src
    elif isinstance(src, (str, os.PathLike, bytes, bytearray, memoryview)):
        image = _fast_png(src, name, max_pixels) or _open(src, name, max_pixels)
    else:
        raise ImageDecodeError(
            f"{name}: unsupported input type {type(src).__name__}; give a path, bytes, a PIL image or a numpy"
            " array (a file object: pass its .read())"
        )
    try:
        _check_pixels(image.width, image.height, max_pixels, name)
        if getattr(image, "is_animated", False):
            image.seek(0)  # the first frame of an animated GIF / WebP / APNG
        image.load()
        depth = _bit_depth(image)  # before turning: a turned copy no longer knows its file's format
        try:
            if image is src:  # the caller's image stays as it is: turned on a copy, and only if it must be
                upright = ImageOps.exif_transpose(image) if _turned(image) else image
            else:  # ferhub's own: turned in place, where exif_transpose would return a copy of every photo
                ImageOps.exif_transpose(image, in_place=True)
                upright = image
        except (OSError, SyntaxError, ValueError, TypeError, KeyError, struct.error):
            upright = image  # malformed EXIF: the pixels are still a good image, keep them as stored
        kept = upright.mode in keep and "transparency" not in upright.info
        rgb = upright if kept else _to_rgb(upright, name, depth)
        rgb.load()
        if rgb is image and image is not src and _holds_file(image):
            rgb = rgb.copy()  # keep the pixels; the opened file is closed below
    except ImageDecodeError:
        raise
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, MemoryError) as e:
        reason = (
            "truncated or corrupt image data" if "truncated" in str(e).lower() else "cannot decode image data"
        )
        raise ImageDecodeError(f"{name}: {reason} ({e}); accepted: {ACCEPTED}") from e
    finally:
        if image is not src and _holds_file(image):
            image.close()  # the file ferhub opened (animated images keep it open until closed)
    if rgb is src:
        return rgb.copy() if copy else rgb
    # the decoded file's own object carries its filename (a server's temporary path, in the app): hand back
    # a plain image over the same pixels instead, as a copy would be, without copying them
    return rgb._new(rgb.im) if isinstance(rgb, ImageFile.ImageFile) else rgb


def _holds_file(image: Image.Image) -> bool:
    """Whether ``image`` still holds its file: open (animated images, a failed decode) or memory-mapped.

    ``load()`` reads and closes a single-frame file, so such an image needs no ``close()``, which would free
    its pixels and make ``load_image`` copy them first (0.3-0.5 ms of a 640x480 photo). A memory map is closed
    all the same: its pixels would change with the file.
    """
    return getattr(image, "fp", None) is not None or getattr(image, "map", None) is not None


class _ArrowArray(ctypes.Structure):
    """The Arrow C data interface's ``struct ArrowArray`` (a stable ABI: arrow.apache.org/docs/format/
    CDataInterface.html)."""


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]


class _Exported:
    """A read-only ``__array_interface__`` over an exported Arrow buffer; numpy's array keeps this object,
    and so the capsule (whose release lets Pillow free the pixels), alive as its base."""

    def __init__(self, capsule: object, address: int, shape: tuple[int, ...]) -> None:
        self.capsule = capsule
        self.__array_interface__ = {"data": (address, True), "shape": shape, "typestr": "|u1", "version": 3}


# ``PyCapsule_GetPointer`` with a prototype of its own, made once: setting ``restype``/``argtypes`` on the
# shared ``ctypes.pythonapi.PyCapsule_GetPointer`` would change it for every other user in the process
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi)
)


def rgb_pixels(image: Image.Image) -> np.ndarray:
    """An RGB image's pixels, ``(H, W, C)`` uint8 with the colours in channels 0-2: without a copy where
    Pillow exports them (``C`` = 4, RGBX, read-only, over Pillow's own memory through the Arrow C data
    interface, Pillow >= 11.2), else ``np.asarray``'s ``(H, W, 3)`` copy (an image larger than one of
    Pillow's memory blocks, 16 MB by default).

    Pillow keeps RGB as 4 bytes a pixel; ``np.asarray`` packs them to 3 through ``tobytes``: 0.6 ms of a
    640x480 photo's ~9 ms detection, before any other step can start. The view reads the image as it is when
    read: for pixels that must not change under it, pass an image nothing else draws on (ferhub's drawing
    works on copies).
    """
    if image.mode != "RGB":
        return np.asarray(image)
    try:
        schema, array = image.__arrow_c_array__()  # type: ignore[attr-defined]
    except (AttributeError, ValueError):  # an older Pillow; an image in several blocks
        return np.asarray(image)
    # the schema's first field is its format: "+w:4", a list of 4 values a pixel (their "C", uint8, is
    # checked by the sizes below)
    form = ctypes.c_char_p.from_address(_capsule_pointer(schema, b"arrow_schema")).value
    exported = _ArrowArray.from_address(_capsule_pointer(array, b"arrow_array"))
    count = image.width * image.height
    if not (
        form == b"+w:4" and exported.length == count and exported.offset == 0 and exported.n_children == 1
    ):
        return np.asarray(image)
    values = exported.children[0].contents
    if values.length != 4 * count or values.offset != 0 or values.n_buffers != 2 or not values.buffers[1]:
        return np.asarray(image)
    return np.asarray(_Exported(array, values.buffers[1], (image.height, image.width, 4)))
