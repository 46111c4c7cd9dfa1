"""The app as a public service: what a visitor may name, and what a visitor is told.

A Space is open to anyone, so the text boxes that take a model or a dataset are a way into the server:

- **Local paths are off.** Visitors may name bundled models, the models the server lists, Hub model ids and
  Hub dataset ids, and upload zips; a server path is refused with one message whatever is (or is not) there,
  and Hub-shaped names are never looked up on the server's disk. The person running the server turns local
  paths on with ``FERHUB_ALLOW_LOCAL_PATHS=1`` (e.g. for their own models on their own machine).
- **Uploaded zips are read under caps** (:class:`ferhub.archives.ArchiveLimits`), and one evaluation takes at
  most ``FERHUB_EVAL_MAX_IMAGES`` images (default 2000) and downloads at most ``FERHUB_EVAL_MAX_DOWNLOAD_MB``
  of a Hub dataset (default 200).
- **Messages carry no server paths**, one failed action gives one toast, and the server logs one line per
  visitor error (tracebacks only for its own bugs).
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr

from ferhub.archives import ArchiveLimits
from ferhub.errors import is_network_error
from ferhub.fileio import DISK_FULL, os_error_code

log = logging.getLogger("ferhub.app")
F = TypeVar("F", bound=Callable[..., Any])

LOCAL_PATHS_SETTING = "FERHUB_ALLOW_LOCAL_PATHS"
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*(@[\w./-]+)?")
# an absolute POSIX path inside a message, not part of a URL ("https://host/x") or a Hub id ("org/name"):
# "/" and folders, ending in a name ("//", as in "git refuses '//'", is not one, nor a lone "/", as in
# "HTTPS_PROXY / HF_ENDPOINT"), and not a closing tag ("</b>")
_ABS_PATH = re.compile(r"(?<![\w:/.~<-])/(?:[^\s'\"(),;:<>/]*/)*[^\s'\"(),;:<>/]+")


def _int_env(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


@dataclass(frozen=True)
class Policy:
    """What visitors of this server may reach (see the module docstring); built from the environment."""

    local_paths: bool = False
    listed: frozenset[str] = field(default_factory=frozenset)
    max_images: int = 2000
    max_download_bytes: int = 200 << 20

    @classmethod
    def from_env(cls, listed: Iterable[str] = ()) -> Policy:
        return cls(
            local_paths=os.environ.get(LOCAL_PATHS_SETTING, "").strip().lower() in ("1", "true", "yes"),
            listed=frozenset(listed),
            max_images=_int_env("FERHUB_EVAL_MAX_IMAGES", 2000),
            max_download_bytes=_int_env("FERHUB_EVAL_MAX_DOWNLOAD_MB", 200) << 20,
        )

    def archive_limits(self) -> ArchiveLimits:
        """Caps on an uploaded zip: the 20 MB upload limit could otherwise inflate to ~20 GB."""
        return ArchiveLimits(
            max_members=max(5000, 2 * self.max_images),
            max_member_bytes=32 << 20,
            max_total_bytes=512 << 20,
            max_ratio=100.0,
        )


_policy = Policy()


def configure(listed: Iterable[str]) -> Policy:
    """Read the settings from the environment; ``listed`` are the models the server offers (always allowed,
    even when they are local folders: the server's operator chose them)."""
    global _policy
    _policy = Policy.from_env(listed)
    return _policy


def policy() -> Policy:
    return _policy


TAKES = "this server takes the listed models, bundled models and Hub ids ('org/name' or 'org/name@revision')"
# longer model names are refused before anything keeps or looks them up: a Hub id is at most 96 + 96
# characters and a revision, a local path (where allowed) far shorter than this in practice
MAX_NAME_CHARS = 512
LOCAL_OFF = (
    f"{TAKES}; paths on the server are turned off (its operator can allow them with {LOCAL_PATHS_SETTING}=1)"
)


def model_kinds(*, plural: bool = False) -> str:
    """What a model picker takes, for its label: listed and bundled models and Hub ids, and local folders only
    where this server allows paths (elsewhere a label promising them led to a refusal)."""
    if plural:
        kinds = ["Hub ids", "local folders"] if _policy.local_paths else ["Hub ids"]
    else:
        kinds = ["a Hub id", "a local folder"] if _policy.local_paths else ["a Hub id"]
    *first, last = ["listed", "bundled", *kinds]
    return f"{', '.join(first)} or {last}"


class PathRefused(ValueError):
    """A visitor named a server path while paths are turned off (same words whatever exists there)."""


def _kind(value: Any) -> str:
    """What a value an API caller sent is, in a visitor's words ("a number", "a list")."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def text(value: Any, what: str, *, title: str = "Wrong value") -> str:
    """``value`` when it is text (``None``: ``""``). An API caller can send any JSON where a text box or a
    picker's choice is expected (several handlers take their inputs unprocessed): anything else is a
    ``gr.Error`` naming ``what``, not a server error from the first string method called on it."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise gr.Error(f"{what} must be given as text, not {_kind(value)}.", title=title)
    return value


def model_name(value: Any) -> str:
    """A model a visitor named, stripped (``""`` for none); ``gr.Error`` for a value that is not text, or a
    name over :data:`MAX_NAME_CHARS` (checked before anything keeps or looks up the name)."""
    name = text(value, "A model", title="Not a model name").strip()
    if len(name) > MAX_NAME_CHARS:
        raise gr.Error(
            f"A model name of {len(name):,} characters; names are at most {MAX_NAME_CHARS}: {TAKES}.",
            title="Not a model name",
        )
    return name


def model_names(values: Any) -> list[str]:
    """The models a visitor picked (a list of names, or one name), stripped, each once in the order picked,
    empty ones dropped; ``gr.Error`` for anything that is not a list of text (:func:`model_name`)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise gr.Error(f"The models must be a list of names, not {_kind(values)}.", title="Not a model name")
    return list(dict.fromkeys(name for name in (model_name(v) for v in values) if name))


def model_spec(spec: str | None) -> tuple[str, bool]:
    """``(model id, may it be a local path)`` for a model a visitor named; ``ValueError`` (with the same words
    whatever exists on the server) for a path when local paths are off (:class:`PathRefused`), and a
    ``gr.Error`` (a ``ValueError`` too) for what is no model name at all (:func:`model_name`)."""
    spec = model_name(spec)
    p = _policy
    if p.local_paths or spec in p.listed:
        return spec, True
    from ferhub.hub import BUNDLED_ORG, list_bundled

    if f"{BUNDLED_ORG}/{spec.removeprefix(BUNDLED_ORG + '/')}" in list_bundled() or _HUB_ID.fullmatch(spec):
        return spec, False
    if spec and not spec.startswith((".", "~")) and "/" not in spec and "\\" not in spec:
        # a bare word: not a path a visitor tried, so not "paths are turned off"
        from ferhub.config import brief  # the name cut short: a visitor may paste anything

        raise ValueError(f"{brief(spec)} is not a listed or bundled model, nor a Hub id: {TAKES}")
    raise PathRefused(LOCAL_OFF[0].upper() + LOCAL_OFF[1:])


def named(spec: str) -> str:
    """How a message names a model a visitor typed: quoted and cut short (``brief``). An absolute path shows
    as ``'.../last-part'``: :func:`public_text` would otherwise cut it to ``'last-part'``, which reads as a
    bundled model's name ("Cannot load model 'fer-mini-xception'" for a refused server path)."""
    spec = (spec or "").strip()
    if spec.startswith("/") and Path(spec).name:
        spec = f".../{Path(spec).name}"
    from ferhub.config import brief

    return brief(spec)


def sentence(text: str) -> str:
    """``text`` ending as a sentence, so that another sentence can follow it (many messages end without a
    full stop: "...=1) Classify will fail" ran two sentences together)."""
    text = str(text).rstrip()
    return text if not text or text.endswith((".", "!", "?")) else f"{text}."


def looks_like_hub_id(spec: str) -> bool:
    """``org/name`` or ``org/name@revision``."""
    return bool(_HUB_ID.fullmatch(spec.strip()))


def public_text(text: str) -> str:
    """``text`` with every absolute server path cut to its last part (an upload keeps its file name)."""
    return _ABS_PATH.sub(lambda m: Path(m.group(0)).name or "(server path)", str(text))


def user_error(message: str, title: str = "Error", *, action: str = "app") -> gr.Error:
    """The ``gr.Error`` to raise for what a visitor must change: server paths removed, no traceback in the
    server log, one log line instead."""
    message = public_text(message)
    log.warning("%s: %s: %s", action, title, " | ".join(message.splitlines()))
    return gr.Error(message, title=title, print_exception=False)


def warn(message: str, *, action: str = "app") -> None:
    """A warning toast for a visitor (server paths removed) and one log line; the event still succeeds."""
    message = public_text(message)
    log.warning("%s: %s", action, " | ".join(message.splitlines()))
    gr.Warning(message)


_SERVER_PID = os.getpid()  # the process that imported the app: a fork (ZeroGPU's worker) inherits the value


class Gone(Exception):
    """The Gradio event a handler works for ended for its visitor while it ran: cancelled (``job.cancel()``,
    the page's stop, another event's ``cancels``) or its client disconnected (a closed tab, a dropped
    connection). Raised by :func:`stop_if_gone`; :func:`action` logs it as one line."""


def event_gone() -> bool:
    """Whether the queued Gradio event the calling thread runs for is over for its visitor.

    Gradio cannot stop a function running in a worker thread. On ``/cancel`` it cancels the asyncio task
    awaiting the thread: the task ends, the queue's concurrency slot is freed and the event leaves the queue's
    active jobs, while the thread runs on. When the client disconnects it marks the event not ``alive`` and
    drops its results, the thread again running on. Both show in the queue's active jobs, which this reads
    through the context Gradio gives the handler's thread (the event id and the Blocks, as ``gr.Progress``
    reads them). ``False`` outside a queued Gradio event: a direct call, a test, and any process but the
    server's: a ZeroGPU worker is forked once and reused, so its copy of the queue holds only the events of
    the moment it was forked, and every later visitor's event would seem gone (stopped after one frame)."""
    queued, event = _queued_event()
    if not queued:
        return False
    # not among the active jobs while its handler still runs: its task was cancelled
    return event is None or not getattr(event, "alive", True)


def _queued_event() -> tuple[bool, Any]:
    """Whether the calling thread runs for a queued Gradio event of this server's process (see
    :func:`event_gone`), and that event among the queue's active jobs (``None`` when it is not there)."""
    from gradio.context import LocalContext

    if os.getpid() != _SERVER_PID:
        return False, None
    event_id = LocalContext.event_id.get(None)
    jobs = getattr(getattr(LocalContext.blocks.get(None), "_queue", None), "active_jobs", None)
    if not event_id or not isinstance(jobs, list):
        return False, None
    for job in list(jobs):  # a copy: the event loop changes the list meanwhile
        for event in job or ():
            if getattr(event, "_id", None) == event_id:
                return True, event
    return True, None


def event_queued_at() -> float | None:
    """When (``time.monotonic()``) the queued Gradio event the calling thread runs for joined the queue: a run
    waits there behind others (and the first behind the start-up imports), so what its page did meanwhile
    came after its request, not after its start. ``None`` outside a queued event (see :func:`event_gone`)."""
    queued = getattr(_queued_event()[1], "enqueue_time", None)
    return float(queued) if isinstance(queued, (int, float)) else None


def stop_if_gone() -> None:
    """Raise :class:`Gone` when the visitor's event is over (:func:`event_gone`): a long handler calls this
    between its steps, so that work nobody will see stops, and with it the slot it holds."""
    if event_gone():
        raise Gone()


# -- what each page holds -----------------------------------------------------------------------------------
# A run of a tab (Classify, Video) that takes long stops at its next step once its visitor's page holds other
# inputs in that tab: the page reports them as its visitor changes them (each tab's `put_in`), and the run
# compares them with its own. Keyed by the page and the tab: a report from one tab is no reason to stop the
# same page's run in another.

# (page, tab) pairs whose inputs are known: 4096 pages in each of the two tabs, as each tab kept before; the
# pair reported longest ago is forgotten first (its runs then never stop early)
PAGE_INPUTS_KEPT = 8192
_held: collections.OrderedDict[tuple[str, str], tuple[float, tuple]] = collections.OrderedDict()  # when, what
_held_lock = threading.Lock()


def _session() -> str | None:
    """The page the calling thread's Gradio event comes from (``None`` for an API caller's call)."""
    from gradio.context import LocalContext

    return getattr(LocalContext.request.get(None), "session_hash", None)


def _inputs(upload: Any, settings: tuple) -> tuple:
    """What a run is for: the file put in (its path in Gradio's cache: one per upload) and the settings."""
    path = upload.get("path") if isinstance(upload, dict) else upload
    return (str(path) if path is not None else None, *settings)


class PageInputs:
    """What one tab of each visitor's page holds now: an upload (a Gradio file payload or a path) and the
    tab's settings, as the page sends them.

    ``put`` is the tab's report (on each of its inputs' ``input`` events); ``moved_on`` gives a run, when
    asked for, its check of whether its page has reported other inputs in this tab since. An API caller's
    page reports nothing: its runs never stop so.
    """

    def __init__(self, tab: str) -> None:
        self.tab = tab

    def put(self, upload: Any, *settings: Any) -> None:
        """The inputs the calling event's page holds in this tab now."""
        session = _session()
        if session is None:
            return
        key = (session, self.tab)
        with _held_lock:
            _held[key] = (time.monotonic(), _inputs(upload, settings))
            _held.move_to_end(key)
            while len(_held) > PAGE_INPUTS_KEPT:
                _held.popitem(last=False)

    def reports(self) -> bool:
        """Whether the calling event's page has reported what it holds in this tab (an API caller never)."""
        key = (_session(), self.tab)
        with _held_lock:
            return key[0] is not None and key in _held

    def moved_on(self, upload: Any, *settings: Any) -> Callable[[], bool]:
        """For a run asked for now with these inputs: whether its page has reported others in this tab since
        the run was asked for (when it joined the queue, :func:`event_queued_at`: a run that waited there
        while its visitor picked another setting is for the old one; the report of the run's own inputs may
        come in after it)."""
        key, inputs = (_session(), self.tab), _inputs(upload, settings)
        queued = event_queued_at()
        began = time.monotonic() if queued is None else queued

        def moved_on() -> bool:
            if key[0] is None:
                return False
            with _held_lock:
                when, held = _held.get(key, (0.0, None))
            return when > began and held != inputs

        return moved_on


SERVER_ERROR = "Something went wrong on the server (it logged the details)."
# what a visitor is told when the server's own disk takes no more (GRADIO_TEMP_DIR full, a quota): no other
# photo helps, and it is no bug of the server
SERVER_DISK_FULL = "The server's disk is full, so it cannot save results now. Try again later."


def action(name: str, *, retry: str = "Try again, or another photo.") -> Callable[[F], F]:
    """Wrap an event handler: a ``gr.Error`` reaches the visitor once, without server paths, and the log gets
    one line; any other exception is the server's bug: its traceback is logged and the visitor gets a short
    note, ending with ``retry`` (what this handler's visitor can try: "another clip" for a video). A handler
    stopped because its visitor left (:class:`Gone`) logs one line, and so does the server's full disk (its
    visitor is told :data:`SERVER_DISK_FULL`)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def handler(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except gr.Error as e:
                raise user_error(e.message, e.title, action=name) from None
            except Gone:
                log.warning("%s: stopped: its visitor cancelled it or left", name)
                # nobody reads this: Gradio has dropped the event; it ends the handler without a traceback
                raise gr.Error("Stopped.", title="Cancelled", print_exception=False) from None
            except Exception as e:
                if os_error_code(e) in DISK_FULL:
                    log.error("%s failed: the server's disk is full: %s", name, _disk_error(e))
                    raise gr.Error(SERVER_DISK_FULL, title="Server error", print_exception=False) from None
                log.exception("%s failed", name)
                raise gr.Error(
                    f"{SERVER_ERROR} {retry}", title="Server error", print_exception=False
                ) from None

        return handler  # type: ignore[return-value]

    return wrap


def _disk_error(e: BaseException) -> str:
    """A full disk's error in one line for the log: the file it hit (its folder is the one to free), why."""
    where = getattr(e, "filename2", None) or getattr(e, "filename", None)
    why = getattr(e, "strerror", None) or str(e)
    return f"{where} ({why})" if where else why


def open_dataset(upload: str | None, spec: str | None, split: str | None) -> Any:
    """The labelled set a visitor chose, opened under this server's caps: an uploaded zip (read through
    :class:`~ferhub.archives.SafeZip`), a Hub dataset id, or (only when allowed) a server path; its images
    decode under the app's pixel limit (``state.MAX_PIXELS``).
    ``ValueError`` with what to change otherwise."""
    from ferhub.data import ZipSource, open_source

    spec = (spec or "").strip()
    p = _policy
    if upload:
        source = ZipSource(upload, split, limits=p.archive_limits())
    elif p.local_paths:
        source = open_source(spec, split)
    elif _HUB_ID.fullmatch(spec) and "@" not in spec:
        snapshot = _hub_dataset(spec)
        folder = _data_files_of(snapshot, spec)
        try:
            source = _theirs(open_source(folder, split), folder, snapshot, spec)
        except BaseException:  # nothing will read the links
            shutil.rmtree(folder.parent, ignore_errors=True)
            raise
    else:
        raise ValueError(
            "This server evaluates an uploaded zip of class folders or a Hub dataset id ('org/name'); paths "
            f"on the server are turned off (its operator can allow them with {LOCAL_PATHS_SETTING}=1)"
        )
    if len(source) > p.max_images:
        raise ValueError(
            f"this set has {len(source):,} images; this server evaluates at most {p.max_images:,} at a time "
            "(FERHUB_EVAL_MAX_IMAGES): evaluate on a sample, or run `ferhub evaluate` on your own machine"
        )
    from ferhub.ui import state

    # each image decoded under the app's own limit, as an uploaded photo is: a larger one is skipped and
    # counted, before it is decoded (a 14 KB PNG can declare 49 MP)
    source.max_pixels = state.MAX_PIXELS
    return source


def _data_files_of(snapshot: Path, repo_id: str) -> Path:
    """A folder of links to a visitor's Hub dataset's data files alone (parquet, CSV, zip, images; by their
    real path inside its own repo in the cache), for ``datasets`` or ferhub's readers to open: its card and
    ``.huggingface.yaml``, whose ``configs`` may point ``data_files`` anywhere (``/srv/...``, ``file:``,
    ``hf://`` past the download cap), and a ``save_to_disk`` layout, whose ``state.json`` names arrow files
    by path, are left behind, so nothing but the dataset's own files can be read."""
    from ferhub.data.sources import saved_dataset
    from ferhub.images import image_suffixes

    if saved_dataset(snapshot):
        raise ValueError(
            f"Hub dataset {repo_id!r} is a save_to_disk folder; this server evaluates a Hub dataset of"
            " parquet, CSV, a zip or class folders of images (push it with push_to_hub)"
        )
    repo = Path(os.path.realpath(snapshot.parent.parent))  # CACHE/datasets--org--name: snapshots and blobs
    wanted = {".parquet", ".csv", ".zip", *image_suffixes()}
    # not in the swept outputs folder: an evaluation running past their age would lose its links part-way
    # (they go with the source that reads them: see _theirs)
    folder = Path(tempfile.mkdtemp(prefix="ferhub-dataset-")) / repo_id.replace("/", "--")
    try:
        folder.mkdir()
        for path in sorted(snapshot.rglob("*")):
            rel = path.relative_to(snapshot)
            if path.suffix.lower() not in wanted or any(part.startswith(".") for part in rel.parts):
                continue
            real = Path(os.path.realpath(path))
            if real.is_file() and real.is_relative_to(repo):
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).symlink_to(real)
    except BaseException:  # a full disk part-way: nothing sweeps the system temp folder, so leave nothing
        shutil.rmtree(folder.parent, ignore_errors=True)
        raise
    return folder


