"""``ferhub train`` refuses what it cannot train before any face is cropped, with the option to change
(exit 2), and what it publishes says what the run did: a batch of one crop, seed 003's output mix-up without
a neutral class, ``--init`` (a missing file, the run's own training checkpoints), k-fold with a class smaller
than k, the card of a run that changed its recipe's settings, the test entry of a k-fold run, and the
checkpoints that ``--push-checkpoints`` sends."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from tasks import transform_task

from ferhub.cli import main as cli_main
from ferhub.data import Crops, write_class_folders
from ferhub.training import (
    EMA,
    LRSchedule,
    RecipeError,
    TrainConfig,
    apply_overrides,
    build_model,
    build_optimizer,
    fit,
    load_recipe,
    save_checkpoint,
    tiny,
)
from ferhub.training.loop import State
from ferhub.transforms import TrainTransform, equalize_hist

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")


def _folders(root: Path, n_per_class: int, num_classes: int = 3, size: int = 24) -> Path:
    """Class folders of real LFW face crops (classes angry, disgust, fear[, happy]: no neutral)."""
    images, targets, labels = transform_task(n_per_class, size=size, num_classes=num_classes, seed=0)
    return write_class_folders(images, targets, labels, root)


def _no_cropping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make cropping fail loudly: a refusal that comes after it is a refusal that came too late."""
    from ferhub.training import run

    def crops(self: Any, src: Any) -> Any:
        raise AssertionError("the data was cropped before the refusal")

    monkeypatch.setattr(run._Data, "crops", crops)


def _rgb_crops(n: int, labels: tuple[str, ...] = ("angry", "happy"), size: int = 32) -> Crops:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return Crops(images, np.arange(n) % len(labels), labels)


def _train_argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--precropped", "--no-progress", "--output-dir", str(out), "--tiny",
            *extra]  # fmt: skip


# ---------------------------------------------------------------------------------------- a batch of one
def test_hist_eq_equalises_a_batch_of_one_rgb_crop() -> None:
    """TrainTransform permutes (B, H, W, 3) to (B, 3, H, W); for one crop that is a strided view, which
    equalize_hist's view(-1) refused (RuntimeError), so seed 003's hist_eq crashed on a batch of one."""
    rng = np.random.default_rng(1)
    crops = torch.from_numpy(rng.integers(0, 256, (2, 12, 12, 3), dtype=np.uint8))
    one = equalize_hist(crops[:1].permute(0, 3, 1, 2))
    assert torch.equal(one, equalize_hist(crops.permute(0, 3, 1, 2))[:1])
    pil = np.asarray(ImageOps.equalize(Image.fromarray(crops[0].numpy())))
    assert np.array_equal(one[0].permute(1, 2, 0).numpy(), pil)
    augment = load_recipe("seed003_xiang")[0].augment  # hist_eq, rotation, resized crop, cutout
    from ferhub.config import ModelConfig

    config = ModelConfig(architecture="test_irv1", labels=("angry", "happy"), input_size=12, channels=3,
                         mean=(0.5,) * 3, std=(0.5,) * 3)  # fmt: skip
    out = TrainTransform.from_recipe(config, {**augment, "hist_eq": 1.0})(crops[:1], torch.Generator())
    assert out.shape == (1, 3, 12, 12) and torch.isfinite(out).all()


def test_a_model_that_trains_on_one_crop_trains_with_batch_size_1(tmp_path: Path) -> None:
    cfg = TrainConfig(model="test_faceapi_expression_net", batch_size=1, epochs=1, augment={"hist_eq": 1.0},
                      selection="last")  # fmt: skip
    cfg.validate()  # no BatchNorm that one crop defeats: batch_size 1 is allowed
    result = fit(cfg, _rgb_crops(4), _rgb_crops(2), tmp_path, device=CPU, progress=False, log=lambda _: None)
    assert result.state.epoch == 1 and len(result.state.history) == 1


