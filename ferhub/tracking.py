"""Face tracking: stable ids for the faces of a video or a webcam stream, and per-track smoothing.

One tracker serves the video path and the webcam tab. It is a SORT/ByteTrack-style tracker sized for faces
and made time-aware:

- each track predicts its box at the next frame's *time* with a damped constant-velocity model, so a pan, a
  variable frame rate, ``--fps`` sampling and detection every k-th frame all predict where the face is now;
- detections are matched to predictions by the Hungarian method on IoU plus a centre-distance term (fast
  motion leaves little overlap between frames), gated so that a far-away face never takes another's id; a
  face near where it was last seen, as far as its speed could have taken it, continues it too (it stopped or
  turned back between detections), at a lower score than one where it was predicted; with looks, a face
  that looks the same as a track's continues it as far as a person walks since its last sighting (12 face
  sizes a second, up to 5 face sizes: detections 0.4 s apart see a walking face 3-4 sizes on), and with
  detections from 0.35 s apart one that does not look clearly unlike it further and further (5 face sizes
  from 0.7 s: a face turned meanwhile);
- the velocity is measured from the first two sightings on, then averaged over later ones;
- a track that loses its face (occlusion, a crossing, a missed detection, a few seconds out of view) is kept
  for ``max_lost`` seconds; it stops extrapolating after ``coast`` seconds, so a face that leaves and comes
  back near where it was last seen gets its old id back. Both stretch with the time between detections (a
  video sampled at 0.2 fps sees a face every 5 s): at least 2.5 and 1.5 detection intervals;
- with an appearance per detection (:func:`appearance`, a small brightness-normalised thumbnail), a shot
  change (:meth:`FaceTracker.cut`) keeps only the faces that are still where they were and look the same (a
  camera flash is no new person), detections far apart in time are matched by appearance as well, and a face
  clearly unlike one gone for more than a detection interval, in its place, is another person (a new id);
- new tracks are numbered in reading order (left to right, then top to bottom), like faces in photos.

Why not a library: ByteTrack left ``supervision`` in 0.31 (deprecated since 0.28) for ``trackers``, which
requires the GUI build of OpenCV; ``norfair`` 2.3 requires numpy<2. This module is ~350 lines on numpy and
scipy (already dependencies); ``bench/tracking.py`` measures it on the test clips, at their rate and sampled.

>>> tracker = FaceTracker()
>>> [t.id for t in tracker.update([(10, 10, 50, 50)], time=0.0)]
[1]
>>> [t.id for t in tracker.update([(14, 10, 54, 50)], time=0.04)]
[1]
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ferhub.faces import reading_order

if TYPE_CHECKING:
    from PIL import Image

Box = tuple[float, float, float, float]

# a face's look (appearance()) is a grey thumbnail of its box; two of one face correlate above SAME_LOOK (0.8+
# on the test clips, a camera flash included), two people's below it (0.3-0.6)
APPEARANCE_SIZE = 16
SAME_LOOK = 0.7
# below this, clearly another face: two people's median (LFW crops 0.33, the test clips' two 0.34), where one
# face turned 15 degrees still gives 0.6
UNLIKE_LOOK = 0.5
# across a shot change a face keeps its id only where its box overlaps its last one at least this much
CUT_IOU = 0.5
# how fast a face may move across the picture, in face sizes a second: a brisk walk (1.8 m/s for a 15 cm face)
WALK_SPEED = 12.0
# the furthest a track reaches (face sizes): a face lost or sampled for longer may be anywhere, and further
# reach took in other people (sampled every 2 s, another person 3 face sizes from one who left)
FAR_REACH = 5.0
# how alike a face must look for a track to reach it beyond its own REACH depends on the time since the
# track's last sighting. Within a moment one face hardly changes (shifted 6 px of 100: 0.85+), while 30% of
# pairs of different people correlate at UNLIKE_LOOK or more (LFW: median 0.35, p90 0.67, p99 0.81): so the
# walking reach (WALK_SPEED) is for a face that looks the same (SAME_LOOK). Not clearly unlike (UNLIKE_LOOK)
# let a newcomer 1.5-3 face sizes from one who had just vanished take that one's id in ~30% of cases at
# 0.3-0.4 s between detections (0-9% before the walking reach; SAME_LOOK: 6-9%, a walking face keeping its id
# 96-100% as with UNLIKE_LOOK), and on the webcam a newcomer 3.5 sizes from a face hidden for 0.4 s in 31% (8%
# before).
# Sampled sparsely a face may have turned meanwhile (15 degrees: 0.6): from LOOSE_SECONDS between sightings a
# face not clearly unlike a track's is in a reach growing to FAR_REACH at twice that (0.7 s), as before the
# walking reach
LOOSE_SECONDS = 0.35
# a track's own reach (face sizes) around its prediction: detections closer in time than a face walks that far
# (1/6 s) are matched on motion alone (a video analysed at its full rate, the webcam); further apart, motion
# predicts less and less, and a face's look counts as much as motion once it could be anywhere in FAR_REACH
# (5/12 s)
REACH = 2.0
# a face near where it was last seen but not where it was heading (it stopped, or turned back) continues its
# track with this fraction of the score: a face where the track predicted wins any contest
TURNED = 0.75


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def appearance(image: Image.Image, box: Box) -> np.ndarray:
    """What the face in ``box`` looks like: a 16x16 grey thumbnail of the box with zero mean and unit length,
    so that the dot product of two is their correlation (1: the same picture), whatever the brightness and
    contrast of each (a flash, a light change)."""
    from PIL import Image as PILImage

    x1, y1, x2, y2 = (round(v) for v in box)
    x1, y1 = max(x1, 0), max(y1, 0)
    x2, y2 = min(max(x2, x1 + 1), image.width), min(max(y2, y1 + 1), image.height)
    if x2 <= x1 or y2 <= y1:  # a box off the picture: no look
        return np.zeros(APPEARANCE_SIZE * APPEARANCE_SIZE)
    thumb = image.crop((x1, y1, x2, y2)).convert("L")
    thumb = thumb.resize((APPEARANCE_SIZE, APPEARANCE_SIZE), PILImage.Resampling.BILINEAR)
    v = np.asarray(thumb, dtype=np.float64).ravel()
    v = v - v.mean()
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 1e-6 else np.zeros_like(v)


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
    look: np.ndarray | None = None  # see appearance(); None when the detections came without one
    moves: int = 0  # velocity measurements so far: the first sets the velocity, later ones average in
    across_cut: bool = False  # a shot changed since its last sighting: see FaceTracker.cut

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


def _overlap(a: Box, b: Box) -> bool:
    """Whether box ``b`` covers more than a tenth of box ``a``."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy > 0.1 * max(a[2] - a[0], 0.0) * max(a[3] - a[1], 0.0)


