"""The app's tab handlers, called directly (no server): real models, real MTCNN, real photos."""

from __future__ import annotations

import collections
import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
from fresh import passes_in_fresh_process
from PIL import Image

from ferhub.hub import DEFAULT_MODEL
from ferhub.labels import FER7
from ferhub.ui import build_app, classify, compare, model_card, state, visitors, webcam

EXAMPLES = Path(__file__).resolve().parent.parent / "ferhub" / "assets" / "examples"
HOPPER = str(EXAMPLES / "grace_hopper.jpg")
ASTRONAUT = str(EXAMPLES / "astronaut.jpg")


@pytest.fixture(autouse=True)
def local_paths_allowed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """These tests run the handlers as the person running the server would, with local model folders allowed
    (what visitors of a public server may reach is tested in test_app_public.py)."""
    monkeypatch.setenv(visitors.LOCAL_PATHS_SETTING, "1")
    visitors.configure([])
    yield
    visitors.configure([])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A second, tiny model saved as a local repo folder (with no evaluation results)."""
    import torch

    from ferhub.hub import save
    from ferhub.models import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save(create_model("test_tiny"), folder)
    return str(folder)


@pytest.fixture(scope="module")
def labelled_zip(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A zip of class folders holding real faces (scikit-image's LFW subset, upscaled to 96 px)."""
    from skimage import data

    faces = data.lfw_subset()[:12]
    path = tmp_path_factory.mktemp("data") / "faces.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i, face in enumerate(faces):
            label = ("happy", "neutral", "sad")[i % 3]
            image = Image.fromarray((face * 255).astype(np.uint8)).resize((96, 96)).convert("RGB")
            zf.writestr(f"faces/{label}/{i:02d}.png", _png(image))
    return str(path)


def _png(image: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


# -- Classify ------------------------------------------------------------------------------------------------
def test_classify_boxes_labels_and_explains_the_face() -> None:
    annotated_path, whole_path, gallery, probs_html, data, path = classify.classify(
        HOPPER, DEFAULT_MODEL, "Grad-CAM"
    )
    photo = Image.open(HOPPER).convert("RGB")
    annotated, whole = Image.open(annotated_path), Image.open(whole_path)
    assert annotated.size == photo.size == whole.size
    (face,) = data["faces"]
    x1, y1, x2, y2 = face["box"]
    assert 150 < x1 < x2 < 400 and 80 < y1 < y2 < 380  # Grace Hopper's face, not the flag
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)
    assert data["model"] == DEFAULT_MODEL and data["saliency"] == {
        "method": "gradcam",
        "targets": [face["label"]],
    }
    # the box outline is drawn; the attribution changes the face and leaves the far corner alone
    a, p, w = (np.asarray(im, dtype=np.int32) for im in (annotated, photo, whole))
    assert np.abs(a[int(y1) : int(y2), int(x1)] - p[int(y1) : int(y2), int(x1)]).mean() > 20
    assert (
        np.abs(w[int(y1) : int(y2), int(x1) : int(x2)] - p[int(y1) : int(y2), int(x1) : int(x2)]).mean() > 5
    )
    assert np.abs(w[-60:, -60:] - p[-60:, -60:]).mean() < 3  # nothing drawn there (JPEG noise only)
    assert len(gallery) == 1 and Image.open(gallery[0][0]).size == (192, 192)
    assert gallery[0][1] == f"#1 {face['label']}"
    assert f"Face #1: {face['label']}" in probs_html
    assert json.loads(Path(path).read_text()) == data
    # the download is named after the photo, which the JSON names too (no 32-digit prefix, no server path)
    assert Path(path).name == "grace_hopper.ferhub.json" and data["upload"] == "grace_hopper.jpg"
    assert data["path"] is None


def test_classify_explains_a_chosen_class_with_any_method() -> None:
    *_, data, _ = classify.classify(ASTRONAUT, DEFAULT_MODEL, "Integrated Gradients", "sad")
    assert data["saliency"] == {"method": "integrated_gradients", "targets": ["sad"]}
    _, whole, gallery, *_ = classify.classify(ASTRONAUT, DEFAULT_MODEL, classify.NO_SALIENCY)
    assert whole is None and gallery == []
    with pytest.raises(gr.Error, match="no class 'bored'"):
        classify.classify(ASTRONAUT, DEFAULT_MODEL, "Saliency", "bored")


def test_classify_errors_are_messages(tmp_path: Path) -> None:
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("this is not a photo")
    with pytest.raises(gr.Error) as e:
        classify.classify(str(not_image), DEFAULT_MODEL)
    assert e.value.title == "Not a usable image"
    with pytest.raises(gr.Error, match="Upload a photo first"):
        classify.classify(None, DEFAULT_MODEL)
    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), (200, 200, 200)).save(blank)
    with pytest.raises(gr.Error, match="No face found"):
        classify.classify(str(blank), DEFAULT_MODEL)
    with pytest.raises(gr.Error, match="Cannot load model 'nobody/missing-model'") as down:
        classify.classify(HOPPER, "nobody/missing-model")
    # not cached and no Hub (the tests' offline mode): the visitor is told that, not the CLI's fixes
    assert "cannot reach the Hugging Face Hub now. Pick a listed model" in down.value.message
    assert "HF_HUB_OFFLINE" not in down.value.message and "hf download" not in down.value.message
    assert "/" not in e.value.message.split(": ", 1)[0]  # the upload's server path is cut to its file name
    assert e.value.message.startswith("notes.jpg: not an image file")


def test_a_photo_over_the_pixel_limit_is_advice_for_a_visitor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library's advice names load_image's max_pixels (for Python callers); the app's says the limit."""
    monkeypatch.setattr(state, "MAX_PIXELS", 100_000)  # Grace Hopper's photo is 512x600 = 0.3 MP
    for run in (
        lambda: classify.classify(HOPPER, DEFAULT_MODEL),
        lambda: compare.compare_photo(HOPPER, [DEFAULT_MODEL, "ferhub/facemood"]),
    ):
        with pytest.raises(gr.Error) as e:
            run()
        assert e.value.message == (
            "grace_hopper.jpg: image is 512x600 = 0.3 MP, over the limit of 0.1 MP (a decompression bomb or a"
            " very large photo); downscale it to 0.1 MP or less and upload it again"
        )


def test_classify_takes_the_unprocessed_upload_payload() -> None:
    """The classify events skip Gradio's preprocessing: the photo arrives as its FileData payload."""
    payload = {"path": HOPPER, "orig_name": "grace_hopper.jpg", "meta": {"_type": "gradio.FileData"}}
    *_, data, _ = classify.classify(payload, DEFAULT_MODEL, classify.NO_SALIENCY)
    assert data == classify.classify(HOPPER, DEFAULT_MODEL, classify.NO_SALIENCY)[4]
    with pytest.raises(gr.Error, match="no file"):
        classify.classify({"path": None, "meta": {"_type": "gradio.FileData"}}, DEFAULT_MODEL)


def _events(demo: gr.Blocks, prefix: str) -> list:
    return [f for f in demo.fns.values() if str(f.api_name).startswith(prefix)]


def test_classify_events_send_what_gradios_own_postprocessing_would() -> None:
    """Classify runs the output components' post-processing in its own thread (no Gradio hop per output):
    every classify event is registered without Gradio's, and its payloads are the components' own
    (the same files, captions, HTML and JSON)."""
    from gradio.data_classes import GradioModel, GradioRootModel

    demo = build_app([DEFAULT_MODEL])
    runs = _events(demo, "classify")
    assert len(runs) == 4 and not any(f.preprocess or f.postprocess for f in runs)
    payload = {"path": HOPPER, "orig_name": "grace_hopper.jpg", "meta": {"_type": "gradio.FileData"}}
    sent = runs[0].fn(payload, DEFAULT_MODEL, "Grad-CAM", "predicted", False)
    plain = classify.classify(payload, DEFAULT_MODEL, "Grad-CAM", "predicted", False)
    for component, got, value in zip(runs[0].outputs, sent, plain):
        want = component.postprocess(value)
        want = want.model_dump() if isinstance(want, (GradioModel, GradioRootModel)) else want
        if isinstance(component, gr.JSON | gr.HTML):
            assert got == want
            continue
        got_files, want_files = payload_files(got), payload_files(want)
        assert len(got_files) == len(want_files) > 0, component
        for g, w in zip(got_files, want_files):  # the same bytes (file names are fresh per call)
            assert g["meta"] == w["meta"] and Path(g["path"]).read_bytes() == Path(w["path"]).read_bytes()
    assert [c for _, c in plain[2]] == [item["caption"] for item in sent[2]]


def payload_files(value: Any) -> list[dict]:
    """The FileData payloads inside a component's payload."""
    if isinstance(value, dict):
        if value.get("meta", {}).get("_type") == "gradio.FileData":
            return [value]
        return [f for v in value.values() for f in payload_files(v)]
    if isinstance(value, list):
        return [f for v in value for f in payload_files(v)]
    return []


def test_saved_outputs_are_the_images_as_jpeg_without_a_converted_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photo = Image.open(HOPPER).convert("RGB")
    grey, rgba = photo.convert("L"), photo.convert("RGBA")
    monkeypatch.setattr(Image.Image, "copy", lambda self: pytest.fail("an RGB image was copied to be saved"))
    saved = Image.open(state.save_image(photo, "faces"))
    assert saved.format == "JPEG" and saved.size == photo.size
    assert np.abs(np.asarray(saved, dtype=int) - np.asarray(photo)).mean() < 3
    monkeypatch.undo()
    for other in (grey, rgba):  # other modes are converted (JPEG holds no alpha)
        assert Image.open(state.save_image(other, "faces")).mode == "RGB"


def test_classify_whole_image_fallback(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), (200, 200, 200)).save(blank)
    *_, data, _ = classify.classify(str(blank), DEFAULT_MODEL, "Saliency", fallback=True)
    (face,) = data["faces"]
    assert face["face_found"] is False and face["box"] == [0.0, 0.0, 320.0, 240.0]


def test_model_change_updates_targets_and_method(tiny_model: str) -> None:
    targets, method = classify.model_changed(tiny_model, "Grad-CAM")
    assert [c[0] for c in targets.choices][:2] == ["predicted", "angry"] and targets.value == "predicted"
    assert method["value"] == "Grad-CAM"
    targets, method = classify.model_changed("ferhub/zoo-ensemble", "Grad-CAM")
    ensemble = state.cache().model("ferhub/zoo-ensemble")
    assert method["value"] == "Integrated Gradients"
    assert [c[0] for c in targets.choices] == ["predicted", *ensemble.config.labels]


