"""Seed 003 (Xiang): facenet-pytorch's InceptionResnetV1 (VGGFace2 weights), frozen, with the multi-scale
convolutional head of Fig. 2 and output mix-up with the neutral class (eq. 3); and the paper's baseline, the
same network fine-tuned whole with a new classifier (``irv1_classifier``).

The multi-scale model uses facenet-pytorch's own module up to ``block8`` (1792 maps; 3x3 at 160 px, 9x9 at the
paper's 350 px, where the head's three blocks give maps of 9, 5 and 3 px); its pooling, embedding layer and
identity classifier are not used and are removed after the weights load. The neutral class of eq. 3 is looked
up in the model's labels when ``create_model`` (or ``ferhub.load``) attaches its config; pass
``output_mixup=False`` for a label set without "neutral".

Preprocessing is facenet's fixed standardisation ``(x - 127.5) / 128`` on 0..255 pixels, written as
mean 0.5 / std 128/255 on [0, 1] pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ferhub._compat import import_torchvision
from ferhub.config import ModelConfig
from ferhub.labels import FER7
from ferhub.models._registry import register_model
from ferhub.models.freeze import StagedModel, set_trainable_stages
from ferhub.models.heads import MultiScaleHead, OutputMixup
from ferhub.pretrained import load_facenet_weights

FACENET_MEAN = (0.5, 0.5, 0.5)
FACENET_STD = (128 / 255,) * 3
_STEM = ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b")
_STAGES = (("repeat_1", "mixed_6a"), ("repeat_2", "mixed_7a"), ("repeat_3", "block8"))
_UNUSED = ("avgpool_1a", "dropout", "last_linear", "last_bn", "logits")


def neutral_index(labels: Sequence[str]) -> int:
    """Position of ``neutral`` in a label list (seed 003's "5th label"), with a clear error if it is
    absent."""
    if "neutral" not in labels:
        raise ValueError(
            f"output mix-up mixes every class with 'neutral', which labels {list(labels)} lack; "
            "build the model with output_mixup=False (ferhub train: --set model_args.output_mixup=false)"
        )
    return list(labels).index("neutral")


class _IRV1(StagedModel):
    """What both IRV1 models share: facenet's stem and stages, and output mix-up keyed to the labels."""

    stem_names = tuple(f"backbone.{n}" for n in _STEM)
    stage_names = tuple(tuple(f"backbone.{n}" for n in stage) for stage in _STAGES)
    gradcam_name = "backbone.block8"
    mixup: OutputMixup | None

    @property
    def config(self) -> ModelConfig | None:
        return self.__dict__.get("_config")

    @config.setter
    def config(self, config: ModelConfig) -> None:
        # create_model/ferhub.load attach the config after building: that is when the label order is known.
        if self.mixup is not None:
            self.mixup.neutral_index = neutral_index(config.labels)
        self.__dict__["_config"] = config

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The ``block8`` maps (1792 channels)."""
        for name in (*_STEM, *(n for stage in _STAGES for n in stage)):
            x = getattr(self.backbone, name)(x)
        return x

    def _mix(self, y: torch.Tensor) -> torch.Tensor:
        return self.mixup(y) if self.mixup is not None else y


class IRV1MultiScale(_IRV1):
    """InceptionResnetV1 maps -> multi-scale head -> (optional) output mix-up."""

    head_names = ("head", "mixup")

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        head_channels: Sequence[int] = (512, 256, 256),
        output_mixup: bool = True,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        for name in _UNUSED:
            if hasattr(backbone, name):
                delattr(backbone, name)
        self.backbone = backbone
        self.head = MultiScaleHead(1792, num_classes, channels=head_channels, drop_rate=drop_rate)
        # FER7's neutral until the real labels arrive with the config (see the `config` property)
        self.mixup = OutputMixup(num_classes, _until_labels(num_classes)) if output_mixup else None
        if not output_mixup:
            self.head_names = ("head",)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._mix(self.head(self.forward_features(x)))


class IRV1Classifier(_IRV1):
    """Seed 003's baseline "MTCNN + Inception Resnet v1 (fine-tuned)": facenet's whole network through its own
    embedding layers (average pooling, dropout, 512-wide linear layer, BatchNorm), a new linear classifier on
    the embedding, and optionally output mix-up (eq. 3) on its outputs. Nothing is frozen unless asked."""

    head_names = ("backbone.last_linear", "backbone.last_bn", "classifier", "mixup")

    def __init__(self, backbone: nn.Module, num_classes: int, output_mixup: bool = False) -> None:
        super().__init__()
        if hasattr(backbone, "logits"):
            delattr(backbone, "logits")  # the identity classifier
        self.backbone = backbone
        self.classifier = nn.Linear(backbone.last_linear.out_features, num_classes)
        self.mixup = OutputMixup(num_classes, _until_labels(num_classes)) if output_mixup else None
        if not output_mixup:
            self.head_names = self.head_names[:-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.dropout(b.avgpool_1a(self.forward_features(x)).flatten(1))
        return self._mix(self.classifier(b.last_bn(b.last_linear(x))))


def _until_labels(num_classes: int) -> int:
    """The neutral index the mix-up uses until the model's labels arrive with its config: FER7's, or the last
    class where there are fewer (a forward pass before then, the registry's activation measurement at a
    non-preset input size, indexed past the classes of a 4-class model)."""
    return min(neutral_index(FER7), num_classes - 1)


def _backbone(pretrained: bool, dropout_prob: float = 0.6) -> nn.Module:
    import_torchvision()  # facenet_pytorch imports torchvision
    from facenet_pytorch import InceptionResnetV1

    backbone = InceptionResnetV1(pretrained=None, classify=False, dropout_prob=dropout_prob)
    if pretrained:
        load_facenet_weights(backbone, "vggface2")
    return backbone


def _irv1(
    num_classes: int,
    pretrained: bool,
    trainable_stages: int,
    output_mixup: bool,
    drop_rate: float,
    head_channels: Sequence[int] | None,
) -> nn.Module:
    """Every IRV1 model: the multi-scale head of ``head_channels``, or facenet's own classifier where that is
    None (``drop_rate`` is then facenet's dropout), with the stages past ``trainable_stages`` frozen."""
    if head_channels is None:
        model: _IRV1 = IRV1Classifier(_backbone(pretrained, drop_rate), num_classes, output_mixup)
    else:
        head = tuple(head_channels)
        model = IRV1MultiScale(_backbone(pretrained), num_classes, head, output_mixup, drop_rate)
    return set_trainable_stages(model, trainable_stages)


@register_model(input_size=160, channels=3, mean=FACENET_MEAN, std=FACENET_STD, crop_margin=0.1)
def irv1_multiscale(
    num_classes: int = 7,
    pretrained: bool = False,
    trainable_stages: int = 0,
    output_mixup: bool = True,
    drop_rate: float = 0.5,
    head_channels: Sequence[int] = (512, 256, 256),
) -> nn.Module:
    """Seed 003: frozen VGGFace2 InceptionResnetV1 + multi-scale head + output mix-up (160 px; the paper used
    350).

    The model is size-agnostic: a recipe reproducing the paper sets ``config_overrides={"input_size": 350}``.
    """
    return _irv1(num_classes, pretrained, trainable_stages, output_mixup, drop_rate, head_channels)


@register_model(input_size=80, channels=3, mean=FACENET_MEAN, std=FACENET_STD)
def test_irv1(
    num_classes: int = 7, trainable_stages: int = 0, output_mixup: bool = True, drop_rate: float = 0.5
) -> nn.Module:
    """The real InceptionResnetV1 at 80 px with an 8-wide multi-scale head, for tests (the backbone is
    fixed-width)."""
    return _irv1(num_classes, False, trainable_stages, output_mixup, drop_rate, head_channels=(8, 8, 8))


@register_model(input_size=160, channels=3, mean=FACENET_MEAN, std=FACENET_STD, crop_margin=0.1)
def irv1_classifier(
    num_classes: int = 7,
    pretrained: bool = False,
    trainable_stages: int = 3,
    output_mixup: bool = False,
    drop_rate: float = 0.6,
) -> nn.Module:
    """Seed 003's baseline: VGGFace2 InceptionResnetV1 with its embedding layers and a new classifier,
    fine-tuned whole (``trainable_stages=3``: every stage and the stem); ``drop_rate`` is facenet's dropout
    (0.6)."""
    return _irv1(num_classes, pretrained, trainable_stages, output_mixup, drop_rate, head_channels=None)


@register_model(input_size=80, channels=3, mean=FACENET_MEAN, std=FACENET_STD)
def test_irv1_classifier(
    num_classes: int = 7, trainable_stages: int = 3, output_mixup: bool = False, drop_rate: float = 0.6
) -> nn.Module:
    """The real InceptionResnetV1 classifier at 80 px (the backbone is fixed-width), for tests."""
    return _irv1(num_classes, False, trainable_stages, output_mixup, drop_rate, head_channels=None)
