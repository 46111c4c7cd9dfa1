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
) -> dict[str, Any]:
    """One ``eval_results.json`` entry for a scored set, built by the schema's owner
    (:mod:`ferhub.eval_results`)."""
    from ferhub.eval_results import make_entry

    return make_entry(
        summary,
        dataset={"id": dataset, "split": split, "name": name},
        tta=tta,
        command=command,
        source="training",
    )


def eval_results(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``eval_results.json`` document holding ``entries``, for :func:`ferhub.hub.save` to write."""
    from ferhub.eval_results import key_of, merge

    return merge(None, {key_of(e): e for e in entries})


_CARD_KEYS = [
    "model",
    "model_args",
    "config_overrides",
    "trainable_stages",
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "weight_decay",
    "schedule",
    "warmup_epochs",
    "loss",
    "loss_args",
    "kernel_l2",
    "mixup",
    "cutmix",
    "augment",
    "ema",
    "early_stopping",
    "monitor",
    "kfold",
    "selection",
    "repeats",
    "sampler",
    "tta",
    "no_face",
    "seed",
]


def recipe_markdown(cfg: TrainConfig, data_desc: str, protocol: dict[str, Any]) -> str:
    """The card's *Training* section: the recipe, its data and protocol, and its settings table."""
    d = cfg.to_dict()
    rows = "\n".join(
        f"| `{k}` | `{json.dumps(d[k])}` |" for k in _CARD_KEYS if d[k] not in (None, {}, [], 0, 0.0, False)
    )
    text = (
        f"Recipe **{cfg.recipe}**. {cfg.description}\n\nData: {data_desc}.\n\n| setting | value"
        f" |\n|---|---|\n{rows}\n"
    )
    for key, label in (("folds", f"{cfg.kfold}-fold"), ("repeat_results", f"{cfg.repeats} repeats,")):
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
