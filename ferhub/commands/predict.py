"""``ferhub predict PATH...``: the expression of every face, as JSON, CSV or a table."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    p.add_argument(
        "--model",
        action="append",
        metavar="ID|PATH",
        help="bundled name, Hub id (org/name[@revision]) or local model folder; repeat to run several "
        "(default: the bundled FER2013 mini-Xception)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--format", choices=("json", "csv", "table"), default="json", help="output format")
    p.add_argument(
        "--no-face",
        choices=("skip", "fallback"),
        default="skip",
        help="photo without a detected face: report no faces (skip) or classify the whole image (fallback)",
    )
    p.add_argument("--min-face-size", type=int, default=None, help="smallest face side to detect, in pixels")
    p.add_argument(
        "--saliency",
        metavar="METHOD",
        default=None,
        help="also write attribution overlays (gradcam, guided_backprop, integrated_gradients, saliency, "
        "occlusion) into --out",
    )
    p.add_argument("--out", metavar="DIR", default=None, help="folder for --saliency overlays")


def _table(results: list[Any]) -> str:
    lines = []
    for r in results:
        if r.error:
            lines.append(f"{r.path}: ERROR {r.error}")
            continue
        lines.append(f"{r.path} ({r.width}x{r.height}): {len(r.faces)} face(s)")
        for i, f in enumerate(r.faces):
            x1, y1, x2, y2 = (round(v) for v in f.face.box)
            for pred in f.predictions:
                top = sorted(pred.probabilities.items(), key=lambda kv: -kv[1])[:3]
                probs = ", ".join(f"{k} {v:.2f}" for k, v in top)
                lines.append(
                    f"  face {i} [{x1},{y1},{x2},{y2}] score {f.face.score:.3f}  {pred.model}: {pred.label}  ({probs})"
                )
    return "\n".join(lines)


def _write_csv(results: list[Any], out: Any) -> None:
    labels: list[str] = []
    for r in results:
        for f in r.faces:
            for pred in f.predictions:
                labels += [k for k in pred.probabilities if k not in labels]
    w = csv.writer(out)
    w.writerow(
        ["path", "face", "x1", "y1", "x2", "y2", "score", "face_found", "model", "label", *labels, "error"]
    )
    for r in results:
        if r.error or not r.faces:
            w.writerow([r.path, "", "", "", "", "", "", "", "", "", *[""] * len(labels), r.error or ""])
        for i, f in enumerate(r.faces):
            for pred in f.predictions:
                probs = [f"{pred.probabilities[k]:.6f}" if k in pred.probabilities else "" for k in labels]
                box = [f"{v:.1f}" for v in f.face.box]
                w.writerow(
                    [
                        r.path,
                        i,
                        *box,
                        f"{f.face.score:.4f}",
                        f.face.face_found,
                        pred.model,
                        pred.label,
                        *probs,
                        "",
                    ]
                )


def run(args: argparse.Namespace) -> int:
    from ferhub.faces import FaceDetector
    from ferhub.predict import Predictor, default_device, iter_image_files

    files = iter_image_files(args.paths)
    if not files:
        print("ferhub predict: no image files found in " + ", ".join(args.paths), file=sys.stderr)
        return 2
    detector = None
    if args.min_face_size:
        detector = FaceDetector(min_face_size=args.min_face_size, device=args.device or default_device())
    predictor = Predictor(args.model, device=args.device, detector=detector, no_face=args.no_face)
    results = predictor.predict(files)
    for r in results:
        if r.error:
            print(f"ferhub predict: {r.path}: {r.error}", file=sys.stderr)

    if args.saliency:
        from ferhub.saliency import write_overlays

        if not args.out:
            print("ferhub predict: --saliency needs --out DIR", file=sys.stderr)
            return 2
        for path in write_overlays(predictor, results, method=args.saliency, out_dir=args.out):
            print(f"ferhub predict: wrote {path}", file=sys.stderr)

    if args.format == "json":
        json.dump([r.to_dict() for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.format == "csv":
        _write_csv(results, sys.stdout)
    else:
        print(_table(results))
    return 0 if any(r.ok for r in results) else 1
