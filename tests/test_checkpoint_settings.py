"""``--resume`` of a checkpoint trained with other settings: an older ferhub's checkpoint (settings it does
not record) refused saying so, settings that differ shown old -> new (the recipe first), and advice that works
(the ``--set`` options or the ``--recipe`` that continue the run as it was trained, ``--init`` into a new
folder)."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from tasks import Cropped, quick_train_args, transform_task

from ferhub.cli import main as cli_main
from ferhub.commands.train import get_args_parser, main
from ferhub.data import write_class_folders
from ferhub.errors import CheckpointError
from ferhub.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# TrainConfig's settings since 3ea3617 (2026-12-02): every checkpoint written since records each of them
RECORDED = {
    "amp", "augment", "backbone_lr_scale", "batch_size", "channels_last", "citation", "config_overrides",
    "cutmix", "description", "early_stopping", "ema", "epochs", "face_detection", "freeze_bn", "gamma",
    "grad_clip", "init", "kernel_l2", "kernel_l2_layers", "kfold", "loss", "loss_args", "lr", "min_lr",
    "mixup", "model", "model_args", "momentum", "monitor", "nesterov", "no_face", "optimizer",
    "plateau_patience", "plateau_rule", "recipe", "repeats", "sampler", "schedule", "seed", "selection",
    "step_epochs", "sync_bn", "tiny_model", "trainable_stages", "tta", "val_fraction", "warmup_epochs",
    "weight_decay",
}  # fmt: skip
# the settings that came with selection in 3ea3617 (sync_bn in a4fb8bf before it): a checkpoint from before
# 3ea3617 lacks them all, and its tta was true/false
BEFORE_SELECTION = ["face_detection", "kernel_l2", "kernel_l2_layers", "monitor", "plateau_rule", "repeats",
                    "sampler", "selection", "sync_bn"]  # fmt: skip


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-class task on real LFW face crops, as class folders (24 px gray PNGs)."""
    images, targets, labels = transform_task(12, size=24, num_classes=4, seed=0)
    return write_class_folders(images, targets, labels, tmp_path_factory.mktemp("task") / "faces")


