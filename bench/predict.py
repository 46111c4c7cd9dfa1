"""Benchmark of the one inference path (issue 3 targets), printing a Markdown table.

    python bench/predict.py [--device cpu|cuda] [--runs 30]

Measures, in one run so the numbers compare as ratios on a shared machine:
- end-to-end latency of one 640x480 JPEG with one face (decode + detect + crop + classify), median and p90;
- classifier throughput on 64x64 face crops at batch 1 and 64 (preprocessing included);
- a new ``ferhub predict`` process on one image (warm ONNX cache) vs ``python -c "import torch"``;
- ``import ferhub`` vs ``import torch``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import print_table, timed
from PIL import Image

from ferhub import assets
from ferhub.device import cpu_name


def one_face_photo() -> bytes:
    """The shared 640x480 one-face benchmark photo (:func:`ferhub.assets.one_face_photo`) as a JPEG."""
    buf = io.BytesIO()
    assets.one_face_photo().save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def subprocess_seconds(code: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(code, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return times


def p90(xs: list[float]) -> float:
    return float(np.percentile(xs, 90))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--model", default=None, help="model id (default: the bundled default)")
    args = parser.parse_args()

    import torch

    from ferhub.predict import Predictor

    predictor = Predictor(args.model, device=args.device)
    photo = one_face_photo()
    n_faces = len(predictor.predict_image(photo).faces)
    e2e = timed(lambda: predictor.predict_image(photo), args.runs)
    detect_img = Image.open(io.BytesIO(photo)).convert("RGB")
    det = timed(lambda: predictor.detector.detect(detect_img), args.runs)

    cfg = predictor.models[0].config
    rng = np.random.default_rng(0)
    crops = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(64)]
    b1 = timed(lambda: predictor.classify_crops(crops[:1]), args.runs * 3)
    b64 = timed(lambda: predictor.classify_crops(crops), args.runs)

    rows = [
        (
            "end-to-end 640x480, 1 face (decode+detect+classify)",
            f"{statistics.median(e2e) * 1e3:.1f} ms",
            f"{p90(e2e) * 1e3:.1f} ms",
            "<= 40 ms median",
        ),
        (
            "  of which face detection",
            f"{statistics.median(det) * 1e3:.1f} ms",
            f"{p90(det) * 1e3:.1f} ms",
            "",
        ),
        (
            f"classifier, batch 1 ({cfg.architecture}, 64x64 crops)",
            f"{1 / statistics.median(b1):.0f} crops/s",
            "",
            "",
        ),
        (
            f"classifier, batch 64 ({cfg.architecture}, 64x64 crops)",
            f"{64 / statistics.median(b64):.0f} crops/s",
            "",
            ">= 1000 crops/s",
        ),
    ]

    if args.device == "cpu":
        with tempfile.TemporaryDirectory() as tmp:
            img = Path(tmp) / "photo.jpg"
            img.write_bytes(photo)
            py = sys.executable
            t_torch = subprocess_seconds([py, "-c", "import torch"], args.cold_runs)
            t_ferhub = subprocess_seconds([py, "-c", "import ferhub"], args.cold_runs)
            t_cold = subprocess_seconds([py, "-m", "ferhub", "predict", str(img)], args.cold_runs)
        mt, mf, mc = (statistics.median(t) for t in (t_torch, t_ferhub, t_cold))
        rows += [
            ("python -c 'import torch'", f"{mt:.2f} s", f"{p90(t_torch):.2f} s", "reference"),
            (
                "python -c 'import ferhub'",
                f"{mf:.2f} s",
                f"{p90(t_ferhub):.2f} s",
                f"<= 1.2x torch (is {mf / mt:.2f}x)",
            ),
            (
                "new process `ferhub predict photo.jpg` (warm ONNX cache)",
                f"{mc:.2f} s",
                f"{p90(t_cold):.2f} s",
                f"<= torch + 1.5 s (is {mc - mt:+.2f} s against torch's import)",
            ),
        ]

    print(
        f"ferhub predict benchmark — {cpu_name()}, device {args.device}, torch {torch.__version__}, threads"
        f" {torch.get_num_threads()}, {args.runs} runs after warm-up, faces found {n_faces}"
    )
    print()
    print_table(("measure", "median", "p90", "target"), rows)


if __name__ == "__main__":
    main()
