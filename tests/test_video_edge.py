"""Videos whose frames are not what their first frame promised: a size change part-way (joined recordings),
non-square pixels (anamorphic DV/DVD/HDV); the annotated copy's containers; and the messages for files that
are no video at all."""

from __future__ import annotations

import fractions
import json
from pathlib import Path

import av
import clips
import numpy as np
import pytest
from cli_run import run_cli
from PIL import Image

from ferhub.errors import VideoDecodeError
from ferhub.videoio import NotAVideoError, VideoWriter, open_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def diff(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray) -> float:
    """Mean absolute difference of two RGB pictures of one size, in 0-255 levels."""
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


def resolution_change(path: Path, frames: list[np.ndarray], switch: int) -> Path:
    """An MPEG-TS with one H.264 stream whose frames are 320x240 up to ``switch``, then the same pictures at
    640x480 (a second encoder's packets on the same stream, as joined TS segments carry them)."""
    tb = fractions.Fraction(1, 15)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = clips.W, clips.H, "yuv420p"
        stream.codec_context.time_base = tb
        big = av.CodecContext.create("libx264", "w")
        big.width, big.height, big.pix_fmt, big.time_base, big.framerate = 640, 480, "yuv420p", tb, 15
        for i, a in enumerate(frames):
            if i < switch:
                frame = av.VideoFrame.from_ndarray(a, "rgb24")
                frame.pts = i
                packets = list(stream.encode(frame))
            else:
                frame = av.VideoFrame.from_ndarray(np.asarray(Image.fromarray(a).resize((640, 480))), "rgb24")
                frame.pts = i
                packets = list(big.encode(frame))
            if i == switch - 1:
                packets += list(stream.encode())
            for p in packets:
                p.stream = stream
                p.time_base = p.time_base or tb
                out.mux(p)
        for p in big.encode():
            p.stream = stream
            out.mux(p)
    return path


