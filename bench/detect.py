"""Face detection latency: facenet-pytorch's ``MTCNN.detect`` against ferhub's ``FaceDetector``, as tables.

    python bench/detect.py [--runs 30] [--device cpu|cuda]

Both detectors run in the same process, interleaved call by call, so a busy shared machine slows them alike
and the ratio stays meaningful. Photos: a 640x480 photo with one face (matplotlib's Grace Hopper portrait on a
blurred backdrop, as in ``bench/predict.py``), the same scene at 1600x1200 (ferhub detects on a copy scaled to
``max_side``), and a 960x640 canvas with six faces. Times are medians and 90th percentiles over ``--runs``
calls after warm-up, with torch's default thread count.

``--streams`` tables detection in two streams (the default, see ``OnnxMTCNN.__init__``) against one stream on
all the threads, interleaved in one process, quiet and with two busy-looping processes beside it (a shared
machine), on the 640x480 photo, the 960x640 one and a 1920x1080 photo with six faces; ``--streams-only``
prints just that table.

``--pnet-only`` tables P-net's graph as ferhub exports it (first layer's PReLU after its max-pool, see
``_mtcnn_export._PooledPReLU``; the last PReLU folded into the head, ``_PNet``) against the same net in
facenet-pytorch's order (PReLU, then max-pool; PReLU, then the head), both
ONNX Runtime sessions on one thread, interleaved, on every pyramid level of the 640x480 photo and the two
largest of the 1920x1080 one, with their largest difference.

``--idle`` tables detection of the 640x480 photo right after the previous one against after a pause (the
thread asleep 5, 20 or 100 ms, or busy-looping 20 ms; asleep 100 ms then busy-looping 5 or 40 ms), in two
streams and one: a server's request comes after a pause, and on the shared AMD EPYC VMs the same detection
then ran 1.6-1.9x slower, every stage alike (a pause spent busy-looping did not slow it: the slowdown comes
from the host while the thread is off its core, not from the work done), until the process had been busy
again for ~40 ms (5 ms of busy-looping after the pause did not help, 40 ms mostly did); ``--idle-only``
prints just that table.

A last table runs ferhub's detector on the 640x480 photo in child processes, alternating, under each
``OMP_WAIT_POLICY`` (how torch's OpenMP threads wait between parallel regions: the setting whose effect
differs 1.6-2x between CPU kinds) with torch's default thread count: the torch runtime against the ONNX
Runtime one (the default on the CPU), medians of their medians, and the page faults per call.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
from PIL import Image

from ferhub.assets import one_face_photo
from ferhub.device import cpu_name


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


def detection_child(runs: int, runtime: str) -> None:
    """(Child process) median ms and page faults per call of ferhub's detector on the 640x480 photo, as
    JSON."""
    import resource

    from ferhub.faces import FaceDetector

    detector, photo = FaceDetector(runtime=runtime), one_face_photo()
    interleaved({"detect": lambda: detector.detect(photo)}, 1, 5)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    times = interleaved({"detect": lambda: detector.detect(photo)}, runs, 0)["detect"]
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / runs
    print(json.dumps([statistics.median(times) * 1000, faults]))


def wait_policy_comparison(runs: int, rounds: int = 3) -> dict[tuple[str, str], tuple[float, float]]:
    """(policy, runtime) -> (median over ``rounds`` child processes of their median ms, page faults per
    call)."""
    results: dict[tuple[str, str], list[list[float]]] = {}
    for _ in range(rounds):
        for policy in ("PASSIVE", "ACTIVE"):
            for runtime in ("torch", "onnx"):
                env = {**os.environ, "OMP_WAIT_POLICY": policy}
                out = subprocess.run(
                    [sys.executable, __file__, "--child-runs", str(runs), "--child-runtime", runtime],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                results.setdefault((policy, runtime), []).append(json.loads(out.strip().splitlines()[-1]))
    return {
        key: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
        for key, rs in results.items()
    }


def group_photo() -> Image.Image:
    """The six-face canvas scaled onto a blurred 1920x1080 copy of itself (detected on a 960x540 copy)."""
    from PIL import ImageFilter

    faces = six_faces()
    canvas = faces.resize((1920, 1080)).filter(ImageFilter.GaussianBlur(30))
    canvas.paste(faces.resize((1440, 960)), (240, 60))
    return canvas


def streams_comparison(photos: dict[str, Image.Image], runs: int, warmup: int) -> None:
    """Print detection in two streams (the default) against one, quiet and beside two busy processes."""
    from ferhub._mtcnn_onnx import OnnxMTCNN

    detectors = {"two streams (default)": OnnxMTCNN(), "one stream": OnnxMTCNN(streams=1)}
    for photo in photos.values():  # the same faces and boxes either way
        found = [d.detect(photo) for d in detectors.values()]
        assert all(np.array_equal(a, b) for a, b in zip(*found))
    print(f"\n{cpu_name()}, detection streams, one process, interleaved, {runs} runs after {warmup} warm-up")
    print()
    print("| photo | machine | two streams (default), median ms | one stream, median ms | two / one |")
    print("|---|---|---:|---:|---:|")
    for machine in ("quiet", "2 busy processes"):
        busy = []
        if machine != "quiet":
            busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
        try:
            for photo_name, photo in photos.items():
                fns = {name: (lambda d=d, p=photo: d.detect(p)) for name, d in detectors.items()}
                times = interleaved(fns, runs, warmup)
                two, one = (statistics.median(t) * 1000 for t in times.values())
                print(f"| {photo_name} | {machine} | {two:.1f} | {one:.1f} | {two / one:.2f} |")
        finally:
            for process in busy:
                process.kill()
                process.wait()


IDLE_ROUNDS, IDLE_CALLS = 5, 12


def idle_comparison(
    photo: Image.Image, rounds: int = IDLE_ROUNDS, calls: int = IDLE_CALLS
) -> dict[tuple[str, str], float]:
    """(pause, streams) -> median ms of a detection of ``photo`` that follows the pause, over ``rounds``
    rounds of ``calls`` calls per pause and detector (pauses and detectors take turns within each round)."""
    from ferhub._mtcnn_onnx import OnnxMTCNN

    def busy(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    pauses: dict[str, Callable[[], object]] = {
        "none (back to back)": lambda: None,
        "asleep 5 ms": lambda: time.sleep(0.005),
        "asleep 20 ms": lambda: time.sleep(0.02),
        "busy-looping 20 ms": lambda: busy(0.02),
        "asleep 100 ms": lambda: time.sleep(0.1),
        # does work just before the call bring the speed back, and how much of it?
        "asleep 100 ms, then busy-looping 5 ms": lambda: (time.sleep(0.1), busy(0.005)),
        "asleep 100 ms, then busy-looping 40 ms": lambda: (time.sleep(0.1), busy(0.04)),
    }
    detectors = {"two streams (default)": OnnxMTCNN(), "one stream": OnnxMTCNN(streams=1)}
    for detector in detectors.values():
        for _ in range(5):
            detector.detect(photo)
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for pause_name, pause in pauses.items():
            for name, detector in detectors.items():
                for _ in range(calls):
                    pause()
                    start = time.perf_counter()
                    detector.detect(photo)
                    times.setdefault((pause_name, name), []).append(time.perf_counter() - start)
    return {key: statistics.median(t) * 1000 for key, t in times.items()}


def print_idle(
    table: dict[tuple[str, str], float], rounds: int = IDLE_ROUNDS, calls: int = IDLE_CALLS
) -> None:
    """:func:`idle_comparison`'s result as a table, with each time as a multiple of back to back."""
    print(f"\n{cpu_name()}, detection of the 640x480 photo after a pause, {rounds} rounds x {calls} calls")
    print()
    print("| pause before each call | two streams (default), ms | x back to back | one stream, ms | x |")
    print("|---|---:|---:|---:|---:|")
    first = next(iter(table))[0]
    for pause in dict.fromkeys(p for p, _ in table):
        two, one = table[pause, "two streams (default)"], table[pause, "one stream"]
        base_two, base_one = table[first, "two streams (default)"], table[first, "one stream"]
        print(f"| {pause} | {two:.1f} | {two / base_two:.2f} | {one:.1f} | {one / base_one:.2f} |")


