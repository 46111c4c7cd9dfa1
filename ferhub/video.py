"""Expressions over time: the photo path (:class:`ferhub.predict.Predictor`) with time added.

decode (PyAV, stream timestamps, rotation) -> detect every k-th frame (and at least every 0.3 s) -> track
(stable face ids) -> classify every analysed frame, a batch of frames per forward -> smooth per track (raw
kept) -> frame results in order, each once the next detection has confirmed its faces, and per-track
summaries at the end. A result carries its frame's picture only until the next is asked for, so memory stays
that of one batch of frames and those waiting for a detection, whatever the length of the video and however
many results the caller keeps.

>>> from ferhub.predict import Predictor                              # doctest: +SKIP
>>> run = VideoAnalyzer(Predictor()).open("clip.mp4")                 # doctest: +SKIP
>>> for frame in run:                                                 # doctest: +SKIP
...     print(frame.time, [(f.track_id, f.label) for f in frame.faces])
>>> run.summaries()                                                   # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from ferhub.errors import VideoSettingError, WrongTypeError, not_finite
from ferhub.faces import MIN_MAX_SIDE, Face, _is_int, _is_real
from ferhub.tracking import Box, FaceTracker, Smoother, Track, appearance, iou, match_boxes
from ferhub.videoio import DEFAULT_MAX_SIDE, JUMP_SECONDS, VideoDecodeError, VideoInfo, open_video


@dataclass
class VideoFace:
    """One tracked face in one frame: the raw probabilities of each model and their smoothed values."""

    track_id: int
    face: Face
    detected: bool  # False: the box was carried by the tracker on a frame detection skipped
    raw: list[np.ndarray]  # per model, in each model's label order
    smoothed: list[np.ndarray]
    labels: list[tuple[str, ...]] = field(repr=False)
    models: list[str] = field(repr=False)

    def __eq__(self, other: object) -> bool:
        """By value, as :class:`~ferhub.predict.ImageResult` compares: the probability arrays element by
        element (the dataclass's own ``==`` raised numpy's "truth value of an array ... is ambiguous")."""
        if not isinstance(other, VideoFace):
            return NotImplemented
        return (
            (self.track_id, self.face, self.detected, self.labels, self.models)
            == (other.track_id, other.face, other.detected, other.labels, other.models)
            and _same_arrays(self.raw, other.raw)
            and _same_arrays(self.smoothed, other.smoothed)
        )

    @property
    def label(self) -> str:
        """The first model's label for this frame alone (raw)."""
        return self.labels[0][int(self.raw[0].argmax())]

    @property
    def smoothed_label(self) -> str:
        return self.labels[0][int(self.smoothed[0].argmax())]

    def to_dict(self) -> dict[str, Any]:
        def probs(labels: tuple[str, ...], p: np.ndarray) -> dict[str, float]:
            return {k: round(float(v), 6) for k, v in zip(labels, p)}

        per_model = [
            {
                "model": name,
                "label": labels[int(r.argmax())],
                "probabilities": probs(labels, r),
                "smoothed_label": labels[int(s.argmax())],
                "smoothed": probs(labels, s),
            }
            for name, labels, r, s in zip(self.models, self.labels, self.raw, self.smoothed)
        ]
        d = {"face_id": self.track_id, **self.face.to_dict(), "detected": self.detected}
        d.update({k: v for k, v in per_model[0].items() if k != "model"})
        if len(per_model) > 1:
            d["predictions"] = per_model
        return d


@dataclass
class VideoFrameResult:
    """The faces of one analysed frame. ``image`` is the frame itself, for drawing (:func:`draw_frame`), while
    it is the frame being iterated: the run sets it to ``None`` when the next frame is asked for, so results
    kept (``list(run)``) hold no pictures. Keep ``frame.image`` yourself to have it later. Results compare
    by their frame and faces (``==``), whether or not the picture is still there."""

    index: int
    time: float
    faces: list[VideoFace]
    image: Image.Image | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.index, "time": round(self.time, 4), "faces": [f.to_dict() for f in self.faces]}


def _same_arrays(a: Sequence[np.ndarray], b: Sequence[np.ndarray]) -> bool:
    """Whether two lists of arrays (one per model) hold equal arrays."""
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


