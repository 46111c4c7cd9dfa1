"""The ``ensemble`` architecture: several ferhub models voting, each on a face crop framed its own way.

An ensemble repo has only a ``config.json`` (``model_args = {"members": [Hub ids, bundled names or absolute
folder paths], "weights": [...]}``; only the first two can be pushed, and only an ensemble loaded as a local
folder loads folder members: one from the Hub refuses them) and a card; its builder loads the members with
:func:`ferhub.hub.load`. Members keep their own configs, so ferhub's
:class:`~ferhub.predict.Predictor` crops and normalises for each member separately and merges their
probabilities with :meth:`Ensemble.combine`; ``forward`` takes the same per-member crops
(:meth:`Ensemble.member_inputs`), so an attribution explains that very computation.

>>> model = ferhub.load("ferhub/zoo-ensemble")              # doctest: +SKIP
>>> [m.config.architecture for m in model.members]          # doctest: +SKIP
['mini_xception', 'faceapi_expression_net', 'facemood_cnn']
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ferhub.errors import EnsembleError
from ferhub.labels import canonical, union_labels
from ferhub.models._registry import register_model

if TYPE_CHECKING:
    from PIL import Image

    from ferhub.faces import Face


class Ensemble(nn.Module):
    """Members (``nn.ModuleList`` of loaded models with ``.config``) and their non-negative vote weights.

    It has no weights of its own. ``labels`` is :func:`ferhub.labels.union_labels` of the members' labels; the
    ensemble's probability for a class is the weighted mean over the members that have that class, each row
    then renormalised to sum to one (which changes nothing when all members share one label set).
    """

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if len(members) < 1:
            raise EnsembleError("an ensemble needs at least one member")
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members):
            raise EnsembleError(
                f"{len(members)} members but {len(weights)} weights; give one weight per member"
            )
        if any(not np.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise EnsembleError(f"ensemble weights must be finite, >= 0 and not all 0, got {weights}")
        for i, m in enumerate(members):
            if getattr(m, "config", None) is None:
                raise EnsembleError(f"member {i} has no .config; load members with ferhub.hub.load")
        self.members = nn.ModuleList(members)
        self.weights = tuple(weights)
        self.labels = union_labels(*(m.config.labels for m in members))
        pos = {lab: i for i, lab in enumerate(self.labels)}
        self._index = [np.array([pos[canonical(lab)] for lab in m.config.labels]) for m in members]
        coverage = np.zeros(len(self.labels))
        for idx, w in zip(self._index, self.weights):
            coverage[idx] += w
        if (coverage == 0).any():
            missing = [lab for lab, c in zip(self.labels, coverage) if c == 0]
            raise EnsembleError(f"classes {missing} are predicted only by members of weight 0")
        self._coverage = coverage

    def combine(self, member_probs: Sequence[np.ndarray]) -> np.ndarray:
        """Merge each member's ``(N, K_m)`` probabilities (its own label order) into ``(N, K)`` in ``labels``.

        Per class, the weighted mean over the members that predict it (a member without the class contributes
        nothing to it); rows are then renormalised to sum to 1.
        """
        if len(member_probs) != len(self.members):
            raise EnsembleError(
                f"got probabilities of {len(member_probs)} members, the ensemble has {len(self.members)}"
            )
        n = len(member_probs[0])
        total = np.zeros((n, len(self.labels)), dtype=np.float64)
        for i, (p, idx, w) in enumerate(zip(member_probs, self._index, self.weights)):
            p = np.asarray(p)
            if p.shape != (n, len(idx)):
                raise EnsembleError(f"member {i} gave shape {p.shape}; expected {(n, len(idx))}")
            total[:, idx] += w * p
        mean = total / self._coverage
        sums = mean.sum(axis=1, keepdims=True)
        return (mean / np.where(sums > 0, sums, 1.0)).astype(np.float32)

    def member_inputs(self, image: Image.Image, faces: Sequence[Face]) -> tuple[torch.Tensor, ...]:
        """Each member's batch for ``faces`` of ``image``, from the one crop path: ``crop_face`` and
        ``eval_tensor`` with that member's config: what :class:`~ferhub.predict.Predictor` feeds it."""
        from ferhub.faces import crop_face
        from ferhub.transforms import eval_tensor

        return tuple(
            eval_tensor([crop_face(image, f, m.config) for f in faces], m.config) for m in self.members
        )

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Log of the combined probabilities, from one batch per member as that member is fed
        (:meth:`member_inputs`): the Predictor's computation, differentiable for attribution methods;
        ``softmax`` of the output gives the Predictor's probabilities."""
        if len(inputs) != len(self.members) or any(
            x.ndim != 4 or tuple(x.shape[1:]) != (m.config.channels, m.config.input_size, m.config.input_size)
            for x, m in zip(inputs, self.members)
        ):
            shapes = [(m.config.channels, m.config.input_size, m.config.input_size) for m in self.members]
            raise ValueError(
                f"an ensemble takes one batch per member, shaped (B, C, S, S) as each is fed: {shapes}; "
                f"got {[tuple(x.shape) for x in inputs]}. Build them with model.member_inputs(image, faces); "
                "to classify faces use ferhub.Predictor(model).classify_crops(crops)"
            )
        return self.vote([torch.softmax(member(x).float(), dim=1) for x, member in zip(inputs, self.members)])

    def vote(self, member_probs: Sequence[torch.Tensor]) -> torch.Tensor:
        """:meth:`combine` in torch (differentiable), returning the log of the combined probabilities; the
        end of :meth:`forward`, given each member's ``(B, K_m)`` probabilities."""
        first = member_probs[0]
        total = first.new_zeros(first.shape[0], len(self.labels))
        for p, idx, w in zip(member_probs, self._index, self.weights):
            total = total.index_add(1, torch.as_tensor(idx, device=first.device), w * p)
        mean = total / first.new_tensor(self._coverage)
        return torch.log((mean / mean.sum(dim=1, keepdim=True)).clamp_min(1e-12))


