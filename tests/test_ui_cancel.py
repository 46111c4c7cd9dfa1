"""A video analysis whose visitor cancels it or leaves stops, and frees the one slot videos share.

Gradio cannot stop a function in a worker thread: a ``/cancel`` ends the task awaiting it (and frees the
event's concurrency slot), a client that disconnects only marks the event dead. The analysis asks between
frames (:func:`ferhub.ui.visitors.event_gone`); before, a 100 s clip went on to its end unseen, and each
cancel let another "one at a time" analysis start beside it.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import clips
import gradio as gr
import numpy as np
import pytest
from PIL import Image

from ferhub.ui import state, video, visitors

pytestmark = pytest.mark.usefixtures("one_torch_thread", "public_space")

DEFAULT_MODEL = "ferhub/fer-mini-xception"
ASTRONAUT = Path(__file__).resolve().parent.parent / "ferhub" / "assets" / "examples" / "astronaut.jpg"


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    """30 s at 10 fps of a small faceless scene: quick to make and to analyse frame by frame."""
    still = np.asarray(clips.photo("background").resize((160, 120)))
    frames = [np.roll(still, i, axis=1) for i in range(300)]
    return str(clips.write_clip(tmp_path_factory.mktemp("long") / "long.mp4", frames, fps=10))


class Watch:
    """Counts the frames drawn (each slowed down, so that a clip takes seconds) and the analyses running."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, delay: float = 0.0) -> None:
        import ferhub.video

        self.drawn = 0
        self.running = 0
        self.most = 0
        self.ended: list[BaseException | None] = []  # how each analysis ended (None: with its results)
        self.drawn_at_end: list[int] = []
        self.files: list[Path] = []
        draw, analyse, download = ferhub.video.draw_frame, video._analyse, state.download_path

        def slow_draw(frame: Any) -> Any:
            self.drawn += 1
            time.sleep(delay)
            return draw(frame)

        def watched(*args: Any, **kwargs: Any) -> Any:
            self.running += 1
            self.most = max(self.most, self.running)
            try:
                result = analyse(*args, **kwargs)
            except BaseException as e:
                self.ended.append(e)
                raise
            finally:
                self.running -= 1
                self.drawn_at_end.append(self.drawn)
            self.ended.append(None)
            return result

        def recorded(*args: Any, **kwargs: Any) -> Path:
            path = download(*args, **kwargs)
            self.files.append(path)
            return path

        monkeypatch.setattr(ferhub.video, "draw_frame", slow_draw)
        monkeypatch.setattr(video, "_analyse", watched)
        monkeypatch.setattr(state, "download_path", recorded)

    def wait(self, until: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)


def quiet(*args: Any, **kwargs: Any) -> None:
    """A progress tracker that shows nothing (the handlers' ``gr.Progress`` outside Gradio)."""


def test_an_analysis_stops_between_frames_once_its_visitor_is_gone(
    monkeypatch: pytest.MonkeyPatch, long_clip: str, caplog: pytest.LogCaptureFixture
) -> None:
    watch = Watch(monkeypatch)
    monkeypatch.setattr(visitors, "event_gone", lambda: watch.drawn >= 3)
    with pytest.raises(gr.Error) as e:
        video.analyse_video(long_clip, [DEFAULT_MODEL], 10, 0.3, progress=quiet)
    assert e.value.title == "Cancelled" and e.value.print_exception is False
    assert watch.drawn == 3 and isinstance(watch.ended[0], visitors.Gone)
    # the half-written annotated video, CSV and JSON are gone with it
    assert len(watch.files) == 3 and not any(p.exists() for p in watch.files)
    (line,) = [r for r in caplog.records if r.name == "ferhub.app"]
    assert line.getMessage() == "video: stopped: its visitor cancelled it or left" and not line.exc_info


def test_outside_a_gradio_event_nothing_is_gone() -> None:
    assert visitors.event_gone() is False
    visitors.stop_if_gone()


