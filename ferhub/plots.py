"""Plotly figures of evaluation results, shared by the app (``gr.Plot``) and the standalone HTML report.

Every function returns a :class:`plotly.graph_objects.Figure` built from ``eval_results.json`` data, so the
app and the report draw the same thing from the same file without re-running a model. Plotly is imported
here, and this module is imported only by the callers that draw (``import ferhub`` does not import it).

Functions that show several models take ``{model name: eval_results entry}`` (an entry holds ``labels``,
``confusion_matrix``, ``metrics``, ``per_class``, ``calibration``, ``num_images``; see
:mod:`ferhub.eval_results`). Only ``metrics`` is required there: a figure leaves out an entry that lacks what
it draws (:func:`missing_parts`).

>>> fig = confusion_matrix_figure([[5, 1], [2, 7]], ["happy", "sad"])
>>> fig.data[0].customdata[1][0].tolist()   # hover data of true=sad, predicted=happy: count, row percent
[2.0, 22.22222222222222]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ferhub.compare import align_matrix, entries_difference, entry_labels, entry_support
from ferhub.labels import class_order
from ferhub.metrics import row_normalize

TEMPLATE = "plotly_white"
# one colour per model, kept in step across every figure of a page (plotly's ten)
MODEL_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
# past ten models the colours come round again, with another line dash, marker and bar pattern each round (a
# 9th model looked like the 1st): 60 models apart
MODEL_DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
MODEL_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star")
MODEL_PATTERNS = ("", "/", ".", "x", "\\", "+")

Entry = Mapping[str, Any]


@dataclass(frozen=True)
class ModelStyle:
    """How the ``i``-th model of a page is drawn in every figure (:func:`model_style`)."""

    color: str
    dash: str  # of its lines
    symbol: str  # of its markers
    pattern: str  # of its bars ("": filled)


def model_style(i: int) -> ModelStyle:
    """The ``i``-th model's colour and, past :data:`MODEL_COLORS`, its round's dash, marker and pattern."""
    k = (i // len(MODEL_COLORS)) % len(MODEL_DASHES)
    return ModelStyle(
        MODEL_COLORS[i % len(MODEL_COLORS)], MODEL_DASHES[k], MODEL_SYMBOLS[k], MODEL_PATTERNS[k]
    )


def plot_text(text: object) -> str:
    """``text`` (a model, label or dataset name) to be shown as it is in a plotly figure: plotly reads
    ``<b>``, ``<i>``, ``<br>``... in titles, legends, ticks, hovers and table cells, and fills in
    ``%{...}`` in a hovertemplate (a model named ``%{x} v2`` showed as ``angry v2``), so ``&``, ``<``,
    ``>`` and ``%`` go as entities, which plotly draws as the characters. Every name on its way into a
    figure goes through here (plots, timeline).

    >>> plot_text("<b>a</b> & %{x}")
    '&lt;b&gt;a&lt;/b&gt; &amp; &#37;{x}'
    """
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("%", "&#37;")


def _plot_texts(texts: Sequence[object]) -> list[str]:
    return [plot_text(t) for t in texts]


def has_confusion(entry: Entry) -> bool:
    """Whether an entry has the labels and confusion matrix that the class axes and matrices are drawn from
    (the schema lets results written by other tools leave them out)."""
    return bool(entry.get("labels")) and entry.get("confusion_matrix") is not None


def missing_parts(entry: Entry) -> list[str]:
    """What of the figures' data an entry lacks, in words (empty for a complete entry)."""
    parts = {
        "confusion matrix": has_confusion(entry),
        "per-class results": bool(entry.get("per_class")),
        "calibration": entry.get("calibration") is not None,
    }
    return [name for name, present in parts.items() if not present]


def missing_note(
    name: str, entry: Entry, drawn: Sequence[str] = ("confusion matrix", "per-class results", "calibration")
) -> str | None:
    """What an entry lacks of the ``drawn`` figures' data (:func:`missing_parts`), as a sentence for the
    report and the app; ``None`` when it lacks none of it."""
    missing = [part for part in missing_parts(entry) if part in drawn]
    if not missing:
        return None
    what = ", ".join(missing[:-1]) + (" or " if len(missing) > 1 else "") + missing[-1]
    return f"{name}: its results hold no {what}; the panels that need them leave it out"


