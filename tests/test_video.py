"""Video: decoding (rotation, variable frame rate), tracking with stable ids, summaries, the CLI and bad
input.

The clips are made here with PyAV from real photos (``tests/clips.py``): a pan, a zoom, a cut, two faces
crossing, a face leaving and coming back.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import clips
import numpy as np
import pytest
from cli_run import run_cli

from ferhub.labels import FER7

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HEADER = ["path", "frame", "time", "face_id", "x1", "y1", "x2", "y2", "score", "label", *FER7]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


def make(clip_dir: Path, scene: str, **kwargs) -> tuple[Path, clips.Truth]:
    frames, truth = getattr(clips, scene)()
    path = clip_dir / f"{scene}.mp4"
    if not path.exists():
        clips.write_clip(path, frames, **kwargs)
    return path, truth


@pytest.fixture(scope="module")
def predictor():
    from ferhub.predict import Predictor

    return Predictor(device="cpu")


def analyse(predictor, path: Path, **kwargs):
    from ferhub.video import VideoAnalyzer

    run = VideoAnalyzer(predictor, **kwargs).open(path)
    frames = [(f.index, f.time, [(face.track_id, face.face.box) for face in f.faces]) for f in run]
    return run, frames


def identities(frames, truth: clips.Truth) -> dict[int, set[str]]:
    """Track id -> the people (from the scene's truth) its boxes were on."""
    seen: dict[int, set[str]] = {}
    for index, _, faces in frames:
        for track_id, box in faces:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            name = min(truth[index], key=lambda t: (t[1] - cx) ** 2 + (t[2] - cy) ** 2)[0]
            seen.setdefault(track_id, set()).add(name)
    return seen


# -- decoding
# ----------------------------------------------------------------------------------------------------
def test_rotation_metadata_and_variable_frame_rate(clip_dir: Path) -> None:
    from ferhub.videoio import open_video

    frames, _ = clips.pan(5)
    times = [0.0, 0.1, 0.5, 0.55, 2.0]  # variable frame rate: the stream's timestamps, not index / fps
    path = clips.write_clip(clip_dir / "phone.mov", frames, times=times, rotation=90)
    with open_video(path) as video:
        assert video.info.rotation == 90 and (video.info.width, video.info.height) == (clips.W, clips.H)
        assert (video.info.source_width, video.info.source_height) == (clips.W, clips.H)  # turned alike
        decoded = list(video.frames())
    assert [f.time for f in decoded] == pytest.approx(times, abs=1e-3)
    assert decoded[0].image.size == (clips.W, clips.H)  # upright again, as the phone showed it
    diff = np.abs(np.asarray(decoded[0].image, dtype=int) - frames[0].astype(int)).mean()
    assert diff < 6  # the same picture (H.264 noise only), not a turned one
    with open_video(path) as video:
        assert [f.index for f in video.frames(fps=2)] == [0, 2, 4]  # one frame per half second at most


def test_large_frames_are_downscaled_by_the_decoder(clip_dir: Path) -> None:
    from ferhub.videoio import open_video

    frames = [np.zeros((720, 1280, 3), np.uint8)] * 2
    path = clips.write_clip(clip_dir / "wide.mkv", frames, codec="libvpx-vp9")
    with open_video(path, max_side=640) as video:
        assert (video.info.width, video.info.height) == (640, 360)
        assert [f.image.size for f in video.frames()] == [(640, 360)] * 2
        # the file's own size is kept beside it: boxes (in the analysed size's pixels) scale back by it
        assert video.info.to_dict()["source_width"] == 1280 and video.info.to_dict()["source_height"] == 720


# -- tracking
# ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scene", ["pan", "zoom"])
def test_one_moving_face_keeps_one_id(clip_dir: Path, predictor, scene: str) -> None:
    path, truth = make(clip_dir, scene)
    run, frames = analyse(predictor, path)
    assert all(len(faces) == 1 for _, _, faces in frames)
    assert identities(frames, truth) == {1: {truth[0][0][0]}}
    (summary,) = run.summaries()
    # detected on every 3rd frame, and on the last (the stream's end confirms the frames carried before it)
    detected = {*range(0, len(truth), 3), len(truth) - 1}
    assert summary["frames"] == len(truth) and summary["detections"] == len(detected)
    assert summary["seconds"] == pytest.approx(len(truth) / 15, abs=0.01)
    assert summary["dominant"] in FER7 and sum(summary["share"].values()) == pytest.approx(1, abs=1e-3)


def test_a_sampled_track_never_outlasts_the_video(clip_dir: Path, predictor) -> None:
    """Analysed at 5 frames a second, a 15 fps clip's last analysed frame stands for its interval up to the
    clip's end, not a whole 0.2 s past it (a 1.33 s clip was 1.4 s on screen)."""
    path = clips.write_clip(clip_dir / "pan20.mp4", clips.pan(20)[0])  # 20 frames at 15 fps: 1.33 s
    run, frames = analyse(predictor, path, fps=5)
    (summary,) = run.summaries()
    assert [t for _, t, _ in frames] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2], abs=1e-3)
    assert summary["seconds"] == pytest.approx(20 / 15, abs=1e-3)


