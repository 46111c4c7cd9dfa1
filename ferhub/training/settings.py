"""The settings of one training run (:class:`TrainConfig`): what a recipe file fills and ``--set`` overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ferhub.errors import RecipeError
from ferhub.transforms import TTA_METHODS


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
    schedule: str = "constant"  # constant | cosine | step | plateau
    warmup_epochs: float = 0.0
    step_epochs: int = 10  # step: multiply lr by gamma every step_epochs
    gamma: float = 0.1
    plateau_patience: int = 5  # plateau: epochs without a better val mean recall before lr *= gamma
    min_lr: float = 0.0
    loss: str = "ce"
    loss_args: dict[str, Any] = field(default_factory=dict)
    mixup: float = 0.0  # Beta(alpha, alpha) mixup of inputs and targets; 0 = off
    cutmix: float = 0.0  # Beta(alpha, alpha) CutMix; 0 = off (with both on, each batch picks one)
    augment: dict[str, Any] = field(default_factory=dict)  # TrainTransform options
    ema: float = 0.0  # EMA decay of the weights (e.g. 0.999); 0 = off; the EMA weights are evaluated/saved
    early_stopping: int = 0  # stop after this many epochs without a better val mean recall; 0 = off
    grad_clip: float = 0.0
    amp: str = "none"  # none | bf16 | fp16 (CUDA only)
    channels_last: bool = True  # on CUDA
    kfold: int = 0  # >= 2: stratified k-fold cross-validation, mean ± std reported
    val_fraction: float = 0.1  # held-out share of train when no validation split is given
    tta: str | None = (
        None  # test-time augmentation in evaluation: None, "flip" or "tencrop" (transforms.tta_views)
    )
    no_face: str = "fallback"  # fallback (seed 004: whole image) | skip
    seed: int = 0
    citation: str = ""
    description: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "recipe") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(f"{source}: unknown settings {unknown}; known: {sorted(known)}")
        cfg = cls(**data)
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "recipe") -> None:
        checks = [
            (self.optimizer in ("adam", "adamw", "sgd"), "optimizer must be adam, adamw or sgd"),
            (
                self.schedule in ("constant", "cosine", "step", "plateau"),
                "schedule must be constant, cosine, step or plateau",
            ),
            (self.amp in ("none", "bf16", "fp16"), "amp must be none, bf16 or fp16"),
            (self.no_face in ("fallback", "skip"), "no_face must be fallback or skip"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1"),
            (self.kfold == 0 or self.kfold >= 2, "kfold must be 0 (off) or >= 2"),
            (self.lr > 0, "lr must be positive"),
            (self.tta is None or self.tta in TTA_METHODS, f"tta must be null or one of {list(TTA_METHODS)}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise RecipeError(f"{source}: {msg}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
