"""``ferhub predict`` refuses what cannot work before it loads a model or reads an input: bad option values
and devices exit 2 naming the option, and ``--annotate`` never writes over an input. Failed photos show as
errors in the table."""

from __future__ import annotations

import json
from pathlib import Path

import clips
import pytest
from cli_run import run_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture()
def nothing_loaded(monkeypatch) -> None:
    """Fail the test if the command scans its inputs or builds a predictor."""
    import ferhub.commands.predict as command
    import ferhub.inputs

    def never(*args, **kwargs):
        raise AssertionError("the bad option should have been refused before this")

    monkeypatch.setattr(ferhub.inputs, "scan", never)
    monkeypatch.setattr(command, "_predictor", never)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--fps", "0", "--fps must be a positive number of frames per second, got 0.0"),
        ("--fps", "-1", "--fps must be a positive number of frames per second, got -1.0"),
        ("--fps", "nan", "--fps must be a positive number of frames per second, got nan"),
        ("--detect-every", "0", "--detect-every must be 1 or more, got 0"),
        ("--smooth", "-1", "--smooth must be 0 (off) or a positive number of seconds, got -1.0"),
        ("--min-face-size", "-5", "--min-face-size must be a positive number of pixels, got -5"),
        ("--max-side", "0", "--max-side must be at least 64 pixels, got 0"),
        ("--max-side", "-3", "--max-side must be at least 64 pixels, got -3"),
        ("--device", "tpu", "--device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        ("--device", "cuda:x", "--device must be auto, cpu, cuda or cuda:N, got 'cuda:x'"),
        ("--saliency", "bogus", "--saliency: unknown saliency method 'bogus'; choose one of gradcam,"),
    ],
)
def test_bad_option_values_exit_2_before_anything_is_loaded(
    capsys, tmp_path, nothing_loaded, option, value, message
) -> None:
    argv = ["predict", str(tmp_path / "clip.mp4"), option, value]
    if option == "--saliency":
        argv += ["--out", str(tmp_path / "overlays")]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"ferhub predict: {message}") and len(err.splitlines()) == 1


def test_device_strings_torch_cannot_read_are_device_errors() -> None:
    from ferhub.device import check_device, resolve_device
    from ferhub.errors import DeviceError

    assert [check_device(d) for d in ("cpu", "cuda", "cuda:3")] == ["cpu", "cuda", "cuda:3"]
    for bad in ("tpu", "CUDA", "cuda:", "cuda:-1", " cpu"):
        with pytest.raises(DeviceError, match="--device must be auto, cpu, cuda or cuda:N"):
            check_device(bad)
    with pytest.raises(DeviceError, match=r"unknown device 'tpu': use auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")  # once a RuntimeError, which the CLI reported as a bug in ferhub (exit 4)


def test_a_gpu_number_past_the_last_is_a_device_error(monkeypatch) -> None:
    """torch takes ``cuda:3`` on a one-GPU machine and fails only when a model moves there (exit 4)."""
    import torch

    from ferhub.device import resolve_device
    from ferhub.errors import DeviceError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(DeviceError, match=r"'cuda:3' was asked for but torch sees 1 CUDA GPU\(s\), numbered"):
        resolve_device("cuda:3")


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    frames, _ = clips.pan(4)
    return clips.write_clip(tmp_path / "victim.mp4", frames)


