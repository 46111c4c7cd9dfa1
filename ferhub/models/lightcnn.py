"""Seed 000 (Zhai et al.): LightCNN-9 ("Net B" of Wu, He & Sun's lightened CNN) with Max-Feature-Map
activations, transferred to FER with the Double Activation Layer head.

Net B: a 5x5 MFM convolution, then MFM "groups" (a 1x1 MFM convolution followed by a 3x3 one) of 96, 192, 128
and 128 maps, with 2x2 max pooling between, and an MFM fully connected layer of 256. Zhai et al. append the
DAL (two FC layers -> element-wise maxout -> ReLU -> FC) in place of the FC layers: the two FC layers of IP1
are exactly the two halves of LightCNN's MFM fully connected layer, so its face-recognition weights initialise
them (:func:`load_lightcnn_checkpoint`).

Input: 144x144 gray faces, as in the paper; like LightCNN's own protocol the network looks at the central
128x128 (LightCNN aligns faces to 144 and crops 128, which is what its fully connected layer's 8x8x128 input
assumes), so the 8-pixel border is cropped inside the model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ferhub.models._registry import register_model
from ferhub.models.freeze import StagedModel, set_trainable_stages
from ferhub.models.heads import DoubleActivationLayer
from ferhub.pretrained import CheckpointError, load_checkpoint, load_into


class MaxFeatureMap(nn.Module):
    """MFM (Wu et al. eq. 1): a convolution (or FC layer) with ``2n`` outputs, then the element-wise max of
    its first and second ``n`` outputs, ``y_k = max(x_k, x_{k+n})``."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__()
        self.out_channels = cout
        self.filter = nn.Conv2d(cin, 2 * cout, kernel_size, stride, padding)  # `filter`: LightCNN's key name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.filter(x).split(self.out_channels, dim=1)
        return torch.maximum(a, b)


class MFMGroup(nn.Module):
    """A 1x1 MFM convolution (network-in-network) followed by a ``k x k`` MFM convolution."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv_a = MaxFeatureMap(cin, cin, 1, 1, 0)
        self.conv = MaxFeatureMap(cin, cout, kernel_size, 1, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv_a(x))


class LightCNN9(StagedModel):
    """LightCNN-9 features (LightCNN's module names, so its checkpoint keys match) + DAL head."""

    stem_names = ("features.0",)
    stage_names = (("features.2",), ("features.4",), ("features.6",), ("features.7",))
    head_names = ("dal",)
    gradcam_name = "features.7"

    def __init__(
        self,
        num_classes: int = 7,
        in_chans: int = 1,
        widths: tuple[int, int, int, int, int] = (48, 96, 192, 128, 128),
        hidden: int = 256,
        crop_size: int = 128,
        drop_rate: float = 0.5,
        dal: bool = True,
    ) -> None:
        super().__init__()
        c0, c1, c2, c3, c4 = widths
        pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.features = nn.Sequential(
            MaxFeatureMap(in_chans, c0, 5, 1, 2),
            pool,
            MFMGroup(c0, c1),
            pool,
            MFMGroup(c1, c2),
            pool,
            MFMGroup(c2, c3),
            MFMGroup(c3, c4),
            pool,
        )
        self.crop_size = crop_size
        side = -(-crop_size // 16)  # four ceil-mode poolings
        self.dal = DoubleActivationLayer(c4 * side * side, hidden, num_classes, drop_rate, relu=dal)

    def load_init_checkpoint(self, path: str | Path) -> None:
        """``ferhub.pretrained.load_init`` hook: LightCNN's checkpoint layout (see
        :func:`load_lightcnn_checkpoint`)."""
        load_lightcnn_checkpoint(self, path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h < self.crop_size or w < self.crop_size:
            raise ValueError(
                f"LightCNN-9 needs inputs of at least {self.crop_size}x{self.crop_size}, got {h}x{w}"
            )
        top, left = (h - self.crop_size) // 2, (w - self.crop_size) // 2
        x = x[..., top : top + self.crop_size, left : left + self.crop_size]
        return self.dal(self.features(x))


def load_lightcnn_checkpoint(model: LightCNN9, path: str | Path) -> None:
    """Initialise the features and DAL's IP1 from LightCNN's own LightCNN-9 checkpoint (or a ferhub one).

    LightCNN's ``LightCNN_9Layers_checkpoint.pth.tar`` keeps ``{"state_dict": {"module.features...",
    "module.fc1.filter.*", "module.fc2.*"}}``; ``fc1`` (the MFM FC layer) becomes DAL's ``ip1``, ``fc2`` (the
    79,077-identity classifier) is dropped. Everything else must match exactly. Read with ``weights_only``.
    """
    state = load_checkpoint(path)
    mapped = {}
    for k, v in state.items():
        if k.startswith("fc1.filter."):
            mapped["dal.ip1." + k.removeprefix("fc1.filter.")] = v
        elif not k.startswith(("fc2.", "dal.ip2.")):
            mapped[k] = v
    own = model.state_dict()
    mapped.update(
        {k: v for k, v in own.items() if k.startswith("dal.ip2.")}
    )  # the new classifier keeps its init
    if not any(k.startswith("features.") for k in mapped):
        raise CheckpointError(f"{path} has no LightCNN 'features.*' weights; is it a LightCNN-9 checkpoint?")
    load_into(model, mapped, source=str(path))


def _lightcnn(num_classes: int, in_chans: int, trainable_stages: int, **kw: object) -> LightCNN9:
    return set_trainable_stages(LightCNN9(num_classes, in_chans, **kw), trainable_stages)


# LightCNN was trained on gray pixels in [0, 1] without normalisation (its ToTensor-only transform)
@register_model(input_size=144, channels=1, mean=(0.0,), std=(1.0,), crop_margin=0.1, align=True)
def lightcnn9(
    num_classes: int = 7,
    in_chans: int = 1,
    trainable_stages: int = 4,
    drop_rate: float = 0.5,
    dal: bool = True,
) -> nn.Module:
    """Seed 000's Net B_DAL: LightCNN-9 (MFM) + Double Activation Layer, 144x144 gray (central 128 used).

    ``dal=False`` drops the DAL's ReLU, leaving LightCNN's own MFM head: the paper's "Net B" baseline.
    Initialise from LightCNN's face-recognition checkpoint with ``ferhub.pretrained.load_init(model, PATH)``.
    """
    return _lightcnn(num_classes, in_chans, trainable_stages, drop_rate=drop_rate, dal=dal)


@register_model(input_size=20, channels=1, mean=(0.0,), std=(1.0,))
def test_lightcnn(
    num_classes: int = 7, trainable_stages: int = 4, drop_rate: float = 0.5, dal: bool = True
) -> nn.Module:
    """A LightCNN-9 with 2-8 maps, 16 px crops of 20 px inputs and a 6-wide DAL, for fast tests.

    It takes :func:`lightcnn9`'s ``drop_rate`` and ``dal``, so ``--tiny`` keeps what tells seed 000's Net B
    (``dal=False``) from Net B_DAL.
    """
    return _lightcnn(
        num_classes, 1, trainable_stages, widths=(2, 4, 8, 4, 4), hidden=6, crop_size=16, drop_rate=drop_rate,
        dal=dal,
    )  # fmt: skip