# faces are detected at least this often (video time), whatever ``detect_every`` says: at 15 fps and more,
# every 3rd frame is within it; sampled at 5 fps, every 2nd; at 3 fps or less, every frame
MAX_DETECT_SECONDS = 0.3
# and at least every this many frames: the frames between two detections are held (whole pictures) until the
# second one confirms their faces
MAX_HELD_FRAMES = 15
# a stream's frame step of up to this many nominal frame intervals is an ordinary one (a variable frame
# rate's, or a webcam's slowed to no less than half its nominal rate), from which TrackSummaries learns its
# typical interval; a longer one is a held frame (or a gap), whose length says nothing of the frame rate (a
# webcam slower still keeps the interval learnt last, or the nominal one)
ORDINARY_STEPS = 2.0
# a gap of over this many seconds between a live stream's frames (the webcam's: no frame arrived, the page
# hidden) is no time on screen; a video's reader marks its own jumps instead (TrackSummaries' max_gap)
LIVE_MAX_GAP = JUMP_SECONDS


class _TrackStats:
    """Running per-track totals for :meth:`VideoRun.summaries` (a few numbers per class, not per frame)."""

    def __init__(self, track_id: int, time: float, labels: list[tuple[str, ...]]) -> None:
        self.track_id = track_id
        self.first = self.last = time
        self.frames = self.detections = 0
        self.seconds = 0.0
        self.share = [np.zeros(len(ls)) for ls in labels]  # seconds per smoothed label, per model
        self.mean = [np.zeros(len(ls)) for ls in labels]  # time-weighted sum of smoothed probabilities
        self.peak = [np.full(len(ls), -1.0) for ls in labels]
        self.peak_time = [np.zeros(len(ls)) for ls in labels]
        self._pending: list[np.ndarray] = []

    def see(self, face: VideoFace, time: float) -> None:
        self.last = time
        self.frames += 1
        self.detections += int(face.detected)
        for m, s in enumerate(face.smoothed):
            higher = s > self.peak[m]
            self.peak[m][higher] = s[higher]
            self.peak_time[m][higher] = time
        self._pending = face.smoothed

    def credit(self, seconds: float) -> None:
        """Count the time from this track's last frame to the next analysed frame as time on screen."""
        self.seconds += seconds
        for m, s in enumerate(self._pending):
            self.share[m][int(s.argmax())] += seconds
            self.mean[m] += seconds * s

    def summary(self, models: list[str], labels: list[tuple[str, ...]]) -> dict[str, Any]:
        per_model = []
        for m, (name, ls) in enumerate(zip(models, labels)):
            total = max(self.seconds, 1e-9)
            share = {k: round(float(v / total), 4) for k, v in zip(ls, self.share[m])}
            per_model.append(
                {
                    "model": name,
                    "dominant": max(share, key=share.__getitem__) if self.seconds > 0 else None,
                    "share": share,
                    "mean": {k: round(float(v / total), 4) for k, v in zip(ls, self.mean[m])},
                    "peaks": {
                        k: {"probability": round(float(p), 4), "time": round(float(t), 4)}
                        for k, p, t in zip(ls, self.peak[m], self.peak_time[m])
                    },
                }
            )
        d = {
            "face_id": self.track_id,
            "first_time": round(self.first, 4),
            "last_time": round(self.last, 4),
            "seconds": round(self.seconds, 4),
            "frames": self.frames,
            "detections": self.detections,
        }
        d.update({k: v for k, v in per_model[0].items() if k != "model"})
        if len(per_model) > 1:
            d["models"] = per_model
        return d


