"""The training loop: recipes -> a trained ferhub model repo (config.json, model.safetensors, card, results).

Shape of torchvision's reference scripts: :func:`get_args_parser`, :func:`train_one_epoch`, :func:`evaluate`
and :func:`main`; ``train/train.py`` and ``ferhub train`` both call :func:`main`. The data of a run is
decoded, face-detected (once, through :class:`ferhub.data.FaceCache`) and cropped once into an in-memory
``uint8`` tensor; each batch is augmented with batched tensor ops (:class:`ferhub.transforms.TrainTransform`).

Multi-GPU / multi-node runs go through ``torchrun`` (DDP): every rank draws the same global batch, augments
it with the same generator, and trains on its ``rank::world`` share, so N processes follow one process on the
same global batch. Checkpoints are one safetensors file each (tensors + JSON metadata, no pickles), written
atomically; ``--resume`` restores model, optimizer, schedule, scaler, EMA and every RNG.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import json
import math
import os
import random
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferhub.config import ModelConfig
from ferhub.data import Crops

CHECKPOINT_FORMAT = "ferhub-checkpoint"
CHECKPOINT_VERSION = 1
RECIPES_DIR = Path(__file__).resolve().parent.parent / "train" / "recipes"


class RecipeError(ValueError):
    """A recipe (or an override of one) that cannot be trained."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message says why and what to do."""


