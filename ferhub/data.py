"""Labelled FER data: image folders, zips of folders, the Kaggle ``fer2013.csv`` and Hugging Face datasets.

Every source opens as a :class:`LabeledSource` (``len``, ``[i] -> (PIL RGB image, int label)``, ``.labels``
in canonical names, ``.targets``); :func:`open_source` picks the reader from the source string.
:class:`FaceCache` runs face detection once per image (keyed by pixel content) and keeps it on disk, and
:func:`materialize` turns a source into one in-memory ``uint8`` array of face crops for a model config, so
training epochs never decode, detect or crop again.

>>> src = open_source("fer2013.csv", split="train")         # doctest: +SKIP
>>> src.labels, len(src), src[0][1]                          # doctest: +SKIP
(('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'), 28709, 0)
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from ferhub.archives import ArchiveLimits, ArchiveRefused, SafeZip
from ferhub.errors import DataSourceError
from ferhub.images import image_suffixes
from ferhub.labels import FER7, FER8, UnknownLabelError, canonical, canonical_order, dataset_labels

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


def split_name(name: str) -> str:
    """Normalise a split name (``"Training"``, ``"PublicTest"``, ``"validation"`` ...) to train/val/test."""
    key = name.strip().lower().replace("_", "").replace("-", "").replace(" ", "")
    if key not in SPLIT_ALIASES:
        raise DataSourceError(
            f"unknown split {name!r}; use one of train, val, test (or {sorted(SPLIT_ALIASES)})"
        )
    return SPLIT_ALIASES[key]


def _canonical_order(names: Iterable[str]) -> tuple[str, ...]:
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
            f"class folders are numbered {sorted(names, key=int)}; say what the numbers mean with "
            "label_names=DATASET (e.g. 'rafdb', 'fer2013', see ferhub.labels.DATASET_LABELS) or a list of names"
        )
    table = dataset_labels(label_names) if isinstance(label_names, str) else tuple(label_names)
    ids = sorted(int(n) for n in names)
    # RAF-DB numbers its classes 1..7; otherwise ids start at 0 unless the largest id gives 1-based away
    rafdb = isinstance(label_names, str) and label_names.lower().replace("-", "") == "rafdb"
    base = 1 if ids[0] >= 1 and (rafdb or ids[-1] == len(table)) else 0
    if ids[-1] - base >= len(table):
        raise DataSourceError(f"class ids {ids} exceed the {len(table)} names of {label_names!r}")
    return {n: canonical(table[int(n) - base]) for n in names}, _canonical_order(table)


def _load_pil(data: bytes | str | Path, what: str) -> Image.Image:
    """Decode to RGB with EXIF orientation applied, through ferhub's one image loader."""
    from ferhub.images import ImageDecodeError, load_image

    try:
        return load_image(data)
    except ImageDecodeError as e:
        raise ImageDecodeError(f"{what}: {e}") from e


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


