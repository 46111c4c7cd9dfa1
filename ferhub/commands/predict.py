"""``ferhub predict PATH...``: the expression of every face in photos and videos, as JSON, CSV or a table.

Results are written as they come (photos in small batches, videos frame by frame) and each input is released
once written, so memory stays flat whatever the number of photos or the length of the videos. A bad file gets
its own error (in the JSON, and one line on stderr) and never loses the others. Ctrl-C (or SIGTERM) stops
at the next whole photo or frame with valid output.

Under ``torchrun --nproc_per_node N`` with ``--out-dir``, the inputs are shared out across the processes (one
GPU each where there are GPUs), each input's result goes to its own file, and a rerun skips finished inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import signal
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, TextIO

from ferhub.cli import debug_traceback, describe
from ferhub.commands import DEVICE_HELP, device_arg, input_path, output_path

PHOTO_BATCH = 16  # photos decoded and classified together; all are released before the next batch
# --out-dir errors of the output folder, not of one input: they end the run rather than fail every input left
FOLDER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


# the video options' defaults: declared once, for their arguments and for the note that they do nothing
# when no input is a video
VIDEO_DEFAULTS = {"fps": None, "detect_every": 3, "smooth": 0.3, "max_side": 1920}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="+",
        type=input_path,
        metavar="PATH",
        help="photos, videos or folders (searched recursively)",
    )
    p.add_argument(
        "--model",
        action="append",
        type=input_path,
        metavar="ID|PATH",
        help="bundled name, Hub id (org/name[@revision]) or local model folder; repeat to run several "
        "(default: the bundled FER2013 mini-Xception)",
    )
    p.add_argument("--device", type=device_arg, default=None, help=DEVICE_HELP)
    p.add_argument("--format", choices=("json", "csv", "table"), default="json", help="output format")
    p.add_argument(
        "--no-face",
        choices=("skip", "fallback"),
        default="skip",
        help="photo without a detected face: report no faces (skip) or classify the whole image (fallback)",
    )
    p.add_argument(
        "--min-face-size",
        type=int,
        default=None,
        help="face side (pixels) where the face search starts; not a filter: smaller faces may be found",
    )
    p.add_argument(
        "--saliency",
        metavar="METHOD",
        default=None,
        help="also write attribution overlays of photos (gradcam, guided_backprop, integrated_gradients, "
        "saliency, occlusion) into --out: NAME_faceN_METHOD.png per face and NAME_METHOD.jpg per photo, for "
        "every --model (with several, NAME_MODEL_faceN_METHOD.png and NAME_MODEL_METHOD.jpg: each model's "
        "attributions take their own time); a photo whose overlay would replace an input or another photo's "
        "overlay is named NAME-2 (NAME-3, ...)",
    )
    p.add_argument(
        "--out", type=output_path, metavar="DIR", default=None, help="folder for --saliency overlays"
    )
    v = p.add_argument_group("videos")
    v.add_argument(
        "--fps",
        type=float,
        default=VIDEO_DEFAULTS["fps"],
        help="analyse at most N frames per second (default: all)",
    )
    v.add_argument(
        "--detect-every",
        type=int,
        default=VIDEO_DEFAULTS["detect_every"],
        metavar="K",
        help=(
            "detect faces on every K-th analysed frame; the tracker carries boxes in between and every"
            " analysed frame is classified (default 3; 1 detects on every frame)"
        ),
    )
    v.add_argument(
        "--smooth",
        type=float,
        default=VIDEO_DEFAULTS["smooth"],
        metavar="SECONDS",
        help=(
            "time constant of the per-face smoothing of probabilities (default 0.3; 0 = off). Raw values are"
            " kept: CSV rows and JSON 'probabilities' are per frame, JSON 'smoothed' and --annotate are"
            " smoothed"
        ),
    )
    v.add_argument(
        "--annotate",
        type=output_path,
        metavar="OUT.mp4|DIR",
        default=None,
        help="write each video with boxes, face ids and smoothed labels (H.264 in .mp4, .m4v, .mov or .mkv; "
        ".mp4 plays in browsers); a folder when several videos are given",
    )
    v.add_argument(
        "--max-side",
        type=int,
        default=VIDEO_DEFAULTS["max_side"],
        help="downscale larger video frames to this (pixels)",
    )
    p.add_argument(
        "--out-dir",
        type=output_path,
        metavar="DIR",
        default=None,
        help=(
            "write one result file per input (PATH.json / PATH.csv) into DIR instead of stdout; inputs with a"
            " result there are skipped (resume). Under torchrun the inputs are split across the processes"
        ),
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr for videos (default: when stderr is a terminal)",
    )


def say(message: str, path: object = None) -> None:
    """One line on stderr, naming ``path`` unless the message already starts with it."""
    from ferhub.writers import printable

    text = str(message)
    if path is not None and not text.startswith(str(path)):
        text = f"{path}: {text}"
    print(f"ferhub predict: {printable(text)}", file=sys.stderr)


def _shard() -> tuple[int, int]:
    """``(rank, world size)`` from torchrun's environment; ``(0, 1)`` when run plainly."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _device(args: argparse.Namespace) -> str | None:
    if args.device or "LOCAL_RANK" not in os.environ:
        return args.device
    from ferhub.device import default_device

    return default_device(int(os.environ["LOCAL_RANK"]))