def test_occlusion_goes_face_by_face_within_one_budget() -> None:
    """Occlusion's cost is a fixed number of occluded copies shared by the faces (the old fixed stride cost
    225
    per face: 23-26 s for five faces of faceapi-expression); progress names the face it is on."""
    from ferhub.saliency import OCCLUSION_BUDGET_FLOPS, occlusion_grid

    for size in (48, 64, 112, 224):
        for flops in (20e6, 100e6, 500e6):
            for faces in (1, 2, 5, 12):
                window, stride = occlusion_grid(size, faces, flops)
                per_side = (size - window) // stride + 1
                assert 4 <= per_side <= 12 and window == 2 * stride
                # within the budget (a costlier model gets fewer positions), or at the 4x4 floor
                assert faces * per_side**2 * max(flops, 60e6) <= OCCLUSION_BUDGET_FLOPS or per_side == 4
    # faceapi-expression (112 px, 103 MFLOP a copy), five faces: 5x5 positions each (was 15x15)
    assert occlusion_grid(112, 5, 103e6) == (36, 18)
    photo = Image.open(ASTRONAUT).convert("RGB")
    predictor = state.cache().predictor([DEFAULT_MODEL])
    (face,) = [f.face for f in predictor.predict_image(photo).faces]
    calls = []
    out = classify.explain(
        predictor.models[0], photo, [face, face, face], "Occlusion", ["happy", "sad", "happy"],
        lambda *a, **k: calls.append((a, k["desc"])),
    )  # fmt: skip
    assert [e.target for e in out] == ["happy", "sad", "happy"] and all(e.method == "occlusion" for e in out)
    assert calls == [(((i, 3),), f"Occlusion: face {i + 1} of 3") for i in range(3)]
    # one at a time gives what the three would get together (the faces share one budget)
    from ferhub.saliency import explain_faces

    together = explain_faces(predictor.models[0], photo, [face] * 3, "occlusion", ["happy", "sad", "happy"])
    assert np.allclose(out[1].heatmap, together[1].heatmap, atol=1e-5)


def test_integrated_gradients_goes_face_by_face_and_stops_when_its_visitor_is_gone(monkeypatch) -> None:
    """An abandoned Integrated Gradients run on a photo of many faces went on for all of them (seconds a face
    on the CPU), holding the model's attribution copy while live visitors waited behind it."""
    from ferhub.ui import visitors

    photo = Image.open(ASTRONAUT).convert("RGB")
    predictor = state.cache().predictor([DEFAULT_MODEL])
    (face,) = [f.face for f in predictor.predict_image(photo).faces]
    calls: list[str] = []
    explained: list[int] = []
    real = classify._explain
    monkeypatch.setattr(classify, "_explain", lambda *a: explained.append(len(a[2])) or real(*a))
    out = classify.explain(
        predictor.models[0], photo, [face, face], "Integrated Gradients", ["happy", "sad"],
        lambda *a, **k: calls.append(k["desc"]),
    )  # fmt: skip
    assert [e.target for e in out] == ["happy", "sad"] and explained == [1, 1]
    assert calls == [f"Integrated Gradients: face {i} of 2" for i in (1, 2)]
    monkeypatch.setattr(visitors, "event_gone", lambda: len(explained) >= 3)  # gone after one more face
    with pytest.raises(visitors.Gone):
        classify.explain(predictor.models[0], photo, [face] * 4, "ig", ["happy"] * 4, lambda *a, **k: None)
    assert explained == [1, 1, 1]


def test_other_methods_go_a_chunk_of_faces_at_a_time_and_stop_when_their_visitor_is_gone(monkeypatch) -> None:
    """Grad-CAM, Saliency and Guided Backprop explained every face of a crowd photo in one call: all their
    activations at once (2 GB for 117 faces of facemood), no progress, and a cancelled request ran on to its
    last face. They go saliency.faces_per_chunk faces at a time now, as explain_faces itself does."""
    from ferhub import saliency

    photo = Image.open(ASTRONAUT).convert("RGB")
    predictor = state.cache().predictor([DEFAULT_MODEL])
    model = predictor.models[0]
    (face,) = [f.face for f in predictor.predict_image(photo).faces]
    calls: list[str] = []
    explained: list[int] = []
    real = classify._explain
    monkeypatch.setattr(saliency, "faces_per_chunk", lambda model: 2)
    monkeypatch.setattr(classify, "_explain", lambda *a: explained.append(len(a[2])) or real(*a))
    targets = ["happy", "sad", "happy", "sad", "neutral"]
    out = classify.explain(
        model, photo, [face] * 5, "Guided Backprop", targets, lambda *a, **k: calls.append(k["desc"])
    )
    assert [e.target for e in out] == targets and explained == [2, 2, 1]
    assert calls == [f"Guided Backprop: {which} of 5" for which in ("faces 1-2", "faces 3-4", "face 5")]
    together = saliency.explain_faces(model, photo, [face] * 5, "guided_backprop", targets)
    for a, b in zip(out, together):  # the maps of one batch
        np.testing.assert_allclose(a.heatmap, b.heatmap, atol=1e-5)
    explained.clear()
    classify.explain(model, photo, [face] * 2, "Grad-CAM", ["happy"] * 2, lambda *a, **k: calls.append("x"))
    assert explained == [2] and "x" not in calls  # the faces fit one chunk: one call, no progress
    explained.clear()
    with pytest.raises(classify._MovedOn):  # its page holds another photo now (see the next test)
        classify.explain(model, photo, [face] * 6, "saliency", ["happy"] * 6, quiet, lambda: bool(explained))
    assert explained == [2]
    monkeypatch.setattr(visitors, "event_gone", lambda: sum(explained) >= 4)
    explained.clear()
    with pytest.raises(visitors.Gone):
        classify.explain(model, photo, [face] * 6, "saliency", ["happy"] * 6, quiet)
    assert explained == [2, 2]


def quiet(*args: Any, **kwargs: Any) -> None:
    """A progress tracker that shows nothing (the handlers' ``gr.Progress`` outside Gradio)."""