def _support(entry: Entry) -> dict[str, float]:
    """Images per true class: the per-class support where the entry has it (it counts images without a
    prediction too), else the confusion matrix's row sums."""
    return dict(zip(entry_labels(entry), entry_support(entry).tolist()))


def _predicted(entry: Entry) -> dict[str, float]:
    if not has_confusion(entry):
        return {}
    cm = np.asarray(entry["confusion_matrix"], dtype=np.float64)
    return {c: float(cm[:, i].sum()) for i, c in enumerate(entry["labels"])}


def used_classes(entries: Mapping[str, Entry], labels: Sequence[str]) -> list[str]:
    """The classes of ``labels`` that some entry has images of or predicts; the others would be empty rows and
    columns in every matrix (a model's class the data lacks and no model predicted)."""
    used = {c for e in entries.values() for d in (_support(e), _predicted(e)) for c, n in d.items() if n > 0}
    return [c for c in labels if c in used]


def averaging_notes(entries: Mapping[str, Entry]) -> list[str]:
    """Per model, the classes mean class recall and macro-F1 average over. They differ when a model predicts a
    class the data lacks: recall averages the classes with images, macro-F1 also those predicted (F1 = 0)."""
    notes = []
    for name, entry in entries.items():
        if not has_confusion(entry):  # what it predicts is not known: nothing to say
            continue
        support, predicted = _support(entry), _predicted(entry)
        present = [c for c in entry["labels"] if support[c] > 0]
        extra = [c for c in entry["labels"] if support[c] == 0 and predicted[c] > 0]
        note = f"{name}: mean class recall averages the {len(present)} classes with images"
        if extra:
            note += (
                f"; macro-F1 averages those and the {len(extra)} it predicts that have none "
                f"({', '.join(extra)}; F1 = 0 there), so it is lower"
            )
        else:
            note += "; macro-F1 averages the same classes"
        notes.append(note)
    return notes


def _name_lines(name: str, width: int = 40) -> list[str]:
    """``name`` broken into lines of at most ``width`` characters (after '/', '-', '_' or a space; a part
    longer than that on a line of its own), each ready for plotly (:func:`plot_text`)."""
    lines, line = [], ""
    for part in re.split(r"(?<=[/_ -])", name):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    lines.append(line)
    return _plot_texts(lines)


def model_title(name: str, what: str, width: int = 40) -> str:
    """A figure title naming a model in full: a long name broken into lines of at most ``width`` characters
    (after '/', '-' or '_'), what the figure shows on a line below (one line cut a long name and its
    "counts" off at the panel's edge, and two names differing at their end looked alike). Both are shown as
    they are (:func:`plot_text`)."""
    return "<br>".join(_name_lines(name, width)) + f"<br><sup>{plot_text(what)}</sup>"


def _square_layout(fig: go.Figure, labels: Sequence[str], title: str, *, autosize: bool = False) -> go.Figure:
    """Square cells; a fixed size for standalone pages, or the width of the container (``autosize``, the
    app: side-by-side panels fit from 1280 to 1920 px wide screens)."""
    # in the app a panel is half a screen wide: taller panels give the square cells that room
    size = max(440 if autosize else 360, (56 if autosize else 48) * len(labels) + 150)
    # the title hangs from the top, below the modebar, a line (22 px) under another, then room for the view
    # buttons: plotly's default place, the middle of the top margin, ran a title of many lines (the
    # difference matrix's two names) down into the matrix. Its text starts some 15 px above the point "top"
    # anchors (measured in Chromium: at y=1 the first line was cut off), so 44 px down puts it 29 px below
    top = max(70, 52 + 22 * (title.count("<br>") + 1))
    height = size + top - 70
    fig.update_layout(
        title={"text": title, "y": 1 - 44 / height, "yref": "container", "yanchor": "top"},
        template=TEMPLATE,
        height=height,
        xaxis={"title": "predicted", "side": "bottom", "tickangle": -30, "constrain": "domain"},
        yaxis={"title": "true", "autorange": "reversed", "scaleanchor": "x", "constrain": "domain"},
        margin={"l": 90, "r": 20, "t": top, "b": 80},
    )
    if autosize:
        fig.update_layout(autosize=True)
    else:
        fig.update_layout(width=size + 80)
    return fig


