"""eval_results.json, its one owner: entries, merging, atomic writes, and a writer killed with SIGKILL."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hubrepo import HubListing

from ferhub import eval_results, fileio, hub
from ferhub.errors import EvalResultsError, FerhubError
from ferhub.labels import FER7
from ferhub.models import create_model


def summary(accuracy: float = 0.5) -> dict[str, Any]:
    k = len(FER7)
    cm = [[(6 if i == j else 1) for j in range(k)] for i in range(k)]
    return {
        "metrics": {"accuracy": accuracy, "mean_class_recall": 0.5, "macro_f1": 0.5},
        "labels": list(FER7),
        "confusion_matrix": cm,
        "per_class": {lab: {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 12} for lab in FER7},
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return hub.save(create_model("test_tiny", FER7), tmp_path / "repo", card_context={"model_name": "tiny"})


def test_make_entry_fills_how_it_was_measured() -> None:
    entry = eval_results.make_entry(
        summary(), dataset={"id": "fer2013", "split": "test"}, tta="flip", command="ferhub evaluate x"
    )
    assert entry["dataset"] == {"id": "fer2013", "config": "default", "split": "test", "name": "fer2013"}
    assert "model" not in entry and "source" not in entry
    assert entry["tta"] is True and entry["tta_method"] == "flip"
    assert entry["num_images"] == 7 * 12  # the confusion matrix's total
    assert (
        entry["command"] == "ferhub evaluate x"
        and entry["ferhub_version"]
        and entry["date"].endswith("+00:00")
    )
    assert eval_results.key_of(entry) == "fer2013:default:test"
    plain = eval_results.make_entry(
        summary(), dataset={"id": "d"}, model={"id": "org/m", "revision": None}, source="training"
    )
    assert plain["tta"] is False and plain["tta_method"] is None and plain["source"] == "training"
    assert (
        plain["model"] == {"id": "org/m", "revision": None} and eval_results.key_of(plain) == "d:default:all"
    )
    with pytest.raises(TypeError, match="method name or None"):
        eval_results.make_entry(summary(), dataset={"id": "d"}, tta=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty 'id'"):
        eval_results.make_entry(summary(), dataset={"id": ""})


def test_merge_keeps_other_keys_and_a_new_document_validates() -> None:
    a = eval_results.make_entry(summary(0.5), dataset={"id": "a"})
    b = eval_results.make_entry(summary(0.6), dataset={"id": "b"})
    doc = eval_results.merge(None, {"a:default:all": a})
    assert doc["format_version"] == eval_results.FORMAT_VERSION
    merged = eval_results.merge(doc, {"b:default:all": b, "a:default:all": b})
    assert set(merged["results"]) == {"a:default:all", "b:default:all"}
    assert merged["results"]["a:default:all"]["metrics"]["accuracy"] == 0.6
    assert eval_results.validate(merged, "x") == merged


def test_write_renders_the_card_and_reads_back(repo: Path) -> None:
    entry = eval_results.make_entry(summary(0.625), dataset={"id": "fer2013", "split": "test"})
    path = eval_results.write(repo, {eval_results.key_of(entry): entry})
    assert path == repo / eval_results.FILE_NAME
    assert eval_results.read(repo)["results"]["fer2013:default:test"]["metrics"]["accuracy"] == 0.625
    assert hub.card_is_current(repo) and "62.50%" in (repo / "README.md").read_text()


def test_errors_share_one_base() -> None:
    assert issubclass(EvalResultsError, FerhubError) and issubclass(EvalResultsError, ValueError)


# ------------------------------------------------------------------------------------------ atomic writes
def test_atomic_write_keeps_mode_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    fileio.atomic_write_text(target, "one")
    assert target.read_text() == "one" and target.stat().st_mode & 0o777 == 0o644
    target.chmod(0o600)
    fileio.atomic_write_text(target, "two")
    assert target.read_text() == "two" and target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(RuntimeError, match="boom"), fileio.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "two" and sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_only_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "eval_results.json"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = tmp_path / f".eval_results.json.{int(dead.stdout)}-abc.tmp"
    live = tmp_path / f".eval_results.json.{os.getppid()}-def.tmp"  # the test runner's parent still runs
    older = tmp_path / ".eval_results.json.x1y2z3.tmp"  # the naming before the pid was part of it
    other = tmp_path / ".README.md.999999-abc.tmp"
    for p in (stale, live, older, other):
        p.write_text("x")
    assert fileio.remove_stale_temps(target) == sorted([stale, older])
    assert live.exists() and other.exists()


# -------------------------------------------------------------------------------- a writer killed with -9
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from ferhub import eval_results

    folder, when = sys.argv[1], sys.argv[2]
    real_replace = os.replace

    def replace(src, dst):
        if when == "before-rename" and str(dst).endswith("eval_results.json"):
            os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)
        if when == "between-renames" and str(dst).endswith("eval_results.json"):
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace
    entry = {"dataset": {"id": "killed"}, "metrics": {"accuracy": 0.875}, "tta": False}
    eval_results.write(folder, {"killed:default:all": entry})
    """
)


