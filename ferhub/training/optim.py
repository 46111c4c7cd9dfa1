"""Optimizer, learning-rate schedule and EMA of the weights."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from ferhub.training.distributed import unwrap
from ferhub.training.settings import RecipeError, TrainConfig


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
        self.module = copy.deepcopy(unwrap(model)).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self._params = {name for name, _ in self.module.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        src = unwrap(model).state_dict()
        for k, v in self.module.state_dict().items():
            if k in self._params and v.dtype.is_floating_point:
                v.lerp_(src[k].detach(), 1 - self.decay)  # v = decay * v + (1 - decay) * src
            else:  # BatchNorm statistics and counters follow the live model
                v.copy_(src[k])
