"""Classification metrics as pure functions on label arrays and probabilities (numpy only).

Conventions, shared by every function here and by ``eval_results.json``:

- labels are integer indices into one label list; a prediction of ``-1`` means "no prediction" (an image
  without a face under the "counted wrong" policy): it is wrong for accuracy and recall, and it is left out
  of the confusion matrix, whose rows are true classes and columns predicted classes, in counts;
- a ratio whose denominator is zero (precision of a class never predicted, recall of a class absent from the
  data) is reported as ``0.0`` and a note says so; nothing returned here is NaN, so it all serialises to JSON.

>>> import numpy as np
>>> y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])
>>> accuracy(y_true, y_pred), mean_class_recall(y_true, y_pred, 2)
(0.75, 0.75)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ferhub.labels import canonical_labels, union_labels

NO_PREDICTION = -1
DEFAULT_BINS = 15  # Guo et al. 2017's choice for ECE


def _as_labels(y: Sequence[int] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_pair(y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape[0]} vs {y_pred.shape[0]}")


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """``(K, K)`` counts, rows = true class, columns = predicted; ``-1`` predictions are left out.

    >>> confusion_matrix([0, 1, 1], [0, 0, 1], 2).tolist()
    [[1, 0], [1, 1]]
    """
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    _check_pair(t, p)
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(f"y_true holds indices outside 0..{num_classes - 1}")
    if p.size and p.max() >= num_classes:
        raise ValueError(f"y_pred holds indices outside -1..{num_classes - 1}")
    keep = p >= 0
    flat = t[keep] * num_classes + p[keep]
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Fraction of items whose prediction equals the true class (``-1`` is always wrong); 0.0 when empty."""
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    _check_pair(t, p)
    return float(np.mean(t == p)) if t.size else 0.0


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