# ------------------------------------------------------------------------------------------- configuration
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
    tta: bool = False  # ten-crop test-time augmentation in evaluation
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
        ]
        for ok, msg in checks:
            if not ok:
                raise RecipeError(f"{source}: {msg}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_recipe(name: str, variant: str | None = None) -> tuple[TrainConfig, dict[str, dict[str, Any]]]:
    """A recipe by name (``train/recipes/NAME.py``) or path; returns its config (variant applied) and variants.

    A recipe file defines ``RECIPE`` (a dict of :class:`TrainConfig` settings) and optionally ``VARIANTS``
    (name -> settings that replace RECIPE's; e.g. seed 002's ``fcn`` and ``mini_xception``).
    """
    path = Path(name)
    # the repo's train/recipes/, or ./train/recipes/ when ferhub is installed from a wheel (no train/ inside)
    dirs = [RECIPES_DIR, Path.cwd() / "train" / "recipes"]
    if path.suffix != ".py":
        path = next(
            (d / f"{name}.py" for d in dirs if (d / f"{name}.py").is_file()), RECIPES_DIR / f"{name}.py"
        )
    if not path.is_file():
        known = sorted({p.stem for d in dirs for p in d.glob("*.py") if not p.stem.startswith("_")})
        raise RecipeError(
            f"no recipe {name!r}; known recipes: {', '.join(known)} (or give a path to a .py file)"
        )
    spec = importlib.util.spec_from_file_location(f"ferhub_recipe_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recipe = dict(getattr(module, "RECIPE", {}))
    if not recipe:
        raise RecipeError(f"{path} defines no RECIPE dict")
    variants: dict[str, dict[str, Any]] = dict(getattr(module, "VARIANTS", {}))
    if variant is not None:
        if variant not in variants:
            raise RecipeError(
                f"recipe {path.stem!r} has no variant {variant!r}; variants: {sorted(variants)}"
            )
        recipe = _merge(recipe, variants[variant])
    recipe.setdefault("recipe", path.stem if variant is None else f"{path.stem}:{variant}")
    return TrainConfig.from_dict(recipe, source=str(path)), variants


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict update (an override of ``augment.hflip`` keeps the other augment settings)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_overrides(cfg: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """``key=value`` settings (``lr=0.01``, ``augment.hflip=0.5``, ``model_args={"drop_rate": 0.3}``).

    Values are parsed as JSON when they parse, else kept as strings.
    """
    data = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        *parents, leaf = key.strip().split(".")
        target = data
        for p in parents:
            target = target.setdefault(p, {})
            if not isinstance(target, dict):
                raise RecipeError(f"--set {key}: {p!r} is not a group of settings")
        target[leaf] = value
    return TrainConfig.from_dict(data, source="--set")


def tiny(cfg: TrainConfig) -> TrainConfig:
    """The recipe shrunk for smoke tests: its tiny registered model, <= 2 epochs, small batches, no pretrained
    weights; losses, schedule, augmentations and k-fold stay as they are."""
    from ferhub.models import get_entry

    entry = get_entry(cfg.tiny_model)
    args = {k: v for k, v in cfg.model_args.items() if k in _builder_params(entry.builder)}
    args.pop("pretrained", None)
    overrides = {
        k: v for k, v in cfg.config_overrides.items() if k not in ("input_size", "channels", "mean", "std")
    }
    return TrainConfig.from_dict(
        {
            **cfg.to_dict(),
            "model": cfg.tiny_model,
            "model_args": args,
            "config_overrides": overrides,
            "init": None,
            "trainable_stages": cfg.trainable_stages
            if cfg.trainable_stages is None
            else min(cfg.trainable_stages, 1),
            "epochs": min(cfg.epochs, 2),
            "batch_size": min(cfg.batch_size, 8),
            "warmup_epochs": min(cfg.warmup_epochs, 0.5),
            "step_epochs": 1,
        },
        source="--tiny",
    )


def _builder_params(fn: Callable[..., Any]) -> set[str]:
    import inspect

    return set(inspect.signature(fn).parameters)


# ---------------------------------------------------------------------------------------------- distributed
@dataclass(frozen=True)
class Dist:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when run plainly)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the process group ``torchrun`` describes in the environment (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)  # before NCCL starts, so each rank talks from its own GPU
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Dist(rank, world, local)


def _barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


# --------------------------------------------------------------------------------------- optimizer & schedule
def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD with Nesterov momentum over the trainable parameters (no decay on 1-D ones)."""
    from ferhub.models.freeze import param_groups

    backbone_lr = cfg.lr * cfg.backbone_lr_scale if cfg.backbone_lr_scale is not None else None
    groups = param_groups(model, cfg.lr, backbone_lr=backbone_lr, weight_decay=cfg.weight_decay)
    if not groups:
        raise RecipeError("the model has no trainable parameters (check trainable_stages)")
    for g in groups:
        g["initial_lr"] = g["lr"]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.Adam(groups, lr=cfg.lr)


class LRSchedule:
    """Per-step learning-rate factor: linear warm-up, then constant / cosine / step / reduce-on-plateau.

    The plateau rule watches validation mean class recall at the end of each epoch. All state is plain
    numbers (saved in the checkpoint's JSON metadata).
    """

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int) -> None:
        self.cfg = cfg
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.plateau_scale = 1.0
        self.best = -math.inf
        self.bad_epochs = 0

    def factor(self, epoch: int, step: int) -> float:
        cfg = self.cfg
        t = epoch + step / self.steps_per_epoch  # epochs done, fractional
        if cfg.warmup_epochs > 0 and t < cfg.warmup_epochs:
            return (t + 1 / self.steps_per_epoch) / cfg.warmup_epochs
        if cfg.schedule == "cosine":
            span = max(cfg.epochs - cfg.warmup_epochs, 1e-8)
            progress = min(max((t - cfg.warmup_epochs) / span, 0.0), 1.0)
            return 0.5 * (1 + math.cos(math.pi * progress))
        if cfg.schedule == "step":
            return cfg.gamma ** int(t // cfg.step_epochs)
        if cfg.schedule == "plateau":
            return self.plateau_scale
        return 1.0

    def apply(self, optimizer: torch.optim.Optimizer, epoch: int, step: int) -> float:
        f = self.factor(epoch, step)
        for g in optimizer.param_groups:
            g["lr"] = max(g["initial_lr"] * f, self.cfg.min_lr if f < 1 else 0.0)
        return optimizer.param_groups[0]["lr"]

    def end_epoch(self, metric: float) -> None:
        if self.cfg.schedule != "plateau":
            return
        if metric > self.best + 1e-4:
            self.best, self.bad_epochs = metric, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.cfg.plateau_patience:
                self.plateau_scale *= self.cfg.gamma
                self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {"plateau_scale": self.plateau_scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau_scale = float(state["plateau_scale"])
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])


class EMA:
    """Exponential moving average of a model's weights (buffers copied), kept on the model's device."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.module = copy.deepcopy(_unwrap(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._params = {name for name, _ in self.module.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        src = _unwrap(model).state_dict()
        for k, v in self.module.state_dict().items():
            if k in self._params and v.dtype.is_floating_point:
                v.lerp_(src[k].detach(), 1 - self.decay)  # v = decay * v + (1 - decay) * src
            else:  # BatchNorm statistics and counters follow the live model
                v.copy_(src[k])


# ------------------------------------------------------------------------------------------------- batches
def epoch_batches(n: int, batch_size: int, epoch: int, seed: int) -> list[np.ndarray]:
    """The global batches of one epoch: a permutation drawn from (seed, epoch), last partial batch dropped
    (so every process gets an equal share); a set smaller than one batch gives one batch of all of it."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    if n < batch_size:
        return [order]
    return [order[i : i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def mix_batch(
    x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, num_classes: int, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup / CutMix (:func:`ferhub.losses.mixup_batch`) with its random draws seeded from ``g``.

    ``mixup_batch`` draws from torch's global RNG; forking it under a seed taken from ``g`` makes every DDP
    rank mix the global batch identically and leaves the global RNG (dropout) untouched.
    """
    from ferhub.losses import mixup_batch

    if cfg.mixup <= 0 and cfg.cutmix <= 0:
        return x, y
    seed = int(torch.randint(0, 2**62, (1,), generator=g))
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return mixup_batch(x, y, cfg.mixup, cfg.cutmix, num_classes)


# -------------------------------------------------------------------------------------------- epoch & eval
@dataclass
class State:
    """What changes during training (everything a checkpoint must restore)."""

    epoch: int = 0  # epochs completed
    best_metric: float = -math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    if device.type != "cuda" or amp == "none":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def train_one_epoch(
    model: nn.Module,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    data: torch.Tensor,
    targets: torch.Tensor,
    transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    epoch: int,
    cfg: TrainConfig,
    *,
    schedule: LRSchedule,
    device: torch.device,
    dist: Dist = Dist(),
    scaler: torch.amp.GradScaler | None = None,
    ema: EMA | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """One pass over the training crops; returns mean loss, accuracy on the (unmixed) labels, lr, img/s."""
    model.train()
    if cfg.freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    batches = epoch_batches(len(targets), cfg.batch_size, epoch, cfg.seed)
    if any(len(b) % dist.world for b in batches):
        raise RecipeError(
            f"the global batch ({len(batches[0])}) must divide evenly over {dist.world} processes; "
            "change batch_size"
        )
    g = torch.Generator(device=data.device).manual_seed(cfg.seed * 1_000_003 + epoch)
    g_cpu = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch + 1)
    channels_last = cfg.channels_last and device.type == "cuda"
    num_classes = _unwrap(model).config.num_classes
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    lr = optimizer.param_groups[0]["lr"]
    start = time.perf_counter()
    bar = _progress(len(batches), f"epoch {epoch + 1}/{cfg.epochs}", progress and dist.main)
    for step, idx in enumerate(batches):
        lr = schedule.apply(optimizer, epoch, step)
        index = torch.from_numpy(idx).to(data.device)
        x = transform(data.index_select(0, index), g)  # the whole global batch, same draws on every rank
        y = targets.index_select(0, index)
        x, t = mix_batch(x, y, cfg, num_classes, g_cpu)  # t: labels, or (B, K) soft targets when mixed
        x, t, y = (v[dist.rank :: dist.world].to(device, non_blocking=True) for v in (x, t, y))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, cfg.amp):
            out = model(x)
        out = out.float()
        loss = criterion(out, t)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
        if ema is not None:
            ema.update(model)
        total_loss += loss.detach() * len(y)
        correct += (out.detach().argmax(1) == y).sum()
        seen += len(y)
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.2e}")
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - start
    stats = torch.stack([total_loss.float(), correct.float(), torch.tensor(float(seen), device=device)])
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.all_reduce(stats)
    loss_sum, n_correct, n = stats.tolist()
    return {
        "train_loss": loss_sum / max(n, 1),
        "train_accuracy": n_correct / max(n, 1),
        "lr": lr,
        "images_per_s": n / elapsed if elapsed > 0 else 0.0,
    }


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm comes with the [train] extra; without it there is no bar, only the log
        return None
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, disable=None)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: torch.Tensor,
    config: ModelConfig,
    *,
    device: torch.device,
    batch_size: int = 256,
    tta: bool = False,
    amp: str = "none",
    channels_last: bool = False,
) -> np.ndarray:
    """Softmax probabilities (N, K) of ``model`` on ``uint8`` crops, optionally averaged over ten crops."""
    from ferhub.transforms import normalize, ten_crop

    model.eval()
    out = []
    for i in range(0, len(data), batch_size):
        x = normalize(data[i : i + batch_size].to(device), config)
        views = ten_crop(x) if tta else x.unsqueeze(0)
        probs = 0
        for v in views:
            if channels_last and device.type == "cuda":
                v = v.contiguous(memory_format=torch.channels_last)
            with _autocast(device, amp):
                probs = probs + F.softmax(model(v).float(), dim=1)
        out.append((probs / len(views)).cpu())
    k = config.num_classes
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, k))


