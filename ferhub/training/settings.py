"""The settings of one training run (:class:`TrainConfig`): what a recipe file fills and ``--set``
overrides."""

from __future__ import annotations

import functools
import json
import math
import typing
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ferhub.config import brief
from ferhub.errors import RecipeError
from ferhub.transforms import TTA_METHODS, TrainTransform

SELECTIONS = ("inner", "last", "epoch_mean")
SCHEDULES = ("constant", "cosine", "step", "step_linear", "plateau")
# the settings with a fixed set of values (tta may also be null)
CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adam", "adamw", "sgd"),
    "schedule": SCHEDULES,
    "plateau_rule": ("torch", "keras"),
    "amp": ("none", "bf16", "fp16"),
    "monitor": ("mean_class_recall", "loss"),
    "selection": SELECTIONS,
    "sampler": ("shuffle", "balanced"),
    "tta": tuple(TTA_METHODS),
    "no_face": ("fallback", "skip"),
}
# (lowest, highest, whether the bounds themselves are allowed) of the numeric settings; None: no upper bound
_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "epochs": (1, None, True),
    "batch_size": (1, None, True),
    "step_epochs": (1, None, True),
    "repeats": (1, None, True),
    "plateau_patience": (0, None, True),
    "early_stopping": (0, None, True),
    "seed": (0, None, True),  # numpy's seeding takes no negative seed
    "trainable_stages": (0, None, True),
    "lr": (0, None, False),
    "backbone_lr_scale": (0, None, True),
    "weight_decay": (0, None, True),
    "momentum": (0, 1, True),
    "warmup_epochs": (0, None, True),
    "gamma": (0, None, True),
    "min_lr": (0, None, True),
    "kernel_l2": (0, None, True),
    "mixup": (0, None, True),
    "cutmix": (0, None, True),
    "grad_clip": (0, None, True),
    "val_fraction": (0, 1, False),  # a share of each class: strictly between 0 and 1
}
# augment options that are probabilities or fractions of the crop side, so at most 1
_AUGMENT_AT_MOST_1 = {"hflip", "rotate_p", "translate", "brightness", "contrast", "color_noise_p", "hist_eq",
                      "cutout", "cutout_size", "erasing"}  # fmt: skip
_AUGMENT_FRACTION_PAIRS = {"resized_crop", "erasing_scale"}  # area fractions: in (0, 1]
# the losses that fit() gives the training set's class counts (seed 001's class-weighted CE)
CLASS_COUNT_LOSSES = ("weighted_ce", "weighted_cross_entropy", "class_weighted")
# loss_args of one value per class (focal alpha, class weights, counts): only the data says how many
CLASS_VECTOR_ARGS = ("alpha", "weight", "class_counts")


