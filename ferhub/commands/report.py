"""``ferhub report --results ... --video ... --out report.html``: a standalone HTML dashboard from
eval_results.json files and from the video results of ``ferhub predict --format json``."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from ferhub.cli import debug_traceback
from ferhub.commands import add_data_arguments, input_path, output_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--results",
        nargs="+",
        action="extend",  # repeated, as --model elsewhere: every occurrence counts, not the last
        type=input_path,
        default=[],
        metavar="PATH|ID",
        help="eval_results.json files, model folders, bundled names or Hub ids whose results to show; a "
        "folder `ferhub evaluate --out` wrote gives the results of every model evaluated into it",
    )
    p.add_argument(
        "--video",
        nargs="+",
        action="extend",
        type=input_path,
        default=[],
        metavar="FILE",
        help="JSON written by `ferhub predict CLIP.mp4 --format json` (or its --out-dir files): a timeline "
        "per person and the per-person summaries for each video in it",
    )
    p.add_argument(
        "--predictions",
        nargs="*",
        action="extend",
        type=input_path,
        default=[],
        metavar="FILE",
        help="per-image *.predictions.json written by `ferhub evaluate --out` (paired tests, misclassified);"
        " several results of one name (runA/model runB/model) take their files in the order given",
    )
    p.add_argument(
        "--data",
        default=None,
        type=input_path,
        metavar="SOURCE",
        help="the evaluated source, to show misclassified thumbnails (opened with the options given to"
        " `ferhub evaluate`)",
    )
    add_data_arguments(p)
    p.add_argument("--key", action="append", default=None, help="only these dataset keys (repeatable)")
    p.add_argument("--title", default=None, help="report title (default: evaluation / video report)")
    p.add_argument(
        "--out",
        type=output_path,
        default="report.html",
        metavar="FILE",
        help="HTML file to write (default report.html, replaced)",
    )


class NoResults(FileNotFoundError):
    """A model found, without an ``eval_results.json`` (a bundled model never evaluated)."""


def load_results(ref: str) -> tuple[str, dict[str, Any]]:
    """``(model name, eval_results dict)`` from a results file, a model folder, a bundled name or a Hub id."""
    from ferhub.hub import EVAL_RESULTS_NAME, read_eval_results, resolve

    path = Path(ref)
    if path.is_file():
        if path.name != EVAL_RESULTS_NAME:
            raise ValueError(f"{ref}: give a model folder, a model id or a file named {EVAL_RESULTS_NAME}")
        folder, default_name = path.parent, path.parent.resolve().name
    else:
        folder = resolve(ref)
        default_name = ref if not path.exists() else path.resolve().name
    data = read_eval_results(folder)
    if data is None:
        raise NoResults(_no_results(ref, folder))
    return default_name, data


def _no_results(ref: str, folder: Path) -> str:
    """Why ``ref`` (found at ``folder``) gives no results, and what to give instead: a model never evaluated
    is to be evaluated; a folder an older ``ferhub evaluate --out`` wrote for models given as folders holds
    only the report and the predictions, and does not record those folders (their results went into them)."""
    from ferhub.hub import EVAL_RESULTS_NAME

    if (folder / "config.json").is_file() or not folder.is_dir():
        return f"{ref}: no {EVAL_RESULTS_NAME}; run `ferhub evaluate --model {ref} --data ...` first"
    if _has_predictions(folder):
        return (
            f"{ref}: a folder an older `ferhub evaluate --out` wrote, which does not record where the results"
            " of a model given as a folder went (into that folder); give those model folders to --results"
            f" (and --predictions {Path(ref) / '*.predictions.json'} for the per-image sections)"
        )
    return (  # no model either, so `ferhub evaluate --model` would refuse it
        f"{ref}: neither a model folder (no config.json) nor one `ferhub evaluate --out` wrote; give a"
        f" model folder, its {EVAL_RESULTS_NAME}, a bundled model name or a Hub id"
    )


def _has_predictions(folder: Path) -> bool:
    """Whether ``folder`` holds a ``*.predictions.json`` (named only: none is opened)."""
    return next(folder.glob("*.predictions.json"), None) is not None


def _is_dir(path: Path) -> bool:
    """``path.is_dir()``, ``False`` for a name the system refuses (too long)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _as_given(folder: Path) -> str:
    """``folder`` as a user in the working folder would give it (relative where it is inside it): its name
    may tag a model in the report, where a whole absolute path told more than was asked."""
    if not folder.is_absolute():
        return str(folder)
    try:
        relative = os.path.relpath(folder)
    except (OSError, ValueError):  # the working folder is gone (or on another drive)
        return str(folder)
    if relative == ".." or relative.startswith(("../", "~")):  # outside; or read back as a home folder
        return str(folder)
    return relative


