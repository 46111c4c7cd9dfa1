"""``ferhub train`` on data whose validation or test split is there but labels nothing, or holds no row: the
run goes on without that split, saying so in one line, as it did before it said the data's own errors (a
Kaggle-style ``test/`` of loose images, an empty ``val/``, a Hub test split without its label column). A split
of no rows (saved empty; a FER2013 Usage value no row of a one-file parquet has) is no split: never reported
on, nor the epoch chosen on it, with 0 images."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from tasks import quick_train_args as _args
from tasks import transform_task

from ferhub.commands.train import get_args_parser, main
from ferhub.data import DataSourceError, open_source, write_class_folders
from ferhub.data.sources import SplitNotFound, UnlabelledSplit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LABELS = ["angry", "happy", "sad", "neutral"]


def _task() -> tuple[np.ndarray, np.ndarray]:
    images, targets, _ = transform_task(4, size=24, num_classes=4, seed=0)  # real LFW face crops
    return images, targets


class _Checked(Exception):
    """Raised once the run has chosen its splits (before any image is cropped)."""


@pytest.fixture
def chosen(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The run's train, val and test sources, as ``ferhub train`` chose them (``None``: none)."""
    from ferhub.training import run

    picked: dict[str, Any] = {}

    def kept_apart(data: Any) -> None:
        picked.update(train=data.train_src, val=data.val_src, test=data.test_src)
        raise _Checked

    monkeypatch.setattr(run._Data, "_kept_apart", kept_apart)
    return picked


def _train(data: Path | str, tmp_path: Path, *extra: str) -> None:
    with pytest.raises(_Checked):  # past every check of the data
        main(get_args_parser().parse_args(_args(data, tmp_path / "run", *extra)))


def _class_split(root: Path, name: str, part: slice) -> None:
    images, targets = _task()
    write_class_folders(images[part], targets[part], LABELS, root / name)


def _loose_test(root: Path) -> Path:
    """``train/CLASS/*.png`` and a ``test/`` of unlabelled images (Kaggle's layout)."""
    images, _ = _task()
    _class_split(root, "train", slice(0, 12))
    (root / "test").mkdir()
    for i, im in enumerate(images[12:16]):
        Image.fromarray(im).save(root / "test" / f"{i}.png")
    return root


def test_a_test_folder_of_loose_images_is_left_out(
    tmp_path: Path, chosen: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    data = _loose_test(tmp_path / "kaggle")
    _train(data, tmp_path)
    assert chosen["test"] is None and chosen["val"] is None and chosen["train"].split == "train"
    out = capsys.readouterr().out
    assert "test split left out: " in out
    assert "its split folder 'test' holds 4 images but no class folders, so they have no label" in out


def test_a_zip_with_a_test_folder_of_loose_images_is_left_out(
    tmp_path: Path, chosen: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    data = _loose_test(tmp_path / "kaggle")
    archive = tmp_path / "kaggle.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(data.rglob("*.png")):
            z.write(f, f.relative_to(data).as_posix())
    _train(archive, tmp_path)
    assert chosen["test"] is None and len(chosen["train"]) == 12
    assert "test split left out: " in capsys.readouterr().out


@pytest.mark.parametrize("empty", ["test", "val"])
def test_an_empty_split_folder_is_left_out(
    tmp_path: Path, chosen: dict[str, Any], capsys: pytest.CaptureFixture[str], empty: str
) -> None:
    data = tmp_path / "data"
    _class_split(data, "train", slice(0, 12))
    if empty == "val":  # beside a test split that is used
        _class_split(data, "test", slice(12, 16))
    (data / empty).mkdir()
    _train(data, tmp_path)
    assert chosen[empty] is None
    assert (chosen["test"] is not None) == (empty == "val")
    assert f"{empty} split left out: {data}: its split folder {empty!r} holds no image files" in (
        capsys.readouterr().out
    )


def test_an_unlabelled_split_folder_named_or_for_training_is_refused_as_such(tmp_path: Path) -> None:
    """A split the run needs is refused in its own words, not as "no class folders" of data that has them."""
    data = _loose_test(tmp_path / "kaggle")
    with pytest.raises(UnlabelledSplit, match="split folder 'test' holds 4 images but no class folders"):
        main(get_args_parser().parse_args(_args(data, tmp_path / "run", "--test-split", "test")))
    swapped = tmp_path / "swapped"
    _class_split(swapped, "test", slice(12, 16))
    (swapped / "train").mkdir()
    with pytest.raises(UnlabelledSplit, match="its split folder 'train' holds no image files"):
        main(get_args_parser().parse_args(_args(swapped, tmp_path / "run2")))


def _saved(path: Path, *, empty_test: bool = False) -> Any:
    """A ``{train, test}`` DatasetDict saved at ``path``: its test split without the label column, or of no
    rows."""
    import datasets

    images, targets = _task()
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=LABELS)})
    ds = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(im) for im in images], "label": targets.tolist()}, features=features
    )
    test = ds.select(range(12, 16))
    test = test.select([]) if empty_test else test.remove_columns("label")
    dd = datasets.DatasetDict({"train": ds.select(range(12)), "test": test})
    dd.save_to_disk(str(path))
    return dd


