"""Freezing, partial unfreezing and per-part learning rates for ferhub's transfer-learning families.

A :class:`StagedModel` names its parts by attribute path: a ``stem``, an ordered list of backbone ``stages``
(input side first) and a ``head``. ``set_trainable_stages(model, n)`` leaves the head and the last ``n``
stages trainable and freezes the rest (seed 004, Chen: ResNet18 with only its last blocks trained). Frozen
means frozen: parameters get ``requires_grad=False`` *and* their BatchNorm statistics stop moving, because a
StagedModel keeps every fully frozen stage in eval mode whatever ``model.train()`` says.

>>> from ferhub.models import create_model
>>> m = set_trainable_stages(create_model("test_resnet"), 1)
>>> [g["name"] for g in param_groups(m, lr=1e-3, backbone_lr=1e-4)]
['head', 'head_no_decay', 'backbone', 'backbone_no_decay']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ferhub.errors import WrongTypeError

# A part of a model: one or more attribute paths (``"net.layer4"``, ``"features.6"``) taken together.
Part = tuple[str, ...]


class StagedModel(nn.Module):
    """Base for models whose backbone is cut into stages; subclasses set the three name lists.

    ``stem_names`` and each entry of ``stage_names`` / ``head_names`` are attribute paths resolved with
    ``get_submodule``; names, not module references, so no module is registered twice in the state dict.
    ``gradcam_name`` names the last convolutional block, exposed as ``model.gradcam_layer``.
    """

    stem_names: Part = ()
    stage_names: tuple[Part, ...] = ()
    head_names: Part = ()
    gradcam_name: str = ""

    @property
    def gradcam_layer(self) -> nn.Module:
        """The last convolutional block, for Captum's Grad-CAM (a property: registering the module a second
        time would duplicate its weights in the state dict)."""
        return self.get_submodule(self.gradcam_name)

    def _modules_of(self, names: Sequence[str]) -> list[nn.Module]:
        return [self.get_submodule(n) for n in names]

    @property
    def num_stages(self) -> int:
        return len(self.stage_names)

    def backbone_parts(self) -> list[list[nn.Module]]:
        """Stem first, then each stage: the units that freezing works on."""
        return [self._modules_of(self.stem_names), *(self._modules_of(s) for s in self.stage_names)]

    def head_modules(self) -> list[nn.Module]:
        return self._modules_of(self.head_names)

    def train(self, mode: bool = True) -> StagedModel:
        super().train(mode)
        if mode:
            # A frozen part must compute the same function in training as in evaluation: its BatchNorm uses
            # and keeps its running statistics, its dropout is off.
            for part in self.backbone_parts():
                params = [p for m in part for p in m.parameters()]
                if params and not any(p.requires_grad for p in params):
                    for m in part:
                        m.eval()
        return self


def _require_staged(model: nn.Module) -> StagedModel:
    if not isinstance(model, StagedModel):
        raise WrongTypeError(
            f"{type(model).__name__} does not declare stages; partial unfreezing works on ferhub's transfer "
            "families (resnet18, irv1_multiscale, lightcnn9, fcn, mobilenet_*, inception_v3, ...)"
        )
    return model


def freeze(modules: nn.Module | Sequence[nn.Module], trainable: bool = False) -> None:
    """Set ``requires_grad`` on every parameter of ``modules`` (and their eval mode when frozen)."""
    for m in [modules] if isinstance(modules, nn.Module) else modules:
        m.requires_grad_(trainable)
        if not trainable:
            m.eval()


def set_trainable_stages(model: nn.Module, n: int) -> nn.Module:
    """Train the head and the last ``n`` backbone stages; freeze the stem and the earlier stages.

    ``n = 0`` trains the head only (a linear probe); ``n = model.num_stages`` trains everything.
    Returns the model so calls chain.
    """
    staged = _require_staged(model)
    if not 0 <= n <= staged.num_stages:
        raise ValueError(
            f"trainable_stages must be between 0 and {staged.num_stages} for {type(model).__name__}, got {n}"
        )
    parts = staged.backbone_parts()  # stem, stage 1 .. stage S
    first_trainable = len(parts) - n if n < staged.num_stages else 0  # all stages trainable -> stem too
    for i, part in enumerate(parts):
        freeze(part, trainable=i >= first_trainable)
    freeze(staged.head_modules(), trainable=True)
    staged.train(staged.training)  # re-apply eval mode to what just froze
    return model


def trainable_stages(model: nn.Module) -> int:
    """How many of the last backbone stages are trainable (the inverse of :func:`set_trainable_stages`)."""
    staged = _require_staged(model)
    count = 0
    for part in reversed(staged.backbone_parts()[1:]):
        if not any(p.requires_grad for m in part for p in m.parameters()):
            break
        count += 1
    return count


def _is_no_decay(name: str, param: nn.Parameter) -> bool:
    # Biases, norm scales and other 1-D parameters (e.g. output mix-up lambdas) are not weight-decayed.
    return param.ndim <= 1 or name.endswith(".bias")


def param_groups(
    model: nn.Module,
    lr: float,
    *,
    backbone_lr: float | None = None,
    weight_decay: float = 0.0,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the head at ``lr``, the trainable backbone at ``backbone_lr`` (default
    ``lr``).

    Frozen parameters are left out; 1-D parameters (biases, norms) get no weight decay. Each group carries a
    ``name`` (``head``, ``head_no_decay``, ``backbone``, ``backbone_no_decay``); empty groups are dropped.
    A model without declared stages gives ``all`` / ``all_no_decay`` groups at ``lr``.
    """
    if isinstance(model, StagedModel):
        head_ids = {id(p) for m in model.head_modules() for p in m.parameters()}
        sections = {"head": (lr, []), "backbone": (lr if backbone_lr is None else backbone_lr, [])}
        for name, p in model.named_parameters():
            sections["head" if id(p) in head_ids else "backbone"][1].append((name, p))
    else:
        sections = {"all": (lr, list(model.named_parameters()))}
    groups: list[dict[str, Any]] = []
    for section, (section_lr, named) in sections.items():
        trainable = [(n, p) for n, p in named if p.requires_grad]
        decay = [p for n, p in trainable if not _is_no_decay(n, p)]
        no_decay = [p for n, p in trainable if _is_no_decay(n, p)]
        for suffix, params, wd in (("", decay, weight_decay), ("_no_decay", no_decay, 0.0)):
            if params:
                groups.append(
                    {"name": section + suffix, "params": params, "lr": section_lr, "weight_decay": wd}
                )
    return groups
