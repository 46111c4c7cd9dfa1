"""Data sources (class folders, zips, FER2013 CSV, `datasets`), k-fold splitting and the face-crop cache."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tasks import transform_task

from ferhub.config import ModelConfig
from ferhub.data import (
    DataSourceError,
    FaceCache,
    materialize,
    open_source,
    stratified_kfold,
    stratified_split,
    write_class_folders,
)
from ferhub.labels import FER7


def _img(value: int, size: int = 20) -> Image.Image:
    a = np.full((size, size, 3), value, np.uint8)
    a[0, 0] = (value, 255 - value, 7)  # RGB content so gray conversion is visible
    return Image.fromarray(a)


@pytest.fixture
def split_folder(tmp_path: Path) -> Path:
    """RAF/SFEW-style layout with alias class names and a wrapper folder: root/data/{Train,Val}/CLASS/img."""
    root = tmp_path / "sfew"
    names = {"Angry": 3, "Happiness": 2, "neutral": 4}
    for split in ("Train", "Val"):
        for cls, n in names.items():
            d = root / "data" / split / cls
            d.mkdir(parents=True)
            for i in range(n if split == "Train" else 1):
                _img(10 * i + len(cls)).save(d / f"{i}.png")
    # a small split lacking a class still gets the dataset's full label list
    (root / "data" / "Val" / "neutral" / "0.png").unlink()
    (root / "data" / "Val" / "neutral").rmdir()
    return root


def test_folder_source_layout_labels_and_splits(split_folder: Path) -> None:
    src = open_source(split_folder, split="train")
    assert src.labels == ("angry", "happy", "neutral")  # canonical names, ferhub's order
    assert len(src) == 9 and list(src.class_counts()) == [3, 2, 4]
    image, label = src[0]
    assert image.mode == "RGB" and image.size == (20, 20) and label == 0
    assert src.path_of(0).endswith("Train/Angry/0.png") and src.split == "train"
    val = open_source(split_folder, split="validation")
    assert val.labels == src.labels and list(val.targets) == [0, 1]
    with pytest.raises(DataSourceError, match=r"split folders \['Train', 'Val'\]; choose one"):
        open_source(split_folder)
    with pytest.raises(DataSourceError, match="no 'test' split"):
        open_source(split_folder, split="test")


def test_unknown_class_names_are_listed(tmp_path: Path) -> None:
    for cls in ("happy", "bored", "Confused"):
        (tmp_path / cls).mkdir()
        _img(1).save(tmp_path / cls / "a.jpg")
    with pytest.raises(DataSourceError, match=r"\['Confused', 'bored'\] are not expression labels"):
        open_source(tmp_path)


def test_an_undecodable_image_is_named_once(tmp_path: Path) -> None:
    from ferhub.images import ImageDecodeError

    for cls in ("happy", "sad"):
        (tmp_path / cls).mkdir()
        _img(1).save(tmp_path / cls / "a.png")
    broken = tmp_path / "sad" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + bytes(50))
    folder = open_source(tmp_path)
    with pytest.raises(ImageDecodeError) as e:
        folder.image(folder.files.index(broken))
    assert str(e.value).count(str(broken)) == 1 and str(e.value).startswith(f"{broken}: not an image")
    with zipfile.ZipFile(tmp_path / "faces.zip", "w") as zf:
        zf.write(broken, "sad/broken.jpg")
        zf.write(tmp_path / "happy" / "a.png", "happy/a.png")
    zipped = open_source(tmp_path / "faces.zip")
    with pytest.raises(ImageDecodeError, match=r"faces\.zip::sad/broken\.jpg: .*not an image"):
        zipped.image(zipped.members.index("sad/broken.jpg"))


def test_numbered_rafdb_folders_need_and_use_label_names(tmp_path: Path) -> None:
    for k in (1, 4, 7):  # RAF-DB ids 1..7: surprise, fear, disgust, happy, sad, angry, neutral
        (tmp_path / "train" / str(k)).mkdir(parents=True)
        _img(k).save(tmp_path / "train" / str(k) / "x.png")
    with pytest.raises(DataSourceError, match="label_names=DATASET"):
        open_source(tmp_path, "train")
    src = open_source(tmp_path, "train", label_names="rafdb")
    assert src.labels == FER7  # all 7 ids are known once the table is named
    assert [src.labels[t] for t in src.targets] == ["surprise", "happy", "neutral"]


def test_zip_matches_folder_and_extracts_nothing(split_folder: Path, tmp_path: Path) -> None:
    zpath = tmp_path / "sfew.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(split_folder.rglob("*.png")):
            zf.write(f, f.relative_to(split_folder.parent).as_posix())
        zf.writestr("__MACOSX/sfew/data/Train/Angry/._0.png", b"junk")
    before = set(tmp_path.rglob("*"))
    folder, zipped = open_source(split_folder, "train"), open_source(zpath, "train")
    assert zipped.labels == folder.labels and list(zipped.targets) == list(folder.targets)
    for i in range(len(folder)):
        assert np.array_equal(np.asarray(zipped[i][0]), np.asarray(folder[i][0]))
    assert zipped.path_of(0) == f"{zpath}::sfew/data/Train/Angry/0.png"
    assert set(tmp_path.rglob("*")) == before


def test_zip_members_outside_its_folders_are_left_out_and_named(split_folder: Path, tmp_path: Path) -> None:
    """A member named by an absolute path was refused with Python's own words ("'/tmp/x' is not in the
    subpath of ''"); like one climbing out (``../``) it is left out, and the notes name both."""
    zpath = tmp_path / "odd.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(split_folder.rglob("*.png")):
            zf.write(f, f.relative_to(split_folder.parent).as_posix())
        zf.writestr("/tmp/elsewhere/x.png", b"png")
        zf.writestr("../../up/y.png", b"png")
    before = set(tmp_path.rglob("*"))
    zipped, folder = open_source(zpath, "train"), open_source(split_folder, "train")
    assert zipped.labels == folder.labels and list(zipped.targets) == list(folder.targets)
    assert zipped.notes == (
        "left out 2 zip member(s) named by an absolute path or with '..' in their names, which no class "
        "folder holds: '/tmp/elsewhere/x.png', '../../up/y.png'",
    )
    assert set(tmp_path.rglob("*")) == before and not Path("/tmp/elsewhere").exists()