def _layout(
    entries: dict[str, list[str]], split: str | None, where: str
) -> tuple[dict[str, list[str]], set[str]]:
    """Pick the class-folder level from ``{dir path: [image files]}``.

    Returns ``{class name: [files]}`` of the chosen split and the class names of all splits, so that every
    split of one dataset gets the same label list even when a small split lacks a class.

    Accepted: ``root/CLASS/img`` and ``root/SPLIT/CLASS/img``; single wrapper folders (as zips often have,
    ``archive/DATASET/train/happy/...``) are looked through. ``split`` chooses the split folder; ``None``
    is allowed when there is at most one.
    """
    dirs = [PurePosixPath(d) for d in entries]
    prefix = PurePosixPath(".")

    def children(of: PurePosixPath) -> list[str]:
        return sorted({d.relative_to(of).parts[0] for d in dirs if d != of and _under(d, of)})

    while True:
        kids = children(prefix)
        if len(kids) != 1 or entries.get(str(prefix)) or _is_split(kids[0]):
            break
        child = prefix / kids[0]
        if not children(child):  # a single class folder, not a wrapper
            break
        prefix = child
    kids = children(prefix)
    split_dirs = {split_name(k): k for k in kids if _is_split(k)}
    if split_dirs and len(split_dirs) == len(kids):
        if split is None:
            if len(split_dirs) > 1:
                raise DataSourceError(
                    f"{where} has split folders {sorted(split_dirs.values())}; choose one with split=..."
                    " (--split NAME)"
                )
            split = next(iter(split_dirs))
        want = split_name(split)
        if want not in split_dirs:
            raise DataSourceError(f"{where} has no {split!r} split; it has {sorted(split_dirs.values())}")
        all_classes = {
            c
            for sd in split_dirs.values()
            for c in children(prefix / sd)
            if _has_images(entries, prefix / sd / c)
        }
        prefix = prefix / split_dirs[want]
    elif split_dirs:
        raise DataSourceError(
            f"{where} mixes split folders {sorted(split_dirs.values())} with other folders {kids}; "
            "keep one level (ROOT/SPLIT/CLASS/image or ROOT/CLASS/image)"
        )
    elif split is not None:
        raise DataSourceError(f"{where} has no split folders (train/val/test); omit split")
    classes: dict[str, list[str]] = {}
    for d, files in entries.items():
        p = PurePosixPath(d)
        if p != prefix and _under(p, prefix) and files:
            classes.setdefault(p.relative_to(prefix).parts[0], []).extend(files)
    if not classes:
        raise DataSourceError(
            f"{where} holds no class folders with images ({', '.join(sorted(image_suffixes()))}); "
            "expected ROOT/CLASS/image or ROOT/SPLIT/CLASS/image"
        )
    if not split_dirs:
        all_classes = set(classes)
    return {c: sorted(f) for c, f in classes.items()}, all_classes


def _has_images(entries: dict[str, list[str]], folder: PurePosixPath) -> bool:
    return any(files and _under(PurePosixPath(d), folder) for d, files in entries.items())


def _under(p: PurePosixPath, prefix: PurePosixPath) -> bool:
    return str(prefix) == "." or p == prefix or prefix in p.parents


def _labelled_files(
    classes: dict[str, list[str]], all_classes: set[str], label_names: str | Sequence[str] | None
) -> tuple[tuple[str, ...], list[str], np.ndarray]:
    names = sorted(all_classes)
    if all(n.isdigit() for n in names):
        mapping, labels = _numeric_labels(names, label_names)
    else:
        labels = _canonical_order(names)
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
        root = Path(root)
        entries: dict[str, list[str]] = {}
        suffixes = image_suffixes()
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(root).as_posix()
            imgs = [
                f"{rel}/{f}" if rel != "." else f
                for f in filenames
                if Path(f).suffix.lower() in suffixes and not f.startswith(".")
            ]
            entries[rel] = imgs
        classes, all_classes = _layout(entries, split, str(root))
        self.root = root
        self.labels, rel_files, self.targets = _labelled_files(classes, all_classes, label_names)
        self.files = [root / f for f in rel_files]
        self.name = root.name
        self.split = split_name(split) if split else None
        self.precropped = precropped

    def image(self, i: int) -> Image.Image:
        return _load_pil(self.files[i], str(self.files[i]))

    def path_of(self, i: int) -> str | None:
        return str(self.files[i])


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
        for m in self._zip.names():
            p = PurePosixPath(m)
            if p.suffix.lower() not in suffixes or any(
                part.startswith(".") or part == "__MACOSX" for part in p.parts
            ):
                continue
            entries.setdefault(str(p.parent), []).append(m)
        classes, all_classes = _layout(entries, split, str(self.path))
        self.labels, self.members, self.targets = _labelled_files(classes, all_classes, label_names)
        self.name = self.path.stem
        self.split = split_name(split) if split else None
        self.precropped = precropped

    def image(self, i: int) -> Image.Image:
        return _load_pil(self._zip.read(self.members[i]), f"{self.path}::{self.members[i]}")

    def path_of(self, i: int) -> str | None:
        return f"{self.path}::{self.members[i]}"