def pnet_comparison(runs: int, warmup: int) -> None:
    """Print P-net's exported graph against facenet-pytorch's layer order, level by level."""
    import torch
    import torch.nn.functional as F

    from ferhub import _onnx
    from ferhub._mtcnn import _load_nets
    from ferhub._mtcnn_export import _prelu, net_modules
    from ferhub._mtcnn_onnx import OnnxMTCNN, auto_min_face_size

    nets = _load_nets("cpu")

    class PReLUThenPool(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            n = nets.pnet
            x = F.max_pool2d(_prelu(F.conv2d(x, *nets.p_conv1), n.prelu1.weight), 2, 2, ceil_mode=True)
            x = _prelu(n.conv2(x), n.prelu2.weight)
            x = _prelu(n.conv3(x), n.prelu3.weight)
            out = F.conv2d(x, nets.p_head[0][:, :, None, None], nets.p_head[1])[0]
            return torch.sigmoid(out[1] - out[0]), out[2:6]

    module, example, inputs, outputs, axes = net_modules()["pnet"]
    sessions = {  # the nets alone (detection's graph also finds the candidate cells, _peaks_graph)
        "PReLU after the max-pool (default)": _onnx.session(
            _onnx.export_bytes(module, example, inputs, outputs, axes)
        ),
        "PReLU, then max-pool": _onnx.session(
            _onnx.export_bytes(PReLUThenPool().eval(), example, inputs, outputs, axes)
        ),
    }
    detector = OnnxMTCNN(streams=1)
    levels = []
    for name, photo, count in (("640x480", one_face_photo(), None), ("1920x1080", group_photo(), 2)):
        image = photo.reduce(2) if max(photo.size) > 1024 else photo
        min_face = auto_min_face_size(*image.size)
        found, _, _ = detector._pyramid(np.asarray(image)[None], min_face)
        for i, (level, _, _) in enumerate(found[:count]):
            levels.append((f"{name}, level {i} ({level.shape[3]}x{level.shape[2]})", level))
    print(f"\n{cpu_name()}, P-net in ONNX Runtime, 1 thread each, one process, interleaved, {runs} runs")
    print()
    print("| level | pooled first (default), ms | PReLU first, ms | default / other | max diff |")
    print("|---|---:|---:|---:|---:|")
    totals = [0.0, 0.0]
    for label, level in levels:
        fns = {name: (lambda s=s, x=level: s.run(None, {"x": x})) for name, s in sessions.items()}
        ours, theirs = (statistics.median(t) * 1000 for t in interleaved(fns, runs, warmup).values())
        totals = [totals[0] + ours, totals[1] + theirs]
        a, b = (s.run(None, {"x": level}) for s in sessions.values())
        diff = max(float(np.abs(u - v).max()) for u, v in zip(a, b))
        print(f"| {label} | {ours:.3f} | {theirs:.3f} | {ours / theirs:.2f} | {diff:.1e} |")
    print(f"| sum | {totals[0]:.3f} | {totals[1]:.3f} | {totals[0] / totals[1]:.2f} | |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--streams", action="store_true", help="also compare two detection streams with one")
    parser.add_argument("--streams-only", action="store_true", help="only that comparison")
    parser.add_argument("--idle", action="store_true", help="also table detection after a pause")
    parser.add_argument("--idle-only", action="store_true", help="only that table")
    parser.add_argument("--pnet-only", action="store_true", help="only P-net's graph against the plain order")
    parser.add_argument("--child-runs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-runtime", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_runs:
        detection_child(args.child_runs, args.child_runtime)
        return
    if args.pnet_only:
        pnet_comparison(args.runs, args.warmup)
        return
    if args.idle_only:
        print_idle(idle_comparison(one_face_photo()))
        return
    if args.streams_only:
        photos = {"640x480, 1 face": one_face_photo(), "960x640, 6 faces": six_faces()}
        streams_comparison({**photos, "1920x1080, 6 faces": group_photo()}, args.runs, args.warmup)
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
    for label, kwargs in (
        ("default: auto min face", {}),
        ("min face 20", {"min_face_size": 20}),
        ("torch runtime", {"runtime": "torch"}),
    ):
        ferhub_detector = FaceDetector(device=args.device, **kwargs)  # type: ignore[arg-type]
        detectors[f"ferhub FaceDetector ({label})"] = lambda image, d=ferhub_detector: len(d.detect(image))

    photos = {
        "640x480, 1 face": one_face_photo(),
        "1600x1200, 1 face": one_face_photo(1600, 1200),
        "960x640, 6 faces": six_faces(),
    }
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"device {args.device}, load average {load:.1f} at start; "
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
    if args.device == "cpu" and args.streams:
        streams_comparison({**photos, "1920x1080, 6 faces": group_photo()}, args.runs, args.warmup)
    if args.device == "cpu" and args.idle:
        print_idle(idle_comparison(one_face_photo()))
    if args.device == "cpu":
        table = wait_policy_comparison(args.runs)
        print(f"\n{cpu_name()}, torch's default threads, child processes\n")
        print("| ferhub detection, 640x480, 1 face | OMP_WAIT_POLICY | median ms | page faults per call |")
        print("|---|---|---:|---:|")
        for (policy, runtime), (ms, faults) in table.items():
            name = "ONNX Runtime (default)" if runtime == "onnx" else "torch"
            print(f"| {name} | {policy} | {ms:.1f} | {faults:.0f} |")
        for runtime in ("torch", "onnx"):
            passive, active = table["PASSIVE", runtime][0], table["ACTIVE", runtime][0]
            print(f"\n{runtime}: PASSIVE / ACTIVE = {passive / active:.2f}x", end="")
        print()


if __name__ == "__main__":
    main()
