"""A generated, learnable task on real faces for training tests and bench/train.py (not library code: it
needs scikit-image, a test dependency)."""

from __future__ import annotations

import numpy as np

TRANSFORM_TASK_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def transform_task(
    n_per_class: int, *, size: int = 48, num_classes: int = 4, seed: int = 0, faces: slice = slice(0, 100)
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Real face crops (scikit-image's LFW subset) labelled by a transformation a network must detect.

    Class k applies transformation k: identity, upside-down, inverted, rotated 90°, blurred, mirrored with a
    dark band, gamma-brightened. The label names are borrowed from FER7 only so that the data flows through
    ferhub unchanged; the task is "which transformation", not an expression. Each sample is a random face
    with random scale jitter and noise, so a model must generalise across faces. ``faces`` picks which of the
    100 LFW faces are used (disjoint slices give held-out faces). Returns (uint8 (N, size, size), targets,
    labels).
    """
    import skimage.data
    import torch
    import torch.nn.functional as F

    if not 2 <= num_classes <= len(TRANSFORM_TASK_LABELS):
        raise ValueError(f"num_classes must be 2..{len(TRANSFORM_TASK_LABELS)}")
    base = skimage.data.lfw_subset()[faces].astype(np.float32)  # the first 100 are faces
    rng = np.random.default_rng(seed)
    n = n_per_class * num_classes
    targets = np.repeat(np.arange(num_classes), n_per_class)
    pick = rng.integers(0, len(base), n)
    x = torch.from_numpy(base[pick]).unsqueeze(1)
    # random zoom 1.0-1.3 and shift, so the net cannot memorise pixels
    scale = torch.from_numpy(rng.uniform(1.0, 1.3, n).astype(np.float32))
    shift = torch.from_numpy(rng.uniform(-0.1, 0.1, (n, 2)).astype(np.float32))
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, (n, 1, size, size), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)[:, 0]
    t = torch.from_numpy(targets)
    x = torch.where((t == 1)[:, None, None], x.flip(1), x)
    x = torch.where((t == 2)[:, None, None], 1 - x, x)
    x = torch.where((t == 3)[:, None, None], x.rot90(1, (1, 2)), x)
    if num_classes > 4:
        blurred = F.avg_pool2d(x.unsqueeze(1), 5, 1, 2, count_include_pad=False)[:, 0]
        x = torch.where((t == 4)[:, None, None], blurred, x)
    if num_classes > 5:
        band = x.flip(2).clone()
        band[:, size // 3 : size // 2] *= 0.2
        x = torch.where((t == 5)[:, None, None], band, x)
    if num_classes > 6:
        x = torch.where((t == 6)[:, None, None], x.clamp(0, 1) ** 0.4, x)
    x = x + torch.from_numpy(rng.normal(0, 0.03, x.shape).astype(np.float32))
    images = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    order = rng.permutation(n)
    return images[order], targets[order].astype(np.int64), TRANSFORM_TASK_LABELS[:num_classes]


def quick_train_args(data: object, out: object, *extra: str) -> list[str]:
    """``ferhub train`` arguments for the quickest run of the tiny model on ``data`` (crops) into ``out``."""
    return [
        "--recipe", "seed002_kaskun", "--data", str(data), "--precropped", "--output-dir", str(out),
        "--no-progress", "--set", "model=test_tiny", "--set", "config_overrides={}", "--batch-size", "8",
        *extra,
    ]  # fmt: skip


class Cropped(Exception):
    """Raised where the first image would be cropped (the ``no_crops`` fixture): the run got past every check
    of its settings and data."""
