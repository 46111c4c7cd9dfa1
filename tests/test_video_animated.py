"""Animated pictures: an animated GIF or PNG (APNG) of more than one frame is analysed as a video, its frames
and their times from FFmpeg's decoder (each frame's own delay), in ``ferhub predict`` and the Video tab; a
one-frame one stays a photo. Animated WebP, which FFmpeg here cannot decode, is classified by its first frame
and says so.

The animations are ``tests/clips.py``'s pan scene (a real face), ten frames at 320x240.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import av
import clips
import numpy as np
import pytest
from cli_run import run_cli
from PIL import Image

from ferhub.videoio import NotAVideoError, is_animation, open_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# each frame's delay (ms): uneven, as animations often are; GIF keeps centiseconds
DELAYS = [100, 100, 300, 100, 100, 200, 100, 100, 100, 200]
TIMES = [sum(DELAYS[:i]) / 1000 for i in range(len(DELAYS))]


def animation(path: Path, n: int = 10) -> Path:
    frames = [Image.fromarray(a) for a in clips.pan(n)[0]]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=DELAYS[:n], loop=0)
    return path


@pytest.mark.parametrize("suffix", [".gif", ".png"])
def test_an_animation_is_read_frame_by_frame_with_its_delays(tmp_path: Path, suffix: str) -> None:
    """The times are the delays added up (the third frame is shown 0.3 s), the length their sum; read as a
    picture, only the first frame was classified."""
    path = animation(tmp_path / f"pan{suffix}")
    assert is_animation(path)
    with open_video(path) as video:
        frames = list(video.frames())
        info = video.info
    assert [f.index for f in frames] == list(range(10))
    assert [f.time for f in frames] == pytest.approx(TIMES, abs=1e-3)
    assert info.duration is None or info.duration == pytest.approx(sum(DELAYS) / 1000, abs=1e-3)
    assert frames[5].image.size == (clips.W, clips.H)
    expected = clips.pan(10)[0][5].astype(int)
    assert np.abs(np.asarray(frames[5].image).astype(int) - expected).mean() < 12  # GIF's 256 colours


def test_cli_analyses_an_animated_gif_as_a_video_and_annotates_it(tmp_path: Path, capsys) -> None:
    path = animation(tmp_path / "pan.gif")
    annotated = tmp_path / "pan.annotated.mp4"
    code, out, err = run_cli(capsys, "predict", str(path), "--annotate", str(annotated), "--format", "json")
    assert code == 0, err
    assert err == f"ferhub predict: wrote {annotated}\n"  # no note: nothing left out
    (entry,) = json.loads(out)
    assert entry["kind"] == "video" and entry["codec"] == "gif" and entry["error"] is None
    assert [f["time"] for f in entry["frames"]] == pytest.approx(TIMES, abs=1e-3)
    assert entry["duration"] == pytest.approx(1.4, abs=1e-3)
    (track,) = entry["tracks"]
    assert track["face_id"] == 1 and track["frames"] == 10
    assert track["seconds"] == pytest.approx(1.4, abs=1e-3)
    with av.open(str(annotated)) as c:
        assert [round(float(f.pts * f.time_base), 3) for f in c.decode(video=0)] == pytest.approx(TIMES)
        assert c.duration / 1e6 == pytest.approx(1.4, abs=1e-3)


def test_a_one_frame_gif_stays_a_photo(tmp_path: Path, capsys) -> None:
    path = tmp_path / "still.gif"
    Image.fromarray(clips.compose([("astronaut", 160, 120, 130)])).save(path)
    assert not is_animation(path)
    with pytest.raises(NotAVideoError, match=r"a still picture \(gif\), not a video"):
        open_video(path)
    code, out, err = run_cli(capsys, "predict", str(path), "--format", "json")
    (entry,) = json.loads(out)
    assert code == 0 and err == "" and entry["kind"] == "image" and len(entry["faces"]) == 1


def test_transparent_pixels_are_white_as_in_a_photo(tmp_path: Path) -> None:
    """FFmpeg gives a GIF's frames with an alpha channel: its transparent pixels (black under it) are shown
    over white, as the photo path shows them."""
    frames = []
    for a in clips.pan(3)[0]:
        rgba = np.dstack([a, np.full(a.shape[:2], 255, np.uint8)])
        rgba[:, :40] = 0  # a transparent strip on the left
        frames.append(Image.fromarray(rgba, "RGBA"))
    path = tmp_path / "clear.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0, disposal=2)
    with open_video(path) as video:
        images = [np.asarray(f.image) for f in video.frames()]
    assert len(images) == 3
    assert all((im[:, :30] == 255).all() and im[:, 60:].mean() < 240 for im in images)


def test_an_animated_webp_is_classified_by_its_first_frame_and_says_so(tmp_path: Path, capsys) -> None:
    """FFmpeg (8.1, in PyAV 18) decodes no animated WebP: it stays a photo, and stderr names the frames left
    out instead of saying nothing."""
    path = animation(tmp_path / "pan.webp", 4)
    code, out, err = run_cli(capsys, "predict", str(path), "--format", "json")
    (entry,) = json.loads(out)
    assert code == 0 and entry["kind"] == "image" and len(entry["faces"]) == 1
    assert err == (
        f"ferhub predict: {path}: an animated WebP of 4 frames, which FFmpeg cannot decode as a video;"
        " classifying its first frame as a photo (convert it to MP4 or GIF to analyse every frame)\n"
    )
    with pytest.raises(NotAVideoError) as caught:  # named like a video, it is no still picture either
        open_video(path)
    assert caught.value.frames == 4 and "an animated picture of 4 frames" in str(caught.value)


def test_the_video_tab_analyses_an_animated_gif_and_names_what_it_cannot(tmp_path: Path) -> None:
    import gradio as gr

    from ferhub.ui import video

    quiet = {"progress": lambda *a, **k: None}
    gif = animation(tmp_path / "pan.gif")
    copy, _, rows, _, status = video.analyse_video(str(gif), None, 10, 0.3, **quiet)
    assert len(rows) == 1 and rows[0][0] == 1 and "damaged" not in status
    with av.open(str(copy)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 10
    still = tmp_path / "still.gif"
    Image.fromarray(clips.compose([("astronaut", 160, 120, 130)])).save(still)
    with pytest.raises(gr.Error, match="still picture, not a video: use the Classify tab"):
        video.analyse_video(str(still), None, **quiet)
    with pytest.raises(gr.Error, match=r"animated picture of 4 frames .* \(animated WebP\): convert it"):
        video.analyse_video(str(animation(tmp_path / "pan.webp", 4)), None, **quiet)


def test_bytes_paths_are_told_apart_as_open_video_reads_them(tmp_path: Path) -> None:
    """A bytes path (a non-UTF-8 name as os.listdir(b".") gives it) or an ``os.PathLike`` giving bytes opens
    as a video (os.fsdecode), but the checks of what a file plays as raised pathlib's TypeError for it."""
    from ferhub.videoio import is_video_path, plays_as_video, undecodable_animation

    class BytesPath:
        def __init__(self, path: bytes) -> None:
            self.path = path

        def __fspath__(self) -> bytes:
            return self.path

    folder = bytes(tmp_path)
    gif = animation(Path(os.fsdecode(folder + b"/pan\xff.gif")))
    webp = animation(tmp_path / "pan.webp", 4)
    for wrap in (bytes, BytesPath):
        assert is_animation(wrap(bytes(gif))) and plays_as_video(wrap(bytes(gif)))
        assert is_video_path(wrap(b"/clips/a\xff.mp4")) and not is_video_path(wrap(b"a.jpg"))
        assert undecodable_animation(wrap(bytes(webp))) == 4
