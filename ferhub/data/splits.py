"""Stratified k-fold and hold-out splits of a source's targets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_kfold(
    targets: Sequence[int] | np.ndarray, k: int, seed: int = 0, labels: Sequence[str] | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train_idx, val_idx) pairs; every class is spread over the folds as evenly as possible.

    Each index is in exactly one validation fold; fold sizes differ by at most one per class. A class in
    fewer than ``k`` images is refused (``ValueError``), named by its label in ``labels`` when given (else by
    its index).
    """
    targets = np.asarray(targets)
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2, got {k}")
    counts = np.bincount(targets)
    if counts[counts > 0].min() < k:
        small = [(labels[c] if labels is not None and c < len(labels) else c, int(n))
                 for c, n in enumerate(counts) if 0 < n < k]  # fmt: skip
        named = ", ".join(f"{name!r} ({n} image{'s' if n != 1 else ''})" for name, n in small)
        which, has = ("class", "has") if len(small) == 1 else ("classes", "have")
        fewest, them = min(n for _, n in small), "it" if len(small) == 1 else "each"
        fix = f"lower k (at most {fewest}) or give more images of {them}" if fewest >= 2 else (
            f"no k splits a class of one image: give more images of {them}"
        )  # fmt: skip
        raise ValueError(f"{which} {named} {has} fewer images than k={k} folds; {fix}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(targets), dtype=np.int64)
    offset = 0
    for c in np.unique(targets):
        idx = rng.permutation(np.flatnonzero(targets == c))
        # deal round-robin, continuing where the last class stopped so fold sizes stay balanced overall
        fold_of[idx] = (np.arange(len(idx)) + offset) % k
        offset = (offset + len(idx)) % k
    all_idx = np.arange(len(targets))
    return [(all_idx[fold_of != f], all_idx[fold_of == f]) for f in range(k)]


def stratified_split(
    targets: Sequence[int] | np.ndarray, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """One stratified (train_idx, val_idx) hold-out split with about ``val_fraction`` of each class."""
    targets = np.asarray(targets)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(targets):
        idx = rng.permutation(np.flatnonzero(targets == c))
        n_val = min(len(idx) - 1, max(1, round(len(idx) * val_fraction))) if len(idx) > 1 else 0
        val.append(idx[:n_val])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    train_idx = np.setdiff1d(np.arange(len(targets)), val_idx)
    return train_idx, val_idx
