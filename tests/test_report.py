"""Plotly figures (ferhub.plots) and the standalone HTML report, opened offline in headless Chromium."""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from browser import browser, screenshot, wait_for  # noqa: F401  (browser is a fixture)
from PIL import Image

from ferhub import plots
from ferhub.evaluation import ImagePredictions
from ferhub.labels import FER7, FER8
from ferhub.metrics import LabelSpace, summarize
from ferhub.report import Example, Section, misclassified_examples, report_html, thumbnail_b64, write_report

# screenshots go to the test's tmp folder, or to $FERHUB_SCREENSHOTS to keep and look at them
SCREENSHOTS = os.environ.get("FERHUB_SCREENSHOTS")


def _faces(n: int) -> list[Image.Image]:
    import skimage.data

    lfw = skimage.data.lfw_subset()
    return [Image.fromarray((lfw[i % 100] * 255).astype(np.uint8)).convert("RGB") for i in range(n)]


def _run(y: np.ndarray, skill: float, data_labels, model_labels, seed: int) -> tuple[dict, ImagePredictions]:
    """A synthetic model: right with probability ``skill``, confident in proportion."""
    rng = np.random.default_rng(seed)
    space = LabelSpace.build(data_labels, model_labels)
    k = len(model_labels)
    probs = rng.dirichlet(np.ones(k), size=len(y))
    model_pos = {name: j for j, name in enumerate(model_labels)}
    for i, t in enumerate(y):
        j = model_pos.get(space.labels[space.data_index[t]])
        if j is not None and rng.random() < skill:
            probs[i] = 0.3 * probs[i]
            probs[i, j] += 0.7
    entry = summarize(y, probs, data_labels=data_labels, model_labels=model_labels, n_resamples=100)
    entry.update(
        {
            "dataset": {
                "id": "lfw-expressions",
                "config": "default",
                "split": "test",
                "name": "lfw-expressions",
            },
            "num_images": len(y),
            "tta": False,
        }
    )
    pred = space.model_index[probs.argmax(1)]
    preds = ImagePredictions(
        labels=space.labels,
        model_labels=list(model_labels),
        y_true=space.data_index[y].tolist(),
        y_pred=pred.tolist(),
        confidence=probs.max(1).tolist(),
        face_found=[True] * len(y),
        probabilities=probs.astype(np.float32),
    )
    return entry, preds


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[dict, ImagePredictions]]:
    y = np.repeat(np.arange(8), 10)
    return {
        "good <model>": _run(y, 0.8, FER8, FER8, 0),
        "fer7-model": _run(y, 0.5, FER8, FER7, 1),
    }


# ------------------------------------------------------------------------------------------------- figures
def test_confusion_figure_hover_holds_count_and_row_percent() -> None:
    fig = plots.confusion_matrix_figure([[5, 1], [2, 7]], ["happy", "sad"])
    heat = fig.data[0]
    assert np.asarray(heat.z).tolist() == [[5, 1], [2, 7]]
    custom = np.asarray(heat.customdata)
    assert custom[1, 0].tolist() == [2.0, pytest.approx(200 / 9)]
    assert "count: %{customdata[0]:.0f}" in heat.hovertemplate
    assert list(heat.x) == ["happy", "sad"] and fig.layout.yaxis.autorange == "reversed"
    # the toggle switches z between counts and row percentages in the browser
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["counts", "row %"]
    np.testing.assert_allclose(buttons[1].args[0]["z"][0], [[500 / 6, 100 / 6], [200 / 9, 700 / 9]])
    normalised = plots.confusion_matrix_figure(
        [[5, 1], [0, 0]], ["happy", "sad"], normalize=True, toggle=False
    )
    np.testing.assert_allclose(normalised.data[0].z, [[500 / 6, 100 / 6], [0, 0]])
    assert not normalised.layout.updatemenus
    with pytest.raises(ValueError, match="does not match"):
        plots.confusion_matrix_figure([[1, 2]], ["a", "b"])


def test_row_percentages_are_of_each_class_support_so_the_diagonal_is_recall() -> None:
    """With --no-face wrong, an image without a face has no cell: the row-normalised matrix (and its hover
    "% of true happy") showed 100% where recall was 50%, beside recall bars that showed 0.5."""
    y, labels = np.array([0, 0, 1, 1]), ["happy", "sad"]
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    entry = summarize(y, probs, data_labels=labels, model_labels=labels, no_face=[False, True, False, False],
                      no_face_policy="wrong", n_resamples=10)  # fmt: skip
    assert entry["confusion_matrix"] == [[1, 0], [1, 1]] and entry["per_class"]["happy"]["recall"] == 0.5
    fig = plots.entry_confusion_figure(entry, normalize=True)
    recall = [entry["per_class"][c]["recall"] * 100 for c in labels]
    np.testing.assert_allclose(np.diag(np.asarray(fig.data[0].z)), recall)
    np.testing.assert_allclose(np.asarray(fig.data[0].customdata)[0, 0], [1, 50])  # count, % of true happy
    assert fig.data[0].text[0][0] == "50%"
    # in another class order, and in the difference to a model that found every face
    shown = plots.entry_confusion_figure(entry, normalize=True, labels=["sad", "fear", "happy"])
    np.testing.assert_allclose(np.asarray(shown.data[0].z)[2, 2], 50)
    found = summarize(y, probs, data_labels=labels, model_labels=labels, n_resamples=10)
    diff = plots.difference_matrix_figure(entry, found)
    np.testing.assert_allclose(np.asarray(diff.data[0].z)[0], [50, 0])  # happy: recall 100% vs 50%
    for name, fig in plots.dashboard_figures({"a": entry, "b": found}).items():
        if name.startswith("confusion_normalized:a"):
            np.testing.assert_allclose(np.diag(np.asarray(fig.data[0].z))[:2], recall)


def test_difference_figure_aligns_labels_and_is_b_minus_a() -> None:
    a = {"labels": ["happy", "sad"], "confusion_matrix": [[8, 2], [5, 5]]}
    b = {"labels": ["sad", "happy"], "confusion_matrix": [[8, 2], [1, 9]]}
    fig = plots.difference_matrix_figure(a, b, names=("A", "B"))
    # B row-normalised in A's order: happy [0.9, 0.1], sad [0.2, 0.8]; minus A [[0.8,0.2],[0.5,0.5]], in pp
    np.testing.assert_allclose(fig.data[0].z, [[10, -10], [-30, 30]])
    assert fig.data[0].zmid == 0 and "B - A" in fig.data[0].hovertemplate


