"""Face detection (MTCNN: box, score, 5 landmarks), eye alignment and cropping with a model's geometry.

>>> detector = FaceDetector()                                    # doctest: +SKIP
>>> faces = detector.detect(load_image("photo.jpg"))             # doctest: +SKIP
>>> crop = crop_face(image, faces[0], model.config)              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from ferhub.config import ModelConfig
from ferhub.device import device_name
from ferhub.errors import DetectorSettingError, WrongTypeError
from ferhub.images import load_image, pixel_limit, upright_rgb

if TYPE_CHECKING:
    from ferhub._mtcnn import FastMTCNN
    from ferhub._mtcnn_onnx import OnnxMTCNN

log = logging.getLogger(__name__)

Point = tuple[float, float]
# the smallest max_side a detector (and a video's decoder) works at: below it, frames hold no findable face
MIN_MAX_SIDE = 64
# what the detector accepts: the inputs of ferhub.images.load_image (Predictor.predict_image takes the same)
# what an image may be given as, everywhere in ferhub (``ferhub.predict`` re-exports it)
ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray


@dataclass
class Face:
    """One face in original-image pixels.

    ``landmarks`` are (left eye, right eye, nose, mouth left, mouth right) as seen in the image (the "left
    eye" is the one nearer the image's left edge). ``face_found=False`` marks the whole-image fallback of seed
    004.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[Point, Point, Point, Point, Point] | None = None
    face_found: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 5),
            "landmarks": None
            if self.landmarks is None
            else [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "face_found": self.face_found,
        }


def as_faces(faces: Sequence[Any], where: str) -> list[Face]:
    """``faces`` as :class:`Face` objects: each a ``Face``, or a result holding one as ``.face`` (the
    ``FaceResult`` objects of ``Predictor.predict_image(...).faces``, taken for their faces); anything else is
    a ``TypeError`` of ``where`` (the function given them) saying what to pass."""
    out = []
    for f in faces:
        # duck-typed: another detector's face objects (and a Face class reloaded in a notebook) have a box too
        face = f if isinstance(f, Face) or not hasattr(f, "face") else f.face
        if not hasattr(face, "box"):
            raise WrongTypeError(
                f"{where} takes faces (ferhub.faces.Face, as FaceDetector.detect gives them, or the"
                f" FaceResult objects of predict_image(...).faces), got {type(f).__name__}; a box is"
                " Face(box=(x1, y1, x2, y2), score=1.0)"
            )
        out.append(face)
    return out


def whole_image_face(image: Image.Image) -> Face:
    """The seed-004 fallback: the whole image as one face, flagged ``face_found=False`` (score 0)."""
    return Face(
        box=(0.0, 0.0, float(image.width), float(image.height)), score=0.0, landmarks=None, face_found=False
    )


def reading_order(boxes: Sequence[tuple[float, float, float, float]]) -> list[int]:
    """Indices of ``boxes`` left to right, then top to bottom: faces whose centres fall inside the horizontal
    extent of the column's first face are one column, read downwards. The order faces are numbered in."""
    order = sorted(range(len(boxes)), key=lambda i: ((boxes[i][0] + boxes[i][2]) / 2, boxes[i][1]))
    out: list[int] = []
    while order:
        head = boxes[order[0]]
        column = [i for i in order if (boxes[i][0] + boxes[i][2]) / 2 <= head[2]]
        column.sort(key=lambda i: ((boxes[i][1] + boxes[i][3]) / 2, boxes[i][0]))
        out += column
        order = [i for i in order if i not in column]
    return out


