"""The app in a real headless Chromium (Debian's ``chromium`` + ``chromedriver``), sharing one server and one
browser: the page loads; an uploaded photo comes back boxed, labelled and with its saliency overlay; the
Compare tab's confusion matrix is a plotly heatmap whose hover text holds the right count; the Webcam tab, fed
a y4m video of real faces through Chromium's fake capture device, streams annotated frames and snapshots to
Classify.

Screenshots go to ``$FERHUB_SCREENSHOTS`` (default: a temporary folder). A missing browser fails the test.
"""

from __future__ import annotations

import base64
import io
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import chromium, served
from browser import until as wait_for
from PIL import Image

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "ferhub" / "assets" / "examples"
HOPPER = EXAMPLES / "grace_hopper.jpg"
# the evaluation results given to the second model: rows = true, columns = predicted
CONFUSION = [[7, 2, 1], [3, 11, 0], [0, 4, 5]]
CM_LABELS = ["happy", "sad", "neutral"]


def make_y4m(path: Path, width: int = 640, height: int = 480) -> Path:
    """A short 4:2:0 YUV4MPEG2 video of the bundled face photos drifting sideways, for the fake webcam."""
    frames = []
    for name in ("astronaut.jpg", "grace_hopper.jpg"):
        photo = Image.open(EXAMPLES / name).convert("RGB")
        photo.thumbnail((width, height))
        for dx in range(-12, 12, 3):
            canvas = Image.new("RGB", (width, height), (90, 90, 90))
            canvas.paste(photo, ((width - photo.width) // 2 + dx, (height - photo.height) // 2))
            frames.append(canvas)
    with path.open("wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F15:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            ycc = np.asarray(frame.convert("YCbCr"), dtype=np.float32)
            chroma = ycc[..., 1:].reshape(height // 2, 2, width // 2, 2, 2).mean(axis=(1, 3))
            f.write(b"FRAME\n" + ycc[..., 0].astype(np.uint8).tobytes())
            f.write(
                np.round(chroma[..., 0]).astype(np.uint8).tobytes()
                + np.round(chroma[..., 1]).astype(np.uint8).tobytes()
            )
    return path


@pytest.fixture(scope="module")
def results_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small model repo whose eval_results.json holds ``CONFUSION``."""
    import torch

    from ferhub.eval_results import write as write_results
    from ferhub.hub import save
    from ferhub.models import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny-evaluated"
    save(create_model("test_tiny", labels=CM_LABELS), folder)
    cm = np.array(CONFUSION)
    recall = cm.diagonal() / cm.sum(axis=1)
    precision = cm.diagonal() / cm.sum(axis=0)
    f1 = 2 * precision * recall / (precision + recall)
    entry = {
        "dataset": {"id": "faces", "split": "test", "name": "faces"},
        "metrics": {
            "accuracy": float(cm.trace() / cm.sum()),
            "mean_class_recall": float(recall.mean()),
            "macro_f1": float(f1.mean()),
            "top2_accuracy": 0.9,
            "nll": 0.8,
            "ece": 0.05,
        },
        "labels": CM_LABELS,
        "confusion_matrix": CONFUSION,
        "per_class": {
            c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(CM_LABELS, precision, recall, f1, cm.sum(axis=1))
        },
        "num_images": int(cm.sum()),
    }
    write_results(folder, {"faces:default:test": entry}, render_card=False)
    return str(folder)


@pytest.fixture(scope="module")
def app_url(results_model: str) -> Iterator[str]:
    from ferhub.hub import DEFAULT_MODEL

    with served([DEFAULT_MODEL, results_model]) as url:
        yield url


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the module, its fake webcam fed a video of the bundled face photos."""
    video = make_y4m(tmp_path_factory.mktemp("chromium") / "faces.y4m")
    fake_camera = (
        "--use-fake-ui-for-media-stream",  # grant the camera without a prompt
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    )
    with chromium(width=1400, height=1100, extra_args=fake_camera) as browser:
        yield browser


def open_tab(driver: Any, name: str) -> None:
    from selenium.webdriver.common.by import By

    tab = wait_for(
        lambda: next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if b.text == name),
        what=f"tab {name}",
    )
    tab.click()


def image_of(driver: Any, element_id: str) -> Image.Image:
    """The picture an output ``gr.Image`` shows (served file or data URL), decoded."""
    from selenium.webdriver.common.by import By

    src = wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, f"#{element_id} img").get_attribute("src"),
        what=f"an image in #{element_id}",
    )
    if src.startswith("data:"):
        data = base64.b64decode(src.split(",", 1)[1])
    else:
        with urllib.request.urlopen(src, timeout=10) as r:
            data = r.read()
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_page_loads_with_every_tab(driver: Any, app_url: str, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get(app_url)
    wait_for(lambda: "ferhub" in driver.find_element(By.TAG_NAME, "h1").text, what="the title")
    tabs = [b.text for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]")]
    assert tabs[:4] == ["Classify", "Webcam", "Video", "Compare"]
    assert driver.title.startswith("ferhub")
    driver.save_screenshot(str(shots / "01-page.png"))


def test_upload_shows_boxes_labels_and_saliency(driver: Any, app_url: str, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get(app_url)
    open_tab(driver, "Classify")
    upload = wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#classify-input input[type=file]"),
        what="the upload input",
    )
    upload.send_keys(str(HOPPER))  # a photo change runs classify
    probs = wait_for(
        lambda: (
            driver.find_element(By.ID, "classify-probs").text
            if "Face #1" in driver.find_element(By.ID, "classify-probs").text
            else None
        ),
        what="the per-face probabilities",
    )
    label = probs.split("Face #1: ")[1].split()[0]
    photo = np.asarray(Image.open(HOPPER).convert("RGB"), dtype=np.int32)
    annotated = np.asarray(image_of(driver, "classify-annotated"), dtype=np.int32)
    saliency = np.asarray(image_of(driver, "classify-saliency"), dtype=np.int32)
    assert annotated.shape == saliency.shape == photo.shape
    # the box and its tag are drawn around the face (top half, middle), the rest of the photo is untouched
    changed = np.abs(annotated - photo).sum(axis=2) > 60
    ys, xs = np.nonzero(changed)
    assert 150 < np.median(xs) < 360 and 60 < np.median(ys) < 360
    assert changed[450:].mean() < 0.01
    heat = np.abs(saliency - photo).sum(axis=2) > 60
    assert heat[120:330, 180:350].mean() > 0.05 and heat[450:].mean() < 0.01
    crops = driver.find_elements(By.CSS_SELECTOR, "#classify-crops img")
    assert crops, "no per-face attribution thumbnail"
    assert label in probs and "%" in probs
    # the photos start below their panel's label chip and buttons, which Gradio floats over the top
    # corners: they hid the tags of faces at the top edge of a photo
    for panel in ("classify-annotated", "classify-saliency"):
        top, covers = driver.execute_script(
            """const p = document.getElementById(arguments[0]);
               const b = (s) => [...p.querySelectorAll(s)].map(e => e.getBoundingClientRect().bottom);
               return [p.querySelector('img').getBoundingClientRect().top,
                       [...b('label'), ...b('.icon-button-wrapper')]];""",
            panel,
        )
        assert len(covers) >= 2 and top >= max(covers), (panel, top, covers)
    driver.save_screenshot(str(shots / "02-classify.png"))


def test_compare_same_photo_side_by_side(driver: Any, app_url: str, shots: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get(app_url)
    open_tab(driver, "Compare")
    upload = wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#compare-photo input[type=file]"),
        what="the upload input",
    )
    upload.send_keys(str(EXAMPLES / "astronaut.jpg"))
    wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#compare-photo img"), what="the uploaded photo")
    driver.find_element(By.ID, "compare-photo-button").click()
    summary = wait_for(
        lambda: driver.find_element(By.ID, "compare-summary").text or None, what="the comparison summary"
    )
    assert "1 face(s), detected once and classified by 2 models" in summary
    tiles = driver.find_elements(By.CSS_SELECTOR, "#compare-gallery img")
    assert len(tiles) == 2
    # each model's whole photo, not a square cut from its middle (which hid the faces of a group photo)
    assert {driver.execute_script("return getComputedStyle(arguments[0]).objectFit", t) for t in tiles} == {
        "contain"
    }
    table = driver.find_element(By.ID, "compare-agreement").text.split("\n")
    row = table[table.index("#1") :]  # face, one label per model, majority, share, verdict
    labels = [cell.split(" (")[0] for cell in row[1:3]]
    agree = labels[0] == labels[1]
    assert row[-1] == ("agree" if agree else "disagree")
    # two models that differ are a tie: no majority (it was the first model's label)
    assert row[-3:-1] == ([labels[0], "100%"] if agree else [f"tie: {labels[0]} / {labels[1]}", "50% each"])
    driver.save_screenshot(str(shots / "05-compare-photo.png"))
    # a photo without a face: its error, and none of the last photo's results beside it (they stayed); the
    # table keeps the models' columns
    wall = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (40, 140, 60)).save(wall)
    driver.find_element(By.CSS_SELECTOR, "#compare-photo input[type=file]").send_keys(str(wall))
    time.sleep(1)  # the upload lands
    driver.find_element(By.ID, "compare-photo-button").click()
    wait_for(
        lambda: any(
            "No face found" in m.text for m in driver.find_elements(By.CSS_SELECTOR, ".toast-message-text")
        ),
        what="the error toast",
    )
    wait_for(
        lambda: not driver.find_element(By.ID, "compare-summary").text.strip(), what="the summary cleared"
    )
    assert not driver.find_elements(By.CSS_SELECTOR, "#compare-gallery img")
    table = driver.find_element(By.ID, "compare-agreement").text
    assert "#1" not in table and "majority" in table
    for close in driver.find_elements(By.CSS_SELECTOR, "[data-testid=toast-close]"):
        close.click()
    # other models: the last comparison's summary, photos and rows all go (the summary stayed before)
    driver.find_element(By.CSS_SELECTOR, "#compare-models .token-remove").click()
    wait_for(
        lambda: (
            not driver.find_element(By.ID, "compare-summary").text.strip()
            and not driver.find_elements(By.CSS_SELECTOR, "#compare-gallery img")
        ),
        what="the old comparison cleared",
    )
    assert "#1" not in driver.find_element(By.ID, "compare-agreement").text


def test_compare_heatmap_hover_holds_the_count(driver: Any, app_url: str, shots: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver.get(app_url)
    open_tab(driver, "Compare")
    open_tab(driver, "Evaluation results")
    wait_for(lambda: driver.find_element(By.ID, "compare-load"), what="the load button").click()
    plot = wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#compare-confusion-0 .js-plotly-plot"),
        what="a plotly heatmap",
    )
    wait_for(lambda: driver.execute_script("return !!arguments[0]._fullLayout", plot), what="plotly layout")
    notes = driver.find_element(By.ID, "compare-notes").text
    assert "fer-mini-xception has no evaluation results yet" in notes
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", plot)
    drag = plot.find_element(By.CSS_SELECTOR, ".nsewdrag")  # plotly's hover surface = the plot area
    for true, predicted in ((1, 0), (1, 1), (2, 1)):
        # the centre of the cell (true row, predicted column), from plotly's own axes, relative to the area
        dx, dy, width, height = driver.execute_script(
            """const L = arguments[0]._fullLayout, r = arguments[1].getBoundingClientRect();
               return [L.xaxis.l2p(arguments[3]), L.yaxis.l2p(arguments[2]), r.width, r.height];""",
            plot,
            drag,
            true,
            predicted,
        )
        ActionChains(driver).move_to_element_with_offset(
            drag, int(dx - width / 2), int(dy - height / 2)
        ).perform()
        cell = f"true: {CM_LABELS[true]}\npredicted: {CM_LABELS[predicted]}\n"

        def hover_text(cell: str = cell) -> str | None:
            label = driver.find_element(By.CSS_SELECTOR, "#compare-confusion-0 .hoverlayer text.nums")
            text = (label.get_attribute("data-unformatted") or "").replace("<br>", "\n") + "\n"
            return text if cell in text else None

        text = wait_for(hover_text, timeout=30, what=f"the hover label of {cell!r}")
        row = CONFUSION[true]
        assert f"count: {row[predicted]}" in text
        assert f"{100 * row[predicted] / sum(row):.1f}%" in text
        if (true, predicted) == (1, 0):
            driver.save_screenshot(str(shots / "03-compare-hover.png"))


def open_webcam(driver: Any, app_url: str) -> None:
    """Load the app on its Webcam tab, once the page has its session id (given when the page loaded)."""
    from selenium.webdriver.common.by import By

    driver.get(app_url)
    open_tab(driver, "Webcam")
    wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#webcam-live .fh-live").get_attribute("data-session"),
        what="the page's session",
    )