FIRST_RUN = (
    "ferhub: the first run on this machine prepares face detection (its nets exported to ONNX, its kernels"
    " compiled, both kept for later runs): ~10 s, once"
)


def first_run_notice(device: str, stream: TextIO) -> bool:
    """Tell a person at a terminal why the first photo takes ~10 s (``ferhub predict`` says nothing else until
    its results); returns whether it did. Scripts reading a pipe get no such line."""
    from ferhub import _mtcnn_onnx
    from ferhub.predict import resolve_runtime

    if not stream.isatty() or resolve_runtime("auto", device) != "onnx" or _mtcnn_onnx.graphs_cached():
        return False
    print(FIRST_RUN, file=stream, flush=True)
    return True


def _predictor(args: argparse.Namespace) -> Any:
    from ferhub.device import device_name
    from ferhub.faces import FaceDetector
    from ferhub.predict import Predictor, default_device

    device = _device(args)
    first_run_notice(device_name(device), sys.stderr)
    detector = None
    if args.min_face_size:
        detector = FaceDetector(min_face_size=args.min_face_size, device=device or default_device())
    return Predictor(args.model, device=device, detector=detector, no_face=args.no_face)


def _saliency_methods(args: argparse.Namespace, predictor: Any) -> list[str]:
    """The attribution method to write for each model, with the app's fallback for an ensemble under
    Grad-CAM (stated)."""
    from ferhub.saliency import method_id

    method = method_id(args.saliency)
    methods = []
    for model, name in zip(predictor.models, predictor.names):
        if method == "gradcam" and getattr(model, "members", None) is not None:
            say(
                f"Grad-CAM explains one convolutional layer and {name} is an ensemble; writing "
                "integrated_gradients overlays instead (as the app does)"
            )
            methods.append("integrated_gradients")
        else:
            methods.append(method)
    return methods


STOPPING = {
    signal.SIGINT: "stopping after the current photo or frame (Ctrl-C again to stop at once)",
    signal.SIGTERM: "SIGTERM: stopping after the current photo or frame",
}