class TrackSummaries:
    """Per-track totals of a stream of analysed frames (a video, or a recorded webcam session): call
    :meth:`add` for each frame in time order, then :meth:`result`. Keeps a few numbers per class per track.

    A frame counts as on screen until the next one, however long it is held (a variable-frame-rate screen or
    call recording holds a still picture for seconds, a paused camera's MP4 a minute), except across a jump:
    where the caller says the time since the frame before was no time shown (a video reader's timestamps
    started again, or jumped far ahead in MPEG-TS/PS; the camera was stopped), and, for a stream that cannot
    tell (``max_gap``, the webcam's, where a gap is frames that did not arrive), a gap over ``max_gap``
    seconds. A video's reader decides its jumps (``max_gap=None``): the summaries count the time its timeline
    and annotated copy show.

    ``typical_dt``: the stream's nominal frame interval. The typical interval a jump, and the last frame,
    count is learnt from ordinary frame steps only: up to :data:`ORDINARY_STEPS` nominal intervals (a held
    frame's seconds, or a jump's, are no frame step)."""

    def __init__(
        self,
        models: list[str],
        labels: list[tuple[str, ...]],
        typical_dt: float,
        *,
        max_gap: float | None = LIVE_MAX_GAP,
    ) -> None:
        self.models, self.labels = models, labels
        self._stats: dict[int, _TrackStats] = {}
        self._previous: tuple[float, list[int]] | None = None
        self._nominal_dt = self._typical_dt = typical_dt
        self._max_gap = max_gap

    def add(self, time: float, faces: Sequence[VideoFace], *, jump: bool = False) -> None:
        """``jump``: the time since the frame before is no time that frame was shown (the timestamps started
        again, the camera was stopped): that frame counts for one typical frame interval."""
        if self._previous is not None:
            prev_time, ids = self._previous
            dt = time - prev_time
            if jump or (self._max_gap is not None and dt > self._max_gap):
                dt = self._typical_dt
            elif 0 < dt <= ORDINARY_STEPS * self._nominal_dt:
                self._typical_dt = dt
            for i in ids:
                self._stats[i].credit(dt)
        for f in faces:
            stats = self._stats.get(f.track_id)
            if stats is None:
                stats = self._stats[f.track_id] = _TrackStats(f.track_id, time, self.labels)
            stats.see(f, time)
        self._previous = (time, [f.track_id for f in faces])

    def result(self, end: float | None = None, *, shown_until: float | None = None) -> list[dict[str, Any]]:
        """Per track: first/last time, seconds on screen, share of time per (smoothed) expression, the
        dominant one, time-weighted mean probabilities and each class's peak (probability and time).
        ``end``: when the stream ends (a video's duration), which the last frame does not outlast;
        ``shown_until``: when the last frame stops being shown, where the stream says (read to its end)."""
        if self._previous is not None:  # the last frame lasts one typical frame interval, to the end at most
            last, ids = self._previous
            lasts = self._typical_dt if end is None else max(0.0, min(self._typical_dt, end - last))
            if shown_until is not None:  # an animation's last frame may be shown longer than the others
                lasts = max(0.0, shown_until - last)
            for i in ids:
                self._stats[i].credit(lasts)
            self._previous = None
        return [self._stats[i].summary(self.models, self.labels) for i in sorted(self._stats)]


class _NotFinite(Exception):
    """A model gave NaN or infinite probabilities for a face: ends a :class:`VideoRun` with its error."""