def test_a_run_stops_when_its_page_puts_in_another_photo_or_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A photo put in while the last one was still being explained waited for that explanation to end,
    under the last photo's progress bar (and Gradio's `cancels` drop the run the page holds back for the new
    photo). The page reports what it holds (`put_in`, on each `input`); a run for anything else ends at its
    next chunk of faces and sends nothing, and the page runs the held-back classify at once."""
    session = {"id": "page-1"}
    monkeypatch.setattr(visitors, "_session", lambda: session["id"])
    monkeypatch.setattr(visitors, "_held", collections.OrderedDict())
    payload = {"path": HOPPER, "orig_name": "grace_hopper.jpg", "meta": {"_type": "gradio.FileData"}}
    other = {"path": ASTRONAUT, "orig_name": "astronaut.jpg", "meta": {"_type": "gradio.FileData"}}
    inputs = (payload, DEFAULT_MODEL, "Occlusion", "predicted")
    demo = build_app([DEFAULT_MODEL])
    (handler,) = [f.fn for f in _events(demo, "classify_on_upload")]
    (put_in,) = [f for f in demo.fns.values() if f.api_name == "put_in"]
    assert put_in.fn is classify.put_in and not put_in.queue and not put_in.preprocess
    assert [b.elem_id for b in put_in.inputs] == [
        "classify-input",
        "classify-model",
        "classify-method",
        "classify-target",
    ]
    assert put_in.trigger_mode == "always_last" and not put_in.outputs
    deps = {d["api_name"]: d for d in demo.config["dependencies"]}
    for name in ("example", "snapshot"):  # a photo put in by an example or the webcam is reported too
        reports, name = deps[f"put_in_{name}"], f"classify_{name}"
        assert reports["trigger_after"] == deps[name]["trigger_after"] and reports["trigger_only_on_success"]
        assert reports["inputs"] == deps["put_in"]["inputs"]
    real = classify._explain
    explained: list[int] = []
    meanwhile: list[Any] = [lambda: None]  # what the visitor does while a face is explained

    def explaining(*args: Any) -> Any:
        explained.append(len(args[2]))
        meanwhile[0]()
        return real(*args)

    def elsewhere(page: str | None, *report: Any) -> None:
        was, session["id"] = session["id"], page
        classify.put_in(*report)
        session["id"] = was

    monkeypatch.setattr(classify, "_explain", explaining)
    for moved in (
        (other, *inputs[1:]),
        (None, *inputs[1:]),
        (payload, DEFAULT_MODEL, "Saliency", "predicted"),
    ):
        # a new photo, the photo removed, another method: the run ends, sending nothing
        explained.clear()
        meanwhile[0] = lambda moved=moved: classify.put_in(*moved)
        assert classify.classify(*inputs) is classify.MOVED_ON and explained == [1]
        assert handler(*inputs) == gr.skip()
    # between chunks of faces: no face after the one it was on
    moved_on = classify._PAGE.moved_on(*inputs)
    face = state.cache().predictor([DEFAULT_MODEL]).predict_image(Image.open(HOPPER)).faces[0].face
    model = state.cache().model(DEFAULT_MODEL)
    explained.clear()
    meanwhile[0] = lambda: classify.put_in(other, *inputs[1:])
    with pytest.raises(classify._MovedOn):
        classify.explain(
            model,
            Image.open(HOPPER),
            [face] * 3,
            "Occlusion",
            ["happy"] * 3,
            lambda *a, **k: None,
            moved_on,
        )
    assert explained == [1]
    # classified to the end: a report before the run began, the page reporting the run's own inputs after it
    # began (both are sent at once), another page's report, an API caller's run (its page reports nothing)
    for page, doing in (
        ("page-1", lambda: classify.put_in(*inputs)),
        ("page-1", lambda: elsewhere("page-2", other, *inputs[1:])),
        (None, lambda: elsewhere("page-1", other, *inputs[1:])),
    ):
        elsewhere("page-1", other, *inputs[1:])
        session["id"], meanwhile[0] = page, doing
        *_, data, _ = classify.classify(*inputs)
        assert len(data["faces"]) == 1 and data["saliency"]["method"] == "occlusion"
        session["id"] = "page-1"
    # a run that waited in the queue while its visitor picked another method is for the old one: the report
    # came after its request, though before its start
    asked = time.monotonic()
    elsewhere("page-1", payload, DEFAULT_MODEL, "Saliency", "predicted")
    monkeypatch.setattr(visitors, "event_queued_at", lambda: asked)
    explained.clear()
    meanwhile[0] = lambda: None
    assert classify.classify(*inputs) is classify.MOVED_ON and explained == []
    monkeypatch.setattr(visitors, "event_queued_at", lambda: None)
    # the server remembers the last pages only
    monkeypatch.setattr(visitors, "PAGE_INPUTS_KEPT", 2)
    for page in ("page-3", "page-4"):
        elsewhere(page, *inputs)
    assert list(visitors._held) == [("page-3", "classify"), ("page-4", "classify")]


def test_new_settings_clear_the_last_results() -> None:
    """A new model (or method, or class to explain) left the last model's boxes, bars, overlays and download
    on screen, unmarked, under pickers naming the new one: they are cleared in the browser (as Compare's
    "Same photo" does for new models), with a line saying to press Classify when a photo is in."""
    demo = build_app([DEFAULT_MODEL])
    ids = {b._id: getattr(b, "elem_id", None) for b in demo.blocks.values()}
    deps = {d["api_name"]: d for d in demo.config["dependencies"]}
    cleared = deps["settings_changed"]
    # on a change of value: Gradio 6's dropdown fires `input` on a click of the option it already shows, which
    # wiped the results for nothing
    assert [(ids[t[0]], t[1]) for t in cleared["targets"]] == [
        ("classify-model", "change"),
        ("classify-method", "change"),
        ("classify-target", "change"),
    ]
    assert cleared["js"] == classify.STALE_JS and not cleared["backend_fn"]
    assert cleared["outputs"] == deps["classify"]["outputs"] and [ids[i] for i in cleared["inputs"]] == [
        "classify-input"
    ]
    assert classify.STALE_JS.startswith("(photo) => [null, null, [], photo ? ")
    assert "press Classify" in json.loads(classify.STALE_JS.split("photo ? ")[1].split(" : ")[0])
    assert deps["model_changed"]["outputs"] != cleared["outputs"]  # the pickers still follow the model


def test_the_per_face_overlays_reflow_on_a_phone() -> None:
    """A fixed grid of 6 columns of at least 100 px showed 3 of every 6 overlays at 390 px, the others off to
    the side: the columns are as many as fit, 6 where there is room (what the page shows:
    tests/test_browser_ui.py)."""
    rule = classify.CSS.split("#classify-crops .grid-container {")[1].split("}")[0]
    assert "repeat(auto-fill, minmax(max(96px, calc((100% - 5 * var(--spacing-lg)) / 6)), 1fr))" in rule
    demo = build_app([DEFAULT_MODEL])
    (crops,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "classify-crops"]
    assert crops.columns == 6


@pytest.mark.slow
def test_classify_with_the_zoo_ensemble() -> None:
    *_, data, _ = classify.classify(ASTRONAUT, "ferhub/zoo-ensemble", "Saliency")
    (face,) = data["faces"]
    assert data["saliency"]["method"] == "saliency" and sum(face["probabilities"].values()) == pytest.approx(
        1, abs=1e-4
    )


def test_one_classify_per_action_and_a_failure_clears_the_outputs() -> None:
    """An upload runs classify once (``change`` fired twice when a photo replaced another: two runs, two
    toasts); examples and webcam snapshots classify after they fill the photo; every classify that fails
    empties all six outputs in the browser."""
    demo = build_app([DEFAULT_MODEL])
    deps = demo.config["dependencies"]
    photo = next(b._id for b in demo.blocks.values() if getattr(b, "elem_id", None) == "classify-input")
    on_photo = [(t[1], d["api_name"]) for d in deps for t in d["targets"] if t[0] == photo]
    # one classify per upload; `input` (an upload or the photo removed) only tells the server (see below)
    assert on_photo == [("upload", "classify_on_upload"), ("input", "put_in")]
    runs = [d for d in deps if str(d["api_name"]).startswith("classify")]
    assert {d["api_name"] for d in runs} == {
        "classify",
        "classify_on_upload",
        "classify_example",
        "classify_snapshot",
    }
    for run in runs:
        (clear,) = [d for d in deps if d["trigger_after"] == run["id"] and d["trigger_only_on_failure"]]
        assert (
            clear["js"] == classify.CLEAR_JS
            and clear["outputs"] == run["outputs"]
            and len(run["outputs"]) == 6
        )
        assert clear["api_visibility"] == "private"
    after = {d["id"]: d for d in deps}
    assert after[next(d for d in runs if d["api_name"] == "classify_snapshot")["trigger_after"]][
        "api_name"
    ] == ("snapshot")


def test_a_failed_comparison_clears_the_last_photos_results() -> None:
    """A comparison that fails (no face, a corrupt photo) empties the "Same photo" outputs in the browser, as
    Classify does: the last photo's summary, gallery and agreement rows stayed beside the new photo's
    error (what the page then shows: tests/test_browser_app.py). The table keeps the models' columns."""
    demo = build_app([DEFAULT_MODEL])
    deps = demo.config["dependencies"]
    chosen = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "compare-models")
    (run,) = [d for d in deps if d["api_name"] == "compare_photo"]
    (clear,) = [d for d in deps if d["trigger_after"] == run["id"] and d["trigger_only_on_failure"]]
    assert clear["js"] == compare.clear_js() and clear["outputs"] == run["outputs"]
    assert len(run["outputs"]) == 4 and clear["inputs"] == [chosen._id]  # the models: the table's columns
    assert clear["api_visibility"] == "private" and clear["backend_fn"] is False


def test_model_pickers_say_what_this_server_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Compare picker promised "local folders", which a public server refuses (paths are off unless its
    operator sets FERHUB_ALLOW_LOCAL_PATHS=1); where they are allowed, both pickers say so."""
    labels = {}
    for allowed in (False, True):
        if allowed:
            monkeypatch.setenv(visitors.LOCAL_PATHS_SETTING, "1")
        else:
            monkeypatch.delenv(visitors.LOCAL_PATHS_SETTING)
        demo = build_app([DEFAULT_MODEL])
        blocks = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
        labels[allowed] = [blocks[e].label for e in ("classify-model", "compare-models")]
    assert labels[False] == [
        "Model (listed, bundled or a Hub id)",
        "Models to compare (2-4; listed, bundled or Hub ids)",
    ]
    assert labels[True] == [
        "Model (listed, bundled, a Hub id or a local folder)",
        "Models to compare (2-4; listed, bundled, Hub ids or local folders)",
    ]


def test_the_webcam_model_picker_is_readable_on_a_phone() -> None:
    """At 390 px the picker shared a box with "Record timeline" and got ~140 px: "ferhub/fer-mini-xc" under
    its arrow. It is wide enough for a model's name, so on a phone's row (~358 px inside the page's margins)
    nothing fits beside it; the checkbox is in a column of its own (in the picker's box it was pushed out of
    sight, not onto the next line); on a 1280 px screen the four controls still share one row."""
    demo = build_app([DEFAULT_MODEL])
    blocks = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    model, record = blocks["webcam-model"], blocks["webcam-record"]
    row = model.parent.parent
    column = record.parent.parent
    assert isinstance(row, gr.Row) and isinstance(column, gr.Column) and column.parent is row
    assert model.parent is not record.parent  # not one box
    widths = [model.min_width, column.min_width, *(blocks[e].min_width or 160 for e in SNAP_PLOT)]
    assert 8 * len(DEFAULT_MODEL) <= model.min_width and model.min_width + min(widths[1:]) > 358
    assert sum(widths) + 3 * 16 <= 1280 - 2 * 32


SNAP_PLOT = ("webcam-snapshot", "webcam-timeline")


def test_what_is_put_in_while_a_run_is_pending_runs_next() -> None:
    """Gradio's default trigger mode ("once") drops a trigger while its event runs: a photo uploaded during
    a slow classify was never classified, and the old photo's results stayed under it. Every event that
    runs on what the visitor puts in runs again, once, for the newest input."""
    demo = build_app([DEFAULT_MODEL])
    deps = {d["api_name"]: d for d in demo.config["dependencies"]}
    for name in (
        "classify",
        "classify_on_upload",
        "classify_example",
        "classify_snapshot",
        "model_changed",
        "video",
        "compare_photo",
        "agreement_headers",
        "eval_datasets",
        "dashboard",
        "dashboard_dataset",
        "dashboard_view",
        "dashboard_classes",
        "difference_a",
        "difference_b",
        "evaluate",
        "dashboard_fresh",
    ):
        assert deps[name]["trigger_mode"] == "always_last", name


def test_compare_and_evaluate_outputs() -> None:
    """Each model's annotated photo is shown whole (not cropped to a square); "Evaluate now" refreshes the
    notes (which said the models had no results right above the new ones)."""
    demo = build_app([DEFAULT_MODEL])
    blocks = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert blocks["compare-gallery"].object_fit == "contain"
    (evaluate,) = [d for d in demo.config["dependencies"] if d["api_name"] == "evaluate"]
    assert blocks["compare-notes"]._id in evaluate["outputs"]


def test_a_failed_video_run_says_why_plainly_and_clears_the_tab(tmp_path: Path) -> None:
    from ferhub.ui import video

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all " * 200)
    with pytest.raises(gr.Error) as e:
        video.analyse_video(str(garbage), None)
    # FFmpeg's error code (AVERROR_INVALIDDATA as "[Errno 1094995529]") said nothing to a visitor
    assert e.value.message.startswith(
        "The upload: not a video FFmpeg can read (Invalid data found when processing input); accepted:"
    )
    assert video.plain("x ([Errno 1094995529] Invalid data; [Errno -5] I/O)") == "x (Invalid data; I/O)"
    demo = build_app([DEFAULT_MODEL])
    deps = demo.config["dependencies"]
    (run,) = [d for d in deps if d["api_name"] == "video"]
    (clear,) = [d for d in deps if d["trigger_after"] == run["id"] and d["trigger_only_on_failure"]]
    assert clear["js"] == video.clear_js() and clear["outputs"] == run["outputs"] and len(run["outputs"]) == 5
    assert clear["api_visibility"] == "private" and clear["backend_fn"] is False


def test_explain_class_lists_the_models_classes_from_the_start() -> None:
    demo = build_app([DEFAULT_MODEL])
    (target,) = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "classify-target"]
    choices = [c[0] for c in target.choices]
    assert choices == ["predicted", *state.cache().model(DEFAULT_MODEL).config.labels]
    assert classify.target_choices("nobody/not-cached") == ["predicted"]


def test_an_unloadable_model_leaves_the_pickers_working(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.warns(UserWarning, match="Cannot load model 'nobody/unreachable'"):
        targets, method = classify.model_changed("nobody/unreachable", "Occlusion")
    assert targets.choices == [("predicted", "predicted")] and targets.value == "predicted"
    assert method["value"] == "Occlusion"
    (record,) = [r for r in caplog.records if r.name == "ferhub.app"]
    assert record.message.startswith("model_changed: Cannot load model") and "\n" not in record.message
    assert record.exc_info is None  # one line, no traceback


def test_a_refused_model_warning_is_two_sentences_and_names_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a public server (paths off): the policy's message ends without a full stop, so the warning puts
    one before its own sentence; a refused server path reads as a path, not as the bundled model it ends
    in."""
    monkeypatch.delenv(visitors.LOCAL_PATHS_SETTING)
    visitors.configure([])
    bundled = str(Path(classify.__file__).parent.parent / "bundled" / "fer-mini-xception")
    said = {}
    for spec in (bundled, "../secret", "justaword"):
        with pytest.warns(UserWarning) as warned:
            classify.model_changed(spec, "Grad-CAM")
        (said[spec],) = [str(w.message) for w in warned]
    assert said[bundled].startswith("Cannot load model '.../fer-mini-xception' (a path on the server): ")
    assert said["../secret"].startswith("Cannot load model '../secret' (a path on the server): ")
    for message in said.values():
        assert message.endswith(". Classify will fail with this model; pick another."), message
        assert ".. Classify" not in message
    assert "(its operator can allow them with FERHUB_ALLOW_LOCAL_PATHS=1). Classify" in said["../secret"]
    assert "('org/name' or 'org/name@revision'). Classify" in said["justaword"]


# -- Webcam --------------------------------------------------------------------------------------------------
def test_session_fps() -> None:
    session = webcam.WebcamSession()
    assert [round(session.tick(t), 3) for t in (0.0, 0.1, 0.2)] == [0.0, 10.0, 10.0]


def test_process_frame_tracks_smooths_records_and_snapshot_goes_to_classify() -> None:
    frame = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((320, 320)))
    out, text, session = webcam.process_frame(frame, None, DEFAULT_MODEL, True)
    # a PIL image back (Gradio encodes it without another copy), with a box drawn
    assert isinstance(out, Image.Image) and out.size == (320, 320)
    assert np.abs(np.asarray(out, dtype=int) - frame).max() > 100
    assert text.endswith("1 face · recording 1 frames")
    (track,) = session.tracker.tracks
    assert track.id == 1
    for step in (1, 2):  # frame 2 carries frame 1's face (DETECT_EVERY = 2), frame 3 detects again
        moved = np.roll(frame, 3 * step, axis=1)  # the face moves a little: same id, smoothed
        out, text, session = webcam.process_frame(moved, session, DEFAULT_MODEL, True)
        (track,) = session.tracker.tracks
        assert track.id == 1 and track.smoothed is not None
    assert " fps · 1 face · recording 3 frames" in text
    figure, rows = webcam.timeline(session)  # the recorded session drawn like a video's timeline
    assert [r[0] for r in rows] == [1] and rows[0][4] in FER7
    assert {t.name for t in figure.data} >= {"happy"} and len(figure.data[0].x) == 3
    session = webcam.clear_recording(session, True)
    assert session.recording == []
    with pytest.raises(gr.Error, match="Nothing recorded"):
        webcam.timeline(session)
    image, tabs = webcam.snapshot(session)
    assert np.array_equal(np.asarray(Image.open(image)), moved) and tabs.selected == "classify"
    with pytest.raises(gr.Error, match="No frame yet"):
        webcam.snapshot(None)