# --------------------------------------------------------------------------------------------- FER2013 CSV
def _decode_pixels(pixels: Sequence[str], where: str) -> np.ndarray:
    """FER2013's space-separated pixel strings -> (N, S, S) uint8 (S = 48 for FER2013).

    ``np.fromstring`` in text mode parses a row in C (~0.1 ms; all 35,887 FER2013 rows in a few seconds).
    """
    if not pixels:
        return np.zeros((0, 48, 48), np.uint8)
    try:
        rows = [np.fromstring(p, dtype=np.int16, sep=" ") for p in pixels]
    except ValueError as e:
        raise DataSourceError(f"{where}: a pixels value is not space-separated integers ({e})") from e
    n = rows[0].size
    side = round(n**0.5)
    if side * side != n or any(r.size != n for r in rows):
        raise DataSourceError(f"{where}: pixel strings must all hold the same square number of values")
    flat = np.stack(rows)
    if flat.min() < 0 or flat.max() > 255:
        raise DataSourceError(f"{where}: pixel values must be 0..255")
    return flat.astype(np.uint8).reshape(len(pixels), side, side)


class ArraySource(LabeledSource):
    """Gray or RGB ``uint8`` images held in memory (FER2013 CSV rows, pixel-string Hub datasets)."""

    def __init__(
        self, images: np.ndarray, targets: np.ndarray, labels: Sequence[str], name: str, split: str | None
    ) -> None:
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.labels = tuple(labels)
        self.name = name
        self.split = split
        self.precropped = True

    def image(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[i]).convert("RGB")


def open_fer2013_csv(path: str | Path, split: str | None = None) -> ArraySource:
    """The Kaggle ``fer2013.csv``: ``emotion`` (0-6, FER2013 order), ``pixels``, ``Usage``.

    ``split`` train/val/test selects Usage Training/PublicTest/PrivateTest; ``None`` takes every row.
    """
    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        cols = {c.strip().lower(): c for c in reader.fieldnames or []}
        if "pixels" not in cols or "emotion" not in cols:
            raise DataSourceError(
                f"{path}: a FER2013 CSV needs 'emotion' and 'pixels' columns, found {reader.fieldnames}"
            )
        usage_col = cols.get("usage")
        want = None
        if split is not None:
            if usage_col is None:
                raise DataSourceError(f"{path} has no Usage column, so it has no splits; omit split")
            want = FER2013_USAGE[split_name(split)]
        pixels, targets = [], []
        for row in reader:
            if want is not None and row[usage_col].strip() != want:
                continue
            pixels.append(row[cols["pixels"]])
            targets.append(int(row[cols["emotion"]]))
    if not pixels:
        raise DataSourceError(f"{path}: no rows for split {split!r} (Usage {want!r})")
    targets_arr = np.asarray(targets, dtype=np.int64)
    if targets_arr.min() < 0 or targets_arr.max() >= len(FER7):
        raise DataSourceError(f"{path}: emotion ids must be 0..6 (FER2013 order {FER7})")
    return ArraySource(
        _decode_pixels(pixels, str(path)),
        targets_arr,
        FER7,
        path.stem,
        split_name(split) if split else None,
    )


# ------------------------------------------------------------------------------------ Hugging Face datasets
_LABEL_COLUMNS = ("label", "labels", "emotion", "expression", "emotions", "class", "target")
_IMAGE_COLUMNS = ("image", "img", "images", "pixels", "face")