def run_killed(folder: Path, when: str) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLER, str(folder), when], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@pytest.mark.slow
def test_sigkill_before_the_rename_leaves_the_old_pair_and_the_next_write_cleans_up(repo: Path) -> None:
    card_before = (repo / "README.md").read_text()
    run_killed(repo, "before-rename")
    assert not (repo / "eval_results.json").exists()  # the old state: no results, the old card
    assert (repo / "README.md").read_text() == card_before and hub.card_is_current(repo)
    leftovers = list(repo.glob(".eval_results.json.*.tmp"))
    assert len(leftovers) == 1 and "killed" in leftovers[0].read_text()

    entry = eval_results.make_entry(summary(0.5), dataset={"id": "next"})
    eval_results.write(repo, {"next:default:all": entry})
    assert not list(repo.glob(".*.tmp"))
    assert set(eval_results.read(repo)["results"]) == {"next:default:all"} and hub.card_is_current(repo)


@pytest.fixture(scope="module")
def killed_between(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repo whose writer was killed after renaming the new results into place, before the card."""
    folder = tmp_path_factory.mktemp("killed") / "repo"
    hub.save(create_model("test_tiny", FER7), folder, card_context={"model_name": "tiny"})
    run_killed(folder, "between-renames")
    return folder


@pytest.mark.slow
def test_sigkill_between_the_renames_is_repaired_by_the_next_write(
    killed_between: Path, tmp_path: Path
) -> None:
    repo = Path(shutil.copytree(killed_between, tmp_path / "repo"))
    assert "killed:default:all" in eval_results.read(repo)["results"]
    assert not hub.card_is_current(repo)  # the one window left: results renamed, card not yet
    entry = eval_results.make_entry(summary(0.5), dataset={"id": "next"})
    eval_results.write(repo, {"next:default:all": entry})
    assert hub.card_is_current(repo) and "87.50%" in (repo / "README.md").read_text()


@pytest.mark.slow
def test_sigkill_between_the_renames_is_repaired_before_a_push(
    killed_between: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    repo = Path(shutil.copytree(killed_between, tmp_path / "repo"))
    assert not hub.card_is_current(repo)
    uploaded: dict[str, str] = {}

    def create_commit(api: Any, **kw: Any) -> Any:
        uploaded.update({op.path_in_repo: Path(op.path_or_fileobj).read_text() for op in kw["operations"]})
        return huggingface_hub.CommitInfo(
            commit_url="https://huggingface.co/org/m/commit/1",
            commit_message="",
            commit_description="",
            oid="1",
        )

    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub._remote, "hub_unreachable", lambda endpoint: None)
    HubListing(monkeypatch).holds("org/m", repo)  # the Hub holds these weights: their results go beside them
    from ferhub.evaluation import push_results

    push_results(repo, "org/m")
    assert (
        "87.50%" in uploaded["README.md"]
        and json.loads(uploaded["eval_results.json"])["results"]["killed:default:all"]
    )


def test_a_result_replaced_by_one_on_other_data_is_said_on_stderr(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two datasets that share a key (both folders named alike) replaced each other's results silently."""
    first = eval_results.make_entry(summary(), dataset={"id": "faces"}, num_images=84)
    eval_results.write(repo, {"faces:default:all": first})
    again = eval_results.make_entry(summary(0.6), dataset={"id": "faces"}, num_images=84)
    eval_results.write(repo, {"faces:default:all": again})  # the same data measured again: nothing to say
    assert capsys.readouterr().err == ""
    other = eval_results.make_entry(summary(0.7), dataset={"id": "faces"}, num_images=5)
    eval_results.write(repo, {"faces:default:all": other})
    err = capsys.readouterr().err
    assert err == "eval_results: faces:default:all replaced by a result on other data (84 -> 5 images)\n"
    assert eval_results.read(repo)["results"]["faces:default:all"]["num_images"] == 5
    # another dataset revision, where both entries record one, is other data too
    old = eval_results.make_entry(summary(), dataset={"id": "org/faces", "revision": "a1"}, num_images=5)
    new = eval_results.make_entry(summary(), dataset={"id": "org/faces", "revision": "b2"}, num_images=5)
    eval_results.merge(eval_results.merge(None, {"k": old}), {"k": new})
    assert (
        "k replaced by a result on other data (5 -> 5 images, revision a1 -> b2)" in capsys.readouterr().err
    )


def test_a_result_replaced_by_one_measured_otherwise_is_said_on_stderr(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`evaluate --split test --tta` replaced the result training had recorded on that split (without TTA,
    with its protocol) silently: the key holds one result, so the replacement is said."""
    test = {"id": "fer2013", "split": "test"}
    trained = eval_results.make_entry(summary(), dataset=test, source="training")
    trained["protocol"] = {"selected_on": "split val", "reported_on": "split test"}
    eval_results.write(repo, {"fer2013:default:test": trained})
    capsys.readouterr()
    flip = eval_results.make_entry(summary(0.6), dataset=test, tta="flip")
    eval_results.write(repo, {"fer2013:default:test": flip})
    assert capsys.readouterr().err == (
        "eval_results: fer2013:default:test: the result with no test-time augmentation is replaced by one "
        "with test-time augmentation (flip); the result `ferhub train` recorded, with its protocol, is "
        "replaced by this evaluation's (a key holds one result per dataset, config and split)\n"
    )
    eval_results.write(repo, {"fer2013:default:test": flip})  # the same measurement again: nothing to say
    plain = eval_results.make_entry(summary(0.6), dataset=test)
    eval_results.write(repo, {"fer2013:default:test": plain})
    err = capsys.readouterr().err
    assert err == (
        "eval_results: fer2013:default:test: the result with test-time augmentation (flip) is replaced by "
        "one with no test-time augmentation (a key holds one result per dataset, config and split)\n"
    )


def test_a_result_on_training_data_stays_out_of_the_model_index(repo: Path) -> None:
    """An evaluation on data that trained or chose the model (``not_held_out``) is no measurement of the model
    on new faces: the card shows it with its note, the model-index leaves it out."""
    from huggingface_hub import ModelCard

    held_out = eval_results.make_entry(summary(), dataset={"id": "fer2013", "split": "test"})
    seen = eval_results.make_entry(summary(0.9), dataset={"id": "fer2013", "split": "train"})
    seen["not_held_out"] = "split train of fer2013 trained this model"
    eval_results.write(repo, {"fer2013:default:test": held_out, "fer2013:default:train": seen})
    card = (repo / "README.md").read_text()
    assert {r.dataset_split for r in ModelCard(card).data.eval_results} == {"test"}
    assert "fer2013 (default, split train)" in card  # still shown in the card's Evaluation section
    bad = {**seen, "not_held_out": True}
    with pytest.raises(EvalResultsError, match=r"\.not_held_out must be a string"):
        eval_results.write(repo, {"fer2013:default:train": bad})


def test_what_trained_the_model_is_kept_whatever_a_write_replaces(repo: Path) -> None:
    """What trained the model lived only in the training entry's protocol: an evaluation replacing that
    entry (its key, e.g. the held-out test split) dropped the record, and with it what is no held-out data.
    ``training.seen_data`` is kept beside the results, and takes up what a replaced training entry said."""
    test = {"id": "fer2013", "split": "test"}
    train_split = {"id": "fer2013", "config": "default", "split": "train", "role": "train"}
    recorded = eval_results.make_entry(summary(), dataset=test, source="training", command="ferhub train")
    recorded["protocol"] = {"seen_data": [train_split]}
    eval_results.write(repo, {"fer2013:default:test": recorded})  # a repo as 2f76e64's training wrote it
    assert "training" not in eval_results.read(repo)
    eval_results.write(repo, {"fer2013:default:test": eval_results.make_entry(summary(), dataset=test)})
    document = eval_results.read(repo)
    assert document["training"] == {"seen_data": [train_split]}
    assert eval_results.seen_data(document) == [train_split]
    # kept by every later write, of any key; the next replaced training entry's data is added to it
    other = eval_results.make_entry(summary(), dataset={"id": "rafdb"}, source="training")  # command only
    eval_results.write(repo, {"rafdb:default:all": other})
    eval_results.write(
        repo, {"rafdb:default:all": eval_results.make_entry(summary(), dataset={"id": "rafdb"})}
    )
    inferred = {"id": "rafdb", "config": "default", "split": "train", "role": "train"}
    assert eval_results.read(repo)["training"]["seen_data"] == [train_split, inferred]
    # a new training run's record replaces it (merge's seen=), its malformed items left out
    new = [{"id": "faces", "role": "train", "num_images": 84}, {"id": "x", "role": "watched"}, "junk"]
    fresh = eval_results.merge(eval_results.read(repo), {}, seen=new)
    assert fresh["training"]["seen_data"] == [
        {"id": "faces", "config": "default", "split": "all", "role": "train", "num_images": 84}
    ]
    assert "training" not in eval_results.merge(None, {})  # nothing recorded: no record
    # what ferhub writes must pass; a record it cannot read is refused with what to do
    eval_results.validate(fresh, "fresh")
    for bad in ({"seen_data": "faces"}, {"seen_data": [{"id": "faces", "role": "?"}]}, []):
        with pytest.raises(EvalResultsError, match=r"training\.seen_data must be a list of objects"):
            eval_results.validate({**fresh, "training": bad}, "bad")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"notes": "a note"}, r"\.notes must be a list of strings"),  # was shown one note per character
        ({"notes": ["ok", 3]}, r"\.notes must be a list of strings"),
        ({"labels": ["happy"] * 7}, r"\.labels names a class twice"),
        ({"metrics": {"accuracy": float("nan")}}, r"\.metrics\.accuracy must be a finite number"),
        ({"metrics": {"accuracy_ci95": [0.1, float("inf")]}}, r"\.metrics\.accuracy_ci95 must be a finite"),
        ({"calibration": {"ece": 0.1}}, r"\.calibration must be an object"),
        ({"calibration": {"ece": 0.1, "bins": [{"count": 3}]}}, r"\.calibration must be an object"),
        ({"model": "some-model"}, r"\.model must be an object"),  # report and push crashed (exit 4)
        ({"per_class": {"happy": {"support": None}}}, r"\.per_class must map each label"),
        # the card used a list policy as a dict key: `ferhub evaluate` exited 4 and kept nothing
        ({"no_face": {"count": 3, "policy": ["fallback"]}}, r"\.no_face must be an object with"),
        ({"no_face": {"count": "3", "policy": "fallback"}}, r"\.no_face must be an object with"),
        ({"no_face": "fallback"}, r"\.no_face must be an object with"),
    ],
)
def test_validate_refuses_what_the_report_cannot_show(change: dict[str, Any], message: str) -> None:
    """Entries that passed validation and then crashed or garbled ``ferhub report``: what ferhub writes must
    pass; what it shows leaves such an entry out, with why, and keeps the others."""
    entry = eval_results.make_entry(summary(), dataset={"id": "d"})
    entry["notes"] = []
    entry.update(change)
    doc = {"format_version": 1, "results": {"d:default:all": entry, "ok:default:all": _good()}}
    with pytest.raises(EvalResultsError, match=message + r".*Fix: repair or remove that entry"):
        eval_results.validate(doc, "x.json")
    shown, left_out = eval_results.usable(doc)
    assert list(shown["results"]) == ["ok:default:all"]
    ((key, why),) = left_out
    assert key == "d:default:all" and re.match(r"results\['d:default:all'\]" + message, why)


def _good() -> dict[str, Any]:
    return eval_results.make_entry(summary(0.6), dataset={"id": "ok"})


OTHER_TOOLS = {  # entries written by other tools that ferhub cannot show
    "note": {"notes": "from paper"},
    "calibration": {"calibration": {"ece": 0.05}},
    "nan": {"metrics": {"accuracy": 0.7, "nll": float("nan")}},
    "no id": {"dataset": {"name": "fer2013"}},
    "model": {"model": "some-model"},
    "support": {"labels": ["happy"], "confusion_matrix": [[1]], "per_class": {"happy": {"support": None}}},
    "no_face": {"no_face": {"count": 3, "policy": {"name": "fallback"}}},
}


@pytest.mark.parametrize("change", OTHER_TOOLS.values(), ids=OTHER_TOOLS)
def test_an_entry_ferhub_cannot_show_never_blocks_a_write_and_is_kept_as_it_was(
    repo: Path, change: dict[str, Any]
) -> None:
    """A stricter validator refused the whole file on one such entry, in ``ferhub evaluate`` too (whose
    message said to re-run ``ferhub evaluate``): the new result is written, the other entry kept as it was
    (its NaN too), and the card shows what it can."""
    other = {"dataset": {"id": "fer2013", "split": "test"}, "metrics": {"accuracy": 0.7}, **change}
    path = repo / eval_results.FILE_NAME
    path.write_text(json.dumps({"format_version": 1, "results": {"fer2013:default:test": other}}))
    entry = eval_results.make_entry(summary(0.625), dataset={"id": "faces", "split": "test"})
    eval_results.write(repo, {"faces:default:test": entry})
    written = json.loads(path.read_text())["results"]
    assert list(written) == ["fer2013:default:test", "faces:default:test"]
    assert json.dumps(written["fer2013:default:test"]) == json.dumps(other)
    card = (repo / "README.md").read_text()
    assert "62.50%" in card and "fer2013" not in card and hub.card_is_current(repo)
    # the same key replaced by ferhub's own result is fine; the file as a whole is still refused when bad
    ours = eval_results.make_entry(summary(0.8), dataset={"id": "fer2013", "split": "test"})
    eval_results.write(repo, {"fer2013:default:test": ours})
    assert (
        eval_results.usable(eval_results.read(repo))[1] == [] and "80.00%" in (repo / "README.md").read_text()
    )
    path.write_text(json.dumps({"format_version": 1, "results": []}))
    with pytest.raises(EvalResultsError, match=r"'results' must be an object.*move it aside"):
        eval_results.write(repo, {"faces:default:test": entry})


def test_validate_keeps_accepting_optional_parts_and_other_tools_metrics() -> None:
    minimal = {"dataset": {"id": "d"}, "metrics": {"accuracy": 0.7, "source": "paper", "n": None}}
    assert eval_results.validate({"format_version": 1, "results": {"k": minimal}}, "x.json")
    no_policy = {**minimal, "no_face": {"count": 2, "per_class": {"happy": 2}}}
    assert eval_results.validate({"format_version": 1, "results": {"k": no_policy}}, "x.json")


# ------------------------------------------------------------------------------ two writers at the same time
SLOW_WRITER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from ferhub import eval_results

    folder, entry_file, go = sys.argv[1:4]
    real_read = eval_results.read

    def slow_read(folder):
        data = real_read(folder)
        time.sleep(1.0)  # the other writer reads now, unless it waits for this one's rename
        return data

    eval_results.read = slow_read
    entry = json.loads(Path(entry_file).read_text())
    while not Path(go).exists():
        time.sleep(0.005)
    eval_results.write(folder, {eval_results.key_of(entry): entry})
    """
)


def test_two_processes_writing_at_once_both_keep_their_entry(repo: Path, tmp_path: Path) -> None:
    """Two `ferhub evaluate` of one model finishing at once: each read the file before the other's rename,
    so the second rename dropped the first entry (both exited 0)."""
    (repo / eval_results.LOCK_NAME).write_text("")  # left by a writer killed with -9: taken over
    go, writers = tmp_path / "go", []
    for name in ("evA", "evB"):
        entry_file = tmp_path / f"{name}.json"
        entry_file.write_text(json.dumps(eval_results.make_entry(summary(), dataset={"id": name})))
        cmd = [sys.executable, "-c", SLOW_WRITER, str(repo), str(entry_file), str(go)]
        writers.append(subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True))
    go.touch()
    for p in writers:
        assert p.wait(timeout=60) == 0, p.stderr.read() if p.stderr else ""
    assert sorted(eval_results.read(repo)["results"]) == ["evA:default:all", "evB:default:all"]
    card = (repo / "README.md").read_text()
    assert "evA" in card and "evB" in card
    assert not (repo / eval_results.LOCK_NAME).exists()  # no file of its own left in the model repo


def test_default_command_escapes_an_argument_that_is_not_utf8(monkeypatch) -> None:
    """A script run with a Latin-1 file name (held as a lone surrogate) recorded it raw: the write failed."""
    from ferhub.eval_results import default_command

    monkeypatch.setattr("sys.argv", ["/usr/bin/my-eval", "donn\udce9es"])
    assert default_command() == "my-eval 'donn\\xe9es'"
    default_command().encode("utf-8")
