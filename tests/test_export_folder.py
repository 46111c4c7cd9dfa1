"""What ``ferhub export --out DIR`` does with the folder: an empty name and a folder of files that are not
ferhub's are refused before any work (exit 2); an earlier export is replaced whole, never left beside the
new one; a failed export leaves the folder as it was, and the stage folder of one killed (SIGKILL) is
removed by the next; int8 of an ensemble is refused before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from ferhub import _onnx, create_model, export, hub
from ferhub.cli import main
from ferhub.config import ModelConfig
from ferhub.export import INT8_NAME, ONNX_NAME, UnfitExport, check_graphs, export_onnx
from ferhub.labels import FER7, FER8

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(labels=FER7, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("test_tiny", labels=labels).eval()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return hub.save(tiny(), tmp_path / "tiny")


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def no_loading(*args, **kwargs):
    raise AssertionError("the model was loaded before the arguments were checked")


def test_an_empty_out_is_refused_before_any_work(repo: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """``--out "$UNSET"``: Path("") is the current folder, whose README.md became the model card."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("my project's readme")
    monkeypatch.chdir(project)
    monkeypatch.setattr(hub, "load", no_loading)
    for out in ("", " ", "\t"):
        assert main(["export", str(repo), "--out", out]) == 2
        assert f"--out {out!r} is empty, not a folder name" in capsys.readouterr().err
        with pytest.raises(UnfitExport, match="is empty, not a folder name"):
            export_onnx(str(repo), out)
    assert contents(project) == {"README.md": b"my project's readme"}


def test_an_earlier_export_is_replaced_whole(repo: Path, tmp_path: Path, capsys) -> None:
    """Another model exported into the folder of an earlier export left the earlier model's int8 graph,
    member graphs and results beside the new repo (ORT users, TensorRT and the dashboard took them for it)."""
    out = tmp_path / "out"
    assert main(["export", str(repo), "--out", str(out)]) == 0
    # what earlier exports leave: an int8 graph, an ensemble's member graphs, results; and the user's notes
    for stale in (INT8_NAME, "member-0.onnx", "member-3.onnx"):
        (out / stale).write_bytes((out / ONNX_NAME).read_bytes())
    (out / "eval_results.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    other = hub.save(tiny(FER8, seed=1), tmp_path / "other")
    capsys.readouterr()
    assert main(["export", str(other), "--out", str(out)]) == 0
    assert "wrote " in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["README.md", "card.json", "config.json", "model.safetensors", ONNX_NAME, "notes.txt"]
    )
    assert (out / "notes.txt").read_text() == "mine"  # not ferhub's: kept
    model = hub.load(out)
    assert model.config.labels == tuple(FER8)
    assert check_graphs(out, model) == [ONNX_NAME]  # what `ferhub push` checks: the graph is this model's
    assert contents(other).items() <= contents(out).items()


def test_stages_of_killed_exports_are_removed_and_a_running_ones_is_not(repo: Path, tmp_path: Path) -> None:
    """An export killed with SIGKILL leaves its hidden stage folder (a copy of the repo, weights included);
    later exports into the folder kept it forever."""
    import subprocess

    out = tmp_path / "out"
    assert main(["export", str(repo), "--out", str(out)]) == 0
    dead = subprocess.Popen(["true"])
    dead.wait()
    killed = out / f".ferhub-export-{dead.pid}-{'a' * 32}"
    older = out / f".ferhub-export-{'0f' * 16}"  # named before the pid was part of the name
    running = out / f".ferhub-export-{os.getppid()}-{'b' * 32}"  # the test runner's parent still runs
    for stage in (killed, older, running):
        stage.mkdir()
        (stage / "model.safetensors").write_bytes((out / "model.safetensors").read_bytes())
    assert main(["export", str(repo), "--out", str(out)]) == 0
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [running.name]


