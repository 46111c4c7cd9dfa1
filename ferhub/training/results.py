"""What a training run publishes: its ``eval_results.json`` entries and the recipe section of the model
card."""

from __future__ import annotations

import json
from typing import Any

from ferhub.training.settings import TrainConfig


def result_entry(
    summary: dict[str, Any],
    *,
    dataset: str,
    split: str | None,
    tta: str | None,
    command: str,
    name: str | None = None,
    num_images: int | None = None,
) -> dict[str, Any]:
    """One ``eval_results.json`` entry for a scored set, built by the schema's owner
    (:mod:`ferhub.eval_results`). ``num_images``: the images scored, when not the confusion matrix's total
    (repeats predict each image once per repeat)."""
    from ferhub.eval_results import make_entry

    return make_entry(
        summary,
        dataset={"id": dataset, "split": split, "name": name},
        tta=tta,
        command=command,
        source="training",
        num_images=num_images,
    )


def eval_results(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``eval_results.json`` document holding ``entries``, for :func:`ferhub.hub.save` to write."""
    from ferhub.eval_results import key_of, merge

    return merge(None, {key_of(e): e for e in entries})


# The card's settings table, in this order: the settings that define the model, its training schedule and the
# protocol. A setting that only some runs use (_used) is listed where the run uses it, whatever its value
# (sgd's `nesterov: false` is part of seed 000's recipe), and nowhere else; any other setting is listed when
# it is on (None, 0, False or empty: off).
_CARD_KEYS = [
    "model",
    "model_args",
    "config_overrides",
    "trainable_stages",
    "backbone_lr_scale",
    "freeze_bn",
    "epochs",
    "batch_size",
    "optimizer",
    "momentum",
    "nesterov",
    "lr",
    "weight_decay",
    "schedule",
    "step_epochs",
    "plateau_patience",
    "plateau_rule",
    "gamma",
    "min_lr",
    "warmup_epochs",
    "loss",
    "loss_args",
    "kernel_l2",
    "kernel_l2_layers",
    "mixup",
    "cutmix",
    "augment",
    "ema",
    "grad_clip",
    "early_stopping",
    "monitor",
    "kfold",
    "val_fraction",
    "selection",
    "repeats",
    "sampler",
    "tta",
    "no_face",
    "face_detection",
    "seed",
]
_OFF = (None, {}, [], 0, 0.0, False)


def _used(cfg: TrainConfig, carved: bool) -> dict[str, bool]:
    """The settings that only some runs use: whether this one does."""
    step = cfg.schedule in ("step", "step_linear")
    return {
        "momentum": cfg.optimizer == "sgd",
        "nesterov": cfg.optimizer == "sgd",
        "step_epochs": step,
        "plateau_patience": cfg.schedule == "plateau",
        "plateau_rule": cfg.schedule == "plateau",
        "gamma": step or cfg.schedule == "plateau",
        "kernel_l2_layers": cfg.kernel_l2 > 0,
        # the monitored value chooses the epoch only with selection "inner" (the protocol records null else)
        "monitor": cfg.selection == "inner",
        "val_fraction": carved,
        # True is the default: only a run without face detection (seed 004's Table 3 ablation) says so
        "face_detection": not cfg.face_detection,
    }


def card_settings(cfg: TrainConfig, carved: bool = False) -> dict[str, Any]:
    """The settings the card's table lists (see ``_CARD_KEYS``); ``carved``: whether ``val_fraction`` took a
    share of the data (:attr:`ferhub.training.protocol.Plan.carved`)."""
    d, used = cfg.to_dict(), _used(cfg, carved)
    return {k: d[k] for k in _CARD_KEYS if used.get(k, d[k] not in _OFF)}


def recipe_markdown(
    cfg: TrainConfig, data_desc: str, protocol: dict[str, Any], *, carved: bool = False
) -> str:
    """The card's *Training* section: the recipe, its data and protocol, and its settings table
    (:func:`card_settings`)."""
    rows = "\n".join(f"| `{k}` | `{json.dumps(v)}` |" for k, v in card_settings(cfg, carved).items())
    text = (
        f"Recipe **{cfg.recipe}**. {cfg.description}\n\nData: {data_desc}.\n\n| setting | value"
        f" |\n|---|---|\n{rows}\n"
    )
    folds = f"{cfg.kfold}-fold" if cfg.repeats == 1 else f"{cfg.kfold}-fold x {cfg.repeats} repeats,"
    for key, label in (("folds", folds), ("repeat_results", f"{cfg.repeats} repeats,")):
        if key in protocol:
            text += "\n" + "\n".join(
                f"- {label} mean ± std, {k.replace('_', ' ')}: {v['text']}"
                for k, v in protocol[key].items()
                if k in ("accuracy", "mean_class_recall", "macro_f1")
            )
    if "epoch_mean" in protocol:
        text += (
            f"\n- held-out accuracy averaged over the {cfg.epochs} epochs:"
            f" {protocol['epoch_mean']['accuracy']:.4f}"
        )
    return text
