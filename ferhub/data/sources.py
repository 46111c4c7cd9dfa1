"""Labelled image sources: class folders, zips of them, the Kaggle ``fer2013.csv``; :func:`open_source`
picks the reader for a source string (Hugging Face datasets: :mod:`ferhub.data.hf`)."""

from __future__ import annotations

import csv
import os
import warnings
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from ferhub.archives import ArchiveLimits, ArchiveRefused, SafeZip
from ferhub.errors import DataSourceError, ImageDecodeError
from ferhub.images import DEFAULT_MAX_PIXELS, image_suffixes
from ferhub.labels import FER7, FER8, UnknownLabelError, canonical, canonical_order, dataset_labels
from ferhub.writers import encodable

# Split names as datasets spell them -> ferhub's three names. FER2013's Usage column: PublicTest is the
# selection set and PrivateTest the reported test set.
SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "trainset": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "publictest": "val",
    "test": "test",
    "testing": "test",
    "testset": "test",
    "privatetest": "test",
}
FER2013_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


class SplitNotFound(DataSourceError):
    """The data has no split of the name asked for (it has other splits, or none): a caller looking for an
    optional split (``ferhub train``'s validation or test split) goes on without it; any other error of the
    data is the data's own, said as it is."""


class UnlabelledSplit(DataSourceError):
    """The split asked for is there but labels none of its images (a Hub test split's hidden labels or one
    without the label column, a FER2013 CSV's rows without an emotion, a split folder of loose images or of
    none): nothing to train or score on, which a caller looking for an optional split may pass over."""


def split_name(name: str) -> str:
    """Normalise a split name (``"Training"``, ``"PublicTest"``, ``"validation"`` ...) to train/val/test."""
    key = name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    if key not in SPLIT_ALIASES:
        raise DataSourceError(
            f"unknown split {name!r}; use one of train, val, test (or {sorted(SPLIT_ALIASES)})"
        )
    return SPLIT_ALIASES[key]


def _dataset_classes(names: Iterable[str]) -> tuple[str, ...]:
    """A dataset's class names, canonical and in :func:`ferhub.labels.canonical_order`; names that are no
    expression label are refused with what to rename them to."""
    names = list(names)
    unknown = []
    out = []
    for n in names:
        try:
            out.append(canonical(n))
        except UnknownLabelError:
            unknown.append(n)
    if unknown:
        raise DataSourceError(
            f"class names {sorted(unknown)} are not expression labels ferhub knows; rename those folders/"
            f"classes to one of {', '.join(FER8)} (aliases such as 'anger', 'happiness' also work)"
        )
    if len(set(out)) != len(out):
        raise DataSourceError(f"classes {names} name the same expression twice after aliasing: {out}")
    return canonical_order(out)


def _numeric_labels(
    names: Sequence[str], label_names: str | Sequence[str] | None
) -> tuple[dict[str, str], tuple[str, ...]]:
    """Map numeric class names ("0".."6" or "1".."7", RAF-DB style) through a dataset's label table."""
    if label_names is None:
        raise DataSourceError(
            f"class folders are numbered {sorted(names, key=int)}; say what the numbers mean with"
            " --label-names DATASET on the command line (label_names=DATASET or a list of names from Python;"
            " e.g. 'rafdb', 'fer2013', see ferhub.labels.DATASET_LABELS)"
        )
    table = label_table(label_names)
    ids = sorted(int(n) for n in names)
    base = id_base(ids, table, label_names)
    if ids[-1] - base >= len(table):
        raise DataSourceError(f"class ids {ids} exceed the {len(table)} names of {label_names!r}")
    return {n: canonical(table[int(n) - base]) for n in names}, _dataset_classes(table)


