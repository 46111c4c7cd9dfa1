"""Hugging Face datasets read row by row: a row without an image, a pixel bomb or a corrupt row is skipped,
counted and named ``dataset[split][row]``; an empty split never blocks another; a dataset's configuration is
chosen with ``--data-config``; image bytes in a plain binary column are images, and file paths in a string
column are refused with what to do.

Data: real face crops from scikit-image's LFW subset. A Hub dataset is made offline as one online
``load_dataset("org/name")`` leaves it in the datasets cache (parquet prepared to arrow under
``org___name/CONFIG/0.0.0/HASH``), so ``--data org/name`` loads it the way a user's does.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from ferhub import hub
from ferhub.cli import main
from ferhub.config import ModelConfig
from ferhub.data import DataSourceError, materialize, open_source
from ferhub.errors import ImageDecodeError
from ferhub.labels import FER7
from ferhub.models import create_model

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A datasets cache of this test's own, offline; face detections cached beside it."""
    cache = tmp_path / "hf_datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path / "ferhub_cache"))
    return cache


def fake_hub(cache: Path, repo: str, splits: dict[str, Any], config: str = "default") -> None:
    """``repo`` (``org/name``) in the datasets cache as one online ``load_dataset(repo[, config])`` leaves it:
    its parquet files prepared to arrow by datasets' own Parquet builder."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    org, name = repo.split("/")
    work = cache.parent / "hub_work" / name / config
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    files = {}
    for split, ds in splits.items():
        ds.to_parquet(str(work / f"{split}.parquet"))
        files[split] = [str(work / f"{split}.parquet")]
    commit = hashlib.sha1(repo.encode()).hexdigest()
    features = next(iter(splits.values())).features
    builder = Parquet(
        cache_dir=str(work / "prep"), dataset_name=name, data_files=files, hash=commit, features=features
    )
    builder.download_and_prepare()
    dest = cache / f"{org}___{name}" / config / "0.0.0" / commit
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(builder.cache_dir, dest)
    info = dest / "dataset_info.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "config_name": config}))


@pytest.fixture(scope="module")
def faces() -> list[Image.Image]:
    """28 LFW face crops (25x25 gray as RGB)."""
    import skimage.data

    lfw = skimage.data.lfw_subset()
    return [Image.fromarray((lfw[i] * 255).astype(np.uint8)).convert("RGB") for i in range(28)]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` gray pixels, with a few bytes of image data: what a
    decompression bomb shows before it is inflated."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x80" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _rows(images: list[Any], labels: list[int]) -> Any:
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(FER7))})
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    return hub.save(create_model("test_tiny", labels=FER7).eval(), tmp_path_factory.mktemp("repos") / "tiny")


def _evaluate(tiny: Path, out: Path, *data: str) -> int:
    """``ferhub evaluate`` of ``tiny`` on ``data`` (face crops: no detection)."""
    argv = ["evaluate", "--model", str(tiny), "--data", *data, "--precropped", "--no-report"]
    return main([*argv, "--bootstrap", "10", "--out", str(out)])


def _entry(model: Path, key: str) -> dict[str, Any]:
    """The result ``key`` of ``model``, a local folder: evaluate updates it in place."""
    return json.loads((model / "eval_results.json").read_text())["results"][key]


# ------------------------------------------------------------------------------------ rows that are no image
def test_bad_rows_are_skipped_counted_and_named_and_the_others_evaluated(
    hub_cache: Path, faces: list[Image.Image], tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Row 2 holds no image, row 5 a header claiming 400 MP (over Pillow's own bomb limit: datasets' decoding
    raised DecompressionBombError, 'a bug in ferhub'), row 7 one of 64 MP (datasets decoded it whole before
    ferhub's 50 MP check), rows 9 and 11 are corrupt: each is skipped and counted, named by its row; the
    other 23 rows are evaluated."""
    images: list[Any] = [{"bytes": _png(im), "path": None} for im in faces]
    images[2] = None
    images[5] = {"bytes": _png_header(20000, 20000), "path": None}
    images[7] = {"bytes": _png_header(8000, 8000), "path": None}
    images[9] = {"bytes": b"not an image at all", "path": None}
    images[11] = {"bytes": _png(faces[11])[:60], "path": None}
    fake_hub(hub_cache, "org/bad-rows", {"test": _rows(images, [i % 7 for i in range(28)])})
    assert _evaluate(tiny, tmp_path / "out", "org/bad-rows", "--split", "test") == 0
    entry = _entry(tiny, "org/bad-rows:default:test")
    assert entry["num_images"] == 23 and entry["unreadable"]["count"] == 5
    examples = {e["path"]: e["error"] for e in entry["unreadable"]["examples"]}
    assert sorted(examples) == [f"org/bad-rows[test][{i}]" for i in (11, 2, 5, 7, 9)]
    assert all(error.startswith(f"{path}: ") for path, error in examples.items())
    assert "no image" in examples["org/bad-rows[test][2]"]
    assert "over the limit of 50.0 MP" in examples["org/bad-rows[test][5]"]
    assert "64.0 MP, over the limit of 50.0 MP" in examples["org/bad-rows[test][7]"]  # from the header
    assert "BytesIO" not in json.dumps(entry["unreadable"])
    assert "unreadable: 5 images" in capsys.readouterr().err


