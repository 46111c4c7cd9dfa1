"""``ferhub export``: a model repo plus ``model.onnx``, verified against PyTorch on real face crops.

The exported folder is the repo itself (``config.json``, weights, card, results) with ``model.onnx`` beside
them, so it still loads everywhere ferhub loads models, and the graph serves ONNX Runtime, TensorRT, the
browser or a phone. The graph takes the model's normalised input ``(batch, C, H, W)`` (``config.json`` says
how: size, channels, mean/std) and returns logits in ``config.json``'s label order; batch is dynamic; opset
:data:`ferhub._onnx.OPSET`. Its metadata carries the labels and preprocessing and the hash of the weights it
was exported from.

An ensemble has no weights of its own: each member is exported (``member-N.onnx``) and verified, and the
combined probabilities are checked too.

The folder is written whole or not at all: everything is made and checked in a hidden folder inside it first,
then moved in; a failed export leaves it as it was (folders it made for it, parents included, removed). A
folder holding an earlier export (of this model or another) is one export again: the earlier export's files
(:data:`EXPORT_FILES`, graphs included) that the new one does not write are removed, and files ferhub did not
write there are kept. A folder holding such files that is no earlier export (a model repo, a project's own
``README.md``) is refused: they are not ferhub's to replace. So is a folder holding a file that the export
would copy over with another of the same name from the model's folder (an extra file there: notes, a
training log): a file of the user's is never overwritten (one identical to the model's is no loss and is let
be).

>>> report = export_onnx("fer-mini-xception", "out/fer-mini-xception")     # doctest: +SKIP
>>> report.max_difference <= 1e-5                                          # doctest: +SKIP
True
"""

from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from torch import nn

from ferhub import _onnx
from ferhub.config import CONFIG_NAME
from ferhub.errors import FerhubError
from ferhub.fileio import writing
from ferhub.hub._layout import REPO_FILES

ONNX_NAME = "model.onnx"
INT8_NAME = "model.int8.onnx"
GRAPH_FILE = re.compile(r"model(\.int8)?\.onnx|member-\d+\.onnx")  # the graphs export_onnx writes
GRAPH_PATTERNS = (ONNX_NAME, INT8_NAME, "member-*.onnx")  # the same, as Hub path patterns
MIN_INT8_AGREEMENT = 0.99
# what an export writes and so replaces: the repo's files and the graphs
EXPORT_FILES = (*REPO_FILES, *GRAPH_PATTERNS)
_STAGE_PREFIX = ".ferhub-export-"  # the hidden folder an export is made in before it is moved into place
# its name: the prefix, the exporting process's pid, a random part (before the pid was in it: a uuid's hex)
_STAGE_NAME = re.compile(rf"{re.escape(_STAGE_PREFIX)}(?:(\d+)-)?[0-9a-f]{{32}}")
INT8_ENSEMBLE = "--quantize int8 exports single models; quantise the ensemble's members one by one"
LFW_FACES = (
    100  # scikit-image's LFW subset: the real face crops the int8 check needs (with the examples' faces)
)
INT8_NEEDS_LFW = (
    f"--quantize int8 is checked on real face crops, the {LFW_FACES} faces of scikit-image's LFW subset, and"
    " scikit-image cannot provide them here (not installed, or without its data). Fix: pip install"
    " scikit-image (or ferhub's test extra: pip install 'ferhub[test]') and run it again"
)


class UnfitExport(FerhubError, ValueError):
    """An export that cannot be done as asked (``out``, ``quantize``), refused before anything is written;
    ``ferhub export`` exits 2 on it."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how it checked it."""

    folder: Path
    files: list[str] = field(default_factory=list)
    max_difference: float = 0.0  # |probability| against torch, over every checked crop
    crops: int = 0
    int8_agreement: float | None = None  # top-1 agreement of the int8 graph with fp32 on real face crops
    int8_crops: int = 0  # how many real face crops that agreement was measured on


class Int8Refused(_onnx.ExportError):
    """The int8 graph disagreed with fp32 too often and was not written; ``report``: the fp32 export, which
    was written and checked."""

    def __init__(self, message: str, report: ExportReport) -> None:
        super().__init__(message)
        self.report = report


