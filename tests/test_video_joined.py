"""Recordings joined byte-wise (``cat a.ts b.ts``, as TS recordings and DVD VOBs are joined): the second one's
timestamps start again. Its frames go on after the first recording's (they were all given the first one's last
time, and sampled with ``--fps`` they were all skipped), the join is a cut, and the video is as long as both.
A timestamp going back by a frame or less, or one alone (broken timestamps, B-frames in AVI), is still only
held at the time before it."""

from __future__ import annotations

import fractions
import json
from pathlib import Path

import av
import clips
import pytest
from cli_run import run_cli

from ferhub.videoio import open_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def join(path: Path, *parts: Path) -> Path:
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    return path


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s 320x240 recording of one face panning, then a 2 s 640x480 one of two people crossing, its
    timestamps from 0 again."""
    d = tmp_path_factory.mktemp("joined")
    first = clips.write_ts(d / "a.ts", clips.pan(30)[0])
    second = clips.write_ts(d / "b.ts", clips.crossing(30)[0], size=(640, 480))
    return join(d / "joined.ts", first, second)


def test_the_second_recording_goes_on_after_the_first(joined: Path) -> None:
    with av.open(str(joined)) as c:  # the file's timestamps really start again
        pts = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    assert len(pts) == 60 and pts[30] < pts[29] - 1.5
    with open_video(joined) as video:
        assert video.info.duration == pytest.approx(4.0, abs=0.01)  # known before the first frame
        read = list(video.frames())
        assert video.end == pytest.approx(4.0, abs=1e-3) and video.restarts == 1
    assert [f.index for f in read] == list(range(60))
    assert [f.time for f in read] == pytest.approx([i / 15 for i in range(60)], abs=1e-3)
    assert [f.index for f in read if f.restarted] == [30]
    with open_video(joined) as video:  # sampled, the second recording is sampled as the first
        read = list(video.frames(fps=5))
        assert video.info.duration == pytest.approx(4.0, abs=1e-3)
    assert [f.index for f in read] == list(range(0, 60, 3))
    assert [f.time for f in read] == pytest.approx([i / 5 for i in range(20)], abs=1e-3)
    assert [f.index for f in read if f.restarted] == [30]


@pytest.mark.parametrize(("back", "times"), [(1, [*range(10), 9, 9, *range(10, 18)]), (3, range(20))])
def test_a_timestamp_back_by_a_frame_is_held_and_further_back_starts_another_recording(
    tmp_path: Path, back: int, times
) -> None:
    """The second part's first frame is ``back`` frames before the first part's last one. One frame: the
    clock holds until the timestamps pass it (as ever). Three: another recording, which goes on a frame after
    the last, so every frame keeps its own time."""
    frames, _ = clips.pan(20)
    first = clips.write_ts(tmp_path / "a.ts", frames[:10])  # 0 .. 9/15 s
    second = clips.write_ts(tmp_path / "b.ts", frames[10:], start=(9 - back) / 15)
    path = join(tmp_path / "joined.ts", first, second)
    with open_video(path) as video:
        read = list(video.frames())
        assert video.restarts == (back > 1)
        if back > 1:  # as long as both parts
            assert video.info.duration == video.end == pytest.approx(20 / 15, abs=1e-3)
    assert [f.time for f in read] == pytest.approx([t / 15 for t in times], abs=1e-3)
    assert [f.index for f in read if f.restarted] == ([10] if back > 1 else [])


def test_stray_timestamps_and_avi_b_frames_start_no_recording(tmp_path: Path) -> None:
    """One frame stamped far back between two that go on (a one-frame recording joined in between), and H.264
    with B-frames in an AVI, whose frames get their packets' decode-order stamps (up to 3 frames back, one
    frame at a time): each of those frames is held at the time before it, and the clock is not moved on."""
    frames, _ = clips.pan(21)
    path = join(
        tmp_path / "stray.ts",
        clips.write_ts(tmp_path / "a.ts", frames[:10]),
        clips.write_ts(tmp_path / "b.ts", frames[10:11]),  # at 0 s
        clips.write_ts(tmp_path / "c.ts", frames[11:], start=10 / 15),
    )
    with open_video(path) as video:
        read = list(video.frames())
        assert video.restarts == 0
    assert [f.time for f in read] == pytest.approx(
        [t / 15 for t in [*range(10), 9, *range(10, 20)]], abs=1e-3
    )
    assert not any(f.restarted for f in read)

    avi = tmp_path / "bframes.avi"
    with av.open(str(avi), "w") as c:
        stream = c.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = clips.W, clips.H, "yuv420p"
        stream.options = {"preset": "veryfast"}  # B-frames, in a pyramid
        for i, a in enumerate(clips.pan(60)[0]):
            frame = av.VideoFrame.from_ndarray(a, "rgb24")
            frame.pts, frame.time_base = i, fractions.Fraction(1, 15)
            c.mux(stream.encode(frame))
        c.mux(stream.encode())
    with av.open(str(avi)) as c:
        stamps = [float(f.pts * f.time_base) for f in c.decode(video=0)]
    held = [max(stamps[: i + 1]) for i in range(len(stamps))]  # never backwards
    assert max(h - s for h, s in zip(held, stamps)) > 2.5 / 15  # out of order by more than 2 frames
    with open_video(avi) as video:
        read = list(video.frames())
        assert video.restarts == 0
    start = stamps[0] - read[0].time  # the stream's start time, taken off
    assert [f.time for f in read] == pytest.approx([h - start for h in held], abs=1e-3)


def test_the_join_is_a_cut_where_the_picture_goes_on(tmp_path: Path) -> None:
    """One shot recorded in two parts: no cut in the picture, but faces are detected on the second part's
    first frame (not carried over the join), and the face, still in its place, keeps its id."""
    from ferhub.predict import Predictor
    from ferhub.video import VideoAnalyzer

    frames, _ = clips.pan(26)
    path = join(
        tmp_path / "joined.ts",
        clips.write_ts(tmp_path / "a.ts", frames[:13]),
        clips.write_ts(tmp_path / "b.ts", frames[13:]),
    )
    run = VideoAnalyzer(Predictor(device="cpu"), detect_every=10).open(path)
    results = [(f.index, f.time, [(x.track_id, x.detected) for x in f.faces]) for f in run]
    assert run.error is None
    assert [t for _, t, _ in results] == pytest.approx([i / 15 for i in range(26)], abs=1e-3)
    # every 10th frame and every 0.3 s: 0, 5, 10, 15, ... were detected; 13 is the cut's
    detected = [i for i, _, faces in results if faces and all(d for _, d in faces)]
    assert 13 in detected and 14 not in detected
    assert {tid for _, _, faces in results for tid, _ in faces} == {1}
    (track,) = run.summaries()
    assert track["seconds"] == pytest.approx(26 / 15, abs=1e-3)


def test_cli_and_video_tab_analyse_both_recordings(joined: Path, tmp_path: Path, capsys) -> None:
    """Sampled at 5 fps (the Video tab's default), the second recording and its two people were missing,
    with no error; at every frame they were all at one time."""
    annotated = tmp_path / "joined.annotated.mp4"
    code, out, err = run_cli(capsys, "predict", str(joined), "--fps", "5", "--annotate", str(annotated))
    assert code == 0, err
    (entry,) = json.loads(out)
    assert entry["error"] is None and entry["duration"] == pytest.approx(4.0, abs=0.01)
    assert [f["frame"] for f in entry["frames"]] == list(range(0, 60, 3))
    assert [f["time"] for f in entry["frames"]] == pytest.approx([i / 5 for i in range(20)], abs=1e-3)
    first = [t for t in entry["tracks"] if t["first_time"] < 2]
    second = [t for t in entry["tracks"] if t["first_time"] >= 2]
    assert len(first) == 1 and first[0]["seconds"] == pytest.approx(2.0, abs=1e-3)
    assert len(second) == 2 and max(t["seconds"] for t in second) == pytest.approx(2.0, abs=1e-3)
    assert all(t["last_time"] == pytest.approx(3.8, abs=1e-3) for t in second)
    with av.open(str(annotated)) as c:
        assert c.duration / 1e6 == pytest.approx(4.0, abs=1e-3)
        assert [round(float(f.pts * f.time_base), 3) for f in c.decode(video=0)] == pytest.approx(
            [i / 5 for i in range(20)], abs=1e-3
        )

    from ferhub.ui import video

    copy, *_, status = video.analyse_video(str(joined), None, 5, 0.3, progress=lambda *a, **k: None)
    assert "20 frames analysed (5 per second) of joined.ts: 3 face track(s)." in status
    with av.open(str(copy)) as c:
        assert c.duration / 1e6 == pytest.approx(4.0, abs=1e-3)
