"""Attributions of a crowd photo: peak memory and time of ``ferhub.saliency.explain_faces`` over every face,
a chunk of faces at a time (``ATTRIBUTION_BUDGET_BYTES``, the default) against all faces in one batch, in one
run. Prints a Markdown table.

    python bench/attribution.py [--faces 120] [--runs 3] [--models ferhub/facemood] [--methods ...]

The photo is a grid of scikit-image's LFW crops (upscaled to 100 px, 20 px apart); its faces are detected
once. Each measure runs in a fresh process (peak memory is a high-water mark), the two ways alternating;
"peak growth" is the process's peak RSS during the call minus its RSS before it (the model loaded and its
attribution copy made by one warm-up face).
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench")]

from machine import print_table  # noqa: E402

ONE_BATCH = 1 << 50  # a budget no photo reaches: every face in one batch, as before chunking


def crowd(n: int, folder: Path) -> Path:
    """``n`` LFW faces in a grid of 12 columns, 100 px each with 20 px gaps, as a PNG."""
    import numpy as np
    from PIL import Image
    from skimage import data

    lfw = data.lfw_subset()
    cols, cell = 12, 120
    rows = -(-n // cols)
    canvas = Image.new("RGB", (cols * cell + 20, rows * cell + 20), (90, 90, 90))
    for i in range(n):
        face = Image.fromarray((lfw[i % len(lfw)] * 255).round().astype(np.uint8)).convert("RGB")
        canvas.paste(
            face.resize((100, 100), Image.Resampling.BICUBIC),
            (20 + (i % cols) * cell, 20 + (i // cols) * cell),
        )
    path = folder / f"crowd{n}.png"
    canvas.save(path)
    return path


def child(photo: str, faces_file: str, model_id: str, method: str, budget: int) -> None:
    """One measure, in this process: prints ``{"seconds", "peak_growth_mb"}`` as JSON."""
    import time

    from ferhub import saliency
    from ferhub.hub import load
    from ferhub.images import load_image

    def kb(key: str) -> int:
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))

    saliency.ATTRIBUTION_BUDGET_BYTES = budget
    faces = pickle.loads(Path(faces_file).read_bytes())
    image = load_image(photo)
    model = load(model_id)
    saliency.explain_faces(model, image, faces[:1], method)  # the attribution copy made, captum imported
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) from here on
    before = kb("VmRSS:")
    start = time.perf_counter()
    saliency.explain_faces(model, image, faces, method)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_growth_mb": (kb("VmHWM:") - before) / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=120)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["ferhub/facemood"])
    parser.add_argument("--methods", nargs="+", default=["Guided Backprop", "Grad-CAM"])
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        photo, faces_file, model_id, method, budget = args.child
        child(photo, faces_file, model_id, method, int(budget))
        return

    import torch

    from ferhub import saliency
    from ferhub.device import cpu_name
    from ferhub.faces import FaceDetector
    from ferhub.hub import load
    from ferhub.images import load_image

    folder = Path(tempfile.mkdtemp(prefix="ferhub-bench-attribution-"))
    photo = crowd(args.faces, folder)
    faces = FaceDetector().detect(load_image(photo))
    faces_file = folder / "faces.pkl"
    faces_file.write_bytes(pickle.dumps(faces))
    print(
        f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} threads; {len(faces)} faces"
        f" found of {args.faces}; medians of {args.runs} alternating runs, each in a fresh process\n"
    )
    rows = []
    for model_id in args.models:
        chunk = saliency.faces_per_chunk(load(model_id))
        for method in args.methods:
            got: dict[str, list[dict[str, float]]] = {"one batch": [], "chunked": []}
            for _ in range(args.runs):
                for way, budget in (("one batch", ONE_BATCH), ("chunked", saliency.ATTRIBUTION_BUDGET_BYTES)):
                    argv = [
                        sys.executable,
                        __file__,
                        "--child",
                        str(photo),
                        str(faces_file),
                        model_id,
                        method,
                    ]
                    out = subprocess.run([*argv, str(budget)], capture_output=True, text=True, check=True)
                    got[way].append(json.loads(out.stdout.strip().splitlines()[-1]))
            med = {
                way: {k: statistics.median(r[k] for r in runs) for k in ("seconds", "peak_growth_mb")}
                for way, runs in got.items()
            }
            one, chunked = med["one batch"], med["chunked"]
            rows.append(
                [
                    model_id,
                    method,
                    f"{chunk}",
                    f"{one['peak_growth_mb']:.0f} / {chunked['peak_growth_mb']:.0f} MB",
                    f"{one['seconds']:.2f} / {chunked['seconds']:.2f} s",
                    f"{chunked['seconds'] / one['seconds']:.2f}x",
                ]
            )
    print_table(
        ["model", "method", "faces a chunk", "peak growth, one batch / chunked", "time, one batch / chunked",
         "time chunked / one batch"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
