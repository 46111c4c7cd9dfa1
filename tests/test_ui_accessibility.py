"""The app for everyone: text alternatives for the result photos and the examples, a key to the attribution
maps, colours that read in dark mode and under colour-vision deficiencies, and layouts that fit tablets,
laptops and phones (what the page shows: tests/test_browser_ui.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from ferhub.drawing import contrast_ratio
from ferhub.hub import DEFAULT_MODEL
from ferhub.ui import INTRO, build_app, classify, compare, launch_kwargs, webcam

EXAMPLES = Path(__file__).resolve().parent.parent / "ferhub" / "assets" / "examples"


@pytest.fixture(scope="module")
def demo() -> gr.Blocks:
    return build_app([DEFAULT_MODEL])


def by_id(demo: gr.Blocks, elem_id: str) -> Any:
    (block,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id]
    return block


def hex_rgb(text: str) -> tuple[int, int, int]:
    return tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


# -- text alternatives ---------------------------------------------------------------------------------------
def test_the_result_photos_have_text_alternatives_that_follow_each_result(demo: gr.Blocks) -> None:
    """The Faces and Attribution photos had alt="" inside a focusable button: a screen reader announced an
    unnamed button. They have a text alternative from the start, and each result (or its clearing) sets one
    that names the faces, and what the maps explain."""
    annotated, saliency = by_id(demo, "classify-annotated"), by_id(demo, "classify-saliency")
    assert annotated.alt_text == classify.FACES_ALT and saliency.alt_text == classify.ATTRIBUTION_ALT
    deps = {d["api_name"]: d for d in demo.config["dependencies"]}
    describe = deps["describe_results"]
    result = deps["classify"]["outputs"][4]  # the JSON: every run ends by setting it, whatever started it
    assert describe["targets"] == [(result, "change")] and describe["inputs"] == [result]
    assert describe["outputs"] == [annotated._id, saliency._id] and describe["api_visibility"] == "private"

    faces = [
        {"label": "happy", "probabilities": {"happy": 0.91, "sad": 0.09}},
        {"label": "neutral", "probabilities": {"neutral": 0.6, "sad": 0.4}},
    ]
    data = {"faces": faces, "saliency": {"method": "gradcam", "targets": ["happy", "neutral"]}}
    faces_alt, maps_alt = classify.describe(data)
    assert faces_alt["alt_text"] == "2 faces boxed and labelled: #1 happy 91%, #2 neutral 60%"
    assert maps_alt["alt_text"].startswith("Grad-CAM attribution over 2 faces for happy, neutral:")
    assert "own maximum" in maps_alt["alt_text"]
    assert classify.describe({**data, "saliency": None})[1]["alt_text"] == "No attribution (method None)"
    crowd = {"faces": faces * 10, "saliency": None}  # a crowd: the first faces named, the others counted
    assert classify.describe(crowd)[0]["alt_text"].endswith(", #12 neutral 60% and 8 more")
    assert [u["alt_text"] for u in classify.describe(None)] == [classify.FACES_ALT, classify.ATTRIBUTION_ALT]


def test_the_whole_photo_fallback_is_described_as_such() -> None:
    """No face found and the whole photo classified (the app's fallback) was "1 face boxed and labelled",
    where the probability panel says "no face found: whole image"."""
    face = {"label": "neutral", "probabilities": {"neutral": 0.62}, "face_found": False}
    data = {"faces": [face], "saliency": {"method": "gradcam", "targets": ["neutral"]}}
    faces_alt, maps_alt = classify.describe(data)
    assert faces_alt["alt_text"] == "No face found: the whole photo labelled #1 neutral 62%"
    assert maps_alt["alt_text"].startswith("Grad-CAM attribution over the whole photo for neutral:")


def test_a_real_result_is_described() -> None:
    """The alt texts come from what classify returns for a real photo."""
    *_, data, _ = classify.classify(str(EXAMPLES / "grace_hopper.jpg"), DEFAULT_MODEL, "Grad-CAM")
    (face,) = data["faces"]
    faces_alt, maps_alt = classify.describe(data)
    assert faces_alt["alt_text"] == f"1 face boxed and labelled: #1 {face['label']} " + (
        f"{face['probabilities'][face['label']]:.0%}"
    )
    assert maps_alt["alt_text"].startswith(f"Grad-CAM attribution over 1 face for {face['label']}:")


def run_examples_js(srcs: list[str]) -> list[str]:
    """classify.EXAMPLES_JS run in Node on thumbnails with these ``src``: the ``alt`` each gets."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node")
    harness = (
        f"const imgs = {json.dumps(srcs)}.map((src) => ({{ alt: '', getAttribute: () => src }}));\n"
        "globalThis.document = { body: {}, querySelectorAll: (s) => s.includes('#classify-examples') &&"
        " s.includes('#compare-examples .gallery-item img') ? imgs : [] };\n"
        "globalThis.MutationObserver = class { observe() {} };\n"
        "globalThis.requestAnimationFrame = (f) => f();\n"
        f"({classify.EXAMPLES_JS})();\n"
        "console.log(JSON.stringify(imgs.map((i) => i.alt)));\n"
    )
    out = subprocess.run([node, "-e", harness], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(out.stdout)


def test_the_example_photos_are_named(demo: gr.Blocks) -> None:
    """The example thumbnails (Classify and Compare) were buttons holding an unnamed image: "button, button"
    where a sighted visitor sees an astronaut and Grace Hopper. The page names them on load."""
    assert launch_kwargs()["js"] == classify.EXAMPLES_JS
    for elem_id in ("classify-examples", "compare-examples"):
        assert isinstance(by_id(demo, elem_id), gr.Dataset)
    served = [f"/gradio_api/file=/srv/{name}" for name in sorted(p.name for p in EXAMPLES.glob("*.jpg"))]
    assert run_examples_js([*served, "/gradio_api/file=/tmp/my_cat-photo.png?x=1"]) == [
        "Example photo: astronaut Eileen Collins",
        "Example photo: Grace Hopper",
        "Example photo: my cat photo",
    ]


# -- the attribution maps explained --------------------------------------------------------------------------
def test_the_attribution_maps_have_a_key_and_the_pickers_say_what_they_do(demo: gr.Blocks) -> None:
    """The maps had no colour key and nothing said each face is scaled to its own maximum; the method and
    class pickers had no explanation."""
    from ferhub.saliency import colorize

    key = by_id(demo, "classify-attribution-key").value
    assert key == classify.attribution_key() and "own maximum" in key and "Explain class" in key
    stops = [tuple(int(v) for v in m) for m in re.findall(r"rgb\((\d+),(\d+),(\d+)\)", key)]
    assert stops[0] == tuple(colorize(np.zeros((1, 1)))[0, 0]) and stops[-1] == tuple(
        colorize(np.ones((1, 1)))[0, 0]
    )
    method, target = by_id(demo, "classify-method"), by_id(demo, "classify-target")
    assert "Grad-CAM" in method.info and "Occlusion" in method.info and "seconds per face" in method.info
    assert "predicted" in target.info


# -- dark mode -----------------------------------------------------------------------------------------------
def css_rule(css: str, selector: str) -> str:
    return css.split(selector + " {")[1].split("}")[0]


def test_the_probability_bars_follow_the_theme() -> None:
    """The bars' track was a fixed light grey: on a dark page the empty part of every bar was its brightest
    part, so "0.0%" read as a full bar. It takes the theme's border colour (light or dark)."""
    rule = css_rule(classify.CSS, ".fh-bar")
    assert "background: var(--border-color-primary" in rule and not re.search(r"background:\s*#", rule)


def test_the_webcam_error_reads_in_dark_mode_and_is_announced() -> None:
    """The error line's #dc2626 was 3.96:1 on the dark page (AA: 4.5:1), and nothing told a screen reader
    that Start failed."""
    dark_page, light_page = (15, 15, 17), (255, 255, 255)
    light = hex_rgb(css_rule(webcam.PAGE_CSS, ".fh-live-error").split("color:")[1].strip(" ;"))
    dark = hex_rgb(css_rule(classify.CSS, ".dark #webcam-live .fh-live-error").split("color:")[1].strip(" ;"))
    assert contrast_ratio(light, light_page) >= 4.5 and contrast_ratio(dark, dark_page) >= 4.5
    assert 'class="fh-live-alert" role="alert"' in webcam.PAGE
    assert 'role="img"' in webcam.PAGE.split('id="webcam-output"')[1].split(">")[0]


def test_a_webcam_error_goes_to_the_alert_region_and_the_rate_does_not(tmp_path: Path) -> None:
    """webcam.js in Node (the harness of test_live.py): a camera that cannot start is said in the alert
    region; a streaming rate is not."""
    from test_live import WEBCAM_PAGE_HARNESS

    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node")
    code = Path(webcam.__file__).with_name("webcam.js").read_text(encoding="utf-8")
    harness = WEBCAM_PAGE_HARNESS.replace(
        '  ".fh-live-button": node(),', '  ".fh-live-button": node(),\n  ".fh-live-alert": node(),'
    )
    harness = harness.replace(
        'console.log(els[".fh-live-status"].textContent);',
        'console.log(JSON.stringify(els[".fh-live-alert"].textContent));',
    )
    streaming = tmp_path / "streaming.mjs"
    streaming.write_text(harness, encoding="utf-8")
    out = subprocess.run([node, str(streaming), code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.splitlines() == ['""', '""']  # streaming, then stopped: nothing to announce
    refused = harness.replace(
        "getUserMedia: async () => ({ getTracks: () => [{ stop() {} }] })",
        "getUserMedia: async () => { throw Object.assign(new Error('Requested device not found'),"
        " { name: 'NotFoundError' }); }",
    )
    refused = (
        refused.split("await until(")[0]
        + "await new Promise((r) => setTimeout(r, 50));\n"
        + "console.log(els['.fh-live-alert'].textContent);\nprocess.exit(0);\n"
    )
    no_camera = tmp_path / "no_camera.mjs"
    no_camera.write_text(refused, encoding="utf-8")
    out = subprocess.run([node, str(no_camera), code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "No camera: Requested device not found"


# -- layout --------------------------------------------------------------------------------------------------
def test_the_result_photos_go_one_under_the_other_when_narrow(demo: gr.Blocks) -> None:
    """At 768-1000 px the two result photos shrank to 174 px side by side (tags ~5 px tall): each keeps at
    least 300 px, and Gradio wraps a row's children below their min_width."""
    for elem_id in ("classify-annotated", "classify-saliency"):
        assert by_id(demo, elem_id).min_width == classify.PHOTO_MIN_WIDTH >= 300


def test_the_first_screen_holds_the_classify_button_and_names_the_examples(demo: gr.Blocks) -> None:
    """On a 1366x768 laptop neither the Classify button (801 px down) nor the examples were on the first
    screen, and the intro did not mention the examples: both come right under the photo now."""
    assert "example photos under the Photo box" in INTRO
    photo = by_id(demo, "classify-input")

    def ids(block: Any) -> list[str]:  # the elem_ids inside a layout block, in page order
        own = [block.elem_id] if getattr(block, "elem_id", None) else []
        return own + [i for child in getattr(block, "children", []) for i in ids(child)]

    order = ids(photo.parent)
    assert order[:3] == ["classify-input", "classify-button", "classify-examples"]
    assert order.index("classify-examples") < order.index("classify-model") < order.index("classify-method")
    assert photo.height <= 320


@pytest.fixture
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A second, tiny model saved as a local folder, which this server is allowed to load."""
    import torch

    from ferhub.hub import save
    from ferhub.models import create_model
    from ferhub.ui import visitors

    monkeypatch.setenv(visitors.LOCAL_PATHS_SETTING, "1")
    visitors.configure([])
    torch.manual_seed(0)
    save(create_model("test_tiny"), tmp_path / "tiny")
    yield str(tmp_path / "tiny")
    monkeypatch.delenv(visitors.LOCAL_PATHS_SETTING)
    visitors.configure([])


def test_the_compare_agreement_heatmap_has_no_colour_bar_over_its_labels(
    tmp_path: Path, tiny_model: str
) -> None:
    """On a phone the colour bar covered the slanted model names; each cell prints its value, so the app's
    heatmap goes without the bar."""
    pair = Image.new("RGB", (1024, 512))
    pair.paste(Image.open(EXAMPLES / "grace_hopper.jpg").convert("RGB").resize((512, 512)), (0, 0))
    pair.paste(Image.open(EXAMPLES / "astronaut.jpg").convert("RGB").resize((512, 512)), (512, 0))
    pair.save(tmp_path / "pair.jpg")
    _, _, figure, _ = compare.compare_photo(str(tmp_path / "pair.jpg"), [DEFAULT_MODEL, tiny_model])
    (heatmap,) = figure.data
    assert heatmap.showscale is False and heatmap.texttemplate == "%{text}"


# -- timelines -----------------------------------------------------------------------------------------------
def test_timeline_lines_differ_by_more_than_colour() -> None:
    """Colour was the only cue from a line to its legend entry (fear and sad were one colour for
    deuteranopes): each expression's smoothed line carries its own marker symbol, a few along the line."""
    from ferhub import timeline
    from ferhub.labels import FER7

    frames = [
        {
            "frame": n,
            "time": n / 10,
            "faces": [
                {
                    "face_id": 1,
                    "probabilities": dict.fromkeys(FER7, 1 / 7),
                    "smoothed": dict.fromkeys(FER7, 1 / 7),
                }
            ],
        }
        for n in range(100)
    ]
    fig = timeline.figure(timeline.collect(frames, "m"))
    smoothed = [t for t in fig.data if not t.name.endswith("(raw)")]
    assert len(smoothed) == 7 and all(t.mode == "lines+markers" for t in smoothed)
    symbols = [t.marker.symbol for t in smoothed]
    assert len(set(symbols)) == 7 and symbols == [timeline.LABEL_SYMBOLS[t.name] for t in smoothed]
    assert all(0 < t.marker.maxdisplayed <= 20 for t in smoothed)  # a few markers, not one per frame


def test_a_classify_run_shows_its_progress_once(demo: gr.Blocks) -> None:
    """The progress (occlusion's "face 1 of 24") was drawn on all five outputs, and over the JSON accordion
    from the empty probabilities panel: every classify event shows it on the Faces photo only."""
    annotated = by_id(demo, "classify-annotated")
    runs = [d for d in demo.config["dependencies"] if str(d["api_name"]).startswith("classify")]
    assert len(runs) == 4 and all(d["show_progress_on"] == [annotated._id] for d in runs)
