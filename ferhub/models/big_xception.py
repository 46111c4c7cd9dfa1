"""big-Xception (Arriaga et al. 2017, ``face_classification``'s ``big_XCEPTION``), as shipped, BN-folded, in
the
npm package ``@vladmandic/human`` (MIT) as its FER2013 ``emotion`` model.

Two plain 3x3 convolutions (the first strided, both "valid"), two Xception blocks (separable conv, ReLU,
separable conv, 3x3/2 max-pool, plus a strided 1x1 shortcut; a ReLU before the second block), a 3x3 conv to
class maps and global average pooling. The TF.js graph has every BatchNormalization folded into the preceding
convolution's weights and bias, so this module has biased convolutions and no BatchNorm layers.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from ferhub.models._registry import register_model
from ferhub.models.faceapi_net import SameConv2d
from ferhub.models.mini_xception import SameMaxPool2d

HUMAN_EMOTION_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


class BigXceptionBlock(nn.Module):
    """[ReLU] sep-conv, ReLU, sep-conv, max-pool (TF "same"); plus a strided 1x1 conv shortcut of the
    input."""

    def __init__(self, cin: int, cout: int, pre_relu: bool) -> None:
        super().__init__()
        self.pre_relu = pre_relu
        self.shortcut = SameConv2d(cin, cout, 1, stride=2)
        self.dw1 = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pw1 = nn.Conv2d(cin, cout, 1)
        self.dw2 = nn.Conv2d(cout, cout, 3, padding=1, groups=cout, bias=False)
        self.pw2 = nn.Conv2d(cout, cout, 1)
        self.pool = SameMaxPool2d(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(x) if self.pre_relu else x
        y = F.relu(self.pw1(self.dw1(y)))
        y = self.pool(self.pw2(self.dw2(y)))
        return y + self.shortcut(x)


class BigXception(nn.Module):
    """Stem (32, 64 channels) -> blocks (``widths``) -> 3x3 conv to classes -> global average."""

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        stem: tuple[int, int] = (32, 64),
        widths: tuple[int, ...] = (128, 256),
    ) -> None:
        super().__init__()
        self.stem1 = nn.Conv2d(in_chans, stem[0], 3, stride=2)
        self.stem2 = nn.Conv2d(stem[0], stem[1], 3)
        chans = [stem[1], *widths]
        self.blocks = nn.Sequential(
            *(BigXceptionBlock(a, b, pre_relu=i > 0) for i, (a, b) in enumerate(itertools.pairwise(chans)))
        )
        self.classifier = nn.Conv2d(chans[-1], num_classes, 3, padding=1)

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.blocks[-1]

    def head_modules(self) -> list[nn.Module]:
        """The classifier: what ``--init`` from another label set rebuilds, its rows matched by class name
        (:func:`ferhub.pretrained.load_init`)."""
        return [self.classifier]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem2(F.relu(self.stem1(x))))
        return self.classifier(self.blocks(x)).mean(dim=(2, 3))


# human feeds (gray - 0.5) * 2 of a 64x64 face crop; trained on FER2013 like fer's mini-Xception, so ferhub
# frames the face the same way as its fer-mini-xception (square, 5% margin).
_CFG = dict(input_size=64, channels=1, mean=(0.5,), std=(0.5,), crop_margin=0.05, crop_square=True)


@register_model(**_CFG)
def big_xception(num_classes: int = 7, in_chans: int = 1) -> nn.Module:
    """big-Xception, ~0.2 M parameters (face_classification's FER2013 model in @vladmandic/human)."""
    return BigXception(num_classes, in_chans)


@register_model(**{**_CFG, "input_size": 32})
def test_big_xception(num_classes: int = 7, in_chans: int = 1) -> nn.Module:
    """Tiny big-Xception for tests."""
    return BigXception(num_classes, in_chans, stem=(4, 4), widths=(8, 8))
