"""torchvision ResNet18 from ImageNet weights with only its last stages trainable (seed 004, Chen).

The backbone is torchvision's own module (so its ImageNet checkpoint loads strictly); its 1000-way ``fc`` is
replaced by a ``num_classes`` one. ``trainable_stages=n`` (0..4) trains the head and the last ``n`` of the
four residual stages ``layer1..layer4``; the stem and earlier stages are frozen, BatchNorm statistics included
(see
:mod:`ferhub.models.freeze`). Chen counts the classifier as one of the "transferred blocks": the paper's n is
``trainable_stages + 1`` (its best, n = 2, is ``trainable_stages=1``: layer4 and the classifier).
"""

from __future__ import annotations

import torch
from torch import nn

from ferhub._compat import import_torchvision
from ferhub.models._registry import register_model
from ferhub.models.freeze import StagedModel, set_trainable_stages
from ferhub.pretrained import load_torchvision_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNet(StagedModel):
    """A torchvision ResNet (``self.net``) whose stem, ``layer1..4`` and ``fc`` are the freezing units."""

    stem_names = ("net.conv1", "net.bn1")
    stage_names = (("net.layer1",), ("net.layer2",), ("net.layer3",), ("net.layer4",))
    head_names = ("net.fc",)
    gradcam_name = "net.layer4"

    def __init__(self, net: nn.Module, num_classes: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        in_features = net.fc.in_features
        net.fc = nn.Sequential(nn.Dropout(drop_rate), nn.Linear(in_features, num_classes))
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _resnet(
    arch: str,
    num_classes: int,
    pretrained: bool,
    trainable_stages: int,
    drop_rate: float,
    width: int = 64,
    layers: tuple[int, ...] | None = None,
) -> ResNet:
    tv = import_torchvision()
    if layers is None:
        net = getattr(tv.models, arch)(weights=None)
        if pretrained:
            weights = tv.models.get_model_weights(arch).IMAGENET1K_V1
            load_torchvision_weights(net, weights)
    else:  # the tiny test variant: torchvision's class, narrow and shallow
        from torchvision.models.resnet import BasicBlock

        net = _narrow_resnet(BasicBlock, list(layers), width)
    return set_trainable_stages(ResNet(net, num_classes, drop_rate), trainable_stages)


def _narrow_resnet(block: type, layers: list[int], width: int) -> nn.Module:
    """torchvision's ResNet with stage widths ``width * (1, 2, 4, 8)`` instead of 64..512 (for tests)."""
    from torchvision.models.resnet import ResNet as TVResNet

    net = TVResNet(block, layers)
    net.inplanes = width
    net.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    net.layer1 = net._make_layer(block, width, layers[0])
    net.layer2 = net._make_layer(block, width * 2, layers[1], stride=2)
    net.layer3 = net._make_layer(block, width * 4, layers[2], stride=2)
    net.layer4 = net._make_layer(block, width * 8, layers[3], stride=2)
    net.fc = nn.Linear(width * 8, 1000)
    return net


@register_model(input_size=224, channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_margin=0.1)
def resnet18(
    num_classes: int = 7,
    pretrained: bool = False,
    trainable_stages: int = 4,
    drop_rate: float = 0.0,
) -> nn.Module:
    """torchvision ResNet18 (ImageNet weights with ``pretrained=True``), last ``trainable_stages`` of 4
    trained."""
    return _resnet("resnet18", num_classes, pretrained, trainable_stages, drop_rate)


@register_model(input_size=32, channels=3, mean=IMAGENET_MEAN, std=IMAGENET_STD)
def test_resnet(num_classes: int = 7, trainable_stages: int = 4, drop_rate: float = 0.0) -> nn.Module:
    """A ResNet with one 4-to-32-wide block per stage, for fast tests (``drop_rate`` as :func:`resnet18`'s,
    so ``--tiny`` keeps a recipe's dropout)."""
    return _resnet("resnet18", num_classes, False, trainable_stages, drop_rate, width=4, layers=(1, 1, 1, 1))