def test_a_webcam_snapshot_names_its_classify_download_by_when_it_was_taken() -> None:
    """The snapshot's Classify download was named after the server's cache file
    (``09448554a2004d4bba45061c696f5ba6-snapshot.ferhub.json``)."""
    frame = Image.open(HOPPER).convert("RGB")
    _, _, session = webcam.process_frame(frame, None, DEFAULT_MODEL)
    image, _ = webcam.snapshot(session)
    assert re.fullmatch(r"webcam-snapshot-\d{8}-\d{6}\.png", Path(image).name), image
    # the Classify tab gets the photo as Gradio's Image hands it to the page, and the page sends it back
    payload = gr.Image(type="filepath").postprocess(image).model_dump()
    *_, data, download = classify.classify(payload, DEFAULT_MODEL, classify.NO_SALIENCY)
    assert data["upload"] == Path(image).name
    assert Path(download).name == f"{Path(image).stem}.ferhub.json"


def _diverged(tmp_path: Path) -> str:
    """A saved tiny model whose finite weights make its logits overflow to NaN."""
    import torch

    from ferhub.hub import save
    from ferhub.models import create_model

    model = create_model("test_tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3e38)
    return str(save(model, tmp_path / "diverged"))


def test_a_webcam_model_giving_nan_stops_the_page_with_its_name(tmp_path: Path) -> None:
    """A label read from NaN probabilities (argmax: the first class) was drawn and recorded as an answer."""
    bad = _diverged(tmp_path)
    frame = Image.open(HOPPER).convert("RGB")
    _, _, session = webcam.process_frame(frame, None, DEFAULT_MODEL, True)
    with pytest.raises(
        gr.Error, match=r"gave NaN or infinite probabilities for a face; .* Pick another model"
    ):
        webcam.process_frame(frame, session, bad, True)
    assert len(session.recording) == 1  # nothing of the failed frame recorded


def test_a_video_of_a_model_giving_nan_says_so_not_that_the_file_is_damaged(tmp_path: Path) -> None:
    """The Video tab called a diverged model's error "The file is damaged part-way"."""
    import clips

    from ferhub.ui import video

    bad = _diverged(tmp_path)
    clip = clips.write_clip(tmp_path / "pan.mp4", clips.pan(n=6)[0], fps=5)
    *_, status = video.analyse_video(str(clip), [bad], 5, 0.3, progress=lambda *a, **k: None)
    assert "damaged" not in status
    assert re.search(
        r"Stopped: model \S*diverged gave NaN or infinite probabilities for a face at 0.00 s; the model's",
        status,
    )
    assert status.endswith("results up to there are kept.")


def test_changing_the_webcam_model_keeps_the_recording_and_the_faces_ids() -> None:
    """Picking another model while recording threw the recording away (and restarted the face ids)."""
    frame = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((320, 320)))
    session = None
    for model in (DEFAULT_MODEL, DEFAULT_MODEL, "ferhub/facemood", "ferhub/facemood"):
        _, text, session = webcam.process_frame(frame, session, model, True)
        (track,) = session.tracker.tracks
        assert track.id == 1
    assert text.endswith("recording 4 frames")
    figure, rows = webcam.timeline(session)
    assert [r[0] for r in rows] == [f"1 · {DEFAULT_MODEL}", "1 · ferhub/facemood"]
    drawn = {t.name for t in figure.data}
    assert {f"happy · {DEFAULT_MODEL}", "happy · ferhub/facemood"} <= drawn  # each model's own lines
    # the first model picked again continues its lines (its first part was dropped from the plot); a model
    # that cannot be loaded changes nothing (it split the recording)
    with pytest.raises(gr.Error, match="Cannot load model"):
        webcam.process_frame(frame, session, "./no/such/model", True)
    for _ in range(2):
        _, text, session = webcam.process_frame(frame, session, DEFAULT_MODEL, True)
    assert text.endswith("recording 6 frames") and len(session.earlier) == 2
    figure, rows = webcam.timeline(session)
    assert [r[0] for r in rows] == [f"1 · {DEFAULT_MODEL}", "1 · ferhub/facemood", f"1 · {DEFAULT_MODEL}"]
    (first,) = [t for t in figure.data if t.name == f"happy · {DEFAULT_MODEL}"]
    assert len([y for y in first.y if y is not None]) == 4  # both parts of the first model


def test_a_frame_is_drawn_as_from_an_array() -> None:
    """The webcam's route hands frames over as PIL images (no array copies on the way in); such a frame is
    annotated exactly as the same pixels given as an array, and neither the caller's frame nor the snapshot's
    copy of it gets drawn on."""
    frame = Image.open(HOPPER).convert("RGB")
    before = np.asarray(frame).copy()
    from_pil, text, session = webcam.process_frame(frame, None, DEFAULT_MODEL)
    from_array, _, _ = webcam.process_frame(before, None, DEFAULT_MODEL)
    assert text.endswith("1 face")
    assert np.array_equal(np.asarray(from_pil), np.asarray(from_array))
    assert np.array_equal(np.asarray(frame), before)
    assert np.array_equal(np.asarray(session.last_frame), before)


@pytest.mark.parametrize("background", [True, False])
def test_webcam_detects_beside_the_stream_and_joins_on_the_next_frame(
    monkeypatch: pytest.MonkeyPatch, background: bool
) -> None:
    """Frame 0 is detected in line (no tracks yet). With BACKGROUND, frame 2's detection runs beside the
    stream and its faces join the tracks on frame 3, at frame 2's time, as ``detect`` finds them on frame 2;
    without (ZeroGPU), frame 2 is detected in line. Either way one track, one id."""
    monkeypatch.setattr(webcam, "BACKGROUND", background)
    frame = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((320, 320)))
    frames = [np.roll(frame, 4 * k, axis=1) for k in range(4)]  # the face moves right
    session = None
    for k, f in enumerate(frames):
        _, text, session = webcam.process_frame(f, session, DEFAULT_MODEL)
        assert text.endswith("1 face")
        if k == 2:
            assert (session.pending is not None) == background
            if background:
                started = session.pending_time
                detected = session.pending.result()
    assert session.pending is None
    (track,) = session.tracker.tracks
    assert track.id == 1 and track.hits == 2
    if background:
        (expected,) = state.cache().detector(fast=True).detect(Image.fromarray(frames[2]))
        assert [f.box for f in detected] == [expected.box]
        assert track.time == started and track.box == pytest.approx(expected.box)