def test_batch_size_1_for_a_model_whose_batchnorm_needs_two_is_exit_2_before_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the data does not exist: a refusal after loading it would be a data error (exit 1)
    argv = _train_argv(
        tmp_path / "no-such-data", tmp_path / "run", "--recipe", "seed004_chen", "--batch-size", "1"
    )
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    # --tiny's test_resnet pools to 1x1 before its last BatchNorm (resnet18 at 160 px keeps 5x5 maps)
    assert "command line: batch_size must be 2 or more for 'test_resnet'" in err, err
    assert "give --batch-size 2 or more" in err
    assert err.count("\n") == 1 and not (tmp_path / "run").exists()
    with pytest.raises(RecipeError, match="batch_size must be 2 or more for 'test_irv1'"):
        TrainConfig(model="test_irv1", batch_size=1).validate()
    # with --tiny it is the tiny model that is judged: the recipe's (irv1_classifier) was named, and a tiny
    # model that trains on one crop refused for the full one's BatchNorm
    argv = _train_argv(tmp_path / "no-such-data", tmp_path / "run", "--recipe", "seed003_xiang", "--variant",
                       "irv1_finetuned", "--batch-size", "1")  # fmt: skip
    assert cli_main(argv) == 2
    assert "batch_size must be 2 or more for 'test_irv1_classifier'" in capsys.readouterr().err
    from ferhub.cli import build_parser
    from ferhub.commands.train import resolve_config

    argv += ["--set", "tiny_model=test_faceapi_expression_net", "--set", "model_args={}"]
    assert resolve_config(build_parser(argv).parse_args(argv)).batch_size == 1
    TrainConfig(model="test_irv1", batch_size=1, freeze_bn=True).validate()  # no batch statistics: allowed
    TrainConfig(model="test_irv1", batch_size=2).validate()


def test_a_batch_of_one_crop_at_run_time_says_what_to_change(tmp_path: Path) -> None:
    """A training set of one crop gives one batch of it whatever batch_size says: BatchNorm's raw
    ValueError was passed on as a data error."""
    cfg = TrainConfig(model="test_resnet", batch_size=8, epochs=1, selection="last")
    with pytest.raises(RecipeError, match=r"^the training set is one crop, and ResNet.*give more training"):
        fit(cfg, _rgb_crops(1), _rgb_crops(2), tmp_path, device=CPU, progress=False, log=lambda _: None)


# ------------------------------------------------------------------------------ output mix-up and neutral
def test_output_mixup_without_neutral_is_exit_2_when_the_source_opens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _folders(tmp_path / "faces", 2)
    _no_cropping(monkeypatch)
    assert cli_main(_train_argv(data, tmp_path / "run", "--recipe", "seed003_xiang")) == 2
    err = capsys.readouterr().err
    assert "have no 'neutral'" in err and "--set model_args.output_mixup=false" in err, err
    assert "'output_mixup': False" in err and err.count("\n") == 1  # the Python spelling too
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("arch", ["test_irv1", "test_irv1_classifier"])
def test_output_mixup_builds_for_fewer_classes_at_any_input_size(arch: str) -> None:
    """At a non-preset input size (seed 003's 350 px) the registry measures a forward pass before the labels
    arrive: the mix-up indexed FER7's neutral (6) in a 4-class output ("index 6 is out of bounds")."""
    from ferhub.models import create_model

    # neutral first: the placeholder index used before the labels arrive (the last class) is not it
    labels = ("neutral", "angry", "fear", "happy")
    model = create_model(arch, labels, output_mixup=True, config_overrides={"input_size": 96})
    assert model.mixup.neutral_index == 0


def test_output_mixup_is_checked_against_the_classes_by_its_builders_default() -> None:
    with pytest.raises(RecipeError, match=r"^settings: model_args.output_mixup is on .*angry, happy"):
        TrainConfig(model="test_irv1").validate_classes(["angry", "happy"])  # on by default
    TrainConfig(model="test_irv1").validate_classes(["angry", "neutral"])
    TrainConfig(model="test_irv1").validate_classes(["angry", "calm"])  # the model calls calm neutral
    TrainConfig(model="test_irv1", model_args={"output_mixup": False}).validate_classes(["angry", "happy"])
    TrainConfig(model="test_irv1_classifier").validate_classes(["angry", "happy"])  # off by default
    TrainConfig(model="test_tiny").validate_classes(["angry", "happy"])  # no output mix-up at all


