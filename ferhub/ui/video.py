"""Video tab: a clip in -> the annotated video, a timeline per person (smoothed and raw), per-person
summaries,
and the CSV/JSON files ``ferhub predict`` would write. Thin over :mod:`ferhub.video` and
:mod:`ferhub.writers`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from ferhub.ui import state, visitors

MAX_SECONDS = 120  # longer clips are refused: a public server shares its CPU between visitors
MAX_ANALYSIS_FPS = 10.0
DEFAULT_FPS = 5.0
MAX_SIDE = 1280  # frames are analysed and annotated at this size at most
MAX_SMOOTH = 3.0  # seconds: the slider's end
# videos analysed at once, all visitors together: the event's concurrency limit, and held here too, since
# Gradio frees the event's slot on a cancel while the analysis still runs (until it sees it was cancelled)
AT_ONCE = 1
_ANALYSING = threading.BoundedSemaphore(AT_ONCE)
LIMITS = (
    f"Up to {state.MAX_UPLOAD.upper()} and {MAX_SECONDS // 60} minutes; MP4, MOV, MKV, WebM or AVI. Frames"
    f" are analysed at up to {MAX_ANALYSIS_FPS:g} per second and {MAX_SIDE} px; faces are tracked (each"
    " person keeps a number through an absence of up to 2 s; someone away longer comes back with a new"
    " number, counted as another person) and their probabilities smoothed over time."
)


# what a new clip, models, frame rate or smoothing leave in the outputs: nothing, and with a clip in, this
STALE_NOTE = "Clip or settings changed: press Analyse for the results with them."


def _empty_outputs() -> str:
    """The tab's outputs (video, timeline, summary, files) empty, as JavaScript: the summary keeps its column
    names (a ``null`` table is drawn with columns 0-6)."""
    from ferhub import timeline as tl

    table = json.dumps({"headers": list(tl.SUMMARY_HEADER), "data": [], "metadata": None})
    return f"null, null, {table}, []"


def clear_js() -> str:
    """What a failed run leaves in the tab's outputs (video, timeline, summary, files, status): nothing, as
    the Classify tab does, instead of the last clip's results and status line under the new clip."""
    return f"() => [{_empty_outputs()}, '']"


def stale_js() -> str:
    """What a new clip (or none) or new settings leave in the outputs: nothing, as the Classify tab does for
    new settings (the last results were another clip's, or made with other settings; their downloads too),
    and with a clip in, :data:`STALE_NOTE` as the status."""
    return f"(clip) => [{_empty_outputs()}, clip ? {json.dumps(STALE_NOTE)} : '']"


_ERRNO = re.compile(r"\[Errno -?\d+\] ")


def plain(text: str) -> str:
    """``text`` without Python's ``[Errno N]`` prefixes: FFmpeg's are error codes such as 1094995529
    (AVERROR_INVALIDDATA), which tell a visitor nothing; the words after them say what is wrong."""
    return _ERRNO.sub("", text)


def _open(predictor: Any, path: str, fps: float, smooth: float) -> Any:
    from ferhub.video import VideoAnalyzer
    from ferhub.videoio import NotAVideoError, VideoDecodeError

    analyzer = VideoAnalyzer(predictor, fps=fps, smooth=smooth, max_side=MAX_SIDE)
    try:
        run = analyzer.open(path, name=Path(path).name)  # the downloads name the upload, not its server path
    except NotAVideoError as e:
        if e.frames > 1:  # an animated WebP: FFmpeg decodes none of its frames
            raise gr.Error(
                f"This is an animated picture of {e.frames} frames in a format this app cannot decode as a"
                " video (animated WebP): convert it to MP4 or GIF, or classify its first frame in the"
                " Classify tab.",
                title="Not a video",
            ) from e
        raise gr.Error(
            "This is a still picture, not a video: use the Classify tab.", title="Not a video"
        ) from e
    except VideoDecodeError as e:
        raise gr.Error(plain(str(e).replace(path, "The upload")), title="Not a usable video") from e
    if run.info.duration is not None and run.info.duration > MAX_SECONDS + 0.5:
        run.close()
        raise gr.Error(
            f"The clip is {run.info.duration:.0f} s long; this app analyses up to {MAX_SECONDS} s. Trim it,"
            " or run `ferhub predict CLIP --format csv` locally for any length.",
            title="Video too long",
        )
    return run


@contextlib.contextmanager
def _one_at_a_time() -> Iterator[None]:
    """Wait for a video analysis still running (:data:`AT_ONCE`): one cancelled a moment ago stops within a
    batch of frames. A wait whose own visitor leaves ends with :class:`~ferhub.ui.visitors.Gone`."""
    while not _ANALYSING.acquire(timeout=0.1):
        visitors.stop_if_gone()
    try:
        yield
    finally:
        _ANALYSING.release()


