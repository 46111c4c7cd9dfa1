"""Video files in and out with PyAV (FFmpeg inside the wheel: no system ffmpeg needed).

Reading yields upright RGB frames one at a time, each with its time in seconds taken from the stream's own
timestamps (so variable-frame-rate phone videos get true times, not ``index / fps``), rotated as the
container's display matrix says, scaled to square pixels when the stream's are not (anamorphic video), and
downscaled by FFmpeg's scaler when larger than ``max_side``; every frame comes at the first one's size, also
when the stream changes size part-way. Memory stays that of a few frames whatever the length or resolution.
Writing encodes H.264 in yuv420p with the index at the front of the file (``faststart``), the combination
every browser plays.

>>> with open_video("clip.mp4") as video:                       # doctest: +SKIP
...     for frame in video.frames(fps=5):
...         print(frame.index, frame.time, frame.image.size)
"""

from __future__ import annotations

import contextlib
import fractions
import itertools
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from ferhub.errors import VideoDecodeError

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv", ".ts"}
)
T = TypeVar("T")

DEFAULT_MAX_SIDE = 1920
# a frame larger than this is refused before decoding (8K UHD is 33 MP; H.264/H.265 levels stop near 35 MP)
MAX_SOURCE_PIXELS = 80_000_000
ACCEPTED = "MP4, MOV, MKV, WebM or AVI with H.264, H.265, VP8, VP9, AV1 or MPEG-4 video"
# FFmpeg demuxers that read still pictures: a photo named like a video opens as a one-frame "video"
_PICTURE_DEMUXERS = ("image2", "_pipe", "gif", "webp", "apng")
# of those, the ones FFmpeg reads animations with, each frame timed by its delay: an animated GIF or PNG
# (APNG) of more than one frame is a video, a one-frame one a picture. Animated WebP it does not decode
# (FFmpeg 8.1 in PyAV 18: "Invalid data"), so that stays a picture
_ANIMATION_DEMUXERS = ("gif", "apng")
# the suffixes of those animations (see is_animation)
ANIMATION_SUFFIXES = frozenset({".gif", ".png", ".apng"})
# FFmpeg demuxers whose header durations (the stream's, the file's, Matroska's DURATION tag) are the time the
# stream ends, counted from 0: a file whose timestamps start at 10 s says 13 s for 3 s of video (measured with
# FFmpeg 8.1 in PyAV 18 on MKV, WebM, WMV and NUT; MP4/MOV, MPEG-TS and FLV give lengths, AVI starts at 0)
_END_TIME_DEMUXERS = ("matroska", "asf", "nut")
# FFmpeg demuxers of the files that are joined byte-wise (`cat a.ts b.ts`, DVD VOBs): each recording's
# timestamps start again where the one before ends, and the header's length is one recording's (see frames)
_JOINABLE_DEMUXERS = ("mpegts", "mpeg")
# a timestamp going back by more than this many frame steps, and the next one too, starts another recording
# (joined on); by less, or one alone (a stray timestamp; H.264 B-frames in AVI, whose frames get their
# packets' decode-order stamps, come back up to 3 frames, or 16 with 16 B-frames, but one frame at a time),
# it is a broken timestamp, which is not allowed to take the clock back
RESTART_STEPS = 1.5
# in an MPEG-TS/PS file, a timestamp going forward by more than JUMP_SECONDS and JUMP_STEPS frame steps, and
# the next one too, starts another recording as well: one recorded later (its timestamps start later), or one
# whose timestamps start over a minute before the last ones (FFmpeg's 33-bit wrap correction moves it 2^33
# ticks, 26.5 h, forward). FFmpeg's own CLI takes a jump of over 10 s (its -dts_delta_threshold) in these
# formats for a discontinuity, in either direction, and closes it. A smaller gap, a low frame rate's (a
# time-lapse of a frame every 2 s), and a gap of any size in another container (a camera that paused) keep
# their times; one frame alone that far ahead is a broken timestamp, held at the time before it
JUMP_SECONDS = 10.0
JUMP_STEPS = 10
# the packet pre-read of an MPEG-TS/PS file larger than this reads the timestamps at _PROBES places spread
# over its bytes (and its end), and all the packets only between two places where they go back, jump or stand
# still (see _joined_length); a smaller file is read whole (a few hundredths of a second)
_READ_WHOLE_BYTES = 16 << 20
_PROBES = 64
# ... as is a file of fewer frames than this many per place, as its first frames' size tells (reading a frame
# or two at each place is no faster)
_PROBE_FRAMES = 8
# between two places, the timestamps may advance this many times as fast for their bytes as the file's median
# (variable bit rate: a still scene, a black screen) before the packets between them are read
_PROBE_RATE = 4.0
# FFmpeg's options for opening a file to read its packets' times only (no frame decoded to learn the streams)
# a frame is shown at most this many frame steps after it is decoded (H.264: 17, with 16 B-frames)
_MAX_DELAY_STEPS = 20
_PACKETS_ONLY = {"probesize": "32", "analyzeduration": "0", "fpsprobesize": "0"}
# a stream that ends cleanly is called truncated only when it is short of its header by more than these:
# headers are approximate (variable frame rate, B-frame delay, a last frame lost by the encoder), a cut file
# is short by far more
SHORT_FRAMES = 2  # frames short of an exact frame count ...
SHORT_SHARE = 0.05  # ... or this share of the announced count or duration, whichever is more
# containers the annotated copy (H.264 with millisecond timestamps) is written in: WebM and GIF cannot hold
# H.264, and AVI has no timestamps of its own (a 1 ms clock comes back as 1000 fps, B-frames out of order)
WRITABLE_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")
# pixel aspect ratios outside this are taken for a broken header, not for a real anamorphic picture
_SAR_RANGE = (fractions.Fraction(1, 4), fractions.Fraction(4))