# -------------------------------------------------------------------------------------------------- --init
def test_init_that_is_not_there_is_exit_2_before_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _train_argv(tmp_path / "no-such-data", tmp_path / "run", "--recipe", "seed002_kaskun", "--init",
                       str(tmp_path / "nothere.pth"))  # fmt: skip
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ferhub train: --init {tmp_path / 'nothere.pth'}: no such file;"), err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------------- pretrained weights
TRAIN_WITHOUT = (
    "Or train without them (from a random start): --set model_args.pretrained=false (in Python:"
    " model_args={..., 'pretrained': False})."
)


TRAIN_WITHOUT_FROZEN = (
    "Or train without them (from a random start): --set model_args.pretrained=false --set"
    " model_args.trainable_stages=3 (the recipe freezes backbone stages that the weights would fill: without"
    " them those would stay random; this trains every stage)."
)


@pytest.mark.parametrize(
    ("recipe", "trains", "total"),
    [
        ("seed003_xiang", "trains only its head: its stem and all 3 stages are frozen", 3),
        ("seed004_chen", "trains only its head and last 1 of 4 backbone stages: its stem and first 3", 4),
    ],
)
def test_frozen_stages_without_pretrained_weights_are_exit_2_before_the_data(
    recipe: str, trains: str, total: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The missing-weights message's way out (``--set model_args.pretrained=false``) kept the recipe's frozen
    stages: seed 003's IRV1 trained its head alone on a random, frozen backbone (89% of its weights, its
    BatchNorm statistics too) and predicted one class every epoch, with no word why. Now refused before the
    data is opened (it is not there at all here), naming the setting that trains every stage; with it the run
    goes on (to the data)."""
    out = tmp_path / "run"
    argv = ["train", "--recipe", recipe, "--data", str(tmp_path / "no-such-data"), "--precropped",
            "--no-progress", "--output-dir", str(out), "--set", "model_args.pretrained=false"]  # fmt: skip
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert trains in err, err
    assert f"Fix: --set model_args.trainable_stages={total} to train every stage" in err, err
    assert "no-such-data" not in err and not out.exists()
    assert cli_main([*argv, "--set", f"model_args.trainable_stages={total}"]) == 1
    assert "no-such-data" in capsys.readouterr().err and not out.exists()


def test_frozen_stages_check_names_the_setting_that_decides_and_spares_init_and_tiny() -> None:
    """The top-level ``trainable_stages`` (applied after the builder's) is the one named where set; ``--init``
    gives the frozen stages their weights, and ``--tiny``'s test models (no pretrained weights at all) keep a
    freezing recipe's stages for the smoke test."""
    from ferhub.training.fit import check_random_frozen, random_frozen_stages

    cfg = TrainConfig(model="resnet18", model_args={"pretrained": False}, trainable_stages=2)
    assert random_frozen_stages(cfg) == (2, 4)
    with pytest.raises(RecipeError, match=r"Fix: --set trainable_stages=4 to train every stage"):
        check_random_frozen(cfg)
    # a builder's own default counts: irv1_multiscale freezes every stage and loads nothing unless asked
    assert random_frozen_stages(TrainConfig(model="irv1_multiscale")) == (0, 3)
    for fine in (
        TrainConfig(model="resnet18", model_args={"pretrained": False}, trainable_stages=4),
        TrainConfig(model="resnet18", model_args={"pretrained": True, "trainable_stages": 1}),
        TrainConfig(model="resnet18", model_args={"trainable_stages": 1}, init="weights.safetensors"),
        tiny(load_recipe("seed003_xiang")[0]),
        tiny(load_recipe("seed004_chen")[0]),
    ):
        assert random_frozen_stages(fine) is None, fine
        check_random_frozen(fine)


def test_pretrained_weights_that_are_not_there_are_exit_1_before_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default recipe (ResNet18 from ImageNet weights) on a fresh install failed only after its data was
    prepared (minutes of face detection on a real data set), saying "This machine cannot download it" and
    the Python API's ``pretrained=False``: now before the data is opened (it is not there at all here),
    naming the file, the folder it goes in and the setting that trains without it."""
    from ferhub.errors import PretrainedWeightsError

    torch_home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    out = tmp_path / "run"
    argv = ["train", "--data", str(tmp_path / "no-such-data"), "--precropped", "--no-progress",
            "--output-dir", str(out)]  # fmt: skip
    assert cli_main(argv) == 1
    err = capsys.readouterr().err
    folder = torch_home / "hub" / "checkpoints"
    assert err.startswith(
        "ferhub train: torchvision weights ResNet18_Weights.IMAGENET1K_V1 not found at "
        f"{folder / 'resnet18-f37072fd.pth'}. ferhub does not download weights; put resnet18-f37072fd.pth in "
        f"{folder}: `python -c "
    ), err
    assert err.rstrip().endswith(TRAIN_WITHOUT) and err.count("\n") == 1, err
    assert "cannot download" not in err and not out.exists()
    # as it says: without them the run goes on, to the data (not there: a data error)
    assert cli_main([*argv, "--set", "model_args.pretrained=false"]) == 1
    assert "no-such-data" in capsys.readouterr().err and not out.exists()
    # the run's own build (the file gone after the check) words its end the same way
    with pytest.raises(PretrainedWeightsError) as e:
        build_model(TrainConfig(model="resnet18", model_args={"pretrained": True}), ("angry", "happy"))
    assert str(e.value).endswith(TRAIN_WITHOUT)


@pytest.mark.parametrize(
    ("recipe", "where"),
    [("ferhub_best", "resnet18-f37072fd.pth"), ("seed003_xiang", "20180402-114759-vggface2.pt"),
     ("seed001_wang:nasnet_weighted_lr8.1e-5", "timm/nasnetalarge.tf_in1k/model.safetensors")],
)  # fmt: skip
def test_each_pretrained_family_is_checked_without_reading_its_file(
    recipe: str, where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torchvision's, facenet-pytorch's and timm's weights are looked for by building the model on the meta
    device; a file that is there is not read (a broken one is the real build's to refuse)."""
    from ferhub.errors import PretrainedWeightsError
    from ferhub.pretrained import torchvision_weights_path
    from ferhub.training.fit import check_model_builds

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    cfg = load_recipe(*recipe.split(":"))[0]
    assert cfg.model_args.get("pretrained") is True
    with pytest.raises(PretrainedWeightsError, match=re.escape(where)) as e:
        check_model_builds(cfg)
    # seed 003 trains its head only: without the weights it must also train its stages (3 of IRV1)
    ending = TRAIN_WITHOUT_FROZEN if recipe == "seed003_xiang" else TRAIN_WITHOUT
    assert str(e.value).endswith(ending), e.value
    if cfg.model == "resnet18":
        from ferhub._compat import import_torchvision

        path = torchvision_weights_path(import_torchvision().models.ResNet18_Weights.IMAGENET1K_V1)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"not read by the check")
        check_model_builds(cfg)