def test_per_class_reliability_and_table(runs) -> None:
    entries = {name: e for name, (e, _) in runs.items()}
    bars = plots.per_class_figure(entries)
    assert [t.name for t in bars.data] == ["good &lt;model&gt;", "fer7-model"]  # shown as it is, not markup
    assert list(bars.data[0].x) == list(FER8)
    assert bars.data[0].y[0] == entries["good <model>"]["per_class"]["angry"]["recall"]
    assert bars.data[1].y[-1] == 0.0  # contempt: the 7-class model cannot predict it
    rel = plots.reliability_figure(entries)
    assert len(rel.data) == 3  # diagonal + one line per model
    nonempty = [b for b in entries["fer7-model"]["calibration"]["bins"] if b["count"]]
    assert len(rel.data[2].x) == len(nonempty)
    header, rows = plots.metrics_rows(entries)
    assert header[:3] == ["model", "accuracy", "mean class recall"]
    acc = entries["good <model>"]["metrics"]["accuracy"]
    assert rows[0][1].startswith(f"{acc:.4f} [")
    table = plots.metrics_table_figure(entries)
    assert list(table.data[0].cells.values[0]) == ["good &lt;model&gt;", "fer7-model"]
    # a results file from elsewhere with only some metrics (the reader accepts any): "-" for the rest
    sparse = {"sparse": {"metrics": {"accuracy": 0.5, "nll": None}, "num_images": 4}}
    _, (row,) = plots.metrics_rows(sparse)
    assert row[:3] == ["sparse", "0.5000", "-"] and row[5] == "-" and row[-2] == "4"
    figs = plots.dashboard_figures(entries)
    assert set(figs) == {
        "metrics",
        "recall",
        "reliability",
        "confusion:good <model>",
        "confusion_normalized:good <model>",
        "confusion:fer7-model",
        "confusion_normalized:fer7-model",
        "difference:good <model>|fer7-model",
    }
    agree = plots.agreement_figure([[1, 0.5], [0.5, 1]], ["a", "b"])
    assert np.asarray(agree.data[0].z).tolist() == [[1, 0.5], [0.5, 1]] and agree.layout.width == 380
    # in the app it takes its panel's width: a fixed one was cut off on a phone
    fitted = plots.agreement_figure([[1, 0.5], [0.5, 1]], ["a", "b"], autosize=True)
    assert fitted.layout.width is None and fitted.layout.autosize is True


def test_import_ferhub_does_not_import_plotly() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ferhub, ferhub.metrics, ferhub.compare, ferhub.evaluation; print('plotly' in"
        " sys.modules)"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )


# -------------------------------------------------------------------------------------------------- report
def _sections(runs) -> list[Section]:
    faces = _faces(80)
    return [
        Section(
            title="lfw-expressions (test)",
            entries={name: e for name, (e, _) in runs.items()},
            predictions={name: p for name, (_, p) in runs.items()},
            examples={
                name: misclassified_examples(p, faces.__getitem__, limit=12) for name, (_, p) in runs.items()
            },
        )
    ]


def test_report_html_is_standalone_and_complete(runs) -> None:
    import base64
    import gzip

    from plotly.offline import get_plotlyjs

    text = report_html(_sections(runs))
    # plotly's library embedded exactly once (gzipped: 4.8 MB -> under 2 MB), nothing fetched from the network
    (packed,) = re.findall(r"<script type='application/octet-stream' id='fh-plotly'>([^<]+)</script>", text)
    assert gzip.decompress(base64.b64decode(packed)).decode() == get_plotlyjs()
    assert len(text) < 2_600_000 and "Licensed under the MIT license" not in text
    assert len(re.findall(r"<script[^>]*\bsrc=", text)) == 0 and "cdn.plot.ly" not in text
    assert (
        text.count('class="fh-plot"') == 1 + 2 * 2 + 1 + 1
    )  # recall, 2x2 confusion, reliability, difference
    # each figure's JSON follows its placeholder, with "<" escaped so no name can end the script early
    specs = re.findall(
        r'<div class="fh-plot"[^>]*></div><script type="application/json">(.*?)</script>', text
    )
    assert len(specs) == 7 and all("<" not in spec for spec in specs)
    assert text.count('src="data:image/jpeg;base64,') == 24
    assert "good &lt;model&gt;" in text and "good <model>" not in text  # names are escaped
    assert "contempt: 10 images the model cannot predict, counted wrong" in text
    assert "McNemar p" in text and "Cohen" in text


def test_thumbnail_crops_the_face_box() -> None:
    import base64
    import io

    image = Image.new("RGB", (400, 300), "white")
    image.paste((255, 0, 0), (100, 100, 200, 200))
    thumb = Image.open(io.BytesIO(base64.b64decode(thumbnail_b64(image, (100, 100, 200, 200)))))
    assert max(thumb.size) == 112
    r, g, _ = thumb.getpixel((thumb.width // 2, thumb.height // 2))
    assert r > 200 and g < 60  # the red face square is in the middle of the crop


def test_empty_report_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one section"):
        report_html([])
    assert Example("x", "happy", "sad", 0.9).predicted == "sad"


@pytest.mark.browser
def test_report_opens_offline_in_chromium(runs, tmp_path, browser) -> None:  # noqa: F811
    path = write_report(tmp_path / "report.html", _sections(runs))
    browser.get(path.as_uri())
    n_plots = wait_for(
        browser,
        "const p = document.querySelectorAll('.js-plotly-plot');"
        "return p.length === 7 && [...p].every(e => e.querySelector('.main-svg')) && p.length;",
    )
    assert n_plots == 7
    # hovering a cell of the first confusion heatmap (after the recall bars) shows its count and row percent
    good = runs["good <model>"][0]
    cm = np.asarray(good["confusion_matrix"])
    i, j = 2, 2  # true fear, predicted fear
    browser.execute_script(
        "const gd = document.querySelectorAll('.js-plotly-plot')[1];"
        "Plotly.Fx.hover(gd, {xval: arguments[1], yval: arguments[0]});",  # category positions
        i,
        j,
    )
    hover = wait_for(
        browser,
        "return document.querySelectorAll('.js-plotly-plot')[1].querySelector('.hoverlayer').textContent;",
    )
    percent = 100 * cm[i, j] / cm[i].sum()
    assert cm[i, j] > 0
    assert hover == f"true: fearpredicted: fearcount: {cm[i, j]}{percent:.1f}% of true fear"
    # clicking the "row %" button restyles the heatmap to row percentages
    browser.execute_script(
        "const gd = document.querySelectorAll('.js-plotly-plot')[1];"
        "Plotly.restyle(gd, gd.layout.updatemenus[0].buttons[1].args[0]);"
    )
    z = browser.execute_script("return document.querySelectorAll('.js-plotly-plot')[1].data[0].z;")
    assert sum(z[0]) == pytest.approx(100.0)
    # every thumbnail decoded; no resource came from the network
    decoded = browser.execute_script("return [...document.images].filter(i => i.naturalWidth > 0).length;")
    assert decoded == 24
    remote = browser.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name).filter(n => /^https?:/.test(n));"
    )
    assert remote == []
    shot = screenshot(browser, Path(SCREENSHOTS or tmp_path) / "report.png")
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape[0] > 2000 and pixels.std() > 10  # a long page with drawn content, not a blank one


