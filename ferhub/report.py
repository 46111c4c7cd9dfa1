"""A standalone HTML report of evaluation or video results that opens offline (plotly's JavaScript embedded
once,
packed, and figures drawn as they come into view).

One section per dataset: the metrics table, per-class recall bars, each model's confusion matrix in counts and
row-normalised, the reliability diagram, the comparison of the models (difference matrix; agreement, Cohen's
kappa and McNemar's exact test when per-image predictions are at hand), and the misclassified images as
thumbnails with their true and predicted labels. Video results (``ferhub predict CLIP --format json``) get a
section each: the timeline per person and the per-person summaries.

>>> write_report("report.html", [Section("fer2013 test", {"model": entry})])   # doctest: +SKIP
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import gzip
import html
import io
import itertools
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from ferhub.evaluation import ImagePredictions

THUMB_SIZE = 112


@dataclass
class Example:
    """One misclassified image: a base64 JPEG thumbnail and what the model said."""

    thumbnail: str
    true: str
    predicted: str
    confidence: float
    path: str | None = None
    face_found: bool = True


@dataclass
class Section:
    """One dataset's part of the report: ``{model name: eval_results entry}`` plus optional per-image data,
    and ``left_out``: a line per result of this dataset that could not be shown (who, and what is wrong)."""

    title: str
    entries: Mapping[str, Mapping[str, Any]]
    predictions: Mapping[str, ImagePredictions] = field(default_factory=dict)
    examples: Mapping[str, Sequence[Example]] = field(default_factory=dict)
    left_out: Sequence[str] = ()


def thumbnail_b64(image: Image.Image, box: Sequence[float] | None = None, size: int = THUMB_SIZE) -> str:
    """A JPEG thumbnail (base64) of an image, or of the face ``box`` in it with some context around it."""
    if box is not None:
        x1, y1, x2, y2 = box
        pad = 0.25 * max(x2 - x1, y2 - y1)
        image = image.crop((int(x1 - pad), int(y1 - pad), int(x2 + pad), int(y2 + pad)))
    thumb = image.convert("RGB")
    thumb.thumbnail((size, size))
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=85)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def misclassified_examples(
    predictions: ImagePredictions, image_at: Callable[[int], Image.Image] | None, *, limit: int = 24
) -> list[Example]:
    """Thumbnails of the first ``limit`` misclassified images (``image_at(i)`` returns image ``i``; ``None``:
    no images at hand, no thumbnails).

    The most confidently wrong come first: they say most about what the model mixes up. An image that
    cannot be read now (damaged or changed since it was evaluated) gets no thumbnail; the others still do.
    """
    from ferhub.data.crops import UNREADABLE_IMAGE_ERRORS

    if image_at is None:
        return []
    wrong = [i for i in range(len(predictions.y_true)) if predictions.y_pred[i] != predictions.y_true[i]]
    wrong.sort(key=lambda i: -predictions.confidence[i])
    out: list[Example] = []
    for i in wrong:
        if len(out) >= limit:
            break
        try:
            image = image_at(i)
        except UNREADABLE_IMAGE_ERRORS:
            continue
        pred = predictions.y_pred[i]
        out.append(
            Example(
                thumbnail=thumbnail_b64(image, predictions.boxes[i] if predictions.boxes else None),
                true=predictions.labels[predictions.y_true[i]],
                predicted=predictions.labels[pred] if pred >= 0 else "no face",
                confidence=float(predictions.confidence[i]),
                path=predictions.paths[i] if predictions.paths else None,
                face_found=bool(predictions.face_found[i]),
            )
        )
    return out


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1400px;
     color:#222}
h1{margin-bottom:4px} h2{border-bottom:2px solid #e8eef7;padding-bottom:4px;margin-top:40px}
.meta{color:#666;font-size:13px} .row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
table.m{border-collapse:collapse;font-size:13px;margin:8px 0} table.m td,table.m th{border:1px solid #dde;
padding:4px 8px;text-align:right} table.m th{background:#e8eef7} table.m td:first-child{text-align:left}
.notes{font-size:12px;color:#8a4b00} .grid{display:flex;flex-wrap:wrap;gap:8px}
.ex{width:124px;font-size:11px;text-align:center;border:1px solid #eee;padding:4px}
.ex img{width:112px;height:112px;object-fit:contain;background:#f4f4f4}
.t{color:#2a7a2a}.p{color:#b22}
"""


