"""``--resume`` of a checkpoint trained with other settings: an older ferhub's checkpoint (settings it does
not record) told apart from settings that differ, old -> new values shown, and advice that works (the
``--set`` options that continue the run as it was trained, ``--init`` into a new folder)."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from tasks import transform_task

from ferhub.cli import main as cli_main
from ferhub.data import write_class_folders
from ferhub.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# TrainConfig's settings when checkpoints began (6f55eae, 2026-11-24): every checkpoint records these
FIRST_SETTINGS = {
    "amp", "augment", "backbone_lr_scale", "batch_size", "channels_last", "citation", "config_overrides",
    "cutmix", "description", "early_stopping", "ema", "epochs", "freeze_bn", "gamma", "grad_clip", "init",
    "kfold", "loss", "loss_args", "lr", "min_lr", "mixup", "model", "model_args", "momentum", "nesterov",
    "no_face", "optimizer", "plateau_patience", "recipe", "schedule", "seed", "step_epochs", "tiny_model",
    "trainable_stages", "tta", "val_fraction", "warmup_epochs", "weight_decay",
}  # fmt: skip
# the settings added since checkpoints began whose earlier behaviour one value gives (selection's none)
LATER = ["sync_bn", "plateau_rule", "kernel_l2", "kernel_l2_layers", "monitor", "repeats", "sampler",
         "face_detection"]  # fmt: skip
# the same settings at the values ferhub had before them: a run given these trains as the old ferhub did
AS_BEFORE = ["kernel_l2=0", "kernel_l2_layers=[]", "monitor=mean_class_recall", "plateau_rule=torch"]


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-class task on real LFW face crops, as class folders (24 px gray PNGs)."""
    images, targets, labels = transform_task(12, size=24, num_classes=4, seed=0)
    return write_class_folders(images, targets, labels, tmp_path_factory.mktemp("task") / "faces")


def _train(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--recipe", "seed002_kaskun", "--data", str(data), "--precropped", "--output-dir", str(out),
        "--no-progress", "--set", "model=test_tiny", "--set", "config_overrides={}", "--batch-size", "8",
        *extra,
    ]  # fmt: skip