def _write_fer_csv(path: Path, rows: list[tuple[int, np.ndarray, str]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for emotion, pixels, usage in rows:
            w.writerow([emotion, " ".join(str(int(p)) for p in pixels.ravel()), usage])
    return path


def test_fer2013_csv_splits(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    usages = ["Training"] * 5 + ["PublicTest"] * 2 + ["PrivateTest"] * 3
    rows = [(i % 7, rng.integers(0, 256, (48, 48)), u) for i, u in enumerate(usages)]
    path = _write_fer_csv(tmp_path / "fer2013.csv", rows)
    train, val, test = (open_source(path, s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (5, 2, 3)
    assert train.labels == FER7 and train.precropped
    assert list(test.targets) == [0, 1, 2]  # rows 7, 8, 9 -> emotions 0, 1, 2
    image, label = test[2]
    assert image.mode == "RGB" and image.size == (48, 48) and label == 2
    assert np.array_equal(np.asarray(image)[..., 0], rows[9][1])
    assert len(open_source(path)) == 10
    assert len(open_source(path, "PublicTest")) == 2
    # precropped 48x48 rows go straight into a 48x48 gray model: no decode, no detection
    cfg = ModelConfig(architecture="test_tiny", labels=FER7, input_size=48, channels=1)
    crops = materialize(train, cfg)
    assert crops.images.shape == (5, 48, 48) and np.array_equal(crops.images[0], rows[0][1])


def test_hf_saved_dataset_classlabel_and_string_labels(tmp_path: Path) -> None:
    import datasets

    images = [_img(v) for v in (10, 20, 30, 40)]
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["Neutral", "Happiness", "anger"])}
    )
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"image": images[:3], "label": [0, 1, 2]}, features=features),
            "validation": datasets.Dataset.from_dict({"image": images[3:], "label": [1]}, features=features),
        }
    )
    dd.save_to_disk(str(tmp_path / "saved"))
    src = open_source(tmp_path / "saved", "train")
    assert src.labels == ("angry", "happy", "neutral")  # ClassLabel names canonicalised, ferhub order
    assert [src.labels[t] for t in src.targets] == ["neutral", "happy", "angry"]
    assert np.array_equal(np.asarray(src[1][0]), np.asarray(images[1]))
    assert len(open_source(tmp_path / "saved", "val")) == 1

    # parquet with string labels and a differently named image column
    ds = datasets.Dataset.from_dict(
        {"img": images, "expression": ["sad", "Surprised", "sad", "fear"]},
        features=datasets.Features({"img": datasets.Image(), "expression": datasets.Value("string")}),
    )
    ds.to_parquet(str(tmp_path / "faces.parquet"))
    pq = open_source(tmp_path / "faces.parquet")
    assert pq.labels == ("fear", "sad", "surprise")
    assert [pq.labels[t] for t in pq.targets] == ["sad", "surprise", "sad", "fear"]
    assert pq[3][0].size == (20, 20)


