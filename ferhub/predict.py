"""The one inference path: decode -> detect faces once -> crop per model -> batched forward -> typed results.

The CLI, the app, evaluation and the benchmarks all go through :class:`Predictor`; nobody re-implements a
piece of it.

>>> p = Predictor()                                           # doctest: +SKIP
>>> [f.label for f in p.predict_image("photo.jpg").faces]     # doctest: +SKIP
['happy']
"""

from __future__ import annotations

import copy
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np
from PIL import Image

from ferhub.config import ModelConfig, brief
from ferhub.device import cpu_cores, default_device, device_name  # noqa: F401  (default_device: re-exported)
from ferhub.errors import PredictorSettingError, WrongTypeError, is_out_of_memory, is_thread_limit, not_finite
from ferhub.faces import (
    Face,
    FaceDetector,
    ImageSource,
    _is_int,
    as_faces,
    crop_face,
    reading_order,
    whole_image_face,
)
from ferhub.images import ImageDecodeError, image_suffixes, load_image, pixel_limit, upright_rgb
from ferhub.preprocess import at_input_size, eval_array

if TYPE_CHECKING:  # torch is imported where a model is built or run in torch: a warm ONNX start needs neither
    import torch
    from torch import nn

    from ferhub._onnx import OnnxClassifier

log = logging.getLogger(__name__)

ModelSpec = Union[str, os.PathLike, "nn.Module"]
NoFacePolicy = Literal["skip", "fallback"]
Runtime = Literal["auto", "onnx", "torch"]
# a classifier's runner: normalised float32 (N, C, H, W) -> probabilities (N, K); an ensemble has its members'
Runner = Callable[[np.ndarray], np.ndarray]
# what one image is, where a sequence of images is asked for: a str or bytes is a sequence too (of characters,
# of byte values), which predict would otherwise take image by image
_ONE_IMAGE = (str, os.PathLike, bytes, bytearray, memoryview, Image.Image)


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


def _source_name(src: ImageSource) -> str | None:
    if isinstance(src, (str, os.PathLike)):
        return os.fsdecode(src)  # any os.PathLike by its path (str() of one not a pathlib.Path: its repr)
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

    Channels-last makes oneDNN's convolutions and pooling 2-3x faster (mini-Xception at batch 64: ~540 ->
    ~1380 crops/s on 2 CPU cores) with unchanged outputs. It is never applied to a module others hold:
    oneDNN's ``brgconv_strided`` *backward* (1x1 stride-2 convolution, few input channels, NHWC) corrupts the
    heap on AVX-512 CPUs at any batch size, in train or eval mode, whenever the module or the batch is
    channels-last, so a shared module converted in place would crash whoever later trains or explains it
    (batches get the same rule: :func:`ferhub.device.autograd_batch`).
    """
    import torch

    runner = copy.deepcopy(model).eval().requires_grad_(False)
    return runner.to(memory_format=torch.channels_last)


class TorchRunner:
    """A classifier run by torch on a private :func:`inference_copy` on ``device``: batch -> probabilities."""

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.module = inference_copy(model).to(device)  # the copy moves: the caller's module stays put
        self.device = device

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            logits = self.module(x.to(self.device, memory_format=torch.channels_last))
            return torch.softmax(logits.float(), dim=1).cpu().numpy()


def _is_module(x: object) -> bool:
    """Whether ``x`` is a torch module (without importing torch: if it is not imported, ``x`` is none)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.nn.Module)


