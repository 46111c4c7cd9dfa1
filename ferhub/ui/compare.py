"""Compare tab: 2-4 models on one photo (faces detected once, disagreements marked, per-face agreement), and
the evaluation dashboard: confusion matrices, difference matrix, per-class recall and metrics from each model
repo's ``eval_results.json``, or from an evaluation run now on an uploaded labelled set.

All figures come from :mod:`ferhub.plots` (shared with the HTML report); all numbers from the library.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
from PIL import Image

from ferhub.report import unique_name
from ferhub.ui import scratch, state, visitors

MAX_MODELS = 4
COUNTS, NORMALISED = "counts", "row-normalised"
Entries = dict[str, dict[str, Any]]  # model id -> one eval_results entry
Results = dict[str, dict[str, dict[str, Any]]]  # model id -> {dataset key -> entry}
LeftOut = dict[str, dict[str, str]]  # model id -> {dataset key -> why its entry cannot be shown}


def short_name(model_id: str) -> str:
    """A model id for figure titles: a local folder by its name, Hub and bundled ids as they are."""
    return Path(model_id).expanduser().name if _is_folder(model_id) else model_id


def _is_folder(model_id: str) -> bool:
    return model_id.startswith((".", "/", "~")) and Path(model_id).expanduser().is_dir()


def display_names(model_ids: Sequence[str]) -> dict[str, str]:
    """Each picked model's name in the figures, the metrics table and the pickers: :func:`short_name`, and
    where two share it (every ``ferhub train`` model is a folder ``model``) the later one tagged as ``ferhub
    report`` tags it (:func:`ferhub.report.unique_name`), by as many of its parent folders as tell it apart
    (``model``, ``model (fer3/model)``), never by the server path before them. Keyed by name, two models of
    one name were one row, one set of bars, and one choice twice in the pair picker. Where no parent folder
    tells two apart (``/a/model`` beside ``/x/a/model``) the later one is tagged by its place, as ``ferhub
    report`` tags a model given twice (``model (2)``)."""
    names: dict[str, str] = {}
    for i, m in enumerate(model_ids):
        names[m] = unique_name(short_name(m), names.values(), _parents_tag(m, model_ids) or str(i + 1))
    return names


def _parents_tag(model_id: str, model_ids: Sequence[str]) -> str | None:
    """The fewest last parts of ``model_id`` (a folder's path, a Hub id) that no other of ``model_ids`` ends
    in: ``fer3/model`` beside ``fer8/model``; ``None`` where only all of a folder's path would (the server
    path is never shown)."""

    def parts(m: str) -> tuple[str, ...]:
        if _is_folder(m):  # "./a/model" and "/srv/a/model" are one folder: compared as absolute paths
            return Path(os.path.abspath(Path(m).expanduser())).parts[1:]
        return tuple(m.split("/"))

    own, others = parts(model_id), [parts(m) for m in model_ids if m != model_id]
    whole = len(own) if not _is_folder(model_id) else len(own) - 1  # a folder's whole path: the server's
    for k in range(2, whole + 1):
        if all(other[-k:] != own[-k:] for other in others):
            return "/".join(own[-k:])
    return None


def _models(model_ids: list[str] | str | None, *, least: int = 1) -> list[str]:
    """The picked models, each once (one folder picked by two paths, a bundled model by its two names, once:
    as ``ferhub compare`` refuses them, a model agrees with itself); ``gr.Error`` for too few, too many, or
    values that are no names."""
    from ferhub.evaluation import model_key

    policy = visitors.policy()
    once: dict[str, str] = {}  # model key -> the first name picked for it
    for m in visitors.model_names(model_ids):
        # a folder is looked for only where visitors may name folders: elsewhere the count would tell them
        # which server paths exist
        once.setdefault(model_key(m, local=policy.local_paths or m in policy.listed), m)
    ids = list(once.values())
    if len(ids) < least:
        raise gr.Error(
            f"Pick at least {least} model{'s' if least > 1 else ''} to compare.", title="Too few models"
        )
    if len(ids) > MAX_MODELS:
        raise gr.Error(f"Pick at most {MAX_MODELS} models (got {len(ids)}).", title="Too many models")
    return ids


# -- (a) one photo through several models ----------------------------------------------------------------
@state.gpu
def _predict_photo(predictor: Any, photo: Image.Image) -> Any:
    return predictor.predict_image(photo)


class Agreement(NamedTuple):
    """How the models agree on one face: the label most of them give (``None`` on a tie), the share of models
    that give it (on a tie: the share of each tied label) and the tied labels in the models' order."""

    label: str | None
    share: float
    tied: tuple[str, ...] = ()

    def majority_cell(self) -> str:
        return self.label if self.label is not None else "tie: " + " / ".join(self.tied)

    def share_cell(self) -> str:
        return f"{self.share:.0%}" + (" each" if self.tied else "")


