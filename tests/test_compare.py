"""ferhub.compare: agreement, Cohen's kappa and McNemar's exact test against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ferhub import compare as C
from ferhub import strict_json


def test_agreement_and_kappa_hand_computed() -> None:
    # 10 items, two raters over classes {0, 1}
    a = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    b = [0, 0, 0, 1, 1, 1, 1, 1, 1, 0]
    # p_o = 7/10; marginals a: 5/5, b: 4/6 -> p_e = 0.5*0.4 + 0.5*0.6 = 0.5; kappa = (0.7-0.5)/0.5
    assert C.agreement_rate(a, b) == pytest.approx(0.7)
    assert C.cohen_kappa(a, b) == pytest.approx(0.4)


def test_kappa_three_classes_and_edge_cases() -> None:
    # Table (rows a, cols b): [[2,1,0],[0,3,1],[1,0,2]], N=10: p_o=0.7;
    # a marginals 3,4,3; b marginals 3,4,3 -> p_e = (9+16+9)/100 = 0.34; kappa = 0.36/0.66
    a = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    b = [0, 0, 1, 1, 1, 1, 2, 0, 2, 2]
    assert C.cohen_kappa(a, b) == pytest.approx(0.36 / 0.66)
    assert C.cohen_kappa([1, 1, 1], [1, 1, 1]) == 1.0  # chance agreement 1: defined as 1 here
    assert C.cohen_kappa([0, 1], [1, 0]) == pytest.approx(-1.0)
    assert C.cohen_kappa([], []) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        C.cohen_kappa([0], [0, 1])


def test_mcnemar_exact_hand_computed() -> None:
    # A right / B wrong on 8 items, the reverse on 2: n=10, P(X<=2) = (1+10+45)/1024
    ca = [True] * 8 + [False] * 2 + [True] * 5 + [False] * 3
    cb = [False] * 8 + [True] * 2 + [True] * 5 + [False] * 3
    r = C.mcnemar_exact(ca, cb)
    assert (r["a_only_correct"], r["b_only_correct"], r["discordant"]) == (8, 2, 10)
    assert r["p_value"] == pytest.approx(2 * 56 / 1024)
    assert r["p_value"] == pytest.approx(0.109375)
    # symmetric in a and b
    assert C.mcnemar_exact(cb, ca)["p_value"] == r["p_value"]
    # b == c: p capped at 1; no discordant pairs: p = 1
    assert C.mcnemar_exact([True, False], [False, True])["p_value"] == 1.0
    assert C.mcnemar_exact([True, True], [True, True])["p_value"] == 1.0
    # one-sided extreme: 12 vs 0 -> 2 / 2**12
    assert C.mcnemar_exact([True] * 12, [False] * 12)["p_value"] == pytest.approx(2 / 4096)


def test_mcnemar_matches_binomial_sum_for_large_counts() -> None:
    rng = np.random.default_rng(0)
    ca, cb = rng.random(3000) < 0.7, rng.random(3000) < 0.6
    r = C.mcnemar_exact(ca, cb)
    b, c = r["a_only_correct"], r["b_only_correct"]
    n = b + c
    # log-space reference for the binomial tail
    tail = sum(
        math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) - n * math.log(2))
        for i in range(min(b, c) + 1)
    )
    assert r["p_value"] == pytest.approx(min(1.0, 2 * tail), rel=1e-6, abs=1e-300)


def test_confusion_difference_and_alignment() -> None:
    a = [[8, 2], [5, 5]]
    b = [[9, 1], [2, 8]]
    assert C.confusion_difference(a, b, normalize=False).tolist() == [[1, -1], [-3, 3]]
    np.testing.assert_allclose(C.confusion_difference(a, b), [[0.1, -0.1], [-0.3, 0.3]])
    aligned = C.align_matrix([[1, 2], [3, 4]], ["sad", "happy"], ["happy", "sad", "contempt"])
    assert aligned.tolist() == [[4, 3, 0], [2, 1, 0], [0, 0, 0]]
    labels, diff = C.entries_difference(
        {"labels": ["happy", "sad"], "confusion_matrix": [[1, 1], [0, 2]]},
        {"labels": ["sad", "happy"], "confusion_matrix": [[2, 0], [0, 2]]},
    )
    assert labels == ["happy", "sad"]
    np.testing.assert_allclose(diff, [[0.5, -0.5], [0.0, 0.0]])
    with pytest.raises(ValueError, match="square"):
        C.confusion_difference([[1, 2]], [[1, 2]])


def test_confusion_difference_rows_are_shares_of_each_class_support() -> None:
    """Images without a prediction (no face, counted wrong) have no cell: the difference of row-normalised
    matrices divided by the row sums put 100% recall on a class whose recall was 1/2."""
    a = [[1, 0], [0, 2]]  # happy: 2 images, one without a prediction; sad: 2 images
    b = [[2, 0], [0, 2]]
    np.testing.assert_allclose(C.confusion_difference(a, b, support_a=[2, 2], support_b=[2, 2]),
                               [[0.5, 0.0], [0.0, 0.0]])  # fmt: skip
    assert C.confusion_difference(a, b).tolist() == [[0.0, 0.0], [0.0, 0.0]]  # shares of the cells
    entry_a = {"labels": ["happy", "sad"], "confusion_matrix": a,
               "per_class": {"happy": {"support": 2}, "sad": {"support": 2}}}  # fmt: skip
    entry_b = {"labels": ["sad", "happy"], "confusion_matrix": [[2, 0], [0, 2]]}  # no per_class: row sums
    labels, diff = C.entries_difference(entry_a, entry_b)
    assert labels == ["happy", "sad"]
    np.testing.assert_allclose(diff, [[0.5, 0.0], [0.0, 0.0]])  # B's recall 1 minus A's 1/2
    assert C.entry_support(entry_a, ["sad", "contempt", "happy"]).tolist() == [2.0, 0.0, 2.0]


def test_agreement_matrix_and_compare_predictions() -> None:
    p1 = [0, 1, 2, 2]
    p2 = [0, 1, 2, 1]
    p3 = [1, 1, 2, 2]
    mat = C.agreement_matrix([p1, p2, p3])
    np.testing.assert_allclose(mat["agreement"], [[1, 0.75, 0.75], [0.75, 1, 0.5], [0.75, 0.5, 1]])
    assert mat["kappa"][0, 1] == pytest.approx(C.cohen_kappa(p1, p2))
    out = C.compare_predictions(["a", "b", "c"], [p1, p2, p3], y_true=[0, 1, 2, 2])
    assert [(r["a"], r["b"]) for r in out["pairs"]] == [("a", "b"), ("a", "c"), ("b", "c")]
    ab = out["pairs"][0]
    assert ab["accuracy_a"] == 1.0 and ab["accuracy_b"] == 0.75
    assert ab["mcnemar"] == {"a_only_correct": 1, "b_only_correct": 0, "discordant": 1, "p_value": 1.0}
    unlabelled = C.compare_predictions(["a", "b"], [p1, p2])
    assert "mcnemar" not in unlabelled["pairs"][0]
    with pytest.raises(ValueError, match="at least two"):
        C.compare_predictions(["a"], [p1])


def test_labels_to_indices_uses_canonical_names() -> None:
    assert C.labels_to_indices(["Happiness", "sad"], ["sad", "happy"]).tolist() == [1, 0]


def test_mcnemar_exact_is_the_binomial_sum_and_fast_for_large_counts() -> None:
    """Each term of the tail is built from the one before: a fresh ``math.comb`` per term took ~25 s for one
    pair at 19,500 discordant images (quadratic or worse), and minutes beyond."""
    for b in range(0, 31):
        for c in range(0, 31):
            ca, cb = [True] * b + [False] * c, [False] * b + [True] * c
            n = b + c
            old = min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n) if n else 1.0
            assert C.mcnemar_exact(ca, cb)["p_value"] == old
    # 40,000 discordant images: exact (integers), and done in well under a second
    b, c = 20_300, 19_700
    r = C.mcnemar_exact([True] * b + [False] * c, [False] * b + [True] * c)
    tail = sum(
        math.exp(
            math.lgamma(b + c + 1) - math.lgamma(i + 1) - math.lgamma(b + c - i + 1) - (b + c) * math.log(2)
        )
        for i in range(c + 1)
    )
    assert r["discordant"] == 40_000 and r["p_value"] == pytest.approx(2 * tail, rel=1e-9)
    assert (
        C.mcnemar_exact([True] * 20_000 + [False] * 20_000, [False] * 20_000 + [True] * 20_000)["p_value"]
        == 1.0
    )


def test_agreement_and_kappa_are_over_the_items_both_models_predicted() -> None:
    """An image without a face is -1 for every model (detection is shared): counted as agreement, it made
    two models look alike the more faces were missed. McNemar and accuracy stay over every item."""
    a = [0, 1, 1, 0, -1, -1, -1, 2]
    b = [0, 1, 0, 1, -1, -1, -1, -1]
    y = [0, 1, 1, 1, 0, 1, 2, 2]
    out = C.compare_predictions(["a", "b"], [a, b], y_true=y)
    (pair,) = out["pairs"]
    assert pair["num_compared"] == 4 and out["num_items"] == 8
    assert pair["agreement"] == pytest.approx(C.agreement_rate(a[:4], b[:4])) == 0.5
    assert pair["kappa"] == pytest.approx(C.cohen_kappa(a[:4], b[:4]))
    # over all 8 rows the three shared -1 made it 5/8, and kappa higher too
    assert C.agreement_rate(a, b) == pytest.approx(5 / 8) and C.cohen_kappa(a, b) > pair["kappa"] + 0.2
    assert pair["accuracy_a"] == pytest.approx(4 / 8) and pair["accuracy_b"] == pytest.approx(3 / 8)
    assert pair["mcnemar"]["a_only_correct"] == 2 and pair["mcnemar"]["b_only_correct"] == 1
    mat = C.agreement_matrix([a, b])
    assert mat["compared"].tolist() == [[5, 4], [4, 4]]  # the diagonal: the items each model predicted
    # over no item both predicted (no face anywhere, --no-face wrong) they are undefined: null and "-", never
    # 0.0 ("they never agree"), nor 1.0 on the diagonal of a model that predicted nothing
    out = C.compare_predictions(["a", "b"], [[-1, -1], [0, -1]], y_true=[0, 0])
    (nothing,) = out["pairs"]
    assert (nothing["num_compared"], nothing["agreement"], nothing["kappa"]) == (0, None, None)
    assert out["agreement"] == out["kappa"] == [[None, None], [None, 1.0]]
    assert strict_json.dumps(out) == json.dumps(out, allow_nan=False)  # JSON as it is, no NaN in it
    from ferhub.commands.compare import format_pairs

    row = format_pairs(out).splitlines()[2].split()
    assert row[:5] == ["a", "b", "-", "-", "0"] and row[5:7] == ["0.0000", "0.5000"]


def test_cli_compare_images_scans_folders_as_predict_does(tmp_path, monkeypatch, capsys) -> None:
    """`--images` read a folder with its own scan: macOS's hidden `._a.jpg` was read (and failed), a linked
    folder's photos were left out; it now takes what `ferhub predict` takes (``inputs.scan``), photos only."""
    import os

    from PIL import Image

    from ferhub import evaluation, predict
    from ferhub.cli import main

    photos, elsewhere = tmp_path / "photos", tmp_path / "elsewhere"
    (photos / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    for path in (photos / "a.jpg", photos / "sub" / "b.png", elsewhere / "h.jpg"):
        Image.new("RGB", (8, 8)).save(path)
    (photos / "._a.jpg").write_bytes(b"\x00\x05\x16\x07" + bytes(200))  # an AppleDouble file
    (photos / "clip.mp4").write_bytes(b"")
    os.symlink("../elsewhere", photos / "more")
    given: list[str] = []

    def compared(predictor, files, on_error=None):
        given.extend(files)
        raise evaluation.EvaluationError("stop here")

    monkeypatch.setattr(predict, "Predictor", lambda *args, **kwargs: None)
    monkeypatch.setattr(evaluation, "compare_on_images", compared)
    assert main(["compare", "m1", "m2", "--images", str(photos), str(elsewhere / "h.jpg")]) == 1
    assert given == [str(photos / p) for p in ("a.jpg", "more/h.jpg", "sub/b.png")] + [
        str(elsewhere / "h.jpg")
    ]
    assert "left out 1 video(s) in the folders" in capsys.readouterr().err


@pytest.mark.parametrize(
    "second", ["ferhub/fer-mini-xception", "fer-mini-xception", "{folder}", "{folder}/."]
)
def test_cli_compare_refuses_a_model_named_twice(tmp_path, capsys, second) -> None:
    """The same model twice gave two rows of one name that could not be told apart (and agreement 1)."""
    from ferhub.cli import main

    folder = tmp_path / "m"
    folder.mkdir()
    first = str(folder) if "{folder}" in second else "ferhub/fer-mini-xception"
    argv = ["compare", first, second.format(folder=folder), "--images", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ferhub compare: ") and "is named twice" in err and len(err.splitlines()) == 1


def test_model_key_of_names_that_are_no_folder() -> None:
    """An unknown ``~user`` raised RuntimeError (a public app's Compare told which accounts exist by its
    "Server error"); a name too long for a path raised OSError. Each is a name, and ``local=False`` looks up
    no home folder at all."""
    from ferhub.evaluation import model_key

    for name in ("~no-such-user-here/model", "someone/" + "x" * 5000, "a\x00b"):
        assert model_key(name) == name and model_key(name, local=False) == name
    assert model_key("~/model", local=False) == "~/model"
    assert model_key("fer-mini-xception") == model_key("ferhub/fer-mini-xception", local=False)
