"""The files a running app writes, kept bounded and removed at exit.

Two places fill up on a busy server: ferhub's own outputs (annotated photos, JSON downloads, evaluation
reports: one folder per process, made on first use) and Gradio's cache (uploads and the copies of every
output it serves). Both are swept by age and by total size, and both are removed when the process exits.
A server killed past any handler (SIGKILL, a crash) cannot remove its own, so the next server to start removes
those of servers that no longer run (:func:`remove_orphans`). Whether one runs is told by an ``flock`` each
server holds on its folder's :data:`LOCK_NAME` for its life (the kernel lets go of it however the process
ends), not by the pid the names still carry (``ferhub-gradio-PID-*``, ``ferhub-app-PID-*``): a server in
another pid namespace (containers sharing ``/tmp`` or ``GRADIO_TEMP_DIR``) has a pid that means nothing here.

Settings (environment): ``FERHUB_CACHE_MAX_AGE_S`` (default 600: a result stays downloadable for ten
minutes), ``FERHUB_CACHE_SWEEP_S`` (default 60), ``FERHUB_CACHE_MAX_MB`` (default 1024, the cap on each
place).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no folder is held, none is removed as an orphan
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".ferhub-server.lock"  # in each server's folder, flock-ed by that server for its life
_lock = threading.Lock()
_held: list[int] = []  # the open lock files of this process's folders: closed only when it ends
_outputs: Path | None = None
_owned_gradio: Path | None = None
_last_sweep = 0.0


def _setting(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def max_age_s() -> int:
    return _setting("FERHUB_CACHE_MAX_AGE_S", 600)


def sweep_every_s() -> int:
    return _setting("FERHUB_CACHE_SWEEP_S", 60)


def max_bytes() -> int:
    return _setting("FERHUB_CACHE_MAX_MB", 1024) << 20


def delete_cache() -> tuple[int, int]:
    """``gr.Blocks(delete_cache=...)``: every sweep interval, Gradio deletes the files this app put in its
    cache that are older than the maximum age (and all of them when the server stops)."""
    return sweep_every_s(), max_age_s()


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def outputs_dir() -> Path:
    """This process's folder for handler outputs (made on first use, removed at exit), inside Gradio's cache
    folder: Gradio serves a returned file from there as it is, where it would hash and copy one from
    anywhere else (``Block.async_move_resource_to_block_cache``; classify's post-processing took 3.5-4.2 ms
    that way, 1.5-2.3 ms this way, AMD EPYC)."""
    global _outputs
    with _lock:
        if _outputs is None or not _outputs.is_dir():
            from gradio.utils import get_upload_folder  # where Gradio caches, read as its blocks read it

            gradio_cache = Path(get_upload_folder())
            gradio_cache.mkdir(parents=True, exist_ok=True)
            remove_orphans(gradio_cache, "ferhub-app-")  # a shared GRADIO_TEMP_DIR: dead servers' outputs
            _outputs = _own_folder("ferhub-app-", gradio_cache)
        return _outputs


def output_path(suffix: str) -> Path:
    """A fresh file path in :func:`outputs_dir` (the folder is swept first when a sweep is due)."""
    maybe_sweep()
    return outputs_dir() / f"{uuid.uuid4().hex}{suffix}"


def download_path(name: str) -> Path:
    """A fresh path for a file a visitor downloads, named ``name`` (``interview.csv``) in a folder of its own:
    the browser saves it under that name, where :func:`output_path`'s 32-digit prefix came first (and was
    all a phone showed of it)."""
    maybe_sweep()
    folder = outputs_dir() / uuid.uuid4().hex
    folder.mkdir()
    return folder / name


def work_dir(prefix: str) -> Path:
    """A fresh folder in :func:`outputs_dir` for a handler's several files; swept like single files."""
    maybe_sweep()
    return Path(tempfile.mkdtemp(prefix=prefix, dir=outputs_dir()))


