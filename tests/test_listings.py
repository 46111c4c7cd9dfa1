"""What `ferhub zoo list` and `ferhub models` say about each model, and the figures' shared class axis
(``ferhub.plots``): the names ferhub uses, an ensemble's input per member, one order in every panel."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ferhub import plots, zoo
from ferhub.cli import main
from ferhub.labels import FER7, FER8, canonical_labels


def test_zoo_list_shows_ferhubs_labels_and_keeps_upstreams_in_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    for upstream in ("fearful", "disgusted", "surprised", "Angry", "Happy"):  # upstream spellings
        assert upstream not in out, upstream
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    faceapi = next(e for e in zoo.ZOO if e.name == "faceapi-expression")
    assert rows["faceapi-expression"].endswith(", ".join(canonical_labels(faceapi.labels)))
    assert main(["zoo", "list", "--json"]) == 0
    data = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert data["faceapi-expression"]["upstream_labels"] == list(faceapi.labels)  # as in the model card
    assert data["faceapi-expression"]["labels"] == [
        "neutral",
        "happy",
        "sad",
        "angry",
        "fear",
        "disgust",
        "surprise",
    ]
    assert data[zoo.ENSEMBLE_NAME]["input"] == "per member"


def test_models_lists_the_ensembles_input_per_member(capsys: pytest.CaptureFixture) -> None:
    assert main(["models"]) == 0
    lines = {
        line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ferhub/")
    }
    ensemble = lines[f"ferhub/{zoo.ENSEMBLE_NAME}"]
    assert "per member" in ensemble and "112x112" not in ensemble and "RGB" not in ensemble
    assert "64x64 gray" in lines["ferhub/fer-mini-xception"]
    # every row's input column in line, the longest architecture name (faceapi_expression_net) too
    assert len({line.index(" classes:") for line in lines.values()}) == 1, "\n".join(lines.values())


def _entry(labels: list[str], cm: list[list[int]]) -> dict:
    return {"labels": labels, "confusion_matrix": cm}


def test_one_class_order_for_every_panel() -> None:
    faceapi = ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"]
    assert plots.class_order([faceapi, FER7]) == list(FER7)
    assert plots.class_order([["bored", *faceapi], ["contempt", "happy"]]) == [*FER8, "bored"]
    entries = {
        "a": _entry(["happy", "sad"], [[3, 1], [0, 2]]),
        "b": _entry(faceapi, np.diag([2, 1, 1, 0, 0, 0, 0]).tolist()),
    }
    order = plots.class_order([e["labels"] for e in entries.values()])
    assert plots.used_classes(entries, order) == ["happy", "sad", "neutral"]
    figs = [
        plots.entry_confusion_figure(e, labels=plots.used_classes(entries, order), autosize=True)
        for e in entries.values()
    ]
    assert [list(f.data[0].x) for f in figs] == [["happy", "sad", "neutral"]] * 2
    assert np.asarray(figs[1].data[0].z).tolist() == [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 2],
    ]  # moved with its labels
    assert figs[0].layout.width is None and figs[0].layout.autosize  # the panel's width, not a fixed one
    fixed = plots.entry_confusion_figure(entries["a"])
    assert fixed.layout.width and list(fixed.data[0].x) == ["happy", "sad"]
    diff = plots.difference_matrix_figure(entries["a"], entries["b"], labels=["happy", "sad", "neutral"])
    assert list(diff.data[0].x) == ["happy", "sad", "neutral"]


def test_averaging_notes_name_the_classes_macro_f1_adds() -> None:
    data_only = _entry(["happy", "sad"], [[3, 1], [0, 2]])
    predicts_absent = _entry(["happy", "sad", "fear"], [[2, 1, 1], [0, 1, 1], [0, 0, 0]])
    notes = plots.averaging_notes({"plain": data_only, "wild": predicts_absent})
    assert (
        notes[0]
        == "plain: mean class recall averages the 2 classes with images; macro-F1 averages the same classes"
    )
    assert notes[1] == (
        "wild: mean class recall averages the 2 classes with images; macro-F1 averages those and the 1 it "
        "predicts that have none (fear; F1 = 0 there), so it is lower"
    )