class HFSource(LabeledSource):
    """A ``datasets.Dataset`` with an image column (or FER2013-style pixel strings) and a label column."""

    def __init__(
        self,
        ds: Any,
        name: str,
        split: str | None,
        *,
        label_names: str | Sequence[str] | None = None,
        image_column: str | None = None,
        label_column: str | None = None,
        precropped: bool = False,
    ) -> None:
        import datasets

        feats = ds.features
        if image_column is None:
            image_column = next((c for c, f in feats.items() if isinstance(f, datasets.Image)), None)
            image_column = image_column or next((c for c in _IMAGE_COLUMNS if c in feats), None)
        if label_column is None:
            label_column = next((c for c, f in feats.items() if isinstance(f, datasets.ClassLabel)), None)
            label_column = label_column or next((c for c in _LABEL_COLUMNS if c in feats), None)
        if image_column not in feats or label_column not in feats:
            raise DataSourceError(
                f"{name}: need an image column and a label column; columns are {list(feats)} "
                f"(pass image_column=/label_column=, or --image-column/--label-column)"
            )
        lab_feat = feats[label_column]
        raw = np.asarray(ds.with_format("numpy")[label_column]) if len(ds) else np.zeros(0, np.int64)
        if isinstance(lab_feat, datasets.ClassLabel):
            names = list(lab_feat.names)
            if label_names is not None:
                names = list(dataset_labels(label_names) if isinstance(label_names, str) else label_names)
            labels = _canonical_order(names)
            remap = np.asarray([labels.index(canonical(n)) for n in names], dtype=np.int64)
            targets = remap[raw.astype(np.int64)]
        elif raw.dtype.kind in "iu":
            if label_names is None:
                raise DataSourceError(
                    f"{name}: label column {label_column!r} holds bare integers with no class names; pass "
                    "label_names=DATASET (e.g. 'fer2013') or a list of names (--label-names)"
                )
            table = dataset_labels(label_names) if isinstance(label_names, str) else tuple(label_names)
            labels = _canonical_order(table)
            remap = np.asarray([labels.index(canonical(n)) for n in table], dtype=np.int64)
            targets = remap[raw.astype(np.int64)]
        else:  # string labels
            present = sorted({str(v) for v in raw})
            labels = _canonical_order(present)
            targets = np.asarray([labels.index(canonical(str(v))) for v in raw], dtype=np.int64)
        self.ds = ds
        self.image_column = image_column
        self.labels = labels
        self.targets = targets
        self.name = name
        self.split = split
        self.pixel_strings = (
            feats[image_column].dtype == "string" if hasattr(feats[image_column], "dtype") else False
        )
        self.precropped = precropped or self.pixel_strings
        self._arrays: np.ndarray | None = None

    def image(self, i: int) -> Image.Image:
        if self.pixel_strings:
            if self._arrays is None:
                self._arrays = _decode_pixels(self.ds[self.image_column], self.name)
            return Image.fromarray(self._arrays[i]).convert("RGB")
        value = self.ds[int(i)][self.image_column]
        if isinstance(value, Image.Image):
            from ferhub.images import load_image

            return load_image(value)
        if isinstance(value, dict) and value.get("bytes"):
            return _load_pil(value["bytes"], f"{self.name}[{i}]")
        if isinstance(value, dict) and value.get("path"):
            return _load_pil(value["path"], f"{self.name}[{i}]")
        raise DataSourceError(f"{self.name}[{i}]: cannot read column {self.image_column!r} as an image")

    def path_of(self, i: int) -> str | None:
        return None


def _pick_split(dd: Any, split: str | None, name: str) -> tuple[Any, str | None]:
    names = list(dd.keys())
    if split is None:
        if len(names) == 1:
            return dd[names[0]], names[0]
        raise DataSourceError(f"{name} has splits {names}; choose one with split=... (--split NAME)")
    # FER2013 copies often hold every row in one split with the Kaggle Usage column: select by Usage
    if len(names) == 1 and _is_split(split):
        ds = dd[names[0]]
        usage = next((c for c in ds.column_names if c.lower() == "usage"), None)
        if usage is not None:
            keep = FER2013_USAGE[split_name(split)]
            return ds.filter(lambda u: u == keep, input_columns=usage), split
    if split in dd:
        return dd[split], split
    want = split_name(split)
    for n in names:
        if _is_split(n) and split_name(n) == want:
            return dd[n], n
    raise DataSourceError(f"{name} has no {split!r} split; it has {names}")