def _confusion_views(counts: np.ndarray, support: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """The "counts" and "row %" views of a confusion matrix: heatmap values, cell texts and colour maximum.
    The percentages are of each true class's ``support`` where given (images without a prediction, which
    have no cell, included), so that the diagonal is the class's recall."""
    percent = row_normalize(counts, support) * 100.0
    return {
        "counts": {"z": counts, "text": [[f"{int(v)}" for v in row] for row in counts], "zmax": None},
        "row %": {"z": percent, "text": [[f"{v:.0f}%" for v in row] for row in percent], "zmax": 100.0},
    }


def _confusion_heatmap(
    views: Mapping[str, Mapping[str, Any]], labels: Sequence[str], *, normalize: bool
) -> go.Heatmap:
    """The heatmap trace showing the initial view, with count and row percent in the hover of every cell."""
    initial = views["row %" if normalize else "counts"]
    return go.Heatmap(
        z=initial["z"],
        x=_plot_texts(labels),
        y=_plot_texts(labels),
        text=initial["text"],
        texttemplate="%{text}",
        customdata=np.stack([views["counts"]["z"], views["row %"]["z"]], axis=-1),
        hovertemplate=(
            "true: %{y}<br>predicted: %{x}<br>count: %{customdata[0]:.0f}"
            "<br>%{customdata[1]:.1f}% of true %{y}<extra></extra>"
        ),
        colorscale="Blues",
        zmin=0,
        zmax=initial["zmax"],
        colorbar={"title": "% of row" if normalize else "count"},
    )


def _view_toggle(views: Mapping[str, Mapping[str, Any]], *, normalize: bool) -> dict[str, Any]:
    """An updatemenu of buttons that restyle the heatmap to each view, the initial one active."""
    buttons = [
        {
            "label": name,
            "method": "restyle",
            "args": [
                {
                    "z": [v["z"]],
                    "text": [v["text"]],
                    "zmax": [v["zmax"]],
                    "zauto": [v["zmax"] is None],
                    "colorbar.title.text": ["% of row" if name == "row %" else "count"],
                }
            ],
        }
        for name, v in views.items()
    ]
    return {
        "type": "buttons",
        "direction": "right",
        "buttons": buttons,
        "active": 1 if normalize else 0,
        "x": 1.0,
        "xanchor": "right",
        "y": 1.01,
        "yanchor": "bottom",
        "showactive": True,
    }


def confusion_matrix_figure(
    matrix: Sequence[Sequence[float]] | np.ndarray,
    labels: Sequence[str],
    *,
    normalize: bool = False,
    toggle: bool = True,
    title: str = "Confusion matrix",
    autosize: bool = False,
    support: Sequence[float] | np.ndarray | None = None,
) -> go.Figure:
    """Heatmap of a confusion matrix in counts (rows = true, columns = predicted), or row-normalised.

    Hover shows true/predicted class, the count and the percent of the true class. ``support``: the images of
    each true class, when some have no prediction (and so no cell): the percentages are of them, not of the
    row's cells. With ``toggle`` the figure carries "counts" / "row %" buttons that switch the view in the
    browser (app and report).
    """
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix shape {counts.shape} does not match {len(labels)} labels")
    views = _confusion_views(counts, None if support is None else np.asarray(support, dtype=np.float64))
    fig = go.Figure(_confusion_heatmap(views, labels, normalize=normalize))
    if toggle:
        fig.update_layout(updatemenus=[_view_toggle(views, normalize=normalize)])
    return _square_layout(fig, labels, title, autosize=autosize)


def entry_confusion_figure(
    entry: Entry,
    *,
    normalize: bool = False,
    title: str | None = None,
    labels: Sequence[str] | None = None,
    toggle: bool = True,
    autosize: bool = False,
) -> go.Figure:
    """:func:`confusion_matrix_figure` of one ``eval_results`` entry, its classes put in ``labels`` order (a
    class the entry lacks: an empty row and column) when given; rows normalised by the entry's per-class
    support."""
    matrix = entry["confusion_matrix"]
    if labels is not None:
        matrix = align_matrix(matrix, entry["labels"], labels)
    return confusion_matrix_figure(
        matrix,
        entry["labels"] if labels is None else labels,
        normalize=normalize,
        toggle=toggle,
        title=title or "Confusion matrix",
        autosize=autosize,
        support=entry_support(entry, labels),
    )


def difference_matrix_figure(
    entry_a: Entry,
    entry_b: Entry,
    *,
    names: tuple[str, str] = ("A", "B"),
    normalize: bool = True,
    title: str | None = None,
    labels: Sequence[str] | None = None,
    autosize: bool = False,
) -> go.Figure:
    """Heatmap of ``B - A`` between two models' confusion matrices (row-normalised, percentage points).

    Blue on the diagonal and red off it mean B is better; both entries are aligned by class name, in
    ``labels`` order (default: :func:`class_order` of the two).
    """
    order = list(labels) if labels is not None else class_order([entry_a["labels"], entry_b["labels"]])
    labels, diff = entries_difference(entry_a, entry_b, normalize=normalize, labels=order)
    scale = 100.0 if normalize else 1.0
    z = diff * scale
    bound = float(np.abs(z).max()) or 1.0
    unit = "pp" if normalize else ""
    a, b = plot_text(names[0]), plot_text(names[1])
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=_plot_texts(labels),
            y=_plot_texts(labels),
            text=[[f"{v:+.0f}" for v in row] for row in z],
            texttemplate="%{text}",
            hovertemplate=(
                f"true: %{{y}}<br>predicted: %{{x}}<br>{b} - {a}: %{{z:+.1f}} {unit}<extra></extra>"
            ),
            colorscale="RdBu",
            zmid=0,
            zmin=-bound,
            zmax=bound,
            colorbar={"title": unit or "count"},
        )
    )
    # each name in full, broken into lines as the confusion matrices' titles are (one line was cut off at the
    # panel's edge, the first name and often the end of the second with it)
    default = "<br>".join([*_name_lines(names[1]), "minus", *_name_lines(names[0])])
    default += "<br><sup>row %</sup>" if normalize else "<br><sup>counts</sup>"
    return _square_layout(fig, labels, title or default, autosize=autosize)