def test_misclassified_examples_most_confident_first_and_no_face_marked() -> None:
    preds = ImagePredictions(
        labels=["happy", "sad"],
        model_labels=["happy", "sad"],
        y_true=[0, 0, 1, 1],
        y_pred=[0, 1, 0, -1],
        confidence=[0.9, 0.6, 0.8, 0.0],
        face_found=[True, True, False, True],
        probabilities=np.zeros((4, 2), dtype=np.float32),
        boxes=[None, [2, 2, 10, 10], None, None],
    )
    faces = _faces(4)
    examples = misclassified_examples(preds, faces.__getitem__)
    assert [(e.true, e.predicted) for e in examples] == [
        ("sad", "happy"),
        ("happy", "sad"),
        ("sad", "no face"),
    ]
    assert [e.face_found for e in examples] == [False, True, True]
    text = report_html(
        [
            Section(
                "t",
                {
                    "m": {
                        "labels": ["happy", "sad"],
                        "confusion_matrix": [[1, 1], [1, 0]],
                        "metrics": {k: 0.5 for k, _ in plots.TABLE_COLUMNS},
                        "per_class": {},
                        "calibration": {"ece": 0.0, "bins": []},
                    }
                },
                examples={"m": examples},
            )
        ]
    )
    assert text.count("no face found: whole image") == 1


def test_misclassified_examples_skip_an_image_that_cannot_be_read_and_keep_the_others() -> None:
    """An image damaged since it was evaluated gets no thumbnail; the report still shows the rest."""
    from ferhub.errors import ImageDecodeError

    preds = ImagePredictions(
        labels=["happy", "sad"],
        model_labels=["happy", "sad"],
        y_true=[0, 0, 0],
        y_pred=[1, 1, 1],
        confidence=[0.9, 0.8, 0.7],
        face_found=[True, True, True],
        probabilities=np.zeros((3, 2), dtype=np.float32),
        paths=["a.png", "b.png", "c.png"],
    )
    faces = _faces(3)

    def image_at(i: int) -> Image.Image:
        if i == 1:
            raise ImageDecodeError("b.png: unreadable image header (Truncated File Read)")
        return faces[i]

    examples = misclassified_examples(preds, image_at)
    assert [e.path for e in examples] == ["a.png", "c.png"]
    assert examples[1].thumbnail == thumbnail_b64(faces[2])
    assert len(misclassified_examples(preds, image_at, limit=2)) == 2  # the limit counts thumbnails shown
    assert misclassified_examples(preds, None) == []  # no images at hand: no thumbnails


def _video_entry(frames: list[dict], **extra) -> dict:
    """A video entry as ``ferhub predict --format json`` writes it, around ``frames``."""
    return {
        "kind": "video",
        "path": "clip.mp4",
        "width": 320,
        "height": 240,
        "duration": 3.0,
        "models": ["m"],
        "frames": frames,
        "frames_analysed": len(frames),
        "tracks": [],
        "error": None,
        "interrupted": False,
        **extra,
    }


def _frames(times: list[float], present: dict[int, set[int]]) -> list[dict]:
    """Frame dicts at ``times``; face ``i`` is in the frames numbered ``present[i]``."""
    probs = {"happy": 0.8, "sad": 0.2}
    return [
        {
            "frame": n,
            "time": t,
            "faces": [
                {"face_id": i, "probabilities": probs, "smoothed": probs}
                for i, frames in present.items()
                if n in frames
            ],
        }
        for n, t in enumerate(times)
    ]


def test_timelines_break_where_a_person_was_off_screen() -> None:
    """A person's lines ran straight across the time they were away, as if there (app and report alike)."""
    from ferhub import timeline

    times = [n / 15 for n in range(45)]
    away = set(range(15, 27))
    frames = _frames(times, {1: set(range(45)), 2: set(range(45)) - away})
    data = timeline.collect(frames, "m")
    assert data[1, "m"].gaps() == [] and data[2, "m"].gaps() == [15]  # sample 15 is frame 27
    fig = timeline.figure(data)
    # the note under the title, not after it: one long line was cut off on a phone-width panel
    assert (
        fig.layout.title.text == "Expressions over time<br><sup>smoothed (solid) and per frame (dotted)</sup>"
    )
    for trace in fig.data:  # every line of face 2 (smoothed and raw) is open over the absence, face 1's not
        ys = list(trace.y)
        if "face 2" in trace.hovertemplate:
            assert ys.count(None) == 1 and trace.x[ys.index(None)] == pytest.approx((14 + 27) / 2 / 15)
        else:
            assert None not in ys and list(trace.x) == times
    text = report_html([], videos=[_video_entry(frames)])
    figure_json = r'<div class="fh-plot"[^>]*></div><script type="application/json">(.*?)</script>'
    (spec,) = re.findall(figure_json, text)
    drawn = [list(trace["y"]) for trace in json.loads(spec)["data"]]  # the report draws the same figure
    assert [y.count(None) for y in drawn] == [0] * 4 + [1] * 4  # face 1's four lines, then face 2's