def setting(value: Any, what: str, default: float, low: float, high: float) -> float:
    """A slider's value within ``[low, high]`` (``None`` or 0: ``default``); ``gr.Error`` for what is no
    finite number. Gradio's own range check lets NaN through (every comparison with it is false): a NaN
    smoothing made every smoothed probability NaN, so every frame's label the first class, and a NaN frame
    rate was a server error."""
    if value is None or (value == 0 and not isinstance(value, bool)):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise gr.Error(
            f"{what} must be a number from {low:g} to {high:g}, got {value!r}.", title="Wrong value"
        )
    return min(max(number, low), high)


@contextlib.contextmanager
def _abort_on_stop(out: Any) -> Iterator[None]:
    """A stopped analysis (:class:`~ferhub.ui.visitors.Gone`) closes the annotated video without finishing it:
    the file is deleted next, and the encoder's flush only delayed the next visitor (and an error in it would
    have replaced the stop)."""
    try:
        yield
    except (visitors.Gone, _MovedOn):  # (a run its page moved on from: nobody downloads its copy either)
        out.abort()
        raise


# -- a run its page has moved on from ---------------------------------------------------------------------
# As in the Classify tab (both through visitors.PageInputs): a clip put in (or removed), or new models or
# settings, while a clip was analysed cleared the outputs (stale_js), and then that run's results landed
# under the new clip. The page reports what it holds (`put_in`, on each of those inputs); a run for anything
# else stops at its next frame and fills nothing. An API caller reports nothing: its runs never stop so.
MOVED_ON: Any = object()  # what _analyse returns for such a run


class _MovedOn(Exception):
    """The page a run works for holds another clip or other settings now."""


_PAGE = visitors.PageInputs("video")  # what each page's Video tab holds (clip, models, fps, smoothing)


def put_in(video: Any, models: Any, fps: Any, smooth: Any) -> None:
    """The Video tab's inputs the visitor's page holds now (their ``input`` events): a run for others stops
    (:meth:`.visitors.PageInputs.moved_on`)."""
    _PAGE.put(video, models, fps, smooth)


@state.gpu
def _analyse(
    predictor: Any, path: str, fps: float, smooth: float, progress: Any, moved_on: Callable[[], bool]
) -> Any:
    """Run the clip through the video path, writing the annotated video, the CSV and the JSON as it goes.
    Stops (:class:`~ferhub.ui.visitors.Gone`, its files removed) when its visitor cancels or leaves, and
    returns :data:`MOVED_ON` (its files removed) once its page holds another clip or other settings."""
    from ferhub.video import draw_frame
    from ferhub.videoio import VideoWriter
    from ferhub.writers import CsvWriter, JsonWriter

    run = _open(predictor, path, fps, smooth)
    labels = [tuple(c.labels) for c in predictor.configs]
    total = int(min(run.info.expected_frames or 1, (run.info.duration or 0) * fps + 1)) or None
    frames: list[dict[str, Any]] = []
    stopped = False
    written: list[Path] = []
    try:
        # downloads named after the clip (no server path in them), e.g. "interview.csv"
        written[:] = [state.download_path(path, s, "video") for s in ("-annotated.mp4", ".csv", ".json")]
        annotated, csv_path, json_path = written
        with (
            open(csv_path, "w", encoding="utf-8", newline="") as csv_file,
            open(json_path, "w", encoding="utf-8") as json_file,
            VideoWriter(annotated, run.info.width, run.info.height, fps) as out,
            _abort_on_stop(out),
        ):
            writers = [CsvWriter(csv_file, list(predictor.names), labels), JsonWriter(json_file, array=False)]
            for w in writers:
                w.begin()
                w.video_begin(run)
            for frame in run:
                if frame.time > MAX_SECONDS + 0.5:  # the header understated the length (or had none): stop
                    stopped = True
                    run.close()
                    break
                for w in writers:
                    w.video_frame(run, frame)
                out.write(draw_frame(frame), frame.time)
                frames.append(frame.to_dict())
                progress((run.frames_done, total), desc="analysing frames", unit="frames")
                # before the next frame (the run analyses the next batch of frames when asked for it): a
                # cancelled or abandoned analysis stops here, instead of running to the clip's end unseen
                visitors.stop_if_gone()
                if moved_on():
                    raise _MovedOn()
            # the copy lasts as long as the clip (sampled, its last frame stood for 1 / fps past its end)
            out.close(end=run.end)
            tracks = run.summaries()
            for w in writers:
                w.video_end(run, interrupted=False)
                w.end()
    except BaseException as e:
        run.close()
        for p in written:  # half-written files nobody will download
            p.unlink(missing_ok=True)
        if isinstance(e, _MovedOn):
            return MOVED_ON
        raise
    return {
        "annotated": str(annotated),
        "csv": str(csv_path),
        "json": str(json_path),
        "frames": frames,
        "tracks": tracks,
        "models": list(predictor.names),
        "error": run.error,
        "model_failed": run.model_failed,
        "info": run.info,
        "stopped": stopped,
    }