def test_webcam_streams_annotated_frames(driver: Any, app_url: str, shots: Path) -> None:
    """Start streams the fake camera over the webcam's route: drawn frames with a face come back at a rate;
    a recording plots as a timeline, Stop stops, and a snapshot goes to Classify."""
    from selenium.webdriver.common.by import By

    open_webcam(driver, app_url)
    start = driver.find_element(By.ID, "webcam-start")
    status = driver.find_element(By.ID, "webcam-fps")
    start.click()
    wait_for(lambda: "face" in status.text, what="a frame with a face")
    assert start.text == "Stop"
    driver.find_element(By.CSS_SELECTOR, "#webcam-record input").click()
    time.sleep(4)  # let the rate settle over a few seconds of streaming
    text = status.text
    fps = float(text.split(" fps")[0])
    assert fps > 0 and "1 face" in text and "recording" in text
    frames = lambda: int(driver.find_element(By.ID, "webcam-output").get_attribute("data-frames"))  # noqa: E731
    assert frames() > 10
    url = driver.execute_script("return document.getElementById('webcam-output').toDataURL('image/png')")
    frame = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB")
    assert frame.size == (640, 480)
    # the fake camera shows grey borders and a photo; a drawn box adds strongly coloured label pixels
    rgb = np.asarray(frame, dtype=np.int32)
    assert (rgb.max(axis=2) - rgb.min(axis=2) > 150).any()
    driver.save_screenshot(str(shots / "04-webcam.png"))
    driver.find_element(By.ID, "webcam-timeline").click()
    wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR, "#webcam-timeline-plot .js-plotly-plot"),
        what="the recorded timeline",
    )
    start.click()  # Stop: no more frames
    assert wait_for(lambda: start.text == "Start", what="the stream stopped")
    time.sleep(0.5)
    stopped = frames()
    time.sleep(1)
    assert frames() == stopped
    start.click()  # a second run of the camera streams again
    wait_for(lambda: frames() > stopped + 5, what="frames after Start again")
    start.click()
    driver.find_element(By.ID, "webcam-snapshot").click()
    wait_for(
        lambda: "Face #1" in driver.find_element(By.ID, "classify-probs").text, what="the snapshot classified"
    )
    selected = driver.find_element(By.CSS_SELECTOR, "button[role=tab][aria-selected=true]").text
    assert selected == "Classify"
    # its download named by when it was taken, not after the server's cache file (32 random digits)
    name = wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#classify-download td.filename").get_attribute(
            "aria-label"
        ),
        what="the download",
    )
    assert re.fullmatch(r"webcam-snapshot-\d{8}-\d{6}\.ferhub\.json", name), name
    print(f"webcam: {text}")