def test_a_saved_test_split_without_its_label_column_is_left_out(
    tmp_path: Path, chosen: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _saved(tmp_path / "hf")
    with pytest.raises(UnlabelledSplit, match="this split has no label column"):
        open_source(tmp_path / "hf", "test")
    _train(tmp_path / "hf", tmp_path)
    assert chosen["test"] is None and len(chosen["train"]) == 12
    assert "test split left out: hf: this split has no label column (its columns are ['image'])" in (
        capsys.readouterr().out
    )


def test_a_hub_test_split_without_its_label_column_is_left_out(
    tmp_path: Path,
    chosen: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ferhub.data import hf

    dd = _saved(tmp_path / "hf")
    monkeypatch.setattr(hf, "_load_hub_dataset", lambda *_a, **_k: dd)  # the Hub's load, without the network
    _train("org/faces", tmp_path)
    assert chosen["test"] is None and chosen["train"].name == "org/faces"
    assert "test split left out: org/faces: this split has no label column" in capsys.readouterr().out


def test_a_saved_split_of_no_rows_is_left_out_or_refused(
    tmp_path: Path, chosen: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _saved(tmp_path / "hf", empty_test=True)
    _train(tmp_path / "hf", tmp_path)
    assert chosen["test"] is None  # not a result on 0 images
    assert (
        f"test split left out: {tmp_path / 'hf'}: its split 'test' has no images" in capsys.readouterr().out
    )
    with pytest.raises(
        DataSourceError, match=r"its split 'test' has no images; name a split .*\(--test-split\)"
    ):
        main(get_args_parser().parse_args(_args(tmp_path / "hf", tmp_path / "run2", "--test-split", "test")))


def test_a_train_split_of_no_rows_is_refused_as_such(tmp_path: Path) -> None:
    import datasets

    dd = _saved(tmp_path / "hf")
    datasets.DatasetDict({"train": dd["train"].select([]), "test": dd["train"]}).save_to_disk(
        str(tmp_path / "e")
    )
    with pytest.raises(DataSourceError, match=r"its split 'train' has no images; name a split .*\(--split\)"):
        main(get_args_parser().parse_args(_args(tmp_path / "e", tmp_path / "run")))


def test_a_usage_value_no_row_of_a_parquet_file_has_is_no_split(
    tmp_path: Path, chosen: dict[str, Any]
) -> None:
    """As a fer2013.csv of Training rows only: no validation or test split (the run holds out its own), not
    two splits of 0 images that choose the epoch and report."""
    import datasets

    images, targets = _task()
    rows = {
        "image": [Image.fromarray(im) for im in images],
        "label": targets.tolist(),
        "Usage": ["Training"] * 16,
    }
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=LABELS),
            "Usage": datasets.Value("string"),
        }
    )
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / "fer.parquet"))
    with pytest.raises(
        SplitNotFound, match=r"no rows for split 'test' \(Usage 'PrivateTest'\); it has \['Training'\]"
    ):
        open_source(tmp_path / "fer.parquet", "test")
    _train(tmp_path / "fer.parquet", tmp_path)
    assert chosen["val"] is None and chosen["test"] is None and len(chosen["train"]) == 16
