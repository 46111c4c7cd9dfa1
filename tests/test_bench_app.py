"""bench/app.py's readings of the server from /proc: its page faults and its CPU time."""

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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_cpu_seconds_count_a_processs_cpu_and_skip_one_gone(bench_script) -> None:
    """What the server's CPU per plain-HTTP ``classify`` is read with: user + system time from /proc."""
    import time

    app = bench_script("app")
    before = app.cpu_seconds([os.getpid()])
    end = time.process_time() + 0.3
    while time.process_time() < end:  # 0.3 s of this process's CPU
        pass
    spent = app.cpu_seconds([os.getpid()]) - before
    assert 0.2 <= spent <= 1.0, spent
    assert app.cpu_seconds([os.getpid(), 2**22 + 1]) >= app.cpu_seconds([os.getpid()]) - 0.05  # no such pid


def test_photo_words_name_the_size_and_faces_every_call_must_find(
    bench_script, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--photo``: the table says the photo's size and faces, and the classify calls then expect that count
    (the default photo's 1 face was hard-coded); a file ferhub cannot read, or a photo without a face (the
    app refuses it), stops the run with its error."""
    from PIL import Image

    from ferhub.assets import EXAMPLES_DIR

    app = bench_script("app")
    monkeypatch.setattr(app, "FACES", 1)
    assert app.photo_words(app.one_face_photo(tmp_path)) == "640x480, 1 face"
    assert app.FACES == 1
    group = Image.new("RGB", (1200, 500), (90, 90, 90))
    for i, name in enumerate(("astronaut.jpg", "grace_hopper.jpg")):
        group.paste(Image.open(EXAMPLES_DIR / name).convert("RGB").resize((400, 400)), (100 + 600 * i, 50))
    group.save(tmp_path / "two.png")
    assert app.photo_words(tmp_path / "two.png") == "1200x500, 2 faces"
    assert app.FACES == 2
    Image.new("RGB", (64, 48), (90, 90, 90)).save(tmp_path / "plain.png")
    with pytest.raises(SystemExit, match="no face found"):  # the app refuses it: nothing to time
        app.photo_words(tmp_path / "plain.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(SystemExit, match="not an image file"):
        app.photo_words(tmp_path / "broken.jpg")
