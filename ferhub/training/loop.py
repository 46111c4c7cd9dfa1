"""One epoch of training and the evaluation of a model on in-memory crops.

Every process draws the same global batch (:func:`epoch_batches`), augments it with the same generator and
trains on its ``rank::world`` share, so N processes follow one process on the same global batch. BatchNorm
is the exception: each rank normalises its share with that share's statistics (``sync_bn``: the global
batch's, CUDA only), and its running statistics are rank 0's (``fit`` gives every rank rank 0's before it
validates).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferhub.config import ModelConfig
from ferhub.device import autograd_batch
from ferhub.hub._weights import unwrap
from ferhub.training.distributed import SINGLE_PROCESS, Dist, all_reduce_sum
from ferhub.training.optim import EMA, LRSchedule, kernel_penalty, regularized_kernels
from ferhub.training.settings import RecipeError, TrainConfig


def epoch_batches(
    n: int, batch_size: int, epoch: int, seed: int, balance: np.ndarray | None = None
) -> list[np.ndarray]:
    """The global batches of one epoch, drawn from (seed, epoch); last partial batch dropped (so every process
    gets an equal share); a set smaller than one batch gives one batch of all of it.

    Without ``balance`` the epoch is a permutation of the ``n`` crops. With ``balance`` (the crops' class
    indices) it is ``n`` draws with replacement, each class equally likely and each crop equally likely within
    its class (seed 004's "random sampling for evenly distributed labels").
    """
    rng = np.random.default_rng([seed, epoch])
    if balance is None:
        order = rng.permutation(n)
    else:
        weight = 1.0 / np.bincount(balance)[balance]
        order = rng.choice(n, size=n, replace=True, p=weight / weight.sum())
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
    dist: Dist = SINGLE_PROCESS,
    scaler: torch.amp.GradScaler | None = None,
    ema: EMA | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """One pass over the training crops; returns mean loss, accuracy on the (unmixed) labels, lr, img/s."""
    _train_mode(model, cfg)
    batches = _global_batches(targets, epoch, cfg, dist)
    kernels = regularized_kernels(model, cfg.kernel_l2_layers) if cfg.kernel_l2 else []
    g = torch.Generator(device=data.device).manual_seed(cfg.seed * 1_000_003 + epoch)
    g_cpu = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch + 1)
    num_classes = unwrap(model).config.num_classes
    stats = torch.zeros(3, device=device)  # loss sum, correct, seen
    lr = optimizer.param_groups[0]["lr"]
    start = time.perf_counter()
    bar = _progress(len(batches), f"epoch {epoch + 1}/{cfg.epochs}", progress and dist.main)
    for step, idx in enumerate(batches):
        lr = schedule.apply(optimizer, epoch, step)
        x, t, y = _rank_batch(data, targets, idx, transform, (g, g_cpu), cfg, num_classes, dist, device)
        with _autocast(device, cfg.amp):
            out = _forward(model, x, cfg, dist, len(targets))
        out = out.float()
        loss = criterion(out, t) + kernel_penalty(kernels, cfg.kernel_l2)
        _step(loss, model, optimizer, cfg, scaler)
        if ema is not None:
            ema.update(model)
        stats += torch.stack(
            [loss.detach() * len(y), (out.detach().argmax(1) == y).sum().float(), stats.new_tensor(len(y))]
        )
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.2e}")
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - start
    loss_sum, n_correct, n = all_reduce_sum(stats, dist).tolist()
    return {
        "train_loss": loss_sum / max(n, 1),
        "train_accuracy": n_correct / max(n, 1),
        "lr": lr,
        "images_per_s": n / elapsed if elapsed > 0 else 0.0,
    }


def _forward(model: nn.Module, x: torch.Tensor, cfg: TrainConfig, dist: Dist, n_train: int) -> torch.Tensor:
    """``model(x)``; a batch of one crop that BatchNorm refuses in training is a setting to change, said as
    such (``batch_size`` 1 itself is refused before any data loads where the model shows it)."""
    from ferhub.training.settings import ONE_CROP_BATCHNORM

    try:
        return model(x)
    except ValueError as e:
        if len(x) != 1 or "value per channel" not in str(e):
            raise
        if n_train == 1:
            why = "the training set is one crop"
            fix = "give more training images"
        elif dist.world > 1:
            why = f"--batch-size {cfg.batch_size} over {dist.world} processes gives each one crop"
            fix = f"give --batch-size {2 * dist.world} or more"
        else:
            why = f"--batch-size {cfg.batch_size} gives batches of one crop"
            fix = "give --batch-size 2 or more"
        raise RecipeError(
            f"{why}, and {type(unwrap(model)).__name__}'s {ONE_CROP_BATCHNORM}; {fix} (or --set "
            "freeze_bn=true to train with BatchNorm's running statistics fixed)"
        ) from None


def _global_batches(targets: torch.Tensor, epoch: int, cfg: TrainConfig, dist: Dist) -> list[np.ndarray]:
    """The epoch's global batches (class-balanced with ``sampler="balanced"``), checked to split over the
    ranks."""
    balance = targets.cpu().numpy() if cfg.sampler == "balanced" else None
    batches = epoch_batches(len(targets), cfg.batch_size, epoch, cfg.seed, balance)
    if any(len(b) % dist.world for b in batches):
        raise RecipeError(
            f"the global batch ({len(batches[0])}) must divide evenly over {dist.world} processes; "
            "change batch_size"
        )
    return batches


def _rank_batch(
    data: torch.Tensor,
    targets: torch.Tensor,
    idx: np.ndarray,
    transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    generators: tuple[torch.Generator, torch.Generator],
    cfg: TrainConfig,
    num_classes: int,
    dist: Dist,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """This rank's share of one global batch, on the device: inputs, training targets (labels, or (B, K) soft
    targets when mixed) and the labels. The whole global batch is augmented with the same draws on every rank.
    """
    g, g_cpu = generators
    index = torch.from_numpy(idx).to(data.device)
    x = transform(data.index_select(0, index), g)
    y = targets.index_select(0, index)
    x, t = mix_batch(x, y, cfg, num_classes, g_cpu)
    x, t, y = (v[dist.rank :: dist.world].to(device, non_blocking=True) for v in (x, t, y))
    if cfg.channels_last and device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        x = autograd_batch(x)  # channels-last into backward on the CPU can crash oneDNN (see there)
    return x, t, y


def _train_mode(model: nn.Module, cfg: TrainConfig) -> None:
    model.train()
    if cfg.freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def _step(
    loss: torch.Tensor,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    scaler: torch.amp.GradScaler | None,
) -> None:
    """Backward pass, optional gradient clipping (after unscaling fp16 gradients) and optimizer step."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        return
    loss.backward()
    if cfg.grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()