def test_timelines_do_not_break_where_no_frame_was_analysed() -> None:
    """A hole in the frames themselves (variable frame rate, a frozen picture, sparse sampling), or one
    missed frame, is no absence."""
    from ferhub import timeline

    times = [0.0, 0.1, 0.2, 0.3, 1.5, 1.6, 1.7, 1.8, 1.9]  # nothing between 0.3 and 1.5 s
    data = timeline.collect(_frames(times, {1: set(range(9)) - {6}}), "m")
    assert data[1, "m"].gaps() == []
    series = timeline.Series(1, "m", ["happy"], time=[0.0, 0.5, 1.0, 1.5, 4.0], raw=[[1.0]] * 5)
    assert series.gaps() == [4]  # built by hand: measured against its own spacing
    assert series.line(series.raw, 0) == ([0.0, 0.5, 1.0, 1.5, 2.75, 4.0], [1.0, 1.0, 1.0, 1.0, None, 1.0])


def test_report_shows_a_video_that_could_not_be_read_as_its_error_only() -> None:
    failed = {"path": "bad/empty.mp4", "kind": "video", "error": "bad/empty.mp4: file is empty (0 bytes)"}
    text = report_html([], videos=[failed, _video_entry(_frames([0.0, 0.1], {1: {0, 1}}))])
    section = text.split("<h2>bad/empty.mp4</h2>", 1)[1].split("<h2>", 1)[0]
    assert section.strip() == '<p class="notes">not analysed: file is empty (0 bytes)</p>'
    assert "NonexNone" not in text and "models model" not in text and "No faces found" not in text
    assert "320x240 · 3.0 s · 2 frames analysed" in text  # the video that was analysed, as before


def test_two_results_of_one_name_are_both_reported(runs) -> None:
    """Every training run writes OUT/model: `report --results runA/model runB/model` showed one of them."""
    from ferhub.commands.report import build_sections

    (a, _), (b, _) = runs.values()
    results = [
        ("model", {"results": {"lfw:default:test": a}}),
        ("model", {"results": {"lfw:default:test": b}}),
    ]
    (section,) = build_sections(results, [], refs=["runA/model", "runB/model"])
    assert list(section.entries) == ["model", "model (runB/model)"]
    assert section.entries["model"] is a and section.entries["model (runB/model)"] is b
    # their predictions files, which both say "model", go to them in the order given (by name alone the last
    # went to the first result, and the paired comparison was lost)
    import dataclasses

    (_, pa), (_, pb) = runs.values()
    files = [dataclasses.replace(p, model="model", key="lfw:default:test") for p in (pa, pb)]
    (section,) = build_sections(results, files, refs=["runA/model", "runB/model"])
    assert section.predictions["model"] is files[0] and section.predictions["model (runB/model)"] is files[1]


def test_a_long_model_name_is_shown_whole_in_the_figures(runs) -> None:
    """A long name ran past the panel's edge, its end and ": counts" cut off (two runs differing at their end
    looked alike): it is broken into lines, what the figure shows on its own line."""
    name = "org/fer-resnet18-warm-start-lr3e-4-mixup-v2-final-final"
    title = plots.model_title(name, "counts")
    assert title == "org/fer-resnet18-warm-start-lr3e-4-<br>mixup-v2-final-final<br><sup>counts</sup>"
    assert title.replace("<br>", "").startswith(name)
    (entry, _), _ = runs.values()
    html_text = report_html([Section(title="lfw", entries={name: entry})])
    assert "mixup-v2-final-final\\u003cbr\\u003e\\u003csup\\u003ecounts" in html_text  # in the figure's JSON


def test_the_report_names_the_test_time_augmentation_method(runs) -> None:
    """It printed the flag ("test-time augmentation True"): flip and ten crops looked the same."""
    (entry, _), (other, _) = runs.values()
    entries = {
        "ten": {**entry, "tta": True, "tta_method": "tencrop"},
        "flip": {**other, "tta": True, "tta_method": "flip"},
    }
    text = report_html([Section(title="lfw", entries=entries)])
    assert "ten: test-time augmentation: tencrop" in text
    assert "flip: test-time augmentation: flip" in text and "augmentation True" not in text


# ------------------------------------------------------- entries, predictions and results as they are given
def test_the_report_draws_what_an_entry_has_and_says_what_it_lacks(runs, tmp_path, capsys) -> None:
    """Entries the validator accepts without labels, confusion matrix, per-class results or calibration
    (all optional) made `ferhub report` exit 4 with a KeyError."""
    from ferhub import eval_results
    from ferhub.cli import main
    from ferhub.compare import entry_support

    (full, _), _ = runs.values()
    minimal = {"dataset": {"id": "lfw-expressions", "split": "test"}, "model": {"id": "someone/model"},
               "metrics": {"accuracy": 0.71}}  # fmt: skip
    no_per_class = {k: v for k, v in full.items() if k != "per_class"}
    no_calibration = {k: v for k, v in full.items() if k != "calibration"}
    no_matrix = {k: v for k, v in full.items() if k not in ("labels", "confusion_matrix")}
    entries = {"full": full, "minimal": minimal, "no per-class": no_per_class,
               "no calibration": no_calibration, "no matrix": no_matrix}  # fmt: skip
    text = report_html([Section(title="lfw", entries=entries)])
    assert "minimal: its results hold no confusion matrix, per-class results or calibration" in text
    assert "no per-class: its results hold no per-class results;" in text
    assert "no calibration: its results hold no calibration;" in text
    assert "no matrix: its results hold no confusion matrix;" in text and "full: its results" not in text
    # recall bars, two matrices each for 3 entries, reliability, differences of 2 entries to the first
    assert text.count('class="fh-plot"') == 1 + 2 * 3 + 1 + 2
    assert len(plots.per_class_figure(entries).data) == 3  # full, no calibration, no matrix
    assert len(plots.reliability_figure(entries).data) == 1 + 3  # the diagonal; full, no per-class, no matrix
    assert set(plots.dashboard_figures(entries)) >= {"confusion:full", "confusion:no calibration"}
    assert entry_support(minimal).tolist() == [] and entry_support(no_matrix).sum() == 80
    # only the metrics: a report of its table, exit 0
    folder = tmp_path / "minimal"
    eval_results.write(folder, {"lfw-expressions:default:test": minimal}, render_card=False)
    code = main(["report", "--results", str(folder), "--out", str(tmp_path / "r.html")])
    assert code == 0, capsys.readouterr().err
    assert "someone/model" in (tmp_path / "r.html").read_text()