def label_table(label_names: str | Sequence[str]) -> tuple[str, ...]:
    """The class names of numbered labels: a dataset's label table by name (``"rafdb"``), or the names given.
    A name with no table is a :class:`DataSourceError` that lists the tables there are."""
    if not isinstance(label_names, str):
        return tuple(label_names)
    try:
        return dataset_labels(label_names)
    except UnknownLabelError as e:
        raise DataSourceError(f"label_names={label_names!r} (--label-names): {e}") from e


def id_base(ids: Sequence[int], table: Sequence[str], label_names: str | Sequence[str]) -> int:
    """Whether a dataset's sorted class ids count from 1 or 0: RAF-DB numbers its classes 1..7; otherwise
    they start at 0 unless the largest id gives 1-based away (one past the table's last index)."""
    rafdb = isinstance(label_names, str) and label_names.lower().replace("-", "") == "rafdb"
    return 1 if ids and ids[0] >= 1 and (rafdb or ids[-1] == len(table)) else 0


def _load_pil(
    data: bytes | str | Path, what: str, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Image.Image:
    """Decode to RGB with EXIF orientation applied, through ferhub's one image loader (refused, from its
    header, over ``max_pixels``)."""
    from ferhub.images import ImageDecodeError, load_image

    try:
        return load_image(data, max_pixels=max_pixels)
    except ImageDecodeError as e:
        # the results record why an image was left out: a path's bytes that are not UTF-8 as \xNN escapes
        text = encodable(e)
        if text == str(e) and text.startswith(f"{what}: "):  # a path: load_image named it already
            raise
        raise ImageDecodeError(text if text.startswith(f"{what}: ") else f"{what}: {text}") from e


class LabeledSource:
    """A labelled image collection: ``len(src)``, ``src[i] -> (PIL RGB, label id)``, ``src.labels``.

    ``labels`` are canonical names in the source's id order; ``targets`` is an ``int64`` array of ids;
    ``precropped`` says the images are already face crops (FER2013's 48x48 faces), so detection is skipped
    by default.
    """

    labels: tuple[str, ...]
    name: str
    split: str | None
    targets: np.ndarray
    precropped: bool = False

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images")
        return self.image(i % len(self)), int(self.targets[i])

    def image(self, i: int) -> Image.Image:
        raise NotImplementedError

    def path_of(self, i: int) -> str | None:
        """Where image ``i`` came from (a file path or ``zip::member``), ``None`` for in-memory rows."""
        return None

    notes: tuple[str, ...] = ()  # what loading left out of the data, said with the results (unlabelled rows)
    # an image of more pixels is refused from its header, before it is decoded (an unreadable image, skipped
    # and counted); a public app sets its own upload limit here
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    # ``split`` only names all of the data, which has no splits of its own (a single parquet file given
    # split="test"): asking it for another split gives the same images, so a caller probing for a
    # validation or test split must not take them as one
    split_is_label: bool = False
    # the configuration of a Hugging Face dataset it was loaded in (``load_dataset(id, config)``); ``None``
    # for the default one and for other data
    config: str | None = None

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.targets, minlength=len(self.labels))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, n={len(self)}, "
            f"labels={list(self.labels)})"
        )


# ----------------------------------------------------------------------------------------- class folders
def _is_split(name: str) -> bool:
    try:
        split_name(name)
    except DataSourceError:
        return False
    return True


def local_name(path: Path, split: str | None, own_splits: Collection[str] = ()) -> tuple[str, str | None]:
    """The dataset name and split that a local source at ``path`` is recorded under; ``split``: the split the
    source has (its own or the one the user named), ``None`` for none; ``own_splits``: the splits the data
    marks itself (split folders, FER2013 Usage values), as :func:`split_name` spells them.

    The name is the folder's or file's own (a file's without its suffix; never the path as typed, which may be
    absolute or ``..``). A folder or file named like a split (``rafdb/test``, ``rafdb/test.parquet``) and
    without splits of its own is a split of its parent's dataset: it takes the parent's name, so that
    ``rafdb/test`` and ``affectnet/test`` are different results, and that split when it has none other (a
    ``fer/test.csv`` holding every Usage is not all test images).

    A name's bytes that are not UTF-8 (a Latin-1 ``donn\\xe9es`` from an old zip; any non-ASCII name under a C
    locale), which Python holds as lone surrogates, are ``\\xNN`` escapes here, as in every other output: the
    name goes into results keys, ``eval_results.json`` and the model card, which must encode to UTF-8."""
    full = Path(os.path.abspath(path))  # "." and ".." have no name of their own
    name = full.stem if full.is_file() else full.name
    # a test.zip whose one folder is test/ is still the test split of its parent; one with train/ and test/
    # inside (or a fer/test.csv holding every Usage) is a dataset of its own
    if _is_split(name) and not set(own_splits) - {split_name(name)} and full.parent.name:
        return encodable(full.parent.name), split or split_name(name)
    return encodable(name or str(path)), split


