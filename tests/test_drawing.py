"""Face labels on photos (``ferhub.drawing``): none hides another on group photos, readable from small webcam
frames to 4K photos, each tag drawn where the layout says, in its colour."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from ferhub.drawing import LABEL_COLORS, draw_boxes, label_color, layout_labels

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
        white = (region > 235).all(axis=1)
        assert (np.abs(region - colour).sum(axis=1) < 30).mean() > 0.5  # the tag's fill
        assert white.mean() > 0.05  # and its white text
    assert set(label_color(n) for n in NAMES) <= set(LABEL_COLORS.values())


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
