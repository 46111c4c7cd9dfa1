"""Video benchmark: frames per second analysed (every frame classified) and peak memory vs clip length, side
by
side with ``fer``'s own video pipeline on the same clips, in one run. Prints Markdown tables.

    python bench/video.py [--device cpu|cuda] [--seconds 20] [--long-seconds 120] [--no-fer]

- clips are made here from the bundled photos (PyAV, H.264): a 640x480 one-face clip and a 1080p clip with
  four faces, both with moving faces, 30 fps;
- ferhub: ``ferhub.video.VideoAnalyzer`` over ``Predictor`` (decode, detect every k-th frame, track, classify
  every frame, smooth, summaries), k = 1 and the default 3, results streamed to CSV as the CLI does;
- fer 25.10.3: ``fer.classes.Video.analyze`` with ``FER()`` (OpenCV Haar cascade + the TFLite model, every
  frame), frames/annotations not saved, ``cv2.waitKey`` stubbed (headless OpenCV refuses it), in its own venv
  (``bench/fer_env.py``);
- peak memory: the CLI path in a fresh process on a short and a long clip (``VmHWM`` of the child's own
  address space: its ``ru_maxrss`` would start at this process's peak, which Linux carries across fork and
  exec).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from ferhub.device import cpu_name  # noqa: E402

FER_SCRIPT = r"""
import sys, time, tempfile
import cv2
cv2.waitKey = lambda *a, **k: -1  # headless OpenCV has no GUI; fer calls it even with display=False
from fer.fer import FER
from fer.classes import Video
detector = FER()  # Haar cascade + TFLite mini-Xception, fer's defaults
with tempfile.TemporaryDirectory() as out:
    video = Video(sys.argv[1], outdir=out)
    t = time.perf_counter()
    data = video.analyze(detector, display=False, save_frames=False, save_video=False, annotate_frames=False,
                         zip_images=False, output="pandas")
    dt = time.perf_counter() - t
frames = int(cv2.VideoCapture(sys.argv[1]).get(cv2.CAP_PROP_FRAME_COUNT))
print(frames, dt, len(data))
"""

CHILD = r"""
import os, sys, time
from machine import rss_mb
from ferhub.predict import Predictor
from ferhub.video import VideoAnalyzer
from ferhub.writers import CsvWriter
predictor = Predictor(device=sys.argv[2])
run = VideoAnalyzer(predictor).open(sys.argv[1])
with open("/dev/null", "w") as out:
    w = CsvWriter(out, list(predictor.names), [tuple(c.labels) for c in predictor.configs])  # as the CLI
    w.begin()
    t = time.perf_counter()
    for frame in run:
        w.video_frame(run, frame)
    dt = time.perf_counter() - t
    run.summaries()
