"""Truncated videos: a file cut off part-way ends as cleanly as a whole one in FFmpeg, so only its header
tells them apart. The frames before the cut are kept and the result says where it ends; whole clips of every
kind (variable frame rate, B-frames, AVI, audio that runs longer) are never flagged."""

from __future__ import annotations

import json
from pathlib import Path

import clips
import numpy as np
import pytest
from cli_run import run_cli

from ferhub.errors import VideoDecodeError
from ferhub.videoio import VideoWriter, open_video, shortfall

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def faststart(src: Path, dst: Path) -> Path:
    """``src`` remuxed with its index at the front (as phones and ferhub's own writer do): cut anywhere, the
    file still opens and announces its full length."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:  # the demuxer's final flush packet carries no data
                packet.stream = stream
                out.mux(packet)
    return dst


def cut(src: Path, dst: Path, share: float) -> Path:
    """The first ``share`` of ``src``'s bytes, as an interrupted download or copy leaves it."""
    data = src.read_bytes()
    dst.write_bytes(data[: round(len(data) * share)])
    return dst


def decode(path: Path, **kwargs) -> tuple[list[int], str | None]:
    """The indices of the frames read, and the error that ended the reading (``None``: none)."""
    indices: list[int] = []
    with open_video(path) as video:
        try:
            for frame in video.frames(**kwargs):
                indices.append(frame.index)
        except VideoDecodeError as e:
            return indices, str(e)
    return indices, None


