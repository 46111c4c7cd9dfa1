"""The sequential fully-convolutional net of seed 002 (Kaskun et al.; Arriaga et al. 2017's first model).

"A typical fully convolutional neural network composed of 9 convolution layers, ReLUs, Batch Normalization
and Global Average Pooling ... about 600,000 parameters": nine feature convolutions in pairs of widths
16, 32, 64, 128 (kernels 7, 5, 3, 3) and a 256-wide one, then a 3x3 convolution to one map per class and
global average pooling instead of any fully connected layer. The layout follows the authors' reference
``simple_CNN``: conv-BN-conv-BN-ReLU, 2x2 average pooling and dropout 0.5 after each pair; 641,463 parameters
for 7 classes. It starts as the Keras model does (Glorot-uniform kernels, BatchNorm momentum 0.99).
"""

from __future__ import annotations

import torch
from torch import nn

from ferhub.models._registry import register_model
from ferhub.models.freeze import StagedModel
from ferhub.models.mini_xception import keras_defaults

_BN_EPS = 1e-3  # Keras' BatchNormalization default (the reference model is Keras)


def _conv_bn(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout, eps=_BN_EPS)]


class FCN(StagedModel):
    """Four (conv-BN-conv-BN-ReLU-avgpool-dropout) stages, conv-BN, class-map conv, global average pooling."""

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        kernels: tuple[int, ...] = (7, 5, 3, 3),
        last_width: int = 256,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        stages, cin = [], in_chans
        for w, k in zip(widths, kernels, strict=True):
            stages.append(
                nn.Sequential(
                    *_conv_bn(cin, w, k),
                    *_conv_bn(w, w, k),
                    nn.ReLU(inplace=True),
                    # Keras "same" 2x2 average pooling: odd sizes round up, the partial window averages what
                    # it has
                    nn.AvgPool2d(2, ceil_mode=True),
                    nn.Dropout(drop_rate),
                )
            )
            cin = w
        self.stages = nn.Sequential(*stages)
        self.last = nn.Sequential(*_conv_bn(cin, last_width, 3))
        self.classifier = nn.Conv2d(last_width, num_classes, 3, padding=1)
        self.gradcam_name = "last"  # the last feature maps before the class maps
        # The first conv pair plays the stem; the reference has no pretrained weights, so stages only matter
        # for experiments with partial freezing.
        self.stem_names = ("stages.0",)
        self.stage_names = (*((f"stages.{i}",) for i in range(1, len(widths))), ("last",))
        self.head_names = ("classifier",)
        keras_defaults(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.last(self.stages(x))).mean(dim=(2, 3))


@register_model(input_size=64, channels=1, mean=(0.5,), std=(0.5,), crop_margin=0.1)
def fcn(num_classes: int = 7, in_chans: int = 1, drop_rate: float = 0.5) -> nn.Module:
    """Seed 002's 9-conv fully-convolutional net with GAP, ~641k parameters (64x64 gray as the reference)."""
    return FCN(num_classes, in_chans, drop_rate=drop_rate)


@register_model(input_size=16, channels=1, mean=(0.5,), std=(0.5,))
def test_fcn(num_classes: int = 7, in_chans: int = 1, drop_rate: float = 0.5) -> nn.Module:
    """A 2-stage FCN with a few hundred parameters, for fast tests (``drop_rate`` as :func:`fcn`'s, so
    ``--tiny`` keeps a recipe's dropout)."""
    return FCN(num_classes, in_chans, widths=(4, 8), kernels=(3, 3), last_width=8, drop_rate=drop_rate)
