"""Expressions over time: the photo path (:class:`ferhub.predict.Predictor`) with time added.

decode (PyAV, stream timestamps, rotation) -> detect every k-th frame -> track (stable face ids) -> classify
every analysed frame, a batch of frames per forward -> smooth per track (raw kept) -> frame results as they
come, and per-track summaries at the end. Frames are released once their results are out, so memory stays
that of one batch of frames whatever the length of the video.

>>> from ferhub.predict import Predictor                              # doctest: +SKIP
>>> run = VideoAnalyzer(Predictor()).open("clip.mp4")                 # doctest: +SKIP
>>> for frame in run:                                                 # doctest: +SKIP
...     print(frame.time, [(f.track_id, f.label) for f in frame.faces])
>>> run.summaries()                                                   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from ferhub.faces import Face
from ferhub.tracking import FaceTracker, Smoother, Track
from ferhub.videoio import DEFAULT_MAX_SIDE, VideoDecodeError, VideoInfo, open_video


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
    """The faces of one analysed frame (``image`` is the frame itself, for drawing; dropped after use)."""

    index: int
    time: float
    faces: list[VideoFace]
    image: Image.Image | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.index, "time": round(self.time, 4), "faces": [f.to_dict() for f in self.faces]}


# the longest a frame counts as on screen: a longer gap is a timestamp jump (or a damaged stream), not screen
# time
MAX_FRAME_SECONDS = 2.0


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
    :meth:`add` for each frame in time order, then :meth:`result`. Keeps a few numbers per class per track."""

    def __init__(self, models: list[str], labels: list[tuple[str, ...]], typical_dt: float) -> None:
        self.models, self.labels = models, labels
        self._stats: dict[int, _TrackStats] = {}
        self._previous: tuple[float, list[int]] | None = None
        self._typical_dt = typical_dt

    def add(self, time: float, faces: Sequence[VideoFace]) -> None:
        if self._previous is not None:
            prev_time, ids = self._previous
            dt = time - prev_time
            if 0 < dt <= MAX_FRAME_SECONDS:
                self._typical_dt = dt
            for i in ids:
                self._stats[i].credit(dt if dt <= MAX_FRAME_SECONDS else self._typical_dt)
        for f in faces:
            stats = self._stats.get(f.track_id)
            if stats is None:
                stats = self._stats[f.track_id] = _TrackStats(f.track_id, time, self.labels)
            stats.see(f, time)
        self._previous = (time, [f.track_id for f in faces])

    def result(self, end: float | None = None) -> list[dict[str, Any]]:
        """Per track: first/last time, seconds on screen, share of time per (smoothed) expression, the
        dominant one, time-weighted mean probabilities and each class's peak (probability and time).
        ``end``: when the stream ends (a video's duration), which the last frame does not outlast."""
        if self._previous is not None:  # the last frame lasts one typical frame interval, to the end at most
            last, ids = self._previous
            lasts = self._typical_dt if end is None else max(0.0, min(self._typical_dt, end - last))
            for i in ids:
                self._stats[i].credit(lasts)
            self._previous = None
        return [self._stats[i].summary(self.models, self.labels) for i in sorted(self._stats)]