def test_webcam_streams_without_request_video_frame_callback(driver: Any, app_url: str) -> None:
    """A browser without ``requestVideoFrameCallback`` (older Firefox and Safari) streams too, each post a
    camera frame of its own (the video's frame count moved on), so no faster than the camera's 30 fps."""
    from selenium.webdriver.common.by import By

    open_webcam(driver, app_url)
    driver.execute_script(
        "delete HTMLVideoElement.prototype.requestVideoFrameCallback; window.__posts = 0;"
        "const fetch = window.fetch; window.fetch = (...a) => { window.__posts += 1; return fetch(...a); };"
    )
    start = driver.find_element(By.ID, "webcam-start")
    start.click()
    wait_for(lambda: "face" in driver.find_element(By.ID, "webcam-fps").text, what="a frame with a face")
    before, t = driver.execute_script("return window.__posts"), time.monotonic()
    time.sleep(3)
    posts = (driver.execute_script("return window.__posts") - before) / (time.monotonic() - t)
    start.click()
    assert 1 < posts <= 33, posts


def test_webcam_without_camera_access_says_so(driver: Any, app_url: str) -> None:
    """A visitor who does not allow the camera gets a message in the tab, and Start stays Start."""
    from selenium.webdriver.common.by import By

    open_webcam(driver, app_url)
    driver.execute_script(
        "navigator.mediaDevices.getUserMedia = () =>"
        " Promise.reject(new DOMException('denied', 'NotAllowedError'));"
    )
    start = driver.find_element(By.ID, "webcam-start")
    start.click()
    status = driver.find_element(By.ID, "webcam-fps")
    wait_for(lambda: "access was not allowed" in status.text, what="the message")
    assert start.text == "Start" and "fh-live-error" in status.get_attribute("class")