def unique_name(name: str, taken: Container[str], tag: str) -> str:
    """``name``, or ``name (tag)`` when ``taken`` holds it already (with primes while that is taken too):
    two results of one model are both shown, where keying by name kept the last."""
    if name not in taken:
        return name
    name = f"{name} ({tag})"
    while name in taken:
        name += "'"
    return name


def runs_section(source: Any, runs: Sequence[Any]) -> Section:
    """One section for models evaluated on ``source`` (:class:`ferhub.evaluation.ModelEvaluation` runs):
    every model's metrics and figures, and thumbnails of its misclassified images, found through each row's
    own image index (the images skipped as unreadable have no row). A model given twice is shown twice, the
    second by its place (``name (2)``)."""
    from ferhub.evaluation import image_reader

    names: list[str] = []
    for i, r in enumerate(runs):
        names.append(unique_name(r.name, names, str(i + 1)))
    return Section(
        title=f"{source.name} ({source.split or 'all'})",
        entries={name: r.entry for name, r in zip(names, runs)},
        predictions={name: r.predictions for name, r in zip(names, runs)},
        examples={
            name: misclassified_examples(r.predictions, image_reader(r.predictions, source))
            for name, r in zip(names, runs)
        },
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "m") -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><tr>{head}</tr>{body}</table>'


def _fig(fig: Any) -> str:
    """A placeholder sized like the figure, followed by the figure's JSON; the page's one copy of plotly.js
    draws it once it is near the screen (:data:`_LOADER`)."""
    layout = fig.layout
    style = f"height:{layout.height or 450}px;" + (
        f"width:{layout.width}px;" if layout.width else "width:100%;"
    )
    # "<" escaped inside the JSON: no name or title can close the script element early
    data = fig.to_json().replace("<", "\\u003c")
    return f'<div class="fh-plot" style="{style}"></div><script type="application/json">{data}</script>'


@functools.lru_cache(maxsize=1)
def _plotly_gz_b64() -> str:
    """plotly.js (the version plotly.py ships), gzipped and base64-encoded: 4.8 MB becomes ~1.9 MB."""
    from plotly.offline import get_plotlyjs

    return base64.b64encode(gzip.compress(get_plotlyjs().encode("utf-8"), compresslevel=9, mtime=0)).decode()


# Unpacks plotly.js with the browser's own gunzip (DecompressionStream), then draws the figures near the
# screen first and the rest one by one while the browser is idle: the text shows at once and the page never
# blocks on parsing 4.8 MB of JavaScript up front (measured in bench/report.py).
_LOADER = """
(async () => {
  const status = document.getElementById('fh-loading');
  try {
    const packed = atob(document.getElementById('fh-plotly').textContent.trim());
    const bytes = new Uint8Array(packed.length);
    for (let i = 0; i < packed.length; i++) bytes[i] = packed.charCodeAt(i);
    const code = await new Response(
      new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
    const script = document.createElement('script');
    script.textContent = code;
    document.head.appendChild(script);
  } catch (e) {
    status.textContent = 'The plots need a browser that unpacks gzip (DecompressionStream): ' +
      'a current Chrome, Edge, Firefox or Safari.';
    return;
  }
  status.remove();
  const plots = [...document.querySelectorAll('div.fh-plot')];
  const draw = (div) => {
    if (div.dataset.drawn) return;
    div.dataset.drawn = '1';
    const fig = JSON.parse(div.nextElementSibling.textContent);
    Plotly.newPlot(div, fig.data, fig.layout, {displaylogo: false});
  };
  const near = new IntersectionObserver(
    (seen) => seen.forEach((e) => e.isIntersecting && draw(e.target)), {rootMargin: '600px'});
  plots.forEach((div) => near.observe(div));
  const rest = () => {
    const next = plots.find((div) => !div.dataset.drawn);
    if (next) { draw(next); setTimeout(rest, 0); }
  };
  setTimeout(rest, 50);
})();
"""