def _lfw_faces() -> np.ndarray | None:
    """The first :data:`LFW_FACES` face crops of scikit-image's LFW subset (grey, 0..1), or ``None`` when
    scikit-image cannot give them (not installed, or its data file missing)."""
    try:
        from skimage import data
    except ImportError:  # an optional extra (ferhub[test])
        return None
    try:
        return data.lfw_subset()[:LFW_FACES]
    except Exception:  # a missing data file fails in scikit-image's fetcher, in its own ways
        return None


def lfw_problem() -> str | None:
    """Why the real face crops the int8 check needs are not available here (:data:`INT8_NEEDS_LFW`), or
    ``None``. Without LFW only the example photos' 2 faces remain: too few to calibrate or to judge 99%."""
    return INT8_NEEDS_LFW if _lfw_faces() is None else None


def real_face_crops(config, limit: int | None = None, *, require_lfw: bool = False) -> np.ndarray:
    """Normalised crops of real faces for ``config``: the bundled example photos' faces and scikit-image's LFW
    subset (its first :data:`LFW_FACES` face crops), as the model's input batch. LFW needs scikit-image
    (``pip install scikit-image``); without it only the example photos' faces are returned, or, with
    ``require_lfw``, :class:`UnfitExport` is raised (:data:`INT8_NEEDS_LFW`).
    """
    from ferhub.assets import EXAMPLES_DIR
    from ferhub.faces import FaceDetector, crop_face
    from ferhub.transforms import eval_tensor

    detector = FaceDetector(runtime="torch")
    crops: list[Image.Image] = []
    for path in sorted(EXAMPLES_DIR.glob("*.jpg")):
        photo = Image.open(path).convert("RGB")
        crops += [crop_face(photo, face, config) for face in detector.detect(photo)]
    faces = _lfw_faces()
    if faces is None and require_lfw:
        raise UnfitExport(INT8_NEEDS_LFW)
    for face in [] if faces is None else faces:
        image = Image.fromarray((face * 255).round().astype(np.uint8)).convert("RGB")
        crops.append(image)  # already a face crop: resized to the model's input by eval_tensor
    return eval_tensor(crops[:limit], config).numpy()


def _metadata(model: nn.Module) -> dict[str, str]:
    from ferhub import __version__

    config = model.config
    return {
        "ferhub_version": __version__,
        "ferhub_weights_sha256": _onnx.weights_hash(model),
        "ferhub_config": json.dumps(config.to_dict()),
        "labels": json.dumps(list(config.labels)),
    }


def _write_graph(model: nn.Module, path: Path) -> bytes:
    """Export ``model``'s graph to ``path`` with :func:`_metadata`. Built fresh, not taken from the ONNX
    cache: an export is the reference others run, and building takes well under a second."""
    import onnx

    proto = onnx.load_from_string(_onnx.build_classifier_graph(model))
    for key, value in _metadata(model).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    data = proto.SerializeToString()
    path.write_bytes(data)
    return data


def _verify(model: nn.Module, graph: bytes, batch: np.ndarray) -> float:
    """The graph's logits on ``batch`` against ``model``'s (:func:`ferhub._onnx.check_logits`); the largest
    probability difference."""
    got = _onnx.session(graph).run(None, {"input": batch})[0]
    return _onnx.check_logits(model.config.architecture, _onnx.torch_logits(model, batch), got)


def _quantize(model: nn.Module, fp32: Path, out: Path, batch: np.ndarray) -> float:
    """Static int8 (QDQ) quantisation calibrated on half the real crops; top-1 agreement with fp32 on all.

    The graph goes through ONNX Runtime's quantisation pre-processing first (shape inference and its graph
    optimisations), as its quantiser asks on the console otherwise; the agreement was the same either way for
    every bundled model, and with MinMax, percentile or entropy calibration (2026-12-04)."""
    from onnxruntime import quantization as q
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"input": batch[i : i + 1]} for i in range(0, len(batch), 2)])

        def get_next(self) -> dict | None:
            return next(self.items, None)

    prepared = out.with_name(out.name + ".pre.onnx")
    try:
        quant_pre_process(str(fp32), str(prepared))
        q.quantize_static(str(prepared), str(out), Reader(), quant_format=q.QuantFormat.QDQ, per_channel=True)
    finally:
        prepared.unlink(missing_ok=True)
    fp = _onnx.session(fp32).run(None, {"input": batch})[0].argmax(axis=1)
    int8 = _onnx.session(out).run(None, {"input": batch})[0].argmax(axis=1)
    return float((fp == int8).mean())


