"""labels.py owns label order: one union for datasets and models, ensembles, and results side by side."""

from __future__ import annotations

import numpy as np
import pytest

from ferhub.labels import FER7, FER8, canonical_order, union_labels


def test_canonical_order_is_fer2013_then_contempt_and_keeps_other_names_in_order() -> None:
    assert canonical_order(reversed(FER8)) == FER8
    assert canonical_order(["neutral", "happy", "contempt", "angry"]) == (
        "angry",
        "happy",
        "neutral",
        "contempt",
    )
    assert canonical_order(["b", "sad", "a"]) == ("sad", "b", "a")


def test_union_is_the_first_lists_classes_then_the_others_extras() -> None:
    assert union_labels(["a", "b"], ["b", "c"]) == ("a", "b", "c")  # moved from test_compare (common_labels)
    assert union_labels(["sad", "happy"], ["neutral", "happy", "angry"]) == (
        "happy",
        "sad",
        "angry",
        "neutral",
    )
    assert union_labels(FER7, FER8) == FER8 and union_labels(FER8, FER7) == FER8
    assert union_labels(("neutral", "happy"), ("neutral", "happy")) == ("happy", "neutral")
    assert union_labels() == ()


def test_every_caller_uses_the_one_order() -> None:
    """A dataset against a model (metrics), an ensemble's members, and two results compared side by side
    all come out in the one order."""
    from torch import nn

    from ferhub import compare
    from ferhub.config import ModelConfig
    from ferhub.metrics import LabelSpace
    from ferhub.models.ensemble import Ensemble

    data, model = ["sad", "happy"], ["neutral", "happy", "sad", "angry"]
    expected = ("happy", "sad", "angry", "neutral")
    assert tuple(LabelSpace.build(data, model).labels) == expected

    class Member(nn.Module):
        def __init__(self, labels: list[str]) -> None:
            super().__init__()
            self.config = ModelConfig(architecture="test", labels=tuple(labels))

    assert Ensemble([Member(data), Member(model)]).labels == expected
    a = {"labels": data, "confusion_matrix": [[1, 0], [0, 1]]}
    b = {"labels": model, "confusion_matrix": np.eye(4).tolist()}
    labels, _ = compare.entries_difference(a, b)
    assert tuple(labels) == expected


def test_unknown_names_in_a_dataset_are_refused_with_the_fix(tmp_path) -> None:
    from ferhub.data import open_source
    from ferhub.errors import DataSourceError

    for name in ("happiness", "Sad", "cats"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.png").write_bytes(b"")
    with pytest.raises(DataSourceError, match=r"\['cats'\] are not expression labels"):
        open_source(str(tmp_path))