class NotAVideoError(VideoDecodeError):
    """The file is a picture (e.g. a JPEG renamed ``.mp4``): classify it as a photo instead. ``frames``: how
    many it holds (more than 1: an animation FFmpeg cannot decode, such as animated WebP)."""

    def __init__(self, message: str, frames: int = 1) -> None:
        super().__init__(message)
        self.frames = frames


def is_video_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` is named like a video file (by suffix; the content is checked on opening)."""
    return Path(os.fsdecode(path)).suffix.lower() in VIDEO_SUFFIXES


def is_animation(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an animated GIF or PNG (APNG) of more than one frame, analysed as a video (one
    frame: a photo). Reads the file's header with Pillow, not its frames."""
    name = os.fsdecode(path)  # a bytes path too (pathlib.Path refuses one), as open_video takes it
    if Path(name).suffix.lower() not in ANIMATION_SUFFIXES:
        return False
    return _picture(name, lambda image: bool(getattr(image, "is_animated", False)), False)


def plays_as_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` goes the video path: named like a video, or an animation (:func:`is_animation`)."""
    return is_video_path(path) or is_animation(path)


def undecodable_animation(path: str | os.PathLike) -> int:
    """The frame count of an animated WebP (FFmpeg here cannot decode one: its first frame is classified as
    a photo), or 0 for any other file."""
    name = os.fsdecode(path)
    if Path(name).suffix.lower() != ".webp":
        return 0
    frames = _picture_frames(name)
    return frames if frames > 1 else 0


def _picture_frames(path: str) -> int:
    """How many frames Pillow finds in a picture (1 where it cannot tell)."""
    return _picture(path, lambda image: max(int(getattr(image, "n_frames", 1)), 1), 1)


def _picture(path: str, read: Callable[[Image.Image], T], default: T) -> T:
    """``read`` of the picture at ``path`` opened with Pillow (its header: frames are read only as ``read``
    asks), or ``default`` when it cannot be opened: whatever is wrong with it, the photo path says it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the photo path says it, once
            with Image.open(path) as image:
                return read(image)
    except Exception:
        return default


@dataclass
class VideoInfo:
    """What the container says about a video, in display orientation (after rotation). ``width`` x ``height``
    is the size frames are analysed at (boxes are in its pixels), ``source_width`` x ``source_height`` the
    file's own stored size (larger when frames over ``max_side`` are downscaled, another shape when its pixels
    are not square)."""

    path: str
    width: int
    height: int
    fps: float | None
    num_frames: int | None
    duration: float | None
    rotation: int
    codec: str
    source_width: int = 0
    source_height: int = 0

    @property
    def expected_frames(self) -> int | None:
        """The frame count, or where the container does not say (MKV, WebM) duration x fps: an estimate for
        progress bars, never reported as the count."""
        if self.num_frames is None and self.duration and self.fps:
            return round(self.duration * self.fps)
        return self.num_frames

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "source_width": self.source_width or self.width,
            "source_height": self.source_height or self.height,
            "fps": None if self.fps is None else round(self.fps, 3),
            "num_frames": self.num_frames,
            "duration": None if self.duration is None else round(self.duration, 3),
            "rotation": self.rotation,
            "codec": self.codec,
        }


@dataclass
class Frame:
    """One decoded frame: its index in the stream (0-based), its time in seconds, and the upright RGB
    image. ``restarted``: the stream's timestamps started again (or, in MPEG-TS/PS, jumped far ahead) since
    the frame before it that was yielded (another recording joined on, see :meth:`VideoReader.frames`): a new
    shot."""

    index: int
    time: float
    image: Image.Image = field(repr=False)
    restarted: bool = False


def _rotate(image: Image.Image, rotation: int) -> Image.Image:
    # the display matrix turns the stored frame ``rotation`` degrees counter-clockwise (FFmpeg's convention,
    # which ``ffmpeg -autorotate`` applies); PIL's ROTATE_90 is counter-clockwise too
    turn = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
    op = turn.get(rotation % 360)
    return image.transpose(op) if op is not None else image