def test_hf_bare_integer_labels_need_names(tmp_path: Path) -> None:
    import datasets

    pixels = [" ".join(["7"] * 48 * 48), " ".join(["9"] * 48 * 48)]
    ds = datasets.Dataset.from_dict({"emotion": [3, 6, 0], "pixels": [*pixels, pixels[0]]})
    ds = ds.add_column("Usage", ["Training", "Training", "PrivateTest"])
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "fer_hub_copy"))
    with pytest.raises(DataSourceError, match="bare integers"):
        open_source(tmp_path / "fer_hub_copy", "train")
    src = open_source(tmp_path / "fer_hub_copy", "train", label_names="fer2013")
    assert src.precropped and [src.labels[t] for t in src.targets] == ["happy", "neutral"]
    assert np.asarray(src[1][0])[0, 0, 0] == 9
    # one split holding every row: the Kaggle Usage column selects val / test
    test = open_source(tmp_path / "fer_hub_copy", "test", label_names="fer2013")
    assert len(test) == 1 and test.split == "test" and test.labels[test.targets[0]] == "angry"


def test_unknown_hub_id_fails_clearly_offline() -> None:
    from ferhub.errors import HubConnectionError, HubDataUnavailable

    with pytest.raises(
        HubDataUnavailable, match="Hub dataset 'nobody/no-such-fer' is not in the datasets cache"
    ):
        open_source("nobody/no-such-fer")  # the Hub's failure, not the id's: the CLI's exit code 3
    with pytest.raises(DataSourceError, match="no folder 'no_such_folder' here") as e:
        open_source("no_such_folder")  # a bare name: most likely a mistyped folder
    assert not isinstance(e.value, HubConnectionError) and "offline mode is on" in str(e.value)
    with pytest.raises(DataSourceError, match=r"missing\.zip not found \(a local path"):
        open_source("/no/such/missing.zip")


