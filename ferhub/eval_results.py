"""``eval_results.json``: the one owner of its name, format version, entries, validation, merging and writing.

Training and evaluation both build entries with :func:`make_entry` and store them with :func:`write` (or hand
:func:`merge`'s document to :func:`ferhub.hub.save`); everything reads them with :func:`read`, and what shows
them takes :func:`usable`'s entries (an entry it cannot show is left out, and said so, never the file). ::

    {"format_version": 1,
     "training"?: {"seen_data": [{"id", "config", "split", "role": "train" | "select", "num_images"?}]},
     "results": {"<dataset id>:<config>:<split>": {
        "dataset": {"id", "config", "split", "name", "revision"?},
        "model": {"id", "revision"},               # evaluation; training leaves it out (the repo is it)
        "metrics": {"accuracy", "mean_class_recall", "macro_f1", "top2_accuracy", "nll", "ece",
                    "accuracy_ci95": [lo, hi], "mean_class_recall_ci95": [lo, hi]},
        "labels": [...],                           # order of the matrix rows/columns and of per_class
        "per_class": {label: {"precision", "recall", "f1", "support"}},
        "confusion_matrix": [[counts]],            # rows = true, columns = predicted
        "calibration": {"ece", "n_bins", "bins": [{"lower", "upper", "count", "confidence", "accuracy"}]},
        "no_face": {"count", "policy": "fallback" | "wrong" | "precropped", "per_class": {label: count}},
        "label_mapping": {"data_labels", "model_labels", "unpredictable": {label: count}},
        "notes": [...], "tta": bool, "tta_method": null | "<method>",
        "num_images": int, "ferhub_version": str, "date": ISO-8601 UTC, "command": str,
        "source"?: "training",
        "protocol"?: {...},                        # training's: what selected, what reported, "seen_data"
        "not_held_out"?: str,                      # evaluate's: how this data trained or chose the model
        "unreadable"?: {"count", "examples": [{"path", "error"}]}}}}   # images skipped, not counted

One key holds one result: a new entry replaces the one of its key, and a replacement that changes what the
key's result means (other data, another test-time augmentation, or the result training recorded with its
protocol) is said on stderr (:func:`merge`). An entry with ``not_held_out`` was measured on data that
trained or chose the model: its card says so and leaves it out of the ``model-index``.

What trained the model is kept outside the replaceable results: ``training.seen_data`` names the data that
trained it (``role: "train"``) or chose its released epoch (``"select"``), keyed as the results are, with the
number of images it had then. ``ferhub train`` writes it (and the same list in each of its entries'
``protocol``, where earlier versions look for it); :func:`merge` keeps it whatever it replaces, and adds to
it what a replaced training entry recorded (or, for an entry written before ``seen_data`` existed, what its
dataset and command tell), so an evaluation that replaces the training entry never loses it.
:func:`seen_data` reads it.

:func:`write` is crash-safe: the new file and the re-rendered card are both prepared before either is renamed
into place, and the temporary files a killed writer leaves are removed by the next write; a card that still
lags its results (a kill between the two renames) is re-rendered by the next write or push. Writers of one
folder take turns (an ``flock`` on ``.eval_results.json.lock`` from the read to the last rename, where the
platform has ``fcntl``), so two evaluations finishing at once both keep their entry.

>>> entry = make_entry(metrics.summarize(...), dataset={"id": "fer2013", "split": "test"})  # doctest: +SKIP
>>> write("my-model/", {key_of(entry): entry})                                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ferhub.errors import EvalResultsError, WrongTypeError
from ferhub.fileio import atomic_write_text, lock_file, remove_stale_temps, unlock_file

FILE_NAME = "eval_results.json"
LOCK_NAME = f".{FILE_NAME}.lock"  # beside it; held by :func:`write` from its read to its last rename
FORMAT_VERSION = 1


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool): what a metric value must be to be shown or published."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# ---------------------------------------------------------------------------------------------------------
# building entries
# ---------------------------------------------------------------------------------------------------------
def result_key(dataset_id: str, config: str | None, split: str | None) -> str:
    """Key of a dataset's entry: ``"<id>:<config>:<split>"`` (``default`` / ``all`` when absent)."""
    return f"{dataset_id}:{config or 'default'}:{split or 'all'}"