@dataclass
class TrainConfig:
    """Every setting of one training run; a recipe file fills it, ``--set key=value`` overrides it."""

    recipe: str = "custom"
    model: str = "mini_xception"
    model_args: dict[str, Any] = field(default_factory=dict)
    config_overrides: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields: input_size, ...
    tiny_model: str = "test_tiny"  # the registered tiny variant --tiny swaps in
    init: str | None = None  # local checkpoint to start from (safetensors or weights_only torch file)
    trainable_stages: int | None = None  # seed 004: train the head + last n backbone stages
    backbone_lr_scale: float | None = None  # backbone lr = lr * this (None: same lr)
    freeze_bn: bool = False  # keep every BatchNorm in eval mode (running statistics, no batch statistics)
    sync_bn: bool = False  # multi-GPU: SyncBatchNorm (batch statistics over all GPUs; CUDA only)
    epochs: int = 30
    batch_size: int = 64  # global batch, over all processes
    optimizer: str = "adam"  # adam | adamw | sgd (Nesterov momentum)
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True  # sgd only
    schedule: str = "constant"  # constant | cosine | step | step_linear | plateau
    warmup_epochs: float = 0.0
    step_epochs: int = 10  # step: lr *= gamma every step_epochs; step_linear: lr -= gamma * initial lr
    gamma: float = 0.1
    plateau_patience: int = 5  # plateau: epochs without a better monitored value before lr *= gamma
    plateau_rule: str = (
        "torch"  # torch: cut after patience+1 flat epochs | keras: after patience (Keras' rule)
    )
    min_lr: float = 0.0
    loss: str = "ce"
    loss_args: dict[str, Any] = field(default_factory=dict)
    kernel_l2: float = 0.0  # Keras' kernel_regularizer=l2(x): loss += x * sum(w**2) over conv/linear kernels
    kernel_l2_layers: list[str] = field(default_factory=list)  # module-name prefixes it applies to ([] = all)
    mixup: float = 0.0  # Beta(alpha, alpha) mixup of inputs and targets; 0 = off
    cutmix: float = 0.0  # Beta(alpha, alpha) CutMix; 0 = off (with both on, each batch picks one)
    augment: dict[str, Any] = field(default_factory=dict)  # TrainTransform options
    ema: float = 0.0  # EMA decay of the weights (e.g. 0.999); 0 = off; the EMA weights are evaluated/saved
    early_stopping: int = 0  # stop after this many epochs without a better monitored value; 0 = off
    monitor: str = "mean_class_recall"  # what selects the epoch and drives plateau/early stopping: or "loss"
    grad_clip: float = 0.0
    amp: str = "none"  # none | bf16 | fp16 (CUDA only)
    channels_last: bool = True  # on CUDA
    kfold: int = 0  # >= 2: stratified k-fold cross-validation, mean ± std reported
    val_fraction: float = 0.1  # share held out (stratified) for each set a split must provide
    # how the released epoch is chosen, and so which data reports: "inner" (an inner validation split, or the
    # source's own, selects the epoch; held-out data never seen in selection reports), "last" (no selection:
    # the last epoch of a fixed schedule) or "epoch_mean" ("last", and the report is the mean over epochs)
    selection: str = "inner"
    repeats: int = 1  # run the whole protocol this many times (seeds seed, seed+1, ...): mean ± std reported
    sampler: str = "shuffle"  # shuffle (each crop once an epoch) | balanced (classes drawn equally often)
    tta: str | None = (
        None  # test-time augmentation in evaluation: None, "flip" or "tencrop" (transforms.tta_views)
    )
    no_face: str = "fallback"  # fallback (seed 004: whole image) | skip (seed 000: not in training/selection)
    face_detection: bool = True  # False: no detector, every image resized whole (seed 004's Table 3 ablation)
    seed: int = 0
    citation: str = ""
    description: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "recipe") -> TrainConfig:
        """Settings from a dict (a recipe, ``--set`` applied), refused with :class:`RecipeError` unless every
        key is known and every value valid (:meth:`validate`)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(f"{source}: unknown settings {unknown}; known: {sorted(known)}")
        cfg = cls(**data)
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "recipe") -> None:
        """Refuse settings a run cannot use, before any data loads: each value's type (an integer must be
        one), its range or choices, the ``augment`` options, the loss and the model, and the settings that
        exclude each other. The one-line :class:`RecipeError` names ``source`` and the setting."""
        problem = (
            _type_problem(self)
            or _value_problem(self)
            or _augment_problem(self.augment)
            or _loss_problem(self)
            or _model_problem(self)
            or _batch_problem(self)
        )
        if problem is not None:
            raise RecipeError(_message(source, *problem))

    def validate_classes(
        self, labels: Sequence[str], source: str = "settings", counts: Sequence[int] | None = None
    ) -> None:
        """Refuse the settings that must fit the data's classes, once its source has named them (before any
        image is decoded): a loss argument of one value per class (``loss_args.alpha`` of focal loss, a
        class ``weight``) needs exactly one per class, in the order of ``labels``; seed 003's output mix-up
        needs a ``neutral`` class; and, given ``counts`` (images per class, in the order of ``labels``),
        ``kfold`` needs at least ``kfold`` images of every class present."""
        if _output_mixup(self) and "neutral" not in map(_canonical, labels):
            raise RecipeError(
                _message(
                    source,
                    "model_args.output_mixup",
                    "is on (the model's output mix-up mixes every class with 'neutral', seed 003's eq. 3),"
                    f" but the data's classes ({', '.join(labels)}) have no 'neutral'; turn it off:"
                    " --set model_args.output_mixup=false (in Python: model_args={..., 'output_mixup':"
                    " False})",
                )
            )
        if self.kfold and counts is not None:
            _check_kfold_counts(self.kfold, labels, counts)
        for key in CLASS_VECTOR_ARGS:
            value = self.loss_args.get(key)
            # a value that is not a list was refused by validate() (the loss is built there)
            if isinstance(value, (list, tuple)) and len(value) != len(labels):
                raise RecipeError(
                    _message(
                        source,
                        f"loss_args.{key}",
                        f"has {len(value)} values but the data has {len(labels)} classes"
                        f" ({', '.join(labels)}); give one value per class, in that order",
                    )
                )

    def default_output_dir(self) -> Path:
        """Where a run writes without ``--output-dir``: ``runs/RECIPE``, a variant's ``:`` as ``-``."""
        return Path("runs") / self.recipe.replace(":", "-")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _output_mixup(cfg: TrainConfig) -> bool:
    """Whether ``cfg``'s model is built with output mix-up (``model_args.output_mixup``, else its builder's
    default: on for seed 003's multi-scale IRV1, off for the fine-tuned one)."""
    import inspect

    from ferhub.models._registry import get_entry

    if "output_mixup" in cfg.model_args:
        return bool(cfg.model_args["output_mixup"])
    param = inspect.signature(get_entry(cfg.model).builder).parameters.get("output_mixup")
    return param is not None and param.default is True