def test_webcam_streams_on_past_frames_the_server_is_too_busy_for(driver: Any, app_url: str) -> None:
    """A frame refused as one too many in flight (429 with ``Retry-After``) is dropped and the stream goes
    on; the 429 of a run's time limit still stops it."""
    from selenium.webdriver.common.by import By

    open_webcam(driver, app_url)
    driver.execute_script(
        "window.__busy = 4; window.__limit = false; const fetch = window.fetch;"
        "const refuse = (error, headers) => Promise.resolve("
        "  new Response(JSON.stringify({ error }), { status: 429, headers }));"
        "window.fetch = (url, ...a) => !String(url).includes('webcam/frame') ? fetch(url, ...a)"
        "  : window.__busy-- > 0 ? refuse('Too many frames in flight for this page.', { 'retry-after': '1' })"
        "  : window.__limit ? refuse('The camera stops after 10 minutes; press Start again.', {})"
        "  : fetch(url, ...a);"
    )
    start = driver.find_element(By.ID, "webcam-start")
    start.click()
    output = driver.find_element(By.ID, "webcam-output")
    wait_for(lambda: int(output.get_attribute("data-frames") or 0) >= 3, what="frames after the busy replies")
    status = driver.find_element(By.ID, "webcam-fps")
    assert start.text == "Stop" and "fh-live-error" not in status.get_attribute("class")
    driver.execute_script("window.__limit = true;")
    wait_for(lambda: start.text == "Start", what="the stream stopped at its time limit")
    assert "press Start again" in status.text and "fh-live-error" in status.get_attribute("class")