def test_webcam_frames_never_wait_for_a_detection_still_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine too busy to detect within a frame's time: the frames after a detection started keep coming
    (the tracker carries the face), no second detection starts while one runs, and its faces join on the
    first frame after it has finished."""
    import threading

    monkeypatch.setattr(webcam, "BACKGROUND", True)
    # the detector of the predictor the webcam uses (the cache's own may have been made again since)
    detector = state.cache().predictor([state.default_model()], fast=True).detector
    release, started = threading.Event(), []
    real_detect = detector.detect

    def slow_detect(image: Image.Image, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("ferhub-webcam-detect"):
            started.append(image)
            assert release.wait(60)
        return real_detect(image, *args, **kwargs)

    monkeypatch.setattr(detector, "detect", slow_detect)
    frame = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((320, 320)))

    def in_a_thread(image: np.ndarray, session: Any) -> list[Any]:  # empty if the frame is still waiting
        done: list[Any] = []
        worker = threading.Thread(target=lambda: done.append(webcam.process_frame(image, session)))
        worker.start()
        worker.join(20)
        return done

    session = None
    try:
        for k in range(6):  # frame 0 in line; frame 2's detection blocks until released
            done = in_a_thread(np.roll(frame, 2 * k, axis=1), session)
            assert done, f"frame {k} waited for the detection started on frame 2"
            _, text, session = done[0]
            assert text.endswith("1 face")
        for _ in range(200):  # the shared detection threads may still finish an earlier test's detection
            if started:
                break
            time.sleep(0.05)
        assert len(started) == 1 and session.pending is not None and not session.pending.done()
        (track,) = session.tracker.tracks
        assert track.hits == 1  # only frame 0's detection has joined
    finally:
        release.set()
    session.pending.result()
    _, _, session = webcam.process_frame(frame, session)
    (track,) = session.tracker.tracks
    assert track.id == 1 and track.hits == 2  # frame 2's faces joined, at frame 2's time
    assert session.pending is not None and session.detected == 6  # the next one started at once (it was due)
    session.pending.result()
    assert len(started) == 2


def test_webcam_boxes_never_carry_over_a_cut() -> None:
    """A frame between detections carries the last boxes along, unless the scene changed wholesale (another
    camera, the fake camera's loop): then the new scene is detected at once and nobody keeps an old id."""
    astronaut = np.asarray(Image.open(ASTRONAUT).convert("RGB").resize((320, 320)))
    hopper = Image.open(HOPPER).convert("RGB")
    hopper = np.asarray(
        hopper.resize((320, round(320 * hopper.height / hopper.width))).crop((0, 0, 320, 320))
    )
    _, _, session = webcam.process_frame(astronaut, None, DEFAULT_MODEL)  # frame 0: detected, #1
    _, text, session = webcam.process_frame(hopper, session, DEFAULT_MODEL)  # frame 1 would carry #1's box
    (track,) = [t for t in session.tracker.tracks if t.lost_since is None]  # #1 is not carried, nor seen
    assert track.id == 2 and text.endswith("1 face")
    (expected,) = state.cache().detector(fast=True).detect(Image.fromarray(hopper))  # the webcam's detector
    assert session.faces[2].box == pytest.approx(expected.box, abs=1)


def test_a_webcam_flash_or_dimmed_light_keeps_the_faces_ids() -> None:
    """A flash (or the light changing) ended every track as a cut does: the same person got a new number."""
    astronaut = Image.open(ASTRONAUT).convert("RGB").resize((320, 320))
    flash = Image.eval(astronaut, lambda v: min(255, v + 150))  # saturating: the histogram changes wholesale
    dimmed = Image.eval(astronaut, lambda v: int(v * 0.6))
    session = None
    for frame in (astronaut, flash, astronaut, dimmed, dimmed):
        _, text, session = webcam.process_frame(frame, session, DEFAULT_MODEL)
        assert [t.id for t in session.tracker.tracks] == [1]  # the flash may hide the face: never a new id
        assert frame is flash or text.endswith("1 face")


# -- Compare
# ---------------------------------------------------------------------------------------------------
def test_compare_photo_detects_once_and_marks_disagreement(tiny_model: str) -> None:
    gallery, table, figure, summary = compare.compare_photo(ASTRONAUT, [tiny_model, DEFAULT_MODEL])
    assert [caption for _, caption in gallery] == [tiny_model, DEFAULT_MODEL]
    # the columns name the models chosen, in their order (not the picker's first choice)
    assert table["headers"] == ["face", tiny_model, DEFAULT_MODEL, "majority", "share", ""]
    (row,) = table["data"]
    assert row[0] == "#1" and len(row) == 2 + 4
    labels = [cell.split(" (")[0] for cell in row[1:3]]
    agree = labels[0] == labels[1]
    assert row[-1] == ("agree" if agree else "disagree") and row[-2] == ("100%" if agree else "50%")
    assert figure is None  # one face: no pairwise agreement over faces to plot
    assert "1 face(s)" in summary and (("(!)" in summary) != agree)
    with pytest.raises(gr.Error, match="at least 2 models"):
        compare.compare_photo(ASTRONAUT, [DEFAULT_MODEL])


def test_face_agreement_is_the_majority_share_and_a_tie_has_none() -> None:
    assert compare.face_agreement(["happy", "sad", "happy"]) == ("happy", pytest.approx(2 / 3), ())
    assert compare.face_agreement(["sad"]) == ("sad", 1.0, ())
    assert (
        compare.face_agreement(["sad", "neutral", "angry", "sad"]).label == "sad"
    )  # the top count is unique
    # no label leads: no majority (it was the first model's label), the tied labels in the models' order
    tie = compare.face_agreement(["angry", "neutral", "happy", "sad"])
    assert tie.label is None and tie.majority_cell() == "tie: angry / neutral / happy / sad"
    assert tie.share_cell() == "25% each"
    two = compare.face_agreement(["sad", "happy", "happy", "sad"])
    assert (two.majority_cell(), two.share_cell()) == ("tie: sad / happy", "50% each")
    one = compare.face_agreement(["happy", "sad", "happy"])
    assert (one.majority_cell(), one.share_cell()) == ("happy", "67%")


def test_compare_photo_table_shows_a_tie_as_no_majority(
    monkeypatch: pytest.MonkeyPatch, tiny_model: str
) -> None:
    """Two models that disagree on a face: no majority (the first model's label was shown as one)."""
    from ferhub.predict import Predictor

    predict = Predictor.predict_image

    def second_disagrees(self: Predictor, image: Any) -> Any:
        result = predict(self, image)
        for face in result.faces:  # the second model's answer differs from the first's, whatever they saw
            first, second = face.predictions[0], face.predictions[1]
            second.label = next(c for c in second.probabilities if c != first.label)
        return result

    monkeypatch.setattr(Predictor, "predict_image", second_disagrees)
    _, table, _, summary = compare.compare_photo(ASTRONAUT, [DEFAULT_MODEL, tiny_model])
    (row,) = table["data"]
    first, second = (cell.split(" (")[0] for cell in row[1:3])
    assert row[-3:] == [f"tie: {first} / {second}", "50% each", "disagree"]
    assert "disagree on **1** face(s)" in summary


def test_compare_photo_agreement_plot_fits_its_panel(tiny_model: str, tmp_path: Path) -> None:
    """The heatmap over several faces had a fixed width and was cut off on a phone-width panel."""
    pair = Image.new("RGB", (1024, 512))
    pair.paste(Image.open(HOPPER).convert("RGB").resize((512, 512)), (0, 0))
    pair.paste(Image.open(ASTRONAUT).convert("RGB").resize((512, 512)), (512, 0))
    pair.save(tmp_path / "pair.jpg")
    _, _, figure, _ = compare.compare_photo(str(tmp_path / "pair.jpg"), [DEFAULT_MODEL, tiny_model])
    assert figure.layout.autosize is True and figure.layout.width is None
    assert list(figure.data[0].x) == [DEFAULT_MODEL, "tiny"]  # a local folder by its name, as elsewhere


def test_changing_the_models_clears_every_same_photo_output() -> None:
    """The table's columns change with the models; the summary, gallery and plot of the last comparison
    (of other models) go with its rows."""
    gallery, table, figure, summary = compare.agreement_headers([DEFAULT_MODEL, "ferhub/facemood"])
    assert gallery == [] and figure is None and summary == ""
    assert table == {
        "headers": ["face", DEFAULT_MODEL, "ferhub/facemood", "majority", "share", ""],
        "data": [],
    }
    demo = build_app([DEFAULT_MODEL])
    ids = {b._id: getattr(b, "elem_id", None) for b in demo.blocks.values()}
    deps = {d["api_name"]: d for d in demo.config["dependencies"]}
    assert deps["agreement_headers"]["outputs"] == deps["compare_photo"]["outputs"]
    assert [ids[o] for o in deps["compare_photo"]["outputs"]][:2] == ["compare-gallery", "compare-agreement"]


def test_changing_the_models_clears_the_evaluation_dashboard() -> None:
    """A model removed from "Models to compare" kept its confusion matrix, the difference plot and its metrics
    row on screen: a new choice of models hides every panel and note until "Load results" is pressed."""
    demo = build_app([DEFAULT_MODEL])
    chosen = next(b._id for b in demo.blocks.values() if getattr(b, "elem_id", None) == "compare-models")
    deps = {d["api_name"]: d for d in demo.config["dependencies"]}
    cleared = deps["dashboard_cleared"]
    assert cleared["targets"] == [(chosen, "change")] and cleared["trigger_mode"] == "always_last"
    notes = deps["eval_datasets"]["outputs"][1]  # they name the models too
    assert cleared["outputs"] == [*deps["dashboard"]["outputs"], notes]
    for name in ("dashboard_dataset", "dashboard_view", "dashboard_classes", "dashboard_fresh"):
        assert deps[name]["outputs"] == deps["dashboard"]["outputs"], name
    assert {deps[f"difference_{tag}"]["outputs"][0] for tag in "ab"} <= set(cleared["outputs"])
    *plots, pair_a, pair_b, difference, recall, table, legend, note, notes = compare.dashboard_cleared()
    assert len(plots) == compare.MAX_MODELS and not any(p.visible for p in (*plots, difference, recall))
    assert all(p.value is None for p in (*plots, difference, recall))
    assert not pair_a.visible and not pair_b.visible and pair_a.choices == [] and not table.visible
    assert legend == note == notes == ""


def test_dashboard_without_results_offers_evaluation(tiny_model: str) -> None:
    picker, notes, section = compare.dataset_choices([tiny_model], {})
    assert picker.choices == [] and "no evaluation results yet" in notes and "evaluate them below" in notes
    assert section.open


def test_evaluate_now_then_dashboard(
    tiny_model: str, labelled_zip: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path / "cache"))
    ids = [DEFAULT_MODEL, tiny_model]
    fresh, status, files, picker, notes = compare.evaluate_now(ids, labelled_zip, "", "", {})
    assert "on 12 images" in status
    # a visitor's images leave no detections behind: the persistent face cache kept each one's hash and face
    # forever, past the scratch sweeps (and was read whole at every evaluation)
    assert not list((tmp_path / "cache").rglob("*.jsonl"))
    # the dashboard's notes are refreshed with the picker: the tiny model has results now
    assert "has no evaluation results" not in notes and "No evaluation results" not in notes
    assert len(files) == 3 and Path(files[-1]).name == "report.html"
    assert "<html" in Path(files[-1]).read_text()[:500].lower()
    key = picker.value
    assert set(fresh) == set(ids) and all(key in fresh[m] for m in ids)
    written = json.loads(Path(files[0]).read_text())
    assert written["results"][key]["num_images"] == 12
    *confusion, pair_a, pair_b, difference, recall, table, legend, note = compare.dashboard(
        ids, key, compare.COUNTS, fresh
    )
    assert confusion[0].visible and confusion[1].visible and not confusion[2].visible
    assert difference.visible and recall.visible and table.visible
    assert (pair_a.value, pair_b.value) == (DEFAULT_MODEL, tiny_model) and pair_a.visible
    # one class axis for every panel, ferhub's order; classes no image has and no model predicted are hidden
    entries = [fresh[m][key] for m in ids]
    used = {
        c
        for e in entries
        for i, c in enumerate(e["labels"])
        if np.asarray(e["confusion_matrix"])[i].sum() or np.asarray(e["confusion_matrix"])[:, i].sum()
    }
    axes = [json.loads(p.value["plot"])["data"][0]["x"] for p in (*confusion[:2], difference)]
    assert axes[0] == axes[1] == axes[2] == [c for c in FER7 if c in used]
    hidden = [c for c in FER7 if c not in used]
    assert note == (f"Hidden (no images, never predicted): {', '.join(hidden)}." if hidden else "")
    assert legend.startswith("**What the averages average over.**") and DEFAULT_MODEL in legend
    assert (
        [row[0] for row in table.value["data"]]
        == [compare.short_name(m) for m in ids]
        == [DEFAULT_MODEL, "tiny"]
    )
    # the counts view draws the entry's confusion matrix, put in the shared order; the normalised view divides
    # each row
    from ferhub.compare import align_matrix

    entry = fresh[DEFAULT_MODEL][key]
    counts = align_matrix(entry["confusion_matrix"], entry["labels"], axes[0])
    assert counts.sum() == 12
    assert np.array_equal(_heatmap_z(confusion[0]), counts)
    *normalised, _, _, _, _, _, _, _, _ = compare.dashboard(ids, key, compare.NORMALISED, fresh)
    rows = counts.sum(axis=1, keepdims=True)
    expected = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    z = _heatmap_z(normalised[0])
    assert np.allclose(z / (100 if z.max() > 1.0 else 1), expected)


