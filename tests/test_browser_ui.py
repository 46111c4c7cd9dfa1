"""The app's rough edges, tried as a new user would in a real headless Chromium (issue 16): one toast per
failed
action and no stale results beside it, pickers that keep working, labels that never hide one another on a
group photo, honest occlusion progress, and a Compare dashboard with one class order that fits 1280-1920 px
screens.

Screenshots go to ``$FERHUB_SCREENSHOTS`` (default: a temporary folder); ``docs/screenshots`` are taken here.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import chromium, served
from browser import until as wait
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "ferhub" / "assets" / "examples"
HOPPER = EXAMPLES / "grace_hopper.jpg"
# a model in faceapi's label order (7 classes, three of them never seen nor predicted) beside a 3-class one
FACEAPI_ORDER = ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"]
SHOWN_ORDER = ["happy", "sad", "surprise", "neutral"]  # ferhub's order; angry, disgust and fear hidden


def group_photo(path: Path) -> Path:
    """A 1280x720 "group photo": the two bundled portraits' faces, resized and mirrored, six in two rows."""
    faces = []
    for name, box in (("grace_hopper.jpg", (120, 40, 400, 380)), ("astronaut.jpg", (140, 10, 300, 190))):
        faces.append(Image.open(EXAMPLES / name).convert("RGB").crop(box))
    canvas = Image.new("RGB", (1280, 720), (96, 110, 120))
    spots = [(60, 40), (470, 70), (880, 30), (250, 380), (660, 400), (1040, 360)]
    for i, (x, y) in enumerate(spots):
        face = faces[i % 2].resize((230, 270) if i % 2 == 0 else (220, 250))
        canvas.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i >= 3 else face, (x, y))
    canvas.save(path, quality=92)
    return path


def results_entry(labels: list[str], cm: list[list[int]]) -> dict[str, Any]:
    m = np.array(cm, dtype=float)
    support, predicted = m.sum(axis=1), m.sum(axis=0)
    recall = np.divide(m.diagonal(), support, out=np.zeros(len(labels)), where=support > 0)
    precision = np.divide(m.diagonal(), predicted, out=np.zeros(len(labels)), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(labels)), where=recall > 0)
    used = (support > 0) | (predicted > 0)
    return {
        "dataset": {"id": "faces", "split": "test", "name": "faces"},
        "metrics": {
            "accuracy": float(m.trace() / m.sum()),
            "mean_class_recall": float(recall[support > 0].mean()),
            "macro_f1": float(f1[used].mean()),
        },
        "labels": labels,
        "confusion_matrix": cm,
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "num_images": int(m.sum()),
    }


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Two small model repos with results on one dataset: a 3-class one and one in faceapi's order that
    predicts 'surprise', which the data has no images of (so its macro-F1 averages one class more)."""
    import torch

    from ferhub import eval_results
    from ferhub.hub import save
    from ferhub.models import create_model

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    three = ["happy", "sad", "neutral"]
    cm3 = [[7, 2, 1], [3, 11, 0], [0, 4, 5]]
    cm7 = np.zeros((7, 7), dtype=int)
    for true, row in zip(("happy", "sad", "neutral"), cm3):
        for pred, n in zip(("happy", "sad", "surprise"), row):  # it calls neutral faces surprised
            cm7[FACEAPI_ORDER.index(true), FACEAPI_ORDER.index(pred)] += n
    out = []
    for name, labels, cm in (("three-class", three, cm3), ("faceapi-order", FACEAPI_ORDER, cm7.tolist())):
        folder = root / name
        save(create_model("test_tiny", labels=labels), folder)
        eval_results.write(folder, {"faces:default:test": results_entry(labels, cm)}, render_card=False)
        out.append(str(folder))
    return out


@pytest.fixture(scope="module")
def app_url(models: list[str]) -> Iterator[str]:
    from ferhub.hub import DEFAULT_MODEL

    with served([DEFAULT_MODEL, *models]) as url:
        yield url


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    with chromium(width=1400, height=1000) as browser:
        yield browser


def js(driver: Any, script: str, *args: Any) -> Any:
    return driver.execute_script(script, *args)


def open_page(driver: Any, url: str, tab: str | None = None) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#classify-input input[type=file]"), what="the page")
    if tab:
        for name in tab.split("/"):
            wait(
                lambda name=name: next(
                    b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text == name
                ),
                what=f"tab {name}",
            ).click()


def toasts(driver: Any) -> list[dict[str, Any]]:
    """Every toast on screen: its kind (error, warning...), title and message lines."""
    return js(
        driver,
        """return [...document.querySelectorAll('.toast-body')].map(t => ({
             kind: [...t.classList].find(c => ['error', 'warning', 'info', 'success'].includes(c)),
             title: (t.querySelector('.toast-title') || {}).textContent || '',
             messages: [...t.querySelectorAll('.toast-message-text')].map(m => m.textContent.trim())}));""",
    )


def close_toasts(driver: Any) -> None:
    js(driver, "document.querySelectorAll('.toast-close').forEach(b => b.click());")
    wait(lambda: not toasts(driver), what="toasts closed")


def upload(driver: Any, element_id: str, path: Path) -> None:
    from selenium.webdriver.common.by import By

    wait(
        lambda: driver.find_element(By.CSS_SELECTOR, f"#{element_id} input[type=file]"),
        what="an upload input",
    ).send_keys(str(path))


OPTION = "ul[role=listbox] li[role=option]"  # a Gradio 6 dropdown's open list


def choose(driver: Any, element_id: str, value: str) -> None:
    """Pick ``value`` in a Gradio dropdown (typing it, then Enter, as a user does for a custom value)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, f"#{element_id} input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(value)
    option = [
        o for o in driver.find_elements(By.CSS_SELECTOR, OPTION) if o.get_attribute("aria-label") == value
    ]
    if option:
        option[0].click()
    else:
        box.send_keys(Keys.ENTER)
    driver.find_element(By.TAG_NAME, "h1").click()  # close the list


