"""Face detection latency: facenet-pytorch's ``MTCNN.detect`` against ferhub's ``FaceDetector``, as a table.

    python bench/detect.py [--runs 30] [--device cpu|cuda]

Both detectors run in the same process, interleaved call by call, so a busy shared machine slows them alike
and the ratio stays meaningful. Photos: a 640x480 photo with one face (matplotlib's Grace Hopper portrait on a
blurred backdrop, as in ``bench/predict.py``), the same scene at 1600x1200 (ferhub detects on a copy scaled to
``max_side``), and a 960x640 canvas with six faces. Times are medians and 90th percentiles over ``--runs``
calls after warm-up, with torch's default thread count.

A last table times ferhub's detector on the 640x480 photo with glibc's default malloc settings
(``FERHUB_MALLOC=default``) and with ferhub's (``ferhub/_malloc.py``): child processes, alternating, 1 torch
thread, medians of their medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from ferhub.assets import one_face_photo


def six_faces() -> Image.Image:
    """The astronaut's and Grace Hopper's heads and four upscaled LFW faces on a 960x640 canvas."""
    from matplotlib import cbook
    from skimage import data

    canvas = Image.new("RGB", (960, 640), (118, 124, 131))
    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = Image.open(f).convert("RGB")
    canvas.paste(Image.fromarray(data.astronaut()).crop((130, 10, 320, 230)), (20, 20))
    canvas.paste(hopper.crop((120, 60, 410, 400)).resize((190, 223)), (290, 30))
    lfw = data.lfw_subset()
    for i, xy in zip((0, 11, 23, 42), ((560, 40), (760, 60), (120, 420), (560, 400))):
        face = Image.fromarray((lfw[i] * 255).round().astype(np.uint8)).convert("RGB")
        canvas.paste(face.resize((110, 110), Image.Resampling.BICUBIC), xy)
    return canvas


def interleaved(fns: dict[str, Callable[[], object]], runs: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call of each function, calling them in turn so load changes hit all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def detection_child(runs: int) -> None:
    """(Child process) median ms of ferhub's detector on the 640x480 photo, 1 torch thread, printed as JSON."""
    import torch

    from ferhub.faces import FaceDetector

    torch.set_num_threads(1)
    detector, photo = FaceDetector(), one_face_photo()
    times = interleaved({"detect": lambda: detector.detect(photo)}, runs, 5)["detect"]
    print(json.dumps(statistics.median(times) * 1000))


def malloc_comparison(runs: int, rounds: int = 3) -> dict[str, float]:
    """Median over ``rounds`` alternating child processes of their median detection ms, per malloc setting."""
    settings = {"glibc defaults (FERHUB_MALLOC=default)": "default", "ferhub's (ferhub/_malloc.py)": ""}
    results: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(rounds):
        for name, value in settings.items():
            env = {**os.environ, "FERHUB_MALLOC": value}
            out = subprocess.run(
                [sys.executable, __file__, "--child-runs", str(runs)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[name].append(json.loads(out.strip().splitlines()[-1]))
    return {name: statistics.median(ms) for name, ms in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child-runs", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_runs:
        detection_child(args.child_runs)
        return

    import torch

    from ferhub._compat import import_torchvision

    import_torchvision()
    from facenet_pytorch import MTCNN

    from ferhub.faces import FaceDetector

    device = torch.device(args.device)
    detectors: dict[str, Callable[[Image.Image], int]] = {}
    for min_face in (20, 40):
        mtcnn = MTCNN(keep_all=True, min_face_size=min_face, device=device)

        def run_mtcnn(image: Image.Image, m: MTCNN = mtcnn) -> int:
            boxes, _ = m.detect(image)
            return 0 if boxes is None else len(boxes)

        detectors[f"MTCNN.detect (min face {min_face})"] = run_mtcnn
    for label, kwargs in (("default: auto min face", {}), ("min face 20", {"min_face_size": 20})):
        ferhub_detector = FaceDetector(device=args.device, **kwargs)
        detectors[f"ferhub FaceDetector ({label})"] = lambda image, d=ferhub_detector: len(d.detect(image))

    photos = {
        "640x480, 1 face": one_face_photo(),
        "1600x1200, 1 face": one_face_photo(1600, 1200),
        "960x640, 6 faces": six_faces(),
    }
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
        f"{platform.processor() or platform.machine()}, load average {load:.1f} at start; "
        f"{args.runs} runs after {args.warmup} warm-up, interleaved\n"
    )
    print("| photo | detector | faces | median ms | p90 ms |")
    print("|---|---|---:|---:|---:|")
    medians: dict[tuple[str, str], float] = {}
    for photo_name, photo in photos.items():
        fns = {name: (lambda fn=fn, p=photo: (fn(p), sync())) for name, fn in detectors.items()}
        times = interleaved(fns, args.runs, args.warmup)
        for name, ts in times.items():
            ms = np.asarray(ts) * 1000
            medians[photo_name, name] = float(np.median(ms))
            faces = detectors[name](photo)
            print(f"| {photo_name} | {name} | {faces} | {np.median(ms):.1f} | {np.percentile(ms, 90):.1f} |")
    print()
    for photo_name in photos:
        ref = medians[photo_name, "MTCNN.detect (min face 20)"]
        ours = medians[photo_name, "ferhub FaceDetector (default: auto min face)"]
        same = medians[photo_name, "ferhub FaceDetector (min face 20)"]
        print(
            f"{photo_name}: MTCNN.detect (its default, min face 20) / ferhub default = {ref / ours:.1f}x; "
            f"at the same min face 20: {ref / same:.1f}x"
        )
    if args.device == "cpu":
        malloc = malloc_comparison(args.runs)
        print("\n| ferhub detection, 640x480, 1 thread | malloc settings | median ms |\n|---|---|---:|")
        for name, ms in malloc.items():
            print(f"| 1 face | {name} | {ms:.1f} |")
        default, tuned = malloc.values()
        print(
            f"\nferhub's malloc settings: detection {default / tuned:.2f}x as fast as with glibc's defaults"
        )


if __name__ == "__main__":
    main()