def face_agreement(labels_per_model: list[str]) -> Agreement:
    """The label most models give one face and the share of models that give it; no label when two or more
    labels share the top count (``Counter.most_common`` would pick the first model's, presenting one model's
    answer as the consensus)."""
    counts = Counter(labels_per_model)
    top = max(counts.values())
    leaders = tuple(label for label, n in counts.items() if n == top)
    share = top / len(labels_per_model)
    return Agreement(leaders[0], share) if len(leaders) == 1 else Agreement(None, share, leaders)


@visitors.action("compare_photo")
def compare_photo(
    image: Any, model_ids: list[str] | None
) -> tuple[list[tuple[str, str]], dict[str, Any], Any, str]:
    """The photo (a path, or the upload's payload) through every chosen model: one annotated image per model,
    the per-face agreement table (its rows, and its columns for these models), the models' pairwise
    agreement over the faces (figure, ``None`` for one face), and a summary line."""
    state.heavy_imports()
    from ferhub.compare import agreement_matrix, labels_to_indices
    from ferhub.drawing import DISAGREE_COLOR, draw_boxes, label_color
    from ferhub.labels import union_labels
    from ferhub.plots import agreement_figure

    ids = _models(model_ids, least=2)
    photo = state.load_photo(image)
    result = _predict_photo(state.cache().predictor(ids), photo)  # models loaded outside the GPU function
    if result.error:
        raise gr.Error(result.error, title="Could not classify this photo")
    if not result.faces:
        raise gr.Error("No face found in this photo; the models have nothing to compare.", title="No face")
    per_face = [[p.label for p in f.predictions] for f in result.faces]
    agreement = [face_agreement(labels) for labels in per_face]
    gallery = []
    for m, model_id in enumerate(ids):
        texts, colors, dashed = [], [], []
        for i, (face, agree) in enumerate(zip(result.faces, agreement), 1):
            pred = face.predictions[m]
            disagree = agree.share < 1.0
            # (plain ASCII: the bundled PIL font has no "≠")
            texts.append(
                f"#{i} {pred.label} {pred.probabilities[pred.label]:.0%}{' (!)' if disagree else ''}"
            )
            colors.append(DISAGREE_COLOR if disagree else label_color(pred.label))
            dashed.append(disagree)
        drawn = draw_boxes(photo, [f.face.box for f in result.faces], texts, colors, dashed=dashed)
        gallery.append((state.save_image(drawn, f"model{m}"), model_id))
    rows = []
    for i, (face, agree) in enumerate(zip(result.faces, agreement), 1):
        cells = [f"{p.label} ({p.probabilities[p.label]:.0%})" for p in face.predictions]
        verdict = "agree" if agree.share == 1.0 else "disagree"
        rows.append([f"#{i}", *cells, agree.majority_cell(), agree.share_cell(), verdict])
    figure = None
    if len(result.faces) > 1:
        labels = list(union_labels(*(state.cache().model(m).config.labels for m in ids)))
        preds = [labels_to_indices([face[m] for face in per_face], labels) for m in range(len(ids))]
        figure = agreement_figure(
            agreement_matrix(preds)["agreement"],
            list(display_names(ids).values()),
            title=f"Agreement over the {len(result.faces)} faces",
            autosize=True,  # the panel's width: a fixed one was cut off on a phone
        )
        # no colour bar: every cell prints its value, and on a phone the bar covered the slanted model names
        figure.update_traces(showscale=False)
    n_dis = sum(agree.share < 1.0 for agree in agreement)
    summary = f"**{len(result.faces)} face(s)**, detected once and classified by {len(ids)} models: " + (
        "all models agree on every face."
        if n_dis == 0
        else f"models disagree on **{n_dis}** face(s) (dashed red boxes, marked (!))."
    )
    return gallery, _agreement_table(ids, rows), figure, summary


