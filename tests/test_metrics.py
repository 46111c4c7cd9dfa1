"""ferhub.metrics against hand-computed values and loop-based reference implementations written here."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ferhub import metrics as M

# A hand-checked 3-class case.
#   true: 0 0 0 0 1 1 1 2 2 2
#   pred: 0 0 1 2 1 1 0 2 2 1
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
Y_PRED = np.array([0, 0, 1, 2, 1, 1, 0, 2, 2, 1])


def ref_per_class(y_true, y_pred, k):
    """Textbook definitions with explicit loops (no vectorisation shared with the code under test)."""
    out = []
    for c in range(k):
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == c and p == c)
        fp = sum(1 for t, p in zip(y_true, y_pred) if t != c and p == c)
        fn = sum(1 for t, p in zip(y_true, y_pred) if t == c and p != c)
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out.append((prec, rec, f1, tp + fn))
    return out


def test_confusion_matrix_hand_computed() -> None:
    cm = M.confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    assert cm.sum() == len(Y_TRUE)


def test_confusion_matrix_leaves_out_no_prediction_and_checks_range() -> None:
    assert M.confusion_matrix([0, 1, 1], [0, -1, 1], 2).tolist() == [[1, 0], [0, 1]]
    with pytest.raises(ValueError, match="outside"):
        M.confusion_matrix([0, 3], [0, 0], 2)
    with pytest.raises(ValueError, match="differ in length"):
        M.confusion_matrix([0, 1], [0], 2)


def test_scalar_metrics_hand_computed() -> None:
    assert M.accuracy(Y_TRUE, Y_PRED) == pytest.approx(6 / 10)
    # recalls 2/4, 2/3, 2/3
    assert M.mean_class_recall(Y_TRUE, Y_PRED, 3) == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 3)
    # precisions: 2/3, 2/4, 2/3; F1 = 2PR/(P+R)
    f1 = [2 * (2 / 3) * 0.5 / (2 / 3 + 0.5), 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), 2 / 3]
    assert M.macro_f1(Y_TRUE, Y_PRED, 3) == pytest.approx(sum(f1) / 3)


def test_per_class_matches_reference_on_random_data() -> None:
    rng = np.random.default_rng(3)
    for k in (2, 5, 8):
        t = rng.integers(0, k, 200)
        p = np.where(rng.random(200) < 0.6, t, rng.integers(0, k, 200))
        got = M.per_class_scores(t, p, k)
        for c, (prec, rec, f1, sup) in enumerate(ref_per_class(t, p, k)):
            assert got.precision[c] == pytest.approx(prec)
            assert got.recall[c] == pytest.approx(rec)
            assert got.f1[c] == pytest.approx(f1)
            assert got.support[c] == sup
        ref = ref_per_class(t, p, k)
        assert M.mean_class_recall(t, p, k) == pytest.approx(np.mean([r[1] for r in ref if r[3] > 0]))


def test_absent_classes_give_zero_with_notes_never_nan() -> None:
    # class 2 never predicted; class 3 predicted but absent from the data
    t = np.array([0, 1, 2, 2])
    p = np.array([0, 1, 3, 3])
    s = M.per_class_scores(t, p, 4, ["a", "b", "c", "d"])
    assert s.precision[2] == 0.0 and s.recall[3] == 0.0 and s.f1[3] == 0.0
    assert "c: never predicted, precision reported as 0" in s.notes
    assert "d: no true items in the data, recall reported as 0" in s.notes
    # mean recall over the classes present (a, b, c): (1 + 1 + 0) / 3; macro-F1 also counts the spurious d
    assert M.mean_class_recall(t, p, 4) == pytest.approx(2 / 3)
    assert M.macro_f1(t, p, 4) == pytest.approx((1 + 1 + 0 + 0) / 4)
    assert not np.isnan(s.to_dict("abcd")["d"]["precision"])


def test_nll_and_top2_hand_computed() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.4, 0.4, 0.2]])
    t = np.array([0, 1, 2, 1])
    assert M.nll(probs, t) == pytest.approx(
        -(math.log(0.7) + math.log(0.3) + math.log(0.8) + math.log(0.4)) / 4
    )
    # top-2 of row 3 is (0, 1) by the lower-index tie rule
    assert M.top_k_accuracy(probs, t, k=2) == 1.0
    assert M.top_k_accuracy(probs, t, k=1) == pytest.approx(2 / 4)
    assert math.isfinite(M.nll(np.array([[1.0, 0.0]]), [1]))


def test_calibration_hand_computed() -> None:
    # confidences 0.95 (right), 0.85 (wrong), 0.55 (right), 0.45 (right) with 10 bins
    probs = np.array([[0.95, 0.05], [0.85, 0.15], [0.55, 0.45], [0.45, 0.55]])
    t = np.array([0, 1, 0, 1])
    cal = M.calibration(probs, t, n_bins=10)
    bins = {round(b["lower"], 1): b for b in cal["bins"] if b["count"]}
    assert set(bins) == {0.9, 0.8, 0.5}
    assert bins[0.5]["count"] == 2 and bins[0.5]["confidence"] == pytest.approx(0.55)
    assert bins[0.5]["accuracy"] == 1.0
    # |1-0.95|*1 + |0-0.85|*1 + |1-0.55|*2, over 4
    assert cal["ece"] == pytest.approx((0.05 + 0.85 + 0.9) / 4)
    assert sum(b["count"] for b in cal["bins"]) == 4
    json.dumps(cal, allow_nan=False)


def test_calibration_bin_edges_are_right_closed() -> None:
    cal = M.calibration(np.array([[0.5, 0.5], [1.0, 0.0]]), [0, 0], n_bins=2)
    assert [b["count"] for b in cal["bins"]] == [1, 1]


def test_bootstrap_ci_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(0)
    t = rng.integers(0, 4, 500)
    p = np.where(rng.random(500) < 0.7, t, rng.integers(0, 4, 500))
    a = M.bootstrap_ci(t, p, 4, n_resamples=400, seed=7)
    b = M.bootstrap_ci(t, p, 4, n_resamples=400, seed=7)
    assert a == b
    acc, rec = M.accuracy(t, p), M.mean_class_recall(t, p, 4)
    assert a["accuracy"][0] < acc < a["accuracy"][1]
    assert a["mean_class_recall"][0] < rec < a["mean_class_recall"][1]
    # binomial standard error sqrt(p(1-p)/n): the 95% interval is about 4 standard errors wide
    se = math.sqrt(acc * (1 - acc) / 500)
    assert a["accuracy"][1] - a["accuracy"][0] == pytest.approx(3.92 * se, rel=0.25)


def test_bootstrap_reference_loop() -> None:
    """Same resamples as a plain loop over the generator's draws."""
    t = np.array([0, 0, 1, 1, 2, 2, 2, 1])
    p = np.array([0, 1, 1, 1, 2, 0, 2, 2])
    got = M.bootstrap_ci(t, p, 3, n_resamples=50, seed=1)
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 8, size=(50, 8))
    accs = [float(np.mean(t[i] == p[i])) for i in idx]
    recs = []
    for i in idx:
        tt, pp = t[i], p[i]
        recs.append(np.mean([np.mean(pp[tt == c] == c) for c in np.unique(tt)]))
    assert got["accuracy"] == pytest.approx(list(np.percentile(accs, [2.5, 97.5])))
    assert got["mean_class_recall"] == pytest.approx(list(np.percentile(recs, [2.5, 97.5])))