def test_unreachable_hub_reads_datasets_from_the_cache_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online but with the Hub unreachable, ``datasets`` would retry for ~25 s before trying its cache: the
    1 s probe sends it to the cache at once, and an uncached id fails at once."""
    import time

    import datasets

    from ferhub.errors import HubDataUnavailable
    from ferhub.hub import _remote

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(
        _remote, "hub_unreachable", lambda endpoint: "the Hub cannot be reached (huggingface.co:443: refused)"
    )
    start = time.monotonic()
    with pytest.raises(
        HubDataUnavailable, match=r"and the Hub cannot be reached \(huggingface\.co:443: refused\)"
    ):
        open_source("nobody/no-such-fer")
    assert time.monotonic() - start < 5 and datasets.config.HF_HUB_OFFLINE is False  # restored
    seen = []
    cached = datasets.Dataset.from_dict({"image": [Image.new("RGB", (8, 8))] * 2, "label": ["happy", "sad"]})

    def load_dataset(name: str, revision: str | None = None) -> datasets.Dataset:
        seen.append((name, datasets.config.HF_HUB_OFFLINE))
        return cached

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    src = open_source("org/cached-faces")
    assert seen == [("org/cached-faces", True)] and len(src) == 2  # loaded in offline mode: from the cache
    assert datasets.config.HF_HUB_OFFLINE is False
    monkeypatch.setattr(_remote, "hub_unreachable", lambda endpoint: None)  # reachable: online as asked
    open_source("org/cached-faces")
    assert seen[-1] == ("org/cached-faces", False)


def test_stratified_kfold_partitions_and_balances() -> None:
    targets = np.array([0] * 10 + [1] * 6 + [2] * 5)
    folds = stratified_kfold(targets, 5, seed=3)
    vals = np.concatenate([v for _, v in folds])
    assert sorted(vals) == list(range(len(targets)))  # every index validated exactly once
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == len(targets)
        counts = np.bincount(targets[val], minlength=3)
        assert counts[0] == 2 and counts[1] in (1, 2) and counts[2] == 1
    assert [v.tolist() for _, v in folds] == [v.tolist() for _, v in stratified_kfold(targets, 5, seed=3)]
    assert [v.tolist() for _, v in folds] != [v.tolist() for _, v in stratified_kfold(targets, 5, seed=4)]
    with pytest.raises(ValueError, match="fewer images than k=6"):
        stratified_kfold(targets, 6)
    tr, va = stratified_split(targets, 0.2, seed=0)
    assert list(np.bincount(targets[va])) == [2, 1, 1] and len(tr) + len(va) == len(targets)


def test_transform_task_is_balanced_and_writes_folders(tmp_path: Path) -> None:
    images, targets, labels = transform_task(5, size=24, num_classes=7, seed=1)
    assert images.shape == (35, 24, 24) and images.dtype == np.uint8
    assert list(np.bincount(targets)) == [5] * 7 and labels == FER7
    src = open_source(write_class_folders(images, targets, labels, tmp_path / "task"))
    assert len(src) == 35 and src.labels == FER7


class _CountingDetector:
    """Wraps the real detector to count how many images reach it."""

    def __init__(self, detector: object) -> None:
        self.inner, self.seen = detector, 0
        self.min_face_size = getattr(detector, "min_face_size", None)

    def detect_batch(self, images: list[Image.Image]) -> list:
        self.seen += len(images)
        return self.inner.detect_batch(images)


def test_face_cache_detects_each_image_once_and_falls_back(tmp_path: Path) -> None:
    faces = pytest.importorskip("ferhub.faces", reason="ferhub.faces (faces helper) not merged yet")
    import skimage.data

    photo = Image.fromarray(skimage.data.astronaut())
    blank = Image.new("RGB", (120, 90), (128, 128, 128))
    for cls, im in (("happy", photo), ("neutral", blank)):
        (tmp_path / "d" / cls).mkdir(parents=True)
        im.save(tmp_path / "d" / cls / "a.png")
    photo.save(tmp_path / "d" / "happy" / "same_pixels_other_name.png")
    src = open_source(tmp_path / "d")
    cfg = ModelConfig(architecture="test_tiny", labels=FER7, input_size=32, channels=1)
    counter = _CountingDetector(faces.FaceDetector())
    cache = FaceCache(counter, cache_dir=tmp_path / "cache", signature="test")
    crops = materialize(src, cfg, cache=cache, batch_size=2)
    assert counter.seen == 2  # the duplicate photo (same pixels) was looked up, not detected
    assert crops.images.shape == (3, 32, 32) and crops.no_face == 1 and crops.detections_run == 2
    face = cache.get_many([photo])[0]
    assert face is not None and 150 < (face.box[0] + face.box[2]) / 2 < 350  # the astronaut's face
    # a later run (new process) reads the cache file and detects nothing
    counter2 = _CountingDetector(faces.FaceDetector())
    again = materialize(src, cfg, cache=FaceCache(counter2, cache_dir=tmp_path / "cache", signature="test"))
    assert counter2.seen == 0 and np.array_equal(again.images, crops.images) and again.no_face == 1
    skipped = materialize(src, cfg, cache=cache, no_face="skip")
    assert len(skipped) == 2 and skipped.skipped == 1
    # training (no detector given) and evaluation (its predictor's default detector) share one cache file,
    # while a differently configured detector gets its own
    default = FaceCache(cache_dir=tmp_path / "c").path
    assert FaceCache(faces.FaceDetector(), cache_dir=tmp_path / "c").path == default
    assert FaceCache(faces.FaceDetector(max_side=256), cache_dir=tmp_path / "c").path != default


def test_the_library_never_imports_test_dependencies() -> None:
    """scikit-image and matplotlib are test data sources (extra ``test``), not library dependencies: the
    library imports them only as optional extras (inside ``try: ... except ImportError``)."""
    import ast

    import ferhub

    def optional(tree: ast.AST) -> set[int]:
        """ids of import nodes guarded by an ``except ImportError`` (or ModuleNotFoundError)."""
        guarded: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers
            ):
                guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
        return guarded

    root = Path(ferhub.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = optional(tree)
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.split(".")[0] in ("skimage", "matplotlib", "pytest")]
            assert not bad or id(node) in allowed, f"{path.relative_to(root)} imports {bad}"


def test_hf_unlabelled_rows_are_left_out_and_said(tmp_path: Path) -> None:
    """ClassLabel's -1 ("no label", as Hub test splits hide theirs) was read by numpy as the last class."""
    import datasets

    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["happy", "sad"])}
    )
    images = [_img(v) for v in (10, 20, 30, 40)]
    ds = datasets.Dataset.from_dict({"image": images, "label": [0, -1, 1, -1]}, features=features)
    ds.save_to_disk(str(tmp_path / "some"))
    src = open_source(tmp_path / "some")
    assert [src.labels[t] for t in src.targets] == ["happy", "sad"] and len(src) == 2
    assert np.array_equal(np.asarray(src[1][0]), np.asarray(images[2]))  # the rows stay with their images
    assert src.notes == ("unlabelled: 2 of 4 rows have no label ('label' missing or < 0) and were left out",)
    hidden = datasets.Dataset.from_dict({"image": images[:2], "label": [-1, -1]}, features=features)
    hidden.save_to_disk(str(tmp_path / "hidden"))
    with pytest.raises(DataSourceError, match="no row of 'label' has a label"):
        open_source(tmp_path / "hidden")
    # a string column's missing labels are no class "None" either, in the split read or in the others
    strings = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"image": images[:3], "label": ["happy", None, "sad"]}, features=strings
            ),
            "test": datasets.Dataset.from_dict({"image": images[3:], "label": [None]}, features=strings),
        }
    ).save_to_disk(str(tmp_path / "strings"))
    train = open_source(tmp_path / "strings", "train")
    assert train.labels == ("happy", "sad") and len(train) == 2
    note = "unlabelled: 1 of 3 rows have no label ('label' missing or empty) and were left out"
    assert train.notes == (note,)