def _layout(
    entries: dict[str, list[str]], split: str | None, where: str
) -> tuple[dict[str, list[str]], set[str], set[str]]:
    """Pick the class-folder level from ``{dir path: [image files]}``.

    Returns ``{class name: [files]}`` of the chosen split, the class names of all splits (so that every split
    of one dataset gets the same label list even when a small split lacks a class), and the names of the
    split folders (none: an empty set).

    Accepted: ``root/CLASS/img`` and ``root/SPLIT/CLASS/img``; single wrapper folders (as zips often have,
    ``archive/DATASET/train/happy/...``) are looked through. ``split`` chooses the split folder; ``None``
    is allowed when there is at most one.
    """
    dirs = [PurePosixPath(d) for d in entries]
    prefix, all_classes, splits = _split_folder(entries, dirs, _dataset_root(entries, dirs), split, where)
    classes: dict[str, list[str]] = {}
    for d, files in entries.items():
        p = PurePosixPath(d)
        if p != prefix and _under(p, prefix) and files:
            classes.setdefault(p.relative_to(prefix).parts[0], []).extend(files)
    if not classes:
        if splits:  # the split folder is there but labels none of its images: a split to pass over, as a
            # Hub split of hidden labels (a Kaggle test/ of loose images, an empty val/)
            loose = len(entries.get(str(prefix)) or [])
            held = (
                f"holds {loose} images but no class folders, so they have no label"
                if loose
                else "holds no image files"
            )
            raise UnlabelledSplit(
                f"{where}: its split folder {str(prefix)!r} {held}; expected ROOT/SPLIT/CLASS/image"
            )
        raise DataSourceError(
            f"{where} holds no class folders with images ({', '.join(sorted(image_suffixes()))}); "
            "expected ROOT/CLASS/image or ROOT/SPLIT/CLASS/image"
        )
    every = set(classes) if all_classes is None else all_classes
    return {c: sorted(f) for c, f in classes.items()}, every, splits


def _children(dirs: list[PurePosixPath], of: PurePosixPath) -> list[str]:
    return sorted({d.relative_to(of).parts[0] for d in dirs if d != of and _under(d, of)})


def _dataset_root(entries: dict[str, list[str]], dirs: list[PurePosixPath]) -> PurePosixPath:
    """The folder below any single wrapper folders (``archive/DATASET/...``): split or class folders start
    here."""
    prefix = PurePosixPath(".")
    while True:
        kids = _children(dirs, prefix)
        if len(kids) != 1 or entries.get(str(prefix)) or _is_split(kids[0]):
            return prefix
        child = prefix / kids[0]
        if not _children(dirs, child):  # a single class folder, not a wrapper
            return prefix
        prefix = child