def test_the_paired_table_follows_the_entries_order_and_counts_the_images_both_predicted(runs) -> None:
    """It followed the --predictions order (a glob's): A and B swapped against the difference matrices;
    agreement and kappa counted images without a prediction (-1 for both) as agreement."""
    (ea, pa), (eb, pb) = runs.values()
    pa = dataclasses.replace(pa, y_pred=[-1, -1, *pa.y_pred[2:]])
    pb = dataclasses.replace(pb, y_pred=[-1, 0, *pb.y_pred[2:]])
    section = Section(
        title="lfw", entries={"first": ea, "second": eb}, predictions={"second": pb, "first": pa}
    )
    text = report_html([section])
    (row,) = re.findall(r"<tr><td>first</td><td>second</td>(.*?)</tr>", text)
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[4] == "78"  # both predicted: 80 images, one without a prediction by both, one by A
    # the difference matrix's title (in the figure's JSON, "<" escaped): B minus A, a line each
    assert "second\\u003cbr\\u003eminus\\u003cbr\\u003efirst" in text
    assert "<td>second</td><td>first</td>" not in text
    assert "accuracy and McNemar's test over all 80 images" in text


def test_agreement_over_no_image_both_predicted_is_a_dash_not_zero(runs) -> None:
    """With no face found anywhere (--no-face wrong) the table said agreement 0.0000 and kappa 0.0000: the
    models "never agree" where nothing was compared."""
    (ea, pa), (eb, pb) = runs.values()
    none = [-1] * len(pa.y_pred)
    section = Section(
        title="lfw",
        entries={"first": ea, "second": eb},
        predictions={
            "first": dataclasses.replace(pa, y_pred=none),
            "second": dataclasses.replace(pb, y_pred=none),
        },
    )
    (row,) = re.findall(r"<tr><td>first</td><td>second</td>(.*?)</tr>", report_html([section]))
    assert re.findall(r"<td>(.*?)</td>", row)[2:5] == ["-", "-", "0"]


