"""Harness of the hostile-input suite: run attack cases in a child process under a memory limit.

A case is a function ``case_<kind>(tmp: Path) -> Any`` in a ``tests/test_hostile_*`` module: it feeds a
hostile input to ferhub the way a user or a visitor would. Inputs that take a while to make are written into
``tmp`` by ``prepare_<kind>(tmp)``, which runs before the measurement starts. The child runs the cases of one
module one after another with ``RLIMIT_AS`` set (a runaway allocation fails there instead of swapping the
machine) and records, per case, how it ended (the exception's type and message, or the value returned), the
seconds it took and how far its resident memory rose above where it started (``VmHWM``, reset between cases).

Running a module's cases in one child keeps the suite fast (torch is imported once); each case is still its
own pytest item that asserts its own outcome (:func:`outcome`).
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
MEMORY_LIMIT_MB = 4096  # address space of the child: torch alone maps ~1 GB of it
CASE_SECONDS = 20.0  # per case, generous for a shared 2-core machine; a real attack took minutes
CASE_MEMORY_MB = 600.0  # resident growth per case; an attack took the process to 2.5-6 GB
MAX_MESSAGE = 700  # characters of an error message; one attack produced 5.4 MB


@dataclass(frozen=True)
class Outcome:
    """How one hostile case ended in the child."""

    kind: str
    error: str | None  # exception class name, None when the case returned
    message: str  # the exception's message, or repr of what the case returned
    seconds: float
    grew_mb: float  # peak resident memory during the case above the resident memory before it

    def assert_clear_error(self, error: str | tuple[str, ...], *patterns: str) -> None:
        """The case failed with ``error`` (a class name), a short one-line message matching every pattern."""
        import re

        names = (error,) if isinstance(error, str) else error
        assert self.error in names, f"{self.kind}: expected {names}, got {self.error}: {self.message[:300]}"
        self.assert_bounded_message()
        for p in patterns:
            assert re.search(p, self.message), f"{self.kind}: {p!r} not in {self.message!r}"

    def assert_bounded_message(self) -> None:
        assert len(self.message) <= MAX_MESSAGE, f"{self.kind}: message of {len(self.message)} characters"
        assert "Traceback" not in self.message and "\n" not in self.message.strip(), (
            f"{self.kind}: not one line: {self.message[:300]!r}"
        )

    def assert_bounded(self, seconds: float = CASE_SECONDS, memory_mb: float = CASE_MEMORY_MB) -> None:
        assert self.seconds <= seconds, f"{self.kind}: took {self.seconds:.1f} s (limit {seconds} s)"
        assert self.grew_mb <= memory_mb, (
            f"{self.kind}: memory grew {self.grew_mb:.0f} MB (limit {memory_mb})"
        )


_CHILD = r"""
import importlib, json, os, sys, time, traceback
from pathlib import Path

def rss_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
    return 0

module = importlib.import_module(sys.argv[1])
root = Path(sys.argv[2])
warm = getattr(module, "warm_up", None)
if warm is not None:
    warm(root / "_warm")
for kind in sys.argv[3:]:
    case = getattr(module, "case_" + kind)
    tmp = root / kind
    tmp.mkdir(parents=True)
    prepare = getattr(module, "prepare_" + kind, None)
    if prepare is not None:  # writes the hostile input: not part of what is measured
        prepare(tmp)
    try:
        with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current RSS
            f.write("5")
    except OSError:
        pass
    before = rss_kb("VmRSS")
    t0 = time.perf_counter()
    error, message = None, ""
    try:
        message = repr(case(tmp))
    except BaseException as e:
        error, message = type(e).__name__, str(e)
        if error not in getattr(module, "EXPECTED_ERRORS", ()):
            message += " | " + "".join(traceback.format_exception(e))[-1500:]
    seconds = time.perf_counter() - t0
    grew = max(rss_kb("VmHWM") - before, 0) / 1024
    print("HOSTILE " + json.dumps({"kind": kind, "error": error, "message": message, "seconds": seconds,
                                   "grew_mb": grew}), flush=True)
"""


def _limit_memory(mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))


def run_cases(
    module: str, kinds: list[str], tmp: Path, *, memory_mb: int = MEMORY_LIMIT_MB, timeout: float = 600
) -> dict[str, Outcome]:
    """Run ``module``'s ``case_<kind>`` functions in one memory-limited child; an outcome per kind that ran.

    A kind missing from the result died with the child (a crash or the time limit): its test reports that.
    """
    hf = tmp / "hf"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "HF_HOME": str(hf),
        "HF_HUB_CACHE": str(hf / "hub"),
        "HF_DATASETS_CACHE": str(hf / "datasets"),
        "HF_TOKEN_PATH": str(hf / "token"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "FERHUB_CACHE": str(tmp / "ferhub-cache"),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("HF_TOKEN", None)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, module, str(tmp), *kinds],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            preexec_fn=lambda: _limit_memory(memory_mb),
        )
        stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
        stderr, code = f"timed out after {timeout} s", None
    out = {}
    for line in stdout.splitlines():
        if line.startswith("HOSTILE "):
            d = json.loads(line.removeprefix("HOSTILE "))
            out[d["kind"]] = Outcome(**d)
    out["_child"] = Outcome("_child", None if code == 0 else str(code), stderr[-3000:], 0.0, 0.0)
    return out


def outcome(results: dict[str, Outcome], kind: str) -> Outcome:
    """The outcome of ``kind``; fails the test when the child died before reporting it."""
    if kind not in results:
        child = results["_child"]
        raise AssertionError(f"{kind}: the child process died (exit {child.error}): {child.message}")
    return results[kind]


def kinds_of(module: Any) -> list[str]:
    """The case names a hostile module defines, in definition order."""
    return [name.removeprefix("case_") for name in vars(module) if name.startswith("case_")]


def results_fixture(module: str, kinds: list[str]) -> Any:
    """The module-scoped ``results`` fixture of a hostile module: its cases, run once in one child."""

    @pytest.fixture(scope="module")
    def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
        return run_cases(module, kinds, tmp_path_factory.mktemp(module.removeprefix("test_")))

    return results


def suite(
    module: str, expect: dict[str, tuple[Any, tuple[str, ...]]]
) -> tuple[list[str], Any, Callable[[], None], Callable[..., None]]:
    """What a hostile module needs beside its cases and ``expect`` (kind -> (error class name, or None for a
    result; patterns its message or result must match)): its case names, its ``results`` fixture, the test
    that every case has an expectation, and the test, per case, that it ended as expected in bounded time
    and memory."""
    kinds = kinds_of(sys.modules[module])

    def test_every_case_has_an_expectation() -> None:
        assert set(kinds) == set(expect)

    @pytest.mark.slow
    @pytest.mark.parametrize("kind", kinds)
    def test_case_ends_as_expected(results: dict[str, Outcome], kind: str) -> None:
        o = outcome(results, kind)
        error, patterns = expect[kind]
        if error is None:
            assert o.error is None, f"{kind}: {o.error}: {o.message[:500]}"
            for p in patterns:
                assert re.search(p, o.message), f"{kind}: {p!r} not in {o.message[:300]!r}"
        else:
            o.assert_clear_error(error, *patterns)
        o.assert_bounded()

    return (
        kinds,
        results_fixture(module, kinds),
        test_every_case_has_an_expectation,
        test_case_ends_as_expected,
    )
