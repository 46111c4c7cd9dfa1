"""Training audit fixes: ``--resume`` after early stopping, settings refused before the data is cropped
(class-weight lengths, ``val_fraction``, ``trainable_stages``), ``--tiny`` keeping the variant, and the card's
settings table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tasks import quick_train_args as _args
from tasks import transform_task

from ferhub.cli import main as cli_main
from ferhub.commands.train import get_args_parser, main
from ferhub.data import Crops, write_class_folders
from ferhub.labels import FER7
from ferhub.training import (
    RecipeError,
    TrainConfig,
    build_model,
    fit,
    load_recipe,
    read_checkpoint,
    results,
    tiny,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-class task on real LFW face crops, as class folders (24 px gray PNGs)."""
    images, targets, labels = transform_task(12, size=24, num_classes=4, seed=0)
    return write_class_folders(images, targets, labels, tmp_path_factory.mktemp("task") / "faces")


# a learning rate too small to change any prediction, BatchNorm statistics fixed: recall never improves after
# epoch 1, so early_stopping=N stops after epoch N + 1
_FLAT = ["--epochs", "10", "--lr", "1e-12", "--set", "freeze_bn=true", "--set", "monitor=mean_class_recall"]


def _epochs(folder: Path) -> list[int]:
    return [json.loads(line)["epoch"] for line in (folder / "log.jsonl").read_text().splitlines()]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