def test_one_video_at_a_time_and_a_waiting_one_can_leave(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Gradio frees the event's slot when a run is cancelled, while its thread runs on: the next run waits
    for it here (it stops within a batch of frames); a run whose own visitor leaves while waiting ends."""
    frames, _ = clips.pan(4)
    clip = str(clips.write_clip(tmp_path / "pan.mp4", frames))
    watch = Watch(monkeypatch)
    results: list[Any] = []
    video._ANALYSING.acquire()  # an analysis still running (cancelled a moment ago)
    try:
        waiting = threading.Thread(
            target=lambda: results.append(video.analyse_video(clip, None, 5, 0.3, progress=quiet))
        )
        waiting.start()
        time.sleep(0.5)
        assert watch.ended == [] and watch.running == 0 and waiting.is_alive()
    finally:
        video._ANALYSING.release()
    waiting.join(60)
    assert len(results) == 1 and watch.ended == [None]

    video._ANALYSING.acquire()
    try:
        gone = threading.Event()
        monkeypatch.setattr(visitors, "event_gone", gone.is_set)
        errors: list[gr.Error] = []

        def run() -> None:
            try:
                video.analyse_video(clip, None, 5, 0.3, progress=quiet)
            except gr.Error as e:
                errors.append(e)

        waiting = threading.Thread(target=run)
        waiting.start()
        time.sleep(0.3)
        gone.set()
        waiting.join(10)
        assert not waiting.is_alive() and [e.title for e in errors] == ["Cancelled"]
        assert len(watch.ended) == 1  # it never started
    finally:
        video._ANALYSING.release()


def test_occlusion_stops_between_faces_once_its_visitor_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Occlusion takes seconds a face: a classify cancelled on the way explains no further face."""
    from ferhub.ui import classify

    photo = Image.open(ASTRONAUT).convert("RGB")
    predictor = state.cache().predictor([DEFAULT_MODEL])
    (face,) = [f.face for f in predictor.predict_image(photo).faces]
    explained: list[int] = []
    explain = classify._explain

    def counted(*args: Any) -> Any:
        explained.append(1)
        return explain(*args)

    monkeypatch.setattr(classify, "_explain", counted)
    monkeypatch.setattr(visitors, "event_gone", lambda: len(explained) >= 1)
    with pytest.raises(visitors.Gone):
        classify.explain(predictor.models[0], photo, [face] * 3, "Occlusion", ["happy"] * 3, quiet)
    assert len(explained) == 1


def test_an_evaluation_stops_between_chunks_once_its_visitor_is_gone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import zipfile

    from skimage import data

    from ferhub.ui import compare

    path = tmp_path / "faces.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i, face in enumerate(data.lfw_subset()[:4]):
            buffer = io.BytesIO()
            Image.fromarray((face * 255).astype(np.uint8)).resize((96, 96)).save(buffer, "PNG")
            zf.writestr(f"faces/{('happy', 'sad')[i % 2]}/{i}.png", buffer.getvalue())
    monkeypatch.setattr(visitors, "event_gone", lambda: True)
    with pytest.raises(gr.Error) as e:  # not "Evaluation failed: ..."
        compare.evaluate_now([DEFAULT_MODEL], str(path), "", "", {}, progress=quiet)
    assert e.value.title == "Cancelled"


# -- over HTTP, as a visitor cancels or leaves -------------------------------------------------------------
@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Watch]]:
    """The app in this process (its handlers watched), queued as ``app.py`` queues it."""
    from servers import launched

    from ferhub.ui import build_app

    watch = Watch(monkeypatch, delay=0.03)  # 300 frames: at least 9 s unless stopped
    demo = build_app([DEFAULT_MODEL])
    demo.queue(default_concurrency_limit=2)
    with launched(demo) as url:
        yield url, watch


def stopped(watch: Watch, run: int = 0) -> None:
    """Analysis ``run`` (0: the first) ended early, as its visitor had gone."""
    watch.wait(lambda: len(watch.ended) > run, timeout=10)  # 300 frames take at least 9 s
    assert isinstance(watch.ended[run], visitors.Gone), watch.ended
    assert watch.drawn_at_end[run] < 60, watch.drawn_at_end  # within a batch of frames of leaving


