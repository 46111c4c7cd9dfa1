"""Classification heads of the seed papers: Double Activation Layer (seed 000), multi-scale head and output
mix-up (seed 003)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class DoubleActivationLayer(nn.Module):
    """Zhai et al.'s DAL (seed 000 Fig. 1, eqs. 5-6): two inner-product layers on the same input, their
    element-wise maximum (maxout, eq. 6), ReLU (eq. 5), then the output inner product IP2.

    The two IP1 layers are stored as one ``Linear(in, 2 * hidden)`` whose first and second halves are
    ``X1`` and ``X2``: the layout of LightCNN's MFM fully connected layer, so its weights initialise IP1.
    Without the ReLU (``relu=False``) this is LightCNN's own MFM head, Zhai et al.'s "Net B" baseline.
    """

    def __init__(
        self, in_features: int, hidden: int, num_classes: int, drop_rate: float = 0.5, relu: bool = True
    ) -> None:
        super().__init__()
        self.hidden, self.relu = hidden, relu
        self.ip1 = nn.Linear(in_features, 2 * hidden)
        self.drop = nn.Dropout(drop_rate)
        self.ip2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.ip1(x.flatten(1)).split(self.hidden, dim=1)
        h = torch.maximum(x1, x2)
        return self.ip2(self.drop(torch.relu(h) if self.relu else h))


class MultiScaleHead(nn.Module):
    """Seed 003 Fig. 2: three convolution blocks stacked on the backbone's maps; the backbone's maps and each
    block's output (four scales) are globally average-pooled, concatenated and fed to one FC layer.

    The paper gives no kernel sizes; the defaults grow the receptive field at each block (a 1x1 reduction,
    then two strided 3x3 blocks), in the SSD spirit it cites.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: Sequence[int] = (512, 256, 256),
        kernels: Sequence[int] = (1, 3, 3),
        strides: Sequence[int] = (1, 2, 2),
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        blocks, cin = [], in_channels
        for c, k, s in zip(channels, kernels, strides, strict=True):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(cin, c, k, stride=s, padding=k // 2, bias=False),
                    nn.BatchNorm2d(c),
                    nn.ReLU(inplace=True),
                )
            )
            cin = c
        self.blocks = nn.ModuleList(blocks)
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_channels + sum(channels), num_classes)

    def scales(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four scales' maps: the input, then each block's output."""
        maps = [x]
        for block in self.blocks:
            maps.append(block(maps[-1]))
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([m.mean(dim=(2, 3)) for m in self.scales(x)], dim=1)
        return self.fc(self.drop(pooled))


class OutputMixup(nn.Module):
    """Seed 003 eq. 3: ``y_k = λ_n y_n + (1 - λ_k) y_k`` for every output k, n the neutral class.

    One learnable λ per class, all initialised to 0.2 (the paper's value). For ``k = n`` the equation gives
    ``y_n`` back unchanged. ``neutral_index`` is set from the label names (see the IRV1 family).
    """

    def __init__(self, num_classes: int, neutral_index: int, init: float = 0.2) -> None:
        super().__init__()
        self.lambdas = nn.Parameter(torch.full((num_classes,), float(init)))
        self.neutral_index = neutral_index

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        n = self.neutral_index
        return self.lambdas[n] * y[:, n : n + 1] + (1.0 - self.lambdas) * y

    def extra_repr(self) -> str:
        return f"num_classes={self.lambdas.numel()}, neutral_index={self.neutral_index}"
