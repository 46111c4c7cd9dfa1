"""Benchmark of the model zoo, printing a Markdown table (the README quotes it).

    python bench/zoo.py [--runs 20] [--threads 1]

Per zoo model available on this machine (bundled, or imported with ``ferhub zoo import``) and the bundled
ensemble: parameters, repo size on disk, classifier throughput on face crops at batch 1 and 64 through
``Predictor.classify_crops`` (crop resize + normalisation included), and the end-to-end latency of one 640x480
JPEG with one face through ``Predictor.predict`` (decode, MTCNN detection, per-model crop, classify). Times
are medians of ``--runs`` rounds after two warm-up rounds (batch 64 every other round); each round times every
model once, so that all models see the same share of a busy machine and compare as ratios.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from ferhub import assets
from ferhub.device import cpu_name


def one_face_photo() -> bytes:
    """The shared 640x480 one-face benchmark photo (:func:`ferhub.assets.one_face_photo`) as a JPEG."""
    buf = io.BytesIO()
    assets.one_face_photo().save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def repo_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def main() -> None:
    p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--runs", type=int, default=20, help="timed runs per measurement (median reported)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help=(
            "torch intra-op threads (default 1: on a shared, oversubscribed machine two threads were 4x"
            " slower than one; 0 keeps torch's default)"
        ),
    )
    args = p.parse_args()

    import torch

    from ferhub import hub, zoo
    from ferhub.faces import FaceDetector
    from ferhub.images import load_image
    from ferhub.predict import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    photo_bytes = one_face_photo()
    photo = load_image(photo_bytes)
    detector = FaceDetector(device="cpu")
    (face,) = detector.detect(photo)
    x1, y1, x2, y2 = face.box
    # The detected face, given to classify_crops as a pre-cropped input.
    crop = photo.crop((round(x1), round(y1), round(x2), round(y2)))

    names = [e.name for e in zoo.ZOO] + [zoo.ENSEMBLE_NAME]
    loaded: dict[str, tuple[Predictor, str, float, int]] = {}
    missing = []
    for name in names:
        folder = zoo.bundled_folder(name) if name == zoo.ENSEMBLE_NAME else zoo.local_folder(name)
        if folder is None:
            missing.append(name)
            continue
        model = hub.load(str(folder))
        members = getattr(model, "members", None)
        params = sum(p.numel() for p in model.parameters())  # an ensemble counts its members'
        size = repo_size(folder)
        if members:
            size += sum(repo_size(hub.resolve(m)) for m in model.config.model_args["members"])
        cfg = model.config
        inp = (
            "per member"
            if members
            else f"{cfg.input_size}x{cfg.input_size} {'gray' if cfg.channels == 1 else 'RGB'}"
        )
        loaded[name] = (Predictor(model, device="cpu", detector=detector, batch_size=64), inp, params, size)

    # Round-robin: every round times each model once, so all models see the same (shared, drifting) CPU load.
    measures: dict[str, Callable[[Predictor], object]] = {
        "b1": lambda pr: pr.classify_crops([crop]),
        "b64": lambda pr: pr.classify_crops([crop] * 64),
        "e2e": lambda pr: pr.predict([photo_bytes]),
    }
    times: dict[tuple[str, str], list[float]] = {(n, m): [] for n in loaded for m in measures}
    for r in range(args.runs + 2):  # two warm-up rounds
        for name, (predictor, *_rest) in loaded.items():
            for key, fn in measures.items():
                if key == "b64" and r % 2 != 0:
                    continue  # batch 64 is 64x the work of a batch-1 call: time it every other round
                t = time.perf_counter()
                fn(predictor)
                if r >= 2:
                    times[(name, key)].append(time.perf_counter() - t)
    rows = []
    for name, (_, inp, params, size) in loaded.items():
        t1, t64, e2e = (statistics.median(times[(name, k)]) for k in ("b1", "b64", "e2e"))
        rows.append(
            f"| {name} | {inp} | {params / 1e6:.3f} M | {size / 1e6:.2f} MB | {1 / t1:,.0f} | {64 / t64:,.0f}"
            f" | {e2e * 1e3:.1f} ms |"
        )
    rows += [f"| {name} | not imported (`ferhub zoo import {name}`) | | | | | |" for name in missing]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads (1-min load"
        f" average {load:.1f} at the end: other processes share these cores); medians of {args.runs} runs\n"
    )
    print(
        "| model | input | params | repo size | crops/s, batch 1 | crops/s, batch 64 | 640x480 one-face"
        " photo, end to end |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