class Interrupt:
    """Ctrl-C (or SIGTERM) as a request: the run stops at the next point where its output is whole (between
    frames, between photos), never half-way through a write; it says so at once, since a photo's saliency
    overlays can take seconds. A second signal stops at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False

    def _handler(self, signum: int, frame: Any) -> None:
        from ferhub.cli import stop_requested

        stop_requested(signum)  # ferhub.cli's exit status: 130 for Ctrl-C, 143 for SIGTERM
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        # os.write, not print: the handler may run inside a print to stderr, which would not take another
        with contextlib.suppress(OSError):
            os.write(2, f"ferhub predict: {STOPPING[signum]}\n".encode())

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # signals only reach the main thread
            yield
            return
        previous = {s: signal.signal(s, self._handler) for s in self.SIGNALS}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


class Job:
    """One ``ferhub predict`` run: the predictor, the video settings, and where results go."""

    def __init__(
        self,
        args: argparse.Namespace,
        predictor: Any,
        saliency: list[str] | None,
        inputs: Collection[tuple[int, int]] = (),
        videos: Collection[Path] = (),
    ) -> None:
        from ferhub.video import VideoAnalyzer

        self.args = args
        self.predictor = predictor
        self.saliency = saliency  # one method per model
        self.inputs = inputs  # the file_id of every input: overlays never go over one
        self.videos = videos  # the inputs analysed as videos (Inputs.videos: told once, by name or header)
        self.analyzer = VideoAnalyzer(
            predictor,
            detect_every=args.detect_every,
            fps=args.fps,
            smooth=args.smooth,
            max_side=args.max_side,
        )
        self.progress = sys.stderr.isatty() if args.progress is None else args.progress
        self.interrupt = Interrupt()
        self.ok = 0
        self.failed = 0
        self.overlay_stems: set[str] = set()  # overlay names used so far, across the photo batches

    # -- photos ---------------------------------------------------------------------------------------------
    def photos(self, paths: list[Path], writer: Any) -> None:
        results = self.predictor.predict(paths)
        for r in results:
            self.interrupt.check()
            if r.error:
                say(r.error, r.path)
            writer.photo(r)
        # an overlay not written is its photo's error, as an annotated copy is its video's: counted as failed
        # (under --out-dir no result file, so a rerun retries it)
        no_overlays = self._overlays([r for r in results if r.ok and r.faces]) if self.saliency else set()
        for r in results:
            if r.error or id(r) in no_overlays:
                self.failed += 1
            else:
                self.ok += 1

    def _overlays(self, results: list[Any]) -> set[int]:
        """Write each photo's overlays; returns the ``id`` of each result whose overlays were not all
        written."""
        from ferhub.saliency import SaliencyError, write_overlays

        failed: set[int] = set()
        # photo by photo: attributions take seconds a face (occlusion), so a stop waits for one photo's
        # overlays, not a whole batch's, and each photo's are said as soon as they are written; one photo's
        # failure is its own (a full disk, a name too long), never its batch's
        for result in results:
            self.interrupt.check()

            def not_written(path: Path, error: OSError, result: Any = result) -> None:
                say(f"overlay {path} not written ({error.strerror or error})", result.path)
                failed.add(id(result))

            try:
                for path in write_overlays(
                    self.predictor,
                    [result],
                    method=self.saliency,
                    out_dir=self.args.out,
                    on_error=not_written,
                    taken=self.overlay_stems,
                    is_input=lambda path: file_id(path) in self.inputs,
                ):
                    say(f"wrote {path}")
            except (SaliencyError, OSError) as e:
                say(f"overlays not written: {e}", result.path)
                failed.add(id(result))
        return failed

    # -- videos ---------------------------------------------------------------------------------------------
    def video(self, path: Path, writer: Any, annotate: Path | None) -> None:
        import av

        from ferhub.videoio import NotAVideoError, VideoDecodeError, VideoWriter

        try:
            run = self.analyzer.open(path)
        except NotAVideoError as e:
            what = "its first frame" if e.frames > 1 else "it"
            say(f"{e}; classifying {what} as a photo")
            self.photos([path], writer)
            return
        except VideoDecodeError as e:
            self.failed += 1
            say(e, path)
            writer.error(str(path), "video", str(e))
            return
        writer.video_begin(run)
        out = None
        # the annotated copy failing (disk full, a folder that went away) is this video's error: the analysis
        # goes on, the entry is closed as usual, and the other inputs are processed
        out_error: str | None = None
        bar = self._bar(run)
        interrupted = True
        try:
            if annotate is not None:
                try:
                    out = VideoWriter(
                        annotate, run.info.width, run.info.height, self.args.fps or run.info.fps or 25
                    )
                except (OSError, ValueError, av.FFmpegError) as e:
                    out_error = _annotate_failed(annotate, e, None)
            for frame in run:
                writer.video_frame(run, frame)
                if out is not None:
                    from ferhub.video import draw_frame

                    drawn = draw_frame(frame)
                    try:
                        out.write(drawn, frame.time)
                    except (OSError, av.FFmpegError) as e:
                        out_error = _annotate_failed(annotate, e, out)
                        out = None
                if bar is not None:
                    bar.update(1)
                self.interrupt.check()  # after a whole frame: the summaries count exactly the frames written
            interrupted = False
        finally:  # Ctrl-C included: close the annotated file and the entry so both stay valid
            run.close()
            if bar is not None:
                bar.close()
            if out is not None:
                try:
                    out.close(end=run.end)  # the copy lasts as long as the video, however sampled
                except (OSError, av.FFmpegError) as e:  # the last frames flushed to a full disk
                    out_error = _annotate_failed(annotate, e, out)
                    out = None
            decode_error = run.error
            if out_error:
                run.error = f"{decode_error}; {out_error}" if decode_error else out_error
            writer.video_end(run, interrupted=interrupted)
        if decode_error:
            say(f"{decode_error}; the {run.frames_done} frames before it are kept", None)
        if out_error:  # counted as failed: under --out-dir a rerun retries it and writes the copy
            say(out_error, path)
            self.failed += 1
        elif run.frames_done or not run.error:
            self.ok += 1
        else:
            self.failed += 1
        if out is not None:
            say(f"wrote {annotate}")

    def _bar(self, run: Any) -> Any:
        if not self.progress:
            return None
        from tqdm import tqdm

        total = run.info.expected_frames
        if self.args.fps and run.info.duration:
            total = min(total or 10**12, int(run.info.duration * self.args.fps) + 1)
        name = Path(run.path).name
        return tqdm(
            total=total, unit="frame", desc=name[:40], file=sys.stderr, dynamic_ncols=True, leave=False
        )


def _annotate_failed(target: Path, error: Exception, out: Any) -> str:
    """The error of an annotated copy that could not be written; a half-written one (``out``) is closed and
    removed, as it would not play."""
    if out is not None:
        with contextlib.suppress(Exception):  # closing a file on a full disk fails again: it goes anyway
            out.close()
        with contextlib.suppress(OSError):
            target.unlink()
    # the words only: no "[Errno 28]", and not the file name PyAV appends (the message names it already)
    reason = getattr(error, "strerror", None) or str(error).split(": '", 1)[0]
    return f"annotated copy {target} not written ({reason}); the results are kept"


def option_error(args: argparse.Namespace) -> str | None:
    """The line refusing the first option value that cannot work, or ``None``: checked before any input is
    read or model loaded, so a typo costs no waiting and exits 2 (wrong arguments), not 1."""
    from ferhub.commands import device_error
    from ferhub.faces import MIN_MAX_SIDE  # the detector's floor, which VideoAnalyzer checks too

    if error := device_error(args.device):
        return error
    if args.min_face_size is not None and args.min_face_size < 1:
        return f"--min-face-size must be a positive number of pixels, got {args.min_face_size}"
    # written as not (x > 0): NaN, for which every comparison is false, is refused too
    if args.fps is not None and not (args.fps > 0 and math.isfinite(args.fps)):
        return f"--fps must be a positive number of frames per second, got {args.fps}"
    if args.detect_every < 1:
        return f"--detect-every must be 1 or more, got {args.detect_every}"
    if not (args.smooth >= 0 and math.isfinite(args.smooth)):
        return f"--smooth must be 0 (off) or a positive number of seconds, got {args.smooth}"
    if args.max_side < MIN_MAX_SIDE:
        return f"--max-side must be at least {MIN_MAX_SIDE} pixels, got {args.max_side}"
    if args.saliency is not None:
        from ferhub.saliency import SaliencyError, method_id

        try:
            method_id(args.saliency)
        except SaliencyError as e:
            return f"--saliency: {e}"
    return None


def file_id(path: Path) -> tuple[int, int] | None:
    """``(device, inode)`` of the file at ``path`` (links followed), ``None`` where there is none: one key for
    a file however its path is spelt (links, ``..``, the case of a case-insensitive file system)."""
    try:
        st = path.stat()
    except (OSError, ValueError):  # missing, unreadable, or a name the OS refuses (a NUL)
        return None
    return st.st_dev, st.st_ino


def input_ids(files: list[Path]) -> dict[tuple[int, int], Path]:
    """Each input by its :func:`file_id`, which a link or another spelling of its path shares: what
    ``--annotate`` and ``--saliency`` never write over. A missing input has none (it gets its own error
    later)."""
    ids: dict[tuple[int, int], Path] = {}
    for f in files:
        key = file_id(f)
        if key is not None:
            ids.setdefault(key, f)
    return ids


def out_unwritable(args: argparse.Namespace) -> str | None:
    """The line refusing an ``--out`` folder that cannot be made or written (a file there, or a file where
    one of its parent folders must be), or ``None``: checked before any input is read, so a long run does not
    end with no overlays."""
    out = Path(args.out)
    option = f"--out {args.out}"
    problem = _not_a_folder(out, option, "--saliency writes its overlays into a folder")
    if problem:
        return problem
    problem = folder_unwritable(out)
    return f"{option}: {problem}" if problem else None


def out_dir_unwritable(args: argparse.Namespace) -> str | None:
    """The line refusing an ``--out-dir`` that cannot be made or written (a file there or where one of its
    parent folders must be, no permission, a read-only disk), or ``None``: checked once, before any input is
    read, not found out input by input (one "result not written" line each); made by the first result."""
    return out_folder_unwritable(
        Path(args.out_dir),
        f"--out-dir {args.out_dir}",
        "--out-dir writes a result file per input into a folder",
    )


def out_folder_unwritable(out: Path, option: str, use: str) -> str | None:
    """The line refusing an output folder ``out`` (given as ``option``; ``use`` says what it is for) that
    cannot be made or written, or ``None``: :func:`out_dir_unwritable`'s check, shared with ``evaluate
    --out``."""
    return _not_a_folder(out, option, use) or _cannot_write_into(out, option)


def out_file_unwritable(out: Path, option: str) -> str | None:
    """The line refusing an output file ``out`` (given as ``option``) that cannot be written, or ``None``: a
    folder or a dangling link there, a file where one of its parent folders must be (made where missing), no
    permission, a read-only disk. The file-side twin of :func:`out_folder_unwritable`, checked before any
    work by every command writing one file (``report --out``, ``compare --json`` and ``--out``)."""
    if out.is_dir():
        return f"{option}: {out} is a folder; give a file name"
    if out.is_symlink() and not out.exists():
        return f"{option}: {out} is a link to {os.readlink(out)}, which does not exist"
    return _cannot_write_into(out.parent, option)


def _cannot_write_into(folder: Path, option: str) -> str | None:
    """Why files cannot be written into ``folder`` (given through ``option``), made where missing: a file
    where it or one of its parents must be, no permission, a read-only disk; ``None`` when they can. The
    one probe of :func:`out_folder_unwritable` and :func:`out_file_unwritable`."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        return f"{option}: cannot make {folder}: {existing} is a file, not a folder"
    # tried, not asked of os.access: its "no" does not say why (a read-only disk reads as no permission); in
    # the nearest folder there, so that a run refused later (a model that cannot load) leaves no folder made
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        return f"{option}: cannot write into {existing} ({e.strerror or e})"
    return None