def _crowded(box: Box, others: Sequence[Box]) -> bool:
    """Whether another face's box overlaps ``box`` or comes within a quarter of its size of it."""
    m = 0.25 * _size(box)
    x1, y1, x2, y2 = box[0] - m, box[1] - m, box[2] + m, box[3] + m
    return any(min(x2, o[2]) > max(x1, o[0]) and min(y2, o[3]) > max(y1, o[1]) for o in others)


def _alike_shape(a: Box, b: Box) -> bool:
    """Whether two boxes frame a whole face alike: sizes within a third, width-to-height within a fifth
    (otherwise one is a partial view, and its thumbnail is not comparable with the other's)."""
    if not 0.75 < _size(b) / _size(a) < 1.33:
        return False
    aspect_a = max(a[2] - a[0], 1e-6) / max(a[3] - a[1], 1e-6)
    aspect_b = max(b[2] - b[0], 1e-6) / max(b[3] - b[1], 1e-6)
    return 0.8 < aspect_b / aspect_a < 1.25


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


def match_boxes(
    a: Sequence[Box], b: Sequence[Box], min_similarity: float = 0.5, reach: Sequence[float] | None = None
) -> dict[int, int]:
    """One-to-one matches of boxes ``a`` to boxes ``b`` of the same frame (index in ``a`` -> index in ``b``):
    the Hungarian method on :func:`_similarity` (``reach``: each ``a`` box's, in face sizes; 1.5 by default),
    pairs below ``min_similarity`` left out."""
    if not a or not b:
        return {}
    from scipy.optimize import linear_sum_assignment

    reach = [1.5] * len(a) if reach is None else reach
    sim = np.array([[_similarity(x, y, r) for y in b] for x, r in zip(a, reach)])
    rows, cols = linear_sum_assignment(-sim)
    return {int(r): int(c) for r, c in zip(rows, cols) if sim[r, c] >= min_similarity}