AGREEMENT_BEFORE, AGREEMENT_AFTER = ["face"], ["majority", "share", ""]  # the columns around the models'


def _agreement_header(model_ids: list[str]) -> list[str]:
    return [*AGREEMENT_BEFORE, *model_ids, *AGREEMENT_AFTER]


def _agreement_table(model_ids: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    """The agreement table's value with its own columns: an API caller (or a page whose model picker never
    changed) gets the models' names over their columns, not the picker's first choice."""
    return {"headers": _agreement_header(model_ids), "data": rows}


def agreement_headers(model_ids: list[str] | None) -> tuple[list[Any], dict[str, Any], None, str]:
    """The "Same photo" outputs for a new choice of models: no gallery, the agreement table with its new
    columns and no rows, no agreement plot and no summary (the last comparison was of other models: its
    summary and figures beside an empty table contradicted it)."""
    # names only: this event shows no error, and an API caller's numbers or objects are no column names
    names = [m for m in model_ids if isinstance(m, str) and m] if isinstance(model_ids, list) else []
    return [], _agreement_table(names[:MAX_MODELS], []), None, ""


def clear_js() -> str:
    """What a failed comparison leaves in the "Same photo" outputs (gallery, table, plot, summary): nothing,
    as in Classify, instead of the last photo's results beside the new photo's error. Given the picked
    models, the table keeps their columns, as :func:`agreement_headers` gives them."""
    picked = "(Array.isArray(models) ? models : []).filter(m => typeof m === 'string' && m)"
    names = f"{picked}.slice(0, {MAX_MODELS})"
    headers = f"[...{json.dumps(AGREEMENT_BEFORE)}, ...{names}, ...{json.dumps(AGREEMENT_AFTER)}]"
    return f"(models) => [[], {{headers: {headers}, data: [], metadata: null}}, null, '']"


# -- (b) the evaluation dashboard ----------------------------------------------------------------------------
def dataset_name(key: str, entry: dict[str, Any]) -> str:
    ds = entry.get("dataset") or {}
    parts = [ds.get("name") or ds.get("id") or key, ds.get("config"), ds.get("split")]
    return " / ".join(str(p) for p in parts if p)


def repo_results(model_ids: list[str]) -> tuple[Results, list[str], LeftOut]:
    """Each model's ``eval_results.json`` entries that can be shown, notes for models that have none or a
    broken file and for each entry left out (:func:`ferhub.eval_results.usable`: another tool's, malformed),
    and those entries' keys per model, with what is wrong."""
    from ferhub.eval_results import usable
    from ferhub.hub import read_eval_results, resolve

    results: Results = {}
    notes = []
    left_out: LeftOut = {}
    for model_id in model_ids:
        try:
            spec, local = visitors.model_spec(model_id)
            data = read_eval_results(resolve(spec, local=local))
        except Exception as e:
            why = visitors.public_text(state.model_problem(e))  # a Hub out of reach: as Classify says it
            notes.append(f"**{model_id}**: cannot read its evaluation results: {why}")
            continue
        if data:  # one entry ferhub cannot show never hides the others
            data, bad = usable(data)
            left_out[model_id] = {key: visitors.public_text(why) for key, why in bad}
            notes += [f"**{model_id}**: left out {why}" for why in left_out[model_id].values()]
        if not data or not data.get("results"):
            notes.append(
                f"**{model_id}** has no evaluation results yet: evaluate it below on a labelled set."
            )
            continue
        results[model_id] = data["results"]
    return results, notes, left_out


def _merge(repo: Results, fresh: Results | None) -> Results:
    merged = {m: dict(r) for m, r in repo.items()}
    for model_id, entries in (fresh or {}).items():
        merged.setdefault(model_id, {}).update(entries)
    return merged


@visitors.action("eval_datasets", retry="Try again.")
def dataset_choices(
    model_ids: list[str] | None, fresh: Results | None, latest: str | None = None
) -> tuple[gr.Dropdown, str, gr.Accordion]:
    """The dataset/split keys any chosen model has results for (fresh ones first, ``latest`` picked), the
    notes, and the "evaluate now" section, opened when a model has no results."""
    ids = _models(model_ids)
    repo, notes, _ = repo_results(ids)
    # a model evaluated in this session has results now, whatever its repo holds
    notes = [n for n in notes if not any(n.startswith(f"**{m}** has no") for m in (fresh or {}))]
    results = _merge(repo, fresh)
    keys: dict[str, str] = {}
    for model_id in ids:
        for key, entry in results.get(model_id, {}).items():
            keys.setdefault(key, dataset_name(key, entry))
    if fresh:
        fresh_keys = [*([latest] if latest else []), *(k for entries in fresh.values() for k in entries)]
        keys = {k: keys[k] for k in dict.fromkeys([*fresh_keys, *keys]) if k in keys}
    choices = [(label, key) for key, label in keys.items()]
    text = "\n\n".join(notes) if notes else ""
    if not choices:
        text = (
            text + "\n\n" if text else ""
        ) + "No evaluation results for these models: evaluate them below."
    picker = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None)
    return picker, text, gr.Accordion(open=bool(notes) or not choices)