def _file_name(path: str | None) -> str | None:
    """The file name of a recorded image path (a zip member's too): one folder given as ``faces`` in one run
    and by its full path in another holds the same images."""
    return None if path is None else path.replace("\\", "/").rpartition("/")[2]


def _to_common(p: ImagePredictions, idx: Sequence[int], labels: Sequence[str]) -> list[int]:
    """Class indices into ``p.labels`` (``y_true`` or ``y_pred``) as indices into ``labels``; -1 stays."""
    from ferhub.compare import labels_to_indices

    mapped = labels_to_indices(p.labels, labels)
    return [int(mapped[i]) if i >= 0 else -1 for i in idx]


def _same_images(a: ImagePredictions, b: ImagePredictions, labels: Sequence[str]) -> bool:
    """Whether two models' per-image rows are of the same images in the same order: as many rows, the same
    true class in each (in the common ``labels``), and the same file name and image index where both
    recorded them. A test folder sampled again to as many images keeps its results key: counting the rows
    alone compared image i of one set with image i of another, and scored B against A's labels."""
    if len(a.y_true) != len(b.y_true) or _to_common(a, a.y_true, labels) != _to_common(b, b.y_true, labels):
        return False
    if a.paths is not None and b.paths is not None:
        names = zip(map(_file_name, a.paths), map(_file_name, b.paths))
        if any(x != y for x, y in names if x is not None and y is not None):
            return False
    return a.indices is None or b.indices is None or list(a.indices) == list(b.indices)


def _image_groups(
    preds: dict[str, ImagePredictions], labels: Sequence[str]
) -> tuple[list[list[str]], dict[str, list[str]]]:
    """The models of ``preds`` in groups run on the same images (:func:`_same_images` of every two in a
    group; each group in the order of ``preds``, a model alone a group of one), and the models left out as
    unsure, each with two models it matches that were run on different images.

    Without file names (a predictions file of another tool) a model matches every set of its size and true
    classes: taken into the first group it matched, it paired two models run on different images, or paired
    with one model or the other by the order given. Such a model is left out, and the groups of the others
    depend on no order."""
    names = list(preds)
    same = {
        (a, b): _same_images(preds[a], preds[b], labels) for i, a in enumerate(names) for b in names[i + 1 :]
    }

    def matches(a: str, b: str) -> bool:
        return a != b and same[(a, b) if names.index(a) < names.index(b) else (b, a)]

    unsure: dict[str, list[str]] = {}
    while True:
        groups: list[list[str]] = []
        for name in (n for n in names if n not in unsure):  # the connected parts of "matches"
            linked = [g for g in groups if any(matches(name, m) for m in g)]
            merged = [m for g in linked for m in g] + [name]
            groups = [g for g in groups if g not in linked] + [sorted(merged, key=names.index)]
        found: dict[str, list[str]] = {}  # a model matching two models that do not match each other
        for group in groups:
            for m, x, y in itertools.product(group, repeat=3):
                if names.index(x) < names.index(y) and matches(m, x) and matches(m, y) and not matches(x, y):
                    found.setdefault(m, [x, y])
        if not found:
            return sorted(groups, key=lambda g: names.index(g[0])), unsure
        unsure.update(found)


