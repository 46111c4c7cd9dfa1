"""Data whose folder or file name is not UTF-8 (a Latin-1 ``donn\\xe9es`` from an old zip; any non-ASCII
name under a C locale with Python's UTF-8 mode off), which Python holds as lone surrogates: the dataset's
name, its images' paths and the recorded command reach ``eval_results.json`` and the card as ``\\xNN``
escapes, as README promises for every output. Unescaped, the write failed ("surrogates not allowed"):
``ferhub evaluate`` wrote no result, and ``ferhub train`` failed after the whole run, leaving no model."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from tasks import transform_task

from ferhub.cli import main as cli_main
from ferhub.data import DataSourceError, open_source, write_class_folders
from ferhub.errors import ImageDecodeError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAME = os.fsdecode(b"donn\xe9es")  # 'donn\udce9es'
SHOWN = "donn\\xe9es"  # how every output writes it
LABELS = ["angry", "happy", "sad", "neutral"]


def _split_folders(root: Path) -> Path:
    """train/ and test/ class folders of real LFW face crops (24 px) under ``root``."""
    images, targets, _ = transform_task(4, size=24, num_classes=4, seed=0)
    try:
        root.mkdir(parents=True)
    except (OSError, UnicodeEncodeError):  # a file system that holds UTF-8 names only (macOS)
        pytest.skip("this file system refuses names that are not UTF-8")
    for name, part in {"train": slice(0, 12), "test": slice(12, 16)}.items():
        write_class_folders(images[part], targets[part], LABELS, root / name)
    return root


@pytest.fixture
def latin1(tmp_path: Path) -> Path:
    return _split_folders(tmp_path / NAME)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from ferhub.hub import save
    from ferhub.models import create_model

    torch.manual_seed(0)
    return save(create_model("test_tiny"), tmp_path_factory.mktemp("models") / "tiny")


def test_the_name_and_paths_of_such_data_are_escaped_where_they_are_made(latin1: Path) -> None:
    src = open_source(latin1, "test", precropped=True)
    assert (src.name, src.split) == (SHOWN, "test")
    assert src.path_of(0).startswith(f"{latin1.parent}/{SHOWN}/test/")
    # a split folder takes its parent's name: escaped too
    assert open_source(latin1 / "test", precropped=True).name == SHOWN
    # an image that cannot be decoded is recorded with why: its path escaped there too
    bad = latin1 / "test" / "happy" / os.fsdecode(b"cass\xe9.png")
    bad.write_bytes(b"not a png")
    src = open_source(latin1, "test", precropped=True)
    i = next(i for i in range(len(src)) if src.path_of(i).endswith("cass\\xe9.png"))
    with pytest.raises(ImageDecodeError) as raised:
        src.image(i)
    assert str(raised.value).startswith(src.path_of(i) + ": ")
    str(raised.value).encode("utf-8")


def test_a_zip_and_a_csv_of_such_names_are_escaped(tmp_path: Path) -> None:
    folder = _split_folders(tmp_path / "plain")
    archive = tmp_path / os.fsdecode(b"archiv\xe9.zip")
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(folder.rglob("*.png")):
            zf.write(p, p.relative_to(folder).as_posix())
    src = open_source(archive, "test", precropped=True)
    assert src.name == "archiv\\xe9" and src.path_of(0).startswith(f"{tmp_path}/archiv\\xe9.zip::test/")
    csv = tmp_path / os.fsdecode(b"fer\xe9.csv")
    csv.write_text(
        "emotion,pixels,Usage\n" + f"3,{' '.join(['0'] * 48 * 48)},PrivateTest\n", encoding="utf-8"
    )
    src = open_source(csv, "test")
    assert src.name == "fer\\xe9" and src.path_of(0) == f"{tmp_path}/fer\\xe9.csv:2"


def test_a_saved_dataset_at_such_a_path_is_refused_in_one_line(tmp_path: Path) -> None:
    """pyarrow opens files by UTF-8 paths only: "'utf-8' codec can't encode character" was all it said."""
    folder = tmp_path / NAME
    try:
        folder.mkdir()
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    (folder / "dataset_dict.json").write_text('{"splits": ["test"]}', encoding="utf-8")
    with pytest.raises(DataSourceError, match=re.escape(f"{SHOWN}: its path has bytes that are not UTF-8")):
        open_source(folder, "test")


def test_parquet_files_at_such_a_path_are_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a saved dataset is refused there: the datasets library reads parquet files at such a path, as a
    path given whole or relative to such a working folder."""
    import datasets
    from PIL import Image

    images, targets, _ = transform_task(4, size=24, num_classes=4, seed=0)
    ds = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(im) for im in images], "label": targets.tolist()},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=LABELS)}),
    )
    made = tmp_path / "made"
    (made / "split").mkdir(parents=True)
    ds.to_parquet(str(made / "faces.parquet"))
    ds.select(range(12)).to_parquet(str(made / "split" / "train-00000-of-00001.parquet"))
    ds.select(range(12, 16)).to_parquet(str(made / "split" / "test-00000-of-00001.parquet"))
    folder = tmp_path / NAME
    try:
        made.rename(folder)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    src = open_source(folder / "faces.parquet")
    assert (src.name, len(src), src.image(0).size) == ("faces", 16, (24, 24))
    monkeypatch.chdir(folder)
    src = open_source("split", "test")
    assert (src.name, src.split, len(src), src.image(0).size) == ("split", "test", 4, (24, 24))


