"""Each recipe against its paper: the rows of its results table, its augmentations' ranges, probabilities and
sizes, its input size, its protocol. The numbers asserted here are the papers' (seeds 000-004), not ferhub's.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tasks import transform_task
from torch import nn

from ferhub.commands.train import get_args_parser, main, variant_lines
from ferhub.config import ModelConfig
from ferhub.data import write_class_folders
from ferhub.labels import FER7
from ferhub.models import create_model
from ferhub.training import LRSchedule, TrainConfig, epoch_batches, load_recipe
from ferhub.training.run import model_config
from ferhub.transforms import LUMA_NOISE_STD, TrainTransform

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# every own row of each paper's main results table -> (variant, the paper's number as printed)
TABLE_ROWS = {
    "seed000_zhai": {  # Table 2
        "sfew_net_b": "46.52%", "sfew_net_b_dal": "45.64%", "sfew_net_b_dal_mse": "48.51%",
        "fer2013_net_b": "60.91%", "fer2013_net_b_dal": "58.33%", "fer2013_net_b_dal_mse": "59.15%",
    },
    "seed001_wang": {  # Table 1 (test accuracy)
        "inception_v3_unweighted_lr2.2e-5": "73.02%", "inception_v3_unweighted_lr4.9e-5": "72.41%",
        "inception_v3_weighted_lr1.7e-5": "74.04%", "inception_v3_weighted_lr2.5e-5": "68.82%",
        "mobilenet_unweighted_lr7.1e-4": "71.33%", "mobilenet_unweighted_lr9.7e-4": "64.81%",
        "mobilenet_weighted_lr4.1e-4": "60.91%", "mobilenet_weighted_lr3.0e-4": "53.23%",
        "nasnet_weighted_lr8.1e-5": "51.59%", "nasnet_weighted_lr5.5e-5": "50.57%",
    },
    "seed002_kaskun": {"mini_xception": "66%", "fcn": "66%"},  # the text: both 66%
    "seed003_xiang": {  # Table 1
        "irv1_finetuned": "51.3", "irv1_mixup": "53.65", "irv1_mixup_ls": "54.19",
        "multiscale_mixup": "54.32", "multiscale_mixup_ls": "51.48",
    },
    "seed004_chen": {"last1": "26.51%", "last2": "43.24%", "last3": "14.42%"},  # Table 2 (validation)
}  # fmt: skip
DEFAULTS = {  # the paper's proposed / best configuration is each recipe's default
    "seed000_zhai": "fer2013_net_b_dal_mse",
    "seed001_wang": "inception_v3_weighted_lr1.7e-5",
    "seed002_kaskun": "mini_xception",
    "seed003_xiang": "multiscale_mixup",
    "seed004_chen": "last2",
}


@pytest.mark.parametrize("recipe", sorted(TABLE_ROWS))
def test_every_table_row_is_a_listed_variant_with_the_papers_number(recipe: str) -> None:
    variants = load_recipe(recipe)[1]
    assert set(TABLE_ROWS[recipe]) <= set(variants)
    for name, number in TABLE_ROWS[recipe].items():
        assert number in variants[name]["description"], name
    lines = variant_lines(recipe)
    assert len(lines) == len(variants)  # one line per variant
    assert [line.split()[0] for line in lines if line.endswith("[default]")] == [DEFAULTS[recipe]]
    readme = (Path(__file__).resolve().parent.parent / "train" / "README.md").read_text()
    for name in TABLE_ROWS[recipe]:  # the log maps the row to its exact command
        assert f"--recipe {recipe} --variant {name} " in readme, name


def test_list_variants_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    main(get_args_parser().parse_args(["--recipe", "seed003_xiang", "--list-variants"]))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("irv1_finetuned ") and "Table 1: 51.3" in out[0]
    assert out[3].startswith("multiscale_mixup ") and out[3].endswith("[default]")


# ------------------------------------------------------------------------------------ seed 000, Zhai et al.
def test_zhai_net_b_dal_and_softmax_mse_variants() -> None:
    net_b, dal, mse = (
        load_recipe("seed000_zhai", f"sfew_{v}")[0] for v in ("net_b", "net_b_dal", "net_b_dal_mse")
    )
    assert (net_b.model_args["dal"], net_b.loss) == (False, "ce")
    assert (dal.model_args["dal"], dal.loss) == (True, "ce")
    assert (mse.model_args["dal"], mse.loss) == (True, "softmax_mse")
    # Sec. 4.1: 144x144 gray crops cut on the 5 key points; SFEW: colour noise, no-face images excluded
    assert model_config(mse, FER7).input_size == 144 and model_config(mse, FER7).channels == 1
    assert mse.config_overrides["align"] == "similarity"
    assert mse.no_face == "skip" and mse.augment["color_noise"] > 0
    fer = load_recipe("seed000_zhai", "fer2013_net_b_dal_mse")[0]
    assert fer.augment == {}  # "We didn't do data augmentation on FER2013"
    assert (fer.optimizer, fer.nesterov, fer.momentum, fer.lr, fer.schedule) == (
        "sgd",
        False,
        0.9,
        1e-4,
        "constant",
    )


def test_zhai_softmax_mse_trains_exactly_like_cross_entropy(tmp_path: Path) -> None:
    """Eq. 4: Softmax-MSE's gradient is softmax CE's, so Net B_DAL and Net B_DAL_MSE reach the same
    weights."""
    from ferhub.training import read_checkpoint

    images, targets, labels = transform_task(3, size=24, num_classes=7, seed=7)
    data = write_class_folders(images, targets, labels, tmp_path / "data")
    weights, losses = [], []
    for variant in ("fer2013_net_b_dal", "fer2013_net_b_dal_mse"):
        out = tmp_path / variant
        argv = [
            "--recipe",
            "seed000_zhai",
            "--variant",
            variant,
            "--data",
            str(data),
            "--precropped",
            "--tiny",
            "--epochs",
            "2",
            "--output-dir",
            str(out),
            "--no-progress",
        ]
        summary = main(get_args_parser().parse_args(argv))
        tensors, meta = read_checkpoint(out / "checkpoints" / "last.safetensors")
        weights.append({k: v for k, v in tensors.items() if k.startswith("model.")})
        losses.append([h["train_loss"] for h in meta["state"]["history"]])
        assert summary["epochs"] == 2
    assert weights[0].keys() == weights[1].keys()
    for k in weights[0]:
        assert torch.allclose(weights[0][k], weights[1][k], atol=1e-6), k
    assert losses[0] != losses[1]  # the logged loss values differ (eq. 3 vs cross-entropy)


@pytest.mark.parametrize("layout", ["heldout", "val_split_reports", "kfold"])
def test_zhai_no_face_images_leave_the_training_set_not_the_test_set(layout: str) -> None:
    """Sec. 4.1: SFEW images that "contain no human face or the face ... could not be detected" are excluded
    from the *training* set, and the test set remains "unchanged": every image there reports (the whole image
    standing in). Seed 004 (fallback) trains on such images too: "the raw images would only be resized"."""
    from ferhub.data import Crops
    from ferhub.training.protocol import make_plan

    def crops(ids: np.ndarray) -> Crops:  # each crop's pixels hold its id; every 5th has no face
        images = np.broadcast_to(ids[:, None, None], (len(ids), 4, 4)).astype(np.uint8)
        return Crops(images, ids % 7, FER7, fallback=ids % 5 == 0)

    def ids(c: Crops | None) -> set[int]:
        return set() if c is None else set(c.images[:, 0, 0].tolist())

    cfg = load_recipe("seed000_zhai", "sfew_net_b_dal_mse")[0]
    assert cfg.no_face == "skip"
    if layout == "kfold":
        cfg = dataclasses.replace(cfg, kfold=2)
    train, val = crops(np.arange(140)), crops(np.arange(140, 210))
    names = {"train": "Train", "val": "Val", "test": "test"}
    plan = make_plan(cfg, train, val if layout == "val_split_reports" else None, None, names)
    no_face = {i for i in range(210) if i % 5 == 0}
    for fold in plan.folds:
        assert not (ids(fold.train) | ids(fold.select)) & no_face  # excluded from training (and selection)
    reported = set().union(*(ids(f.report) for f in plan.folds))
    if layout == "val_split_reports":
        assert reported == ids(val)  # SFEW's Val split reports whole, no-face images included
    elif layout == "kfold":
        assert reported == ids(train)  # every image reports once
    else:
        assert reported & no_face  # the held-out share keeps its no-face images
    seen = set().union(*(ids(f.train) | ids(f.select) | ids(f.report) for f in plan.folds))
    given = ids(train) | (ids(val) if layout == "val_split_reports" else set())
    assert seen == given - (no_face - reported)  # nothing else is lost
    chen = load_recipe("seed004_chen")[0]
    assert chen.no_face == "fallback"
    assert ids(make_plan(chen, train, None, None, names).folds[0].train) & no_face  # the whole image trains


@pytest.mark.parametrize("channels", [3, 1])
def test_colour_noise_std_and_probability(channels: int) -> None:
    config = ModelConfig(architecture="t", labels=FER7, input_size=32, channels=channels,
                         mean=(0.0,) * channels, std=(1.0,) * channels)  # fmt: skip
    batch = torch.full((400, 32, 32, 3) if channels == 3 else (400, 32, 32), 128, dtype=torch.uint8)
    aug = load_recipe("seed000_zhai", "sfew_net_b_dal_mse")[0].augment  # SFEW's training augmentation
    assert aug == {"color_noise": 0.05, "color_noise_p": 0.7}  # the paper gives no amount: the docstring's
    # the share of noisy crops from Table 1: "SFEW2.0 new" holds 3,194 images, of which SFEW's own are 958
    sfew_new = sum([356, 180, 327, 773, 580, 593, 385])
    assert sfew_new == 3194 and 1 - 958 / sfew_new == pytest.approx(aug["color_noise_p"], abs=0.01)
    out = TrainTransform.from_recipe(config, aug)(batch, torch.Generator().manual_seed(0))
    delta = out - 128 / 255
    noisy = delta.abs().amax(dim=(1, 2, 3)) > 0
    assert noisy.float().mean() == pytest.approx(0.7, abs=0.07)
    expected = 0.05 if channels == 3 else 0.05 * LUMA_NOISE_STD  # gray: what the colour noise leaves in luma
    assert delta[noisy].std().item() == pytest.approx(expected, rel=0.03)
    assert math.sqrt(0.299**2 + 0.587**2 + 0.114**2) == pytest.approx(LUMA_NOISE_STD)
    if channels == 3:  # independent per channel: "random information added to three channels"
        r, g = delta[noisy][:, 0].flatten(), delta[noisy][:, 1].flatten()
        assert abs(float(torch.corrcoef(torch.stack([r, g]))[0, 1])) < 0.02


# -------------------------------------------------------------------------------- seed 001, Wang & Mbutia
def test_wang_rows_set_the_network_loss_and_learning_rate() -> None:
    cfg = load_recipe("seed001_wang", "mobilenet_unweighted_lr9.7e-4")[0]
    assert (cfg.model, cfg.loss, cfg.lr) == ("mobilenet_v2", "ce", 9.7e-4)
    cfg = load_recipe("seed001_wang", "nasnet_weighted_lr5.5e-5")[0]
    assert (cfg.model, cfg.loss, cfg.lr) == ("nasnet_a_large", "weighted_ce", 5.5e-5)
    # "we tested the models using 10% of the original dataset": a 10% hold-out reports
    assert cfg.val_fraction == 0.1 and cfg.selection == "inner" and not cfg.kfold


@pytest.mark.slow
def test_wang_networks_and_their_sizes_against_the_papers_words() -> None:
    """Sec. 4: Inception V3 "has fewer number of parameters (25M)"; MobileNet has "only four million
    parameters"
    (V1: torchvision has none, ferhub trains V2); NASNet has "roughly the same number of parameters" as
    Inception
    V3, which no NASNet has. The recipe's docstring states these counts (8 classes, built on the meta device).
    """
    import ferhub.recipes.seed001_wang as wang
    from ferhub.labels import FER8

    def millions(name: str) -> float:
        with torch.device("meta"):
            return round(sum(p.numel() for p in create_model(name, FER8).parameters()) / 1e6, 1)

    sizes = {name: millions(name) for name in ("inception_v3", "mobilenet_v2", "nasnet_a_large")}
    assert sizes == {"inception_v3": 21.8, "mobilenet_v2": 2.2, "nasnet_a_large": 84.8}
    assert (
        sizes["inception_v3"] < 25 and sizes["mobilenet_v2"] < 4
    )  # the paper's counts are of bigger variants
    assert sizes["nasnet_a_large"] > 3 * sizes["inception_v3"]  # not "roughly the same"
    for size in sizes.values():
        assert f"{size}M" in wang.__doc__
    variants = load_recipe("seed001_wang")[1]
    assert {v["model"] for v in variants.values()} == set(sizes)
    for net in ("inception_v3", "mobilenet", "nasnet"):  # each network with and without eq. 1's weighting
        assert {v["loss"] for k, v in variants.items() if k.startswith(net + "_")} == {"ce", "weighted_ce"}


# -------------------------------------------------------------------------------------- seed 002, Kaskun
def test_kaskun_kernel_l2_is_kerass_on_the_stem_kernels_only() -> None:
    from ferhub.training.optim import kernel_penalty, regularized_kernels

    cfg = load_recipe("seed002_kaskun")[0]
    assert (cfg.kernel_l2, cfg.weight_decay) == (0.01, 0.0)  # l2(0.01) on kernels, no decay on everything
    model = create_model("mini_xception")
    kernels = regularized_kernels(model, cfg.kernel_l2_layers)
    assert [tuple(k.shape) for k in kernels] == [(8, 1, 3, 3), (8, 8, 3, 3)]  # the two plain 3x3 convs
    penalty = kernel_penalty(kernels, cfg.kernel_l2)
    assert float(penalty.detach()) == pytest.approx(
        0.01 * sum(float((k.detach() ** 2).sum()) for k in kernels)
    )
    penalty.backward()  # d/dw of 0.01 * w² is 0.02 w (Keras' l2 has no 1/2)
    assert torch.allclose(kernels[0].grad, 0.02 * kernels[0].detach())
    assert model.stem[0].bias is None and model.blocks[0].shortcut[0].weight.grad is None
    assert load_recipe("seed002_kaskun", "fcn")[0].kernel_l2 == 0  # simple_CNN has no regulariser


def test_kaskun_plateau_and_early_stopping_follow_keras_on_validation_loss() -> None:
    cfg = load_recipe("seed002_kaskun")[0]
    assert (cfg.monitor, cfg.schedule, cfg.plateau_rule) == ("loss", "plateau", "keras")
    assert (cfg.gamma, cfg.plateau_patience, cfg.early_stopping) == (0.1, 12, 50)  # patience 50, 50 / 4
    assert (cfg.batch_size, cfg.lr, model_config(cfg, FER7).input_size) == (32, 1e-3, 64)
    # Keras' ReduceLROnPlateau: the rate is cut when `wait` reaches `patience` (PyTorch: when it exceeds it)
    schedule = LRSchedule(
        TrainConfig(schedule="plateau", plateau_patience=2, plateau_rule="keras", gamma=0.1), 1
    )
    torch_rule = LRSchedule(TrainConfig(schedule="plateau", plateau_patience=2, gamma=0.1), 1)
    losses = [1.0, 0.9, 0.95, 0.9, 0.8]  # epochs 3 and 4 are not better than 0.9 (by more than 1e-4)
    factors = []
    for s in (schedule, torch_rule):
        out = []
        for loss in losses:
            s.end_epoch(-loss)
            out.append(s.factor(0, 0))
        factors.append(out)
    assert factors[0] == pytest.approx([1, 1, 1, 0.1, 0.1])  # cut after the 2nd flat epoch
    assert factors[1] == [1, 1, 1, 1, 1]  # torch would wait for a 3rd


# --------------------------------------------------------------------------------------- seed 003, Xiang
def test_xiang_trains_at_350_where_the_head_sees_9_5_3_px_maps() -> None:
    cfg = load_recipe("seed003_xiang")[0]
    config = model_config(cfg, FER7)
    assert config.input_size == 350  # Sec. 2.4: "crop and resize the image to 350-by-350"
    model = create_model("irv1_multiscale", config_overrides={"input_size": 350}).eval()
    with torch.inference_mode():
        maps = model.head.scales(model.forward_features(torch.zeros(1, 3, 350, 350)))
    assert [m.shape[-1] for m in maps] == [9, 9, 5, 3]  # at the old 160 px: 3, 3, 2, 1
    assert [m.shape[1] for m in maps] == [1792, 512, 256, 256]


def test_xiang_protocol_losses_and_schedule() -> None:
    cfg = load_recipe("seed003_xiang")[0]
    # stratified 2-fold, each configuration run 3 times and averaged; no epoch chosen on the test folds
    assert (cfg.kfold, cfg.repeats, cfg.selection) == (2, 3, "last")
    assert cfg.loss == "focal" and cfg.loss_args["label_smoothing"] == 0  # the best row has no smoothing
    assert load_recipe("seed003_xiang", "irv1_mixup_ls")[0].loss_args["label_smoothing"] == 0.3  # eq. 2, ε
    # "the learning rate decreases by 0.25 of the origin every fixed number of epochs"
    s = LRSchedule(cfg, 1)
    assert [s.factor(e, 0) for e in (0, 7, 8, 16, 24, 29)] == pytest.approx([1, 1, 0.75, 0.5, 0.25, 0.25])
    fine = load_recipe("seed003_xiang", "irv1_finetuned")[0]
    model = create_model(
        "test_irv1_classifier", **{k: v for k, v in fine.model_args.items() if k != "pretrained"}
    )
    assert all(p.requires_grad for p in model.parameters())  # "fine-tuned": nothing frozen
    frozen = create_model("test_irv1")
    assert not any(p.requires_grad for p in frozen.backbone.parameters())  # the proposed model's layer 1


def _capture_affine(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    import ferhub.transforms as t

    thetas: list[torch.Tensor] = []
    real = t.F.affine_grid

    def spy(theta: torch.Tensor, *a, **k):
        thetas.append(theta.detach().clone())
        return real(theta, *a, **k)

    monkeypatch.setattr(t.F, "affine_grid", spy)
    return thetas


def test_xiang_augmentation_ranges_probabilities_and_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sec. 2.4, item by item, measured on the transform's output and its sampled parameters."""
    aug = load_recipe("seed003_xiang")[0].augment
    n, size = 600, 350
    config = ModelConfig(
        architecture="t", labels=FER7, input_size=size, channels=3, mean=(0.0,) * 3, std=(1.0,) * 3
    )
    ones = torch.full((n, 24, 24, 3), 255, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    # 1. flip with p = 0.5
    ramp = torch.arange(24, dtype=torch.uint8).mul(10).expand(n, 24, 24).unsqueeze(-1).expand(n, 24, 24, 3)
    flipped = (
        TrainTransform.from_recipe(config, {"hflip": aug["hflip"]})(ramp.contiguous(), g)[:, 0, 0, 0] > 0.5
    )
    assert aug["hflip"] == 0.5 and flipped.float().mean() == pytest.approx(0.5, abs=0.06)
    # 2. rotation by up to 15 degrees with p = 0.5; 4. random resized crop, area 8-100%, aspect 3/4-4/3
    thetas = _capture_affine(monkeypatch)
    keys = ("rotate", "rotate_p", "resized_crop", "resized_crop_ratio")
    TrainTransform.from_recipe(config, {k: aug[k] for k in keys})(ones, g)
    (theta,) = thetas
    lin = theta[:, :, :2]
    half = lin.norm(dim=1)  # R diag(w, h): column norms are the crop's half-sides (grid units: fractions)
    angle = torch.atan2(lin[:, 1, 0], lin[:, 0, 0]).rad2deg()
    assert angle.abs().max() <= 15 + 1e-4 and (angle.abs() > 1e-6).float().mean() == pytest.approx(
        0.5, abs=0.06
    )
    area, ratio = half[:, 0] * half[:, 1], half[:, 0] / half[:, 1]
    inside = (half < 1).all(1)  # boxes not clipped to the image keep the drawn area and aspect exactly
    assert area.min() >= 0.08 - 1e-5 and area.max() <= 1 + 1e-5
    assert ratio[inside].min() >= 3 / 4 - 1e-4 and ratio[inside].max() <= 4 / 3 + 1e-4
    rot = lin / half.unsqueeze(1)  # R (a rotation: zoom and shift are off here)
    centre = (rot.transpose(1, 2) @ theta[:, :, 2:]).squeeze(-1)  # theta's shift is R c: c, the crop's centre
    assert ((centre.abs() + half) <= 1 + 1e-4).all()  # the crop lies inside the image
    # 3. histogram equalisation per channel with p = 0.5
    mixed = torch.from_numpy(np.random.default_rng(0).integers(60, 120, (n, 24, 24, 3), dtype=np.uint8))
    plain = TrainTransform.from_recipe(config, {})(mixed, g)
    eq = TrainTransform.from_recipe(config, {"hist_eq": aug["hist_eq"]})(mixed, g)
    changed = (eq - plain).abs().amax(dim=(1, 2, 3)) > 0
    assert changed.float().mean() == pytest.approx(0.5, abs=0.06)
    # 5. cutout: 8 holes of at most 6x6 px at 350 px, p = 0.5
    big = torch.full((200, size, size, 3), 255, dtype=torch.uint8)
    cut = TrainTransform.from_recipe(config, {k: aug[k] for k in ("cutout", "cutout_holes", "cutout_size")})(
        big, g
    )
    holes = cut[:, 0] == 0
    with_holes = holes.any(dim=(1, 2))
    assert with_holes.float().mean() == pytest.approx(0.5, abs=0.1)
    assert holes.sum(dim=(1, 2)).max() <= 8 * 36
    from scipy import ndimage

    sides, counts = [], []
    for mask in holes[with_holes].numpy():
        labelled, found = ndimage.label(mask)
        counts.append(found)
        sides += [
            max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start) for sl in ndimage.find_objects(labelled)
        ]
    assert max(counts) <= 8  # at most 8 holes (fewer where two overlap)
    assert np.mean(np.array(sides) <= 6) > 0.95 and max(sides) <= 12  # ≤ 6 px, except where two holes touch
    assert max(sides) >= 5  # and the sizes do reach the 6 px maximum's range