class VideoReader:
    """An open video; use :func:`open_video`. Iterate :meth:`frames`; close when done (or use ``with``)."""

    def __init__(self, path: str | os.PathLike, *, max_side: int = DEFAULT_MAX_SIDE) -> None:
        import av

        # os.fsdecode, not str: any os.PathLike is a path (str() of one that is no pathlib.Path is its repr)
        self.path = os.fsdecode(path)
        name = self.path
        p = Path(self.path)
        if not p.is_file():
            # as ferhub.images says it: a folder given for a video is not "missing"
            kind = "no such file" if not p.exists() else "not a regular file (a folder, FIFO or device)"
            raise VideoDecodeError(f"{name}: {kind}")
        if p.stat().st_size == 0:
            raise VideoDecodeError(f"{name}: file is empty (0 bytes); accepted: {ACCEPTED}")
        try:
            self._container = av.open(self.path, metadata_errors="ignore")
        except av.FFmpegError as e:
            raise VideoDecodeError(
                f"{name}: not a video FFmpeg can read ({_reason(e)}); accepted: {ACCEPTED}"
            ) from e
        try:
            self._setup(max_side)
        except BaseException:
            self._container.close()
            raise

    def _setup(self, max_side: int) -> None:
        import av

        container, name = self._container, self.path
        fmt = container.format.name
        # an animated GIF or PNG is a video once its second frame is decoded (below)
        picture = any(d in fmt for d in _PICTURE_DEMUXERS)
        if picture and fmt not in _ANIMATION_DEMUXERS:
            # the caller says what it does with it (the CLI classifies it as a photo, the app sends it on)
            frames = _picture_frames(name)
            if frames > 1:
                raise NotAVideoError(
                    f"{name}: an animated picture of {frames} frames ({fmt}) that FFmpeg cannot decode as a"
                    " video, only its first frame",
                    frames,
                )
            raise NotAVideoError(f"{name}: a still picture ({fmt}), not a video")
        if not container.streams:
            raise VideoDecodeError(
                f"{name}: contains no streams at all (empty or zero-length video); accepted: {ACCEPTED}"
            )
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            raise VideoDecodeError(
                f"{name}: has {' and '.join(kinds)} streams but no video (audio only?); accepted: {ACCEPTED}"
            )
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: decoding keeps up with detection on 2 cores
        ctx = stream.codec_context
        if ctx.codec is None or not ctx.codec.name:
            raise VideoDecodeError(f"{name}: no decoder for this video's codec; {_reencode_hint()}")
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width * height > MAX_SOURCE_PIXELS:
            raise VideoDecodeError(
                f"{name}: frames are {width}x{height} = {width * height / 1e6:.0f} MP, over the limit of "
                f"{MAX_SOURCE_PIXELS / 1e6:.0f} MP; downscale it first ({_reencode_hint()})"
            )
        self._stream = stream
        self.max_side = int(max_side)
        self.end: float | None = None  # see frames()
        tb = stream.time_base
        self._start = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        # Matroska's, ASF's and NUT's headers give the time a stream ends, not its length: a file whose
        # timestamps start later (a segment stream-copied from a longer recording) is that much shorter
        ends = any(d in fmt for d in _END_TIME_DEMUXERS)
        start = self._start if ends else 0.0
        file_start = container.start_time / 1_000_000 if ends and container.start_time is not None else 0.0
        duration = None
        if stream.duration is not None and tb:
            duration = max(float(stream.duration * tb) - start, 0.0)
        elif container.duration is not None:
            duration = max(container.duration / 1_000_000 - file_start, 0.0)  # AV_TIME_BASE
        num = int(stream.frames) if stream.frames else None
        # what a complete stream must reach, for telling a truncated file from a whole one at its end
        self._announced_frames = num
        self._announced_duration = _stream_duration(container, stream, start, file_start)
        self.restarts = 0  # how many recordings were joined on (timestamps that start again), see frames()
        joined = None
        self._joinable = fmt in _JOINABLE_DEMUXERS  # forward jumps start recordings too (see JUMP_SECONDS)
        if self._joinable:
            joined = _joined_length(name, stream, 1 / (fps or 25.0))
            if joined is not None:  # the header's length is that of one recording, or of none of them
                duration, self._announced_duration = joined, None
        self._joined = joined is not None
        # the first frame is decoded now: its display matrix gives the rotation, and a file with no decodable
        # frame fails here with one clear error rather than half-way through an output
        self._decoder = _read_on(container.decode(stream))
        self._second = None
        try:
            self._first = next(self._decoder, None)
            if picture and self._first is not None:
                self._second = next(self._decoder, None)
        except av.FFmpegError as e:
            raise VideoDecodeError(
                f"{name}: cannot decode the first frame ({_reason(e)}); the file is corrupt, truncated or in"
                f" a codec this build lacks: {_reencode_hint()}"
            ) from e
        if self._first is None:
            raise VideoDecodeError(f"{name}: contains no video frames (truncated or empty stream)")
        if picture and self._second is None:
            raise NotAVideoError(f"{name}: a still picture ({fmt}), not a video")
        # an animation's transparent pixels are shown over white, as the photo path shows them
        self._over_white = picture
        self.rotation = int(getattr(self._first, "rotation", 0) or 0) % 360
        sw, sh = self._first.width, self._first.height
        # every frame is analysed at this size (stored orientation): the first frame's shown as displayed
        # (non-square pixels widened or narrowed to their display aspect) and downscaled to max_side; a
        # stream that changes size part-way (joined recordings) is scaled to it, so boxes stay in one frame
        self.sample_aspect = _sample_aspect(stream)
        self._size = w, h = _scaled_size(float(sw * self.sample_aspect), sh, self.max_side)
        if self.rotation in (90, 270):
            w, h, sw, sh = h, w, sh, sw
        self.info = VideoInfo(
            self.path,
            w,
            h,
            fps,
            num,
            duration,
            self.rotation,
            ctx.codec.name,
            source_width=sw,
            source_height=sh,
        )

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def frames(self, *, fps: float | None = None) -> Iterator[Frame]:
        """Decoded frames in order; with ``fps``, at most that many per second (the first frame at or after
        each ``k / fps`` seconds). Raises :class:`VideoDecodeError` at the first undecodable packet, or at
        the end when the stream stops clearly short of what its header announces (a truncated file); the
        frames before either have been yielded. Once the stream is read to its end (or to an undecodable
        packet), :attr:`end` is when its last frame decoded (sampled or not) stops being shown.

        Times never go back. Where a frame's timestamp, and the next one's, go back by more than
        :data:`RESTART_STEPS` frame steps, another recording starts (``cat a.ts b.ts``: its timestamps start
        again): the clock goes on one frame step after the last frame, and from there by the new timestamps,
        for the rest of the stream; the first frame yielded after it has ``restarted`` set, and
        :attr:`restarts` counts them. A timestamp going back by less, or alone (broken timestamps), is taken
        as the last frame's time. In an MPEG-TS/PS file, timestamps jumping forward by more than
        :data:`JUMP_SECONDS` (and :data:`JUMP_STEPS` frame steps) start another recording too (the next one
        too; one alone is held at the last frame's time); in other files a gap is kept."""
        import av

        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be a positive number of frames per second, got {fps}")
        if self._first is None:
            raise RuntimeError("frames() can be iterated once per opened video")
        next_time = 0.0
        index = -1
        first_time = last_time = -math.inf
        last_shown = 0.0  # how long the last frame is shown, when the stream says
        # seconds added to the timestamps since they restarted (joined recordings); the last interval between
        # two frames (a frame step; the nominal one until there is one)
        offset, interval, nominal = 0.0, 0.0, 1 / (self.info.fps or 25.0)
        restarted = False  # since the frame yielded last
        pending = [f for f in (self._first, self._second) if f is not None]  # decoded on opening
        self._first = self._second = None
        failed: av.FFmpegError | None = None  # met decoding a frame ahead: raised when that frame is due

        def ahead() -> Any:
            """The frame after the current one, decoded now and kept for the loop (``None``: none)."""
            nonlocal failed
            if not pending and failed is None:
                try:
                    after = next(self._decoder, None)
                except av.FFmpegError as e:
                    failed, after = e, None
                if after is not None:
                    pending.append(after)
            return pending[0] if pending else None

        try:
            while True:
                if pending:
                    frame = pending.pop(0)
                elif failed is not None:
                    raise failed
                else:
                    frame = next(self._decoder, None)
                if frame is None:
                    break
                index += 1
                t = self._time(frame, index) + offset
                step = interval or nominal
                behind = last_time - RESTART_STEPS * step
                beyond = last_time + _jump(step) if self._joinable and index else math.inf
                after = ahead() if t < behind or t > beyond else None
                following = None if after is None else self._time(after, index + 1) + offset
                if following is not None and (following < behind if t < behind else following > beyond):
                    # another recording's timestamps, from its start: the clock goes on a step after the last
                    offset += last_time + step - t
                    t = last_time + step
                    self.restarts += 1
                    restarted = True
                elif t > beyond:  # one frame alone far ahead: a broken timestamp
                    t = last_time
                t = round(max(t, last_time), 6)  # never backwards (broken timestamps)
                if t > last_time > -math.inf:
                    interval = t - last_time
                last_time = t
                if index == 0:
                    first_time = t
                last_shown = frame.duration * frame.time_base if frame.duration and frame.time_base else 0
                if fps is not None:
                    # within 1 ms (or half the time base, if coarser) of the target counts as at it: muxers
                    # round timestamps to milliseconds (frame 5 of 15 fps at 0.333 s, 1/3 s wanted, was
                    # skipped), and no real stream has two frames 1 ms apart
                    tb = float(frame.time_base) if frame.time_base else 0.0
                    if t + max(1e-3, tb / 2) < next_time:
                        continue
                    next_time = max(next_time + 1 / fps, t + 0.5 / fps)
                yield Frame(index, t, self._image(frame), restarted)
                restarted = False
        except av.FFmpegError as e:
            if index >= 0:  # the stream ends where it can no longer be decoded
                self.end = last_time + (float(last_shown) or interval or nominal)
            raise VideoDecodeError(
                f"{self.path}: truncated or corrupt video data after frame {index + 1} ({_reason(e)})"
            ) from e
        # FFmpeg ends a cut-off file as it ends a whole one (no error): only the header tells them apart
        n = index + 1
        step = (last_time - first_time) / (n - 1) if n > 1 else nominal
        self.end = last_time + (float(last_shown) or step)
        announced = self._announced_frames, self._announced_duration
        if self.restarts or self._joined:  # the header knew one recording's length at most (or the span of
            self.info.duration = self.end  # their timestamps): the stream as read is the length
            announced = None, None
        short = shortfall(n, self.end, step, *announced)
        if short:
            raise VideoDecodeError(f"{self.path}: truncated or corrupt video: {short}")

    def _time(self, frame: Any, index: int) -> float:
        if frame.pts is not None and frame.time_base:
            return round(float(frame.pts * frame.time_base) - self._start, 6)
        # no timestamps at all (some AVI): the nominal rate is all there is
        return round(index / (self.info.fps or 25.0), 6)

    def _image(self, frame: Any) -> Image.Image:
        w, h = self._size
        if self._over_white and any(c.is_alpha for c in frame.format.components):
            if (w, h) != (frame.width, frame.height):
                frame = frame.reformat(width=w, height=h, format="rgba")
            rgba = Image.fromarray(frame.to_ndarray(format="rgba"), "RGBA")
            image = Image.new("RGB", rgba.size, (255, 255, 255))
            image.paste(rgba, mask=rgba.getchannel("A"))
            return _rotate(image, self.rotation)
        if (w, h) != (frame.width, frame.height):
            frame = frame.reformat(width=w, height=h, format="rgb24")
        image = Image.fromarray(frame.to_ndarray(format="rgb24"), "RGB")
        return _rotate(image, self.rotation)