def score(
    probs: np.ndarray, targets: np.ndarray, data_labels: Sequence[str], model_labels: Sequence[str]
) -> dict[str, Any]:
    """ferhub.metrics' summary (accuracy, mean class recall, per-class, confusion matrix, calibration)."""
    from ferhub.metrics import summarize

    return summarize(targets, probs, data_labels=data_labels, model_labels=model_labels, n_resamples=200)


# ----------------------------------------------------------------------------------------------- checkpoints
def _flat_optimizer(opt_state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for pid, st in opt_state["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def _unflat_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for pid, sc in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(sc)
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    meta = {
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    n = meta["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = meta["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    state: State,
    cfg: TrainConfig,
    scaler: torch.amp.GradScaler | None = None,
    ema: EMA | None = None,
) -> Path:
    """One safetensors file: model/EMA/optimizer tensors and RNG states, the rest as JSON metadata.

    Written to a temporary file, fsynced and renamed over ``path``, so a kill leaves the old or the new file.
    """
    from safetensors.torch import save_file

    tensors = {
        f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in _unwrap(model).state_dict().items()
    }
    if ema is not None:
        tensors.update(
            {f"ema.{k}": v.detach().cpu().contiguous().clone() for k, v in ema.module.state_dict().items()}
        )
    opt_tensors, opt_meta = _flat_optimizer(optimizer.state_dict())
    tensors.update(opt_tensors)
    rng_tensors, rng_meta = _rng_state()
    tensors.update(rng_tensors)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "state": asdict(state),
        "optimizer": opt_meta,
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_meta,
        "train_config": cfg.to_dict(),
        "model_config": _unwrap(model).config.to_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"ferhub": json.dumps(meta, default=_json_default)})
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, tuple):
        return list(o)
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    raise TypeError(f"cannot store {type(o).__name__} in a checkpoint")


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a checkpoint written by :func:`save_checkpoint`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found; start without --resume, or point --resume at a checkpoint")
    try:
        with safe_open(str(path), "pt") as f:
            raw = (f.metadata() or {}).get("ferhub")
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({e})") from e
    meta = json.loads(raw) if raw else {}
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a ferhub training checkpoint (no '{CHECKPOINT_FORMAT}' metadata)"
        )
    if meta.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} was written by a newer ferhub (checkpoint version {meta['version']})")
    return tensors, meta