def per_class_figure(
    entries: Mapping[str, Entry],
    *,
    metric: str = "recall",
    title: str | None = None,
    labels: Sequence[str] | None = None,
) -> go.Figure:
    """Grouped bars of a per-class metric (recall, precision or f1) for several models, classes in ``labels``
    order (default: :func:`class_order` of the entries). An entry without ``per_class`` has no bars."""
    if metric not in ("recall", "precision", "f1"):
        raise ValueError(f"metric must be recall, precision or f1, got {metric!r}")
    if labels is None:
        labels = class_order([list(e.get("per_class") or []) for e in entries.values()])
    fig = go.Figure()
    for i, (name, entry) in enumerate(entries.items()):  # i counts every entry: each keeps its colour
        per = entry.get("per_class")
        if not per:
            continue
        values = [per[c].get(metric) if c in per else None for c in labels]
        support = [per[c].get("support", 0) if c in per else 0 for c in labels]
        style = model_style(i)
        fig.add_bar(
            name=plot_text(name),
            x=_plot_texts(labels),
            y=values,
            customdata=support,
            marker={"color": style.color, "pattern": {"shape": style.pattern}},
            hovertemplate=(
                f"{plot_text(name)}<br>%{{x}}: {metric} %{{y:.3f}}<br>support %{{customdata}}<extra></extra>"
            ),
        )
    fig.update_layout(
        title=title or f"Per-class {metric}",
        template=TEMPLATE,
        barmode="group",
        yaxis={"title": metric, "range": [0, 1]},
        xaxis={"title": "class"},
        legend={"orientation": "h", "y": -0.2},
        height=420,
    )
    return fig