def test_a_folder_of_files_ferhub_did_not_write_there_is_refused(
    repo: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("my project's readme")
    trained = hub.save(tiny(FER8), tmp_path / "trained")  # a model repo, not an export: its weights stay
    monkeypatch.setattr(hub, "load", no_loading)
    for folder, names, kind in (
        (project, "README.md", "files of its own"),
        (trained, "README.md, card.json, config.json, model.safetensors", "a model repo"),
    ):
        before = contents(folder)
        assert main(["export", str(repo), "--out", str(folder)]) == 2
        err = capsys.readouterr().err
        assert f"--out {folder} holds {names} ({kind}, not an earlier export), which an export would" in err
        with pytest.raises(UnfitExport, match="not an earlier export"):
            export_onnx(str(repo), folder)
        assert contents(folder) == before


def test_a_failed_export_leaves_the_folder_as_it_was(repo: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    export_onnx(repo, out)
    before = contents(out)

    def disagree(*args, **kwargs):
        raise _onnx.ExportError("the graph disagrees with PyTorch")

    monkeypatch.setattr(export, "_verify", disagree)
    with pytest.raises(_onnx.ExportError):
        export_onnx(hub.save(tiny(FER8), tmp_path / "other"), out)
    assert contents(out) == before and [p.name for p in out.iterdir() if p.is_dir()] == []
    with pytest.raises(_onnx.ExportError):
        export_onnx(repo, tmp_path / "new" / "folder")
    assert not (tmp_path / "new" / "folder").exists()  # made for the export, removed with it


def _tiny_ensemble(folder: Path) -> torch.nn.Module:
    from ferhub.models.ensemble import _CFG, Ensemble

    ensemble = Ensemble([tiny(), tiny(seed=1)])
    ensemble.config = ModelConfig(architecture="ensemble", labels=ensemble.labels, **_CFG)
    ensemble.repo_path = str(folder)
    return ensemble


def test_int8_of_an_ensemble_is_refused_before_anything_is_written(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """It exported and checked member-0.onnx (7 s), then failed with exit 1, leaving an ensemble with one of
    its four graphs."""
    out = tmp_path / "out"
    monkeypatch.setattr(hub, "load", no_loading)
    assert main(["export", "ferhub/zoo-ensemble", "--out", str(out), "--quantize", "int8"]) == 2
    assert "--quantize int8 exports single models" in capsys.readouterr().err
    assert not out.exists()
    # a Hub id: an ensemble is known once loaded, still before anything is written
    monkeypatch.setattr(hub, "load", lambda *a, **k: _tiny_ensemble(tmp_path / "snapshot"))
    with pytest.raises(UnfitExport, match="quantise the ensemble's members one by one"):
        export_onnx("someorg/ensemble", out, quantize="int8")
    assert main(["export", "someorg/ensemble", "--out", str(out), "--quantize", "int8"]) == 2
    assert not out.exists()


def test_a_failed_export_removes_every_folder_it_made_and_nothing_else(
    repo: Path, tmp_path: Path, monkeypatch
) -> None:
    """Only the last folder of new/deep/out was removed: new/ and new/deep/ stayed."""

    def disagree(*args, **kwargs):
        raise _onnx.ExportError("the graph disagrees with PyTorch")

    monkeypatch.setattr(export, "_verify", disagree)
    (tmp_path / "kept").mkdir()  # a folder that was there: it stays, empty or not
    with pytest.raises(_onnx.ExportError, match="disagrees"):
        export_onnx(repo, tmp_path / "kept" / "new" / "deep" / "out")
    assert (tmp_path / "kept").is_dir() and list((tmp_path / "kept").iterdir()) == []
    monkeypatch.chdir(tmp_path)
    with pytest.raises(_onnx.ExportError, match="disagrees"):
        export_onnx(repo, "rel/out")  # relative: up to the current folder, which stays
    assert not (tmp_path / "rel").exists() and tmp_path.is_dir()

    # something else wrote into one of the folders meanwhile: it stays, with the folders above it
    def write_beside(*args, **kwargs):
        (tmp_path / "a" / "b" / "theirs.txt").write_text("theirs")
        raise _onnx.ExportError("the graph disagrees with PyTorch")

    monkeypatch.setattr(export, "_verify", write_beside)
    with pytest.raises(_onnx.ExportError, match="disagrees"):
        export_onnx(repo, tmp_path / "a" / "b" / "c")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "a").rglob("*")) == [
        "a/b",
        "a/b/theirs.txt",
    ]


def test_a_users_file_is_never_overwritten_by_a_model_folders_file_of_the_same_name(
    repo: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    """export copied every extra file of the model's folder (notes, a training log) over the user's file of
    the same name in --out, which the help said was kept."""
    (repo / "notes.txt").write_text("the model's notes")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("USER NOTES")
    (out / "mine.txt").write_text("mine")
    monkeypatch.setattr(hub, "load", no_loading)
    assert main(["export", str(repo), "--out", str(out)]) == 2  # before any work: nothing loaded
    err = capsys.readouterr().err
    assert (
        f"--out {out} holds notes.txt, which the export would overwrite with the model folder's file" in err
    )
    assert "where the model's folder has a different file of the same name, the export is refused" in err
    with pytest.raises(UnfitExport, match=r"holds notes\.txt, which the export would overwrite"):
        export_onnx(repo, out)
    assert contents(out) == {"mine.txt": b"mine", "notes.txt": b"USER NOTES"}
    monkeypatch.undo()

    # a Hub id: its folder is known once loaded, still before anything is written
    snapshot = hub.load(repo)
    monkeypatch.setattr(hub, "load", lambda *a, **k: snapshot)
    with pytest.raises(UnfitExport, match=r"holds notes\.txt"):
        export_onnx("someorg/tiny", out)
    assert contents(out) == {"mine.txt": b"mine", "notes.txt": b"USER NOTES"}
    monkeypatch.undo()

    # the same file (an earlier export of this model) is no loss: re-exporting works, and keeps it
    (out / "notes.txt").write_text("the model's notes")
    assert main(["export", str(repo), "--out", str(out)]) == 0
    assert main(["export", str(repo), "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "the model's notes" and (out / "mine.txt").read_text() == "mine"
    # an earlier export is replaced whole, its copy of the model's notes too (the model folder's own notes
    # or .gitattributes changed since made re-exporting impossible)
    (out / "notes.txt").write_text("edited in the export")
    assert main(["export", str(repo), "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "the model's notes" and (out / "mine.txt").read_text() == "mine"
    # a folder of that name is refused too (the move would fail after all the work)
    (out / "notes.txt").unlink()
    (out / "notes.txt").mkdir()
    assert main(["export", str(repo), "--out", str(out)]) == 2


def test_the_help_says_what_happens_to_a_file_of_the_same_name(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        "never over a different file of the same name in DIR: such a folder is refused (exit 2" in help_text
    )
    assert "the file is kept" in help_text


def test_an_export_gets_the_umasks_modes_not_its_sources(tmp_path: Path) -> None:
    """The model folder's files copied into the export kept the source's modes (copy2): a repo saved under
    umask 022 and exported under 077 gave a private graph beside a config and weights readable by all."""
    old = os.umask(0o022)
    try:
        repo = hub.save(tiny(), tmp_path / "tiny")  # 0644 files
        os.umask(0o077)
        assert main(["export", str(repo), "--out", str(tmp_path / "out")]) == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()}
    assert modes == dict.fromkeys(
        ["README.md", "card.json", "config.json", "model.safetensors", ONNX_NAME], 0o600
    )
