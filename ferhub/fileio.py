"""Atomic file writes: a reader (or a process killed mid-write) sees the old file or the new one, never half.

Every writer of a file that others read while it may change (model repos, ``eval_results.json``, training
checkpoints, cached weights) goes through here. The new content goes to ``.<name>.<pid>-<random>.tmp`` in the
same folder, is fsynced and renamed over the target; a writer killed before the rename leaves only such a
temporary file, which the next write to the same target removes (:func:`remove_stale_temps`) once the process
that made it is gone. A writer of many files in one folder removes those leftovers once for all of them
(:func:`remove_stale_temps_of`, :func:`remove_stale_temps_in`) and writes each file with ``sweep=False``; one
whose files a rerun remakes or a sweep deletes skips the fsync (``durable=False``). A ``<name>`` too long
to leave room for the rest in one file name (255 bytes) is shortened to its start and a hash of the whole
name (:func:`fit_name`). A new file gets the mode ``open()`` would give it (0666 less the umask, applied by
the kernel as the temporary is made), and :func:`name_folding` tells which spellings of a name a folder's
file system takes for one. A disk that fills up (or a file-size limit) while the target (or a temporary in
its place) is written is the target's error, named by it (:func:`writing`), safetensors' too.

>>> atomic_write_text(Path("out/results.json"), "{}\\n")            # doctest: +SKIP
>>> with atomic_path(Path("out/model.safetensors")) as tmp:        # doctest: +SKIP
...     safetensors.torch.save_file(tensors, tmp)
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks (lock_file gives None)
    fcntl = None  # type: ignore[assignment]

_TEMP_SUFFIX = ".tmp"
# a disk that takes no more of a file: full, the user's quota used up, or the file past the process's
# file-size limit (``ulimit -f``): an error of the file being written (:func:`writing`)
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
# how Rust's std::io::Error ends its text: safetensors' SafetensorError on a full disk ("Error while
# serializing: I/O error: No space left on device (os error 28)") is no OSError
_OS_ERROR_CODE = re.compile(r"\(os error (\d+)\)")
# the longest file name, in bytes: Linux (ext4, XFS, Btrfs), macOS (APFS, in UTF-8 bytes) and Windows (in
# UTF-16 units, never more than UTF-8 bytes) all allow 255
NAME_MAX = 255
# what a temporary's name adds to its target's: ".", ".", the pid (7 digits at most on Linux), "-", 8 random
# hex digits (new_temp), ".tmp"; with room to spare
_TEMP_ROOM = 32


@dataclass(frozen=True)
class Folding:
    """Which spellings of a name a file system takes for one file (:func:`name_folding`)."""

    case: bool = False  # ``Case.jpg`` is ``case.jpg``: APFS, HFS+, NTFS and exFAT as formatted by default
    unicode: bool = False  # ``é`` composed (U+00E9) is ``e`` and U+0301: APFS and HFS+

    def key(self, name: str) -> str:
        """One text for every spelling of ``name`` taken for it (a little wider than the file system: a tag
        too many costs nothing, a name merged with another would lose a result)."""
        if self.case:  # Unicode's canonical caseless match
            return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())
        return unicodedata.normalize("NFD", name) if self.unicode else name


EXACT = Folding()  # every spelling a name of its own: Linux's usual file systems


def name_folding(folder: str | os.PathLike) -> Folding:
    """How the file system of ``folder`` compares names, asked of it rather than guessed from the platform
    (Linux has case-insensitive folders, macOS case-sensitive volumes): a file is made there, its name looked
    up spelt otherwise (ASCII letters' case swapped; its ``é`` decomposed), and removed. Raises ``OSError``
    where no file can be made in ``folder``."""
    try:
        fd, made = tempfile.mkstemp(prefix=f".ferhub-names-{os.getpid()}-\u00e9-", dir=folder)
    except UnicodeEncodeError:  # a file system encoding without "é": case only
        fd, made = tempfile.mkstemp(prefix=f".ferhub-names-{os.getpid()}-", dir=folder)
    os.close(fd)
    try:
        name = os.path.basename(made)
        swapped = "".join(c.swapcase() if c.isascii() else c for c in name)
        decomposed = unicodedata.normalize("NFD", name)
        return Folding(
            case=os.path.lexists(os.path.join(folder, swapped)),
            unicode=decomposed != name and os.path.lexists(os.path.join(folder, decomposed)),
        )
    finally:
        os.unlink(made)


def fit_name(name: str, limit: int) -> str:
    """``name`` when it takes at most ``limit`` bytes (as the file system stores it), else its start, ``~``
    and 16 hex digits of a hash of the whole name, in ``limit`` bytes: the same name always gives the same
    short one, and two long names that start alike give two.

    >>> fit_name("photo.jpg", 40)
    'photo.jpg'
    >>> len(fit_name("x" * 300 + ".jpg", 40))
    40
    """
    return fit_parts([name], limit=limit)


def fit_parts(parts: Sequence[str], suffix: str = "", *, sep: str = ".", limit: int = NAME_MAX) -> str:
    """A file name of ``parts`` joined by ``sep``, then ``suffix``, in at most ``limit`` bytes: the name
    itself when it fits, else each part cut to its share of the room (a part shorter than its share whole,
    the room it leaves shared by the others), ``~`` and 16 hex digits of a hash of the whole name before
    ``suffix``. Every part keeps its start, readable; the same parts always give the same name, and two long
    names that start alike give two (a model id and a dataset id of 120 characters each made a predictions
    file name past the 255 bytes a file system takes, and its write failed).

    >>> fit_parts(["org--model", "data--default--test"], ".predictions.json")
    'org--model.data--default--test.predictions.json'
    >>> fit_parts(["m" * 200, "data"], ".json", limit=40)
    'mmmmmmmmmmmmm.data~8d120ccc974d3251.json'
    """
    whole = sep.join(parts) + suffix
    raw = os.fsencode(whole)
    if len(raw) <= limit:
        return whole
    digest = hashlib.sha256(raw).hexdigest()[:16]
    fixed = len(os.fsencode(suffix)) + len(digest) + 1 + len(os.fsencode(sep)) * (len(parts) - 1)
    left = max(limit - fixed, 0)
    sizes = [len(os.fsencode(p)) for p in parts]
    keep = list(sizes)
    for k, i in enumerate(sorted(range(len(parts)), key=sizes.__getitem__)):  # shortest first
        keep[i] = min(sizes[i], left // (len(parts) - k))
        left -= keep[i]
    return sep.join(_start(p, n) for p, n in zip(parts, keep)) + f"~{digest}{suffix}"


def _start(text: str, size: int) -> str:
    """The longest start of ``text`` in at most ``size`` bytes, of whole characters (a cut UTF-8 sequence is
    no name on macOS)."""
    head = text[:size]
    while len(os.fsencode(head)) > size:
        head = head[:-1]
    return head


def _temp_prefix(path: Path) -> str:
    return f".{fit_name(path.name, NAME_MAX - _TEMP_ROOM)}."


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (this process included): what tells a leftover of a
    process that was killed (SIGKILL, a crash) from the files of one still at work."""
    if pid == os.getpid():
        return True  # another thread of this process; a dead writer's pid is not ours
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but is not ours to signal
        return True
    return True


def _writer_alive(temp: Path, prefix: str) -> bool:
    """Whether the process that made ``temp`` still runs (it may be writing it right now)."""
    pid_text = temp.name[len(prefix) :].partition("-")[0]
    if not pid_text.isdigit():
        return False  # not named by this module: an interrupted write of an older ferhub
    return process_alive(int(pid_text))


def _is_temp(entry: str, prefix: str) -> bool:
    """Whether ``entry`` is ``PREFIX<pid>-<random>.tmp``; a dot after the prefix is another target's temporary
    (``.a.json.`` starts ``.a.json.b.json.<pid>-<random>.tmp`` too)."""
    middle = entry[len(prefix) : -len(_TEMP_SUFFIX)]
    return entry.startswith(prefix) and entry.endswith(_TEMP_SUFFIX) and middle != "" and "." not in middle


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a written file to disk, so that a rename after it never leaves an empty file after a crash."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files an interrupted atomic write of ``path`` left behind; returns them.

    Only temporaries of this very target are touched, and only those whose writing process has ended.
    """
    return remove_stale_temps_of([path])


def remove_stale_temps_of(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """:func:`remove_stale_temps` for many targets at once, listing each folder once (not once per target):
    for a writer of thousands of files in one folder (``ferhub predict --out-dir``)."""
    by_folder: dict[Path, set[str]] = {}  # each folder's temporary prefixes
    for path in map(Path, paths):
        by_folder.setdefault(path.parent, set()).add(_temp_prefix(path))
    return sorted(
        t for folder, prefixes in by_folder.items() for t in _remove_stale(folder, prefixes.__contains__)
    )


def remove_stale_temps_in(folder: str | os.PathLike, wanted: Callable[[str], bool]) -> list[Path]:
    """:func:`remove_stale_temps` for every target in ``folder`` whose name ``wanted`` takes, in one listing:
    for a writer whose file names are known only as it goes (``predict --saliency``'s overlays), once per run.
    ``wanted`` gets the name as the temporary spells it (:func:`fit_name`'s short form of a long one)."""
    return sorted(_remove_stale(Path(folder), lambda prefix: wanted(prefix[1:-1])))


def _remove_stale(folder: Path, wanted: Callable[[str], bool]) -> list[Path]:
    """Delete the temporaries in ``folder`` whose writer has ended and whose prefix (``.NAME.``) ``wanted``
    takes; returns them."""
    try:  # (listed, not glob()-ed: a name holding "[", "*" or "?" would be read as a pattern)
        entries = os.listdir(folder)
    except OSError:  # not made yet: nothing left there
        return []
    stale = []
    for entry in entries:
        if not (entry.startswith(".") and entry.endswith(_TEMP_SUFFIX)):
            continue
        # .NAME.PID-RANDOM.tmp; RANDOM has no dot, so NAME is all before the last one
        prefix = f".{entry[1 : -len(_TEMP_SUFFIX)].rpartition('.')[0]}."
        temp = folder / entry
        if _is_temp(entry, prefix) and wanted(prefix) and not _writer_alive(temp, prefix):
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            stale.append(temp)
    return stale


def new_temp(path: str | os.PathLike) -> Path:
    """A new empty file next to ``path``, named as :func:`remove_stale_temps` knows it
    (``.<name>.<pid>-<random>.tmp``, ``<name>`` shortened by :func:`fit_name` where the whole would pass 255
    bytes), with the mode ``open()`` gives a new file (0666 less the umask, the kernel's to apply: ``mkstemp``
    would make it private, 0600, and the umask cannot be read without changing it for the whole process):
    for a writer that renames it over ``path`` itself, or deletes it."""
    path = Path(path)
    prefix = f"{_temp_prefix(path)}{os.getpid()}-"
    for _ in range(100):
        name = path.parent / f"{prefix}{secrets.token_hex(4)}{_TEMP_SUFFIX}"
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return name
    raise FileExistsError(f"no free temporary name next to {path}")


def os_error_code(e: BaseException) -> int | None:
    """The OS error code (``errno``) an exception stands for: an ``OSError``'s own, or one in the text of a
    library's error that is no ``OSError`` (a Rust library's ``... (os error 28)``); else ``None``."""
    if isinstance(e, OSError):
        return e.errno
    match = _OS_ERROR_CODE.search(str(e))
    return int(match[1]) if match else None


@contextlib.contextmanager
def writing(path: str | os.PathLike, *, unnamed: bool = True) -> Iterator[None]:
    """Errors of the block, which writes ``path``, name ``path``, the file its user knows.

    A full disk, a used-up quota or a file-size limit (:data:`DISK_FULL`) on a file that stands in for
    ``path`` names ``path``: a temporary or a stage copy written in its place (:func:`_stands_for`) names one
    the user never sees (``shutil.copyfile`` names its source first, its destination second). One on any
    other file keeps that file's name: the block may write elsewhere too (ONNX Runtime's quantiser writes
    into the system's temporary folder), and naming ``path`` then sent the user to the wrong disk. One that
    names no file (``write()``'s) is ``path``'s unless ``unnamed`` is ``False`` (a block writing other files
    too): it then names none. A library's error that is no ``OSError`` but carries an OS error code
    (safetensors' ``SafetensorError``) becomes that ``OSError``, naming ``path`` (``unnamed``: none), so
    callers (the CLI's "the disk is full: PATH") take it as they take Python's own. Nested, the outermost
    name wins.
    """
    try:
        yield
    except OSError as e:
        if e.errno in DISK_FULL and (
            (e.filename is None and e.filename2 is None and unnamed)
            or _stands_for(e.filename, path)
            or _stands_for(e.filename2, path)
        ):
            e.filename, e.filename2 = os.fspath(path), None
        raise
    except Exception as e:
        code = os_error_code(e)
        if code is None:
            raise
        raise OSError(code, os.strerror(code), *([os.fspath(path)] if unnamed else [])) from e


def _stands_for(name: Any, path: str | os.PathLike) -> bool:
    """Whether the file ``name`` (an error's) is ``path`` or one written in its place that its user never
    sees: a temporary or stage folder beside it named after it (``.NAME.<pid>-<random>.tmp``,
    ``.NAME.tmp-<uuid>``), or a file of its name (or that file's temporary) in a hidden stage folder beside
    it or beside its folder (``ferhub export``'s ``OUT/.ferhub-export-*/model.onnx``, ``ferhub.save``'s
    ``.REPO.tmp-*/config.json``)."""
    if not isinstance(name, (str, bytes, os.PathLike)):
        return False  # no file, or a descriptor
    hit, path = Path(os.path.abspath(os.fsdecode(name))), Path(os.path.abspath(path))
    if hit == path or (hit.parent == path.parent and hit.name.startswith(_temp_prefix(path))):
        return True
    stage = hit.parent
    return (
        stage.name.startswith(".")
        and stage.parent in (path.parent, path.parent.parent)
        and (hit.name == path.name or hit.name.startswith(_temp_prefix(path)))
    )


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, *, mode: int | None = None, durable: bool = True, sweep: bool = True
) -> Iterator[Path]:
    """A temporary path next to ``path``; when the block ends without error it is fsynced and renamed over
    ``path``, otherwise deleted.

    For writers that want a file name (``safetensors.torch.save_file``, ``torch.save``). The file gets
    ``mode``, else the old file's mode, else a new file's (as :func:`new_temp` made it: 0644 under the usual
    umask, 0600 under 077).
    Leftovers of earlier interrupted writes of ``path`` are removed first, unless ``sweep`` is ``False``: a
    listing of the whole folder each time made a writer of thousands of files in one folder quadratic, so
    such a writer removes them once for all its files (:func:`remove_stale_temps_of`,
    :func:`remove_stale_temps_in`), and a fresh name (the app's uuid) has none. ``durable=False`` skips the
    fsync (3 ms and more a file): the rename still never leaves a file cut short under ``path`` when the
    process is killed or the disk fills up, only a crash of the machine may; for files a rerun makes again or
    a sweep deletes. A full disk (the writer's, the fsync's or the rename's) is ``path``'s error, and a
    writer's library error carrying an OS error code an ``OSError`` (:func:`writing`).
    """
    path = Path(path)
    with writing(path):
        if sweep:
            remove_stale_temps(path)
        tmp = new_temp(path)
        try:
            if mode is None:
                mode = (path if path.exists() else tmp).stat().st_mode & 0o777
            yield tmp
            # after the writer: one that replaces the file (safetensors' save_file) leaves its own mode, 0600
            os.chmod(tmp, mode)
            if durable:
                fsync_file(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(
    path: str | os.PathLike, data: bytes, *, mode: int | None = None, durable: bool = True, sweep: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    path = Path(path)
    with atomic_path(path, mode=mode, durable=durable, sweep=sweep) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_save_image(
    path: str | os.PathLike,
    image: Any,
    mode: int | None = None,
    *,
    durable: bool = True,
    sweep: bool = True,
    **options: Any,
) -> Path:
    """Save the PIL ``image`` to ``path`` atomically (see :func:`atomic_path`, which says what ``mode``,
    ``durable`` and ``sweep`` do), in the format of its suffix unless ``format`` is given, with Pillow's
    ``options`` (``quality``); returns ``path``.

    Encoded in memory, then written by :func:`atomic_write_bytes`, whose write fails when the disk takes only
    part of it: Pillow's own ``save(path)`` returned without error from such a write where the whole file fit
    its encoder's one 64 KiB buffer (a JPEG on a nearly full disk or under ``ulimit -f``, Pillow 12.3), and
    the truncated file was reported written."""
    from PIL import Image

    path = Path(path)
    kind = options.pop("format", None) or Image.registered_extensions().get(path.suffix.lower())
    buffer = io.BytesIO()
    image.save(buffer, format=kind, **options)
    return atomic_write_bytes(path, buffer.getvalue(), mode=mode, durable=durable, sweep=sweep)


def atomic_write_text(path: str | os.PathLike, text: str, *, mode: int | None = None) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented UTF-8 JSON atomically; NaN and infinity are refused, not written."""
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def lock_file(path: str | os.PathLike, *, wait: bool) -> IO[str] | None:
    """``path`` opened and held under an exclusive ``flock`` (made if missing), for a holder that removes it
    with :func:`unlock_file` when done: waiting for another holder (``wait``), or ``BlockingIOError`` while
    one holds it. ``None`` where the platform or the file system (Lustre, some NFS) has no ``flock``: nothing
    is kept apart there. A holder killed outright lets go with its process; the file it leaves is taken over.
    The file locked is always the one at ``path``: one removed by its holder while this process waited on it
    is let go, and the new one locked instead."""
    path = Path(path)
    if fcntl is None:
        return None
    while True:
        f = open(path, "a+")  # noqa: SIM115 (the caller's to close, through unlock_file)
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as e:
            f.close()
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise BlockingIOError(e.errno, f"{path} is locked by another process") from None
            path.unlink(missing_ok=True)  # flock not supported here
            return None
        try:
            same = os.path.samestat(os.fstat(f.fileno()), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return f
        f.close()  # its holder removed that file after we opened it: lock the one there now


def unlock_file(path: str | os.PathLike, f: IO[str] | None) -> None:
    """Remove the lock file ``path`` (still held: a process waiting on it then takes the next one) and let
    go of ``f`` (from :func:`lock_file`)."""
    if f is not None:
        Path(path).unlink(missing_ok=True)
        f.close()
