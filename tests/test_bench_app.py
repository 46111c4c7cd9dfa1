"""bench/app.py's page-fault count: read for any process from /proc, growing as it touches fresh memory."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_minor_faults_count_the_pages_a_process_touches(bench_script) -> None:
    app = bench_script("app")
    before = app.minor_faults(os.getpid())
    touched = np.ones(32 << 20, np.uint8)  # 32 MB written: 8,192 pages of 4 KB (fewer if huge pages)
    after = app.minor_faults(os.getpid())
    assert touched.sum() == 32 << 20
    assert after - before >= 16, (before, after)
    assert app.minor_faults(os.getppid()) >= 0  # another process's too
