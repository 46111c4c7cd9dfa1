"""Expressions over time as data, figures and tables: one code path for the app's Video tab, the webcam's
recorded timeline and ``ferhub report``.

Everything starts from frame dicts in the shape ``ferhub predict --format json`` writes for a video
(``{"frame", "time", "faces": [{"face_id", "probabilities", "smoothed", "predictions"?...}]}``), so a results
file on disk and a run in memory draw the same way.

>>> data = collect(frames)                                    # doctest: +SKIP
>>> figure(data).show()                                       # doctest: +SKIP
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_PEOPLE = 12  # subplots drawn at most (the people longest on screen); the table lists everyone
# a person with no sample for longer than this many sampling intervals was off screen: their lines break
# there instead of running straight across the absence (one missed sample, 2 intervals, is no absence)
GAP_STEPS = 2.5


@dataclass
class Series:
    """One person's probabilities under one model over time: raw (per frame) and smoothed."""

    face_id: int
    model: str
    labels: list[str]
    time: list[float] = field(default_factory=list)
    raw: list[list[float]] = field(default_factory=list)
    smoothed: list[list[float]] = field(default_factory=list)
    # seconds between the analysed frames (the video's, not this person's); None: this series' own median
    step: float | None = None
    # each sample's position among all analysed frames (from collect): a hole in the frames themselves
    # (variable frame rate, a frozen picture) is no absence, frames without the person are
    seq: list[int] = field(default_factory=list)

    def add(
        self, time: float, raw: Mapping[str, float], smoothed: Mapping[str, float], seq: int | None = None
    ) -> None:
        if seq is not None:
            self.seq.append(seq)
        self.time.append(time)
        self.raw.append([float(raw.get(k, 0.0)) for k in self.labels])
        self.smoothed.append([float(smoothed.get(k, 0.0)) for k in self.labels])

    def gaps(self) -> list[int]:
        """Indices ``i`` where the person was off screen between samples ``i - 1`` and ``i``: no sample for
        more than :data:`GAP_STEPS` sampling intervals, while other frames were analysed."""
        step = self.step if self.step else _median_step(self.time)
        if not step:
            return []
        seq = self.seq if len(self.seq) == len(self.time) else None
        return [
            i
            for i in range(1, len(self.time))
            if self.time[i] - self.time[i - 1] > GAP_STEPS * step and (seq is None or seq[i] - seq[i - 1] > 1)
        ]

    def line(
        self, values: Sequence[Sequence[float]], k: int
    ) -> tuple[list[float | None], list[float | None]]:
        """``x`` and ``y`` of expression ``k`` of ``values`` (:attr:`raw` or :attr:`smoothed`) for plotting,
        broken (a ``None`` point) at each of :meth:`gaps`."""
        xs: list[float | None] = []
        ys: list[float | None] = []
        breaks = set(self.gaps())
        for i, (t, v) in enumerate(zip(self.time, values)):
            if i in breaks:  # plotly leaves a line open at a None point
                xs.append((self.time[i - 1] + t) / 2)
                ys.append(None)
            xs.append(t)
            ys.append(v[k])
        return xs, ys


