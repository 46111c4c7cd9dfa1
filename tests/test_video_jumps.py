"""Recordings joined byte-wise whose timestamps do not start a little earlier but far away: a TS capture's
second part starting over a minute before the first (FFmpeg's 33-bit wrap correction moves it 26.5 h
forward) or after it (500 s vs 10 s). In MPEG-TS/PS, a jump forward of over 10 s, the next frame's too, is
another recording: it follows the first as a restart does (a 4 s video was 26.5 h or 8 minutes long, the
app refused it as too long, the annotated copy held one frame for hours). Smaller gaps, a low frame rate's
gaps and any gap in MP4 keep their times. And the packet pre-read that gives such a file's length before its
first frame reads a large file at a few places, not whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
import clips
import numpy as np
import pytest

import ferhub.videoio as videoio
from ferhub.cli import main
from ferhub.videoio import open_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def join(path: Path, *parts: Path) -> Path:
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    return path


@pytest.fixture(scope="module")
def far(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """2 s of one face panning, then 2 s of two people crossing (15 fps): the second's timestamps from 10 s,
    the first's from 100 s ("back", 90 s earlier) or from 10 s and 500 s ("ahead")."""
    d = tmp_path_factory.mktemp("far")
    pan, crossing = clips.pan(30)[0], clips.crossing(30)[0]
    files = {}
    for name, first, second in (("back", 100.0, 10.0), ("ahead", 10.0, 500.0)):
        a = clips.write_ts(d / f"{name}_a.ts", pan, start=first)
        b = clips.write_ts(d / f"{name}_b.ts", crossing, start=second)
        files[name] = join(d / f"{name}.ts", a, b)
    return files


def decoded_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(video=0)]


@pytest.mark.parametrize("name", ["back", "ahead"])
def test_a_recording_far_before_or_after_the_first_goes_on_after_it(far: dict[str, Path], name: str) -> None:
    pts = decoded_times(far[name])
    assert len(pts) == 60 and pts[30] - pts[29] > 400  # both jump forward, "back" by 2^33 ticks (26.5 h)
    with open_video(far[name]) as video:
        assert video.info.duration == pytest.approx(4.0, abs=0.01)  # known before the first frame
        read = list(video.frames())
        assert video.restarts == 1 and video.end == pytest.approx(4.0, abs=1e-3)
        assert video.info.duration == pytest.approx(4.0, abs=1e-3)
    assert [f.time for f in read] == pytest.approx([i / 15 for i in range(60)], abs=1e-3)
    assert [f.index for f in read if f.restarted] == [30]
    with open_video(far[name]) as video:  # sampled, the second recording is sampled as the first
        read = list(video.frames(fps=5))
    assert [f.index for f in read] == list(range(0, 60, 3))
    assert [f.index for f in read if f.restarted] == [30]


def test_a_program_stream_recording_far_ahead_goes_on_after_the_first(tmp_path: Path) -> None:
    """The same in MPEG-PS (DVD VOBs), MPEG-2 with B-frames."""
    frames = clips.pan(40)[0]
    path = join(
        tmp_path / "joined.vob",
        clips.write_vob(tmp_path / "a.vob", frames[:20], start=1.0),
        clips.write_vob(tmp_path / "b.vob", frames[20:], start=300.0),
    )
    assert max(b - a for a, b in zip(decoded_times(path), decoded_times(path)[1:])) > 250
    with open_video(path) as video:
        assert video.info.duration == pytest.approx(40 / 25, abs=0.01)
        read = list(video.frames())
        assert video.restarts == 1 and video.end == pytest.approx(40 / 25, abs=1e-3)
    assert [f.time for f in read] == pytest.approx([i / 25 for i in range(40)], abs=1e-3)
    # the first recording's last frame shares a PES packet, and its timestamp, with the one before it: FFmpeg
    # guesses its time from the next one, the second recording's first (299.96 s), so it may start the cut
    assert [f.index for f in read if f.restarted] in ([19], [20])