def test_a_cut_starts_new_ids(clip_dir: Path, predictor) -> None:
    path, truth = make(clip_dir, "cut")
    run, frames = analyse(predictor, path, detect_every=5)
    assert identities(frames, truth) == {1: {"astronaut"}, 2: {"hopper"}}
    first, second = run.summaries()
    cut_time = 15 / 15
    assert first["last_time"] < cut_time and second["first_time"] == pytest.approx(cut_time, abs=1e-3)


@pytest.mark.parametrize("detect_every", [1, 3])
def test_two_faces_crossing_keep_their_ids(clip_dir: Path, predictor, detect_every: int) -> None:
    path, truth = make(clip_dir, "crossing")
    run, frames = analyse(predictor, path, detect_every=detect_every)
    assert identities(frames, truth) == {1: {"astronaut"}, 2: {"hopper"}}
    hidden = [i for i, _, faces in frames if len(faces) == 1]
    assert hidden  # Grace Hopper is behind the astronaut for a while, and comes back as #2
    assert [s["face_id"] for s in run.summaries()] == [1, 2]


def test_a_face_leaving_and_returning_keeps_its_id(clip_dir: Path, predictor) -> None:
    path, truth = make(clip_dir, "leave_and_return")
    run, frames = analyse(predictor, path)
    # numbered left to right on the first frame: Grace Hopper (left) is #1
    assert identities(frames, truth) == {1: {"hopper"}, 2: {"astronaut"}}
    by_id = {s["face_id"]: s for s in run.summaries()}
    assert by_id[2]["seconds"] == pytest.approx((45 - 12) / 15, abs=0.01)  # 12 frames away: not on screen
    assert by_id[1]["seconds"] == pytest.approx(3.0, abs=0.01)


@pytest.mark.parametrize("fps", [None, 5.0])
def test_another_person_sitting_down_where_one_left_gets_a_new_id(clip_dir: Path, predictor, fps) -> None:
    """The astronaut sits on the right for 1 s and leaves; 0.8 s later Grace Hopper sits down in her place
    (one shot, no cut). Within the 2 s a lost face is waited for she took the astronaut's id, and that
    person's summary mixed the two people's expressions."""
    frames, truth = [], []
    for i in range(45):
        name = "astronaut" if i < 15 else None if i < 27 else "hopper"
        frames.append(clips.compose([(name, 235, 120, 120)] if name else []))
        truth.append([(name, 235.0, 120.0)] if name else [])
    path = clip_dir / "replaced.mp4"
    if not path.exists():
        clips.write_clip(path, frames)
    run, analysed = analyse(predictor, path, fps=fps)
    assert identities(analysed, truth) == {1: {"astronaut"}, 2: {"hopper"}}
    first, second = run.summaries()
    # at 5 fps faces are detected every other sample (0.4 s): Grace Hopper is found at 2.0 s
    assert first["last_time"] < 1.0 and 1.8 - 1e-3 <= second["first_time"] <= 2.0 + 1e-3