@pytest.fixture(scope="module")
def reschange(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    frames, _ = clips.pan(10)
    return resolution_change(tmp_path_factory.mktemp("res") / "joined.ts", frames, 5), frames


def test_a_size_change_part_way_is_scaled_to_the_size_the_stream_opened_with(reschange) -> None:
    path, frames = reschange
    with av.open(str(path)) as c:  # the file really changes size
        assert {(f.width, f.height) for f in c.decode(video=0)} == {(320, 240), (640, 480)}
    with open_video(path) as video:
        assert (video.info.width, video.info.height) == (320, 240)
        read = list(video.frames())
    assert [f.image.size for f in read] == [(320, 240)] * 10  # the later frames were 640x480
    for f in read:  # the whole picture, not its top-left quarter
        assert diff(f.image, frames[f.index]) < 8, f.index


def test_cli_boxes_stay_in_the_declared_frame_and_the_annotated_copy_keeps_the_whole_picture(
    capsys, tmp_path, reschange
) -> None:
    path, frames = reschange
    annotated = tmp_path / "joined.mp4"
    argv = ["predict", str(path), "--detect-every", "1", "--annotate", str(annotated)]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    (entry,) = json.loads(out)
    boxes = [face["box"] for frame in entry["frames"] for face in frame["faces"]]
    assert len(boxes) == 10 and all(x2 <= 320 and y2 <= 240 for _, _, x2, y2 in boxes)
    assert len(entry["tracks"]) == 1  # one person, one id across the change
    with av.open(str(annotated)) as c:
        written = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(written) == 10
    # below the face box nothing is drawn: the picture there is the source's
    assert diff(written[8][200:], frames[8][200:]) < 8


def anamorphic(path: Path, frames: list[np.ndarray], rotation: int = 0) -> Path:
    """``frames`` (320x240 as displayed) stored squeezed to 160x240 with 2:1 pixels, as DV and HDV do."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 160, 240, "yuv420p"
        stream.codec_context.sample_aspect_ratio = fractions.Fraction(2, 1)
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for i, a in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.asarray(Image.fromarray(a).resize((160, 240))), "rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, 15)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def test_non_square_pixels_are_read_as_displayed(tmp_path) -> None:
    frames, _ = clips.crossing(6)
    path = anamorphic(tmp_path / "dv.mp4", frames)
    with av.open(str(path)) as c:
        assert c.streams.video[0].sample_aspect_ratio == 2
    with open_video(path) as video:
        info = video.info
        read = list(video.frames())
    assert (info.width, info.height, info.source_width, info.source_height) == (320, 240, 160, 240)
    assert [f.image.size for f in read] == [(320, 240)] * 6  # the display shape, not the stored 160x240
    assert all(diff(f.image, frames[f.index]) < 12 for f in read)
    with open_video(path, max_side=160) as video:  # downscaled as displayed, the aspect kept
        assert (video.info.width, video.info.height) == (160, 120)
        assert next(video.frames()).image.size == (160, 120)


def test_square_pixels_keep_their_size(tmp_path) -> None:
    frames, _ = clips.pan(3)
    with open_video(clips.write_clip(tmp_path / "plain.mp4", frames)) as video:
        assert (video.info.width, video.info.height) == (320, 240)
        assert [f.image.size for f in video.frames()] == [(320, 240)] * 3


def test_the_writer_scales_a_frame_of_another_size_instead_of_cropping_it(tmp_path) -> None:
    frames, _ = clips.pan(2)
    big = np.asarray(Image.fromarray(frames[1]).resize((640, 480)))
    with VideoWriter(tmp_path / "out.mp4", 320, 240, 15) as out:
        out.write(frames[0], 0.0)
        out.write(Image.fromarray(big), 1 / 15)
        out.write(big, 2 / 15)  # arrays too
    with av.open(str(out.path)) as c:
        written = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert [w.shape for w in written] == [(240, 320, 3)] * 3
    assert diff(written[1], frames[1]) < 8 and diff(written[2], frames[1]) < 8


@pytest.mark.parametrize("suffix", [".mp4", ".m4v", ".mov", ".mkv"])
def test_every_container_the_writer_takes_plays_back_in_order(tmp_path, suffix) -> None:
    frames, _ = clips.pan(8)
    times = [0.0, 0.1, 0.2, 0.5, 0.55, 0.6, 1.0, 1.1]  # variable frame rate
    with VideoWriter(tmp_path / f"out{suffix}", clips.W, clips.H, 15) as out:
        for a, t in zip(frames, times):
            out.write(a, t)
    with av.open(str(out.path)) as c:
        read = [round(float(f.pts * f.time_base), 3) for f in c.decode(video=0)]
    assert read == times


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
def test_the_last_frame_lasts_up_to_the_videos_end(tmp_path, suffix) -> None:
    """Frames sampled at 0.5 fps from a 2.4 s clip: the copy ends at 2.4 s, where its last frame stood for
    a whole 1 / fps past it (4 s); without an end it still does, and an end before the last frame gives it
    1 ms."""
    frames, _ = clips.pan(2)
    for end, length in ((2.4, 2.4), (None, 4.0), (1.0, 2.001)):
        out = VideoWriter(tmp_path / f"out{end}{suffix}", clips.W, clips.H, 0.5)
        out.write(frames[0], 0.0)
        out.write(frames[1], 2.0)
        out.close(end=end)
        with av.open(str(out.path)) as c:
            assert c.duration / 1e6 == pytest.approx(length, abs=1e-3), end
            assert [float(f.pts * f.time_base) for f in c.decode(video=0)] == [0.0, 2.0]


def test_the_annotated_copy_lasts_as_long_as_the_sampled_video(tmp_path, capsys) -> None:
    """``--fps 1`` on a 1.4 s clip (the frames at 0 and 1 s analysed): the copy the CLI and the Video tab
    write lasts 1.4 s, as the clip does; its last frame stood for a whole second (2 s)."""
    clip = clips.write_clip(tmp_path / "pan21.mp4", clips.pan(21)[0])  # 21 frames at 15 fps: 1.4 s
    annotated = tmp_path / "pan21.annotated.mp4"
    code, out, err = run_cli(capsys, "predict", str(clip), "--fps", "1", "--annotate", str(annotated))
    assert code == 0, err
    (entry,) = json.loads(out)
    assert [f["time"] for f in entry["frames"]] == pytest.approx([0.0, 1.0], abs=1e-3)
    with av.open(str(annotated)) as c:
        assert c.duration / 1e6 == pytest.approx(1.4, abs=1e-3)

    from ferhub.ui import video

    copy, *_ = video.analyse_video(str(clip), None, 1, 0.3, progress=lambda *a, **k: None)
    with av.open(str(copy)) as c:
        assert c.duration / 1e6 == pytest.approx(1.4, abs=1e-3)


def test_no_track_or_annotated_copy_outlasts_a_header_shorter_than_the_frames(tmp_path, capsys) -> None:
    """A variable-rate MP4 with B-frames (libx264's default preset, as phones write): its header says 3.317 s
    where the frames run to 3.617 s; sampled at 1 fps, the last frame was credited (and the copy held) to
    3.617 s, past the ``duration`` the same results give."""
    path = tmp_path / "vfr_bframes.mp4"
    image = av.VideoFrame.from_image(Image.fromarray(clips.compose([("astronaut", 160, 120, 130)])))
    with av.open(str(path), "w") as c:
        stream = c.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for i in range(30):  # 15 frames 50 ms apart, then 15 frames 200 ms apart
            frame = image.reformat(format="yuv420p")
            frame.pts, frame.time_base = (
                round((i * 0.05 if i < 15 else 0.75 + (i - 15) * 0.2) * 1000),
                stream.codec_context.time_base,
            )
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)
    annotated = tmp_path / "copy.mp4"
    code, out, err = run_cli(capsys, "predict", str(path), "--fps", "1", "--annotate", str(annotated))
    assert code == 0, err
    (entry,) = json.loads(out)
    duration = entry["duration"]
    assert [t["seconds"] for t in entry["tracks"]] and all(
        t["seconds"] <= duration + 1e-3 for t in entry["tracks"]
    )
    with av.open(str(annotated)) as c:
        assert c.duration / 1e6 <= duration + 1e-3


@pytest.mark.parametrize("name", ["out.avi", "out.webm", "out.gif", "out"])
def test_the_writer_refuses_a_container_it_cannot_write_before_making_a_file(tmp_path, name) -> None:
    """AVI once took H.264 with a 1 ms clock: 1000 fps in its header, frames decoded out of order."""
    with pytest.raises(ValueError, match=r"name it \.mp4, \.m4v, \.mov or \.mkv"):
        VideoWriter(tmp_path / name, clips.W, clips.H, 15)
    assert list(tmp_path.iterdir()) == []


def test_a_picture_named_mp4_says_once_that_it_is_classified_as_a_photo(capsys, tmp_path) -> None:
    photo = tmp_path / "photo.mp4"
    clips.photo("astronaut").save(photo, format="JPEG")
    with pytest.raises(NotAVideoError) as caught:
        open_video(photo)
    assert str(caught.value) == f"{photo}: a still picture (jpeg_pipe), not a video"
    code, out, err = run_cli(capsys, "predict", str(photo))
    assert code == 0 and json.loads(out)[0]["kind"] == "image"
    assert err.strip() == (
        f"ferhub predict: {photo}: a still picture (jpeg_pipe), not a video; classifying it as a photo"
    )


def test_a_container_with_no_streams_says_so(tmp_path) -> None:
    """A recording stopped before its first frame: an MP4 holding no stream at all, not an audio file."""
    empty = tmp_path / "zero.mp4"
    with av.open(str(empty), "w") as out:
        stream = out.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = clips.W, clips.H, "yuv420p"
        out.start_encoding()
        out.mux(stream.encode())
    with pytest.raises(VideoDecodeError) as caught:
        open_video(empty)
    assert str(caught.value).startswith(f"{empty}: contains no streams at all (empty or zero-length video);")


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_sampling_keeps_every_nth_frame_of_millisecond_timestamps(tmp_path, suffix) -> None:
    """Timestamps in milliseconds put frame 5 of 15 fps at 0.333 s, short of 1/3 s: sampling at 3 fps kept
    frames 0, 6, 10, 15, 21, ... (uneven gaps, frames left undetected); now every 5th. A container without a
    frame count (MKV) says none (``null``), as documented; progress bars get an estimate."""
    frames = [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(30)]
    path = clips.write_clip(tmp_path / f"clip{suffix}", frames, fps=15)
    with open_video(path) as video:
        kept = [f.index for f in video.frames(fps=3)]
        info = video.info
    assert kept == list(range(0, 30, 5))
    if suffix == ".mkv":
        assert info.num_frames is None and info.to_dict()["num_frames"] is None
        assert info.expected_frames == 30
    else:
        assert info.num_frames == info.expected_frames == 30


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"detect_every": 0}, "detect_every must be 1 or more frames, got 0"),
        ({"detect_every": "3"}, "detect_every must be an int, got str '3'"),
        ({"detect_every": 2.5}, "detect_every must be an int, got float 2.5"),
        ({"detect_every": True}, "detect_every must be an int, got bool True"),
        ({"fps": -1}, r"fps must be a positive number \(None: every frame\), got -1"),
        ({"fps": "10"}, "fps must be a number, got str '10'"),
        ({"smooth": None}, r"smooth must be 0 \(off\) or a positive number of seconds, got None"),
        ({"smooth": "0.3"}, "smooth must be a number, got str '0.3'"),
        ({"max_side": 10}, "max_side must be at least 64 pixels, got 10"),
        ({"max_side": "1920"}, "max_side must be a number, got str '1920'"),
        ({"batch_frames": 0}, "batch_frames must be 1 or more frames, got 0"),
        ({"tracker": [1]}, "tracker must be a dict of FaceTracker options, got list"),
        (
            {"tracker": {"max_lostt": 2}},
            r"tracker takes FaceTracker's options \(max_lost, .*\), got max_lostt",
        ),
        ({"tracker": {"max_lost": "2"}}, "tracker option max_lost must be a number of 0 or more, got '2'"),
        ({"tracker": {"coast": None}}, "tracker option coast must be a number of 0 or more, got None"),
        (
            {"tracker": {"velocity_decay": float("nan")}},
            "tracker option velocity_decay must be a number of 0 or more, got nan",
        ),
    ],
)
def test_a_video_setting_that_cannot_work_is_a_video_setting_error(setting: dict, message: str) -> None:
    """Each was a plain ValueError, or Python's bare TypeError ("'<' not supported between instances of 'str'
    and 'int'"), or (batch_frames, tracker) taken quietly or failing at open(): ``except FerhubError`` missed
    them all."""
    import ferhub
    from ferhub.video import VideoAnalyzer

    with pytest.raises(ferhub.VideoSettingError, match=f"^{message}$") as e:
        VideoAnalyzer(None, **setting)
    assert isinstance(e.value, ValueError) and isinstance(e.value, ferhub.FerhubError)
    analyzer = VideoAnalyzer(None, detect_every=np.int64(2), fps=np.float32(5), tracker={"max_lost": 1.0})
    assert (analyzer.detect_every, analyzer.fps, analyzer.tracker_options) == (2, 5, {"max_lost": 1.0})


def test_numpy_settings_leave_the_header_plain_json(tmp_path: Path) -> None:
    """numpy numbers are accepted as settings (a config's np.float32 fps): header() carried them as they
    were, and json.dumps refuses numpy's scalars ("Object of type float32 is not JSON serializable")."""
    from types import SimpleNamespace

    from ferhub.video import VideoAnalyzer

    frames, _ = clips.pan(3)
    clip = clips.write_clip(tmp_path / "pan.mp4", frames)
    predictor = SimpleNamespace(names=["m"], configs=[SimpleNamespace(labels=("happy", "sad"))])
    analyzer = VideoAnalyzer(
        predictor, detect_every=np.int64(2), fps=np.float32(5), smooth=np.float32(0.5), max_side=np.int64(640)
    )
    run = analyzer.open(clip)
    try:
        header = json.loads(json.dumps(run.header(), allow_nan=False))
    finally:
        run.close()
    assert (header["sample_fps"], header["detect_every"], header["smoothing_seconds"]) == (5.0, 2, 0.5)


def test_a_max_side_under_the_detectors_floor_is_refused() -> None:
    """As FaceDetector and the CLI's --max-side (test_cli_predict_args) refuse it, at the one floor they
    share: 0 or a negative value decoded 2x2 frames, in which no face was ever found, without a word."""
    from ferhub.faces import MIN_MAX_SIDE, FaceDetector
    from ferhub.video import VideoAnalyzer

    for bad in (0, -5, MIN_MAX_SIDE - 1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"max_side must be at least {MIN_MAX_SIDE} pixels, got"):
            VideoAnalyzer(None, max_side=bad)
    assert VideoAnalyzer(None, max_side=MIN_MAX_SIDE).max_side == MIN_MAX_SIDE == 64
    # a number of pixels, as FaceDetector takes it: 1280.0 (worked out by the caller) worked before the check
    assert VideoAnalyzer(None, max_side=1280.0).max_side == FaceDetector(max_side=1280.0).max_side == 1280
    with pytest.raises(ValueError, match=f"max_side must be at least {MIN_MAX_SIDE} pixels"):
        FaceDetector(max_side=MIN_MAX_SIDE - 1)
