"""Running a check in a fresh Python process, as a server starts: for what a process does once (first imports,
compiled kernels, malloc's state)."""

from __future__ import annotations

import subprocess
import sys


def passes_in_fresh_process(code: str, timeout: float = 300) -> None:
    """Run ``code`` with ``python -c``; it must exit 0 and print ``ok`` last (the output is the failure's
    message)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == ["ok"], out.stdout + out.stderr
