"""Face labels on photos (``ferhub.drawing``): none hides another on group photos, readable from small webcam
frames to 4K photos, each tag drawn where the layout says, in its colour."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from ferhub.drawing import (
    DISAGREE_COLOR,
    LABEL_COLORS,
    contrast_ratio,
    draw_boxes,
    label_color,
    layout_labels,
    text_color,
)

NAMES = ("happy", "surprise", "neutral", "sad", "angry", "fear", "disgust")


def group(width: int, height: int, cols: int, rows: int) -> list[tuple[float, float, float, float]]:
    """Face boxes of a group photo: rows of faces close together, every other row shifted half a face."""
    face = width / (cols + 1) * 0.65
    boxes = []
    for r in range(rows):
        for c in range(cols):
            x = (c + 0.5) * width / (cols + 1) + (r % 2) * face * 0.4
            y = (r + 0.4) * height / (rows + 0.5)
            boxes.append((x, y, x + face, y + face * 1.2))
    return boxes


def captions(n: int) -> list[str]:
    return [f"#{i} {NAMES[i % len(NAMES)]} {50 + (7 * i) % 50}%" for i in range(1, n + 1)]


def overlaps(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


@pytest.mark.parametrize(
    ("size", "cols", "rows"),
    [
        ((320, 240), 3, 2),
        ((640, 480), 4, 2),
        ((1600, 1067), 6, 3),
        ((3840, 2160), 8, 3),
        ((1080, 1920), 3, 4),
    ],
)
def test_no_label_hides_another_and_all_stay_readable(size: tuple[int, int], cols: int, rows: int) -> None:
    boxes = group(*size, cols, rows)
    labels = captions(len(boxes))
    layout = layout_labels(size, boxes, labels)
    tags = layout.tags
    assert all(t is not None for t in tags)
    for a, b in itertools.combinations(tags, 2):
        assert not overlaps(a, b), (a, b)
    for tag in tags:  # inside the photo
        assert tag[0] >= 0 and tag[1] >= 0 and tag[2] <= size[0] and tag[3] <= size[1]
    for i, tag in enumerate(tags):  # no tag covers much of another face
        for j, other in enumerate(boxes):
            if i != j:
                w = min(tag[2], other[2]) - max(tag[0], other[0])
                h = min(tag[3], other[3]) - max(tag[1], other[1])
                area = (other[2] - other[0]) * (other[3] - other[1])
                assert max(w, 0) * max(h, 0) <= 0.25 * area + 1
    # readable: at least 12 px on a small photo, and at least ~11 px once a large one is shown 1000 px wide
    assert layout.font_size >= max(12, max(size) / 90)
    if max(size) <= 640:
        assert layout.texts == labels  # small photos with few faces keep their full labels


def test_a_crowd_keeps_every_number_when_labels_must_shrink() -> None:
    """60 faces on a 480 px photo: labels shrink to the floor, the ones still crowded keep only their number,
    and still none hides another."""
    size = (480, 320)
    boxes = group(*size, 12, 5)
    layout = layout_labels(size, boxes, captions(len(boxes)))
    assert layout.font_size == 12
    assert [t.split()[0] for t in layout.texts] == [f"#{i}" for i in range(1, len(boxes) + 1)]
    assert 0 < sum(len(t.split()) == 1 for t in layout.texts) < len(boxes)
    assert not any(overlaps(a, b) for a, b in itertools.combinations(layout.tags, 2))


def test_each_tag_is_drawn_where_the_layout_puts_it_in_its_colour() -> None:
    size = (800, 500)
    boxes = group(*size, 4, 2)
    labels = captions(len(boxes))
    photo = Image.new("RGB", size, (128, 128, 128))
    drawn = np.asarray(draw_boxes(photo, boxes, labels), dtype=np.int32)
    layout = layout_labels(size, boxes, labels)
    for tag, text in zip(layout.tags, layout.texts):
        x1, y1, x2, y2 = (round(v) for v in tag)
        region = drawn[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].reshape(-1, 3)
        colour = np.array(label_color(text.split()[1]))
        ink = np.array(text_color(label_color(text.split()[1])))
        assert (np.abs(region - colour).sum(axis=1) < 30).mean() > 0.5  # the tag's fill
        assert (np.abs(region - ink).sum(axis=1) < 60).mean() > 0.05  # and its text, black or white
    assert set(label_color(n) for n in NAMES) <= set(LABEL_COLORS.values())


def test_tag_text_meets_wcag_aa_contrast_on_every_tag_colour() -> None:
    """White text on the yellow "happy" tag was 1.9:1 (orange "surprise" 2.8:1, green "disgust" 3.1:1): each
    tag's text is black or white, whichever contrasts more, at least 4.5:1 (WCAG AA) on any colour."""
    rng = np.random.default_rng(3)
    colours = [
        *LABEL_COLORS.values(),
        DISAGREE_COLOR,
        *(tuple(int(v) for v in c) for c in rng.integers(0, 256, (500, 3))),
    ]
    for colour in colours:
        assert contrast_ratio(text_color(colour), colour) >= 4.5, colour
    assert text_color(LABEL_COLORS["happy"]) == (0, 0, 0) and text_color((0, 0, 0)) == (255, 255, 255)
    # drawn: the "happy" tag's text is black, not white
    photo = Image.new("RGB", (400, 300), (128, 128, 128))
    drawn = draw_boxes(photo, [(150.0, 120.0, 250.0, 240.0)], ["#1 happy 97%"])
    (tag,) = layout_labels(photo.size, [(150.0, 120.0, 250.0, 240.0)], ["#1 happy 97%"]).tags
    region = np.asarray(drawn.crop(tuple(round(v) for v in tag)), dtype=np.int32).reshape(-1, 3)
    assert (region < 40).all(axis=1).mean() > 0.05 and not (region > 235).all(axis=1).any()


