"""ferhub against the ``fer`` package (25.10.3: OpenCV Haar cascade + TFLite mini-Xception, its default), in
one run.

    python bench/vs_fer.py [--rounds 3] [--runs 15] [--folder-photos 60] [--kinds [--kind-runs 5]]
                           [--photos DIR]

fer runs in its own virtualenv (``bench/fer_env.py`` creates ``bench/.venv-fer`` on first use: fer without its
declared dependencies, next to tensorflow-cpu and headless OpenCV, which is all it imports). Both libraries
see the same JPEG files, written to ``bench/.fer-photos`` from the real photos ferhub and its test extras
ship:

- **640x480 one-face photos** (8): matplotlib's Grace Hopper and scikit-image's astronaut (bundled in
  ``ferhub/assets/examples``), and six LFW faces (scikit-image's ``lfw_subset``, 25x25 crops upscaled to
  260 px) each on a blurred copy of one of the two photos;
- **1920x1080 group photos with five faces** (3): Grace Hopper's and the astronaut's heads and three upscaled
  LFW faces, at different places, on a blurred backdrop;
- **640x480 real photos** (3): Grace Hopper, the astronaut and scikit-image's cameraman, each cut to 4:3
  about its centre and filling the frame: real backgrounds, where the one-face photos' blurred backdrops
  make fer's Haar cascade fast (its time grows with a photo's texture) and give MTCNN few candidates.

Measured, each in a fresh child process per library, alternating fer and ferhub for ``--rounds`` rounds
(the machine may be shared: compare the ratios, which come from the same rounds):

1. end to end in-process as a user runs it (``fer.fer.FER().detect_emotions(cv2.imread(path))`` against
   ``ferhub.Predictor().predict_image(path)``, decoding included): median ms per photo after one warm-up call;
2. the same on the 1920 px group photos;
3. a folder: ``ferhub predict FOLDER`` against a fer loop over the same folder in one ``python`` process, wall
   time from start to exit (imports included), as photos per second.

``--kinds`` adds a table of other photos users upload, so that the ratios are not only those of one size and
format: the three real photos at 320x240, 1024x768, 1600x1200 and 4032x3024 (each resized from its 640x480
file, so the large ones are upscaled: smoother than a camera's), as 640x480 PNG files, and as 640x480
grey JPEGs; each kind's median over its photos, ``--kind-runs`` timed calls a photo, in the same rounds.

``--photos DIR`` adds rows for your own photos (unseen ones: the ratios should not hold only for the photos
above): every image file directly in ``DIR``, as given (any size; JPEG, PNG, BMP, WebP or TIFF), timed one by
one like the one-face photos and as a folder like the folder row; a photo one of the libraries cannot read is
left out of both medians and counted under the table.

Every table states the CPU model and core count; under it, the share of CPU time the hypervisor took during
the run and a one-thread ``sgemm`` rate before and after it (``machine.HostWatch``): the same VM moved this
benchmark's one-face ratio from 0.32x to 0.63x within an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image, ImageFilter

from ferhub.assets import EXAMPLES_DIR
from ferhub.device import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fer_env import FER_VERSION, fer_python
from machine import HostWatch, heads, lfw_faces

PHOTOS = Path(__file__).resolve().parent / ".fer-photos"

FER_TIMING = """
import json, sys, time, statistics, cv2
from fer.fer import FER
detector = FER()
out = {}
for path in sys.argv[2:]:
    image = cv2.imread(path)
    if image is None:  # a file OpenCV cannot read (--photos): left out, not the end of the run
        out[path] = None
        continue
    faces = len(detector.detect_emotions(image))
    times = []
    for _ in range(int(sys.argv[1])):
        t = time.perf_counter()
        detector.detect_emotions(cv2.imread(path))
        times.append(time.perf_counter() - t)
    out[path] = [statistics.median(times) * 1000, faces]