def _restore(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    cfg: TrainConfig,
    scaler: torch.amp.GradScaler | None,
    ema: EMA | None,
) -> State:
    tensors, meta = read_checkpoint(path)
    saved = {k: v for k, v in meta["train_config"].items() if k not in ("epochs", "early_stopping")}
    now = {k: v for k, v in cfg.to_dict().items() if k not in ("epochs", "early_stopping")}
    diff = sorted(
        k
        for k in now
        if json.dumps(now[k], default=_json_default) != json.dumps(saved.get(k), default=_json_default)
    )
    if diff:
        raise CheckpointError(
            f"{path} was trained with different settings ({', '.join(diff)}); resume with the same recipe and "
            "overrides (only epochs and early_stopping may change), or start a new output folder"
        )
    _unwrap(model).load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.module.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    # CPU tensors: load_state_dict moves moments to each parameter's device and keeps Adam's "step" counters
    # where a non-capturable Adam wants them (on the CPU)
    optimizer.load_state_dict(_unflat_optimizer(tensors, meta["optimizer"]))
    for g in optimizer.param_groups:  # JSON turned tuples into lists
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    schedule.load_state_dict(meta["schedule"])
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    _set_rng_state(tensors, meta["rng"])
    st = meta["state"]
    st["best_metric"] = float(st["best_metric"])
    return State(**st)


# ----------------------------------------------------------------------------------------------------- fit
@dataclass
class FitResult:
    model: nn.Module  # the weights to release: EMA if on, from the best epoch
    state: State
    val_probs: np.ndarray
    val_metrics: dict[str, Any]
    stopped_early: bool


def _log(path: Path, record: dict[str, Any]) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record, default=_json_default) + "\n")


def _make_criterion(
    cfg: TrainConfig, labels: Sequence[str], counts: np.ndarray, device: torch.device
) -> nn.Module:
    from ferhub.losses import build_loss

    # class frequencies feed the class-weighted CE of seed 001; focal loss gets per-class alpha only when the
    # recipe gives it (seed 003 found equal weights best)
    kwargs = dict(cfg.loss_args)
    if cfg.loss in ("weighted_ce", "weighted_cross_entropy", "class_weighted"):
        kwargs.setdefault("class_counts", counts.tolist())
    return build_loss(cfg.loss, **kwargs).to(device)


def build_model(cfg: TrainConfig, labels: Sequence[str]) -> nn.Module:
    """The recipe's model for ``labels``, with ``--init`` weights and partial unfreezing applied."""
    from ferhub.models import create_model

    model = create_model(cfg.model, labels, config_overrides=cfg.config_overrides, **cfg.model_args)
    if cfg.init:
        from ferhub.pretrained import load_init

        # LightCNN's own checkpoint layout, or any checkpoint of this architecture (classifier kept as built
        # when the label set differs)
        load_init(model, cfg.init)
    if cfg.trainable_stages is not None:
        from ferhub.models.freeze import set_trainable_stages

        set_trainable_stages(model, cfg.trainable_stages)
    return model


