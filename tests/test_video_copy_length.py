"""The annotated copy lasts as long as the video also where its frames come further apart towards the end (a
clip slowing down, a camera stalling, frames sampled from a variable rate, a GIF's long last delay). With
B-frames, an MP4's samples end at the last packet's decode time plus its duration, and decode times trail the
frames' times by a delay counted in the first, shorter intervals: FFmpeg (and the players built on it) stopped
the copy early, a 5.1 s clip's at 4.2 s."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import av
import clips
import pytest
from cli_run import run_cli
from PIL import Image

from ferhub.videoio import VideoWriter

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# frame times and where the video ends
SLOWING = ([i / 15 for i in range(30)] + [2.0 + 0.5 * k for k in range(1, 7)], 5.067)  # 15 fps, then 2 fps
SAMPLED_VFR = ([0.0, 0.2, 0.43, 0.66, 0.89, 1.09, 1.32, 1.55, 1.78, 2.01, 2.54], 2.637)  # --fps 5 of VFR
GIF = ([0.0, 0.1, 0.3, 0.6, 1.0], 2.0)  # delays 0.1, 0.2, 0.3, 0.4 and 1 s


def movie_seconds(path: Path) -> float:
    """The movie header's duration (``mvhd``) of an MP4/MOV: the length browsers show."""
    data = path.read_bytes()
    at = data.index(b"mvhd") + 4
    if data[at] == 1:  # version 1: 64-bit times
        scale, duration = struct.unpack(">IQ", data[at + 20 : at + 32])
    else:
        scale, duration = struct.unpack(">II", data[at + 12 : at + 20])
    return duration / scale


@pytest.mark.parametrize("suffix", [".mp4", ".m4v", ".mov", ".mkv"])
@pytest.mark.parametrize(("times", "end"), [SLOWING, SAMPLED_VFR, GIF], ids=["slowing", "sampled", "gif"])
def test_the_copy_lasts_to_the_end_when_frames_come_further_apart(tmp_path, suffix, times, end) -> None:
    frames, _ = clips.pan(len(times))  # real pictures: the encoder uses B-frames
    path = tmp_path / f"copy{suffix}"
    out = VideoWriter(path, clips.W, clips.H, 15)
    for a, t in zip(frames, times):
        out.write(a, t)
    out.close(end=end)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert c.duration / 1e6 == pytest.approx(end, abs=1e-3)
        if stream.duration is not None:  # MP4's sample table (Matroska keeps no stream duration)
            assert float(stream.duration * stream.time_base) == pytest.approx(end, abs=1e-3)
        assert [float(f.pts * f.time_base) for f in c.decode(stream)] == pytest.approx(times, abs=1e-3)
    if suffix != ".mkv":  # and the header players read agrees: not past the end either
        assert movie_seconds(path) == pytest.approx(end, abs=1e-3)


def test_cli_copies_of_a_gif_and_of_a_stalled_clip_sampled_last_as_long_as_they_do(tmp_path, capsys) -> None:
    """An animated GIF whose last frame is shown 1 s (2 s in all; its copy lasted 1.6 s) and a 15 fps clip
    whose camera stalls 1 s before its last 3 frames, sampled at 5 fps (3 s; its copy lasted 2.13 s)."""
    frames, _ = clips.pan(30)
    gif = tmp_path / "anim.gif"
    pictures = [Image.fromarray(a) for a in frames[::6]]
    pictures[0].save(
        gif, save_all=True, append_images=pictures[1:], duration=[100, 200, 300, 400, 1000], loop=0
    )
    stall = clips.write_clip(
        tmp_path / "stall.mp4",
        frames,
        times=[i / 15 for i in range(27)] + [1 + i / 15 for i in range(27, 30)],
    )
    for path, options, length in ((gif, [], 2.0), (stall, ["--fps", "5"], 3.0)):
        annotated = tmp_path / f"{path.stem}.annotated.mp4"
        code, out, err = run_cli(capsys, "predict", str(path), *options, "--annotate", str(annotated))
        assert code == 0, err
        (entry,) = json.loads(out)
        assert entry["error"] is None
        with av.open(str(annotated)) as c:
            assert c.duration / 1e6 == pytest.approx(length, abs=1e-3), path
            shown = [float(f.pts * f.time_base) for f in c.decode(video=0)]
        assert shown == pytest.approx([f["time"] for f in entry["frames"]], abs=1e-3)
        assert movie_seconds(annotated) == pytest.approx(length, abs=1e-3)
