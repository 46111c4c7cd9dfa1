"""The seed papers' losses, each written as its equation, plus batch-level Mixup/CutMix.

Every loss maps ``(logits (B, K), target)`` to a scalar averaged over the batch. ``target`` is either class
indices ``(B,)`` or class probabilities ``(B, K)`` (Mixup/CutMix soft targets); an index target is the one-hot
special case of the probability form, so both give the same numbers.

With ``t`` the target distribution and ``p = softmax(logits)``, per sample:

- cross-entropy: ``-Σ_k t_k log p_k``;
- class-weighted cross-entropy (seed 001, Wang & Mbutia eq. 1, ``1/M Σ α × CE``): ``-Σ_k α_k t_k log p_k``,
  averaged over the batch (not divided by Σα as torch's ``weight=`` does), with ``α`` from
  :func:`class_weights`;
- focal loss (seed 003, Xiang, after Lin et al.): ``-Σ_k α_k t_k (1 - p_k)^γ log p_k``;
- label smoothing (seed 003 eq. 2): targets ``1 - ε`` on the true class and ``ε / (K - 1)`` on each other
  class (torch's built-in spreads ε over all K classes, giving ``1 - ε + ε/K``); any loss above takes
  ``label_smoothing=ε``; seed 003 uses ε = 0.3;
- Softmax-MSE (seed 000, Zhai et al. eqs. 1-4): the loss value is ``mean_j (Σ_k k p_jk - y_j)^2``, the squared
  error of the expected label index, while the gradient w.r.t. the logits is softmax-CE's ``p - onehot(y)``
  (divided by the batch size, as for the batch-mean CE), through :class:`SoftmaxMSEFunction`. With that
  gradient Softmax-MSE optimises exactly like softmax cross-entropy: from the same start, the same weights;
  only the loss value it reports differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ferhub.errors import WrongTypeError


def as_probabilities(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices ``(B,)`` -> one-hot ``(B, K)`` floats; probabilities ``(B, K)`` pass through (as
    float)."""
    if target.ndim == 1:
        if target.dtype.is_floating_point:
            raise WrongTypeError("a (B,) target must hold integer class indices; soft targets are (B, K)")
        return F.one_hot(target.long(), num_classes).float()
    if target.ndim == 2 and target.shape[1] == num_classes:
        return target.float()
    raise ValueError(
        f"target must be (B,) class indices or (B, {num_classes}) probabilities, got {tuple(target.shape)}"
    )