# what a folder to export to must be, said after what is wrong with the one given
OUT_RULE = (
    "export to a new or empty folder (made if missing), a folder of other files (kept: where the model's"
    " folder has a different file of the same name, the export is refused), or an earlier export (which is"
    " replaced, with its copies of the model folder's files), other than the model's own"
)


def out_problem(model_id: str | os.PathLike, out: str | os.PathLike, *, action: str = "export") -> str | None:
    """What makes ``out`` unfit to take the export of ``model_id``, found before any work (no download, no
    torch): an empty name (an unset shell variable: ``Path("")`` is the current folder), a file, the model's
    own folder (copying the repo would copy each file onto itself), a folder holding files an export
    writes (:data:`EXPORT_FILES`) that is no earlier export (:func:`is_export`), whose files are not ferhub's
    to replace, or one holding a file that a different file of the same name in the model's folder would
    overwrite (:func:`_overwritten`; a Hub id's folder is known, and checked, once loaded). ``None`` when it
    is fit: a new or empty folder, one of other files (kept), an earlier export (replaced). ``action`` names
    what would write there (a zoo import asks the same of its folder)."""
    from ferhub.hub import ModelLoadError
    from ferhub.hub._repo import local_folder

    if not os.fspath(out).strip():
        return f"{os.fspath(out)!r} is empty, not a folder name"
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        return f"{out} is a file, not a folder"
    try:
        source = local_folder(model_id)  # a local or bundled repo; None for a Hub id
    except ModelLoadError:
        source = None  # loading the model says what is wrong with the reference
    return _own_folder(out, source) or _foreign_files(out, action) or _overwritten(out, source)


def _own_folder(out: str | os.PathLike, source: Path | None) -> str | None:
    folder = Path(out).expanduser()
    if source is not None and folder.is_dir() and os.path.samefile(folder, source):
        return f"{out} is the model's own folder"
    return None


def _export_names(folder: Path) -> list[str]:
    """The files in ``folder`` named as an export's (:data:`EXPORT_FILES`), sorted."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if (p.name in REPO_FILES or GRAPH_FILE.fullmatch(p.name)) and p.is_file()
    )


def is_export(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds an export :func:`export_onnx` wrote: a ``config.json`` ferhub reads and at
    least one graph (``model.onnx``, ``member-N.onnx``; a model repo of its own has none)."""
    from ferhub.config import ModelConfig
    from ferhub.errors import ConfigError

    folder = Path(folder)
    if not any(GRAPH_FILE.fullmatch(name) for name in _export_names(folder)):
        return False
    try:
        ModelConfig.load(folder)
    except (ConfigError, OSError):
        return False
    return True


def _foreign_files(out: str | os.PathLike, action: str = "export") -> str | None:
    """The files of ``out`` an export (or ``action``) would replace although ferhub did not write them
    there."""
    folder = Path(out).expanduser()
    if not folder.is_dir():
        return None
    names = _export_names(folder)
    if not names or is_export(folder):
        return None
    kind = "a model repo" if CONFIG_NAME in names else "files of its own"
    return (
        f"{out} holds {', '.join(names)} ({kind}, not an earlier {action}), which an {action} would replace"
    )


def _extra_files(source: Path) -> list[Path]:
    """The files an export copies from the model's folder ``source``: all but its graphs."""
    return sorted(p for p in source.iterdir() if p.is_file() and p.suffix != ".onnx")


