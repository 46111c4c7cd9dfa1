"""face-api.js's FaceExpressionNet (``@vladmandic/face-api``, MIT), re-implemented for converted TF.js
weights.

Four "dense blocks" of four convolutions each (the first strided, the rest depthwise-separable) whose outputs
are summed densely, then global average pooling and one linear layer. Convolutions use TensorFlow's "same"
padding, which on a strided conv over an even size pads only bottom/right; :class:`SameConv2d` reproduces it
so the converted weights give upstream's numbers, not merely similar ones.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ferhub.models._registry import register_model

# face-api subtracts these RGB means from 0..255 pixels and divides by 255, i.e. mean/255 and std 1 on [0, 1].
FACEAPI_MEAN_RGB = (122.782, 117.001, 104.298)
FACEAPI_LABELS = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")


class SameConv2d(nn.Conv2d):
    """A 3x3 (or 1x1) convolution with TensorFlow "same" padding, asymmetric where TF's is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        if (sh, sw) != (1, 1) or kh > 1 or kw > 1:
            pads = []
            for size, k, s in ((x.shape[-1], kw, sw), (x.shape[-2], kh, sh)):
                total = max((math.ceil(size / s) - 1) * s + k - size, 0)
                pads += [total // 2, total - total // 2]
            if any(pads):
                x = F.pad(x, pads)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class SeparableConv(nn.Module):
    """TF ``separableConv2d``: depthwise 3x3 (strided), pointwise 1x1, one bias after both."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = SameConv2d(cin, cin, 3, stride=stride, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class DenseBlock4(nn.Module):
    """face-api ``denseBlock4``: conv0 (strided) then three separable convs, each fed the ReLU'd running
    sum."""

    def __init__(self, cin: int, cout: int, first: bool = False) -> None:
        super().__init__()
        self.conv0 = SameConv2d(cin, cout, 3, stride=2) if first else SeparableConv(cin, cout, stride=2)
        self.conv1 = SeparableConv(cout, cout)
        self.conv2 = SeparableConv(cout, cout)
        self.conv3 = SeparableConv(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = F.relu(self.conv0(x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + out2 + out3))
        return F.relu(out1 + out2 + out3 + out4)


class FaceApiExpressionNet(nn.Module):
    """Feature extractor (dense0..dense3) + average pooling + ``fc``; logits, upstream applies softmax."""

    def __init__(self, num_classes: int = 7, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        chans = (3, *widths)
        self.blocks = nn.ModuleList(
            DenseBlock4(chans[i], chans[i + 1], first=i == 0) for i in range(len(widths))
        )
        self.fc = nn.Linear(widths[-1], num_classes)

    @property
    def gradcam_layer(self) -> nn.Module:
        # A property, not an attribute: a second registered name would duplicate the weights in state_dict.
        return self.blocks[-1]

    def head_modules(self) -> list[nn.Module]:
        """The classifier: what ``--init`` from another label set rebuilds, its rows matched by class name
        (:func:`ferhub.pretrained.load_init`)."""
        return [self.fc]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        # Upstream: avgPool 7x7 stride 2 "valid" on the 7x7 map of a 112 input, i.e. the global mean.
        return self.fc(x.mean(dim=(2, 3)))


_CFG = dict(
    input_size=112,
    channels=3,
    mean=tuple(m / 255 for m in FACEAPI_MEAN_RGB),
    std=(1.0, 1.0, 1.0),
    # face-api classifies the detector's box squared by zero padding; a square crop without margin is closest.
    crop_margin=0.0,
    crop_square=True,
)


@register_model(**_CFG)
def faceapi_expression_net(num_classes: int = 7, widths: tuple[int, ...] = (32, 64, 128, 256)) -> nn.Module:
    """face-api.js FaceExpressionNet (112x112 RGB, ~0.33 M parameters)."""
    return FaceApiExpressionNet(num_classes, tuple(widths))


@register_model(**{**_CFG, "input_size": 32})
def test_faceapi_expression_net(num_classes: int = 7, widths: tuple[int, ...] = (4, 4, 8, 8)) -> nn.Module:
    """Tiny FaceExpressionNet for tests."""
    return FaceApiExpressionNet(num_classes, tuple(widths))
