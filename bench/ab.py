"""ferhub's code at a git revision against the working tree, in one process: a change's speed as a ratio.

    python bench/ab.py REV [--step detect|predict] [--photos one|group|real] [--rounds 21]

The machines this project runs on are shared and differ from one hour to the next, so a change smaller than
that spread (most of them) is measured here as a ratio: ``REV``'s ``ferhub`` package (``git archive``, renamed
``ferhub_old`` in a temporary folder) and the working tree's are loaded side by side, and each photo goes
through both, alternating which goes first, for ``--rounds`` rounds. Photos: ``bench/vs_fer.py``'s (8 one-face
640x480 photos, its 3 1920x1080 group photos, or its 3 real 640x480 photos). Steps:

- ``detect``: ``OnnxMTCNN.detect`` on decoded photos (the default; the detector of ``Predictor()``);
- ``predict``: ``Predictor().predict_image(path)``, decoding and classifying included.

The table gives each side's median time per photo, the geometric mean of the per-photo ratios (new / old) and
the largest difference between the two sides' boxes (0.0: the same boxes to the bit). Comparing the working
tree with itself (``REV`` = ``HEAD`` with no change) gives the noise floor: 1.003-1.005x on an Intel Xeon VM,
2026-12-02. States the CPU model and core count.
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def old_package(rev: str, folder: Path) -> None:
    """``rev``'s ``ferhub`` package written to ``folder / "ferhub_old"``, importing itself by that name."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "ferhub"], check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        archive.extractall(folder, filter="data")
    package = folder / "ferhub_old"
    (folder / "ferhub").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text()
        # imports, and the dotted names of the package's lazy attribute map ("ferhub.predict" ...)
        text = re.sub(r"\b(from|import) ferhub([. \n])", r"\1 ferhub_old\2", text)
        text = text.replace('"ferhub.', '"ferhub_old.')
        path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("rev", help="the git revision to compare the working tree with (e.g. HEAD~1)")
    parser.add_argument("--step", choices=("detect", "predict"), default="detect")
    parser.add_argument("--photos", choices=("one", "group", "real"), default="one")
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()

    from vs_fer import make_photos, make_real_photos

    photos = make_real_photos() if args.photos == "real" else make_photos()[args.photos == "group"]
    paths = [str(p) for p in photos]
    with tempfile.TemporaryDirectory() as tmp:
        old_package(args.rev, Path(tmp))
        sys.path.insert(0, tmp)
        import ferhub_old  # type: ignore[import-not-found]

        import ferhub
        from ferhub.device import cpu_name
        from ferhub.images import load_image

        sides = {"new": ferhub.Predictor(), "old": ferhub_old.Predictor()}
        images = [load_image(p) for p in paths]

        def run(side: str, i: int) -> np.ndarray:
            predictor = sides[side]
            if args.step == "predict":
                faces = predictor.predict_image(paths[i]).faces
                return np.array([f.face.box for f in faces], dtype=np.float64).reshape(-1, 4)
            return predictor.detector._mtcnn.detect(images[i])[0]

        largest = 0.0
        for i in range(len(paths)):  # warm-up, and the boxes of both
            new, old = run("new", i), run("old", i)
            if new.shape != old.shape:
                raise SystemExit(f"{paths[i]}: {len(new)} faces against {len(old)} at {args.rev}")
            largest = max(largest, float(np.abs(new - old).max()) if len(new) else 0.0)
        times: dict[str, list[list[float]]] = {side: [[] for _ in paths] for side in sides}
        for r in range(args.rounds):
            for i in range(len(paths)):
                for side in ("new", "old") if r % 2 == 0 else ("old", "new"):
                    start = time.perf_counter()
                    run(side, i)
                    times[side][i].append(time.perf_counter() - start)
    medians = {side: [statistics.median(t) for t in per_photo] for side, per_photo in times.items()}
    ratios = [n / o for n, o in zip(medians["new"], medians["old"])]
    print(f"\n{cpu_name()}; working tree against {args.rev}, {args.step}, {len(paths)} {args.photos} photos,")
    print(f"{args.rounds} rounds alternating in one process\n")
    print("| photos | old, median ms | new, median ms | new / old (geometric mean) | largest box change |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| {args.photos} | {statistics.median(medians['old']) * 1e3:.2f} |"
        f" {statistics.median(medians['new']) * 1e3:.2f} | {np.exp(np.mean(np.log(ratios))):.3f} |"
        f" {largest:.2g} |"
    )
    print("\nper photo, new / old:", " ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
