"""``ferhub train`` refuses what it cannot use before anything loads: a ``--set`` value of the wrong type or
out of range (exit 2), a ``--push-to-hub`` target it cannot reach (exit 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ferhub import hub
from ferhub.cli import main as cli_main
from ferhub.training import (
    RecipeError,
    RunOptions,
    TrainConfig,
    apply_overrides,
    build_model,
    load_recipe,
    train,
)


def _train(tmp_path: Path, *extra: str) -> list[str]:
    # the data does not exist: a check that ran after loading it would fail on the data instead
    return ["train", "--recipe", "seed002_kaskun", "--data", str(tmp_path / "no-such-data"), "--tiny",
            "--output-dir", str(tmp_path / "run"), "--no-progress", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("lr=abc", "--set lr: must be a number, got 'abc'"),
        ("lr=NaN", "--set lr: must be a finite number, got nan"),
        ("epochs=abc", "--set epochs: must be an integer, got 'abc'"),
        ("epochs=1.5", "--set epochs: must be an integer, got 1.5"),
        ("seed=abc", "--set seed: must be an integer, got 'abc'"),
        ("seed=-1", "--set seed: must be >= 0, got -1"),
        ("mixup=abc", "--set mixup: must be a number, got 'abc'"),
        ("nesterov=yes", "--set nesterov: must be true or false, got 'yes'"),
        ("kernel_l2_layers=[1]", "--set kernel_l2_layers: must be a list of strings, got [1]"),
        ("augment=3", '--set augment: must be an object (e.g. {"key": 1}), got 3'),
        ("augment.hflip=yes", "--set augment.hflip: must be a number, got 'yes'"),
        ("augment.hflip=1.5", "--set augment.hflip: must be from 0 to 1, got 1.5"),
        ("augment.cutout_holes=2.5", "--set augment.cutout_holes: must be an integer, got 2.5"),
        ("augment.scale=[2,1]", "--set augment.scale: must be [min, max] with min <= max, got [2, 1]"),
        ("augment.scale=[0.9]", "--set augment.scale: must be [min, max], two positive numbers, got [0.9]"),
        ("augment.nonexist=1", "--set augment.nonexist: is not an augmentation option; known: brightness, "),
        ("val_fraction=2", "--set val_fraction: must be between 0 and 1 (exclusive), got 2"),
        # a share of each class: all of it leaves nothing to train on, none nothing to select or report on
        ("val_fraction=1", "--set val_fraction: must be between 0 and 1 (exclusive), got 1"),
        ("val_fraction=0", "--set val_fraction: must be between 0 and 1 (exclusive), got 0"),
        ("ema=1", "--set ema: must be from 0 (off) to below 1"),
        ("optimizer=rmsprop", "--set optimizer: must be one of adam, adamw, sgd; got 'rmsprop'"),
        ("tta=foo", "--set tta: must be null or one of flip, tencrop; got 'foo'"),
        ("loss=foo", "--set loss: unknown loss 'foo'; known: cross_entropy, "),
        ('loss_args={"gamma": 2}', "--set loss_args: not accepted by loss 'ce' ("),
        ('loss_args={"label_smoothing": 2}', "--set loss_args: label smoothing ε must be in [0, 1), got 2"),
        ("model=nonet", "--set model: must be a registered architecture ("),
        ('model_args={"nope": 1}', "--set model_args: model_args 'nope' not accepted by 'mini_xception'"),
        ('config_overrides={"bogus": 1}', "--set config_overrides: has unknown keys ['bogus']; known: "),
        ('config_overrides={"input_size": 2}', "--set config_overrides: input_size must be an integer"),
        ("kfold=1", "--set kfold: must be 0 (off) or >= 2, got 1"),
        ("selection=last", "--set selection: 'last' chooses nothing on validation data, so a plateau"),
    ],
)
def test_a_bad_set_value_is_one_line_and_exit_2_before_the_data_loads(
    setting: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(_train(tmp_path, "--set", setting)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ferhub train: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()  # nothing started


def test_set_values_of_the_right_type_are_kept() -> None:
    cfg = load_recipe("seed002_kaskun")[0]
    cfg = apply_overrides(cfg, ["epochs=3", "lr=1", "augment.scale=[0.8, 1.2]", "augment.resized_crop=null",
                                "init=2024", "recipe=007", "tta=null", "nesterov=false"])  # fmt: skip
    assert (cfg.epochs, cfg.lr, cfg.augment["scale"], cfg.augment["resized_crop"]) == (3, 1, [0.8, 1.2], None)
    assert (cfg.init, cfg.recipe, cfg.tta, cfg.nesterov) == ("2024", "007", None, False)  # text stays text


def test_recipes_and_python_callers_get_the_same_checks(tmp_path: Path) -> None:
    # a recipe file names itself; the setting follows
    with pytest.raises(RecipeError, match=r"^recipe: epochs must be an integer, got 1\.5$"):
        TrainConfig.from_dict({"epochs": 1.5})
    recipe = tmp_path / "mine.py"
    recipe.write_text('RECIPE = {"augment": {"scale": [1.2, 0.8]}}\n')
    with pytest.raises(RecipeError, match=r"^recipe 'mine': augment\.scale must be \[min, max\] with min"):
        load_recipe(str(recipe))
    # a TrainConfig built in Python is checked by train() before the data (which does not exist) is opened
    with pytest.raises(RecipeError, match=r"^settings: lr must be a number, got 'abc'$"):
        train(TrainConfig(lr="abc"), RunOptions(data=str(tmp_path / "no-such-data")))  # type: ignore[arg-type]


def test_trainable_stages_the_model_lacks_is_a_setting_error() -> None:
    with pytest.raises(RecipeError, match=r"^trainable_stages 1: MiniXception does not declare stages"):
        build_model(TrainConfig(model="test_tiny", trainable_stages=1), ["happy", "sad"])
    with pytest.raises(RecipeError, match=r"^trainable_stages 9: trainable_stages must be between 0 and 4"):
        build_model(TrainConfig(model="test_resnet", trainable_stages=9), ["happy", "sad"])


# --------------------------------------------------------------------------------------------- --push-to-hub
def test_push_to_hub_offline_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the tests run with HF_HUB_OFFLINE=1 (conftest)
    assert cli_main(_train(tmp_path, "--push-to-hub", "org/fer-test")) == 3
    err = capsys.readouterr().err
    assert err == (
        "ferhub train: --push-to-hub org/fer-test: cannot push, offline mode is on (HF_HUB_OFFLINE=1); "
        "nothing was trained. Fix: unset HF_HUB_OFFLINE, or train without --push-to-hub and `ferhub push` "
        "the model folder later\n"
    )
    assert not (tmp_path / "run").exists()


def test_push_to_hub_unreachable_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    probed: list[str] = []

    def down(endpoint: str) -> str:
        probed.append(endpoint)
        return "the Hub cannot be reached (huggingface.co:443: gaierror: no network)"

    monkeypatch.setattr(hub._remote, "hub_unreachable", down)
    assert cli_main(_train(tmp_path, "--push-to-hub", "org/fer-test")) == 3
    err = capsys.readouterr().err
    assert err.startswith(
        "ferhub train: --push-to-hub org/fer-test: cannot push, the Hub cannot be reached"
        " (huggingface.co:443: gaierror: no network); nothing was trained. Fix: connect to the network"
    )
    assert err.count("\n") == 1 and len(probed) == 1 and not (tmp_path / "run").exists()


def test_push_to_hub_needs_an_org_name_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(_train(tmp_path, "--push-to-hub", "no-org")) == 2
    assert capsys.readouterr().err == (
        "ferhub train: --push-to-hub must be a Hub id of the form ORG/NAME, got 'no-org'\n"
    )


def test_tiny_keeps_what_the_command_line_says(tmp_path: Path) -> None:
    """--tiny silently replaced an explicit --init (a warm-start smoke test trained from random weights),
    --batch-size and --repeats; only --epochs was put back."""
    from ferhub.commands.train import get_args_parser, resolve_config

    def resolved(*extra: str):
        return resolve_config(get_args_parser().parse_args(["--recipe", "ferhub_best", "--tiny", *extra]))

    shrunk = resolved()
    assert (shrunk.init, shrunk.batch_size, shrunk.epochs) == (None, 8, 2)
    init = str(tmp_path / "model.safetensors")
    argv = ["--init", init, "--batch-size", "32", "--repeats", "3", "--epochs", "4", "--set", "lr=0.5"]
    cfg = resolved(*argv)
    assert (cfg.init, cfg.batch_size, cfg.repeats, cfg.epochs, cfg.lr) == (init, 32, 3, 4, 0.5)
    assert cfg.model == shrunk.model  # the rest still shrunk: the tiny model


def test_help_says_the_default_run_folder_of_a_variant_and_what_init_takes() -> None:
    """`ferhub train --help` said "run folder (default runs/RECIPE)", but each variant run of train/README's
    tables writes runs/RECIPE-VARIANT; and `--init` was "a local checkpoint", though it also takes a ferhub
    model folder and a run's checkpoints/best|last.safetensors."""
    from ferhub.commands.train import get_args_parser

    # each option's text whole: argparse's wrapping of the printed help would split the phrases
    helps = {a.dest: a.help or "" for a in get_args_parser()._actions}
    assert "(default runs/RECIPE, runs/RECIPE-VARIANT with --variant)" in helps["output_dir"]
    assert str(load_recipe("seed004_chen", "last2")[0].default_output_dir()) == "runs/seed004_chen-last2"
    assert str(load_recipe("seed004_chen")[0].default_output_dir()) == "runs/seed004_chen"
    for takes in (
        "a checkpoint file",
        "a ferhub model folder",
        "checkpoints/best.safetensors",
        "last.safetensors",
    ):
        assert takes in helps["init"]