def test_annotate_onto_an_input_is_refused_and_the_input_kept(capsys, tmp_path, clip, monkeypatch) -> None:
    import ferhub.commands.predict as command

    def never(*args, **kwargs):
        raise AssertionError("refused before the model is loaded")

    monkeypatch.setattr(command, "_predictor", never)
    original = clip.read_bytes()
    link = tmp_path / "link.mp4"
    link.symlink_to(clip)
    photo = tmp_path / "face.png"
    clips.photo("astronaut").save(photo)
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(original)
    (folder / "b.mp4").write_bytes(original)
    (folder / "a.annotated.mp4").write_bytes(original)  # what a first `--annotate clips` run left there
    cases = [
        ([str(clip)], str(clip), clip, clip),  # the data loss first reported
        ([str(clip)], str(tmp_path / "." / "victim.mp4"), clip, clip),  # another spelling of the same file
        ([str(link)], str(clip), link, link),  # the input is a link to the target
        ([str(clip), str(photo)], str(photo), clip, photo),  # onto another input
        ([str(folder)], str(folder), folder / "a.mp4", folder / "a.annotated.mp4"),  # several: inside DIR
    ]
    for inputs, target, video, clash in cases:
        code, out, err = run_cli(capsys, "predict", *inputs, "--annotate", target)
        assert (code, out) == (2, ""), (inputs, target, err)
        assert err.strip() == (
            f"ferhub predict: --annotate would write {video}'s annotated copy over the input {clash}; give"
            " another file or folder"
        )
    assert clip.read_bytes() == original and (folder / "a.annotated.mp4").read_bytes() == original


def test_annotate_to_a_new_file_still_writes_it(capsys, tmp_path, clip) -> None:
    target = tmp_path / "out" / "annotated.mp4"
    code, out, err = run_cli(capsys, "predict", str(clip), "--annotate", str(target), "--format", "table")
    assert code == 0, err
    assert target.stat().st_size > 0 and f"wrote {target}" in err
    assert out.startswith(f"{clip} (video 320x240")


def test_table_shows_failed_photos_and_videos_as_errors_naming_the_path_once(capsys, tmp_path) -> None:
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(200))
    good = tmp_path / "face.png"
    clips.photo("astronaut").save(good)
    code, out, _ = run_cli(capsys, "predict", str(bad), str(fake), str(good), "--format", "table")
    assert code == 0 and "None" not in out
    lines = out.splitlines()
    assert lines[0].startswith(f"{bad}: ERROR ") and lines[0].count(str(bad)) == 1
    assert lines[1].startswith(f"{fake}: ERROR ") and lines[1].count(str(fake)) == 1
    assert lines[2].startswith(f"{good} (") and lines[3].startswith("  face 1 ")
    code, out, _ = run_cli(capsys, "predict", str(bad), str(good))
    entries = json.loads(out)  # JSON keeps its shape: the error in the entry, the size null
    assert entries[0]["error"] and entries[0]["width"] is None and entries[1]["faces"]