def _entries(
    model_ids: list[str] | None, key: str | None, fresh: Results | None
) -> tuple[list[str], Entries, dict[str, str]]:
    """The picked models, their entries for ``key``, and why a model's entry for it was left out."""
    ids = _models(model_ids)
    repo, _, left_out = repo_results(ids)
    results = _merge(repo, fresh)
    entries = {m: results[m][key] for m in ids if key and key in results.get(m, {})}
    return ids, entries, {m: bad[key] for m, bad in left_out.items() if key in bad and m not in entries}


def panel_classes(entries: Entries, show_all: bool) -> list[str]:
    """The class axis every panel shares: ferhub's order, a model's extra classes after it; unless
    ``show_all``,
    without the classes no set has images of and no model predicts."""
    from ferhub.plots import class_order, used_classes

    order = class_order([e["labels"] for e in entries.values()])
    return order if show_all else used_classes(entries, order)


def _pair(names: list[str], a: str | None, b: str | None) -> tuple[str | None, str | None]:
    """The pair the difference matrix shows: the visitor's pick while it has results, else the first two."""
    a = a if a in names else (names[0] if names else None)
    b = b if b in names and b != a else next((n for n in names if n != a), None)
    return a, b


def _difference(
    entries: Entries, a: str | None, b: str | None, labels: list[str], names: dict[str, str]
) -> gr.Plot:
    """The difference matrix of ``a`` and ``b``, titled by their ``names`` (:func:`display_names`)."""
    from ferhub.plots import difference_matrix_figure

    if a is None or b is None:
        return gr.Plot(None, visible=False)
    figure = difference_matrix_figure(
        entries[a], entries[b], names=(names[a], names[b]), labels=labels, autosize=True
    )
    return gr.Plot(figure, visible=True)


def _incomplete(key: str | None, e: Exception) -> gr.Error:
    return gr.Error(
        f"Cannot draw the results for {key!r}: {type(e).__name__} {e}. Re-run the evaluation to rewrite "
        "eval_results.json.",
        title="Incomplete results",
    )


@visitors.action("dashboard", retry="Try again.")
def dashboard(
    model_ids: list[str] | None,
    key: str | None,
    view: str,
    fresh: Results | None,
    show_all: bool = False,
    pair_a: str | None = None,
    pair_b: str | None = None,
) -> tuple[Any, ...]:
    """Figures for one dataset key, every class axis in one order (:func:`panel_classes`): up to 4 confusion
    matrices, the pair picker and the difference of the picked pair, per-class recall bars, the metrics table
    and what its averages average over (rows for the models that have results for ``key``)."""
    key = visitors.text(key, "The dataset / split") or None
    try:
        return _dashboard(model_ids, key, view, fresh, show_all, pair_a, pair_b)
    except gr.Error:  # a ValueError too ("Pick at least 1 model"): the visitor's message as it is
        raise
    except (KeyError, TypeError, ValueError) as e:  # a results file that lacks what a figure needs
        raise _incomplete(key, e) from e


