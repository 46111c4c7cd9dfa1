"""Which files a command was given: photos and videos named directly or found in folders.

Folders are searched recursively for every suffix Pillow can decode here (its registered formats: AVIF
included where the wheel carries it) and every video suffix PyAV reads. Files a folder holds that are neither
are counted per suffix and reported, so nothing is left out silently: a ``.heic`` photo without the
``pillow-heif`` plugin is named with that hint. A folder search (:func:`walk`, which evaluation's class
folders go through too) passes over hidden files and folders (``.Trash``, ``.thumbnails``, macOS's ``._``
files), follows links to folders as it follows links to files (each real folder once: a link back up the
tree ends there), and says which folders it could not read (a path past the system's limit) instead of
stopping.

>>> found = scan(["photos/", "clip.mp4"])           # doctest: +SKIP
>>> found.files, found.skipped_message()            # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ferhub.fileio import EXACT, Folding
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
class Tree:
    """What :func:`walk` found under the folder ``top``."""

    top: Path
    folders: dict[Path, list[str]] = field(default_factory=dict)  # folder -> its files' names, sorted
    unreadable: list[tuple[Path, str]] = field(default_factory=list)  # (path, why) of what could not be read
    repeated: list[Path] = field(default_factory=list)  # links to a folder read already (or one above them)

    def notes(self, *, inside: bool = False) -> list[str]:
        """What the walk left out, one short sentence each naming the first (none when it read everything);
        ``inside``: paths named inside ``top`` (for results that may be shared, which should not carry where
        the data lay on this machine)."""

        def shown(path: Path) -> str:
            text = str(path.relative_to(self.top) if inside else path)
            return text if len(text) <= 120 else f"{text[:50]}...{text[-60:]}"  # past PATH_MAX: 4 KB

        notes = []
        if self.unreadable:
            (first, why), more = self.unreadable[0], len(self.unreadable) - 1
            notes.append(
                f"unreadable: left out {len(self.unreadable)} folder(s) or link(s) that could not be read: "
                f"{shown(first)} ({why})" + (f" and {more} more" if more else "")
            )
        if self.repeated:
            more = len(self.repeated) - 1
            notes.append(
                f"left out {len(self.repeated)} link(s) to a folder read already (above it, in the tree, or"
                " reached by another link): "
                + shown(self.repeated[0])
                + (f" and {more} more" if more else "")
            )
        return notes


def walk(top: str | os.PathLike) -> Tree:
    """The folders under ``top`` (``top`` itself first) and the files each holds. Names starting with "."
    are passed over. Links to folders are followed after the folders themselves, each real folder read once:
    a link to a folder read already (a folder above it, or one the tree holds or links to elsewhere) is noted
    in ``repeated``. Links that lead nowhere, FIFOs and devices are not files. A folder or link that cannot be
    read (no permission, a path past the system's limit, a link loop) is noted in ``unreadable`` and the rest
    read on."""
    tree = Tree(Path(top))
    seen: set[tuple[int, int]] = set()
    stack, links = [tree.top], []
    while stack or links:
        folder = stack.pop() if stack else links.pop(0)
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                tree.repeated.append(folder)
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError as e:
            tree.unreadable.append((folder, e.strerror or str(e)))
            continue
        files = []
        for entry in entries:
            try:
                if entry.is_dir():  # follows a link
                    (links if entry.is_symlink() else stack).append(folder / entry.name)
                elif entry.is_file():
                    files.append(entry.name)
            except OSError as e:  # a link that loops, or whose target's path is too long
                tree.unreadable.append((folder / entry.name, e.strerror or str(e)))
        tree.folders[folder] = files
    return tree


@dataclass
class Inputs:
    """Files to process, in order, each with the argument (folder or file) it came from."""

    files: list[Path] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)  # the argument each file was found under
    skipped: dict[str, int] = field(default_factory=dict)  # suffix -> count of files not taken from folders
    outputs: int = 0  # media files left out of the folders scanned because they lie in an output folder
    notes: list[str] = field(default_factory=list)  # what the folder walks could not read or read twice

    def skipped_message(self) -> str | None:
        """One line naming what the folder scan left out, or ``None`` when it left out nothing of note."""
        notable = {s: n for s, n in sorted(self.skipped.items()) if s not in _QUIET}
        parts = []
        for suffix, n in notable.items():
            hint = f" (install {_PLUGIN_HINTS[suffix]} to read them)" if suffix in _PLUGIN_HINTS else ""
            parts.append(f"{n} {suffix}{hint}")
        said = ["skipped files neither Pillow nor PyAV reads here: " + ", ".join(parts)] if parts else []
        return "; ".join(said + self.notes) or None

    def videos(self) -> list[Path]:
        """The files analysed as videos: named like one, or animated GIFs and PNGs."""
        return [f for f in self.files if plays_as_video(f)]

    def result_names(
        self, folding: Folding = EXACT, out_dir: Path | None = None, suffix: str = ""
    ) -> list[Path]:
        """Where each file's result goes under an output folder (``--out-dir``): its path below the deepest
        folder holding every argument (a folder argument counts as itself, a file as its folder), so
        ``a/photos b/photos`` give ``a/photos/x.jpg`` and ``b/photos/x.jpg``, and one folder given gives the
        paths inside it. Names depend only on the arguments' places, never on their order, so a rerun finds
        the results of the last one.

        Where the output folder's file system takes several names for one (``folding``, from
        :func:`ferhub.fileio.name_folding`: ``Case.jpg`` and ``case.jpg`` on a case-insensitive disk), one of
        them keeps its name and the others get a tag from their exact name (``case~24526ea9.jpg``): the one
        whose result (``out_dir / (NAME + suffix)``) is there spelt exactly so, else the first in code point
        order. A photo added beside another so never renames the other's result; on a file system that
        tells all names apart, every name is the input's own path."""
        folders = {root: root.is_dir() for root in self.roots}
        bases = {r: r.resolve() if d else r.absolute().parent.resolve() for r, d in folders.items()}
        full = [
            bases[root] / (f.relative_to(root) if folders[root] else f.name)
            for f, root in zip(self.files, self.roots)
        ]
        try:
            common = Path(os.path.commonpath(list(bases.values()))) if bases else Path()
            names = [p.relative_to(common) for p in full]
        except ValueError:  # arguments on two Windows drives: the drive letter is the first folder
            names = [Path(p.drive.rstrip(":") or "root", p.relative_to(p.anchor)) for p in full]
        if folding == EXACT:
            return names
        alike: defaultdict[str, set[Path]] = defaultdict(set)
        for name in names:
            alike[folding.key(name.as_posix())].add(name)
        tag: set[Path] = set()
        for group in alike.values():
            if len(group) > 1:
                done = [n for n in group if out_dir is not None and _spelt(out_dir, Path(f"{n}{suffix}"))]
                tag |= group - {min(done or group, key=Path.as_posix)}
        return [_tagged(name) if name in tag else name for name in names]


def _spelt(folder: Path, name: Path) -> bool:
    """Whether ``folder / name`` is there spelt exactly so, each part as its folder lists it (a file system
    that folds names finds it by any other spelling too)."""
    for part in name.parts:
        try:
            if part not in os.listdir(folder):
                return False
        except OSError:
            return False
        folder = folder / part
    return True


def _tagged(name: Path) -> Path:
    tag = hashlib.sha1(os.fsencode(name.as_posix())).hexdigest()[:8]
    return name.with_name(f"{name.stem}~{tag}{name.suffix}")


def scan(paths: Sequence[str | os.PathLike], outputs: Sequence[str | os.PathLike] = ()) -> Inputs:
    """Expand folders (:func:`walk`, sorted) into photo and video files; files named directly are kept as
    given (a wrong one gets its own error later, and a hidden one is read). Files in ``outputs`` (folders a
    run writes into, such as ``--saliency``'s ``--out``) inside a folder scanned, not that folder itself, are
    left out and counted: the overlays of one run were the next run's inputs, and their overlays the one
    after's."""
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
        tree = walk(p)
        found.notes += tree.notes()
        for f in sorted(folder / name for folder, names in tree.folders.items() for name in names):
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