# ---------------------------------------------------------------------------------------- seed 004, Chen
@pytest.mark.parametrize("n", [1, 2, 3])
def test_chen_n_is_the_number_of_trainable_blocks(n: int) -> None:
    """n = 1: "only the last fully connected layer"; n = 2: the last stage (4 convolutional layers) + FC;
    n = 3: "three blocks involve 8 convolutional layers as well as the last fully connected layer"."""
    cfg = load_recipe("seed004_chen", f"last{n}")[0]
    model = create_model(cfg.model, FER7, **{k: v for k, v in cfg.model_args.items() if k != "pretrained"})
    trainable_3x3 = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)
                     and m.weight.requires_grad]  # fmt: skip
    assert len(trainable_3x3) == {1: 0, 2: 4, 3: 8}[n]
    fc = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert fc and all(p.requires_grad for m in fc for p in m.parameters())
    assert not model.net.conv1.weight.requires_grad


def test_chen_protocol_sampling_and_table_3_ablation() -> None:
    cfg = load_recipe("seed004_chen")[0]
    # "average training and testing accuracy ... in 20 epochs", 5-fold, 160 px, class-balanced sampling
    assert (cfg.selection, cfg.epochs, cfg.kfold, cfg.sampler) == ("epoch_mean", 20, 5, "balanced")
    assert model_config(cfg, FER7).input_size == 160 and cfg.no_face == "fallback"
    assert load_recipe("seed004_chen", "last2_no_face_extraction")[0].face_detection is False
    # "random sampling for evenly distributed labels": classes drawn equally often from 10:1 imbalanced data
    targets = np.array([0] * 1000 + [1] * 100)
    drawn = np.concatenate([targets[b] for e in range(5) for b in epoch_batches(1100, 100, e, 0, targets)])
    assert np.mean(drawn == 1) == pytest.approx(0.5, abs=0.02)
    shuffled = np.concatenate(epoch_batches(1100, 100, 0, 0))
    assert sorted(shuffled) == list(range(1100))  # the plain sampler: each crop once per epoch


