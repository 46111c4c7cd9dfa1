"""Webcam tab: the browser camera streamed frame by frame through the video path's tracker and smoothing,
with a "record timeline" toggle that plots the live session like a video's timeline."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from ferhub.errors import not_finite
from ferhub.tracking import FaceTracker, Smoother, appearance
from ferhub.ui import state, visitors

# a recording keeps one small dict per frame (~10 KB with five faces, with its summaries): at the ~30 fps the
# tab reaches (README, "App" under Benchmarks) this is five minutes, ~90 MB; the status says when it stopped
MAX_RECORDED_FRAMES = 9000
# the model picker's least width (px): a bundled or zoo model's name fits, and beside it no other control
# fits a phone's row (390 px)
MODEL_MIN_WIDTH = 300


@dataclass
class WebcamSession:
    """One browser's stream: the tracker (stable face ids), the smoother, fps and an optional recording.

    The same :class:`~ferhub.tracking.FaceTracker`, :class:`~ferhub.tracking.Smoother` and cut detector as
    video files, fed with the frames' arrival times.
    """

    tracker: FaceTracker = field(default_factory=FaceTracker)
    smoother: Smoother = field(default_factory=lambda: Smoother(0.3))
    frame: int = 0
    start: float | None = None
    times: deque = field(default_factory=lambda: deque(maxlen=30))
    last_frame: Image.Image | None = None  # the latest frame as it came, for a snapshot
    faces: dict[int, Any] = field(
        default_factory=dict
    )  # track id -> its latest face, carried between detections
    model: str | None = None
    recording: list[dict[str, Any]] = field(default_factory=list)  # its times from ``recording_start``
    recording_start: float | None = None  # when (on the session's clock) the recording began
    summaries: Any = None  # ferhub.video.TrackSummaries of the recording since the model last changed
    # the recording's parts of earlier models: (model, its frames' end in ``recording``, its track summaries)
    earlier: list[tuple[str, int, list[dict[str, Any]]]] = field(default_factory=list)
    cuts: Any = None  # ferhub.video.ShotCuts: another camera or scene must not inherit the last one's boxes
    size: tuple[int, int] | None = None  # the last frame's (width, height): boxes are in its pixels
    pending: Future | None = None  # a detection started on an earlier frame, running beside the stream
    pending_time: float = 0.0  # that frame's time
    pending_image: Image.Image | None = None  # and the frame itself (the faces' looks are taken of it)
    detected: int = 0  # the number of the frame whose detection was the last one started

    def tick(self, now: float | None = None) -> float:
        """Record a frame's arrival; returns the frames per second over the recent frames."""
        self.times.append(time.perf_counter() if now is None else now)
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


# Faces are detected on every DETECT_EVERY-th frame; every frame classifies the faces where the tracker
# predicts them. Detection is most of a frame's cost, so it runs beside the stream (BACKGROUND): started on
# its frame, its faces join the tracks on the first frame after it has finished, and no frame waits for it
# (on a machine too busy to detect within a frame's time, detections come less often and the tracker carries
# the boxes meanwhile). Detected in line, a detection frame took ~3x as long as the frame after it, so the two
# reached the browser within one paint and about a quarter of the frames were never seen. Without tracks (the
# first frame, after a cut) a frame is detected at once. On a ZeroGPU Space the GPU is lent per request, so
# there detection stays in line.
DETECT_EVERY = 2
BACKGROUND = not state.zerogpu()
_DETECTION = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ferhub-webcam-detect")


@state.gpu
def _classify_frame(
    predictor: Any, image: Image.Image, faces: list[Any] | None
) -> tuple[list[Any], list[np.ndarray]]:
    """Detect (unless ``faces`` are given) and classify through the library's Predictor (every model)."""
    if faces is None:
        faces = predictor.detector.detect(image)
    return faces, predictor.classify_faces(image, faces)


def _join_detection(session: WebcamSession) -> None:
    """The faces of the detection started on an earlier frame join the tracks, at that frame's time, once it
    has finished (a frame never waits for it)."""
    if session.pending is None or not session.pending.done():
        return
    faces, session.pending = session.pending.result(), None
    tracks = session.tracker.update(
        [f.box for f in faces], time=session.pending_time, looks=_looks(session.pending_image, faces)
    )
    session.pending_image = None
    session.faces.update({t.id: f for t, f in zip(tracks, faces)})


def _looks(image: Image.Image | None, faces: Sequence[Any]) -> list[np.ndarray] | None:
    """Each face's look (:func:`ferhub.tracking.appearance`), as the video path gives the tracker: across a
    cut the same face in the same place keeps its id (a flash, the light changing), another person does
    not."""
    return None if image is None else [appearance(image, f.box) for f in faces]