class VideoRun:
    """One video being analysed: iterate it for :class:`VideoFrameResult` s; then :meth:`summaries`.

    Each result's ``image`` (the decoded frame) is there until the next frame is asked for, then ``None``:
    draw or save it inside the loop, or keep the reference. The results themselves are small to keep.

    A decoding failure part-way (a truncated file) ends the iteration and sets :attr:`error`; the frames
    before it have been yielded and count in the summaries.

    A face on a frame between two detections is where the tracker carries its box; it is reported there only
    if the next detection finds it again (the person may have left meanwhile, and a box carried onto the
    background must not be classified as a face). So the frames since the last detection are held until the
    next one: at most ``detect_every - 1`` frames, :data:`MAX_DETECT_SECONDS` of video and
    :data:`MAX_HELD_FRAMES` frames. The last frame of a shot (before a cut, at the end) is always detected.
    """

    def __init__(self, analyzer: VideoAnalyzer, path: str | os.PathLike, name: str | None = None) -> None:
        self._analyzer = analyzer
        self._reader = open_video(path, max_side=analyzer.max_side)
        self._source = os.fsdecode(path)  # any os.PathLike, by its path (str() is its repr)
        # the results (and errors) name the video by ``name`` where given, not by where it was read from
        self.path = self._source if name is None else name
        self.info: VideoInfo = replace(self._reader.info, path=self.path)
        predictor = analyzer.predictor
        self.models = list(predictor.names)
        self.labels = [tuple(c.labels) for c in predictor.configs]
        self.error: str | None = None
        # a model gave NaN (``error`` says which): the frames after it are not counted
        self.model_failed = False
        self.frames_done = 0
        self.tracker = FaceTracker(**analyzer.tracker_options)
        self.smoother = Smoother(analyzer.smooth)
        self._last_faces: dict[int, Face] = {}
        self._cuts = ShotCuts()
        self._last_time: float | None = None
        self._detected_time: float | None = None  # of the last frame detection ran on
        self._since_detection = 0  # analysed frames since then
        # frames waiting for the next detection, with their carried faces; then frames to classify and yield
        self._held: list[tuple[Any, list[tuple[Track, Face]]]] = []
        self._ready: deque[tuple[Any, list[tuple[Track, Face, bool]]]] = deque()
        dt = 1 / analyzer.fps if analyzer.fps else 1 / (self.info.fps or 25.0)
        # a gap between analysed frames longer than this is a jump in the timestamps (a damaged or joined
        # stream), treated as a cut; sampled frames are 1/fps apart, so never less than two of those
        sampled = max(dt, 1 / self.info.fps if self.info.fps else 0.0)
        self._max_gap = max(self.tracker.max_lost, 2 * sampled)
        # the time on screen follows the reader's clock: a gap it keeps (a held frame, a paused camera's MP4)
        # is time shown, and only where its timestamps started again or jumped (frame.restarted) is none;
        # _max_gap is how far the tracker carries a box, which says nothing of how long a frame was shown
        self._summaries = TrackSummaries(self.models, self.labels, sampled, max_gap=None)

    def __iter__(self) -> Iterator[VideoFrameResult]:
        batch: list[Any] = []
        try:
            try:
                for frame in self._reader.frames(fps=self._analyzer.fps):
                    batch.append(frame)
                    if len(batch) >= self._analyzer.batch_frames:
                        yield from self._analyse(batch)
                        batch = []
            except VideoDecodeError as e:
                self.error = str(e).replace(self._source, self.path)
            # recordings joined one after another (timestamps that start again) are as long as all of them,
            # which the header could not say
            self.info.duration = self._reader.info.duration
            yield from self._analyse(batch, last=True)
        except _NotFinite as e:  # a broken model: no label can be read from it, for this face or any later
            self.error = str(e)
            self.model_failed = True
        self._reader.close()

    def close(self) -> None:
        self._reader.close()

    @property
    def end(self) -> float | None:
        """When the video ends (seconds): where its last frame decoded stops being shown, once the stream was
        read to its end, or to where it is truncated or damaged (no track, and no annotated copy, outlasts
        the frames a cut file holds), but not past the ``duration`` the results report (a B-frame phone
        video's header may fall short of its frames); ``None`` before, after an interruption, or after a
        model's error (the frames after it are not counted)."""
        end = None if self.model_failed else self._reader.end
        duration = self.info.duration
        return end if end is None or not duration else min(end, duration)

    def _analyse(self, batch: list[Any], last: bool = False) -> Iterator[VideoFrameResult]:
        k = self._analyzer.detect_every
        # a cut (a new shot), or a jump in the timestamps, is detected on at once, whatever k says: no box is
        # carried across it
        cuts, detect = [], []
        for f in batch:
            # timestamps that started again or jumped (recordings joined one after another) are a jump too
            jump = f.restarted or (self._last_time is not None and f.time - self._last_time > self._max_gap)
            cut = self._cuts.is_cut(f.image) or jump
            self._last_time = f.time
            self._since_detection += 1
            # detection every k-th analysed frame, and at least every MAX_DETECT_SECONDS: sampled frames far
            # apart are each detected, rather than boxes carried (and held) for seconds
            due = (
                cut
                or self._detected_time is None
                or self._since_detection >= min(k, MAX_HELD_FRAMES + 1)
                or f.time - self._detected_time >= MAX_DETECT_SECONDS - 1e-3
            )
            if due:
                self._detected_time, self._since_detection = f.time, 0
            cuts.append(cut)
            detect.append(due)
        to_detect = [f.image for f, d in zip(batch, detect) if d]
        detected = iter(self._analyzer.predictor.detector.detect_batch(to_detect) if to_detect else [])
        for frame, cut, run_detection in zip(batch, cuts, detect):
            if cut:  # the old shot ends with a detection; its faces keep their ids only if still there
                self._close_shot()
                self.tracker.cut()
            if run_detection:
                self._confirm(frame, next(detected))
            else:
                carried = self.tracker.predicted(frame.time)
                entries = [(t, _moved(self._last_faces[t.id], box)) for t, box in carried]
                for t, f in entries:
                    self._last_faces[t.id] = f
                self._held.append((frame, sorted(entries, key=lambda e: e[0].id)))
        if last:
            self._close_shot()
        yield from self._emit()

    def _close_shot(self) -> None:
        """Detect on the last held frame (a shot's or the stream's end): it confirms the frames before it."""
        if self._held:
            frame, _ = self._held.pop()
            (faces,) = self._analyzer.predictor.detector.detect_batch([frame.image])
            self._confirm(frame, faces)

    def _confirm(self, frame: Any, faces: list[Face]) -> None:
        """A detection on ``frame``: the held frames before it keep the carried faces it found again, and show
        the faces it found that they did not carry where a face is there."""
        # where the held frames' boxes were heading, and where each face was last seen
        carried_to = {t.id: box for t, box in self.tracker.predicted(frame.time)}
        seen = {t.id: (t.box, t.time) for t in self.tracker.tracks}
        looks = [appearance(frame.image, f.box) for f in faces]
        tracks = self.tracker.update([f.box for f in faces], time=frame.time, looks=looks)
        # a carried face is confirmed when this detection finds it again where its carried box was heading
        # (overlapping it at least half: else the boxes carried before were off the face too)
        found = {
            t.id for t, f in zip(tracks, faces) if t.id in carried_to and iou(carried_to[t.id], f.box) >= 0.5
        }
        # a face not found there left (or was hidden, or turned back) since the last detection: the held
        # frames that carry it are detected too (only then: it is rare) and keep it where a face is: on its
        # way between its two sightings when it was found elsewhere, else at its carried box
        # a face this detection finds that the held frames do not carry came into view (or back) since the
        # last one: they are all detected too, and show it where a face is at its box (its rows began at this
        # detection: first seen late, and 0.2 s short on screen at each entry at 5 fps)
        arrived = [(t, f.box) for t, f in zip(tracks, faces) if t.id not in carried_to]
        doubtful = [
            i
            for i, (_, carried) in enumerate(self._held)
            if arrived or any(t.id not in found for t, _ in carried)
        ]
        rechecked: dict[int, list[Face]] = {}
        if doubtful:
            detector = self._analyzer.predictor.detector
            rechecked = dict(zip(doubtful, detector.detect_batch([self._held[i][0].image for i in doubtful])))
        elsewhere = {t.id: f.box for t, f in zip(tracks, faces) if t.id in seen and t.id not in found}
        for i, (held, carried) in enumerate(self._held):
            entries = [(t, f, False) for t, f in carried if t.id in found]
            if i in rechecked:
                # every carried face takes part (one face each): a confirmed one keeps its own face from
                # being taken for a doubtful one's passing by (two people crossing)
                expected = [
                    _between(*seen[t.id], elsewhere[t.id], frame.time, held.time)
                    if t.id in elsewhere
                    else f.box
                    for t, f in carried
                ]
                # a face found far from where it was last seen may have gone there by any way (a swing of the
                # head, a turn back): the further apart its two sightings, the further from the straight way
                reach = [
                    1.5 + 0.5 * _distance(seen[t.id][0], elsewhere[t.id]) if t.id in elsewhere else 1.5
                    for t, _ in carried
                ] + [1.5] * len(arrived)
                there = rechecked[i]
                pairs = match_boxes(expected + [b for _, b in arrived], [f.box for f in there], reach=reach)
                entries += [
                    (t, there[pairs[j]], True)
                    for j, (t, _) in enumerate(carried)
                    if t.id not in found and j in pairs
                ]
                entries += [
                    (t, there[pairs[j]], True)
                    for j, (t, _) in enumerate(arrived, start=len(carried))
                    if j in pairs
                ]
                entries.sort(key=lambda e: e[0].id)
            self._ready.append((held, entries))
        self._held = []
        entries = sorted(((t, f, True) for t, f in zip(tracks, faces)), key=lambda e: e[0].id)
        for t, f, _ in entries:
            self._last_faces[t.id] = f
        self._ready.append((frame, entries))

    def _emit(self) -> Iterator[VideoFrameResult]:
        """Classify the faces of the frames ready (one forward per model) and yield them in order, releasing
        each frame as it goes."""
        if not self._ready:
            return
        ready, self._ready = self._ready, deque()
        items = [(frame.image, f) for frame, entries in ready for _, f, _ in entries]
        probs = self._analyzer.predictor.classify_many(items)
        del items
        finite = np.logical_and.reduce([np.isfinite(p).all(axis=1) for p in probs])
        row = 0
        while ready:
            frame, entries = ready.popleft()
            faces = []
            for track, face, was_detected in entries:
                raw = [p[row] for p in probs]
                if not finite[row]:
                    # a label read from NaN is the first class (argmax): the run ends here, the frames before
                    # it kept, as a truncated file's do (the caller says so, with their count)
                    failed = [m for m, r in zip(self.models, raw) if not np.isfinite(r).all()]
                    raise _NotFinite(
                        f"{self.path}: model {', '.join(failed)} gave NaN or infinite probabilities for a"
                        f" face at {frame.time:.2f} s; {not_finite(len(failed) > 1)}"
                    )
                row += 1
                smoothed = self.smoother.update(track, raw, frame.time)
                faces.append(VideoFace(track.id, face, was_detected, raw, smoothed, self.labels, self.models))
            # another recording joined on (the reader's clock goes on a step after the last): no time shown
            self._summaries.add(frame.time, faces, jump=frame.restarted)
            self.frames_done += 1
            result = VideoFrameResult(frame.index, frame.time, faces, frame.image)
            del frame
            yield result
            # the caller asked for the next frame: this one's picture goes (a caller that keeps its results,
            # ``list(run)``, would otherwise hold every decoded frame: 4 MB each at 720p); one who wants the
            # picture keeps a reference to ``result.image`` itself
            result.image = None

    def summaries(self) -> list[dict[str, Any]]:
        """Per-track summaries of the frames analysed so far (see :class:`TrackSummaries`); no track outlasts
        the video (a sampled last frame stands for its interval up to the video's end, not past it), and the
        last frame counts as long as it is shown (:attr:`end`) once the stream was read to its end, or to
        where a cut or damaged file's frames stop."""
        return self._summaries.result(end=self.info.duration, shown_until=self.end)

    def header(self) -> dict[str, Any]:
        """What is known before the first frame: the file, its stream and the analysis settings."""
        a = self._analyzer
        return {
            **self.info.to_dict(),
            "models": self.models,
            "labels": list(self.labels[0]),
            "sample_fps": a.fps,
            "detect_every": a.detect_every,
            "smoothing_seconds": a.smooth,
        }


