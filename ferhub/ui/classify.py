"""Classify tab: a photo in; every face boxed and labelled, its probabilities, a Captum attribution, JSON out."""

from __future__ import annotations

import html
import json
from typing import Any

import gradio as gr
from PIL import Image

from ferhub.ui import state

NO_SALIENCY = "None"
PREDICTED = "predicted"


def method_choices() -> list[str]:
    from ferhub.saliency import METHODS  # light: captum is imported only when a method runs

    return [NO_SALIENCY, *METHODS.values()]


def probabilities_html(faces: list[dict[str, Any]]) -> str:
    """Per face, every class probability as a sorted bar list (HTML for ``gr.HTML``)."""
    from ferhub.drawing import label_color

    if not faces:
        return "<p>No face.</p>"
    blocks = []
    for i, face in enumerate(faces, 1):
        rows = []
        for label, p in sorted(face["probabilities"].items(), key=lambda kv: -kv[1]):
            r, g, b = label_color(label)
            rows.append(
                f'<div class="fh-row"><span class="fh-name">{html.escape(label)}</span>'
                f'<span class="fh-bar"><span style="width:{100 * p:.1f}%;background:rgb({r},{g},{b})"></span>'
                f'</span><span class="fh-p">{100 * p:.1f}%</span></div>'
            )
        note = "" if face.get("face_found", True) else " (no face found: whole image)"
        blocks.append(
            f'<div class="fh-face"><b>Face #{i}: {html.escape(face["label"])}</b>{note}{"".join(rows)}</div>'
        )
    return '<div class="fh-probs">' + "".join(blocks) + "</div>"


def face_caption(index: int, label: str, probability: float) -> str:
    return f"#{index} {label} {probability:.0%}"


def annotate(image: Image.Image, faces: list[Any]) -> Image.Image:
    """The photo with each face's box and ``#i label p%`` tag, coloured by label (``FaceResult`` list)."""
    from ferhub.drawing import draw_boxes, label_color

    labels = [face_caption(i, f.label, f.probabilities[f.label]) for i, f in enumerate(faces, 1)]
    return draw_boxes(image, [f.face.box for f in faces], labels, [label_color(f.label) for f in faces])


def model_changed(model_id: str | None, method: str) -> tuple[gr.Dropdown, dict[str, Any]]:
    """A new model: its classes as explainable targets, and a method that works for it (an ensemble has no
    single layer for Grad-CAM, so it gets Integrated Gradients instead)."""
    model = state.cache().model(model_id or state.default_model())
    targets = gr.Dropdown(choices=[PREDICTED, *model.config.labels], value=PREDICTED)
    ensemble = getattr(model, "members", None) is not None
    return targets, gr.update(value="Integrated Gradients" if ensemble and method == "Grad-CAM" else method)


@state.gpu
def _compute(predictor: Any, image: Image.Image, method: str, target: str) -> tuple[Any, list[Any], Any]:
    result = predictor.predict_image(image)
    explanations = []
    if result.ok and result.faces and method and method != NO_SALIENCY:
        from ferhub.saliency import explain_faces

        explanations = explain_faces(
            predictor.models[0],
            image,
            [f.face for f in result.faces],
            method,
            # the predicted classes are already known: no extra forward pass for them
            [f.label for f in result.faces] if target == PREDICTED else target,
        )
    return result, explanations, predictor.models[0].config


def classify(
    image: Any,
    model_id: str | None = None,
    method: str = "Grad-CAM",
    target: str = PREDICTED,
    fallback: bool = False,
) -> tuple[str, str | None, list[tuple[str, str]], str, dict[str, Any], str]:
    """Classify every face of a photo.

    Returns (as image file paths) the annotated photo, the whole-photo attribution overlay (``None`` without a
    method) and one attribution overlay per face crop; then the probabilities as HTML, the result dict and the
    path of its JSON.
    """
    state.heavy_imports()
    from ferhub.saliency import SaliencyError, overlay, overlay_on_photo

    photo = state.load_photo(image)
    model_id = (model_id or "").strip() or state.default_model()
    target = target or PREDICTED
    # loaded outside the GPU function: on ZeroGPU that runs in a short-lived worker process, and a model
    # loaded there would be loaded again on every request
    predictor = state.cache().predictor([model_id], fallback=bool(fallback))
    try:
        result, explanations, config = _compute(predictor, photo, method or NO_SALIENCY, target)
    except SaliencyError as e:
        raise gr.Error(str(e), title="Attribution not possible") from e
    if result.error:
        raise gr.Error(result.error, title="Could not classify this photo")
    if not result.faces:
        raise gr.Error(
            "No face found in this photo. Try a larger, frontal face, or tick 'Classify the whole image when no "
            "face is found'.",
            title="No face",
        )
    data = result.to_dict()
    data["model"] = model_id
    data["saliency"] = None
    gallery: list[tuple[str, str]] = []
    whole = None
    if explanations:
        data["saliency"] = {"method": explanations[0].method, "targets": [e.target for e in explanations]}
        whole = overlay_on_photo(
            photo, [f.face for f in result.faces], [e.heatmap for e in explanations], config
        )
        gallery = [
            (state.save_image(overlay(e.crop, e.heatmap, size=192), f"face{i}"), f"#{i} {e.target}")
            for i, e in enumerate(explanations, 1)
        ]
    download = state.output_path("-ferhub-result.json")
    download.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return (
        state.save_image(annotate(photo, result.faces), "faces"),
        None if whole is None else state.save_image(whole, "attribution"),
        gallery,
        probabilities_html(data["faces"]),
        data,
        str(download),
    )