def test_hf_integer_ids_count_from_one_in_every_split_alike(tmp_path: Path) -> None:
    """Each split guessed on its own whether ids count from 0 or 1: a 1-based split lacking the last id was
    read 0-based, every label shifted by one."""
    import datasets

    images = [_img(v) for v in range(0, 120, 20)]
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"image": images[:3], "label": [1, 4, 7]}),
            "validation": datasets.Dataset.from_dict({"image": images[3:], "label": [1, 4, 6]}),
        }
    ).save_to_disk(str(tmp_path / "raf"))
    val = open_source(tmp_path / "raf", "val", label_names="fer2013")  # 7 names; ids 1..7 overall
    train = open_source(tmp_path / "raf", "train", label_names="fer2013")
    assert [val.labels[t] for t in val.targets] == ["angry", "happy", "surprise"]
    assert [train.labels[t] for t in train.targets] == ["angry", "happy", "neutral"]


def test_hf_integer_ids_count_from_one_as_folders_do(tmp_path: Path) -> None:
    """RAF-DB's own ids 1..7 in an integer column crashed (IndexError) or, without id 7, were shifted by one;
    class folders named 1..7 were already read 1-based."""
    import datasets

    images = [_img(v) for v in range(0, 120, 20)]
    ds = datasets.Dataset.from_dict({"image": images, "label": [1, 4, 7, 1, 4, 6]})
    ds.to_parquet(str(tmp_path / "raf.parquet"))
    src = open_source(tmp_path / "raf.parquet", label_names="rafdb")
    assert [src.labels[t] for t in src.targets] == [
        "surprise",
        "happy",
        "neutral",
        "surprise",
        "happy",
        "angry",
    ]
    no7 = datasets.Dataset.from_dict({"image": images[:2], "label": [1, 4]})
    no7.to_parquet(str(tmp_path / "no7.parquet"))
    assert [src.labels[t] for t in open_source(tmp_path / "no7.parquet", label_names="rafdb").targets] == [
        "surprise",
        "happy",
    ]
    bad = datasets.Dataset.from_dict({"image": images[:2], "label": [0, 9]})
    bad.to_parquet(str(tmp_path / "bad.parquet"))
    with pytest.raises(DataSourceError, match=r"holds ids 0\.\.9, outside the 7 class names"):
        open_source(tmp_path / "bad.parquet", label_names="fer2013")