def _comparison_html(section: Section) -> str:
    """The paired comparison table of the models run on the same images (each group of such models apart,
    :func:`_image_groups`), and notes naming the models run on images no other model was and those whose
    images cannot be told."""
    from ferhub.compare import compare_predictions, format_rate
    from ferhub.labels import union_labels

    # in the entries' order: A and B as in the metrics table and the difference matrices
    preds = {n: section.predictions[n] for n in section.entries if n in section.predictions}
    if len(preds) < 2:
        return ""
    labels = list(union_labels(*(p.labels for p in preds.values())))
    groups, unsure = _image_groups(preds, labels)
    alone = [g[0] for g in groups if len(g) == 1]
    groups = [g for g in groups if len(g) > 1]
    unsure_note = "".join(
        f'<p class="notes">per-image comparison skipped for {html.escape(name)}: it matches'
        f" {html.escape(x)} and {html.escape(y)}, which were run on different images, and what it recorded"
        f"{' (no file names)' if preds[name].paths is None else ''} does not tell which</p>"
        for name, (x, y) in unsure.items()
    )
    if not groups:
        return (
            '<p class="notes">per-image comparison skipped: the models were run on different images</p>'
            + unsure_note
        )
    left_out = (
        f'<p class="notes">per-image comparison skipped for {html.escape(", ".join(alone))}: run on other'
        " images than the models compared</p>"
        if alone
        else ""
    ) + unsure_note
    results = []
    for group in groups:
        first = preds[group[0]]
        y_true = _to_common(first, first.y_true, labels)  # the same in each model of the group
        predicted = [_to_common(preds[n], preds[n].y_pred, labels) for n in group]
        results.append(compare_predictions(group, predicted, y_true))
    rows = [
        [
            r["a"],
            r["b"],
            f"{r['accuracy_a']:.4f}",
            f"{r['accuracy_b']:.4f}",
            format_rate(r["agreement"]),
            format_rate(r["kappa"]),
            str(r["num_compared"]),
            f"{r['mcnemar']['a_only_correct']} / {r['mcnemar']['b_only_correct']}",
            f"{r['mcnemar']['p_value']:.4g}",
        ]
        for result in results
        for r in result["pairs"]
    ]
    header = [
        "A",
        "B",
        "acc A",
        "acc B",
        "agreement",
        "Cohen's κ",
        "both predicted",
        "only A right / only B right",
        "McNemar p",
    ]
    counts = sorted({result["num_items"] for result in results})
    over = (
        f"all {counts[0]} images"
        if len(counts) == 1
        else f"all the images of the pair ({', '.join(map(str, counts))} images)"
    )
    note = (
        f'<p class="meta">agreement and Cohen\'s κ are over the images both models gave a prediction for '
        f"(both predicted); accuracy and McNemar's test over {over}</p>"
    )
    return "<h3>Paired comparison on the same images</h3>" + _table(header, rows) + note + left_out


def _section_intro_html(section: Section) -> list[str]:
    """The section's title, dataset line, metrics table and the notes on how the metrics were computed."""
    from ferhub import plots

    entries = section.entries
    header, rows = plots.metrics_rows(entries)
    parts = [f"<h2>{html.escape(section.title)}</h2>"]
    first = next(iter(entries.values()))
    dataset = first.get("dataset", {})
    parts.append(
        f'<p class="meta">dataset {html.escape(str(dataset.get("id", "?")))}, split '
        f"{html.escape(str(dataset.get('split', '?')))}, {first.get('num_images', '?')} images</p>"
    )
    parts.append("<h3>Metrics</h3>" + _table(header, rows))
    parts.append('<p class="meta">accuracy and mean class recall with bootstrap 95% confidence intervals</p>')
    parts += [f'<p class="meta">{html.escape(note)}</p>' for note in plots.averaging_notes(entries)]
    return parts