def _scaled_size(width: float, height: float, max_side: int) -> tuple[int, int]:
    """``width`` x ``height`` downscaled to fit ``max_side``, in even pixels (yuv420p output, the annotated
    video, needs them)."""
    scale = min(1.0, max_side / max(width, height, 1))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _sample_aspect(stream: Any) -> fractions.Fraction:
    """The shape of the stream's pixels (width / height of one pixel as displayed): FFmpeg's guess from the
    container and the codec; 1 when unknown or implausible."""
    try:
        sar = stream.sample_aspect_ratio
    except (AttributeError, ValueError, ZeroDivisionError):
        return fractions.Fraction(1)
    if not sar or not _SAR_RANGE[0] <= sar <= _SAR_RANGE[1]:
        return fractions.Fraction(1)
    return fractions.Fraction(sar)


def shortfall(
    frames: int, seconds: float, step: float, announced_frames: int | None, announced_seconds: float | None
) -> str | None:
    """What is missing when a stream that ended after ``frames`` frames covering ``seconds`` (frames ``step``
    seconds apart) is clearly short of its header's ``announced_frames`` / ``announced_seconds``; ``None``
    when it is complete up to the header's usual inaccuracy (see :data:`SHORT_FRAMES`).

    With both known, both must fall short: an exact count and a duration agree on a cut file, while one of
    them alone can be off in a whole one (an AVI counting milliseconds as frames, a last frame shown long).
    """
    count_short = announced_frames is not None and announced_frames - frames > max(
        SHORT_FRAMES, SHORT_SHARE * announced_frames
    )
    # one frame more of slack in time than in count: timestamp rounding and B-frame delay shift the span
    time_short = announced_seconds is not None and announced_seconds - seconds > max(
        (SHORT_FRAMES + 1) * step, SHORT_SHARE * announced_seconds
    )
    if announced_seconds is None and count_short:
        return f"it ends after {frames} of the {announced_frames} frames its header announces"
    if not time_short or (announced_frames is not None and not count_short):
        return None
    if announced_frames is None:
        return (
            f"it ends after {frames} frames, at {seconds:.1f} s of the {announced_seconds:.1f} s its header"
            " announces"
        )
    return (
        f"it ends after {frames} of the {announced_frames} frames its header announces, at {seconds:.1f} s of"
        f" {announced_seconds:.1f} s"
    )