def results_folders(ref: str) -> list[str]:
    """The model folders with results in a folder that ``ferhub evaluate --out`` wrote, or ``[ref]`` for
    anything else: those it records (:func:`~ferhub.commands.evaluate.read_results_folders`; a model given as
    a local folder keeps its results there), and ``DIR/<model>/`` (not the ``<model>.replaced-N`` copies of
    other weights moved aside there). ``ValueError`` for a record that evaluate did not write."""
    from ferhub.commands.evaluate import read_results_folders
    from ferhub.hub import EVAL_RESULTS_NAME

    path = Path(ref)
    if not path.is_dir() or (path / EVAL_RESULTS_NAME).is_file() or (path / "config.json").is_file():
        return [ref]  # a model folder (with or without results), or no folder
    inner = sorted(
        f
        for f in path.iterdir()
        if (f / EVAL_RESULTS_NAME).is_file() and not re.search(r"\.replaced-\d+$", f.name)
    )
    recorded = read_results_folders(path)
    if recorded is None and inner and _has_predictions(path):  # the record began after these files
        print(
            f"ferhub report: note: {ref} was written by an older `ferhub evaluate --out`, which does not"
            " record the results of models given as folders (they are in those folders): give any such to"
            " --results too",
            file=sys.stderr,
        )
    folders = {os.path.realpath(f): str(f) for f in inner}
    for f in recorded or []:
        folder = path / f  # one outside it is recorded whole (absolute): the / gives it as it is
        folders.setdefault(os.path.realpath(folder), _as_given(folder))
    return list(folders.values()) or [ref]


def load_all_results(refs: list[str]) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """:func:`load_results` of each ref, and the refs that loaded (in order); a folder that ``ferhub evaluate
    --out`` wrote stands for its model folders (:func:`results_folders`). A model without results (a
    bundled model never evaluated, or a folder evaluated into ``--out`` and gone since) is named on stderr
    and the others are reported; the first such is raised when none has any. Anything else (no such model,
    a corrupt results file, the Hub down) is raised: a mistyped name never leaves a report quietly short of a
    model."""
    results: list[tuple[str, dict[str, Any]]] = []
    loaded: list[str] = []
    problems: list[Exception] = []
    for given in refs:
        for ref in results_folders(given):
            try:
                if ref != given and not _is_dir(Path(ref)):  # recorded by evaluate, removed or moved since
                    raise NoResults(f"{ref}: evaluated into {given}, but no such folder now")
                results.append(load_results(ref))
            except NoResults as e:
                problems.append(e)
                continue
            loaded.append(ref)
    if problems and not results:
        raise problems[0]
    from ferhub.cli import describe

    for problem in problems:  # one model without results never loses the others' report
        print(f"ferhub report: skipped {describe(problem)[1]}", file=sys.stderr)
    return results, loaded