def key_of(entry: Mapping[str, Any]) -> str:
    """The key an entry is stored under, from its ``dataset``."""
    d = entry["dataset"]
    return result_key(d["id"], d.get("config"), d.get("split"))


def default_command() -> str:
    """This process's command line (program name without its folder), for an entry's ``command``; an
    argument's bytes that are not UTF-8 as ``\\xNN`` escapes (the file must encode to UTF-8)."""
    from ferhub.writers import encodable

    argv = [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv and sys.argv[0] else []
    return encodable(shlex.join(argv)) if argv else "ferhub.evaluation.evaluate(...)"


def make_entry(
    summary: Mapping[str, Any],
    *,
    dataset: Mapping[str, Any],
    model: Mapping[str, Any] | None = None,
    tta: str | None = None,
    num_images: int | None = None,
    command: str | None = None,
    date: str | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """One entry: ``summary`` (the metric parts, :func:`ferhub.metrics.summarize`) and how it was measured.

    Args:
        summary: ``metrics``, ``labels``, ``per_class``, ``confusion_matrix``, ``calibration``, ...
        dataset: ``{"id", "config"?, "split"?, "name"?}``; ``config`` defaults to ``default``, ``split`` to
            ``all``, ``name`` to the id.
        model: ``{"id", "revision"}`` of the evaluated model, when it is not the repo the entry is written to.
        tta: the test-time augmentation method the probabilities were averaged over, ``None`` for none.
        num_images: defaults to the confusion matrix's total.
        command: defaults to this process's command line.
        date: ISO-8601 UTC; defaults to now.
        source: who measured it, when not ``ferhub evaluate`` (``"training"``).
    """
    from ferhub import __version__

    if "id" not in dataset or not dataset["id"]:
        raise ValueError("make_entry: dataset needs a non-empty 'id'")
    if tta is not None and not isinstance(tta, str):
        raise WrongTypeError(f"make_entry: tta is a method name or None, got {tta!r}")
    ds = {
        "id": dataset["id"],
        "config": dataset.get("config") or "default",
        "split": dataset.get("split") or "all",
        "name": dataset.get("name") or dataset["id"],
        **{k: v for k, v in dataset.items() if k not in ("id", "config", "split", "name")},
    }
    if num_images is None:
        num_images = int(sum(map(sum, summary["confusion_matrix"])))
    entry: dict[str, Any] = {"dataset": ds}
    if model is not None:
        entry["model"] = dict(model)
    entry.update(summary)
    entry.update(
        {
            "tta": tta is not None,
            "tta_method": tta,
            "num_images": int(num_images),
            "ferhub_version": __version__,
            "date": date or dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "command": command or default_command(),
        }
    )
    if source is not None:
        entry["source"] = source
    return entry


# ---------------------------------------------------------------------------------------------------------
# reading and validating
# ---------------------------------------------------------------------------------------------------------
def _bad_file(source: str, what: str) -> EvalResultsError:
    return EvalResultsError(
        f"{source}: {what}. Fix: repair it, or move it aside and re-run `ferhub evaluate` to write a new one"
    )


def _check_file(data: Any, source: str) -> dict[str, Any]:
    """The checks of the whole document (an object, its ``format_version``, ``results`` an object); its
    entries are not looked at."""
    if not isinstance(data, Mapping):
        raise _bad_file(source, f"expected a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise EvalResultsError(
                f"{source}: format_version {version} is newer than this ferhub reads "
                f"({FORMAT_VERSION}); upgrade ferhub"
            )
        raise _bad_file(source, f"format_version must be {FORMAT_VERSION}, got {version!r}")
    if not isinstance(data.get("results"), Mapping):
        raise _bad_file(source, "'results' must be an object keyed by dataset/config/split")
    return dict(data)


def validate(data: Any, source: str) -> dict[str, Any]:
    """Check the parts of the schema that ferhub reads, of the document and of every entry (what ferhub
    writes must pass); other keys are kept as they are. Readers that show results leave a bad entry out
    instead (:func:`usable`)."""
    data = _check_file(data, source)
    for key, entry in data["results"].items():
        if problem := entry_problem(key, entry):
            raise EvalResultsError(f"{source}: {problem}. Fix: repair or remove that entry")
    training = data.get("training")
    if training is not None and (
        not isinstance(training, Mapping)
        or not isinstance(training.get("seen_data"), list)
        or len(_clean_seen(training["seen_data"])) != len(training["seen_data"])
    ):
        raise EvalResultsError(
            f"{source}: training.seen_data must be a list of objects with a string 'id' and a 'role' of "
            f"{' or '.join(ROLES)}. Fix: repair it, or remove 'training' (what trained the model is then "
            "unknown)"
        )
    return data


def usable(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A document (as :func:`read` returns it) with only the entries that pass :func:`entry_problem`'s rules,
    and ``(key, what is wrong)`` for each entry left out: one malformed entry (another tool's) never keeps
    the others from being shown."""
    good: dict[str, Any] = {}
    left_out: list[tuple[str, str]] = []
    for key, entry in data["results"].items():
        if problem := entry_problem(key, entry):
            left_out.append((key, problem))
        else:
            good[key] = entry
    return {**data, "results": good}, left_out


def entry_problem(key: str, r: Any) -> str | None:
    """What is wrong with the entry under ``key`` (``"results['k'].notes must be a list of strings"``), or
    ``None`` when ferhub can read and show it."""
    where = f"results[{key!r}]"
    if not isinstance(r, Mapping):
        return f"{where} must be an object"
    dataset = r.get("dataset")
    if not isinstance(dataset, Mapping) or not isinstance(dataset.get("id"), str) or not dataset["id"]:
        return f"{where}.dataset must be an object with a non-empty 'id'"
    for field in ("config", "split", "name", "revision"):
        if dataset.get(field) is not None and not isinstance(dataset[field], str):
            return f"{where}.dataset.{field} must be a string"
    metrics = r.get("metrics")
    if not isinstance(metrics, Mapping):
        return f"{where}.metrics must be an object of metric name -> value"
    for name, value in metrics.items():  # other tools may add metrics of other types; a number is finite
        if not all(map(_finite_or_other, value if isinstance(value, list) else [value])):
            return f"{where}.metrics.{name} must be a finite number, got {value!r}"
    labels = r.get("labels")
    if labels is not None and (not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)):
        return f"{where}.labels must be a list of label names"
    if labels is not None and len(set(labels)) != len(labels):  # the matrix's rows could not be told apart
        return f"{where}.labels names a class twice"
    cm = r.get("confusion_matrix")
    if cm is not None:
        n = len(labels or [])
        square = isinstance(cm, list) and len(cm) == n
        if not labels or not square or not all(_is_row(row, n) for row in cm):
            return f"{where}.confusion_matrix must be a {n}x{n} list of counts matching 'labels'"
    model = r.get("model")
    if model is not None and not (isinstance(model, Mapping) and isinstance(model.get("id", ""), str)):
        return f"{where}.model must be an object with a string 'id'"
    per_class = r.get("per_class")
    if per_class is not None and not (
        isinstance(per_class, Mapping)
        and all(
            isinstance(v, Mapping) and all(is_number(v[k]) for k in _PER_CLASS_KEYS if k in v)
            for v in per_class.values()
        )
    ):
        return f"{where}.per_class must map each label to an object of metrics (numbers)"
    if r.get("calibration") is not None and not _is_calibration(r["calibration"]):
        return f"{where}.calibration must be an object with a number 'ece' and a list of 'bins'"
    notes = r.get("notes")
    if notes is not None and not (isinstance(notes, list) and all(isinstance(n, str) for n in notes)):
        return f"{where}.notes must be a list of strings"
    if r.get("tta") is not None and not isinstance(r["tta"], bool):
        return f"{where}.tta must be true or false"
    if r.get("not_held_out") is not None and not isinstance(r["not_held_out"], str):
        return f"{where}.not_held_out must be a string saying how the data trained or chose the model"
    if r.get("num_images") is not None and not (isinstance(r["num_images"], int) and r["num_images"] >= 0):
        return f"{where}.num_images must be a non-negative integer"
    if r.get("no_face") is not None and not _is_no_face(r["no_face"]):  # the card says count and policy
        return f"{where}.no_face must be an object with a non-negative integer 'count' and a string 'policy'"
    return None


def _is_no_face(no_face: Any) -> bool:
    """Whether ``no_face`` has what the card reads: ``count`` a count and ``policy`` a name, where given."""
    if not isinstance(no_face, Mapping):
        return False
    count, policy = no_face.get("count"), no_face.get("policy")
    return (count is None or (isinstance(count, int) and count >= 0)) and (
        policy is None or isinstance(policy, str)
    )


_PER_CLASS_KEYS = ("precision", "recall", "f1", "support")  # what the figures and the support read


def _is_row(row: Any, n: int) -> bool:
    return isinstance(row, list) and len(row) == n and all(map(is_number, row))


def _finite_or_other(value: Any) -> bool:
    """False only for a NaN or infinite float (JSON's ``NaN``, ``Infinity``): shown as ``nan``, never a
    metric."""
    return not isinstance(value, float) or math.isfinite(value)


_BIN_KEYS = ("lower", "upper", "count", "confidence", "accuracy")


def _is_calibration(cal: Any) -> bool:
    """Whether ``cal`` has what the reliability diagram reads: ``ece`` and bins of numbers."""
    return (
        isinstance(cal, Mapping)
        and is_number(cal.get("ece"))
        and isinstance(cal.get("bins"), list)
        and all(isinstance(b, Mapping) and all(is_number(b.get(k)) for k in _BIN_KEYS) for b in cal["bins"])
    )


def read(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed ``eval_results.json`` of a folder or ``None``; :class:`EvalResultsError` if the file as a
    whole is bad (not JSON, not an object, another ``format_version``, ``results`` not an object).

    Its entries are as stored, each checked by no one yet: what shows results takes :func:`usable`'s (and
    says which it left out), and :func:`write` keeps every other key's entry as it was."""
    path = Path(folder) / FILE_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _bad_file(str(path), f"not valid JSON ({e})") from e
    return _check_file(data, str(path))


# ---------------------------------------------------------------------------------------------------------
# merging and writing
# ---------------------------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    """Plain JSON types; NaN or infinity would be a bug upstream, so it is refused rather than written."""
    text = json.dumps(
        value, allow_nan=False, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)
    )
    return json.loads(text)


def merge(
    existing: Mapping[str, Any] | None,
    entries: Mapping[str, Mapping[str, Any]],
    *,
    seen: list[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A full document: ``existing``'s results (if any) with ``entries`` added; a key already present is
    replaced. With ``existing=None`` it is a new document of just ``entries`` (what ``hub.save`` takes).

    A replaced entry that was measured on other data (another number of images, another dataset revision)
    is said on stderr: two datasets that share a key would otherwise lose the first result silently. So is
    one measured otherwise on the same data (with or without test-time augmentation, or by ``ferhub train``
    with its protocol): the key holds one result, and the old one is gone from the file and the card.

    What trained the model (``training.seen_data``) outlives the results: ``existing``'s is kept, and a
    replaced training entry's (:func:`entry_seen_data`) is added to it, so that an evaluation replacing the
    result ``ferhub train`` recorded still knows which data is no held-out data. ``seen`` (``ferhub train``'s
    :func:`seen_data` items) replaces it: a new training run."""
    results = dict((existing or {}).get("results", {}))
    record = seen_data(existing, entries=False) if existing else []
    for key, entry in entries.items():
        old = results.get(key)
        other = _other_data(old, entry) if isinstance(old, Mapping) else None
        if other:
            print(f"eval_results: {key} replaced by a result on other data ({other})", file=sys.stderr)
        elif isinstance(old, Mapping) and (otherwise := _measured_otherwise(old, entry)):
            print(f"eval_results: {key}: {otherwise}", file=sys.stderr)
        if isinstance(old, Mapping) and old.get("source") == "training" and entry.get("source") != "training":
            record.extend(entry_seen_data(old))
        results[key] = _jsonable(entry)
    if seen is not None:
        record = _clean_seen(seen)
    training = {"training": {"seen_data": _jsonable(_unique(record))}} if record else {}
    return {"format_version": FORMAT_VERSION, **training, "results": results}


# ---------------------------------------------------------------------------------------------------------
# what trained the model
# ---------------------------------------------------------------------------------------------------------
ROLES = ("train", "select")  # of the data in seen_data: it trained the model, or chose its released epoch


def seen_data(document: Mapping[str, Any] | None, *, entries: bool = True) -> list[dict[str, Any]]:
    """The data that trained (``role: "train"``) or chose (``"select"``) the model whose results document
    this is: ``training.seen_data``, and with ``entries`` what each training entry (``source: "training"``)
    records too (:func:`entry_seen_data`); each ``{"id", "config", "split", "role"}`` (``config`` ``default``
    and ``split`` ``all`` where not named) and ``num_images`` where recorded. ``[]`` when nothing says."""
    if not isinstance(document, Mapping):
        return []
    training = document.get("training")
    found = _clean_seen(training.get("seen_data")) if isinstance(training, Mapping) else []
    results = document.get("results")
    if entries and isinstance(results, Mapping):
        for entry in results.values():
            if isinstance(entry, Mapping) and entry.get("source") == "training":
                found.extend(entry_seen_data(entry))
    return _unique(found)


def entry_seen_data(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What a training entry says trained or chose the model: its protocol's ``seen_data`` (as ``ferhub
    train`` writes it), else, for an entry written before it did, what its dataset, protocol words and
    command tell: the training split (``--split``, default ``train``) of the same data unless ``--val-data``
    named the data reported on, and the split its protocol says chose the epoch (``selected_on: "split
    val"``)."""
    protocol = entry.get("protocol") if isinstance(entry.get("protocol"), Mapping) else {}
    recorded = protocol.get("seen_data")
    if isinstance(recorded, list):
        return _clean_seen(recorded)
    dataset = entry.get("dataset") if isinstance(entry.get("dataset"), Mapping) else {}
    if not isinstance(dataset.get("id"), str):
        return []
    same = {"id": dataset["id"], "config": dataset.get("config") or "default"}
    argv = _argv(entry.get("command"))
    out = []
    if _option(argv, "--val-data") is None:  # else the entry is of --val-data, and --data trained
        out.append({**same, "split": _option(argv, "--split") or "train", "role": "train"})
    selected = protocol.get("selected_on")
    named = re.match(r"split (\S+)", selected) if isinstance(selected, str) else None
    if named:
        out.append({**same, "split": named.group(1), "role": "select"})
    return out


def _clean_seen(items: Any) -> list[dict[str, Any]]:
    """The well-formed items of a ``seen_data`` list (a string ``id``, a known ``role``), each with
    ``config`` and ``split`` spelled out and ``num_images`` kept where it is a count."""
    out = []
    for d in items if isinstance(items, list) else []:
        if not isinstance(d, Mapping) or not isinstance(d.get("id"), str) or not d["id"]:
            continue
        if d.get("role") not in ROLES:
            continue
        item = {
            "id": d["id"],
            "config": str(d.get("config") or "default"),
            "split": str(d.get("split") or "all"),
            "role": d["role"],
        }
        if isinstance(d.get("num_images"), int) and not isinstance(d["num_images"], bool):
            item["num_images"] = d["num_images"]
        out.append(item)
    return out


def _unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` without repeats, in order (the record and several training entries name the same data)."""
    return list({json.dumps(d, sort_keys=True): d for d in items}.values())


def _argv(command: Any) -> list[str]:
    """A recorded command line as its words (``[]`` when it is none, or not shell words)."""
    try:
        return shlex.split(command) if isinstance(command, str) else []
    except ValueError:
        return []


def _option(argv: list[str], name: str) -> str | None:
    """The value of option ``name`` in ``argv`` (``--split X`` or ``--split=X``), ``None`` when not given."""
    for i, word in enumerate(argv):
        if word == name and i + 1 < len(argv):
            return argv[i + 1]
        if word.startswith(f"{name}="):
            return word.partition("=")[2]
    return None


def _tta_words(entry: Mapping[str, Any]) -> str:
    if not entry.get("tta"):
        return "no test-time augmentation"
    method = entry.get("tta_method")
    return f"test-time augmentation ({method})" if isinstance(method, str) else "test-time augmentation"


def _measured_otherwise(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """What a replacement of ``old`` by ``new`` (same data) loses that is not the same measurement again:
    ``old`` measured with another test-time augmentation, or by ``ferhub train`` (whose protocol says what
    chose the model and what it never saw) replaced by another's; ``None`` when it loses neither."""
    lost = []
    if _tta_words(old) != _tta_words(new):
        lost.append(f"the result with {_tta_words(old)} is replaced by one with {_tta_words(new)}")
    if old.get("source") == "training" and new.get("source") != "training":
        lost.append("the result `ferhub train` recorded, with its protocol, is replaced by this evaluation's")
    if not lost:
        return None
    return "; ".join(lost) + " (a key holds one result per dataset, config and split)"


def _other_data(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """How two entries of one key differ in the data they were measured on, as far as they record it (the
    number of images; the dataset revision where both name one); ``None`` when they do not."""
    counts = f"{old.get('num_images')} -> {new.get('num_images')} images"
    revisions = [(e.get("dataset") or {}).get("revision") for e in (old, new)]
    if None not in revisions and revisions[0] != revisions[1]:
        return f"{counts}, revision {revisions[0]} -> {revisions[1]}"
    return counts if old.get("num_images") != new.get("num_images") else None


def write(
    folder: str | os.PathLike, entries: Mapping[str, Mapping[str, Any]], *, render_card: bool = True
) -> Path:
    """Merge ``{key: entry}`` into ``folder/eval_results.json`` atomically and re-render the model card.

    A corrupt or unknown-version file already there raises :class:`EvalResultsError` and is left untouched;
    an entry of another key that ferhub cannot show (written by another tool) is kept as it is.
    The card (``README.md``, with its ``model-index``) is re-rendered when the folder is a model repo (has
    ``config.json``) and ``render_card`` is true; it is rendered from the merged results before either file
    is replaced, so the two renames are all that separates the old pair from the new one. A concurrent
    :func:`write` to the same folder (another process) waits for this one, and then merges into its result.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder):
        return _write(folder, entries, render_card)


@contextlib.contextmanager
def locked(folder: str | os.PathLike) -> Iterator[None]:
    """Hold the exclusive ``flock`` that writers of ``folder``'s results take turns on (its
    :data:`LOCK_NAME`, made for the while, removed after; see :func:`ferhub.fileio.lock_file`): for
    :func:`write`, and for whoever else replaces the file (a copy of a model's repo files into a folder)."""
    lock = Path(folder) / LOCK_NAME
    f = lock_file(lock, wait=True)  # waits for the other writer's read, merge and renames
    try:
        yield
    finally:
        unlock_file(lock, f)


def _write(folder: Path, entries: Mapping[str, Mapping[str, Any]], render_card: bool) -> Path:
    """:func:`write`'s read, merge and renames, with the folder's lock held."""
    from ferhub.config import CONFIG_NAME

    path = folder / FILE_NAME
    remove_stale_temps(path)
    merged = merge(read(folder), entries)
    # the new entries must pass; another key's entry, even one that does not, is kept as it was (the card
    # and the readers that show results leave it out)
    validate({**merged, "results": {k: merged["results"][k] for k in entries}}, f"the new results for {path}")
    card = None
    if render_card and (folder / CONFIG_NAME).is_file():
        from ferhub.hub import card as cards

        card = cards.card_text(folder, eval_results=merged)
    # the new entries hold no NaN (merge's _jsonable refuses it); another tool's entry that does (the
    # file's bare NaN) is written back as it was, never rewritten or dropped
    atomic_write_text(path, json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    if card is not None:
        cards.write_card(folder, card)
    return path