@dataclass
class PerClass:
    """Per-class precision, recall, F1 and support (true items), each a ``(K,)`` array, plus notes."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray
    predicted: np.ndarray
    notes: list[str] = field(default_factory=list)

    def to_dict(self, labels: Sequence[str]) -> dict[str, dict[str, float | int]]:
        return {
            name: {
                "precision": float(self.precision[i]),
                "recall": float(self.recall[i]),
                "f1": float(self.f1[i]),
                "support": int(self.support[i]),
            }
            for i, name in enumerate(labels)
        }


def per_class_scores(
    y_true: Sequence[int], y_pred: Sequence[int], num_classes: int, labels: Sequence[str] | None = None
) -> PerClass:
    """Precision/recall/F1/support per class; zero denominators give 0.0 and a note naming the class.

    Support counts every true item of a class, including ``-1`` (no prediction) items, so recall is the
    share of a class's images classified right.
    """
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    cm = confusion_matrix(t, p, num_classes)
    support = np.bincount(t, minlength=num_classes)
    predicted = cm.sum(axis=0)
    tp = np.diag(cm)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    names = list(labels) if labels is not None else [str(i) for i in range(num_classes)]
    notes = []
    for i in range(num_classes):
        if predicted[i] == 0 and support[i] > 0:
            notes.append(f"{names[i]}: never predicted, precision reported as 0")
        if support[i] == 0 and predicted[i] > 0:
            notes.append(f"{names[i]}: no true items in the data, recall reported as 0")
    return PerClass(precision, recall, f1, support, predicted, notes)


def mean_class_recall(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> float:
    """Mean of per-class recall over the classes present in ``y_true`` (balanced accuracy; seed 001)."""
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    _check_pair(t, p)
    support = np.bincount(t, minlength=num_classes)
    hits = np.bincount(t[t == p], minlength=num_classes)
    present = support > 0
    return float(np.mean(hits[present] / support[present])) if present.any() else 0.0


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> float:
    """Unweighted mean F1 over the classes that occur in ``y_true`` or in the predictions.

    This is scikit-learn's ``f1_score(average="macro")`` with its default label set; a class predicted but
    absent from the data counts with F1 = 0, so spurious predictions of it are penalised.
    """
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    scores = per_class_scores(t, p, num_classes)
    used = (scores.support > 0) | (scores.predicted > 0)
    return float(np.mean(scores.f1[used])) if used.any() else 0.0


def _check_probs(probs: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != y_true.shape[0]:
        raise ValueError(f"probs must be (N, K) with N = len(y_true) = {y_true.shape[0]}, got {probs.shape}")
    if y_true.size and (y_true.min() < 0 or y_true.max() >= probs.shape[1]):
        raise ValueError(f"y_true holds indices outside the {probs.shape[1]} probability columns")
    return probs


def nll(probs: np.ndarray, y_true: Sequence[int], eps: float = 1e-12) -> float:
    """Mean negative log-likelihood of the true class (natural log), probabilities clipped at ``eps``.

    >>> round(nll(np.array([[0.5, 0.5], [0.25, 0.75]]), [0, 1]), 4)
    0.4904
    """
    t = _as_labels(y_true, "y_true")
    probs = _check_probs(probs, t)
    if not t.size:
        return 0.0
    return float(-np.mean(np.log(np.clip(probs[np.arange(t.size), t], eps, 1.0))))


def top_k_accuracy(probs: np.ndarray, y_true: Sequence[int], k: int = 2) -> float:
    """Fraction of items whose true class is among the ``k`` most probable (ties broken by lower index)."""
    t = _as_labels(y_true, "y_true")
    probs = _check_probs(probs, t)
    if not t.size:
        return 0.0
    k = min(k, probs.shape[1])
    # a stable sort of -p keeps the lower index first among equal probabilities, as argmax does
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == t[:, None]).any(axis=1)))


def calibration(probs: np.ndarray, y_true: Sequence[int], n_bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Expected calibration error of the top-1 confidence, with the reliability-diagram bins.

    Bins split ``[0, 1]`` into ``n_bins`` equal widths (the first one closed on the left); ECE is
    ``sum_b |acc_b - conf_b| * n_b / N``. Empty bins report count 0 and accuracy/confidence 0.0.
    """
    t = _as_labels(y_true, "y_true")
    probs = _check_probs(probs, t)
    conf = probs.max(axis=1) if t.size else np.zeros(0)
    correct = (probs.argmax(axis=1) == t) if t.size else np.zeros(0, dtype=bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # right-closed bins (lo, hi], with confidence exactly 0 put in the first bin
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct.astype(np.float64), minlength=n_bins)
    mean_conf, mean_acc = _safe_div(conf_sum, count), _safe_div(acc_sum, count)
    ece = float(np.sum(np.abs(mean_acc - mean_conf) * count) / t.size) if t.size else 0.0
    bins = [
        {
            "lower": float(edges[b]),
            "upper": float(edges[b + 1]),
            "count": int(count[b]),
            "confidence": float(mean_conf[b]),
            "accuracy": float(mean_acc[b]),
        }
        for b in range(n_bins)
    ]
    return {"ece": ece, "n_bins": n_bins, "bins": bins}


def expected_calibration_error(probs: np.ndarray, y_true: Sequence[int], n_bins: int = DEFAULT_BINS) -> float:
    """ECE alone; see :func:`calibration`."""
    return calibration(probs, y_true, n_bins)["ece"]


# bootstrap resamples of the 95% intervals: `ferhub evaluate`'s default (--bootstrap) and training's, so that
# evaluating a trained model on its reported split gives the card's intervals again
BOOTSTRAP_RESAMPLES = 1000


