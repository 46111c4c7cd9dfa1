"""``NetworkV2`` of the PyPI package ``PyEmotion`` (MIT), re-implemented for its converted weights.

Four [reflection pad 1, 3x3 conv, BatchNorm, ReLU] stages (the last three strided), then
linear 256 -> ReLU -> linear 7. Upstream ends in a per-class sigmoid and takes the argmax; this module returns
``log(sigmoid(z))`` (:func:`log_sigmoid`, finite in torch and in its ONNX graph alike) so that ferhub's
softmax yields upstream's sigmoid scores normalised to sum to one (the same ranking, and ``exp`` of the output
is exactly upstream's output).
"""

from __future__ import annotations

import torch
from torch import nn

from ferhub.models._registry import register_model

PYEMOTION_LABELS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    # Same indices as upstream's nn.Sequential (0 pad, 1 conv, 2 BN, 3 ReLU) so the state dict maps 1:1.
    return nn.Sequential(
        nn.ReflectionPad2d(1),
        nn.Conv2d(cin, cout, 3, stride=stride),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def log_sigmoid(z: torch.Tensor) -> torch.Tensor:
    """``log(sigmoid(z))`` as torch's ``F.logsigmoid`` computes it, ``min(z, 0) - log1p(exp(-|z|))``, written
    out so that the ONNX graph computes it the same way: ``F.logsigmoid`` exports as ``Log(Sigmoid(z))``,
    which is ``-inf`` wherever the sigmoid underflows (PyEmotion's scores are often saturated), so ONNX
    Runtime disagreed with torch and the model ran in torch only. Values and gradients are torch's, except the
    gradient at exactly ``z = 0`` (1 here, 0.5 in torch: ``clamp`` passes its boundary)."""
    return z.clamp(max=0.0) - torch.log1p(torch.exp(-z.abs()))


class PyEmotionNet(nn.Module):
    """PyEmotion's NetworkV2 with widths ``nl, 2nl, 4nl, 8nl``; returns log-sigmoid scores."""

    def __init__(self, num_classes: int = 7, nl: int = 32, hidden: int = 256, input_size: int = 48) -> None:
        super().__init__()
        self.conv_1 = _stage(1, nl, 1)
        self.conv_2 = _stage(nl, 2 * nl, 2)
        self.conv_3 = _stage(2 * nl, 4 * nl, 2)
        self.conv_4 = _stage(4 * nl, 8 * nl, 2)
        side = input_size
        for _ in range(3):
            side = (side - 1) // 2 + 1
        self.linear = nn.Sequential(
            nn.Linear(8 * nl * side * side, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)
        )

    @property
    def gradcam_layer(self) -> nn.Module:
        return self.conv_3  # 12x12 for a 48 input; conv_4's 6x6 map is too coarse to show much

    def head_modules(self) -> list[nn.Module]:
        """The classifier: what ``--init`` from another label set rebuilds, its rows matched by class name
        (:func:`ferhub.pretrained.load_init`)."""
        return [self.linear[-1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_4(self.conv_3(self.conv_2(self.conv_1(x))))
        return log_sigmoid(self.linear(x.flatten(1)))


# Upstream: the MTCNN box as is (no margin, not squared), OpenCV gray, torchvision Resize((48, 48)),
# Normalize(0.5, 0.5).
_CFG = dict(input_size=48, channels=1, mean=(0.5,), std=(0.5,), crop_margin=0.0, crop_square=False)


@register_model(**_CFG)
def pyemotion_net(num_classes: int = 7, nl: int = 32, hidden: int = 256) -> nn.Module:
    """PyEmotion NetworkV2 (48x48 gray, ~2.75 M parameters)."""
    return PyEmotionNet(num_classes, nl, hidden, input_size=48)


@register_model(**{**_CFG, "input_size": 24})
def test_pyemotion_net(num_classes: int = 7, nl: int = 2, hidden: int = 8) -> nn.Module:
    """Tiny PyEmotion net for tests (24x24)."""
    return PyEmotionNet(num_classes, nl, hidden, input_size=24)