def load_videos(paths: list[str]) -> list[dict[str, Any]]:
    """The video entries of ``ferhub predict`` JSON files (a list of entries, or one entry per file).

    A file that cannot be read or holds no video results is named on stderr and the others are reported;
    ``ValueError`` when none holds any."""
    import json

    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    for ref in paths:
        try:
            data = json.loads(Path(ref).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            problems.append(f"{ref}: cannot read it as ferhub predict JSON ({e})")
            continue
        found = [
            e
            for e in (data if isinstance(data, list) else [data])
            if isinstance(e, dict) and e.get("kind") == "video"
        ]
        if not found:
            problems.append(
                f"{ref}: holds no video results; write them with `ferhub predict CLIP.mp4 --format json`"
            )
        entries += found
    if problems and not entries:
        raise ValueError(
            problems[0] if len(problems) == 1 else f"no video results in {len(paths)} files: {problems[0]}"
        )
    for problem in problems:  # one bad file never loses the others' report
        print(f"ferhub report: skipped {problem}", file=sys.stderr)
    return entries


def predictions_mismatch(predictions: Any, entry: dict[str, Any]) -> str | None:
    """Why ``predictions`` (an :class:`~ferhub.evaluation.ImagePredictions`) are not the per-image rows of
    ``entry``: another number of images, or a confusion matrix rebuilt from their ``y_true`` / ``y_pred`` that
    is not the entry's (rows without a prediction have no cell, as ``ferhub evaluate`` counts them under
    ``--no-face wrong``); ``None`` when they agree. A key and a model name shared by two runs on other images
    (two folders named alike, results and files of different runs) would otherwise feed the paired table
    silently."""
    from ferhub.compare import align_matrix
    from ferhub.metrics import confusion_matrix

    rows, images = len(predictions.y_true), entry.get("num_images")
    if isinstance(images, int) and images != rows:
        return f"it holds {rows} images, the result {images}"
    if entry.get("labels") and entry.get("confusion_matrix") is not None:
        try:
            cm = confusion_matrix(predictions.y_true, predictions.y_pred, len(predictions.labels))
        except ValueError as e:  # class indices outside its labels: not a file evaluate wrote
            return str(e)
        both = list(dict.fromkeys([*entry["labels"], *predictions.labels]))
        if (
            align_matrix(cm, predictions.labels, both)
            != align_matrix(entry["confusion_matrix"], entry["labels"], both)
        ).any():
            return "its predictions give another confusion matrix than the result's"
    return None


def build_sections(
    results: list[tuple[str, dict[str, Any]]],
    predictions: list[Any],
    *,
    keys: list[str] | None = None,
    source: Any = None,
    refs: list[str] | None = None,
    prediction_files: list[str] | None = None,
) -> list[Any]:
    """One report section per dataset key, each with every model that has results for it.

    Two results of one name for one key (every training run writes ``OUT/model``) are both shown, told apart
    by ``refs`` (what was given for each, e.g. ``runA/model``); the second used to replace the first. Their
    predictions files, which name the model alike, go to the first of them whose images they hold
    (:func:`predictions_mismatch`), in the order given: by name alone the last file went to the first result.
    A predictions file that is of no such result's images, or that matches no result, is named on stderr (by
    ``prediction_files``, its path) and not used.

    An entry that ferhub cannot show (:func:`ferhub.eval_results.usable`: another tool's, malformed) is left
    out, named with what is wrong on stderr and in its key's section; the other entries are shown.
    """
    from ferhub.eval_results import usable
    from ferhub.evaluation import image_reader
    from ferhub.report import Section, misclassified_examples, unique_name

    by_key: dict[str, dict[str, Any]] = {}
    shown_as: dict[tuple[str, str], list[str]] = {}  # (key, model name) -> the names its results are shown by
    left_out: dict[str, list[str]] = {}  # key -> the entries left out of its section, and why
    for n, (default_name, data) in enumerate(results):
        data, bad = usable(data)
        for key, why in bad:
            if not keys or key in keys:
                given = refs[n] if refs else default_name
                print(f"ferhub report: {given}: left out {why}", file=sys.stderr)
                left_out.setdefault(key, []).append(f"{given}: {why}")
        for key, entry in data["results"].items():
            if keys and key not in keys:
                continue
            base = (entry.get("model") or {}).get("id") or default_name
            entries = by_key.setdefault(key, {})
            name = unique_name(base, entries, refs[n] if refs else str(n + 1))
            entries[name] = entry
            shown_as.setdefault((key, base), []).append(name)
    files = prediction_files or [f"the predictions of {p.model} on {p.key}" for p in predictions]
    used: set[int] = set()
    sections = []
    for key in dict.fromkeys([*by_key, *left_out]):  # a key whose every entry was left out: just the notes
        entries = by_key.get(key, {})
        preds: dict[str, Any] = {}
        for f, p in enumerate(predictions):
            shown = shown_as.get((key, p.model), []) if p.key == key else []
            if not shown:
                continue
            used.add(f)
            # the first result of this name whose images the file holds (files of same-named runs given in
            # another order than their results still find theirs)
            names = [n for n in shown if n not in preds]
            fits = [n for n in names if predictions_mismatch(p, entries[n]) is None]
            if fits:
                preds[fits[0]] = p
                continue
            if names:
                why = f"not of the images of {names[0]}'s result on {key}"
                why += f" ({predictions_mismatch(p, entries[names[0]])})"
            else:
                why = f"an earlier file holds the predictions of {shown[0]}'s result on {key}"
            print(
                f"ferhub report: {files[f]}: left out of the paired comparison and thumbnails: {why}",
                file=sys.stderr,
            )
        examples = {}
        if source is not None:  # thumbnails for the predictions of this source's images (by their indices)
            readers = {name: image_reader(p, source) for name, p in preds.items()}
            examples = {
                name: misclassified_examples(p, readers[name]) for name, p in preds.items() if readers[name]
            }
        sections.append(
            Section(
                title=key,
                entries=entries,
                predictions=preds,
                examples=examples,
                left_out=left_out.get(key, []),
            )
        )
    for f, p in enumerate(predictions):
        if f not in used and (not keys or p.key in keys):  # one --key leaves the files of others out
            print(
                f"ferhub report: {files[f]}: matches no result given (model {p.model}, key {p.key}); "
                "not used",
                file=sys.stderr,
            )
    return sections


def run(args: argparse.Namespace) -> int:
    from ferhub.cli import describe
    from ferhub.commands import label_names_error
    from ferhub.commands.predict import out_file_unwritable
    from ferhub.data.sources import column_options
    from ferhub.evaluation import EvaluationError, ImagePredictions, open_data
    from ferhub.hub import EvalResultsError, ModelLoadError
    from ferhub.report import write_report

    if not args.results and not args.video:
        print(
            "ferhub report: give --results (evaluation results) and/or --video (video results)",
            file=sys.stderr,
        )
        return 2
    # before any work: results of many models are not read (or Hub ones downloaded) for a report that
    # cannot be written
    if error := label_names_error(args.label_names) or out_file_unwritable(
        Path(args.out), f"--out {args.out}"
    ):
        print(f"ferhub report: {error}", file=sys.stderr)
        return 2
    try:
        videos = load_videos(args.video)
        results, refs = load_all_results(args.results)
        predictions = [ImagePredictions.load(f) for f in args.predictions]
        source = None
        if args.data:
            source = open_data(args.data, args.split, label_names=args.label_names, **column_options(args))
        sections = build_sections(
            results, predictions, keys=args.key, source=source, refs=refs, prediction_files=args.predictions
        )
        if args.results and not any(s.entries for s in sections):
            print("ferhub report: no results match; check --results and --key", file=sys.stderr)
            return 1
        title = args.title or ("ferhub evaluation report" if sections else "ferhub video report")
        path = write_report(args.out, sections, title=title, videos=videos)
    except (EvalResultsError, ModelLoadError, EvaluationError, FileNotFoundError, ValueError) as e:
        debug_traceback(args)
        code, why = describe(e)  # 1, or 3 when the Hub holding the results cannot be reached
        print(f"ferhub report: {why}", file=sys.stderr)
        return code
    print(path)
    return 0
