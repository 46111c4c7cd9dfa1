"""``ferhub export MODEL --format onnx --out DIR``: the model repo plus ``model.onnx``, checked against
PyTorch."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ferhub.commands import input_path, output_path

if TYPE_CHECKING:
    from ferhub.export import ExportReport


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        type=input_path,
        metavar="MODEL",
        help="bundled name, Hub id (org/name[@rev]) or model folder",
    )
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format (default: onnx)")
    p.add_argument(
        "--out",
        required=True,
        type=output_path,
        metavar="DIR",
        help=(
            "folder to write the exported repo to: a new or empty one, one of other files (kept), or an"
            " earlier export, which is replaced (its README.md, card.json, config.json, model.safetensors,"
            " eval_results.json and .onnx graphs that this export does not write are removed; other files"
            " stay). A folder holding such files that is no export (a model repo, a project's README.md) is"
            " refused (exit 2), as are an empty name, a file and the model's own folder. Other files of the"
            " model's folder are copied too, but never over a different file of the same name in DIR: such"
            " a folder is refused (exit 2, before any work; for a Hub id, once it is downloaded) and the file"
            " is kept. A failed export leaves DIR as it was (folders it made removed)"
        ),
    )
    p.add_argument(
        "--quantize",
        choices=["int8"],
        help=(
            "also write model.int8.onnx (static QDQ int8), kept only if its top-1 agrees with fp32 on >= 99%%"
            " of real face crops (the example photos' faces and scikit-image's 100 LFW faces); when it is"
            " not, the fp32 export stays and the exit status is 1. Needs scikit-image (pip install"
            " scikit-image): without it, refused (exit 2) before any work. Single models only: an ensemble"
            " is refused (exit 2) before any work"
        ),
    )


def run(args: argparse.Namespace) -> int:
    """Export; 2 (before writing anything, and for a local model before loading it) when ``--out`` or
    ``--quantize`` cannot work (:func:`ferhub.export.out_problem`, :func:`ferhub.export.quantize_problem`)."""
    from ferhub.export import OUT_RULE, Int8Refused, UnfitExport, export_onnx, out_problem, quantize_problem

    problem = out_problem(args.model, args.out)
    if problem:
        print(f"ferhub export: --out {problem}; {OUT_RULE}", file=sys.stderr)
        return 2
    problem = quantize_problem(args.model, args.quantize)
    if problem:
        print(f"ferhub export: {problem}", file=sys.stderr)
        return 2
    try:
        report = export_onnx(args.model, args.out, quantize=args.quantize)
    except UnfitExport as e:  # what only loading tells (a Hub id's own folder, or its ensemble)
        print(f"ferhub export: {e}", file=sys.stderr)
        return 2
    except Int8Refused as e:  # the fp32 graph was written and checked: say so before the refusal
        _print(e.report)
        raise
    _print(report)
    return 0


def _print(report: ExportReport) -> None:
    """What was written and how it checked against PyTorch."""
    print(f"wrote {report.folder}: {', '.join(report.files)}")
    print(
        f"checked against PyTorch on {report.crops} crops: max |probability difference| "
        f"{report.max_difference:.1e}"
    )
    if report.int8_agreement is not None:
        print(
            f"int8 top-1 agreement with fp32 on {report.int8_crops} real face crops:"
            f" {report.int8_agreement:.1%}"
        )
