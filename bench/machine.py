"""What the benchmark scripts share: the CPU model every table names (tables from Intel and AMD machines
differ), how a table is printed, the one-face photo the app benchmarks send, and how they start, wait for and
stop ``app.py``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent


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


def lfw_faces() -> list[Any]:
    """Six real faces from scikit-image's LFW crops (25x25 gray, as RGB PIL images)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    lfw = data.lfw_subset()
    return [
        Image.fromarray((lfw[i] * 255).round().astype(np.uint8)).convert("RGB")
        for i in (0, 11, 23, 42, 57, 80)
    ]


def heads() -> list[Any]:
    """The heads of the two bundled photos (Grace Hopper, the astronaut), as RGB PIL images."""
    from PIL import Image

    from ferhub.assets import EXAMPLES_DIR

    hopper = Image.open(EXAMPLES_DIR / "grace_hopper.jpg").convert("RGB")
    astronaut = Image.open(EXAMPLES_DIR / "astronaut.jpg").convert("RGB")
    return [hopper.crop((120, 60, 410, 400)), astronaut.crop((130, 10, 320, 230))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(
    port: int, env_extra: dict[str, str] | None = None, stderr: IO[Any] | int = subprocess.DEVNULL
) -> subprocess.Popen:
    """``python app.py`` on ``port`` with ``env_extra`` in its environment; stdout discarded, stderr to
    ``stderr``."""
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        **(env_extra or {}),
    }
    return subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr
    )


def wait_http(url: str, process: subprocess.Popen, timeout: float = 300) -> float:
    """Seconds until ``url`` answers 200 (polled every 20 ms, so a cold start is timed to that)."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"app.py did not answer {url} within {timeout:.0f} s")


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, as a Space or a service manager stops it; SIGKILL after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory in MB: ``VmRSS`` now, or ``VmHWM`` (its peak) from ``/proc``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")