# the reliability diagram: its square plot area, margins around it, and the legend below it (px): a line of
# legend text, and the characters a legend line holds before a name is broken (in the 520 px wide figure)
_RELIABILITY_SIDE, _RELIABILITY_MARGIN = 420, {"l": 70, "r": 30, "t": 60, "b": 60}
_LEGEND_LINE, _LEGEND_WIDTH = 19, 56


def reliability_figure(entries: Mapping[str, Entry], *, title: str = "Reliability diagram") -> go.Figure:
    """Accuracy against confidence per confidence bin (empty bins skipped); the diagonal is perfect
    calibration.

    Marker size grows with the number of images in the bin; the legend carries each model's ECE. An entry
    without ``calibration`` has no line. The legend is a column below the plot, the figure as much taller as
    it needs: with many models a legend of fixed room squeezed the plot to a strip, its axes far past 0 and 1.
    """
    fig = go.Figure()
    fig.add_scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        name="perfect calibration",
        line={"dash": "dash", "color": "black", "width": 1},  # no model's: the palette has no black
    )
    legend_lines = 1
    for i, (name, entry) in enumerate(entries.items()):  # i counts every entry: each keeps its colour
        cal = entry.get("calibration")
        if cal is None:
            continue
        bins = [b for b in cal["bins"] if b["count"] > 0]
        total = sum(b["count"] for b in bins) or 1
        style = model_style(i)
        label = _name_lines(f"{name} (ECE {cal['ece']:.3f})", _LEGEND_WIDTH)
        legend_lines += len(label)
        fig.add_scatter(
            x=[b["confidence"] for b in bins],
            y=[b["accuracy"] for b in bins],
            mode="lines+markers",
            name="<br>".join(label),
            marker={"size": [6 + 24 * (b["count"] / total) ** 0.5 for b in bins], "symbol": style.symbol},
            line={"color": style.color, "dash": style.dash},
            customdata=[[b["lower"], b["upper"], b["count"]] for b in bins],
            hovertemplate=(
                f"{plot_text(name)}<br>confidence %{{customdata[0]:.2f}}-%{{customdata[1]:.2f}}:"
                " %{customdata[2]} images<br>mean confidence %{x:.3f}<br>accuracy %{y:.3f}<extra></extra>"
            ),
        )
    side, margin = _RELIABILITY_SIDE, dict(_RELIABILITY_MARGIN)
    legend_height = _LEGEND_LINE * legend_lines + 10 * (len(fig.data) - 1) + 10  # a gap between entries
    margin["b"] += legend_height
    fig.update_layout(
        title=title,
        template=TEMPLATE,
        # "domain": were the plot area not square after all, it shrinks; the axes never leave 0 to 1
        xaxis={"title": "confidence (top-1 probability)", "range": [0, 1], "constrain": "domain"},
        yaxis={"title": "accuracy", "range": [0, 1], "scaleanchor": "x", "constrain": "domain"},
        # below the x axis' title, in the bottom margin kept for it
        legend={"orientation": "v", "x": 0, "xanchor": "left", "y": -55 / side, "yanchor": "top"},
        margin=margin,
        width=side + margin["l"] + margin["r"],
        height=side + margin["t"] + margin["b"],
    )
    return fig


TABLE_COLUMNS = (
    ("accuracy", "accuracy"),
    ("mean_class_recall", "mean class recall"),
    ("macro_f1", "macro-F1"),
    ("top2_accuracy", "top-2 accuracy"),
    ("nll", "NLL"),
    ("ece", "ECE"),
)