class ShotCuts:
    """Detects hard cuts between consecutive frames from their histograms and their layout.

    A cut puts other people (or the same people elsewhere) on screen, which box motion alone cannot tell from
    a face moving; a histogram hardly changes when faces or the camera move, and changes wholesale at a cut.
    ``threshold`` is the L1 distance (0-2) between two frames' normalised histograms that counts as a cut: of
    their colours (64 bins) or of their grey levels (16 bins), whichever changed more (in black and white the
    colour bins are 4 grey ones, which two shots often share). A change of light alone (dimmed, an exposure
    step, a flash) changes the histograms wholesale too but keeps the picture's layout, which parts are
    brighter than which: a cut must also bring the correlation of the two frames' 16x12 grey thumbnails below
    ``same_layout``. The thumbnails average 8x8 samples each, so a plain wall's grain does not make a layout;
    a frame with none (black, one colour) is judged on its histograms alone. On sample photos (colour and
    grey): 1 of 136 colour cuts and 8 of 136 grey ones missed; of 85 light changes, one saturating flash on a
    brick wall taken for a cut (the tracker then keeps the faces still in place, :meth:`~ferhub.tracking.
    FaceTracker.cut`).
    """

    def __init__(self, threshold: float = 0.6, same_layout: float = 0.6) -> None:
        self.threshold = threshold
        self.same_layout = same_layout
        self._previous: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None

    def is_cut(self, image: Image.Image) -> bool:
        # a 128x96 sample (nearest: ~0.03 ms at 1080p, where a box filter on the frame took 4 ms)
        sample = image.resize((128, 96), Image.Resampling.NEAREST)
        grey = sample.convert("L")
        colours = np.asarray(sample, dtype=np.uint8)[::2, ::2] >> 6
        levels = (np.asarray(grey, dtype=np.uint8)[::2, ::2] >> 4).ravel()
        features = (_histogram(colours), np.bincount(levels, minlength=16) / levels.size, _layout(grey))
        previous, self._previous = self._previous, features
        if previous is None:
            return False
        changed = max(float(np.abs(a - b).sum()) for a, b in zip(features[:2], previous[:2]))
        if changed <= self.threshold:
            return False
        if features[2] is None or previous[2] is None:  # no layout to keep (a black or plain frame)
            return True
        return float(features[2] @ previous[2]) < self.same_layout