def fit(
    cfg: TrainConfig,
    train: Crops,
    val: Crops,
    out_dir: Path,
    *,
    device: torch.device,
    dist: Dist = Dist(),
    resume: bool = False,
    progress: bool = True,
    on_best: Callable[[nn.Module, int, dict[str, Any]], None] | None = None,
    log: Callable[[str], None] = print,
) -> FitResult:
    """Train one model on ``train``, selecting the epoch with the best validation mean class recall.

    Writes ``out_dir/checkpoints/{last,best}.safetensors`` and ``out_dir/log.jsonl`` (rank 0 only).
    """
    from ferhub.transforms import TrainTransform

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    labels = train.labels
    model = build_model(cfg, labels).to(device)
    config: ModelConfig = model.config
    if dist.world > 1 and cfg.sync_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # swaps the BN children; model.config stays
    if cfg.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    criterion = _make_criterion(cfg, labels, np.bincount(train.targets, minlength=len(labels)), device)
    optimizer = build_optimizer(model, cfg)
    n_batches = len(epoch_batches(len(train), cfg.batch_size, 0, cfg.seed))
    schedule = LRSchedule(cfg, n_batches)
    scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" and device.type == "cuda" else None
    ema = EMA(model, cfg.ema) if cfg.ema > 0 else None
    net: nn.Module = model
    if dist.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.local_rank] if device.type == "cuda" else None
        )
    ckpt_dir = out_dir / "checkpoints"
    last, best = ckpt_dir / "last.safetensors", ckpt_dir / "best.safetensors"
    state = State()
    if resume:
        state = _restore(
            last, model=model, optimizer=optimizer, schedule=schedule, cfg=cfg, scaler=scaler, ema=ema
        )
        log(f"resumed from {last} after epoch {state.epoch}")
    # crops live on the device when they fit, so batches are gathered and augmented there
    store = device if device.type == "cuda" and train.images.nbytes < 4 * 2**30 else torch.device("cpu")
    data = torch.from_numpy(train.images).to(store)
    targets = torch.from_numpy(train.targets).to(store)
    val_data = torch.from_numpy(val.images)
    log_path = out_dir / "log.jsonl"
    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        # a fresh run starts a fresh log; a resumed one rewrites it from the checkpoint's history, dropping any
        # line written after that checkpoint by the killed run
        log_path.write_text("".join(json.dumps(r, default=_json_default) + "\n" for r in state.history))
    transform = TrainTransform.from_recipe(config, cfg.augment)
    stopped = False
    while state.epoch < cfg.epochs:
        epoch = state.epoch
        stats = train_one_epoch(
            net, criterion, optimizer, data, targets, transform, epoch, cfg,
            schedule=schedule, device=device, dist=dist, scaler=scaler, ema=ema, progress=progress,
        )  # fmt: skip
        scored_model = ema.module if ema is not None else model
        probs = evaluate(scored_model, val_data, config, device=device, tta=cfg.tta, amp=cfg.amp)
        metrics = score(probs, val.targets, val.labels, labels)["metrics"]
        recall = metrics["mean_class_recall"]
        schedule.end_epoch(recall)
        improved = recall > state.best_metric
        if improved:
            state.best_metric, state.best_epoch, state.bad_epochs = recall, epoch, 0
        else:
            state.bad_epochs += 1
        state.epoch = epoch + 1
        record = {
            "epoch": epoch + 1,
            **stats,
            "val_accuracy": metrics["accuracy"],
            "val_mean_class_recall": recall,
            "val_macro_f1": metrics["macro_f1"],
            "val_nll": metrics["nll"],
            "best_epoch": state.best_epoch + 1,
        }
        state.history.append(record)
        if dist.main:
            _log(log_path, record)
            log(
                f"epoch {epoch + 1}/{cfg.epochs}  loss {stats['train_loss']:.4f}  train acc {stats['train_accuracy']:.3f}"
                f"  val acc {metrics['accuracy']:.3f}  val recall {recall:.3f}  lr {stats['lr']:.2e}"
                f"  {stats['images_per_s']:.0f} img/s"
            )
            save_checkpoint(
                last,
                model=model,
                optimizer=optimizer,
                schedule=schedule,
                state=state,
                cfg=cfg,
                scaler=scaler,
                ema=ema,
            )
            if improved:
                save_checkpoint(
                    best,
                    model=model,
                    optimizer=optimizer,
                    schedule=schedule,
                    state=state,
                    cfg=cfg,
                    scaler=scaler,
                    ema=ema,
                )
                if on_best is not None:
                    on_best(scored_model, epoch + 1, metrics)
        _barrier(dist)
        if cfg.early_stopping and state.bad_epochs >= cfg.early_stopping:
            stopped = True
            if dist.main:
                log(f"early stopping: no better val mean recall for {cfg.early_stopping} epochs")
            break
    # release the best epoch's weights (the EMA ones when EMA is on)
    final = copy.deepcopy(ema.module if ema is not None else model)
    if best.is_file():
        tensors, _ = read_checkpoint(best)
        prefix = "ema." if ema is not None else "model."
        final.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    # (a rank that cannot see rank 0's folder keeps its own weights, which DDP kept identical)
    final.eval()
    probs = evaluate(final, val_data, config, device=device, tta=cfg.tta, amp=cfg.amp)
    return FitResult(final, state, probs, score(probs, val.targets, val.labels, labels), stopped)


# ------------------------------------------------------------------------------------------- command line
def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``train/train.py`` and ``ferhub train`` (one definition for both)."""
    parser.add_argument("--recipe", default="ferhub_best", help="recipe name in train/recipes/ or a .py path")
    parser.add_argument(
        "--variant", default=None, help="a recipe variant (e.g. seed002_kaskun: fcn, mini_xception)"
    )
    parser.add_argument(
        "--data", required=True, help="class folders, a .zip of them, fer2013.csv or a Hub dataset id"
    )
    parser.add_argument(
        "--split", default=None, help="training split (default: train when the source has splits)"
    )
    parser.add_argument("--val-data", default=None, help="a separate validation source (default: --data)")
    parser.add_argument(
        "--val-split", default=None, help="validation split (default: val if present, else a hold-out)"
    )
    parser.add_argument(
        "--test-split", default=None, help="also evaluate the final model on this split (e.g. test)"
    )
    parser.add_argument(
        "--image-column", default=None, help="Hub datasets: the image column (default: found)"
    )
    parser.add_argument(
        "--label-column", default=None, help="Hub datasets: the label column (default: found)"
    )
    parser.add_argument(
        "--label-names", default=None, help="names of numbered classes: a dataset (rafdb, fer2013)"
    )
    parser.add_argument("--precropped", action=argparse.BooleanOptionalAction, default=None,
                        help="images are face crops already: skip detection (default: yes for fer2013.csv)")  # fmt: skip
    parser.add_argument(
        "--face-cache", default=None, help="face-detection cache folder (default ~/.cache/ferhub)"
    )
    parser.add_argument("--output-dir", default=None, help="run folder (default runs/RECIPE)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size over all processes")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--kfold", type=int, default=None, help="stratified k-fold cross-validation (k >= 2)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--amp", choices=("none", "bf16", "fp16"), default=None, help="mixed precision on CUDA"
    )
    parser.add_argument("--init", default=None, help="initial weights: a local checkpoint (e.g. LightCNN's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any recipe setting, e.g. --set augment.hflip=0.5 (repeatable)")  # fmt: skip
    parser.add_argument("--tiny", action="store_true", help="smoke test: the recipe's tiny model, 2 epochs")
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoints/last.safetensors"
    )
    parser.add_argument("--deterministic", action="store_true", help="deterministic kernels (slower on CUDA)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (the log still prints)")
    parser.add_argument(
        "--model-name", default=None, help="name in the model card (default: the push id or recipe)"
    )
    parser.add_argument(
        "--push-to-hub", default=None, metavar="ORG/NAME", help="upload the model repo (one commit)"
    )
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    parser.add_argument("--revision", default=None, help="branch to push the final model to")
    parser.add_argument("--push-checkpoints", action="store_true",
                        help="push the best model so far to branch --checkpoint-branch during training")  # fmt: skip
    parser.add_argument("--checkpoint-branch", default="checkpoints")
    parser.add_argument("--print-recipe", action="store_true", help="print the resolved settings and exit")
    return parser


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a ferhub FER model from a recipe", add_help=add_help)
    return add_arguments(parser)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Recipe + variant + command-line overrides (+ --tiny) -> the run's settings."""
    cfg, _ = load_recipe(args.recipe, args.variant)
    shortcuts = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "kfold": args.kfold,
        "seed": args.seed,
        "amp": args.amp,
        "init": args.init,
    }
    data = cfg.to_dict()
    data.update({k: v for k, v in shortcuts.items() if v is not None})
    cfg = apply_overrides(TrainConfig.from_dict(data, source="command line"), args.overrides)
    if args.tiny:
        cfg = tiny(cfg)
        if args.epochs is not None:
            cfg.epochs = args.epochs
    return cfg