def _not_a_folder(out: Path, option: str, use: str) -> str | None:
    """The line refusing an output folder ``out`` (given as ``option``) that is a dangling link or a file
    (``use`` says what the folder is for), or ``None``."""
    if out.is_symlink() and not out.exists():
        return f"{option}: {out} is a link to {os.readlink(out)}, which does not exist"
    if out.exists() and not out.is_dir():
        return f"{option}: {out} is a file, not a folder; {use}"
    return None


def _nearest_existing(folder: Path) -> Path:
    """``folder``, or the nearest of its parents that exists."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def folder_unwritable(folder: Path, hint: str = "") -> str | None:
    """Why files cannot be written into ``folder``, made where missing: a file where it or one of its parent
    folders must be (``hint`` follows that message), or no permission; ``None`` when they can."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        return f"cannot make {folder}: {existing} is a file, not a folder{hint}"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write into {existing} (permission denied)"
    return None


def annotate_clash(args: argparse.Namespace, files: list[Path], targets: dict[Path, Path]) -> str | None:
    """The line refusing an ``--annotate`` target that is one of the inputs (writing it would destroy that
    input), or ``None``; ``targets`` is :func:`annotate_targets`. Compared by device and inode, so links and
    other spellings of a path are caught."""
    inputs = input_ids(files)
    for video, target in targets.items():
        key = file_id(target)  # None: not there yet, nothing to overwrite
        clash = None if key is None else inputs.get(key)
        if clash is not None:
            return (
                f"--annotate would write {video}'s annotated copy over the input {clash}; give another file"
                " or folder"
            )
    return None


