"""Short test videos made with PyAV from real photos: faces panning, zooming, cut between, crossing, leaving.

The faces are the public-domain scikit-image astronaut (Eileen Collins) and matplotlib's Grace Hopper, pasted
on scikit-image's coffee photo (no faces). Every scene returns the ground truth the tests check against:
which face is where at each frame.
"""

from __future__ import annotations

import fractions
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

W, H = 320, 240

# face regions with some context around the MTCNN box (astronaut 512x512, Grace Hopper 512x600)
_ASTRONAUT_REGION = (150, 30, 295, 205)
_HOPPER_REGION = (140, 60, 390, 395)


def _photos() -> dict[str, Image.Image]:
    from matplotlib import cbook
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        hopper = Image.open(f).convert("RGB")
    return {
        "astronaut": Image.fromarray(data.astronaut()).crop(_ASTRONAUT_REGION),
        "hopper": hopper.crop(_HOPPER_REGION),
        "background": Image.fromarray(data.coffee()).resize((W, H)),
        "background2": Image.fromarray(data.rocket()).resize((W, H)),
    }


_CACHE: dict[str, Image.Image] = {}


def photo(name: str) -> Image.Image:
    """``astronaut``, ``hopper``, ``background``, ``background2``, or ``lfwN``: scikit-image's LFW face crop N
    (0-99) upscaled to 100x100."""
    if not _CACHE:
        _CACHE.update(_photos())
    if name not in _CACHE and name.startswith("lfw"):
        from images_corpus import lfw_face

        _CACHE[name] = lfw_face(int(name[3:])).resize((100, 100), Image.Resampling.BICUBIC)
    return _CACHE[name]


def face(name: str, height: int) -> Image.Image:
    """A face photo scaled to ``height`` pixels tall."""
    im = photo(name)
    return im.resize((round(im.width * height / im.height), height), Image.Resampling.BILINEAR)


def compose(
    placements: Sequence[tuple[str, float, float, int]], background: str = "background"
) -> np.ndarray:
    """One frame: each ``(face name, centre x, centre y, height)`` pasted on the background, in order (later
    ones in front)."""
    canvas = photo(background).copy()
    for name, cx, cy, height in placements:
        f = face(name, height)
        canvas.paste(f, (round(cx - f.width / 2), round(cy - f.height / 2)))
    return np.asarray(canvas)