def _dashboard(
    model_ids: list[str] | None,
    key: str | None,
    view: str,
    fresh: Results | None,
    show_all: bool,
    pair_a: str | None,
    pair_b: str | None,
) -> tuple[Any, ...]:
    state.heavy_imports()
    from ferhub.plots import (
        averaging_notes,
        entry_confusion_figure,
        has_confusion,
        metrics_rows,
        missing_note,
        model_title,
        per_class_figure,
    )

    ids, entries, left_out = _entries(model_ids, key, fresh)
    called = display_names(ids)  # a folder by its name (and parents where two share it), not its server path
    # every entry has its metrics row; the matrices and the difference are of those with a confusion matrix
    matrices = {m: e for m, e in entries.items() if has_confusion(e)}
    labels = panel_classes(matrices, show_all)
    confusion = [
        gr.Plot(
            entry_confusion_figure(
                e,
                normalize=view == NORMALISED,
                toggle=False,
                title=model_title(called[m], view),
                labels=labels,
                autosize=True,
            ),
            visible=True,
        )
        for m, e in matrices.items()
    ]
    confusion += [gr.Plot(None, visible=False)] * (MAX_MODELS - len(confusion))
    names = list(matrices)
    a, b = _pair(names, pair_a, pair_b)
    choices = [(called[n], n) for n in names]
    pickers = [gr.Dropdown(choices=choices, value=v, visible=len(names) >= 2) for v in (a, b)]
    shown = {called[m]: e for m, e in entries.items()}
    with_classes = {m: e for m, e in shown.items() if e.get("per_class")}
    recall = (
        gr.Plot(per_class_figure(with_classes, labels=labels if matrices else None), visible=True)
        if with_classes
        else gr.Plot(None, visible=False)
    )
    if entries:
        header, rows = metrics_rows(shown)
        table = gr.Dataframe(value=rows, headers=header, visible=True)
        legend = "**What the averages average over.** " + "  \n".join(averaging_notes(shown))
    else:
        table, legend = gr.Dataframe(value=None, visible=False), ""
    hidden = [c for c in panel_classes(matrices, True) if c not in labels]
    missing = [m for m in ids if m not in entries and m not in left_out]
    drawn = ("confusion matrix", "per-class results")  # what the dashboard draws besides the table
    lacking = [missing_note(n, e, drawn) for n, e in shown.items()]
    note = " ".join(
        [
            f"No results on this dataset for: {', '.join(missing)} (evaluate below)."
            if missing and key
            else "",
            *(f"{m}: its results on this dataset were left out: {why}." for m, why in left_out.items()),
            *(f"{text}." for text in lacking if text),
            f"Hidden (no images, never predicted): {', '.join(hidden)}." if hidden else "",
        ]
    ).strip()
    return (*confusion, *pickers, _difference(matrices, a, b, labels, called), recall, table, legend, note)


def dashboard_cleared() -> tuple[Any, ...]:
    """The evaluation dashboard for a new choice of models: no panels, no notes, until "Load results" is
    pressed again (a removed model's matrices, difference and metrics stayed on screen beside a picker that no
    longer named it; "Same photo" clears its outputs the same way, :func:`agreement_headers`). Its outputs:
    the dashboard's (:func:`dashboard`), then the notes."""
    plot = gr.Plot(None, visible=False)
    pair = gr.Dropdown(choices=[], value=None, visible=False)
    return (*[plot] * MAX_MODELS, pair, pair, plot, plot, gr.Dataframe(value=None, visible=False), "", "", "")


@visitors.action("difference", retry="Try again.")
def difference_plot(
    model_ids: list[str] | None,
    key: str | None,
    fresh: Results | None,
    show_all: bool,
    pair_a: str | None,
    pair_b: str | None,
) -> gr.Plot:
    """The difference matrix of the picked pair (B minus A), on the dashboard's class axis."""
    state.heavy_imports()
    key = visitors.text(key, "The dataset / split") or None
    try:
        from ferhub.plots import has_confusion

        ids, entries, _ = _entries(model_ids, key, fresh)
        entries = {m: e for m, e in entries.items() if has_confusion(e)}
        a, b = _pair(list(entries), pair_a, pair_b)
        return _difference(entries, a, b, panel_classes(entries, show_all), display_names(ids))
    except gr.Error:  # a ValueError too: the visitor's message as it is (see dashboard)
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise _incomplete(key, e) from e