@pytest.mark.slow
def test_batched_detection_across_frames_gives_the_frame_by_frame_results(
    clip_dir: Path, predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On CUDA the video path detects a batch of frames per net call; the same code on the CPU must find what
    detection frame by frame finds: the same faces and tracks, boxes and probabilities to float rounding (a
    batch of frames is convolved in another summation order: on Intel AVX-512, oneDNN's boxes differed by
    4e-6 px, the probabilities by 3e-5)."""
    from ferhub._mtcnn import FastMTCNN
    from ferhub.faces import FaceDetector
    from ferhub.predict import Predictor
    from ferhub.video import VideoAnalyzer

    assert FaceDetector(device="cpu").batch_images is False  # default: batched on CUDA only
    calls: list[int] = []
    original = FastMTCNN.detect_batch

    def counted(self, images, **kwargs):
        calls.append(len(images))
        return original(self, images, **kwargs)

    monkeypatch.setattr(FastMTCNN, "detect_batch", counted)
    path, _ = make(clip_dir, "crossing")
    results = []
    for batched in (False, True):
        detector = FaceDetector(device="cpu", runtime="torch", batch_images=batched)
        run = VideoAnalyzer(
            Predictor(predictor.models, device="cpu", detector=detector), detect_every=1
        ).open(path)
        results.append([(f.index, f.time, [(x.track_id, x.face.box, x.raw) for x in f.faces]) for f in run])
    assert max(calls) == 8  # the batched run: one call per batch of 8 frames
    (frames_one, frames_many) = results
    assert [(i, t, [tid for tid, _, _ in faces]) for i, t, faces in frames_one] == [
        (i, t, [tid for tid, _, _ in faces]) for i, t, faces in frames_many
    ]
    # boxes in pixels; probabilities (a box 4e-6 px off moves the crop's resampling: 3e-5 on Intel)
    for key, atol in ((1, 1e-3), (2, 1e-4)):
        one = np.array([face[key] for _, _, faces in frames_one for face in faces])
        many = np.array([face[key] for _, _, faces in frames_many for face in faces])
        np.testing.assert_allclose(one, many, rtol=0, atol=atol)


def test_smoothing_keeps_raw_values(clip_dir: Path, predictor) -> None:
    from ferhub.video import VideoAnalyzer

    path, _ = make(clip_dir, "zoom")
    raw = [f.faces[0] for f in VideoAnalyzer(predictor, smooth=0).open(path)]
    assert all(np.array_equal(f.raw[0], f.smoothed[0]) for f in raw)
    smooth = [f.faces[0] for f in VideoAnalyzer(predictor, smooth=1.0).open(path)]
    assert all(np.allclose(a.raw[0], b.raw[0], atol=1e-6) for a, b in zip(raw, smooth))
    # the smoothed series moves less from frame to frame than the raw one
    jumps = [np.abs(np.diff([f.smoothed[0] for f in series], axis=0)).sum() for series in (raw, smooth)]
    assert jumps[1] < jumps[0]


def test_tracker_units() -> None:
    from ferhub.faces import reading_order
    from ferhub.tracking import FaceTracker, Smoother

    tracker = FaceTracker(max_lost=1.0)
    a, b = (0, 0, 10, 10), (50, 0, 60, 10)
    assert [t.id for t in tracker.update([b, a], time=0.0)] == [2, 1]  # new ids in reading order
    assert [t.id for t in tracker.update([(52, 0, 62, 10), (2, 0, 12, 10)], time=0.1)] == [2, 1]
    tracker.update([], time=0.5)
    assert [t.id for t in tracker.update([(4, 0, 14, 10)], time=1.0)] == [1]  # back within max_lost
    tracker.update([], time=1.1)
    assert [t.id for t in tracker.update([(4, 0, 14, 10)], time=2.6)] == [3]  # gone too long: a new face
    # columns left to right, each read top to bottom
    assert reading_order([(100, 0, 140, 40), (0, 50, 40, 90), (5, 0, 45, 40)]) == [2, 1, 0]
    track = tracker.tracks[0]
    smoother = Smoother(seconds=1.0)
    smoother.update(track, [np.array([1.0, 0.0])], 0.0)
    (value,) = smoother.update(track, [np.array([0.0, 1.0])], 1.0)
    assert value == pytest.approx([np.exp(-1), 1 - np.exp(-1)])


# -- the CLI
# ------------------------------------------------------------------------------------------------------
def test_cli_csv_rows_per_face_per_frame(clip_dir: Path, capsys) -> None:
    frames, _ = clips.leave_and_return(8, away=(8, 8))  # two faces on every frame
    times = [0.0, 0.05, 0.1, 0.3, 0.35, 0.6, 0.9, 1.0]
    path = clips.write_clip(clip_dir / "vfr.mp4", frames, times=times)
    code, out, _ = run_cli(capsys, "predict", str(path), "--format", "csv", "--detect-every", "1")
    assert code == 0
    reader = csv.DictReader(io.StringIO(out))
    assert reader.fieldnames == HEADER
    rows = list(reader)
    assert len(rows) == 16  # two faces on each of 8 frames
    assert sorted({float(r["time"]) for r in rows}) == pytest.approx(times, abs=1e-3)
    assert {r["face_id"] for r in rows} == {"1", "2"}
    for r in rows:
        assert sum(float(r[k]) for k in FER7) == pytest.approx(1, abs=1e-4) and r["label"] in FER7
        assert float(r["x1"]) < float(r["x2"]) and 0 < float(r["score"]) <= 1


def test_cli_json_mixes_photos_and_videos_and_annotates(clip_dir: Path, capsys, tmp_path: Path) -> None:
    import av

    video, _ = make(clip_dir, "pan")
    photo = tmp_path / "group.png"
    from PIL import Image

    Image.fromarray(clips.compose([("hopper", 240, 120, 110), ("astronaut", 80, 120, 110)])).save(photo)
    annotated = tmp_path / "out.mp4"
    code, out, err = run_cli(
        capsys, "predict", str(photo), str(video), "--annotate", str(annotated), "--fps", "5"
    )
    assert code == 0, err
    image_entry, video_entry = json.loads(out)
    # faces numbered from 1, left to right: the astronaut (left) is face 1
    assert [f["face"] for f in image_entry["faces"]] == [1, 2]
    assert image_entry["faces"][0]["box"][0] < image_entry["faces"][1]["box"][0]
    assert video_entry["kind"] == "video" and video_entry["num_frames"] == 30
    assert video_entry["fps"] == pytest.approx(15, abs=0.01) and video_entry["duration"] == pytest.approx(
        2, abs=0.1
    )
    assert [f["time"] for f in video_entry["frames"]] == pytest.approx([i * 0.2 for i in range(10)], abs=1e-3)
    (track,) = video_entry["tracks"]
    assert track["face_id"] == 1 and track["dominant"] in FER7 and set(track["peaks"]) == set(FER7)
    face = video_entry["frames"][0]["faces"][0]
    assert face["face_id"] == 1 and {"probabilities", "smoothed", "label", "smoothed_label"} <= set(face)
    assert video_entry["error"] is None and video_entry["interrupted"] is False
    with av.open(str(annotated)) as c:  # plays in browsers: H.264, yuv420p, index first
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in c.decode(stream)) == 10
    data = annotated.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")


def test_cli_bad_videos_get_their_own_errors(clip_dir: Path, capsys, tmp_path: Path) -> None:
    import av

    good, _ = make(clip_dir, "pan")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.webm"
    garbage.write_bytes(b"\x1a\x45\xdf\xa3 not really matroska" * 50)
    truncated = tmp_path / "truncated.mkv"
    frames, _ = clips.pan(60)
    clips.write_clip(tmp_path / "full.mkv", frames)
    full = (tmp_path / "full.mkv").read_bytes()
    truncated.write_bytes(full[: len(full) // 2])
    audio = tmp_path / "audio.mp4"
    with av.open(str(audio), "w") as c:
        s = c.add_stream("aac", rate=8000)
        for i in range(5):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    picture = tmp_path / "picture.mp4"
    clips.photo("astronaut").save(picture, format="JPEG")
    nobody = clips.write_clip(tmp_path / "nobody.avi", [clips.compose([])] * 6, codec="mpeg4")
    argv = [str(p) for p in (empty, garbage, truncated, audio, picture, nobody, good)]
    code, out, err = run_cli(capsys, "predict", *argv)
    assert code == 0
    entries = {Path(e["path"]).name: e for e in json.loads(out)}
    assert "empty" in entries["empty.mp4"]["error"]
    assert "not a video" in entries["garbage.webm"]["error"]
    assert "no video" in entries["audio.mp4"]["error"]
    part = entries["truncated.mkv"]
    assert part["frames"] and part["tracks"]  # what decoded before the damage is kept
    assert "truncated or corrupt" in part["error"]  # ... and the damage is said, clean end of file or not
    assert entries["picture.mp4"]["kind"] == "image" and len(entries["picture.mp4"]["faces"]) == 1
    assert entries["nobody.avi"]["tracks"] == [] and len(entries["nobody.avi"]["frames"]) == 6
    assert entries["pan.mp4"]["error"] is None and len(entries["pan.mp4"]["tracks"]) == 1
    for line in err.splitlines():  # one line per problem, the path named once
        assert line.count(str(tmp_path)) <= 1, line


def test_cli_table_summarises_people(clip_dir: Path, capsys) -> None:
    path, _ = make(clip_dir, "leave_and_return")
    code, out, _ = run_cli(capsys, "predict", str(path), "--format", "table")
    assert code == 0
    assert "2 face track(s)" in out and "face 1:" in out and "face 2:" in out


def test_a_ten_hour_gap_carries_no_box_and_counts_as_the_reader_keeps_it(clip_dir: Path, capsys) -> None:
    """A clip whose second frame is stamped 10 hours after the first (a 10-hour duration in the header): the
    face is detected again after the gap (not carried). An MKV's reader keeps a gap of any length (a paused
    camera), as the timeline and the duration show it: so the first frame counts its 10 hours on screen (only
    a jump the reader makes, a joined MPEG-TS/PS recording's, counts one frame interval)."""
    frames, _ = clips.pan(2)
    path = clips.write_clip(clip_dir / "ten_hours.mkv", frames, times=[0.0, 36000.0])
    code, out, _ = run_cli(capsys, "predict", str(path), "--format", "json")
    assert code == 0
    (entry,) = json.loads(out)
    assert entry["duration"] == pytest.approx(36000, abs=1)
    assert [f["time"] for f in entry["frames"]] == pytest.approx([0, 36000])
    assert [face["detected"] for f in entry["frames"] for face in f["faces"]] == [True, True]
    assert [t["seconds"] for t in entry["tracks"]] == pytest.approx([36000, 1 / 15], abs=1e-3)


def test_video_tab_refuses_long_clips_and_stops_at_its_limit(clip_dir: Path, monkeypatch) -> None:
    """Over the tab's limit by the header: refused before decoding. A header that understates the length (or
    has none): analysed up to the limit, then stopped, with what was found kept and the stop said."""
    import dataclasses

    import gradio as gr

    from ferhub.ui import video

    frames, _ = clips.pan(2)
    long = clips.write_clip(clip_dir / "ten_hours.mkv", frames, times=[0.0, 36000.0])
    with pytest.raises(gr.Error, match="36000 s long; this app analyses up to 120 s"):
        video.analyse_video(str(long), None)
    from ferhub.video import VideoAnalyzer

    opened = VideoAnalyzer.open

    def no_duration(self, path, **kw):
        run = opened(self, path, **kw)
        run.info = dataclasses.replace(run.info, duration=None, num_frames=None)
        return run

    monkeypatch.setattr(VideoAnalyzer, "open", no_duration)
    monkeypatch.setattr(video, "MAX_SECONDS", 0)  # a 2 s clip is over a 0 s limit after its first frames
    path, _ = make(clip_dir, "pan")
    _, _, rows, _, status = video.analyse_video(str(path), None, fps=2, progress=lambda *a, **k: None)
    assert "Stopped at 0 s, this app's limit" in status and status.startswith("1 frames analysed")
    assert len(rows) == 1


def test_video_tab_errors_are_one_clear_message(tmp_path: Path) -> None:
    import gradio as gr

    from ferhub.ui import video

    picture = tmp_path / "holiday.mp4"
    clips.photo("astronaut").save(picture, format="JPEG")
    with pytest.raises(gr.Error, match="still picture, not a video: use the Classify tab"):
        video.analyse_video(str(picture), None)
    with pytest.raises(gr.Error, match="Upload a video first"):
        video.analyse_video(None, None)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x20ftypisom" + b"\x00" * 200)
    with pytest.raises(gr.Error) as error:
        video.analyse_video(str(broken), None)
    assert str(tmp_path) not in error.value.message  # no server path shown to a visitor


def test_a_model_giving_nan_ends_that_video_with_its_error_and_the_next_is_analysed(
    clip_dir: Path, capsys, tmp_path: Path
) -> None:
    """A label read from NaN probabilities is the first class ("angry" on every face); raising from the
    classifier instead ended the whole command, the video marked interrupted and the next never read."""
    import shutil

    import torch

    import ferhub
    from ferhub import hub

    model = ferhub.create_model("test_tiny", labels=FER7).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3e38)  # finite, so saved and loaded, but the logits overflow to NaN
    folder = hub.save(model, tmp_path / "overflowing")
    good, _ = make(clip_dir, "pan")
    second = shutil.copy(good, tmp_path / "second.mp4")
    code, out, err = run_cli(capsys, "predict", str(good), str(second), "--model", str(folder))
    entries = json.loads(out)
    assert [Path(e["path"]).name for e in entries] == ["pan.mp4", "second.mp4"]
    for entry in entries:
        assert "gave NaN or infinite probabilities for a face at 0.00 s" in entry["error"]
        assert not entry.get("interrupted") and not any(f["faces"] for f in entry["frames"])
    # said for each video, and (as no input gave a result) exit 1, as for damaged videos
    assert code == 1 and err.count("gave NaN or infinite probabilities") == 2
    # the kept frames are said once, with their count (the error's own text said it a second time)
    assert err.count("frames before it are kept") == 2 and "the 0 frames before it are kept" in err


