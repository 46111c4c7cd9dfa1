"""bench/vs_fer.py's photos: the real photos fill a 640x480 frame, cut to 4:3 about their centres."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def test_real_photos_fill_the_frame_uncut_in_the_middle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bench_script
) -> None:
    vs_fer = bench_script("vs_fer")
    monkeypatch.setattr(vs_fer, "PHOTOS", tmp_path)
    paths = vs_fer.make_real_photos()
    assert [p.name for p in paths] == ["real-0.jpg", "real-1.jpg", "real-2.jpg"]
    from ferhub.assets import EXAMPLES_DIR

    for path, source in zip(paths, ("grace_hopper.jpg", "astronaut.jpg")):
        image = Image.open(path)
        assert image.size == (640, 480) and image.mode == "RGB"
        # the source's centre, scaled, is the frame's centre: a 4:3 cut about it, not a letterbox or a stretch
        original = Image.open(EXAMPLES_DIR / source).convert("RGB")
        w, h = original.size
        scale = 640 / min(w, h * 4 // 3)
        middle = np.asarray(original.crop((w // 2 - 40, h // 2 - 30, w // 2 + 40, h // 2 + 30)), np.float32)
        got = np.asarray(
            image.resize((round(640 / scale), round(480 / scale)), Image.Resampling.BOX).crop(
                (
                    round(320 / scale) - 40,
                    round(240 / scale) - 30,
                    round(320 / scale) + 40,
                    round(240 / scale) + 30,
                )
            ),
            np.float32,
        )
        assert np.abs(got - middle).mean() < 12, source
    assert Image.open(paths[2]).size == (640, 480)