def _training_checkpoint(path: Path, labels: tuple[str, ...], ema: bool) -> tuple[dict, dict | None]:
    """A checkpoint as a run writes it (model.*, ema.*, optim.*, rng.*); returns the model's and the EMA's
    weights."""
    from ferhub.models import create_model

    cfg = TrainConfig(model="test_resnet", ema=0.9 if ema else 0.0)
    torch.manual_seed(3)
    model = create_model("test_resnet", labels)
    averaged = EMA(model, 0.9) if ema else None
    if averaged is not None:
        with torch.no_grad():
            for p in averaged.module.parameters():
                p.add_(1.0)  # EMA weights unlike the model's
    save_checkpoint(path, model=model, optimizer=build_optimizer(model, cfg), schedule=LRSchedule(cfg, 1),
                    state=State(), cfg=cfg, ema=averaged)  # fmt: skip
    return model.state_dict(), averaged.module.state_dict() if averaged is not None else None


def test_a_runs_own_training_checkpoint_initialises_with_the_weights_it_releases(tmp_path: Path) -> None:
    labels = ("angry", "happy", "sad")
    plain, _ = _training_checkpoint(tmp_path / "last.safetensors", labels, ema=False)
    model = build_model(TrainConfig(model="test_resnet", init=str(tmp_path / "last.safetensors")), labels)
    assert all(torch.equal(v, plain[k]) for k, v in model.state_dict().items())
    # with EMA on, a run releases the EMA weights (fit._release): --init takes the same
    _, averaged = _training_checkpoint(tmp_path / "best.safetensors", labels, ema=True)
    model = build_model(TrainConfig(model="test_resnet", init=str(tmp_path / "best.safetensors")), labels)
    assert averaged is not None and all(torch.equal(v, averaged[k]) for k, v in model.state_dict().items())
    # the checkpoint names its classes: the classifier's rows follow them into another order
    swapped = build_model(TrainConfig(model="test_resnet", init=str(tmp_path / "best.safetensors")),
                          ("sad", "happy", "angry"))  # fmt: skip
    head = [k for k in averaged if k.startswith("net.fc.") or k.startswith("fc.")]
    assert head, sorted(averaged)[-4:]
    for k in head:
        assert torch.equal(swapped.state_dict()[k], averaged[k][[2, 1, 0]])