def test_evaluate_now_decodes_a_zip_under_the_apps_pixel_limit(
    tiny_model: str, labelled_zip: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zip's images were decoded under ``load_image``'s 50 MP, not the app's limit for an uploaded photo
    (``state.MAX_PIXELS``, 40 MP): a larger one is skipped and counted, before it is decoded."""
    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(state, "MAX_PIXELS", 100 * 100)  # the zip's faces are 96x96
    bigger = tmp_path / "upload-big" / "bigger.zip"
    bigger.parent.mkdir()
    with zipfile.ZipFile(labelled_zip) as src, zipfile.ZipFile(bigger, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name))
        png = next(n for n in src.namelist() if n.endswith(".png"))
        dst.writestr("faces/happy/large.png", _png(Image.open(io.BytesIO(src.read(png))).resize((101, 100))))
    _, status, _, _, _ = compare.evaluate_now([tiny_model], str(bigger), "", "", {})
    assert "on 12 images" in status
    assert "1 image(s) could not be read and were skipped (e.g. bigger.zip::faces/happy/large.png)." in status
    monkeypatch.setattr(state, "MAX_PIXELS", 90 * 90)  # none fits: said with advice a visitor can act on
    with pytest.raises(gr.Error) as e:
        compare.evaluate_now([tiny_model], str(bigger), "", "", {})
    assert "over the limit of 0.0 MP" in e.value.message and "from Python" not in e.value.message
    assert e.value.message.endswith("; downscale the images to 0.0081 MP or less)")


def test_evaluate_now_names_a_model_giving_nan_and_shows_the_others(
    tiny_model: str, labelled_zip: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A diverged model (NaN probabilities) failed the whole evaluation with a JSON error; now it is named in
    the status and the other models' results are shown and downloadable."""
    import torch

    from ferhub.hub import save
    from ferhub.models import create_model

    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path / "cache"))
    model = create_model("test_tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3e38)  # finite weights whose logits overflow to NaN
    bad = str(save(model, tmp_path / "diverged"))
    fresh, status, files, picker, _ = compare.evaluate_now([tiny_model, bad], labelled_zip, "", "", {})
    assert set(fresh) == {tiny_model} and picker.value in fresh[tiny_model]
    assert status.endswith(
        "model diverged gave NaN or infinite probabilities for 12 of 12 images (first:"
        " faces.zip::faces/happy/00.png); the model's weights or its computation are not finite (a diverged"
        " or corrupt model); the other models' results are kept."
    )
    assert str(tmp_path) not in status and len(files) == 2  # one model's results and the report
    with pytest.raises(gr.Error, match="Evaluation failed: model diverged gave NaN"):
        compare.evaluate_now([bad], labelled_zip, "", "", {})


def test_evaluate_now_says_what_it_skipped_and_picks_the_new_set(
    tiny_model: str, labelled_zip: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path / "cache"))
    fresh, _, _, first, _ = compare.evaluate_now([tiny_model], labelled_zip, "", "", {})
    broken = tmp_path / "upload-folder" / "more.zip"  # another set: the same faces, and one non-image
    broken.parent.mkdir()
    with zipfile.ZipFile(labelled_zip) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            dst.writestr(name.replace("faces/", "more/"), src.read(name))
        png = next(n for n in src.namelist() if n.endswith(".png"))
        dst.writestr("more/contempt/face.png", src.read(png))  # a class the 7-class model cannot predict
        dst.writestr("more/happy/broken.png", b"\x89PNG\r\n\x1a\n cut short")
    fresh, status, files, picker, _ = compare.evaluate_now([tiny_model], str(broken), "", "", fresh)
    assert (
        "on 13 images" in status
        # inside the set, as the README and the downloads name it (the file name alone lost its class folder)
        and "1 image(s) could not be read and were skipped (e.g. more.zip::more/happy/broken.png)." in status
    )
    # an accuracy alone hid that these are counted wrong (the notes said so only inside the JSON)
    assert status.endswith(" tiny cannot predict contempt (1): those 1 image(s) count as wrong.")
    # what a visitor downloads names the image inside the set, never the server's upload folder
    (example,) = json.loads(Path(files[0]).read_text())["results"][picker.value]["unreadable"]["examples"]
    assert example["path"] == "more.zip::more/happy/broken.png"
    assert example["error"].startswith("more.zip::more/happy/broken.png: ")
    for served in files:
        assert str(tmp_path) not in Path(served).read_text(), served
    assert fresh[tiny_model][picker.value]["unreadable"]["examples"] == [example]
    assert len(picker.choices) == 2 and picker.value != first.value  # the set just evaluated, not the first
    assert picker.value in fresh[tiny_model]
    _, notes, _ = compare.dataset_choices([tiny_model], fresh)
    assert "no evaluation results yet" not in notes  # its repo has none, but this session has


def _heatmap_z(plot: gr.Plot) -> np.ndarray:
    figure = json.loads(plot.value["plot"])
    (heatmap,) = [t for t in figure["data"] if t["type"] == "heatmap"]
    z = heatmap["z"]
    if isinstance(z, dict):  # plotly >= 6 ships arrays as typed base64 blocks
        import base64

        shape = [int(n) for n in str(z["shape"]).split(",")]
        return (
            np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
            .reshape(shape)
            .astype(float)
        )
    return np.array(z, dtype=float)


def test_repo_results_are_read_from_eval_results_json(tiny_model: str, tmp_path: Path) -> None:
    import shutil

    from ferhub.eval_results import write as write_results

    folder = tmp_path / "tiny-with-results"
    shutil.copytree(tiny_model, folder)
    entry = {
        "dataset": {"id": "faces.zip", "split": "test"},
        "metrics": {
            "accuracy": 0.625,
            "mean_class_recall": 0.625,
            "macro_f1": 0.62,
            "top2_accuracy": 1.0,
            "nll": 0.7,
            "ece": 0.1,
        },
        "labels": ["happy", "sad"],
        "confusion_matrix": [[3, 1], [2, 2]],
        "per_class": {
            "happy": {"precision": 0.6, "recall": 0.75, "f1": 0.67, "support": 4},
            "sad": {"precision": 0.67, "recall": 0.5, "f1": 0.57, "support": 4},
        },
        "num_images": 8,
    }
    write_results(folder, {"faces.zip:default:test": entry}, render_card=False)
    picker, notes, section = compare.dataset_choices([str(folder), tiny_model], {})
    assert section.open  # one of the two models has no results: offer to evaluate it
    assert (
        picker.choices == [("faces.zip / test", "faces.zip:default:test")]
        and "no evaluation results" in notes
    )
    *confusion, _, _, difference, _, _, _, note = compare.dashboard(
        [str(folder), tiny_model], "faces.zip:default:test", compare.COUNTS, {}
    )
    assert confusion[0].visible and not confusion[1].visible and not difference.visible
    assert f"No results on this dataset for: {tiny_model}" in note
    # a results file that passes the reader but lacks a metric the table shows: "-" in that column
    del entry["metrics"]["ece"]
    write_results(folder, {"faces.zip:default:test": entry}, render_card=False)
    *_, table, _, _ = compare.dashboard([str(folder)], "faces.zip:default:test", compare.COUNTS, {})
    (row,) = table.value["data"]
    assert row[table.value["headers"].index("ECE")] == "-" and row[1].startswith("0.6250")
    # ...one that lacks a class's recall: that bar left out, the rest drawn
    del entry["per_class"]["sad"]["recall"]
    write_results(folder, {"faces.zip:default:test": entry}, render_card=False)
    outputs = compare.dashboard([str(folder)], "faces.zip:default:test", compare.COUNTS, {})
    bars = [json.loads(o.value["plot"])["data"] for o in outputs if isinstance(o, gr.Plot) and o.value]
    (recall,) = [trace for data in bars for trace in data if trace.get("type") == "bar"]
    assert dict(zip(recall["x"], recall["y"])) == {"happy": 0.75, "sad": None}
    # (an entry ferhub cannot show at all: the next test)