def resolve_runtime(
    runtime: Runtime, device: str | torch.device, error: type[ValueError] = PredictorSettingError
) -> Literal["onnx", "torch"]:
    """Which runtime runs inference on ``device`` (resolved: ``"cpu"``, ``"cuda:0"``...): ``"auto"`` is ONNX
    Runtime on the CPU where it is installed, else torch. A ``runtime`` that cannot work raises ``error`` (the
    caller's settings error); ``"onnx"`` without ONNX Runtime installed, :class:`MissingExtraError`."""
    from ferhub import _onnx

    if runtime not in ("auto", "onnx", "torch"):
        raise error(f"runtime must be 'auto', 'onnx' or 'torch', got {runtime!r}")
    on_cpu = str(device).partition(":")[0] == "cpu"
    if runtime == "onnx":
        if not on_cpu:
            raise error(f"runtime 'onnx' runs on the CPU; device {str(device)!r} runs in torch")
        if not _onnx.available():  # a dependency of ferhub's: a broken install
            from ferhub._compat import missing_package

            raise missing_package("onnxruntime", None, "runtime 'onnx'")
        return "onnx"
    if runtime == "auto" and on_cpu:
        if _onnx.available():
            return "onnx"
        log.info("onnxruntime is not installed: inference runs in torch (pip install onnxruntime)")
    return "torch"


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
        runtime: ``"auto"`` (default): ONNX Runtime on the CPU (detection nets and classifiers, each an
            exported graph checked against its torch module), torch on CUDA and for any model that does not
            export (with a log line); ``"onnx"`` or ``"torch"`` to insist on one.
        names: what each model's results are reported under; default its id, or a loaded model's
            ``name_or_path`` (callers holding shared cached models pass their own names here rather than
            renaming the modules).

    ``configs`` holds each model's :class:`ModelConfig` (labels, preprocessing); ``models`` the torch modules,
    loaded on first use where a warm start runs a model from its cached ONNX graph alone.
    """

    def __init__(
        self,
        models: ModelSpec | Sequence[ModelSpec] | None = None,
        *,
        device: str | torch.device | None = None,
        detector: FaceDetector | None = None,
        no_face: NoFacePolicy = "skip",
        batch_size: int = 64,
        runtime: Runtime = "auto",
        names: Sequence[str] | None = None,
    ) -> None:
        from ferhub.hub import DEFAULT_MODEL

        if no_face not in ("skip", "fallback"):
            raise PredictorSettingError(f"no_face must be 'skip' or 'fallback', got {no_face!r}")
        self.batch_size = batch_size  # checked first: before any model is loaded
        self._device = device_name(device)
        self._requested_runtime = runtime
        self.runtime = resolve_runtime(runtime, self._device)
        specs: list[str | nn.Module]  # a path is given as its string
        if models is None:
            specs = [DEFAULT_MODEL]
        elif isinstance(models, (str, os.PathLike)) or _is_module(models):  # one model, not its characters
            specs = [os.fspath(models) if isinstance(models, os.PathLike) else models]
        elif hasattr(models, "__iter__"):
            specs = [os.fspath(m) if isinstance(m, os.PathLike) else m for m in models]
        else:
            raise WrongTypeError(
                "models must be a model id (bundled name, Hub id or folder), a loaded model, or a list of"
                f" those; got {type(models).__name__}"
            )
        if not specs:
            raise PredictorSettingError("Predictor needs at least one model; got an empty list")
        if isinstance(names, str):  # one string is no list of names: it was taken letter by letter
            raise WrongTypeError(f"names takes a list of names, one per model; got a string {brief(names)}")
        if names is not None and len(names) != len(specs):
            raise PredictorSettingError(f"Predictor got {len(specs)} models but {len(names)} names")
        # ``models`` are the loaded modules as callers share them (the hub cache, saliency): never mutated;
        # None until first asked for where a warm ONNX start runs the model without them (see _warm_runner).
        # ``_runners`` are this predictor's own: ONNX Runtime sessions or private torch inference copies.
        self._specs = specs
        self._models: list[nn.Module | None] = []
        self.configs: list[ModelConfig] = []
        self._runners: list[Runner | list] = []
        self.names: list[str] = []
        for spec in specs:
            model, config, runner, name = self._prepare(spec)
            self._models.append(model)
            self.configs.append(config)
            self._runners.append(runner)
            self.names.append(name)
        if names is not None:
            self.names = list(names)
        self.no_face: NoFacePolicy = no_face
        self._detector = detector
        self._own_detector = detector is None  # made here on first use, so made again in a copy
        # made once, whatever the threads: a web service's first requests, arriving together, each built a
        # detector (an MTCNN on the GPU with device="cuda"); the models property loads under it too
        self._lazy_lock = threading.Lock()

    @property
    def batch_size(self) -> int:
        """Crops per forward pass: a positive int (checked when set)."""
        return self._batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        # a zero or negative step made _forward skip every batch and return np.empty's uninitialised memory
        # as probabilities; bool is an int to Python but never meant as a size
        if not _is_int(value) or value < 1:
            raise PredictorSettingError(
                f"batch_size must be a positive int (crops per forward pass), got {value!r}"
            )
        self._batch_size = int(value)

    # -- copies and pickles -------------------------------------------------------------------------------
    def __copy__(self) -> Predictor:
        """A shallow copy: the same models, runners and detector (all safe to share between threads)."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __getstate__(self) -> dict[str, Any]:
        """What a deep copy or pickle carries: the models and settings, not the runtime sessions (ONNX
        Runtime's cannot be pickled): :meth:`__setstate__` builds them again, so a copy (one per process, a
        ``spawn`` pool's) works like the original. Refused with :class:`TypeError` for a detector subclass
        given in ONNX Runtime, whose sessions this predictor cannot rebuild."""
        state = self.__dict__.copy()
        state["_runners"] = None
        del state["_lazy_lock"]  # a lock cannot be pickled: __setstate__ makes a new one
        detector = self._detector
        if detector is not None and getattr(detector, "runtime", "torch") == "onnx":
            if not (self._own_detector or type(detector) is FaceDetector):
                raise WrongTypeError(
                    f"this Predictor's detector ({type(detector).__name__}) runs in ONNX Runtime, whose"
                    " sessions cannot be copied or pickled: create a Predictor in each process instead (one"
                    " Predictor is safe to share between threads)"
                )
            # ferhub's own detector: its settings, to be made again (its sessions are not picklable)
            state["_detector"] = None
            state["_detector_settings"] = None if self._own_detector else _detector_settings(detector)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        settings = state.pop("_detector_settings", None)
        self.__dict__.update(state)
        self._lazy_lock = threading.Lock()
        if settings is not None:
            self._detector = FaceDetector(**settings)
        runners = []
        for i, spec in enumerate(self._specs):
            model = self._models[i]
            if model is None:  # run from its cached ONNX graph: start it the same way again
                model, _config, runner, _name = self._prepare(spec)
                self._models[i] = model
            else:
                runner = self._runner(model, self.names[i])
            runners.append(runner)
        self._runners = runners

    def _prepare(self, spec: str | nn.Module) -> tuple[nn.Module | None, ModelConfig, Runner | list, str]:
        """One model: its module (None where a warm start runs it without), config, runner and name."""
        if not isinstance(spec, str):
            if not isinstance(getattr(spec, "config", None), ModelConfig):
                raise WrongTypeError(
                    "a model passed to Predictor needs a ModelConfig as .config (see create_model)"
                )
            # the caller's module is left as it is (its train mode, its device: a training loop may go on
            # with it); this predictor runs private copies on its own device (TorchRunner, OnnxClassifier)
            name = getattr(spec, "name_or_path", None) or spec.config.architecture
            _check_finite(spec, name)
            return spec, spec.config, self._runner(spec, name), name
        folder, warm = self._warm_runner(spec)
        if warm is not None:
            return None, warm.config, warm, spec
        model = self._load(spec)
        runner = self._runner(model, spec)
        if folder is not None:
            from ferhub import _onnx

            if isinstance(runner, _onnx.OnnxClassifier):
                _onnx.remember_repo(folder, model)  # the next start runs it from the cache
        return model, model.config, runner, spec

    @property
    def device(self) -> torch.device:
        """The device models run on (CPU inference runs in ONNX Runtime unless ``runtime="torch"``)."""
        import torch

        return torch.device(self._device)

    @property
    def models(self) -> list[nn.Module]:
        """The loaded modules (``.config``, shared through the hub's cache, never changed by the predictor);
        loaded here on first use where a warm start ran them from their cached ONNX graphs."""
        if any(model is None for model in self._models):
            with self._lazy_lock:  # checked again under the lock: another thread may have loaded them
                for i, model in enumerate(self._models):
                    if model is None:
                        self._models[i] = self._load(self._specs[i])  # type: ignore[arg-type]  (a str spec)
        return self._models  # type: ignore[return-value]

    def _load(self, spec: str) -> nn.Module:
        from ferhub.hub import load

        return load(spec, device=self._device)

    def _warm_runner(self, spec: str) -> tuple[Path | None, OnnxClassifier | None]:
        """For a bundled model or a local folder run in ONNX Runtime: its folder, and its session (an
        :class:`~ferhub._onnx.OnnxClassifier`, which holds the config) straight from the cache when the repo's
        files made a graph that passed its torch check before (:func:`ferhub._onnx.repo_classifier`), without
        importing torch; ``None`` for what does not apply. Hub ids and ensembles load in torch (resolving a
        Hub id may ask the Hub; :func:`load` asks once)."""
        if self.runtime != "onnx":
            return None, None
        from ferhub import _onnx
        from ferhub.hub import ENSEMBLE
        from ferhub.hub._layout import read_config
        from ferhub.hub._repo import local_folder

        folder = local_folder(spec)
        if folder is None:
            return None, None
        config = read_config(folder)
        if config.architecture == ENSEMBLE:  # members have repos of their own
            return None, None
        return folder, _onnx.repo_classifier(folder, config)

    @property
    def detector(self) -> FaceDetector:
        """The face detector: the one given, else ferhub's own, made on first use (crop-only callers never pay
        for MTCNN), once however many threads ask at the same moment."""
        if self._detector is None:
            with self._lazy_lock:  # checked again under the lock: another thread may have made it meanwhile
                if self._detector is None:
                    self._detector = FaceDetector(device=self._device, runtime=self.runtime)
        return self._detector

    def _runner(self, model: nn.Module, name: str) -> Runner | list:
        """This predictor's runner for ``model``; for an ensemble, the list of its members' runners."""
        members = getattr(model, "members", None)
        if members is not None:
            return [
                self._runner(m, f"{name} member {getattr(m, 'name_or_path', i)}")
                for i, m in enumerate(members)
            ]
        if self.runtime == "onnx":
            from ferhub import _onnx

            try:
                return _onnx.OnnxClassifier(model)
            except _onnx.ExportError as e:
                if self._requested_runtime == "onnx":
                    raise
                log.warning("%s runs in torch instead of ONNX Runtime: %s", name, e)
        return TorchRunner(model, self.device)

    # -- classification of given faces / crops ------------------------------------------------------------
    def _forward(self, runner: Runner, config: ModelConfig, crops: Sequence[Image.Image]) -> np.ndarray:
        out = np.empty((len(crops), config.num_classes), dtype=np.float32)
        for start in range(0, len(crops), self.batch_size):
            batch = eval_array(crops[start : start + self.batch_size], config)
            out[start : start + len(batch)] = runner(batch)
        return out

    def _probabilities(
        self,
        model: nn.Module | None,
        config: ModelConfig,
        runner: Runner | list,
        crops_for: Callable[[ModelConfig], list[Image.Image]],
    ) -> np.ndarray:
        if isinstance(runner, list):  # an ensemble (always loaded): each member sees crops framed its own way
            members = model.members  # type: ignore[union-attr]
            parts = [self._probabilities(m, m.config, r, crops_for) for m, r in zip(members, runner)]
            return model.combine(parts)  # type: ignore[union-attr]
        return self._forward(runner, config, crops_for(config))

    def _classify(
        self, crops_for: Callable[[ModelConfig], list[Image.Image]], count: int
    ) -> list[np.ndarray]:
        if count == 0:
            return [np.empty((0, c.num_classes), dtype=np.float32) for c in self.configs]
        cache: dict[tuple, list[Image.Image]] = {}

        def cached(config: ModelConfig) -> list[Image.Image]:
            key = _geometry_key(config)
            if key not in cache:
                cache[key] = crops_for(config)
            return cache[key]

        return [
            self._probabilities(m, c, r, cached) for m, c, r in zip(self._models, self.configs, self._runners)
        ]

    def classify_crops(
        self, crops: Sequence[ImageSource], views: Callable[[Image.Image], list[Image.Image]] | None = None
    ) -> list[np.ndarray]:
        """Probabilities for already-cropped faces: one ``(N, K)`` array per model (its label order).

        A crop is anything :meth:`predict` takes (a PIL image, a path, bytes, a numpy array), decoded the same
        way (EXIF orientation applied; a bad one raises its :class:`~ferhub.errors.ImageDecodeError`).
        ``views``: as for :meth:`classify_faces` (one crop in, its views out: e.g.
        ``functools.partial(tta_views, method="flip")``). Probabilities come as the model computed them: a
        model with non-finite weights or arithmetic gives NaN rows (:meth:`predict` makes them the image's
        error).
        """
        crops = [
            upright_rgb(c, keep_gray=True, max_pixels=pixel_limit(c))
            for c in _many(crops, "classify_crops", "crops")
        ]
        if views is None:
            return self._classify(lambda _config: crops, len(crops))
        return self._classify(
            lambda config: [v for c in crops for v in views(at_input_size(c, config))], len(crops)
        )

    def classify_faces(
        self,
        image: ImageSource,
        faces: Sequence[Face | FaceResult],
        views: Callable[[Image.Image], list[Image.Image]] | None = None,
    ) -> list[np.ndarray]:
        """Probabilities for given faces of one image, each model cropping them with its own geometry.

        ``image`` is decoded as :meth:`predict` decodes it (a PIL image with an EXIF orientation is turned
        upright), so the faces :meth:`predict_image` found in it crop the same pixels here. ``faces`` are
        :class:`Face` objects (:meth:`FaceDetector.detect`'s), or :meth:`predict_image`'s ``.faces``
        (:class:`FaceResult` objects, taken for their ``.face``); anything else is a ``TypeError``.

        ``views`` turns each crop into several (test-time augmentation), taken of the crop at the model's
        input size, as training holds its crops and takes its views (so ``ferhub evaluate --tta`` gives the
        number training recorded): the rows are then each face's views in order, face after face. It is
        called with the crop alone, so :func:`ferhub.transforms.tta_views` is given its method first, with
        ``functools.partial`` or a lambda (``lambda crop: tta_views(crop, "flip")``):

        >>> from functools import partial                                  # doctest: +SKIP
        >>> from ferhub.transforms import tta_views                        # doctest: +SKIP
        >>> flip = partial(tta_views, method="flip")                       # doctest: +SKIP
        >>> probs = predictor.classify_faces(photo, faces, views=flip)[0]  # doctest: +SKIP
        >>> probs.shape  # 2 faces: each one's crop, then its mirror       # doctest: +SKIP
        (4, 7)
        >>> probs.reshape(len(faces), 2, -1).mean(axis=1).shape  # TTA    # doctest: +SKIP
        (2, 7)
        """
        faces = as_faces(faces, "Predictor.classify_faces")  # predict_image(...).faces too, for their faces
        image = upright_rgb(image, max_pixels=pixel_limit(image))
        if views is None:
            return self._classify(lambda config: [crop_face(image, f, config) for f in faces], len(faces))

        def crops(config: ModelConfig) -> list[Image.Image]:
            return [v for f in faces for v in views(at_input_size(crop_face(image, f, config), config))]

        return self._classify(crops, len(faces))

    def classify_many(self, items: Sequence[tuple[ImageSource, Face | FaceResult]]) -> list[np.ndarray]:
        """Probabilities for faces of several images in one forward per model (video frames, photo batches):
        ``items`` are ``(image, face)`` pairs, images decoded and faces taken as in :meth:`classify_faces`;
        one ``(N, K)`` array per model."""
        # each image decoded once, however many of its faces are asked for; the source is held with it, so
        # its id is not reused by another image while this runs (``items`` may be a generator)
        decoded: dict[int, tuple[ImageSource, Image.Image]] = {}
        pairs = []
        for image, face in items:
            (face,) = as_faces([face], "Predictor.classify_many")  # a FaceResult too, for its face
            if id(image) not in decoded:
                decoded[id(image)] = (image, upright_rgb(image, max_pixels=pixel_limit(image)))
            pairs.append((decoded[id(image)][1], face))
        return self._classify(lambda config: [crop_face(im, f, config) for im, f in pairs], len(pairs))

    # -- whole images -------------------------------------------------------------------------------------
    def _faces_of(self, image: Image.Image) -> list[Face]:
        faces = self.detector.detect(image)
        faces = [faces[i] for i in reading_order([f.box for f in faces])]  # numbered left to right everywhere
        if not faces and self.no_face == "fallback":
            faces = [whole_image_face(image)]
        return faces

    def _detect_all(self, images: list[Image.Image]) -> list[list[Face]]:
        """Faces of each image; on ONNX Runtime, several images at once, one per core.

        ONNX Runtime releases the GIL, so images detected side by side keep every core busy through the
        pipeline's single-threaded steps (numpy, the pixel graphs) too: measured on 2 cores, 48 640x480 photos
        took 16.4 ms a photo side by side against 23.0 one at a time with the same sessions (on torch,
        detection stays one image at a time: its own threads already take the cores).
        """
        workers = min(len(images), cpu_cores())
        if getattr(self.detector, "runtime", "torch") != "onnx" or workers < 2:
            return [self._faces_of(image) for image in images]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="ferhub-detect") as pool:
            return list(pool.map(self._faces_of, images))

    @staticmethod
    def _not_finite(probs: list[np.ndarray]) -> list[np.ndarray] | None:
        """Per model, which faces (rows) it gave NaN or infinite probabilities for, ``(N,)`` bool; ``None``
        when every value is finite (the one check the common case pays: one pass over N x K numbers)."""
        bad = [~np.isfinite(p).all(axis=1) for p in probs]
        return bad if any(b.any() for b in bad) else None

    def _not_finite_message(self, bad: list[np.ndarray], item: str) -> str:
        """Which model gave NaN or infinite probabilities for which of the items in ``bad`` (one
        :meth:`_not_finite` array per model, sliced to the items meant), models that did not left out."""
        said = [
            (name, ", ".join(str(i + 1) for i in np.flatnonzero(b)))
            for name, b in zip(self.names, bad)
            if b.any()
        ]
        (name, numbers), *others = said
        text = f"model {name} gave NaN or infinite probabilities for {item} {numbers}"
        text += "".join(f", model {n} for {item} {nums}" for n, nums in others)
        return f"{text}; {not_finite(bool(others))}"

    def _results(self, faces: list[Face], probs: list[np.ndarray], offset: int = 0) -> list[FaceResult]:
        results = []
        for i, face in enumerate(faces):
            preds = []
            for config, name, p in zip(self.configs, self.names, probs):
                row = p[offset + i]
                labels = config.labels
                preds.append(
                    Prediction(name, labels[int(row.argmax())], {k: float(v) for k, v in zip(labels, row)})
                )
            results.append(FaceResult(face, preds))
        return results

    def predict_image(self, src: ImageSource) -> ImageResult:
        """Detect and classify every face of one image; bad input is returned as the result's ``error``."""
        return self.predict([src])[0]

    def predict(self, images: Iterable[ImageSource]) -> list[ImageResult]:
        """Classify every face of every image, batching all faces through each model at once.

        ``images`` is a list (or any iterable) of images; one image alone (a path, bytes, a PIL image) is
        refused with :class:`TypeError`: use :meth:`predict_image`. Bad input (a file that is missing,
        undecodable or too large, an array that holds no pixels) becomes that image's ``error`` and never
        loses the other images' results, and so do faces a model gives NaN or infinite probabilities for, and
        memory running out (``ulimit -v``, a small machine) for one image: a batch that runs out is done again
        image by image. Anything else (a detector or model failure) is a bug, not a property of one image, and
        raises.
        Paths and bytes over :data:`~ferhub.images.DEFAULT_MAX_PIXELS` are too large; a PIL image or array
        has no pixel limit (:func:`~ferhub.images.pixel_limit`), so a photo over it can be decoded with
        ``load_image(path, max_pixels=None)`` and given as an image.
        """
        results: list[ImageResult] = []
        decoded: list[tuple[int, Image.Image]] = []
        for src in _many(images, "predict", "images"):
            result = ImageResult(path=_source_name(src))
            results.append(result)
            try:
                # a caller's PIL image is read as it is where it needs no change (no copy per image); paths,
                # bytes and arrays decode into a new image either way
                limit = pixel_limit(src)  # none for an image in memory, as in the detector
                if isinstance(src, Image.Image):
                    image = upright_rgb(src, max_pixels=limit)
                else:
                    image = load_image(src, max_pixels=limit)
            except ImageDecodeError as e:
                result.error = str(e)
                continue
            except Exception as e:
                if not is_out_of_memory(e):
                    raise
                result.error = _out_of_memory(result, e)
                continue
            result.width, result.height = image.size
            decoded.append((len(results) - 1, image))
        self._faces_into(decoded, results)
        return results

    def _faces_into(self, decoded: list[tuple[int, Image.Image]], results: list[ImageResult]) -> None:
        """Detect and classify the faces of ``decoded`` (``(index in results, image)``) into ``results``, all
        at once. Memory that runs out is one image's problem, not its batch's: the batch is done again image
        by image, and an image that runs out on its own gets that as its error. ``decoded`` is emptied then,
        so that each image is let go once done."""
        try:
            self._classified(decoded, results)
            return
        except Exception as e:
            if not is_out_of_memory(e):
                raise
            if len(decoded) == 1:
                index = decoded[0][0]
                results[index].error = _out_of_memory(results[index], e)
                return
        # after the except block, which held the failed batch's arrays through its traceback; the largest
        # image first, and each let go when done: a 49 MP photo held while the small ones of its batch were
        # tried again ran them out of memory too (ulimit -v 600000)
        pending = sorted(decoded, key=lambda item: item[1].width * item[1].height)
        decoded.clear()
        while pending:
            index, image = pending.pop()
            results[index].faces, results[index].error = [], None  # anything the failed batch set
            self._faces_into([(index, image)], results)
            del image

    def _classified(self, decoded: list[tuple[int, Image.Image]], results: list[ImageResult]) -> None:
        """:meth:`_faces_into` for one try."""
        faces_of = self._detect_all([image for _, image in decoded])

        # one forward per model over the faces of all images
        flat = [(image, face) for (_, image), faces in zip(decoded, faces_of) for face in faces]
        probs = self._classify(lambda config: [crop_face(im, f, config) for im, f in flat], len(flat))
        not_finite = self._not_finite(probs) if flat else None
        offset = 0
        for (index, _), faces in zip(decoded, faces_of):
            bad = None if not_finite is None else [b[offset : offset + len(faces)] for b in not_finite]
            if bad is not None and any(b.any() for b in bad):
                # a label picked from NaN (argmax: the first class) would look like an answer, and NaN is not
                # JSON: the image gets an error instead, naming the models that failed on this image's faces
                message = self._not_finite_message(bad, "face")
                results[index].error = f"{results[index].path or '<image>'}: {message}"
            else:
                results[index].faces = self._results(faces, probs, offset)
            offset += len(faces)