print(run.frames_done, dt, rss_mb(os.getpid(), "VmHWM"))
"""


def _faces() -> dict[str, Image.Image]:
    from skimage import data

    from ferhub.assets import EXAMPLES_DIR

    with Image.open(EXAMPLES_DIR / "grace_hopper.jpg") as f:
        hopper = f.convert("RGB").crop((140, 60, 390, 395))
    astronaut = Image.fromarray(data.astronaut()).crop((150, 30, 295, 205))
    return {"hopper": hopper, "astronaut": astronaut}


def write(path: Path, size: tuple[int, int], seconds: float, faces: int) -> Path:
    """A clip of ``faces`` faces drifting over a blurred background, 30 fps, H.264."""
    import av

    from ferhub.assets import one_face_photo

    if path.exists():
        return path
    w, h = size
    background = one_face_photo(w, h) if faces == 1 else one_face_photo(w, h).resize((w, h))
    people = _faces()
    height = round(h * (0.75 if faces == 1 else 0.3))
    sprites = [
        people[name].resize((round(people[name].width * height / people[name].height), height))
        for name in (["hopper"] if faces == 1 else ["hopper", "astronaut"] * (faces // 2))
    ]
    if faces == 1:  # the bundled photo already holds the face: move the whole picture a little
        background = background.resize((round(w * 1.15), round(h * 1.15)))
    n = round(seconds * 30)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "20"}
        for i in range(n):
            t = i / 30
            if faces == 1:
                dx = int((np.sin(t * 0.9) + 1) / 2 * (background.width - w))
                frame = background.crop(
                    (dx, (background.height - h) // 2, dx + w, (background.height - h) // 2 + h)
                )
            else:
                frame = background.copy()
                for k, sprite in enumerate(sprites):
                    x = (k + 0.5) * w / faces + np.sin(t * 0.7 + k) * w / (3 * faces) - sprite.width / 2
                    y = (h - sprite.height) / 2 + np.cos(t * 0.5 + k) * h / 8
                    frame.paste(sprite, (int(x), int(y)))
            for p in s.encode(av.VideoFrame.from_image(frame)):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def ferhub_fps(path: Path, device: str, detect_every: int) -> tuple[float, int]:
    from ferhub.predict import Predictor
    from ferhub.video import VideoAnalyzer

    predictor = Predictor(device=device)
    run = VideoAnalyzer(predictor, detect_every=detect_every).open(path)
    t = time.perf_counter()
    faces = sum(len(frame.faces) for frame in run)
    dt = time.perf_counter() - t
    return run.frames_done / dt, faces


def fer_fps(path: Path) -> tuple[float, int] | str:
    from fer_env import fer_python

    try:
        python = fer_python()
    except (subprocess.CalledProcessError, OSError) as e:
        return f"fer venv unavailable ({e})"
    out = subprocess.run([str(python), "-c", FER_SCRIPT, str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        return "fer failed: " + out.stderr.strip().splitlines()[-1]
    frames, dt, with_faces = out.stdout.split()[-3:]
    return int(frames) / float(dt), int(with_faces)


def child_memory(path: Path, device: str) -> tuple[int, float, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")])}  # machine.py
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), device], capture_output=True, text=True, env=env
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    frames, dt, rss = out.stdout.split()[-3:]
    return int(frames), float(dt), float(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--long-seconds", type=float, default=120)
    parser.add_argument("--no-fer", action="store_true", help="skip fer (no venv is made)")
    parser.add_argument("--clips", default=None, help="folder to keep the generated clips in (reused)")
    args = parser.parse_args()
    import torch

    folder = Path(args.clips or tempfile.mkdtemp(prefix="ferhub-bench-video-"))
    folder.mkdir(parents=True, exist_ok=True)
    vga = write(folder / f"vga-1face-{args.seconds:g}s.mp4", (640, 480), args.seconds, 1)
    hd = write(folder / "hd-4faces-10s.mp4", (1920, 1080), 10, 4)
    long = write(folder / f"vga-1face-{args.long_seconds:g}s.mp4", (640, 480), args.long_seconds, 1)

    head = (
        f"{cpu_name()}, torch {torch.__version__} ({torch.get_num_threads()}"
        f" threads), device {args.device}, load average {os.getloadavg()[0]:.1f} at start"
    )
    print(f"\n### Video analysis, frames per second (every frame classified)\n\n{head}\n")
    print("| clip | pipeline | frames/s | faces found |\n|---|---|---:|---:|")
    for clip, name in ((vga, f"640x480, 1 face, {args.seconds:g} s"), (hd, "1920x1080, 4 faces, 10 s")):
        for k in (1, 3):
            fps, faces = ferhub_fps(clip, args.device, k)
            print(f"| {name} | ferhub, detect every {k} | {fps:.1f} | {faces} |", flush=True)
        if not args.no_fer:
            result = fer_fps(clip)
            if isinstance(result, str):
                print(f"| {name} | fer 25.10.3 | {result} | |")
            else:
                print(
                    f"| {name} | fer 25.10.3 (Haar + TFLite) | {result[0]:.1f} | {result[1]} frames with a"
                    " face |"
                )
    print(f"\n### Peak memory of `ferhub predict` on a video vs its length\n\n{head}\n")
    print("| clip | frames | frames/s | peak RSS (MB) |\n|---|---:|---:|---:|")
    for clip, seconds in ((vga, args.seconds), (long, args.long_seconds)):
        frames, dt, rss = child_memory(clip, args.device)
        print(f"| 640x480, {seconds:g} s | {frames} | {frames / dt:.1f} | {rss:.0f} |", flush=True)
    print(
        f"\nclips in {folder}; this process's peak RSS"
        f" {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )


if __name__ == "__main__":
    main()
