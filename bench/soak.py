"""Load and soak test of the web app: does the server stay up, give back its memory and keep its disk bounded?

    python bench/soak.py [--clients 16] [--requests 25] [--soak-clients 4] [--soak-minutes 10]

Against ``python app.py`` served on a free local port as a Space runs it, with ``TMPDIR`` pointed at one fresh
folder so that every file it leaves is counted (its outputs, and the Gradio cache it makes there for itself,
capped and removed at exit; ``GRADIO_TEMP_DIR`` is left unset, as a folder named there is the operator's and
outlives the server). The server keeps a result downloadable for ``--cache-max-age`` seconds
(``FERHUB_CACHE_MAX_AGE_S``; the app's default, 600, is as long as the whole soak, which would then never
reach the steady state it checks). First ``--clients`` clients x ``--warm-up`` calls, so that one-time costs
(the model, Gradio's worker threads, malloc arenas) are in the baseline; then:

1. burst: ``--clients`` concurrent ``gradio_client`` clients x ``--requests`` ``classify`` calls each (a
   640x480 photo with one face, attribution ``--method``): failures, throughput, latency, and the server's
   resident memory (RSS) before, at its peak, and ``--settle`` seconds after; pass when nothing failed and the
   RSS after is within 10% of the RSS before;
2. soak: ``--soak-clients`` clients calling ``classify`` for ``--soak-minutes``, sampling RSS and the
   temporary folder's file count every ``--sample`` seconds: the RSS trend must be flat (the last quarter's
   mean RSS within 5% of the second quarter's; the least-squares slope over the second half is printed too)
   and the file count bounded (the second half's peak at most 10 files over the first half's);
3. after the server has exited: the files left in its temporary folders.

Prints a Markdown table headed by the CPU model and core count. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from machine import free_port, one_face_photo, rss_mb, start_app, stop, wait_http

from ferhub.device import cpu_name

RSS_BACK_WITHIN = 0.10  # the burst's RSS must come back within 10% of where it started
FLAT_DRIFT = 0.05  # the soak's last-quarter mean RSS may exceed its second-quarter mean by this much


def count_files(folder: Path) -> tuple[int, float]:
    """(files, MB) below ``folder``; files vanishing while counted (the app sweeping) are skipped."""
    n, size = 0, 0
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                size += os.stat(os.path.join(root, name)).st_size
                n += 1
            except FileNotFoundError:
                pass
    return n, size / 2**20


class Server:
    """``python app.py`` on a free port, its temporary folders inside ``tmp``."""

    def __init__(self, tmp: Path, cache_max_age: int, sweep: int) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/"
        self.tmp = tmp
        (tmp / "tmp").mkdir(parents=True, exist_ok=True)
        env = {
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "TMPDIR": str(tmp / "tmp"),
            "HF_HUB_OFFLINE": "1",
            "FERHUB_CACHE_MAX_AGE_S": str(cache_max_age),
            "FERHUB_CACHE_SWEEP_S": str(sweep),
        }
        log = open(tmp.parent / "server.log", "wb")  # noqa: SIM115 (the server's whole life)
        self.process = start_app(port, env, stderr=log)
        wait_http(self.url, self.process)

    def rss(self) -> float:
        if self.process.poll() is not None:
            tail = (self.tmp.parent / "server.log").read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"app.py exited with {self.process.returncode}:\n" + "\n".join(tail))
        return rss_mb(self.process.pid)

    def files(self) -> tuple[int, float]:
        return count_files(self.tmp)

    def stop(self) -> None:
        stop(self.process, timeout=30)


@dataclass
class Load:
    """Requests made by client threads: counts, failures (with the first few reasons) and latencies."""

    done: int = 0
    failures: int = 0
    reasons: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, seconds: float, error: str | None) -> None:
        with self.lock:
            self.done += 1
            self.latencies.append(seconds)
            if error is not None:
                self.failures += 1
                if len(self.reasons) < 3:
                    self.reasons.append(error[:200])


def client_loop(url: str, photo: Path, args: argparse.Namespace, load: Load, until: object) -> None:
    """Call ``classify`` until ``until()`` is true; every call must find the photo's one face. Results are
    downloaded (as a browser fetches them) into the bench's own folder, beside the photo."""
    from gradio_client import Client, handle_file

    client = Client(
        url,
        verbose=False,
        httpx_kwargs={"timeout": args.timeout},
        download_files=str(photo.parent / "client"),
    )
    method = args.method
    while not until():
        t = time.perf_counter()
        error = None
        try:
            result = client.predict(handle_file(str(photo)), None, method, api_name="/classify")
            faces = len(result[4]["faces"])
            if faces != 1:
                error = f"{faces} faces found"
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
        load.record(time.perf_counter() - t, error)