def _overwritten(out: str | os.PathLike, source: Path | None) -> str | None:
    """The files of ``out`` that the export would overwrite with a different file of the same name from the
    model's folder ``source``, other than those an export writes (:data:`EXPORT_FILES`, which
    :func:`_foreign_files` lets be replaced in an earlier export only): a user's notes, say, where the model's
    folder has notes of its own. A file identical to the model's loses nothing and is let be; ``None`` when
    nothing would be lost (or ``source`` is not known yet: a Hub id)."""
    folder = Path(out).expanduser()
    if source is None or not folder.is_dir():
        return None
    # an earlier export is replaced whole: its copies of the model folder's files are ferhub's to replace (a
    # model folder's notes or .gitattributes changed since made re-exporting impossible); only what is no
    # plain file there (a folder, a link) is in the way
    earlier = is_export(folder)
    lost = []
    for extra in _extra_files(source):
        if extra.name in REPO_FILES:
            continue
        there = folder / extra.name
        if not (there.exists() or there.is_symlink()):
            continue
        plain = there.is_file() and not there.is_symlink()
        if plain and (earlier or filecmp.cmp(extra, there, shallow=False)):
            continue
        lost.append(extra.name)
    if not lost:
        return None
    return (
        f"{out} holds {', '.join(lost)}, which the export would overwrite with the model folder's file of the"
        " same name; move or rename it there first, or export to another folder"
    )


def quantize_problem(model_id: str | os.PathLike, quantize: str | None) -> str | None:
    """What makes ``quantize`` impossible for ``model_id``, read from a local repo's ``config.json`` before
    any work (no download, no torch): an unknown scheme, int8 for an ensemble (each member is a model of
    its own), or int8 where the real face crops its check needs are missing (:func:`lfw_problem`: no
    scikit-image). A Hub id's ensemble is found once loaded, still before anything is written."""
    from ferhub.hub import ENSEMBLE, ModelLoadError
    from ferhub.hub._layout import read_config
    from ferhub.hub._repo import local_folder

    if quantize not in (None, "int8"):
        return f"--quantize takes 'int8', got {quantize!r}"
    if quantize is None:
        return None
    try:
        source = local_folder(model_id)
        architecture = read_config(source).architecture if source is not None else None
    except ModelLoadError:
        architecture = None  # loading the model says what is wrong with it
    return INT8_ENSEMBLE if architecture == ENSEMBLE else lfw_problem()