def test_hf_string_labels_take_their_classes_from_every_split(tmp_path: Path) -> None:
    """A validation split lacking a class got its own, shorter label list (training refused it as different);
    class folders already give every split one list."""
    import datasets

    images = [_img(v) for v in (10, 20, 30, 40, 50)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"image": images[:3], "label": ["happy", "sad", "disgust"]}, features=features
            ),
            "validation": datasets.Dataset.from_dict(
                {"image": images[3:], "label": ["happy", "sad"]}, features=features
            ),
        }
    ).save_to_disk(str(tmp_path / "saved"))
    train, val = open_source(tmp_path / "saved", "train"), open_source(tmp_path / "saved", "val")
    assert train.labels == val.labels == ("disgust", "happy", "sad")
    assert [val.labels[t] for t in val.targets] == ["happy", "sad"]


def test_hf_other_splits_labels_of_any_kind_never_break_the_split_read(tmp_path: Path) -> None:
    """Reading every split's labels (for one label list and one id base) broke a labelled split when another
    split's labels were all missing or of another type; an integer column with a missing value (stored as
    floats) is ids, its missing rows left out; an empty split of string labels opens."""
    import datasets

    images = [_img(v) for v in (10, 20, 30, 40)]
    classes = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["happy", "sad"])}
    )
    hidden = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    words = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"image": images[:2], "label": [0, 1]}, features=classes),
            "test": datasets.Dataset.from_dict({"image": images[2:], "label": [None, None]}, features=hidden),
            "validation": datasets.Dataset.from_dict(
                {"image": images[2:], "label": ["a", "b"]}, features=words
            ),
        }
    ).save_to_disk(str(tmp_path / "mixed"))
    assert open_source(tmp_path / "mixed", "train").labels == ("happy", "sad")
    floats = datasets.Features({"image": datasets.Image(), "label": datasets.Value("float64")})
    ds = datasets.Dataset.from_dict({"image": images[:3], "label": [3.0, None, 6.0]}, features=floats)
    ds.to_parquet(str(tmp_path / "floats.parquet"))
    src = open_source(tmp_path / "floats.parquet", label_names="fer2013")
    assert [src.labels[t] for t in src.targets] == ["happy", "neutral"] and len(src.notes) == 1
    from ferhub.data.hf import HFSource

    train = datasets.Dataset.from_dict({"image": images[:2], "label": ["happy", "sad"]}, features=words)
    empty = HFSource(train.select([]), "words", "test", siblings=[train])  # (datasets cannot load it saved)
    assert len(empty) == 0 and empty.labels == ("happy", "sad")