def test_gaps_that_are_no_join_keep_their_times(tmp_path: Path) -> None:
    """A TS whose timestamps jump 8 s (under 10 s: a signal lost for a moment), a TS of a frame every 3 s
    that jumps 20 s (under 10 of its steps), and an MP4 that jumps 500 s (a camera that paused): each frame
    at its own time, no restart, and the length includes the gap."""
    frames = clips.pan(20)[0]
    cases = [
        (  # 10 frames at 15 fps from 0, 10 more from 8 s
            join(
                tmp_path / "gap.ts",
                clips.write_ts(tmp_path / "g1.ts", frames[:10]),
                clips.write_ts(tmp_path / "g2.ts", frames[10:], start=8.0),
            ),
            [i / 15 for i in range(10)] + [8 + i / 15 for i in range(10)],
        ),
        (  # a frame every 3 s, then from 20 s after the last one
            join(
                tmp_path / "lapse.ts",
                clips.write_ts(tmp_path / "l1.ts", frames[:5], fps=1 / 3),
                clips.write_ts(tmp_path / "l2.ts", frames[5:10], fps=1 / 3, start=32.0),
            ),
            [3.0 * i for i in range(5)] + [32.0 + 3 * i for i in range(5)],
        ),
    ]
    mp4_times = [i / 15 for i in range(10)] + [500 + i / 15 for i in range(10)]
    cases.append((clips.write_clip(tmp_path / "pause.mp4", frames, times=mp4_times), mp4_times))
    for path, times in cases:
        with open_video(path) as video:
            length = video.info.duration
            read = list(video.frames())
            assert video.restarts == 0, path.name
        assert [f.time for f in read] == pytest.approx(times, abs=2e-3), path.name
        assert not any(f.restarted for f in read)
        assert length == pytest.approx(times[-1] - times[0], abs=3.5), path.name


def test_one_frame_far_ahead_is_held(tmp_path: Path) -> None:
    """One frame stamped 500 s ahead between two that go on (a broken timestamp, or a one-frame recording):
    held at the time before it, as one far back is; the clock was held at 500 s for the rest of the video."""
    frames, _ = clips.pan(21)
    path = join(
        tmp_path / "stray.ts",
        clips.write_ts(tmp_path / "a.ts", frames[:10]),
        clips.write_ts(tmp_path / "b.ts", frames[10:11], start=500.0),
        clips.write_ts(tmp_path / "c.ts", frames[11:], start=10 / 15),
    )
    with open_video(path) as video:
        read = list(video.frames())
        assert video.restarts == 0
        assert video.end == pytest.approx(20 / 15, abs=0.01)
    assert [f.time for f in read] == pytest.approx(
        [t / 15 for t in [*range(10), 9, *range(10, 20)]], abs=1e-3
    )
    assert not any(f.restarted for f in read)