def _median_step(times: Sequence[float]) -> float | None:
    """The median positive interval between consecutive ``times``; ``None`` with fewer than two distinct."""
    steps = sorted(b - a for a, b in itertools.pairwise(times) if b > a)
    return steps[len(steps) // 2] if steps else None


def _per_model(face: Mapping[str, Any], default_model: str) -> list[Mapping[str, Any]]:
    if face.get("predictions"):
        return face["predictions"]
    return [{"model": default_model, **face}]


def collect(
    frames: Iterable[Mapping[str, Any]], default_model: str = "model"
) -> dict[tuple[int, str], Series]:
    """Frame dicts -> a :class:`Series` per (face id, model), in order of first appearance. A frame marked
    ``restarted`` (a webcam recording's first after the camera was stopped) follows a stretch with no frames
    at all, which breaks the lines as frames without the person do."""
    out: dict[tuple[int, str], Series] = {}
    times: list[float] = []
    n = -1  # the frame's position (see Series.seq)
    for frame in frames:
        n += 2 if frame.get("restarted") else 1
        times.append(float(frame["time"]))
        for face in frame["faces"]:
            for pred in _per_model(face, default_model):
                key = (int(face["face_id"]), str(pred["model"]))
                series = out.get(key)
                if series is None:
                    series = out[key] = Series(key[0], key[1], list(pred["probabilities"]))
                raw = pred["probabilities"]
                series.add(float(frame["time"]), raw, pred.get("smoothed") or raw, n)
    # every analysed frame is listed, faces or not: their spacing is the sampling interval a person's
    # absence is measured against
    step = _median_step(times)
    for series in out.values():
        series.step = step
    return out


# line style of the first, second, ... model's smoothed lines; never "dot", the per-frame lines' style (a
# third model's smoothed lines looked like per-frame values)
_DASHES = ["solid", "dash", "dashdot", "longdash", "longdashdot"]
RAW_DASH = "dot"  # the per-frame lines', as the figure's subtitle says
# a second cue beside each expression's colour (ferhub.drawing.LABEL_COLORS): a marker symbol, shown every so
# often along its smoothed line and in the legend, so a line can be matched to its legend entry without
# telling colours apart (colour-vision deficiencies, a greyscale print)
LABEL_SYMBOLS = {
    "angry": "triangle-up",
    "disgust": "x",
    "fear": "diamond",
    "happy": "circle",
    "sad": "triangle-down",
    "surprise": "star",
    "neutral": "square",
    "contempt": "cross",
}
OTHER_SYMBOLS = ["pentagon", "hexagon", "hourglass", "bowtie", "asterisk-open", "y-up-open"]
MARKERS_PER_LINE = 12  # plotly's marker.maxdisplayed: a few markers spread along a line, not one per frame


def label_symbol(label: str, index: int) -> str:
    """The marker symbol of an expression (a label outside ferhub's sets: one by ``index``, its place)."""
    return LABEL_SYMBOLS.get(label) or OTHER_SYMBOLS[index % len(OTHER_SYMBOLS)]


def figure(data: Mapping[tuple[int, str], Series], *, title: str | None = None, show_raw: bool = True) -> Any:
    """A plotly figure: one panel per person, each expression's smoothed probability as a solid line and its
    raw per-frame value as a faint dotted one; a second model's smoothed lines are dashed, a third's
    dash-dotted... (:data:`_DASHES`). Legend entries toggle an expression across panels."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    people = sorted({k[0] for k in data}, key=lambda i: -_seconds(data, i))[:MAX_PEOPLE]
    people.sort()
    models = list(dict.fromkeys(k[1] for k in data))
    if not people:
        fig = go.Figure()
        fig.update_layout(title=title or "No faces found", height=240, xaxis_title="time (s)")
        return fig
    fig = make_subplots(
        rows=len(people),
        cols=1,
        shared_xaxes=True,
        subplot_titles=[f"face {p}" for p in people],
        vertical_spacing=min(0.08, 0.3 / len(people)),
    )
    shown: set[str] = set()
    for row, person in enumerate(people, 1):
        for m, model in enumerate(models):
            series = data.get((person, model))
            if series is None:
                continue
            suffix = "" if len(models) == 1 else f" · {model}"
            dash = _DASHES[m % len(_DASHES)]
            for trace in _series_traces(series, person, model, dash, suffix, shown=shown, show_raw=show_raw):
                fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(range=[0, 1], title_text="p", row=row, col=1)
    fig.update_xaxes(title_text="time (s)", row=len(people), col=1)
    note = "smoothed (solid) and per frame (dotted)" if show_raw else "smoothed"
    fig.update_layout(
        # the note on a line of its own: one long line was cut off on a phone-width panel
        title=title or f"Expressions over time<br><sup>{note}</sup>",
        height=160 + 190 * len(people),
        legend={"orientation": "h", "y": -0.12 if len(people) < 3 else -0.04},
        margin={"l": 50, "r": 20, "t": 70, "b": 40},
        hovermode="x unified",
    )
    return fig


def _series_traces(
    series: Series,
    person: int,
    model: str,
    dash: str,
    name_suffix: str,
    *,
    shown: set[str],
    show_raw: bool,
) -> list[Any]:
    """``person``'s lines under ``model``: per expression the smoothed line in ``dash`` style, with the
    expression's marker symbol (:data:`LABEL_SYMBOLS`) every so often, and (``show_raw``) the faint dotted
    per-frame one, named the label plus ``name_suffix``. A legend entry is shown only for names not yet in
    ``shown``, which this adds to."""
    import plotly.graph_objects as go

    from ferhub.drawing import label_color
    from ferhub.plots import plot_text

    traces = []
    shown_model = plot_text(model)  # names as they are, never plotly markup or hovertemplate fields
    for k, label in enumerate(series.labels):
        r, g, b = label_color(label)
        name = f"{label}{name_suffix}"
        shown_label, shown_name = plot_text(label), plot_text(name)
        x, y = series.line(series.smoothed, k)
        traces.append(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers",
                name=shown_name,
                legendgroup=shown_name,
                showlegend=name not in shown,
                line={"color": f"rgb({r},{g},{b})", "width": 2, "dash": dash},
                marker={"symbol": label_symbol(label, k), "size": 7, "maxdisplayed": MARKERS_PER_LINE},
                hovertemplate=(
                    f"face {person} {shown_label}: %{{y:.2f}} at %{{x:.2f}} s<extra>{shown_model}</extra>"
                ),
            )
        )
        shown.add(name)
        if show_raw:
            x, y = series.line(series.raw, k)
            traces.append(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    name=f"{shown_name} (raw)",
                    legendgroup=shown_name,
                    showlegend=False,
                    opacity=0.35,
                    line={"color": f"rgb({r},{g},{b})", "width": 1, "dash": RAW_DASH},
                    hovertemplate=(
                        f"face {person} {shown_label} raw: %{{y:.2f}} at %{{x:.2f}} s"
                        f"<extra>{shown_model}</extra>"
                    ),
                )
            )
    return traces


def _seconds(data: Mapping[tuple[int, str], Series], person: int) -> float:
    times = next((s.time for k, s in data.items() if k[0] == person), [])
    return times[-1] - times[0] if times else 0.0


# "first seen" and "last seen": the times of the first and last analysed frames showing the person; "on
# screen" counts each of those frames until the next analysed frame, so it may exceed last minus first seen
SUMMARY_HEADER = [
    "face",
    "first seen (s)",
    "last seen (s)",
    "on screen (s)",
    "mostly",
    "share of time",
    "peak",
]


def summary_rows(tracks: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Rows for :data:`SUMMARY_HEADER` from ``ferhub predict`` track summaries: one per person, or, where
    several models ran, one per person and model, named ``"1 · model"``."""
    rows = []
    for t in tracks:
        per_model = t.get("models") or [t]
        for m in per_model:
            face = t["face_id"] if len(per_model) == 1 else f"{t['face_id']} · {m['model']}"
            share = sorted(m["share"].items(), key=lambda kv: -kv[1])
            shares = ", ".join(f"{k} {v:.0%}" for k, v in share[:3] if v >= 0.005)
            dominant = m.get("dominant")
            peak = m["peaks"].get(dominant) if dominant else None
            peak_text = f"{dominant} {peak['probability']:.2f} at {peak['time']:.1f} s" if peak else "-"
            rows.append(
                [
                    face,
                    round(t["first_time"], 2),
                    round(t["last_time"], 2),
                    round(t["seconds"], 2),
                    dominant or "-",
                    shares or "-",
                    peak_text,
                ]
            )
    return rows