def _faces_now(
    session: WebcamSession, predictor: Any, image: Image.Image, now: float
) -> tuple[list, list, list]:
    """This frame's tracks, their faces, and every model's probabilities for them."""
    from ferhub.video import ShotCuts, _moved

    session.cuts = session.cuts or ShotCuts()
    cut = session.cuts.is_cut(image)  # (called on every frame: it compares each frame with the one before)
    # a frame of another size (a phone turned, another camera picked, the browser's capture mode changed) is
    # a new scene too: the tracks' boxes, the last faces' landmarks and a detection still running are in the
    # old frame's pixels, and carried onto this frame they may lie wholly outside it
    resized = session.size is not None and image.size != session.size
    session.size = image.size
    if cut or resized:  # as in a video: the new scene is detected at once, and only a face still there (the
        session.tracker.cut()  # same place, the same look) keeps its id
        session.pending = session.pending_image = None  # the old scene's detection: its result is dropped
        session.faces = {}
    _join_detection(session)
    carried = session.tracker.predicted(now)
    due = session.frame - session.detected >= DETECT_EVERY
    if not carried or (due and not BACKGROUND):
        session.pending, session.detected = None, session.frame  # one still running is older than this one
        faces, probs = _classify_frame(predictor, image, None)
        tracks = session.tracker.update([f.box for f in faces], time=now, looks=_looks(image, faces))
    else:  # the tracker's predicted boxes, with the last detection's landmarks moved along
        if due and session.pending is None:
            session.pending = _DETECTION.submit(predictor.detector.detect, image)
            session.pending_time, session.pending_image, session.detected = now, image, session.frame
        tracks = [t for t, _ in carried]
        faces, probs = _classify_frame(
            predictor, image, [_moved(session.faces[t.id], box) for t, box in carried]
        )
    session.faces = {t.id: f for t, f in zip(tracks, faces)}
    return tracks, faces, probs


def process_frame(
    frame: Image.Image | np.ndarray | None,
    session: WebcamSession | None,
    model_id: str | None = None,
    record: bool = False,
    start: bool = False,
) -> tuple[Image.Image | None, str, WebcamSession]:
    """One streamed frame -> the frame with face ids and smoothed labels drawn, the fps text, the session.
    ``start``: the first frame of a run of the camera (its page pressed Start): a recording holds nothing of
    the time since the frame before, while the camera was stopped.

    The camera hands over a PIL image and the drawn frame goes back as one: arrays cost a 640x480 copy each
    way, and every millisecond a frame takes here lowers the frame rate.
    """
    from ferhub.drawing import draw_boxes, label_color
    from ferhub.video import TrackSummaries, VideoFace, VideoFrameResult, frame_texts

    session = session if isinstance(session, WebcamSession) else WebcamSession()
    if frame is None:
        return None, "waiting for the camera", session
    fps = session.tick()
    now = time.perf_counter()
    session.start = now if session.start is None else session.start
    elapsed = now - session.start
    image = frame if isinstance(frame, Image.Image) else Image.fromarray(np.asarray(frame))
    image = image if image.mode == "RGB" else image.convert("RGB")
    session.last_frame = image  # never drawn on: draw_boxes draws on a copy
    model_id = visitors.model_name(model_id) or state.default_model()
    # loaded outside the GPU function, and before the session changes: a model that cannot be loaded leaves
    # the session (and its recording) as it was
    predictor = state.cache().predictor([model_id], fast=True)
    if model_id != session.model:
        # other classes: the smoothing starts again; the faces keep their ids (the tracker follows boxes, not
        # classes) and what was recorded stays, each model's part drawn and summed up as its own
        for track in session.tracker.tracks:
            track.smoothed = None
        if session.summaries is not None and session.model is not None:
            session.earlier.append((session.model, len(session.recording), session.summaries.result()))
        session.model, session.summaries = model_id, None
    tracks, faces, probs = _faces_now(session, predictor, image, elapsed)
    failed = [n for n, p in zip(predictor.names, probs) if not np.isfinite(p).all()]
    if failed:  # a label read from NaN is the first class (argmax): the page stops and says why
        raise gr.Error(
            f"model {', '.join(failed)} gave NaN or infinite probabilities for a face; {not_finite()}. Pick"
            " another model.",
            title="Model failed",
        )
    session.frame += 1
    labels = [tuple(c.labels) for c in predictor.configs]
    results = []
    for i, (track, face) in enumerate(zip(tracks, faces)):
        raw = [p[i] for p in probs]
        smoothed = session.smoother.update(track, raw, elapsed)
        results.append(VideoFace(track.id, face, True, raw, smoothed, labels, list(predictor.names)))
    if record and len(session.recording) < MAX_RECORDED_FRAMES:
        if session.summaries is None:
            session.summaries = TrackSummaries(list(predictor.names), labels, 1 / 15)
        # the recording's clock starts with it (its timeline from 0, not from the page's first frame)
        session.recording_start = elapsed if session.recording_start is None else session.recording_start
        at = elapsed - session.recording_start
        # the first frame after the camera was stopped: the time stopped is none on screen, and the
        # timeline's lines break there (ferhub.timeline.collect)
        restarted = start and bool(session.recording)
        session.summaries.add(at, results, jump=restarted)
        recorded = VideoFrameResult(session.frame, at, results).to_dict()
        session.recording.append({**recorded, "restarted": True} if restarted else recorded)
    texts = frame_texts(results)
    colors = [label_color(f.smoothed_label) for f in results]
    annotated = draw_boxes(image, [f.face.box for f in results], texts, colors)
    count = "1 face" if len(results) == 1 else f"{len(results)} faces"
    rec = ""
    if record and len(session.recording) < MAX_RECORDED_FRAMES:
        rec = f" · recording {len(session.recording)} frames"
    elif record:
        seconds = MAX_RECORDED_FRAMES / 30
        span = f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:.0f} seconds"
        rec = (
            f" · recording stopped at {len(session.recording)} frames:"
            f" the limit is {MAX_RECORDED_FRAMES} (~{span} at 30 fps)"
        )
    return annotated, f"{fps:.1f} fps · {count}{rec}", session