@pytest.fixture(scope="module")
def truncated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A whole 30-frame faststart MP4 and its first 60% of bytes."""
    d = tmp_path_factory.mktemp("truncated")
    frames, _ = clips.pan(30)
    whole = faststart(clips.write_clip(d / "plain.mp4", frames), d / "whole.mp4")
    return whole, cut(whole, d / "cut.mp4", 0.6)


def test_a_truncated_mp4_keeps_its_frames_and_says_where_it_ends(truncated: tuple[Path, Path]) -> None:
    whole, part = truncated
    assert decode(whole) == (list(range(30)), None)
    indices, error = decode(part)
    assert 0 < len(indices) < 25 and indices == list(range(len(indices)))  # every frame before the cut
    assert error == (
        f"{part}: truncated or corrupt video: it ends after {len(indices)} of the 30 frames its header"
        f" announces, at {len(indices) / 15:.1f} s of 2.0 s"
    )
    sampled, error = decode(part, fps=5)  # sampling skips frames but still reads to the end
    assert sampled and error is not None and f"after {len(indices)} of the 30 frames" in error


def test_a_truncated_mkv_is_caught_by_its_duration(tmp_path: Path) -> None:
    """Matroska has no frame count: its duration says the file is cut."""
    frames, _ = clips.pan(30)
    full = clips.write_clip(tmp_path / "full.mkv", frames)
    indices, error = decode(cut(full, tmp_path / "part.mkv", 0.5))
    assert indices and error is not None
    assert f"it ends after {len(indices)} frames, at " in error
    assert error.endswith(" s of the 2.0 s its header announces")


def test_whole_clips_of_every_kind_are_never_called_truncated(tmp_path: Path) -> None:
    """Headers that are only approximately right: none of these is short of anything."""
    import av

    frames, _ = clips.pan(12)
    times = [0.0, 0.1, 0.5, 0.55, 2.0, 2.05, 2.1, 2.15, 2.2, 2.9, 3.0, 3.05]  # variable frame rate
    made = [
        clips.write_clip(tmp_path / "vfr.mov", frames, times=times, rotation=90),
        clips.write_clip(tmp_path / "vfr.mkv", frames, times=times),
        clips.write_clip(tmp_path / "vfr.webm", frames, times=times, codec="libvpx"),
        clips.write_clip(tmp_path / "ten_hours.mkv", frames[:2], times=[0.0, 36000.0]),
        clips.write_clip(tmp_path / "nobody.avi", frames[:6], codec="mpeg4"),  # "400 frames" in its header
        clips.write_clip(tmp_path / "one.mp4", frames[:1]),
    ]
    for suffix in ("mp4", "mkv"):  # ferhub's own writer: B-frames, millisecond timestamps
        with VideoWriter(tmp_path / f"annotated.{suffix}", clips.W, clips.H, 20) as out:
            for frame, t in zip(frames, times):
                out.write(frame, t)
        made.append(out.path)
    longer = tmp_path / "audio_longer.mkv"  # the container lasts 5 s, its 12 video frames 0.8 s
    with av.open(str(longer), "w") as c:
        video, audio = c.add_stream("libx264", rate=15), c.add_stream("aac", rate=8000)
        video.width, video.height, video.pix_fmt = clips.W, clips.H, "yuv420p"
        for i, a in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(a, "rgb24")
            vf.pts = i
            c.mux(video.encode(vf))
        c.mux(video.encode())
        for i in range(40):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 8000, i * 1024
            c.mux(audio.encode(af))
        c.mux(audio.encode())
    made.append(longer)
    for path in made:
        indices, error = decode(path)
        assert indices and error is None, path


@pytest.mark.parametrize(
    ("stream", "announced", "flagged"),
    [
        ((58, 3.87, 1 / 15), (60, 4.0), False),  # the last frames lost by the encoder: rounding
        ((20, 1.33, 1 / 15), (60, 4.0), True),  # cut at a third
        ((6, 0.4, 1 / 15), (400, 0.4), False),  # an AVI counting milliseconds as frames: the time is whole
        ((5, 2.07, 0.5), (5, 3.5), False),  # the count is whole, the last frame shown long
        ((190, 12.7, 1 / 15), (None, 13.0), False),  # Matroska, no count: within 5% of its duration
        ((100, 6.7, 1 / 15), (None, 13.0), True),
        ((50, 2.0, 1 / 25), (100, None), True),  # a count and no duration
        ((98, 3.9, 1 / 25), (100, None), False),
    ],
)
def test_only_a_clear_shortfall_counts(stream: tuple, announced: tuple, flagged: bool) -> None:
    """``stream``: frames read, the seconds they cover, their spacing; ``announced``: the header's count and
    duration."""
    assert (shortfall(*stream, *announced) is not None) == flagged


def test_cli_and_app_keep_the_frames_and_say_the_file_is_cut(truncated: tuple[Path, Path], capsys) -> None:
    _, part = truncated
    code, out, err = run_cli(capsys, "predict", str(part), "--format", "json")
    assert code == 0  # the frames before the cut are a result (as for a decoding error part-way)
    (kept,) = json.loads(out)
    n = len(kept["frames"])
    assert 0 < n < 25 and kept["num_frames"] == 30 and len(kept["tracks"]) == 1
    assert f"it ends after {n} of the 30 frames" in kept["error"]
    (line,) = err.splitlines()
    assert line.startswith(f"ferhub predict: {part}: truncated or corrupt video: it ends after {n} of")
    assert line.endswith(f"; the {n} frames before it are kept")
    code, out, _ = run_cli(capsys, "predict", str(part), "--format", "table")
    assert code == 0 and "ERROR" in out and "truncated or corrupt video" in out

    from ferhub.ui import video

    *_, status = video.analyse_video(str(part), None, fps=5, progress=lambda *a, **k: None)
    assert "The file is damaged part-way; results up to there are kept (truncated or corrupt video:" in status
    assert str(part.parent) not in status  # no server path shown to a visitor


def segment(src: Path, dst: Path, after: float) -> Path:
    """The packets of ``src`` from its first keyframe at or after ``after`` seconds, copied with their
    timestamps (ffmpeg's segment muxer and ``-c copy -copyts`` cuts leave files like it)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        started = False
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is None:
                continue
            started = started or (packet.is_keyframe and packet.pts * packet.time_base >= after)
            if started:
                packet.stream = stream
                out.mux(packet)
    return dst


@pytest.mark.parametrize(
    ("suffix", "codec"),
    [("mkv", "libx264"), ("webm", "libvpx"), ("wmv", "wmv2"), ("flv", "flv"), ("mp4", "libx264")],
)
def test_a_clip_whose_timestamps_start_late_is_as_long_as_its_frames(
    tmp_path: Path, suffix: str, codec: str
) -> None:
    """Timestamps from 10 s on: Matroska's and ASF's headers give 11 s, the time the stream ends, which was
    taken for its length (a whole clip called truncated "at 1.0 s of the 11.0 s its header announces"); MP4
    and FLV give the length. The frames' times start at 0 either way."""
    frames, _ = clips.pan(15)
    times = [10 + i / 15 for i in range(15)]
    path = clips.write_clip(tmp_path / f"late.{suffix}", frames, times=times, codec=codec)
    with open_video(path) as video:
        assert video.info.duration == pytest.approx(1.0, abs=0.01)
    indices, error = decode(path)
    assert indices == list(range(15)) and error is None


def test_a_segment_copied_from_a_recording_is_whole_and_a_cut_one_is_not(tmp_path: Path, capsys) -> None:
    """The second part of an MKV recording, its packets copied as they were (from 2.4 s on): the CLI gave it
    the recording's end as its duration and called it truncated; cut in half, it still is."""
    import av

    frames, _ = clips.pan(60)
    recording = tmp_path / "recording.mkv"
    with av.open(str(recording), "w") as c:
        s = c.add_stream("libx264", rate=15)
        s.width, s.height, s.pix_fmt = clips.W, clips.H, "yuv420p"
        s.options = {"preset": "ultrafast", "g": "12"}
        for a in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")))
        c.mux(s.encode())
    part = segment(recording, tmp_path / "part2.mkv", 2.4)
    with av.open(str(part)) as c:
        assert c.start_time / 1e6 == pytest.approx(2.4, abs=0.1)
        n = sum(1 for _ in c.decode(video=0))
    code, out, err = run_cli(capsys, "predict", str(part), "--format", "json")
    (result,) = json.loads(out)
    assert code == 0 and err == "" and result["error"] is None
    assert result["duration"] == pytest.approx(n / 15, abs=0.01) and result["frames_analysed"] == n
    indices, error = decode(cut(part, tmp_path / "part2_cut.mkv", 0.5))
    assert indices and error is not None
    assert error.endswith(f" s of the {n / 15:.1f} s its header announces")


def test_a_truncated_file_sampled_has_no_track_or_copy_past_its_last_frame(tmp_path: Path, capsys) -> None:
    """Sampled at 5 fps, the last sampled frame of a cut file stood for a whole interval (0.2 s), past where
    its frames end (as its error says); so did the annotated copy. Both end with the last frame decoded."""
    import av

    frames, _ = clips.pan(30)
    part = cut(clips.write_clip(tmp_path / "full.mkv", frames), tmp_path / "part.mkv", 0.6)
    with open_video(part) as video:
        times = []
        with pytest.raises(VideoDecodeError, match="truncated"):
            for frame in video.frames():
                times.append(frame.time)
        end = video.end
    assert 0 < len(times) < 25 and end == pytest.approx(times[-1] + 1 / 15, abs=1e-3)
    annotated = tmp_path / "part.annotated.mp4"
    code, out, err = run_cli(capsys, "predict", str(part), "--fps", "5", "--annotate", str(annotated))
    assert code == 0, err
    (entry,) = json.loads(out)
    assert f"it ends after {len(times)} frames, at {end:.1f} s" in entry["error"]
    sampled = [f["time"] for f in entry["frames"]]
    assert sampled[-1] + 0.2 > end + 0.01  # a whole interval would outlast it
    (track,) = entry["tracks"]  # the face is there from the first frame to the last
    assert track["seconds"] == pytest.approx(end, abs=1e-3)
    with av.open(str(annotated)) as c:
        assert c.duration / 1e6 == pytest.approx(end, abs=1e-3)
        assert [float(f.pts * f.time_base) for f in c.decode(video=0)] == pytest.approx(sampled, abs=1e-3)