@pytest.mark.parametrize(
    ("name", "times"),
    [
        # a picture held 3 s (a screen or call recording where nothing moves): both people were shown the
        # whole 5 s, not 2 s (the held frame counted one frame interval, as a timestamp jump does)
        ("held", [i / 15 for i in range(15)] + [4 + i / 15 for i in range(15)]),
        # a frame held 9 s, the next one 60 s (a paused camera): the 9 s hold once made the next gap no jump
        (
            "gap_after_hold",
            [i / 15 for i in range(15)] + [9 + 14 / 15] + [69 + (14 + i) / 15 for i in range(14)],
        ),
        # a still of 10.5 s (a slide in a screen recording) counts its length, as one of 9.5 s does
        ("long_still", [i / 15 for i in range(15)] + [10.5 + (14 + i) / 15 for i in range(15)]),
    ],
)
def test_mp4_gaps_of_any_length_count_as_the_reader_keeps_them(
    clip_dir: Path, capsys, name: str, times: list[float]
) -> None:
    """An MP4's reader keeps a gap of any length as real time (the timeline and the annotated copy show the
    frame that long): so do the on-screen seconds, to the last frame's end. A 10 s cap counted a 10.5 s still
    one frame interval (and a 9.5 s one its length), and a 9 s held frame raised the cap for the next gap to
    90 s (so a 60 s gap counted, where a 30 s one alone did not)."""
    frames, _ = clips.leave_and_return(30, away=(30, 30))  # two faces on every frame
    path = clips.write_clip(clip_dir / f"{name}.mp4", frames, times=times)
    code, out, err = run_cli(capsys, "predict", str(path), "--format", "json")
    assert code == 0, err
    (entry,) = json.loads(out)
    assert [f["time"] for f in entry["frames"]] == pytest.approx(times, abs=1e-3)
    assert len(entry["tracks"]) == 2
    for track in entry["tracks"]:
        assert track["first_time"] == 0 and track["last_time"] == pytest.approx(times[-1], abs=1e-3)
        assert track["seconds"] == pytest.approx(times[-1] + 1 / 15, abs=0.01)


