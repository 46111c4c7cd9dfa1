"""What a training run publishes: its ``eval_results.json`` entries and the recipe section of the model
card."""

from __future__ import annotations

import json
from dataclasses import fields
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
    config: str | None = None,
) -> dict[str, Any]:
    """One ``eval_results.json`` entry for a scored set, built by the schema's owner
    (:mod:`ferhub.eval_results`). ``num_images``: the images scored, when not the confusion matrix's total
    (repeats predict each image once per repeat); ``config``: a Hub dataset's configuration (its key's
    middle part, as ``ferhub evaluate --data-config`` records it)."""
    from ferhub.eval_results import make_entry

    return make_entry(
        summary,
        dataset={"id": dataset, "config": config, "split": split, "name": name},
        tta=tta,
        command=command,
        source="training",
        num_images=num_images,
    )


def eval_results(entries: list[dict[str, Any]], seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``eval_results.json`` document holding ``entries``, for :func:`ferhub.hub.save` to write, with
    ``seen`` (the data that trained or chose the model) as its ``training.seen_data``."""
    from ferhub.eval_results import key_of, merge

    return merge(None, {key_of(e): e for e in entries}, seen=seen)


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


_UNSET = object()  # a nested setting (model_args.x, augment.y) one side does not set
_NOT_COMPARED = ("recipe", "description", "citation")  # words about the recipe, not settings of the run


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    """The settings with each group (``model_args``, ``augment``, ...) spread into dotted keys."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update({f"{k}.{sub}": x for sub, x in v.items()})
        elif isinstance(v, dict):
            out[k] = _UNSET  # an empty group sets nothing
        else:
            out[k] = v
    return out


def recipe_changes(cfg: TrainConfig) -> tuple[TrainConfig, list[tuple[str, Any, Any]]] | None:
    """The shipped recipe ``cfg`` names (``NAME`` or ``NAME:VARIANT``) as it ships, and each setting this run
    changed from it (``--set``, ``--epochs``, ``--kfold``, ``--tiny`` ...): ``(setting, run's value, recipe's
    value)``, a value ``_UNSET`` where that side does not set it. ``None`` when ``cfg.recipe`` is not a
    shipped recipe (a ``.py`` file or a config built in Python: nothing to compare with), or describes itself
    otherwise (a user's copy of one, named as its file is)."""
    from ferhub.training.recipes import list_recipes, load_recipe
    from ferhub.training.settings import RecipeError

    name, _, variant = cfg.recipe.partition(":")
    if name not in list_recipes():
        return None
    try:
        base = load_recipe(name, variant or None)[0]
    except RecipeError:  # a variant the recipe no longer has
        return None
    if base.description != cfg.description:  # another recipe under a shipped name (a user's edited copy)
        return None
    # a setting neither uses (step_epochs without a step schedule, --tiny's 1) changes nothing
    used_ours, used_theirs = _used(cfg, carved=True), _used(base, carved=True)
    unused = {k for k in used_ours if not used_ours[k] and not used_theirs[k]}
    ours = _flat({k: v for k, v in cfg.to_dict().items() if k not in _NOT_COMPARED and k not in unused})
    theirs = _flat({k: v for k, v in base.to_dict().items() if k not in _NOT_COMPARED and k not in unused})
    order = {f.name: i for i, f in enumerate(fields(TrainConfig))}  # the settings' own order, groups spread
    changed = []
    for key in sorted({**theirs, **ours}, key=lambda k: order[k.split(".")[0]]):
        a, b = ours.get(key, _UNSET), theirs.get(key, _UNSET)
        if a is _UNSET and b is _UNSET:
            continue
        if a is _UNSET or b is _UNSET or json.dumps(a, sort_keys=True) != json.dumps(b, sort_keys=True):
            changed.append((key, a, b))
    return base, changed


def _value(v: Any) -> str:
    return "not set" if v is _UNSET else f"`{json.dumps(v)}`"


def _recipe_intro(cfg: TrainConfig) -> str:
    """The recipe's name and description, as true of this run: the description is the recipe's words about
    its own settings, so a run that changed them says which and quotes the description as the recipe's."""
    compared = recipe_changes(cfg)
    if compared is None:  # a recipe file or Python settings: its words, beside the settings this run used
        if not cfg.description:
            return f"Recipe **{cfg.recipe}**."
        return (
            f"Recipe **{cfg.recipe}**. The recipe describes itself as: {cfg.description} (the table below"
            " lists the settings this run used)."
        )
    base, changed = compared
    if not changed:
        return f"Recipe **{cfg.recipe}**. {cfg.description}".rstrip()
    listed = "; ".join(f"`{k}` {_value(a)} (recipe: {_value(b)})" for k, a, b in changed)
    text = f"Recipe **{cfg.recipe}**, with {len(changed)} of its settings changed for this run: {listed}."
    if cfg.model == base.tiny_model != base.model:
        text += (
            f" This is a `--tiny` smoke test: the tiny model {cfg.model} stands in for the recipe's"
            f" {base.model}."
        )
    if base.description:
        text += f" The recipe's own description (of its settings, not this run's): {base.description}"
    return text


def recipe_markdown(
    cfg: TrainConfig, data_desc: str, protocol: dict[str, Any], *, carved: bool = False
) -> str:
    """The card's *Training* section: the recipe (and the settings this run changed from it,
    :func:`recipe_changes`), its data and protocol, and its settings table (:func:`card_settings`); its
    figures in the card's units (accuracy in percent, as the Evaluation tables give it)."""
    from ferhub.hub.card import format_mean_std, format_metric

    rows = "\n".join(f"| `{k}` | `{json.dumps(v)}` |" for k, v in card_settings(cfg, carved).items())
    text = f"{_recipe_intro(cfg)}\n\nData: {data_desc}.\n\n| setting | value |\n|---|---|\n{rows}\n"
    folds = f"{cfg.kfold}-fold" if cfg.repeats == 1 else f"{cfg.kfold}-fold x {cfg.repeats} repeats,"
    for key, label in (("folds", folds), ("repeat_results", f"{cfg.repeats} repeats,")):
        if key in protocol:
            text += "\n" + "\n".join(
                f"- {label} mean ± std, {k.replace('_', ' ')}: {format_mean_std(k, v['mean'], v['std'])}"
                for k, v in protocol[key].items()
                if k in ("accuracy", "mean_class_recall", "macro_f1")
            )
    if "epoch_mean" in protocol:
        text += (
            f"\n- held-out accuracy averaged over the {cfg.epochs} epochs:"
            f" {format_metric('accuracy', protocol['epoch_mean']['accuracy'])}"
        )
    return text