def open_hf(
    source: str | Path, split: str | None = None, *, revision: str | None = None, **kw: Any
) -> HFSource:
    """A Hub dataset id, a ``save_to_disk`` folder, or local parquet files, through ``datasets``."""
    import datasets

    path = Path(str(source))
    name = str(source)
    if path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
        loaded = datasets.load_from_disk(str(path))
        name = path.name
    elif path.suffix == ".parquet" and path.is_file():
        loaded = datasets.load_dataset("parquet", data_files=str(path))
        name = path.stem
    else:
        try:
            loaded = datasets.load_dataset(name, revision=revision)
        except (FileNotFoundError, ConnectionError) as e:
            raise DataSourceError(
                f"cannot load dataset {name!r} ({type(e).__name__}: {e}); give a Hub dataset id that exists "
                "(offline, it must already be in the datasets cache), a folder of class folders, a .zip, "
                "a fer2013.csv or a saved dataset folder"
            ) from e
    if isinstance(loaded, datasets.DatasetDict):
        ds, chosen = _pick_split(loaded, split, name)
    else:
        ds, chosen = loaded, split
    chosen = split or chosen
    return HFSource(ds, name, split_name(chosen) if chosen and _is_split(chosen) else chosen, **kw)


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
    """
    path = Path(str(source))
    looks_local = path.suffix.lower() in (".zip", ".csv", ".parquet") or str(source).startswith(
        ("/", ".", "~")
    )
    if looks_local and not path.exists():
        raise DataSourceError(f"{source} not found (a local path; a Hub dataset id looks like 'org/name')")
    if path.is_file() and path.suffix.lower() == ".csv":
        src: LabeledSource = open_fer2013_csv(path, split)
        if precropped is False:
            src.precropped = False
        return src
    if path.is_file() and path.suffix.lower() == ".zip":
        return ZipSource(path, split, label_names=label_names, precropped=bool(precropped))
    if path.is_dir() and not ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file()):
        if any(p.suffix == ".parquet" for p in path.rglob("*.parquet")):
            return open_hf(path, split, label_names=label_names, precropped=bool(precropped), **kw)
        return FolderSource(path, split, label_names=label_names, precropped=bool(precropped))
    if path.exists() or "/" in str(source) or not path.suffix:
        return open_hf(
            path if path.exists() else str(source),
            split,
            label_names=label_names,
            precropped=bool(precropped),
            **kw,
        )
    raise DataSourceError(f"{source!r} is not a folder, .zip, .csv, saved dataset or Hugging Face dataset id")


# ---------------------------------------------------------------------------------------------- splitting
def stratified_kfold(
    targets: Sequence[int] | np.ndarray, k: int, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train_idx, val_idx) pairs; every class is spread over the folds as evenly as possible.

    Each index is in exactly one validation fold; fold sizes differ by at most one per class.
    """
    targets = np.asarray(targets)
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, got {k}")
    counts = np.bincount(targets)
    if counts[counts > 0].min() < k:
        small = {int(c): int(n) for c, n in enumerate(counts) if 0 < n < k}
        raise ValueError(f"classes {small} have fewer images than k={k} folds; lower k")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(targets), dtype=np.int64)
    offset = 0
    for c in np.unique(targets):
        idx = rng.permutation(np.flatnonzero(targets == c))
        # deal round-robin, continuing where the last class stopped so fold sizes stay balanced overall
        fold_of[idx] = (np.arange(len(idx)) + offset) % k
        offset = (offset + len(idx)) % k
    all_idx = np.arange(len(targets))
    return [(all_idx[fold_of != f], all_idx[fold_of == f]) for f in range(k)]