def _canonical(label: str) -> str:
    """``label`` as the model config will name it (``calm`` is ``neutral``); a name ferhub does not know is
    kept (the model refuses it when built)."""
    from ferhub.labels import UnknownLabelError, canonical

    try:
        return canonical(label)
    except UnknownLabelError:
        return label


def _check_kfold_counts(k: int, labels: Sequence[str], counts: Sequence[int]) -> None:
    """Every class present in at least ``k`` images, so each of the ``k`` folds has it (kfold_problem)."""
    problem = kfold_problem(k, labels, counts)
    if problem is not None:
        raise RecipeError(problem)


def kfold_problem(k: int, labels: Sequence[str], counts: Sequence[int]) -> str | None:
    """What keeps stratified ``k``-fold cross-validation from spreading every class over the folds (a class
    in fewer than ``k`` images), worded for the run (``--kfold``) with the class by its label; else
    ``None``."""
    small = [(labels[i], int(n)) for i, n in enumerate(counts) if 0 < n < k]
    if not small:
        return None
    named = ", ".join(f"{name!r} ({n} image{'s' if n != 1 else ''})" for name, n in small)
    which, has = ("class", "has") if len(small) == 1 else ("classes", "have")
    fewest = min(n for _, n in small)
    if fewest < 2:
        fix = "give --kfold 0 (no cross-validation)"
    else:  # --kfold 1 is no k-fold: refused
        fix = f"give --kfold {'2' if fewest == 2 else f'2 to {fewest}'}, or 0 for none"
    more = " and ".join(repr(name) for name, _ in small)
    return (
        f"--kfold {k}: stratified k-fold puts every class in each of the {k} folds, but {which} {named} {has}"
        f" fewer images than k={k} folds; {fix}, or give more images of {more}"
    )


# ------------------------------------------------------------------------------------------------ validation
# A problem is (setting, what is wrong); _message words it for the source ("--set lr: must be ...").
Problem = tuple[str, str]
SETTING_TYPES = typing.get_type_hints(TrainConfig)  # each setting's declared type