# The ensemble's own config frames the crop its explanations are shown on (the app, --saliency); Predictor and
# forward use each member's own config.
_CFG = dict(input_size=112, channels=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), crop_margin=0.1)


@register_model(**_CFG)
def ensemble(
    num_classes: int = 7, members: Sequence[str] = (), weights: Sequence[float] | None = None
) -> nn.Module:
    """Weighted vote of ferhub models (Hub ids or bundled names; default: the bundled zoo); no own weights.

    Members load with :func:`ferhub.hub._repo.load_member`: folders on this machine only for an ensemble the
    user named as a local folder, never for one downloaded from the Hub or named by a public app's visitor."""
    from ferhub.hub._repo import load_member

    if not members:
        from ferhub.zoo import ENSEMBLE_MEMBERS

        members = ENSEMBLE_MEMBERS
    model = Ensemble([load_member(m) for m in members], weights)
    if len(model.labels) != num_classes:
        raise EnsembleError(
            f"the members predict {len(model.labels)} classes {model.labels}, but the ensemble's config lists"
            f" {num_classes}; its labels must be the union of its members' labels (make it with"
            " make_ensemble)"
        )
    return model


def _member_reference(member: str | os.PathLike) -> str:
    """How the config names a member: a local folder by its absolute path (a relative one would mean another
    folder, or none, from another working directory); bundled names and Hub ids as given."""
    path = Path(os.fspath(member)).expanduser()
    return str(path.resolve()) if path.is_dir() else os.fspath(member)  # load() reads a folder first too


def make_ensemble(members: Sequence[str | os.PathLike], weights: Sequence[float] | None = None) -> Ensemble:
    """Load ``members`` and return their :class:`Ensemble` with its config (labels = the union) attached.

    A member given as a local folder is recorded by its absolute path, so the saved ensemble loads from any
    working directory on this machine; to push the ensemble, push such members first and list their Hub ids
    (``ferhub push`` refuses an ensemble of local folders).
    """
    from ferhub.config import ModelConfig
    from ferhub.hub import load

    references = [_member_reference(m) for m in members]
    model = Ensemble([load(m) for m in references], weights)
    model_args = {"members": references, "weights": list(model.weights)}
    model.config = ModelConfig(architecture="ensemble", labels=model.labels, model_args=model_args, **_CFG)
    return model