def model_config(cfg: TrainConfig, labels: Sequence[str]) -> ModelConfig:
    """The ModelConfig the run's model will carry (for cropping the data before the model exists)."""
    from ferhub.models import get_entry

    entry = get_entry(cfg.model)
    return ModelConfig(
        architecture=cfg.model,
        labels=tuple(labels),
        model_args=dict(cfg.model_args),
        **{**entry.defaults, **cfg.config_overrides},
    )


def _open_default_split(source: str, split: str | None, preferred: str, **kw: Any) -> Any:
    from ferhub.data import DataSourceError, open_source

    if split is not None:
        return open_source(source, split, **kw)
    try:  # sources with splits (fer2013.csv, train/ test/ folders, Hub datasets) give `preferred`
        return open_source(source, preferred, **kw)
    except DataSourceError:
        return None


def _subset(crops: Crops, idx: np.ndarray) -> Crops:
    return Crops(crops.images[idx], crops.targets[idx], crops.labels)


def _result_entry(
    summary: dict[str, Any],
    *,
    dataset: str,
    split: str | None,
    tta: bool,
    command: str,
    name: str | None = None,
) -> dict[str, Any]:
    """One ``eval_results.json`` entry (schema of ferhub.hub.read_eval_results / ferhub.evaluation)."""
    import datetime

    from ferhub import __version__

    return {
        "dataset": {"id": dataset, "config": "default", "split": split or "all", "name": name or dataset},
        **summary,
        "num_images": int(np.sum(summary["confusion_matrix"])),
        "tta": tta,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ferhub_version": __version__,
        "command": command,
        "source": "training",
    }


def _eval_results(entries: list[dict[str, Any]]) -> dict[str, Any]:
    from ferhub.evaluation import result_key

    return {
        "format_version": 1,
        "results": {
            result_key(e["dataset"]["id"], e["dataset"]["config"], e["dataset"]["split"]): e for e in entries
        },
    }