# ------------------------------------------------------------------------------------------------- k-fold
def test_kfold_with_a_class_smaller_than_k_names_it_and_the_option_before_cropping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _folders(tmp_path / "faces", 4, num_classes=4)
    for extra in sorted((data / "happy").iterdir())[2:]:  # happy: 2 images
        extra.unlink()
    _no_cropping(monkeypatch)
    assert cli_main(_train_argv(data, tmp_path / "run", "--recipe", "seed004_chen", "--kfold", "3")) == 2
    err = capsys.readouterr().err
    assert "--kfold 3:" in err and "class 'happy' (2 images) has fewer images than k=3 folds" in err, err
    assert "give --kfold 2, or 0 for none" in err and err.count("\n") == 1


def test_kfold_counts_short_after_cropping_and_the_split_itself_name_the_class() -> None:
    from ferhub.data import stratified_kfold
    from ferhub.training.protocol import make_plan

    labels = ("angry", "happy", "sad")
    crops = Crops(np.zeros((7, 8, 8), np.uint8), np.array([0, 0, 0, 1, 2, 2, 2]), labels)
    with pytest.raises(RecipeError, match=r"class 'happy' \(1 image\) has fewer .* give --kfold 0"):
        make_plan(TrainConfig(kfold=3), crops, None, None, {"train": "train"})
    with pytest.raises(ValueError, match=r"^class 'happy' \(1 image\) has fewer images than k=3 folds"):
        stratified_kfold(crops.targets, 3, labels=labels)


# -------------------------------------------------------------------------------------- the card's recipe
def test_the_card_says_which_settings_a_run_changed_from_its_recipe() -> None:
    from ferhub.training.results import recipe_markdown

    shipped = load_recipe("seed004_chen")[0]
    assert recipe_markdown(shipped, "d", {}).startswith(f"Recipe **seed004_chen**. {shipped.description}\n")
    changed = apply_overrides(tiny(shipped), ["epochs=3", "kfold=2", "model_args.trainable_stages=3"])
    text = recipe_markdown(changed, "d", {}).split("\n")[0]
    assert text.startswith("Recipe **seed004_chen**, with ")
    for part in ('`model` `"test_resnet"` (recipe: `"resnet18"`)', "`epochs` `3` (recipe: `20`)",
                 "`kfold` `2` (recipe: `5`)", "`model_args.trainable_stages` `3` (recipe: `1`)",
                 "`model_args.pretrained` not set (recipe: `true`)", "--tiny` smoke test"):  # fmt: skip
        assert part in text, (part, text)
    assert f"The recipe's own description (of its settings, not this run's): {shipped.description}" in text
    assert "step_epochs" not in text  # --tiny's step_epochs 1, of a schedule without steps: no change
    custom = TrainConfig(recipe="mine", description="Words about my recipe.")
    assert "The recipe describes itself as: Words about my recipe." in recipe_markdown(custom, "d", {})
    # a user's edited copy of a shipped recipe, named as its file is: its own words, no "changes" to the
    # shipped one it no longer is (the card quoted the paper's 43.24% and dropped the user's description)
    copy = TrainConfig.from_dict({**shipped.to_dict(), "description": "My lab's recipe.", "epochs": 50})
    text = recipe_markdown(copy, "d", {}).split("\n")[0]
    assert "The recipe describes itself as: My lab's recipe." in text and "recipe: `20`" not in text, text