def _progress(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # a dependency (huggingface-hub's too), but not needed to train: the log remains
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
    tta: str | None = None,
    amp: str = "none",
    channels_last: bool = False,
) -> np.ndarray:
    """Softmax probabilities (N, K) of ``model`` on ``uint8`` crops, averaged over the ``tta`` views.

    The views come from :func:`ferhub.transforms.tta_views` and are fed as ``ferhub evaluate`` feeds them
    (:func:`~ferhub.transforms.eval_tensor`), so a TTA number here is the number evaluation gives.
    """
    from ferhub.transforms import normalize

    model.eval()
    out = []
    for i in range(0, len(data), batch_size):
        chunk = data[i : i + batch_size]
        views = _tta_batches(chunk, config, tta) if tta else [normalize(chunk, config)]
        probs = 0
        for v in views:
            v = v.to(device)
            if channels_last and device.type == "cuda":
                v = v.contiguous(memory_format=torch.channels_last)
            with _autocast(device, amp):
                probs = probs + F.softmax(model(v).float(), dim=1)
        out.append((probs / len(views)).cpu())
    k = config.num_classes
    return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, k))


def _tta_batches(chunk: torch.Tensor, config: ModelConfig, tta: str) -> list[torch.Tensor]:
    """One normalised batch per TTA view of the ``uint8`` crops in ``chunk``."""
    from PIL import Image

    from ferhub.transforms import eval_tensor, tta_views

    per_crop = [tta_views(Image.fromarray(a), tta) for a in chunk.cpu().numpy()]
    return [eval_tensor([views[v] for views in per_crop], config) for v in range(len(per_crop[0]))]


def no_face_record(
    targets: np.ndarray,
    fallback: np.ndarray,
    data_labels: Sequence[str],
    model_labels: Sequence[str],
    *,
    precropped: bool,
) -> dict[str, Any]:
    """An entry's ``no_face`` for reported crops, as ``ferhub evaluate`` records it on the same images: the
    images where no face was found (``fallback``: the whole image stood in, so the policy is ``"fallback"``),
    per class in the entry's labels; ``"precropped"`` and none where the crops were given. ``targets``: each
    image once (not once per repeat)."""
    from ferhub.metrics import LabelSpace

    space = LabelSpace.build(data_labels, model_labels)
    t = space.data_index[np.asarray(targets, dtype=np.int64)]
    missing = np.zeros(len(t), dtype=bool) if precropped else np.asarray(fallback, dtype=bool)
    per_class = np.bincount(t[missing], minlength=len(space.labels))
    return {
        "count": int(missing.sum()),
        "policy": "precropped" if precropped else "fallback",
        "per_class": {name: int(per_class[i]) for i, name in enumerate(space.labels)},
    }


def score(
    probs: np.ndarray,
    targets: np.ndarray,
    data_labels: Sequence[str],
    model_labels: Sequence[str],
    groups: np.ndarray | None = None,
) -> dict[str, Any]:
    """ferhub.metrics' summary (accuracy, mean class recall, per-class, confusion matrix, calibration);
    ``groups``: per row, the image it predicts, where images have several rows (repeats)."""
    from ferhub.metrics import BOOTSTRAP_RESAMPLES, summarize

    # evaluate's resample count: `ferhub evaluate` on the reported split gives these intervals again
    return summarize(targets, probs, data_labels=data_labels, model_labels=model_labels,
                     n_resamples=BOOTSTRAP_RESAMPLES, groups=groups)  # fmt: skip
