"""Hugging Face datasets (Hub ids, ``save_to_disk`` folders, parquet files) as :class:`LabeledSource`."""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ferhub.data.sources import (
    FER2013_USAGE,
    LabeledSource,
    SplitNotFound,
    UnlabelledSplit,
    _dataset_classes,
    _decode_pixels,
    _is_split,
    _load_pil,
    _shown,
    id_base,
    label_table,
    local_name,
    split_name,
)
from ferhub.errors import DataSourceError, HubDataUnavailable, ImageDecodeError
from ferhub.labels import canonical
from ferhub.writers import encodable

# ------------------------------------------------------------------------------------ Hugging Face datasets
_LABEL_COLUMNS = ("label", "labels", "emotion", "expression", "emotions", "class", "target")
_IMAGE_COLUMNS = ("image", "img", "images", "pixels", "face")


class HFSource(LabeledSource):
    """A ``datasets.Dataset`` with an image column (or FER2013-style pixel strings) and a label column.

    The image column may be the ``datasets.Image`` feature, a ``{"bytes", "path"}`` struct (parquet written
    without the datasets schema), encoded image bytes (a ``binary`` column) or FER2013 pixel strings. Images
    are decoded by ferhub's own loader, one row at a time, under :attr:`max_pixels` (judged from the header,
    before decoding); a row that cannot be decoded, or holds no image, is skipped and counted as unreadable,
    named ``dataset[split][row]``."""

    # where a row holding a file name and no bytes may be read from: anywhere (None) for data of this machine
    # (a dataset in memory, a save_to_disk folder, parquet); a Hub id's rows only from the caches datasets and
    # huggingface_hub download its files into (open_hf), a public app visitor's dataset only from its own
    # snapshot (ferhub.ui.visitors): someone else's rows must not reach this machine's other files
    path_roots: tuple[Path, ...] | None = None

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
        siblings: Sequence[Any] = (),
        origin: str | None = None,
        rows: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        """``siblings``: the dataset's other splits; string labels take their classes from every split, so
        each split of one dataset gets one label list (as class folders do). ``origin``: how a row is named,
        before its ``[row]`` (``org/name[test]``; default ``name``); ``rows``: each row's index there (default
        ``0..len(ds)-1``)."""
        import datasets

        feats = ds.features
        if image_column is None:
            image_column = next((c for c, f in feats.items() if isinstance(f, datasets.Image)), None)
            image_column = image_column or next((c for c in _IMAGE_COLUMNS if c in feats), None)
        label_column = label_column or _label_column(feats)
        if (
            image_column in feats
            and label_column not in feats
            and _labelled_elsewhere(siblings, label_column)
        ):
            # the other splits have the labels, this one not the column (a Kaggle-style test split): a split
            # of no label at all, which training passes over, not a dataset it cannot read
            raise UnlabelledSplit(
                f"{name}: this split has no label column (its columns are {list(feats)}), though the "
                "dataset's other splits have one; its images have no label. Evaluate or train on a labelled "
                "split"
            )
        if image_column not in feats or label_column not in feats:
            raise DataSourceError(
                f"{name}: need an image column and a label column; columns are {list(feats)} "
                f"(pass image_column=/label_column=, or --image-column/--label-column)"
            )
        self.pixel_strings = _image_kind(ds, image_column, name) == "pixels"
        lab_feat = feats[label_column]
        raw = np.asarray(ds[label_column], dtype=object)  # None where a label is missing, whatever the type
        row_ids = np.arange(len(raw)) if rows is None else np.asarray(rows, dtype=np.int64)
        self.notes: tuple[str, ...] = ()
        numeric = _numeric_labels(lab_feat, raw)
        # a hidden label (-1, ClassLabel's "no label", as Hub test splits often have; a missing string) is no
        # class: numpy would read -1 as the last one, str() makes None a class "None". Such rows are left out
        # and said so, and a split with no label at all is refused
        unlabelled = _unlabelled(raw, numeric)
        if unlabelled.all() and len(raw):
            raise UnlabelledSplit(
                f"{name}: no row of {label_column!r} has a label (-1 or empty, the datasets convention for a"
                " hidden label, as in many Hub test splits); evaluate or train on a labelled split"
            )
        if unlabelled.any():
            ds, raw = ds.select(np.flatnonzero(~unlabelled)), raw[~unlabelled]
            row_ids = row_ids[~unlabelled]
            self.notes = (
                f"unlabelled: {int(unlabelled.sum())} of {len(unlabelled)} rows have no label "
                f"({label_column!r} {'missing or < 0' if numeric else 'missing or empty'}) and were left out",
            )
        if isinstance(lab_feat, datasets.ClassLabel):
            names = list(lab_feat.names)
            if label_names is not None:
                names = list(label_table(label_names))
            labels = _dataset_classes(names)
            remap = np.asarray([labels.index(canonical(n)) for n in names], dtype=np.int64)
            targets = remap[_check_ids(raw.astype(np.int64), 0, names, name, label_column)]
        elif numeric:
            if label_names is None:
                raise DataSourceError(
                    f"{name}: label column {label_column!r} holds bare integers with no class names; pass "
                    "label_names=DATASET (e.g. 'fer2013') or a list of names (--label-names)"
                )
            table = label_table(label_names)
            labels = _dataset_classes(table)
            remap = np.asarray([labels.index(canonical(n)) for n in table], dtype=np.int64)
            # counted from 0 or 1 as every split together shows (a split lacking the last id would count
            # from 0 where the others count from 1, every label of it shifted by one)
            every = sorted({int(i) for i in raw}.union(_ids_of(siblings, label_column)))
            base = id_base(every, table, label_names)
            targets = remap[_check_ids(raw.astype(np.int64), base, table, name, label_column)]
        else:  # string labels: the classes of every split (one label list for the whole dataset)
            present = sorted({str(v) for v in raw}.union(_names_of(siblings, label_column)))
            labels = _dataset_classes(present)
            targets = np.asarray([labels.index(canonical(str(v))) for v in raw], dtype=np.int64)
        if isinstance(feats[image_column], datasets.Image):
            # the encoded bytes, not datasets' own decoding: ferhub's loader refuses an image over the pixel
            # limit from its header (datasets would decode it whole first, or raise Pillow's bomb error)
            ds = ds.cast_column(image_column, datasets.Image(decode=False))
        self.ds = ds
        self.image_column = image_column
        self.labels = labels
        self.targets = targets
        self.name = name
        self.split = split
        self.origin = origin or name
        self.rows = row_ids
        self.precropped = precropped or self.pixel_strings
        self._images = ds.select_columns([image_column])
        self._arrays: np.ndarray | None = None
        self._errors: dict[int, str] = {}

    def image(self, i: int) -> Image.Image:
        where = self.path_of(i) or self.name
        if self.pixel_strings:
            if self._arrays is None:
                self._arrays, self._errors = _decode_pixels(list(self.ds[self.image_column]), self.name)
            if int(i) in self._errors:
                raise ImageDecodeError(f"{where}: {self._errors[int(i)]}")
            return Image.fromarray(self._arrays[i]).convert("RGB")
        value = self._images[int(i)][self.image_column]
        if isinstance(value, dict):  # the Image feature read undecoded, or a {"bytes", "path"} struct
            if value.get("bytes"):
                return _load_pil(value["bytes"], where, self.max_pixels)
            if value.get("path"):
                return _load_pil(self._own_file(value["path"], where), where, self.max_pixels)
            value = None
        if isinstance(value, (bytes, bytearray, memoryview)) and len(value):
            return _load_pil(bytes(value), where, self.max_pixels)
        if isinstance(value, Image.Image):  # a dataset formatted to decode anyway
            from ferhub.images import load_image

            return load_image(value, max_pixels=self.max_pixels)
        if value is None or isinstance(value, (bytes, bytearray, memoryview)):
            raise ImageDecodeError(f"{where}: no image (its {self.image_column!r} is empty)")
        raise ImageDecodeError(
            f"{where}: cannot read a {type(value).__name__} in column {self.image_column!r} as an image"
        )

    def _own_file(self, path: str, where: str) -> str:
        """``path``, where the dataset may read it (:attr:`path_roots`); else :class:`ImageDecodeError`."""
        if self.path_roots is None:
            return path
        real = Path(os.path.realpath(path))
        if not any(real.is_relative_to(root) for root in self.path_roots):
            raise ImageDecodeError(
                f"{where}: no image bytes, and the file it names ({Path(path).name}) is not among the"
                " dataset's own downloaded files; its rows are read from its own files only"
            )
        return str(real)

    def path_of(self, i: int) -> str | None:
        """``dataset[split][row]``: the row as ``datasets`` holds it (for a Hub id,
        ``load_dataset(id)[split][row]``), whichever rows were left out before it."""
        return f"{self.origin}[{int(self.rows[i])}]"