class FaceTracker:
    """Assign stable ids to each frame's face boxes.

    Args:
        max_lost: seconds a track waits for its face to come back before it is dropped (at least 2.5 intervals
            between detections, see :attr:`interval`).
        coast: seconds a lost track keeps moving along its last velocity before it waits in place (at least
            1.5 intervals between detections).
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
        self._gaps: deque[float] = deque(maxlen=5)  # the latest intervals between updates

    @property
    def interval(self) -> float:
        """The usual time between two detections (median of the latest; 0 before the second)."""
        return statistics.median(self._gaps) if self._gaps else 0.0

    def lost_seconds(self) -> float:
        """How long a lost track is kept: ``max_lost``, or 2.5 detection intervals when those are longer (a
        face missed once in a video sampled every 5 s is not gone)."""
        return max(self.max_lost, 2.5 * self.interval)

    def _coast(self) -> float:
        # a track extrapolates at least to the next detection and half an interval past it
        return max(self.coast, 1.5 * self.interval)

    def predicted(self, time: float) -> list[tuple[Track, Box]]:
        """The live (not lost) tracks and their boxes predicted at ``time``: the boxes of a frame on which
        detection did not run."""
        coast = self._coast()
        return [(t, t.predict(time, coast)) for t in self.tracks if t.lost_since is None and not t.across_cut]

    def update(
        self, boxes: Sequence[Box], *, time: float, looks: Sequence[np.ndarray] | None = None
    ) -> list[Track]:
        """Feed one frame's detected boxes seen at ``time`` (seconds), and optionally each one's
        :func:`appearance`; returns their tracks, in ``boxes`` order."""
        from scipy.optimize import linear_sum_assignment

        boxes = [tuple(float(v) for v in b) for b in boxes]
        if self.time is not None and time < self.time:
            time = self.time  # timestamps never run backwards here
        if self.time is not None and time > self.time:
            self._gaps.append(time - self.time)
        self.time = time
        # tracks lost for longer than lost_seconds are gone before matching: their face is a new one now
        kept = self.lost_seconds()
        tracks = [t for t in self.tracks if t.lost_since is None or time - t.lost_since <= kept]
        assigned: dict[int, Track] = {}
        if tracks and boxes:
            sim = self._scores(tracks, boxes, looks, time)
            rows, cols = linear_sum_assignment(-sim)
            for r, c in zip(rows, cols):
                if sim[r, c] >= self.min_similarity:
                    # a face overlapping another is partly hidden (or hides it): its thumbnail holds some of
                    # the other face, so it does not update the look
                    clear = looks is not None and not any(
                        _overlap(boxes[c], b) for j, b in enumerate(boxes) if j != c
                    )
                    self._continue(tracks[r], boxes[c], time, looks[c] if clear else None)
                    assigned[c] = tracks[r]
        new = [i for i in range(len(boxes)) if i not in assigned]
        for i in (new[j] for j in reading_order([boxes[i] for i in new])):
            track = Track(self.next_id, boxes[i], time, time, look=None if looks is None else looks[i])
            self.next_id += 1
            tracks.append(track)
            assigned[i] = track
        matched = {id(t) for t in assigned.values()}
        for t in tracks:
            if id(t) not in matched and t.lost_since is None:
                t.lost_since = time
        self.tracks = tracks
        return [assigned[i] for i in range(len(boxes))]

    def _scores(
        self, tracks: list[Track], boxes: list[Box], looks: Sequence[np.ndarray] | None, time: float
    ) -> np.ndarray:
        """How well each box continues each track (rows: tracks); 0: not at all."""
        coast = self._coast()
        predicted = [t.predict(time, coast) for t in tracks]
        # the longer since a track's last sighting, the less motion says where its face is (it may have
        # turned, set off, sped up, been passed by another): looks count too, as far as the face could have
        # walked out of the track's own reach (see REACH). Counted from 0.35 s on, at --fps 5 (detections
        # 0.4 s apart) they hardly counted: two people swapping places from a standstill, the velocities
        # measured over one step lagged, and the one passing behind took the other's id for a frame
        stale = np.array([self._unsure(time - t.time) for t in tracks])
        if looks is None:
            stale[:] = 0.0
        # (tracks, boxes, 2): where each track predicted its face, and near where it was last seen
        own = [self._reach(t, time) for t in tracks]
        both = self._hypotheses(tracks, predicted, boxes, own, time)
        same = np.full((len(tracks), len(boxes)), -1.0)
        if looks is not None:
            same = np.array([[-1.0 if t.look is None else float(t.look @ a) for a in looks] for t in tracks])
            # a face may have gone anywhere a person walks since its last sighting (a new track has no
            # velocity yet, a standing one may have set off, a walking one turned; at --fps 5 detections are
            # 0.4 s apart, 3-4 face sizes of a walk: each one was a new id): a track reaches that far, up to
            # FAR_REACH, for a face that looks the same; sampled sparsely, for one that does not look clearly
            # unlike its own (see LOOSE_SECONDS; a person who left was followed by another one sitting a few
            # face sizes away, under the same id; one face that turned or walked meanwhile still matches)
            for look_needed, stretch in ((UNLIKE_LOOK, self._loose_reach), (SAME_LOOK, self._walk_reach)):
                reach = [max(r, stretch(time - t.time)) for t, r in zip(tracks, own)]
                if reach != own:  # (the same as ``both`` where no track reaches further than its own)
                    further = self._hypotheses(tracks, predicted, boxes, reach, time)
                    both = np.where((same >= look_needed)[..., None], np.maximum(both, further), both)
        # the last-seen hypothesis only for a face standing clear of others: in a crowd, a face near where
        # one went out of sight is as likely a neighbour (8 people milling: 3 more id switches)
        clear = [not _crowded(b, [o for j, o in enumerate(boxes) if j != i]) for i, b in enumerate(boxes)]
        ahead, motion = both[..., 0], np.where(clear, both.max(axis=2), both[..., 0])
        if looks is None:
            return np.where([[t.across_cut] for t in tracks], 0.0, motion)
        # a face only the last-seen hypothesis takes in must not look clearly unlike the track's: a face
        # turned back correlates ~0.97 with itself, another person coming into view behind one who just went
        # out of sight (behind a third) 0.2-0.6, and took that one's id
        motion = np.where(
            (ahead < self.min_similarity) & (same < UNLIKE_LOOK), np.minimum(motion, ahead), motion
        )
        # a face gone for more than a detection interval, whose place a face clearly unlike it takes, left:
        # another person sat down (the same one back correlates ~1, turned ~0.6). Only looks worth comparing
        # count: a face beside another may be partly behind it (a crossing: the box frames what shows, its
        # look correlated 0.47 with the whole face), and a box of another size or shape than the track's
        # last is a partial view (half hidden, cut by the frame edge)
        gone = [t.lost_since is not None and time - t.time > 1.5 * self.interval for t in tracks]
        for r, t in enumerate(tracks):
            if not gone[r] or t.look is None or not t.look.any():
                continue
            for c, b in enumerate(boxes):
                if clear[c] and looks[c].any() and same[r, c] < UNLIKE_LOOK and _alike_shape(t.box, b):
                    motion[r, c] = 0.0
        for r, t in enumerate(tracks):
            if t.across_cut:  # after a shot change, only the same face in the same place is the same person
                overlap = np.array([max(iou(t.box, b), iou(predicted[r], b)) for b in boxes])
                motion[r] = np.where((same[r] >= SAME_LOOK) & (overlap >= CUT_IOU), motion[r], 0.0)
        # a face within reach of a track's prediction that looks the same continues it, however little motion
        # says so (a head swung between detections: at 10 fps a swaying face was three ids)
        lift = (motion > 0) & (ahead > 0) & (same >= SAME_LOOK)
        motion = np.where(lift, np.maximum(motion, self.min_similarity), motion)
        # looking alike adds up to as much as motion, for every track a box could continue alike: as much as
        # for the stalest of them (a face seen a moment ago must not lose to a lost one just for looking the
        # same). Looking unlike takes nothing away (a face seen after a while may have turned)
        alike = np.clip((same - SAME_LOOK) / (1.0 - SAME_LOOK), 0.0, 1.0)
        weight = np.max(np.where(motion > 0, stale[:, None], 0.0), axis=0)
        return np.where(motion > 0, motion + weight[None, :] * alike, 0.0)

    def _hypotheses(
        self, tracks: list[Track], predicted: list[Box], boxes: list[Box], reach: list[float], time: float
    ) -> np.ndarray:
        """:meth:`_motion` of every track (with its ``reach``) and box: shape (tracks, boxes, 2)."""
        scores = [
            [self._motion(t, p, b, r, time) for b in boxes] for t, p, r in zip(tracks, predicted, reach)
        ]
        return np.array(scores).reshape(len(tracks), len(boxes), 2)

    def _motion(
        self, track: Track, predicted: Box, box: Box, reach: float, time: float
    ) -> tuple[float, float]:
        """How well ``box`` continues ``track`` by where its face is: at its predicted box, and (scored at
        :data:`TURNED`) as far from where it was last seen as its speed could have taken it, for a face that
        stopped or turned back meanwhile (a prediction carried along the old velocity overshot a turn by 80 px
        at 5 fps, and the person walking back got a new id)."""
        ahead = _similarity(predicted, box, reach)
        if predicted == track.box:
            return ahead, 0.0
        travel = float(np.linalg.norm(track.velocity)) * min(max(time - track.time, 0.0), self._coast())
        return ahead, TURNED * _similarity(track.box, box, reach + travel / _size(track.box))

    @staticmethod
    def _unsure(seconds: float) -> float:
        """How little motion says where a face seen ``seconds`` ago is, 0-1: how far past a track's own reach
        it could have walked, of the way to :data:`FAR_REACH`."""
        return min(max((WALK_SPEED * seconds - REACH) / (FAR_REACH - REACH), 0.0), 1.0)

    @staticmethod
    def _walk_reach(seconds: float) -> float:
        """How far (face sizes) a face seen ``seconds`` ago may have walked (:data:`WALK_SPEED`), up to
        :data:`FAR_REACH`."""
        return min(WALK_SPEED * seconds, FAR_REACH)

    @staticmethod
    def _loose_reach(seconds: float) -> float:
        """How far (face sizes) a track seen ``seconds`` ago reaches for a face not clearly unlike its own
        (:data:`LOOSE_SECONDS`): its own :data:`REACH` up to that gap, :data:`FAR_REACH` from twice it."""
        return REACH + (FAR_REACH - REACH) * min(max(seconds / LOOSE_SECONDS - 1.0, 0.0), 1.0)

    def _reach(self, track: Track, time: float) -> float:
        """How far (in face sizes) a detection may lie from the prediction: further the longer the face has
        been lost, since it kept moving unseen."""
        if track.lost_since is None:
            return REACH
        return min(REACH + 4.0 * (time - track.lost_since), FAR_REACH)

    def _continue(self, track: Track, box: Box, time: float, look: np.ndarray | None) -> None:
        dt = time - track.time
        ratio = _size(box) / _size(track.box)
        track.across_cut = False
        if not 0.5 <= ratio <= 2.0:  # a partial view: the face is there, but this box says little of where
            track.lost_since = None
            track.hits += 1
            return
        # a box much smaller or larger than the last is a partial view (occlusion, the frame edge): its centre
        # is off the face's, so it does not update the motion estimate, nor the face's look
        whole = 0.75 < ratio < 1.33
        if dt > 0 and track.lost_since is None and whole:
            measured = (_centre(box) - _centre(track.box)) / dt
            if track.moves == 0:  # the first measurement is the estimate: starting from 0 lags for seconds
                track.velocity = measured
            else:
                track.velocity = self.velocity_decay * track.velocity + (1 - self.velocity_decay) * measured
            track.moves += 1
        elif track.lost_since is not None:
            # back after a gap: the old motion says little about the new one
            track.velocity, track.moves = np.zeros(2), 0
        if look is not None and whole:
            mixed = look if track.look is None else track.look + look
            norm = float(np.linalg.norm(mixed))
            track.look = mixed / norm if norm > 1e-6 else look
        track.box, track.time, track.lost_since = box, time, None
        track.hits += 1

    def cut(self) -> None:
        """A shot change (or a jump in time): a face keeps its id only where a detection finds it in the same
        place looking the same (:data:`CUT_IOU`, :data:`SAME_LOOK`), within ``lost_seconds`` - a camera flash
        or a light change is no new person, another person in the same place is. Tracks are carried no further
        until then. Needs :func:`appearance` s: without them no face keeps its id, as with :meth:`end_all`."""
        for t in self.tracks:
            t.across_cut = True

    def end_all(self) -> None:
        """End every track (a cut to another shot): later faces get new ids, never an old one."""
        self.tracks = []

    def reset(self) -> None:
        """Forget every track (ids start again at 1)."""
        self.tracks, self.next_id, self.time = [], 1, None
        self._gaps.clear()


class Smoother:
    """Exponential smoothing of each track's class probabilities over *time* (variable frame rates and
    sampling give the same smoothing): the weight of a new frame is ``1 - exp(-dt / seconds)``.

    ``seconds=0`` turns smoothing off (smoothed equals raw). The raw values are never changed.
    """

    def __init__(self, seconds: float = 0.3) -> None:
        if not (seconds >= 0 and math.isfinite(seconds)):  # NaN too: it made every smoothed value NaN
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
