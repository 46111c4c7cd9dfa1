"""Evaluate models on labelled data through the one inference path, and keep the results in the model repo.

- :func:`evaluate` runs one or more models over a labelled source (folder of class folders, zip, FER2013 CSV,
  Hugging Face dataset) with :class:`ferhub.predict.Predictor`, detecting each image's face once
  (:class:`ferhub.data.FaceCache`), optionally with flip or ten-crop test-time augmentation of each model's
  face crop (:func:`ferhub.transforms.tta_views`, the same views training validates with), and returns one
  :class:`ModelEvaluation` per model: its ``eval_results`` entry and its per-image predictions.
- :func:`push_results` uploads a repo folder's ``eval_results.json`` and card in one commit.

The ``eval_results.json`` format, and merging and writing it, belong to :mod:`ferhub.eval_results`.

>>> runs = evaluate(["ferhub/fer-mini-xception"], "faces.zip")      # doctest: +SKIP
>>> eval_results.write("my-model/", {runs[0].key: runs[0].entry})  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ferhub import eval_results, metrics, strict_json
from ferhub.errors import EvaluationError, EvaluationSettingError, NotFiniteError, not_finite
from ferhub.eval_results import result_key
from ferhub.fileio import atomic_write_text, fit_parts

if TYPE_CHECKING:
    from PIL import Image
    from torch import nn

    from ferhub.data import FaceCache, LabeledSource
    from ferhub.predict import Predictor

PREDICTIONS_FORMAT_VERSION = 1  # of ImagePredictions files (``--out``), not of eval_results.json

Tta = Literal["flip", "tencrop"] | None
# decoded pixels an evaluation holds at once (~190 MB as RGB): images are decoded, detected and classified in
# batches within it, so memory follows this, not the number of images in a chunk or their sizes on disk
PIXEL_BUDGET = 64_000_000
Progress = Callable[[int, int, str], None]


# ---------------------------------------------------------------------------------------------------------
# per-image predictions
# ---------------------------------------------------------------------------------------------------------
@dataclass
class ImagePredictions:
    """Per-image outcome of one model on one source (what the report and paired tests need).

    ``labels`` is the entry's label list (data classes, then model-only classes); ``y_true``/``y_pred`` index
    it (``-1`` = no prediction); ``probabilities`` are in ``model_labels`` order. ``indices`` is each row's
    image index in the source: the images that could not be decoded have no row, so row ``i`` is not always
    image ``i`` (``None``, in files written before it was kept: the rows are the source's images in order).
    """

    labels: list[str]
    model_labels: list[str]
    y_true: list[int]
    y_pred: list[int]
    confidence: list[float]
    face_found: list[bool]
    probabilities: np.ndarray
    boxes: list[list[float] | None] | None = None
    paths: list[str | None] | None = None
    model: str | None = None  # which model and which eval_results key these belong to
    key: str | None = None
    indices: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": PREDICTIONS_FORMAT_VERSION,
            "model": self.model,
            "key": self.key,
            "labels": self.labels,
            "model_labels": self.model_labels,
            "y_true": self.y_true,
            "y_pred": self.y_pred,
            "confidence": _float32_list(self.confidence),
            "face_found": self.face_found,
            "probabilities": _float32_list(self.probabilities),
            "boxes": self.boxes,
            "paths": self.paths,
            "indices": self.indices,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImagePredictions:
        return cls(
            labels=list(d["labels"]),
            model_labels=list(d["model_labels"]),
            y_true=[int(v) for v in d["y_true"]],
            y_pred=[int(v) for v in d["y_pred"]],
            confidence=[float(v) for v in d["confidence"]],
            face_found=[bool(v) for v in d["face_found"]],
            probabilities=np.asarray(d["probabilities"], dtype=np.float32).reshape(
                len(d["y_true"]), len(d["model_labels"])
            ),
            boxes=d.get("boxes"),
            paths=d.get("paths"),
            model=d.get("model"),
            key=d.get("key"),
            indices=None if d.get("indices") is None else [int(v) for v in d["indices"]],
        )

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, strict_json.dumps(self.to_dict()) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ImagePredictions:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (json.JSONDecodeError, KeyError, ValueError) as e:
            raise EvaluationError(
                f"{path} is not a ferhub predictions file ({e}); re-run ferhub evaluate --out"
            ) from e


def _float32_list(values: Any) -> list[Any]:
    """``values`` as nested lists of the shortest decimals that read back as the same float32 (the models'
    output type): every metric of the entry is recomputed from the file exactly, where rounding to a few
    decimals turned small probabilities into 0 (NLL) and near values into ties (top-2)."""
    array = np.asarray(values, dtype=np.float32)
    if array.ndim > 1:
        return [_float32_list(row) for row in array]
    return [float(str(v)) for v in array]


@dataclass
class ModelEvaluation:
    """One model on one labelled source: its ``eval_results`` entry under ``key`` and per-image
    predictions."""

    name: str
    key: str
    entry: dict[str, Any]
    predictions: ImagePredictions
    folder: Path | None = None  # the model's local repo folder, when it has one
    spec: Any = field(default=None, repr=False)


# ---------------------------------------------------------------------------------------------------------
# running models over a source
# ---------------------------------------------------------------------------------------------------------
def _model_info(spec: Any, model: nn.Module, name: str) -> tuple[dict[str, Any], Path | None]:
    """``{"id", "revision"}`` of a model, and its local repo folder (``None`` for an in-memory model).

    The folder is the one the model was loaded from (``repo_path``): resolving a Hub id again would ask the
    Hub for the branch head once more, and a branch that moved during the evaluation would give the new
    commit's folder, revision and push parent to results measured on the old weights.
    """
    if not isinstance(spec, (str, os.PathLike)):
        return {"id": name, "revision": None}, None
    from ferhub.hub import resolve

    spec_str = os.fspath(spec)
    loaded_from = getattr(model, "repo_path", None)
    folder = Path(loaded_from) if loaded_from is not None else resolve(spec_str)
    revision = None
    if folder.parent.name == "snapshots":  # a Hub download: the snapshot folder is named by commit
        revision = folder.name
    elif "@" in spec_str and not Path(spec_str).exists():
        revision = spec_str.partition("@")[2]
    model_id = spec_str.partition("@")[0] if not Path(spec_str).exists() else Path(spec_str).resolve().name
    return {"id": model_id, "revision": revision}, folder


def image_reader(predictions: ImagePredictions, source: LabeledSource) -> Callable[[int], Image.Image] | None:
    """``image_at(i)``: the image of ``source`` that row ``i`` of ``predictions`` is about (for thumbnails);
    ``None`` when the predictions are not of this source (other images, or another number of them)."""
    n = len(predictions.y_true)
    if predictions.indices is not None:
        rows = predictions.indices
        if len(rows) != n or any(not 0 <= r < len(source) for r in rows):
            return None
    elif n == len(source):
        rows = list(range(n))
    else:
        return None
    if predictions.paths is not None:
        # a row that names its file must name the same file of this source; by file name only, as the same
        # data may be given by another path (relative, absolute) than it was evaluated by
        for path, row in zip(predictions.paths, rows):
            here = source.path_of(row)
            if path is not None and here is not None and _file_name(path) != _file_name(here):
                return None
    return lambda i: source.image(rows[i])


def _file_name(path: str) -> str:
    """The last part of a source path: ``a/b/c.png`` and ``data.zip::b/c.png`` -> ``c.png``."""
    return re.split(r"[/\\]|::", path)[-1]


def open_data(data: str | os.PathLike | LabeledSource, split: str | None = None, **kw: Any) -> LabeledSource:
    """A :class:`LabeledSource` from a source string (see :func:`ferhub.data.open_source`) or as given."""
    from ferhub.data import LabeledSource, open_source

    if isinstance(data, LabeledSource):
        if split is not None and data.split not in (None, split):
            raise EvaluationError(f"the source given is split {data.split!r}, not {split!r}")
        return data
    return open_source(str(data), split, **kw)


def _spec_name(spec: Any) -> str:
    """How a model given to :func:`evaluate` is named in a message: its id or path, or a module's id."""
    if isinstance(spec, (str, os.PathLike)):
        return os.fspath(spec)
    return getattr(spec, "name_or_path", None) or type(spec).__name__


def _same_model(spec: Any, given: Any, loaded: Any, name: str) -> bool:
    """Whether ``spec`` (named to :func:`evaluate`) is the model a predictor was given as ``given``, holds as
    ``loaded`` (``None`` until loaded) and reports as ``name``: the same module, the same id or path (or a
    path to the same folder), or the name the predictor reports it under (``Predictor(names=...)``, as the app
    names its shared cached modules)."""
    if not isinstance(spec, (str, os.PathLike)):
        return spec is given or spec is loaded
    text = os.fspath(spec)
    if text in (name, given, getattr(given, "name_or_path", None)):
        return True
    # a folder given by another path (relative, absolute, a link), a bundled model by another of its names
    # ("fer-mini-xception" and "ferhub/fer-mini-xception"), or the folder a module was loaded from
    from ferhub.errors import ModelLoadError
    from ferhub.hub._repo import local_folder

    def folder_of(reference: Any) -> Path | None:
        try:
            return local_folder(reference)
        except ModelLoadError:  # no such folder or bundled model: it cannot be the same model
            return None

    here = folder_of(text)
    there = folder_of(given) if isinstance(given, (str, os.PathLike)) else getattr(given, "repo_path", None)
    return here is not None and there is not None and here.resolve() == Path(os.fspath(there)).resolve()


def _check_predictor(pred: Predictor, specs: Sequence[Any]) -> None:
    """Refuse a predictor whose models are not ``specs``, in order: its results would be saved under another
    model's id, or into another model's folder (:func:`results_folder`)."""
    given, loaded = pred._specs, pred._models
    if len(given) == len(specs) and all(map(_same_model, specs, given, loaded, pred.names)):
        return
    raise EvaluationSettingError(
        f"the predictor holds {', '.join(pred.names)}, not the models named ("
        + ", ".join(map(_spec_name, specs))
        + "): pass the models the predictor was built from (their ids, folders or modules, in order), or"
        " leave predictor out"
    )


def evaluate(
    models: str | nn.Module | Sequence[str | nn.Module],
    data: str | os.PathLike | LabeledSource,
    *,
    split: str | None = None,
    tta: Tta = None,
    no_face: Literal["fallback", "wrong"] = "fallback",
    precropped: bool | None = None,
    device: str | None = None,
    predictor: Predictor | None = None,
    cache: FaceCache | None = None,
    chunk_size: int = 256,
    n_resamples: int = metrics.BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    command: str | None = None,
    dataset_config: str | None = None,
    progress: Progress | None = None,
) -> list[ModelEvaluation]:
    """Evaluate every model on a labelled source; one :class:`ModelEvaluation` per model, in order.

    Args:
        models: model ids/paths (``ferhub.hub.load`` forms) or loaded models with ``.config``.
        data: a source string for :func:`ferhub.data.open_source` or an open :class:`LabeledSource`.
        split: train/val/test (or the source's own spelling).
        tta: ``None``, ``"flip"`` or ``"tencrop"``: probabilities averaged over the views.
        no_face: an image where the detector finds no face is classified whole (``"fallback"``, seed 004) or
            counted wrong (``"wrong"``).
        precropped: the images are already face crops (no detection); default: the source says so (FER2013).
        predictor: reuse a loaded :class:`Predictor` holding ``models``, in order (its ids, folders or
            modules, or the names it reports them under); one holding other models raises
            :class:`EvaluationSettingError`.
        cache: face detections cache; default the persistent one under ``$FERHUB_CACHE``.
        progress: ``progress(done, total, message)`` after each chunk of images.

    Raises:
        NotFiniteError: a model gave NaN or infinite probabilities (a diverged or corrupt model); the
            error's ``runs`` are the other models' evaluations.
    """
    from ferhub.predict import Predictor
    from ferhub.transforms import TTA_METHODS

    if tta not in (None, *TTA_METHODS):
        raise EvaluationSettingError(f"tta must be None, 'flip' or 'tencrop', got {tta!r}")
    if no_face not in ("fallback", "wrong"):
        raise EvaluationSettingError(f"no_face must be 'fallback' or 'wrong', got {no_face!r}")
    specs = [models] if isinstance(models, (str, os.PathLike)) or hasattr(models, "config") else list(models)
    if not specs:
        raise EvaluationError("evaluate needs at least one model")
    if predictor is not None:  # before the data is opened: nothing read for an evaluation refused
        _check_predictor(predictor, specs)
    config = {"dataset_config": dataset_config} if dataset_config is not None else {}
    source = open_data(data, split, precropped=precropped, **config)
    if dataset_config is not None and getattr(source, "config", dataset_config) != dataset_config:
        raise EvaluationError(f"the source given is configuration {source.config!r}, not {dataset_config!r}")
    dataset_config = getattr(source, "config", None) if dataset_config is None else dataset_config
    if len(source) == 0:
        raise EvaluationError(f"{source.name}: no images to evaluate (split {source.split!r})")
    crops_only = source.precropped if precropped is None else precropped
    pred = predictor or Predictor(
        [os.fspath(s) if isinstance(s, os.PathLike) else s for s in specs], device=device
    )
    if not crops_only and cache is None:
        from ferhub.data import FaceCache

        cache = FaceCache(pred.detector)
    scores = _classify_source(source, pred, tta, no_face, None if crops_only else cache, chunk_size, progress)
    scores = scores.readable(source)
    run = _Run(
        dataset={"id": source.name, "config": dataset_config, "split": source.split, "name": source.name},
        key=result_key(source.name, dataset_config, source.split),
        date=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        tta=tta,
        no_face=no_face,
        crops_only=crops_only,
        command=command,
    )
    scored = ~scores.missing if no_face == "wrong" else np.ones(len(scores.targets), dtype=bool)
    runs, failed = [], []
    for spec, model, name, p in zip(specs, pred.models, pred.names, scores.probs):
        bad = scored & ~np.isfinite(p).all(axis=1)
        if bad.any():
            # a label read from NaN is the first class (argmax) and its metrics NaN: no result for this model
            first = scores.paths[int(np.flatnonzero(bad)[0])]
            failed.append(
                (name, f"for {int(bad.sum())} of {len(bad)} images" + (f" (first: {first})" if first else ""))
            )
            continue
        runs.append(
            _model_evaluation(run, scores, source, spec, model, name, p, n_resamples=n_resamples, seed=seed)
        )
    if failed:
        kept = "; the other models' results are kept" if runs else ""
        (name, which), *others = failed
        named = f"model {name} gave NaN or infinite probabilities {which}" + "".join(
            f", model {n} {w}" for n, w in others
        )
        raise NotFiniteError(
            f"{named}; {not_finite(len(failed) > 1)}{kept}",
            runs=runs,
        )
    return runs


@dataclass
class _Scores:
    """Every model's probabilities on a source's images, and what became of each image."""

    probs: list[np.ndarray]  # per model: (n, its classes)
    missing: np.ndarray  # no face found
    boxes: list[list[float] | None]
    paths: list[str | None]
    targets: np.ndarray
    unreadable: dict[int, str]  # index -> why it could not be decoded
    indices: np.ndarray  # each row's image index in the source

    def readable(self, source: LabeledSource) -> _Scores:
        """The same without the images that could not be decoded (refused when that leaves none)."""
        if not self.unreadable:
            return self
        keep = np.ones(len(self.targets), dtype=bool)
        keep[list(self.unreadable)] = False
        if not keep.any():
            raise EvaluationError(
                f"{source.name}: none of its {len(keep)} images could be read "
                f"(first: {next(iter(self.unreadable.values()))})"
            )
        return _Scores(
            probs=[p[keep] for p in self.probs],
            missing=self.missing[keep],
            boxes=[b for b, k in zip(self.boxes, keep) if k],
            paths=[q for q, k in zip(self.paths, keep) if k],
            targets=self.targets[keep],
            unreadable=self.unreadable,
            indices=self.indices[keep],
        )


def _classify_source(
    source: LabeledSource,
    pred: Predictor,
    tta: Tta,
    no_face: str,
    cache: FaceCache | None,
    chunk_size: int,
    progress: Progress | None,
) -> _Scores:
    """Run every model of ``pred`` over ``source`` chunk by chunk; ``cache=None``: the images are face
    crops."""
    n = len(source)
    scores = _Scores(
        probs=[np.zeros((n, m.config.num_classes), dtype=np.float32) for m in pred.models],
        missing=np.zeros(n, dtype=bool),
        boxes=[None] * n,
        paths=[source.path_of(i) for i in range(n)],
        targets=source.targets,
        unreadable={},  # an image that cannot be decoded is skipped and counted, not fatal
        indices=np.arange(n),
    )
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        # decoded a few at a time, by pixels: a chunk of 256 large photos (or 14 KB PNGs that each decode to
        # 49 MP) held at once took gigabytes
        for idx, images in _decoded(source, range(start, stop), scores.unreadable, PIXEL_BUDGET):
            _score(scores, idx, images, pred, tta, no_face, cache)
        if progress is not None:
            progress(stop, n, f"{source.name}: {stop}/{n} images")
    return scores


def _score(
    scores: _Scores,
    idx: list[int],
    images: list[Image.Image],
    pred: Predictor,
    tta: Tta,
    no_face: str,
    cache: FaceCache | None,
) -> None:
    """Every model's probabilities on the decoded ``images`` (source indices ``idx``) into ``scores``."""
    from ferhub.faces import whole_image_face
    from ferhub.transforms import tta_views

    if cache is None:
        out = pred.classify_crops(images, views=lambda crop: tta_views(crop, tta))
        for m, p in enumerate(out):
            scores.probs[m][idx] = p.reshape(len(idx), len(p) // len(idx), -1).mean(axis=1)
        return
    for i, image, face in zip(idx, images, cache.get_many(images)):
        if face is None:
            scores.missing[i] = True
            if no_face == "wrong":
                continue
            face = whole_image_face(image)
        else:
            scores.boxes[i] = [float(v) for v in face.box]
        # each model crops the face its own way; the TTA views are taken of that crop
        out = pred.classify_faces(image, [face], views=lambda crop: tta_views(crop, tta))
        for m, p in enumerate(out):
            scores.probs[m][i] = p.mean(axis=0)


@dataclass(frozen=True)
class _Run:
    """What every model's result of one :func:`evaluate` call shares."""

    dataset: dict[str, Any]
    key: str
    date: str
    tta: Tta
    no_face: str
    crops_only: bool
    command: str | None


def _model_evaluation(
    run: _Run,
    scores: _Scores,
    source: LabeledSource,
    spec: Any,
    model: nn.Module,
    name: str,
    p: np.ndarray,
    *,
    n_resamples: int,
    seed: int,
) -> ModelEvaluation:
    """One model's metrics, ``eval_results.json`` entry and per-image predictions."""
    n, missing, targets = len(scores.targets), scores.missing, scores.targets
    summary = metrics.summarize(
        targets,
        p,
        data_labels=source.labels,
        model_labels=model.config.labels,
        no_face=missing,
        no_face_policy=run.no_face,
        n_resamples=n_resamples,
        seed=seed,
    )
    if run.crops_only:
        summary["no_face"]["policy"] = "precropped"
    model_info, folder = _model_info(spec, model, name)
    entry = eval_results.make_entry(
        summary, dataset=run.dataset, model=model_info, tta=run.tta, num_images=n, command=run.command,
        date=run.date,
    )  # fmt: skip
    if folder is not None:
        _mark_not_held_out(entry, _results_of(folder), run.key, len(source))
    if scores.unreadable:
        entry["unreadable"] = _unreadable_entry(scores.unreadable, source)
        entry["notes"].append(
            f"unreadable: {len(scores.unreadable)} images could not be decoded and were skipped"
        )
    entry["notes"].extend(source.notes)
    space = metrics.LabelSpace.build(source.labels, model.config.labels)
    scored = ~missing if run.no_face == "wrong" else np.ones(n, dtype=bool)
    y_pred = np.full(n, -1, dtype=np.int64)
    y_pred[scored] = space.model_index[p[scored].argmax(axis=1)]
    confidence = np.where(scored, p.max(axis=1), 0.0)
    predictions = ImagePredictions(
        labels=list(space.labels),
        model_labels=list(model.config.labels),
        y_true=space.data_index[targets].tolist(),
        y_pred=y_pred.tolist(),
        confidence=[float(c) for c in confidence],
        face_found=(~missing).tolist(),
        probabilities=p,
        boxes=None if run.crops_only else scores.boxes,
        paths=scores.paths,
        model=model_info["id"],
        key=run.key,
        indices=scores.indices.tolist(),
    )
    return ModelEvaluation(name, run.key, entry, predictions, folder, spec)


def _mark_not_held_out(
    entry: dict[str, Any], results: Mapping[str, Any] | None, key: str, num_images: int
) -> None:
    """Mark ``entry`` (of data of ``num_images`` images, stored under ``key``) ``not_held_out`` with a note
    when the model's results document ``results`` records that this data trained or chose it
    (:func:`training_overlap`), or when the result it replaces was marked so: the card says so and leaves it
    out of the model-index (:mod:`ferhub.hub.card`)."""
    found = _overlap(results, entry["dataset"], num_images)
    if found is None and (before := _marked_before(results, key, entry)) is not None:
        found = before, False
    if found is None:
        return
    seen, name_only = found
    entry["not_held_out"] = seen
    if name_only:  # data is told by its name: another folder of that name may hold other images
        note = (
            f"Maybe not a held-out result: {seen}, as its training result records data of this name. If "
            "these are other images, they are held out: evaluated under a name of their own (another folder "
            "or file name), their result goes into this card's model-index, which leaves this one out."
        )
    else:
        note = (
            f"Not a held-out result: {seen} (as its training result records). These numbers say how the "
            "model does on images it was trained or chosen on, not on new faces, and this card's model-index "
            "leaves them out."
        )
    entry["notes"].insert(0, note)


def _results_of(folder: Path) -> dict[str, Any] | None:
    """A model repo's ``eval_results.json`` as :func:`ferhub.eval_results.read` gives it; ``None`` when it
    has none, or one that cannot be read (writing the new entry into it says what is wrong)."""
    from ferhub.errors import EvalResultsError

    try:
        return eval_results.read(folder)
    except EvalResultsError:
        return None


def training_overlap(
    results: Mapping[str, Any] | None, dataset: Mapping[str, Any], num_images: int | None = None
) -> str | None:
    """How the data ``dataset`` (an entry's ``{"id", "config", "split"}``, of ``num_images`` images) took part
    in training the model whose ``eval_results.json`` document is ``results``, as it records it
    (:func:`ferhub.eval_results.seen_data`): ``"split train of fer2013 trained this model"``; ``None`` when it
    took no part (as far as that says), e.g. the split training reported on.

    Same data means the same ``id`` and ``config`` (as ``ferhub evaluate`` keys results: a local folder's or
    file's name). ``all`` of a dataset holds every split of it, and a model trained on ``all`` of one saw
    every split of it. Where the record has the number of images that split had, and ``num_images`` is
    another, the text says both: data of that name, maybe other images (``"all of faces (84 images then, 36
    now) trained this model"``)."""
    found = _overlap(results, dataset, num_images)
    return None if found is None else found[0]


def _overlap(
    results: Mapping[str, Any] | None, dataset: Mapping[str, Any], num_images: int | None = None
) -> tuple[str, bool] | None:
    """:func:`training_overlap`'s text, and whether the record's number of images differs from
    ``num_images`` (the name alone matched)."""
    want = (dataset.get("id"), dataset.get("config") or "default")
    split = dataset.get("split") or "all"
    for seen in eval_results.seen_data(results):
        if (seen["id"], seen["config"]) != want:
            continue
        did = "trained this model" if seen["role"] == "train" else "chose its released epoch"
        if seen["split"] != split and split != "all" and seen["split"] != "all":
            continue
        if split == "all" and seen["split"] != "all":
            return f"all of {want[0]} was evaluated, and its split {seen['split']} {did}", False
        what = f"all of {want[0]}" if seen["split"] == "all" else f"split {split} of {want[0]}"
        then = seen.get("num_images")
        if split == seen["split"] and then is not None and num_images is not None and then != num_images:
            return f"{what} ({then:,} images then, {num_images:,} now) {did}", True
        return f"{what} {did}", False
    return None


def _marked_before(results: Mapping[str, Any] | None, key: str, entry: Mapping[str, Any]) -> str | None:
    """The ``not_held_out`` of the result this ``entry`` replaces (the same key, data of as many images and
    the same revision): the judgement stands when what it was judged on is no longer in the document (a file
    written before ``training.seen_data`` existed, whose training entry an evaluation replaced)."""
    old = results["results"].get(key) if isinstance(results, Mapping) else None
    if not isinstance(old, Mapping) or not isinstance(old.get("not_held_out"), str):
        return None
    dataset = old["dataset"] if isinstance(old.get("dataset"), Mapping) else {}
    if old.get("num_images") != entry.get("num_images"):  # other data under the same key
        return None
    return old["not_held_out"] if dataset.get("revision") == entry["dataset"].get("revision") else None


def _decoded(
    source: LabeledSource, idx: range, unreadable: dict[int, str], budget: int
) -> Iterator[tuple[list[int], list[Image.Image]]]:
    """The images of ``idx`` that decode, in batches of at most ``budget`` decoded pixels (an image larger
    than that alone); the others go into ``unreadable`` (index -> why). Each batch's list is emptied when the
    next one is asked for: one batch is alive at a time, and the next batch's first image (decoded to know
    its size) beside it."""
    from ferhub.data.crops import read_image

    good: list[int] = []
    images: list[Image.Image] = []
    pixels = 0
    for i in idx:
        image = read_image(source, i, unreadable)
        if image is None:
            continue
        if images and pixels + image.width * image.height > budget:
            yield good, images
            images.clear()  # the caller's reference to this batch: its images go now, not after the next
            good, images, pixels = [], [], 0
        good.append(i)
        images.append(image)
        pixels += image.width * image.height
        del image
    if images:
        yield good, images
        images.clear()


def _unreadable_entry(unreadable: dict[int, str], source: LabeledSource, shown: int = 20) -> dict[str, Any]:
    return {
        "count": len(unreadable),
        "examples": [
            {"path": source.path_of(i), "error": why[:300]} for i, why in list(unreadable.items())[:shown]
        ],
    }


# ---------------------------------------------------------------------------------------------------------
# eval_results.json: push, and where results go
# ---------------------------------------------------------------------------------------------------------
def push_results(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    revision: str | None = None,
    parent_commit: str | None = None,
    commit_message: str = "Update evaluation results",
) -> str:
    """Upload ``eval_results.json`` and ``README.md`` of a repo folder to ``repo_id`` in one commit; returns
    its URL.

    Through :func:`ferhub.hub.push_files`: offline or with the Hub unreachable it fails at once; the card
    goes up naming ``repo_id`` at ``revision`` (with its ``card.json``), as ``ferhub push`` sends it. Results
    never sit beside other weights: those of a Hub model go to the branch ``revision`` that was evaluated,
    with ``parent_commit`` the evaluated commit (a branch that moved since, or a tag, is refused); without
    it, the branch must hold the folder's own config and weights, else ``OtherModelOnHub`` (a ``ValueError``)
    says what differs and how to publish the model with its results instead.
    """
    from ferhub.hub import CARD_NAME, push_files

    folder = Path(folder)
    files = [eval_results.FILE_NAME, CARD_NAME]
    for name in files:
        if not (folder / name).is_file():
            raise EvaluationError(f"{folder / name} is missing; run ferhub evaluate on this model first")
    return push_files(
        folder,
        repo_id,
        files,
        token=token,
        revision=revision,
        parent_commit=parent_commit,
        commit_message=commit_message,
    )


def slug(name: str) -> str:
    """A file-name-safe form of a model id (``org/name@rev`` -> ``org--name@rev``; ``./model`` -> ``model``,
    never a hidden ``.--model``)."""
    return re.sub(r"[^\w.@-]+", "--", name).strip("-.") or "model"


def model_key(model: str, *, local: bool = True) -> str:
    """What every name of one model comes to: a folder's real path (``./runs/a/model`` and its absolute
    path), a bundled model's folder (``fer-mini-xception``, ``ferhub/fer-mini-xception``), else the name (a
    Hub id). A folder is looked for first, as models are loaded; ``local=False`` looks at no folder of this
    machine but the bundled models' (a public app's visitors, whose names must not tell what is there)."""
    from ferhub.hub._layout import bundled_folder

    try:
        path = Path(model).expanduser() if local else None  # (~user looks up the server's accounts)
        folder = path if path is not None and path.is_dir() else bundled_folder(model)
        return str(folder.resolve()) if folder is not None else model
    except (OSError, ValueError, RuntimeError):  # too long for a path, a NUL, an unknown ~user: no folder
        return model


def results_copy(out: str | os.PathLike, name: str) -> Path:
    """The folder under ``out`` for the results copy of model ``name``: its :func:`slug`, cut to the 255
    bytes a file name may have (:func:`ferhub.fileio.fit_parts`: its start, ``~`` and a hash of the whole)."""
    return Path(out) / fit_parts([slug(name)])


def results_folder(run: ModelEvaluation, out: str | os.PathLike) -> Path:
    """Where a run's results go: the model's own folder when it was given as a local path, else a copy.

    Bundled models and Hub downloads are not written in place (package data and the Hub cache are not the
    user's repo): their repo files are copied to ``out/<slug>/`` and the results merged there, ready to push.
    A copy of another version of the model (the branch got new weights or a new config since an earlier
    evaluation into the same ``out``) is moved aside to ``out/<slug>.replaced-N/``, said on stderr, and a
    fresh copy made: its card and results do not belong beside these weights. A copy of the same weights
    whose ``card.json`` differs (a push filled in ``repo_id``, the card was edited on the Hub) takes the
    evaluated repo's ``card.json``, the card's prose not changing what the numbers mean; the copy's own is
    kept beside it as ``card.json.replaced-N`` (it may hold the user's edits) and said on stderr.
    """
    from ferhub.hub import CARD_CONTEXT_NAME, REPO_FILES

    spec = run.spec
    if run.folder is not None and isinstance(spec, (str, os.PathLike)) and Path(os.fspath(spec)).is_dir():
        return run.folder
    target = results_copy(out, run.name)
    differs = _other_version(run.folder, target) if run.folder is not None else None
    if differs is not None:
        _move_aside(
            target, f"held another version of {run.name} (its {differs} differs from the one evaluated)",
            "results go to a fresh copy",
        )  # fmt: skip
    target.mkdir(parents=True, exist_ok=True)
    # under the results' lock: two evaluations of one model at once, the second's copy of the repo's
    # eval_results.json made after the first had written its entry lost that entry
    with eval_results.locked(target):
        if run.folder is not None and not (target / "config.json").is_file():
            for name in REPO_FILES:
                if (run.folder / name).is_file():
                    shutil.copy2(run.folder / name, target / name)
            return target
    if run.folder is not None and _differ(run.folder / CARD_CONTEXT_NAME, target / CARD_CONTEXT_NAME):
        copy = target / CARD_CONTEXT_NAME
        if copy.is_file():
            _move_aside(
                copy, f"differed from the card.json of {run.name} evaluated",
                "the evaluated one takes its place (the README is rendered from it)",
            )  # fmt: skip
        if (run.folder / CARD_CONTEXT_NAME).is_file():
            shutil.copy2(run.folder / CARD_CONTEXT_NAME, copy)
    return target


def _move_aside(path: Path, why: str, then: str) -> Path:
    """Rename ``path`` to the first free ``NAME.replaced-N`` beside it, nothing lost, and say so on stderr."""
    import sys

    aside = next(
        p
        for k in range(1, 10_000)
        # a long name keeps its start and gets a hash, so the suffix still fits in a file name
        if not (p := path.with_name(fit_parts([path.name], f".replaced-{k}"))).exists()
    )
    path.rename(aside)
    print(f"ferhub evaluate: {path} {why}: moved to {aside.name}; {then}", file=sys.stderr)
    return aside


def _differ(a: Path, b: Path) -> bool:
    """Whether one of two files exists without the other, or their bytes differ."""
    import filecmp

    return a.is_file() != b.is_file() or (a.is_file() and not filecmp.cmp(a, b, shallow=False))


def _other_version(source: Path, copy: Path) -> str | None:
    """The model file (config or weights) in which ``copy``, an earlier results copy, differs from
    ``source``, the repo evaluated now; ``None`` when it is a copy of it, or no copy yet. These two decide
    what the results measured; the card's prose (``card.json``) does not, and is refreshed instead."""
    from ferhub.hub import WEIGHTS_NAME
    from ferhub.hub._layout import CONFIG_NAME

    if not (copy / CONFIG_NAME).is_file():
        return None
    return next((name for name in (CONFIG_NAME, WEIGHTS_NAME) if _differ(source / name, copy / name)), None)


# ---------------------------------------------------------------------------------------------------------
# unlabelled photos: agreement between models
# ---------------------------------------------------------------------------------------------------------
def compare_on_images(
    predictor: Predictor,
    images: Sequence[Any],
    on_error: Callable[[str | None, str], None] | None = None,
) -> dict[str, Any]:
    """Agreement and Cohen's kappa between the predictor's models on every face found in unlabelled images.

    Predictions are compared by canonical label name. Returns ``compare.compare_predictions``'s dict plus
    ``labels`` (the label order used), ``num_images``, ``num_faces`` and, when some images could not be read
    (missing, undecodable), ``unreadable``: ``{"count", "examples": [{"path", "error"}]}`` as in an
    evaluation entry. ``on_error(path, error)`` is called for each of them, before anything is raised.
    """
    from ferhub.compare import compare_predictions, labels_to_indices
    from ferhub.labels import union_labels

    results = predictor.predict(list(images))
    failed = [r for r in results if r.error]
    if on_error is not None:
        for r in failed:
            on_error(r.path, str(r.error))
    labels = list(union_labels(*(m.config.labels for m in predictor.models)))
    per_model: list[list[str]] = [[] for _ in predictor.models]
    for result in results:
        for face in result.faces:
            for m, p in enumerate(face.predictions):
                per_model[m].append(p.label)
    if not per_model[0]:
        if failed and len(failed) == len(results):
            raise EvaluationError(
                f"none of the {len(results)} images given could be read (first: {failed[0].error})"
            )
        raise EvaluationError("no face was found in the images given, so there is nothing to compare")
    out = compare_predictions(predictor.names, [labels_to_indices(p, labels) for p in per_model])
    out["labels"] = labels
    out["num_images"] = len(results)
    out["num_faces"] = len(per_model[0])
    if failed:
        out["unreadable"] = {
            "count": len(failed),
            "examples": [{"path": r.path, "error": str(r.error)[:300]} for r in failed[:20]],
        }
    return out