def _out_of_memory(result: ImageResult, e: BaseException) -> str:
    """An image's error when memory ran out for it (:func:`ferhub.errors.is_out_of_memory`)."""
    size = f" ({result.width}x{result.height} pixels)" if result.width else ""
    why = " ".join(str(e).split())[:200] or type(e).__name__
    if is_thread_limit(e):  # memory for its stack, or a process/thread limit: Python does not say which
        return (
            f"{result.path or '<image>'}: cannot start a thread{size} ({why}); the process or thread limit"
            " (`ulimit -u`, a container's pids limit) is reached or memory ran out"
        )
    return f"{result.path or '<image>'}: out of memory{size} ({why}); downscale it or free memory"


def _many(items: Any, method: str, what: str) -> Any:
    """``items`` where they are a sequence of images; one image alone is refused: a str or bytes would be
    taken character by character, a path or PIL image raise a bare "not iterable", and the rows of one
    array image would be taken for images.

    Anything else that is not iterable (``None``, a number) is refused naming what was given.

    An array is a stack of images (taken along its first axis, as always) unless it can only be one image:
    pixel values (bool, integers, floats) in 2 dimensions (H x W: its rows are no images), or in 3 with a
    last axis of 1, 3 or 4 (H x W x C: a stack of images 1, 3 or 4 pixels wide is none). An N x H x W stack
    of grey images (FER2013's layout), N x H x W x C, and an array of paths are sequences."""
    if isinstance(items, _ONE_IMAGE):
        raise WrongTypeError(
            f"Predictor.{method} takes a list of {what}, got one {type(items).__name__}; pass"
            f" [{what[:-1]}]" + (" or use predict_image(image)" if method == "predict" else "")
        )
    if isinstance(items, np.ndarray) and _one_array_image(items):
        one = {0: "a value", 2: "an H x W image"}.get(items.ndim, "an H x W x C image")
        raise WrongTypeError(
            f"Predictor.{method} takes a list of {what}, got one numpy array of shape {items.shape}: {one},"
            f" not a stack of images; pass [{what[:-1]}]"
            + (" or use predict_image(image)" if method == "predict" else "")
            + " (a stack of images is N x H x W or N x H x W x C)"
        )
    try:
        iter(items)
    except TypeError:  # None (a form field left empty), a number: Python's "not iterable" named no argument
        got = "None" if items is None else f"{type(items).__name__} {items!r:.40}"
        raise WrongTypeError(
            f"Predictor.{method} takes a list of {what} (paths, bytes, PIL images or numpy arrays), got {got}"
        ) from None
    return items


def _one_array_image(a: np.ndarray) -> bool:
    """Whether ``a`` can only be one image, not a sequence of them (see :func:`_many`)."""
    if a.ndim == 0:
        return True  # one value (a path as a 0-d array): not iterable at all
    if a.dtype.kind not in "buif":
        return False  # paths (str), sources (object): one each
    return a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))


def _check_finite(model: nn.Module, name: str) -> None:
    """Refuse a module whose weights hold NaN or infinity, as :func:`ferhub.load` refuses such a repo: every
    face would get NaN probabilities."""
    from ferhub.models._limits import check_finite_weights

    check_finite_weights(model.state_dict(), f"model {name}")


def _detector_settings(detector: FaceDetector) -> dict[str, Any]:
    """What makes ``detector`` again (its constructor's arguments)."""
    return {
        "min_face_size": detector.min_face_size,
        "thresholds": detector.thresholds,
        "max_side": detector.max_side,
        "device": detector.device,
        "runtime": detector.runtime,
        "batch_images": detector.batch_images,
    }


def iter_image_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand directories (recursively) into image files; files named explicitly are kept as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            suffixes = image_suffixes()
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes))
        else:
            out.append(p)
    return out
