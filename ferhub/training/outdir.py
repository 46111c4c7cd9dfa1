"""A run's output folder: one ``ferhub train`` at a time (:func:`claim`), and a fresh run that first forgets
the checkpoints an earlier run left there (:func:`forget_checkpoints`), so that ``--resume`` continues only
the run that was stopped.

The claim is an ``flock`` on ``OUTPUT_DIR/.ferhub-train.lock``, held for the run's life and let go by the
kernel when its process ends however it ends: the file a killed run leaves blocks no one
(:func:`ferhub.fileio.lock_file`). Without ``flock`` (Windows, some network file systems) nothing is claimed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ferhub.fileio import lock_file, unlock_file
from ferhub.training.settings import RecipeError

LOCK_NAME = ".ferhub-train.lock"
_PART = re.compile(r"(repeat|fold)\d+")  # a part's folder, as protocol.run_plan names it


class OutputDirBusy(RecipeError):
    """Another ``ferhub train`` is writing to the output folder (an option to change: exit code 2)."""


@dataclass
class OutputLock:
    """The claim on an output folder; :meth:`release` removes the lock file and lets go."""

    path: Path
    file: IO[str] | None

    def release(self) -> None:
        unlock_file(self.path, self.file)
        self.file = None


def claim(out_dir: Path) -> OutputLock:
    """The folder's lock, held by this process until :meth:`OutputLock.release` or its end; raises
    :class:`OutputDirBusy` (naming the other run's pid) when a live process holds it."""
    path = out_dir / LOCK_NAME
    try:
        f = lock_file(path, wait=False)
    except BlockingIOError:
        try:
            holder = path.read_text().strip()
        except OSError:
            holder = ""
        who = f"pid {holder}" if holder.isdigit() else "a process that is starting"
        raise OutputDirBusy(
            f"{out_dir} is in use by another ferhub train ({who}); wait for it to end, or give another"
            " --output-dir"
        ) from None
    if f is not None:  # (None: no flock here, as on Windows: runs into this folder are not kept apart)
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
    return OutputLock(path, f)


def forget_checkpoints(out_dir: Path, keep: Path | None = None) -> list[Path]:
    """Remove the ``last``/``best`` checkpoints of every part of an earlier run in ``out_dir`` (the folder
    itself, ``repeatN/``, ``foldN/``, ``repeatN/foldN/``) but ``keep`` (the run's ``--init``: an earlier
    run's own checkpoint, not yet read); returns them. A fresh run does this before its first epoch, so a stop
    before its own first checkpoint leaves nothing that ``--resume`` would take for it."""
    parts = [out_dir]
    for folder in sorted(out_dir.iterdir()) if out_dir.is_dir() else []:
        if folder.is_dir() and _PART.fullmatch(folder.name):
            parts.append(folder)
            if folder.name.startswith("repeat"):  # repeatN/foldN/
                parts += [f for f in sorted(folder.glob("fold*")) if f.is_dir() and _PART.fullmatch(f.name)]
    found = [p / "checkpoints" / f"{name}.safetensors" for p in parts for name in ("last", "best")]
    found = [p for p in found if p.is_file() and not (keep is not None and _same_entry(p, keep))]
    for p in found:
        p.unlink()
    return found


def _same_entry(path: Path, keep: Path) -> bool:
    """Whether ``path`` is the name ``keep`` is (through a symlink, or in another case on a file system that
    ignores it), not merely the same file: ``best`` is a hard link to ``last`` while they are the same epoch,
    and removing the other name leaves ``keep`` whole (keeping it left the earlier run's ``last``, which
    ``--resume`` of a stopped fresh run then found)."""
    try:
        real = keep.resolve()
        return (
            path.samefile(real)
            and path.parent.samefile(real.parent)
            and path.name.casefold() == real.name.casefold()
        )
    except OSError:
        return False
