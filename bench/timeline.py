"""Where one photo's detection spends its time, thread by thread: a table of every ONNX Runtime call and the
main compiled steps, with their median start and end.

    python bench/timeline.py [--photo 0-7 | PATH] [--runs 60]

The detector is ``Predictor()``'s (``OnnxMTCNN``, two streams on two cores or more). Each ONNX Runtime session
call (``OnnxMTCNN._run``: ``pnet``, ``rnet``, ``onet``), the compiled steps of :mod:`ferhub._mtcnn_onnx`
(``_halve``, ``crops_of_pixels``, ``crops_of_levels``, ``crop_sources``, P-net's ``pnet_boxes``, and each
stage's end: ``candidates``, ``refined``, ``faces``) and the three stages are timed where
they run, on ``--runs`` calls of ``detect`` on one decoded photo (``bench/vs_fer.py``'s one-face photo
``--photo``, or a file); the first tenth are warm-up. A step that runs in at least half the calls is a row:
its thread (``MainThread``, or the second stream ``ferhub-nets_0``), which of that thread's calls of it this
is (``#0``, ``#1`` ...), and the medians of its start and end, in ms from the start of ``detect``. Gaps in a
thread's rows are Python, waiting for the other thread, or the wake-ups between them.

The wrappers add ~1 us a step; the total is printed beside the untimed detector's median for comparison.
States the CPU model and core count.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# module-level steps of ferhub._mtcnn_onnx that are timed (looked up by name at call time, so a wrapper
# installed on the module is the one called)
STEPS = (
    "_halve",
    "crops_of_pixels",
    "crops_of_levels",
    "crop_sources",
    "pnet_boxes",
    "candidates",
    "refined",
    "faces",
)
STAGES = ("_stage1", "_stage2", "_stage3")

Event = tuple[str, str, float, float]  # thread, step, start, end (s from the start of detect)


class Recorder:
    """Collects the events of one ``detect`` call at a time, from any thread."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.origin = 0.0

    def timed(self, name: Callable[..., str] | str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` recording its start and end under ``name`` (or ``name(*args)``)."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                label = name(*args) if callable(name) else name
                thread = threading.current_thread().name
                self.events.append((thread, label, start - self.origin, time.perf_counter() - self.origin))

        return wrapper


def instrument(detector: Any, recorder: Recorder) -> Callable[[], None]:
    """Wrap ``detector``'s session calls and stages and the module's steps; returns what undoes it."""
    from ferhub import _mtcnn_onnx as onnx_mtcnn

    saved = [(onnx_mtcnn, n, getattr(onnx_mtcnn, n)) for n in STEPS]
    for module, name, fn in saved:
        setattr(module, name, recorder.timed(name, fn))
    detector._run = recorder.timed(lambda name, *a, **k: name, detector._run)
    for stage in STAGES:
        setattr(detector, stage, recorder.timed(stage, getattr(detector, stage)))

    def undo() -> None:
        for module, name, fn in saved:
            setattr(module, name, fn)
        for attr in ("_run", *STAGES):
            delattr(detector, attr)  # the class's methods again

    return undo


def rows(calls: list[list[Event]]) -> list[tuple[float, float, str, str, int]]:
    """Median (start, end, thread, step, occurrence) of each step that ran in at least half the ``calls``."""
    spans: dict[tuple[str, str, int], list[tuple[float, float]]] = collections.defaultdict(list)
    for events in calls:
        seen: collections.Counter[tuple[str, str]] = collections.Counter()
        for thread, step, start, end in sorted(events, key=lambda e: e[2]):
            spans[(thread, step, seen[(thread, step)])].append((start, end))
            seen[(thread, step)] += 1
    out = []
    for (thread, step, k), values in spans.items():
        if 2 * len(values) >= len(calls):
            start = statistics.median(s for s, _ in values)
            out.append((start, statistics.median(e for _, e in values), thread, step, k))
    return sorted(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--photo", default="3", help="bench/vs_fer.py's one-face photo 0-7, or a file")
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args(argv)

    import ferhub
    from ferhub.device import cpu_cores, cpu_name
    from ferhub.images import load_image

    if args.photo.isdigit():
        from vs_fer import make_photos

        path = make_photos()[0][int(args.photo)]
    else:
        path = Path(args.photo)
    image = load_image(path)
    detector = ferhub.Predictor().detector._mtcnn
    warmup = max(1, args.runs // 10)

    untimed = []
    for _ in range(warmup + args.runs):
        start = time.perf_counter()
        detector.detect(image)
        untimed.append(time.perf_counter() - start)
    recorder = Recorder()
    undo = instrument(detector, recorder)
    calls, totals = [], []
    try:
        for _ in range(warmup + args.runs):
            recorder.events = []
            recorder.origin = time.perf_counter()
            detector.detect(image)
            totals.append(time.perf_counter() - recorder.origin)
            calls.append(recorder.events)
    finally:
        undo()
    calls, totals = calls[warmup:], totals[warmup:]

    print(f"\n{cpu_name()}; {path.name} ({image.width}x{image.height}), {args.runs} detections,")
    timed_ms, untimed_ms = statistics.median(totals) * 1e3, statistics.median(untimed[warmup:]) * 1e3
    print(
        f"median {timed_ms:.2f} ms timed, {untimed_ms:.2f} ms untimed;"
        f" {getattr(detector, 'streams', 1)} streams on {cpu_cores()} cores\n"
    )
    print("| start, ms | end, ms | ms | thread | step |")
    print("|---:|---:|---:|---|---|")
    for start, end, thread, step, k in rows(calls):
        print(f"| {start * 1e3:.3f} | {end * 1e3:.3f} | {(end - start) * 1e3:.3f} | {thread} | {step} #{k} |")


if __name__ == "__main__":
    main()