def _parquet(path: Path, labels: list[str], extra: dict | None = None) -> Path:
    """A parquet file of small images with string labels (and ``extra`` columns)."""
    import datasets

    features = {"image": datasets.Image(), "label": datasets.Value("string")}
    features.update({k: datasets.Value("string") for k in extra or {}})
    rows = {"image": [_img(20 * i) for i in range(len(labels))], "label": labels, **(extra or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows, features=datasets.Features(features)).to_parquet(str(path))
    return path


def test_a_parquet_folder_is_named_by_the_folder_not_the_path_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of parquet splits (data/*.parquet, the Hub layout) kept the path as typed as its name: two
    keys for one dataset, and an absolute path in the card and the predictions file's name."""
    for split in ("train", "test"):
        _parquet(tmp_path / "pq" / "data" / f"{split}-00000-of-00001.parquet", ["happy", "sad", "happy"])
    monkeypatch.chdir(tmp_path)
    relative, absolute = open_source("pq", "test"), open_source(str(tmp_path / "pq"), "test")
    assert (relative.name, relative.split) == (absolute.name, absolute.split) == ("pq", "test")
    assert not relative.split_is_label  # the files name their splits


def test_a_folder_named_like_a_split_is_that_split_of_its_parent(tmp_path: Path) -> None:
    """rafdb/test and affectnet/test were both dataset "test", split all: one eval_results key, the later run
    replacing the earlier."""
    for root in ("rafdb/test", "affectnet/Test", "ferplus/validation", "plain"):
        for cls in ("happy", "sad"):
            (tmp_path / root / cls).mkdir(parents=True)
            _img(len(root)).save(tmp_path / root / cls / "a.png")
    named = {root: open_source(tmp_path / root) for root in ("rafdb/test", "affectnet/Test", "plain")}
    assert [(s.name, s.split) for s in named.values()] == [("rafdb", "test"), ("affectnet", "test"),
                                                           ("plain", None)]  # fmt: skip
    validation = open_source(tmp_path / "ferplus" / "validation")
    assert (validation.name, validation.split) == ("ferplus", "val")  # the split's name as ferhub spells it
    # parquet files in a folder named like a split, without split names of their own
    _parquet(tmp_path / "sfew" / "val" / "part-0.parquet", ["happy", "sad"])
    val = open_source(tmp_path / "sfew" / "val")
    assert (val.name, val.split, val.split_is_label) == ("sfew", "val", False)
    test = open_source(tmp_path / "sfew" / "val", "test")  # a split the user names wins
    assert (test.name, test.split, test.split_is_label) == ("sfew", "test", True)


def test_a_file_named_like_a_split_is_that_split_of_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rafdb/test.parquet and affectnet/test.parquet (test.zip, test.csv too) were both dataset "test": one
    eval_results key for two test sets; and ``--data ..`` was a dataset named ".."."""
    for ds in ("rafdb", "affectnet"):
        _parquet(tmp_path / ds / "test.parquet", ["happy", "sad"])
    got = [open_source(tmp_path / ds / "test.parquet") for ds in ("rafdb", "affectnet")]
    assert [(s.name, s.split, s.split_is_label) for s in got] == [("rafdb", "test", False),
                                                                  ("affectnet", "test", False)]  # fmt: skip
    (tmp_path / "sfew").mkdir()
    with zipfile.ZipFile(tmp_path / "sfew" / "Train.zip", "w") as z:
        for cls in ("happy", "sad"):
            _img(3).save(tmp_path / "sfew" / f"{cls}.png")
            z.write(tmp_path / "sfew" / f"{cls}.png", f"{cls}/a.png")
    zipped = open_source(tmp_path / "sfew" / "Train.zip")
    assert (zipped.name, zipped.split) == ("sfew", "train")
    (tmp_path / "lab" / "test" / "happy").mkdir(parents=True)
    (tmp_path / "lab" / "test" / "sad").mkdir()
    for cls in ("happy", "sad"):
        _img(5).save(tmp_path / "lab" / "test" / cls / "a.png")
    monkeypatch.chdir(tmp_path / "lab" / "test" / "happy")
    up = open_source("..")
    assert (up.name, up.split) == ("lab", "test")  # the folder ".." is, not ".."
    # data with splits of its own keeps its own name whatever it is called: a fer/test.csv holding every
    # Usage was recorded as split test (training rows among them)
    rng = np.random.default_rng(0)
    rows = [
        (i % 7, rng.integers(0, 255, (48, 48)), u)
        for i, u in enumerate(["Training"] * 6 + ["PrivateTest"] * 4)
    ]
    (tmp_path / "fer").mkdir()
    whole = open_source(_write_fer_csv(tmp_path / "fer" / "test.csv", rows))
    assert (whole.name, whole.split, len(whole)) == ("test", None, 10)
    private = open_source(tmp_path / "fer" / "test.csv", "test")
    assert (private.name, private.split, len(private)) == ("test", "test", 4)
    (tmp_path / "raf" / "test" / "train" / "happy").mkdir(parents=True)  # a "test" folder of splits
    (tmp_path / "raf" / "test" / "train" / "sad").mkdir()
    for cls in ("happy", "sad"):
        _img(7).save(tmp_path / "raf" / "test" / "train" / cls / "a.png")
    inner = open_source(tmp_path / "raf" / "test")
    assert (inner.name, inner.split) == ("test", None)
    # a zip of a test/ folder holds test/CLASS/...: that one split is the one its name says, no other
    for ds in ("rafdb", "affectnet"):
        with zipfile.ZipFile(tmp_path / ds / "test.zip", "w") as z:
            for cls in ("happy", "sad"):
                z.write(tmp_path / "sfew" / f"{cls}.png", f"test/{cls}/a.png")
    zips = [open_source(tmp_path / ds / "test.zip") for ds in ("rafdb", "affectnet")]
    assert [(z.name, z.split) for z in zips] == [("rafdb", "test"), ("affectnet", "test")]


def test_a_parquet_file_without_splits_is_split_all_or_the_split_named(tmp_path: Path) -> None:
    """datasets calls a file's rows split "train": a test set was recorded as split train, and --split test
    was refused (no 'test' split; it has ['train'])."""
    path = _parquet(tmp_path / "rows.parquet", ["happy", "sad", "sad"])
    whole = open_source(path)
    assert (whole.name, whole.split, whole.split_is_label, len(whole)) == ("rows", None, False, 3)
    named = open_source(path, "test")
    assert (named.split, named.split_is_label, len(named)) == ("test", True, 3)
    assert open_source(path, "my_split").split == "my_split"  # any name, recorded as given
    # a Usage column (FER2013 copies) still selects the rows of a split: a split of the data's own
    usage = _parquet(tmp_path / "fer.parquet", ["happy", "sad", "sad"],
                     {"Usage": ["Training", "PrivateTest", "PrivateTest"]})  # fmt: skip
    private = open_source(usage, "test")
    assert (len(private), private.split, private.split_is_label) == (2, "test", False)


def test_linked_class_folders_are_read_once_each_and_hidden_ones_passed_over(tmp_path: Path) -> None:
    """A class folder that is a link was silently left out (evaluate reported 100% with the class missing;
    all linked: "holds no class folders")."""
    store = tmp_path / "store"
    for cls, n in (("happy", 3), ("neutral", 2)):
        (store / cls).mkdir(parents=True)
        for i in range(n):
            _img(10 * i).save(store / cls / f"{i}.png")
    part, linked = tmp_path / "part", tmp_path / "linked"
    (part / "happy").mkdir(parents=True)
    _img(1).save(part / "happy" / "a.png")
    (part / "neutral").symlink_to(store / "neutral")
    (part / ".Trash-1000" / "sad").mkdir(parents=True)  # hidden: passed over, as ever
    _img(2).save(part / ".Trash-1000" / "sad" / "x.png")
    _img(2).save(part / "happy" / "._a.png")
    src = open_source(part)
    assert src.labels == ("happy", "neutral") and list(src.class_counts()) == [1, 2] and not src.notes
    linked.mkdir()
    for cls in ("happy", "neutral"):
        (linked / cls).symlink_to(store / cls)
    (linked / "happy" / "again").symlink_to(store / "happy")  # a link back up: read once, and said
    src = open_source(linked)
    assert src.labels == ("happy", "neutral") and list(src.class_counts()) == [3, 2]
    # said with the results, and named inside the data (eval_results.json may be shared)
    assert src.notes == (
        "left out 1 link(s) to a folder read already (above it, in the tree, or reached by another link):"
        " happy/again",
    )