def test_the_same_rows_saved_to_disk_or_as_parquet_are_skipped_alike(
    faces: list[Image.Image], tmp_path: Path
) -> None:
    images: list[Any] = list(faces[:6])
    images[1] = None
    images[4] = {"bytes": _png_header(20000, 20000), "path": None}
    labels = [i % 7 for i in range(6)]
    datasets.DatasetDict({"test": _rows(images, labels)}).save_to_disk(str(tmp_path / "saved"))
    _rows(images, labels).to_parquet(str(tmp_path / "rows.parquet"))
    config = ModelConfig(architecture="test_tiny", labels=FER7, input_size=48, channels=1)
    for data, where in (
        (tmp_path / "saved", f"{tmp_path / 'saved'}[test]"),
        (tmp_path / "rows.parquet", None),
    ):
        src = open_source(data, "test")
        where = where or str(tmp_path / "rows.parquet")
        crops = materialize(src, config, precropped=True)
        assert len(crops) == 4 and sorted(crops.unreadable) == [1, 4]
        assert src.path_of(4) == f"{where}[4]" and crops.unreadable[4].startswith(f"{where}[4]: ")


def test_rows_left_out_keep_their_own_row_numbers(faces: list[Image.Image], tmp_path: Path) -> None:
    """Rows without a label are left out, and a FER2013 copy's Usage picks rows: a row is still named by
    its place in the split datasets holds it in."""
    images: list[Any] = list(faces[:6])
    images[4] = None
    datasets.DatasetDict({"test": _rows(images, [0, -1, 1, -1, 2, 3])}).save_to_disk(str(tmp_path / "saved"))
    src = open_source(tmp_path / "saved", "test")
    assert len(src) == 4 and [src.path_of(i).rsplit("[", 1)[1] for i in range(4)] == ["0]", "2]", "4]", "5]"]
    with pytest.raises(ImageDecodeError, match=r"saved\[test\]\[4\]: no image"):
        src.image(2)
    usage = _rows(faces[:4], [0, 1, 2, 3]).add_column(
        "Usage", ["Training", "PrivateTest", "Training", "PrivateTest"]
    )
    datasets.DatasetDict({"train": usage}).save_to_disk(str(tmp_path / "fer"))
    test = open_source(tmp_path / "fer", "test")
    assert len(test) == 2 and test.path_of(1) == f"{tmp_path / 'fer'}[train][3]"
    assert np.array_equal(np.asarray(test.image(1)), np.asarray(faces[3]))


