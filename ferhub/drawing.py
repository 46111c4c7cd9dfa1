"""Drawing on PIL images: face boxes with labels, and a pasted row of thumbnails. No model code here."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

Box = tuple[float, float, float, float]
RGB = tuple[int, int, int]

# one stable colour per expression, chosen to stay readable on skin tones and under white text
LABEL_COLORS: dict[str, RGB] = {
    "angry": (220, 38, 38),
    "disgust": (101, 163, 13),
    "fear": (124, 58, 237),
    "happy": (234, 179, 8),
    "sad": (37, 99, 235),
    "surprise": (249, 115, 22),
    "neutral": (71, 85, 105),
    "contempt": (190, 24, 93),
}
DISAGREE_COLOR: RGB = (239, 68, 68)
AGREE_COLOR: RGB = (34, 197, 94)


def label_color(label: str) -> RGB:
    """The colour of an expression label (grey for labels outside ferhub's sets)."""
    return LABEL_COLORS.get(label, (71, 85, 105))


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def draw_boxes(
    image: Image.Image,
    boxes: Sequence[Box],
    labels: Sequence[str],
    colors: Sequence[RGB] | None = None,
    *,
    dashed: Sequence[bool] | None = None,
) -> Image.Image:
    """A copy of ``image`` with each box outlined and its label on a filled tag above it (below at the top edge).

    Line width and font scale with the image, so labels stay legible on both webcam frames and large photos.
    """
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    scale = max(w, h)
    line = max(3, round(scale / 160))
    font = _font(max(13, round(scale / 32)))
    for i, (box, text) in enumerate(zip(boxes, labels)):
        color = colors[i] if colors is not None else label_color(text.split()[0] if text else "")
        x1, y1, x2, y2 = (float(v) for v in box)
        if dashed is not None and dashed[i]:
            _dashed_rectangle(draw, (x1, y1, x2, y2), color, line)
        else:
            draw.rectangle((x1, y1, x2, y2), outline=color, width=line)
        if not text:
            continue
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left, bottom - top
        pad = max(2, line)
        ty = y1 - th - 2 * pad if y1 - th - 2 * pad >= 0 else y2  # keep the tag inside the image
        ty = min(ty, h - th - 2 * pad)
        tx = min(max(x1 - line / 2, 0), max(w - tw - 2 * pad, 0))
        draw.rectangle((tx, ty, tx + tw + 2 * pad, ty + th + 2 * pad), fill=color)
        draw.text((tx + pad - left, ty + pad - top), text, fill=(255, 255, 255), font=font)
    return out


def _dashed_rectangle(draw: ImageDraw.ImageDraw, box: Box, color: RGB, width: int) -> None:
    x1, y1, x2, y2 = box
    dash = max(6, width * 4)
    for a, b, horizontal, fixed in (
        (x1, x2, True, y1),
        (x1, x2, True, y2),
        (y1, y2, False, x1),
        (y1, y2, False, x2),
    ):
        pos = a
        while pos < b:
            end = min(pos + dash, b)
            seg = (pos, fixed, end, fixed) if horizontal else (fixed, pos, fixed, end)
            draw.line(seg, fill=color, width=width)
            pos += 2 * dash


def thumbnail(image: Image.Image, size: int) -> Image.Image:
    """A square ``size`` x ``size`` RGB copy (crops are already square; others are letterboxed)."""
    image = image.convert("RGB")
    if image.width == image.height:
        return image.resize((size, size), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (size, size), (0, 0, 0))
    copy = image.copy()
    copy.thumbnail((size, size), Image.Resampling.BICUBIC)
    canvas.paste(copy, ((size - copy.width) // 2, (size - copy.height) // 2))
    return canvas
