"""``ferhub predict`` as a user meets it: streamed output, clear one-line messages, folder scans, Ctrl-C,
overlays on a full disk, sharding over torchrun with resume, and the video report."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import clips
import numpy as np
import pytest
from cli_run import run_cli

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture()
def face_photo(tmp_path: Path) -> Path:
    path = tmp_path / "astronaut.png"
    clips.photo("astronaut").save(path)
    return path


def test_errors_name_the_path_once_and_tables_keep_one_line_per_name(capsys, tmp_path, face_photo) -> None:
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"not an image at all")
    code, _, err = run_cli(capsys, "predict", str(bad), str(face_photo))
    assert code == 0
    (line,) = [line for line in err.splitlines() if "x.jpg" in line]
    assert line.count(str(bad)) == 1 and line.startswith(f"ferhub predict: {bad}: ")
    odd = tmp_path / "two\nlines.png"
    clips.photo("astronaut").save(odd)
    code, out, _ = run_cli(capsys, "predict", str(odd), "--format", "table")
    assert code == 0 and out.splitlines()[0].startswith(str(tmp_path / "two\\nlines.png"))
    assert out.splitlines()[1].startswith("  face 1 ")


def test_folder_scan_takes_every_decodable_format_and_reports_the_rest(capsys, tmp_path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    clips.photo("astronaut").save(folder / "a.avif")  # Pillow decodes AVIF: it is scanned, not skipped
    (folder / "b.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")  # needs a plugin this install lacks
    (folder / "notes.txt").write_text("ignored quietly")
    clips.write_clip(folder / "c.webm", [clips.compose([("hopper", 160, 120, 120)])] * 3, codec="libvpx-vp9")
    code, out, err = run_cli(capsys, "predict", str(folder))
    assert code == 0
    kinds = {Path(e["path"]).name: e["kind"] for e in json.loads(out)}
    assert kinds == {"a.avif": "image", "c.webm": "video"}
    assert "1 .heic (install pillow-heif to read them)" in err and "notes" not in err


@pytest.mark.slow
def test_ensemble_gradcam_states_its_fallback_and_disk_full_overlays_are_reported(
    capsys, tmp_path, face_photo, monkeypatch
) -> None:
    real_write = Path.write_bytes

    def full_disk(self, data):
        if ".jpg." in self.name:  # the photo overlay's temporary: as if the disk filled up mid-write
            real_write(self, data[:7])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    out_dir = tmp_path / "overlays"
    argv = ["predict", str(face_photo), "--model", "ferhub/zoo-ensemble", "--saliency", "gradcam"]
    code, out, err = run_cli(capsys, *argv, "--out", str(out_dir))
    assert code == 1  # its only photo's overlay failed: that photo's error, as a photo not read would be
    assert "is an ensemble; writing integrated_gradients overlays instead" in err
    assert "No space left on device" in err and "Traceback" not in err
    (entry,) = json.loads(out)  # the results are all there
    assert entry["faces"][0]["label"]
    assert [p.name for p in out_dir.iterdir()] == ["astronaut_face1_integrated_gradients.png"]


def test_overlay_names_stay_unique_across_folders_and_batches(capsys, tmp_path, monkeypatch) -> None:
    import ferhub.commands.predict as command

    monkeypatch.setattr(command, "PHOTO_BATCH", 1)  # one batch per photo, as past 16 photos
    photos = []
    for folder, name in [("a", "face"), ("b", "face"), ("c", "face-2"), ("d", "FACE")]:
        (tmp_path / folder).mkdir()
        photos.append(tmp_path / folder / f"{name}.png")
        clips.photo("astronaut").save(photos[-1])
    out_dir = tmp_path / "overlays"
    code, out, err = run_cli(
        capsys, "predict", *map(str, photos), "--saliency", "gradcam", "--out", str(out_dir)
    )
    assert code == 0
    assert len(json.loads(out)) == 4
    written = [line.rsplit("wrote ", 1)[1] for line in err.splitlines() if "wrote " in line]
    assert len(written) == 8 and len(set(written)) == 8  # a face crop and a photo per input, none replaced
    stems = sorted({Path(p).name.rsplit("_gradcam", 1)[0] for p in written if p.endswith(".jpg")})
    assert stems == ["FACE-3", "face", "face-2", "face-2-2"]  # compared without case, as macOS and Windows do
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(Path(p).name for p in written)


def test_unimported_zoo_model_says_how_to_import_it(capsys, face_photo) -> None:
    code, _, err = run_cli(capsys, "predict", str(face_photo), "--model", "ferhub/pyemotion")
    assert code == 1
    assert err.strip() == (
        "ferhub predict: ferhub/pyemotion is not imported yet: run `ferhub zoo import pyemotion` first"
    )


@pytest.mark.slow
def test_ctrl_c_keeps_json_and_annotated_video_valid(tmp_path) -> None:
    import av

    frames, _ = clips.pan(40)
    clip = clips.write_clip(tmp_path / "long.mp4", frames * 10)  # 400 frames
    annotated = tmp_path / "annotated.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferhub", "predict", str(clip), "--annotate", str(annotated)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    seen = []
    for line in proc.stdout:  # wait until frames are streaming out, then press Ctrl-C
        seen.append(line)
        if sum('"frame":' in x for x in seen) >= 20:
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stdout.read()  # what the line iterator had not read yet, then the rest
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 130, err
    (entry,) = json.loads("".join(seen) + rest)
    assert entry["interrupted"] is True and 20 <= len(entry["frames"]) < 400
    assert entry["tracks"][0]["frames"] == len(entry["frames"])
    with av.open(str(annotated)) as c:  # the annotated file was finished and plays
        assert sum(1 for _ in c.decode(video=0)) >= 20


@pytest.mark.slow
def test_torchrun_shards_inputs_one_file_each_and_resumes(tmp_path) -> None:
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    clips.photo("astronaut").save(inputs / "a.png")
    clips.photo("hopper").save(inputs / "sub" / "b.jpg")
    frames, _ = clips.pan(6)
    clips.write_clip(inputs / "c.mp4", frames)
    clips.write_clip(inputs / "sub" / "d.mkv", frames)
    out = tmp_path / "out"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd = [*launcher, "-m", "ferhub", "predict", str(inputs), "--out-dir", str(out), "--device", "cpu"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=600)
    assert first.returncode == 0, first.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a.png.json", "c.mp4.json", "sub/b.jpg.json", "sub/d.mkv.json"]
    assert "process 1/2: 2 input(s) written" in first.stderr and "process 2/2: 2 input(s)" in first.stderr
    video = json.loads((out / "c.mp4.json").read_text())
    assert video["kind"] == "video" and len(video["frames"]) == 6 and len(video["tracks"]) == 1
    assert len(json.loads((out / "a.png.json").read_text())["faces"]) == 1
    (out / "sub" / "d.mkv.json").unlink()  # as if that input had not finished
    again = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=600)
    assert again.returncode == 0, again.stderr
    assert "1 input(s) written" in again.stderr and "2 already done" in again.stderr
    assert (out / "sub" / "d.mkv.json").is_file()


def test_report_renders_video_results(capsys, tmp_path) -> None:
    frames, _ = clips.leave_and_return(9, away=(3, 6))
    clip = clips.write_clip(tmp_path / "two.mp4", frames)
    code, out, _ = run_cli(capsys, "predict", str(clip), "--detect-every", "1")
    assert code == 0
    results = tmp_path / "results.json"
    results.write_text(out)
    report = tmp_path / "report.html"
    code, printed, _ = run_cli(capsys, "report", "--video", str(results), "--out", str(report))
    assert code == 0 and printed.strip() == str(report)
    text = report.read_text()
    assert "two.mp4" in text and text.count("id='fh-plotly'") == 1  # one offline copy of plotly.js (packed)
    assert "face 1" in text and "face 2" in text and "on screen (s)" in text
    code, _, err = run_cli(capsys, "report", "--video", str(clip))
    assert code == 1 and "cannot read it as ferhub predict JSON" in err
    # a file among several that holds no video results (a photo's JSON) is named, and the others reported
    photo = tmp_path / "photo.json"
    photo.write_text('[{"kind": "image", "path": "a.jpg", "faces": []}]')
    again = tmp_path / "again.html"
    code, _, err = run_cli(capsys, "report", "--video", str(results), str(photo), "--out", str(again))
    assert code == 0 and "two.mp4" in again.read_text()
    assert "ferhub report: skipped " in err and "photo.json: holds no video results" in err


def test_flat_memory_photos_are_released_batch_by_batch(capsys, tmp_path, monkeypatch) -> None:
    """However many photos, at most one batch of decoded images is alive (200 photos once took 1.9 GB)."""
    import gc
    import weakref

    import ferhub.commands.predict as command
    import ferhub.predict as predict

    monkeypatch.setattr(command, "PHOTO_BATCH", 2)
    refs, most = [], []
    real = predict.load_image

    def load_image(*args, **kwargs):
        gc.collect()
        most.append(sum(r() is not None for r in refs))
        image = real(*args, **kwargs)
        refs.append(weakref.ref(image))
        return image

    monkeypatch.setattr(predict, "load_image", load_image)
    for i in range(7):
        clips.photo("astronaut").resize((160, 120)).save(tmp_path / f"{i}.png")
    code, out, _ = run_cli(capsys, "predict", str(tmp_path))
    assert code == 0 and len(json.loads(out)) == 7 and len(refs) == 7
    assert max(most) <= 1  # when a photo is decoded, only its batch-mate may still be alive


def test_flat_memory_release_of_frames(tmp_path) -> None:
    """Each analysed frame's pixels are released once its result is out: at most one batch is alive."""
    import gc
    import weakref

    from ferhub.predict import Predictor
    from ferhub.video import VideoAnalyzer

    frames, _ = clips.pan(30)
    clip = clips.write_clip(tmp_path / "pan.mp4", frames)
    run = VideoAnalyzer(Predictor(device="cpu"), batch_frames=4).open(clip)
    refs = []
    for result in run:
        refs.append(weakref.ref(result.image))
        result.image = None
        gc.collect()
        alive = sum(r() is not None for r in refs)
        assert alive <= 4
    assert np.isfinite([t["seconds"] for t in run.summaries()]).all()