def test_webcam_frames_are_posted_at_most_640_px(driver: Any, app_url: str) -> None:
    """A camera that gives 1280x720 although the page asks for 640x480 (Firefox and Safari take one of the
    camera's own modes) streams 640x360 frames: what comes back drawn is that size."""
    from selenium.webdriver.common.by import By

    open_webcam(driver, app_url)
    driver.execute_script(
        "const c = document.createElement('canvas'); c.width = 1280; c.height = 720;"
        "const g = c.getContext('2d'); let n = 0;"
        "setInterval(() => {"
        "  g.fillStyle = `hsl(${(n += 7) % 360}, 60%, 50%)`; g.fillRect(0, 0, 1280, 720);"
        "}, 30);"
        "navigator.mediaDevices.getUserMedia = async () => c.captureStream(30);"
    )
    start = driver.find_element(By.ID, "webcam-start")
    start.click()
    output = driver.find_element(By.ID, "webcam-output")
    wait_for(lambda: int(output.get_attribute("data-frames") or 0) >= 3, what="three frames drawn")
    size = driver.execute_script(
        "const v = document.querySelector('#webcam-input');"
        "const o = document.querySelector('#webcam-output');"
        "return [v.videoWidth, v.videoHeight, o.width, o.height];"
    )
    start.click()
    assert size == [1280, 720, 640, 360], size