def export_onnx(
    model_id: str | os.PathLike, out: str | os.PathLike, *, quantize: str | None = None
) -> ExportReport:
    """Copy the repo of ``model_id`` to ``out`` and write ``model.onnx`` (and ``model.int8.onnx`` if asked).

    The export is made and checked in a hidden folder inside ``out``, then moved in; an earlier export there
    is replaced (its files this export does not write are removed), other files are kept. Raises
    :class:`UnfitExport` (a ``ValueError``) before anything is written when ``out`` or ``quantize`` cannot
    work (see :func:`out_problem`, :func:`quantize_problem`), :class:`ferhub._onnx.ExportError` when the
    graph disagrees with PyTorch by more than :data:`ferhub._onnx.TOLERANCE` on real face crops (``out`` is
    left as it was), or :class:`Int8Refused` when int8 agrees with fp32 on fewer than 99% of them (the fp32
    export is in place).
    """
    from ferhub.hub import load

    problem = quantize_problem(model_id, quantize)
    if problem:
        raise UnfitExport(problem)
    problem = out_problem(model_id, out)
    if problem:
        raise UnfitExport(f"{problem}; {OUT_RULE}")
    model = load(model_id)
    # a Hub id's snapshot folder (and so its files), and whether it is an ensemble, are known only now
    problem = _own_folder(out, Path(model.repo_path)) or _overwritten(out, Path(model.repo_path))
    if problem:
        raise UnfitExport(f"{problem}; {OUT_RULE}")
    members = list(getattr(model, "members", None) or [])
    if quantize == "int8" and members:
        raise UnfitExport(INT8_ENSEMBLE)
    folder = Path(out).expanduser()
    made = _missing_folders(folder)  # deepest first: what a failed export removes again
    folder.mkdir(parents=True, exist_ok=True)
    _remove_stale_stages(folder)
    # inside the folder, so every move into place is a rename on one file system
    stage = folder / f"{_STAGE_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
    stage.mkdir()
    report = ExportReport(folder)
    refused: Int8Refused | None = None
    try:
        for source in _extra_files(Path(model.repo_path)):
            # copyfile, not copy2: the copy gets the umask's mode, as the graphs written beside it do, not the
            # source's (a repo saved under umask 022 and exported under 077 was readable by all); a full disk
            # names the file in --out (its error named the source, a bundled model's on another disk)
            with writing(folder / source.name):
                shutil.copyfile(source, stage / source.name)
            report.files.append(source.name)
        targets = (
            [(ONNX_NAME, model)] if not members else [(f"member-{i}.onnx", m) for i, m in enumerate(members)]
        )
        for name, target in targets:
            batch = np.concatenate([real_face_crops(target.config), _random_batch(target)])
            with writing(folder / name):
                graph = _write_graph(target, stage / name)
            report.max_difference = max(report.max_difference, _verify(target, graph, batch))
            report.crops += len(batch)
            report.files.append(name)
        if members:
            report.max_difference = max(report.max_difference, _verify_ensemble(model, stage))
        if quantize == "int8":
            crops = real_face_crops(model.config, require_lfw=True)
            # ONNX Runtime's quantiser writes into the system's temporary folder too (TMPDIR, maybe another
            # disk): a full disk its error names no file of is named by none, not by --out's int8 graph
            with writing(folder / INT8_NAME, unnamed=False):
                report.int8_agreement = _quantize(model, stage / ONNX_NAME, stage / INT8_NAME, crops)
            report.int8_crops = len(crops)
            if report.int8_agreement < MIN_INT8_AGREEMENT:
                (stage / INT8_NAME).unlink(missing_ok=True)
                refused = Int8Refused(
                    f"int8 agrees with fp32 on only {report.int8_agreement:.1%} of {len(crops)} real face"
                    f" crops (needs {MIN_INT8_AGREEMENT:.0%}); {ONNX_NAME} (fp32) is written, the int8 graph"
                    " is not",
                    report,
                )
            else:
                report.files.append(INT8_NAME)
        _install(stage, folder, report.files)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_empty(made)  # a failed export leaves none of the folders it made behind
    if refused is not None:
        raise refused
    return report