def _split_folder(
    entries: dict[str, list[str]],
    dirs: list[PurePosixPath],
    prefix: PurePosixPath,
    split: str | None,
    where: str,
) -> tuple[PurePosixPath, set[str] | None, set[str]]:
    """The folder of ``split`` under ``prefix``, the classes of all splits and the splits' names (train, val,
    test); ``(prefix, None, set())`` without splits."""
    kids = _children(dirs, prefix)
    split_dirs = {split_name(k): k for k in kids if _is_split(k)}
    if split_dirs and len(split_dirs) != len(kids):
        raise DataSourceError(
            f"{where} mixes split folders {sorted(split_dirs.values())} with other folders {kids}; "
            "keep one level (ROOT/SPLIT/CLASS/image or ROOT/CLASS/image)"
        )
    if not split_dirs:
        if split is not None:
            raise SplitNotFound(
                f"{where} has no split folders (train/val/test); omit split (the --split, --val-split or "
                "--test-split that names it)"
            )
        return prefix, None, set()
    if split is None:
        if len(split_dirs) > 1:
            raise DataSourceError(
                f"{where} has split folders {sorted(split_dirs.values())}; choose one with split=... (--split"
                " NAME; for train's --val-data, --val-split NAME)"
            )
        split = next(iter(split_dirs))
    want = split_name(split)
    if want not in split_dirs:
        raise SplitNotFound(f"{where} has no {split!r} split; it has {sorted(split_dirs.values())}")
    all_classes = {
        c
        for sd in split_dirs.values()
        for c in _children(dirs, prefix / sd)
        if _has_images(entries, prefix / sd / c)
    }
    return prefix / split_dirs[want], all_classes, set(split_dirs)


def _has_images(entries: dict[str, list[str]], folder: PurePosixPath) -> bool:
    return any(files and _under(PurePosixPath(d), folder) for d, files in entries.items())


def _under(p: PurePosixPath, prefix: PurePosixPath) -> bool:
    return (str(prefix) == "." and not p.is_absolute()) or p == prefix or prefix in p.parents


def _labelled_files(
    classes: dict[str, list[str]], all_classes: set[str], label_names: str | Sequence[str] | None
) -> tuple[tuple[str, ...], list[str], np.ndarray]:
    names = sorted(all_classes)
    if all(n.isdigit() for n in names):
        mapping, labels = _numeric_labels(names, label_names)
    else:
        labels = _dataset_classes(names)
        mapping = {n: canonical(n) for n in names}
    files, targets = [], []
    for cls in sorted(classes):
        files += classes[cls]
        targets += [labels.index(mapping[cls])] * len(classes[cls])
    return labels, files, np.asarray(targets, dtype=np.int64)


class FolderSource(LabeledSource):
    """One folder per class (``happy/``, ``Angry/``, ``anger/`` ...), optionally under split folders."""

    def __init__(
        self,
        root: str | Path,
        split: str | None = None,
        *,
        label_names: str | Sequence[str] | None = None,
        precropped: bool = False,
    ) -> None:
        from ferhub.inputs import walk

        root = Path(root)
        entries: dict[str, list[str]] = {}
        suffixes = image_suffixes()
        tree = walk(root)  # hidden names passed over; a linked class folder read like a real one
        for folder, names in tree.folders.items():
            rel = folder.relative_to(root).as_posix()
            entries[rel] = [
                f"{rel}/{f}" if rel != "." else f for f in names if Path(f).suffix.lower() in suffixes
            ]
        classes, all_classes, own_splits = _layout(entries, split, str(root))
        self.notes = tuple(tree.notes(inside=True))  # recorded with the results: no path of this machine
        self.root = root
        self.labels, rel_files, self.targets = _labelled_files(classes, all_classes, label_names)
        self.files = [root / f for f in rel_files]
        self.name, self.split = local_name(root, split_name(split) if split else None, own_splits)
        self.precropped = precropped

    def image(self, i: int) -> Image.Image:
        return _load_pil(self.files[i], encodable(self.files[i]), self.max_pixels)

    def path_of(self, i: int) -> str | None:
        return encodable(self.files[i])  # recorded in the results, which must encode to UTF-8


