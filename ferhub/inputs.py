"""Which files a command was given: photos and videos named directly or found in folders.

Folders are searched recursively for every suffix Pillow can decode here (its registered formats: AVIF
included where the wheel carries it) and every video suffix PyAV reads. Files a folder holds that are neither
are counted per suffix and reported, so nothing is left out silently: a ``.heic`` photo without the
``pillow-heif`` plugin is named with that hint.

>>> found = scan(["photos/", "clip.mp4"])           # doctest: +SKIP
>>> found.files, found.skipped_message()            # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ferhub.images import image_suffixes
from ferhub.videoio import VIDEO_SUFFIXES, plays_as_video

# suffixes of photo formats Pillow reads only with a plugin, named in the skip report with the plugin to
# install
_PLUGIN_HINTS = {".heic": "pillow-heif", ".heif": "pillow-heif", ".avif": "pillow-avif-plugin"}
# files that commonly sit next to photos and are not worth a line in the report
_QUIET = frozenset({".txt", ".md", ".json", ".csv", ".ds_store", ".ini", ".db", ""})


def is_media_path(path: str | os.PathLike) -> bool:
    suffix = Path(path).suffix.lower()
    return suffix in image_suffixes() or suffix in VIDEO_SUFFIXES


@dataclass
class Inputs:
    """Files to process, in order, each with the argument (folder or file) it came from."""

    files: list[Path] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)  # the argument each file was found under
    skipped: dict[str, int] = field(default_factory=dict)  # suffix -> count of files not taken from folders
    outputs: int = 0  # media files left out of the folders scanned because they lie in an output folder

    def skipped_message(self) -> str | None:
        """One line naming what the folder scan left out, or ``None`` when it left out nothing of note."""
        notable = {s: n for s, n in sorted(self.skipped.items()) if s not in _QUIET}
        if not notable:
            return None
        parts = []
        for suffix, n in notable.items():
            hint = f" (install {_PLUGIN_HINTS[suffix]} to read them)" if suffix in _PLUGIN_HINTS else ""
            parts.append(f"{n} {suffix}{hint}")
        return "skipped files neither Pillow nor PyAV reads here: " + ", ".join(parts)

    def videos(self) -> list[Path]:
        """The files analysed as videos: named like one, or animated GIFs and PNGs."""
        return [f for f in self.files if plays_as_video(f)]


def scan(paths: Sequence[str | os.PathLike], outputs: Sequence[str | os.PathLike] = ()) -> Inputs:
    """Expand folders (recursively, sorted) into photo and video files; files named directly are kept as
    given (a wrong one gets its own error later). Files in ``outputs`` (folders a run writes into, such as
    ``--saliency``'s ``--out``) inside a folder scanned, not that folder itself, are left out and counted:
    the overlays of one run were the next run's inputs, and their overlays the one after's."""
    found = Inputs()
    written = [Path(os.path.realpath(o)) for o in outputs]
    for p in map(Path, paths):
        if not p.is_dir():
            found.files.append(p)
            found.roots.append(p)
            continue
        # only an output folder strictly inside the folder scanned: one that is the folder itself, or holds
        # it (`--out .`), holds the inputs too
        real = Path(os.path.realpath(p))
        leave = [w for w in written if w != real and w.is_relative_to(real)]
        for f in sorted(p.rglob("*")):
            if not f.is_file():
                continue
            if is_media_path(f) and leave and _inside(f, leave):
                found.outputs += 1
            elif is_media_path(f):
                found.files.append(f)
                found.roots.append(p)
            else:
                suffix = f.suffix.lower()
                found.skipped[suffix] = found.skipped.get(suffix, 0) + 1
    return found


def _inside(path: Path, folders: Sequence[Path]) -> bool:
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(folder) for folder in folders)


def relative_name(path: Path, root: Path, *, several_roots: bool) -> Path:
    """Where ``path`` goes under an output folder: its path inside the folder argument it came from (prefixed
    with that folder's name when several arguments were given), or its file name."""
    if root.is_dir():
        rel = path.relative_to(root)
        return Path(root.resolve().name) / rel if several_roots else rel
    return Path(path.name)
