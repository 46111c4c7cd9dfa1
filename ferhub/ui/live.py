"""The webcam tab's frames over one plain HTTP route beside Gradio's API: the page posts each camera frame as
JPEG bytes to :data:`ROUTE` and draws the JPEG that comes back (the frame with boxes and labels).

Why not Gradio's streaming ``gr.Image``: on two cores its page and its server spent about as much CPU on each
frame as the work itself. Measured 2026-12-04 (AMD EPYC, 2 cores, five faces in view; ``bench/app.py``):
Chromium took 1.23 cores streaming against 0.26 showing the camera alone, ~42 ms of CPU a frame (the
capture's ``toDataURL`` and two ``drawImage`` ~10 ms of it, the rest base64 and JSON both ways, Gradio's event
dispatch and its components' updates), and the server 0.65 cores at ~20 fps where :func:`process_frame`
takes ~14 ms a frame; the page stayed at 15-20 fps. Over this route the bytes go as they are both ways, the
page encodes (``canvas.toBlob``) and decodes (``createImageBitmap``) off its main thread, and two frames are
in flight, so the page uploads the next while the server works on the one before: ~29 fps (the camera's
30) in the same run, with Chromium at 0.95 cores.

A session (:class:`WebcamSession`, the tracker, the smoother and the recording of one page) lives here under
the id a page gets when it loads (:func:`new_id`, the value of the tab's ``gr.HTML``), which the tab's Gradio
events (model, recording, snapshot, timeline) pass on. Frames of one session are processed one at a time, in
the order they come; they wait for their turn (:class:`Turns`) on the event loop, not in a worker thread, so
a page's backlog delays only that page (beyond :data:`MAX_WAITING` of them a frame is refused with 429), and
never Gradio's events, which share anyio's worker threads. The route takes only ids the server gave: a page
gets one through a Gradio event, so a deployment behind Gradio's ``auth=`` (or an ``auth_dependency``) keeps
the route to the visitors it lets in. A page whose session was dropped (:data:`MAX_SESSIONS`,
:data:`IDLE_SECONDS`) streams on with the model and "Record timeline" it had set, and its status says that
the server dropped it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
import time
import urllib.parse
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from ferhub.ui import visitors

log = logging.getLogger("ferhub.app")

# under /gradio_api/: with Gradio's server-side rendering (GRADIO_SSR_MODE, which a Space may turn on) a Node
# proxy fronts the app and sends only Gradio's own prefixes to Python; any other path would reach the page
# renderer
ROUTE = "/gradio_api/ferhub/webcam/frame"
STATUS_HEADER = "x-ferhub-status"  # "23.5 fps · 5 faces", percent-encoded (headers are Latin-1)
STOPPED_HEADER = "x-ferhub-stopped"  # what the status says once the page stops its camera after this frame
MAX_FRAME_BYTES = 8 << 20  # a 1920x1080 JPEG from a camera is ~0.5 MB
MAX_SESSIONS = 64  # pages streaming or recently streamed; the least recently used beyond this are dropped
MAX_ISSUED = 10_000  # ids given to pages (most never stream); the oldest beyond this are forgotten
IDLE_SECONDS = 15 * 60  # a page gone this long is dropped (its recording with it)
TIME_LIMIT = 10 * 60  # seconds one run of the camera may stream; the page's Start begins a new run
CONCURRENCY = 4  # frames processed at once, all sessions together
# model picks handled at once, all pages together, in a concurrency group of their own: a pick of a loaded
# model returns at once while up to this many minus one others download theirs (with the default limit, two
# slow Hub downloads held every other page's pick for their whole length); it also bounds those downloads
MODEL_PICKS = 8
MAX_WAITING = 4  # frames of one page waiting for their turn (the page keeps 2 in flight); beyond: 429
NOTICE_SECONDS = 10  # how long a re-made session's status says why
JPEG_QUALITY = 80
_ID = re.compile(r"[A-Za-z0-9-]{8,64}")
_BYTES = re.compile(r"^<\d+ bytes>: ")  # how ferhub.images names an image given as bytes


class LiveError(Exception):
    """A frame the server does not take: the HTTP status and the message the page shows."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