def _recipe_markdown(cfg: TrainConfig, data_desc: str, fold_summary: dict[str, Any] | None) -> str:
    keys = ["model", "model_args", "trainable_stages", "epochs", "batch_size", "optimizer", "lr", "weight_decay",
            "schedule", "warmup_epochs", "loss", "loss_args", "mixup", "cutmix", "augment", "ema",
            "early_stopping", "kfold", "tta", "seed"]  # fmt: skip
    d = cfg.to_dict()
    rows = "\n".join(
        f"| `{k}` | `{json.dumps(d[k])}` |" for k in keys if d[k] not in (None, {}, 0, 0.0, False)
    )
    text = f"Recipe **{cfg.recipe}**. {cfg.description}\n\nData: {data_desc}\n\n| setting | value |\n|---|---|\n{rows}\n"
    if fold_summary:
        text += "\n" + "\n".join(
            f"- {cfg.kfold}-fold validation {k.replace('_', ' ')}: {v['text']}"
            for k, v in fold_summary.items()
            if k in ("accuracy", "mean_class_recall", "macro_f1")
        )
    return text


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, rebuilt from the parsed options (whatever called :func:`main`).

    Options left at their defaults are omitted; ``torchrun`` is named when the run was launched by it.
    """
    parts: list[str] = []
    for action in get_args_parser()._actions:
        if not action.option_strings or action.dest == "help":
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default and action.dest != "recipe":  # the recipe is always named
            continue
        flag = action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            parts.append(flag if value else "--no-" + flag[2:])
        elif isinstance(action, argparse._StoreTrueAction):
            parts.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for v in value:
                parts += [flag, str(v)]
        else:
            parts += [flag, str(value)]
    if "LOCAL_WORLD_SIZE" in os.environ:  # set by torchrun
        nodes = os.environ.get("GROUP_WORLD_SIZE", "1")
        prefix = ["torchrun", "--nnodes", nodes] if nodes != "1" else ["torchrun"]
        prefix += ["--nproc_per_node", os.environ["LOCAL_WORLD_SIZE"], "train/train.py"]
    elif Path(sys.argv[0]).name in ("ferhub", "__main__.py", "cli.py"):
        prefix = ["ferhub", "train"]
    else:
        prefix = ["python", "train/train.py"]
    return shlex.join(prefix + parts)


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Train the recipe on the data, write the model repo (and push it); returns a summary dict."""
    from ferhub import hub
    from ferhub.data import FaceCache, materialize, open_source, stratified_kfold, stratified_split

    cfg = resolve_config(args)
    if args.print_recipe:
        print(json.dumps(cfg.to_dict(), indent=2))
        return {"config": cfg.to_dict()}
    if args.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    device_name = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    dist = init_distributed(device_name)
    if device_name == "cuda" and dist.world > 1:
        device_name = f"cuda:{dist.local_rank}"
    device = torch.device(device_name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not args.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    say: Callable[[str], None] = print if dist.main else (lambda _msg: None)
    out_dir = Path(args.output_dir or Path("runs") / cfg.recipe.replace(":", "-"))
    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    command = command_line(args)
    kw: dict[str, Any] = {"label_names": args.label_names, "precropped": args.precropped}
    # Hub datasets only: which columns hold the image and the label (found automatically when omitted)
    kw.update({k: v for k in ("image_column", "label_column") if (v := getattr(args, k, None)) is not None})

    train_src = _open_default_split(args.data, args.split, "train", **kw) or open_source(
        args.data, None, **kw
    )
    val_src = None
    if not cfg.kfold:
        if args.val_data is not None:
            val_src = _open_default_split(args.val_data, args.val_split, "val", **kw) or open_source(
                args.val_data, None, **kw
            )
        elif args.val_split is not None or train_src.split is not None:
            val_src = _open_default_split(args.data, args.val_split, "val", **kw)
    mcfg = model_config(cfg, train_src.labels)
    cache = (
        FaceCache(cache_dir=args.face_cache) if not train_src.precropped or args.precropped is False else None
    )

    def crops_of(src: Any) -> Crops:
        # rank 0 detects (and fills the shared cache) first; the other ranks then only read it
        if dist.main:
            c = materialize(src, mcfg, cache=cache, no_face=cfg.no_face)
        _barrier(dist)
        if not dist.main:
            c = materialize(
                src, mcfg, cache=FaceCache(cache_dir=args.face_cache) if cache else None, no_face=cfg.no_face
            )
        if c.no_face:
            say(f"{src.name}/{src.split}: no face found in {c.no_face} of {len(src)} images "
                f"({'whole image used' if cfg.no_face == 'fallback' else 'skipped'})")  # fmt: skip
        prepared[src.split or "all"] = {"images": len(src), "crops": len(c), "no_face": c.no_face,
                                        "skipped": c.skipped, "detections_run": c.detections_run}  # fmt: skip
        return c

    prepared: dict[str, dict[str, int]] = {}  # per split: how the crops were made (seed 004's fallback count)

    t0 = time.perf_counter()
    train_all = crops_of(train_src)
    if val_src is not None and val_src.labels != train_src.labels:
        raise RecipeError(
            f"validation labels {val_src.labels} differ from training labels {train_src.labels}"
        )
    val_all = crops_of(val_src) if val_src is not None else None
    say(f"data: {len(train_all)} training crops{f', {len(val_all)} validation' if val_all else ''} of "
        f"{mcfg.input_size}x{mcfg.input_size}x{mcfg.channels} ({time.perf_counter() - t0:.1f}s to prepare)")  # fmt: skip

    on_best = None
    if args.push_to_hub and args.push_checkpoints and dist.main:

        def on_best(model: nn.Module, epoch: int, metrics: dict[str, Any]) -> None:
            folder = hub.save(
                _for_saving(model),
                out_dir / "best_model",
                card_context={"model_name": args.model_name or args.push_to_hub.split("/")[-1],
                              "repo_id": args.push_to_hub, "training_command": command,
                              "recipe": f"Best checkpoint so far (epoch {epoch}, validation mean class recall "
                                        f"{metrics['mean_class_recall']:.4f}) of recipe **{cfg.recipe}**."},
            )  # fmt: skip
            hub.push(folder, args.push_to_hub, private=args.private, revision=args.checkpoint_branch,
                     commit_message=f"{cfg.recipe}: epoch {epoch}, val mean recall {metrics['mean_class_recall']:.4f}")  # fmt: skip

    fold_summary = None
    if cfg.kfold:
        from ferhub.metrics import kfold_summary

        results = []
        for f, (tr, va) in enumerate(stratified_kfold(train_all.targets, cfg.kfold, cfg.seed)):
            say(f"fold {f + 1}/{cfg.kfold}: {len(tr)} train, {len(va)} validation")
            r = fit(cfg, _subset(train_all, tr), _subset(train_all, va), out_dir / f"fold{f + 1}", device=device,
                    dist=dist, resume=args.resume and (out_dir / f"fold{f + 1}" / "checkpoints" / "last.safetensors").is_file(),
                    progress=not args.no_progress, log=say)  # fmt: skip
            results.append(r)
        fold_summary = kfold_summary([r.val_metrics["metrics"] for r in results])
        best_fold = int(np.argmax([r.val_metrics["metrics"]["mean_class_recall"] for r in results]))
        result = results[best_fold]
        val_name = f"{cfg.kfold}-fold validation (fold {best_fold + 1}, the best of {cfg.kfold})"
        say(
            "k-fold: "
            + ", ".join(
                f"{k} {v['text']}" for k, v in fold_summary.items() if k in ("accuracy", "mean_class_recall")
            )
        )
    else:
        if val_all is None:
            tr, va = stratified_split(train_all.targets, cfg.val_fraction, cfg.seed)
            val_all, train_all = _subset(train_all, va), _subset(train_all, tr)
            val_name = f"held-out {cfg.val_fraction:.0%} of {train_src.split or 'the data'}"
        else:
            val_name = val_src.split or "validation"
        result = fit(cfg, train_all, val_all, out_dir, device=device, dist=dist, resume=args.resume,
                     progress=not args.no_progress, on_best=on_best, log=say)  # fmt: skip

    summary: dict[str, Any] = {"val": result.val_metrics["metrics"], "epochs": result.state.epoch,
                               "best_epoch": result.state.best_epoch + 1, "kfold": fold_summary,
                               "data": prepared}  # fmt: skip
    dataset_id = str(args.data) if not Path(str(args.data)).exists() else train_src.name
    if cfg.kfold:
        val_split = f"kfold{cfg.kfold}-fold{best_fold + 1}"  # the released fold's validation part
    else:
        val_split = val_src.split if val_src is not None else "heldout"
    entries = [
        _result_entry(
            result.val_metrics,
            dataset=dataset_id,
            split=val_split,
            tta=cfg.tta,
            command=command,
            name=train_src.name,
        )
    ]
    if fold_summary:
        entries[0]["kfold"] = {"k": cfg.kfold, "selected_fold": best_fold + 1, **fold_summary}
    if args.test_split:
        test_src = open_source(args.val_data or args.data, args.test_split, **kw)
        test = crops_of(test_src)
        probs = evaluate(
            result.model, torch.from_numpy(test.images), result.model.config, device=device, tta=cfg.tta
        )
        test_summary = score(probs, test.targets, test_src.labels, result.model.config.labels)
        summary["test"] = test_summary["metrics"]
        entries.append(
            _result_entry(
                test_summary,
                dataset=dataset_id,
                split=test_src.split,
                tta=cfg.tta,
                command=command,
                name=train_src.name,
            )
        )
        say(f"test ({test_src.split}): accuracy {test_summary['metrics']['accuracy']:.4f}, "
            f"mean class recall {test_summary['metrics']['mean_class_recall']:.4f}")  # fmt: skip
    if not dist.main:
        return summary
    data_desc = f"`{args.data}` (training split {train_src.split or 'all'}, {len(train_src)} images; validation: {val_name})"
    no_face = [f"{v['no_face']} of {v['images']} images ({k})" for k, v in prepared.items() if v["no_face"]]
    if no_face:
        data_desc += ". No face found by MTCNN in " + ", ".join(no_face)
        data_desc += " (the whole image was used)" if cfg.no_face == "fallback" else " (left out)"
    context = {
        "model_name": args.model_name
        or (args.push_to_hub.split("/")[-1] if args.push_to_hub else cfg.recipe.replace(":", "-")),
        "repo_id": args.push_to_hub,
        "description": f"A {cfg.model} facial-expression classifier trained with ferhub's `{cfg.recipe}` recipe.",
        "recipe": _recipe_markdown(cfg, data_desc, fold_summary),
        "training_command": command,
        "citation": cfg.citation or None,
        "datasets": [str(args.data)] if not Path(str(args.data)).exists() else None,
        "tags": ["ferhub", f"recipe-{cfg.recipe.split(':')[0]}"],
    }
    model_dir = hub.save(
        _for_saving(result.model),
        out_dir / "model",
        eval_results=_eval_results(entries),
        card_context=context,
    )
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    say(f"model repo written to {model_dir}")
    summary["model_dir"] = str(model_dir)
    if args.push_to_hub:
        url = hub.push(model_dir, args.push_to_hub, private=args.private, revision=args.revision,
                       commit_message=f"Train {cfg.recipe}: val accuracy {summary['val']['accuracy']:.4f}")  # fmt: skip
        say(f"pushed: {url}")
        summary["pushed"] = url
    return summary


def _for_saving(model: nn.Module) -> nn.Module:
    """A CPU copy in the default memory format (safetensors stores contiguous tensors), whose config no longer
    asks for pretrained weights: the trained weights are in the repo, and loading must not fetch others."""
    import dataclasses

    m = copy.deepcopy(_unwrap(model)).to("cpu", memory_format=torch.contiguous_format)
    args = {k: v for k, v in m.config.model_args.items() if k != "pretrained"}
    m.config = dataclasses.replace(m.config, model_args=args)
    return m.eval()


def run_cli(argv: Sequence[str] | None = None) -> int:
    """``python train/train.py ...`` entry point."""
    main(get_args_parser().parse_args(argv))
    return 0