def annotate_unwritable(args: argparse.Namespace, targets: dict[Path, Path]) -> str | None:
    """The line refusing an ``--annotate`` target that cannot be written, or ``None``: a suffix whose
    container cannot hold H.264 (``.webm``, ``.gif``, ``.avi``), or a file where a folder must be. Checked
    before any input is read, so a run is not lost half-way to it."""
    from ferhub.videoio import writable_problem

    option = f"--annotate {args.annotate}"
    for target in targets.values():
        problem = writable_problem(target)
        if problem:
            return f"{option}: {problem}"
        if target.is_dir():
            return f"{option}: {target} is a folder; give a file name"
        why = ""
        if target.parent == Path(args.annotate):  # a folder by the rules of annotate_targets
            why = " (--annotate names a folder when several videos are given or it has no file suffix)"
        problem = folder_unwritable(target.parent, why)
        if problem:
            return f"{option}: {problem}"
    return None


def annotate_targets(args: argparse.Namespace, videos: list[Path]) -> dict[Path, Path]:
    """Where each video's annotated copy goes: ``--annotate`` itself for one video (unless it is a folder),
    else ``NAME.annotated.mp4`` inside that folder. With several videos the copies keep the videos'
    sub-folders under the deepest folder holding them all (two ``clip.mp4`` of different folders are two
    files), and a video whose copy would be named like another's (``clip.mp4`` beside ``clip.mkv`` or
    ``clip.mp4.mkv``) keeps its extension (``clip.mp4.annotated.mp4``): no two copies are one file."""
    if not args.annotate or not videos:
        return {}
    target = Path(args.annotate)
    if len(videos) == 1 and target.suffix and not target.is_dir():
        return {videos[0]: target}
    folders = {v: v.resolve().parent for v in videos}
    root = Path(os.path.commonpath([str(f) for f in folders.values()]))

    def copy_of(v: Path, name: str) -> Path:
        return target / folders[v].relative_to(root) / f"{name}.annotated.mp4"

    targets = {v: copy_of(v, v.stem) for v in folders}
    while True:  # a copy named like another's (by stem, or stem against full name) takes the full name
        taken = Counter(targets.values())
        clashing = [v for v, t in targets.items() if taken[t] > 1 and t != copy_of(v, v.name)]
        if not clashing:
            return targets
        targets.update({v: copy_of(v, v.name) for v in clashing})