def test_summaries_learn_the_frame_interval_from_frame_steps_only() -> None:
    """A held frame's seconds are no frame interval: a jump after it counts one frame interval (not the held
    frame's 9 s); a still counts its length with no cliff at 10 s where the reader decides jumps
    (``max_gap=None``, a video); and a live stream's cap (the webcam's) stays 10 s after a held frame."""
    from ferhub.faces import Face
    from ferhub.video import TrackSummaries, VideoFace

    labels = [tuple(FER7)]
    p = np.full(len(FER7), 1 / len(FER7))
    face = VideoFace(1, Face(box=(0, 0, 10, 10), score=1.0), True, [p], [p], labels, ["m"])

    def seconds(steps: list[tuple[float, bool]], **options: Any) -> float:
        summaries = TrackSummaries(["m"], labels, 0.1, **options)
        for time, jump in steps:
            summaries.add(time, [face], jump=jump)
        (track,) = summaries.result()
        return track["seconds"]

    # 0.1 s, a 9 s hold, then a jump (a joined recording, the camera stopped), and the last frame: 0.1 s each
    for options in ({}, {"max_gap": None}):
        assert seconds([(0.0, False), (0.1, False), (9.1, False), (20.0, True)], **options) == pytest.approx(
            9.3
        )
    for hold in (9.5, 10.5, 600.0):
        assert seconds([(0.0, False), (0.1, False), (0.1 + hold, False)], max_gap=None) == pytest.approx(
            hold + 0.2
        )
    # the webcam's 10 s cap: a 60 s gap after a 9 s hold counts one frame interval, as it does on its own
    assert seconds([(0.0, False), (0.1, False), (9.1, False), (69.1, False)]) == pytest.approx(9.3)