def _is_real(value: Any) -> bool:
    """A real number (int or float, numpy's too), not a bool (an int to Python, never meant as a size)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    """An int (numpy's too), not a bool (an int to Python, but never meant as a count)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


class FaceDetector:
    """MTCNN face detector (facenet-pytorch's P/R/O nets) returning :class:`Face` objects in original pixels.

    Args:
        min_face_size: where MTCNN's image pyramid starts, in original-image pixels: its first level scales
            the image so that a face this size fills P-net's 12 px window, and the later levels look for
            larger faces. It is not a size filter: a face somewhat smaller (often down to about half of it)
            can still be found, and no face is dropped for its size (to ignore small faces, filter the boxes).
            The first level is at most 4x the image P-net sees (:data:`ferhub._mtcnn_onnx.MAX_UPSCALE`):
            a smaller value searches from 3 px of that image, which bounds the work (P-net's time and memory
            grow with ``(12 / min_face_size)^2``: 1 px on a 640x480 photo asked for a 7680x5760 level, GBs).
            ``None`` (default): 1/16 of the shorter side of the image P-net sees, within [12, 40] px
            (:func:`ferhub._mtcnn.auto_min_face_size`): a 640x480 photo is searched from 30 px, a 1024 px one
            from 40 px, and a 25x25 face crop at full resolution (12 px, P-net's window; R-/O-net inputs are
            then upsampled from it).
        thresholds: P-, R- and O-net score thresholds (MTCNN's defaults).
        max_side: large images are detected on a copy downscaled so its longer side is at most this (at least
            :data:`MIN_MAX_SIDE`); boxes and landmarks are mapped back to original pixels.
        device: ``"cpu"``, ``"cuda"`` (``"cuda:N"``) or ``None`` (CPU); one torch cannot use here raises
            :class:`~ferhub.errors.DeviceError` (:func:`ferhub.device.device_name`, as the Predictor checks).
        runtime: ``"auto"`` (default): the nets run in ONNX Runtime on the CPU where it is installed
            (:mod:`ferhub._mtcnn_onnx`), in torch on CUDA, or when ONNX Runtime is missing or the nets do not
            export (with a log line); ``"onnx"`` or ``"torch"`` to insist on one.
        batch_images: :meth:`detect_batch` runs each net once over all its images of one size (the frames of
            a video) instead of image by image; same results. ``None`` (default): on CUDA, where per-image
            calls leave the GPU mostly idle (on the CPU batching gains nothing and costs memory). Torch
            runtime
            only.
    """

    def __init__(
        self,
        min_face_size: float | None = None,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        max_side: int = 1024,
        device: str | None = None,
        runtime: str = "auto",
        batch_images: bool | None = None,
    ) -> None:
        from ferhub.predict import resolve_runtime

        # each checked for its type too: a string or None failed at a comparison with Python's bare
        # TypeError (a NaN max_side at int()), which ``except FerhubError`` missed; written as not (ok), so
        # that NaN, for which every comparison is false, is refused too
        scores = (
            [] if isinstance(thresholds, (str, bytes)) or not hasattr(thresholds, "__len__") else thresholds
        )
        if len(scores) != 3 or not all(_is_real(t) and 0 <= t <= 1 for t in scores):
            raise DetectorSettingError(
                f"thresholds must be three scores in [0, 1] (P, R, O nets), got {thresholds!r}"
            )
        if min_face_size is not None and not (_is_real(min_face_size) and 0 < min_face_size < math.inf):
            raise DetectorSettingError(
                f"min_face_size must be a positive number of pixels or None, got {min_face_size!r}"
            )
        if not (_is_real(max_side) and MIN_MAX_SIDE <= max_side < math.inf):
            raise DetectorSettingError(f"max_side must be at least {MIN_MAX_SIDE} pixels, got {max_side!r}")
        self.min_face_size = min_face_size
        self.thresholds = tuple(float(t) for t in thresholds)
        self.max_side = int(max_side)
        # checked here, as the Predictor checks its device: a DeviceError, not torch's own error from the
        # first net moved to a device torch cannot use
        self.device = "cpu" if device is None else device_name(device)
        on_cuda = str(self.device).partition(":")[0] == "cuda"  # read without importing torch
        self.batch_images = on_cuda if batch_images is None else batch_images
        self.runtime = resolve_runtime(runtime, str(self.device), DetectorSettingError)  # type: ignore[arg-type]
        self._mtcnn: FastMTCNN | OnnxMTCNN
        if self.runtime == "onnx":
            from ferhub import _onnx
            from ferhub._mtcnn_onnx import OnnxMTCNN

            try:
                self._mtcnn = OnnxMTCNN(thresholds=self.thresholds)  # type: ignore[arg-type]
                return
            except _onnx.ExportError as e:
                if runtime == "onnx":
                    raise
                log.warning("face detection runs in torch instead of ONNX Runtime: %s", e)
                self.runtime = "torch"
        from ferhub._mtcnn import FastMTCNN

        self._mtcnn = FastMTCNN(thresholds=self.thresholds, device=self.device)

    def detect(self, image: ImageSource) -> list[Face]:
        """Every face in ``image``, highest score first, in its upright pixels: a PIL image with an EXIF
        orientation is turned upright first, as :meth:`~ferhub.predict.Predictor.classify_faces` turns it
        (so its boxes crop the same face there), any mode read as RGB; a path, encoded bytes or numpy array is
        decoded as :func:`ferhub.images.load_image` does (a bad input raises its
        :class:`~ferhub.errors.ImageDecodeError`)."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[ImageSource]) -> list[list[Face]]:
        """Faces of each image (see :meth:`detect`); images may differ in size (see ``batch_images``)."""
        images = [_as_image(im) for im in images]
        if not (self.batch_images and self.runtime == "torch"):
            return [self._detect_one(im) for im in images]
        rgb = [im if im.mode == "RGB" else im.convert("RGB") for im in images]
        found = self._mtcnn.detect_batch(  # type: ignore[union-attr]  (torch runtime: FastMTCNN)
            rgb, min_face_size=self.min_face_size, max_side=self.max_side
        )
        return [self._faces(*f) for f in found]

    def _detect_one(self, image: Image.Image) -> list[Face]:
        if image.mode != "RGB":
            image = image.convert("RGB")
        boxes, scores, points = self._mtcnn.detect(
            image, min_face_size=self.min_face_size, max_side=self.max_side
        )
        return self._faces(boxes, scores, points)

    @staticmethod
    def _faces(boxes: Any, scores: Any, points: Any) -> list[Face]:
        """MTCNN's arrays as :class:`Face` objects, highest score first."""
        faces = [
            Face(
                box=tuple(float(v) for v in b),  # type: ignore[arg-type]
                score=float(s),
                landmarks=tuple((float(x), float(y)) for x, y in p),  # type: ignore[arg-type]
            )
            for b, s, p in zip(boxes, scores, points)
        ]
        return sorted(faces, key=lambda f: -f.score)


def _as_image(src: ImageSource) -> Image.Image:
    """``src`` read as the Predictor reads it, so the faces found here are in the pixels its
    ``classify_faces`` crops: a PIL image upright (its EXIF orientation applied, other modes made RGB) through
    :func:`~ferhub.images.upright_rgb`, which hands an image needing no change back as it is (no copy: video
    frames and the Predictor's decoded photos come this way), anything else through ferhub's one image loader,
    so paths, bytes and arrays decode as everywhere else. An in-memory image (PIL or numpy) has no pixel limit
    (:func:`~ferhub.images.pixel_limit`)."""
    if isinstance(src, Image.Image):
        return upright_rgb(src, max_pixels=None)
    return load_image(src, max_pixels=pixel_limit(src))


# -- cropping
# ---------------------------------------------------------------------------------------------------
_TRANSFORM_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "area": Image.Resampling.BILINEAR,  # after the box prefilter below, bilinear finishes an area resize
}


