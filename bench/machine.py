"""What the benchmark scripts share: the CPU model every table names (tables from Intel and AMD machines
differ), the state of the shared host during a run (:class:`HostWatch`: the hypervisor's steal share and a
one-thread ``sgemm`` probe), timing a call, how a table is printed, the one-face photo the app benchmarks
send, and how they start, wait for and stop ``app.py``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent


def cpu_ticks(stat: str | None = None) -> tuple[int, int] | None:
    """(ticks the hypervisor took from this VM, all ticks) over every CPU since boot: ``/proc/stat``'s first
    line (``stat``: its text), ``None`` where there is none (not Linux)."""
    if stat is None:
        try:
            stat = Path("/proc/stat").read_text()
        except OSError:
            return None
    fields = stat.splitlines()[0].split()
    if fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is counted in user already
    ticks = [int(v) for v in fields[1:9]]
    return ticks[7], sum(ticks)


class Steal:
    """The share of CPU time the hypervisor gave to other guests ("steal") between construction and
    :meth:`share`. On the shared 2-core VMs this project measures on, it moved from ~1% to over 12% within an
    hour, while ``bench/vs_fer.py``'s one-face ratio moved from 0.32x to 0.63x, so the ratios are printed with
    it."""

    def __init__(self, stat: str | None = None) -> None:
        self.start = cpu_ticks(stat)

    def share(self, stat: str | None = None) -> float:
        """Stolen ticks over all ticks since construction (NaN without ``/proc/stat``)."""
        end = cpu_ticks(stat)
        if self.start is None or end is None or end[1] <= self.start[1]:
            return float("nan")
        return (end[0] - self.start[0]) / (end[1] - self.start[1])

    def line(self) -> str:
        """What the benchmarks print under their tables."""
        return f"CPU time taken by the hypervisor (steal) during the run: {self.share() * 100:.1f}%"


_SGEMM = """
import statistics, sys, time
import numpy as np
a, b = np.ones((1024, 1024), np.float32), np.ones((1024, 1024), np.float32)
a @ b
times, end = [], time.perf_counter() + float(sys.argv[1])
while time.perf_counter() < end or len(times) < 3:
    t = time.perf_counter()
    a @ b
    times.append(time.perf_counter() - t)
print(2 * 1024**3 / statistics.median(times) / 1e9)
"""


def sgemm_gflops(seconds: float = 1.0) -> float:
    """This host's speed now: the median GFLOP/s of one-thread 1024x1024 float32 matrix products (numpy's
    BLAS, in a child process held to one thread) over ``seconds``. The same kind of core did 93 GFLOP/s in one
    session and 75 in another, so the benchmarks print it before and after their runs."""
    one = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", _SGEMM, str(seconds)],
        env={**os.environ, **one},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


class HostWatch:
    """What the shared host did to a run, for the lines under a benchmark's table: the steal share
    (:class:`Steal`) and the one-thread sgemm rate (:func:`sgemm_gflops`) before and after."""

    def __init__(self) -> None:
        self.gflops = sgemm_gflops()
        self.steal = Steal()

    def lines(self) -> list[str]:
        steal = self.steal.line()  # read before the second probe adds its own second
        after = sgemm_gflops()
        return [
            steal,
            f"one-thread sgemm (host speed) before / after the run: {self.gflops:.0f} / {after:.0f} GFLOP/s",
        ]


def timed(fn: Callable[[], object], runs: int, warmup: int = 3) -> list[float]:
    """Seconds each of ``runs`` calls of ``fn`` took, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


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
