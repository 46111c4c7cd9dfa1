"""Comparing models' predictions: agreement, Cohen's kappa, McNemar's exact test, confusion-matrix
differences.

Pure functions on label arrays (numpy and the standard library only), used by ``ferhub compare``, the HTML
report and the app's Compare tab.

>>> mcnemar_exact([True, True, True, False], [False, False, False, False])["p_value"]  # 2 * (1/2)**3
0.25
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ferhub.labels import union_labels
from ferhub.metrics import row_normalize


def _labels(y: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, got shape {arr.shape}")
    return arr.astype(np.int64, copy=False)


def _pair(a: Sequence[int], b: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    pa, pb = _labels(a, "predictions a"), _labels(b, "predictions b")
    if pa.shape != pb.shape:
        raise ValueError(f"the two prediction arrays differ in length: {pa.size} vs {pb.size}")
    return pa, pb


def agreement_rate(a: Sequence[int], b: Sequence[int]) -> float:
    """Share of items on which two models predict the same class; 0.0 for no items."""
    pa, pb = _pair(a, b)
    return float(np.mean(pa == pb)) if pa.size else 0.0


def cohen_kappa(a: Sequence[int], b: Sequence[int]) -> float:
    """Cohen's kappa between two labelings: ``(p_o - p_e) / (1 - p_e)``.

    When chance agreement is already 1 (both always give the same single class), kappa is undefined; it is
    reported as 1.0 if they agree everywhere (which they then do) and 0.0 for no items.

    >>> round(cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1]), 4)
    0.5
    """
    pa, pb = _pair(a, b)
    if not pa.size:
        return 0.0
    classes = np.union1d(pa, pb)
    ia, ib = np.searchsorted(classes, pa), np.searchsorted(classes, pb)
    k = classes.size
    p_o = float(np.mean(ia == ib))
    p_e = float(np.dot(np.bincount(ia, minlength=k), np.bincount(ib, minlength=k))) / pa.size**2
    if p_e >= 1.0:
        return 1.0
    return (p_o - p_e) / (1.0 - p_e)


def mcnemar_exact(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> dict[str, Any]:
    """McNemar's exact test on paired correctness: does one model get right what the other gets wrong?

    ``b`` counts items A gets right and B wrong, ``c`` the reverse. Under the null both are equally likely,
    so ``min(b, c)`` is Binomial(b + c, 1/2); the two-sided p-value is ``min(1, 2 * P(X <= min(b, c)))``.
    Exact binomial arithmetic (integers), no normal approximation.
    """
    ca, cb = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if ca.shape != cb.shape or ca.ndim != 1:
        raise ValueError(f"correctness arrays must be 1-D and of equal length, got {ca.shape} and {cb.shape}")
    b = int(np.sum(ca & ~cb))
    c = int(np.sum(~ca & cb))
    n = b + c
    # exact rational -> float only at the end (int / int rounds correctly); 2 * tail / 2**n can exceed 1
    # when b == c
    p = min(1.0, 2 * _binomial_tail(n, min(b, c)) / 2**n) if n else 1.0
    return {"a_only_correct": b, "b_only_correct": c, "discordant": n, "p_value": float(p)}


def _binomial_tail(n: int, k: int) -> int:
    """``sum(comb(n, i) for i in range(k + 1))`` in exact integers, each term from the one before: a fresh
    ``math.comb`` per term took ~25 s at n = 19,500."""
    term = total = 1
    for i in range(k):
        term = term * (n - i) // (i + 1)  # comb(n, i + 1), exactly: comb(n, i) * (n - i) is divisible
        total += term
    return total


def confusion_difference(
    matrix_a: Sequence[Sequence[float]],
    matrix_b: Sequence[Sequence[float]],
    *,
    normalize: bool = True,
    support_a: Sequence[float] | np.ndarray | None = None,
    support_b: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """``B - A`` of two confusion matrices over the same label order; row-normalised (recall view) by default.

    Counts are only comparable on the same images, so the normalised view is the default: it compares
    matrices from different data sizes too. ``support_a`` / ``support_b``: each true class's images (images
    without a prediction included), so that a row's shares are of the whole class and the diagonal is the
    difference in recall (see :func:`ferhub.metrics.row_normalize`).
    """
    a, b = np.asarray(matrix_a, dtype=np.float64), np.asarray(matrix_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"confusion matrices must be square and of one shape, got {a.shape} and {b.shape}")
    return row_normalize(b, support_b) - row_normalize(a, support_a) if normalize else b - a


def entry_labels(entry: Mapping[str, Any]) -> list[str]:
    """An ``eval_results`` entry's classes: its ``labels``, else its ``per_class`` keys (both are optional in
    the schema)."""
    return list(entry.get("labels") or entry.get("per_class") or [])


def entry_support(entry: Mapping[str, Any], target: Sequence[str] | None = None) -> np.ndarray:
    """Images per true class of an ``eval_results`` entry, in ``target`` order (default:
    :func:`entry_labels`; a class it lacks: 0): ``per_class[..]["support"]``, which counts images without a
    prediction too, else the confusion matrix's row sum, else 0 (an entry with neither)."""
    labels = entry_labels(entry)
    per = entry.get("per_class") or {}
    cm = entry.get("confusion_matrix")
    rows = np.asarray(cm, dtype=np.float64).sum(axis=1) if cm is not None else np.zeros(len(labels))
    own = {c: float((per.get(c) or {}).get("support", rows[i])) for i, c in enumerate(labels)}
    return np.asarray([own.get(c, 0.0) for c in (labels if target is None else target)], dtype=np.float64)