def options(driver: Any, element_id: str) -> list[str]:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f"#{element_id} input").click()
    found = wait(
        lambda: [o.get_attribute("aria-label") for o in driver.find_elements(By.CSS_SELECTOR, OPTION)],
        what=f"the options of #{element_id}",
    )
    driver.find_element(By.TAG_NAME, "h1").click()
    # the list closes asynchronously: read the next picker's options only once this one's are gone
    wait(
        lambda: not driver.find_elements(By.CSS_SELECTOR, OPTION),
        what=f"the options of #{element_id} to close",
    )
    return found


def probs_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, "classify-probs").text


def test_a_failed_upload_gives_one_toast_and_clears_every_result(
    driver: Any, app_url: str, shots: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    open_page(driver, app_url)
    upload(driver, "classify-input", HOPPER)
    wait(lambda: "Face #1" in probs_text(driver), what="the first result")
    assert driver.find_elements(By.CSS_SELECTOR, "#classify-annotated img")
    fake = tmp_path / "holiday.jpg"
    fake.write_text("not a photo")
    upload(driver, "classify-input", fake)  # replaces the photo: `change` fired twice here before
    wait(lambda: toasts(driver), what="the error toast")
    time.sleep(2)  # a second toast would have arrived by now
    (toast,) = toasts(driver)
    assert toast["kind"] == "error" and toast["title"].strip() == "Error"  # Gradio 6 groups toasts by kind
    assert len(toast["messages"]) == 1 and toast["messages"][0].startswith("holiday.jpg: not an image file")
    assert "/" not in toast["messages"][0].split(":")[0]
    # no stale result beside the error: the boxes, the probabilities, the overlays and the JSON are gone
    # (each output keeps Gradio's red "Error" status badge, which says this run failed)
    wait(lambda: not driver.find_elements(By.CSS_SELECTOR, "#classify-probs .fh-probs"), what="probs cleared")
    assert "Face #" not in probs_text(driver)
    for element in ("classify-annotated", "classify-saliency", "classify-crops"):
        assert not driver.find_elements(By.CSS_SELECTOR, f"#{element} img"), element
    driver.save_screenshot(str(shots / "10-classify-error.png"))
    close_toasts(driver)


def test_pickers_list_classes_from_the_start_and_survive_an_unreachable_model(
    driver: Any, app_url: str, shots: Path
) -> None:
    from selenium.webdriver.common.by import By

    from ferhub.hub import DEFAULT_MODEL, load

    open_page(driver, app_url)
    assert options(driver, "classify-target") == ["predicted", *load(DEFAULT_MODEL).config.labels]
    choose(driver, "classify-model", "nobody/unreachable-model")
    wait(lambda: toasts(driver), what="the warning")
    time.sleep(1.5)
    (toast,) = toasts(driver)
    assert (
        toast["kind"] == "warning" and "Cannot load model 'nobody/unreachable-model'" in toast["messages"][0]
    )
    for picker in ("classify-method", "classify-target"):  # no red "Error" badge, still a working dropdown
        assert not driver.find_elements(By.CSS_SELECTOR, f"#{picker} .error, #{picker} .status-error"), picker
    assert "Occlusion" in options(driver, "classify-method")
    assert options(driver, "classify-target") == ["predicted"]
    driver.save_screenshot(str(shots / "11-classify-unreachable-model.png"))
    close_toasts(driver)
    choose(driver, "classify-model", DEFAULT_MODEL)
    wait(lambda: "angry" in options(driver, "classify-target"), what="the classes back")


def test_group_photo_faces_numbered_left_to_right_labels_apart(
    driver: Any, app_url: str, shots: Path, tmp_path: Path
) -> None:
    """Six faces: numbered 1-based left to right (then top to bottom), every label clear of every other, and
    occlusion says which face it is on while it runs. The group photo is put in while another photo is still
    being classified: it is classified next (it was ignored, its panel showing the other photo's results)."""
    from selenium.webdriver.common.by import By

    from ferhub.drawing import layout_labels
    from ferhub.faces import reading_order

    photo = group_photo(tmp_path / "group.jpg")
    open_page(driver, app_url)
    choose(driver, "classify-method", "Occlusion")
    upload(driver, "classify-input", HOPPER)
    busy = "return document.querySelector('#classify-annotated [data-testid=status-tracker]:not(.hide)')"
    wait(lambda: js(driver, busy), what="the first run")
    upload(driver, "classify-input", photo)
    seen: set[str] = set()
    start = time.monotonic()

    def done() -> bool:
        seen.update(
            t.strip()
            for t in js(
                driver,
                "return [...document.querySelectorAll('.progress-text, "
                ".progress-level-inner, .meta-text')].map(e => e.textContent)",
            )
            if t
        )
        return "Face #6" in probs_text(driver)

    wait(done, timeout=240, what="six faces classified and explained")
    elapsed = time.monotonic() - start
    result = js(driver, "return document.querySelector('#classify-download a')?.href")
    import json
    import urllib.request

    with urllib.request.urlopen(result, timeout=10) as r:
        data = json.loads(r.read())
    boxes = [f["box"] for f in data["faces"]]
    assert len(boxes) == 6 and data["saliency"]["method"] == "occlusion"
    assert reading_order(boxes) == list(range(6))  # JSON, labels and panels share the 1-based order
    centres = [(b[0] + b[2]) / 2 for b in boxes]
    assert centres[0] == min(centres) and centres[-1] == max(centres)
    labels = [
        f"#{i} {f['label']} {f['probabilities'][f['label']]:.0%}" for i, f in enumerate(data["faces"], 1)
    ]
    layout = layout_labels((1280, 720), boxes, labels)
    for a, b in itertools.combinations(layout.tags, 2):
        assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    assert [line.split(":")[0] for line in probs_text(driver).splitlines() if line.startswith("Face #")] == [
        f"Face #{i}" for i in range(1, 7)
    ]
    assert any("Occlusion: face" in t and "of 6" in t for t in seen), seen
    print(f"occlusion on 6 faces in the browser: {elapsed:.1f} s; progress seen: {sorted(seen)[:6]}")
    driver.find_element(By.ID, "classify-annotated").location_once_scrolled_into_view  # noqa: B018
    driver.save_screenshot(str(shots / "12-classify-group.png"))
    choose(driver, "classify-method", "Grad-CAM")


def crowd_photo(path: Path) -> Path:
    """60 faces in a 10 x 6 grid (scikit-image's LFW crops, upscaled): occlusion takes seconds over them."""
    from images_corpus import lfw_face

    canvas = Image.new("RGB", (1200, 720), (200, 200, 200))
    for i in range(60):
        face = lfw_face(i).resize((100, 100), Image.Resampling.BICUBIC)
        canvas.paste(face, ((i % 10) * 120 + 10, (i // 10) * 120 + 10))
    canvas.save(path)
    return path


# what the Classify results show now: the probabilities' text, and every progress line on the page
SHOWN = """return [document.getElementById('classify-probs').innerText,
  [...document.querySelectorAll('.progress-text, .meta-text, .progress-level-inner')]
    .map(e => e.textContent.trim()).filter(t => t)]"""


def test_a_new_photo_ends_the_last_photos_explanation(
    driver: Any, app_url: str, shots: Path, tmp_path: Path
) -> None:
    """A photo put in while the last one was still being explained waited for the whole explanation, under
    the last photo's progress bar ("face 3 of 60"), and the last photo's results showed before its own: the
    explanation ends at its next face and the new photo is classified at once."""
    open_page(driver, app_url)
    choose(driver, "classify-method", "Occlusion")
    upload(driver, "classify-input", crowd_photo(tmp_path / "crowd.png"))
    wait(lambda: any("of 60" in t for t in js(driver, SHOWN)[1]), timeout=120, what="occlusion of 60 faces")
    swapped = time.monotonic()
    upload(driver, "classify-input", HOPPER)
    late: list[tuple[float, list[str]]] = []  # the crowd's progress or results, a second after the swap

    def done() -> bool:
        probs, progress = js(driver, SHOWN)
        if time.monotonic() - swapped > 1 and (any("of 60" in t for t in progress) or "Face #2" in probs):
            late.append((time.monotonic() - swapped, progress))
        return "Face #1" in probs and "Face #2" not in probs and not progress

    wait(done, timeout=120, what="Grace Hopper classified")
    print(f"the new photo's results {time.monotonic() - swapped:.1f} s after it was put in")
    assert not late, late[:3]
    driver.save_screenshot(str(shots / "15-classify-new-photo.png"))
    choose(driver, "classify-method", "Grad-CAM")


def test_new_settings_clear_the_results_and_the_overlays_fit_a_phone(
    driver: Any, app_url: str, models: list[str], shots: Path, tmp_path: Path
) -> None:
    """At 390 px the per-face overlays showed 3 of every 6 (a fixed grid of 6 columns of 100 px), and a new
    model left the last model's boxes, bars and overlays on screen under its name."""
    from selenium.webdriver.common.by import By

    from ferhub.hub import DEFAULT_MODEL

    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        open_page(driver, app_url)
        upload(driver, "classify-input", group_photo(tmp_path / "group.jpg"))
        wait(lambda: "Face #6" in probs_text(driver), timeout=120, what="six faces")
        fits = """const g = document.getElementById('classify-crops').getBoundingClientRect();
          return [...document.querySelectorAll('#classify-crops .thumbnail-item')].map(e => {
            const r = e.getBoundingClientRect(); return r.left >= g.left - 1 && r.right <= g.right + 1; });"""
        wait(lambda: len(js(driver, fits)) == 6, what="six overlays")
        assert all(js(driver, fits)), js(driver, fits)
        driver.find_element(By.ID, "classify-crops").location_once_scrolled_into_view  # noqa: B018
        driver.save_screenshot(str(shots / "16-classify-overlays-phone.png"))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    choose(driver, "classify-model", models[0])
    wait(lambda: "Face #" not in probs_text(driver), what="the last model's results cleared")
    assert "press Classify" in probs_text(driver)
    for element in ("classify-annotated", "classify-saliency", "classify-crops"):
        assert not driver.find_elements(By.CSS_SELECTOR, f"#{element} img"), element
    driver.find_element(By.ID, "classify-button").click()
    wait(lambda: "Face #6" in probs_text(driver), timeout=120, what="the new model's results")
    choose(driver, "classify-model", DEFAULT_MODEL)


def plot_geometry(driver: Any, element_id: str) -> dict[str, Any]:
    return js(
        driver,
        """const box = document.getElementById(arguments[0]);
           const gd = box.querySelector('.js-plotly-plot');
           const r = (e) => e ? e.getBoundingClientRect().toJSON() : null;
           return {box: r(box), svg: r(gd.querySelector('.main-svg')), bar: r(gd.querySelector('.colorbar')),
                   ticks: [...gd.querySelectorAll('.xtick text')].map(r), x: gd.data[0].x, y: gd.data[0].y,
                   title: gd.layout.title.text};""",
        element_id,
    )


@pytest.mark.parametrize("width", [1280, 1920])
def test_compare_dashboard_one_order_hidden_classes_and_it_fits(
    driver: Any, app_url: str, models: list[str], shots: Path, width: int
) -> None:
    from selenium.webdriver.common.by import By

    driver.set_window_size(width, 1100)
    try:
        open_page(driver, app_url, "Compare/Evaluation results")
        choose(driver, "compare-models", models[1])  # beside the default pair (one of them has no results)
        wait(lambda: driver.find_element(By.ID, "compare-load"), what="the load button").click()
        wait(
            lambda: driver.find_elements(By.CSS_SELECTOR, "#compare-confusion-1 .main-svg"),
            what="two matrices",
        )
        geo = {i: plot_geometry(driver, f"compare-confusion-{i}") for i in (0, 1)}
        # one class order in every panel: ferhub's, with the classes nobody has or predicts hidden
        assert [g["x"] for g in geo.values()] == [SHOWN_ORDER, SHOWN_ORDER]
        assert all(g["y"] == SHOWN_ORDER for g in geo.values())
        note = driver.find_element(By.ID, "compare-dataset-note").text
        assert "Hidden (no images, never predicted): angry, disgust, fear." in note
        for g in geo.values():  # the whole matrix, its last column and its colour bar inside the panel
            right = g["box"]["right"] + 1
            assert (
                g["svg"]["right"] <= right and g["bar"]["right"] <= right and g["ticks"][-1]["right"] <= right
            )
            assert g["svg"]["width"] >= 0.4 * width - 60  # two panels a row, each a good half of the screen
        legend = driver.find_element(By.ID, "compare-averages").text
        assert "macro-F1 averages those and the 1 it predicts that have none (surprise" in legend
        driver.save_screenshot(str(shots / f"13-compare-dashboard-{width}.png"))
        # all classes on demand
        driver.find_element(By.CSS_SELECTOR, "#compare-show-all input").click()
        wait(
            lambda: (
                plot_geometry(driver, "compare-confusion-0")["x"]
                == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
            ),
            what="every class shown",
        )
        # the difference matrix for the pair the user picks
        first = plot_geometry(driver, "compare-difference")["title"]
        assert first.startswith("faceapi-order<br>minus<br>three-class")  # a line each (plots.model_title)
        choose(driver, "compare-pair-a", "faceapi-order")
        choose(driver, "compare-pair-b", "three-class")
        wait(
            lambda: plot_geometry(driver, "compare-difference")["title"].startswith(
                "three-class<br>minus<br>faceapi"
            ),
            what="the difference of the picked pair",
        )
        driver.find_element(By.ID, "compare-difference").location_once_scrolled_into_view  # noqa: B018
        driver.save_screenshot(str(shots / f"14-compare-difference-{width}.png"))
    finally:
        driver.set_window_size(1400, 1000)


def test_result_photos_and_examples_are_named_stack_on_a_tablet_and_bars_follow_dark_mode(
    driver: Any, app_url: str, shots: Path
) -> None:
    """Screen readers met unnamed buttons for the result photos and the example thumbnails; at 900 px the two
    result photos shrank to 174 px side by side; in dark mode the bars' empty part was light grey."""

    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 900, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        open_page(driver, app_url + "?__theme=dark")
        alts = "return [...document.querySelectorAll(arguments[0])].map(i => i.alt)"
        wait(
            lambda: (
                js(driver, alts, "#classify-examples .gallery-item img")
                == ["Example photo: astronaut Eileen Collins", "Example photo: Grace Hopper"]
            ),
            what="the examples named",
        )
        upload(driver, "classify-input", HOPPER)
        wait(lambda: "Face #1" in probs_text(driver), timeout=120, what="a result")
        wait(
            lambda: (
                js(driver, alts, "#classify-annotated img")[0].startswith("1 face boxed and labelled: #1 ")
                and js(driver, alts, "#classify-saliency img")[0].startswith(
                    "Grad-CAM attribution over 1 face"
                )
            ),
            what="the result photos named",
        )
        box = "return document.getElementById(arguments[0]).getBoundingClientRect().toJSON()"
        faces, maps = js(driver, box, "classify-annotated"), js(driver, box, "classify-saliency")
        assert faces["width"] >= 290 and maps["top"] >= faces["bottom"] - 1, (faces, maps)
        track = js(
            driver,
            "const m = getComputedStyle(document.querySelector('.fh-bar')).backgroundColor"
            ".match(/\\d+/g).map(Number); return m.slice(0, 3);",
        )
        assert sum(track) / 3 < 100, track  # a dark grey on the dark page, not #e5e7eb
        driver.save_screenshot(str(shots / "classify-tablet-dark.png"))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