@pytest.mark.parametrize("recipe", [*sorted(TABLE_ROWS), "ferhub_best"])
def test_every_recipes_augmentation_stays_in_its_stated_ranges(
    recipe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Flip probability, rotation angle (and its probability), zoom, shift and brightness, as each recipe
    states
    them (seed 001: flip/crop/scale/brightness; seed 002: Keras' rotation 10°, shifts and zoom of 10%)."""
    aug = load_recipe(recipe)[0].augment
    n = 800
    config = ModelConfig(architecture="t", labels=FER7, input_size=24, channels=1, mean=(0.0,), std=(1.0,))
    g = torch.Generator().manual_seed(1)
    if not aug:  # seed 000 on FER2013: "We didn't do data augmentation": crops pass through unchanged
        faces = torch.from_numpy(transform_task(4, size=24, num_classes=4)[0])
        assert torch.equal(
            TrainTransform.from_recipe(config, aug)(faces, g), faces.float().unsqueeze(1) / 255
        )
    if aug.get("hflip"):
        ramp = torch.arange(24, dtype=torch.uint8).mul(10).expand(n, 24, 24).contiguous()
        flipped = TrainTransform.from_recipe(config, {"hflip": aug["hflip"]})(ramp, g)[:, 0, 0, 0] > 0.5
        assert flipped.float().mean() == pytest.approx(aug["hflip"], abs=0.06)
    geometric = {k: aug[k] for k in ("rotate", "rotate_p", "scale", "translate") if k in aug}
    if geometric:
        thetas = _capture_affine(monkeypatch)
        TrainTransform.from_recipe(config, geometric)(torch.zeros(n, 24, 24, dtype=torch.uint8), g)
        (theta,) = thetas
        lin, shift = theta[:, :, :2], theta[:, :, 2]
        angle = torch.atan2(lin[:, 1, 0], lin[:, 0, 0]).rad2deg()
        zoom = 1 / lin[:, :, 0].norm(dim=1)
        rotate = aug.get("rotate", 0)
        assert angle.abs().max() <= rotate + 1e-4
        if rotate:
            assert angle.abs().max() > 0.9 * rotate  # the range is used, not just allowed
            share = (angle.abs() > 1e-6).float().mean()
            assert share == pytest.approx(aug.get("rotate_p", 1.0), abs=0.06)
        lo, hi = aug.get("scale", (1.0, 1.0))
        assert zoom.min() >= lo - 1e-4 and zoom.max() <= hi + 1e-4
        if hi > lo:
            assert zoom.min() < lo + 0.02 and zoom.max() > hi - 0.02
        # grid units span [-1, 1]: a shift of t of the side is 2t
        assert shift.abs().max() <= 2 * aug.get("translate", 0) + 1e-5
    if aug.get("brightness"):
        b = aug["brightness"]
        gray = torch.full((n, 24, 24), 100, dtype=torch.uint8)
        factor = TrainTransform.from_recipe(config, {"brightness": b})(gray, g)[:, 0, 0, 0] / (100 / 255)
        assert factor.min() >= 1 - b - 1e-4 and factor.max() <= 1 + b + 1e-4
        assert factor.min() < 1 - 0.9 * b and factor.max() > 1 + 0.9 * b