def smooth_targets(target: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Seed 003 eq. 2 on a (B, K) distribution: ``(1 - ε) t + ε (1 - t) / (K - 1)``.

    For a one-hot ``t`` that is ``1 - ε`` on the true class and ``ε / (K - 1)`` elsewhere; rows still sum to
    1.
    """
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"label smoothing ε must be in [0, 1), got {epsilon}")
    k = target.shape[1]
    return (1.0 - epsilon) * target + epsilon * (1.0 - target) / (k - 1)


def class_counts(targets: Sequence[int] | np.ndarray | torch.Tensor, num_classes: int) -> torch.Tensor:
    """How many samples of each class ``targets`` (class indices, e.g. ``LabeledSource.targets``) holds."""
    t = torch.as_tensor(np.asarray(targets), dtype=torch.long)
    return torch.bincount(t, minlength=num_classes)[:num_classes].float()


def class_weights(counts: Sequence[float] | np.ndarray | torch.Tensor) -> torch.Tensor:
    """Inverse-frequency class weights normalised to a sample-weighted mean of 1: ``α_k = N / (K n_k)``.

    ``N = Σ n_k``. A balanced set gives all ones; a class with half the average count weighs 2. Seed 001 only
    says "computed based on the number of images in the training set"; this is the usual normalisation
    (scikit-learn's ``"balanced"``), so the weighted loss keeps the scale of the unweighted one.
    """
    n = torch.as_tensor(np.asarray(counts, dtype=np.float64), dtype=torch.float64)
    if (n <= 0).any():
        raise ValueError(
            f"every class needs at least one training sample to weight it, got counts {n.tolist()}; "
            "drop the empty classes from the label set or pass weights explicitly"
        )
    return (n.sum() / (len(n) * n)).float()


def class_vector(value: Sequence[float] | torch.Tensor, name: str) -> torch.Tensor:
    """``value`` as a 1-D float tensor of per-class weights (focal ``alpha``, a class ``weight``).

    Refused with a :class:`ValueError` now, when the loss is built (a recipe's settings are checked by
    building it), unless it is a list of finite numbers >= 0; its length can only be checked against the
    data's classes (:meth:`ferhub.training.TrainConfig.validate_classes`, and at the first batch).
    """
    try:
        t = torch.as_tensor(value, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        t = None
    if t is None or t.ndim != 1 or len(t) == 0:
        raise ValueError(f"{name} must be a list of numbers, one per class, got {str(value)[:60]}")
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ValueError(f"{name} must hold finite numbers >= 0, one per class, got {t.tolist()}")
    return t


def _weighted_soft_ce(
    logits: torch.Tensor,
    t: torch.Tensor,
    alpha: torch.Tensor | None = None,
    gamma: float = 0.0,
) -> torch.Tensor:
    if alpha is not None and alpha.numel() != logits.shape[1]:  # torch would broadcast or fail obscurely
        raise ValueError(
            f"the loss has {alpha.numel()} class weights for {logits.shape[1]} classes; give one per class"
        )
    logp = F.log_softmax(logits.float(), dim=1)
    per_class = -t * logp
    if gamma:
        per_class = per_class * (1.0 - logp.exp()).pow(gamma)
    if alpha is not None:
        per_class = per_class * alpha.to(per_class)
    return per_class.sum(dim=1).mean()


class _SoftTargetLoss(nn.Module):
    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        smooth_targets(torch.zeros(1, 2), label_smoothing)  # validates ε now, not at the first batch
        self.label_smoothing = float(label_smoothing)

    def targets(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        t = as_probabilities(target, logits.shape[1])
        return smooth_targets(t, self.label_smoothing) if self.label_smoothing else t

    def extra_repr(self) -> str:
        return f"label_smoothing={self.label_smoothing}"


class CrossEntropyLoss(_SoftTargetLoss):
    """``-Σ_k t_k log p_k`` averaged over the batch; ``label_smoothing=ε`` spreads ε over the K-1 other
    classes."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _weighted_soft_ce(logits, self.targets(logits, target))


class LabelSmoothingCrossEntropy(CrossEntropyLoss):
    """Cross-entropy on seed 003's smoothed targets (eq. 2), ε = 0.3 by default."""

    def __init__(self, epsilon: float = 0.3) -> None:
        super().__init__(label_smoothing=epsilon)


class WeightedCrossEntropyLoss(_SoftTargetLoss):
    """Seed 001 eq. 1: ``1/M Σ_m α_{y_m} CE_m`` (for soft targets ``-Σ_k α_k t_k log p_k``)."""

    def __init__(self, weight: Sequence[float] | torch.Tensor, label_smoothing: float = 0.0) -> None:
        super().__init__(label_smoothing)
        self.register_buffer("weight", class_vector(weight, "weight"))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _weighted_soft_ce(logits, self.targets(logits, target), alpha=self.weight)


class FocalLoss(_SoftTargetLoss):
    """``-Σ_k α_k t_k (1 - p_k)^γ log p_k``: Lin et al.'s α-balanced focal loss with a per-class α (seed 003).

    ``alpha=None`` weighs every class 1 (what seed 003 found best); ``gamma=0`` gives (weighted)
    cross-entropy.
    """

    def __init__(
        self,
        alpha: Sequence[float] | torch.Tensor | None = None,
        gamma: float = 2.0,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(label_smoothing)
        if gamma < 0:
            raise ValueError(f"focal γ must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.register_buffer("alpha", None if alpha is None else class_vector(alpha, "alpha"))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _weighted_soft_ce(logits, self.targets(logits, target), alpha=self.alpha, gamma=self.gamma)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, " + super().extra_repr()


class SoftmaxMSEFunction(torch.autograd.Function):
    """Seed 000's Softmax-MSE: forward is the MSE of the expected label, backward is softmax-CE's gradient."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(logits.float(), dim=1)  # eq. 1 (softmax subtracts max(X) internally)
        k = torch.arange(p.shape[1], dtype=p.dtype, device=p.device)
        y_hat = p @ k  # eq. 2: the regression value Σ_k k p_k
        y = target.to(p) @ k  # the label index (its expectation for soft targets)
        ctx.save_for_backward(p, target)
        # under AMP the logits may be half precision while p is computed in float32
        ctx.logits_dtype = logits.dtype
        return ((y_hat - y) ** 2).mean()  # eq. 3

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        p, target = ctx.saved_tensors
        # eq. 4, per sample p_i - 1[i = y_j]; the batch mean divides by n like softmax-CE's.
        grad = (p - target.to(p)) * (grad_output / p.shape[0])
        return grad.to(ctx.logits_dtype), None


class SoftmaxMSELoss(nn.Module):
    """Seed 000's Softmax-MSE loss module (see :class:`SoftmaxMSEFunction`).

    The value depends on the order of the labels (it treats class indices as numbers), as in the paper; the
    gradient, and so training, does not.
    """

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return SoftmaxMSEFunction.apply(logits, as_probabilities(target, logits.shape[1]))


def mixup_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    num_classes: int | None = None,
    *,
    switch_prob: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al. 2018) or CutMix (Yun et al. 2019) of a batch with a permutation of itself.

    λ ~ Beta(alpha, alpha) for Mixup: ``x' = λ x + (1-λ) x[perm]``; λ ~ Beta(cutmix_alpha, cutmix_alpha) for
    CutMix: a box of area ``(1-λ) H W`` is pasted from ``x[perm]`` and λ is then the exact kept fraction. With
    both alphas > 0, CutMix is chosen with probability ``switch_prob``. Targets are ``λ onehot(y) + (1-λ)
    onehot(y[perm])``, shape ``(B, K)``. Draws from torch's global RNG, so seeding torch makes it repeatable.
    """
    if num_classes is None:
        raise ValueError("mixup_batch needs num_classes to build (B, K) soft targets")
    t = as_probabilities(y, num_classes)
    use_mixup, use_cutmix = alpha > 0, cutmix_alpha > 0
    if not (use_mixup or use_cutmix) or x.shape[0] < 2:
        return x, t
    if use_mixup and use_cutmix:
        use_cutmix = bool(torch.rand(()) < switch_prob)
    perm = torch.randperm(x.shape[0], device=x.device)
    a = cutmix_alpha if use_cutmix else alpha
    lam = float(torch.distributions.Beta(a, a).sample())
    if use_cutmix:
        h, w = x.shape[-2:]
        cut = math.sqrt(1.0 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        y1, y2 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x1, x2 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        x = x.clone()
        x[..., y1:y2, x1:x2] = x[perm][..., y1:y2, x1:x2]
        lam = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
    else:
        x = lam * x + (1.0 - lam) * x[perm]
    return x, lam * t + (1.0 - lam) * t[perm]


LOSSES = ("cross_entropy", "weighted_cross_entropy", "focal", "label_smoothing", "softmax_mse")
_ALIASES = {
    "ce": "cross_entropy",
    "weighted_ce": "weighted_cross_entropy",
    "class_weighted": "weighted_cross_entropy",
}


def build_loss(
    name: str,
    *,
    class_counts: Sequence[float] | torch.Tensor | None = None,
    weight: Sequence[float] | torch.Tensor | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a loss by name for a recipe: ``cross_entropy`` (alias ``ce``), ``weighted_cross_entropy``
    (``weighted_ce``), ``focal``, ``label_smoothing``, ``softmax_mse``.

    ``weighted_cross_entropy`` takes ``weight=`` or ``class_counts=`` (turned into :func:`class_weights`);
    ``focal`` takes ``alpha=`` (or ``weight=``) or ``class_counts=``, and ``gamma=``; ``label_smoothing=ε`` is
    accepted by the cross-entropy family and focal; ``label_smoothing`` (the name) takes ``epsilon=`` (default
    0.3).

    >>> build_loss("focal", gamma=2.0, label_smoothing=0.3)
    FocalLoss(gamma=2.0, label_smoothing=0.3)
    """
    key = _ALIASES.get(name, name)
    if key == "focal" and weight is not None:
        kwargs.setdefault("alpha", weight)
    elif key not in ("weighted_cross_entropy", "focal") and (weight is not None or class_counts is not None):
        raise ValueError(f"loss {name!r} takes no class weights; use weighted_cross_entropy or focal")
    if key == "cross_entropy":
        return CrossEntropyLoss(**kwargs)
    if key == "weighted_cross_entropy":
        if weight is None and class_counts is None:
            raise ValueError(
                "weighted_cross_entropy needs weight=... or class_counts=... (the training set's)"
            )
        return WeightedCrossEntropyLoss(class_weights(class_counts) if weight is None else weight, **kwargs)
    if key == "focal":
        if class_counts is not None and "alpha" not in kwargs:
            kwargs["alpha"] = class_weights(class_counts)
        return FocalLoss(**kwargs)
    if key == "label_smoothing":
        return LabelSmoothingCrossEntropy(**kwargs)
    if key == "softmax_mse":
        return SoftmaxMSELoss(**kwargs)
    raise ValueError(f"unknown loss {name!r}; known: {', '.join(LOSSES)} (aliases: {', '.join(_ALIASES)})")