def test_a_cancelled_video_stops_and_the_next_waits_for_it(server: tuple[str, Watch], long_clip: str) -> None:
    """``gradio_client``'s ``job.cancel()`` (the server's ``/cancel``), then another clip at once: it runs
    after the cancelled one, never beside it."""
    from gradio_client import Client, handle_file

    url, watch = server
    client = Client(url, verbose=False)
    job = client.submit(handle_file(long_clip), [DEFAULT_MODEL], 10, 0.3, api_name="/video")
    watch.wait(lambda: watch.drawn >= 5)
    job.cancel()
    second = client.submit(handle_file(long_clip), [DEFAULT_MODEL], 10, 0.3, api_name="/video")
    stopped(watch)
    watch.wait(lambda: watch.drawn >= watch.drawn_at_end[0] + 5)  # the second one runs now
    second.cancel()
    stopped(watch, 1)
    assert watch.most == 1  # never two at once
    drawn = watch.drawn
    time.sleep(0.5)
    assert watch.drawn == drawn and watch.running == 0


def test_a_video_whose_client_disconnects_stops(server: tuple[str, Watch], long_clip: str) -> None:
    """A plain HTTP caller opens the event's stream (``/call/video/ID``), then drops the connection (the
    stream carries no progress: the socket is closed while nothing has come yet)."""
    import socket
    import urllib.parse

    import httpx

    url, watch = server
    with httpx.Client(base_url=url, timeout=60) as http:
        with open(long_clip, "rb") as f:
            (path,) = http.post("gradio_api/upload", files={"files": ("long.mp4", f)}).json()
        data = [{"path": path, "meta": {"_type": "gradio.FileData"}}, [DEFAULT_MODEL], 10, 0.3]
        event = http.post("gradio_api/call/video", json={"data": data}).json()["event_id"]
    where = urllib.parse.urlparse(url)
    with socket.create_connection((where.hostname, where.port)) as stream:
        request = f"GET /gradio_api/call/video/{event} HTTP/1.1\r\nHost: {where.hostname}\r\n\r\n"
        stream.sendall(request.encode())
        watch.wait(lambda: watch.drawn >= 5)
    stopped(watch)
    drawn = watch.drawn
    time.sleep(0.5)
    assert watch.drawn == drawn and watch.running == 0


def test_only_the_servers_own_process_sees_events_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ZeroGPU worker is forked once and reused: its copy of the queue holds only the events of the moment
    it was forked, so every later visitor's video seemed cancelled and stopped after one frame."""
    from types import SimpleNamespace

    from gradio.context import LocalContext

    blocks = SimpleNamespace(_queue=SimpleNamespace(active_jobs=[]))  # the event is not among them
    event_token, blocks_token = LocalContext.event_id.set("abc"), LocalContext.blocks.set(blocks)
    try:
        assert visitors.event_gone() is True  # in the server's process: not active, so cancelled
        assert visitors.event_queued_at() is None
        blocks._queue.active_jobs.append([SimpleNamespace(_id="abc", alive=True, enqueue_time=12.5)])
        assert visitors.event_gone() is False and visitors.event_queued_at() == 12.5
        monkeypatch.setattr(visitors.os, "getpid", lambda: visitors._SERVER_PID + 1)
        assert visitors.event_gone() is False  # in a forked worker: its queue is a stale copy
        assert visitors.event_queued_at() is None
    finally:
        LocalContext.event_id.reset(event_token)
        LocalContext.blocks.reset(blocks_token)


def test_a_stop_never_finishes_the_annotated_video(monkeypatch: pytest.MonkeyPatch, long_clip: str) -> None:
    """The encoder's flush delayed the next visitor, and an error in it replaced the stop with a server
    error: a stopped analysis closes the video without finishing it."""
    from ferhub.videoio import VideoWriter

    real_close = VideoWriter.close

    def broken_flush(self: VideoWriter) -> None:
        if self._container is not None:  # finishing the file (a closed or aborted one returns at once)
            raise OSError("flush failed")
        real_close(self)

    watch = Watch(monkeypatch)
    monkeypatch.setattr(visitors, "event_gone", lambda: watch.drawn >= 2)
    monkeypatch.setattr(VideoWriter, "close", broken_flush)
    with pytest.raises(gr.Error) as e:
        video.analyse_video(long_clip, [DEFAULT_MODEL], 10, 0.3, progress=quiet)
    assert e.value.title == "Cancelled" and not any(p.exists() for p in watch.files)


def test_a_slider_value_of_true_or_false_is_refused() -> None:
    for value in (True, False):
        with pytest.raises(gr.Error, match="Frames per second must be a number"):
            video.setting(value, "Frames per second", 5.0, 0.5, 10.0)