def _own_folder(prefix: str, parent: Path | None = None) -> Path:
    """A fresh folder ``PREFIX<pid>-*`` of this process, removed at exit, held (:func:`_hold`) till then."""
    folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
    atexit.register(_remove, folder)
    _hold(folder)
    return folder


def _hold(folder: Path) -> None:
    """Take an ``flock`` on ``folder``'s :data:`LOCK_NAME` for the rest of this process's life: while it is
    held, :func:`remove_orphans` leaves the folder alone. The file is locked under another name and then
    renamed, so that no sweep ever finds it unlocked. Where the file system has no ``flock``, the folder gets
    no lock file, and sweeps leave it alone as an older ferhub's."""
    if fcntl is None:
        return
    new = folder / f"{LOCK_NAME}.new"
    fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        new.unlink(missing_ok=True)
        return
    os.replace(new, folder / LOCK_NAME)
    _held.append(fd)


@contextlib.contextmanager
def _unheld(folder: Path) -> Iterator[bool]:
    """Whether no process holds ``folder``'s lock (its server has ended), holding it meanwhile; ``False`` for
    a folder without a lock file (an older ferhub's: whether it still runs cannot be told). ``OSError`` where
    the file system has no ``flock``."""
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # none, another user's, or a link: left alone
        fd = None
    if fd is None:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        ended = True
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            os.close(fd)
            raise
        ended = False  # a live server's, in this pid namespace or any other
    try:
        yield ended
    finally:
        os.close(fd)


def remove_orphans(parent: Path, prefix: str) -> list[Path]:
    """Remove the folders ``PREFIX*`` in ``parent`` whose server no longer runs (killed with SIGKILL, crashed:
    it could not remove its own), as told by the ``flock`` each server holds on its folder's
    :data:`LOCK_NAME`; returns them. A live server's folder, whatever pid namespace or host it runs in, and
    one without a lock file (an older ferhub's) are left alone; so is every folder where the file system has
    no ``flock``."""
    removed: list[Path] = []
    if fcntl is None:
        return removed
    try:
        for entry in parent.iterdir():
            if not entry.name.startswith(prefix) or entry.is_symlink() or not entry.is_dir():
                continue
            with _unheld(entry) as ended:
                if ended:
                    _remove(entry)
                    removed.append(entry)
    except OSError:  # an unreadable folder, or a file system without flock: no clean-up, start-up goes on
        pass
    return sorted(removed)


def own_gradio_cache() -> Path | None:
    """Give Gradio a cache folder of this server's own (removed at exit) unless ``GRADIO_TEMP_DIR`` is set;
    first remove those of earlier servers that were killed (:func:`remove_orphans`).

    Call before the app is built (``app.py`` does): Gradio otherwise shares ``/tmp/gradio`` between every app
    on the machine, which ferhub may neither cap nor remove. Returns the folder made, if any.
    """
    global _owned_gradio
    if os.environ.get("GRADIO_TEMP_DIR"):
        return None
    remove_orphans(Path(tempfile.gettempdir()), "ferhub-gradio-")
    _owned_gradio = _own_folder("ferhub-gradio-")
    os.environ["GRADIO_TEMP_DIR"] = str(_owned_gradio)
    return _owned_gradio


def _walk(root: Path, skip: Path | None = None) -> Iterator[tuple[str, list[str]]]:
    """``os.walk``'s (folder, file names) under ``root``, never descending into ``skip``."""
    for dirpath, dirnames, files in os.walk(root):
        if skip is not None:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        yield dirpath, files


def _entries(root: Path, skip: Path | None = None) -> list[tuple[float, int, Path]]:
    out = []
    for dirpath, files in _walk(root, skip):
        for name in files:
            if name == LOCK_NAME:
                continue  # held for the server's life: the sign that its folder is in use
            path = Path(dirpath) / name
            with contextlib.suppress(OSError):
                st = path.lstat()
                out.append((st.st_mtime, st.st_size, path))
    return out