def test_a_result_ferhub_cannot_show_is_left_out_and_named(runs, tmp_path, capsys) -> None:
    """One malformed entry (another tool's string note, an ECE without bins) made `ferhub report` exit 1 for
    every result in the file: it is left out, named on stderr and in its section; the others are shown."""
    from ferhub import eval_results
    from ferhub.cli import main

    (a, _), (b, _) = runs.values()
    first, second = tmp_path / "first", tmp_path / "second"
    eval_results.write(first, {"lfw:default:test": a}, render_card=False)
    eval_results.write(second, {"lfw:default:test": b}, render_card=False)
    paper = {"dataset": {"id": "fer2013", "split": "test"}, "metrics": {"accuracy": 0.7}, "notes": "paper"}
    doc = json.loads((first / "eval_results.json").read_text())
    doc["results"]["fer2013:default:test"] = paper
    (first / "eval_results.json").write_text(json.dumps(doc))
    doc = json.loads((second / "eval_results.json").read_text())
    doc["results"]["lfw:default:test"]["calibration"] = {"ece": 0.05}
    (second / "eval_results.json").write_text(json.dumps(doc))
    out = tmp_path / "r.html"
    assert main(["report", "--results", str(first), str(second), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    bad_note = "results['fer2013:default:test'].notes must be a list of strings"
    bad_cal = "results['lfw:default:test'].calibration must be an object with a number 'ece'"
    assert f"ferhub report: {first}: left out {bad_note}" in err
    assert f"ferhub report: {second}: left out {bad_cal}" in err
    text = out.read_text()
    lfw, fer = text.split("<h2>lfw:default:test</h2>")[1].split("<h2>fer2013:default:test</h2>")
    assert "left out: " + html.escape(f"{second}: {bad_cal}") in lfw and "<td>first</td>" in lfw
    assert "<td>second</td>" not in lfw
    assert (
        "left out: " + html.escape(f"{first}: {bad_note}") in fer and "<table" not in fer.split("<script")[0]
    )
    # nothing left to show: exit 1, with why on stderr
    assert main(["report", "--results", str(second), "--out", str(tmp_path / "none.html")]) == 1
    assert f"left out {bad_cal}" in capsys.readouterr().err
    # notes null (optional, as absent) is shown, not an internal error
    doc = json.loads((first / "eval_results.json").read_text())
    doc["results"]["lfw:default:test"]["notes"] = None
    (first / "eval_results.json").write_text(json.dumps(doc))
    assert main(["report", "--results", str(first), "--out", str(tmp_path / "nulls.html")]) == 0


def test_a_model_compared_with_itself_keeps_both_in_the_report(runs) -> None:
    """`ferhub compare A A --out`: the table had the pair, the HTML one model and no comparison."""
    from types import SimpleNamespace

    from ferhub.report import runs_section

    (entry, preds), _ = runs.values()
    source = type("Source", (), {"name": "lfw", "split": "test", "__len__": lambda self: 0})()  # no images
    run = SimpleNamespace(name="org/m", entry=entry, predictions=preds)
    section = runs_section(source, [run, run])
    assert list(section.entries) == ["org/m", "org/m (2)"] and list(section.predictions) == list(
        section.entries
    )
    assert "Paired comparison on the same images" in report_html([section])


def _as_file(preds: ImagePredictions, model: str) -> ImagePredictions:
    return dataclasses.replace(preds, model=model, key="lfw:default:test")


def test_predictions_of_other_images_are_named_and_left_out(runs, capsys) -> None:
    """A key and a model name shared by runs on other images fed the paired table silently; a file that
    matched no result was dropped without a word."""
    from ferhub.commands.report import build_sections, predictions_mismatch

    (a, pa), (b, pb) = runs.values()
    results = [("m1", {"results": {"lfw:default:test": a}}), ("m2", {"results": {"lfw:default:test": b}})]
    good = [_as_file(pa, "m1"), _as_file(pb, "m2")]
    (section,) = build_sections(results, good, prediction_files=["m1.json", "m2.json"])
    assert list(section.predictions) == ["m1", "m2"] and capsys.readouterr().err == ""
    fewer = dataclasses.replace(good[1], y_true=good[1].y_true[:6], y_pred=good[1].y_pred[:6])
    other = dataclasses.replace(good[0], y_pred=good[1].y_pred)  # as many images, other predictions
    stray = _as_file(pa, "m3")
    assert predictions_mismatch(fewer, b) == "it holds 6 images, the result 80"
    assert predictions_mismatch(other, a) == "its predictions give another confusion matrix than the result's"
    (section,) = build_sections(
        results, [other, fewer, stray], prediction_files=["o.json", "f.json", "s.json"]
    )
    assert section.predictions == {}
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "ferhub report: o.json: left out of the paired comparison and thumbnails: not of the images of m1's "
        "result on lfw:default:test (its predictions give another confusion matrix than the result's)",
        "ferhub report: f.json: left out of the paired comparison and thumbnails: not of the images of m2's "
        "result on lfw:default:test (it holds 6 images, the result 80)",
        "ferhub report: s.json: matches no result given (model m3, key lfw:default:test); not used",
    ]
    # no-face rows (-1) have no cell, as evaluate --no-face wrong counts them
    wrong = dataclasses.replace(good[0], y_pred=[-1, *good[0].y_pred[1:]])
    cm = np.asarray(a["confusion_matrix"])
    cm[wrong.y_true[0], good[0].y_pred[0]] -= 1
    assert predictions_mismatch(wrong, {**a, "confusion_matrix": cm.tolist()}) is None


def test_same_named_runs_find_their_own_predictions_in_any_order(runs, capsys) -> None:
    from ferhub.commands.report import build_sections

    (a, pa), (b, pb) = runs.values()
    results = [
        ("model", {"results": {"lfw:default:test": a}}),
        ("model", {"results": {"lfw:default:test": b}}),
    ]
    files = [_as_file(pb, "model"), _as_file(pa, "model")]  # runB's file first
    (section,) = build_sections(results, files, refs=["runA/model", "runB/model"])
    assert section.predictions["model"] is files[1] and section.predictions["model (runB/model)"] is files[0]
    assert capsys.readouterr().err == ""


def test_report_takes_the_folder_evaluate_out_wrote(runs, tmp_path) -> None:
    """`report --results eval_out` told the user to evaluate the output folder as a model."""
    from ferhub import eval_results
    from ferhub.commands.report import load_all_results

    (a, _), (b, _) = runs.values()
    out = tmp_path / "eval_out"
    for name, entry in (("org--b", b), ("org--a", a), ("org--a.replaced-1", b)):
        eval_results.write(out / name, {"lfw:default:test": entry}, render_card=False)
    (out / "org--a.lfw--default--test.predictions.json").write_text("{}")
    (out / "report.html").write_text("")
    results, refs = load_all_results([str(out)])
    assert refs == [str(out / "org--a"), str(out / "org--b")]  # not the copy of other weights moved aside
    assert [r for _, r in results] == [
        {"format_version": 1, "results": {"lfw:default:test": e}} for e in (a, b)
    ]


# ------------------------------------------------------------------------- pairing, names, many models
def _named(entries: dict, predictions: dict | None = None) -> Section:
    return Section(title="lfw", entries=entries, predictions=predictions or {})


def test_the_paired_table_pairs_only_models_run_on_the_same_images(runs) -> None:
    """Two results of one key on as many images, but not the same ones (a test folder sampled again keeps
    its key): image i of one set was compared with image i of the other, and B scored against A's labels,
    the paired table's "acc B" contradicting the metrics table."""
    (ea, pa), (eb, pb) = runs.values()
    skipped = "per-image comparison skipped: the models were run on different images"
    moved = dataclasses.replace(pb, y_true=pb.y_true[1:] + pb.y_true[:1])  # other true classes
    text = report_html([_named({"A": ea, "B": eb}, {"A": pa, "B": moved})])
    assert skipped in text and "Paired comparison" not in text
    # the same true classes, other files
    files = [f"faces/{FER8[t]}/{i:03d}.jpg" for i, t in enumerate(pa.y_true)]
    others = [f"faces/{FER8[t]}/x{i:03d}.jpg" for i, t in enumerate(pa.y_true)]
    a_files = dataclasses.replace(pa, paths=files)
    text = report_html(
        [_named({"A": ea, "B": eb}, {"A": a_files, "B": dataclasses.replace(pb, paths=others)})]
    )
    assert skipped in text and "Paired comparison" not in text
    # the same files, the folder named another way (by its full path): compared
    full = dataclasses.replace(pb, paths=[f"/home/someone/{f}" for f in files])
    text = report_html([_named({"A": ea, "B": eb}, {"A": a_files, "B": full})])
    assert "<tr><td>A</td><td>B</td>" in text and skipped not in text
    # a third model on other images: the two others compared, the third named
    text = report_html([_named({"A": ea, "B": eb, "C": ea}, {"A": pa, "B": pb, "C": moved})])
    assert re.findall(r"<tr><td>([ABC])</td><td>([ABC])</td>", text) == [("A", "B")]
    assert "per-image comparison skipped for C: run on other images than the models compared" in text


def test_a_model_without_file_names_pairs_in_no_order_dependent_way(runs) -> None:
    """A (no file names) matched both B and C, run on different files: in the order A, B, C the table paired
    A-B, A-C and B-C (B and C only checked against A); in the order B, C, A it paired B-A. Every two models of
    a group are now the same images, and the pairs do not depend on the order of the results."""
    (ea, pa), _ = runs.values()
    files = [f"faces/{FER8[t]}/{i:03d}.jpg" for i, t in enumerate(pa.y_true)]
    preds = {
        "A": pa,  # paths None
        "B": dataclasses.replace(pa, paths=files),
        "C": dataclasses.replace(pa, paths=[f.replace(".jpg", ".png") for f in files]),
        "D": dataclasses.replace(pa, paths=files),  # B's images: paired with B
    }
    seen = []
    for order in ("ABCD", "BCAD", "DCBA", "CADB"):
        text = report_html([_named({n: ea for n in order}, {n: preds[n] for n in order})])
        pairs = {frozenset(p) for p in re.findall(r"<tr><td>([ABCD])</td><td>([ABCD])</td>", text)}
        seen.append(pairs)
        assert "per-image comparison skipped for A: it matches " in text
        assert (
            "which were run on different images, and what it recorded (no file names) does not tell" in text
        )
    assert all(pairs == {frozenset("BD")} for pairs in seen), seen


def _strings(value: object) -> list[str]:
    """Every string in a figure's JSON-ready dict."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def test_names_reach_plotly_as_text_never_as_markup_or_hovertemplate_fields(runs) -> None:
    """A model named ``<b>bold<i>it`` was drawn bold and italic (on into the rest of the title), one named
    ``%{x} v2`` hovered as ``angry v2``: plotly reads markup in every text of a figure and fills in ``%{...}``
    in a hovertemplate. A label from another tool's results file too. Every name goes through
    :func:`plots.plot_text`, as entities that plotly draws as the characters."""
    from ferhub import timeline

    (a, _), (b, _) = runs.values()
    names = ("%{x} v2", "<b>bold<i>it & co")
    entries = dict(zip(names, (a, b)))
    odd = {"labels": ["x<i>", "%{meta}"], "confusion_matrix": [[3, 1], [0, 2]]}
    frames = [
        {"frame": 0, "time": 0.0, "faces": [{"face_id": 1, "predictions": [
            {"model": names[0], "probabilities": {"<b>happy": 0.9}, "smoothed": {"<b>happy": 0.9}},
            {"model": names[1], "probabilities": {"<b>happy": 0.9}, "smoothed": {"<b>happy": 0.9}},
        ]}]},
    ]  # fmt: skip
    figures = [
        plots.per_class_figure(entries),
        plots.reliability_figure(entries),
        plots.difference_matrix_figure(a, b, names=names),
        plots.entry_confusion_figure(a, title=plots.model_title(names[1], "counts")),
        plots.entry_confusion_figure(odd),
        plots.metrics_table_figure(entries),
        plots.agreement_figure([[1, 0.5], [0.5, 1]], names),
        timeline.figure(timeline.collect(frames)),
    ]
    for fig in figures:
        texts = _strings(fig.to_plotly_json())
        for raw in (*names, "x<i>", "%{meta}", "<b>happy"):
            assert not any(raw in t for t in texts), (raw, fig.layout.title.text)
    bars, rel, diff, confusion, odd_fig = figures[:5]
    assert [t.name for t in bars.data] == ["&#37;{x} v2", "&lt;b&gt;bold&lt;i&gt;it &amp; co"]
    assert bars.data[0].hovertemplate.startswith("&#37;{x} v2<br>%{x}: recall")
    assert rel.data[1].name == "&#37;{x} v2 (ECE " + f"{a['calibration']['ece']:.3f})"
    assert "&lt;b&gt;bold&lt;i&gt;it &amp; co - &#37;{x} v2: %{z:+.1f}" in diff.data[0].hovertemplate
    assert confusion.layout.title.text == "&lt;b&gt;bold&lt;i&gt;it &amp; co<br><sup>counts</sup>"
    assert list(odd_fig.data[0].x) == ["x&lt;i&gt;", "&#37;{meta}"]
    assert plots.plot_text("fer7-model/v1_2") == "fer7-model/v1_2"  # ordinary names are left as they are


def test_the_difference_title_names_both_models_on_lines_of_their_own() -> None:
    """One line, "seed2 minus seed1 (row %)", ran past the panel's edge: the first name, and with longer
    names the end of the second, were cut off, so the panel did not say which models it compares."""
    a = {"labels": ["happy", "sad"], "confusion_matrix": [[8, 2], [5, 5]]}
    first, second = (f"resnet18-fer2013-ferplus-rafdb-affectnet-finetuned-lr3e-4-seed{i}" for i in (1, 2))
    fig = plots.difference_matrix_figure(a, a, names=(first, second))
    lines = fig.layout.title.text.split("<br>")
    assert lines[-1] == "<sup>row %</sup>" and "minus" in lines
    at = lines.index("minus")
    assert "".join(lines[:at]) == second and "".join(lines[at + 1 : -1]) == first
    assert max(map(len, lines)) <= 40  # as the confusion matrices' titles (plots.model_title)
    assert fig.layout.margin.t >= 52 + 22 * len(lines)  # room for every line above the matrix
    counts = plots.difference_matrix_figure(a, a, names=("A", "B"), normalize=False)
    assert counts.layout.title.text == "B<br>minus<br>A<br><sup>counts</sup>"


def test_more_models_than_colours_are_each_drawn_their_own_way(runs) -> None:
    """Eight colours came round again: models 1, 9 and 17 looked the same in the recall bars and the
    reliability diagram. The diagram's legend, below a figure of fixed size, squeezed the plot to a strip,
    whose x axis then ran from -0.79 to 1.79."""
    (a, _), _ = runs.values()
    entries = {f"model{i:02d}-{'x' * (i % 3) * 20}": a for i in range(25)}
    bars = plots.per_class_figure(entries)
    assert len({(t.marker.color, t.marker.pattern.shape) for t in bars.data}) == 25
    rel = plots.reliability_figure(entries)
    diagonal, *lines = rel.data
    styles = {(t.line.color, t.line.dash, t.marker.symbol) for t in lines}
    assert len(styles) == 25 and diagonal.line.color not in {t.line.color for t in lines}
    layout = rel.layout
    width = layout.width - layout.margin.l - layout.margin.r
    assert width == layout.height - layout.margin.t - layout.margin.b >= 400  # a square plot area
    assert list(layout.xaxis.range) == list(layout.yaxis.range) == [0, 1]
    assert layout.xaxis.constrain == layout.yaxis.constrain == "domain"  # never ranges past 0 and 1
    few = plots.reliability_figure(dict(list(entries.items())[:2]))
    assert layout.margin.b - few.layout.margin.b >= 19 * 23  # the legend's room grows with its entries


def test_no_models_smoothed_lines_are_dotted_as_the_per_frame_values_are() -> None:
    """The third model's smoothed lines were dotted, the style the subtitle gives per-frame values."""
    from ferhub import timeline

    probs = {"happy": 0.8, "sad": 0.2}
    models = [f"m{i}" for i in range(5)]
    frames = [
        {"frame": n, "time": n / 10, "faces": [{"face_id": 1, "predictions": [
            {"model": m, "probabilities": probs, "smoothed": probs} for m in models
        ]}]}
        for n in range(3)
    ]  # fmt: skip
    fig = timeline.figure(timeline.collect(frames))
    assert "per frame (dotted)" in fig.layout.title.text
    raw = [t for t in fig.data if t.name.endswith("(raw)")]
    smoothed = [t for t in fig.data if not t.name.endswith("(raw)")]
    assert {t.line.dash for t in raw} == {"dot"}
    dashes = {m: {t.line.dash for t in smoothed if t.name.endswith(f" · {m}")} for m in models}
    assert all(len(d) == 1 for d in dashes.values())
    assert "dot" not in set().union(*dashes.values()) and len(set().union(*dashes.values())) == len(models)


@pytest.mark.browser
def test_many_models_and_odd_names_are_drawn_whole_and_as_they_are(runs, tmp_path, browser) -> None:  # noqa: F811
    """In Chromium: with 21 models the reliability diagram keeps a square plot area from 0 to 1 with the
    whole legend below it; names with markup and ``%{...}`` are drawn and hovered as they are; the
    difference matrix's title, long names and all, fits its panel."""
    (a, pa), (b, pb) = runs.values()
    no_matrix = {k: v for k, v in a.items() if k != "confusion_matrix"}  # recall bars and reliability only
    many = {f"model{i:02d}-fer-resnet18-warm-start": no_matrix for i in range(21)}
    names = ("%{x} v2", "<b>bold<i>it & resnet18-fer2013-ferplus-rafdb-affectnet-finetuned-lr3e-4-seed2")
    odd = Section(title="odd", entries=dict(zip(names, (a, b))), predictions=dict(zip(names, (pa, pb))))
    path = write_report(tmp_path / "report.html", [_named(many), odd])
    browser.get(path.as_uri())
    wait_for(
        browser,
        "const p = [...document.querySelectorAll('div.fh-plot')];"
        "return p.length === 9 && p.every(e => e.querySelector('.main-svg'));",
    )
    geometry = browser.execute_script(
        """const rel = document.querySelectorAll('div.fh-plot')[1], box = rel.getBoundingClientRect();
        const area = rel.querySelector('.nsewdrag').getBoundingClientRect();
        const legend = rel.querySelector('.legend').getBoundingClientRect();
        return {x: rel._fullLayout.xaxis.range, y: rel._fullLayout.yaxis.range, w: area.width, h: area.height,
                entries: rel.querySelectorAll('.legend .traces').length, below: legend.top >= area.bottom,
                inside: legend.bottom <= box.bottom + 1 && legend.right <= box.right + 1};"""
    )
    assert geometry["x"] == pytest.approx([0, 1]) and geometry["y"] == pytest.approx([0, 1])
    assert geometry["w"] >= 400 and abs(geometry["w"] - geometry["h"]) <= 2
    assert geometry["entries"] == 22 and geometry["below"] and geometry["inside"]
    texts = browser.execute_script(
        """const p = [...document.querySelectorAll('div.fh-plot')].slice(2);
        const gd = p[0];
        Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: 0}]);
        return {legend: [...gd.querySelectorAll('.legendtext')].map(t => t.textContent),
                bold: !!document.querySelector('div.fh-plot tspan[style*="bold"]'),
                hover: gd.querySelector('.hoverlayer').textContent,
                titles: p.map(e => {
                  const t = e.querySelector('.gtitle').getBoundingClientRect(), r = e.getBoundingClientRect();
                  const area = e.querySelector('.nsewdrag').getBoundingClientRect();
                  return [e.querySelector('.gtitle').textContent,
                          t.right <= r.right + 1 && t.top >= r.top && t.bottom <= area.top]; })};"""
    )
    assert texts["legend"] == list(names) and not texts["bold"]
    assert texts["hover"].startswith("%{x} v2angry: recall")  # the name, then the class hovered
    difference = [t for t, _ in texts["titles"] if "minus" in t]
    assert len(difference) == 1 and all(
        fits for _, fits in texts["titles"]
    )  # within the figure, above the plot
    assert difference[0].replace("\u200b", "") == f"{names[1]}minus{names[0]}row %"  # lines run together


def test_report_of_an_older_evaluate_out_folder_says_where_results_are_without_guessing(
    runs, tmp_path, capsys
) -> None:
    """An older ferhub's ``evaluate --out`` folder does not record where the results of a model given as a
    folder went (into that folder): ``report --results`` says so in one short line, opening no predictions
    file (a FIFO of that name never blocks it, a long model name never fails it), and notes it beside the
    results it does hold. The record of a newer one (``results_folders.json``) that evaluate did not write
    is refused saying so (see tests/test_report_out_folder.py for the record at work)."""
    import threading

    from ferhub import eval_results
    from ferhub.cli import main
    from ferhub.evaluation import slug

    entry, _ = runs["fer7-model"]
    key = "lfw:default:test"
    report = ["--out", str(tmp_path / "r.html")]
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.html").write_text("")
    (old / f"m.{slug(key)}.predictions.json").write_text(json.dumps({"model": "n" * 300, "key": key}))
    os.mkfifo(old / f"fifo.{slug(key)}.predictions.json")
    done: list[int] = []
    worker = threading.Thread(
        target=lambda: done.append(main(["report", "--results", str(old), *report])), daemon=True
    )
    worker.start()
    worker.join(60)
    assert done == [1]  # no read of the FIFO blocked it
    err = capsys.readouterr().err
    assert (
        f"ferhub report: {old}: a folder an older `ferhub evaluate --out` wrote, which does not record where"
        " the results of a model given as a folder went (into that folder); give those model folders to"
        f" --results (and --predictions {old}/*.predictions.json for the per-image sections)\n"
    ) == err

    eval_results.write(old / "org--a", {key: entry}, render_card=False)  # a bundled model's copy beside them
    assert main(["report", "--results", str(old), *report]) == 0
    err = capsys.readouterr().err
    assert f"note: {old} was written by an older `ferhub evaluate --out`, which does not record" in err

    (old / "results_folders.json").write_text('{"results_folders": "m"}')
    assert main(["report", "--results", str(old), *report]) == 1
    err = capsys.readouterr().err
    assert (
        f"{old / 'results_folders.json'}: not the list of results folders `ferhub evaluate --out` writes"
        in err
    )

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["report", "--results", str(empty), *report]) == 1
    err = capsys.readouterr().err
    assert f"{empty}: neither a model folder (no config.json) nor one `ferhub evaluate --out` wrote" in err