def metrics_rows(entries: Mapping[str, Entry]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted rows of the metrics table (also used as a plain HTML / Gradio dataframe)."""
    header = ["model", *(title for _, title in TABLE_COLUMNS), "images", "no face"]
    rows = []
    for name, entry in entries.items():
        m = entry["metrics"]
        cells = [name]
        for key, _ in TABLE_COLUMNS:
            value = m.get(key)
            # results written by other tools (or older ferhub) may lack a metric: the reader accepts that
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                cells.append("-")
                continue
            text = f"{value:.4f}"
            ci = m.get(f"{key}_ci95")
            if isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
                text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
            cells.append(text)
        no_face = entry.get("no_face") if isinstance(entry.get("no_face"), Mapping) else {}
        cells += [
            str(entry.get("num_images", "")),
            f"{no_face.get('count', 0)} ({no_face.get('policy', '-')})",
        ]
        rows.append(cells)
    return header, rows


def metrics_table_figure(entries: Mapping[str, Entry], *, title: str = "Metrics") -> go.Figure:
    """A table of accuracy (with its bootstrap 95% CI), mean class recall (CI), macro-F1, top-2, NLL, ECE."""
    header, rows = metrics_rows(entries)
    columns = [_plot_texts(col) for col in zip(*rows)] if rows else [[] for _ in header]
    fig = go.Figure(
        go.Table(
            header={"values": header, "fill_color": "#e8eef7", "align": "left", "font": {"size": 12}},
            cells={"values": columns, "align": "left", "height": 26},
        )
    )
    fig.update_layout(title=title, template=TEMPLATE, height=140 + 30 * len(rows), margin={"t": 50, "b": 10})
    return fig


def agreement_figure(
    matrix: Sequence[Sequence[float]] | np.ndarray,
    names: Sequence[str],
    *,
    title: str = "Agreement between models",
    measure: str = "agreement",
    autosize: bool = False,
) -> go.Figure:
    """Heatmap of a pairwise agreement (or kappa) matrix between models, e.g. on unlabelled photos; a fixed
    size for standalone pages, or the container's width (``autosize``, the app: a phone-width panel cut the
    fixed one off)."""
    z = np.asarray(matrix, dtype=np.float64)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=_plot_texts(names),
            y=_plot_texts(names),
            text=[[f"{v:.2f}" for v in row] for row in z],
            texttemplate="%{text}",
            hovertemplate=f"%{{y}} vs %{{x}}<br>{measure} %{{z:.3f}}<extra></extra>",
            colorscale="Viridis",
            zmin=-1 if measure == "kappa" else 0,
            zmax=1,
        )
    )
    fig.update_layout(
        title=title,
        template=TEMPLATE,
        yaxis={"autorange": "reversed", "scaleanchor": "x", "constrain": "domain"},
        xaxis={"constrain": "domain"},
        height=max(340, 90 * len(names) + 140),
    )
    if autosize:
        fig.update_layout(autosize=True)
    else:
        fig.update_layout(width=max(380, 90 * len(names) + 200))
    return fig


def dashboard_figures(entries: Mapping[str, Entry]) -> dict[str, go.Figure]:
    """All the figures of one dataset's results for ``{model name: entry}``, as a dict (the app and the report
    draw the same figures through the functions above, panel by panel, and do not call this).

    Keys: ``metrics``, ``recall``, ``reliability``, ``confusion:<name>`` and ``confusion_normalized:<name>``
    per model, and ``difference:<a>|<b>`` for each later model against the first (models with a confusion
    matrix); every class axis in one :func:`class_order`.
    """
    if not entries:
        raise ValueError("no evaluation results to draw")
    order = class_order([entry_labels(e) for e in entries.values()])
    figs: dict[str, go.Figure] = {
        "metrics": metrics_table_figure(entries),
        "recall": per_class_figure(entries, metric="recall", labels=order),
        "reliability": reliability_figure(entries),
    }
    entries = {name: e for name, e in entries.items() if has_confusion(e)}  # the matrices need one
    for name, entry in entries.items():
        counts = model_title(name, "counts")
        figs[f"confusion:{name}"] = entry_confusion_figure(entry, title=counts, labels=order)
        figs[f"confusion_normalized:{name}"] = entry_confusion_figure(
            entry, normalize=True, title=model_title(name, "row-normalised"), labels=order
        )
    names = list(entries)
    for other in names[1:]:
        figs[f"difference:{names[0]}|{other}"] = difference_matrix_figure(
            entries[names[0]], entries[other], names=(names[0], other), labels=order
        )
    return figs
