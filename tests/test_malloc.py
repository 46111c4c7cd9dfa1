"""ferhub's glibc malloc settings: when they apply, and that detection then stops faulting pages in."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from ferhub import _malloc


def test_user_settings_and_opt_out_win() -> None:
    assert _malloc.wanted({})
    assert _malloc.wanted({"FERHUB_MALLOC": ""})
    assert not _malloc.wanted({"FERHUB_MALLOC": "default"})
    assert not _malloc.wanted({"MALLOC_TRIM_THRESHOLD_": "0"})
    assert not _malloc.wanted({"MALLOC_TOP_PAD_": "0"})
    assert not _malloc.wanted({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096"})
    assert _malloc.wanted({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"})


def _import_ferhub_and_tune(env: dict[str, str]) -> str:
    code = "import ferhub, ferhub._malloc as m; print(m.tune())"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.mark.skipif(_malloc.glibc() is None, reason="glibc only")
def test_tune_applies_on_glibc_unless_opted_out() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "FERHUB_MALLOC"}
    assert _import_ferhub_and_tune(env) == "True"
    assert _import_ferhub_and_tune({**env, "FERHUB_MALLOC": "default"}) == "False"


@pytest.mark.skipif(
    _malloc.glibc() is None or not _malloc.wanted(), reason="ferhub's malloc settings not active"
)
@pytest.mark.usefixtures("one_torch_thread")
def test_repeated_detection_does_not_fault_pages_in(grace_hopper) -> None:
    """With glibc's adaptive thresholds a 640x480 detection faulted ~1,900 pages in on every call (its MB-sized
    buffers went back to the OS between calls); with ferhub's settings the buffers stay mapped."""
    from PIL import Image

    from ferhub.faces import FaceDetector

    photo = grace_hopper.copy()
    photo.thumbnail((640, 480))
    canvas = Image.new("RGB", (640, 480), (40, 40, 40))
    canvas.paste(photo, ((640 - photo.width) // 2, 0))
    detector = FaceDetector()
    for _ in range(3):
        assert len(detector.detect(canvas)) == 1
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        detector.detect(canvas)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5
    assert faults < 200, f"{faults:.0f} page faults per detection"