# -- (c) evaluate now
# ------------------------------------------------------------------------------------------
@visitors.action("evaluate", retry="Try again, or another labelled set.")
def evaluate_now(
    model_ids: list[str] | None,
    upload: Any,
    dataset: str | None,
    split: str | None,
    fresh: Results | None,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects the tracker through this default
) -> tuple[Results, str, list[str], Any, str]:
    """Evaluate the chosen models on an uploaded zip of class folders or a Hub dataset id (a server path only
    where the server allows it), opened under the server's caps (:func:`ferhub.ui.visitors.open_dataset`).

    Returns the fresh results (merged into the session's), a status line, the downloadable files
    (one ``eval_results.json`` per model and the HTML report, naming images relative to the set: no server
    paths), the new dataset picker and the dashboard's notes (the evaluated models have results now).
    """
    state.heavy_imports()
    from ferhub import eval_results, evaluation
    from ferhub.fileio import fit_parts
    from ferhub.report import Section, write_report

    ids = _models(model_ids)
    upload = upload if isinstance(upload, str) and upload else None
    dataset = visitors.text(dataset, "The Hub dataset id")
    split = visitors.text(split, "The split")
    if not upload and not dataset.strip():
        raise gr.Error(
            "Upload a zip of class folders (or give a Hub dataset id) to evaluate on.", title="No data"
        )
    progress(0, desc="opening the labelled set")
    try:
        source = visitors.open_dataset(upload, dataset, (split or "").strip() or None)
    except (ValueError, OSError) as e:  # refused (a zip bomb, too many images, a server path) or unreadable
        raise gr.Error(str(e), title="Data refused") from e
    predictor = state.cache().predictor(ids)

    def step(done: int, total: int, message: str = "evaluating") -> None:
        visitors.stop_if_gone()  # after each chunk of images: a cancelled evaluation stops here
        progress((done, total), desc=message)

    # detections kept in memory for this evaluation only: the persistent cache (~/.cache/ferhub/faces) kept
    # every visitor image's hash and face forever, past the scratch sweeps, and was re-read whole each time
    from ferhub.data import FaceCache

    faces = FaceCache(predictor.detector, persist=False)
    not_finite = None
    try:
        runs = evaluation.evaluate(ids, source, predictor=predictor, progress=step, cache=faces)
    except (gr.Error, visitors.Gone):
        raise
    except evaluation.NotFiniteError as e:  # the models that gave NaN named, the others' results shown
        if not e.runs:
            raise gr.Error(f"Evaluation failed: {e}", title="Evaluation failed") from e
        runs, not_finite = e.runs, e
    except Exception as e:  # the user's data or model: say what went wrong, keep the app alive
        # (every image over the app's pixel limit: the decoder's advice is a Python caller's)
        why = state._for_visitors(str(e), f"downscale the images to {state.MAX_PIXELS / 1e6:g} MP or less")
        raise gr.Error(f"Evaluation failed: {why}", title="Evaluation failed") from e
    out = scratch.work_dir("ferhub-eval-")
    merged = {m: dict(v) for m, v in (fresh or {}).items()}
    files = []
    roots = [Path(upload).parent] if upload else [Path(r) for r in [getattr(source, "root", None)] if r]
    entries = {run.name: visitor_copy(run.entry, roots) for run in runs}
    for run in runs:
        merged.setdefault(run.name, {})[run.key] = entries[run.name]
        written = eval_results.write(
            evaluation.results_copy(out, run.name), {run.key: entries[run.name]}, render_card=False
        )
        # the download's name: the model's, cut to fit the 255 bytes a file name may have
        download = fit_parts([evaluation.slug(run.name)], ".eval_results.json")
        files.append(shutil.copy(written, out / download))
    key = runs[0].key
    report = write_report(
        out / "report.html",
        [
            Section(
                title=dataset_name(key, runs[0].entry),
                entries=entries,
                predictions={
                    run.name: dataclasses.replace(
                        run.predictions, paths=visitor_copy(run.predictions.paths, roots)
                    )
                    for run in runs
                },
            )
        ],
    )
    picker, notes, _ = dataset_choices(ids, merged, latest=key)
    where = "the uploaded set" if upload else (dataset or "").strip()
    status = f"Evaluated {len(ids)} model(s) on {runs[0].entry.get('num_images', '?')} images of {where}."
    # named inside the set, as the downloads name them (``set.zip::sad/x.jpg``: the file name alone lost the
    # class folder), never by the server's folder
    unreadable = entries[runs[0].name].get("unreadable") or {}
    if unreadable.get("count"):
        names = ", ".join(str(x.get("path", "")) for x in unreadable.get("examples", [])[:3])
        status += f" {unreadable['count']} image(s) could not be read and were skipped" + (
            f" (e.g. {names})." if names else "."
        )
    called = display_names(ids)
    status += "".join(_unpredictable_note(run, called.get(run.name, short_name(run.name))) for run in runs)
    if not_finite is not None:
        status += f" {visitor_copy(str(not_finite), roots)}."
    return merged, status, [str(p) for p in [*files, report]], picker, notes