def _train(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", *quick_train_args(data, out, *extra)]


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


def _cropped(*_a: object, **_k: object) -> None:
    raise Cropped


def _refusal(saved: dict[str, Any], cfg: TrainConfig, path: Path = Path("run/last.safetensors")) -> str:
    from ferhub.training.checkpoint import _check_settings

    with pytest.raises(CheckpointError) as e:
        _check_settings(path, saved, cfg)
    return str(e.value)


def test_a_setting_added_to_trainconfig_gets_the_value_ferhub_had_before_it() -> None:
    """Every checkpoint written since 3ea3617 records all of today's settings. A setting added later needs
    the value that does what ferhub did before it (EARLIER_VALUES): without one, every checkpoint written
    before it, today's included, is refused as an older ferhub's."""
    from ferhub.training.checkpoint import EARLIER_VALUES

    added = {f.name for f in dataclasses.fields(TrainConfig)} - RECORDED
    assert added == set(EARLIER_VALUES), (
        "a new TrainConfig setting: give it the value that keeps what ferhub did before it in "
        "ferhub.training.checkpoint.EARLIER_VALUES (where none does, add it to RECORDED here: checkpoints "
        "written before it are then refused)"
    )
    TrainConfig.from_dict(dict(EARLIER_VALUES)).validate()  # values a run can be given back with --set


def test_a_setting_a_checkpoint_lacks_counts_with_its_earlier_value(monkeypatch, tmp_path) -> None:
    """The mechanism for the next setting added (here as if ``sampler`` had come after the checkpoint): the
    checkpoint resumes where this run does what ferhub did, and other values are refused with --set advice;
    a setting without an earlier value refuses it as an older ferhub's."""
    from ferhub.training import checkpoint

    cfg = TrainConfig()
    saved = {k: v for k, v in cfg.to_dict().items() if k != "sampler"}
    err = _refusal(saved, cfg, tmp_path / "last.safetensors")
    assert "was written by an older ferhub, before the setting sampler existed" in err
    monkeypatch.setattr(checkpoint, "EARLIER_VALUES", {"sampler": "shuffle"})
    checkpoint._check_settings(tmp_path / "last.safetensors", saved, cfg)
    err = _refusal(saved, dataclasses.replace(cfg, sampler="balanced"))
    assert "other settings than this run's: sampler 'shuffle' -> 'balanced';" in err
    assert "add --set sampler=shuffle;" in err


def test_a_checkpoint_from_before_selection_is_refused_saying_why(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The checkpoints an older ferhub wrote (before 3ea3617: without selection and the settings that came
    with it) are refused saying so and what can be done, not as "trained with different settings" when the
    user resumed with the same command."""
    out = tmp_path / "run"
    argv = _train(task_folder, out, "--epochs", "1")
    assert cli_main(argv) == 0
    last = out / "checkpoints" / "last.safetensors"
    _as_older_ferhub(last, drop=BEFORE_SELECTION, tta=False)
    rc, err = _resume(argv, capsys)
    assert rc == 2, err
    assert (
        f"{last} was written by an older ferhub, before the settings face_detection, kernel_l2,"
        " kernel_l2_layers, monitor, plateau_rule, repeats, sampler, selection, sync_bn existed, so this"
        " ferhub cannot continue it as it was trained; finish it with that ferhub, or start again in a new"
        f" --output-dir (add --init {last} to start from its weights)"
    ) in err
    assert "--set" not in err and "different settings" not in err


def test_todays_checkpoint_with_other_settings_is_refused_with_set_options_that_work(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint this ferhub wrote, resumed with other settings: old -> new (a group's entries), and the
    printed --set options, pasted, continue it; equal numbers (0 and 0.0) and the recipe's words
    (description, citation) are no other settings."""
    out = tmp_path / "run"
    argv = _train(task_folder, out, "--epochs", "1", "--set", "weight_decay=0")
    assert cli_main(argv) == 0
    last = out / "checkpoints" / "last.safetensors"
    changed = [
        *argv, "--epochs", "2", "--lr", "0.5", "--set", "augment.hflip=0.25", "--set", "weight_decay=0.0",
        "--set", "description=my words", "--set", "citation=",
    ]  # fmt: skip
    rc, err = _resume(changed, capsys)
    assert rc == 2, err
    assert "other settings than this run's: augment.hflip 0.5 -> 0.25, lr 0.001 -> 0.5;" in err
    assert (
        "the recipe or overrides changed (only epochs, early_stopping, description and citation may)" in err
    )
    assert "weight_decay" not in err and "older ferhub" not in err
    advice = err.split("To continue it as it was trained, add ", 1)[1].split(";", 1)[0]
    assert shlex.split(advice) == ["--set", 'augment={"hflip": 0.5, "rotate": 10, "scale": [0.9, 1.1], '
                                   '"translate": 0.1}', "--set", "lr=0.001"]  # fmt: skip
    rc, log = _resume([*changed, *shlex.split(advice)], capsys)
    assert rc == 0, log
    assert f"resumed from {last} after epoch 1" in log


@pytest.mark.parametrize("parts", [[], ["--repeats", "2"]], ids=["one_fit", "repeats"])
def test_other_settings_are_refused_before_the_data_is_prepared(
    parts: list[str], task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--resume with other settings was refused only once every image had been face-detected and cropped
    (minutes on a large dataset): the checkpoint's recorded settings (of the first fit: repeat1 of a run of
    several) are now checked from its metadata before the data loads. The same command still resumes."""
    out = tmp_path / "run"
    argv = _train(task_folder, out, "--epochs", "1", *parts)
    assert cli_main(argv) == 0
    last = out / ("repeat1" if parts else "") / "checkpoints" / "last.safetensors"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ferhub.data.materialize", _cropped)  # the refusal must come before any crop
        rc, err = _resume([*argv, "--lr", "0.5"], capsys)
    assert rc == 2, err  # a crop reached is an internal error (exit 1)
    assert f"{last} was trained with other settings than this run's: lr 0.001 -> 0.5;" in err
    assert "add --set lr=0.001" in err
    with pytest.MonkeyPatch.context() as mp, pytest.raises(Cropped):  # the same settings (epochs may
        mp.setattr("ferhub.data.materialize", _cropped)  # change) get past the check, to the first crop
        main(get_args_parser().parse_args([*argv[1:], "--epochs", "2", "--resume"]))


def test_resume_into_a_folder_without_a_checkpoint_is_not_refused_early(
    task_folder: Path, tmp_path: Path, no_crops: None
) -> None:
    """No checkpoint yet (or none this ferhub reads): nothing to check early; the data loads, as before."""
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.safetensors").write_bytes(b"not a checkpoint")
    for folder in (tmp_path / "none", out):
        with pytest.raises(Cropped):
            main(
                get_args_parser().parse_args([*_train(task_folder, folder, "--epochs", "1")[1:], "--resume"])
            )


@pytest.mark.parametrize("text", ['"q"', "null", "001", "[1, 2]", "true", 'it\'s "x", y', ""])
def test_the_set_advice_gives_back_text_that_looks_like_json(text: str, tmp_path: Path) -> None:
    """A text setting holding '"q"' was advised as ``--set init="q"``, which reads back as q: the dry run
    failed and the message said to finish the run with the ferhub that started it, though this one had."""
    from ferhub.training import apply_overrides

    cfg = TrainConfig()
    err = _refusal({**cfg.to_dict(), "init": text}, cfg, tmp_path / "last.safetensors")
    assert "finish it with" not in err
    advice = err.split("To continue it as it was trained, add ", 1)[1].split("; or start again", 1)[0]
    options = shlex.split(advice)
    assert options[0] == "--set" and len(options) == 2
    assert apply_overrides(cfg, options[1:]).init == text


def test_another_recipe_is_named_first_and_given_back_by_its_options(tmp_path: Path) -> None:
    """A run resumed with another recipe differs in a dozen settings: the message was 1,400 characters, its
    four old -> new slots all ``augment`` entries, the recipe itself in "and 13 more", and the advice 17
    --set options pasting the recipe's 300-character citation. The recipe now comes first, a group takes
    one slot, and the advice is the recipe's options."""
    from ferhub.training import load_recipe

    kaskun, chen = load_recipe("seed002_kaskun")[0], load_recipe("seed004_chen")[0]
    err = _refusal(kaskun.to_dict(), chen, tmp_path / "last.safetensors")
    assert "other settings than this run's: recipe 'seed002_kaskun' -> 'seed004_chen', augment (" in err
    assert "To continue it as it was trained, resume with --recipe seed002_kaskun and the options" in err
    assert "--set" not in err and kaskun.citation[:40] not in err
    assert len(err) < 700, err

    fcn = load_recipe("seed002_kaskun", "fcn")[0]
    err = _refusal(fcn.to_dict(), kaskun, tmp_path / "last.safetensors")
    assert "recipe 'seed002_kaskun:fcn' -> 'seed002_kaskun'" in err
    assert "resume with --recipe seed002_kaskun --variant fcn and the options that started it" in err
    mine = dataclasses.replace(kaskun, recipe="my_recipe")
    err = _refusal(mine.to_dict(), kaskun, tmp_path / "last.safetensors")
    assert "resume with the recipe it was started with (named 'my_recipe')" in err


def test_numbers_are_compared_by_value() -> None:
    from ferhub.training.checkpoint import _same

    assert _same(0, 0.0) and _same({"a": [1, 2.0]}, {"a": (1.0, 2)}) and _same(float("nan"), float("nan"))
    assert not _same(2**60 + 1, float(2**60)) and not _same(True, 1) and not _same(0, None)
    assert not _same("1", 1) and not _same({"a": 1}, {"a": 1, "b": 2})