print(json.dumps(out))
"""

FERHUB_TIMING = """
import json, sys, time, statistics
import ferhub
predictor = ferhub.Predictor()
out = {}
for path in sys.argv[2:]:
    result = predictor.predict_image(path)
    if result.error is not None:  # a file ferhub cannot read (--photos): left out, not the end of the run
        out[path] = None
        continue
    faces = len(result.faces)
    times = []
    for _ in range(int(sys.argv[1])):
        t = time.perf_counter(); predictor.predict_image(path); times.append(time.perf_counter() - t)
    out[path] = [statistics.median(times) * 1000, faces]
print(json.dumps(out))
"""

FER_FOLDER = """
import sys, pathlib, cv2
from fer.fer import FER
detector = FER()
for path in sorted(p for p in pathlib.Path(sys.argv[1]).iterdir() if p.is_file()):
    image = cv2.imread(str(path))
    if image is not None:  # ferhub predict reports an unreadable file and goes on: so does this loop
        detector.detect_emotions(image)
"""


def make_photos() -> tuple[list[Path], list[Path]]:
    """Write the one-face and group photos (see the module docstring); returns their paths."""
    PHOTOS.mkdir(exist_ok=True)
    backdrops = [Image.open(EXAMPLES_DIR / n).convert("RGB") for n in ("grace_hopper.jpg", "astronaut.jpg")]
    one, group = [], []
    for photo in backdrops:  # the photos themselves, letterboxed onto 640x480
        canvas = photo.resize((640, 480)).filter(ImageFilter.GaussianBlur(24))
        fitted = photo.copy()
        fitted.thumbnail((640, 480))
        canvas.paste(fitted, ((640 - fitted.width) // 2, (480 - fitted.height) // 2))
        one.append(canvas)
    for i, face in enumerate(lfw_faces()):
        canvas = backdrops[i % 2].resize((640, 480)).filter(ImageFilter.GaussianBlur(24))
        canvas.paste(face.resize((260, 260), Image.Resampling.BICUBIC), (90 + 40 * i, 60 + 20 * (i % 4)))
        one.append(canvas)
    faces = heads() + [f.resize((240, 240), Image.Resampling.BICUBIC) for f in lfw_faces()[:3]]
    for k in range(3):
        canvas = backdrops[k % 2].resize((1920, 1080)).filter(ImageFilter.GaussianBlur(40))
        for j, face in enumerate(faces[k:] + faces[:k]):
            face = face.resize((round(face.width * 300 / face.height), 300))
            canvas.paste(face, (60 + 370 * j, 150 + 250 * ((j + k) % 3)))
        group.append(canvas)
    paths = ([], [])
    for kind, images in (("one", one), ("group", group)):
        for i, image in enumerate(images):
            path = PHOTOS / f"{kind}-{i}.jpg"
            image.save(path, quality=90)
            paths[kind == "group"].append(path)
    return paths


def make_real_photos() -> list[Path]:
    """Write the real photos (see the module docstring); returns their paths."""
    from skimage import data

    PHOTOS.mkdir(exist_ok=True)
    photos = [Image.open(EXAMPLES_DIR / n).convert("RGB") for n in ("grace_hopper.jpg", "astronaut.jpg")]
    photos.append(Image.fromarray(data.camera()).convert("RGB"))
    paths = []
    for i, photo in enumerate(photos):
        w, h = photo.size
        cw, ch = min(w, h * 4 // 3), min(h, w * 3 // 4)  # the largest 4:3 cut about the centre
        box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)
        path = PHOTOS / f"real-{i}.jpg"
        photo.resize((640, 480), Image.Resampling.BICUBIC, box=box).save(path, quality=90)
        paths.append(path)
    return paths


KIND_SIDES = (320, 1024, 1600, 4032)


def make_kind_photos(real: list[Path]) -> dict[str, list[Path]]:
    """Write the real photos at other sizes, as PNG and in grey (``--kinds``); returns them by kind."""
    kinds: dict[str, list[Path]] = {}
    for i, path in enumerate(real):
        photo = Image.open(path).convert("RGB")
        for side in KIND_SIDES:
            size = (side, side * 3 // 4)
            out = PHOTOS / f"real-{i}-{side}.jpg"
            photo.resize(size, Image.Resampling.BICUBIC).save(out, quality=90)
            kinds.setdefault(f"{size[0]}x{size[1]} JPEG", []).append(out)
        out = PHOTOS / f"real-{i}.png"
        photo.save(out)
        kinds.setdefault("640x480 PNG", []).append(out)
        out = PHOTOS / f"real-{i}-grey.jpg"
        photo.convert("L").save(out, quality=90)
        kinds.setdefault("640x480 grey JPEG", []).append(out)
    return kinds


PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")  # what both libraries decode


def own_photos(folder: Path) -> list[Path]:
    """``--photos``: the image files directly in ``folder``, sorted by name, copied to a folder of their own
    (the folder row must hold only them: ``ferhub predict`` recurses, fer's loop does not)."""
    if not folder.is_dir():
        raise SystemExit(f"--photos {folder}: not a folder")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not found:
        raise SystemExit(f"--photos {folder}: no {', '.join(PHOTO_SUFFIXES)} files in it")
    own = PHOTOS / "own"
    shutil.rmtree(own, ignore_errors=True)
    own.mkdir(parents=True)
    paths = []
    for i, path in enumerate(found):
        paths.append(own / f"{i:04d}-{path.name}")
        shutil.copyfile(path, paths[-1])
    return paths


def child(python: str, code: str, args: list[str]) -> dict:
    out = subprocess.run([python, "-c", code, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def wall(cmd: list[str]) -> float:
    """Seconds ``cmd`` ran, start to exit; a failure stops the benchmark."""
    start = time.perf_counter()
    code = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... exited {code}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=15, help="timed calls per photo in each child")
    parser.add_argument("--folder-photos", type=int, default=60)
    parser.add_argument("--kinds", action="store_true", help="also time other sizes and formats")
    parser.add_argument("--kind-runs", type=int, default=5, help="timed calls per photo of --kinds")
    parser.add_argument("--photos", type=Path, help="also time the image files in this folder, as given")
    args = parser.parse_args()
    own = own_photos(args.photos) if args.photos else []
    fer = str(fer_python())
    one, group = make_photos()
    real = make_real_photos()
    kinds = make_kind_photos(real) if args.kinds else {}
    folder = PHOTOS / "folder"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for i in range(args.folder_photos):
        shutil.copy(one[i % len(one)], folder / f"{i:04d}.jpg")
    names = [str(p) for p in one + group + real + own]
    # each child times its photos --runs times, the --kinds photos (large ones among them) --kind-runs times
    batches = [(args.runs, names)]
    if kinds:
        batches.append((args.kind_runs, [str(p) for paths in kinds.values() for p in paths]))
    per_photo: dict[str, dict[str, list[float]]] = {"fer": {}, "ferhub": {}}
    faces: dict[str, dict[str, int]] = {"fer": {}, "ferhub": {}}
    unread: dict[str, set[str]] = {"fer": set(), "ferhub": set()}
    folder_s: dict[str, list[float]] = {"fer": [], "ferhub": []}
    own_s: dict[str, list[float]] = {"fer": [], "ferhub": []}

    def both_read(paths: list[Path]) -> list[Path]:
        return [p for p in paths if not any(str(p) in unread[lib] for lib in unread)]

    host = HostWatch()
    for _ in range(args.rounds):
        for lib, python, code in (("fer", fer, FER_TIMING), ("ferhub", sys.executable, FERHUB_TIMING)):
            for runs, paths in batches:
                for path, timed in child(python, code, [str(runs), *paths]).items():
                    if timed is None:
                        unread[lib].add(path)
                        continue
                    per_photo[lib].setdefault(path, []).append(timed[0])
                    faces[lib][path] = timed[1]
        folder_s["fer"].append(wall([fer, "-c", FER_FOLDER, str(folder)]))
        folder_s["ferhub"].append(wall([sys.executable, "-m", "ferhub", "predict", str(folder)]))
        kept = both_read(own)
        for path in set(own) - set(kept):  # a photo one library cannot read leaves the folder too
            path.unlink(missing_ok=True)
        if kept:
            own_s["fer"].append(wall([fer, "-c", FER_FOLDER, str(own[0].parent)]))
            own_s["ferhub"].append(wall([sys.executable, "-m", "ferhub", "predict", str(own[0].parent)]))

    def median_ms(lib: str, paths: list[Path]) -> float:
        return statistics.median(statistics.median(per_photo[lib][str(p)]) for p in both_read(paths))

    def found(lib: str, paths: list[Path]) -> int:
        return sum(faces[lib][str(p)] for p in both_read(paths))

    print(
        f"{cpu_name()}; fer {FER_VERSION} (Haar + TFLite) in {Path(fer).parent.parent.name}, ferhub default"
    )
    print(
        f"(ONNX Runtime on the CPU); {args.rounds} rounds, child processes alternating, {args.runs} runs a"
        " photo\n"
    )
    print("| measure | fer | ferhub | ferhub / fer | target |")
    print("|---|---:|---:|---:|---|")
    f1, h1 = median_ms("fer", one), median_ms("ferhub", one)
    print(
        f"| 640x480 one-face photo, end to end in-process, median ms ({len(one)} photos; faces found fer"
        f" {found('fer', one)}, ferhub {found('ferhub', one)}) | {f1:.1f} | {h1:.1f} | {h1 / f1:.2f}x | <="
        " 0.4x |"
    )
    f_real, h_real = median_ms("fer", real), median_ms("ferhub", real)
    print(
        f"| 640x480 real photo filling the frame, end to end in-process, median ms ({len(real)} photos; faces"
        f" found fer {found('fer', real)}, ferhub {found('ferhub', real)}) | {f_real:.1f} | {h_real:.1f} |"
        f" {h_real / f_real:.2f}x | (the row above's, on real backgrounds) |"
    )
    f5, h5 = median_ms("fer", group), median_ms("ferhub", group)
    print(
        f"| 1920x1080 five-face photo, median ms ({len(group)} photos; faces found fer {found('fer', group)},"
        f" ferhub {found('ferhub', group)} of {5 * len(group)}) | {f5:.1f} | {h5:.1f} | {h5 / f5:.2f}x |"
        " ferhub <= 150 ms |"
    )
    fr = args.folder_photos / statistics.median(folder_s["fer"])
    hr = args.folder_photos / statistics.median(folder_s["ferhub"])
    print(
        f"| folder of {args.folder_photos} one-face photos, start to exit, photos/s | {fr:.1f} | {hr:.1f} | "
        f"{hr / fr:.2f}x | >= 2.5x |"
    )
    kept = both_read(own)
    if kept:  # both rows over the photos both libraries read
        f_own, h_own = median_ms("fer", own), median_ms("ferhub", own)
        print(
            f"| your photos ({args.photos}, as given; {len(kept)} photos; faces found fer"
            f" {found('fer', own)}, ferhub {found('ferhub', own)}), end to end in-process, median ms |"
            f" {f_own:.1f} | {h_own:.1f} | {h_own / f_own:.2f}x | (unseen photos) |"
        )
        fo = len(kept) / statistics.median(own_s["fer"])
        ho = len(kept) / statistics.median(own_s["ferhub"])
        print(
            f"| folder of your {len(kept)} photos, start to exit, photos/s | {fo:.1f} | {ho:.1f} |"
            f" {ho / fo:.2f}x | (unseen photos) |"
        )
    if kinds:
        print(
            "\n| other photos (the real photos' 3 scenes), median ms | fer | ferhub | ferhub / fer |"
            " faces found fer / ferhub |"
        )
        print("|---|---:|---:|---:|---|")
        for kind, paths in kinds.items():
            f, h = median_ms("fer", paths), median_ms("ferhub", paths)
            print(
                f"| {kind} | {f:.1f} | {h:.1f} | {h / f:.2f}x | {found('fer', paths)} /"
                f" {found('ferhub', paths)} |"
            )
    for lib, paths in unread.items():
        if paths:
            print(f"\n{lib} could not read (left out of both libraries' medians): {', '.join(sorted(paths))}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nload average at the end: {load:.1f}")
    print(*host.lines(), sep="\n")


if __name__ == "__main__":
    main()