def bootstrap_ci(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    num_classes: int,
    *,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
    groups: Sequence[int] | np.ndarray | None = None,
) -> dict[str, list[float]]:
    """Percentile bootstrap confidence intervals for accuracy and mean class recall (seeded, reproducible).

    Items are resampled with replacement ``n_resamples`` times; in each resample, mean class recall averages
    the classes that resample contains. Returns ``{"accuracy": [lo, hi], "mean_class_recall": [lo, hi]}``.

    ``groups``: per item, the image it is a prediction of, when an image has several (k-fold repeats predict
    each image once per repeat). Images are resampled then, each bringing all its items (a cluster
    bootstrap): resampling R copies of an image as independent items would narrow the interval by about
    sqrt(R). Without it every item is its own image.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be 1 or more, got {n_resamples}")
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
    _check_pair(t, p)
    n = t.size
    if n == 0:
        return {"accuracy": [0.0, 0.0], "mean_class_recall": [0.0, 0.0]}
    if groups is None:
        g = np.arange(n)
    else:
        g = np.asarray(groups)
        if g.shape != t.shape:
            raise ValueError(f"groups must give one group per item ({n}), got shape {g.shape}")
        g = np.unique(g, return_inverse=True)[1].reshape(-1)
    n_groups = int(g.max()) + 1
    correct = (t == p).astype(np.float64)
    # per group: its items and right ones, in all and per class; a resample's totals are its groups' sums
    items = np.bincount(g, minlength=n_groups).astype(np.float64)
    right = np.bincount(g, weights=correct, minlength=n_groups)
    cells = g * num_classes + t
    size_gk = n_groups * num_classes
    support_gk = np.bincount(cells, minlength=size_gk).reshape(n_groups, num_classes).astype(np.float64)
    hits_gk = np.bincount(cells, weights=correct, minlength=size_gk).reshape(n_groups, num_classes)
    rng = np.random.default_rng(seed)
    accs = np.empty(n_resamples)
    recalls = np.empty(n_resamples)
    chunk = max(1, 4_000_000 // n_groups)  # bound memory: chunk x groups draws at a time
    for start in range(0, n_resamples, chunk):
        stop = min(start + chunk, n_resamples)
        idx = rng.integers(0, n_groups, size=(stop - start, n_groups))
        # how often each resample drew each group, via one bincount over (resample, group) pairs
        keys = (np.arange(stop - start)[:, None] * n_groups + idx).ravel()
        drawn = np.bincount(keys, minlength=(stop - start) * n_groups).reshape(-1, n_groups)
        drawn = drawn.astype(np.float64)
        accs[start:stop] = (drawn @ right) / (drawn @ items)
        support, hits = drawn @ support_gk, drawn @ hits_gk
        present = support > 0
        per = np.divide(hits, support, out=np.zeros_like(hits), where=present)
        recalls[start:stop] = per.sum(axis=1) / present.sum(axis=1)
    alpha = (1.0 - level) / 2.0
    q = [alpha * 100, (1 - alpha) * 100]
    return {
        "accuracy": [float(v) for v in np.percentile(accs, q)],
        "mean_class_recall": [float(v) for v in np.percentile(recalls, q)],
    }


def kfold_summary(folds: Sequence[Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """Mean ± sample standard deviation (ddof=1; 0 for one fold) of every scalar metric over k folds.

    >>> kfold_summary([{"accuracy": 0.5}, {"accuracy": 0.7}])["accuracy"]["text"]
    '0.6000 ± 0.1414'
    """
    if not folds:
        raise ValueError("kfold_summary needs the metrics of at least one fold")
    keys = [k for k, v in folds[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out: dict[str, dict[str, Any]] = {}
    for key in keys:
        values = np.array([float(f[key]) for f in folds])
        std = float(values.std(ddof=1)) if values.size > 1 else 0.0
        mean = float(values.mean())
        out[key] = {"mean": mean, "std": std, "values": values.tolist(), "text": f"{mean:.4f} ± {std:.4f}"}
    return out


@dataclass
class LabelSpace:
    """How a dataset's labels and a model's labels meet: one common label list for the matrix.

    ``labels`` is :func:`ferhub.labels.union_labels` of the data's and the model's classes (the data's in
    canonical order, then any model class the data lacks);
    ``data_index[i]`` / ``model_index[j]`` give the common index of data class ``i`` / model class ``j``.
    Data classes the model cannot output are listed in ``unpredictable``.
    """

    labels: list[str]
    data_index: np.ndarray
    model_index: np.ndarray
    unpredictable: list[str]

    @classmethod
    def build(cls, data_labels: Sequence[str], model_labels: Sequence[str]) -> LabelSpace:
        data = list(canonical_labels(data_labels))
        model = list(canonical_labels(model_labels))
        labels = list(union_labels(data, model))
        pos = {name: i for i, name in enumerate(labels)}
        return cls(
            labels=labels,
            data_index=np.array([pos[d] for d in data], dtype=np.int64),
            model_index=np.array([pos[m] for m in model], dtype=np.int64),
            unpredictable=[d for d in data if d not in model],
        )

    def map_probs(self, probs: np.ndarray) -> np.ndarray:
        """Model-order ``(N, K_model)`` probabilities -> common-order ``(N, K)`` (0 for classes it lacks)."""
        out = np.zeros((probs.shape[0], len(self.labels)), dtype=np.float64)
        out[:, self.model_index] = probs
        return out


def summarize(
    y_true: Sequence[int],
    probs: np.ndarray,
    *,
    data_labels: Sequence[str],
    model_labels: Sequence[str],
    no_face: Sequence[bool] | None = None,
    no_face_policy: str = "fallback",
    n_bins: int = DEFAULT_BINS,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    groups: Sequence[int] | np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric of one model on one labelled set, as the JSON-ready parts of an ``eval_results`` entry.

    Args:
        y_true: true class per image, as indices into ``data_labels``.
        probs: ``(N, K_model)`` probabilities in ``model_labels`` order; rows of images that got no
            prediction (no face, policy ``"wrong"``) are ignored.
        no_face: per image, whether no face was found in it.
        no_face_policy: ``"fallback"`` (the whole image was classified as the face; scored normally) or
            ``"wrong"`` (no prediction; counted wrong).
        groups: per row, the image it predicts, when images have several rows (k-fold repeats): the
            confidence intervals resample images (see :func:`bootstrap_ci`).

    Returns a dict with ``labels``, ``metrics``, ``per_class``, ``confusion_matrix``, ``calibration``,
    ``no_face``, ``label_mapping`` and ``notes``.
    """
    if no_face_policy not in ("fallback", "wrong"):
        raise ValueError(f"no_face_policy must be 'fallback' or 'wrong', got {no_face_policy!r}")
    space = LabelSpace.build(data_labels, model_labels)
    t_data, probs, missing = _summary_inputs(y_true, probs, len(model_labels), no_face)
    k = len(space.labels)
    t = space.data_index[t_data] if t_data.size else t_data
    p_all = space.map_probs(probs)
    scored = ~missing if no_face_policy == "wrong" else np.ones_like(missing)
    pred = np.full(t.size, NO_PREDICTION, dtype=np.int64)
    if scored.any():
        pred[scored] = space.model_index[probs[scored].argmax(axis=1)]

    scores = per_class_scores(t, pred, k, space.labels)
    notes = list(scores.notes)
    cm = confusion_matrix(t, pred, k)

    # probability metrics need a probability row: images without a prediction are left out of them
    predictable = np.isin(t, space.model_index)
    nll_rows = scored & predictable
    cal = calibration(p_all[scored], t[scored], n_bins)
    metrics = {
        "accuracy": accuracy(t, pred),
        "mean_class_recall": mean_class_recall(t, pred, k),
        "macro_f1": macro_f1(t, pred, k),
        "top2_accuracy": _top2_accuracy(p_all, t, scored),
        "nll": nll(p_all[nll_rows], t[nll_rows]),
        "ece": cal["ece"],
    }
    ci = bootstrap_ci(t, pred, k, n_resamples=n_resamples, seed=seed, groups=groups)
    metrics["accuracy_ci95"] = ci["accuracy"]
    metrics["mean_class_recall_ci95"] = ci["mean_class_recall"]

    unpredictable = {name: int(np.sum(t == space.labels.index(name))) for name in space.unpredictable}
    notes += _coverage_notes(unpredictable, int((~predictable).sum()), int(missing.sum()), no_face_policy)
    per_class_missing = np.bincount(t[missing], minlength=k) if t.size else np.zeros(k, dtype=np.int64)
    return {
        "labels": list(space.labels),
        "metrics": metrics,
        "per_class": scores.to_dict(space.labels),
        "confusion_matrix": cm.tolist(),
        "calibration": cal,
        "no_face": {
            "count": int(missing.sum()),
            "policy": no_face_policy,
            "per_class": {name: int(per_class_missing[i]) for i, name in enumerate(space.labels)},
        },
        "label_mapping": {
            "data_labels": list(canonical_labels(data_labels)),
            "model_labels": list(canonical_labels(model_labels)),
            "unpredictable": unpredictable,
        },
        "notes": notes,
    }