def write_clip(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: float = 15,
    times: Sequence[float] | None = None,
    codec: str = "libx264",
    rotation: int = 0,
) -> Path:
    """Encode RGB frames with PyAV; ``times`` (seconds) gives a variable frame rate, ``rotation`` a display
    matrix (the frames are stored turned the other way, as a phone does)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fractions.Fraction(fps).limit_denominator(1000))
        h, w = frames[0].shape[:2]
        if rotation in (90, 270):
            w, h = h, w
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "18"}
        if rotation:
            stream.set_display_rotation(rotation)
        tb = fractions.Fraction(1, 1000)
        stream.codec_context.time_base = tb
        for i, a in enumerate(frames):
            stored = Image.fromarray(a)
            if rotation:  # stored turned clockwise by `rotation`; the display matrix turns it back
                stored = stored.rotate(-rotation, expand=True)
            frame = av.VideoFrame.from_image(stored)
            t = times[i] if times is not None else i / fps
            frame.pts, frame.time_base = round(t * 1000), tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_ts(
    path: Path,
    frames: Sequence[np.ndarray],
    *,
    fps: float = 15,
    start: float = 0.0,
    size: tuple[int, int] | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """An MPEG-TS recording of RGB frames (H.264 without B-frames), its timestamps from ``start`` seconds
    (plus the muxer's own offset), scaled to ``size`` where given; ``options`` for the muxer (another
    program's stream ids: ``mpegts_start_pid``). Joined byte-wise (``cat a.ts b.ts``, as recordings are), the
    second's timestamps start again."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tb = fractions.Fraction(1, 90000)  # MPEG's own clock
    with av.open(str(path), "w", format="mpegts", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=fractions.Fraction(fps).limit_denominator(1000))
        h, w = frames[0].shape[:2]
        stream.width, stream.height = size or (w, h)
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        stream.codec_context.time_base = tb
        for i, a in enumerate(frames):
            picture = Image.fromarray(a)
            if size is not None and picture.size != size:
                picture = picture.resize(size, Image.Resampling.BILINEAR)
            frame = av.VideoFrame.from_image(picture)
            frame.pts, frame.time_base = round((start + i / fps) * 90000), tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# -- scenes: each returns frames plus per-frame truth [(name, cx, cy)]
# -----------------------------------------
Truth = list[list[tuple[str, float, float]]]


def pan(n: int = 30) -> tuple[list[np.ndarray], Truth]:
    """One face panning left to right across the frame."""
    frames, truth = [], []
    for i in range(n):
        cx = 80 + 160 * i / (n - 1)
        frames.append(compose([("astronaut", cx, 120, 130)]))
        truth.append([("astronaut", cx, 120)])
    return frames, truth


def zoom(n: int = 24) -> tuple[list[np.ndarray], Truth]:
    """One face growing from 90 to 200 px tall (a zoom in)."""
    frames, truth = [], []
    for i in range(n):
        frames.append(compose([("hopper", 160, 120, round(90 + 110 * i / (n - 1)))]))
        truth.append([("hopper", 160, 120)])
    return frames, truth


def cut(n: int = 30) -> tuple[list[np.ndarray], Truth]:
    """A hard cut half-way to another shot: another person in the same place, another background."""
    frames, truth = [], []
    for i in range(n):
        name, background = ("astronaut", "background") if i < n // 2 else ("hopper", "background2")
        frames.append(compose([(name, 160, 120, 140)], background))
        truth.append([(name, 160, 120)])
    return frames, truth


def crossing(n: int = 36) -> tuple[list[np.ndarray], Truth]:
    """Two faces walking past each other: the astronaut left to right in front, Grace Hopper right to left
    behind her (hidden for a few frames)."""
    frames, truth = [], []
    for i in range(n):
        a = 60 + 200 * i / (n - 1)
        h = 260 - 200 * i / (n - 1)
        frames.append(compose([("hopper", h, 125, 120), ("astronaut", a, 115, 120)]))
        truth.append([("astronaut", a, 115), ("hopper", h, 125)])
    return frames, truth


def leave_and_return(n: int = 45, away: tuple[int, int] = (15, 27)) -> tuple[list[np.ndarray], Truth]:
    """A face steps out of the frame to the right for ``away`` frames, then comes back; another stays."""
    frames, truth = [], []
    for i in range(n):
        placements = [("hopper", 80, 120, 120)]
        row = [("hopper", 80.0, 120.0)]
        if not away[0] <= i < away[1]:
            placements.append(("astronaut", 235, 120, 120))
            row.append(("astronaut", 235.0, 120.0))
        frames.append(compose(placements))
        truth.append(row)
    return frames, truth


def pacing(n: int = 60) -> tuple[list[np.ndarray], Truth]:
    """A face pacing at 200 px/s (15 fps) between x = 60 and 240, turning back at each end; another person
    stands still below right."""
    frames, truth = [], []
    for i in range(n):
        x = 60 + (200 * i / 15) % 360
        x = x if x <= 240 else 480 - x
        frames.append(compose([("astronaut", x, 90, 90), ("hopper", 270, 190, 70)]))
        truth.append([("astronaut", x, 90), ("hopper", 270, 190)])
    return frames, truth


def swaying(n: int = 45) -> tuple[list[np.ndarray], Truth]:
    """A face swaying from side to side (160 ± 80 px, a 1.2 s period, 15 fps)."""
    frames, truth = [], []
    for i in range(n):
        x = 160 + 80 * math.sin(2 * math.pi * (i / 15) / 1.2)
        frames.append(compose([("astronaut", x, 120, 100)]))
        truth.append([("astronaut", x, 120)])
    return frames, truth


def hide_and_appear(n: int = 45, at: float = 70) -> tuple[list[np.ndarray], Truth]:
    """Grace Hopper walks right (150 px/s) behind the astronaut, who stands in front; at 0.8 s another person
    (an LFW face) comes into view at x = ``at``, behind where Hopper was last seen, and stays."""
    frames, truth = [], []
    for i in range(n):
        t = i / 15
        placements = [("hopper", 60 + 150 * t, 125, 80)]
        if t >= 0.8:
            placements.append(("lfw51", at, 125, 80))
        placements.append(("astronaut", 210, 120, 110))
        frames.append(compose(placements))
        truth.append([(name, x, y) for name, x, y, _ in placements])
    return frames, truth


def write_vob(path: Path, frames: Sequence[np.ndarray], *, fps: float = 25, start: float = 0.0) -> Path:
    """An MPEG-PS (DVD VOB) recording of RGB frames (MPEG-2 with B-frames), its timestamps from ``start``
    seconds (to a frame; plus the muxer's own offset). Joined byte-wise, as a DVD's VOB files are, each
    part keeps its own timestamps."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    rate = fractions.Fraction(fps).limit_denominator(1000)
    with av.open(str(path), "w", format="vob") as container:
        stream = container.add_stream("mpeg2video", rate=rate)
        h, w = frames[0].shape[:2]
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.codec_context.max_b_frames = 2
        stream.codec_context.gop_size = 12
        stream.codec_context.bit_rate = 2_000_000
        tb = 1 / rate  # MPEG-2 counts frames
        stream.codec_context.time_base = tb
        for i, a in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), "rgb24")
            frame.pts, frame.time_base = round(start * rate) + i, tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def repeat_ts(path: Path, source: Path, times: int, *, start: float = 0.0) -> Path:
    """A long MPEG-TS recording made without encoding: the packets of ``source`` (an MPEG-TS clip, e.g. from
    :func:`write_ts`, starting with a key frame) ``times`` times over, each time after the last, its
    timestamps from ``start`` seconds. ``times`` repeats of a 1 s clip make a ``times`` s recording of about
    ``times`` x the clip's bytes in a fraction of a second."""
    import av

    with av.open(str(source)) as src:
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.dts is not None and p.pts is not None]
        tb = stream.time_base
        first = min(p.dts for p in packets)
        # the clip's length: its last frame's time plus one frame step
        span = (
            max(p.pts for p in packets) - min(p.pts for p in packets) + round(1 / (stream.average_rate * tb))
        )
        base = round(start / tb)
        with av.open(str(path), "w", format="mpegts") as out:
            copy = out.add_stream_from_template(stream)
            for k in range(times):
                for p in packets:
                    q = av.Packet(bytes(p))
                    q.pts, q.dts = p.pts - first + base + k * span, p.dts - first + base + k * span
                    q.time_base, q.stream, q.is_keyframe = tb, copy, p.is_keyframe
                    out.mux(q)
    return path