def stratified_split(
    targets: Sequence[int] | np.ndarray, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One stratified (train_idx, val_idx) hold-out split with about ``val_fraction`` of each class."""
    targets = np.asarray(targets)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(targets):
        idx = rng.permutation(np.flatnonzero(targets == c))
        n_val = min(len(idx) - 1, max(1, round(len(idx) * val_fraction))) if len(idx) > 1 else 0
        val.append(idx[:n_val])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    train_idx = np.setdiff1d(np.arange(len(targets)), val_idx)
    return train_idx, val_idx


# ------------------------------------------------------------------------------------------ face-crop cache
def image_key(image: Image.Image) -> str:
    """Content hash of decoded pixels: the same picture under another name or format reuses its detection."""
    h = hashlib.sha1(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def default_cache_dir() -> Path:
    return Path(os.environ.get("FERHUB_CACHE", Path.home() / ".cache" / "ferhub")) / "faces"


class FaceCache:
    """Face detections stored by image content hash, so each image is detected once, ever.

    Detections (the top-scoring face, or ``None`` when none was found) are appended to a JSONL file named
    after the detector settings, under ``cache_dir`` (default ``$FERHUB_CACHE/faces`` or
    ``~/.cache/ferhub/faces``); ``cache_dir=None`` with ``persist=False`` keeps them in memory only.
    ``detector`` is a ``ferhub.faces.FaceDetector`` (created on first use when omitted).
    """

    def __init__(
        self,
        detector: Any = None,
        *,
        cache_dir: str | Path | None = None,
        persist: bool = True,
        signature: str | None = None,
    ) -> None:
        self._detector = detector
        self.signature = signature or _detector_signature(detector)
        self.path = (Path(cache_dir) if cache_dir else default_cache_dir()) / f"{self.signature}.jsonl"
        self.persist = persist
        self.entries: dict[str, dict[str, Any] | None] = {}
        self.detections_run = 0
        if persist and self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill: detect that image again
                    continue
                self.entries[rec["key"]] = rec["face"]

    @property
    def detector(self) -> Any:
        if self._detector is None:
            from ferhub.faces import FaceDetector

            self._detector = FaceDetector()
        return self._detector

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def get_many(self, images: Sequence[Image.Image], keys: Sequence[str] | None = None) -> list[Any]:
        """The top :class:`ferhub.faces.Face` of each image (``None`` when no face), detecting only misses."""
        from ferhub.faces import Face

        keys = list(keys) if keys is not None else [image_key(im) for im in images]
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in self.entries:
                first.setdefault(k, i)  # the same picture twice in one batch is detected once
        missing = list(first.values())
        if missing:
            found = self.detector.detect_batch([images[i] for i in missing])
            self.detections_run += len(missing)
            new = {}
            for i, faces in zip(missing, found):
                top = faces[0].to_dict() if faces else None
                self.entries[keys[i]] = new[keys[i]] = top
            if self.persist:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as f:
                    f.writelines(json.dumps({"key": k, "face": v}) + "\n" for k, v in new.items())
        return [_face_from_dict(Face, self.entries[k]) for k in keys]


def _face_from_dict(face_cls: Any, d: dict[str, Any] | None) -> Any:
    if d is None:
        return None
    lm = d.get("landmarks")
    return face_cls(
        box=tuple(d["box"]),
        score=float(d["score"]),
        landmarks=tuple(tuple(p) for p in lm) if lm else None,
        face_found=bool(d.get("face_found", True)),
    )


_DETECTOR_SETTINGS = ("min_face_size", "thresholds", "max_side")


def _detector_signature(detector: Any) -> str:
    """Name of the cache file: detections of differently configured detectors are kept apart, while the
    default detector (built later, or given) and any equal one share a file. The device is left out."""
    if detector is None:
        import inspect

        from ferhub.faces import FaceDetector

        params = inspect.signature(FaceDetector).parameters
        settings = {k: params[k].default for k in _DETECTOR_SETTINGS if k in params}
    else:
        settings = {k: getattr(detector, k) for k in _DETECTOR_SETTINGS if hasattr(detector, k)}
    text = json.dumps(
        {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}, sort_keys=True
    )
    return f"mtcnn-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


# --------------------------------------------------------------------------------------- materialised crops
@dataclass
class Crops:
    """Face crops of a source for one model config, held in memory as ``uint8`` (N, S, S[, 3])."""

    images: np.ndarray
    targets: np.ndarray
    labels: tuple[str, ...]
    no_face: int = 0  # images where no face was found (seed 004: the whole image was used instead)
    skipped: int = 0  # images dropped because no face was found and fallback was off
    detections_run: int = 0

    def __len__(self) -> int:
        return len(self.targets)


def materialize(
    source: LabeledSource,
    config: Any,
    *,
    indices: Sequence[int] | np.ndarray | None = None,
    cache: FaceCache | None = None,
    precropped: bool | None = None,
    no_face: str = "fallback",
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> Crops:
    """Decode, detect (once, through ``cache``) and crop every image for ``config``, into one array.

    ``precropped`` (default: ``source.precropped``) skips detection and resizes the whole image;
    ``no_face="fallback"`` uses the whole image when no face is found (seed 004) and counts it,
    ``"skip"`` drops the image.
    """
    from ferhub.transforms import crop_to_array

    if no_face not in ("fallback", "skip"):
        raise ValueError(f"no_face must be 'fallback' or 'skip', got {no_face!r}")
    precropped = source.precropped if precropped is None else precropped
    idx = np.arange(len(source)) if indices is None else np.asarray(indices, dtype=np.int64)
    shape = (config.input_size, config.input_size) + (() if config.channels == 1 else (3,))
    out = np.empty((len(idx), *shape), dtype=np.uint8)
    keep = np.ones(len(idx), dtype=bool)
    n_no_face = 0
    before = cache.detections_run if cache is not None else 0
    if precropped and isinstance(source, ArraySource) and source.images.shape[1:] == shape:
        out[:] = source.images[idx]  # FER2013 rows already at the model's size: no decode at all
    elif precropped:
        for j, i in enumerate(idx):
            out[j] = crop_to_array(source.image(int(i)), config)
            if progress and j % 256 == 0:
                progress(j, len(idx))
    else:
        from ferhub.faces import crop_face, whole_image_face

        cache = cache if cache is not None else FaceCache()
        for start in range(0, len(idx), batch_size):
            chunk = [int(i) for i in idx[start : start + batch_size]]
            images = [source.image(i) for i in chunk]
            faces = cache.get_many(images)
            for j, (im, face) in enumerate(zip(images, faces), start=start):
                if face is None:
                    n_no_face += 1
                    if no_face == "skip":
                        keep[j] = False
                        continue
                    face = whole_image_face(im)
                out[j] = crop_to_array(crop_face(im, face, config), config)
            if progress:
                progress(min(start + batch_size, len(idx)), len(idx))
    return Crops(
        images=out[keep],
        targets=source.targets[idx][keep],
        labels=source.labels,
        no_face=n_no_face,
        skipped=int((~keep).sum()),
        detections_run=(cache.detections_run - before) if cache is not None else 0,
    )


# ---------------------------------------------------------------------------- a generated, learnable task
TRANSFORM_TASK_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def transform_task(
    n_per_class: int, *, size: int = 48, num_classes: int = 4, seed: int = 0, faces: slice = slice(0, 100)
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Real face crops (scikit-image's LFW subset) labelled by a transformation a network must detect.

    Class k applies transformation k: identity, upside-down, inverted, rotated 90°, blurred, mirrored with a
    dark band, gamma-brightened. The label names are borrowed from FER7 only so that the data flows through
    ferhub unchanged; the task is "which transformation", not an expression. Each sample is a random face
    with random scale jitter and noise, so a model must generalise across faces. ``faces`` picks which of the
    100 LFW faces are used (disjoint slices give held-out faces). Returns (uint8 (N, size, size), targets,
    labels).
    """
    import skimage.data
    import torch
    import torch.nn.functional as F

    if not 2 <= num_classes <= len(TRANSFORM_TASK_LABELS):
        raise ValueError(f"num_classes must be 2..{len(TRANSFORM_TASK_LABELS)}")
    base = skimage.data.lfw_subset()[faces].astype(np.float32)  # the first 100 are faces
    rng = np.random.default_rng(seed)
    n = n_per_class * num_classes
    targets = np.repeat(np.arange(num_classes), n_per_class)
    pick = rng.integers(0, len(base), n)
    x = torch.from_numpy(base[pick]).unsqueeze(1)
    # random zoom 1.0-1.3 and shift, so the net cannot memorise pixels
    scale = torch.from_numpy(rng.uniform(1.0, 1.3, n).astype(np.float32))
    shift = torch.from_numpy(rng.uniform(-0.1, 0.1, (n, 2)).astype(np.float32))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, (n, 1, size, size), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)[:, 0]
    t = torch.from_numpy(targets)
    x = torch.where((t == 1)[:, None, None], x.flip(1), x)
    x = torch.where((t == 2)[:, None, None], 1 - x, x)
    x = torch.where((t == 3)[:, None, None], x.rot90(1, (1, 2)), x)
    if num_classes > 4:
        blurred = F.avg_pool2d(x.unsqueeze(1), 5, 1, 2, count_include_pad=False)[:, 0]
        x = torch.where((t == 4)[:, None, None], blurred, x)
    if num_classes > 5:
        band = x.flip(2).clone()
        band[:, size // 3 : size // 2] *= 0.2
        x = torch.where((t == 5)[:, None, None], band, x)
    if num_classes > 6:
        x = torch.where((t == 6)[:, None, None], x.clamp(0, 1) ** 0.4, x)
    x = x + torch.from_numpy(rng.normal(0, 0.03, x.shape).astype(np.float32))
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    order = rng.permutation(n)
    return images[order], targets[order].astype(np.int64), TRANSFORM_TASK_LABELS[:num_classes]


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