def test_out_dir_rerun_retries_an_input_that_failed(capsys, tmp_path: Path) -> None:
    """A failed input leaves no result file under --out-dir (its error is on stderr), so a rerun after fixing
    it classifies it instead of counting it as done."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    clips.photo("astronaut").save(inputs / "a.png")
    (inputs / "b.jpg").write_bytes(b"\xff\xd8\xff not a whole JPEG")
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "predict", str(inputs), "--out-dir", str(out))
    assert code == 0 and "b.jpg" in err
    assert "1 input(s) written" in err and "1 failed (a rerun retries them)" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.png.json"]
    clips.photo("hopper").save(inputs / "b.jpg")  # fixed
    code, _, err = run_cli(capsys, "predict", str(inputs), "--out-dir", str(out))
    assert code == 0 and "1 input(s) written" in err and "1 already done" in err and "failed" not in err
    assert len(json.loads((out / "b.jpg.json").read_text())["faces"]) == 1


def test_an_unusable_out_dir_is_refused_once_before_any_input(capsys, tmp_path: Path, monkeypatch) -> None:
    """``--out-dir`` naming a file (or a folder that cannot be written) printed one "result not written" line
    per input and "120 failed (a rerun retries them)": it is refused in one line, exit 2, as ``--out`` is,
    before a model is loaded."""
    import argparse
    import errno
    import tempfile

    import ferhub.commands.predict as command

    def never(*args, **kwargs):
        raise AssertionError("the --out-dir should have been refused before the model was loaded")

    monkeypatch.setattr(command, "_predictor", never)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(5):
        (inputs / f"p{i}.jpg").write_bytes(b"not decoded here")
    notadir = tmp_path / "notadir"
    notadir.write_text("x")
    for out, message in (
        (notadir, f"--out-dir {notadir}: {notadir} is a file, not a folder;"),
        (notadir / "sub", f"--out-dir {notadir / 'sub'}: cannot make {notadir / 'sub'}: {notadir} is a file"),
    ):
        code, printed, err = run_cli(capsys, "predict", str(inputs), "--out-dir", str(out))
        assert (code, printed) == (2, "")
        assert err.startswith(f"ferhub predict: {message}") and err.count("\n") == 1, err

    def read_only(*args, **kwargs):  # what a read-only disk (or an ACL os.access misses) answers
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    out = tmp_path / "ro"
    out.mkdir()
    code, _, err = run_cli(capsys, "predict", str(inputs), "--out-dir", str(out))
    assert (
        code == 2
        and err == f"ferhub predict: --out-dir {out}: cannot write into {out} (Read-only file system)\n"
    )
    monkeypatch.undo()
    # a missing folder is checked in the nearest folder there and made by the first result: a run refused
    # later (a model that cannot load) left an empty --out-dir tree behind
    args = argparse.Namespace(out_dir=str(tmp_path / "new" / "res"))
    assert command.out_dir_unwritable(args) is None and not (tmp_path / "new").exists()
    code, _, err = run_cli(capsys, "predict", str(inputs), "--out-dir", args.out_dir, "--model", "./nope")
    assert code != 0 and not (tmp_path / "new").exists(), err


def test_options_that_would_do_nothing_are_noted(capsys, tmp_path: Path) -> None:
    photo = tmp_path / "a.png"
    clips.photo("astronaut").save(photo)
    out, annotated = tmp_path / "overlays", tmp_path / "a.annotated.mp4"
    argv = ["predict", str(photo), "--out", str(out), "--annotate", str(annotated)]
    argv += ["--fps", "2", "--smooth", "0"]
    code, printed, err = run_cli(capsys, *argv)
    assert code == 0 and len(json.loads(printed)[0]["faces"]) == 1  # the run itself goes on
    assert "note: --out is where --saliency writes its overlays" in err
    assert "note: --annotate writes annotated videos; there is no video among the inputs" in err
    assert "note: --fps, --smooth set(s) how videos are analysed; there is no video among the inputs" in err
    assert not out.exists() and not annotated.exists()


def test_table_says_when_the_whole_image_stood_in_for_a_face(capsys, tmp_path: Path) -> None:
    from PIL import Image

    wall = tmp_path / "wall.png"
    Image.new("RGB", (120, 90), (200, 190, 180)).save(wall)
    code, out, _ = run_cli(capsys, "predict", str(wall), "--no-face", "fallback", "--format", "table")
    assert code == 0 and out.splitlines()[0].endswith(
        "wall.png (120x90): no face found, whole image classified"
    )
    code, out, _ = run_cli(capsys, "predict", str(wall), "--format", "table")
    assert code == 0 and out.splitlines()[0].endswith("wall.png (120x90): 0 face(s)")


def test_several_videos_of_one_name_get_one_annotated_copy_each(capsys, tmp_path: Path) -> None:
    """With several videos, --annotate's folder mirrors their sub-folders: a/clip.mp4 and b/clip.mp4 were
    both written to clip.annotated.mp4, the second over the first."""
    import av

    frames, _ = clips.pan(4)
    for sub in ("a", "b"):
        clips.write_clip(tmp_path / "in" / sub / "clip.mp4", frames)
    out = tmp_path / "annotated"
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "in"), "--annotate", str(out))
    assert code == 0, err
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.mp4"))
    assert written == ["a/clip.annotated.mp4", "b/clip.annotated.mp4"]
    for path in out.rglob("*.mp4"):
        with av.open(str(path)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 4


def test_videos_of_one_folder_sharing_a_stem_get_one_annotated_copy_each(capsys, tmp_path: Path) -> None:
    """clip.mp4 and clip.mkv of one folder were both written to clip.annotated.mp4, the second over the first:
    videos sharing a stem keep their extension in the copy's name; the others keep the short name."""
    frames, _ = clips.pan(3)
    for name in ("clip.mp4", "clip.mkv", "other.mp4", "clip.mp4.mkv"):
        clips.write_clip(tmp_path / "in" / name, frames)
    out = tmp_path / "annotated"
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "in"), "--annotate", str(out))
    assert code == 0, err
    written = sorted(p.name for p in out.rglob("*.mp4"))
    # clip.mp4.mkv's stem is clip.mp4: its copy was named as clip.mp4's, one written over the other
    assert written == [
        "clip.mkv.annotated.mp4",
        "clip.mp4.annotated.mp4",
        "clip.mp4.mkv.annotated.mp4",
        "other.annotated.mp4",
    ]