def _label_column(feats: Any) -> str | None:
    """The label column ``datasets`` features name: a ``ClassLabel``, else a usual label column name."""
    import datasets

    column = next((c for c, f in feats.items() if isinstance(f, datasets.ClassLabel)), None)
    return column or next((c for c in _LABEL_COLUMNS if c in feats), None)


def _labelled_elsewhere(siblings: Sequence[Any], column: str | None) -> bool:
    """Whether another split of the dataset has the label column (``column``, else one found as in
    :class:`HFSource`)."""
    return any((column or _label_column(d.features)) in d.features for d in siblings)


def _image_kind(ds: Any, column: str, name: str) -> str:
    """How the image column holds its images: ``"image"`` (the Image feature, a ``{"bytes", "path"}`` struct
    or encoded bytes) or ``"pixels"`` (FER2013 pixel strings); anything else is refused with what to give."""
    import datasets

    feature = ds.features[column]
    if isinstance(feature, datasets.Image) or (isinstance(feature, dict) and "bytes" in feature):
        return "image"
    dtype = str(getattr(feature, "dtype", ""))
    if dtype in ("binary", "large_binary"):
        return "image"
    if dtype in ("string", "large_string"):
        sample = next((v for v in ds.select(range(min(len(ds), 100)))[column] if v and str(v).strip()), None)
        if sample is None or _PIXELS.fullmatch(sample):
            return "pixels"
        raise DataSourceError(
            f"{name}: column {column!r} holds text such as {_shown(sample)}, not images or FER2013 pixel "
            "strings; ferhub reads the images a dataset holds, not files its rows name. Fix: build the "
            "dataset with the images in it (datasets' 'imagefolder' loader, or cast_column(..., "
            "datasets.Image()) before push_to_hub), give the image files as class folders, or name the image "
            "column (--image-column)"
        )
    raise DataSourceError(
        f"{name}: column {column!r} holds {feature}, not images; name the image column with image_column= "
        "(--image-column): an Image column, encoded image bytes or FER2013 pixel strings"
    )


