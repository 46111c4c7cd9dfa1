"""``ferhub compare A B ... --data SOURCE``: paired comparison of models (agreement, kappa, McNemar's exact
test).

With ``--images`` instead of ``--data``, the models are compared on unlabelled photos: agreement and kappa
between their predictions for every detected face.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ferhub import strict_json
from ferhub.cli import debug_traceback
from ferhub.commands import (
    DEVICE_HELP,
    add_data_arguments,
    add_scoring_arguments,
    device_arg,
    input_path,
    output_path,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "models", nargs="+", type=input_path, metavar="MODEL", help="two or more model ids or folders"
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--data", type=input_path, metavar="SOURCE", help="labelled source (as for ferhub evaluate)"
    )
    what.add_argument(
        "--images",
        nargs="+",
        action="extend",  # repeated, as --model elsewhere: every occurrence counts, not the last
        type=input_path,
        metavar="PATH",
        help="unlabelled image files or folders (repeatable), in which faces are always detected; only"
        " --no-face fallback, --json and --device apply (photos without a face are skipped by default), the"
        " other data and scoring options are --data's",
    )
    add_data_arguments(p)
    add_scoring_arguments(
        p, no_face_default="fallback with --data; with --images, a photo without a face is skipped"
    )
    # None: not given, so that --images can tell an asked-for fallback from --data's default (fallback)
    p.set_defaults(no_face=None)
    p.add_argument("--device", type=device_arg, default=None, help=DEVICE_HELP)
    p.add_argument(
        "--out",
        type=output_path,
        default=None,
        metavar="FILE",
        help="also write an HTML report (with --data only)",
    )
    p.add_argument(
        "--json", type=output_path, default=None, metavar="FILE", help="write the comparison as JSON"
    )


def compare_runs(runs: list[Any]) -> dict[str, Any]:
    """Pairwise comparison of evaluation runs on the same source, in one canonical label space."""
    from ferhub.compare import compare_predictions, labels_to_indices
    from ferhub.labels import union_labels

    labels = list(union_labels(*(r.predictions.labels for r in runs)))

    def to_common(p: Any, idx: list[int]) -> list[int]:
        mapped = labels_to_indices(p.labels, labels)
        return [int(mapped[i]) if i >= 0 else -1 for i in idx]

    y_true = to_common(runs[0].predictions, runs[0].predictions.y_true)
    out = compare_predictions(
        [r.name for r in runs], [to_common(r.predictions, r.predictions.y_pred) for r in runs], y_true
    )
    out["labels"] = labels
    out["key"] = runs[0].key
    return out


def format_pairs(result: dict[str, Any]) -> str:
    """The pairs as a text table; agreement and kappa are over the ``both predicted`` items of each pair
    (``-`` over none: undefined)."""
    from ferhub.compare import format_rate

    header = ["A", "B", "agreement", "kappa", "both predicted"]
    labelled = "mcnemar" in result["pairs"][0]
    if labelled:
        header += ["acc A", "acc B", "only A right", "only B right", "McNemar p"]
    rows = []
    for r in result["pairs"]:
        row = [r["a"], r["b"], format_rate(r["agreement"]), format_rate(r["kappa"]), str(r["num_compared"])]
        if labelled:
            mc = r["mcnemar"]
            row += [
                f"{r['accuracy_a']:.4f}",
                f"{r['accuracy_b']:.4f}",
                str(mc["a_only_correct"]),
                str(mc["b_only_correct"]),
                f"{mc['p_value']:.4g}",
            ]
        rows.append(row)
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]
    )


def stdout_results(args: argparse.Namespace) -> str | None:
    """How to keep the comparison where stdout's table is all of it (refused closed:
    :func:`ferhub.cli._stdout_refused`): not with ``--json`` or ``--out``, which write it to a file too."""
    return None if args.json or args.out else "give --json FILE, or send stdout to a file"


def _named_twice(models: list[str]) -> str | None:
    """The first model named twice (the same id, two paths of one folder, or a bundled model's two names:
    ``fer-mini-xception`` and ``ferhub/fer-mini-xception``), whose rows would repeat."""
    from ferhub.evaluation import model_key

    seen: set[str] = set()
    for model in models:
        key = model_key(model)
        if key in seen:
            return repr(model)
        seen.add(key)
    return None


def run(args: argparse.Namespace) -> int:
    from ferhub import evaluation
    from ferhub.cli import describe
    from ferhub.commands import device_error, label_names_error
    from ferhub.data import DataSourceError
    from ferhub.data.sources import column_options
    from ferhub.hub import ModelLoadError

    if len(args.models) < 2:
        print("ferhub compare: name at least two models", file=sys.stderr)
        return 2
    if twice := _named_twice(args.models):
        print(
            f"ferhub compare: {twice} is named twice; a model agrees with itself, so name each model once",
            file=sys.stderr,
        )
        return 2
    if error := device_error(args.device) or label_names_error(args.label_names) or _images_refused(args):
        print(f"ferhub compare: {error}", file=sys.stderr)
        return 2
    if error := _outputs_unwritable(args):
        print(f"ferhub compare: {error}", file=sys.stderr)
        return 2
    runs: list[Any] = []
    try:
        if args.images:
            from ferhub.predict import Predictor

            files = _photos(args.images)
            if not files:  # as `ferhub predict` says it: nothing to do (exit 2), not "no face was found"
                print(f"ferhub compare: no photo files found in {', '.join(args.images)}", file=sys.stderr)
                return 2
            predictor = Predictor(args.models, device=args.device, no_face=args.no_face or "skip")
            result = evaluation.compare_on_images(predictor, [str(f) for f in files], on_error=_say)
            unread = result.get("unreadable", {}).get("count", 0)
            print(
                f"{result['num_faces']} faces in {len(files)} images"
                + (f" ({unread} could not be read)" if unread else "")
            )
        else:
            source = evaluation.open_data(
                args.data,
                args.split,
                label_names=args.label_names,
                precropped=args.precropped,
                **column_options(args),
            )
            runs = evaluation.evaluate(
                args.models,
                source,
                tta=args.tta,
                no_face=args.no_face or "fallback",
                precropped=args.precropped,
                device=args.device,
            )
            result = compare_runs(runs)
            unreadable = runs[0].entry.get("unreadable")
            if unreadable:
                print(
                    f"{source.name}: {unreadable['count']} images could not be decoded and were skipped "
                    f"(first: {unreadable['examples'][0]['error']})",
                    file=sys.stderr,
                )
            print(f"{source.name} ({source.split or 'all'}), {len(runs[0].predictions.y_true)} images")
    except (DataSourceError, ModelLoadError, evaluation.EvaluationError, ValueError) as e:
        debug_traceback(args)
        code, why = describe(e)  # 1, or 3 when the Hub holding a model or the data cannot be reached
        print(f"ferhub compare: {why}", file=sys.stderr)
        return code
    print(format_pairs(result))  # before the report: a report that cannot be written keeps the table
    if args.json:
        from ferhub.fileio import atomic_write_text

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)  # as report.html's folder is made
        # atomically: a failed write (a full disk) keeps the earlier file whole
        atomic_write_text(args.json, strict_json.dumps(result, indent=2) + "\n")
    if args.out and runs:
        print(f"report: {_write_report(args.out, source, runs)}", file=sys.stderr)
    return 0


def _images_refused(args: argparse.Namespace) -> str | None:
    """Why ``--images`` cannot run as given (``--out``, a video named), before anything loads; else
    ``None``."""
    from ferhub.videoio import is_video_path

    if not args.images:
        return None
    if args.out:  # the report is of labelled data: metrics, confusion matrices, McNemar's test
        return "--out writes a report of labelled data (--data); with --images use --json"
    # options of --data that photos have no use for: refused, never silently dropped
    data_only = [
        option
        for option, given in (
            ("--split", args.split),
            ("--label-names", args.label_names),
            ("--data-config", args.data_config),
            ("--image-column", args.image_column),
            ("--label-column", args.label_column),
            # --detect is what --images always does: taken, not refused
            ("--precropped", args.precropped is True),
            ("--tta", args.tta),
            ("--no-face wrong", args.no_face == "wrong"),
        )
        if given
    ]
    if data_only:
        return (
            f"{', '.join(data_only)} {'applies' if len(data_only) == 1 else 'apply'} to --data only; with"
            " --images, leave it out (--no-face fallback classifies the whole photo where no face is found)"
        )
    videos = [p for p in args.images if is_video_path(p)]
    if videos:
        return (
            f"{videos[0]}: --images compares photos, not videos; run `ferhub predict {videos[0]} --model A "
            "--model B` to see several models on a video"
        )
    return None


def _outputs_unwritable(args: argparse.Namespace) -> str | None:
    """The line refusing a ``--json`` or ``--out`` file that cannot be written, or ``None``: checked before
    any work, as ``evaluate --out`` is, so a long comparison is not lost at its end."""
    from ferhub.commands.predict import out_file_unwritable

    for option, value in (("--json", args.json), ("--out", args.out)):
        if value is not None and (problem := out_file_unwritable(Path(value), f"{option} {value}")):
            return problem
    return None


def _photos(paths: list[str]) -> list[Path]:
    """The photos ``--images`` names: folders scanned as ``ferhub predict`` scans them (hidden files passed
    over, linked folders followed, what could not be read said), keeping the photos; files named are kept as
    given."""
    from ferhub.inputs import scan
    from ferhub.videoio import is_video_path

    found = scan(paths)
    if skipped := found.skipped_message():
        _say(None, skipped)
    named = set(map(Path, paths))
    files = [f for f in found.files if f in named or not is_video_path(f)]
    if len(files) < len(found.files):
        _say(
            None,
            f"left out {len(found.files) - len(files)} video(s) in the folders: --images compares photos",
        )
    return files


def _say(path: str | None, error: str) -> None:
    """One line on stderr for an image that could not be read, naming it (as ``ferhub predict`` does)."""
    from ferhub.writers import printable

    text = error if path is None or error.startswith(path) else f"{path}: {error}"
    print(f"ferhub compare: {printable(text)}", file=sys.stderr)


def _write_report(out: str, source: Any, runs: list[Any]) -> Path:
    """The HTML comparison report: every model's metrics and figures, the paired tests and thumbnails."""
    from ferhub.report import runs_section, write_report

    return write_report(out, [runs_section(source, runs)], title="ferhub model comparison")
