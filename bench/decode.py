"""Decoding a photo: ``ferhub.load_image`` against Pillow's own decoding, on the same files, as a table.

    python bench/decode.py [--runs 30] [--rounds 3]

The files are ``bench/vs_fer.py``'s three real photos (640x480 JPEG) and the same pixels as PNG (Pillow's
writer: adaptive filters, mostly Paeth) and as grey PNG, written to ``bench/.fer-photos``. Pillow's decoding
is ``Image.open(path).load()`` (what ``load_image`` did for PNGs before ``ferhub/_png.py``); ferhub's is
``load_image(path)``, which ends in an upright RGB image (grey converted). The two alternate photo by photo in
``--rounds`` rounds of ``--runs`` calls each, after a warm-up call, in one process; a row gives the medians of
the photos' median ms and the ratio. States the CPU model and core count.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from pathlib import Path

from machine import timed
from PIL import Image
from vs_fer import PHOTOS, make_real_photos

from ferhub.device import cpu_name
from ferhub.images import load_image


def median_ms(fn: Callable[[], object], runs: int) -> float:
    return statistics.median(timed(fn, runs, warmup=1)) * 1000


def pillow(path: Path) -> None:
    with Image.open(path) as image:
        image.load()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    kinds: dict[str, list[Path]] = {
        "640x480 JPEG": make_real_photos(),
        "640x480 PNG": [],
        "640x480 grey PNG": [],
    }
    for i, jpeg in enumerate(kinds["640x480 JPEG"]):
        photo = Image.open(jpeg).convert("RGB")
        for kind, image in (("640x480 PNG", photo), ("640x480 grey PNG", photo.convert("L"))):
            path = PHOTOS / f"decode-{i}-{image.mode}.png"
            image.save(path)
            kinds[kind].append(path)
    times: dict[tuple[str, Path], list[float]] = {}
    for _ in range(args.rounds):
        for paths in kinds.values():
            for path in paths:
                times.setdefault(("Pillow", path), []).append(median_ms(lambda p=path: pillow(p), args.runs))
                times.setdefault(("ferhub", path), []).append(
                    median_ms(lambda p=path: load_image(p), args.runs)
                )

    def ms(lib: str, paths: list[Path]) -> float:
        return statistics.median(statistics.median(times[lib, p]) for p in paths)

    print(f"{cpu_name()}; {args.rounds} rounds of {args.runs} calls a photo, alternating, one process\n")
    print("| photos (3 scenes), median ms | Pillow `open` + `load` | ferhub `load_image` | ferhub / Pillow |")
    print("|---|---:|---:|---:|")
    for kind, paths in kinds.items():
        pil, ours = ms("Pillow", paths), ms("ferhub", paths)
        print(f"| {kind} | {pil:.2f} | {ours:.2f} | {ours / pil:.2f}x |")


if __name__ == "__main__":
    main()
