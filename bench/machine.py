"""What the benchmark scripts share: the CPU model every table names (tables from Intel and AMD machines
differ), how a table is printed, the one-face photo the app benchmarks send."""

from __future__ import annotations

import platform
from collections.abc import Iterable, Sequence
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def print_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A Markdown table: the header, its rule, one line a row."""
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def one_face_photo(folder: Path) -> Path:
    """Grace Hopper (one face) letterboxed into a 640x480 JPEG."""
    from PIL import Image

    from ferhub.assets import EXAMPLES_DIR

    photo = Image.open(EXAMPLES_DIR / "grace_hopper.jpg").convert("RGB")
    photo.thumbnail((640, 480))
    canvas = Image.new("RGB", (640, 480), (40, 40, 40))
    canvas.paste(photo, ((640 - photo.width) // 2, 0))
    path = folder / "one_face_640x480.jpg"
    canvas.save(path, quality=92)
    return path
