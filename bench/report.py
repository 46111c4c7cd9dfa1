"""How fast the standalone HTML report opens, printed as a Markdown table.

    python bench/report.py [--models 4] [--runs 5]

Writes one evaluation report (``--models`` synthetic models on 800 images of 8 classes, 24 misclassified
thumbnails each) twice: as ``ferhub.report`` writes it (plotly.js once, gzipped, figures drawn as they come
into view) and in the earlier layout (plotly.js inline in ``<head>``, every figure drawn by its own inline
script as the page parses), then opens each ``--runs`` times in headless Chromium from disk and reports the
file size, the time to the first painted text and the time until every figure is drawn (medians).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "bench")]


def sections(n_models: int) -> list:
    """One report section with ``n_models`` synthetic models (right 40-80% of the time) on FER8 data."""
    from ferhub.evaluation import ImagePredictions
    from ferhub.labels import FER8
    from ferhub.metrics import summarize
    from ferhub.report import Section, misclassified_examples

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(8), 100)
    faces = [Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)) for _ in range(32)]
    entries, predictions, examples = {}, {}, {}
    for m in range(n_models):
        probs = rng.dirichlet(np.ones(8), size=len(y))
        hit = rng.random(len(y)) < 0.4 + 0.1 * m
        probs[hit] = 0.3 * probs[hit]
        probs[hit, y[hit]] += 0.7
        entry = summarize(y, probs, data_labels=FER8, model_labels=FER8, n_resamples=100)
        entry.update({"dataset": {"id": "bench", "split": "test"}, "num_images": len(y)})
        pred = probs.argmax(1)
        p = ImagePredictions(
            labels=list(FER8),
            model_labels=list(FER8),
            y_true=y.tolist(),
            y_pred=pred.tolist(),
            confidence=probs.max(1).tolist(),
            face_found=[True] * len(y),
            probabilities=probs,
        )
        name = f"model-{m + 1}"
        entries[name], predictions[name] = entry, p
        examples[name] = misclassified_examples(p, lambda i: faces[i % len(faces)], limit=24)
    return [Section("bench / test", entries, predictions, examples)]


def earlier_layout(secs: list) -> str:
    """The report as ferhub wrote it before: plotly.js inline in <head>, one inline script per figure."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    import ferhub.report as report

    def inline(fig) -> str:
        return pio.to_html(fig, full_html=False, include_plotlyjs=False, config={"displaylogo": False})

    real = report._fig
    report._fig = inline
    try:
        body = "\n".join(report._section_html(s) for s in secs)
    finally:
        report._fig = real
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<style>{report._CSS}</style><script>{get_plotlyjs()}</script></head><body>{body}</body></html>"
    )


OPEN_SCRIPT = """
const n = arguments[0];
const plots = document.querySelectorAll('.js-plotly-plot .main-svg').length;
const paint = performance.getEntriesByName('first-contentful-paint')[0];
return [plots >= n, paint ? paint.startTime : null, performance.now()];
"""


def open_times(driver, path: Path, n_figures: int) -> tuple[float, float]:
    """(first contentful paint, every figure drawn) in ms from navigation start."""
    driver.get("about:blank")
    driver.get(path.as_uri())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done, paint, now = driver.execute_script(OPEN_SCRIPT, n_figures)
        if done:
            return paint, now
        time.sleep(0.02)
    raise TimeoutError(f"{path.name}: figures not drawn within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from browser import chromium
    from machine import print_table

    from ferhub.device import cpu_name
    from ferhub.report import report_html

    secs = sections(args.models)
    with tempfile.TemporaryDirectory() as tmp:
        pages = {
            "ferhub.report (plotly.js once, gzipped; drawn in view first)": Path(tmp) / "now.html",
            "earlier layout (plotly.js inline in <head>; every figure at parse)": Path(tmp) / "before.html",
        }
        now, before = pages.values()
        now.write_text(report_html(secs), encoding="utf-8")
        before.write_text(earlier_layout(secs), encoding="utf-8")
        n_figures = now.read_text().count('class="fh-plot"')
        rows = []
        with chromium(width=1400, height=1000) as driver:
            for label, path in pages.items():
                open_times(driver, path, n_figures)  # warm the browser's caches once
                times = [open_times(driver, path, n_figures) for _ in range(args.runs)]
                rows.append(
                    (
                        label,
                        f"{path.stat().st_size / 1e6:.2f} MB",
                        f"{statistics.median(t[0] for t in times):.0f} ms",
                        f"{statistics.median(t[1] for t in times):.0f} ms",
                    )
                )
    print(f"Report with {args.models} models ({n_figures} figures), headless Chromium, median of {args.runs}")
    print(f"CPU: {cpu_name()}\n")
    print_table(("report", "size", "first text painted", "every figure drawn"), rows)


if __name__ == "__main__":
    main()
