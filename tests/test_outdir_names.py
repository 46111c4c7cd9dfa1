"""The names of ``predict --out-dir`` results where two inputs differ only by case (``IMG.jpg``,
``img.jpg``): each is its input's own path where the output folder's file system tells them apart, and where
it does not (macOS, Windows), a result keeps its name when another photo is added beside its input, so a
rerun resumes instead of classifying it again under a new name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import clips
import pytest

from ferhub import fileio
from ferhub.cli import main
from ferhub.fileio import EXACT, Folding, name_folding
from ferhub.inputs import scan

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CASE = Folding(case=True)


def touch(*paths: Path) -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"not decoded here")


def names(folder: Path, folding: Folding = EXACT, out_dir: Path | None = None) -> list[str]:
    return [n.as_posix() for n in scan([folder]).result_names(folding, out_dir, ".json")]


def test_a_case_sensitive_out_dir_gets_the_inputs_own_names(tmp_path: Path) -> None:
    """Tags were given on every disk: a Linux folder holding ``IMG.jpg`` and ``img.jpg`` resumed under
    ``IMG.jpg.json`` and ``img.jpg.json`` before, and was classified again under tagged names after."""
    touch(
        tmp_path / "in/IMG.jpg", tmp_path / "in/img.jpg", tmp_path / "in/Sub/x.png", tmp_path / "in/sub/x.png"
    )
    assert name_folding(tmp_path) == EXACT  # Linux's usual file systems
    assert names(tmp_path / "in") == ["IMG.jpg", "Sub/x.png", "img.jpg", "sub/x.png"]
    assert not list(tmp_path.glob(".ferhub-names-*"))  # the probe's file is removed


def test_the_probe_tells_a_file_system_that_folds_names(tmp_path: Path, monkeypatch) -> None:
    """No case-insensitive disk here: one is played by a lookup that folds case (and one that also finds a
    name by its decomposed spelling)."""
    real = os.path.lexists

    def folding_case(path) -> bool:
        folder, name = os.path.split(path)
        return real(path) or any(e.lower() == name.lower() for e in os.listdir(folder))

    monkeypatch.setattr(fileio.os.path, "lexists", folding_case)
    assert name_folding(tmp_path) == CASE
    assert not os.listdir(tmp_path)


def test_on_a_case_insensitive_out_dir_a_result_keeps_its_name_when_a_clash_is_added(tmp_path: Path) -> None:
    """The tag went on every name of a clash: adding ``img.jpg`` beside ``IMG.jpg`` renamed ``IMG.jpg``'s
    result, which was classified again and left twice (``IMG.jpg.json`` and ``IMG~ad29c189.jpg.json``)."""
    photos, out = tmp_path / "in", tmp_path / "res"
    touch(photos / "b.jpg", photos / "img.jpg")
    assert names(photos, CASE, out) == ["b.jpg", "img.jpg"]
    touch(out / "img.jpg.json")  # its result, from a run before IMG.jpg was added
    touch(photos / "IMG.jpg")
    first = names(photos, CASE, out)
    assert first[1:] == ["b.jpg", "img.jpg"] and first[0].startswith("IMG~") and first[0].endswith(".jpg")
    assert names(photos, CASE, out) == first  # the same at every run
    # no result yet: the first name in code point order keeps its name
    fresh = names(photos, CASE, tmp_path / "none")
    assert fresh[:2] == ["IMG.jpg", "b.jpg"] and fresh[2].startswith("img~")


def test_predict_names_results_by_the_out_dirs_file_system(capsys, tmp_path: Path, monkeypatch) -> None:
    """Adding ``img.jpg`` beside ``IMG.jpg`` classified ``IMG.jpg`` again (2 written, 1 already done) and
    left two results for it; the results resume under the inputs' own names."""
    photos, out = tmp_path / "in", tmp_path / "res"
    photos.mkdir()
    clips.photo("astronaut").save(photos / "IMG.jpg")
    clips.photo("hopper").save(photos / "b.jpg")
    assert main(["predict", str(photos), "--out-dir", str(out)]) == 0
    (photos / "img.jpg").write_bytes((photos / "IMG.jpg").read_bytes())
    assert main(["predict", str(photos), "--out-dir", str(out)]) == 0
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"1 input(s) written to {out}, 2 already done")
    assert sorted(p.name for p in out.iterdir()) == ["IMG.jpg.json", "b.jpg.json", "img.jpg.json"]
    # a disk that folds case (played here): IMG.jpg's result is found, img.jpg's is tagged apart
    monkeypatch.setattr(fileio, "name_folding", lambda folder: CASE)
    (out / "img.jpg.json").unlink()
    assert main(["predict", str(photos), "--out-dir", str(out)]) == 0
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"1 input(s) written to {out}, 2 already done")
    tagged = sorted(p.name for p in out.iterdir() if p.name.startswith("img~"))
    assert len(tagged) == 1 and json.loads((out / tagged[0]).read_text())["faces"]
