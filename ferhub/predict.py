"""The one inference path: decode -> detect faces once -> crop per model -> batched forward -> typed results.

The CLI, the app, evaluation and the benchmarks all go through :class:`Predictor`; nobody re-implements a
piece of it.

>>> p = Predictor()                                           # doctest: +SKIP
>>> [f.label for f in p.predict_image("photo.jpg").faces]     # doctest: +SKIP
['happy']
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch import nn

from ferhub.config import ModelConfig
from ferhub.faces import Face, FaceDetector, crop_face, reading_order, whole_image_face
from ferhub.images import ImageDecodeError, load_image
from ferhub.transforms import eval_tensor

ImageSource = str | os.PathLike | bytes | Image.Image | np.ndarray
ModelSpec = str | nn.Module
NoFacePolicy = Literal["skip", "fallback"]


@dataclass
class Prediction:
    """One model's verdict on one face: the top label and every class probability (model label order)."""

    model: str
    label: str
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "label": self.label, "probabilities": dict(self.probabilities)}


@dataclass
class FaceResult:
    """A detected face and the predictions of every model for it."""

    face: Face
    predictions: list[Prediction]

    @property
    def label(self) -> str:
        """The first model's label (the one the CLI and app show by default)."""
        return self.predictions[0].label

    @property
    def probabilities(self) -> dict[str, float]:
        return self.predictions[0].probabilities

    def to_dict(self) -> dict[str, Any]:
        d = self.face.to_dict()
        d["label"] = self.label
        d["probabilities"] = dict(self.probabilities)
        if len(self.predictions) > 1:
            d["predictions"] = [p.to_dict() for p in self.predictions]
        return d


@dataclass
class ImageResult:
    """Everything ferhub found in one image; ``error`` is set (and ``faces`` empty) when it failed."""

    path: str | None
    width: int | None = None
    height: int | None = None
    faces: list[FaceResult] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "faces": [{"face": i, **f.to_dict()} for i, f in enumerate(self.faces, 1)],
            "error": self.error,
        }


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _source_name(src: ImageSource) -> str | None:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    return getattr(src, "filename", None) or None


def _geometry_key(config: ModelConfig) -> tuple:
    """Models whose crops would be pixel-identical share one crop per face."""
    return (
        config.crop_margin,
        config.crop_square,
        config.align,
        config.input_size,
        config.channels,
        config.interpolation,
    )


def inference_copy(model: nn.Module) -> nn.Module:
    """A private, gradient-free, channels-last copy of ``model`` for inference.

    Channels-last makes oneDNN's convolutions and pooling 2-3x faster (mini-Xception at batch 64: ~540 -> ~1380
    crops/s on 2 CPU cores) with unchanged outputs. It is never applied to a module others hold: oneDNN's
    channels-last depthwise-conv *backward* on AVX-512 CPUs corrupts the heap at batch 1, so a shared module
    converted in place would crash whoever later trains or explains it.
    """
    runner = copy.deepcopy(model).eval().requires_grad_(False)
    return runner.to(memory_format=torch.channels_last)


