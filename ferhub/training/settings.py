"""The settings of one training run (:class:`TrainConfig`): what a recipe file fills and ``--set``
overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ferhub.errors import RecipeError
from ferhub.transforms import TTA_METHODS

SELECTIONS = ("inner", "last", "epoch_mean")


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
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecipeError(f"{source}: unknown settings {unknown}; known: {sorted(known)}")
        cfg = cls(**data)
        cfg.validate(source)
        return cfg

    def validate(self, source: str = "recipe") -> None:
        schedules = ("constant", "cosine", "step", "step_linear", "plateau")
        checks = [
            (self.optimizer in ("adam", "adamw", "sgd"), "optimizer must be adam, adamw or sgd"),
            (self.schedule in schedules, f"schedule must be one of {list(schedules)}"),
            (self.amp in ("none", "bf16", "fp16"), "amp must be none, bf16 or fp16"),
            (self.no_face in ("fallback", "skip"), "no_face must be fallback or skip"),
            (self.epochs >= 1 and self.batch_size >= 1, "epochs and batch_size must be >= 1"),
            (self.kfold == 0 or self.kfold >= 2, "kfold must be 0 (off) or >= 2"),
            (self.lr > 0, "lr must be positive"),
            (self.tta is None or self.tta in TTA_METHODS, f"tta must be null or one of {list(TTA_METHODS)}"),
            (self.monitor in ("mean_class_recall", "loss"), "monitor must be mean_class_recall or loss"),
            (self.plateau_rule in ("torch", "keras"), "plateau_rule must be torch or keras"),
            (self.selection in SELECTIONS, f"selection must be one of {list(SELECTIONS)}"),
            (self.sampler in ("shuffle", "balanced"), "sampler must be shuffle or balanced"),
            (self.repeats >= 1, "repeats must be >= 1"),
            (self.kernel_l2 >= 0, "kernel_l2 must be >= 0"),
            (
                self.selection == "inner" or (self.schedule != "plateau" and not self.early_stopping),
                (
                    f"selection {self.selection!r} chooses nothing on validation data, so a plateau schedule"
                    " or early stopping (both driven by it) cannot be used; use selection 'inner' or a fixed"
                    " schedule"
                ),
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise RecipeError(f"{source}: {msg}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