def sweep_folder(
    root: Path,
    *,
    max_age: float | None,
    cap: int,
    min_age: float = 0.0,
    now: float | None = None,
    skip: Path | None = None,
) -> int:
    """Delete files older than ``max_age`` seconds, then the oldest until the rest fit in ``cap`` bytes (never
    one younger than ``min_age``: a request may be about to read it), then emptied sub-folders; nothing in
    ``skip`` (a sub-folder swept on its own terms). Returns the number of files deleted."""
    now = time.time() if now is None else now
    entries = sorted(_entries(root, skip))
    total = sum(size for _, size, _ in entries)
    deleted = 0
    for mtime, size, path in entries:
        age = now - mtime
        if (max_age is None or age <= max_age) and (total <= cap or age < min_age):
            break  # sorted oldest first: the rest are young enough and fit (or too fresh to take)
        with contextlib.suppress(OSError):
            path.unlink()
            deleted += 1
            total -= size
    for dirpath, _ in sorted(_walk(root, skip), key=lambda w: -len(w[0])):
        folder = Path(dirpath)
        if folder != root:
            with contextlib.suppress(OSError):
                # a folder this young may be one Gradio is about to write into
                if now - folder.stat().st_mtime > min(max_age or 60.0, 60.0):
                    folder.rmdir()  # only succeeds when empty
    return deleted


def maybe_sweep(*, force: bool = False) -> None:
    """Sweep ferhub's outputs (by age and size) and, when this server owns it, Gradio's cache (by size; Gradio
    ages its own files through ``delete_cache``), at most once per sweep interval."""
    global _last_sweep
    now = time.monotonic()
    with _lock:
        if not force and now - _last_sweep < sweep_every_s():
            return
        _last_sweep = now
        outputs = _outputs
        roots = [(outputs, max_age_s()), (_owned_gradio, None)]
    for root, age in roots:
        if root is not None and root.is_dir():
            # over the size cap, files go oldest first but only once a request has had time to use them: the
            # cap then holds up to what one such interval of traffic adds. ferhub's outputs, inside Gradio's
            # folder, are swept on their own (their folder, even empty, stays: a handler may be writing there)
            skip = outputs if root != outputs else None
            sweep_folder(root, max_age=age, cap=max_bytes(), min_age=min(max_age_s(), 60), skip=skip)


def expire_gradio_files(blocks: Any, max_age: float, now: float | None = None) -> int:
    """Delete the files Gradio made for ``blocks`` (uploads, served outputs) once older than ``max_age``
    seconds, as ``delete_cache`` means to; returns how many. Gradio's own scheduled task iterates the live
    sets that request threads add to: under concurrent requests it dies with "Set changed size during
    iteration" and never runs again (``bench/soak.py``: 5,776 files, 192 MB after 10 minutes at 4 clients and
    a 120 s age). This walks copies and, as Gradio does, keeps what components keep (``keep_in_cache``:
    cached examples)."""
    now = time.time() if now is None else now
    keep: set[str] = set()
    for component in list(blocks.blocks.values()):
        keep.update(getattr(component, "keep_in_cache", ()))
    deleted = 0
    for files in list(blocks.temp_file_sets):
        for file in list(files):
            if file in keep:
                continue
            try:
                if now - os.lstat(file).st_ctime <= max_age:  # ctime, as Gradio ages them
                    continue
                os.remove(file)
                deleted += 1
            except FileNotFoundError:
                pass
            except OSError:
                continue
            files.discard(file)
    return deleted


def start_sweeper(blocks: Any = None) -> None:
    """Sweep every interval in a background thread (a server that stops getting requests still empties its
    outputs as they age; requests alone would sweep only when the next one comes); with the app's ``blocks``,
    also expire Gradio's files (:func:`expire_gradio_files`)."""

    def loop() -> None:
        while True:
            time.sleep(sweep_every_s())
            try:
                maybe_sweep(force=True)
                if blocks is not None:
                    expire_gradio_files(blocks, max_age_s())
            except Exception:  # one failed sweep must not end the sweeping (Gradio's own task ends so)
                logging.getLogger(__name__).exception("sweeping the app's temporary files failed")

    threading.Thread(target=loop, name="ferhub-sweeper", daemon=True).start()