def _process(job: Job, files: list[Path], writer: Any, annotated: dict[Path, Path]) -> None:
    """Photos in batches, videos (and animated GIFs) one by one, in the order given."""
    from ferhub.videoio import undecodable_animation

    batch: list[Path] = []
    for f in files:
        if f in job.videos:
            if batch:
                job.photos(batch, writer)
                batch = []
            job.video(f, writer, annotated.get(f))
        else:
            frames = undecodable_animation(f)
            if frames:  # said, since the other frames are left out
                say(
                    f"an animated WebP of {frames} frames, which FFmpeg cannot decode as a video; classifying"
                    " its first frame as a photo (convert it to MP4 or GIF to analyse every frame)",
                    f,
                )
            batch.append(f)
            if len(batch) >= PHOTO_BATCH:
                job.photos(batch, writer)
                batch = []
    if batch:
        job.photos(batch, writer)


def _to_stdout(job: Job, files: list[Path], annotated: dict[Path, Path]) -> int:
    from ferhub.writers import make_writer

    writer = make_writer(job.args.format, sys.stdout, job.predictor)
    writer.begin()
    try:
        with job.interrupt.installed():
            _process(job, files, writer, annotated)
    except KeyboardInterrupt:
        writer.end()
        say("interrupted; the output written so far is complete and valid")
        return 130
    except BaseException:
        writer.end()  # whatever went wrong, what was written stays valid (closed) output
        raise
    writer.end()
    return 0 if job.ok else 1