# ---------------------------------------------------------------------------------------------- empty splits
def test_an_empty_split_never_blocks_another(
    hub_cache: Path, faces: list[Image.Image], tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``datasets`` refuses a whole dataset one of whose splits is empty ('Instruction "test" corresponds to
    no data!'; an IndexError from a save_to_disk folder, exit 4): the train split is read, and the empty one
    is ferhub's own 'no images to evaluate', naming the dataset."""
    dd = datasets.DatasetDict({"train": _rows(faces[:7], list(range(7))), "test": _rows([], [])})
    fake_hub(hub_cache, "org/empty-test", dict(dd))
    dd.save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "pq" / "data").mkdir(parents=True)
    for split, ds in dd.items():
        ds.to_parquet(str(tmp_path / "pq" / "data" / f"{split}-00000-of-00001.parquet"))
    for data in ("org/empty-test", str(tmp_path / "saved"), str(tmp_path / "pq")):
        train = open_source(data, "train")
        assert len(train) == 7 and np.array_equal(np.asarray(train.image(3)), np.asarray(faces[3]))
        assert len(open_source(data, "test")) == 0
    assert _evaluate(tiny, tmp_path / "out", "org/empty-test", "--split", "train") == 0
    assert _entry(tiny, "org/empty-test:default:train")["num_images"] == 7
    capsys.readouterr()
    assert _evaluate(tiny, tmp_path / "out", "org/empty-test", "--split", "test") == 1
    assert "ferhub evaluate: org/empty-test: no images to evaluate (split 'test')" in capsys.readouterr().err
    assert _evaluate(tiny, tmp_path / "out", str(tmp_path / "saved"), "--split", "test") == 1
    assert "saved: no images to evaluate (split 'test')" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- configurations
def test_a_configuration_is_chosen_loaded_and_recorded(
    hub_cache: Path, faces: list[Image.Image], tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    fake_hub(hub_cache, "org/multi", {"test": _rows(faces[:3], [3, 3, 3])}, config="aligned")
    fake_hub(hub_cache, "org/multi", {"test": _rows(faces[3:8], [4] * 5)}, config="raw")
    with pytest.raises(
        DataSourceError, match=r"org/multi has several configurations \(aligned, raw\); choose"
    ):
        open_source("org/multi", "test")
    raw = open_source("org/multi", "test", dataset_config="raw")
    assert (
        len(raw) == 5 and raw.labels[raw.targets[0]] == "sad" and raw.path_of(0) == "org/multi:raw[test][0]"
    )
    with pytest.raises(DataSourceError, match=r"org/multi has no configuration 'nope'.*aligned"):
        open_source("org/multi", "test", dataset_config="nope")
    assert _evaluate(tiny, tmp_path / "out", "org/multi", "--split", "test") == 1
    assert "choose one with --data-config NAME" in capsys.readouterr().err
    assert _evaluate(tiny, tmp_path / "out", "org/multi", "--split", "test", "--data-config", "aligned") == 0
    # compare was told to use --data-config, which it did not take
    twin = shutil.copytree(tiny, tmp_path / "twin")  # a second model: compare refuses one named twice
    compare = ["compare", str(tiny), str(twin), "--data", "org/multi", "--split", "test", "--precropped"]
    assert main([*compare, "--data-config", "raw"]) == 0, capsys.readouterr().err
    assert "5 images" in capsys.readouterr().out
    entry = _entry(tiny, "org/multi:aligned:test")
    assert entry["num_images"] == 3 and entry["dataset"]["config"] == "aligned"
    # the option picks a Hugging Face dataset's configuration: other data refuses it rather than ignore it
    folder = tmp_path / "folder" / "happy"
    folder.mkdir(parents=True)
    faces[0].save(folder / "a.png")
    with pytest.raises(DataSourceError, match=r"dataset_config= \(--data-config\) picks the configuration"):
        open_source(folder.parent, dataset_config="raw")
    # the library's dataset_config loads that configuration (it named the key of the default one's results)
    from ferhub import evaluation

    (run,) = evaluation.evaluate(
        str(tiny), "org/multi", split="test", dataset_config="raw", precropped=True, n_resamples=10
    )
    assert run.key == "org/multi:raw:test" and run.entry["num_images"] == 5
    with pytest.raises(evaluation.EvaluationError, match="the source given is configuration 'raw', not 'x'"):
        evaluation.evaluate(str(tiny), raw, dataset_config="x", precropped=True, n_resamples=10)


def test_train_loads_the_configuration_named(
    hub_cache: Path, faces: list[Image.Image], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``train --data-config`` reaches the data as ``evaluate``'s does (refused here before any training)."""
    fake_hub(hub_cache, "org/multi", {"train": _rows(faces[:3], [3, 4, 3])}, config="aligned")
    fake_hub(hub_cache, "org/multi", {"train": _rows(faces[3:6], [4, 3, 4])}, config="raw")
    argv = ["train", "--recipe", "seed002_kaskun", "--data", "org/multi", "--precropped", "--no-progress"]
    argv += ["--set", "model=test_tiny", "--output-dir", str(tmp_path / "run")]
    assert main(argv) == 1
    assert "org/multi has several configurations (aligned, raw); choose one with --data-config" in (
        capsys.readouterr().err
    )
    assert main([*argv, "--data-config", "nope"]) == 1
    assert "org/multi has no configuration 'nope'" in capsys.readouterr().err
    # trained on the configuration named, and its results keyed by it, as evaluate keys them
    splits = {"train": _rows(faces[3:15], [3, 4] * 6), "test": _rows(faces[15:21], [3, 4] * 3)}
    fake_hub(hub_cache, "org/two", {"train": _rows(faces[:3], [3, 4, 3])}, config="aligned")
    fake_hub(hub_cache, "org/two", splits, config="raw")
    argv[argv.index("org/multi")] = "org/two"
    argv += ["--tiny", "--epochs", "1", "--test-split", "test", "--data-config", "raw"]
    assert main(argv) == 0, capsys.readouterr().err
    keys = set(json.loads((tmp_path / "run" / "model" / "eval_results.json").read_text())["results"])
    assert "org/two:raw:test" in keys, keys


# ---------------------------------------------------------------------------------------------- image columns
def test_image_bytes_in_a_binary_column_are_images(faces: list[Image.Image], tmp_path: Path) -> None:
    features = datasets.Features({"image": datasets.Value("binary"), "label": datasets.Value("string")})
    ds = datasets.Dataset.from_dict(
        {"image": [_png(im) for im in faces[:3]] + [b""], "label": ["happy", "sad", "fear", "sad"]},
        features=features,
    )
    ds.to_parquet(str(tmp_path / "bytes.parquet"))
    src = open_source(tmp_path / "bytes.parquet")
    assert len(src) == 4 and not src.precropped
    assert np.array_equal(np.asarray(src.image(1)), np.asarray(faces[1]))
    with pytest.raises(ImageDecodeError, match=r"bytes\.parquet\[3\]: no image"):
        src.image(3)


def test_file_paths_in_a_string_column_are_refused_with_what_to_do(
    faces: list[Image.Image], tmp_path: Path
) -> None:
    paths = []
    for i, im in enumerate(faces[:2]):
        im.save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    datasets.Dataset.from_dict({"image": paths, "label": ["happy", "sad"]}).to_parquet(
        str(tmp_path / "p.parquet")
    )
    with pytest.raises(
        DataSourceError, match=r"column 'image' holds text such as '/.*', not images or FER2013 pixel strings"
    ) as e:
        open_source(tmp_path / "p.parquet")
    assert "imagefolder" in str(e.value) and "--image-column" in str(e.value)
    # FER2013 pixel strings in a string column are still images
    pixels = [" ".join(map(str, np.asarray(im.convert("L").resize((48, 48))).ravel())) for im in faces[:2]]
    datasets.Dataset.from_dict({"pixels": pixels, "emotion": [3, 4]}).to_parquet(str(tmp_path / "f.parquet"))
    fer = open_source(tmp_path / "f.parquet", label_names="fer2013")
    assert fer.precropped and fer.image(1).size == (48, 48)


# ---------------------------------------------------------------------------------------------- label tables
def test_an_unknown_label_table_is_a_data_error_listing_the_known_ones(
    faces: list[Image.Image], tmp_path: Path
) -> None:
    ds = datasets.Dataset.from_dict({"image": faces[:2], "label": [1, 4]})
    datasets.DatasetDict({"test": ds}).save_to_disk(str(tmp_path / "ints"))
    with pytest.raises(DataSourceError, match=r"--label-names.*'raf-db2'; known: fer2013, ferplus, rafdb"):
        open_source(tmp_path / "ints", "test", label_names="raf-db2")
    assert open_source(tmp_path / "ints", "test", label_names="RAF-DB").labels[0] == "angry"


def test_a_hub_rows_file_is_read_only_from_the_datasets_own_downloads(
    hub_cache: Path, faces: list[Image.Image], tmp_path: Path
) -> None:
    """A row holding a file name and no bytes: a Hub dataset of image files (the imagefolder layout) names
    the files datasets downloaded into its cache, which are read; a file anywhere else on this machine is not
    (a dataset made by someone else could have it read any image file here). Data of this machine (a parquet
    file, a save_to_disk folder) keeps reading its rows' files wherever they are."""
    secret = tmp_path / "server" / "secret.png"
    secret.parent.mkdir()
    faces[0].save(secret)
    downloaded = hub_cache / "downloads" / "extracted" / "abc" / "happy" / "1.png"
    downloaded.parent.mkdir(parents=True)
    faces[1].save(downloaded)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(FER7))})
    paths = [
        {"bytes": None, "path": str(p)}
        for p in (
            secret,
            downloaded,
            downloaded.parent / ".." / ".." / ".." / ".." / ".." / "server" / "secret.png",
        )
    ]
    rows = {"image": [*paths, faces[2]], "label": [3, 3, 3, 4]}
    ds = datasets.Dataset.from_dict(rows, features=features)
    fake_hub(hub_cache, "org/paths", {"test": ds})
    remote = open_source("org/paths", "test", precropped=True)
    for row in (0, 2):  # ../ cannot climb out of the cache either
        with pytest.raises(
            ImageDecodeError, match=rf"org/paths\[test\]\[{row}\]: no image bytes, and the file"
        ):
            remote.image(row)
    assert np.array_equal(np.asarray(remote.image(1)), np.asarray(faces[1]))
    assert np.array_equal(np.asarray(remote.image(3)), np.asarray(faces[2]))
    ds.to_parquet(str(tmp_path / "mine.parquet"))
    mine = open_source(tmp_path / "mine.parquet", precropped=True)
    assert np.array_equal(np.asarray(mine.image(0)), np.asarray(faces[0]))