def _stream_duration(
    container: Any, stream: Any, start: float = 0.0, file_start: float = 0.0
) -> float | None:
    """The video stream's own length from the header, where one is known; ``None`` where the only length is
    the container's and another stream (audio, which may well run longer) shares it. ``start`` and
    ``file_start`` (the stream's and the file's first timestamps) are taken off where the header gives an end
    time (see :data:`_END_TIME_DEMUXERS`; 0 otherwise)."""
    if stream.duration is not None and stream.time_base:
        return max(float(stream.duration * stream.time_base) - start, 0.0)
    tag = (stream.metadata or {}).get("DURATION")  # Matroska's per-track statistics: "HH:MM:SS.nnnnnnnnn"
    if tag:
        try:
            h, m, sec = tag.split(":")
            return max(int(h) * 3600 + int(m) * 60 + float(sec) - start, 0.0)
        except ValueError:
            pass
    if container.duration is not None and len(container.streams) == 1:
        return max(container.duration / 1_000_000 - file_start, 0.0)
    return None


def _jump(step: float) -> float:
    """How far forward (seconds) an MPEG-TS/PS file's timestamps jump into another recording, for frames
    ``step`` seconds apart (see :data:`JUMP_SECONDS`)."""
    return max(JUMP_SECONDS, JUMP_STEPS * step)


# one packet's byte position, the time it is decoded and the time it is shown (seconds)
_Stamp = tuple[int, float, float]


def _joined_length(path: str, video: Any, step: float) -> float | None:
    """The length of an MPEG-TS or MPEG-PS file's ``video`` stream (of a container opened on ``path``) made of
    several recordings (joined byte-wise: timestamps that go back part-way, or jump far forward, as
    :meth:`VideoReader.frames` tells them): each part's length plus a frame ``step`` (seconds), added up, as
    :meth:`VideoReader.frames` times them; ``None`` where it finds one recording.

    Reads packets, not frames. A file of up to :data:`_READ_WHOLE_BYTES` is read whole. A larger one is read
    at :data:`_PROBES` places spread over its bytes and at its end, a packet or a few each (a 1 GB file in a
    few hundredths of a second), and whole only between two places whose timestamps go back, stand still,
    or advance :data:`_PROBE_RATE` times faster or slower for their bytes than the file's median (and by more
    than a jump, see :data:`JUMP_SECONDS`): where another recording starts, if anywhere. One the places do not
    show (the timestamps after it get past those of the place before it within less than a place's bytes: a
    recording that starts a little before the last one ended, or a little after) is found when the frames
    are read, which makes the length known after reading exact (see :meth:`VideoReader.frames`)."""
    import av

    try:
        size = os.path.getsize(path)
        # opened again to read packets only: the streams are found, not their frames decoded (a 1 GB file of
        # large frames opened in 0.02 s rather than 0.08 s); where the stream is not found so, as usual
        with av.open(path, metadata_errors="ignore", options=_PACKETS_ONLY) as container:
            found = [s for s in container.streams if s.type == "video" and s.id == video.id]
            if found:
                return _read_length(container, found[0], size, step)
        with av.open(path, metadata_errors="ignore") as container:
            return _read_length(container, container.streams[video.index], size, step)
    except av.FFmpegError:  # decoding the frames says what is wrong
        return None