def test_summaries_count_held_frames_and_not_jumps() -> None:
    """The seconds a frame is held (here a sad face held 3 s between happy ones) weigh in the shares; a
    jump the caller names (a joined recording, the camera stopped), or one of over 10 s (a live stream's
    cap, the default), counts one frame interval."""
    from ferhub.faces import Face
    from ferhub.video import TrackSummaries, VideoFace

    labels = [tuple(FER7)]

    def face(label: str) -> VideoFace:
        p = np.full(len(FER7), 0.01)
        p[FER7.index(label)] = 1 - 0.01 * (len(FER7) - 1)
        return VideoFace(1, Face(box=(0, 0, 10, 10), score=1.0), True, [p], [p], labels, ["m"])

    def seconds(steps: list[tuple[float, str, bool]]) -> dict[str, Any]:
        summaries = TrackSummaries(["m"], labels, 0.1)
        for time, label, jump in steps:
            summaries.add(time, [face(label)], jump=jump)
        (track,) = summaries.result()
        return track

    held = seconds([(0.0, "happy", False), (0.1, "sad", False), (3.1, "happy", False), (3.2, "happy", False)])
    assert held["seconds"] == pytest.approx(3.3) and held["dominant"] == "sad"
    assert held["share"]["sad"] == pytest.approx(3 / 3.3, abs=1e-3)
    for jump, gap in ((True, 3.0), (False, 36000.0)):
        track = seconds([(0.0, "happy", False), (0.1, "sad", False), (0.1 + gap, "happy", jump)])
        assert track["seconds"] == pytest.approx(0.3) and track["dominant"] == "happy"