def _to_folder(job: Job, found: Any, annotated: dict[Path, Path]) -> int:
    """One result file per input under ``--out-dir``; this process's share under torchrun; finished
    skipped."""
    from ferhub.fileio import DISK_FULL, NAME_MAX, name_folding, new_temp, remove_stale_temps_of
    from ferhub.writers import make_writer

    rank, world = _shard()
    out_dir = Path(job.args.out_dir)
    suffix = ".csv" if job.args.format == "csv" else ".json"
    out_dir.mkdir(parents=True, exist_ok=True)  # (checked writable before the model loaded)
    # asked of the folder's file system: names are tagged apart only where it would take two for one
    names = found.result_names(name_folding(out_dir), out_dir, suffix)
    mine = [
        (f, out_dir / f"{name}{suffix}")
        for i, (f, name) in enumerate(zip(found.files, names))
        if i % world == rank
    ]
    # what an earlier run killed past any handler (SIGKILL, a crash, a reboot) left half-written: only this
    # process's own targets, and only files whose writer has ended (another rank may be writing)
    remove_stale_temps_of(target for _, target in mine)
    done = failed = 0
    for f, target in mine:
        # os.path: False, not an error, for a name too long to exist (it fails below as that input's error)
        if os.path.exists(target):
            done += 1
            continue
        tmp: Path | None = None
        failed_before = job.failed
        try:
            if len(os.fsencode(target.name)) > NAME_MAX:  # said before the work, not after it
                raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), str(target))
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = new_temp(target)  # with the mode open() gives: the umask honoured
            with open(tmp, "w", encoding="utf-8", newline="") as out, job.interrupt.installed():
                writer = make_writer(job.args.format, out, job.predictor, array=False)
                writer.begin()
                _process(job, [f], writer, annotated)
                writer.end()
            if job.failed > failed_before:  # no result file: its error went to stderr, and a rerun retries it
                failed += 1
                continue
            os.replace(tmp, target)  # complete files only: a rerun redoes an interrupted input
        except KeyboardInterrupt:
            say(f"interrupted; finished inputs are in {out_dir}, a rerun continues")
            return 130
        except (OSError, UnicodeError) as e:
            if getattr(e, "errno", None) in FOLDER_ERRNOS:  # every later input would fail the same way
                if isinstance(e, OSError) and e.errno in DISK_FULL:  # write() names no file: the result's
                    e.filename, e.filename2 = str(target), None
                raise
            # this input's own error (a result name longer than the file system allows): the others go on
            say(f"result not written to {target} ({getattr(e, 'strerror', None) or e})", f)
            failed += 1
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
    shard = f"process {rank + 1}/{world}: " if world > 1 else ""
    retry = f", {failed} failed (a rerun retries them)" if failed else ""
    written = len(mine) - done - failed
    say(f"{shard}{written} input(s) written to {out_dir}, {done} already done{retry}")
    if job.saliency and done:  # their photos were not read again: no overlays, said rather than left out
        say(
            f"note: no --saliency overlays for the {done} input(s) already done in {out_dir}; delete their"
            " result files to redo them"
        )
    return 0 if written or done or not mine else 1