def test_threads_sets_torchs_cpu_threads_for_the_run_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a machine shared with other jobs torch's default threads trained 4-15x slower than one thread (their
    OpenMP threads spin on cores the other jobs need), and ``ferhub train`` had no way to set them:
    ``--threads N`` sets them for the run (its first line says how many, its summary records it) and puts
    back the process's own count at its end; 0 is refused before anything loads."""
    import importlib

    import torch
    from tasks import quick_train_args, transform_task

    from ferhub.data import write_class_folders

    assert cli_main([*_train(tmp_path, "--threads", "0")]) == 2
    assert "--threads must be a whole number of 1 or more, got 0" in capsys.readouterr().err
    images, targets, labels = transform_task(4, size=24, num_classes=2, seed=0)
    data = write_class_folders(images, targets, labels, tmp_path / "faces")
    fit_module = importlib.import_module("ferhub.training.fit")
    seen = []
    epoch = fit_module.train_one_epoch

    def counted(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return epoch(*args, **kwargs)

    monkeypatch.setattr(fit_module, "train_one_epoch", counted)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        argv = quick_train_args(data, tmp_path / "run", "--epochs", "1", "--threads", "1")
        assert cli_main(["train", *argv]) == 0
        assert torch.get_num_threads() == 2  # the process's own count, back
    finally:
        torch.set_num_threads(before)
    assert seen == [1]
    assert capsys.readouterr().out.splitlines()[0] == "device: cpu, 1 torch CPU thread (--threads 1)"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["threads"] == 1 and summary["device"] == "cpu"
    card = json.loads((tmp_path / "run" / "model" / "card.json").read_text())
    assert "--threads 1" in card["training_command"]