@visitors.action("webcam_timeline", retry="Try again.")
def timeline(session: WebcamSession | str | None) -> tuple[Any, list[list[Any]]]:
    """The recorded session (or the id of a page's, :mod:`ferhub.ui.live`) as the Video tab shows a video: the
    timeline figure and the summary table."""
    from ferhub import timeline as tl

    session = _session(session)
    if session is None or not session.recording:
        raise gr.Error(
            "Nothing recorded yet: tick 'Record timeline' while the camera runs.", title="No timeline"
        )
    state.heavy_imports()
    parts = [*session.earlier]
    if session.summaries is not None:
        parts.append((session.model or "model", len(session.recording), session.summaries.result()))
    frames: list[dict[str, Any]] = []
    rows = []
    start = 0
    for model, end, tracks in parts:
        # each frame's faces named with the model of their part, so one pass draws every part (a model
        # picked again continues its own lines)
        frames += [_named(frame, model) for frame in session.recording[start:end]]
        start = end
        for row in tl.summary_rows(tracks):
            # recorded with several models: which one each row sums up (a face has a row per part)
            rows.append([f"{row[0]} · {model}", *row[1:]] if len(parts) > 1 else row)
    return tl.figure(tl.collect(frames), title="Webcam session"), rows


def _named(frame: dict[str, Any], model: str) -> dict[str, Any]:
    """A recorded frame whose faces say which model classified them (one model's frames do not)."""
    faces = [
        f if f.get("predictions") else {**f, "predictions": [{**f, "model": model}]} for f in frame["faces"]
    ]
    return {**frame, "faces": faces}


def clear_recording(session: WebcamSession | None, record: bool) -> WebcamSession | None:
    """Starting a new recording forgets the previous one."""
    if isinstance(session, WebcamSession) and record:
        session.recording, session.summaries, session.earlier = [], None, []
        session.recording_start = None
    return session


def stopped_status(session: WebcamSession | None) -> str:
    """What the page's status says once its camera is stopped: no rate or faces, which are no longer live,
    and what was recorded."""
    frames = len(session.recording) if session is not None else 0
    if not frames:
        return "stopped"
    return f"stopped · {frames} frames recorded: Plot timeline draws them"


@visitors.action("snapshot", retry="Try again.")  # one toast, one log line, no server paths
def snapshot(session: WebcamSession | str | None) -> tuple[Any, Any]:
    """Send the latest raw frame (of ``session``, or of a page's by its id) to the Classify tab and switch to
    it."""
    session = _session(session)
    if session is None or session.last_frame is None:
        raise gr.Error("No frame yet: start the camera first.", title="No snapshot")
    # named by when it was taken: Classify names its download after the photo's file (``webcam-snapshot-
    # 20261205-143005.ferhub.json``), where the cache file's random 32 digits came first
    name = time.strftime("webcam-snapshot-%Y%m%d-%H%M%S")
    path = state.save_image(session.last_frame, name, lossless=True, named=True)
    return path, gr.Tabs(selected="classify")