def eye_angle(face: Face) -> float:
    """Angle (radians) of the line from the left to the right eye; 0 when level or without landmarks."""
    if face.landmarks is None:
        return 0.0
    (lx, ly), (rx, ry) = face.landmarks[0], face.landmarks[1]
    return math.atan2(ry - ly, rx - lx)


def _edge_padded_region(image: Image.Image, x0: int, y0: int, x1: int, y1: int) -> Image.Image:
    """``image`` cropped to [x0, x1) x [y0, y1), with parts outside the image filled by edge replication (a
    region partly or wholly outside the image on either side: a tracker's box carried past the image's edge,
    or one of a frame of another size)."""
    w, h = image.size
    (cx0, cx1, left, right), (cy0, cy1, top, bottom) = _inside(x0, x1, w), _inside(y0, y1, h)
    inside = image.crop((cx0, cy0, cx1, cy1))
    if not (left or right or top or bottom):
        return inside
    a = np.asarray(inside)
    pad = ((top, bottom), (left, right)) + (((0, 0),) if a.ndim == 3 else ())
    return Image.fromarray(np.pad(a, pad, mode="edge"), inside.mode)


def _inside(lo: int, hi: int, n: int) -> tuple[int, int, int, int]:
    """For the range [lo, hi) along an image side of ``n`` pixels: the part inside the image ``(start, end)``
    and the pixels to add before and after it (never negative). A range wholly outside gets the nearest edge
    line, repeated over its whole length (``np.pad`` with a negative width raised instead)."""
    hi = max(hi, lo + 1)
    start, end = max(lo, 0), min(hi, n)
    if start < end:
        return start, end, start - lo, hi - end
    edge = 0 if hi <= 0 else n - 1  # wholly before the image, or wholly after it
    return edge, edge + 1, 0, hi - lo - 1


# Where the five MTCNN landmarks (left eye, right eye, nose, mouth left, mouth right) sit in an aligned face
# square, as fractions of its side: the 112 px reference template of ArcFace / InsightFace (Deng et al. 2019),
# the usual target of a 5-point similarity alignment. crop_margin then adds room on every side as for a box.
SIMILARITY_TEMPLATE: tuple[Point, ...] = tuple(
    (x / 112, y / 112)
    for x, y in (
        (38.2946, 51.6963),
        (73.5318, 51.5014),
        (56.0252, 71.7366),
        (41.5493, 92.3655),
        (70.7299, 92.2041),
    )
)