def test_an_annotated_copy_failing_part_way_is_that_videos_error_only(capsys, tmp_path, monkeypatch) -> None:
    """A full disk under the annotated copy once ended the whole run: JSON left open, later inputs lost."""
    import av

    from ferhub.videoio import VideoWriter

    frames, _ = clips.pan(6)
    first = clips.write_clip(tmp_path / "in" / "a.mp4", frames)
    photo = tmp_path / "in" / "b.png"
    clips.photo("hopper").save(photo)
    second = clips.write_clip(tmp_path / "in" / "c.mp4", frames)
    real_write = VideoWriter.write

    def full_disk(self, image, time):
        if self.path.name == "a.annotated.mp4" and time > 0.2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, image, time)

    monkeypatch.setattr(VideoWriter, "write", full_disk)
    annotated = tmp_path / "annotated"
    argv = [str(first), str(photo), str(second), "--annotate", str(annotated)]
    code, out, err = run_cli(capsys, "predict", *argv)
    assert code == 0  # the other inputs are results
    entries = json.loads(out)  # closed, valid JSON
    assert [Path(e["path"]).name for e in entries] == ["a.mp4", "b.png", "c.mp4"]
    a, b, c = entries
    assert a["interrupted"] is False and len(a["frames"]) == 6 and len(a["tracks"]) == 1  # analysed in full
    target = annotated / "a.annotated.mp4"
    why = "No space left on device"
    assert a["error"] == f"annotated copy {target} not written ({why}); the results are kept"
    assert f"ferhub predict: {first}: annotated copy {target} not written (No space left on" in err
    assert not target.exists()  # a half-written copy would not play
    assert b["faces"] and c["error"] is None and len(c["frames"]) == 6
    with av.open(str(annotated / "c.annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6


def test_json_on_stdout_is_closed_even_when_a_run_stops_on_a_bug(
    capsys, tmp_path, face_photo, monkeypatch
) -> None:
    import ferhub.commands.predict as command

    def bug(self, path, writer, annotate):
        raise RuntimeError("a bug")

    monkeypatch.setattr(command.Job, "video", bug)
    clip = clips.write_clip(tmp_path / "clip.mp4", clips.pan(2)[0])
    code, out, err = run_cli(capsys, "predict", str(face_photo), str(clip))
    assert code == 4 and "internal error (RuntimeError: a bug)" in err
    (photo,) = json.loads(out)  # what was written before the bug, as a closed array
    assert photo["faces"]


def test_table_names_each_model_of_a_video() -> None:
    """With several models the table summed up each person by the first model only, naming none; it gives
    one line per person and model, named, as the Video tab and `ferhub report --video` do."""
    import io
    from types import SimpleNamespace

    from ferhub.faces import Face
    from ferhub.labels import FER7
    from ferhub.video import TrackSummaries, VideoFace
    from ferhub.writers import TableWriter

    labels = [tuple(FER7), ("negative", "positive")]
    happy, positive = np.full(7, 0.01), np.array([0.1, 0.9])
    happy[FER7.index("happy")] = 0.94
    summaries = TrackSummaries(["fer", "valence"], labels, 0.5)
    for time in (0.0, 0.5):
        p = [happy, positive]
        summaries.add(
            time, [VideoFace(1, Face(box=(0, 0, 9, 9), score=1.0), True, p, p, labels, ["fer", "valence"])]
        )
    run = SimpleNamespace(summaries=summaries.result, frames_done=2, error=None)
    out = io.StringIO()
    TableWriter(out).video_end(run, interrupted=False)
    assert out.getvalue().splitlines() == [
        "  2 frames analysed, 1 face track(s)",
        "  face 1 · fer: 0.00-0.50 s, 1.0 s on screen, mostly happy (happy 100%)",
        "  face 1 · valence: 0.00-0.50 s, 1.0 s on screen, mostly positive (positive 100%)",
    ]