# --------------------------------------------------------------------- the k-fold run's test split entry
def test_the_test_entry_of_a_kfold_run_has_its_own_protocol(tmp_path: Path) -> None:
    from ferhub import eval_results

    for split, n, seed in (("train", 4, 0), ("test", 2, 1)):
        images, targets, labels = transform_task(n, size=24, num_classes=3, seed=seed)
        write_class_folders(images, targets, labels, tmp_path / "data" / split)
    out = tmp_path / "run"
    argv = _train_argv(tmp_path / "data", out, "--recipe", "seed004_chen", "--kfold", "2", "--epochs", "1")
    assert cli_main(argv) == 0
    results = eval_results.read(out / "model")
    assert results is not None
    assert eval_results.usable(results)[1] == []  # every entry passes the validator
    kfold, test = results["results"]["data:default:kfold2"], results["results"]["data:default:test"]
    assert {"folds", "epoch_mean", "repeats"} <= set(kfold["protocol"])
    assert test["protocol"] == {"selection": "epoch_mean", "monitor": None, "selected_on": None,
                                "reported_on": "split test", "kfold": 2, "released_fold": 1,
                                # test images with a copy in the released fold's training data: none
                                "exact_duplicates": {"reported": 0},
                                # what trained the model, for evaluate to tell a result on it
                                "seen_data": [{"id": "data", "config": "default", "split": "train",
                                               "role": "train", "num_images": 12}]}  # fmt: skip
    assert test["num_images"] == 6
    card = (out / "model" / "README.md").read_text()
    acc = kfold["protocol"]["folds"]["accuracy"]  # stored as fractions; the card gives percent, as its tables
    assert 0 <= acc["mean"] <= 1 and acc["text"] == f"{acc['mean']:.4f} ± {acc['std']:.4f}"
    percent = f"{100 * acc['mean']:.2f}% ± {100 * acc['std']:.2f}%"
    assert f"2-fold mean ± std, accuracy: {percent}" in card  # the k-fold's figures, in the card as before


# -------------------------------------------------------------------------------------- --push-checkpoints
@pytest.mark.parametrize(
    ("monitor", "words"), [("loss", "val loss"), ("mean_class_recall", "val mean class recall")]
)
def test_pushed_checkpoints_name_the_value_that_chose_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, monitor: str, words: str
) -> None:
    from ferhub import hub
    from ferhub.training import run
    from ferhub.training.distributed import SINGLE_PROCESS

    pushed: list[dict[str, Any]] = []
    monkeypatch.setattr(
        hub, "save", lambda model, folder, card_context: pushed.append(card_context) or folder
    )
    monkeypatch.setattr(hub, "push", lambda folder, repo, **kw: pushed.append(kw))
    cfg = TrainConfig(model="test_tiny", recipe="seed002_kaskun", monitor=monitor, epochs=3, batch_size=4)
    opts = run.RunOptions(data="x", push_to_hub="org/name", push_checkpoints=True)
    session = run._Session(CPU, SINGLE_PROCESS, tmp_path, lambda _: None)
    on_best = run._checkpoint_pusher(cfg, opts, session)
    assert on_best is not None
    seen: list[dict[str, Any]] = []

    def record(model: torch.nn.Module, epoch: int, metrics: dict[str, Any]) -> None:
        seen.append(metrics)
        on_best(model, epoch, metrics)

    labels = ("angry", "happy")
    crops = Crops(np.random.default_rng(0).integers(0, 256, (8, 16, 16), dtype=np.uint8), np.arange(8) % 2,
                  labels)  # fmt: skip
    fit(cfg, crops, crops, tmp_path, device=CPU, progress=False, on_best=record, log=lambda _: None)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert seen and all("loss" in m for m in seen)
    value = seen[0][monitor]
    if monitor == "loss":  # the monitored loss, as the log records it
        assert value == log[0]["val_loss"]
    card, push = pushed[0], pushed[1]
    assert push["commit_message"] == f"seed002_kaskun: epoch 1, {words} {value:.4f}"
    assert f"(epoch 1, validation {words.removeprefix('val ')} {value:.4f}," in card["recipe"]