_PIXELS = re.compile(r"[\d\s]+")


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _numeric_labels(feature: Any, raw: np.ndarray) -> bool:
    """Whether a label column holds class ids: ClassLabel, integers, or whole numbers stored as floats (an
    integer column with missing values, as pandas writes it)."""
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        return True
    dtype = str(getattr(feature, "dtype", ""))
    if dtype.startswith(("int", "uint")):
        return True
    return dtype.startswith("float") and all(_missing(v) or float(v).is_integer() for v in raw)


def _unlabelled(raw: np.ndarray, numeric: bool) -> np.ndarray:
    """Rows without a label: missing values, ids below 0, empty strings."""
    if numeric:
        return np.asarray([_missing(v) or v < 0 for v in raw], bool)
    return np.asarray([_missing(v) or not str(v).strip() for v in raw], bool)


def _given(splits: Sequence[Any], column: str) -> list[Any]:
    """The labels other splits give in ``column`` (missing values left out)."""
    return [v for split in splits if column in split.column_names for v in split[column] if not _missing(v)]


def _ids_of(splits: Sequence[Any], column: str) -> set[int]:
    """The class ids other splits use (negative and non-numeric values left out)."""
    numbers = (int, float, np.integer, np.floating)
    return {int(v) for v in _given(splits, column) if isinstance(v, numbers) and v >= 0}


def _names_of(splits: Sequence[Any], column: str) -> set[str]:
    """The class names other splits use (empty values left out)."""
    return {str(v) for v in _given(splits, column) if str(v).strip()}


def _check_ids(ids: np.ndarray, base: int, names: Sequence[str], name: str, column: str) -> np.ndarray:
    """``ids - base`` as indices into ``names``; an id past the names is an error, not numpy's wrap-around."""
    index = ids - base
    if len(index) and (index.min() < 0 or index.max() >= len(names)):
        raise DataSourceError(
            f"{name}: {column!r} holds ids {int(ids.min())}..{int(ids.max())}, outside the {len(names)} "
            f"class names ({base}..{base + len(names) - 1}: {', '.join(names)}); pass the dataset's own "
            "label table (--label-names)"
        )
    return index


