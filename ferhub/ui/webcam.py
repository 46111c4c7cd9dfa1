"""Webcam tab: the browser camera streamed frame by frame, faces tracked with EMA-smoothed probabilities."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from ferhub.ui import state

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
    """One face followed across frames: its latest box and its smoothed class probabilities."""

    id: int
    box: Box
    probabilities: np.ndarray
    last_seen: int

    def label(self, labels: tuple[str, ...]) -> str:
        return labels[int(self.probabilities.argmax())]


@dataclass
class FaceTracker:
    """Matches each frame's faces to the previous frame's by box overlap and smooths their probabilities.

    A single frame's prediction flickers between close classes; an exponential moving average over the frames
    of the same face (``alpha`` = weight of the newest frame) keeps the label steady without lagging long.
    Faces not seen for ``max_missing`` frames are forgotten.
    """

    alpha: float = 0.4
    min_iou: float = 0.3
    max_missing: int = 5
    tracks: list[Track] = field(default_factory=list)
    frame: int = 0
    next_id: int = 1
    times: deque = field(default_factory=lambda: deque(maxlen=30))
    last_frame: np.ndarray | None = None
    labels: tuple[str, ...] = ()
    faces: list[Any] = field(default_factory=list)  # the last detection, reused between detections
    model: str | None = None

    def update(self, boxes: list[Box], probabilities: np.ndarray, labels: tuple[str, ...]) -> list[Track]:
        """Feed one frame's detections; returns their tracks in detection order."""
        self.frame += 1
        if labels != self.labels:  # another model (other classes): old averages mean nothing now
            self.tracks, self.labels = [], labels
        pairs = sorted(
            ((iou(box, t.box), i, j) for i, box in enumerate(boxes) for j, t in enumerate(self.tracks)),
            reverse=True,
        )
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, i, j in pairs:  # greedy: best overlaps first, each face and track used once
            if overlap < self.min_iou:
                break
            if i in assigned or j in used:
                continue
            track = self.tracks[j]
            track.box = boxes[i]
            track.probabilities = self.alpha * probabilities[i] + (1 - self.alpha) * track.probabilities
            track.last_seen = self.frame
            assigned[i] = track
            used.add(j)
        for i, box in enumerate(boxes):
            if i not in assigned:
                assigned[i] = Track(self.next_id, box, probabilities[i].astype(np.float64), self.frame)
                self.next_id += 1
                self.tracks.append(assigned[i])
        self.tracks = [t for t in self.tracks if self.frame - t.last_seen <= self.max_missing]
        return [assigned[i] for i in range(len(boxes))]

    def tick(self, now: float | None = None) -> float:
        """Record a frame's arrival; returns the frames per second over the recent frames."""
        self.times.append(time.perf_counter() if now is None else now)
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


# Faces are detected on every DETECT_EVERY-th frame; the frames in between classify the faces found last time
# (their boxes lag one frame, ~60 ms at 15 fps). Detection is most of a frame's cost, so this buys frame rate.
DETECT_EVERY = 2


@state.gpu
def _classify_frame(
    predictor: Any, image: Image.Image, faces: list[Any] | None
) -> tuple[list[Any], np.ndarray, tuple[str, ...]]:
    """Detect (unless ``faces`` are given) and classify through the library's Predictor."""
    labels = predictor.models[0].config.labels
    if faces is None:
        faces = predictor.detector.detect(image)
    if not faces:
        return [], np.zeros((0, len(labels))), labels
    return faces, predictor.classify_faces(image, faces)[0], labels


def process_frame(
    frame: np.ndarray | None, tracker: FaceTracker | None, model_id: str | None = None
) -> tuple[np.ndarray | None, str, FaceTracker]:
    """One streamed frame -> the frame with smoothed labels drawn, the fps text, the updated tracker."""
    from ferhub.drawing import draw_boxes, label_color

    tracker = tracker if isinstance(tracker, FaceTracker) else FaceTracker()
    if frame is None:
        return None, "waiting for the camera", tracker
    fps = tracker.tick()
    tracker.last_frame = frame
    image = Image.fromarray(frame).convert("RGB")
    model_id = (model_id or "").strip() or state.default_model()
    reuse = tracker.faces and tracker.model == model_id and tracker.frame % DETECT_EVERY != 0
    predictor = state.cache().predictor([model_id], fast=True)  # loaded outside the GPU function
    faces, probs, labels = _classify_frame(predictor, image, tracker.faces if reuse else None)
    tracker.faces, tracker.model = faces, model_id
    boxes = [f.box for f in faces]
    tracks = tracker.update(boxes, probs, labels)
    names = [t.label(labels) for t in tracks]
    texts = [f"{name} {t.probabilities.max():.0%}" for name, t in zip(names, tracks)]
    annotated = draw_boxes(image, boxes, texts, [label_color(n) for n in names])
    faces = "1 face" if len(boxes) == 1 else f"{len(boxes)} faces"
    return np.asarray(annotated), f"{fps:.1f} fps · {faces}", tracker


def snapshot(tracker: FaceTracker | None) -> tuple[Any, Any]:
    """Send the latest raw frame to the Classify tab and switch to it."""
    if not isinstance(tracker, FaceTracker) or tracker.last_frame is None:
        raise gr.Error("No frame yet: start the camera first.", title="No snapshot")
    return state.save_image(Image.fromarray(tracker.last_frame), "snapshot", lossless=True), gr.Tabs(
        selected="classify"
    )


def build(models: list[str], classify_image: gr.Image, tabs: gr.Tabs) -> None:
    """Lay out the Webcam tab; the snapshot button fills ``classify_image`` and selects the Classify tab."""
    tracker = gr.State(None)
    with gr.Row():
        with gr.Column():
            camera = gr.Image(
                sources=["webcam"],
                streaming=True,
                type="numpy",
                label="Camera",
                elem_id="webcam-input",
                webcam_options=gr.WebcamOptions(
                    mirror=True, constraints={"video": {"width": 640, "height": 480}}
                ),
            )
            model = gr.Dropdown(models, value=models[0], allow_custom_value=True, label="Model")
        with gr.Column():
            output = gr.Image(
                label="Live", streaming=True, format="jpeg", elem_id="webcam-output", interactive=False
            )
            fps = gr.Textbox(label="Achieved", interactive=False, elem_id="webcam-fps")
            snap = gr.Button("Snapshot to Classify", elem_id="webcam-snapshot")
    camera.stream(
        process_frame,
        [camera, tracker, model],
        [output, fps, tracker],
        api_name="webcam_frame",
        stream_every=0.02,
        time_limit=600,
        concurrency_limit=4,
        show_progress="hidden",
    )
    snap.click(snapshot, tracker, [classify_image, tabs], api_name="snapshot")