def test_video_results_compare_by_value() -> None:
    """``==`` on a frame result or a face (their copies, results kept from two runs) raised numpy's "truth
    value of an array with more than one element is ambiguous"; they compare by value, as ImageResult does,
    the probability arrays element by element, whether or not the frame's picture is still there."""
    import copy
    import pickle

    from PIL import Image

    from ferhub.faces import Face
    from ferhub.video import VideoFace, VideoFrameResult

    labels = [tuple(FER7)]
    p = np.linspace(0.0, 1.0, len(FER7))

    def face(raw: np.ndarray, track_id: int = 1) -> VideoFace:
        return VideoFace(track_id, Face(box=(0, 0, 10, 10), score=1.0), True, [raw], [raw], labels, ["m"])

    frame = VideoFrameResult(3, 0.2, [face(p), face(p, 2)], Image.new("RGB", (8, 8)))
    for same in (
        copy.deepcopy(frame),
        pickle.loads(pickle.dumps(frame)),
        VideoFrameResult(3, 0.2, frame.faces),
    ):
        assert same == frame and same.faces[0] == frame.faces[0]
    changed = p.copy()
    changed[-1] += 1e-6
    assert face(changed) != face(p) and face(p, 2) != face(p)
    assert VideoFrameResult(3, 0.2, [face(changed), face(p, 2)]) != frame
    assert VideoFrameResult(4, 0.2, frame.faces) != frame and frame.faces[0] != "a face"