@dataclass
class _Picked:
    """The split of a dataset to read: its rows, the split's name, whether the data marks it (``False``:
    ``split`` only names all of the data), the split ``datasets`` holds those rows in and their indices there
    (``None``: all of it, in order)."""

    ds: Any
    split: str | None
    own: bool
    held_in: str | None
    rows: np.ndarray | None = None


def _pick_split(dd: Any, split: str | None, name: str, *, named: bool = True) -> _Picked:
    """The split of ``dd`` to use (see :class:`_Picked`). ``named=False``: ``dd``'s one split is the
    ``"train"`` that ``datasets`` calls rows without a split name (a single parquet file), no split of the
    data's own."""
    names = list(dd.keys())
    held_in = (lambda n: n) if named else (lambda n: None)
    if split is None:
        if len(names) == 1:
            return _Picked(dd[names[0]], names[0] if named else None, True, held_in(names[0]))
        raise DataSourceError(
            f"{name} has splits {names}; choose one with split=... (--split NAME; for train's --val-data,"
            " --val-split NAME)"
        )
    # FER2013 copies often hold every row in one split with the Kaggle Usage column: select by Usage
    if len(names) == 1 and _is_split(split):
        ds = dd[names[0]]
        usage = next((c for c in ds.column_names if c.lower() == "usage"), None)
        if usage is not None:
            keep = FER2013_USAGE[split_name(split)]
            rows = np.flatnonzero(np.asarray([u == keep for u in ds[usage]], dtype=bool))
            if not len(rows):  # as a fer2013.csv without rows of that Usage: no such split, not an empty one
                there = sorted({str(u) for u in ds.unique(usage) if u is not None})
                raise SplitNotFound(f"{name}: no rows for split {split!r} (Usage {keep!r}); it has {there}")
            return _Picked(ds.select(rows), split, True, held_in(names[0]), rows)
    if not named:  # data without splits is all of the split the user names
        return _Picked(dd[names[0]], split, False, None)
    if split in dd:
        return _Picked(dd[split], split, True, split)
    want = split_name(split)
    for n in names:
        if _is_split(n) and split_name(n) == want:
            return _Picked(dd[n], n, True, n)
    raise SplitNotFound(f"{name} has no {split!r} split; it has {names}")


def _named_splits(datasets: Any, folder: Path) -> bool:
    """Whether ``datasets`` finds split names in a local folder's file names (``data/test-00000-of-00001
    .parquet``, ``test/...``); without them it calls every file split ``"train"``."""
    from datasets.data_files import DEFAULT_PATTERNS_ALL, get_data_patterns

    try:
        return get_data_patterns(str(folder)) != DEFAULT_PATTERNS_ALL
    except Exception:  # no data files datasets knows: its own load reports that
        return True


_OFFLINE_LOCK = threading.Lock()


@contextlib.contextmanager
def _datasets_offline(datasets: Any) -> Iterator[None]:
    """``datasets`` in offline mode for one call: straight to its cache, where online it would retry an
    unreachable Hub for ~25 s first. ``datasets`` reads the flag from its config module on each call."""
    with _OFFLINE_LOCK:
        before = datasets.config.HF_HUB_OFFLINE
        datasets.config.HF_HUB_OFFLINE = True
        try:
            yield
        finally:
            datasets.config.HF_HUB_OFFLINE = before


def _no_data(e: BaseException) -> bool:
    """Whether ``e`` is ``datasets`` refusing a split that holds no rows (``Instruction "test" corresponds to
    no data!``), which it raises for a whole dataset with one empty split."""
    return isinstance(e, ValueError) and "corresponds to no data" in str(e)


def _empty(datasets: Any, features: Any) -> Any:
    """A dataset of no rows with ``features``: an empty split, read as one (its rows: none to evaluate)."""
    return datasets.Dataset.from_dict({c: [] for c in features}, features=features)