def test_an_annotate_target_that_cannot_be_written_is_refused_before_any_work(
    capsys, tmp_path, clip, monkeypatch
) -> None:
    """Each of these once stopped the run at the first video: JSON left open, later inputs lost."""
    import ferhub.commands.predict as command

    def never(*args, **kwargs):
        raise AssertionError("refused before the model is loaded")

    monkeypatch.setattr(command, "_predictor", never)
    other = clips.write_clip(tmp_path / "other.mp4", clips.pan(2)[0])
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    taken = tmp_path / "taken"
    (taken / "victim.annotated.mp4").mkdir(parents=True)  # a folder where the copy would go
    formats = "name it .mp4, .m4v, .mov or .mkv"
    cases = [
        ([clip], "x.webm", f"the annotated video is H.264, which a .webm file cannot hold; {formats}"),
        ([clip], "x.GIF", f"the annotated video is H.264, which a .gif file cannot hold; {formats}"),
        ([clip], "x.avi", "AVI cannot keep the annotated video's H.264 timestamps"),
        ([clip, other], str(afile), f"cannot make {afile}: {afile} is a file, not a folder (--annotate"),
        ([clip], str(afile / "sub" / "x.mp4"), f"cannot make {afile / 'sub'}: {afile} is a file, not a"),
        ([clip, other], str(taken), f"{taken / 'victim.annotated.mp4'} is a folder; give a file name"),
    ]
    for inputs, target, message in cases:
        target = target if "/" in target else str(tmp_path / target)
        code, out, err = run_cli(capsys, "predict", *map(str, inputs), "--annotate", target)
        assert (code, out) == (2, ""), (target, err)
        assert err.startswith(f"ferhub predict: --annotate {target}: {message}"), err
        assert len(err.splitlines()) == 1
    assert afile.read_text() == "not a folder" and not list(tmp_path.glob("x.*"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--model", "m", "--data", "d", "--device", "tpu"], "--device must be auto, cpu,"),
        (["compare", "m1", "m2", "--data", "d", "--device", "tpu"], "--device must be auto, cpu, cuda"),
        (["evaluate", "--model", "m", "--data", "d", "--bootstrap", "0"], "--bootstrap must be 1 or more"),
        (["evaluate", "--model", "m", "--data", "d", "--bootstrap", "-5"], "--bootstrap must be 1 or more"),
    ],
)
def test_evaluate_and_compare_refuse_bad_options_before_loading(capsys, monkeypatch, argv, message) -> None:
    """``--device tpu`` was exit 1 from the predictor, ``--bootstrap 0`` an internal error (exit 4) after the
    whole evaluation: both are exit 2 before any data or model is opened."""
    import ferhub.evaluation

    def never(*args, **kwargs):
        raise AssertionError("the bad option should have been refused before this")

    monkeypatch.setattr(ferhub.evaluation, "open_data", never)
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"ferhub {argv[0]}: {message}") and len(err.splitlines()) == 1