def _message(source: str, key: str, what: str) -> str:
    # --set names the setting as the user typed it; a recipe or the command line names itself first
    return f"--set {key}: {what}" if source == "--set" else f"{source}: {key} {what}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind_problem(hint: Any, value: Any) -> str | None:
    """Why ``value`` does not fit the type ``hint`` (int, float, bool, str, a dict, a list of str, or one of
    those or None), else ``None``."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next(a for a in args if a is not type(None)) if optional else hint
    origin = typing.get_origin(base)
    if base is int:
        kind, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif base is float:
        kind, ok = "a number", _is_number(value)
        if ok and not math.isfinite(value):
            return f"must be a finite number, got {brief(value)}"
    elif base is bool:
        kind, ok = "true or false", isinstance(value, bool)
    elif base is str:
        kind, ok = "a string", isinstance(value, str)
    elif origin is dict:
        kind, ok = 'an object (e.g. {"key": 1})', isinstance(value, dict)
    elif origin is list:
        kind = "a list of strings"
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    else:  # a setting of a type not listed here: nothing to check
        return None
    if ok or (optional and value is None):
        return None
    return f"must be {kind}{' or null' if optional else ''}, got {brief(value)}"


def _type_problem(cfg: TrainConfig) -> Problem | None:
    for f in fields(cfg):
        if (why := _kind_problem(SETTING_TYPES[f.name], getattr(cfg, f.name))) is not None:
            return f.name, why
    return None


def _value_problem(cfg: TrainConfig) -> Problem | None:
    """Ranges, choices, and the settings that exclude each other (types are checked already)."""
    for key, allowed in CHOICES.items():
        value = getattr(cfg, key)
        if value not in allowed and not (key == "tta" and value is None):
            extra = "null or " if key == "tta" else ""
            return key, f"must be {extra}one of {', '.join(allowed)}; got {brief(value)}"
    for key, (low, high, bounds_ok) in _RANGES.items():
        value = getattr(cfg, key)
        if value is None:
            continue
        # an exclusive range excludes both ends: val_fraction 1 would leave nothing to train on, 0 nothing to
        # select or report on
        at_bound = value == low or (high is not None and value == high)
        if value < low or (high is not None and value > high) or (at_bound and not bounds_ok):
            if high is None:
                bound = f">= {low}" if bounds_ok else f"> {low}"
            else:
                bound = f"from {low} to {high}" if bounds_ok else f"between {low} and {high} (exclusive)"
            return key, f"must be {bound}, got {brief(value)}"
    if not 0 <= cfg.ema < 1:  # a decay of 1 would never move the averaged weights
        return "ema", f"must be from 0 (off) to below 1 (a decay, e.g. 0.999), got {brief(cfg.ema)}"
    if cfg.kfold != 0 and cfg.kfold < 2:
        return "kfold", f"must be 0 (off) or >= 2, got {brief(cfg.kfold)}"
    if cfg.selection != "inner" and (cfg.schedule == "plateau" or cfg.early_stopping):
        return "selection", (
            f"{cfg.selection!r} chooses nothing on validation data, so a plateau schedule or early stopping"
            " (both driven by it) cannot be used; use selection 'inner' or a fixed schedule"
        )
    return None


def _augment_problem(augment: dict[str, Any]) -> Problem | None:
    """The ``augment`` options against :class:`ferhub.transforms.TrainTransform`'s: known names, numbers in
    range, ``[min, max]`` pairs in order."""
    hints = {k: v for k, v in typing.get_type_hints(TrainTransform).items() if k != "config"}
    for name, value in augment.items():
        key = f"augment.{name}"
        if name not in hints:
            return key, f"is not an augmentation option; known: {', '.join(sorted(hints))}"
        hint = hints[name]
        optional = type(None) in typing.get_args(hint)
        if optional and value is None:  # an option that null turns off
            continue
        base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
        pair = typing.get_origin(base) is tuple
        if pair:
            numbers = isinstance(value, (list, tuple)) and len(value) == 2 and all(map(_is_number, value))
            if not numbers or not all(math.isfinite(v) and v > 0 for v in value):
                return key, f"must be [min, max], two positive numbers, got {brief(value)}"
            if value[0] > value[1]:
                return key, f"must be [min, max] with min <= max, got {brief(value)}"
            if name in _AUGMENT_FRACTION_PAIRS and value[1] > 1:
                return key, f"must be fractions of the crop area, at most 1, got {brief(value)}"
            continue
        why = _kind_problem(hint, value)
        if why is not None:
            return key, why
        if value < 0 or (name in _AUGMENT_AT_MOST_1 and value > 1):
            bound = "from 0 to 1" if name in _AUGMENT_AT_MOST_1 else ">= 0"
            return key, f"must be {bound}, got {brief(value)}"
    return None


def _loss_problem(cfg: TrainConfig) -> Problem | None:
    """Build the loss once as :func:`ferhub.training.fit.fit` will (cheap), so a bad name or argument is
    refused now rather than after the data is prepared."""
    from ferhub.losses import build_loss

    kwargs = dict(cfg.loss_args)
    if cfg.loss in CLASS_COUNT_LOSSES:
        kwargs.setdefault("class_counts", [1, 1])  # the training set's counts take their place in the run
    try:
        build_loss(cfg.loss, **kwargs)
    except TypeError as e:  # an argument the loss does not take
        return "loss_args", f"not accepted by loss {cfg.loss!r} ({e})"
    except ValueError as e:
        return ("loss" if str(e).startswith("unknown loss") else "loss_args"), str(e)
    return None


def _model_problem(cfg: TrainConfig) -> Problem | None:
    """The architecture (and ``--tiny``'s) registered, ``model_args`` fit for its builder, and the
    ``config_overrides`` a valid model config."""
    from ferhub.config import ModelConfig, preprocessing_problem
    from ferhub.errors import FerhubError
    from ferhub.labels import FER7
    from ferhub.models import list_models
    from ferhub.models._registry import check_model_args, get_entry

    for key in ("model", "tiny_model"):
        name = getattr(cfg, key)
        if name not in list_models():
            return key, f"must be a registered architecture ({', '.join(list_models())}), got {brief(name)}"
    entry = get_entry(cfg.model)
    try:
        check_model_args(cfg.model, cfg.model_args)
    except FerhubError as e:
        return "model_args", str(e)
    if problem := preprocessing_problem(cfg.config_overrides):  # what a recipe may change: the preprocessing
        return "config_overrides", problem
    try:
        ModelConfig(architecture=cfg.model, labels=FER7, model_args=dict(cfg.model_args),
                    **{**entry.defaults, **cfg.config_overrides})  # fmt: skip
    except FerhubError as e:
        return "config_overrides", str(e)
    return _stages_problem(cfg)


def _stages_problem(cfg: TrainConfig) -> Problem | None:
    """``trainable_stages`` and ``model_args.trainable_stages`` within the model's backbone stages (the
    builder and :func:`ferhub.training.fit.build_model` would refuse them only once the data is cropped)."""
    asked = {"model_args.trainable_stages": cfg.model_args.get("trainable_stages"),
             "trainable_stages": cfg.trainable_stages}  # fmt: skip
    if all(n is None for n in asked.values()):
        return None
    others = {k: v for k, v in cfg.model_args.items() if k != "trainable_stages"}
    built = _stage_count(cfg.model, json.dumps(others, sort_keys=True))
    if built is None:  # not buildable without real tensors: the real build checks
        return None
    kind, stages = built
    for key, n in asked.items():
        if n is None:
            continue
        if stages is None:  # model_args cannot get here: only staged builders take trainable_stages
            return key, (
                f"needs a model with backbone stages; {cfg.model!r} ({kind}) declares none (partial"
                " unfreezing works on ferhub's transfer families: resnet18, irv1_*, lightcnn9, fcn, ...)"
            )
        if not 0 <= n <= stages:
            return key, f"must be from 0 to {stages} (the backbone stages of {cfg.model!r}), got {brief(n)}"
    return None


ONE_CROP_BATCHNORM = (
    "BatchNorm cannot train on a batch of one crop (it would normalise one value per channel)"
)


def _batch_problem(cfg: TrainConfig) -> Problem | None:
    """``batch_size`` 1 for a model with a BatchNorm layer that would see one value per channel in training
    (after pooling: IRV1's ``last_bn``, a ResNet's head), found by one forward pass on the meta device (no
    memory, no weights read). A batch of one that arises otherwise (one crop per process under ``torchrun``,
    a training set of one crop) is refused by the training loop when it happens."""
    if cfg.batch_size != 1 or cfg.freeze_bn:
        return None
    others = {k: v for k, v in cfg.model_args.items() if k != "pretrained"}
    fails = _one_crop_fails(
        cfg.model, json.dumps(others, sort_keys=True), json.dumps(cfg.config_overrides, sort_keys=True),
        cfg.trainable_stages,
    )  # fmt: skip
    if not fails:
        return None
    return "batch_size", (
        f"must be 2 or more for {cfg.model!r}: its {ONE_CROP_BATCHNORM}; give --batch-size 2 or more"
        " (or --set freeze_bn=true to train with BatchNorm's running statistics fixed)"
    )


@functools.lru_cache(maxsize=32)
def _one_crop_fails(
    model: str, model_args_json: str, overrides_json: str, trainable_stages: int | None
) -> bool:
    """Whether ``model`` (built on the meta device) refuses a training-mode forward pass of one crop for its
    BatchNorm; ``False`` where it cannot be built or run there (the real run then says)."""
    import inspect
    import warnings

    import torch

    from ferhub.models._registry import ENSEMBLE, get_entry
    from ferhub.models.freeze import StagedModel, set_trainable_stages

    if model == ENSEMBLE:
        return False
    entry = get_entry(model)
    args = json.loads(model_args_json)
    if "pretrained" in inspect.signature(entry.builder).parameters:
        args["pretrained"] = False
    defaults = {**entry.defaults, **json.loads(overrides_json)}
    size, channels = defaults.get("input_size"), defaults.get("channels", 3)
    if not isinstance(size, int) or not isinstance(channels, int):
        return False
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")  # builders that copy weights into meta tensors say it is a no-op
            net = entry.builder(num_classes=2, **args)
            if trainable_stages is not None and isinstance(net, StagedModel):
                set_trainable_stages(net, trainable_stages)
            net.train()
            net(torch.empty(1, channels, size, size))
    except ValueError as e:
        return "value per channel" in str(e)
    except Exception:  # needs real tensors, or refuses the arguments: the real build says why
        return False
    return False


@functools.lru_cache(maxsize=32)
def _stage_count(model: str, model_args_json: str) -> tuple[str, int | None] | None:
    """The class name and number of backbone stages (``None``: not a staged model) of ``model`` built with
    ``model_args`` on the meta device (no memory, no weights read; cached, as every ``--set`` revalidates), or
    ``None`` when it cannot be built there."""
    import inspect

    import torch

    from ferhub.models._registry import ENSEMBLE, get_entry
    from ferhub.models.freeze import StagedModel

    if model == ENSEMBLE:  # built by loading its members (files, the Hub): no stages of its own
        return "Ensemble", None
    builder = get_entry(model).builder
    args = json.loads(model_args_json)
    if "pretrained" in inspect.signature(builder).parameters:
        args["pretrained"] = False  # pretrained weights change no stage
    try:
        with torch.device("meta"):
            built = builder(num_classes=2, **args)
    except Exception:  # needs real tensors, or refuses the other arguments: the real build says why
        return None
    return type(built).__name__, built.num_stages if isinstance(built, StagedModel) else None