def _remove_stale_stages(folder: Path) -> list[Path]:
    """Remove the stage folders of earlier exports into ``folder`` whose process has ended without removing
    its own (SIGKILL, a crash, the machine going down; Ctrl-C and SIGTERM remove it): each holds a copy of the
    repo, weights included. A stage of an export still at work (another process) stays. Returns those removed.
    """
    from ferhub.fileio import process_alive

    stale = []
    for entry in folder.iterdir():
        match = _STAGE_NAME.fullmatch(entry.name)
        # a stage named before its pid was part of the name: of an older ferhub, long gone
        if match and entry.is_dir() and not (match[1] and process_alive(int(match[1]))):
            shutil.rmtree(entry, ignore_errors=True)
            stale.append(entry)
    return sorted(stale)


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first: what ``mkdir(parents=True)``
    makes."""
    missing = []
    while not os.path.lexists(folder) and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty: those an export made, after it failed (a
    successful one fills the first, and so keeps them all). A folder something else has put a file in since
    stays, with its parents; an error here never hides the export's own."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _install(stage: Path, folder: Path, names: list[str]) -> None:
    """Move the export made in ``stage`` into ``folder``: an earlier export's files that it does not have
    go (:func:`out_problem` let only an earlier export's such files be here), ``config.json`` last, as
    :func:`ferhub.hub.save` does: until it is in, the folder does not load half old, half new."""
    stale = [name for name in _export_names(folder) if name not in names]
    (folder / CONFIG_NAME).unlink(missing_ok=True)
    for name in stale:
        (folder / name).unlink(missing_ok=True)
    for name in sorted(names, key=lambda n: n == CONFIG_NAME):
        os.replace(stage / name, folder / name)


def check_graphs(folder: str | os.PathLike, model: nn.Module) -> list[str]:
    """The ONNX graphs :func:`export_onnx` wrote in ``folder`` (``model.onnx``, ``model.int8.onnx``,
    ``member-N.onnx``), each checked against ``model``, the folder's own weights: fp32 graphs by their logits
    on random inputs against ``model``'s in torch (:func:`ferhub._onnx.check_logits`, within 1e-4 + 1e-4 x
    |logit|: a graph of other weights, the model retrained after its export, fails it), the int8 graph, which
    cannot be checked that tightly, by the weights hash in its metadata, which must be that of the
    ``model.onnx`` beside it (both written by one export). The weights hash of an fp32 graph is not compared
    with the weights': it also covers the source file of the model's class, so any ferhub update that touched
    that file would refuse every earlier export. A graph that fails raises :class:`ModelLoadError`: pushed,
    it would disagree with the weights beside it."""
    from ferhub.errors import ModelLoadError

    folder = Path(folder)
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and GRAPH_FILE.fullmatch(p.name))
    members = list(getattr(model, "members", None) or [])
    targets = {ONNX_NAME: model} if not members else {f"member-{i}.onnx": m for i, m in enumerate(members)}
    fix = "re-export it (`ferhub export`) or delete it"
    for name in names:
        if name == INT8_NAME and ONNX_NAME in targets:
            source = _weights_hash_of(folder / ONNX_NAME) if ONNX_NAME in names else None
            if source is None or _weights_hash_of(folder / name) != source:
                raise ModelLoadError(
                    f"{folder / name} was not quantised from a {ONNX_NAME} beside it (the weights hashes in"
                    f" their metadata differ: they come from different exports, the weights or ferhub's model"
                    f" code changed between them); {fix}"
                )
            continue
        target = targets.get(name)
        if target is None:
            architecture = model.config.architecture
            raise ModelLoadError(f"{folder / name} is not a graph of this model ({architecture}); {fix}")
        try:
            _verify(target, (folder / name).read_bytes(), _random_batch(target))
        except Exception as e:  # disagreeing, or not a graph ONNX Runtime can run at all
            raise ModelLoadError(
                f"{folder / name} does not match the folder's weights and ferhub's code for them ({e}): it"
                f" was exported from other weights or by other model code; re-run `ferhub export` (or delete"
                f" it)"
            ) from e
    return names


def _weights_hash_of(graph: Path) -> str | None:
    """The weights hash :func:`export_onnx` wrote in a graph's metadata; ``None`` if it has none (or is no
    graph)."""
    import onnx

    try:
        props = onnx.load(str(graph), load_external_data=False).metadata_props
    except Exception:  # not a graph onnx can parse: protobuf's DecodeError and others
        return None
    return next((p.value for p in props if p.key == "ferhub_weights_sha256"), None)


def _random_batch(model: nn.Module, n: int = 4) -> np.ndarray:
    config = model.config
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, config.channels, config.input_size, config.input_size)).astype(np.float32)


def _verify_ensemble(model: nn.Module, folder: Path) -> float:
    """The combined probabilities from the members' graphs against the members in torch, on real photos."""
    from ferhub.assets import EXAMPLES_DIR
    from ferhub.faces import FaceDetector, crop_face
    from ferhub.transforms import eval_tensor

    detector = FaceDetector(runtime="torch")
    photos = [Image.open(p).convert("RGB") for p in sorted(EXAMPLES_DIR.glob("*.jpg"))]
    faces = [(photo, face) for photo in photos for face in detector.detect(photo)]
    onnx_probs, torch_probs = [], []
    for i, member in enumerate(model.members):
        batch = eval_tensor([crop_face(p, f, member.config) for p, f in faces], member.config).numpy()
        session = _onnx.session(folder / f"member-{i}.onnx")
        onnx_probs.append(_onnx.softmax(session.run(None, {"input": batch})[0]))
        torch_probs.append(_onnx.torch_probabilities(member, batch))
    return _onnx._check("ensemble", model.combine(torch_probs), model.combine(onnx_probs), _onnx.TOLERANCE)