def _read_length(container: Any, stream: Any, size: int, step: float) -> float | None:
    """:func:`_joined_length` of ``stream`` in ``container``, a file of ``size`` bytes."""
    if not stream.time_base:
        return None
    runs = None if size <= _READ_WHOLE_BYTES else _probed_stamps(container, stream, size, step)
    if runs is None:
        runs = [_read_stamps(container, stream, step, 0, seek=size > _READ_WHOLE_BYTES)]
    return _parts_length(runs, step) if runs else None


# packets of other streams (audio, subtitles) read past a place's end before the stream's own are given up
# for, per packet of the stream asked for there: several audio packets come with each video frame
_OTHER_PACKETS_PAST = 32


def _read_stamps(
    container: Any,
    stream: Any,
    step: float,
    start: int,
    *,
    seek: bool = True,
    count: int | None = None,
    before: int | None = None,
    through: int | None = None,
    more: int = 0,
) -> list[_Stamp]:
    """The times of ``stream``'s packets (frames ``step`` seconds apart) from byte ``start`` on
    (``seek=False``: where the demuxer is, the file's start after opening), in the order they are read: the
    first ``count`` of them, those before byte ``before``, or up to byte ``through`` and ``more`` after it;
    without any of those, up to the end."""
    if seek:
        container.seek(start, unsupported_byte_offset=True)
    tb = stream.time_base
    delay = max(JUMP_SECONDS, _MAX_DELAY_STEPS * step)
    stamps: list[_Stamp] = []
    past = 0  # packets of the stream read after byte ``through``
    others_past = 0  # packets of other streams read after it
    # every stream's packets, so that the byte limits hold where the stream has none for a while (a capture
    # whose video ends before its audio: each place read on to the end of the file)
    for packet in _read_on(container.demux()):
        pos = packet.pos if packet.pos is not None and packet.pos >= 0 else None
        if packet.stream.index != stream.index:
            if pos is not None and before is not None and pos >= before:
                break
            if pos is not None and through is not None and pos > through:
                others_past += 1
                if others_past > _OTHER_PACKETS_PAST * (more + 1):
                    break
            continue
        decode = packet.dts if packet.dts is not None else packet.pts
        if decode is None:  # a packet cut by the seek, or the demuxer's final flush packet
            continue
        if pos is None:  # not known: where the one before is
            pos = stamps[-1][0] if stamps else start
        if before is not None and pos >= before:
            break
        decoded = float(decode * tb)
        shown = float(packet.pts * tb) if packet.pts is not None else decoded
        if not -step / 2 <= shown - decoded <= delay:
            # shown before it is decoded, or long after: a decode time FFmpeg guessed on from the packet
            # before, where a recording joined on starts (MPEG-PS), so its own time is the one shown
            decoded = shown
        stamps.append((pos, decoded, shown))
        if count is not None and len(stamps) >= count:
            break
        if through is not None and pos > through:
            past += 1
            if past > more:
                break
    return stamps