def _load_dataset(datasets: Any, path: str, config: str | None = None, **kw: Any) -> Any:
    """``datasets.load_dataset``, where a split without rows never blocks the others: ``datasets`` refuses
    the whole dataset then, so each split is read on its own from what the load prepared, an empty one as a
    dataset of no rows."""
    args = (path,) if config is None else (path, config)
    try:
        return datasets.load_dataset(*args, **kw)
    except ValueError as e:
        if not _no_data(e):
            raise
    builder = datasets.load_dataset_builder(*args, **kw)
    builder.download_and_prepare()  # prepared by the load above: nothing to do
    splits = {}
    for split in builder.info.splits or {}:
        try:
            splits[split] = builder.as_dataset(split=split)
        except ValueError as e:
            if not _no_data(e):
                raise
            splits[split] = None
    features = builder.info.features or next((d.features for d in splits.values() if d is not None), None)
    if features is None:  # no split has a row, nor the info a schema
        raise DataSourceError(f"{path}: every split is empty; there are no images to evaluate or train on")
    return datasets.DatasetDict(
        {k: d if d is not None else _empty(datasets, features) for k, d in splits.items()}
    )


def _load_saved(datasets: Any, path: Path) -> Any:
    """``datasets.load_from_disk``, where a split saved without rows (no arrow file: ``load_from_disk`` fails
    with an IndexError) is read as a dataset of no rows and never blocks the other splits."""
    try:
        return datasets.load_from_disk(str(path))
    except IndexError:
        pass
    if (path / "state.json").is_file():
        return _load_saved_split(datasets, path)
    try:
        split_names = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataSourceError(f"{path}: not a readable saved dataset folder ({e})") from e
    return datasets.DatasetDict({s: _load_saved_split(datasets, path / s) for s in split_names})


def _load_saved_split(datasets: Any, folder: Path) -> Any:
    try:
        return datasets.Dataset.load_from_disk(str(folder))
    except IndexError:  # saved with no rows: no data file to read
        return _empty(datasets, datasets.DatasetInfo.from_directory(str(folder)).features)


def _config_error(e: ValueError, name: str) -> DataSourceError | None:
    """``datasets``' refusal to load a dataset without or with an unknown configuration as ferhub's advice
    (the CLI option, the configurations there are); ``None`` for other errors."""
    text = str(e)
    many = re.search(r"configurations in the cache: ([^\n]+)", text) or re.search(
        r"available configs: \[([^\]]*)\]", text
    )
    if many and ("specify which configuration" in text or "Config name is missing" in text):
        configs = [c.strip(" '\"") for c in many.group(1).split(",") if c.strip(" '\"")]
        return DataSourceError(
            f"{name} has several configurations ({', '.join(configs)}); choose one with --data-config NAME "
            f"(dataset_config= in Python), e.g. --data-config {configs[0] if configs else 'NAME'}"
        )
    unknown = re.search(r"for config '([^']*)'|BuilderConfig '([^']*)' not found", text)
    if unknown:
        there = re.search(r"Available(?: configs in the cache)?: \[([^\]]*)\]", text)
        has = f"; it has {there.group(1)}" if there else ""
        return DataSourceError(
            f"{name} has no configuration {unknown.group(1) or unknown.group(2)!r}{has} (--data-config / "
            "dataset_config=)"
        )
    return None


def _load_hub_dataset(datasets: Any, name: str, revision: str | None, config: str | None = None) -> Any:
    """``datasets.load_dataset`` of a Hub id (its configuration ``config``); with the Hub unreachable (a 1 s
    probe) from the cache alone, and when it is not there, a message that says so at once."""
    from huggingface_hub import constants

    from ferhub.hub._remote import hub_unreachable

    offline = bool(datasets.config.HF_HUB_OFFLINE)
    unreachable = None if offline else hub_unreachable(constants.ENDPOINT)
    try:
        with _datasets_offline(datasets) if unreachable else contextlib.nullcontext():
            return _load_dataset(datasets, name, config, revision=revision)
    except (FileNotFoundError, ConnectionError) as e:
        if not (offline or unreachable):
            raise DataSourceError(
                f"cannot load dataset {name!r} ({type(e).__name__}: {e}); give a Hub dataset id that exists, "
                "a folder of class folders, a .zip, a fer2013.csv or a saved dataset folder"
            ) from e
        why = "offline mode is on (HF_HUB_OFFLINE=1)" if offline else unreachable
        if "/" not in name:  # more likely a mistyped folder than a legacy un-namespaced Hub dataset
            raise DataSourceError(
                f"no folder {name!r} here; as a Hub dataset id it is not in the datasets cache and {why}."
                " Fix: check the folder's name (./NAME for a folder here), or load the Hub dataset once"
                " with network access"
            ) from e
        raise HubDataUnavailable(
            f"Hub dataset {name!r} is not in the datasets cache ({datasets.config.HF_DATASETS_CACHE}) and "
            f"{why}. Fix: load it once with network access (or set HTTPS_PROXY / HF_ENDPOINT), or give a "
            "local copy (a folder of class folders, a .zip or a saved dataset folder)"
        ) from e
    except ValueError as e:
        refused = _config_error(e, name)
        if refused is None:
            raise
        raise refused from e