def test_video_tab_plays_annotated_clip_and_plots_people(
    driver: Any, app_url: str, shots: Path, tmp_path: Path
) -> None:
    """Upload a clip of two people in the Video tab: the limits are stated, the annotated video plays in the
    page, the timeline has a panel per person and the table a row per person."""
    import clips
    from selenium.webdriver.common.by import By

    frames, _ = clips.leave_and_return(15, away=(15, 15))
    clip = clips.write_clip(tmp_path / "two people.mp4", frames)
    driver.get(app_url)
    open_tab(driver, "Video")
    assert "2 minutes" in driver.find_element(By.ID, "video-limits").text
    upload = wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#video-input input[type=file]"), what="the video input"
    )
    upload.send_keys(str(clip))
    wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "#video-input video"), what="the uploaded video")
    driver.find_element(By.ID, "video-run").click()
    status = wait_for(
        lambda: t if "face track" in (t := driver.find_element(By.ID, "video-status").text) else None,
        what="the analysis",
    )
    assert "2 face track(s)" in status
    video = wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#video-output video"), what="annotated video"
    )
    wait_for(
        lambda: driver.execute_script("return arguments[0].readyState >= 1", video), what="playable video"
    )
    assert driver.execute_script("return arguments[0].duration", video) > 0.5
    plot = driver.find_element(By.ID, "video-timeline")
    wait_for(  # one panel per person, titled by their number
        lambda: "face 1" in (text := plot.get_attribute("textContent")) and "face 2" in text,
        what="the timeline panels",
    )
    driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.ID, "video-timeline"))
    driver.save_screenshot(str(shots / "06-video.png"))
    table = driver.find_element(By.ID, "video-summary").get_attribute("textContent")
    assert "mostly" in table and "share of time" in table
    rows = (
        "return [...document.querySelectorAll('#video-summary tbody tr')].filter(r => r.textContent.trim())"
    )
    assert driver.execute_script(rows)  # (the selector finds the rows)
    # then a file FFmpeg cannot read: one plain message (no "[Errno 1094995529]"), and none of the last
    # clip's results or status line beside it
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all " * 200)
    driver.find_element(By.CSS_SELECTOR, "#video-input button[aria-label=Clear]").click()
    wait_for(
        lambda: driver.find_element(By.CSS_SELECTOR, "#video-input input[type=file]"), what="an empty input"
    ).send_keys(str(garbage))
    time.sleep(1)  # the upload lands (Gradio's own "Video not playable" toast may come first)
    driver.find_element(By.ID, "video-run").click()
    message = wait_for(
        lambda: next(
            (
                m.text
                for m in driver.find_elements(By.CSS_SELECTOR, ".toast-message-text")
                if "FFmpeg" in m.text
            ),
            None,
        ),
        what="the error toast",
    )
    assert (
        message.startswith("The upload: not a video FFmpeg can read (Invalid data") and "Errno" not in message
    )
    wait_for(lambda: not driver.find_element(By.ID, "video-status").text.strip(), what="the status cleared")
    assert not driver.find_elements(By.CSS_SELECTOR, "#video-output video")
    assert not driver.find_elements(By.CSS_SELECTOR, "#video-timeline .js-plotly-plot")
    summary = driver.find_element(By.ID, "video-summary").get_attribute("textContent")
    assert "mostly" in summary and not driver.execute_script(rows)  # its columns, no rows