def stdout_results(args: argparse.Namespace) -> str | None:
    """How to keep the results where they go to stdout: started with stdout closed (``>&-``: cron, a daemon),
    the run is refused before any work (:func:`ferhub.cli._stdout_refused`)."""
    return None if args.out_dir else "give --out-dir DIR or send stdout to a file"


def run(args: argparse.Namespace) -> int:
    from ferhub.hub import ModelLoadError
    from ferhub.inputs import scan

    problem = option_error(args)
    if problem:
        say(problem)
        return 2
    # --saliency's overlays are photos: inside a folder scanned, they were the next run's inputs
    found = scan(args.paths, outputs=[args.out] if args.saliency and args.out else [])
    notes = [found.skipped_message()]
    if found.outputs:
        notes.append(f"note: {found.outputs} file(s) in --out {args.out} (overlays) left out of the inputs")
    notes = [n for n in notes if n]
    if not found.files:  # one line: what was left out is why nothing was found
        said = f" ({'; '.join(notes)})" if notes else ""
        say("no photo or video files found in " + ", ".join(args.paths) + said)
        return 2
    for note in notes:
        say(note)
    if args.saliency and not args.out:
        say("--saliency needs --out DIR")
        return 2
    if args.saliency and (problem := out_unwritable(args)):
        say(problem)
        return 2
    if _shard()[1] > 1 and not args.out_dir:
        say("under torchrun, give --out-dir DIR: each process writes one result file per input")
        return 2
    if args.out_dir and args.format == "table":
        say("--out-dir writes json or csv files; choose --format json or csv")
        return 2
    if args.out_dir and (problem := out_dir_unwritable(args)):
        say(problem)
        return 2
    videos = found.videos()
    # options that would do nothing here: said, not silently dropped (the run still goes on)
    if args.out and not args.saliency:
        say("note: --out is where --saliency writes its overlays; without --saliency nothing goes there")
    if args.annotate and not videos:
        say("note: --annotate writes annotated videos; there is no video among the inputs")
    given = [f"--{k.replace('_', '-')}" for k, value in VIDEO_DEFAULTS.items() if getattr(args, k) != value]
    if given and not videos:
        say(f"note: {', '.join(given)} set(s) how videos are analysed; there is no video among the inputs")
    if args.saliency and len(videos) == len(found.files):
        say("note: --saliency writes overlays of photos; there is no photo among the inputs")
    annotated = annotate_targets(args, videos)
    clash = annotate_clash(args, found.files, annotated) or annotate_unwritable(args, annotated)
    if clash:
        say(clash)
        return 2
    try:
        predictor = _predictor(args)
        saliency = _saliency_methods(args, predictor) if args.saliency else None
    except (ModelLoadError, ValueError) as e:
        debug_traceback(args)
        say(str(e).splitlines()[0])
        return describe(e)[0]  # 1, or 3 for a Hub model the Hub cannot be reached for
    job = Job(args, predictor, saliency, set(input_ids(found.files)) if saliency else (), set(videos))
    if args.out_dir:
        return _to_folder(job, found, annotated)
    return _to_stdout(job, found.files, annotated)
