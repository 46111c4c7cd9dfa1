"""Optimizer, learning-rate schedule and EMA of the weights."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ferhub.hub._weights import unwrap
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
    """Per-step learning-rate factor: linear warm-up, then constant / cosine / step / step_linear /
    reduce-on-plateau.

    ``step`` multiplies by ``gamma`` every ``step_epochs``; ``step_linear`` takes ``gamma`` of the initial
    rate off every ``step_epochs`` (seed 003: "decreases by 0.25 of the origin every fixed number of epochs").
    The plateau rule watches the run's monitored validation value (as a score, higher is better) at the end of
    each epoch; an improvement must beat the best by 1e-4. ``plateau_rule="torch"`` cuts the rate when the
    flat epochs exceed ``plateau_patience`` (PyTorch's ``ReduceLROnPlateau``), ``"keras"`` when they reach it
    (Keras' ``ReduceLROnPlateau``: ``wait >= patience``). All state is plain numbers (saved in checkpoints).
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
            # never past the recipe's rate: a warm-up that is not a whole number of steps (--tiny's half
            # epoch over 3 batches) ended its last step above 1
            return min((t + 1 / self.steps_per_epoch) / cfg.warmup_epochs, 1.0)
        if cfg.schedule == "cosine":
            span = max(cfg.epochs - cfg.warmup_epochs, 1e-8)
            progress = min(max((t - cfg.warmup_epochs) / span, 0.0), 1.0)
            return 0.5 * (1 + math.cos(math.pi * progress))
        if cfg.schedule == "step":
            return cfg.gamma ** int(t // cfg.step_epochs)
        if cfg.schedule == "step_linear":
            return max(1.0 - cfg.gamma * int(t // cfg.step_epochs), 0.0)
        if cfg.schedule == "plateau":
            return self.plateau_scale
        return 1.0

    def apply(self, optimizer: torch.optim.Optimizer, epoch: int, step: int) -> float:
        f = self.factor(epoch, step)
        for g in optimizer.param_groups:
            g["lr"] = max(g["initial_lr"] * f, self.cfg.min_lr if f < 1 else 0.0)
        return optimizer.param_groups[0]["lr"]

    def end_epoch(self, score: float) -> None:
        """The epoch's monitored validation score (higher is better; a loss is passed negated)."""
        if self.cfg.schedule != "plateau":
            return
        if score > self.best + 1e-4:
            self.best, self.bad_epochs = score, 0
            return
        self.bad_epochs += 1
        patience = self.cfg.plateau_patience
        if self.bad_epochs > patience or (self.cfg.plateau_rule == "keras" and self.bad_epochs >= patience):
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


def regularized_kernels(model: nn.Module, layers: Sequence[str]) -> list[nn.Parameter]:
    """The kernels (weights of convolutions and linear layers, not biases or norms) that ``kernel_l2`` applies
    to: those of modules whose name starts with one of ``layers`` (every one when ``layers`` is empty)."""
    kinds = (nn.modules.conv._ConvNd, nn.Linear)
    picked = []
    for name, m in unwrap(model).named_modules():
        if isinstance(m, kinds) and (
            not layers or any(name == p or name.startswith(p + ".") for p in layers)
        ):
            picked.append(m.weight)
    if layers and not picked:
        raise RecipeError(f"kernel_l2_layers {list(layers)} name no convolution or linear layer of the model")
    return picked


def kernel_penalty(kernels: Sequence[torch.Tensor], strength: float) -> torch.Tensor | float:
    """Keras' ``l2(strength)`` regulariser summed over ``kernels``: ``strength * sum(w ** 2)`` (no 1/2)."""
    if strength <= 0 or not kernels:
        return 0.0
    return strength * sum(w.pow(2).sum() for w in kernels)