class ZipSource(LabeledSource):
    """A ``.zip`` of class folders, read member by member under :class:`~ferhub.archives.ArchiveLimits`
    (nothing is extracted to disk, no member is inflated past its cap)."""

    def __init__(
        self,
        path: str | Path,
        split: str | None = None,
        *,
        label_names: str | Sequence[str] | None = None,
        precropped: bool = False,
        limits: ArchiveLimits | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            self._zip = SafeZip(self.path, limits)
        except ArchiveRefused as e:
            raise DataSourceError(str(e)) from e
        entries: dict[str, list[str]] = {}
        suffixes = image_suffixes()
        outside = []  # names no class folder of the zip holds: absolute ("/x/a.jpg") or climbing out ("../")
        # a zip may hold two members of one name (zip -r twice, an appended archive): each entry is an image,
        # read by its place in the archive; the second and later are keyed apart here and named "(copy N)"
        keys: dict[str, tuple[int, str, int]] = {}  # key -> (entry index, member name, copy number)
        copies: Counter[str] = Counter()
        for n, m in enumerate(self._zip.names()):
            p = PurePosixPath(m)
            if p.suffix.lower() not in suffixes:
                continue
            if p.is_absolute() or ".." in p.parts:
                outside.append(m)
                continue
            if any(part.startswith(".") or part == "__MACOSX" for part in p.parts):
                continue
            copies[m] += 1
            key = m if copies[m] == 1 else f"{m}\0{copies[m]}"
            keys[key] = (n, m, copies[m])
            entries.setdefault(str(p.parent), []).append(key)
        classes, all_classes, own_splits = _layout(entries, split, str(self.path))
        self.labels, chosen, self.targets = _labelled_files(classes, all_classes, label_names)
        self._entries = [keys[k] for k in chosen]
        self.members = [m for _, m, _ in self._entries]  # member names (a name held twice appears twice)
        self.name, self.split = local_name(self.path, split_name(split) if split else None, own_splits)
        self.precropped = precropped
        notes = []
        if outside:
            shown = ", ".join(repr(m if len(m) <= 100 else m[:97] + "...") for m in outside[:3])
            more = f" and {len(outside) - 3} more" if len(outside) > 3 else ""
            notes.append(
                f"left out {len(outside)} zip member(s) named by an absolute path or with '..' in their "
                f"names, which no class folder holds: {shown}{more}"
            )
        twice = sorted({m for _, m, copy in self._entries if copy > 1})
        if twice:
            shown = ", ".join(repr(m if len(m) <= 100 else m[:97] + "...") for m in twice[:3])
            more = f" and {len(twice) - 3} more" if len(twice) > 3 else ""
            notes.append(
                f"the zip holds {len(twice)} member name(s) more than once ({shown}{more}); each entry was "
                "read as an image of its own (the later ones named '(copy N)'); unzipping keeps only one"
            )
        self.notes = tuple(notes)

    def image(self, i: int) -> Image.Image:
        return _load_pil(self._zip.read_entry(self._entries[i][0]), self.path_of(i) or "", self.max_pixels)

    def path_of(self, i: int) -> str | None:
        _, member, copy = self._entries[i]
        return encodable(f"{self.path}::{member}" + (f" (copy {copy})" if copy > 1 else ""))


# --------------------------------------------------------------------------------------------- FER2013 CSV
def _decode_pixels(
    pixels: Sequence[str | None], where: str, *, side: int = 48
) -> tuple[np.ndarray, dict[int, str]]:
    """FER2013's space-separated pixel strings -> (N, S, S) uint8 (S = 48 for FER2013), and the rows that
    cannot be read (index -> why; left black in the array): one bad row is skipped and counted, as an
    unreadable image file is, never the whole file.

    The image size is the one most rows hold (a square number of values); a row of another count, of
    anything but integers, of values outside 0..255, or empty is a bad row. ``side``: the size when no row
    can be read. ``np.fromstring`` in text mode parses a row in C (~0.1 ms; all 35,887 FER2013 rows in a few
    seconds).
    """
    rows: list[np.ndarray | None] = []
    errors: dict[int, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy 1.x only warns about unparsed text
        for i, p in enumerate(pixels):
            text = p if isinstance(p, str) else ""
            row = None
            if not text.strip():
                errors[i] = "no pixel values (the pixels value is empty)"
            else:
                try:
                    row = np.fromstring(text, dtype=np.int16, sep=" ")
                except (ValueError, DeprecationWarning):
                    errors[i] = f"the pixels value is not space-separated integers ({_shown(text)})"
            rows.append(row)
    sizes = Counter(r.size for r in rows if r is not None)
    if sizes:
        n = sizes.most_common(1)[0][0]
        side = round(n**0.5)
        if side * side != n:
            raise DataSourceError(
                f"{where}: pixel strings hold {n} values, not a square image (FER2013's hold 2304, 48x48)"
            )
    out = np.zeros((len(rows), side, side), np.uint8)
    for i, r in enumerate(rows):
        if r is None:
            continue
        if r.size != side * side:
            errors[i] = f"{r.size} pixel values, where the other rows hold {side * side} ({side}x{side})"
        elif r.min() < 0 or r.max() > 255:
            errors[i] = f"pixel values outside 0..255 ({int(r.min())}..{int(r.max())})"
        else:
            out[i] = r.reshape(side, side)
    return out, dict(sorted(errors.items()))


def _shown(text: str, limit: int = 40) -> str:
    """The start of a value for a message (pixel strings run to thousands of characters)."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


class ArraySource(LabeledSource):
    """Gray or RGB ``uint8`` images held in memory (FER2013 CSV rows, pixel-string Hub datasets).

    ``errors``: rows whose pixels could not be read (index -> why), skipped and counted as unreadable images;
    ``paths``: where each row came from (``fer2013.csv:12``, the file and its line), for messages and the
    per-image predictions."""

    def __init__(
        self,
        images: np.ndarray,
        targets: np.ndarray,
        labels: Sequence[str],
        name: str,
        split: str | None,
        *,
        errors: Mapping[int, str] | None = None,
        paths: Sequence[str] | None = None,
    ) -> None:
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.labels = tuple(labels)
        self.name = name
        self.split = split
        self.precropped = True
        self.errors = dict(errors or {})
        self.paths = list(paths) if paths is not None else None

    def image(self, i: int) -> Image.Image:
        why = self.errors.get(int(i))
        if why is not None:
            raise ImageDecodeError(f"{self.path_of(i) or f'{self.name} row {i}'}: {why}")
        return Image.fromarray(self.images[i]).convert("RGB")

    def path_of(self, i: int) -> str | None:
        return self.paths[i] if self.paths is not None else None


def _emotion_id(text: str, where: str) -> int:
    """A FER2013 emotion id from its CSV text: ``3``, or ``3.0`` as pandas writes an integer column that has
    a missing value; anything else is refused, naming the row."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value.is_integer() or not 0 <= value < len(FER7):
        raise DataSourceError(
            f"{where}: emotion {_shown(text)} is not a FER2013 class id 0..6 ({', '.join(FER7)}); "
            "a CSV of other classes is not FER2013's: save it as class folders"
        )
    return int(value)


def open_fer2013_csv(path: str | Path, split: str | None = None) -> ArraySource:
    """The Kaggle ``fer2013.csv``: ``emotion`` (0-6, FER2013 order), ``pixels``, ``Usage``.

    ``split`` train/val/test selects Usage Training/PublicTest/PrivateTest; ``None`` takes every row. A row
    is named by its file and line (``fer2013.csv:12``): one without an emotion is left out and said (the
    results' notes), one whose pixels cannot be read is skipped and counted as an unreadable image. The file
    may start with a byte-order mark (Excel's "CSV UTF-8").
    """
    path = Path(path)
    pixels: list[str | None] = []
    targets: list[int] = []
    lines: list[int] = []
    blank: list[int] = []  # lines of the split without an emotion
    usages: set[str] = set()
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            cols = {c.strip().lower(): c for c in reader.fieldnames or [] if c is not None}
            if "pixels" not in cols or "emotion" not in cols:
                raise DataSourceError(
                    f"{path}: a FER2013 CSV needs 'emotion' and 'pixels' columns, found {reader.fieldnames}"
                )
            usage_col = cols.get("usage")
            want = None
            if split is not None:
                if usage_col is None:
                    raise SplitNotFound(
                        f"{path} has no Usage column, so it has no splits; omit split (the --split,"
                        " --val-split or --test-split that names it)"
                    )
                want = FER2013_USAGE[split_name(split)]
            for row in reader:
                usage = (row.get(usage_col) or "").strip() if usage_col is not None else ""
                if usage:
                    usages.add(usage)
                if want is not None and usage != want:
                    continue
                emotion = (row.get(cols["emotion"]) or "").strip()
                if not emotion:
                    blank.append(reader.line_num)
                    continue
                targets.append(_emotion_id(emotion, f"{path}:{reader.line_num}"))
                pixels.append(row.get(cols["pixels"]))
                lines.append(reader.line_num)
    except UnicodeDecodeError as e:
        raise DataSourceError(f"{path}: not UTF-8 text ({e}); a FER2013 CSV is plain text") from e
    except csv.Error as e:
        raise DataSourceError(f"{path}: not a readable CSV file ({e})") from e
    if not pixels:
        why = f"; {len(blank)} have no emotion" if blank else ""
        # no row of that Usage: a split the file does not have; rows, but none with an emotion: unlabelled
        missing = want is not None and want not in usages
        error = SplitNotFound if missing else UnlabelledSplit if blank else DataSourceError
        raise error(f"{path}: no rows for split {split!r} (Usage {want!r}){why}")
    images, errors = _decode_pixels(pixels, str(path))
    source = ArraySource(
        images,
        np.asarray(targets, dtype=np.int64),
        FER7,
        *local_name(
            path, split_name(split) if split else None, {split_name(u) for u in usages if _is_split(u)}
        ),
        errors=errors,
        paths=[encodable(f"{path}:{line}") for line in lines],
    )
    if blank:
        shown = ", ".join(str(n) for n in blank[:5]) + (
            f" and {len(blank) - 5} more" if len(blank) > 5 else ""
        )
        source.notes = (
            f"unlabelled: {len(blank)} of {len(blank) + len(pixels)} rows have no emotion and were left out "
            f"({path.name} line{'s' if len(blank) > 1 else ''} {shown})",
        )
    return source


# ------------------------------------------------------------------------------------------- dispatcher
def open_source(
    source: str | Path,
    split: str | None = None,
    *,
    label_names: str | Sequence[str] | None = None,
    precropped: bool | None = None,
    **kw: Any,
) -> LabeledSource:
    """Open labelled data from a folder of class folders, a ``.zip`` of them, a FER2013 ``.csv``, a saved
    ``datasets`` folder / ``.parquet`` file, or a Hugging Face dataset id.

    ``split`` is train/val/test (or the source's own spelling); ``label_names`` names numbered classes
    (``"rafdb"``, ``"fer2013"`` or a list); ``precropped=True`` marks images that are already face crops.
    A Hugging Face dataset also takes ``image_column=``, ``label_column=`` and ``dataset_config=`` (the
    configuration to load, for a dataset that has several).
    """
    path = Path(str(source))
    looks_local = path.suffix.lower() in (".zip", ".csv", ".parquet") or str(source).startswith(
        ("/", ".", "~")
    )
    if looks_local and not path.exists():
        raise DataSourceError(f"{source} not found (a local path; a Hub dataset id looks like 'org/name')")
    if not takes_columns(source):
        _no_columns(source, kw)
    if path.is_file() and path.suffix.lower() == ".csv":
        src: LabeledSource = open_fer2013_csv(path, split)
        if precropped is False:
            src.precropped = False
        return src
    if path.is_file() and path.suffix.lower() == ".zip":
        return ZipSource(path, split, label_names=label_names, precropped=bool(precropped))
    if path.is_dir() and not saved_dataset(path):
        if any(p.suffix == ".parquet" for p in path.rglob("*.parquet")):
            from ferhub.data.hf import open_hf

            return open_hf(path, split, label_names=label_names, precropped=bool(precropped), **kw)
        return FolderSource(path, split, label_names=label_names, precropped=bool(precropped))
    if path.is_file() and path.suffix.lower() != ".parquet":
        # a photo or a video given as --data: said as such, never as a Hub dataset id (exit 3 offline)
        raise DataSourceError(
            f"{source} is a file, not labelled data: give a folder of class folders, a .zip of them, a"
            " fer2013.csv, a saved dataset or a .parquet file (to classify photos, use `ferhub predict`)"
        )
    if path.exists() or "/" in str(source) or not path.suffix:
        from ferhub.data.hf import open_hf

        return open_hf(
            path if path.exists() else str(source),
            split,
            label_names=label_names,
            precropped=bool(precropped),
            **kw,
        )
    raise DataSourceError(f"{source!r} is not a folder, .zip, .csv, saved dataset or Hugging Face dataset id")


def saved_dataset(path: Path) -> bool:
    """Whether ``path`` is a ``save_to_disk`` folder (its ``dataset_dict.json`` or ``state.json``)."""
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


# open_source keyword -> the option of an argparse namespace or RunOptions that gives it; each applies to a
# Hugging Face dataset only
_HF_OPTIONS = {
    "image_column": "image_column",
    "label_column": "label_column",
    "dataset_config": "data_config",
}
_HF_FLAGS = {
    "image_column": "--image-column",
    "label_column": "--label-column",
    "dataset_config": "--data-config",
}


def column_options(options: Any) -> dict[str, str]:
    """The Hugging Face dataset options an argparse namespace or ``RunOptions`` gives (``image_column``,
    ``label_column``, the configuration ``data_config``), as :func:`open_source` keywords."""
    return {k: v for k, attr in _HF_OPTIONS.items() if (v := getattr(options, attr, None)) is not None}


def takes_columns(source: str | os.PathLike) -> bool:
    """Whether :func:`open_source` reads ``source`` as a Hugging Face dataset (a Hub id, a saved dataset,
    parquet), whose columns ``image_column=`` / ``label_column=`` (and configuration ``dataset_config=``)
    pick; not class folders, zips or CSV."""
    path = Path(str(source))
    if path.is_file():
        return path.suffix.lower() not in (".csv", ".zip")
    if path.is_dir():
        return saved_dataset(path) or any(True for _ in path.rglob("*.parquet"))
    return True


def _no_columns(source: str | Path, kw: dict[str, Any]) -> None:
    """Column options pick a Hugging Face dataset's columns (and its configuration): given for other data,
    they would be ignored."""
    given = [k for k, v in kw.items() if v is not None]
    if given:
        options = ", ".join(f"{k}= ({_HF_FLAGS.get(k, '--' + k.replace('_', '-'))})" for k in given)
        what = "the configuration" if given == ["dataset_config"] else "the columns"
        verb, it = ("picks", "it") if len(given) == 1 else ("pick", "them")
        raise DataSourceError(
            f"{options} {verb} {what} of a Hugging Face dataset (a Hub id, a saved dataset or parquet); "
            f"{source} is not one: leave {it} out"
        )


def write_class_folders(
    images: np.ndarray, targets: np.ndarray, labels: Sequence[str], root: str | Path, *, ext: str = ".png"
) -> Path:
    """Write ``uint8`` images as ``root/<label>/<i>.png`` (the layout :class:`FolderSource` reads)."""
    root = Path(root)
    for i, (im, t) in enumerate(zip(images, targets)):
        folder = root / labels[int(t)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(im).save(folder / f"{i:05d}{ext}")
    return root