@pytest.mark.slow
def test_evaluate_and_compare_write_their_results(
    latin1: Path, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Path(shutil.copytree(tiny_model, tmp_path / "model"))
    argv = ["--model", str(model), "--data", str(latin1), "--split", "test", "--precropped"]
    monkeypatch.setattr(sys, "argv", ["ferhub", "evaluate", *argv, "--out", str(tmp_path / "e")])
    assert cli_main(["evaluate", *argv, "--out", str(tmp_path / "e")]) == 0
    results = json.loads((model / "eval_results.json").read_text(encoding="utf-8"))["results"]
    entry = results[f"{SHOWN}:default:test"]
    assert entry["dataset"]["id"] == SHOWN and f"{tmp_path}/{SHOWN}" in entry["command"]
    assert SHOWN in (model / "README.md").read_text(encoding="utf-8")
    out = tmp_path / "cmp.html"
    compare = [str(model), str(tiny_model), "--data", str(latin1), "--split", "test", "--precropped"]
    assert cli_main(["compare", *compare, "--json", str(tmp_path / "c.json"), "--out", str(out)]) == 0
    assert SHOWN in out.read_text(encoding="utf-8")


@pytest.mark.slow
def test_train_writes_its_model(latin1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run trained, then failed writing eval_results.json: checkpoints/ and log.jsonl, no model/."""
    out = tmp_path / "run"
    argv = ["--recipe", "seed002_kaskun", "--data", str(latin1), "--tiny", "--epochs", "1", "--precropped",
            "--output-dir", str(out), "--no-progress", "--batch-size", "8"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["ferhub", "train", *argv])
    assert cli_main(["train", *argv]) == 0
    results = json.loads((out / "model" / "eval_results.json").read_text(encoding="utf-8"))
    (key,) = results["results"]
    assert key == f"{SHOWN}:default:test" and f"{tmp_path}/{SHOWN}" in results["results"][key]["command"]
    assert [d["id"] for d in results["training"]["seen_data"]] == [SHOWN]
    card = json.loads((out / "model" / "card.json").read_text(encoding="utf-8"))
    assert f"`{tmp_path}/{SHOWN}`" in card["recipe"] and SHOWN in card["training_command"]


def test_train_refuses_an_output_folder_of_such_a_name_before_any_data_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """safetensors cannot open a file by such a path: the run trained, then failed reading its best
    checkpoint back, and no model was written."""
    out = tmp_path / NAME
    argv = ["--recipe", "seed002_kaskun", "--data", str(tmp_path / "x"), "--tiny", "--output-dir", str(out)]
    assert cli_main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert f"--output-dir {tmp_path}/{SHOWN}: its name has bytes that are not UTF-8" in err
    assert not out.exists()


def test_weights_counted_in_a_folder_whose_name_is_not_utf8(tmp_path) -> None:
    """safetensors' safe_open refuses a path that is not UTF-8: the card's weight count, read for every
    `evaluate --out`, ended the command in an internal error there."""
    import os

    from ferhub.hub import _weights
    from ferhub.models import create_model

    folder = tmp_path / os.fsdecode(b"mod\xe8le")
    folder.mkdir()
    model = create_model("test_tiny", ("angry", "happy"))
    _weights.write_weights(model, tmp_path / "w.safetensors")
    (tmp_path / "w.safetensors").rename(folder / "model.safetensors")
    assert _weights.num_weights(folder / "model.safetensors") == sum(
        p.numel() for p in model.state_dict().values()
    )
    (folder / "bad.safetensors").write_bytes(b"\x05" + bytes(7) + b"nope!")
    assert _weights.num_weights(folder / "bad.safetensors") is None
    deep = b"[" * 100_000 + b"]" * 100_000  # valid JSON nested past the recursion limit
    (folder / "deep.safetensors").write_bytes(len(deep).to_bytes(8, "little") + deep)
    assert _weights.num_weights(folder / "deep.safetensors") is None