def test_bootstrap_groups_resample_images_with_all_their_predictions() -> None:
    """k-fold repeats predict each image R times: resampling the R x N rows as independent items narrowed the
    interval by about sqrt(R). With ``groups`` an image is drawn with all its rows (a cluster bootstrap)."""
    rng = np.random.default_rng(3)
    t = rng.integers(0, 4, 60)
    p = np.where(rng.random(60) < 0.5, t, (t + 1) % 4)
    once = M.bootstrap_ci(t, p, 4, n_resamples=300, seed=2)
    copies = {
        "y_true": np.tile(t, 3),
        "y_pred": np.tile(p, 3),
        "num_classes": 4,
        "n_resamples": 300,
        "seed": 2,
    }
    # three identical predictions of each image tell no more than one: the same interval
    assert M.bootstrap_ci(**copies, groups=np.tile(np.arange(60), 3)) == once
    naive = M.bootstrap_ci(**copies)
    assert naive["accuracy"][1] - naive["accuracy"][0] < 0.75 * (once["accuracy"][1] - once["accuracy"][0])
    # a plain loop over the generator's draws of images, rows pooled per draw
    g = np.array([0, 0, 1, 1, 2, 2, 3])  # image ids (any values; an image may have one row)
    tt, pp = np.array([0, 0, 1, 1, 2, 2, 2]), np.array([0, 1, 1, 1, 2, 0, 1])
    got = M.bootstrap_ci(tt, pp, 3, n_resamples=40, seed=5, groups=g * 10)
    draws = np.random.default_rng(5).integers(0, 4, size=(40, 4))
    rows = [np.concatenate([np.flatnonzero(g == d) for d in draw]) for draw in draws]
    accs = [np.mean(tt[r] == pp[r]) for r in rows]
    recs = [np.mean([np.mean(pp[r][tt[r] == c] == c) for c in np.unique(tt[r])]) for r in rows]
    assert got["accuracy"] == pytest.approx(list(np.percentile(accs, [2.5, 97.5])))
    assert got["mean_class_recall"] == pytest.approx(list(np.percentile(recs, [2.5, 97.5])))
    with pytest.raises(ValueError, match="one group per item"):
        M.bootstrap_ci(tt, pp, 3, groups=g[:3])


