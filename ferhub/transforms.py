"""Turning face crops into model input, at evaluation time (and, in training, through the train presets).

Preprocessing is read from the model's :class:`~ferhub.config.ModelConfig`; nothing here hard-codes a size,
channel count or normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from ferhub.config import ModelConfig

PIL_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "area": Image.Resampling.BOX,
}


def crop_to_array(image: Image.Image, config: ModelConfig) -> np.ndarray:
    """A crop as ``uint8`` HxW (gray) or HxWx3 (RGB) at the model's input size."""
    mode = "L" if config.channels == 1 else "RGB"
    if image.mode != mode:
        image = image.convert(mode)
    size = (config.input_size, config.input_size)
    if image.size != size:
        image = image.resize(size, PIL_RESAMPLE[config.interpolation])
    return np.asarray(image, dtype=np.uint8)


def normalize(batch: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """``uint8`` (B, H, W[, C]) -> float (B, C, H, W) with the config's mean/std on [0, 1] pixels."""
    x = batch.float().div_(255.0)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    mean = torch.tensor(config.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(config.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return x.sub_(mean).div_(std).contiguous()


def eval_tensor(crops: Sequence[Image.Image], config: ModelConfig) -> torch.Tensor:
    """Stack face crops (any size or mode) into one normalised batch for a model with ``config``."""
    if not crops:
        return torch.empty(0, config.channels, config.input_size, config.input_size)
    arrays = np.stack([crop_to_array(c, config) for c in crops])
    return normalize(torch.from_numpy(arrays), config)
