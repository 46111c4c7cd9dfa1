"""File names at the edges of what output can hold: names near the file system's 255-byte limit under
``--out-dir`` and ``--saliency``, names whose bytes are not UTF-8, and names a spreadsheet would run as a
formula. One such name is that input's business: it never stops the run or loses the other inputs."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import clips
import numpy as np
import pytest
from cli_run import run_cli

from ferhub import fileio, saliency
from ferhub.writers import CsvWriter, csv_text, printable

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LATIN1 = os.fsdecode(b"caf\xe9.png")  # a Latin-1 name from an old zip: legal on Linux, not UTF-8


def photos(folder: Path, *names: str) -> list[Path]:
    folder.mkdir()
    data = io.BytesIO()
    clips.photo("astronaut").save(data, format="PNG")
    paths = [folder / n for n in names]
    for p in paths:
        p.write_bytes(data.getvalue())
    return paths


def size(name: str) -> int:
    return len(os.fsencode(name))


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------------------- long names: --out-dir
def test_temporaries_of_long_names_fit_in_a_file_name_and_are_cleaned_up(tmp_path: Path) -> None:
    target = tmp_path / ("é" * 120 + ".png.json")  # 249 bytes: fits, but its temporary would not
    tmp = fileio.new_temp(target)
    assert tmp.parent == tmp_path and size(tmp.name) <= fileio.NAME_MAX
    tmp.name.encode("utf-8")  # cut between whole characters: a valid name on macOS too
    # what a writer killed with SIGKILL leaves, named as new_temp names it, beside another target's
    prefix = tmp.name.rpartition(".")[0].rpartition(".")[0]
    killed = tmp_path / f"{prefix}.{dead_pid()}-abcd1234.tmp"
    other = tmp_path / f".{'é' * 100}.png.json.{dead_pid()}-abcd1234.tmp"
    killed.write_text("{")
    other.write_text("{")
    assert fileio.remove_stale_temps(target) == [killed]  # not tmp: its writer (this process) still runs
    killed.write_text("{")
    assert fileio.remove_stale_temps_of([target]) == [killed]
    assert other.exists() and tmp.exists()
    tmp.unlink()
    with fileio.atomic_path(target) as path:
        path.write_text("{}")
    assert target.read_text() == "{}"


def test_out_dir_goes_on_past_a_name_too_long_for_its_result_file(capsys, tmp_path: Path) -> None:
    # 240 bytes: NAME.json fits in 255, its temporary used not to; 254 bytes: NAME.json cannot exist
    fits, too_long = "m" + "x" * 235 + ".png", "y" * 250 + ".png"
    photos(tmp_path / "in", "a.png", fits, too_long, "z.png")
    out = tmp_path / "res"
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "in"), "--out-dir", str(out))
    assert code == 0, err
    written = sorted(p.name for p in out.iterdir())
    assert [n[0] for n in written] == ["a", "m", "z"] and written[1].startswith(fits)
    (error,) = [line for line in err.splitlines() if too_long in line]
    assert error.startswith(f"ferhub predict: {tmp_path / 'in' / too_long}: result not written to ")
    assert error.endswith("(File name too long)")
    assert "3 input(s) written to" in err and "1 failed (a rerun retries them)" in err
    # a rerun skips what is done and fails the same input again, not the run
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "in"), "--out-dir", str(out))
    assert code == 0 and "0 input(s) written to" in err and "3 already done, 1 failed" in err
    # the one input there is failing is a failed run
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "in" / too_long), "--out-dir", str(out))
    assert code == 1 and "0 input(s) written to" in err and "1 failed" in err
    assert not list(out.glob(".*.tmp"))


def test_a_name_of_long_parts_fits_a_file_name_each_part_readable_and_apart(tmp_path: Path) -> None:
    """``ferhub evaluate``'s ``<model>.<key>.predictions.json`` of a 121-character model folder and a
    124-character data folder passed 255 bytes: "File name too long", and no later model's files written.
    :func:`fileio.fit_parts` gives a name that fits, keeps the start of every part, and is the same for the
    same parts and another for parts that differ only at their end."""
    suffix = ".predictions.json"
    short = fileio.fit_parts(["org--model", "faces--default--all"], suffix)
    assert short == "org--model.faces--default--all.predictions.json"  # as before where it fits
    model = "resnet18-" + "x" * 110 + "-seed1"
    key = "affectnet-" + "y" * 110 + "--default--all"
    name = fileio.fit_parts([model, key], suffix)
    assert size(name) == fileio.NAME_MAX and name.endswith(suffix)
    head_model, _, rest = name.partition(".")
    assert model.startswith(head_model) and len(head_model) >= 100  # each part keeps its share of the room
    assert key.startswith(rest.partition("~")[0]) and len(rest.partition("~")[0]) >= 100
    assert name == fileio.fit_parts([model, key], suffix)  # a rerun writes over the same file
    assert name != fileio.fit_parts([model[:-1] + "2", key], suffix)  # seed2: its own file
    # a short part is kept whole, the long one gets the rest of the room; whole UTF-8 characters only
    mixed = fileio.fit_parts(["org--m", "é" * 200], suffix)
    assert mixed.startswith("org--m.éé") and size(mixed) <= fileio.NAME_MAX
    mixed.encode("utf-8")  # no cut character
    for n in (name, mixed):  # the file system takes them, and an atomic write's temporary beside them
        fileio.atomic_write_text(tmp_path / n, "{}")
        assert (tmp_path / n).read_text() == "{}"


# ------------------------------------------------------------------------------ names that are not UTF-8
def test_names_that_are_not_utf8_are_escaped_alike_in_csv_json_and_table(capsys, tmp_path: Path) -> None:
    photos(tmp_path / "in", LATIN1, "z.png")
    shown = str(tmp_path / "in" / "caf\\xe9.png")  # the byte as an escape, in every format
    out = tmp_path / "res"
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "in"), "--out-dir", str(out), "--format", "csv")
    assert code == 0 and "2 input(s) written to" in err, err
    rows = [
        row for f in sorted(out.iterdir()) for row in list(csv.reader(f.read_text("utf-8").splitlines()))[1:]
    ]
    assert [row[0] for row in rows] == [shown, str(tmp_path / "in" / "z.png")]
    # stdout strict UTF-8, as Python's is under en_US.UTF-8 (capsys' is too)
    code, out_csv, _ = run_cli(capsys, "predict", str(tmp_path / "in"), "--format", "csv")
    assert code == 0 and [row[0] for row in csv.reader(out_csv.splitlines()[1:])] == [row[0] for row in rows]
    code, out_json, _ = run_cli(capsys, "predict", str(tmp_path / "in"))
    assert code == 0 and json.loads(out_json)[0]["path"] == shown
    code, out_table, _ = run_cli(capsys, "predict", str(tmp_path / "in"), "--format", "table")
    assert code == 0 and out_table.startswith(f"{shown} (")
    assert printable(f"{LATIN1}\n") == "caf\\xe9.png\\n"


# ------------------------------------------------------------------------------ long names: --saliency
def test_saliency_shortens_long_stems_and_keeps_the_batch(capsys, tmp_path: Path) -> None:
    long_name = "x" * 246 + ".png"
    photos(tmp_path / "in", long_name, "zz.png")
    out = tmp_path / "out"
    argv = ["predict", str(tmp_path / "in"), "--saliency", "gradcam", "--out", str(out)]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0 and "not written" not in err, err
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 4 and all(size(n) <= fileio.NAME_MAX for n in names)
    stem = names[1].removesuffix("_gradcam.jpg")  # the stem's start, then a hash of the whole
    assert stem.startswith("x" * 200) and stem[-17] == "~" and names[0] == f"{stem}_face1_gradcam.png"
    assert names[2:] == ["zz_face1_gradcam.png", "zz_gradcam.jpg"]


def test_an_overlay_not_written_is_its_photos_error_only(capsys, tmp_path: Path, monkeypatch) -> None:
    # a name the file system refuses (stems not shortened here): the save fails, and so would its cleanup
    monkeypatch.setattr(saliency, "NAME_MAX", 10_000, raising=False)
    long_name = "x" * 246 + ".png"
    photos(tmp_path / "in", long_name, "zz.png")
    out = tmp_path / "out"
    argv = ["predict", str(tmp_path / "in"), "--saliency", "gradcam", "--out", str(out)]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err  # one photo of two failed: as for any per-file error
    assert sorted(p.name for p in out.iterdir()) == ["zz_face1_gradcam.png", "zz_gradcam.jpg"]
    failed = [line for line in err.splitlines() if "not written" in line]
    assert failed and all(
        line.startswith(f"ferhub predict: {tmp_path / 'in' / long_name}: ") for line in failed
    )
    assert "File name too long" in failed[0]


def test_a_photo_whose_overlay_fails_counts_as_failed(capsys, tmp_path: Path, monkeypatch) -> None:
    real_write = Path.write_bytes

    def full_disk(self, data):
        if ".jpg." in self.name:  # the photo overlay's temporary
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    (photo,) = photos(tmp_path / "in", "a.png")
    monkeypatch.setattr(Path, "write_bytes", full_disk)
    argv = ["predict", str(photo), "--saliency", "gradcam", "--out", str(tmp_path / "out")]
    code, out, err = run_cli(capsys, *argv)
    assert code == 1  # its only photo failed, as a photo that cannot be read fails it
    assert json.loads(out)[0]["faces"]  # its result is still written
    assert (
        f"ferhub predict: {photo}: overlay {tmp_path / 'out' / 'a_gradcam.jpg'} not written (No space" in err
    )
    # under --out-dir: no result file, so that a rerun writes its overlays
    code, _, err = run_cli(capsys, *argv, "--out-dir", str(tmp_path / "res"))
    assert code == 1 and "0 input(s) written to" in err and "1 failed (a rerun retries them)" in err


# -------------------------------------------------------------------------------------- CSV injection
def face(box: tuple[float, ...]) -> SimpleNamespace:
    return SimpleNamespace(box=box, score=0.99)


def test_csv_text_cells_are_never_formulas_and_numbers_stay_numbers() -> None:
    stream = io.StringIO()
    writer = CsvWriter(stream, ["=model", "plain"], [("happy", "-sad")])
    writer.begin()
    names = [
        '=HYPERLINK("http://x","open me").jpg',
        "@SUM(1+1).jpg",
        "+cmd.png",
        "-x.jpg",
        "\tt.jpg",
        "ok.jpg",
    ]
    for name in names:
        prediction = SimpleNamespace(
            model="=model", label="-sad", probabilities={"happy": 0.25, "-sad": 0.75}
        )
        writer.photo(
            SimpleNamespace(
                path=name, faces=[SimpleNamespace(face=face((-3.5, 2, 40, 50)), predictions=[prediction])]
            )
        )
    # a video row, as the app's Video tab writes its CSV download
    video_face = SimpleNamespace(track_id=1, face=face((-1, -2, 30, 40)), raw=[np.array([0.1, 0.9])] * 2)
    run = SimpleNamespace(path="=clip.mp4", models=["=model", "plain"], labels=[("happy", "-sad")] * 2)
    writer.video_frame(run, SimpleNamespace(index=0, time=0.0, faces=[video_face]))
    header, *rows = list(csv.reader(io.StringIO(stream.getvalue())))
    assert header[-3:] == ["happy", "'-sad", "model"]
    assert [row[0] for row in rows] == [f"'{n}" for n in names[:5]] + ["ok.jpg", "'=clip.mp4", "'=clip.mp4"]
    assert {row[9] for row in rows} == {"'-sad"} and {row[-1] for row in rows} == {"'=model", "plain"}
    assert rows[0][4:8] == ["-3.5", "2.0", "40.0", "50.0"]  # a box past the photo's edge: a number
    assert rows[-1][1:8] == ["0", "0.0000", "1", "-1.0", "-2.0", "30.0", "40.0"]


def test_csv_cells_that_are_plain_numbers_keep_no_quote() -> None:
    """The formula quote went on numbers too: a binary model's classes ``-1``/``+1`` became columns
    ``'-1`` and ``'+1`` (``csv.DictReader`` and pandas found no column ``-1``), and a model named ``-2``
    ``'-2``. A plain number is no formula in any spreadsheet; anything more after its sign is quoted."""
    stream = io.StringIO()
    writer = CsvWriter(stream, ["m1", "-2"], [("-1", "+1"), ("-1", "+1")])
    writer.begin()
    prediction = SimpleNamespace(model="-2", label="-1", probabilities={"-1": 0.9, "+1": 0.1})
    writer.photo(
        SimpleNamespace(
            path="a.jpg", faces=[SimpleNamespace(face=face((1, 2, 3, 4)), predictions=[prediction])]
        )
    )
    header, row = list(csv.reader(io.StringIO(stream.getvalue())))
    assert header[-3:] == ["-1", "+1", "model"]
    assert row[9] == "-1" and row[-1] == "-2"
    for number in ("-1", "+1", "-0.5", "+.5", "-2e-3", "-1E+5", "-7."):
        assert csv_text(number) == number
    for formula in ("-1+1", "+1)*cmd", "-1 ", "-", "-e1", "-inf", "-nan", "+0x1", "-1_0", "\t1", "-١"):
        assert csv_text(formula) == "'" + formula