def _histogram(levels: np.ndarray) -> np.ndarray:
    """The normalised 64-bin histogram of an RGB image quantised to 4 levels a channel."""
    codes = (levels[..., 0].astype(np.int32) << 4) | (levels[..., 1].astype(np.int32) << 2) | levels[..., 2]
    return np.bincount(codes.ravel(), minlength=64) / codes.size


def _layout(grey: Image.Image) -> np.ndarray | None:
    """The frame's 16x12 grey thumbnail, centred and of unit length (the dot product of two is their
    correlation, which dimming or brightening leaves as it is); ``None`` for a frame without a layout (its
    thumbnail's values spread less than a grey level)."""
    thumb = np.asarray(grey.resize((16, 12), Image.Resampling.BOX), dtype=np.float64).ravel()
    v = thumb - thumb.mean()
    if v.std() < 1.0:
        return None
    return v / float(np.linalg.norm(v))


def _distance(a: Box, b: Box) -> float:
    """How far apart the centres of two boxes are, in face sizes (of ``a``)."""
    size = max((a[2] - a[0]) * (a[3] - a[1]), 1.0) ** 0.5
    return math.dist(((a[0] + a[2]) / 2, (a[1] + a[3]) / 2), ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)) / size


def _between(a: Box, a_time: float, b: Box, b_time: float, time: float) -> Box:
    """The box at ``time`` on the straight way from box ``a`` (at ``a_time``) to box ``b`` (at ``b_time``)."""
    w = min(max((time - a_time) / (b_time - a_time), 0.0), 1.0) if b_time > a_time else 1.0
    return tuple(p + w * (q - p) for p, q in zip(a, b))  # type: ignore[return-value]


