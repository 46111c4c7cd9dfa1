"""Start-to-exit wall time of ``ferhub predict`` with a warm ONNX cache, optionally against another ferhub
source tree, in one run.

    python bench/startup.py [--runs 7] [--folder-photos 60] [--baseline DIR]

``--baseline DIR``: a ferhub source tree (e.g. ``git archive main ferhub | tar -x -C DIR``), run with the same
interpreter and packages. Each tree runs through a launcher that puts it first on ``sys.path`` and drops an
editable install's import hook, which would otherwise find the installed ferhub before any ``PYTHONPATH``
entry (runs through ``PYTHONPATH`` alone measured the installed tree twice); and each tree has an ONNX cache
of its own, since the trees' graphs have different keys and runs that alternate would evict each other's.
Each command runs once untimed (that warms the ONNX cache and the page cache), then ``--runs`` times with the
trees alternating, so both see the same machine load; the table gives medians. The photos are
``bench/vs_fer.py``'s: one 640x480 one-face photo, and a folder of ``--folder-photos`` copies of its eight
one-face photos (the ``vs_fer`` folder row).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import ROOT, print_table
from vs_fer import make_photos

from ferhub.device import cpu_name

# ``python -m ferhub`` from the tree in argv[1]: first on sys.path, with no editable install's import hook
# (setuptools' ``__editable__`` finder) left to find another ferhub first
LAUNCH = """
import runpy, sys
tree = sys.argv.pop(1)
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path.insert(0, tree)
import ferhub
assert ferhub.__file__.startswith(tree), ferhub.__file__
sys.argv[0] = "ferhub"
runpy.run_module("ferhub", run_name="__main__", alter_sys=True)
"""


def wall(tree: Path, target: Path, cache: Path) -> float:
    """Seconds from start to exit of ``python -m ferhub predict target`` with ``tree``'s ferhub, its ONNX
    cache in ``cache``."""
    env = {**os.environ, "FERHUB_ONNX_CACHE": str(cache)}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", LAUNCH, str(tree), "predict", str(target)],
        env=env,
        cwd=tempfile.gettempdir(),  # not a folder holding a ferhub package of its own
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--folder-photos", type=int, default=60)
    parser.add_argument("--baseline", type=Path, help="another ferhub source tree to compare against")
    args = parser.parse_args()
    one, _ = make_photos()
    folder = Path(tempfile.mkdtemp(prefix="ferhub-startup-"))
    for i in range(args.folder_photos):
        shutil.copy(one[i % len(one)], folder / f"{i:04d}.jpg")
    trees: dict[str, Path] = {"this tree": ROOT}
    if args.baseline is not None:
        trees = {"baseline": args.baseline.resolve(), **trees}
    targets = {f"one photo ({one[0].name})": one[0], f"folder of {args.folder_photos} photos": folder}
    times: dict[tuple[str, str], list[float]] = {}
    cache_root = Path(tempfile.mkdtemp(prefix="ferhub-startup-onnx-"))  # outside the photo folder it scans
    caches = {name: cache_root / str(i) for i, name in enumerate(trees)}
    try:
        for name, tree in trees.items():  # warm-up: fills each tree's ONNX cache (and Numba's, if it has one)
            for target in targets.values():
                wall(tree, target, caches[name])
        for _ in range(args.runs):
            for what, target in targets.items():
                for name, tree in trees.items():
                    times.setdefault((what, name), []).append(wall(tree, target, caches[name]))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(cache_root, ignore_errors=True)
    print(f"{cpu_name()}; `ferhub predict`, warm ONNX cache, medians of {args.runs} alternating runs\n")
    rows = []
    for what in targets:
        medians = [statistics.median(times[what, name]) for name in trees]
        row = [what, *(f"{m:.2f}" for m in medians)]
        if len(medians) == 2:
            row.append(f"{medians[0] / medians[1]:.2f}x")
        if what.startswith("folder"):
            row[0] += ", photos/s: " + " / ".join(f"{args.folder_photos / m:.1f}" for m in medians)
        rows.append(row)
    header = ["start to exit, s", *trees]
    print_table(header + (["baseline / this"] if len(trees) == 2 else []), rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average at the end: {load:.1f}")


if __name__ == "__main__":
    main()
