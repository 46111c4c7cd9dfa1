"""Evaluation throughput (issue 6), printing a Markdown table of medians over several runs.

    python bench/evaluate.py [--device cpu|cuda] [--runs 5] [--crops 1024] [--photos 24] [--model ID]

Rows, all through :func:`ferhub.evaluation.evaluate` (the one inference path) unless marked:
- pre-cropped 64x64 faces held in memory (FER2013-CSV style source): whole ``evaluate`` incl. metrics and
  bootstrap CIs; the same with flip TTA;
- the same faces as a folder of 64x64 PNG files (decode included);
- ``Predictor.classify_crops`` alone on those faces (inference without the metrics);
- the model's forward pass alone on ready batches, laid out as the Predictor feeds them (channels-last);
- full 640x480 photos with MTCNN detection, first with an empty face cache and then with the cache warm
  (what a second evaluation of the same data costs).
Faces are scikit-image's LFW subset; photos are scikit-image's astronaut, matplotlib's Grace Hopper and LFW
faces pasted on blurred backdrops.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ferhub.device import cpu_name
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


@dataclass
class Workload:
    name: str
    images: int
    fn: Callable[[], None]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def run(self) -> None:
        t, c = time.perf_counter(), time.process_time()
        self.fn()
        self.wall.append(time.perf_counter() - t)
        self.cpu.append(time.process_time() - c)


def run_interleaved(workloads: list[Workload], runs: int) -> None:
    """One untimed warm-up each, then ``runs`` rounds that time every workload once, in turn.

    Round-robin rather than one workload after another: on a shared machine the load changes over minutes,
    and interleaving gives every workload the same mix of it, so their ratios stay meaningful. CPU seconds
    (this process, all threads) are recorded beside wall time for the same reason.
    """
    for w in workloads:
        w.fn()
    for r in range(runs):
        for w in workloads:
            w.run()
        print(f"  round {r + 1}/{runs} done", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--crops", type=int, default=1024, help="number of 64x64 face crops")
    parser.add_argument("--photos", type=int, default=24, help="number of 640x480 photos")
    parser.add_argument("--model", default=None, help="model id (default: the bundled default)")
    args = parser.parse_args()

    import os

    import torch

    from ferhub import evaluation
    from ferhub.data import ArraySource, FaceCache, open_source, write_class_folders
    from ferhub.hub import DEFAULT_MODEL
    from ferhub.predict import Predictor
    from ferhub.transforms import eval_tensor

    model_id = args.model or DEFAULT_MODEL
    predictor = Predictor(model_id, device=args.device)
    common = {"predictor": predictor, "n_resamples": 1000}
    tmp = Path(tempfile.mkdtemp(prefix="ferhub-bench-"))

    faces, targets = lfw_faces(args.crops)
    memory = ArraySource(faces, targets, FER7, "lfw64", None)
    write_class_folders(faces, targets, FER7, tmp / "lfw64")
    folder = open_source(str(tmp / "lfw64"), precropped=True)
    crops = [memory.image(i) for i in range(len(memory))]
    model = predictor.models[0]
    # the Predictor's torch runtime (attributions, CUDA) feeds its modules channels-last batches (_forward);
    # the forward row does the same. On the CPU the Predictor runs ONNX Runtime (the rows above)
    batch = eval_tensor(crops[: predictor.batch_size], model.config).to(
        predictor.device, memory_format=torch.channels_last
    )

    def forward(m: torch.nn.Module, x: torch.Tensor, repeat: int) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                for _ in range(repeat):
                    m(x)
            if x.is_cuda:
                torch.cuda.synchronize()

        return run

    for i, im in enumerate(photos(args.photos)):
        (tmp / "photos" / FER7[i % 7]).mkdir(parents=True, exist_ok=True)
        im.save(tmp / "photos" / FER7[i % 7] / f"{i:03d}.jpg", quality=90)
    source = open_source(str(tmp / "photos"))
    warm_cache = FaceCache(predictor.detector, persist=False)
    repeat = max(1, len(crops) // len(batch))
    workloads = [
        Workload(
            "64x64 crops in memory: evaluate()",
            len(memory),
            lambda: evaluation.evaluate([model_id], memory, **common),
        ),
        Workload(
            "64x64 crops in memory: evaluate(tta='flip')",
            len(memory),
            lambda: evaluation.evaluate([model_id], memory, tta="flip", **common),
        ),
        Workload(
            "64x64 PNG folder: evaluate()",
            len(folder),
            lambda: evaluation.evaluate([model_id], folder, **common),
        ),
        Workload(
            "64x64 crops: Predictor.classify_crops only", len(crops), lambda: predictor.classify_crops(crops)
        ),
        Workload(
            f"torch module forward only, batches of {len(batch)} (the Predictor's torch runtime)",
            repeat * len(batch),
            forward(model, batch, repeat),
        ),
    ]
    workloads += [
        Workload(
            "640x480 photos, detection (empty face cache)",
            len(source),
            lambda: evaluation.evaluate(
                [model_id], source, cache=FaceCache(predictor.detector, persist=False), **common
            ),
        ),
        Workload(
            "640x480 photos, face cache warm",
            len(source),
            lambda: evaluation.evaluate([model_id], source, cache=warm_cache, **common),
        ),
    ]
    load_before = os.getloadavg()[0]
    run_interleaved(workloads, args.runs)
    load_after = os.getloadavg()[0]
    no_face = sum(f is None for f in warm_cache.get_many([source.image(i) for i in range(len(source))]))
    shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(
        f"ferhub evaluation throughput: {model_id}, device {predictor.device}, torch {torch.__version__},"
        f" {torch.get_num_threads()} threads, {cpu_name()}; median of {args.runs} interleaved"
        f" rounds; {no_face}/{len(source)} photos without a detected face; 1-min load average"
        f" {load_before:.1f} before, {load_after:.1f} after"
        + (
            " (above the CPU count: other processes shared the cores)"
            if max(load_before, load_after) > (os.cpu_count() or 1)
            else ""
        )
    )
    print()
    print("| workload | images | images/s | wall s | CPU ms/image |")
    print("|---|---:|---:|---:|---:|")
    for w in workloads:
        wall, cpu = statistics.median(w.wall), statistics.median(w.cpu)
        print(
            f"| {w.name} | {w.images} | {_rate(w.images / wall)} | {wall:.3f} | {1000 * cpu / w.images:.2f} |"
        )


if __name__ == "__main__":
    main()