def open_hf(
    source: str | Path,
    split: str | None = None,
    *,
    revision: str | None = None,
    dataset_config: str | None = None,
    **kw: Any,
) -> HFSource:
    """A Hub dataset id, a ``save_to_disk`` folder, or local parquet files, through ``datasets``.

    ``dataset_config``: the configuration to load (``load_dataset(id, dataset_config)``), for a dataset that
    has several; a split without rows never blocks another split."""
    import datasets

    path = Path(str(source))
    named = True
    saved = path.is_dir() and ((path / "dataset_dict.json").is_file() or (path / "state.json").is_file())
    if dataset_config is not None and (saved or path.is_file()):
        raise DataSourceError(
            f"{source} is a {'saved dataset folder' if saved else 'parquet file'}, which has no "
            "configurations; leave out dataset_config= (--data-config)"
        )
    where = os.path.abspath(path)
    # load_from_disk's file paths must encode to UTF-8 (parquet files and folders there are read fine)
    if saved and encodable(where) != where:
        raise DataSourceError(
            f"{encodable(where)}: its path has bytes that are not UTF-8, and the datasets library cannot "
            "read a saved dataset (save_to_disk folder) there; rename the folder to a UTF-8 name, or give "
            "the images as parquet files or class folders"
        )
    if saved:
        loaded = _load_saved(datasets, path)
    elif path.suffix.lower() == ".parquet" and path.is_file():
        loaded = _load_dataset(datasets, "parquet", data_files=str(path))
        named = False
    else:
        loaded = _load_hub_dataset(datasets, str(source), revision, dataset_config)
        named = not path.is_dir() or _named_splits(datasets, path)
    siblings: list[Any] = []
    if isinstance(loaded, datasets.DatasetDict):
        picked = _pick_split(loaded, split, str(source), named=named)
        siblings = [d for d in loaded.values() if d is not picked.ds]
    else:  # a saved Dataset without splits: a split named is all of it
        picked = _Picked(loaded, split, split is None, None)
    ds, own = picked.ds, picked.own
    chosen = split or picked.split
    shown = split_name(chosen) if chosen and _is_split(chosen) else chosen
    name = str(source)  # a Hub id; a local source is named by its folder or file, never by the path as typed
    if path.exists():
        many = isinstance(loaded, datasets.DatasetDict)
        own_splits = {split_name(n) for n in loaded if _is_split(n)} if named and many else set()
        whole = next(iter(loaded.values())) if many and len(loaded) == 1 else ds  # before a Usage filter
        usage = next((c for c in whole.column_names if c.lower() == "usage"), None)  # FER2013's splits
        if usage is not None:
            own_splits |= {split_name(u) for u in whole.unique(usage) if isinstance(u, str) and _is_split(u)}
        name, shown = local_name(path, shown, own_splits)
    # a row is named where datasets holds it: load_dataset(id[, config])[split][row], or the path as given
    origin = encodable(source) + (f":{dataset_config}" if dataset_config else "")
    origin += f"[{picked.held_in}]" if picked.held_in is not None else ""
    src = HFSource(ds, name, shown, siblings=siblings, origin=origin, rows=picked.rows, **kw)
    src.split_is_label = not own
    src.config = dataset_config
    if not path.exists():  # a Hub id: its rows' files are those datasets and huggingface_hub downloaded
        from huggingface_hub import constants

        src.path_roots = own_roots(datasets.config.HF_DATASETS_CACHE, constants.HF_HUB_CACHE)
    return src


def own_roots(*folders: str | os.PathLike) -> tuple[Path, ...]:
    """``folders`` as :attr:`HFSource.path_roots`: links resolved, as each row's file is."""
    return tuple(Path(os.path.realpath(f)) for f in folders)
