"""Drawing on PIL images: face boxes with labels, and a pasted row of thumbnails. No model code here."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Box = tuple[float, float, float, float]
RGB = tuple[int, int, int]

# One stable colour per expression: the Okabe-Ito palette (Okabe & Ito 2008), whose colours stay apart under
# the common colour-vision deficiencies (simulated deuteranopia, protanopia, tritanopia: every pair of the 7
# expressions at least ~12 CIEDE2000 apart; the last palette made fear and sad one colour for deuteranopes).
# The boxes, their tags, the probability bars and the timelines all take their colours from here. A tag's
# text is black or white, whichever contrasts more with its colour (:func:`text_color`).
LABEL_COLORS: dict[str, RGB] = {
    "angry": (213, 94, 0),  # vermillion
    "disgust": (0, 158, 115),  # bluish green
    "fear": (204, 121, 167),  # reddish purple
    "happy": (240, 228, 66),  # yellow
    "sad": (0, 114, 178),  # blue
    "surprise": (86, 180, 233),  # sky blue
    "neutral": (100, 100, 100),  # grey (Okabe-Ito's black, lightened to show on dark backgrounds)
    "contempt": (230, 159, 0),  # orange
}
OTHER_COLOR: RGB = (100, 100, 100)  # labels outside ferhub's sets
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)
# Compare's boxes where the models disagree: a dark magenta outside Okabe-Ito's hues, at least ~15 CIEDE2000
# from every expression colour under the simulated deficiencies too (its red was 3.8 from angry's vermillion
# for tritanopes)
DISAGREE_COLOR: RGB = (120, 0, 90)
AGREE_COLOR: RGB = (34, 197, 94)


def label_color(label: str) -> RGB:
    """The colour of an expression label (grey for labels outside ferhub's sets)."""
    return LABEL_COLORS.get(label, OTHER_COLOR)


def _luminance(color: RGB) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""
    channels = [c / 255 for c in color]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_color(fill: RGB) -> RGB:
    """Black or white, whichever contrasts more with ``fill``: at least 4.58:1 on any colour, so a tag's text
    meets WCAG AA (4.5:1) whatever its colour (white text on the yellow "happy" tag was 1.9:1)."""
    return BLACK if contrast_ratio(fill, BLACK) >= contrast_ratio(fill, WHITE) else WHITE


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


# FreeType lays out and measures every glyph on each call (~0.2 ms a label); the same few hundred labels come
# back frame after frame on a webcam ("#2 happy 87%"), and each is measured twice (layout, then drawing)
@functools.lru_cache(maxsize=4096)
def _text_bbox(size: int, text: str) -> tuple[float, float, float, float]:
    return _font(size).getbbox(text)


# Rendering a label is the dearest part of drawing one (~0.3 ms, a webcam frame has five), and a label's
# position moves by fractions of a pixel from frame to frame. Pillow lays glyphs on whole pixels (hinted
# advances); where a string starts within its first pixel only shifts the whole string when Pillow's
# 1/64-pixel pen position rounds over (at 31.5/64 across, 32.5/64 down: the glyph offsets are rounded, the y
# axis negated) and widens the mask by one when it is not 0. So the mask of one of the three phases per axis
# (0, before the rounding point, after it) serves every start in that phase, pixel for pixel. Starts within
# 1/1000 of a pixel of a rounding point, negative ones, and fonts where a probe finds the masks differ, are
# drawn the ordinary way.
_ROUNDS_AT = (31.5 / 64, 32.5 / 64)
_PHASE_START = (0.0, 0.25, 0.75)  # where each phase's mask is rendered: well inside it on both axes
# masks are kept up to this font size (frames up to ~1500 px wide): a 4K photo's label mask is ~90 KB, and
# photos that large come one at a time
MAX_CACHED_FONT = 48


def _phase(fraction: float, rounds_at: float) -> int | None:
    if fraction == 0.0:
        return 0
    if not 0.0 < fraction < 1.0 or abs(fraction - rounds_at) < 1e-3:
        return None
    return 1 if fraction < rounds_at else 2


@functools.lru_cache(maxsize=512)
def _label_mask(size: int, text: str, phase_x: int, phase_y: int) -> tuple[Image.Image, tuple[int, int]]:
    """The glyph mask ``ImageDraw.text`` draws for ``text`` starting in these phases, and its offset."""
    start = (_PHASE_START[phase_x], _PHASE_START[phase_y])
    core, offset = _font(size).getmask2(text, "L", anchor="la", start=start)
    return Image.frombytes("L", core.size, bytes(core)), offset


@functools.lru_cache(maxsize=64)
def _masks_follow_phases(size: int) -> bool:
    """Whether this Pillow places glyphs as :func:`_label_mask` assumes, probed once per font size with
    starts at both ends of each phase."""
    font, probe = _font(size), "#8 surprise 100% Wj"
    if not isinstance(font, ImageFont.FreeTypeFont):
        return False
    try:
        for x_start, y_start, phase_x, phase_y in ((0.01, 0.99, 1, 2), (0.49, 0.51, 1, 2), (0.5, 0.5, 2, 1)):
            core, offset = font.getmask2(probe, "L", anchor="la", start=(x_start, y_start))
            mask, expected_offset = _label_mask(size, probe, phase_x, phase_y)
            if offset != expected_offset or core.size != mask.size or bytes(core) != mask.tobytes():
                return False
    except (TypeError, ValueError):  # a Pillow whose masks give no bytes
        return False
    return True


def _draw_label(
    out: Image.Image,
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: int,
    fill: RGB = WHITE,
) -> None:
    """``draw.text(xy, text, fill=fill, font=_font(size))``, from :func:`_label_mask` where it may be."""
    x, y = xy
    phase_x, phase_y = _phase(x - math.floor(x), _ROUNDS_AT[0]), _phase(y - math.floor(y), _ROUNDS_AT[1])
    cached = size <= MAX_CACHED_FONT and x >= 0 and y >= 0 and "\n" not in text
    if not cached or phase_x is None or phase_y is None or not _masks_follow_phases(size):
        draw.text(xy, text, fill=fill, font=_font(size))
        return
    mask, (dx, dy) = _label_mask(size, text, phase_x, phase_y)
    left, top = int(x) + dx, int(y) + dy
    out.paste(fill, (left, top, left + mask.width, top + mask.height), mask)  # what draw.text's bitmap does


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


# Candidate rows for a tag, in order of preference: (distance penalty, the box edge the row hangs from, how
# many tag heights above the top edge / below the bottom edge). Against the top edge (above the box), against
# the bottom edge (below it), inside the top, then rows further out, above first, then below. Each row is
# tried left-aligned, right-aligned and centred.
_ROWS = [(0.0, "top", 1), (0.5, "bottom", 0), (1.0, "top", 0)]
for _k in range(1, 5):
    _ROWS += [(1.0 + _k, "top", _k + 1), (1.5 + _k, "bottom", _k)]
_ROW_COST = np.repeat([c for c, _, _ in _ROWS], 3)
_ABOVE = np.repeat([edge == "top" for _, edge, _ in _ROWS], 3)
_STEPS = np.repeat([float(k) for _, _, k in _ROWS], 3)
_ALIGN = np.tile([0.0, 1.0, 2.0], len(_ROWS))  # left, right, centred; also their tie-break penalty step


def _candidates(boxes: np.ndarray, tags: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The places for each box's ``tw`` x ``th`` tag (``tags``: one row ``(tw, th)`` per box): rectangles
    (boxes x candidates x 4) and their distance penalties (boxes x candidates), in the order of ``_ROWS``.

    Computed with the same float operations, in the same order, as a per-candidate loop would: the greedy
    search below compares these numbers, so the chosen places depend on every last bit of them.
    """
    w, h = size
    x1, y1, x2, y2 = (boxes[:, k : k + 1] for k in range(4))
    tw, th = tags[:, 0:1], tags[:, 1:2]
    xs = np.where(_ALIGN == 0.0, x1, np.where(_ALIGN == 1.0, x2 - tw, (x1 + x2 - tw) / 2))
    ys = np.where(_ABOVE, y1 - th * _STEPS, y2 + th * _STEPS)
    x = np.minimum(np.maximum(xs, 0.0), np.maximum(w - tw, 0.0))
    y = np.minimum(np.maximum(ys, 0.0), np.maximum(h - th, 0.0))
    # a tag pushed back inside the photo is further from where it was meant to be
    cost = _ROW_COST + 0.1 * _ALIGN + np.abs(y - ys) / th
    return np.stack([x, y, x + tw, y + th], axis=-1), cost


def _overlaps(rects: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Overlap areas of every rectangle (... x 4) with every one of ``others`` (m x 4): ... x m."""
    a, b = rects[..., None, :], others
    w = np.minimum(a[..., 2], b[:, 2]) - np.maximum(a[..., 0], b[:, 0])
    h = np.minimum(a[..., 3], b[:, 3]) - np.maximum(a[..., 1], b[:, 1])
    return np.where((w > 0) & (h > 0), w * h, 0.0)


def _sequential_sum(values: np.ndarray) -> np.ndarray:
    """Sums over the last axis added left to right, as Python's ``sum`` does (numpy's own sum adds pairwise,
    which can differ in the last bit and so tip a comparison)."""
    if values.shape[-1] == 0:
        return np.zeros(values.shape[:-1])
    return np.cumsum(values, axis=-1)[..., -1]


# a tag may cover at most this share of another face's box before the labels count as crowded
MAX_COVER = 0.25


def _place(
    boxes: Sequence[Rect], sizes: Sequence[tuple[float, float] | None], size: tuple[int, int]
) -> tuple[list[Rect | None], list[int]]:
    """Greedy placement in label order: each tag takes the cheapest candidate that overlaps no placed tag and
    covers little of another face. Returns the tags and the indices that found no such place (those get
    their least-bad candidate).

    A candidate's score is (overlap with the tags placed so far, covers more than ``MAX_COVER`` of another
    face, distance penalty + 4 x the shares of other faces it covers), compared in that order; the first
    candidate wins a tie. Every candidate of every box is scored at once with numpy; only the overlap with the
    tags already placed needs the loop.
    """
    n = len(boxes)
    placed: list[Rect | None] = [None] * n
    crowded: list[int] = []
    todo = [i for i, ts in enumerate(sizes) if ts is not None]
    if not todo:
        return placed, crowded
    rects_in = np.array(boxes, dtype=np.float64).reshape(n, 4)
    areas = np.maximum((rects_in[:, 2] - rects_in[:, 0]) * (rects_in[:, 3] - rects_in[:, 1]), 1.0)
    tags = np.array([sizes[i] for i in todo], dtype=np.float64)
    cands, costs = _candidates(rects_in[todo], tags, size)  # (t, c, 4), (t, c)
    covers = _overlaps(cands, rects_in) / areas  # (t, c, n): share of each face's box a candidate covers
    # a tag's own face counts as covering nothing: adding 0.0 leaves the running sums as they were, and no
    # share is negative, so sums and maxima over the other faces come out bit for bit as without the column
    covers[np.arange(len(todo)), :, todo] = 0.0
    over = covers.max(axis=2) > MAX_COVER
    totals = costs + 4 * _sequential_sum(covers)
    done = np.empty((0, 4))
    for row, i in enumerate(todo):
        clash = _sequential_sum(_overlaps(cands[row], done))
        # lexicographic minimum of (clash, over, total); the sort is stable, so the first candidate on ties
        k = int(np.lexsort((totals[row], over[row], clash))[0])
        if clash[k] > 0 or over[row, k]:
            crowded.append(i)
        placed[i] = tuple(float(v) for v in cands[row, k])  # type: ignore[assignment]
        done = np.concatenate([done, cands[row, k][None]])
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
        pad = max(2, round(font_size / 6))
        sizes = []
        for text in texts:
            if not text:
                sizes.append(None)
                continue
            left, top, right, bottom = _text_bbox(font_size, text)
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
    out = image.convert("RGB")  # a copy (of an RGB image too): the caller's image is left as it was
    draw = ImageDraw.Draw(out)
    layout = layout_labels(out.size, boxes, labels)
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
        left, top, _, _ = _text_bbox(layout.font_size, text)
        xy = (tx1 + layout.pad - left, ty1 + layout.pad - top)
        _draw_label(out, draw, xy, text, layout.font_size, text_color(color))
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