class Turns:
    """At most ``size`` holders at once (``async with``), the others served in the order they came; waiting
    costs no thread. ``waiting``: how many may wait, beyond which :class:`LiveError` 429 (``None``: no bound).

    A waiter's turn is a future on its own event loop, handed over from whichever thread releases, so one
    ``Turns`` serves any number of event loops (a test client runs one per request)."""

    def __init__(self, size: int, waiting: int | None = None) -> None:
        self._lock = threading.Lock()
        self._free = size
        self._waiting = waiting
        self._queue: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = deque()

    async def __aenter__(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._free:
                self._free -= 1
                return
            if self._waiting is not None and len(self._queue) >= self._waiting:
                # Retry-After: the page drops this frame and streams on (the 429 of TIME_LIMIT stops it)
                raise LiveError(429, "Too many frames in flight for this page.", {"retry-after": "1"})
            turn = loop.create_future()
            self._queue.append((loop, turn))
        try:
            await turn
        except asyncio.CancelledError:
            with self._lock:
                if (loop, turn) in self._queue:  # never handed its turn
                    self._queue.remove((loop, turn))
                    raise
            if not turn.cancelled():  # handed its turn before the cancellation: pass it on
                self._release()
            raise  # (a turn handed to a cancelled future is passed on by _hand)

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        with self._lock:
            while self._queue:
                loop, turn = self._queue.popleft()
                try:
                    loop.call_soon_threadsafe(self._hand, turn)
                    return
                except RuntimeError:  # its event loop has closed: nobody waits on it
                    continue
            self._free += 1

    def _hand(self, turn: asyncio.Future) -> None:
        if turn.cancelled():
            self._release()
        else:
            turn.set_result(None)


@dataclass
class Live:
    """One page's stream: its :class:`WebcamSession` and the tab's settings, set by Gradio's events."""

    session: Any = None  # its ferhub.ui.webcam.WebcamSession, made by its first frame
    model: str | None = None
    record: bool = False
    started: float = 0.0  # when the page's current run of the camera began
    used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    turns: Turns = field(default_factory=lambda: Turns(1, MAX_WAITING))  # its frames, one at a time
    dropped: str = ""  # why the server had dropped this page's earlier session ("after 15 idle minutes")
    notice_until: float | None = None  # its status says so until then (from the first frame after)
    loading: str = ""  # the model the page picked, while it loads (the stream goes on with ``model``)


class Sessions:
    """The pages' streams by id, bounded (:data:`MAX_SESSIONS`, :data:`IDLE_SECONDS`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: OrderedDict[str, Live] = OrderedDict()
        self._issued: OrderedDict[str, None] = OrderedDict()
        # pages whose stream was dropped: (model, record, why), so that the stream made again for the page
        # keeps the settings its controls still show; bounded as the ids are
        self._dropped: OrderedDict[str, tuple[str | None, bool, str]] = OrderedDict()
        self.default_model: str | None = None  # the tab's picker's first value, until a page picks another

    def issue(self) -> str:
        """A new page's id, remembered (the last :data:`MAX_ISSUED`) until its first frame."""
        import uuid

        sid = uuid.uuid4().hex
        with self._lock:
            self._issued[sid] = None
            while len(self._issued) > MAX_ISSUED:
                self._issued.popitem(last=False)
        return sid

    def get(self, sid: Any) -> Live:
        """The stream under ``sid``, made on first use (made again, with the page's model and "Record
        timeline", after it was dropped); ``LiveError`` for an id no page has (400) or one this server did not
        give (403: made up, or from before a restart)."""
        if not isinstance(sid, str) or not _ID.fullmatch(sid):
            raise LiveError(400, "No webcam session: reload the page.")
        now = time.monotonic()
        with self._lock:
            live = self._live.pop(sid, None)
            if live is None:
                dropped = self._dropped.pop(sid, None)
                if dropped is None and sid not in self._issued:
                    raise LiveError(
                        403, "This page's webcam session is unknown to the server: reload the page."
                    )
                live = Live(model=self.default_model)
                if dropped is not None:
                    live.model, live.record, live.dropped = dropped
            live.used = now
            self._live[sid] = live
            while len(self._live) > MAX_SESSIONS or (
                len(self._live) > 1 and now - next(iter(self._live.values())).used > IDLE_SECONDS
            ):
                old_sid, old = self._live.popitem(last=False)
                idle = now - old.used > IDLE_SECONDS
                why = f"after {IDLE_SECONDS // 60} idle minutes" if idle else "to make room for other pages"
                # a page that never streamed lost nothing to be told of: only its settings are kept
                self._dropped[old_sid] = (old.model, old.record, why if old.session is not None else "")
                while len(self._dropped) > MAX_ISSUED:
                    self._dropped.popitem(last=False)
            return live

    def find(self, sid: Any) -> Any:
        """The session under ``sid`` if there is one (never makes one)."""
        with self._lock:
            live = self._live.get(sid) if isinstance(sid, str) else None
        return None if live is None else live.session

    def __len__(self) -> int:
        return len(self._live)


SESSIONS = Sessions()
_WORKING = Turns(CONCURRENCY)


def new_id() -> str:
    """A page's session id (the value of the tab's ``gr.HTML``), given on page load."""
    return SESSIONS.issue()


def _page(sid: str) -> Live:
    """The stream of the page whose Gradio event this is; a refused id is the event's message."""
    import gradio as gr

    try:
        return SESSIONS.get(sid)
    except LiveError as e:
        raise gr.Error(str(e), title="Webcam") from None


def session_of(sid: str) -> Any:
    """The webcam session of the page ``sid`` (``None`` before its first frame); ``gr.Error`` for an id the
    server never gave, or one whose session the server dropped (and no frame came since)."""
    import gradio as gr

    live = _page(sid)
    if live.session is None and live.dropped:
        lost = ", its recording with it" if live.record else ""
        why = f"The server had dropped this page's webcam session {live.dropped}{lost}"
        raise gr.Error(f"{why}: start the camera again.", title="Webcam")
    return live.session


@visitors.action("webcam_model", retry="Try again.")  # a refused id: one toast, one log line, no traceback
def set_model(sid: str, model: str | None) -> None:
    """The tab's model picker changed (a Gradio event): the model is loaded here, so that one that cannot be
    (no model name, a path on the server where visitors may not name one, a model that does not exist or
    does not load) is refused once, with a toast, while the camera streams on with the model before, rather
    than stopping the camera at the next frame. While it loads, the page's status says which model is loading;
    the event has a concurrency group of its own (:data:`MODEL_PICKS`)."""
    from ferhub.ui import state

    if sid:
        live = _page(sid)
        name = visitors.model_name(model) or None
        loaded = name or state.default_model()
        live.loading = visitors.named(loaded)
        try:
            state.cache().model(loaded)
        finally:
            live.loading = ""
        live.model = name


@visitors.action("webcam_record", retry="Try again.")
def set_record(sid: str, record: bool) -> None:
    """The tab's "Record timeline" changed (a Gradio event): a new recording forgets the last one."""
    from ferhub.ui.webcam import clear_recording

    if sid:
        live = _page(sid)
        with live.lock:
            live.record = bool(record)
            clear_recording(live.session, live.record)


def process(body: bytes, live: Live, start: bool = False) -> tuple[bytes, str]:
    """One posted frame of the page's stream ``live`` (``start``: the first of a run of its camera) -> (the
    drawn frame as JPEG, the status line); ``LiveError`` for what the page must be told. Its caller holds the
    stream's turn."""
    import gradio as gr

    from ferhub.errors import ImageDecodeError
    from ferhub.images import load_image
    from ferhub.ui import state, visitors
    from ferhub.ui.webcam import process_frame

    try:
        image = load_image(body, max_pixels=state.MAX_PIXELS)
    except ImageDecodeError as e:
        # the decoder names the frame "<N bytes>" and advises Python callers: the page's visitor gets neither
        advice = f"pick a camera resolution of {state.MAX_PIXELS / 1e6:g} MP or less"
        why = state._for_visitors(_BYTES.sub("", str(e)), advice)
        raise LiveError(400, f"Not a usable camera frame: {why}") from None
    with live.lock:
        now = time.monotonic()
        if start or not live.started:
            live.started = now
            if live.session is not None:  # the rate shown is the new run's, not one diluted by the pause
                live.session.times.clear()
        elif now - live.started > TIME_LIMIT:
            raise LiveError(429, f"The camera stops after {TIME_LIMIT // 60} minutes; press Start again.")
        try:
            drawn, text, live.session = process_frame(image, live.session, live.model, live.record, start)
        except gr.Error as e:
            raise LiveError(422, visitors.user_error(e.message, e.title, action="webcam").message) from None
        if live.loading:
            text += f" · loading {live.loading}…"
        if live.dropped:
            live.notice_until = live.notice_until or now + NOTICE_SECONDS
            if now < live.notice_until:
                again = "recording starts again" if live.record else "face numbers start again"
                text += f" · the server had dropped this page's session {live.dropped}: {again}"
            else:
                live.dropped, live.notice_until = "", None
    out = io.BytesIO()
    drawn.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue(), text


async def _frame(request: Any) -> Any:
    from anyio import to_thread
    from starlette.requests import ClientDisconnect
    from starlette.responses import JSONResponse, Response

    from ferhub.ui.webcam import stopped_status

    try:
        params = request.query_params
        try:
            # from the query string, before any of the body is read: a request no page of this server sent
            # gets nothing buffered (8 MB a connection otherwise); the connection closes, the rest unread
            live = SESSIONS.get(params.get("session"))
        except LiveError as e:
            raise LiveError(e.status, str(e), {"connection": "close"}) from None
        # with the connection closed: the rest of the upload is neither received nor buffered
        too_large = LiveError(
            413, f"A camera frame of over {MAX_FRAME_BYTES >> 20} MB.", {"connection": "close"}
        )
        if int(request.headers.get("content-length") or 0) > MAX_FRAME_BYTES:
            raise too_large
        chunks, size = [], 0
        async for chunk in request.stream():  # (a chunked upload has no length to check first)
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FRAME_BYTES:
                raise too_large
        body = b"".join(chunks)  # one copy of the frame, not a growing buffer and a copy of it
        del chunks
        # one frame of a page at a time (its tracker and recording follow the frames in order), and at most
        # CONCURRENCY frames of all pages at once; each waits for its turn here, holding no thread
        async with live.turns, _WORKING:
            jpeg, text = await to_thread.run_sync(process, body, live, params.get("start") == "1")
            stopped = stopped_status(live.session)
    except LiveError as e:
        return JSONResponse({"error": str(e)}, status_code=e.status, headers=e.headers)
    except ClientDisconnect:  # the page went away mid-upload (closed, reloaded): nobody to answer, no fault
        log.debug("a webcam frame's upload was cut off by its page")
        return Response(status_code=400)
    except Exception:
        log.exception("webcam frame failed")
        return JSONResponse({"error": "Something went wrong on the server (it logged the details)."}, 500)
    return Response(
        jpeg,
        media_type="image/jpeg",
        headers={
            STATUS_HEADER: urllib.parse.quote(text),
            STOPPED_HEADER: urllib.parse.quote(stopped),
            "cache-control": "no-store",
        },
    )


def routes() -> list[Any]:
    """The route to pass to Gradio's FastAPI app (``launch(app_kwargs={"routes": routes()})``)."""
    from starlette.routing import Route

    return [Route(ROUTE, _frame, methods=["POST"])]