def _entry_notes_html(entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Each entry's notes and its test-time augmentation, if any."""
    parts = []
    for name, entry in entries.items():
        for note in entry.get("notes") or []:
            parts.append(f'<p class="notes">{html.escape(name)}: {html.escape(note)}</p>')
        if entry.get("tta"):  # tta is a flag; tta_method says which (flip, tencrop); older entries lack it
            method = entry.get("tta_method") or ("flip" if entry["tta"] is True else entry["tta"])
            parts.append(
                f'<p class="meta">{html.escape(name)}: test-time augmentation: {html.escape(str(method))}</p>'
            )
    return parts


def _missing_notes_html(entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Per entry that lacks some figure's data (results written by other tools): what it lacks."""
    from ferhub import plots

    notes = (plots.missing_note(name, entry) for name, entry in entries.items())
    return [f'<p class="notes">{html.escape(note)}</p>' for note in notes if note]


def _confusion_html(entries: Mapping[str, Mapping[str, Any]], shown: Sequence[str]) -> list[str]:
    """Per entry a row of two confusion matrices over the ``shown`` classes: counts and row-normalised."""
    from ferhub import plots

    if not entries:
        return []
    parts = ["<h3>Confusion matrices</h3>"]
    for name, entry in entries.items():
        parts.append('<div class="row">')
        counts = plots.entry_confusion_figure(entry, title=plots.model_title(name, "counts"), labels=shown)
        parts.append(_fig(counts))
        parts.append(
            _fig(
                plots.entry_confusion_figure(
                    entry, normalize=True, title=plots.model_title(name, "row-normalised"), labels=shown
                )
            )
        )
        parts.append("</div>")
    return parts


def _comparison_section_html(section: Section, shown: Sequence[str]) -> list[str]:
    """With more than one entry: the first entry's confusion difference to each other (of the entries with a
    confusion matrix), and the paired comparison table; nothing with one entry."""
    from ferhub import plots

    if len(section.entries) <= 1:
        return []
    entries = {n: e for n, e in section.entries.items() if plots.has_confusion(e)}
    names = list(entries)
    parts = ["<h3>Comparison</h3>"]
    if len(names) > 1:
        parts.append("<div class='row'>")
        for other in names[1:]:
            fig = plots.difference_matrix_figure(
                entries[names[0]], entries[other], names=(names[0], other), labels=shown
            )
            parts.append(_fig(fig))
        parts.append("</div>")
    parts.append(_comparison_html(section))
    return parts


def _examples_html(section: Section) -> list[str]:
    """Per entry the grid of its misclassified example thumbnails, most confident first."""
    parts = []
    for name, examples in section.examples.items():
        if not examples:
            continue
        parts.append(
            f"<h3>Misclassified by {html.escape(name)} ({len(examples)} shown, most confident first)</h3>"
        )
        cells = [
            f'<div class="ex"><img alt="{html.escape(e.true)} as {html.escape(e.predicted)}"'
            f' src="data:image/jpeg;base64,{e.thumbnail}"><br><span class="t">true'
            f' {html.escape(e.true)}</span><br><span class="p">pred {html.escape(e.predicted)}'
            f" ({e.confidence:.2f})</span>"
            + ("" if e.face_found else '<br><span class="meta">no face found: whole image</span>')
            + "</div>"
            for e in examples
        ]
        parts.append('<div class="grid">' + "".join(cells) + "</div>")
    return parts


def _section_html(section: Section) -> str:
    """One evaluation section: metrics, notes, per-class recall, confusion matrices, calibration, the
    comparison between entries and the misclassified examples."""
    from ferhub import plots

    entries = section.entries
    left_out = [f'<p class="notes">left out: {html.escape(line)}</p>' for line in section.left_out]
    if not entries:  # every result of this dataset was left out: say which and why
        return "\n".join([f"<h2>{html.escape(section.title)}</h2>", *left_out])
    parts = _section_intro_html(section) + left_out
    # one class order for every panel, of the entries with a confusion matrix (the schema lets other tools'
    # results leave it out); classes nobody has images of or predicts are left out
    matrices = {name: e for name, e in entries.items() if plots.has_confusion(e)}
    order = plots.class_order([e["labels"] for e in matrices.values()])
    shown = plots.used_classes(matrices, order)
    if len(shown) < len(order):
        left_out = ", ".join(c for c in order if c not in shown)
        parts.append(
            f'<p class="meta">classes without images or predictions, left out: {html.escape(left_out)}</p>'
        )
    parts += _missing_notes_html(entries)
    parts += _entry_notes_html(entries)
    if any(e.get("per_class") for e in entries.values()):
        recall = plots.per_class_figure(entries, metric="recall", labels=shown if matrices else None)
        parts.append(_fig(recall))
    parts += _confusion_html(matrices, shown)
    if any(e.get("calibration") is not None for e in entries.values()):
        parts.append("<h3>Calibration</h3>" + _fig(plots.reliability_figure(entries)))
    parts += _comparison_section_html(section, shown)
    parts += _examples_html(section)
    return "\n".join(parts)


def report_html(
    sections: Sequence[Section],
    *,
    title: str = "ferhub evaluation report",
    videos: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The whole report as one HTML string (plotly's JS inlined, so no network is needed to view it).

    ``videos`` are video entries as ``ferhub predict --format json`` writes them: each gets a section with
    its timeline per person and the per-person summary table.
    """
    from ferhub import __version__

    if not sections and not videos:
        raise ValueError("the report needs at least one section of evaluation results or one video's results")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(_section_html(s) for s in sections) + "\n".join(_video_html(v) for v in videos)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class='meta'>ferhub {__version__}, written {stamp}</p>"
        "<p class='meta' id='fh-loading'>drawing the plots...</p>"
        f"{body}"
        # plotly.js once per report, packed; then the loader that unpacks it and draws the figures
        f"<script type='application/octet-stream' id='fh-plotly'>{_plotly_gz_b64()}</script>"
        f"<script>{_LOADER}</script></body></html>\n"
    )


def _video_html(entry: Mapping[str, Any]) -> str:
    """One video's section: what was analysed, the timeline per person and the summary table."""
    from ferhub import timeline

    path = str(entry.get("path"))
    if "frames" not in entry:  # a video that could not be read at all ({path, kind, error}): its error only
        error = str(entry.get("error") or "no results").removeprefix(f"{path}: ")  # named once, in the title
        return f'<h2>{html.escape(path)}</h2>\n<p class="notes">not analysed: {html.escape(error)}</p>'
    models = entry.get("models") or ["model"]
    duration = entry.get("duration")
    meta = [
        f"{entry.get('width')}x{entry.get('height')}",
        f"{duration:.1f} s" if isinstance(duration, (int, float)) else "unknown length",
        f"{entry.get('frames_analysed', len(entry.get('frames', [])))} frames analysed"
        + (f" at {entry['sample_fps']:g} per second" if entry.get("sample_fps") else ""),
        f"smoothing {entry.get('smoothing_seconds', 0):g} s",
        "models " + ", ".join(models),
    ]
    parts = [
        f"<h2>{html.escape(path)}</h2>",
        f'<p class="meta">{html.escape(" · ".join(meta))}</p>',
    ]
    if entry.get("error"):
        parts.append(f'<p class="notes">{html.escape(str(entry["error"]))}</p>')
    if entry.get("interrupted"):
        parts.append('<p class="notes">the run was interrupted: results up to that point</p>')
    parts.append(
        "<h3>People</h3>" + _table(timeline.SUMMARY_HEADER, timeline.summary_rows(entry.get("tracks", [])))
    )
    data = timeline.collect(entry.get("frames", []), models[0])
    parts.append(_fig(timeline.figure(data)))
    return "\n".join(parts)


def write_report(
    path: str | Path,
    sections: Sequence[Section],
    *,
    title: str = "ferhub evaluation report",
    videos: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write :func:`report_html` to ``path`` (parent folders created) and return the path; written
    atomically, so a failed write (a full disk, a file-size limit) keeps the earlier report whole."""
    from ferhub.fileio import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, report_html(sections, title=title, videos=videos))