def test_dashboard_shows_a_metrics_only_entry_and_names_one_left_out(tiny_model: str, tmp_path: Path) -> None:
    """An entry of metrics only (valid; `ferhub report` shows its row) was dropped from the metrics table,
    its model said to have "No results on this dataset"; an entry ferhub cannot show (another tool's string
    note) made the whole file unreadable."""
    import shutil

    from ferhub.eval_results import write as write_results

    key = "faces.zip:default:test"
    full, only, other = (tmp_path / name for name in ("full", "only", "other"))
    for folder in (full, only, other):
        shutil.copytree(tiny_model, folder)
    entry = {
        "dataset": {"id": "faces.zip", "split": "test"},
        "metrics": {"accuracy": 0.625, "mean_class_recall": 0.625},
        "labels": ["happy", "sad"],
        "confusion_matrix": [[3, 1], [2, 2]],
        "per_class": {"happy": {"recall": 0.75, "support": 4}, "sad": {"recall": 0.5, "support": 4}},
        "num_images": 8,
    }
    write_results(full, {key: entry}, render_card=False)
    metrics = {"dataset": entry["dataset"], "metrics": {"accuracy": 0.5}, "num_images": 8}
    write_results(only, {key: metrics}, render_card=False)
    paper = {"dataset": {"id": "fer2013"}, "metrics": {"accuracy": 0.7}, "notes": "from the paper"}
    write_results(other, {key: entry}, render_card=False)
    data = json.loads((other / "eval_results.json").read_text())
    data["results"][key]["notes"] = "from the paper"  # its entry on this set left out, its other one too
    data["results"]["fer2013:default:all"] = paper
    (other / "eval_results.json").write_text(json.dumps(data))
    ids = [str(full), str(only), str(other)]
    picker, notes, _ = compare.dataset_choices(ids, {})
    assert picker.choices == [("faces.zip / test", key)]
    assert f"**{other}**: left out results['fer2013:default:all'].notes must be a list of strings" in notes
    *confusion, pair_a, _, difference, recall, table, _, note = compare.dashboard(
        ids, key, compare.COUNTS, {}
    )
    assert [row[0] for row in table.value["data"]] == ["full", "only"]
    assert confusion[0].visible and not confusion[1].visible and not difference.visible
    assert not pair_a.visible and recall.visible
    assert "No results on this dataset" not in note
    assert (
        "only: its results hold no confusion matrix or per-class results; the panels that need them" in note
    )
    assert (
        f"{other}: its results on this dataset were left out: results['{key}'].notes must be a list" in note
    )
    assert compare.difference_plot(ids, key, {}, False, None, None).visible is False


# -- Model card and the whole app
# --------------------------------------------------------------------------------
def test_model_card_shows_labels_licence_and_provenance() -> None:
    body, facts = model_card.model_card(DEFAULT_MODEL)
    table = dict(facts)
    assert table["labels"] == "angry, disgust, fear, happy, sad, surprise, neutral"
    assert table["input"] == "64x64 gray" and table["licence"] == "mit" and table["provenance"] != "-"
    assert body.strip() and not body.startswith("---")
    assert table["source"] == "bundled with ferhub"
    with pytest.raises(gr.Error, match="Cannot load model"):
        model_card.model_card("./no/such/folder")
    # a zoo model this server has not imported: importing is the operator's to do, not the visitor's
    from ferhub import zoo

    assert zoo.availability("pyemotion") == "no"
    with pytest.raises(gr.Error, match="a zoo model this server has not imported") as e:
        model_card.model_card("ferhub/pyemotion")
    assert "Pick a listed model" in e.value.message and "`ferhub zoo import pyemotion`" in e.value.message


def test_model_card_of_an_ensemble_lists_its_members_inputs() -> None:
    """The zoo-ensemble's card facts gave its own 112 px RGB crop, which no member is fed (each crops and
    normalises its own way); faceapi's mean showed as 0.48149803921568624."""
    _, facts = model_card.model_card("ferhub/zoo-ensemble")
    table = dict(facts)
    assert table["input"] == "64x64 gray; 112x112 RGB; 170x170 RGB; 64x64 gray"
    assert table["normalisation"].split("; ")[1] == "mean [0.4815, 0.4588, 0.409], std [1.0, 1.0, 1.0]"
    assert len(table["face crop"].split("; ")) == 4


def test_split_card_front_matter() -> None:
    meta, body = model_card.split_card("---\nlicense: mit\ndatasets: [fer2013]\n---\n# Card\ntext\n")
    assert meta == {"license": "mit", "datasets": ["fer2013"]} and body == "# Card\ntext\n"
    assert model_card.split_card("# no front matter") == ({}, "# no front matter")


def test_every_event_has_an_api_name() -> None:
    demo = build_app([DEFAULT_MODEL])
    names = [fn.api_name for fn in demo.fns.values()]
    assert "classify" in names and all(names), names
    assert {
        "classify",
        "webcam_session",
        "snapshot",
        "compare_photo",
        "dashboard",
        "evaluate",
        "model_card",
    } <= set(names)


def test_models_load_outside_the_gpu_functions(monkeypatch: pytest.MonkeyPatch, tiny_model: str) -> None:
    """On ZeroGPU ``spaces.GPU`` runs the function in a short-lived worker process, so a model loaded in there
    would be loaded again on every request: each tab's GPU function is handed a predictor loaded outside it.
    """
    import importlib
    import sys
    import types

    inside, runs = [], []

    def gpu(fn):  # a stand-in for spaces.GPU that marks when its function runs
        def run(*args, **kwargs):
            inside.append(fn.__name__)
            runs.append(fn.__name__)
            try:
                return fn(*args, **kwargs)
            finally:
                inside.pop()

        return run

    real_cache = state.cache

    def cache() -> state.ModelCache:
        assert not inside, f"model cache used inside the GPU function {inside[-1]}"
        return real_cache()

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=gpu))
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # what ZeroGPU sets
    monkeypatch.setattr(state, "cache", cache)
    tabs = (classify, compare, webcam)
    try:
        for module in tabs:
            importlib.reload(module)  # re-applies state.gpu, now wrapping with the stand-in
        classify.classify(HOPPER, DEFAULT_MODEL, "Grad-CAM")
        compare.compare_photo(HOPPER, [DEFAULT_MODEL, tiny_model])
        frame = np.asarray(Image.open(HOPPER).convert("RGB"))
        webcam.process_frame(frame, None, DEFAULT_MODEL)
        assert runs == ["_predict", "_explain", "_predict_photo", "_classify_frame"]
    finally:
        monkeypatch.undo()
        for module in tabs:
            importlib.reload(module)


@pytest.mark.slow
def test_heavy_imports_from_many_threads_at_once() -> None:
    """The warm-up and first requests import Captum/matplotlib/plotly at the same moment. Whether two
    unguarded imports collide is up to the scheduler, so this pins the guarantee instead: while one thread
    is inside ``state.heavy_imports`` (held there by a slow import), no other thread starts one of those
    imports, and every thread ends with whole modules (a fresh interpreter: nothing imported yet)."""
    code = """
import builtins, sys, threading, time
heavy = {"captum.attr", "plotly.graph_objects", "ferhub.plots", "ferhub.saliency"}
inside = threading.Event()

class SlowCaptum:  # holds the first thread inside its first heavy import for a while
    def find_spec(self, name, path=None, target=None):
        if name == "captum.attr" and threading.current_thread().name == "first":
            inside.set()
            time.sleep(0.5)
        return None

sys.meta_path.insert(0, SlowCaptum())
log, real_import = [], builtins.__import__

def logged_import(name, *args, **kwargs):
    if name in heavy:
        log.append((threading.current_thread().name, name, time.monotonic()))
    return real_import(name, *args, **kwargs)

builtins.__import__ = logged_import
from ferhub.ui import state
errors, finished = [], {}

def first_request():
    try:
        state.heavy_imports()
        finished[threading.current_thread().name] = time.monotonic()
        import matplotlib
        from captum.attr import LayerGradCam
        from ferhub.saliency import explain_faces
        matplotlib.get_data_path()
    except BaseException as e:
        errors.append(repr(e))

first = threading.Thread(target=first_request, name="first")
first.start()
assert inside.wait(60)
others = [threading.Thread(target=first_request, name=f"other{i}") for i in range(3)]
for t in others: t.start()
for t in [first, *others]: t.join()
overlapping = [e for e in log if e[0] != "first" and e[2] < finished.get("first", float("inf"))]
print(errors or overlapping or "ok")
"""
    passes_in_fresh_process(code)


def test_warm_up_logs_why_it_failed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    def broken() -> state.ModelCache:
        raise RuntimeError("no model today")

    monkeypatch.setattr(state, "cache", broken)
    with caplog.at_level(logging.ERROR, logger="ferhub.ui.state"):
        state.warm_up()  # the app still starts: the warm-up never raises
    assert "warm-up failed" in caplog.text and "no model today" in caplog.text


def test_warm_up_prepares_the_png_decoder_after_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from ferhub import images

    done: list[str] = []
    predictor = SimpleNamespace(predict_image=lambda image: done.append(f"predict {image.size}"))
    monkeypatch.setattr(state, "cache", lambda: SimpleNamespace(predictor=lambda ids: predictor))
    monkeypatch.setattr(state, "heavy_imports", lambda: done.append("imports"))
    monkeypatch.setattr(images, "warm_up_png", lambda: done.append("png"))
    state.warm_up()
    assert [d.split()[0] for d in done] == ["predict", "png", "imports"]


def test_the_app_never_changes_a_shared_cached_model(tiny_model: str) -> None:
    from ferhub import hub

    shared = hub.load(tiny_model)
    before = (shared.name_or_path, shared.training)
    other_spelling = tiny_model + "/"  # the same folder, so the same cached module
    cache = state.ModelCache()
    predictor = cache.predictor([other_spelling])
    assert cache.model(other_spelling) is shared and predictor.models[0] is shared
    assert predictor.names == [other_spelling]  # results are reported under the id the user picked
    assert (shared.name_or_path, shared.training) == before


def test_gpu_wrapper_is_a_no_op_without_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    def f(x: int) -> int:
        return x + 1

    monkeypatch.setenv("SPACES_ZERO_GPU", "true")  # even so: without the package, nothing to wrap with
    monkeypatch.setitem(sys.modules, "spaces", None)  # `import spaces` raises ImportError
    assert state.gpu(f) is f


def test_only_a_zerogpu_space_is_taken_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hugging Face installs ``spaces`` on every Gradio Space: importable, it made a CPU Space take the
    ZeroGPU branch (handlers wrapped, the webcam detecting in line). ZeroGPU is what ``SPACES_ZERO_GPU``
    says."""
    import sys
    import types

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=lambda fn: ("wrapped", fn)))

    def f() -> None:
        pass

    for value in (None, "", "false", "0"):
        if value is None:
            monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
        else:
            monkeypatch.setenv("SPACES_ZERO_GPU", value)
        assert not state.zerogpu() and state.gpu(f) is f, value
    for value in ("true", "True", "1"):
        monkeypatch.setenv("SPACES_ZERO_GPU", value)
        assert state.zerogpu() and state.gpu(f) == ("wrapped", f), value
    monkeypatch.setitem(sys.modules, "spaces", None)  # `import spaces` raises ImportError
    assert not state.zerogpu()  # the variable without the package: nothing to wrap with


def test_example_photos_are_the_bundled_images_only() -> None:
    """The examples folder also holds its README: only files Pillow decodes are offered as examples."""
    assert [Path(p).name for p in state.example_photos()] == ["astronaut.jpg", "grace_hopper.jpg"]


def test_download_names_keep_the_letters_of_every_script(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every non-ASCII letter was dropped: ``café au lait.jpg`` gave ``caf_au_lait``, and every Japanese,
    Chinese or Cyrillic upload the same generic name."""
    from ferhub.ui import scratch

    monkeypatch.setattr(scratch, "download_path", Path)

    def named(upload: str | None) -> str:
        return state.download_path(upload, ".ferhub.json", "ferhub-result").name

    assert named("/tmp/gradio/4f2a/café au lait.jpg") == "café_au_lait.ferhub.json"
    assert named("日本語の写真.jpg") == "日本語の写真.ferhub.json"
    assert named("Ünïcödé фото.jpg") == "Ünïcödé_фото.ferhub.json"
    assert named("cafe\u0301.jpg") == "café.ferhub.json"  # composed (NFC), as macOS's decomposed names too
    assert named("हिन्दी.jpg") == "हिन्दी.ferhub.json"  # its vowel signs are marks, kept
    # still safe: no separators, dots, control or format characters (a right-to-left override), and a
    # long name keeps its end within the byte cap
    assert named("..\\..\\x.jpg") == "x.ferhub.json" and named(".profile") == "profile.ferhub.json"
    assert named("a\u202egnp.exe\n.jpg") == "a_gnp_exe.ferhub.json"
    assert named("😀.jpg") == named(None) == "ferhub-result.ferhub.json"
    long = named("写" * 100 + "end.jpg")
    assert long == "写" * 39 + "end.ferhub.json" and len(long.encode()) <= 255


