"""Face tracking: stable ids for the faces of a video or a webcam stream, and per-track smoothing.

One tracker serves the video path and the webcam tab. It is a SORT/ByteTrack-style tracker sized for faces
and made time-aware:

- each track predicts its box at the next frame's *time* with a damped constant-velocity model, so a pan, a
  variable frame rate, ``--fps`` sampling and detection every k-th frame all predict where the face is now;
- detections are matched to predictions by the Hungarian method on IoU plus a centre-distance term (fast
  motion leaves little overlap between frames), gated so that a far-away face never takes another's id;
- a track that loses its face (occlusion, a crossing, a missed detection, a few seconds out of view) is kept
  for ``max_lost`` seconds; it stops extrapolating after ``coast`` seconds, so a face that leaves and comes
  back near where it was last seen gets its old id back;
- new tracks are numbered in reading order (left to right, then top to bottom), like faces in photos.

Why not a library: ByteTrack left ``supervision`` in 0.31 (deprecated since 0.28) for ``trackers``, which
requires the GUI build of OpenCV; ``norfair`` 2.3 requires numpy<2. This module is ~200 lines on numpy and
scipy (already dependencies); ``bench/video.py`` measures it on the test clips.

>>> tracker = FaceTracker()
>>> [t.id for t in tracker.update([(10, 10, 50, 50)], time=0.0)]
[1]
>>> [t.id for t in tracker.update([(14, 10, 54, 50)], time=0.04)]
[1]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ferhub.faces import reading_order

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """One face followed over time: its id, latest box, centre velocity (pixels per second), smoothed
    values."""

    id: int
    box: Box
    time: float
    first_time: float
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    hits: int = 1
    lost_since: float | None = None
    smoothed: list[np.ndarray] | None = None  # per model, see :class:`Smoother`
    smoothed_time: float | None = None

    def predict(self, time: float, coast: float) -> Box:
        """The box expected at ``time``: moved along the velocity for at most ``coast`` seconds past the last
        sighting (its size is kept: faces change size slowly, and a box shrinking from a partial view must not
        extrapolate to nothing)."""
        dx, dy = self.velocity * min(max(time - self.time, 0.0), coast)
        x1, y1, x2, y2 = self.box
        return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)


def _size(box: Box) -> float:
    return max(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0), 1.0) ** 0.5


def _centre(box: Box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _similarity(pred: Box, det: Box, reach: float = 1.5) -> float:
    """IoU plus half a centre-closeness term; 0 (no match) when the centres are more than ``reach`` face sizes
    apart. Boxes more than 2x apart in size match only as a partial view: the smaller one mostly inside the
    larger (a face half hidden by another, or cut by the frame edge), with a low score."""
    size_p, size_d = _size(pred), _size(det)
    if max(size_p, size_d) > 2.0 * min(size_p, size_d):
        ix = max(0.0, min(pred[2], det[2]) - max(pred[0], det[0]))
        iy = max(0.0, min(pred[3], det[3]) - max(pred[1], det[1]))
        inside = ix * iy / min(size_p, size_d) ** 2
        return 0.3 * inside if inside >= 0.6 else 0.0
    near = 1.0 - float(np.linalg.norm(_centre(pred) - _centre(det))) / (reach * (size_p + size_d) / 2)
    if near <= 0:
        return 0.0
    return iou(pred, det) + 0.5 * near


class FaceTracker:
    """Assign stable ids to each frame's face boxes.

    Args:
        max_lost: seconds a track waits for its face to come back before it is dropped.
        coast: seconds a lost track keeps moving along its last velocity before it waits in place.
        min_similarity: smallest match score (IoU + 0.5 x centre closeness) that continues a track.
        velocity_decay: weight of the previous velocity estimate when a new sighting updates it.
    """

    def __init__(
        self,
        *,
        max_lost: float = 2.0,
        coast: float = 0.5,
        min_similarity: float = 0.15,
        velocity_decay: float = 0.6,
    ) -> None:
        self.max_lost = max_lost
        self.coast = coast
        self.min_similarity = min_similarity
        self.velocity_decay = velocity_decay
        self.tracks: list[Track] = []
        self.next_id = 1
        self.time: float | None = None

    def predicted(self, time: float) -> list[tuple[Track, Box]]:
        """The live (not lost) tracks and their boxes predicted at ``time``: the boxes of a frame on which
        detection did not run."""
        return [(t, t.predict(time, self.coast)) for t in self.tracks if t.lost_since is None]

    def update(self, boxes: Sequence[Box], *, time: float) -> list[Track]:
        """Feed one frame's detected boxes seen at ``time`` (seconds); returns their tracks, in ``boxes``
        order."""
        from scipy.optimize import linear_sum_assignment

        boxes = [tuple(float(v) for v in b) for b in boxes]
        if self.time is not None and time < self.time:
            time = self.time  # timestamps never run backwards here
        self.time = time
        # tracks lost for longer than max_lost are gone before matching: their face is a new one now
        tracks = [t for t in self.tracks if t.lost_since is None or time - t.lost_since <= self.max_lost]
        assigned: dict[int, Track] = {}
        if tracks and boxes:
            sim = np.array(
                [
                    [_similarity(t.predict(time, self.coast), b, self._reach(t, time)) for b in boxes]
                    for t in tracks
                ]
            )
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols):
                if sim[r, c] >= self.min_similarity:
                    self._continue(tracks[r], boxes[c], time)
                    assigned[c] = tracks[r]
        new = [i for i in range(len(boxes)) if i not in assigned]
        for i in (new[j] for j in reading_order([boxes[i] for i in new])):
            track = Track(self.next_id, boxes[i], time, time)
            self.next_id += 1
            tracks.append(track)
            assigned[i] = track
        matched = {id(t) for t in assigned.values()}
        for t in tracks:
            if id(t) not in matched and t.lost_since is None:
                t.lost_since = time
        self.tracks = tracks
        return [assigned[i] for i in range(len(boxes))]

    def _reach(self, track: Track, time: float) -> float:
        """How far (in face sizes) a detection may lie from the prediction: further the longer the face has
        been lost, since it kept moving unseen."""
        if track.lost_since is None:
            return 2.0
        return min(2.0 + 4.0 * (time - track.lost_since), 5.0)

    def _continue(self, track: Track, box: Box, time: float) -> None:
        dt = time - track.time
        ratio = _size(box) / _size(track.box)
        if not 0.5 <= ratio <= 2.0:  # a partial view: the face is there, but this box says little of where
            track.lost_since = None
            track.hits += 1
            return
        # a box much smaller or larger than the last is a partial view (occlusion, the frame edge): its centre
        # is off the face's, so it does not update the motion estimate
        if dt > 0 and track.lost_since is None and 0.75 < ratio < 1.33:
            measured = (_centre(box) - _centre(track.box)) / dt
            track.velocity = self.velocity_decay * track.velocity + (1 - self.velocity_decay) * measured
        elif track.lost_since is not None:
            track.velocity = np.zeros(2)  # back after a gap: the old motion says little about the new one
        track.box, track.time, track.lost_since = box, time, None
        track.hits += 1

    def end_all(self) -> None:
        """End every track (a cut to another shot): later faces get new ids, never an old one."""
        self.tracks = []

    def reset(self) -> None:
        """Forget every track (ids start again at 1)."""
        self.tracks, self.next_id, self.time = [], 1, None


class Smoother:
    """Exponential smoothing of each track's class probabilities over *time* (variable frame rates and
    sampling give the same smoothing): the weight of a new frame is ``1 - exp(-dt / seconds)``.

    ``seconds=0`` turns smoothing off (smoothed equals raw). The raw values are never changed.
    """

    def __init__(self, seconds: float = 0.3) -> None:
        if seconds < 0:
            raise ValueError(f"smoothing must be 0 (off) or a positive number of seconds, got {seconds}")
        self.seconds = seconds

    def update(self, track: Track, probabilities: Sequence[np.ndarray], time: float) -> list[np.ndarray]:
        """Fold one frame's per-model probabilities into ``track``; returns the smoothed values (per
        model)."""
        raw = [np.asarray(p, dtype=np.float64) for p in probabilities]
        previous = track.smoothed
        if (
            previous is None
            or self.seconds == 0
            or track.smoothed_time is None
            or [p.shape for p in previous] != [p.shape for p in raw]
        ):
            smoothed = [p.copy() for p in raw]
        else:
            dt = max(time - track.smoothed_time, 0.0)
            w = 1.0 - float(np.exp(-dt / self.seconds))
            smoothed = [w * p + (1 - w) * q for p, q in zip(raw, previous)]
        track.smoothed, track.smoothed_time = smoothed, time
        return smoothed
