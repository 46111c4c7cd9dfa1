"""A face crop as model input, in numpy: what ONNX Runtime is fed, without importing torch.

:func:`ferhub.transforms.eval_tensor` is the torch form of the same batch (it builds on
:func:`crop_to_array`); both give the same float32 values, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
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


def at_input_size(image: Image.Image, config: ModelConfig) -> Image.Image:
    """A crop as the model takes it (:func:`crop_to_array`) back as an image: what training holds of each face
    and takes its test-time views from, so evaluation's views are taken of the same pixels."""
    return Image.fromarray(crop_to_array(image, config))


def eval_array(crops: Sequence[Image.Image], config: ModelConfig) -> np.ndarray:
    """Face crops (any size or mode) as one normalised float32 batch ``(N, C, H, W)`` for a model with
    ``config``: the config's mean/std on [0, 1] pixels, in the order of operations of
    :func:`ferhub.transforms.normalize`."""
    if not crops:
        return np.empty((0, config.channels, config.input_size, config.input_size), dtype=np.float32)
    x = np.stack([crop_to_array(c, config) for c in crops]).astype(np.float32)
    x /= np.float32(255.0)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    mean = np.asarray(config.mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(config.std, dtype=np.float32).reshape(1, -1, 1, 1)
    return np.ascontiguousarray((x - mean) / std)