# ------------------------------------------------------------------------------------ 1. resume, early stop
def test_resume_after_early_stopping_trains_no_further(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stop was tested only after an epoch had trained, so a resumed run that had stopped early trained
    one more epoch (and went on if that one improved)."""
    out = tmp_path / "run"
    argv = _args(task_folder, out, *_FLAT, "--set", "early_stopping=2")
    assert main(get_args_parser().parse_args(argv))["epochs"] == 3
    released = _weights(out / "model" / "model.safetensors")
    capsys.readouterr()
    summary = main(get_args_parser().parse_args([*argv, "--resume"]))
    log = capsys.readouterr().out
    assert "after epoch 3" in log and "early stopping" in log
    assert not [line for line in log.splitlines() if line.startswith("epoch ")]  # nothing trained
    assert summary["epochs"] == 3 and summary["best_epoch"] == 1 and _epochs(out) == [1, 2, 3]
    assert read_checkpoint(out / "checkpoints" / "last.safetensors")[1]["state"]["epoch"] == 3
    again = _weights(out / "model" / "model.safetensors")
    assert all(torch.equal(released[k], again[k]) for k in released)


def test_resume_with_more_patience_continues_as_a_straight_run(task_folder: Path, tmp_path: Path) -> None:
    """A larger early_stopping on --resume goes on from the saved count of flat epochs, as an uninterrupted
    run with that patience does."""
    stopped = tmp_path / "stopped"
    main(get_args_parser().parse_args(_args(task_folder, stopped, *_FLAT, "--set", "early_stopping=2")))
    resumed = main(
        get_args_parser().parse_args(
            _args(task_folder, stopped, *_FLAT, "--set", "early_stopping=4", "--resume")
        )
    )
    straight_dir = tmp_path / "straight"
    straight = main(
        get_args_parser().parse_args(_args(task_folder, straight_dir, *_FLAT, "--set", "early_stopping=4"))
    )
    assert resumed["epochs"] == straight["epochs"] == 5 and _epochs(stopped) == _epochs(straight_dir)
    a = _weights(stopped / "checkpoints" / "last.safetensors")
    b = _weights(straight_dir / "checkpoints" / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("model."))


def test_resumed_repeats_leave_a_repeat_that_stopped_early_as_it_ended(
    task_folder: Path, tmp_path: Path
) -> None:
    """--repeats (and k-fold) resume every part that has a checkpoint: a finished, early-stopped repeat 1
    was trained again when the run was killed in repeat 2."""
    out = tmp_path / "run"
    argv = _args(task_folder, out, *_FLAT, "--set", "early_stopping=1", "--repeats", "2")
    main(get_args_parser().parse_args(argv))
    assert _epochs(out / "repeat1") == [1, 2]
    first = _weights(out / "repeat1" / "checkpoints" / "last.safetensors")
    import shutil

    shutil.rmtree(out / "repeat2")  # killed as repeat 2 began
    main(get_args_parser().parse_args([*argv, "--resume"]))
    assert _epochs(out / "repeat1") == [1, 2] and _epochs(out / "repeat2") == [1, 2]
    again = _weights(out / "repeat1" / "checkpoints" / "last.safetensors")
    assert all(torch.equal(first[k], again[k]) for k in first if k.startswith("model."))


# --------------------------------------------------------------------------- 2. class weights of a length
def test_a_class_weight_of_the_wrong_length_is_exit_2_before_any_crop(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A focal alpha (or class weight) of 3 values for 4 classes passed validation and broke the first batch
    as an "internal error"; the number of classes is known once the source is open, before any crop."""
    import ferhub.data

    def no_crops(*args, **kw):
        raise AssertionError("the data was cropped before the settings were refused")

    monkeypatch.setattr(ferhub.data, "materialize", no_crops)
    for loss, key in (("focal", "alpha"), ("weighted_ce", "weight")):
        argv = _args(
            task_folder,
            tmp_path / loss,
            "--set",
            f"loss={loss}",
            "--set",
            f'loss_args={{"{key}": [1, 2, 3]}}',
        )
        assert cli_main(["train", *argv]) == 2
        err = capsys.readouterr().err
        assert err == (
            f"ferhub train: settings: loss_args.{key} has 3 values but the data has 4 classes (angry,"
            " disgust, fear, happy); give one value per class, in that order\n"
        ), err


@pytest.mark.parametrize(
    ("alpha", "message"),
    [("2", "alpha must be a list of numbers, one per class, got 2"),
     ("[1, -2]", "alpha must hold finite numbers >= 0, one per class, got [1.0, -2.0]")],
)  # fmt: skip
def test_a_class_weight_that_is_no_list_of_weights_is_refused_before_the_data_loads(
    alpha: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its length waits for the data's classes; its form is checked with the other settings."""
    argv = ["train", "--recipe", "seed002_kaskun", "--data", str(tmp_path / "no-such-data"), "--tiny",
            "--output-dir", str(tmp_path / "run"), "--set", "loss=focal",
            "--set", f'loss_args={{"alpha": {alpha}}}']  # fmt: skip
    assert cli_main(argv) == 2
    assert capsys.readouterr().err == f"ferhub train: --set loss_args: {message}\n"
    assert not (tmp_path / "run").exists()


def test_fit_refuses_a_class_weight_of_the_wrong_length_before_training(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    crops = Crops(rng.integers(0, 255, (8, 16, 16, 1), dtype=np.uint8), np.arange(8) % 4, FER7[:4])
    cfg = TrainConfig(
        model="test_tiny", loss="focal", loss_args={"alpha": [1.0, 2.0]}, epochs=1, batch_size=4
    )
    with pytest.raises(
        RecipeError, match=r"^settings: loss_args\.alpha has 2 values but the data has 4 classes"
    ):
        fit(
            cfg,
            crops,
            crops,
            tmp_path / "run",
            device=torch.device("cpu"),
            progress=False,
            log=lambda _: None,
        )
    assert not (tmp_path / "run" / "log.jsonl").exists()


# ------------------------------------------------------------------------------ 4. trainable_stages up front
@pytest.mark.parametrize(
    ("recipe", "setting", "message"),
    [
        ("seed004_chen", "model_args.trainable_stages=9",
         "--set model_args.trainable_stages: must be from 0 to 4 (the backbone stages of 'resnet18'), got 9"),
        ("seed004_chen", "trainable_stages=5",
         "--set trainable_stages: must be from 0 to 4 (the backbone stages of 'resnet18'), got 5"),
        ("seed003_xiang", "model_args.trainable_stages=4",
         "--set model_args.trainable_stages: must be from 0 to 3 (the backbone stages of 'irv1_multiscale')"),
        ("seed002_kaskun", "trainable_stages=1",
         "--set trainable_stages: needs a model with backbone stages; 'mini_xception' (MiniXception)"),
    ],
)  # fmt: skip
def test_trainable_stages_out_of_range_is_refused_before_the_data_loads(
    recipe: str, setting: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--recipe", recipe, "--data", str(tmp_path / "no-such-data"), "--tiny", "--no-progress",
            "--output-dir", str(tmp_path / "run"), "--set", setting]  # fmt: skip
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ferhub train: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_trainable_stages_in_range_still_pass() -> None:
    cfg, _ = load_recipe("seed004_chen", "last3")
    assert cfg.model_args["trainable_stages"] == 2
    TrainConfig.from_dict({**cfg.to_dict(), "trainable_stages": 4})  # resnet18: 4 stages, all may train


# ----------------------------------------------------------------------------------- 5. --tiny, same variant
def test_tiny_net_b_is_not_net_b_dal() -> None:
    """test_lightcnn took neither dal nor drop_rate, so --tiny dropped seed 000's dal=False: the tiny Net B
    smoke test trained Net B_DAL."""
    net_b, net_b_dal = (tiny(load_recipe("seed000_zhai", v)[0]) for v in ("sfew_net_b", "sfew_net_b_dal"))
    assert net_b.model_args == {"drop_rate": 0.5, "dal": False} and net_b_dal.model_args["dal"] is True
    models = []
    for cfg in (net_b, net_b_dal):
        torch.manual_seed(0)
        models.append(build_model(cfg, FER7).eval())
    assert not models[0].dal.relu and models[1].dal.relu
    x = torch.randn(4, 1, 20, 20)
    assert not torch.equal(models[0](x), models[1](x))  # same weights, the ReLU makes the difference


def test_tiny_keeps_every_model_arg_of_every_shipped_variant_but_pretrained() -> None:
    from ferhub.training import list_recipes

    for name in list_recipes():
        for variant in [None, *load_recipe(name)[1]]:
            cfg = load_recipe(name, variant)[0]
            kept = {k: v for k, v in cfg.model_args.items() if k != "pretrained"}
            assert tiny(cfg).model_args == kept, (name, variant)


def test_tiny_refuses_a_model_arg_its_tiny_model_does_not_take() -> None:
    cfg = load_recipe("seed000_zhai", "sfew_net_b")[0]
    with pytest.raises(
        RecipeError, match=r"^--tiny: the tiny model 'test_tiny' takes no model_args dal=false, "
    ):
        tiny(TrainConfig.from_dict({**cfg.to_dict(), "tiny_model": "test_tiny"}))


# ----------------------------------------------------------------------------------------- 6. the card table
def test_the_card_lists_the_schedule_a_recipe_uses_and_no_unused_monitor() -> None:
    zhai = results.card_settings(load_recipe("seed000_zhai", "sfew_net_b")[0], carved=True)
    assert (zhai["optimizer"], zhai["momentum"], zhai["nesterov"]) == ("sgd", 0.9, False)  # Caffe SGD
    assert zhai["monitor"] == "mean_class_recall" and zhai["val_fraction"] == 0.1
    assert "gamma" not in zhai and "plateau_patience" not in zhai  # a constant schedule uses neither
    kaskun = results.card_settings(load_recipe("seed002_kaskun")[0], carved=True)
    assert {k: kaskun[k] for k in ("plateau_patience", "plateau_rule", "gamma")} == {
        "plateau_patience": 12, "plateau_rule": "keras", "gamma": 0.1}  # fmt: skip
    assert kaskun["kernel_l2_layers"] == ["stem.0", "stem.3"] and "momentum" not in kaskun  # Adam
    xiang = results.card_settings(load_recipe("seed003_xiang")[0])  # selection "last": nothing monitored
    assert (xiang["schedule"], xiang["step_epochs"], xiang["gamma"]) == ("step_linear", 8, 0.25)
    assert "monitor" not in xiang and "val_fraction" not in xiang and "plateau_rule" not in xiang
    chen = results.card_settings(load_recipe("seed004_chen", "last2_no_face_extraction")[0])  # epoch_mean
    assert "monitor" not in chen and chen["face_detection"] is False
    assert "face_detection" not in results.card_settings(load_recipe("seed004_chen")[0])
    table = results.recipe_markdown(load_recipe("seed003_xiang")[0], "d", {}, carved=False)
    assert "| `step_epochs` | `8` |" in table and "| `gamma` | `0.25` |" in table and "`monitor`" not in table


def test_a_trained_card_carries_its_schedule(task_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    main(get_args_parser().parse_args(_args(task_folder, out, "--epochs", "1")))
    card = (out / "model" / "README.md").read_text()
    rows = {"schedule": '"plateau"', "plateau_patience": "12", "plateau_rule": '"keras"', "gamma": "0.1",
            "monitor": '"loss"', "val_fraction": "0.2"}  # fmt: skip
    for key, value in rows.items():
        assert f"| `{key}` | `{value}` |" in card, key
    last = tmp_path / "last"
    argv = _args(
        task_folder, last, "--epochs", "1", "--set", "schedule=constant", "--set", "early_stopping=0"
    )
    main(get_args_parser().parse_args([*argv, "--set", "selection=last"]))
    card = (last / "model" / "README.md").read_text()
    assert (
        "`monitor`" not in card and "`plateau_patience`" not in card and "| `val_fraction` | `0.2` |" in card
    )
