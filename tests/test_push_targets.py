"""Where what ferhub publishes points, and what it sits beside: a pushed card names the repo and branch it
goes to (not the repo a copy came from, not ``main`` for a branch), results go up only beside the weights they
measured, a result on data that trained the model is marked and kept out of the model-index, and a trained
card says where its weights started (``base_model``, licence).

The Hub is replaced by ``HfApi`` stand-ins (``tests/hubrepo.py``, ``tests/test_hub.py``'s recorders): nothing
reaches the network.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hubrepo import COMMIT, HubListing
from test_hub import CommitRecorder, HubRecorder, trained, write_hf_cache
from test_hub import eval_results as results_document

from ferhub import eval_results, evaluation, hub
from ferhub.cli import main
from ferhub.labels import FER7


def _evaluate(crops: Path, out: Path, *options: str) -> int:
    argv = ["evaluate", "--data", str(crops), "--precropped", "--bootstrap", "5", "--no-report"]
    return main([*argv, "--out", str(out), *options])


def _online(
    monkeypatch: pytest.MonkeyPatch, *, lfs: bool = True
) -> tuple[HubRecorder, CommitRecorder, HubListing]:
    """Stand-ins for every Hub call a push makes: repo and branch creation and folder uploads (HubRecorder),
    results commits (CommitRecorder), and the branches and file listing the model check reads (large files
    listed by sha256 as the Hub's LFS listing does with ``lfs``, else by git oid only)."""
    return HubRecorder(monkeypatch), CommitRecorder(monkeypatch), HubListing(monkeypatch, lfs=lfs)


# ------------------------------------------------------------------- F1: results only beside their weights
@pytest.mark.parametrize("lfs", [True, False])
def test_evaluate_push_of_a_local_folder_refuses_a_repo_holding_other_weights(
    lfw_crops: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lfs: bool,
) -> None:
    """`evaluate --model run_b/model --push --repo-id me/m` committed run B's card and results beside run A's
    weights on the Hub (and dropped A's results there): exit 0, "pushed"."""
    a = hub.save(trained("test_tiny"), tmp_path / "run_a", card_context={"repo_id": "me/m"})
    b = hub.save(trained("test_tiny", seed=7), tmp_path / "run_b")
    _, rec, listing = _online(monkeypatch, lfs=lfs)
    listing.holds("me/m", a)
    out = tmp_path / "out"
    assert _evaluate(lfw_crops, out, "--model", str(b), "--push", "--repo-id", "me/m") == 2
    err = capsys.readouterr().err
    assert f"branch 'main' of me/m (commit {COMMIT[:7]}) holds another model.safetensors than {b}" in err
    # the Fix leads with the repo that holds this model, and says that pushing the model to me/m replaces
    # run A there (it suggested `ferhub push run_b me/m` as if that only added results)
    assert (
        "Fix: give the --repo-id of the repo that holds this model; or evaluate without --push, then" in err
    )
    assert (
        f"new repo or branch (`ferhub push {b} ORG/NAME`, or `ferhub push {b} me/m --revision NEW-BRANCH`)"
        in err
    )
    assert f"`ferhub push {b} me/m` would replace the model on branch 'main' of me/m with this one" in err
    assert rec.calls == [] and not (b / "eval_results.json").exists()  # refused before any work
    # a repo that is not there, a branch that is not there: said too, before any work; a push there
    # replaces nothing
    assert _evaluate(lfw_crops, out, "--model", str(b), "--push", "--repo-id", "me/none") == 2
    err = capsys.readouterr().err
    assert "Hub repo me/none was not found (it does not exist yet" in err
    assert f"`ferhub push {b} me/none` uploads the model with its results" in err and "replace" not in err
    assert _evaluate(lfw_crops, out, "--model", str(a), "--push", "--revision", "dev") == 2
    err = capsys.readouterr().err
    assert "revision 'dev' of me/m is no branch of the repo" in err and "--revision dev" in err
    # the repo holding these very weights takes their results, on top of the commit that holds them
    assert _evaluate(lfw_crops, out, "--model", str(a), "--push") == 0, capsys.readouterr().err
    (call,) = rec.calls
    assert call["repo_id"] == "me/m" and call["parent_commit"] == COMMIT


def test_evaluate_push_checks_the_hub_again_when_it_pushes(
    lfw_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Other weights pushed to the repo while the local model was being evaluated: refused at the push (exit
    2), the results kept in the folder."""
    a = hub.save(trained("test_tiny"), tmp_path / "a", card_context={"repo_id": "me/m"})
    other = hub.save(trained("test_tiny", seed=3), tmp_path / "other")
    _, rec, listing = _online(monkeypatch)
    listing.holds("me/m", a)
    evaluate = evaluation.evaluate

    def evaluate_while_the_hub_changes(*args: Any, **kwargs: Any) -> Any:
        runs = evaluate(*args, **kwargs)
        listing.holds("me/m", other, commit="d" * 40)
        return runs

    monkeypatch.setattr(evaluation, "evaluate", evaluate_while_the_hub_changes)
    assert _evaluate(lfw_crops, tmp_path / "out", "--model", str(a), "--push") == 2
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("ferhub evaluate:")]
    assert (
        "not pushed to me/m: branch 'main' of me/m (commit ddddddd) holds another model.safetensors" in line
    )
    assert f"`ferhub push {a} me/m` would replace the model on branch 'main' of me/m" in line
    assert f"`ferhub push {a} ORG/NAME`" in line and rec.calls == []
    assert "crops:default:all" in hub.read_eval_results(a)["results"]  # the results are kept


def test_evaluate_push_of_a_bundled_model_to_another_repo_is_checked_too(
    lfw_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, rec, listing = _online(monkeypatch)
    listing.holds("me/m", hub.save(trained("test_tiny"), tmp_path / "a"))
    out = tmp_path / "out"
    assert _evaluate(lfw_crops, out, "--model", "fer-mini-xception", "--push", "--repo-id", "me/m") == 2
    err = capsys.readouterr().err
    assert "holds another config.json than" in err
    assert f"`ferhub push {out}/fer-mini-xception me/m` would replace the model" in err
    assert rec.calls == []


def test_a_bundled_model_is_never_told_to_push_to_ferhubs_own_repo(
    lfw_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evaluate --model fer-mini-xception --push` (no --repo-id: the bundled card names
    ferhub/fer-mini-xception) ended with `Fix: ... ferhub push eval_out/fer-mini-xception
    ferhub/fer-mini-xception`, a repo the user cannot write to."""
    from ferhub.evaluation import push_results

    _, rec, listing = _online(monkeypatch)
    listing.holds("ferhub/fer-mini-xception", hub.save(trained("test_tiny"), tmp_path / "a"))
    out = tmp_path / "out"
    assert _evaluate(lfw_crops, out, "--model", "fer-mini-xception", "--push") == 2
    err = capsys.readouterr().err
    assert "Fix: give --repo-id ORG/NAME, a repo of yours, to push the results with the model" in err
    assert "ferhub push" not in err and rec.calls == []
    # the push itself (the Hub changed after the check, or the Python API) says the same
    copy = hub.save(trained("test_tiny", seed=5), tmp_path / "copy", eval_results=results_document())
    with pytest.raises(ValueError, match="Fix: push it to a repo of yours") as raised:
        push_results(copy, "ferhub/fer-mini-xception")
    assert "ferhub/fer-mini-xception`" not in str(raised.value)  # no command that pushes there


def test_evaluate_push_does_not_hang_on_a_hub_that_never_answers(
    lfw_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Hub that accepts connections but never answers: the check before evaluating waited forever
    (huggingface_hub's requests have no timeout), with nothing evaluated. Bounded, it is said; the evaluation
    goes on and is kept, and the push, whose own check gets no answer either, exits 3."""
    import threading

    import huggingface_hub

    from ferhub.hub import _remote

    a = hub.save(trained("test_tiny"), tmp_path / "a", card_context={"repo_id": "me/m"})
    _, rec, listing = _online(monkeypatch)
    listing.holds("me/m", a)
    released = threading.Event()

    def never_answers(api: Any, repo_id: str, **kwargs: Any) -> Any:
        released.wait(5)  # the answer that never comes (5 s: a stuck test ends)
        raise ConnectionError("the test stopped waiting")

    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_refs", never_answers)
    monkeypatch.setattr(_remote, "HUB_ANSWER_TIMEOUT_S", 0.2, raising=False)
    try:
        code = _evaluate(lfw_crops, tmp_path / "out", "--model", str(a), "--push")
    finally:
        released.set()
    err = capsys.readouterr().err
    no_answer = "accepted the connection but did not answer within 0.2 s (listing the branches of me/m)"
    assert f"note: where --push would put the results of {a} was not checked before evaluating" in err
    assert no_answer in err.split("note:")[1].splitlines()[0]
    assert code == 3 and rec.calls == []
    (line,) = [x for x in err.splitlines() if "not pushed to me/m" in x]
    assert no_answer in line and "Fix: try again later" in line
    assert "crops:default:all" in hub.read_eval_results(a)["results"]  # the evaluation is kept


def test_the_weights_are_hashed_in_chunks_once_per_push(
    lfw_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check of the Hub's weights read all of model.safetensors into memory (`read_bytes`), in the check
    before evaluating and again at the push."""
    from ferhub.hub import _push

    a = hub.save(trained("test_tiny"), tmp_path / "a", card_context={"repo_id": "me/m"})
    read_whole: list[
        str
    ] = []  # the files the push's checks read whole (others, e.g. the ONNX cache key, may)
    read_bytes = Path.read_bytes

    def recorded(path: Path) -> bytes:
        if Path(sys._getframe(1).f_code.co_filename).name == "_push.py":
            read_whole.append(path.name)
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", recorded)
    for lfs in (True, False):  # the sha256 of an LFS listing, the git oid of a plain one
        _, rec, listing = _online(monkeypatch, lfs=lfs)
        listing.holds("me/m", a)
        read_whole.clear()
        _push._file_digest.cache_clear()
        assert _evaluate(lfw_crops, tmp_path / "out", "--model", str(a), "--push") == 0, capsys.readouterr()
        assert "model.safetensors" not in read_whole and len(rec.calls) == 1
        # config.json and model.safetensors, each read once for the check before and the one at the push
        info = _push._file_digest.cache_info()
        assert (info.misses, info.hits) == (2, 2), info


# ------------------------------------------------------------------ F2, F3: the card names where it goes
def test_a_copy_pushed_to_another_repo_names_that_repo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ferhub push run/model myorg/model-b` of a model trained with `--push-to-hub me/model-a` uploaded a
    card whose title, model-index and usage example were model-a's."""
    folder = hub.save(
        trained("test_tiny"),
        tmp_path / "model",
        card_context={"repo_id": "me/model-a", "model_name": "model-a"},
    )
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    rec = HubRecorder(monkeypatch)
    hub.push(folder, "myorg/model-b")
    card, context = rec.cards[-1]
    assert context["repo_id"] == "myorg/model-b" and context["model_name"] == "model-b"
    assert 'ferhub.load("myorg/model-b")' in card and "--model myorg/model-b" in card
    assert "model-a" not in card and card.count("# model-b") == 1
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # the folder is left as it is
    # a name of its own (not the old repo's) stays
    named = hub.save(
        trained("test_tiny"), tmp_path / "n", card_context={"repo_id": "me/a", "model_name": "FER"}
    )
    hub.push(named, "myorg/b")
    assert rec.cards[-1][1]["model_name"] == "FER" and 'ferhub.load("myorg/b")' in rec.cards[-1][0]
    # a bundled zoo model's card names the bundled model, which loads anywhere: it goes up as it is
    from ferhub.hub._layout import bundled_folder

    bundled = bundled_folder("fer-mini-xception")
    hub.push(bundled, "myorg/fer-mini-xception")
    assert rec.calls[-1][3]["folder_path"] == str(bundled)
    assert 'ferhub.load("ferhub/fer-mini-xception")' in rec.cards[-1][0]


def test_a_card_pushed_to_a_branch_loads_that_branch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ferhub push FOLDER me/m --revision experiment`: the card said `ferhub.Predictor("me/m")`, which loads
    main's (other) weights."""
    folder = hub.save(trained("test_tiny"), tmp_path / "m", card_context={"repo_id": "me/m"})
    rec = HubRecorder(monkeypatch)
    hub.push(folder, "me/m", revision="experiment")
    card, context = rec.cards[-1]
    assert context["repo_id"] == "me/m" and context["revision"] == "experiment"
    assert 'ferhub.Predictor("me/m@experiment")' in card and "--model me/m@experiment" in card
    assert 'Predictor("me/m")' not in card
    hub.push(folder, "me/m", revision="main")  # main is the default branch: its card names the id alone
    assert rec.calls[-1][3]["folder_path"] == str(folder) and 'ferhub.load("me/m")' in rec.cards[-1][0]
    on_branch = hub.save(
        trained("test_tiny"), tmp_path / "b", card_context={"repo_id": "me/m", "revision": "experiment"}
    )
    assert 'ferhub.load("me/m@experiment")' in (on_branch / "README.md").read_text()
    hub.push(on_branch, "me/m")  # the same folder pushed to main: the branch is dropped from its card
    card, context = rec.cards[-1]
    assert "revision" not in context and 'ferhub.load("me/m")' in card and "@experiment" not in card


def test_evaluate_push_of_a_folder_trained_onto_a_branch_goes_to_that_branch(
    lfw_crops: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model trained with `--push-to-hub me/m --revision exp` is on branch exp: its results go there (main
    may hold other weights)."""
    folder = hub.save(
        trained("test_tiny"), tmp_path / "m", card_context={"repo_id": "me/m", "revision": "exp"}
    )
    _, rec, listing = _online(monkeypatch)
    listing.holds("me/m", folder, branches=("exp",))
    assert _evaluate(lfw_crops, tmp_path / "out", "--model", str(folder), "--push") == 0, (
        capsys.readouterr().err
    )
    (call,) = rec.calls
    assert call["revision"] == "exp" and call["parent_commit"] == COMMIT
    assert "pushed" in capsys.readouterr().err
    # --repo-id naming the repo the card names: still that branch (the README's "else the branch its card
    # names"; it went to main)
    assert _evaluate(lfw_crops, tmp_path / "out", "--model", str(folder), "--push", "--repo-id", "me/m") == 0
    assert rec.calls[-1]["revision"] == "exp", capsys.readouterr().err
    # another repo: its main branch (the card's branch is of its own repo)
    listing.holds("me/other", folder)
    assert (
        _evaluate(lfw_crops, tmp_path / "out", "--model", str(folder), "--push", "--repo-id", "me/other") == 0
    )
    assert rec.calls[-1]["repo_id"] == "me/other" and rec.calls[-1]["revision"] is None


# ------------------------------------------------------------- F4: results on data that trained the model
TRAINING_ENTRY = {  # as `ferhub train --data fer2013.csv --test-split test` wrote it (no seen_data yet)
    "dataset": {"id": "fer2013", "config": "default", "split": "test", "name": "fer2013"},
    "source": "training",
    "protocol": {"selection": "inner", "selected_on": "split val", "reported_on": "split test"},
    "command": "ferhub train --recipe seed002_kaskun --data fer2013.csv --test-split test",
}


@pytest.mark.parametrize(
    ("entry", "dataset", "expected"),
    [
        (TRAINING_ENTRY, {"id": "fer2013", "split": "train"}, "split train of fer2013 trained this model"),
        (TRAINING_ENTRY, {"id": "fer2013", "split": "val"}, "split val of fer2013 chose its released epoch"),
        (TRAINING_ENTRY, {"id": "fer2013"}, "all of fer2013 was evaluated, and its split train trained"),
        (TRAINING_ENTRY, {"id": "fer2013", "split": "test"}, None),  # the split training held out
        (TRAINING_ENTRY, {"id": "rafdb", "split": "train"}, None),
        (TRAINING_ENTRY, {"id": "fer2013", "config": "other", "split": "train"}, None),
        (
            {**TRAINING_ENTRY, "command": "ferhub train --data d.csv --split Training"},
            {"id": "fer2013", "split": "Training"},
            "split Training of fer2013 trained",
        ),
        # with --val-data the entry is of the validation data, which trained nothing
        (
            {**TRAINING_ENTRY, "command": "ferhub train --data a --val-data fer2013.csv"},
            {"id": "fer2013", "split": "train"},
            None,
        ),
        (
            {**TRAINING_ENTRY, "protocol": {"seen_data": [{"id": "faces", "split": "all", "role": "train"}]}},
            {"id": "faces", "split": "test"},
            "all of faces trained this model",
        ),
        # the number of images recorded: said where it differs from the data evaluated (14 images)
        (
            {
                **TRAINING_ENTRY,
                "protocol": {"seen_data": [{"id": "faces", "role": "train", "num_images": 9}]},
            },
            {"id": "faces"},
            "all of faces (9 images then, 14 now) trained this model",
        ),
        (
            {
                **TRAINING_ENTRY,
                "protocol": {"seen_data": [{"id": "faces", "role": "train", "num_images": 14}]},
            },
            {"id": "faces"},
            "all of faces trained this model",
        ),
    ],
)
def test_training_overlap_reads_the_training_entry(
    entry: dict[str, Any], dataset: dict[str, Any], expected: str | None
) -> None:
    found = evaluation.training_overlap({"results": {"k": entry}}, dataset, 14)
    assert found is None if expected is None else found.startswith(expected), found
    # the same record kept outside the results (training.seen_data) says the same
    recorded = eval_results.seen_data({"results": {"k": entry}})
    document = {"training": {"seen_data": recorded}, "results": {}}
    assert evaluation.training_overlap(document, dataset, 14) == found


def test_evaluate_on_the_training_data_is_marked_and_left_out_of_the_model_index(
    lfw_crops: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`ferhub evaluate --data labelled_folders/` of the folder the model was trained on put training-set
    accuracy in the card and its model-index, with no word of it."""
    from huggingface_hub import ModelCard

    summary = {"metrics": {"accuracy": 0.5}, "labels": list(FER7)}
    trained_on = eval_results.make_entry(
        summary, dataset={"id": "crops", "split": "heldout"}, source="training", num_images=3
    )
    trained_on["protocol"] = {
        "seen_data": [{"id": "crops", "config": "default", "split": "all", "role": "train"}]
    }
    folder = hub.save(trained("test_tiny"), tmp_path / "m", eval_results=eval_results.merge(None, {
        "crops:default:heldout": trained_on}))  # fmt: skip
    assert _evaluate(lfw_crops, tmp_path / "out", "--model", str(folder)) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and (
        "crops:default:all is no held-out result: all of crops trained this model, as its training records "
        "data of this name" in err
    )
    entry = hub.read_eval_results(folder)["results"]["crops:default:all"]
    assert entry["not_held_out"] == "all of crops trained this model"
    card = (folder / "README.md").read_text()
    assert "Not a held-out result: all of crops trained this model" in card
    # the Evaluation section's first lines say the model-index leaves it out (they said every number is in it)
    assert "in this card's `model-index`, except those of the results noted as not\nheld out" in card
    splits = {r.dataset_split for r in ModelCard(card).data.eval_results}
    assert splits == {"heldout"}  # the training's held-out result only
    other = tmp_path / "other"
    lfw_crops.rename(other)  # the same images under another name: data the model's records never saw
    assert _evaluate(other, tmp_path / "out", "--model", str(folder)) == 0
    assert "warning:" not in capsys.readouterr().err
    assert "not_held_out" not in hub.read_eval_results(folder)["results"]["other:default:all"]


def _split_folders(crops: Path, root: Path) -> Path:
    """``root/train`` and ``root/test``, each a copy of the class folders ``crops``."""
    import shutil

    for split in ("train", "test"):
        shutil.copytree(crops, root / split)
    return root


def _model_trained_on(folder: Path, written_by: str) -> Path:
    """A model whose training reported on split test of ``faces`` after training on its split train, as
    ``written_by`` records it: ``"train"`` (``training.seen_data``, as ferhub train writes it now),
    ``"entry"`` (only in the training entry's protocol, as 2f76e64 wrote it) or ``"command"`` (only its
    command and protocol words, as earlier versions wrote it)."""
    summary = {"metrics": {"accuracy": 0.5}, "labels": list(FER7)}
    entry = eval_results.make_entry(
        summary, dataset={"id": "faces", "split": "test"}, source="training", num_images=14,
        command="ferhub train --data faces --test-split test",
    )  # fmt: skip
    seen = [{"id": "faces", "config": "default", "split": "train", "role": "train", "num_images": 14}]
    if written_by != "command":
        entry["protocol"] = {"seen_data": seen}
    document = eval_results.merge(None, {"faces:default:test": entry})
    if written_by == "train":
        document = eval_results.merge(document, {}, seen=seen)
    return hub.save(trained("test_tiny"), folder, eval_results=document)


@pytest.mark.parametrize("written_by", ["train", "entry", "command"])
def test_what_trained_the_model_outlives_the_result_training_recorded(
    lfw_crops: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], written_by: str
) -> None:
    """`evaluate --split test` (held out) replaced training's entry, and with it the only record of what
    trained the model: `evaluate --split train` then went into the model-index unmarked, and a result marked
    before lost its mark when evaluated again."""
    from huggingface_hub import ModelCard

    faces = _split_folders(lfw_crops, tmp_path / "faces")
    folder = _model_trained_on(tmp_path / "m", written_by)
    out = tmp_path / "out"
    assert _evaluate(faces, out, "--model", str(folder), "--split", "train") == 0
    assert "warning:" in capsys.readouterr().err
    assert _evaluate(faces, out, "--model", str(folder), "--split", "test") == 0  # held out: replaces
    err = capsys.readouterr().err
    assert "warning:" not in err and "is replaced by this evaluation's" in err
    assert all(e.get("source") != "training" for e in hub.read_eval_results(folder)["results"].values())
    # evaluated again on the training split: still marked (it lost the mark)
    assert _evaluate(faces, out, "--model", str(folder), "--split", "train") == 0
    assert "warning:" in capsys.readouterr().err
    document = hub.read_eval_results(folder)
    assert (
        document["results"]["faces:default:train"]["not_held_out"]
        == "split train of faces trained this model"
    )
    assert document["training"]["seen_data"][0]["split"] == "train"  # kept outside the results
    card = (folder / "README.md").read_text()
    assert {r.dataset_split for r in ModelCard(card).data.eval_results} == {"test"}


def test_a_result_marked_not_held_out_keeps_its_mark_without_its_record(
    lfw_crops: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A repo as 2f76e64 left it after `evaluate --split test` replaced training's entry: the result marked
    `not_held_out` is all that says the data trained the model. Evaluated again on the same data, it kept no
    mark and went into the model-index."""
    summary = {"metrics": {"accuracy": 0.5}, "labels": list(FER7)}
    marked = eval_results.make_entry(summary, dataset={"id": "crops"}, num_images=14)
    marked["not_held_out"] = "all of crops trained this model"
    folder = hub.save(trained("test_tiny"), tmp_path / "m",
                      eval_results=eval_results.merge(None, {"crops:default:all": marked}))  # fmt: skip
    assert _evaluate(lfw_crops, tmp_path / "out", "--model", str(folder)) == 0
    assert "warning:" in capsys.readouterr().err
    entry = hub.read_eval_results(folder)["results"]["crops:default:all"]
    assert entry["not_held_out"] == "all of crops trained this model"


@pytest.mark.parametrize(("then", "certain"), [(14, True), (84, False)])
def test_data_of_the_training_datas_name_with_other_images_is_said_to_be_told_by_its_name(
    lfw_crops: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], then: int, certain: bool
) -> None:
    """Held-out images in `lab2/faces`, trained on `lab1/faces`: "all of faces trained this model", stated as
    a fact, for a folder that only shares the name. The record's image count tells it when it differs, and
    the warning says that data is told by its name and what to do."""
    summary = {"metrics": {"accuracy": 0.5}, "labels": list(FER7)}
    trained_on = eval_results.make_entry(
        summary, dataset={"id": "crops", "split": "heldout"}, source="training", num_images=3
    )
    trained_on["protocol"] = {
        "seen_data": [
            {"id": "crops", "config": "default", "split": "all", "role": "train", "num_images": then}
        ]
    }
    folder = hub.save(trained("test_tiny"), tmp_path / "m", eval_results=eval_results.merge(None, {
        "crops:default:heldout": trained_on}))  # fmt: skip
    assert _evaluate(lfw_crops, tmp_path / "out", "--model", str(folder)) == 0
    err = capsys.readouterr().err
    assert "give their folder or file a name of its own and evaluate again" in err
    entry = hub.read_eval_results(folder)["results"]["crops:default:all"]
    if certain:
        assert entry["not_held_out"] == "all of crops trained this model"
        assert entry["notes"][0].startswith("Not a held-out result: all of crops trained this model")
    else:
        assert entry["not_held_out"] == "all of crops (84 images then, 14 now) trained this model"
        assert entry["notes"][0].startswith(
            "Maybe not a held-out result: all of crops (84 images then, 14 now) trained this model, as its "
            "training result records data of this name. If these are other images, they are held out"
        )


# --------------------------------------------------------------- F10: where a trained model's weights began
def test_a_fine_tuned_model_names_its_base_model_and_keeps_its_licence(
    tmp_path: Path, isolated_hf: Path
) -> None:
    from ferhub.hub._layout import bundled_folder
    from ferhub.training import load_recipe
    from ferhub.training.run import _start_context

    cfg = load_recipe("seed002_kaskun")[0]
    start = _start_context(dataclasses.replace(cfg, init=str(bundled_folder("fer-mini-xception"))))
    assert start["base_model"] == "ferhub/fer-mini-xception" and start["license"] == "mit"
    assert (
        start["license_text"].startswith("MIT License")
        and "`ferhub/fer-mini-xception`" in start["provenance"]
    )
    base = hub.save(trained("test_tiny"), tmp_path / "base", card_context={
        "repo_id": "me/base", "revision": "v2", "license": "apache-2.0"})  # fmt: skip
    for init in (base, base / "model.safetensors"):
        start = _start_context(dataclasses.replace(cfg, init=str(init)))
        assert start["base_model"] == "me/base" and start["license"] == "apache-2.0"
        assert "`me/base@v2`" in start["provenance"] and "apache-2.0" in start["provenance"]
    # a Hub download names its repo by where it sits in the cache
    cached = hub.save(trained("test_tiny"), tmp_path / "c")
    snapshot = write_hf_cache(isolated_hf / "hub", "org/cached", cached, {"main": ""})
    assert _start_context(dataclasses.replace(cfg, init=str(snapshot)))["base_model"] == "org/cached"
    # a local checkpoint of no model repo: no Hub id is made up
    plain = hub.save(trained("test_tiny"), tmp_path / "plain")
    (tmp_path / "w.safetensors").write_bytes((plain / "model.safetensors").read_bytes())
    start = _start_context(dataclasses.replace(cfg, init=str(tmp_path / "w.safetensors")))
    assert "base_model" not in start and "license" not in start and "no Hub id" in start["provenance"]


def test_pretrained_backbones_are_described_not_given_a_hub_id() -> None:
    from ferhub.training import load_recipe
    from ferhub.training.run import _start_context

    cfg = load_recipe("seed004_chen")[0]  # resnet18 from torchvision's ImageNet weights
    start = _start_context(cfg)
    assert "base_model" not in start and "ImageNet" in start["provenance"]
    nasnet = dataclasses.replace(cfg, model="nasnet_a_large")
    assert _start_context(nasnet)["base_model"] == "timm/nasnetalarge.tf_in1k"  # timm's weights: a Hub repo
    assert _start_context(dataclasses.replace(cfg, model_args={})) == {}  # from scratch: nothing to say


def test_training_with_init_writes_base_model_and_licence_into_the_card(tmp_path: Path) -> None:
    from huggingface_hub import ModelCard
    from tasks import quick_train_args, transform_task

    from ferhub.commands.train import get_args_parser
    from ferhub.commands.train import main as train_main
    from ferhub.data import write_class_folders
    from ferhub.models import create_model

    images, targets, labels = transform_task(6, size=24, num_classes=4, seed=0)
    data = write_class_folders(images, targets, labels, tmp_path / "faces")
    base = hub.save(create_model("test_tiny", labels), tmp_path / "base",
                    card_context={"repo_id": "me/base", "license": "mit"})  # fmt: skip
    out = tmp_path / "run"
    argv = quick_train_args(data, out, "--epochs", "1", "--init", str(base))
    train_main(get_args_parser().parse_args(argv))
    context = json.loads((out / "model" / "card.json").read_text())
    assert context["base_model"] == "me/base" and context["license"] == "mit"
    meta = ModelCard.load(out / "model" / "README.md").data
    assert meta.base_model == "me/base" and meta.license == "mit"
    (entry,) = hub.read_eval_results(out / "model")["results"].values()
    seen = [{"id": "faces", "config": "default", "split": "all", "role": "train", "num_images": 24}]
    assert entry["protocol"]["seen_data"] == seen
    assert hub.read_eval_results(out / "model")["training"]["seen_data"] == seen  # outlives the entry
    # so evaluating the model on the same folder is known to be no held-out result
    assert evaluation.training_overlap(hub.read_eval_results(out / "model"), {"id": "faces"}) == (
        "all of faces trained this model"
    )