def align_matrix(
    matrix: Sequence[Sequence[float]], labels: Sequence[str], target: Sequence[str]
) -> np.ndarray:
    """Reorder/extend a confusion matrix from ``labels`` order to ``target`` order (missing classes:
    zeros)."""
    m = np.asarray(matrix, dtype=np.float64)
    pos = {name: i for i, name in enumerate(labels)}
    out = np.zeros((len(target), len(target)))
    idx = [pos.get(name) for name in target]
    for i, si in enumerate(idx):
        for j, sj in enumerate(idx):
            if si is not None and sj is not None:
                out[i, j] = m[si, sj]
    return out


def agreement_matrix(predictions: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
    """Pairwise agreement rate and Cohen's kappa between M models' predictions on the same (unlabelled) items.

    Predictions must be in one label space (canonical label indices or names mapped to them); ``-1`` is no
    prediction. Each pair is compared on the items both predicted: an image without a face is ``-1`` for
    every model (detection is shared), and counted as agreement it made unrelated models look alike. Returns
    ``{"agreement": (M, M), "kappa": (M, M)}`` with ones on the diagonal, and ``"compared"``: the items each
    pair was compared on (the diagonal: the items each model predicted). Over no items (no face found
    anywhere, under ``--no-face wrong``) agreement and kappa are undefined: NaN, never 0 (no agreement) or 1.
    """
    preds = [_labels(p, f"predictions {i}") for i, p in enumerate(predictions)]
    m = len(preds)
    agree, kappa = np.eye(m), np.eye(m)
    compared = np.diag([int(np.sum(p >= 0)) for p in preds])
    for i, j in itertools.combinations(range(m), 2):
        a, b = _pair(preds[i], preds[j])
        both = (a >= 0) & (b >= 0)
        agree[i, j] = agree[j, i] = agreement_rate(a[both], b[both])
        kappa[i, j] = kappa[j, i] = cohen_kappa(a[both], b[both])
        compared[i, j] = compared[j, i] = int(both.sum())
    undefined = compared == 0
    agree[undefined] = kappa[undefined] = np.nan
    return {"agreement": agree, "kappa": kappa, "compared": compared}


def format_rate(value: float | None) -> str:
    """An agreement or kappa of :func:`compare_predictions` for a table: ``-`` where it is undefined (``None``
    or NaN: no item both models predicted)."""
    return "-" if value is None or value != value else f"{value:.4f}"


def labels_to_indices(names: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Label names -> indices into ``labels`` (canonicalised), for comparing models with different orders."""
    from ferhub.labels import canonical

    pos = {canonical(n): i for i, n in enumerate(labels)}
    return np.array([pos[canonical(n)] for n in names], dtype=np.int64)


def compare_predictions(
    names: Sequence[str],
    predictions: Sequence[Sequence[int]],
    y_true: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Every pairwise comparison of M models on the same items (JSON-ready).

    ``predictions[m]`` holds model m's predicted class per item in one shared label space (``-1`` = no
    prediction). Agreement and kappa are over the ``num_compared`` items both models of a pair predicted
    (:func:`agreement_matrix`); over no items they are ``None`` (undefined), in the pairs and the matrices.
    With ``y_true``, each pair also gets accuracy and McNemar's exact test on their correctness over all
    items (no prediction: wrong).
    """
    from ferhub.strict_json import finite

    if len(names) != len(predictions) or len(names) < 2:
        raise ValueError("compare needs at least two models, one name per prediction array")
    mat = agreement_matrix(predictions)
    pairs = []
    for i, j in itertools.combinations(range(len(names)), 2):
        row: dict[str, Any] = {
            "a": names[i],
            "b": names[j],
            "agreement": finite(float(mat["agreement"][i, j])),
            "kappa": finite(float(mat["kappa"][i, j])),
            "num_compared": int(mat["compared"][i, j]),
        }
        if y_true is not None:
            t = _labels(y_true, "y_true")
            ca = _labels(predictions[i], "a") == t
            cb = _labels(predictions[j], "b") == t
            row["accuracy_a"] = float(ca.mean()) if t.size else 0.0
            row["accuracy_b"] = float(cb.mean()) if t.size else 0.0
            row["mcnemar"] = mcnemar_exact(ca, cb)
        pairs.append(row)
    return {
        "models": list(names),
        "num_items": len(predictions[0]),
        "agreement": finite(mat["agreement"]),
        "kappa": finite(mat["kappa"]),
        "pairs": pairs,
    }


def entries_difference(
    entry_a: Mapping[str, Any],
    entry_b: Mapping[str, Any],
    *,
    normalize: bool = True,
    labels: Sequence[str] | None = None,
) -> tuple[list[str], np.ndarray]:
    """Difference ``B - A`` of two ``eval_results`` entries' confusion matrices, aligned on ``labels``
    (default: the union of theirs); row-normalised by each class's support (see :func:`confusion_difference`).
    """
    labels = list(labels) if labels is not None else list(union_labels(entry_a["labels"], entry_b["labels"]))
    a = align_matrix(entry_a["confusion_matrix"], entry_a["labels"], labels)
    b = align_matrix(entry_b["confusion_matrix"], entry_b["labels"], labels)
    supports = {"support_a": entry_support(entry_a, labels), "support_b": entry_support(entry_b, labels)}
    return labels, confusion_difference(a, b, normalize=normalize, **supports)