def _probed_stamps(container: Any, stream: Any, size: int, step: float) -> list[list[_Stamp]] | None:
    """The packets' times to count a large file's recordings from (see :func:`_joined_length`), as runs of
    packets read one after another, in the file's order; ``[]`` where the places read show one recording,
    ``None`` where the file is to be read whole: it holds too few frames (judged from its first) for reading
    at places to be any faster."""
    spacing = size // _PROBES
    places = [k * spacing for k in range(_PROBES)]
    runs = [_read_stamps(container, stream, step, 0, seek=False, count=8)]  # the first frames' times
    first = runs[0]
    if len(first) > 1 and (first[-1][0] - first[0][0]) * _PROBE_FRAMES * _PROBES > size * (len(first) - 1):
        return None
    for p in places[1:]:
        # a place the last one read past (frames larger than the spacing) has nothing more to show
        read = [s for s in runs if s]
        past = bool(read) and read[-1][-1][0] >= p
        runs.append([] if past else _read_stamps(container, stream, step, p, count=1, before=p + spacing))
    tail = 1 << 16  # the last packets: where the file ends
    while True:
        start = max(size - tail, places[-1])
        last = _read_stamps(container, stream, step, start)
        if last or start == places[-1]:
            break
        tail *= 4
    runs.append(last)
    kept = [(s, r) for s, r in zip([0, *places[1:], start], _in_order(runs)) if r]
    if len(kept) < 2:
        return []
    # where the timestamps go back, stand still or jump within a run, and between two runs
    jump = _jump(step)
    odd = {
        i
        for i, (_, run) in enumerate(kept)
        if any(b[1] <= a[1] or b[1] - a[1] > jump for a, b in itertools.pairwise(run))
    }
    gaps = [(a[-1], b[0]) for (_, a), (_, b) in itertools.pairwise(kept)]
    rates = sorted((b[1] - a[1]) / (b[0] - a[0]) for a, b in gaps if b[1] > a[1] and b[0] > a[0])
    rate = rates[len(rates) // 2] if rates else None
    flagged = set()
    for i, (a, b) in enumerate(gaps):
        advance, expected = b[1] - a[1], (rate or 0.0) * max(b[0] - a[0], 1)
        if (
            advance <= 0
            or rate is None
            or advance < expected / _PROBE_RATE
            or advance > max(jump, expected * _PROBE_RATE)
            or i in odd
            or i + 1 in odd
        ):
            flagged.add(i)
    if not flagged:
        return []
    # each stretch of flagged gaps is read whole, from its first run's place to a few packets past its last
    result: list[list[_Stamp]] = []
    i = 0
    while i < len(kept):
        if i not in flagged:
            result.append(kept[i][1])
            i += 1
            continue
        j = i
        while j in flagged:
            j += 1
        result.append(_read_stamps(container, stream, step, kept[i][0], through=kept[j][1][-1][0], more=8))
        i = j + 1
    return [run for run in _in_order(result) if run]


def _in_order(runs: list[list[_Stamp]]) -> list[list[_Stamp]]:
    """``runs`` (read from places in the file's order) with each packet once: in the first run that read it
    (a run reads on past where the next one starts where packets are larger than the places' spacing)."""
    reached = -1
    ordered = []
    for run in runs:
        ordered.append([s for s in run if s[0] > reached])
        if ordered[-1]:
            reached = ordered[-1][-1][0]
    return ordered


def _parts_length(runs: list[list[_Stamp]], step: float) -> float | None:
    """The length of the recordings in ``runs`` (packets read one after another, in the file's order; between
    two runs, the same recording goes on): each part's first to last time shown plus a frame step (the
    packets' median interval; ``step`` where none is read), added up;
    ``None`` for one part. Another recording starts where a packet's decode time, and the next one's, go back
    by more than :data:`RESTART_STEPS` steps or forward by more than a jump (:data:`JUMP_SECONDS`); one alone
    is a stray timestamp, left out."""
    # a frame step as the packets show it (the header's rate can be a guess, 60 fps for 15): the median
    # interval between two packets read one after the other
    steps = sorted(b[1] - a[1] for run in runs for a, b in itertools.pairwise(run) if b[1] > a[1])
    step = steps[len(steps) // 2] if steps else step
    parts: list[list[float]] = []  # the first and last time shown of each part
    jump = _jump(step)
    for run in runs:
        previous: float | None = None  # the decode time of the packet before, in this run
        stray: tuple[int, float] | None = None  # a packet's way (-1 back, 1 on) and time shown, unless the
        for _, decoded, shown in run:  # next one's too
            way = 0
            if previous is not None and decoded < previous - RESTART_STEPS * step:
                way = -1
            elif previous is not None and decoded > previous + jump:
                way = 1
            if way:
                if stray is None or stray[0] != way:
                    stray = way, shown
                    continue
                parts.append([min(stray[1], shown), max(stray[1], shown)])  # two in a row: another recording
            elif not parts:
                parts.append([shown, shown])
            else:
                part = parts[-1]
                part[0], part[1] = min(part[0], shown), max(part[1], shown)
            stray, previous = None, decoded
    if len(parts) < 2:
        return None
    return sum(last - first + step for first, last in parts)


def open_video(path: str | os.PathLike, *, max_side: int = DEFAULT_MAX_SIDE) -> VideoReader:
    """Open a video for reading; :class:`VideoDecodeError` (with what to do) when it cannot be read."""
    return VideoReader(path, max_side=max_side)


_STREAM_APPEARED = 1094995529  # FFmpeg's AVERROR_INVALIDDATA, as the errno of the error raised for it


def _read_on(items: Iterator[Any]) -> Iterator[Any]:
    """PyAV's packets or frames, where a stream that appears part-way (recordings of two programs joined
    byte-wise: PyAV's IndexError) is the damaged data it is: an ``av.FFmpegError``, which ends the reading
    as other damage does (the frames before it kept)."""
    import av

    try:
        yield from items
    except IndexError as e:
        raise av.error.InvalidDataError(
            _STREAM_APPEARED, "a stream appears part-way (recordings of different programs joined)"
        ) from e


def _reason(e: Exception) -> str:
    text = str(e).split(": '", 1)[0]  # PyAV appends the file name; the caller names the file already
    return text[:200]


def _reencode_hint() -> str:
    return "re-encode it to H.264, e.g. `ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p OUT.mp4`"


class VideoWriter:
    """H.264 (yuv420p, faststart) video writer for annotated output; frames are RGB arrays or PIL images.
    ``path`` ends in one of :data:`WRITABLE_SUFFIXES` (``ValueError`` otherwise).

    ``close()`` finishes the file (also on Ctrl-C through ``with``), so whatever was written plays.
    """

    def __init__(
        self, path: str | os.PathLike, width: int, height: int, fps: float, *, crf: int = 23
    ) -> None:
        import av

        self.path = Path(path)
        if self.path.suffix.lower() not in WRITABLE_SUFFIXES:
            raise ValueError(f"{self.path}: {writable_problem(self.path)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.width, self.height = width - width % 2, height - height % 2
        # MP4 and QuickTime (.m4v too): a track's samples last until the last one's decode time plus duration
        self._decode_timed = self.path.suffix.lower() in (".mp4", ".mov", ".m4v")
        options = {"movflags": "+faststart"} if self._decode_timed else {}
        self._container = av.open(str(self.path), "w", options=options)
        rate = fractions.Fraction(fps).limit_denominator(1001) if fps and fps > 0 else fractions.Fraction(25)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        # timestamps in milliseconds: variable-rate input keeps its timing in the output
        self._stream.codec_context.time_base = fractions.Fraction(1, 1000)
        self._last_pts = -1
        # each frame is encoded once the next one comes (or at close), when how long it is shown is known:
        # the encoder's packets get those durations, and the last frame lasts to the video's end (close), not
        # a whole 1 / fps past it (a 2.4 s clip sampled at 0.5 fps made a 4 s copy)
        self._interval = max(1, round(1000 / rate))
        self._held: Any = None
        self._shown: dict[int, int] = {}  # pts -> milliseconds shown, until the encoder's packet comes out
        # the encoder's latest packet, muxed once the next one comes, the last at close (_mux_last). Packets
        # come in decode order, their decode times trailing the frames' times by the B-frame delay (counted in
        # the first intervals), and an MP4's samples end at the last packet's decode time plus its duration:
        # where frames come further apart towards the end (a clip slowing down, a camera stall, frames sampled
        # from a variable rate, a GIF's long last delay), FFmpeg and the players on it stopped the copy early
        self._pending: Any = None
        self._delay = 0  # the first packet's time less its decode time (the B-frame delay), its time base

    def write(self, image: Image.Image | np.ndarray, time: float) -> None:
        """Append a frame shown from ``time`` seconds on."""
        import av

        size = (self.width, self.height)
        if isinstance(image, np.ndarray) and image.shape[1::-1] == size:  # the common case: no copy
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), "rgb24")
        else:
            if not isinstance(image, Image.Image):
                image = Image.fromarray(np.ascontiguousarray(image))
            if image.size != size:
                # an odd side loses its last pixel (yuv420p); any other size is scaled, never cropped, so the
                # whole picture is kept
                trim = 0 <= image.width - self.width <= 1 and 0 <= image.height - self.height <= 1
                image = image.crop((0, 0, *size)) if trim else image.resize(size, Image.Resampling.BILINEAR)
            frame = av.VideoFrame.from_image(image.convert("RGB"))
        pts = max(round(time * 1000), self._last_pts + 1)
        self._last_pts = pts
        frame.pts, frame.time_base = pts, fractions.Fraction(1, 1000)
        self._encode_held(pts)
        self._held = frame

    def _encode_held(self, until: int) -> None:
        """Encode the frame held back, shown until ``until`` (milliseconds)."""
        frame, self._held = self._held, None
        if frame is not None:
            self._shown[frame.pts] = max(1, until - frame.pts)
            self._mux(self._stream.encode(frame))

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            shown = self._shown.pop(packet.pts, None) if packet.pts is not None else None
            if shown is not None:
                packet.duration = shown
            pending, self._pending = self._pending, packet
            if pending is None:  # the first packet (a key frame: the first frame shown too)
                if packet.pts is not None and packet.dts is not None:
                    self._delay = packet.pts - packet.dts
            else:
                self._container.mux(pending)

    def _mux_last(self, stop: int | None) -> None:
        """Mux the last packet. In MP4 it lasts until ``stop`` (milliseconds: where the last frame shown
        stops) in decode time, that is less the B-frame delay, as in a constant-rate file, so the samples end
        where the video does; and it is decoded no earlier than that delay before it is shown, so that it is
        not shown past ``stop`` either (the edit list, the length browsers show, is taken from the times
        shown). Matroska keeps the times shown only, and the last frame shown lasts until ``stop`` already."""
        packet, self._pending = self._pending, None
        if packet is None:
            return
        tb, dts, pts = packet.time_base, packet.dts, packet.pts
        if self._decode_timed and stop is not None and dts is not None and pts is not None and tb:
            until = round(fractions.Fraction(stop, 1000) / tb) - self._delay  # decode time, in the time base
            packet.dts = dts = max(dts, pts - self._delay)  # later than the packet before it still
            packet.duration = max(until - dts, 1)
        self._container.mux(packet)

    def close(self, end: float | None = None) -> None:
        """Flush the encoder and finish the file (writes the index at the front: plays while downloading).
        ``end``: when the video ends (seconds, e.g. :attr:`VideoReader.end`), where the last frame stops;
        without it the last frame lasts ``1 / fps``."""
        if self._container is None:
            return
        try:
            stop = None
            if self._held is not None:
                last = self._held.pts
                stop = last + self._interval
                if end is not None and math.isfinite(end):
                    stop = max(round(end * 1000), last + 1)
                self._encode_held(stop)
            self._mux(self._stream.encode())
            self._mux_last(stop)
        finally:
            self._held = self._pending = None
            self._container.close()
            self._container = None

    def abort(self) -> None:
        """Close the file without flushing the encoder's queued frames, errors ignored: for a file about to be
        deleted (an analysis whose visitor left)."""
        container, self._container = self._container, None
        self._held = self._pending = None
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def writable_problem(path: str | os.PathLike) -> str | None:
    """Why :class:`VideoWriter` cannot write an annotated video named ``path`` (its suffix), or ``None``."""
    suffix = Path(path).suffix.lower()
    if suffix in WRITABLE_SUFFIXES:
        return None
    names = ", ".join(WRITABLE_SUFFIXES[:-1]) + " or " + WRITABLE_SUFFIXES[-1]
    why = {
        ".avi": "AVI cannot keep the annotated video's H.264 timestamps (its frames come back out of order)",
        "": "a suffix chooses the annotated video's container",
    }.get(suffix, f"the annotated video is H.264, which a {suffix} file cannot hold")
    return f"{why}; name it {names}"
