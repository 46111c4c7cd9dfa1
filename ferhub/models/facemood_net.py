"""The CNN of the PyPI package ``facemood`` (Apache-2.0), re-implemented for its converted Keras weights.

A plain Keras ``Sequential``: five [3x3 "valid" conv + ReLU, BatchNorm, 2x2 max-pool] stages, flatten,
a linear 128-unit dense layer, BatchNorm, and the 7-way classifier (upstream ends in a softmax; ferhub
models return logits). The converter reorders the first dense layer's inputs from Keras' channels-last flatten
to PyTorch's channels-first one, so the module itself stays ordinary.
"""

from __future__ import annotations

import torch
from torch import nn

from ferhub.models._registry import register_model

FACEMOOD_LABELS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
_BN_EPS = 1e-3  # Keras' BatchNormalization default, which upstream trained with


def feature_size(input_size: int, stages: int) -> int:
    """Side of the last feature map: each stage is a valid 3x3 conv (-2) then a floor-halving pool."""
    size = input_size
    for _ in range(stages):
        size = (size - 2) // 2
    if size < 1:
        raise ValueError(f"input_size {input_size} is too small for {stages} conv/pool stages")
    return size


class FacemoodNet(nn.Module):
    """conv/BN/pool stages -> flatten -> dense -> BN -> classifier."""

    def __init__(
        self,
        num_classes: int = 7,
        widths: tuple[int, ...] = (32, 60, 80, 100, 120),
        hidden: int = 128,
        input_size: int = 170,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for w in widths:
            layers += [
                nn.Conv2d(cin, w, 3),
                nn.ReLU(inplace=True),
                nn.BatchNorm2d(w, eps=_BN_EPS),
                nn.MaxPool2d(2, 2),
            ]
            cin = w
        self.features = nn.Sequential(*layers)
        side = feature_size(input_size, len(widths))
        self.dense = nn.Linear(cin * side * side, hidden)
        self.bn = nn.BatchNorm1d(hidden, eps=_BN_EPS)
        self.classifier = nn.Linear(hidden, num_classes)

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.features[-2]  # the last BatchNorm before pooling: a map large enough to be informative

    def head_modules(self) -> list[nn.Module]:
        """The classifier: what ``--init`` from another label set rebuilds, its rows matched by class name
        (:func:`ferhub.pretrained.load_init`)."""
        return [self.classifier]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(1)
        return self.classifier(self.bn(self.dense(x)))


# facemood feeds the whole camera frame resized to 170x170, scaled to [0, 1]; ferhub gives it a face crop
# with a generous margin, closer to a frame where the face fills most of the picture.
_CFG = dict(input_size=170, channels=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), crop_margin=0.25)


@register_model(**_CFG)
def facemood_cnn(
    num_classes: int = 7, widths: tuple[int, ...] = (32, 60, 80, 100, 120), hidden: int = 128
) -> nn.Module:
    """facemood's 5-stage CNN (170x170 RGB, ~0.38 M parameters)."""
    return FacemoodNet(num_classes, tuple(widths), hidden, input_size=170)


@register_model(**{**_CFG, "input_size": 32})
def test_facemood_cnn(num_classes: int = 7, widths: tuple[int, ...] = (4, 8), hidden: int = 8) -> nn.Module:
    """Tiny facemood CNN for tests (32x32)."""
    return FacemoodNet(num_classes, tuple(widths), hidden, input_size=32)
