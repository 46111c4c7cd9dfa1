"""Stratified k-fold and hold-out splits of a source's targets, keeping groups (exact duplicates) whole."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _units(n: int, groups: Sequence[object] | np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(is_rep, owner, sizes)`` of ``n`` images in ``groups`` (one key per image; ``None``: each image
    alone): whether each image stands for its group (its first image), the index of the image that stands for
    each image's group, and the group's size at that index (0 elsewhere)."""
    if groups is None:
        owner = np.arange(n)
    else:
        groups = np.asarray(groups)
        if len(groups) != n:
            raise ValueError(f"groups must give one key per image ({n}), got {len(groups)}")
        _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
        owner = first[inverse.reshape(-1)]
    is_rep = owner == np.arange(n)
    return is_rep, owner, np.bincount(owner, minlength=n)


def stratified_kfold(
    targets: Sequence[int] | np.ndarray,
    k: int,
    seed: int = 0,
    labels: Sequence[str] | None = None,
    groups: Sequence[object] | np.ndarray | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train_idx, val_idx) pairs; every class is spread over the folds as evenly as possible.

    Each index is in exactly one validation fold; fold sizes differ by at most one per class. A class in
    fewer than ``k`` images is refused (``ValueError``), named by its label in ``labels`` when given (else by
    its index). ``groups`` (one key per image, e.g. a digest of its pixels) keeps the images of a group in
    one fold, so an exact duplicate never validates a model trained on its copy: a group is dealt as one unit
    of its first image's class, and fold sizes then differ by up to a group's size. Without groups, or with
    every group of one image, the folds are the same as before groups were taken.
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
    is_rep, owner, sizes = _units(len(targets), groups)
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(targets), dtype=np.int64)
    filled = np.zeros(k, dtype=np.int64)  # images dealt to each fold so far
    turn = 0
    for c in np.unique(targets):
        # deal round-robin, continuing where the last class stopped so fold sizes stay balanced overall: each
        # group to the fold holding fewest images of its class, then fewest images, from the one whose turn
        # it is (for groups of one image, that fold). The class comes first: balancing totals alone sent
        # every later class around a fold holding a large group (an image with hundreds of copies), leaving
        # that fold without some classes at all
        of_class = np.zeros(k, dtype=np.int64)
        for rep in rng.permutation(np.flatnonzero((targets == c) & is_rep)):
            order = (turn + np.arange(k)) % k
            fewest = np.flatnonzero(of_class[order] == of_class[order].min())
            fold = int(order[fewest[np.argmin(filled[order][fewest])]])
            fold_of[rep], turn = fold, (fold + 1) % k
            filled[fold] += sizes[rep]
            of_class[fold] += sizes[rep]
    fold_of = fold_of[owner]
    all_idx = np.arange(len(targets))
    return [(all_idx[fold_of != f], all_idx[fold_of == f]) for f in range(k)]


def stratified_split(
    targets: Sequence[int] | np.ndarray,
    val_fraction: float,
    seed: int = 0,
    groups: Sequence[object] | np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One stratified (train_idx, val_idx) hold-out split with about ``val_fraction`` of each class.

    ``groups`` (one key per image) keeps each group on one side, as :func:`stratified_kfold` does: a class's
    groups are taken in random order where they still fit its share (one larger than what is left is passed
    over, so an image with many copies cannot swell the share), so the share may fall short by less than a
    group's size; a class of one group stays in training.
    """
    targets = np.asarray(targets)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    is_rep, owner, sizes = _units(len(targets), groups)
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(targets):
        reps = rng.permutation(np.flatnonzero((targets == c) & is_rep))
        n = int(sizes[reps].sum())
        n_val = min(n - 1, max(1, round(n * val_fraction))) if n > 1 else 0
        taken, room = [], n_val  # at most n_val < n images: at least one group of the class trains
        for rep in reps:
            if sizes[rep] <= room:
                taken.append(rep)
                room -= sizes[rep]
        if not taken and len(reps) > 1:  # every group is larger than the share: the smallest reports
            taken.append(reps[np.argmin(sizes[reps])])
        val.append(np.asarray(taken, dtype=np.int64))
    chosen = np.concatenate(val) if val else np.zeros(0, np.int64)
    val_idx = np.flatnonzero(np.isin(owner, chosen))
    train_idx = np.setdiff1d(np.arange(len(targets)), val_idx)
    return train_idx, val_idx