class Predictor:
    """Load one or several models once; classify every face of any number of images.

    Args:
        models: a model id (bundled name, Hub ``org/name[@rev]`` or local folder), a loaded model (with
            ``.config``), or a list of those. Defaults to the bundled FER2013 mini-Xception.
        device: ``"cpu"``, ``"cuda"`` (or ``"cuda:N"``); default CUDA when available.
        detector: a configured :class:`FaceDetector`; one is made on ``device`` when omitted.
        no_face: ``"skip"`` returns no faces for a photo without one; ``"fallback"`` classifies the whole
            image as one face flagged ``face_found=False`` (seed 004).
        batch_size: crops per forward pass.
    """

    def __init__(
        self,
        models: ModelSpec | Sequence[ModelSpec] | None = None,
        *,
        device: str | None = None,
        detector: FaceDetector | None = None,
        no_face: NoFacePolicy = "skip",
        batch_size: int = 64,
    ) -> None:
        from ferhub.hub import DEFAULT_MODEL, load

        if no_face not in ("skip", "fallback"):
            raise ValueError(f"no_face must be 'skip' or 'fallback', got {no_face!r}")
        self.device = torch.device(device or default_device())
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA GPU; use --device cpu")
        specs: list[ModelSpec]
        if models is None:
            specs = [DEFAULT_MODEL]
        elif isinstance(models, (str, nn.Module)):
            specs = [models]
        else:
            specs = list(models)
        if not specs:
            raise ValueError("Predictor needs at least one model")
        # ``models`` are the loaded modules as callers share them (the hub cache, saliency): never mutated.
        # ``_runners`` are this predictor's private inference copies.
        self.models: list[nn.Module] = []
        self._runners: list[nn.Module] = []
        self.names: list[str] = []
        for spec in specs:
            if isinstance(spec, str):
                model = load(spec, device=str(self.device))
                name = spec
            else:
                if not isinstance(getattr(spec, "config", None), ModelConfig):
                    raise TypeError(
                        "a model passed to Predictor needs a ModelConfig as .config (see create_model)"
                    )
                model = spec.to(self.device).eval()
                name = getattr(spec, "name_or_path", None) or spec.config.architecture
            self.models.append(model)
            self._runners.append(inference_copy(model))
            self.names.append(name)
        self.no_face: NoFacePolicy = no_face
        self.batch_size = batch_size
        self._detector = detector

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:  # made on first use: crop-only callers never pay for MTCNN
            self._detector = FaceDetector(device=str(self.device))
        return self._detector

    # -- classification of given faces / crops ------------------------------------------------------------
    def _forward(self, model: nn.Module, crops: Sequence[Image.Image]) -> np.ndarray:
        config: ModelConfig = model.config
        out = np.empty((len(crops), config.num_classes), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                batch = eval_tensor(crops[start : start + self.batch_size], config)
                batch = batch.to(self.device, memory_format=torch.channels_last)
                logits = model(batch)
                out[start : start + len(batch)] = torch.softmax(logits.float(), dim=1).cpu().numpy()
        return out

    def _probabilities(
        self, model: nn.Module, crops_for: Callable[[ModelConfig], list[Image.Image]]
    ) -> np.ndarray:
        members = getattr(model, "members", None)
        if members is not None:  # an ensemble: each member sees crops framed its own way
            return model.combine([self._probabilities(m, crops_for) for m in members])
        return self._forward(model, crops_for(model.config))

    def _classify(
        self, crops_for: Callable[[ModelConfig], list[Image.Image]], count: int
    ) -> list[np.ndarray]:
        if count == 0:
            return [np.empty((0, m.config.num_classes), dtype=np.float32) for m in self.models]
        cache: dict[tuple, list[Image.Image]] = {}

        def cached(config: ModelConfig) -> list[Image.Image]:
            key = _geometry_key(config)
            if key not in cache:
                cache[key] = crops_for(config)
            return cache[key]

        return [self._probabilities(m, cached) for m in self._runners]

    def classify_crops(self, crops: Sequence[Image.Image]) -> list[np.ndarray]:
        """Probabilities for already-cropped faces: one ``(N, K)`` array per model (its label order)."""
        crops = list(crops)
        return self._classify(lambda _config: crops, len(crops))

    def classify_faces(
        self,
        image: Image.Image,
        faces: Sequence[Face],
        views: Callable[[Image.Image], list[Image.Image]] | None = None,
    ) -> list[np.ndarray]:
        """Probabilities for given faces of one image, each model cropping them with its own geometry.

        ``views`` turns each crop into several (test-time augmentation, :func:`ferhub.transforms.tta_views`):
        the rows are then each face's views in order, face after face.
        """
        faces = list(faces)
        if views is None:
            return self._classify(lambda config: [crop_face(image, f, config) for f in faces], len(faces))
        return self._classify(
            lambda config: [v for f in faces for v in views(crop_face(image, f, config))], len(faces)
        )

    def classify_many(self, items: Sequence[tuple[Image.Image, Face]]) -> list[np.ndarray]:
        """Probabilities for faces of several images in one forward per model (video frames, photo batches):
        ``items`` are ``(image, face)`` pairs; one ``(N, K)`` array per model."""
        items = list(items)
        return self._classify(lambda config: [crop_face(im, f, config) for im, f in items], len(items))

    # -- whole images -------------------------------------------------------------------------------------
    def _faces_of(self, image: Image.Image) -> list[Face]:
        faces = self.detector.detect(image)
        faces = [faces[i] for i in reading_order([f.box for f in faces])]  # numbered left to right everywhere
        if not faces and self.no_face == "fallback":
            faces = [whole_image_face(image)]
        return faces

    def _results(self, faces: list[Face], probs: list[np.ndarray], offset: int = 0) -> list[FaceResult]:
        results = []
        for i, face in enumerate(faces):
            preds = []
            for model, name, p in zip(self.models, self.names, probs):
                row = p[offset + i]
                labels = model.config.labels
                preds.append(
                    Prediction(name, labels[int(row.argmax())], {k: float(v) for k, v in zip(labels, row)})
                )
            results.append(FaceResult(face, preds))
        return results

    def predict_image(self, src: ImageSource) -> ImageResult:
        """Detect and classify every face of one image; errors are returned in the result, not raised."""
        return self.predict([src])[0]

    def predict(self, images: Sequence[ImageSource]) -> list[ImageResult]:
        """Classify every face of every image, batching all faces through each model at once.

        A failure in one image (undecodable, too large, detector error) becomes that image's ``error`` and
        never loses the other images' results.
        """
        results: list[ImageResult] = []
        decoded: list[tuple[int, Image.Image, list[Face]]] = []
        for src in images:
            result = ImageResult(path=_source_name(src))
            results.append(result)
            try:
                image = load_image(src)
                result.width, result.height = image.size
                decoded.append((len(results) - 1, image, self._faces_of(image)))
            except ImageDecodeError as e:
                result.error = str(e)
            except Exception as e:  # one bad image must not lose the batch
                result.error = f"{type(e).__name__}: {e}"

        # one forward per model over the faces of all images
        flat = [(image, face) for _, image, faces in decoded for face in faces]
        try:
            probs = self._classify(lambda config: [crop_face(im, f, config) for im, f in flat], len(flat))
        except Exception:  # fall back to per image so one bad crop fails only its image
            probs = None
        offset = 0
        for index, image, faces in decoded:
            if probs is not None:
                results[index].faces = self._results(faces, probs, offset)
                offset += len(faces)
                continue
            try:
                results[index].faces = self._results(faces, self.classify_faces(image, faces))
            except Exception as e:
                results[index].error = f"{type(e).__name__}: {e}"
        return results


def iter_image_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand directories (recursively) into image files; files named explicitly are kept as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".jfif"}
)
