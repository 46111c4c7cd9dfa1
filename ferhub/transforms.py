"""Turning face crops into model input, at evaluation time (and, in training, through the train presets).

Preprocessing is read from the model's :class:`~ferhub.config.ModelConfig`; nothing here hard-codes a size,
channel count or normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ferhub.config import ModelConfig
from ferhub.device import autograd_batch
from ferhub.preprocess import PIL_RESAMPLE, crop_to_array  # noqa: F401  (re-exported)


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


# ------------------------------------------------------------------------------ test-time augmentation
# The one TTA of ferhub: training's validation, `ferhub evaluate` on face crops and on photos all take their
# views from tta_views, and results name the method in `tta_method`.
TTA_METHODS = ("flip", "tencrop")
TEN_CROP_FRACTION = 0.875


def tta_views(crop: Image.Image, method: str | None) -> list[Image.Image]:
    """Test-time-augmentation views of a face crop (as the model's geometry framed it, any size).

    ``None``: the crop itself; ``"flip"``: it and its mirror; ``"tencrop"``: the four corner squares and the
    centre square of 87.5% of its side, each also mirrored. Each view is then fed like any crop (resized to
    the model's input by :func:`crop_to_array`) and the probabilities are averaged over the views.
    """
    from PIL import ImageOps

    if method is None:
        return [crop]
    if method == "flip":
        return [crop, ImageOps.mirror(crop)]
    if method != "tencrop":
        raise ValueError(f"tta must be None or one of {TTA_METHODS}, got {method!r}")
    w, h = crop.size
    cw, ch = round(w * TEN_CROP_FRACTION), round(h * TEN_CROP_FRACTION)
    corners = [(0, 0), (w - cw, 0), (0, h - ch), (w - cw, h - ch), ((w - cw) // 2, (h - ch) // 2)]
    views = [crop.crop((x, y, x + cw, y + ch)) for x, y in corners]
    return views + [ImageOps.mirror(v) for v in views]


# --------------------------------------------------------------------------------------------- training
# The papers' augmentations as batched tensor ops on the uint8 crops held in memory: one call per batch, no
# per-image PIL work, so the loader costs next to nothing beside the model step.


def _uniform(n: int, low: float, high: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (high - low) + low


def _coin(n: int, p: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) < p


def equalize_hist(batch: torch.Tensor) -> torch.Tensor:
    """Per-image, per-channel histogram equalisation of a ``uint8`` (B, C, H, W) batch.

    The same lookup table as ``PIL.ImageOps.equalize`` (so results match PIL exactly), built for the whole
    batch at once from one ``bincount``.
    """
    b, c, h, w = batch.shape
    flat = batch.reshape(b * c, h * w).long()
    offsets = torch.arange(b * c, device=batch.device).unsqueeze(1) * 256
    # reshape, not view: a single permuted RGB crop stays a strided view of (H, W, 3) memory here
    hist = torch.bincount((flat + offsets).reshape(-1), minlength=b * c * 256).view(b * c, 256)
    # PIL: step = (pixels - count of the last non-empty bin) // 255; lut[i] = (step // 2 + cdf[i - 1]) // step
    last = 255 - (hist > 0).flip(1).int().argmax(1)
    step = (h * w - hist.gather(1, last.unsqueeze(1)).squeeze(1)) // 255
    excl = hist.cumsum(1) - hist
    safe = step.clamp(min=1).unsqueeze(1)
    lut = ((excl + safe // 2) // safe).clamp(max=255)
    identity = torch.arange(256, device=batch.device).expand_as(lut)
    lut = torch.where((step > 0).unsqueeze(1), lut, identity)  # PIL leaves near-constant channels alone
    return lut.gather(1, flat).to(torch.uint8).view(b, c, h, w)


def _boxes_mask(
    n: int, size: int, holes: int, hole_frac: float, g: torch.Generator, device: torch.device
) -> torch.Tensor:
    """(n, size, size) bool: ``holes`` squares of side 1..hole_frac*size at random positions (Cutout)."""
    side = max(1, round(hole_frac * size))
    hs = torch.randint(1, side + 1, (n, holes), generator=g, device=device)
    ws = torch.randint(1, side + 1, (n, holes), generator=g, device=device)
    ys = (torch.rand(n, holes, generator=g, device=device) * size).long()
    xs = (torch.rand(n, holes, generator=g, device=device) * size).long()
    r = torch.arange(size, device=device)
    in_y = (r.view(1, 1, -1) >= ys.unsqueeze(-1) - hs.unsqueeze(-1) // 2) & (
        r.view(1, 1, -1) < ys.unsqueeze(-1) - hs.unsqueeze(-1) // 2 + hs.unsqueeze(-1)
    )
    in_x = (r.view(1, 1, -1) >= xs.unsqueeze(-1) - ws.unsqueeze(-1) // 2) & (
        r.view(1, 1, -1) < xs.unsqueeze(-1) - ws.unsqueeze(-1) // 2 + ws.unsqueeze(-1)
    )
    return (in_y.unsqueeze(-1) & in_x.unsqueeze(-2)).any(1)


def _erasing_mask(
    n: int,
    size: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    g: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """(n, size, size) bool: one rectangle per image with area fraction in ``scale``, aspect in ``ratio``."""
    area = _uniform(n, *scale, g, device) * size * size
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), g, device)
    aspect = torch.exp(log_r)
    h = (area * aspect).sqrt().round().clamp(1, size).long()
    w = (area / aspect).sqrt().round().clamp(1, size).long()
    y0 = (torch.rand(n, generator=g, device=device) * (size - h + 1)).long()
    x0 = (torch.rand(n, generator=g, device=device) * (size - w + 1)).long()
    r = torch.arange(size, device=device)
    in_y = (r.view(1, -1) >= y0.unsqueeze(1)) & (r.view(1, -1) < (y0 + h).unsqueeze(1))
    in_x = (r.view(1, -1) >= x0.unsqueeze(1)) & (r.view(1, -1) < (x0 + w).unsqueeze(1))
    return in_y.unsqueeze(2) & in_x.unsqueeze(1)


# The noise a pixel gets in luma when each of R, G, B gets independent noise of std 1 and the image is then
# made gray (ITU-R 601 weights, PIL's "L"): sqrt(0.299² + 0.587² + 0.114²).
LUMA_NOISE_STD = math.sqrt(0.299**2 + 0.587**2 + 0.114**2)


@dataclass(frozen=True)
class TrainTransform:
    """Random augmentation of a ``uint8`` (B, H, W[, 3]) batch of crops into a normalised float batch.

    Each option is one of the papers' augmentations (0 / None turns it off):
    ``hflip`` probability (001, 003); ``rotate`` max degrees with probability ``rotate_p`` (003: 15°, p=0.5);
    ``scale`` zoom range and ``translate`` max shift as a fraction of the side — together a random
    crop-and-resize (001, 002); ``resized_crop`` the area range of a random crop with aspect ratio in
    ``resized_crop_ratio`` resized back to the input (torchvision's ``RandomResizedCrop``; 003);
    ``brightness``/``contrast`` max relative change (001: illumination); ``color_noise`` the std (of [0, 1]
    pixels) of independent Gaussian noise added to each of the three colour channels, with probability
    ``color_noise_p`` (000: SFEW's "random information added to three channels"; on a gray crop, the noise the
    gray conversion of such an image carries, std × :data:`LUMA_NOISE_STD`); ``hist_eq`` probability of
    per-channel histogram equalisation (003: p=0.5); ``cutout`` probability with ``cutout_holes`` squares of
    at most ``cutout_size`` × side (003: 8 holes of ≤6 px on 350 px, p=0.5); ``erasing`` probability of random
    erasing (Zhong et al. 2020) with ``erasing_scale`` area fraction. Randomness comes only from the
    ``generator`` passed to the call, so a seeded run repeats exactly.
    """

    config: ModelConfig
    hflip: float = 0.0
    rotate: float = 0.0
    rotate_p: float = 1.0
    scale: tuple[float, float] = (1.0, 1.0)
    translate: float = 0.0
    resized_crop: tuple[float, float] | None = None
    resized_crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    brightness: float = 0.0
    contrast: float = 0.0
    color_noise: float = 0.0
    color_noise_p: float = 1.0
    hist_eq: float = 0.0
    cutout: float = 0.0
    cutout_holes: int = 8
    cutout_size: float = 6 / 350
    erasing: float = 0.0
    erasing_scale: tuple[float, float] = (0.02, 0.33)
    erasing_ratio: tuple[float, float] = (0.3, 3.3)

    @classmethod
    def from_recipe(cls, config: ModelConfig, augment: dict[str, Any] | None) -> TrainTransform:
        """Build from a recipe's ``augment`` dict, refusing unknown keys (a typo would silently do
        nothing)."""
        augment = dict(augment or {})
        known = {f.name for f in fields(cls)} - {"config"}
        unknown = sorted(set(augment) - known)
        if unknown:
            raise ValueError(f"unknown augmentation options {unknown}; known: {sorted(known)}")
        for key in ("scale", "resized_crop", "resized_crop_ratio", "erasing_scale", "erasing_ratio"):
            if augment.get(key) is not None:
                augment[key] = tuple(augment[key])
        return cls(config=config, **augment)

    def __call__(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``uint8`` (B, H, W[, 3]) on any device -> augmented, normalised float (B, C, H, W)."""
        g, dev = generator, batch.device
        x = batch.unsqueeze(1) if batch.ndim == 3 else batch.permute(0, 3, 1, 2)
        n, channels, size, _ = x.shape
        if self.hist_eq > 0:
            eq = _coin(n, self.hist_eq, g, dev).view(-1, 1, 1, 1)
            x = torch.where(eq, equalize_hist(x), x)
        x = x.float().div_(255.0)
        if self.hflip > 0:
            flip = _coin(n, self.hflip, g, dev).view(-1, 1, 1, 1)
            x = torch.where(flip, x.flip(-1), x)
        if self.rotate > 0 or self.scale != (1.0, 1.0) or self.translate > 0 or self.resized_crop:
            x = self._affine(x, g)
        if self.brightness > 0 or self.contrast > 0:
            b = _uniform(n, 1 - self.brightness, 1 + self.brightness, g, dev).view(-1, 1, 1, 1)
            c = _uniform(n, 1 - self.contrast, 1 + self.contrast, g, dev).view(-1, 1, 1, 1)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * c + mean).mul_(b).clamp_(0, 1)
        if self.color_noise > 0:
            std = self.color_noise * (LUMA_NOISE_STD if channels == 1 else 1.0)
            noise = torch.randn(x.shape, generator=g, device=dev) * std
            noisy = _coin(n, self.color_noise_p, g, dev).view(-1, 1, 1, 1)
            x = torch.where(noisy, (x + noise).clamp_(0, 1), x)
        if self.cutout > 0:
            holes = _boxes_mask(n, size, self.cutout_holes, self.cutout_size, g, dev)
            holes &= _coin(n, self.cutout, g, dev).view(-1, 1, 1)
            x = x.masked_fill(holes.unsqueeze(1), 0.0)
        mean = torch.tensor(self.config.mean, dtype=x.dtype, device=dev).view(1, -1, 1, 1)
        std = torch.tensor(self.config.std, dtype=x.dtype, device=dev).view(1, -1, 1, 1)
        x = (x - mean) / std
        if self.erasing > 0:
            box = _erasing_mask(n, size, self.erasing_scale, self.erasing_ratio, g, dev)
            box &= _coin(n, self.erasing, g, dev).view(-1, 1, 1)
            noise = torch.randn(x.shape, generator=g, device=dev)  # torchvision's value="random"
            x = torch.where(box.unsqueeze(1), noise, x)
        return autograd_batch(x)  # an RGB batch is permuted from (B, H, W, 3): channels-last until here

    def _affine(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Rotation, zoom, shift and random resized crop in one ``grid_sample`` (border padding, so no black
        corners). In grid units ([-1, 1] across the image), output point ``p`` samples ``R (S p + c) + t``:
        ``S, c`` the crop box (half-sides and centre), ``R`` the rotation / zoom, ``t`` the shift."""
        n, dev = x.shape[0], x.device
        angle = _uniform(n, -self.rotate, self.rotate, g, dev) * (math.pi / 180)
        if self.rotate_p < 1:
            angle = torch.where(_coin(n, self.rotate_p, g, dev), angle, torch.zeros_like(angle))
        zoom = _uniform(n, *self.scale, g, dev)
        shift = _uniform(2 * n, -self.translate, self.translate, g, dev).view(n, 2) * 2  # grid units: [-1, 1]
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        rot = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # (n, 2, 2)
        if self.resized_crop:
            half, centre = self._crop_boxes(n, g, dev)
            lin = rot * half.unsqueeze(1)  # R @ diag(half)
            shift = shift + (rot @ centre.unsqueeze(-1)).squeeze(-1)
        else:
            lin = rot
        theta = torch.cat([lin, shift.unsqueeze(-1)], dim=2)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    def _crop_boxes(self, n: int, g: torch.Generator, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """RandomResizedCrop's boxes: area fraction uniform in ``resized_crop``, aspect ratio log-uniform in
        ``resized_crop_ratio``; sides clipped to the image (torchvision retries instead), centre uniform over
        the positions that keep the box inside. Returns half-sides and centres, (n, 2) each, in grid units."""
        assert self.resized_crop is not None
        area = _uniform(n, *self.resized_crop, g, dev)
        ratio = torch.exp(_uniform(n, *(math.log(r) for r in self.resized_crop_ratio), g, dev))
        w = (area * ratio).sqrt().clamp(max=1.0)  # fractions of the side
        h = (area / ratio).sqrt().clamp(max=1.0)
        half = torch.stack([w, h], 1)
        centre = (torch.rand(n, 2, generator=g, device=dev) * 2 - 1) * (1 - half)
        return half, centre