def run_clients(n: int, target: object) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    return threads


def burst(server: Server, photo: Path, args: argparse.Namespace) -> dict[str, float]:
    load = Load()
    before = server.rss()
    peak = before
    counts = [0] * args.clients

    def worker(i: int) -> None:
        def until() -> bool:
            counts[i] += 1
            return counts[i] > args.requests

        client_loop(server.url, photo, args, load, until)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, server.rss())
        time.sleep(0.25)
    seconds = time.perf_counter() - start
    time.sleep(args.settle)
    after = server.rss()
    return {
        "requests": load.done,
        "failures": load.failures,
        "reasons": load.reasons,
        "throughput": load.done / seconds,
        "p50": statistics.median(load.latencies),
        "p90": float(np.percentile(load.latencies, 90)),
        "max": max(load.latencies),
        "before": before,
        "peak": peak,
        "after": after,
    }


def soak(server: Server, photo: Path, args: argparse.Namespace) -> dict[str, object]:
    load = Load()
    stop_at = time.monotonic() + args.soak_minutes * 60

    def until() -> bool:
        return time.monotonic() >= stop_at

    threads = run_clients(args.soak_clients, lambda: client_loop(server.url, photo, args, load, until))
    samples: list[tuple[float, float, int, float]] = []  # (minutes, RSS MB, files, file MB)
    start = time.monotonic()
    while any(t.is_alive() for t in threads):
        files, mb = server.files()
        samples.append(((time.monotonic() - start) / 60, server.rss(), files, mb))
        time.sleep(min(args.sample, max(stop_at - time.monotonic(), 0.5)))
    for t in threads:
        t.join()
    minutes = np.array([s[0] for s in samples])
    rss = np.array([s[1] for s in samples])
    files = np.array([s[2] for s in samples])
    half = minutes >= minutes[-1] / 2
    slope = float(np.polyfit(minutes[half], rss[half], 1)[0]) * 60 if half.sum() >= 2 else float("nan")
    quarter = np.minimum((4 * minutes / max(minutes[-1], 1e-9)).astype(int), 3)
    second, last = rss[quarter == 1], rss[quarter == 3]
    drift = float(last.mean() / second.mean() - 1) if len(second) and len(last) else float("nan")
    return {
        "requests": load.done,
        "failures": load.failures,
        "reasons": load.reasons,
        "p50": statistics.median(load.latencies) if load.latencies else float("nan"),
        "rss_start": float(rss[0]),
        "rss_end": float(rss[-1]),
        "rss_max": float(rss.max()),
        "slope_mb_per_hour": slope,
        "drift": drift,
        "files_first_half_max": int(files[~half].max()) if (~half).any() else int(files[0]),
        "files_second_half_max": int(files[half].max()),
        "files_end": int(files[-1]),
        "file_mb_max": float(max(s[3] for s in samples)),
        "samples": len(samples),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=25)
    parser.add_argument("--soak-clients", type=int, default=4)
    parser.add_argument("--soak-minutes", type=float, default=10.0)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between soak samples")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after the burst before the RSS")
    parser.add_argument("--warm-up", type=int, default=2, help="classify calls per client before measuring")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="client's seconds to wait for one answer"
    )
    parser.add_argument("--cache-max-age", type=int, default=120, help="FERHUB_CACHE_MAX_AGE_S of the server")
    parser.add_argument("--sweep", type=int, default=20, help="FERHUB_CACHE_SWEEP_S of the server")
    parser.add_argument("--method", default="Grad-CAM", help="attribution method of every classify call")
    args = parser.parse_args()

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="ferhub-soak-"))
    photo = one_face_photo(tmp)
    server = Server(tmp / "server", args.cache_max_age, args.sweep)
    try:
        first_rss = server.rss()
        warm = Load()
        counters = [iter(range(args.warm_up + 1)) for _ in range(args.clients)]
        threads = [
            threading.Thread(
                target=client_loop, args=(server.url, photo, args, warm, lambda c=c: next(c) >= args.warm_up)
            )
            for c in counters
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if warm.failures:
            raise RuntimeError(f"classify fails before any load: {warm.reasons}")
        time.sleep(args.settle)
        b = burst(server, photo, args)
        s = soak(server, photo, args)
    finally:
        server.stop()
    left, left_mb = count_files(tmp / "server")
    left_where = sorted(
        {
            str(Path(root).relative_to(tmp / "server").parts[:2])
            for root, _, names in os.walk(tmp / "server")
            if names
        }
    )
    shutil.rmtree(tmp, ignore_errors=True)

    burst_ok = b["failures"] == 0 and b["after"] <= b["before"] * (1 + RSS_BACK_WITHIN)
    flat = s["drift"] <= FLAT_DRIFT
    bounded = s["files_second_half_max"] <= s["files_first_half_max"] + 10
    soak_ok = s["failures"] == 0 and flat and bounded
    usable = f"{len(os.sched_getaffinity(0))} usable"
    loads = " / ".join(f"{x:.2f}" for x in (*load_before[:1], *os.getloadavg()[:1]))
    print(f"\n**{cpu_name()} ({usable})**, Python {platform.python_version()}, `{' '.join(sys.argv)}`")
    # the soak checks memory and files, not speed; the load says how busy the machine was meanwhile
    print(
        f"machine load (1-min average) at start / end: {loads}; server:"
        f" FERHUB_CACHE_MAX_AGE_S={args.cache_max_age}, FERHUB_CACHE_SWEEP_S={args.sweep}; client timeout"
        f" {args.timeout:g} s\n"
    )
    print("| phase | measure | value | check |")
    print("|---|---|---|---|")
    rows = [
        (
            "warm-up",
            f"server RSS idle / after {args.clients} clients x {args.warm_up} classify",
            f"{first_rss:.0f} / {b['before']:.0f} MB",
            "",
        ),
        (
            "burst",
            f"{args.clients} clients x {args.requests} classify ({args.method})",
            f"{b['requests']} requests, {b['failures']} failed",
            "0 failures: " + ("yes" if b["failures"] == 0 else "no"),
        ),
        (
            "burst",
            "throughput; latency p50 / p90 / max",
            f"{b['throughput']:.1f} req/s; {b['p50']:.2f} / {b['p90']:.2f} / {b['max']:.2f} s",
            "",
        ),
        (
            "burst",
            "server RSS before / peak / after",
            f"{b['before']:.0f} / {b['peak']:.0f} / {b['after']:.0f} MB",
            (
                f"after within 10%: {'yes' if b['after'] <= b['before'] * 1.1 else 'no'}"
                f" ({100 * (b['after'] / b['before'] - 1):+.1f}%)"
            ),
        ),
        (
            "soak",
            f"{args.soak_clients} clients for {args.soak_minutes:g} min",
            f"{s['requests']} requests, {s['failures']} failed, p50 {s['p50']:.2f} s",
            "0 failures: " + ("yes" if s["failures"] == 0 else "no"),
        ),
        (
            "soak",
            "server RSS start / max / end; slope (2nd half)",
            (
                f"{s['rss_start']:.0f} / {s['rss_max']:.0f} / {s['rss_end']:.0f} MB;"
                f" {s['slope_mb_per_hour']:+.0f} MB/h"
            ),
            (
                f"flat (last vs 2nd quarter {100 * s['drift']:+.1f}%, <= {100 * FLAT_DRIFT:.0f}%):"
                f" {'yes' if flat else 'no'}"
            ),
        ),
        (
            "soak",
            "temp files: 1st-half max / 2nd-half max / end (max MB)",
            (
                f"{s['files_first_half_max']} / {s['files_second_half_max']} / {s['files_end']}"
                f" ({s['file_mb_max']:.1f} MB)"
            ),
            f"bounded: {'yes' if bounded else 'no'}",
        ),
        ("exit", "temp files left after the server exited", f"{left} ({left_mb:.1f} MB)", ""),
    ]
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if left:
        print(f"\nleft in: {', '.join(left_where[:5])}")
    for reason in [*b["reasons"], *s["reasons"]]:
        print(f"\nfailure: {reason}")
    return 0 if burst_ok and soak_ok else 1


if __name__ == "__main__":
    sys.exit(main())