def _theirs(source: Any, folder: Path, snapshot: Path, repo_id: str) -> Any:
    """A visitor's Hub dataset, opened from the links to its data files (``folder``): named by its id (never
    the server's folder), and its rows' files read only from inside its own repo in the cache."""
    from ferhub.data.hf import HFSource, own_roots

    if isinstance(source, HFSource):
        source.path_roots = own_roots(snapshot.parent.parent)
        source.origin = source.origin.replace(str(folder), repo_id)
    source.name = repo_id
    weakref.finalize(source, shutil.rmtree, folder.parent, ignore_errors=True)  # the links, once unused
    return source


_HUB_DATASET_DOWN = (
    "Hub dataset {repo_id!r} is not available on this server (it cannot reach the Hugging Face Hub now and"
    " has no copy): upload a zip of class folders instead"
)


def _hub_dataset(repo_id: str) -> Path:
    """The local snapshot of a Hub dataset repo, fetched only when its files fit the download cap (never a
    server folder of the same name: the id goes to the Hub and its cache, nowhere else)."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import LocalEntryNotFoundError, RepositoryNotFoundError

    from ferhub.hub._remote import hub_unreachable

    # a Hub that does not answer a 1 s probe is treated as offline: the cache only, no request that would hang
    offline = constants.is_offline_mode() or hub_unreachable(constants.ENDPOINT) is not None
    cap = _policy.max_download_bytes
    try:
        if not offline:
            info = huggingface_hub.HfApi().dataset_info(repo_id, files_metadata=True, timeout=10)
            size = sum(s.size or 0 for s in info.siblings or [])
            if size > cap:
                raise ValueError(
                    f"Hub dataset {repo_id!r} holds {size / 2**20:,.0f} MB of files; this server downloads at"
                    f" most {cap / 2**20:,.0f} MB (FERHUB_EVAL_MAX_DOWNLOAD_MB): upload a zip of a sample"
                    " instead"
                )
        folder = huggingface_hub.snapshot_download(repo_id, repo_type="dataset", local_files_only=offline)
    except RepositoryNotFoundError as e:
        raise ValueError(f"Hub dataset {repo_id!r} was not found (or is private or gated)") from e
    except LocalEntryNotFoundError as e:
        raise ValueError(_HUB_DATASET_DOWN.format(repo_id=repo_id)) from e
    except Exception as e:
        if not is_network_error(e):
            raise
        raise ValueError(_HUB_DATASET_DOWN.format(repo_id=repo_id)) from e
    return Path(folder)