# Machado, Oliveira & Fernandes (2009) colour-vision deficiency simulation, severity 1, on linear RGB
CVD = {
    "deuteranopia": [
        [0.367322, 0.860646, -0.227968],
        [0.280085, 0.672501, 0.047413],
        [-0.01182, 0.04294, 0.968881],
    ],
    "protanopia": [
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ],
    "tritanopia": [
        [1.255528, -0.076749, -0.178779],
        [-0.078411, 0.930809, 0.147602],
        [0.004733, 0.691367, 0.3039],
    ],
}


@pytest.mark.parametrize("vision", ["normal", *CVD])
def test_expression_colours_stay_apart_under_colour_blindness(vision: str) -> None:
    """Fear and sad were one colour for deuteranopes (CIEDE2000 0.5): every pair of expression colours, the 7
    of FER and contempt, and Compare's disagreement colour (3.8 from angry for tritanopes), stays at least 10
    apart under simulated deuteranopia, protanopia and tritanopia."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    matrix = np.eye(3) if vision == "normal" else np.array(CVD[vision])
    colours = {**{n: LABEL_COLORS[n] for n in [*NAMES, "contempt"]}, "disagree": DISAGREE_COLOR}
    names = list(colours)
    rgb = np.array(list(colours.values())) / 255.0
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    seen = np.clip(linear @ matrix.T, 0, 1)
    srgb = np.where(seen <= 0.0031308, 12.92 * seen, 1.055 * seen ** (1 / 2.4) - 0.055)
    lab = rgb2lab(srgb[None])[0]
    for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
        assert deltaE_ciede2000(lab[i], lab[j]) >= 10, (vision, a, b)


def test_a_label_set_away_from_its_box_is_joined_to_it_by_a_line() -> None:
    size = (480, 320)
    boxes = group(*size, 12, 5)
    labels = captions(len(boxes))
    layout = layout_labels(size, boxes, labels)
    photo = Image.new("RGB", size, (128, 128, 128))
    drawn = np.asarray(draw_boxes(photo, boxes, labels), dtype=np.int32)
    away, joined = 0, 0
    for tag, box, text in zip(layout.tags, boxes, layout.texts):
        if tag[3] < box[1] - layout.line or tag[1] > box[3] + layout.line:
            # the line runs from the middle of the tag's near edge to the nearest point of the box's edge
            x0, y0 = (tag[0] + tag[2]) / 2, tag[3] if tag[3] < box[1] else tag[1]
            x1, y1 = min(max(x0, box[0]), box[2]), box[1] if tag[3] < box[1] else box[3]
            colour = np.array(label_color(NAMES[int(text.split()[0][1:]) % len(NAMES)]))
            seen = []
            for t in np.linspace(0.15, 0.85, 15):
                x, y = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                if any(r[0] - 1 <= x <= r[2] + 1 and r[1] - 1 <= y <= r[3] + 1 for r in layout.tags):
                    continue  # another tag lies over the line here
                near = drawn[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2].reshape(-1, 3)
                seen.append(bool((np.abs(near - colour).sum(axis=1) < 40).any()))
            if seen:
                away += 1
                joined += any(seen)
    assert away >= 5 and joined == away


# -- the fast placement and the cached text metrics change no pixel ------------------------------------------
# The straightforward greedy search, one candidate and one rectangle at a time, as ferhub first wrote it:
# `ferhub.drawing._place` scores every candidate at once with numpy and must choose exactly the same places.
def reference_overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def reference_candidates(box, tw, th, size):
    w, h = size
    x1, y1, x2, y2 = box
    xs = (x1, x2 - tw, (x1 + x2 - tw) / 2)
    rows = [(0.0, y1 - th), (0.5, y2), (1.0, y1)]
    for k in range(1, 5):
        rows += [(1.0 + k, y1 - th * (k + 1)), (1.5 + k, y2 + th * k)]
    out = []
    for cost, y in rows:
        for j, x in enumerate(xs):
            x = min(max(x, 0.0), max(w - tw, 0.0))
            y_in = min(max(y, 0.0), max(h - th, 0.0))
            out.append((cost + 0.1 * j + abs(y_in - y) / th, (x, y_in, x + tw, y_in + th)))
    return out


def reference_place(boxes, sizes, size):
    placed, crowded = [], []
    areas = [max((b[2] - b[0]) * (b[3] - b[1]), 1.0) for b in boxes]
    for i, (box, ts) in enumerate(zip(boxes, sizes)):
        if ts is None:
            placed.append(None)
            continue
        best, best_score = None, None
        for cost, rect in reference_candidates(box, ts[0], ts[1], size):
            clash = sum(reference_overlap(rect, p) for p in placed if p is not None)
            covers = [reference_overlap(rect, b) / a for j, (b, a) in enumerate(zip(boxes, areas)) if j != i]
            score = (clash, max(covers, default=0.0) > 0.25, cost + 4 * sum(covers))
            if best_score is None or score < best_score:
                best, best_score = rect, score
        if best_score[0] > 0 or best_score[1]:
            crowded.append(i)
        placed.append(best)
    return placed, crowded


def reference_label(out, draw, xy, text, size, fill=(255, 255, 255)) -> None:
    from ferhub.drawing import _font

    draw.text(xy, text, fill=fill, font=_font(size))


def random_case(rng: np.random.Generator, case: int):
    """A photo, boxes and labels: up to 20 faces, overlapping or repeated, at and beyond the borders, tiny
    photos, long and empty labels, integer and fractional coordinates, grey and RGBA photos."""
    width, height = [(16, 12), (40, 30), (120, 90), (320, 240), (640, 480), (480, 640), (1280, 720)][case % 7]
    n = int(rng.choice([0, 1, 2, 3, 5, 8, 12, 20]))
    side = rng.uniform(0.03, 0.6, n) * min(width, height)
    x = rng.uniform(-0.3, 1.0, n) * width - 0.2 * side
    y = rng.uniform(-0.3, 1.0, n) * height - 0.2 * side
    boxes = [
        (float(a), float(b), float(a + s * rng.uniform(0.7, 1.3)), float(b + s * rng.uniform(0.9, 1.4)))
        for a, b, s in zip(x, y, side)
    ]
    if case % 5 == 0 and boxes:  # whole-pixel boxes, one of them twice
        boxes = [tuple(float(round(v)) for v in b) for b in boxes]
        boxes.append(boxes[-1])
    labels = []
    for i in range(len(boxes)):
        name = str(rng.choice([*NAMES, "contempt", "other", ""]))
        extra = " and a long note that needs room" if rng.random() < 0.15 else ""
        labels.append(f"#{i + 1} {name} {rng.integers(0, 101)}%{extra}" if name else "")
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    photo = Image.fromarray(pixels).convert(["RGB", "RGB", "L", "RGBA"][case % 4])
    dashed = [bool(v) for v in rng.integers(0, 2, len(boxes))] if case % 3 == 0 else None
    return photo, boxes, labels, dashed


def test_labels_are_placed_and_drawn_exactly_as_by_the_reference_search(monkeypatch) -> None:
    """Many generated cases: the same font size, tags and texts as the reference placement with text measured
    and drawn afresh every time (``ImageDraw.text``), and the same pixels down to the last one (drawn with
    cold and then warm caches of text metrics and glyph masks)."""
    from ferhub import drawing

    rng = np.random.default_rng(12)
    cases = [random_case(rng, case) for case in range(48)]
    fast = []
    for clear in (True, False):  # first with labels never measured or rendered, then with every one cached
        if clear:
            drawing._text_bbox.cache_clear()
            drawing._label_mask.cache_clear()
        fast.append([(layout_labels(p.size, b, t), draw_boxes(p, b, t, dashed=d)) for p, b, t, d in cases])
    with monkeypatch.context() as m:
        m.setattr(drawing, "_place", reference_place)
        m.setattr(drawing, "_text_bbox", lambda size, text: drawing._font(size).getbbox(text))
        m.setattr(drawing, "_draw_label", reference_label)
        reference = [(layout_labels(p.size, b, t), draw_boxes(p, b, t, dashed=d)) for p, b, t, d in cases]
    crowded = 0
    for i, (want_layout, want) in enumerate(reference):
        for got_layout, got in (fast[0][i], fast[1][i]):
            assert got_layout == want_layout, i
            assert got.mode == want.mode == "RGB" and got.size == want.size
            assert np.array_equal(np.asarray(got), np.asarray(want)), f"case {i}: pixels differ"
        crowded += len(want_layout.texts) > 0 and want_layout.font_size == 12
    assert crowded >= 5  # the cases reach the shrunken and shortened labels, not just the easy ones


@pytest.mark.parametrize("size", [12, 13, 17, 20, 29, 40, 48])
def test_a_cached_label_mask_draws_what_imagedraw_text_draws_at_any_start(size: int) -> None:
    """Labels land at any fraction of a pixel: drawn from the mask cached for their phase they are the pixels
    ``ImageDraw.text`` draws, at starts across the pixel, next to both rounding points and on them."""
    from PIL import ImageDraw

    from ferhub import drawing

    drawing._label_mask.cache_clear()
    fractions = sorted(
        {*np.linspace(0, 1, 11)[:-1], *(r + d for r in drawing._ROUNDS_AT for d in (-2e-3, 0, 2e-3))}
    )
    base = Image.fromarray(
        np.random.default_rng(size).integers(0, 256, (3 * size, 14 * size, 3), dtype=np.uint8)
    )
    for text in ("#1 happy 97%", "#12 surprise 5%"):
        for fx in fractions:
            for fy in fractions:
                xy = (size // 3 + fx, size // 4 + fy)
                want, got = base.copy(), base.copy()
                ImageDraw.Draw(want).text(xy, text, fill=(255, 255, 255), font=drawing._font(size))
                drawing._draw_label(got, ImageDraw.Draw(got), xy, text, size)
                assert np.array_equal(np.asarray(got), np.asarray(want)), (text, xy)
    info = drawing._label_mask.cache_info()
    assert info.hits > 100 and info.misses <= 2 * 9 + 3  # 3 x 3 phases a text, and the size's probe