class VideoRun:
    """One video being analysed: iterate it for :class:`VideoFrameResult` s; then :meth:`summaries`.

    A decoding failure part-way (a truncated file) ends the iteration and sets :attr:`error`; the frames
    before it have been yielded and count in the summaries.
    """

    def __init__(self, analyzer: VideoAnalyzer, path: str | os.PathLike, name: str | None = None) -> None:
        self._analyzer = analyzer
        self._reader = open_video(path, max_side=analyzer.max_side)
        self._source = str(path)
        # the results (and errors) name the video by ``name`` where given, not by where it was read from
        self.path = self._source if name is None else name
        self.info: VideoInfo = replace(self._reader.info, path=self.path)
        predictor = analyzer.predictor
        self.models = list(predictor.names)
        self.labels = [tuple(c.labels) for c in predictor.configs]
        self.error: str | None = None
        self.frames_done = 0
        self.tracker = FaceTracker(**analyzer.tracker_options)
        self.smoother = Smoother(analyzer.smooth)
        self._last_faces: dict[int, Face] = {}
        self._cuts = ShotCuts()
        self._last_time: float | None = None
        dt = 1 / analyzer.fps if analyzer.fps else 1 / (self.info.fps or 25.0)
        self._summaries = TrackSummaries(self.models, self.labels, dt)

    def __iter__(self) -> Iterator[VideoFrameResult]:
        batch: list[Any] = []
        try:
            for frame in self._reader.frames(fps=self._analyzer.fps):
                batch.append(frame)
                if len(batch) >= self._analyzer.batch_frames:
                    yield from self._analyse(batch)
                    batch = []
        except VideoDecodeError as e:
            self.error = str(e).replace(self._source, self.path)
        yield from self._analyse(batch)
        self._reader.close()

    def close(self) -> None:
        self._reader.close()

    def _analyse(self, batch: list[Any]) -> Iterator[VideoFrameResult]:
        if not batch:
            return
        k = self._analyzer.detect_every
        first = self.frames_done
        # a cut (a new shot), or a jump in the timestamps longer than a lost face is waited for, ends every
        # track and is detected on at once, whatever k says: no box is carried across it
        cuts = []
        for f in batch:
            jump = self._last_time is not None and f.time - self._last_time > self.tracker.max_lost
            cuts.append(self._cuts.is_cut(f.image) or jump)
            self._last_time = f.time
        detect = [n % k == 0 or cut for n, cut in enumerate(cuts, first)]
        found = self._analyzer.predictor.detector.detect_batch([f.image for f, d in zip(batch, detect) if d])
        detected = iter(found)
        per_frame: list[list[tuple[Track, Face, bool]]] = []
        for frame, cut, run_detection in zip(batch, cuts, detect):
            if cut:  # nobody carries over a cut (ids are never reused)
                self.tracker.end_all()
            if run_detection:
                faces = next(detected)
                tracks = self.tracker.update([f.box for f in faces], time=frame.time)
                entries = [(t, f, True) for t, f in zip(tracks, faces)]
            else:
                carried = self.tracker.predicted(frame.time)
                entries = [(t, _moved(self._last_faces[t.id], box), False) for t, box in carried]
            for t, f, _ in entries:
                self._last_faces[t.id] = f
            per_frame.append(sorted(entries, key=lambda e: e[0].id))
        items = [(frame.image, f) for frame, entries in zip(batch, per_frame) for _, f, _ in entries]
        probs = self._analyzer.predictor.classify_many(items)
        row = 0
        for frame, entries in zip(batch, per_frame):
            faces = []
            for track, face, was_detected in entries:
                raw = [p[row] for p in probs]
                row += 1
                smoothed = self.smoother.update(track, raw, frame.time)
                faces.append(VideoFace(track.id, face, was_detected, raw, smoothed, self.labels, self.models))
            self._summaries.add(frame.time, faces)
            self.frames_done += 1
            yield VideoFrameResult(frame.index, frame.time, faces, frame.image)

    def summaries(self) -> list[dict[str, Any]]:
        """Per-track summaries of the frames analysed so far (see :class:`TrackSummaries`); no track outlasts
        the video (a sampled last frame stands for its interval up to the video's end, not past it)."""
        return self._summaries.result(end=self.info.duration)

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
    """Detects hard cuts between consecutive frames from their colour histograms.

    A cut puts other people (or the same people elsewhere) on screen, which box motion alone cannot tell from
    a face moving; a histogram hardly changes when faces or the camera move, and changes wholesale at a cut.
    ``threshold`` is the L1 distance (0-2) between the normalised 64-bin histograms that counts as a cut.
    """

    def __init__(self, threshold: float = 0.6) -> None:
        self.threshold = threshold
        self._previous: np.ndarray | None = None

    def is_cut(self, image: Image.Image) -> bool:
        small = np.asarray(image.resize((64, 48), Image.Resampling.NEAREST), dtype=np.uint8) >> 6
        codes = (small[..., 0].astype(np.int32) << 4) | (small[..., 1] << 2) | small[..., 2]
        hist = np.bincount(codes.ravel(), minlength=64) / codes.size
        previous, self._previous = self._previous, hist
        return previous is not None and float(np.abs(hist - previous).sum()) > self.threshold


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
        detect_every: run face detection on every k-th analysed frame; the tracker carries the boxes in
            between. Every analysed frame is classified either way.
        fps: analyse at most this many frames per second (``None``: every frame).
        smooth: time constant (seconds) of the per-track exponential smoothing; 0 turns it off.
        max_side: frames larger than this are downscaled by the decoder (boxes are in the downscaled pixels).
        batch_frames: frames whose faces go through the models in one forward pass.
        tracker: keyword arguments of :class:`~ferhub.tracking.FaceTracker`.
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
        if detect_every < 1:
            raise ValueError(f"detect_every must be 1 or more frames, got {detect_every}")
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be a positive number, got {fps}")
        if smooth < 0:
            raise ValueError(f"smooth must be 0 (off) or a positive number of seconds, got {smooth}")
        self.predictor = predictor
        self.detect_every = int(detect_every)
        self.fps = fps
        self.smooth = float(smooth)
        self.max_side = int(max_side)
        self.batch_frames = max(1, int(batch_frames))
        self.tracker_options = dict(tracker or {})

    def open(self, path: str | os.PathLike, *, name: str | None = None) -> VideoRun:
        """Open ``path`` for analysis; raises :class:`~ferhub.videoio.VideoDecodeError` when it is not a
        readable video (:class:`~ferhub.videoio.NotAVideoError` for a still picture). ``name``: what the
        results call the video instead of ``path`` (an upload by its own file name, not a server path)."""
        return VideoRun(self, path, name)


def frame_texts(faces: Sequence[VideoFace]) -> list[str]:
    """The tag drawn on each face: ``#id label pct`` from the smoothed probabilities of the first model."""
    return [f"#{f.track_id} {f.smoothed_label} {float(f.smoothed[0].max()):.0%}" for f in faces]


def draw_frame(result: VideoFrameResult) -> Image.Image:
    """The frame with each face boxed and tagged with its track id and smoothed label."""
    from ferhub.drawing import draw_boxes, label_color

    assert result.image is not None
    boxes = [f.face.box for f in result.faces]
    colors = [label_color(f.smoothed_label) for f in result.faces]
    return draw_boxes(result.image, boxes, frame_texts(result.faces), colors)