def test_kfold_summary() -> None:
    s = M.kfold_summary(
        [
            {"accuracy": 0.6, "macro_f1": 0.5},
            {"accuracy": 0.7, "macro_f1": 0.6},
            {"accuracy": 0.8, "macro_f1": 0.4},
        ]
    )
    assert s["accuracy"]["mean"] == pytest.approx(0.7)
    assert s["accuracy"]["std"] == pytest.approx(0.1)
    assert s["macro_f1"]["values"] == [0.5, 0.6, 0.4]
    assert M.kfold_summary([{"accuracy": 0.5}])["accuracy"]["std"] == 0.0
    with pytest.raises(ValueError):
        M.kfold_summary([])


def test_label_space_maps_by_canonical_name() -> None:
    space = M.LabelSpace.build(["Happiness", "sad", "contempt"], ["sad", "happy", "angry"])
    assert space.labels == ["happy", "sad", "contempt", "angry"]
    assert space.data_index.tolist() == [0, 1, 2]
    assert space.model_index.tolist() == [1, 0, 3]
    assert space.unpredictable == ["contempt"]
    assert space.map_probs(np.array([[0.2, 0.7, 0.1]])).tolist() == [[0.7, 0.2, 0.0, 0.1]]


def test_summarize_7_class_model_on_8_class_data_reports_contempt() -> None:
    from ferhub.labels import FER7, FER8

    # data: one image per FER8 class; model (FER7) right on every class it knows
    y = np.arange(8)
    probs = np.full((8, 7), 0.01)
    for i in range(7):
        probs[i, i] = 0.94
    probs[7, 6] = 0.94  # contempt image called neutral
    out = M.summarize(y, probs, data_labels=FER8, model_labels=FER7, n_resamples=50)
    assert out["labels"] == list(FER8)
    assert out["metrics"]["accuracy"] == pytest.approx(7 / 8)
    assert out["metrics"]["mean_class_recall"] == pytest.approx(7 / 8)
    assert out["label_mapping"]["unpredictable"] == {"contempt": 1}
    assert "contempt: 1 images the model cannot predict, counted wrong" in out["notes"]
    assert out["confusion_matrix"][7][6] == 1 and sum(map(sum, out["confusion_matrix"])) == 8
    assert out["per_class"]["contempt"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # NLL over the 7 images whose class the model can output
    assert out["metrics"]["nll"] == pytest.approx(-math.log(0.94))
    json.dumps(out, allow_nan=False)


def test_summarize_no_face_policies() -> None:
    labels = ["happy", "sad"]
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    missing = np.array([False, True, False, False])
    fb = M.summarize(y, probs, data_labels=labels, model_labels=labels, no_face=missing, n_resamples=20)
    assert fb["metrics"]["accuracy"] == pytest.approx(3 / 4)
    assert fb["no_face"] == {"count": 1, "policy": "fallback", "per_class": {"happy": 1, "sad": 0}}
    wrong = M.summarize(
        y,
        probs,
        data_labels=labels,
        model_labels=labels,
        no_face=missing,
        no_face_policy="wrong",
        n_resamples=20,
    )
    assert wrong["metrics"]["accuracy"] == pytest.approx(2 / 4)
    # predictions: happy, (none), sad, happy -> happy precision 1/2, recall 1/2
    assert wrong["per_class"]["happy"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert sum(map(sum, wrong["confusion_matrix"])) == 3  # the no-face image is not in the matrix
    assert wrong["metrics"]["top2_accuracy"] == pytest.approx(3 / 4)
    assert "no face: 1 images without a face counted wrong" in wrong["notes"]
    with pytest.raises(ValueError, match="no_face_policy"):
        M.summarize(y, probs, data_labels=labels, model_labels=labels, no_face_policy="skip")


def test_row_normalize() -> None:
    assert M.row_normalize([[1, 3], [0, 0]]).tolist() == [[0.25, 0.75], [0.0, 0.0]]


def test_row_normalize_by_support_gives_recall_on_the_diagonal() -> None:
    """An image without a prediction has no cell: divided by the row sums, a class with recall 1/2 showed
    100% on the diagonal."""
    # happy: 2 images, 1 predicted happy, 1 without a face (counted wrong); sad: 1 image, predicted happy
    t, p = np.array([0, 0, 1]), np.array([0, M.NO_PREDICTION, 0])
    cm = M.confusion_matrix(t, p, 2)
    support = M.per_class_scores(t, p, 2, ["happy", "sad"]).support
    normalised = M.row_normalize(cm, support)
    assert normalised.tolist() == [[0.5, 0.0], [1.0, 0.0]]
    assert np.diag(normalised).tolist() == M.per_class_scores(t, p, 2, ["happy", "sad"]).recall.tolist()
    assert M.row_normalize(cm).tolist() == [[1.0, 0.0], [1.0, 0.0]]  # without it: shares of the cells
    with pytest.raises(ValueError, match="support has 3 classes"):
        M.row_normalize(cm, [1, 2, 3])
