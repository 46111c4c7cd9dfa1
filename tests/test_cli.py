"""The ``ferhub`` command line: predict in every format, per-file errors, exit codes, models listing."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from cli_run import run_cli

from ferhub.labels import FER7


@pytest.fixture()
def photos(tmp_path, astronaut, grace_hopper):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    astronaut.save(folder / "astronaut.png")
    grace_hopper.save(folder / "sub" / "hopper.jpg")
    return folder


def test_predict_json_recurses_folders(capsys, photos) -> None:
    code, out, _ = run_cli(capsys, "predict", str(photos))
    assert code == 0
    results = json.loads(out)
    assert sorted(os.path.basename(r["path"]) for r in results) == ["astronaut.png", "hopper.jpg"]
    for r in results:
        assert r["error"] is None and len(r["faces"]) == 1
        face = r["faces"][0]
        assert face["label"] in FER7 and len(face["box"]) == 4 and len(face["landmarks"]) == 5
        assert sum(face["probabilities"].values()) == pytest.approx(1, abs=1e-4)


def test_predict_csv_and_table(capsys, photos) -> None:
    code, out, _ = run_cli(capsys, "predict", str(photos / "astronaut.png"), "--format", "csv")
    assert code == 0
    reader = csv.DictReader(io.StringIO(out))
    # one schema for photos and videos; a photo has no frame or time, its face_id is its number (1-based)
    assert reader.fieldnames == [
        "path",
        "frame",
        "time",
        "face_id",
        "x1",
        "y1",
        "x2",
        "y2",
        "score",
        "label",
        *FER7,
    ]
    rows = list(reader)
    assert (
        len(rows) == 1 and rows[0]["label"] in FER7 and rows[0]["face_id"] == "1" and rows[0]["frame"] == ""
    )
    code, out, _ = run_cli(capsys, "predict", str(photos / "astronaut.png"), "--format", "table")
    assert code == 0 and "1 face(s)" in out and "ferhub/fer-mini-xception" in out


def test_bad_files_reported_per_file_and_exit_codes(capsys, photos, tmp_path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    code, out, err = run_cli(capsys, "predict", str(bad), str(photos / "astronaut.png"))
    assert code == 0  # something was processed
    results = json.loads(out)
    assert results[0]["error"] and results[1]["error"] is None
    assert "broken.jpg" in err
    code, out, err = run_cli(capsys, "predict", str(bad))
    assert code == 1  # nothing could be processed
    assert json.loads(out)[0]["error"]


def test_no_face_fallback_flag(capsys, tmp_path) -> None:
    from PIL import Image

    blank = tmp_path / "wall.png"
    Image.new("RGB", (120, 90), (200, 200, 200)).save(blank)
    _, out, _ = run_cli(capsys, "predict", str(blank))
    assert json.loads(out)[0]["faces"] == []
    _, out, _ = run_cli(capsys, "predict", str(blank), "--no-face", "fallback")
    face = json.loads(out)[0]["faces"][0]
    assert face["face_found"] is False and face["box"] == [0, 0, 120, 90]


def test_models_lists_bundled_default_and_architectures(capsys) -> None:
    code, out, _ = run_cli(capsys, "models")
    assert code == 0
    assert "ferhub/fer-mini-xception" in out and "(default)" in out
    assert "mini_xception" in out and "test_tiny" in out


def test_console_script_runs(tmp_path) -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "ferhub")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "predict" in out and "models" in out