# -- Video tab: a new clip or new settings, several models; Webcam: a recording across Stop/Start ----------
def _clip(tmp_path: Path) -> str:
    import clips

    frames, _ = clips.crossing(12)  # two people, 0.8 s
    return str(clips.write_clip(tmp_path / "crossing.mp4", frames))


def test_video_tab_new_clip_or_settings_clear_the_results_and_a_run_for_the_old_ones_fills_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A clip put in (or removed) or new models, frame rate or smoothing left the last clip's results and
    downloads on screen, unmarked; a clip replaced while the last one was analysed got that run's results
    under it. The outputs are cleared in the browser (as Classify does for new settings), with a line to
    press Analyse; the page reports what it holds (`put_in`) and a run for anything else stops at its next
    frame and fills nothing."""
    from ferhub.ui import video

    demo = build_app([DEFAULT_MODEL])
    ids = {b._id: getattr(b, "elem_id", None) for b in demo.blocks.values()}
    deps = {d["api_name"]: d for d in demo.config["dependencies"]}
    inputs = ["video-input", "video-models", "video-fps", "video-smooth"]
    assert [ids[i] for i in deps["video"]["inputs"]] == inputs
    cleared = deps["video_changed"]
    assert [(ids[t[0]], t[1]) for t in cleared["targets"]] == [(i, "change") for i in inputs]
    assert cleared["js"] == video.stale_js() and not cleared["backend_fn"]
    assert (
        cleared["outputs"] == deps["video"]["outputs"] and [ids[i] for i in cleared["inputs"]] == inputs[:1]
    )
    assert video.stale_js().startswith("(clip) => [null, null, {") and "press Analyse" in video.stale_js()
    (put_in,) = [f for f in demo.fns.values() if f.api_name == "video_put_in"]
    assert put_in.fn is video.put_in and not put_in.queue and not put_in.preprocess and not put_in.outputs
    assert [(ids[t[0]], t[1]) for t in deps["video_put_in"]["targets"]] == [(i, "input") for i in inputs]
    assert deps["video_put_in"]["inputs"] == deps["video"]["inputs"]

    session = {"id": "page-1"}
    monkeypatch.setattr(visitors, "_session", lambda: session["id"])
    monkeypatch.setattr(visitors, "_held", collections.OrderedDict())
    clip = _clip(tmp_path)
    payload = {"path": clip, "orig_name": "crossing.mp4", "meta": {"_type": "gradio.FileData"}}
    other = {**payload, "path": str(tmp_path / "other.mp4")}
    asked = (clip, [DEFAULT_MODEL], 5, 0.3)
    frames: list[int] = []

    def doing(what: Callable[[], None]) -> Callable[..., None]:
        def progress(*args: Any, **kwargs: Any) -> None:  # called after each frame
            frames.append(1)
            if len(frames) == 2:
                what()

        return progress

    files: list[Path] = []
    download = state.download_path
    monkeypatch.setattr(state, "download_path", lambda *a, **k: files.append(download(*a, **k)) or files[-1])
    for moved in (
        (other, [DEFAULT_MODEL], 5, 0.3),  # another clip put in
        (None, [DEFAULT_MODEL], 5, 0.3),  # the clip removed
        (payload, [DEFAULT_MODEL], 2, 0.3),  # another frame rate
        (payload, [DEFAULT_MODEL], 5, 0),  # no smoothing
    ):
        frames.clear()
        out = video.analyse_video(*asked, progress=doing(lambda moved=moved: video.put_in(*moved)))
        assert out == (gr.skip(),) * 5 and len(frames) == 2, moved  # stopped at the next frame
        assert len(files) == 3 and not any(f.exists() for f in files)  # (its downloads removed)
        files.clear()

    # analysed to the end: the page reporting the run's own inputs (the upload's report may come after the
    # click), another page's report, an API caller's run (its page reports nothing)
    def elsewhere(page: str | None, *report: Any) -> None:
        was, session["id"] = session["id"], page
        video.put_in(*report)
        session["id"] = was

    for page, reporter in (("page-1", "page-1"), ("page-1", "page-2"), (None, "page-1")):
        session["id"] = page
        report = (payload if reporter == page else other, *asked[1:])
        frames.clear()
        progress = doing(lambda r=report, p=reporter: elsewhere(p, *r))
        copy, *_, status = video.analyse_video(*asked, progress=progress)
        assert Path(copy).is_file() and status.startswith("4 frames analysed"), (page, reporter)


def test_a_report_from_one_tab_does_not_stop_the_same_pages_run_in_the_other(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The Classify and Video tabs' reports of what the page holds (`put_in`) are kept by page and tab:
    another clip put in the Video tab while the page's photo is explained, or another photo put in the
    Classify tab while its clip is analysed, is no reason to stop that run (kept by page alone, either report
    stopped the other tab's run, which then filled nothing)."""
    from ferhub.ui import video

    monkeypatch.setattr(visitors, "_session", lambda: "page-1")
    monkeypatch.setattr(visitors, "_held", collections.OrderedDict())
    photo = {"path": HOPPER, "orig_name": "grace_hopper.jpg", "meta": {"_type": "gradio.FileData"}}
    clip = _clip(tmp_path)
    classifying = (photo, DEFAULT_MODEL, "Occlusion", "predicted")
    analysing = (clip, [DEFAULT_MODEL], 5, 0.3)
    # each tab's own check, asked for before the reports (each report below differs from its tab's run)
    checks = (classify._PAGE.moved_on(*classifying), video._PAGE.moved_on(*analysing))
    real = classify._explain

    def explaining(*args: Any) -> Any:  # while the photo is explained, the Video tab gets another clip
        video.put_in({"path": str(tmp_path / "other.mp4"), "orig_name": "other.mp4"}, [DEFAULT_MODEL], 2, 0)
        return real(*args)

    monkeypatch.setattr(classify, "_explain", explaining)
    classified = classify.classify(*classifying)
    frames: list[int] = []

    def progress(*args: Any, **kwargs: Any) -> None:  # after the 2nd frame, the Classify tab gets another
        frames.append(1)  # photo and method
        if len(frames) == 2:
            classify.put_in({"path": ASTRONAUT}, DEFAULT_MODEL, "Saliency", "predicted")

    analysed = video.analyse_video(*analysing, progress=progress)
    # neither run stopped
    assert (classified is classify.MOVED_ON, analysed == (gr.skip(),) * 5) == (False, False)
    assert classified[4]["saliency"]["method"] == "occlusion" and analysed[-1].startswith("4 frames analysed")
    # while each report is the page's, kept for its own tab, where it stops a run for other inputs
    assert list(visitors._held) == [("page-1", "video"), ("page-1", "classify")]
    assert [moved_on() for moved_on in checks] == [True, True]


def test_video_tab_summary_names_each_models_rows(tmp_path: Path, tiny_model: str) -> None:
    """With several models the Per person table showed the first model's figures only, naming none (the plot
    above it drew both): a row per person and model, named "1 · model", as the Webcam tab's table does."""
    from ferhub.ui import video

    _, _, rows, (_, json_file), _ = video.analyse_video(
        _clip(tmp_path), [DEFAULT_MODEL, tiny_model], 5, 0.3, progress=quiet
    )
    assert [r[0] for r in rows] == [f"{face} · {m}" for face in (1, 2) for m in (DEFAULT_MODEL, tiny_model)]
    data = json.loads(Path(json_file).read_text())
    for row, (track, m) in zip(rows, [(t, m) for t in data["tracks"] for m in t["models"]]):
        assert row[4] == (m["dominant"] or "-") and row[1:4] == [
            round(track[k], 2) for k in ("first_time", "last_time", "seconds")
        ]
    from ferhub import timeline as tl

    assert tl.SUMMARY_HEADER[1:4] == ["first seen (s)", "last seen (s)", "on screen (s)"]


def test_webcam_recording_starts_at_zero_and_breaks_across_a_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recording across Stop and Start drew each person's lines straight across the time the camera was
    off, and its time axis counted from the page's first frame, not from when recording began: the first
    frame after Start breaks the lines (as an absence does), the time stopped is not on screen, and the
    recording's times start at 0."""
    import types

    clock = {"now": 100.0}
    monkeypatch.setattr(webcam, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    frame = Image.open(HOPPER).convert("RGB")
    _, _, session = webcam.process_frame(frame, None, DEFAULT_MODEL, False, True)  # streaming, not recording
    # stopped for 1.5 s (the face keeps its id: lost faces are kept 2 s)
    for now, start in ((103.0, False), (103.1, False), (103.2, False), (104.7, True), (104.8, False)):
        clock["now"] = now
        _, _, session = webcam.process_frame(frame, session, DEFAULT_MODEL, True, start)
    figure, rows = webcam.timeline(session)
    line = figure.data[0]
    assert list(line.x) == pytest.approx([0.0, 0.1, 0.2, 0.95, 1.7, 1.8])
    assert [y is None for y in line.y] == [False] * 3 + [True] + [False] * 2  # the break
    ((face, first, last, seconds, *_),) = rows
    # 0.2 s, then the frame before the stop for one frame interval, 0.1 s, and the last frame's interval
    assert (face, first, last) == (1, 0.0, 1.8) and seconds == pytest.approx(0.5, abs=0.011)
    assert webcam.stopped_status(session) == "stopped · 5 frames recorded: Plot timeline draws them"
    assert webcam.stopped_status(None) == "stopped"
