"""Local data read as a user expects: a FER2013 CSV written by Excel or pandas, with a bad row; a zip holding
one member name twice; a ``--label-names`` that names no table; and face detections cached at the precision
``predict`` crops with.

Data: real face crops from scikit-image's LFW subset (and its astronaut photo for detection).
"""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ferhub import hub
from ferhub.cli import main
from ferhub.config import ModelConfig
from ferhub.data import DataSourceError, FaceCache, materialize, open_source
from ferhub.data.crops import read_image
from ferhub.labels import FER7
from ferhub.models import create_model


@pytest.fixture(autouse=True)
def face_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path / "ferhub_cache"))


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    """14 LFW face crops as 48x48 gray arrays (FER2013's size)."""
    import skimage.data

    lfw = skimage.data.lfw_subset()
    return [
        np.asarray(
            Image.fromarray((lfw[i] * 255).astype(np.uint8)).resize((48, 48), Image.Resampling.BICUBIC)
        )
        for i in range(14)
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return hub.save(create_model("test_tiny", labels=FER7).eval(), tmp_path_factory.mktemp("repos") / "tiny")


def _csv(path: Path, rows: list[tuple[str, str, str]], encoding: str = "utf-8") -> Path:
    with path.open("w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(["emotion", "pixels", "Usage"])
        writer.writerows(rows)
    return path


def _fer_rows(faces: list[np.ndarray]) -> list[tuple[str, str, str]]:
    """Every face a PrivateTest row, emotion i % 7."""
    return [(str(i % 7), " ".join(map(str, f.ravel())), "PrivateTest") for i, f in enumerate(faces)]


# --------------------------------------------------------------------------------------------- FER2013 CSV
def test_a_csv_with_a_byte_order_mark_or_whole_floats_is_read(
    faces: list[np.ndarray], tmp_path: Path
) -> None:
    """Excel's "CSV UTF-8" starts with a BOM; pandas writes an integer column with a missing value as 3.0."""
    rows = _fer_rows(faces)
    plain = open_source(_csv(tmp_path / "fer2013.csv", rows), "test")
    bom = open_source(_csv(tmp_path / "bom.csv", rows, encoding="utf-8-sig"), "test")
    floats = open_source(_csv(tmp_path / "floats.csv", [(f"{e}.0", p, u) for e, p, u in rows]), "test")
    for src in (bom, floats):
        assert len(src) == 14 and np.array_equal(src.targets, plain.targets)
        assert np.array_equal(src.images, plain.images)
    assert plain.path_of(0) == f"{tmp_path / 'fer2013.csv'}:2"  # the file and its line
    with pytest.raises(DataSourceError, match=r"floats2\.csv:3: emotion '2\.5' is not a FER2013 class id"):
        open_source(_csv(tmp_path / "floats2.csv", [rows[0], ("2.5", *rows[1][1:])]))


def test_a_bad_csv_row_is_skipped_and_named_and_the_others_evaluated(
    faces: list[np.ndarray], tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Row 5's pixels are 10 values short and row 8 has no emotion: the short row is an unreadable image
    (skipped, counted, named by its line), the unlabelled one is left out and said; the 12 others are
    evaluated, where the whole file was refused without naming a row."""
    rows = _fer_rows(faces)
    rows[5] = (rows[5][0], rows[5][1].rsplit(" ", 10)[0], rows[5][2])
    rows[8] = ("", rows[8][1], rows[8][2])
    path = _csv(tmp_path / "bad.csv", rows)
    src = open_source(path, "test")
    assert len(src) == 13 and src.notes == (
        "unlabelled: 1 of 14 rows have no emotion and were left out (bad.csv line 10)",
    )
    unreadable: dict[int, str] = {}
    assert read_image(src, 5, unreadable) is None
    assert unreadable == {5: f"{path}:7: 2294 pixel values, where the other rows hold 2304 (48x48)"}
    assert np.array_equal(np.asarray(src.image(6))[..., 0], faces[6])
    # training's crops: the rows already at the model's size go in without a decode, the bad one is counted
    cfg = ModelConfig(architecture="test_tiny", labels=FER7, input_size=48, channels=1)
    crops = materialize(src, cfg)
    assert len(crops) == 12 and list(crops.unreadable) == [5]
    out = tmp_path / "out"
    argv = ["evaluate", "--model", str(tiny), "--data", str(path), "--split", "test", "--no-report"]
    assert main([*argv, "--bootstrap", "10", "--out", str(out)]) == 0
    entry = json.loads((tiny / "eval_results.json").read_text())["results"]["bad:default:test"]
    assert entry["num_images"] == 12 and entry["unreadable"]["examples"][0]["path"] == f"{path}:7"
    err = capsys.readouterr().err
    assert "unreadable: 1 images" in err and "unlabelled: 1 of 14 rows have no emotion" in err


# ---------------------------------------------------------------------------------------------------- zips
def test_a_zip_holding_a_name_twice_gives_every_entry(faces: list[np.ndarray], tmp_path: Path) -> None:
    """``zip -r`` into an existing archive (or appending) can hold ``happy/a.png`` twice: the first entry was
    dropped without a word; now each entry is an image, the later one named ``(copy 2)``, and the note says
    so."""
    import io

    def png(a: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(a).save(buffer, "PNG")
        return buffer.getvalue()

    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("happy/a.png", png(faces[0]))
        zf.writestr("happy/b.png", png(faces[1]))
        zf.writestr("sad/c.png", png(faces[2]))
        zf.writestr("happy/a.png", png(faces[3]))
    src = open_source(path)
    assert len(src) == 4 and [src.labels[t] for t in src.targets] == ["happy", "happy", "happy", "sad"]
    assert [src.path_of(i) for i in range(3)] == [
        f"{path}::happy/a.png",
        f"{path}::happy/a.png (copy 2)",
        f"{path}::happy/b.png",
    ]
    pixels = [np.asarray(src.image(i))[..., 0] for i in range(4)]
    for got, face in zip(pixels, (faces[0], faces[3], faces[1], faces[2])):
        assert np.array_equal(got, face)
    assert any("holds 1 member name(s) more than once ('happy/a.png')" in n for n in src.notes)


# ------------------------------------------------------------------------------------------- label tables
def test_an_unknown_label_table_is_a_clear_error_not_a_bug(
    faces: list[np.ndarray], tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A mistyped ``--label-names`` was 'internal error (KeyError ...) This is a bug in ferhub', exit 4."""
    for i, folder in enumerate(("1", "4", "1", "4")):
        (tmp_path / "num" / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(faces[i]).save(tmp_path / "num" / folder / f"{i}.png")
    with pytest.raises(DataSourceError, match=r"'rafdbx'; known: fer2013, ferplus, rafdb, affectnet"):
        open_source(tmp_path / "num", label_names="rafdbx")
    assert (
        main(["evaluate", "--model", str(tiny), "--data", str(tmp_path / "num"), "--label-names", "rafdbx"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(
        "ferhub evaluate: --label-names rafdbx: no label table for dataset 'rafdbx'; known:"
    )
    argv = ["train", "--recipe", "seed002_kaskun", "--data", str(tmp_path / "num"), "--precropped"]
    argv += ["--set", "model=test_tiny", "--no-progress", "--output-dir", str(tmp_path / "run")]
    # refused before any data loads, as evaluate refuses it (named class folders ignored the typo: exit 0)
    (tmp_path / "named" / "happy").mkdir(parents=True)
    for command in (argv, [*argv[:4], str(tmp_path / "named"), *argv[5:]]):
        assert main([*command, "--label-names", "rafdbx"]) == 2
        err = capsys.readouterr().err
        assert "--label-names rafdbx: no label table for dataset 'rafdbx'; known: fer2013" in err, err
    twin = shutil.copytree(tiny, tmp_path / "twin")  # a second model: compare refuses one named twice
    compare = ["compare", str(tiny), str(twin), "--data", str(tmp_path / "named"), "--label-names", "rafdbx"]
    assert main(compare) == 2
    assert "ferhub compare: --label-names rafdbx: no label table" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- face cache
def test_cached_faces_are_the_detected_faces_exactly(astronaut: Image.Image, tmp_path: Path) -> None:
    """evaluate classifies the face the cache gives, predict the face it detects: rounded to 0.01 px by the
    cache, the crops (and near ties, the labels) differed. A line an older ferhub wrote (rounded) is read
    but not used: that image is detected again."""
    from ferhub.faces import FaceDetector, crop_face

    detector = FaceDetector()
    (detected,) = detector.detect(astronaut)[:1]
    cache = FaceCache(detector, cache_dir=tmp_path / "cache", signature="test")
    fresh = cache.get_many([astronaut])[0]
    reread = FaceCache(detector, cache_dir=tmp_path / "cache", signature="test").get_many([astronaut])[0]
    for face in (fresh, reread):
        assert face.box == detected.box and face.landmarks == detected.landmarks
        assert face.score == detected.score
    cfg = ModelConfig(architecture="test_tiny", labels=FER7, input_size=48, channels=1)
    assert np.array_equal(
        np.asarray(crop_face(astronaut, reread, cfg)), np.asarray(crop_face(astronaut, detected, cfg))
    )
    # an older ferhub's line: the box rounded, no "exact" mark
    key = next(iter(cache.entries))
    old = tmp_path / "old" / "test.jsonl"
    old.parent.mkdir()
    old.write_text(json.dumps({"key": key, "face": detected.to_dict()}) + "\n" + "{broken\n")
    upgraded = FaceCache(detector, cache_dir=old.parent, signature="test")
    assert key not in upgraded and upgraded.get_many([astronaut])[0].box == detected.box
    assert upgraded.detections_run == 1
    assert key in FaceCache(detector, cache_dir=old.parent, signature="test")  # the exact line appended