CSS = """
.fh-probs { display: flex; flex-wrap: wrap; gap: 12px; }
.fh-face { min-width: 220px; flex: 1; }
.fh-row { display: flex; align-items: center; gap: 6px; font-size: 13px; margin: 2px 0; }
.fh-name { width: 70px; }
.fh-bar { flex: 1; height: 10px; background: #e5e7eb; border-radius: 3px; overflow: hidden; }
.fh-bar span { display: block; height: 100%; }
.fh-p { width: 48px; text-align: right; font-variant-numeric: tabular-nums; }
"""


def classify_if_image(
    image: Any, model_id: str | None, method: str, target: str, fallback: bool
) -> tuple[Any, ...] | Any:
    """``classify`` when the photo changes (upload, example, webcam snapshot); nothing when it was cleared."""
    if image is None:
        return gr.skip()
    return classify(image, model_id, method, target, fallback)


def build(models: list[str]) -> dict[str, gr.components.Component]:
    """Lay out the Classify tab inside the current Blocks; returns the components other tabs connect to."""
    default = models[0]
    with gr.Row():
        with gr.Column(scale=1):
            image = gr.Image(
                type="filepath",
                sources=["upload", "clipboard"],
                label="Photo",
                elem_id="classify-input",
                height=360,
            )
            model = gr.Dropdown(
                models, value=default, allow_custom_value=True, label="Model (bundled, Hub id or local path)"
            )
            with gr.Row():
                method = gr.Dropdown(method_choices(), value="Grad-CAM", label="Attribution method")
                target = gr.Dropdown(
                    [PREDICTED], value=PREDICTED, label="Explain class", allow_custom_value=True
                )
            fallback = gr.Checkbox(False, label="Classify the whole image when no face is found")
            run = gr.Button("Classify", variant="primary", elem_id="classify-button")
            examples = state.example_photos()
            if examples:
                gr.Examples(examples, inputs=image, label="Example photos (public domain)")
        with gr.Column(scale=2):
            with gr.Row():
                annotated = gr.Image(
                    label="Faces", format="jpeg", elem_id="classify-annotated", interactive=False
                )
                saliency = gr.Image(
                    label="Attribution on the photo",
                    format="jpeg",
                    elem_id="classify-saliency",
                    interactive=False,
                )
            crops = gr.Gallery(
                label="Attribution per face",
                columns=6,
                height=230,
                fit_columns=False,
                preview=False,
                allow_preview=True,
                object_fit="contain",
                elem_id="classify-crops",
                interactive=False,
            )
            probs = gr.HTML(label="Probabilities", elem_id="classify-probs")
            with gr.Accordion("JSON", open=False):
                result = gr.JSON(label="Result")
            download = gr.File(label="Download JSON", elem_id="classify-download")
    outputs = [annotated, saliency, crops, probs, result, download]
    inputs = [image, model, method, target, fallback]
    # preprocess=False: the handler takes the upload's payload ({"path": ...}, already checked and moved into
    # Gradio's cache) and the plain values, and decodes the photo once itself. Gradio's preprocessing would
    # hop to a worker thread once per input (five here) and open the photo an extra time: ~4 ms per request.
    fast = {"concurrency_limit": 4, "preprocess": False}
    run.click(classify, inputs, outputs, api_name="classify", **fast)
    image.change(classify_if_image, inputs, outputs, api_name="classify_on_change", **fast)
    model.change(model_changed, [model, method], [target, method], api_name="model_changed")
    return {"image": image, "model": model}