def test_a_join_the_pre_read_misses_is_found_reading_and_is_no_truncation(
    far: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the pre-read of a large file misses a join (see _joined_length), the frames find it: the header's
    492 s (the span of both recordings' timestamps) is not the length, and reading 4 s of it is no sign of a
    truncated file."""
    monkeypatch.setattr(videoio, "_joined_length", lambda *a, **k: None)
    with open_video(far["ahead"]) as video:
        assert video.info.duration > 400
        read = list(video.frames())  # no VideoDecodeError
        assert video.restarts == 1 and video.info.duration == video.end == pytest.approx(4.0, abs=1e-3)
    assert len(read) == 60


def test_cli_and_video_tab_see_the_real_length(far: dict[str, Path], tmp_path: Path, capsys) -> None:
    """The Video tab refused the 4 s clip: "The clip is 95356 s long"; the CLI reported 95355.7 s, the second
    person's track at 95353.7 s, and the annotated copy lasted 26.5 h."""
    annotated = tmp_path / "back.annotated.mp4"
    code = main(["predict", str(far["back"]), "--fps", "5", "--annotate", str(annotated)])
    out, err = capsys.readouterr()
    assert code == 0, err
    (entry,) = json.loads(out)
    assert entry["error"] is None and entry["duration"] == pytest.approx(4.0, abs=0.01)
    assert [f["time"] for f in entry["frames"]] == pytest.approx([i / 5 for i in range(20)], abs=1e-3)
    assert max(t["last_time"] for t in entry["tracks"]) == pytest.approx(3.8, abs=1e-3)
    with av.open(str(annotated)) as c:
        assert c.duration / 1e6 == pytest.approx(4.0, abs=1e-3)

    from ferhub.ui import video

    copy, *_, status = video.analyse_video(str(far["back"]), None, 5, 0.3, progress=lambda *a, **k: None)
    assert "20 frames analysed (5 per second) of back.ts" in status
    with av.open(str(copy)) as c:
        assert c.duration / 1e6 == pytest.approx(4.0, abs=1e-3)


# -- the pre-read of a large file ----------------------------------------------------------------------


class _Counting:
    """A container that counts the packets its ``demux`` gives: the pre-read's (the reader decodes)."""

    read = 0

    def __init__(self, container) -> None:
        self._container = container

    def __getattr__(self, name: str):
        return getattr(self._container, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._container.close()

    def demux(self, *args, **kwargs):
        for packet in self._container.demux(*args, **kwargs):
            _Counting.read += 1
            yield packet


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[_Counting]:
    real = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: _Counting(real(*a, **k)))
    _Counting.read = 0
    return _Counting


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 s 640x480 TS clip at 15 fps, to repeat (about 0.3 MB)."""
    d = tmp_path_factory.mktemp("second")
    return clips.write_ts(d / "second.ts", clips.crossing(15)[0], size=(640, 480))


def test_a_large_recording_is_read_at_a_few_places(second: Path, tmp_path: Path, counted) -> None:
    """A one-recording TS of over 16 MB: the pre-read read its every packet (1 s per GB)."""
    n = 17 * 2**20 // second.stat().st_size + 1
    path = clips.repeat_ts(tmp_path / "long.ts", second, n, start=5.0)
    assert path.stat().st_size > 16 * 2**20  # read at places (videoio._READ_WHOLE_BYTES)
    with open_video(path) as video:
        assert counted.read < 0.1 * 15 * n  # of the packets
        assert video.info.duration == pytest.approx(n, abs=0.1)
        read = sum(1 for _ in video.frames(fps=1))
        assert video.restarts == 0 and read == n


@pytest.mark.parametrize(("share", "starts"), [(2 / 3, (5.0, 0.0)), (1 / 2, (10.0, 2000.0))])
def test_a_large_joined_file_is_read_whole_only_around_its_join(
    second: Path, tmp_path: Path, counted, share, starts
) -> None:
    """Two recordings joined, over 16 MB, the second from 0 (5 s before the first) or from 2000 s (after
    the first's end): the length before the first frame is that of both, reading the packets around the join
    only."""
    n = 17 * 2**20 // second.stat().st_size + 1
    lengths = round(n * share), n - round(n * share)
    parts = [
        clips.repeat_ts(tmp_path / f"{i}.ts", second, n, start=s)
        for i, (n, s) in enumerate(zip(lengths, starts))
    ]
    path = join(tmp_path / "joined.ts", *parts)
    assert path.stat().st_size > 16 * 2**20  # read at places (videoio._READ_WHOLE_BYTES)
    with open_video(path) as video:
        assert counted.read < 0.25 * 15 * sum(lengths)
        assert video.info.duration == pytest.approx(sum(lengths), abs=1e-3)
        times = [f.time for f in video.frames(fps=1)]
        assert video.restarts == 1 and video.end == pytest.approx(sum(lengths), abs=1e-3)
    assert times == pytest.approx(list(range(sum(lengths))), abs=1e-3)


def counting(probes, read: list[int]):
    def probed(*args):
        runs = probes(*args)
        read.append(len(runs))
        return runs

    return probed


@pytest.mark.parametrize("places", [4, 16])
def test_read_at_places_a_file_gives_the_length_read_whole_does(
    far: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, places: int
) -> None:
    """Small files read at a few places, as large ones are: the same lengths as read whole (joins back, far
    back, ahead, three recordings, a recording joined on at the very end, in TS and VOB), none for one
    recording or a stray timestamp."""
    frames = clips.pan(45)[0]
    ts = [clips.write_ts(tmp_path / f"p{i}.ts", frames[15 * i : 15 * i + 15]) for i in range(3)]
    stray = join(
        tmp_path / "stray.ts",
        clips.write_ts(tmp_path / "s1.ts", frames[:20]),
        clips.write_ts(tmp_path / "s2.ts", frames[20:21], start=500.0),
        clips.write_ts(tmp_path / "s3.ts", frames[21:], start=20 / 15),
    )
    vob = join(
        tmp_path / "joined.vob",
        clips.write_vob(tmp_path / "v1.vob", frames[:30], start=50.0),
        clips.write_vob(tmp_path / "v2.vob", frames[30:], start=0.0),
    )
    cases = {
        "back": (far["back"], 4.0),
        "ahead": (far["ahead"], 4.0),
        "three": (join(tmp_path / "three.ts", *ts), 3.0),
        "at the end": (join(tmp_path / "end.ts", clips.write_ts(tmp_path / "long.ts", frames), ts[0]), 4.0),
        "vob": (vob, 45 / 25),
        "one": (clips.write_ts(tmp_path / "one.ts", frames), None),
        "stray": (stray, None),
    }
    for name, (path, length) in cases.items():
        with av.open(str(path)) as c:
            stream = c.streams.video[0]
            step = 1 / float(stream.average_rate or 25)
            whole = videoio._joined_length(str(path), stream, step)
            monkeypatch.setattr(videoio, "_READ_WHOLE_BYTES", 0)
            monkeypatch.setattr(videoio, "_PROBE_FRAMES", 0)
            monkeypatch.setattr(videoio, "_PROBES", places)
            read: list[int] = []  # how many runs of packets reading at places gives
            monkeypatch.setattr(videoio, "_probed_stamps", counting(videoio._probed_stamps, read))
            probed = videoio._joined_length(str(path), stream, step)
            monkeypatch.undo()
        assert len(read) == 1, name  # read at places
        if length is not None:  # and whole around the join
            assert read[0] > 0, name
        assert whole == (None if length is None else pytest.approx(length, abs=1e-3)), name
        assert probed == (None if length is None else pytest.approx(length, abs=1e-3)), name


def _video_then_audio(path: Path, seconds_of_audio: float) -> Path:
    """An MPEG-TS capture whose video (2 s) ends long before its audio: a broadcast going audio-only."""
    import fractions

    frames = [np.full((64, 64, 3), 40 + 5 * i, np.uint8) for i in range(30)]
    tb = fractions.Fraction(1, 90000)
    with av.open(str(path), "w", format="mpegts") as c:
        video = c.add_stream("libx264", rate=15)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        video.options = {"preset": "ultrafast"}
        video.codec_context.time_base = tb
        audio = c.add_stream("mp2", rate=48000)
        audio.bit_rate = 384000
        for i, a in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(a, format="rgb24")
            frame.pts, frame.time_base = round(i / 15 * 90000), tb
            for packet in video.encode(frame):
                c.mux(packet)
        for packet in video.encode():
            c.mux(packet)
        n = 1152
        for k in range(int(seconds_of_audio * 48000 / n)):
            samples = np.zeros((1, n * 2), np.int16)
            sound = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
            sound.sample_rate, sound.pts, sound.time_base = 48000, k * n, fractions.Fraction(1, 48000)
            for packet in audio.encode(sound):
                c.mux(packet)
        for packet in audio.encode():
            c.mux(packet)
    return path


def test_reading_at_places_stops_at_each_place_where_the_video_has_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the video's packets were checked against a place's end: where the video ends before the audio,
    each of the places read on to the end of the file (a 123 MB capture took 3.3 s to open, was 0.1 s)."""
    path = _video_then_audio(tmp_path / "audio_after.ts", 60.0)
    demuxed = [0]
    real = videoio._read_stamps

    class Counting:
        def __init__(self, container: Any) -> None:
            self.container = container

        def seek(self, *args: Any, **kwargs: Any) -> Any:
            return self.container.seek(*args, **kwargs)

        def demux(self, *streams: Any) -> Any:
            # every packet the demuxer reads counted, a stream's own or not (as demux(stream) reads them all)
            wanted = {s.index for s in streams}
            for packet in self.container.demux():
                demuxed[0] += 1
                if not wanted or packet.stream.index in wanted:
                    yield packet

    monkeypatch.setattr(videoio, "_read_stamps", lambda c, *a, **k: real(Counting(c), *a, **k))
    monkeypatch.setattr(videoio, "_READ_WHOLE_BYTES", 0)
    monkeypatch.setattr(videoio, "_PROBE_FRAMES", 0)
    with av.open(str(path)) as c:
        total = sum(1 for _ in c.demux())
        stream = c.streams.video[0]
        length = videoio._joined_length(str(path), stream, 1 / 15)
    assert length is None  # one recording
    # each place read to the next (its packets once, as a whole read would), not on to the file's end
    assert demuxed[0] < 2 * total, (demuxed[0], total)


def test_recordings_of_two_programs_joined_keep_the_first_ones_frames(tmp_path: Path) -> None:
    """A capture of another program (other stream ids) joined on: PyAV's IndexError escaped as a bug ("list
    index out of range", exit 4); the stream that appears part-way is damaged data, the frames before kept."""
    from ferhub.errors import VideoDecodeError

    frames = [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(30)]

    def capture(path: Path, start: float, options: dict[str, str]) -> bytes:
        return clips.write_ts(path, frames, start=start, options=options).read_bytes()

    other = {"mpegts_start_pid": "0x300", "mpegts_pmt_start_pid": "0x1300"}
    joined = tmp_path / "channels.ts"
    joined.write_bytes(capture(tmp_path / "a.ts", 0, {}) + capture(tmp_path / "b.ts", 50, other))
    kept = []
    error = r"after frame 30 \(.*a stream appears part-way"
    with pytest.raises(VideoDecodeError, match=error), open_video(str(joined)) as video:
        kept.extend(video.frames())
    assert len(kept) == 30