def test_bootstrap_ci_refuses_no_resamples() -> None:
    from ferhub.metrics import bootstrap_ci

    with pytest.raises(ValueError, match="n_resamples must be 1 or more, got 0"):
        bootstrap_ci([0, 1], [0, 1], 2, n_resamples=0)


def test_out_dir_keeps_inputs_of_one_name_apart_and_a_rerun_finds_them(
    capsys, tmp_path: Path, monkeypatch
) -> None:
    """``predict a/photos b/photos --out-dir res`` named both results ``photos/img1.jpg.json``: the second
    photo was counted "already done" and never classified (two ``img1.jpg`` named directly: the same)."""
    monkeypatch.chdir(tmp_path)
    for folder, who in (("a", "astronaut"), ("b", "hopper")):
        Path(folder, "photos").mkdir(parents=True)
        clips.photo(who).save(Path(folder, "photos", "img1.jpg"))
    for argv, out in (
        (["a/photos", "b/photos"], "res"),
        (["a/photos/img1.jpg", "b/photos/img1.jpg"], "res2"),
    ):
        code, _, err = run_cli(capsys, "predict", *argv, "--out-dir", out)
        assert code == 0 and "2 input(s) written" in err and "0 already done" in err
        written = sorted(p.relative_to(out).as_posix() for p in Path(out).rglob("*.json"))
        assert written == ["a/photos/img1.jpg.json", "b/photos/img1.jpg.json"]
        labels = {json.loads(Path(out, w).read_text())["faces"][0]["label"] for w in written}
        assert len(labels) == 2  # two photos classified, not one result twice
        code, _, err = run_cli(capsys, "predict", *reversed(argv), "--out-dir", out)  # resumes, any order
        assert code == 0 and "0 input(s) written" in err and "2 already done" in err


def test_options_may_come_between_paths(capsys, tmp_path: Path) -> None:
    """``ferhub predict a.png --format csv b.png`` classifies both photos, as most command lines allow."""
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    clips.photo("astronaut").save(first)
    clips.photo("hopper").save(second)
    code, out, _ = run_cli(capsys, "predict", str(first), "--format", "csv", str(second))
    assert code == 0
    rows = out.splitlines()
    assert rows[0].startswith("path,") and [r.split(",")[0] for r in rows[1:]] == [str(first), str(second)]


@pytest.mark.parametrize(
    "argv", [["predict", "x.png", "--bogus"], ["zoo", "list", "--bogus"], ["models", "--bogus", "1"]]
)
def test_an_unknown_option_is_refused_with_the_commands_usage(capsys, argv) -> None:
    with pytest.raises(SystemExit) as stop:
        run_cli(capsys, *argv)
    err = capsys.readouterr().err
    command = " ".join(a for a in argv if not a.startswith("-") and a not in ("x.png", "1"))
    assert stop.value.code == 2
    assert err.startswith(f"usage: ferhub {command} ")
    assert err.splitlines()[-1].startswith(f"ferhub {command}: error: unrecognized arguments: --bogus")


def test_paths_after_a_double_dash_may_start_with_a_dash(capsys, tmp_path: Path, monkeypatch) -> None:
    """``ferhub predict --format csv -- -a.png``: argparse's intermixed parse (options between paths) drops
    ``--`` on Python <= 3.13.0, so a command line with ``--`` is read the plain way."""
    monkeypatch.chdir(tmp_path)
    clips.photo("astronaut").save(tmp_path / "-a.png")
    code, out, _ = run_cli(capsys, "predict", "--format", "csv", "--", "-a.png")
    assert code == 0 and out.splitlines()[1].startswith("'-a.png,")  # escaped: no spreadsheet formula