def _as_older_ferhub(checkpoint: Path, drop: list[str], **values: Any) -> None:
    """Rewrite ``checkpoint``'s settings as an older ferhub wrote them: without ``drop``, ``values`` as
    given."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(checkpoint), "pt") as f:
        meta = json.loads(f.metadata()["ferhub"])
    tensors = load_file(str(checkpoint))
    for key in drop:
        del meta["train_config"][key]
    meta["train_config"].update(values)
    save_file(tensors, str(checkpoint), metadata={"ferhub": json.dumps(meta)})


def _resume(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = cli_main([*argv, "--resume"])
    captured = capsys.readouterr()
    return rc, captured.err + captured.out


def test_every_setting_is_recorded_by_every_checkpoint_or_has_its_earlier_value() -> None:
    """A setting added to TrainConfig needs the value that does what ferhub did before it (EARLIER_VALUES),
    or the reason none does (NO_EARLIER_VALUE): otherwise every older checkpoint is refused as unknown."""
    from ferhub.training.checkpoint import EARLIER_VALUES, NO_EARLIER_VALUE

    later = {f.name for f in dataclasses.fields(TrainConfig)} - FIRST_SETTINGS
    assert later == set(EARLIER_VALUES) | set(NO_EARLIER_VALUE), "add the new setting to EARLIER_VALUES"
    assert not set(EARLIER_VALUES) & set(NO_EARLIER_VALUE)
    # the earlier values are settings this ferhub takes: a run can be given them
    TrainConfig.from_dict(dict(EARLIER_VALUES)).validate()


def test_settings_an_old_checkpoint_lacks_count_as_that_ferhub_did() -> None:
    from ferhub.training.checkpoint import EARLIER_VALUES, setting_differences

    now = TrainConfig().to_dict()
    old = {k: v for k, v in now.items() if k not in EARLIER_VALUES}
    old["tta"] = False  # until 0421352 tta was true/false: false is today's null
    assert setting_differences(old, now) == ({}, [])
    differ, unknown = setting_differences(old, {**now, "kernel_l2": 0.01, "monitor": "loss"})
    assert differ == {"kernel_l2": 0.0, "monitor": "mean_class_recall"} and unknown == []
    assert setting_differences({k: v for k, v in old.items() if k != "lr"}, now) == ({}, ["lr"])
    # today's checkpoints: every setting compared as before; only the order of a group's entries is no change
    augment = {"hflip": 0.5, "rotate": 10}
    today = {**now, "augment": augment}
    assert setting_differences({**today, "augment": dict(reversed(augment.items()))}, today) == ({}, [])
    assert setting_differences({**today, "tta": None}, {**today, "tta": "flip"})[0] == {"tta": None}


def test_an_old_value_this_ferhub_refuses_gets_no_set_advice(tmp_path: Path) -> None:
    """Until 0421352 ``tta`` was true/false; true (the old ten-crop) has no value today, so no --set gives it
    back: the message says to finish the run with the ferhub that started it."""
    from ferhub.errors import CheckpointError
    from ferhub.training.checkpoint import _check_settings

    cfg = TrainConfig()
    last = tmp_path / "last.safetensors"
    with pytest.raises(CheckpointError) as e:
        _check_settings(last, {**cfg.to_dict(), "tta": True}, cfg)
    assert "other settings than this run's: tta True -> None;" in str(e.value)
    assert "--set" not in str(e.value)
    assert "finish it with the ferhub that started it; or start again in a new --output-dir" in str(e.value)


def test_resuming_a_checkpoint_of_an_older_ferhub(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An older ferhub's checkpoint was refused as "trained with different settings (...); resume with the
    same recipe and overrides" when the user had done just that: most settings listed were ones it does not
    record, the rest changes of the shipped recipe. Settings it lacks now count as that ferhub trained; the
    message says an older ferhub wrote it, shows old -> new and gives --set options that do continue it."""
    out = tmp_path / "run"
    sets = [a for item in AS_BEFORE for a in ("--set", item)]
    assert cli_main(_train(task_folder, out, "--epochs", "1", *sets)) == 0
    last = out / "checkpoints" / "last.safetensors"
    _as_older_ferhub(last, drop=LATER, tta=False, val_fraction=0.1)

    # the recipe as shipped now: its kernel_l2, monitor and plateau_rule came after this checkpoint
    argv = _train(task_folder, out, "--epochs", "2")
    rc, err = _resume(argv, capsys)
    assert rc == 2, err
    assert "different settings" not in err and "resume with the same recipe" not in err
    assert (
        "an older ferhub wrote it, before the settings kernel_l2, kernel_l2_layers, monitor, plateau_rule"
        " existed" in err
    )
    # what the checkpoint records first, then what that ferhub did
    assert "this run's: val_fraction 0.1 -> 0.2, kernel_l2 0.0 -> 0.01, kernel_l2_layers [] -> " in err
    assert "monitor 'mean_class_recall' -> 'loss' and 1 more;" in err
    for unchanged in ("sampler", "repeats", "face_detection", "sync_bn", "tta"):
        assert unchanged not in err  # not recorded, and what that ferhub did is what this run does
    assert f"start again in a new --output-dir (add --init {last} to start from its weights)" in err
    advice = err.split("To continue it as it was trained, add ", 1)[1].split(";", 1)[0]
    assert shlex.split(advice) == [
        "--set", "val_fraction=0.1", "--set", "kernel_l2=0.0", "--set", "kernel_l2_layers=[]",
        "--set", "monitor=mean_class_recall", "--set", "plateau_rule=torch",
    ]  # fmt: skip

    # the advice works: the run goes on from its checkpoint
    rc, log = _resume([*argv, *shlex.split(advice)], capsys)
    assert rc == 0, log
    assert f"resumed from {last} after epoch 1" in log


def test_a_checkpoint_from_before_selection_is_refused_saying_why(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before 3ea3617 a run without a test split reported on the data that chose its epoch, which no value of
    ``selection`` does now: no --set can continue it, so the message says so and what can be done."""
    out = tmp_path / "run"
    argv = _train(task_folder, out, "--epochs", "1")
    assert cli_main(argv) == 0
    last = out / "checkpoints" / "last.safetensors"
    _as_older_ferhub(last, drop=[*LATER, "selection"], tta=False)
    rc, err = _resume(argv, capsys)
    assert rc == 2, err
    assert f"{last} was written by an older ferhub, before the setting selection existed" in err
    assert "reported on the data that chose its epoch" in err
    assert "finish it with the ferhub that started it" in err and f"add --init {last}" in err
    assert "--set" not in err and "resume with the same recipe" not in err


def test_todays_checkpoint_with_other_settings_is_still_refused(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check of checkpoints written by this ferhub is unchanged; the message now shows old -> new (a
    group's changed entries) and the --set options that restore them, and never says "older ferhub"."""
    out = tmp_path / "run"
    argv = _train(task_folder, out, "--epochs", "1")
    assert cli_main(argv) == 0
    rc, err = _resume([*argv, "--lr", "0.5", "--set", "augment.hflip=0.25"], capsys)
    assert rc == 2, err
    assert "augment.hflip 0.5 -> 0.25, lr 0.001 -> 0.5" in err and "older ferhub" not in err
    assert "the recipe or overrides changed (only epochs and early_stopping may)" in err
    assert "--set lr=0.001" in err
