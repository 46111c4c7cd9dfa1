"""Plotly figures of evaluation results, shared by the app (``gr.Plot``) and the standalone HTML report.

Every function returns a :class:`plotly.graph_objects.Figure` built from ``eval_results.json`` data, so the
app and the report draw the same thing from the same file without re-running a model. Plotly is imported
here, and this module is imported only by the callers that draw (``import ferhub`` does not import it).

Functions that show several models take ``{model name: eval_results entry}`` (an entry holds ``labels``,
``confusion_matrix``, ``metrics``, ``per_class``, ``calibration``, ``num_images``; see
:mod:`ferhub.evaluation`).

>>> fig = confusion_matrix_figure([[5, 1], [2, 7]], ["happy", "sad"])
>>> fig.data[0].customdata[1][0].tolist()   # hover data of true=sad, predicted=happy: count, row percent
[2.0, 22.22222222222222]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ferhub.compare import entries_difference
from ferhub.metrics import row_normalize

TEMPLATE = "plotly_white"
# one colour per model, kept in step across every figure of a page
MODEL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

Entry = Mapping[str, Any]


def _square_layout(fig: go.Figure, labels: Sequence[str], title: str) -> go.Figure:
    size = max(360, 48 * len(labels) + 150)
    fig.update_layout(
        title=title,
        template=TEMPLATE,
        width=size + 80,
        height=size,
        xaxis={"title": "predicted", "side": "bottom", "tickangle": -30, "constrain": "domain"},
        yaxis={"title": "true", "autorange": "reversed", "scaleanchor": "x"},
        margin={"l": 90, "r": 20, "t": 70, "b": 80},
    )
    return fig


def confusion_matrix_figure(
    matrix: Sequence[Sequence[float]] | np.ndarray,
    labels: Sequence[str],
    *,
    normalize: bool = False,
    toggle: bool = True,
    title: str = "Confusion matrix",
) -> go.Figure:
    """Heatmap of a confusion matrix in counts (rows = true, columns = predicted), or row-normalised.

    Hover shows true/predicted class, the count and the percent of the true class's row. With ``toggle``
    the figure carries "counts" / "row %" buttons that switch the view in the browser (app and report).
    """
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(f"matrix shape {counts.shape} does not match {len(labels)} labels")
    percent = row_normalize(counts) * 100.0
    custom = np.stack([counts, percent], axis=-1)
    views = {
        "counts": {"z": counts, "text": [[f"{int(v)}" for v in row] for row in counts], "zmax": None},
        "row %": {"z": percent, "text": [[f"{v:.0f}%" for v in row] for row in percent], "zmax": 100.0},
    }
    initial = views["row %" if normalize else "counts"]
    fig = go.Figure(
        go.Heatmap(
            z=initial["z"],
            x=list(labels),
            y=list(labels),
            text=initial["text"],
            texttemplate="%{text}",
            customdata=custom,
            hovertemplate=(
                "true: %{y}<br>predicted: %{x}<br>count: %{customdata[0]:.0f}"
                "<br>%{customdata[1]:.1f}% of true %{y}<extra></extra>"
            ),
            colorscale="Blues",
            zmin=0,
            zmax=initial["zmax"],
            colorbar={"title": "% of row" if normalize else "count"},
        )
    )
    if toggle:
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
        fig.update_layout(
            updatemenus=[
                {
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
            ]
        )
    return _square_layout(fig, labels, title)


def entry_confusion_figure(entry: Entry, *, normalize: bool = False, title: str | None = None) -> go.Figure:
    """:func:`confusion_matrix_figure` of one ``eval_results`` entry."""
    return confusion_matrix_figure(
        entry["confusion_matrix"], entry["labels"], normalize=normalize, title=title or "Confusion matrix"
    )


def difference_matrix_figure(
    entry_a: Entry,
    entry_b: Entry,
    *,
    names: tuple[str, str] = ("A", "B"),
    normalize: bool = True,
    title: str | None = None,
) -> go.Figure:
    """Heatmap of ``B - A`` between two models' confusion matrices (row-normalised, percentage points).

    Blue on the diagonal and red off it mean B is better; labels of both entries are aligned by name.
    """
    labels, diff = entries_difference(entry_a, entry_b, normalize=normalize)
    scale = 100.0 if normalize else 1.0
    z = diff * scale
    bound = float(np.abs(z).max()) or 1.0
    unit = "pp" if normalize else ""
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=labels,
            text=[[f"{v:+.0f}" for v in row] for row in z],
            texttemplate="%{text}",
            hovertemplate=(
                f"true: %{{y}}<br>predicted: %{{x}}<br>{names[1]} - {names[0]}: %{{z:+.1f}} {unit}<extra></extra>"
            ),
            colorscale="RdBu",
            zmid=0,
            zmin=-bound,
            zmax=bound,
            colorbar={"title": unit or "count"},
        )
    )
    default = f"{names[1]} minus {names[0]}" + (" (row %)" if normalize else " (counts)")
    return _square_layout(fig, labels, title or default)


def per_class_figure(
    entries: Mapping[str, Entry], *, metric: str = "recall", title: str | None = None
) -> go.Figure:
    """Grouped bars of a per-class metric (recall, precision or f1) for several models."""
    if metric not in ("recall", "precision", "f1"):
        raise ValueError(f"metric must be recall, precision or f1, got {metric!r}")
    from ferhub.labels import union_labels

    labels = list(union_labels(*(list(e["per_class"]) for e in entries.values())))
    fig = go.Figure()
    for i, (name, entry) in enumerate(entries.items()):
        per = entry["per_class"]
        values = [per[c][metric] if c in per else None for c in labels]
        support = [per[c]["support"] if c in per else 0 for c in labels]
        fig.add_bar(
            name=name,
            x=labels,
            y=values,
            customdata=support,
            marker_color=MODEL_COLORS[i % len(MODEL_COLORS)],
            hovertemplate=f"{name}<br>%{{x}}: {metric} %{{y:.3f}}<br>support %{{customdata}}<extra></extra>",
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


def reliability_figure(entries: Mapping[str, Entry], *, title: str = "Reliability diagram") -> go.Figure:
    """Accuracy against confidence per confidence bin (empty bins skipped); the diagonal is perfect calibration.

    Marker size grows with the number of images in the bin; the legend carries each model's ECE.
    """
    fig = go.Figure()
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration", line={"dash": "dash", "color": "gray"}
    )
    for i, (name, entry) in enumerate(entries.items()):
        cal = entry["calibration"]
        bins = [b for b in cal["bins"] if b["count"] > 0]
        total = sum(b["count"] for b in bins) or 1
        fig.add_scatter(
            x=[b["confidence"] for b in bins],
            y=[b["accuracy"] for b in bins],
            mode="lines+markers",
            name=f"{name} (ECE {cal['ece']:.3f})",
            marker={"size": [6 + 24 * (b["count"] / total) ** 0.5 for b in bins]},
            line={"color": MODEL_COLORS[i % len(MODEL_COLORS)]},
            customdata=[[b["lower"], b["upper"], b["count"]] for b in bins],
            hovertemplate=(
                f"{name}<br>confidence %{{customdata[0]:.2f}}-%{{customdata[1]:.2f}}: %{{customdata[2]}} images"
                "<br>mean confidence %{x:.3f}<br>accuracy %{y:.3f}<extra></extra>"
            ),
        )
    fig.update_layout(
        title=title,
        template=TEMPLATE,
        xaxis={"title": "confidence (top-1 probability)", "range": [0, 1]},
        yaxis={"title": "accuracy", "range": [0, 1], "scaleanchor": "x"},
        legend={"orientation": "h", "y": -0.2},
        width=520,
        height=560,
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
            if ci:
                text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
            cells.append(text)
        no_face = entry.get("no_face") or {}
        cells += [
            str(entry.get("num_images", "")),
            f"{no_face.get('count', 0)} ({no_face.get('policy', '-')})",
        ]
        rows.append(cells)
    return header, rows


def metrics_table_figure(entries: Mapping[str, Entry], *, title: str = "Metrics") -> go.Figure:
    """A table of accuracy (with its bootstrap 95% CI), mean class recall (CI), macro-F1, top-2, NLL, ECE."""
    header, rows = metrics_rows(entries)
    columns = [list(col) for col in zip(*rows)] if rows else [[] for _ in header]
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
) -> go.Figure:
    """Heatmap of a pairwise agreement (or kappa) matrix between models, e.g. on unlabelled photos."""
    z = np.asarray(matrix, dtype=np.float64)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(names),
            y=list(names),
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
        yaxis={"autorange": "reversed", "scaleanchor": "x"},
        width=max(380, 90 * len(names) + 200),
        height=max(340, 90 * len(names) + 140),
    )
    return fig


def dashboard_figures(entries: Mapping[str, Entry]) -> dict[str, go.Figure]:
    """All figures of the evaluation dashboard for ``{model name: entry}`` (the app and the report use this).

    Keys: ``metrics``, ``recall``, ``reliability``, ``confusion:<name>`` and ``confusion_normalized:<name>``
    per model, and ``difference:<a>|<b>`` for each later model against the first.
    """
    if not entries:
        raise ValueError("no evaluation results to draw")
    figs: dict[str, go.Figure] = {
        "metrics": metrics_table_figure(entries),
        "recall": per_class_figure(entries, metric="recall"),
        "reliability": reliability_figure(entries),
    }
    for name, entry in entries.items():
        figs[f"confusion:{name}"] = entry_confusion_figure(entry, title=f"{name}: counts")
        figs[f"confusion_normalized:{name}"] = entry_confusion_figure(
            entry, normalize=True, title=f"{name}: row-normalised"
        )
    names = list(entries)
    for other in names[1:]:
        figs[f"difference:{names[0]}|{other}"] = difference_matrix_figure(
            entries[names[0]], entries[other], names=(names[0], other)
        )
    return figs