def similarity_to_template(landmarks: Sequence[Point], size: int, margin: float) -> np.ndarray:
    """The least-squares similarity (rotation, uniform scale, shift) taking the five landmarks onto
    :data:`SIMILARITY_TEMPLATE` in a ``size`` px crop with ``margin``; a 2x3 matrix, image -> crop pixels.

    Solved linearly in ``(a, b, tx, ty)`` with ``x' = a x - b y + tx``, ``y' = b x + a y + ty`` (the same
    optimum as Umeyama's method; a similarity never mirrors).
    """
    src = np.asarray(landmarks, dtype=np.float64)
    dst = (np.asarray(SIMILARITY_TEMPLATE) + margin) / (1 + 2 * margin) * size
    n = len(src)
    rows = np.zeros((2 * n, 4))
    rows[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
    rows[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
    (a, b, tx, ty), *_ = np.linalg.lstsq(rows, dst.reshape(-1), rcond=None)
    return np.array([[a, -b, tx], [b, a, ty]])


def _crop_frame(face: Face, config: ModelConfig) -> tuple[float, float, float, float, float, float]:
    """``(ax, bx, ox, ay, by, oy)``: crop pixel ``(u, v)`` comes from photo point ``(ox + ax u + bx v,
    oy + ay u + by v)``."""
    size = config.input_size
    if config.align == "similarity" and face.landmarks is not None:
        m = similarity_to_template(face.landmarks, size, config.crop_margin)
        inv = np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]
        return (inv[0, 0], inv[0, 1], inv[0, 2], inv[1, 0], inv[1, 1], inv[1, 2])
    x1, y1, x2, y2 = face.box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    if config.crop_square:
        w = h = max(w, h)
    w, h = w * (1 + 2 * config.crop_margin), h * (1 + 2 * config.crop_margin)
    theta = eye_angle(face) if config.align else 0.0
    cos, sin = math.cos(theta), math.sin(theta)
    # output (u, v) in [0, size)^2 -> source: centre + (u/size - 1/2) w * ex + (v/size - 1/2) h * ey,
    # with ex = (cos, sin) along the eye line and ey = (-sin, cos) perpendicular to it
    ax, ay = w / size * cos, w / size * sin  # source step per output column
    bx, by = -h / size * sin, h / size * cos  # source step per output row
    return ax, bx, cx - (ax + bx) * size / 2, ay, by, cy - (ay + by) * size / 2


def crop_face(image: Image.Image, face: Face, config: ModelConfig) -> Image.Image:
    """The face as the model expects it: ``config.input_size`` square, in the config's channels.

    The box is squared around its centre (``config.crop_square``), grown by ``config.crop_margin`` of its size
    on every side, and, with ``config.align`` and landmarks, rotated about the eye midpoint so the eyes are
    level (equivalently: the crop square keeps the box centre and turns with the eye line). With
    ``config.align == "similarity"`` the five landmarks are instead mapped onto :data:`SIMILARITY_TEMPLATE` by
    a least-squares similarity (seed 000's key-point crop), the margin added around the template's square; a
    face without landmarks (the whole-image fallback) is cropped by its box. Rotation, crop and resize are one
    affine ``Image.transform``, so the pixels are resampled once. Parts of the crop outside the image are
    filled by edge replication rather than black: a hard black border is a strong edge that face datasets'
    crops do not contain, and classifiers (and their saliency maps) react to it.
    """
    mode = "L" if config.channels == 1 else "RGB"
    size = config.input_size
    ax, bx, ox, ay, by, oy = _crop_frame(face, config)
    corners = [(ox + ax * u + bx * v, oy + ay * u + by * v) for u in (0, size) for v in (0, size)]
    # source region the crop reads from, with 2 px room for the interpolation kernel
    rx0 = math.floor(min(c[0] for c in corners)) - 2
    ry0 = math.floor(min(c[1] for c in corners)) - 2
    rx1 = math.ceil(max(c[0] for c in corners)) + 2
    ry1 = math.ceil(max(c[1] for c in corners)) + 2
    region = _edge_padded_region(image, rx0, ry0, rx1, ry1)
    if region.mode != mode:
        region = region.convert(mode)  # after cropping: converting the crop is cheaper than the photo
    # a large face shrunk to a small input aliases under a bilinear/bicubic kernel; an integer box prefilter
    # (Image.reduce, an average over k x k blocks) first brings the scale below 2
    k = int(min(math.hypot(ax, ay), math.hypot(bx, by)))
    if k >= 2 and config.interpolation != "nearest":
        region = region.reduce(k)
    else:
        k = 1
    data = (ax / k, bx / k, (ox - rx0) / k, ay / k, by / k, (oy - ry0) / k)
    return region.transform(
        (size, size), Image.Transform.AFFINE, data, _TRANSFORM_RESAMPLE[config.interpolation]
    )