def _session(session: WebcamSession | str | None) -> WebcamSession | None:
    """The session itself, or the one of a page's id; an id the server never gave (or has dropped) is the
    same message the frame route gives."""
    from ferhub.ui import live

    if isinstance(session, WebcamSession) or not session:
        return session or None
    return live.session_of(session)


PAGE = """
<div class="fh-live" data-session="${value}">
  <div class="fh-live-views">
    <figure><figcaption>Camera</figcaption>
      <video class="fh-live-video" id="webcam-input" autoplay muted playsinline></video></figure>
    <figure><figcaption>Live</figcaption>
      <canvas class="fh-live-output" id="webcam-output" width="640" height="480" role="img"
        aria-label="Live camera with each face boxed and labelled"></canvas></figure>
  </div>
  <div class="fh-live-bar">
    <button class="fh-live-button" id="webcam-start">Start</button>
    <span class="fh-live-status" id="webcam-fps">Start streams your camera through the model.</span>
    <span class="fh-live-alert" role="alert"></span>
  </div>
</div>
"""
PAGE_CSS = """
.fh-live-views { display: flex; flex-wrap: wrap; gap: 12px; }
.fh-live-views figure { flex: 1; min-width: 240px; margin: 0; }
.fh-live-views figcaption { font-size: 13px; opacity: 0.8; margin-bottom: 4px; }
.fh-live-video, .fh-live-output { width: 100%; aspect-ratio: 4 / 3; background: #1f2937; border-radius: 6px; }
.fh-live-video { transform: scaleX(-1); object-fit: contain; }
.fh-live-bar { display: flex; align-items: center; gap: 12px; margin-top: 8px; }
.fh-live-button { padding: 6px 18px; border-radius: 6px; border: none; cursor: pointer; font-weight: 600;
  background: var(--button-primary-background-fill, #f97316);
  color: var(--button-primary-text-color, white); }
.fh-live-status { font-variant-numeric: tabular-nums; }
.fh-live-error { color: #dc2626; }
/* errors again, for screen readers only: the status line itself changes every frame (rate, faces) */
.fh-live-alert { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
"""


def build(models: list[str], classify_image: gr.Image, tabs: gr.Tabs, demo: gr.Blocks) -> Any:
    """Lay out the Webcam tab; the snapshot button fills ``classify_image`` and selects the Classify tab.
    Returns the snapshot event (the app classifies the snapshot after it).

    The camera's frames go over :mod:`ferhub.ui.live`'s route, not through Gradio's events. Each page load
    gives the tab's ``gr.HTML`` a new session id as its value (empty until then: the page does not stream
    without one), which the tab's Gradio events pass on."""
    from pathlib import Path

    from ferhub import timeline as tl
    from ferhub.ui import live

    live.SESSIONS.default_model = models[0]
    page = gr.HTML(
        "",
        html_template=PAGE,
        css_template=PAGE_CSS,
        js_on_load=Path(__file__).with_name("webcam.js").read_text(encoding="utf-8"),
        elem_id="webcam-live",
        container=False,
    )
    demo.load(live.new_id, None, page, api_name="webcam_session", show_progress="hidden")
    with gr.Row():
        # wide enough for a model's name: on a phone it takes a row of its own (beside the checkbox it was
        # ~140 px, "ferhub/fer-mini-xc" under the arrow); on a desktop all four still share one row. The
        # checkbox has a column of its own: in the dropdown's box (Gradio groups neighbouring inputs in one)
        # it was pushed out of sight instead of onto the next line
        model = gr.Dropdown(
            models,
            value=models[0],
            allow_custom_value=True,
            label="Model",
            elem_id="webcam-model",
            min_width=MODEL_MIN_WIDTH,
        )
        with gr.Column(min_width=160):
            record = gr.Checkbox(False, label="Record timeline", elem_id="webcam-record")
        snap = gr.Button("Snapshot to Classify", elem_id="webcam-snapshot")
        show = gr.Button("Plot timeline", elem_id="webcam-timeline")
    plot = gr.Plot(label="Timeline of the recorded session", elem_id="webcam-timeline-plot")
    table = gr.Dataframe(headers=tl.SUMMARY_HEADER, label="Per person", interactive=False)
    model.change(
        live.set_model,
        [page, model],
        None,
        api_name="webcam_model",
        show_progress="hidden",
        concurrency_id="webcam_model",  # its own group: other events' work never holds a pick up
        concurrency_limit=live.MODEL_PICKS,
    )
    record.change(live.set_record, [page, record], None, api_name="webcam_record", show_progress="hidden")
    show.click(timeline, page, [plot, table], api_name="webcam_timeline")
    return snap.click(snapshot, page, [classify_image, tabs], api_name="snapshot")
