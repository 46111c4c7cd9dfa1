"""Drawing on PIL images: face boxes with labels, and a pasted row of thumbnails. No model code here."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

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


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class LabelLayout:
    """Where :func:`draw_boxes` puts each label: the font size, the tag rectangles (one per box, ``None`` for
    an empty label), the texts as drawn (a label that finds no free place is cut to its ``#n``), the padding
    inside a tag and the width of box lines."""

    font_size: int
    tags: list[Rect | None]
    texts: list[str]
    pad: int
    line: int


def _overlap(a: Rect, b: Rect) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _candidates(box: Rect, tw: float, th: float, size: tuple[int, int]) -> list[tuple[float, Rect]]:
    """Places for a ``tw`` x ``th`` tag near ``box``, each with a distance penalty: against the top edge,
    against the bottom edge, inside the top, then rows further out; left-aligned, right-aligned, centred."""
    w, h = size
    x1, y1, x2, y2 = box
    xs = (x1, x2 - tw, (x1 + x2 - tw) / 2)
    rows = [(0.0, y1 - th), (0.5, y2), (1.0, y1)]
    for k in range(1, 5):  # further out: above first, then below
        rows += [(1.0 + k, y1 - th * (k + 1)), (1.5 + k, y2 + th * k)]
    out = []
    for cost, y in rows:
        for j, x in enumerate(xs):
            x = min(max(x, 0.0), max(w - tw, 0.0))
            y_in = min(max(y, 0.0), max(h - th, 0.0))
            # a tag pushed back inside the photo is further from where it was meant to be
            out.append((cost + 0.1 * j + abs(y_in - y) / th, (x, y_in, x + tw, y_in + th)))
    return out


# a tag may cover at most this share of another face's box before the labels count as crowded
MAX_COVER = 0.25


def _place(
    boxes: Sequence[Rect], sizes: Sequence[tuple[float, float] | None], size: tuple[int, int]
) -> tuple[list[Rect | None], list[int]]:
    """Greedy placement in label order: each tag takes the cheapest candidate that overlaps no placed tag and
    covers little of another face. Returns the tags and the indices that found no such place (those get
    their least-bad candidate)."""
    placed: list[Rect | None] = []
    crowded = []
    areas = [max((b[2] - b[0]) * (b[3] - b[1]), 1.0) for b in boxes]
    for i, (box, ts) in enumerate(zip(boxes, sizes)):
        if ts is None:
            placed.append(None)
            continue
        best, best_score = None, None
        for cost, rect in _candidates(box, ts[0], ts[1], size):
            clash = sum(_overlap(rect, p) for p in placed if p is not None)
            covers = [_overlap(rect, b) / a for j, (b, a) in enumerate(zip(boxes, areas)) if j != i]
            worst = max(covers, default=0.0)
            score = (clash, worst > MAX_COVER, cost + 4 * sum(covers))
            if best_score is None or score < best_score:
                best, best_score = rect, score
        if best_score is not None and (best_score[0] > 0 or best_score[1]):
            crowded.append(i)
        placed.append(best)
    return placed, crowded


def layout_labels(size: tuple[int, int], boxes: Sequence[Box], labels: Sequence[str]) -> LabelLayout:
    """Sizes and places the labels of :func:`draw_boxes` so that none hides another.

    The font scales with the photo (1/32 of its longer side, at least 13 px) so a label reads the same on a
    webcam frame and on a 4K photo shown at screen size; when labels collide it shrinks, down to 1/80 of the
    longer side (about 12 px on screen for a photo shown 1000 px wide); labels that still find no free
    place are cut to their face number, which the probabilities beside the photo spell out.
    """
    w, h = size
    scale = max(w, h)
    line = max(3, round(scale / 160))
    floor = max(12, round(scale / 80))
    font_size = max(13, round(scale / 32))
    rects = [tuple(float(v) for v in b) for b in boxes]
    texts = list(labels)
    while True:
        font = _font(font_size)
        pad = max(2, round(font_size / 6))
        sizes = []
        for text in texts:
            if not text:
                sizes.append(None)
                continue
            left, top, right, bottom = font.getbbox(text)
            sizes.append((right - left + 2 * pad, bottom - top + 2 * pad))
        tags, crowded = _place(rects, sizes, size)
        if not crowded:
            return LabelLayout(font_size, tags, texts, pad, line)
        if font_size > floor:
            font_size = max(floor, round(font_size * 0.85))
            continue
        short = [t.split()[0] if i in crowded and t else t for i, t in enumerate(texts)]
        if short == texts:  # already as short as they get: the least-overlapping places will do
            return LabelLayout(font_size, tags, texts, pad, line)
        texts = short


def draw_boxes(
    image: Image.Image,
    boxes: Sequence[Box],
    labels: Sequence[str],
    colors: Sequence[RGB] | None = None,
    *,
    dashed: Sequence[bool] | None = None,
) -> Image.Image:
    """A copy of ``image`` with each box outlined and its label on a filled tag beside it, placed by
    :func:`layout_labels` so that no label hides another (a tag set away from its box gets a leader line).
    """
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    layout = layout_labels(out.size, boxes, labels)
    font = _font(layout.font_size)
    line = layout.line
    if colors is None:  # the colour of the first expression named in each label
        colors = [label_color(next((w for w in t.split() if w in LABEL_COLORS), "")) for t in labels]
    for i, box in enumerate(boxes):
        color = colors[i]
        x1, y1, x2, y2 = (float(v) for v in box)
        if dashed is not None and dashed[i]:
            _dashed_rectangle(draw, (x1, y1, x2, y2), color, line)
        else:
            draw.rectangle((x1, y1, x2, y2), outline=color, width=line)
    for tag, box, color in zip(layout.tags, boxes, colors):  # a tag set away from its box: a leader line
        if tag is None:
            continue
        tx1, ty1, tx2, ty2 = tag
        x1, y1, x2, y2 = (float(v) for v in box)
        if ty2 < y1 - line or ty1 > y2 + line or tx2 < x1 or tx1 > x2:
            ax = min(max((tx1 + tx2) / 2, x1), x2)
            ay = y1 if ty2 < y1 else y2
            draw.line(
                ((tx1 + tx2) / 2, ty2 if ty2 < y1 else ty1, ax, ay), fill=color, width=max(1, line // 2)
            )
    for tag, text, color in zip(layout.tags, layout.texts, colors):  # tags last: no line crosses a label
        if tag is None:
            continue
        tx1, ty1 = tag[:2]
        draw.rectangle(tag, fill=color)
        left, top, _, _ = font.getbbox(text)
        draw.text((tx1 + layout.pad - left, ty1 + layout.pad - top), text, fill=(255, 255, 255), font=font)
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