def _moved(face: Face, box: tuple[float, float, float, float]) -> Face:
    """``face`` carried to ``box`` (landmarks moved and scaled with it), for frames without detection."""
    x1, y1, x2, y2 = face.box
    sx = (box[2] - box[0]) / max(x2 - x1, 1e-6)
    sy = (box[3] - box[1]) / max(y2 - y1, 1e-6)
    landmarks = None
    if face.landmarks is not None:
        landmarks = tuple((box[0] + (x - x1) * sx, box[1] + (y - y1) * sy) for x, y in face.landmarks)
    return Face(box=box, score=face.score, landmarks=landmarks, face_found=face.face_found)  # type: ignore[arg-type]


class VideoAnalyzer:
    """Settings for analysing videos through a :class:`~ferhub.predict.Predictor`.

    Args:
        predictor: the one inference path (its detector and models).
        detect_every: run face detection on every k-th analysed frame (and at least every
            :data:`MAX_DETECT_SECONDS` and :data:`MAX_HELD_FRAMES`); the tracker carries the boxes in
            between, reported where the next detection confirms them. Every analysed frame is classified.
        fps: analyse at most this many frames per second (``None``: every frame).
        smooth: time constant (seconds) of the per-track exponential smoothing; 0 turns it off.
        max_side: frames larger than this are downscaled by the decoder (boxes are in the downscaled pixels);
            at least :data:`~ferhub.faces.MIN_MAX_SIDE`.
        batch_frames: frames whose faces go through the models in one forward pass.
        tracker: keyword arguments of :class:`~ferhub.tracking.FaceTracker`.

    A setting that cannot work (of the wrong type, out of range) raises
    :class:`~ferhub.errors.VideoSettingError` here, before any video is opened.
    """

    def __init__(
        self,
        predictor: Any,
        *,
        detect_every: int = 3,
        fps: float | None = None,
        smooth: float = 0.3,
        max_side: int = DEFAULT_MAX_SIDE,
        batch_frames: int = 8,
        tracker: dict[str, Any] | None = None,
    ) -> None:
        # every setting is checked here, its type too ("3" failed at the first comparison with a bare
        # TypeError), so that ``except FerhubError`` catches a bad one before any frame is decoded
        # counts are ints (2.5 frames was taken as 2); max_side is a number of pixels, as FaceDetector takes
        # it (1280.0: a size worked out by the caller, which worked before the check)
        for what, value in (("detect_every", detect_every), ("batch_frames", batch_frames)):
            if not _is_int(value):
                raise VideoSettingError(f"{what} must be an int, got {type(value).__name__} {value!r}")
        for what, value in (("fps", fps), ("smooth", smooth), ("max_side", max_side)):
            if value is not None and not _is_real(value):
                raise VideoSettingError(f"{what} must be a number, got {type(value).__name__} {value!r}")
        if detect_every < 1:
            raise VideoSettingError(f"detect_every must be 1 or more frames, got {detect_every}")
        # written as not (x >= 0 and finite): NaN, for which every comparison is false, is refused too (a NaN
        # smoothing made every smoothed probability NaN, so every label the first class)
        if fps is not None and not (fps > 0 and math.isfinite(fps)):
            raise VideoSettingError(f"fps must be a positive number (None: every frame), got {fps}")
        if smooth is None or not (smooth >= 0 and math.isfinite(smooth)):
            raise VideoSettingError(f"smooth must be 0 (off) or a positive number of seconds, got {smooth}")
        # the detector's floor, as FaceDetector and the CLI's --max-side refuse it: smaller (0 or negative
        # too) decoded 2x2 frames in which no face was ever found, and said nothing
        if not (MIN_MAX_SIDE <= max_side < math.inf):
            raise VideoSettingError(f"max_side must be at least {MIN_MAX_SIDE} pixels, got {max_side}")
        if batch_frames < 1:
            raise VideoSettingError(f"batch_frames must be 1 or more frames, got {batch_frames}")
        options = FaceTracker.__init__.__kwdefaults__ or {}
        if tracker is not None and not isinstance(tracker, dict):
            raise VideoSettingError(
                f"tracker must be a dict of FaceTracker options, got {type(tracker).__name__}"
            )
        if unknown := [k for k in tracker or {} if k not in options]:
            raise VideoSettingError(
                f"tracker takes FaceTracker's options ({', '.join(options)}), got"
                f" {', '.join(map(str, unknown))}"
            )
        # their values too: a string or None passed here and failed at open() (a NaN part-way) with a bare
        # TypeError or numpy's error; each is a length of time or a share, never negative
        for key, value in (tracker or {}).items():
            if not _is_real(value) or not (value >= 0 and math.isfinite(value)):
                raise VideoSettingError(f"tracker option {key} must be a number of 0 or more, got {value!r}")
        self.predictor = predictor
        self.detect_every = int(detect_every)
        # as Python floats: the settings go into header() as they are, which stays plain JSON (json.dumps
        # refuses numpy's np.float32 / np.int64, which are accepted here)
        self.fps = None if fps is None else float(fps)
        self.smooth = float(smooth)
        self.max_side = int(max_side)
        self.batch_frames = int(batch_frames)
        self.tracker_options = {key: float(value) for key, value in (tracker or {}).items()}

    def open(self, path: str | os.PathLike, *, name: str | None = None) -> VideoRun:
        """Open ``path`` for analysis; raises :class:`~ferhub.videoio.VideoDecodeError` when it is not a
        readable video (:class:`~ferhub.videoio.NotAVideoError` for a still picture). ``name``: what the
        results call the video instead of ``path`` (an upload by its own file name, not a server path)."""
        return VideoRun(self, path, name)


def frame_texts(faces: Sequence[VideoFace]) -> list[str]:
    """The tag drawn on each face: ``#id label pct`` from the smoothed probabilities of the first model."""
    return [f"#{f.track_id} {f.smoothed_label} {float(f.smoothed[0].max()):.0%}" for f in faces]


def draw_frame(result: VideoFrameResult) -> Image.Image:
    """The frame with each face boxed and tagged with its track id and smoothed label; call it inside the loop
    over a :class:`VideoRun` (a result's ``image`` is dropped when the next frame is asked for)."""
    from ferhub.drawing import draw_boxes, label_color

    if result.image is None:
        raise WrongTypeError(
            f"frame {result.index} has no image to draw on: a video run drops each frame's picture when the"
            " next frame is asked for; call draw_frame inside the loop (or keep frame.image there)"
        )
    boxes = [f.face.box for f in result.faces]
    colors = [label_color(f.smoothed_label) for f in result.faces]
    return draw_boxes(result.image, boxes, frame_texts(result.faces), colors)