def _unpredictable_note(run: Any, name: str) -> str:
    """A sentence for a model (called ``name``, :func:`display_names`) that cannot predict some of the set's
    classes (a ``contempt/`` folder for a 7-class model): those images count as wrong, which an accuracy alone
    does not say."""
    counts = {k: v for k, v in run.entry["label_mapping"]["unpredictable"].items() if v}
    if not counts:
        return ""
    classes = ", ".join(f"{label} ({n})" for label, n in counts.items())
    return f" {name} cannot predict {classes}: those {sum(counts.values())} image(s) count as wrong."


def visitor_copy(value: Any, roots: list[Path]) -> Any:
    """``value`` (an ``eval_results`` entry, a list of image paths) with every image path relative to the
    set's folder (``set.zip::sad/x.jpg``, not the server's upload folder before it) and any other server path
    cut to its last part: what the app serves a visitor to download."""
    if isinstance(value, dict):
        return {k: visitor_copy(v, roots) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(visitor_copy(v, roots) for v in value)
    if not isinstance(value, str):
        return value
    for root in roots:
        value = value.replace(f"{str(root).rstrip('/')}/", "")
    return visitors.public_text(value)


def build(models: list[str]) -> None:
    """Lay out the Compare tab."""
    default = models[:2] if len(models) >= 2 else models
    chosen = gr.Dropdown(
        models,
        value=default,
        multiselect=True,
        max_choices=MAX_MODELS,
        allow_custom_value=True,
        label=f"Models to compare (2-4; {visitors.model_kinds(plural=True)})",
        elem_id="compare-models",
    )
    fresh = gr.State({})
    with gr.Tab("Same photo"), gr.Row():
        with gr.Column(scale=1):
            photo = gr.Image(
                type="filepath",
                sources=["upload", "clipboard"],
                label="Photo",
                height=300,
                elem_id="compare-photo",
            )
            run = gr.Button("Compare on this photo", variant="primary", elem_id="compare-photo-button")
            examples = state.example_photos()
            if examples:
                gr.Examples(examples, inputs=photo, elem_id="compare-examples")  # named: classify.EXAMPLES_JS
        with gr.Column(scale=2):
            summary = gr.Markdown(elem_id="compare-summary")
            gallery = gr.Gallery(
                label="Each model",
                columns=2,
                height=420,
                object_fit="contain",  # the whole photo: "cover" cropped it to a square, hiding faces
                elem_id="compare-gallery",
            )
            table = gr.Dataframe(
                headers=_agreement_header(default),
                interactive=False,
                label="Per-face agreement",
                elem_id="compare-agreement",
            )
            agreement_plot = gr.Plot(label="Agreement between models over the faces")
    with gr.Tab("Evaluation results"):
        with gr.Row():
            dataset_key = gr.Dropdown([], label="Dataset / split", elem_id="compare-dataset", scale=3)
            view = gr.Radio([COUNTS, NORMALISED], value=COUNTS, label="Confusion matrix", scale=2)
            show_all = gr.Checkbox(
                False,
                label="Show classes with no images and no predictions",
                elem_id="compare-show-all",
                scale=2,
            )
            refresh = gr.Button("Load results", scale=1, elem_id="compare-load")
        notes = gr.Markdown(elem_id="compare-notes")
        dataset_note = gr.Markdown(elem_id="compare-dataset-note")
        # two panels a row: each stays wide enough for 8 classes and its colour bar on 1280-1920 px screens
        confusion = []
        for row in range(MAX_MODELS // 2):
            with gr.Row(equal_height=True):
                confusion += [
                    gr.Plot(visible=False, label="Confusion matrix", elem_id=f"compare-confusion-{i}")
                    for i in (2 * row, 2 * row + 1)
                ]
        with gr.Row():
            with gr.Column():
                with gr.Row():
                    pair = [
                        gr.Dropdown([], label=label, elem_id=f"compare-pair-{tag}", visible=False)
                        for label, tag in (
                            ("Difference of model A...", "a"),
                            ("...and model B (cells: B - A)", "b"),
                        )
                    ]
                difference = gr.Plot(visible=False, label="Difference", elem_id="compare-difference")
            recall = gr.Plot(visible=False, label="Per-class recall", elem_id="compare-recall")
        metrics = gr.Dataframe(visible=False, interactive=False, label="Metrics", elem_id="compare-metrics")
        averages = gr.Markdown(elem_id="compare-averages")
        with gr.Accordion("Evaluate now on a labelled set", open=False) as evaluate_section:
            with gr.Row():
                upload = gr.File(
                    label="Zip of class folders (angry/, happy/, ...)", file_types=[".zip"], type="filepath"
                )
                with gr.Column():
                    dataset = gr.Textbox(label="...or a Hub dataset id", placeholder="org/dataset")
                    split = gr.Textbox(label="Split (optional)", placeholder="test")
            evaluate = gr.Button("Evaluate", variant="primary", elem_id="compare-evaluate")
            status = gr.Markdown(elem_id="compare-eval-status")
            files = gr.File(
                label="eval_results.json and HTML report", file_count="multiple", interactive=False
            )

    # preprocess=False: the upload's payload as it comes (Gradio has checked and cached its file), decoded
    # once by ferhub, whose errors are one clear line; Gradio's own preprocessing opened it first and failed
    # with its own message (the server path included) on a corrupt or oversized photo
    latest = state.LATEST  # every event here runs again for what the visitor did while it ran
    same_photo = [gallery, table, agreement_plot, summary]
    compared = run.click(
        compare_photo, [photo, chosen], same_photo, api_name="compare_photo", preprocess=False, **latest
    )
    state.clear_on_failure(compared, same_photo, clear_js(), "clear_compare_photo", inputs=[chosen])
    chosen.change(agreement_headers, chosen, same_photo, api_name="agreement_headers", **latest)
    figures = [*confusion, *pair, difference, recall, metrics, averages, dataset_note]
    inputs = [chosen, dataset_key, view, fresh, show_all, *pair]
    chosen.change(dashboard_cleared, None, [*figures, notes], api_name="dashboard_cleared", **latest)
    pick = refresh.click(
        dataset_choices,
        [chosen, fresh],
        [dataset_key, notes, evaluate_section],
        api_name="eval_datasets",
        **latest,
    )
    pick.success(dashboard, inputs, figures, api_name="dashboard", **latest)
    dataset_key.input(dashboard, inputs, figures, api_name="dashboard_dataset", **latest)
    view.change(dashboard, inputs, figures, api_name="dashboard_view", **latest)
    show_all.change(dashboard, inputs, figures, api_name="dashboard_classes", **latest)
    for picker, tag in zip(pair, "ab"):
        picker.input(
            difference_plot,
            [chosen, dataset_key, fresh, show_all, *pair],
            difference,
            api_name=f"difference_{tag}",
            **latest,
        )
    done = evaluate.click(
        evaluate_now,
        [chosen, upload, dataset, split, fresh],
        [fresh, status, files, dataset_key, notes],
        api_name="evaluate",
        **latest,
    )
    done.success(dashboard, inputs, figures, api_name="dashboard_fresh", **latest)