def _summary_inputs(
    y_true: Sequence[int], probs: np.ndarray, num_model_labels: int, no_face: Sequence[bool] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`summarize`'s arrays, checked: labels, ``(N, K_model)`` float64 probabilities, no-face flags."""
    t_data = _as_labels(y_true, "y_true")
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (t_data.size, num_model_labels):
        raise ValueError(f"probs must be ({t_data.size}, {num_model_labels}), got {probs.shape}")
    missing = np.zeros(t_data.size, dtype=bool) if no_face is None else np.asarray(no_face, dtype=bool)
    if missing.shape != t_data.shape:
        raise ValueError("no_face must have one flag per image")
    return t_data, probs, missing


def _top2_accuracy(p_all: np.ndarray, t: np.ndarray, scored: np.ndarray) -> float:
    """Share of images whose true class is among the two most probable; unscored images count as misses."""
    hits = np.zeros(t.size, dtype=bool)
    if scored.any():
        top = np.argsort(-p_all[scored], axis=1, kind="stable")[:, : min(2, p_all.shape[1])]
        hits[scored] = (top == t[scored, None]).any(axis=1)
    return float(hits.mean()) if t.size else 0.0


def _coverage_notes(
    unpredictable: dict[str, int], unpredictable_total: int, no_face: int, policy: str
) -> list[str]:
    """The notes that say which images a summary counted wrong or left out, and why."""
    notes = [
        f"{name}: {count} images the model cannot predict, counted wrong"
        for name, count in unpredictable.items()
        if count
    ]
    if unpredictable_total:
        notes.append(f"nll: {unpredictable_total} images of classes the model cannot predict are left out")
    if policy == "wrong" and no_face:
        notes.append(f"no face: {no_face} images without a face counted wrong")
        notes.append("nll, ece: images without a face are left out")
    return notes


def row_normalize(
    matrix: Sequence[Sequence[float]] | np.ndarray, support: Sequence[float] | np.ndarray | None = None
) -> np.ndarray:
    """Each row as shares of its true class (recall view); all-zero rows stay zero.

    ``support``: the images of each true class (``per_class[..]["support"]``). Images without a prediction
    have no cell in the matrix, so dividing by the row sums would leave them out and put 100% on the
    diagonal of a class whose recall is lower; divided by the support, the diagonal is each class's recall.
    Without it the rows sum to 1.
    """
    m = np.asarray(matrix, dtype=np.float64)
    totals = m.sum(axis=1)
    if support is not None:
        given = np.asarray(support, dtype=np.float64)
        if given.shape != totals.shape:
            raise ValueError(f"support has {given.size} classes, the matrix {totals.size}")
        totals = np.maximum(given, totals)  # a support below its row's count would give shares over 1
    return _safe_div(m, totals[:, None] * np.ones_like(m))