@visitors.action("video", retry="Try again, or another clip.")  # one toast, one log line, no server paths
def analyse_video(
    video: str | None,
    models: list[str] | str | None,
    fps: float = DEFAULT_FPS,
    smooth: float = 0.3,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's progress-tracking idiom)
) -> tuple[str, Any, list[list[Any]], list[str], str]:
    """The Video tab's handler (``api_name="video"``): annotated video, timeline figure, summary rows, the
    CSV and JSON downloads, and a status line; nothing (every output as it is) for a run whose page has put
    in another clip or other settings since it was asked for (see :func:`put_in`)."""
    from ferhub import timeline as tl

    moved_on = _PAGE.moved_on(video, models, fps, smooth)  # (the inputs as the page sends them)
    if not video:
        raise gr.Error("Upload a video first.", title="No video")
    models = visitors.model_names(models) or [state.default_model()]
    if len(models) > 4:
        raise gr.Error("Pick at most 4 models.", title="Too many models")
    fps = setting(fps, "Frames per second", DEFAULT_FPS, 0.5, MAX_ANALYSIS_FPS)
    smooth = setting(smooth, "Smoothing", 0.0, 0.0, MAX_SMOOTH)
    predictor = state.cache().predictor(models)  # loaded outside the GPU function
    state.heavy_imports()
    with _one_at_a_time():
        result = _analyse(predictor, str(video), fps, smooth, progress, moved_on)
    if result is MOVED_ON or moved_on():  # the outputs were cleared for what the page holds now
        return (gr.skip(),) * 5
    figure = tl.figure(tl.collect(result["frames"], result["models"][0]))
    info = result["info"]
    status = (
        f"{len(result['frames'])} frames analysed ({fps:g} per second) of {Path(str(video)).name}: "
        f"{len(result['tracks'])} face track(s)."
    )
    if result["model_failed"]:  # the file is fine: a model's label cannot be read (NaN), pick another
        status += f" Stopped: {plain(result['error'].split(': ', 1)[-1])}; results up to there are kept."
    elif result["error"]:
        status += (
            " The file is damaged part-way; results up to there are kept"
            f" ({plain(result['error'].split(': ', 1)[-1])})."
        )
    if result["stopped"]:
        status += f" Stopped at {MAX_SECONDS} s, this app's limit; the results up to there are kept."
    if info.rotation:
        status += f" Rotated {info.rotation}° as the file says."
    return (
        result["annotated"],
        figure,
        tl.summary_rows(result["tracks"]),
        [result["csv"], result["json"]],
        status,
    )


def build(models: list[str]) -> None:
    """Lay out the Video tab."""
    from ferhub import timeline as tl

    gr.Markdown(LIMITS, elem_id="video-limits")
    with gr.Row():
        with gr.Column():
            upload = gr.Video(sources=["upload"], label="Video", elem_id="video-input")
            picker = gr.Dropdown(
                models,
                value=[models[0]],
                multiselect=True,
                allow_custom_value=True,
                label="Models (several: their timelines on one plot)",
                elem_id="video-models",
            )
            with gr.Row():
                fps = gr.Slider(
                    0.5,
                    MAX_ANALYSIS_FPS,
                    value=DEFAULT_FPS,
                    step=0.5,
                    label="Frames per second",
                    elem_id="video-fps",
                )
                smooth = gr.Slider(
                    0,
                    MAX_SMOOTH,
                    value=0.3,
                    step=0.1,
                    label="Smoothing (seconds, 0 = off)",
                    elem_id="video-smooth",
                )
            go = gr.Button("Analyse", variant="primary", elem_id="video-run")
        with gr.Column():
            annotated = gr.Video(label="Annotated", elem_id="video-output", interactive=False)
            status = gr.Markdown(elem_id="video-status")
    plot = gr.Plot(label="Expressions over time", elem_id="video-timeline")
    table = gr.Dataframe(
        headers=tl.SUMMARY_HEADER, label="Per person", interactive=False, elem_id="video-summary"
    )
    files = gr.File(label="Results (CSV, JSON)", file_count="multiple", elem_id="video-files")
    outputs = [annotated, plot, table, files, status]
    run = go.click(
        analyse_video,
        [upload, picker, fps, smooth],
        outputs,
        api_name="video",
        concurrency_limit=AT_ONCE,
        **state.LATEST,  # a clip put in and analysed while the last one runs is analysed next
    )
    run.failure(None, None, outputs, js=clear_js(), api_name="clear_video", api_visibility="private")
    inputs = [upload, picker, fps, smooth]
    # what the page holds now, as its visitor changes it: a run for anything else stops (see put_in)
    gr.on(
        [upload.input, picker.input, fps.input, smooth.input],
        put_in,
        inputs,
        None,
        api_name="video_put_in",
        queue=False,
        preprocess=False,
        api_visibility="private",
        **state.LATEST,
    )
    # and the outputs are cleared (on `change`, as the Classify tab's settings are: Gradio 6's dropdown fires
    # `input` on a click of the option it already shows); only Analyse runs a clip, which may take minutes
    gr.on(
        [upload.change, picker.change, fps.change, smooth.change],
        None,
        [upload],
        outputs,
        js=stale_js(),
        api_name="video_changed",
        api_visibility="private",
    )
