"""``ferhub export --out``: a file or the model's own folder is refused up front with one line (exit 2); any
other folder takes the export, a new one made, an existing one added to."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ferhub import create_model, hub
from ferhub.cli import main
from ferhub.export import ONNX_NAME, export_onnx
from ferhub.labels import FER7

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RULE = (
    "export to a new or empty folder (made if missing), a folder of other files (kept: where the model's"
    " folder has a different file of the same name, the export is refused), or an earlier export (which is"
    " replaced, with its copies of the model folder's files), other than the model's own"
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A saved model repo folder (as ``ferhub train`` or ``ferhub export`` leaves one)."""
    return hub.save(create_model("test_tiny", labels=FER7).eval(), tmp_path / "tiny")


def contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def no_loading(*args, **kwargs):
    raise AssertionError("the model was loaded before --out was checked")


def test_the_models_own_folder_is_refused_before_any_work(
    repo: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    before = contents(repo)
    monkeypatch.setattr(hub, "load", no_loading)
    link = tmp_path / "link"
    link.symlink_to(repo)
    monkeypatch.chdir(tmp_path)
    for out in (str(repo), "tiny", "./tiny/", str(link)):  # however it is spelled
        assert main(["export", str(repo), "--out", out]) == 2, out
        err = capsys.readouterr().err
        assert err == f"ferhub export: --out {out} is the model's own folder; {RULE}\n"
    assert contents(repo) == before  # nothing copied onto itself, no model.onnx


def test_an_existing_file_is_refused_before_any_work(repo: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    monkeypatch.setattr(hub, "load", no_loading)
    assert main(["export", str(repo), "--out", str(afile)]) == 2
    assert capsys.readouterr().err == f"ferhub export: --out {afile} is a file, not a folder; {RULE}\n"
    assert afile.read_text() == "keep me"


def test_the_library_refuses_too_also_for_a_bundled_or_hub_model(repo: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match=r"is the model's own folder; export to a new or empty folder"):
        export_onnx(str(repo), repo)
    bundled = hub.resolve("fer-mini-xception")  # ferhub's own copy must never be written over
    before = contents(bundled)
    with pytest.raises(ValueError, match=r"is the model's own folder"):
        export_onnx("fer-mini-xception", bundled)
    assert contents(bundled) == before
    # a Hub id's folder (its cache snapshot) is known only once loaded: a model repo is refused before (it is
    # no earlier export), one pushed from an export (its graph beside it) once loaded
    model = hub.load(repo)
    monkeypatch.setattr(hub, "load", lambda *a, **k: model)
    with pytest.raises(ValueError, match=r"\(a model repo, not an earlier export\)"):
        export_onnx("someorg/somemodel", repo)
    (repo / ONNX_NAME).write_bytes(b"")
    with pytest.raises(ValueError, match=r"is the model's own folder"):
        export_onnx("someorg/somemodel", repo)


def test_an_existing_folder_with_other_files_still_takes_the_export(
    repo: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "exports"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["export", str(repo), "--out", str(out)]) == 0
    assert "wrote " in capsys.readouterr().out
    assert (out / ONNX_NAME).is_file() and (out / "config.json").is_file()
    assert (out / "notes.txt").read_text() == "mine"


def test_int8_without_scikit_image_is_refused_before_any_work(tmp_path: Path, capsys, monkeypatch) -> None:
    """A plain ``pip install ferhub`` has no scikit-image, so no LFW faces: int8 was calibrated on 1 crop and
    judged on 2 (one agreement in two: 100% or 50%) and wrote a graph the 99% gate on 102 crops rejects.
    Refused now, exit 2, naming what to install, before loading anything; plain fp32 export is unaffected."""
    from ferhub.errors import FerhubError
    from ferhub.export import UnfitExport, real_face_crops

    monkeypatch.setitem(sys.modules, "skimage", None)  # `from skimage import data` raises ImportError
    monkeypatch.setattr(hub, "load", no_loading)
    out = tmp_path / "q"
    assert main(["export", "fer-mini-xception", "--out", str(out), "--quantize", "int8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ferhub export: --quantize int8 ") and "pip install scikit-image" in err
    assert not out.exists()
    with pytest.raises(UnfitExport, match="pip install scikit-image"):
        export_onnx("fer-mini-xception", out, quantize="int8")
    assert not out.exists()
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "skimage", None)
    config = hub.load("fer-mini-xception").config
    with pytest.raises(FerhubError, match="pip install scikit-image"):  # the library's own guard
        real_face_crops(config, require_lfw=True)
    assert len(real_face_crops(config)) == 2  # the fp32 check: the example photos' faces only
