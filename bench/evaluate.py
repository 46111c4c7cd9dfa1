"""Evaluation throughput (issue 6), printing a Markdown table of medians over several runs.

    python bench/evaluate.py [--device cpu|cuda] [--runs 5] [--crops 2048] [--photos 24] [--model ID]

Rows, all through :func:`ferhub.evaluation.evaluate` (the one inference path) unless marked:
- pre-cropped 64x64 faces held in memory (FER2013-CSV style source): whole ``evaluate`` incl. metrics and
  bootstrap CIs; the same with flip TTA;
- the same faces as a folder of 64x64 PNG files (decode included);
- ``Predictor.classify_crops`` alone on those faces (inference without the metrics);
- the model's forward pass alone on a ready batch, in the default memory layout and channels-last (what the
  inference path could gain);
- full 640x480 photos with MTCNN detection, first with an empty face cache and then with the cache warm
  (what a second evaluation of the same data costs).
Faces are scikit-image's LFW subset; photos are scikit-image's astronaut, matplotlib's Grace Hopper and LFW
faces pasted on blurred backdrops.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ferhub.labels import FER7


def lfw_faces(n: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``n`` gray uint8 faces at ``size`` (LFW's 100, mirrored and shifted for variety) and labels."""
    import skimage.data

    lfw = (skimage.data.lfw_subset()[:100] * 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    out = np.empty((n, size, size), dtype=np.uint8)
    for i in range(n):
        im = Image.fromarray(lfw[i % 100])
        if (i // 100) % 2:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        dx, dy = rng.integers(0, 4, 2)
        out[i] = np.asarray(im.crop((dx, dy, 25 - 3 + dx, 25 - 3 + dy)).resize((size, size), Image.BILINEAR))
    return out, rng.integers(0, len(FER7), n)


def photos(n: int) -> list[Image.Image]:
    """640x480 photos with one real face each."""
    import skimage.data
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        sources = [Image.open(f).convert("RGB"), Image.fromarray(skimage.data.astronaut())]
    lfw = (skimage.data.lfw_subset()[:100] * 255).astype(np.uint8)
    out = []
    for i in range(n):
        if i % 3 < 2:
            base = sources[i % 2]
            canvas = base.resize((640, 480)).filter(ImageFilter.GaussianBlur(24))
            face = base.resize((round(base.width * 400 / base.height), 400))
            canvas.paste(face, ((640 - face.width) // 2 + (i % 5) * 4, 40))
        else:
            canvas = (
                Image.fromarray(skimage.data.coffee()).resize((640, 480)).filter(ImageFilter.GaussianBlur(8))
            )
            face = Image.fromarray(lfw[i % 100]).convert("RGB").resize((200, 200), Image.BICUBIC)
            canvas.paste(face, (220, 120))
        out.append(canvas)
    return out


def _rate(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.1f}"


def median_rate(
    fn: Callable[[], None], n_items: int, runs: int, warmup: int = 1
) -> tuple[float, float, float]:
    """(median items/s, median wall seconds, median CPU seconds) over ``runs`` calls after ``warmup`` ones.

    CPU seconds (this process, all threads) say how much work a run was when the machine is shared: wall time
    then also holds other processes' turns.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    med = statistics.median(wall)
    return n_items / med, med, statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--crops", type=int, default=2048, help="number of 64x64 face crops")
    parser.add_argument("--photos", type=int, default=24, help="number of 640x480 photos")
    parser.add_argument("--model", default=None, help="model id (default: the bundled default)")
    args = parser.parse_args()

    import torch

    from ferhub import evaluation
    from ferhub.data import ArraySource, FaceCache, open_source, write_class_folders
    from ferhub.hub import DEFAULT_MODEL
    from ferhub.predict import Predictor
    from ferhub.transforms import eval_tensor

    model_id = args.model or DEFAULT_MODEL
    predictor = Predictor(model_id, device=args.device)
    rows: list[tuple[str, int, float, float, float]] = []

    def add(name: str, n: int, fn: Callable[[], None], runs: int = args.runs, warmup: int = 1) -> None:
        rate, med, cpu = median_rate(fn, n, runs, warmup)
        rows.append((name, n, rate, med, cpu))
        print(f"  {name}: {_rate(rate)} images/s", flush=True)

    faces, targets = lfw_faces(args.crops)
    memory = ArraySource(faces, targets, FER7, "lfw64", None)
    common = {"predictor": predictor, "n_resamples": 1000}
    add(
        "64x64 crops in memory: evaluate()",
        len(memory),
        lambda: evaluation.evaluate([model_id], memory, **common),
    )
    add(
        "64x64 crops in memory: evaluate(tta='flip')",
        len(memory),
        lambda: evaluation.evaluate([model_id], memory, tta="flip", **common),
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_class_folders(faces, targets, FER7, Path(tmp) / "lfw64")
        folder = open_source(str(Path(tmp) / "lfw64"), precropped=True)
        add(
            "64x64 PNG folder: evaluate()",
            len(folder),
            lambda: evaluation.evaluate([model_id], folder, **common),
        )
    crops = [memory.image(i) for i in range(len(memory))]
    add("64x64 crops: Predictor.classify_crops only", len(crops), lambda: predictor.classify_crops(crops))
    model = predictor.models[0]
    batch = eval_tensor(crops[: predictor.batch_size], model.config).to(predictor.device)

    def forward(m: torch.nn.Module, x: torch.Tensor) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                m(x)
            if x.is_cuda:
                torch.cuda.synchronize()

        return run

    add(f"model forward only, batch {len(batch)}", len(batch), forward(model, batch), runs=args.runs * 3)
    if predictor.device.type == "cpu":
        import copy

        cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        cl_batch = batch.contiguous(memory_format=torch.channels_last)
        add(
            f"model forward only, batch {len(batch)}, channels-last",
            len(batch),
            forward(cl_model, cl_batch),
            runs=args.runs * 3,
        )

    pics = photos(args.photos)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        for i, im in enumerate(pics):
            (root / FER7[i % 7]).mkdir(parents=True, exist_ok=True)
            im.save(root / FER7[i % 7] / f"{i:03d}.jpg", quality=90)
        source = open_source(str(root))
        cold_caches: list[FaceCache] = []

        def cold() -> None:
            cold_caches.append(FaceCache(predictor.detector, persist=False))
            evaluation.evaluate([model_id], source, cache=cold_caches[-1], **common)

        add("640x480 photos, detection (empty face cache)", len(source), cold, runs=max(1, args.runs // 2))
        warm_cache = cold_caches[-1]
        add(
            "640x480 photos, face cache warm",
            len(source),
            lambda: evaluation.evaluate([model_id], source, cache=warm_cache, **common),
        )
        no_face = sum(f is None for f in warm_cache.get_many([source.image(i) for i in range(len(source))]))

    import os

    print()
    print(
        f"ferhub evaluation throughput: {model_id}, device {predictor.device}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, median of {args.runs} runs; "
        f"{no_face}/{len(source)} photos without a detected face; load average at the end "
        f"{os.getloadavg()[0]:.1f} (above the CPU count, other processes shared the cores)"
    )
    print()
    print("| workload | images | images/s | wall s | CPU ms/image |")
    print("|---|---:|---:|---:|---:|")
    for name, n, rate, med, cpu in rows:
        print(f"| {name} | {n} | {_rate(rate)} | {med:.3f} | {1000 * cpu / n:.2f} |")


if __name__ == "__main__":
    main()
