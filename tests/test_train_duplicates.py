"""Exact duplicate images (FER2013 has them, within and across its splits) never sit on both sides of a split
that ferhub makes, and where the data's own splits share pictures the run says so and records how many."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tasks import quick_train_args, transform_task

from ferhub.cli import main as cli_main
from ferhub.data import Crops, stratified_kfold, stratified_split, write_class_folders
from ferhub.training import TrainConfig
from ferhub.training.protocol import make_plan

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pairs(n_pictures: int, num_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Targets and groups of ``n_pictures`` pictures, each there twice (its copy at the end)."""
    targets = np.arange(n_pictures) % num_classes
    return np.concatenate([targets, targets]), np.concatenate([np.arange(n_pictures)] * 2)


def test_splits_keep_each_group_on_one_side_and_stay_the_same_without_groups() -> None:
    targets, groups = _pairs(30)
    for k in (2, 3, 5):
        folds = stratified_kfold(targets, k, seed=1, groups=groups)
        assert sorted(np.concatenate([te for _, te in folds])) == list(range(len(targets)))
        for tr, te in folds:
            assert not set(groups[tr]) & set(groups[te])
            assert len(te) in range(len(targets) // k - 2, len(targets) // k + 3)  # balanced, by pairs
    # without groups some pair is split (what let a copy validate a model trained on it), and groups of
    # one image each deal the folds that no groups deal
    split = [set(groups[tr]) & set(groups[te]) for tr, te in stratified_kfold(targets, 5, seed=1)]
    assert any(split)
    singles = stratified_kfold(targets, 5, seed=1, groups=np.arange(len(targets))[::-1])
    assert all((a == b).all() for (_, a), (_, b) in zip(singles, stratified_kfold(targets, 5, seed=1)))
    tr, te = stratified_split(targets, 0.2, seed=0, groups=groups)
    assert not set(groups[tr]) & set(groups[te]) and 10 <= len(te) <= 14
    assert len(set(tr) | set(te)) == len(targets)


def _crops_with_copies(n_pictures: int, size: int = 12) -> Crops:
    images, targets, labels = transform_task(n_pictures // 3, size=size, num_classes=3, seed=0)
    return Crops(np.concatenate([images, images]), np.concatenate([targets, targets]), labels)


@pytest.mark.parametrize("kfold", [0, 3])
def test_the_plan_puts_an_images_copies_in_its_own_part(kfold: int) -> None:
    """k-fold, the hold-out it reports on and the inner share that selects: no copy of an image trains or
    selects where the image reports (with 10% copies, 14% of the held-out images had one before)."""
    crops = _crops_with_copies(30)
    plan = make_plan(TrainConfig(kfold=kfold, val_fraction=0.3), crops, None, None, {"train": "train"})
    assert plan.duplicates == {"reported": 0, "selected": 0}
    for fold in plan.folds:
        seen = {k for part in (fold.train, fold.select) for k in part.content_keys().tolist()}
        assert not seen & set(fold.report.content_keys().tolist())
        assert not set(fold.train.content_keys().tolist()) & set(fold.select.content_keys().tolist())


def test_copies_across_the_datas_own_splits_are_said_and_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A data set's own test split holding pictures of its training split (FER2013's PrivateTest and
    Training): the run warns before training and records the count in the results and the card."""
    images, targets, labels = transform_task(6, size=24, num_classes=3, seed=0)
    data = tmp_path / "data"
    write_class_folders(images, targets, labels, data / "train")
    test_images, test_targets, _ = transform_task(3, size=24, num_classes=3, seed=1)
    write_class_folders(test_images, test_targets, labels, data / "test")
    copied = sorted((data / "train" / labels[0]).iterdir())[:2]
    for i, f in enumerate(copied):  # the same pictures, under other names, in the test split
        shutil.copy(f, data / "test" / labels[0] / f"copy{i}.png")
    out = tmp_path / "run"
    assert cli_main(["train", *quick_train_args(data, out, "--epochs", "1")]) == 0
    err = capsys.readouterr().err
    assert "warning: 2 images of split test (which reports the results) have a pixel-identical copy" in err
    results = json.loads((out / "model" / "eval_results.json").read_text())
    (entry,) = results["results"].values()
    assert entry["protocol"]["exact_duplicates"] == {"reported": 2, "selected": 0}
    card = (out / "model" / "README.md").read_text()
    assert "2 of the 11 images reported on have a pixel-identical copy (after cropping)" in card


def test_an_image_with_many_copies_leaves_the_other_classes_stratified() -> None:
    """One picture there 60 times (a placeholder image, a blank frame): dealing by fold size alone sent the
    next classes around its fold, which held none of them, and a hold-out took the whole group as a class's
    10% share (68 of 90 images); each class is now spread over the folds and its share kept."""
    targets = np.repeat(np.arange(3), 90)
    groups = np.arange(len(targets))
    groups[:60] = 0  # class 0: one picture 60 times and 30 others
    for _, te in stratified_kfold(targets, 5, seed=0, groups=groups):
        per_class = np.bincount(targets[te], minlength=3)
        assert per_class[1:].tolist() == [18, 18], per_class
    for seed in range(5):  # seed 4 drew the group first
        tr, te = stratified_split(targets, 0.1, seed=seed, groups=groups)
        assert np.bincount(targets[te], minlength=3).tolist() == [9, 9, 9], seed
        assert not set(groups[tr]) & set(groups[te])
