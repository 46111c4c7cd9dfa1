"""Classify tab: a photo in; every face boxed and labelled, its probabilities, a Captum attribution, JSON
out."""

from __future__ import annotations

import contextlib
import functools
import html
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from ferhub import strict_json
from ferhub.ui import state, visitors

NO_SALIENCY = "None"
PREDICTED = "predicted"
# what a failed classify leaves in its outputs: nothing (no stale result beside a new error)
CLEAR_JS = "() => [null, null, [], '', null, null]"
# what a new model, method or class to explain leaves in them: nothing either (the last results were another
# model's, or another method's maps, under pickers that now name this one), and a photo a line on what to do
STALE_NOTE = '<p class="fh-stale">Settings changed: press Classify for the results with them.</p>'
STALE_JS = f"(photo) => [null, null, [], photo ? {json.dumps(STALE_NOTE)} : '', null, null]"


def method_choices() -> list[str]:
    from ferhub.saliency import METHODS  # light: captum is imported only when a method runs

    return [NO_SALIENCY, *METHODS.values()]


def target_choices(model_id: str | None) -> list[str]:
    """``predicted`` and the model's classes, read from its config (no model is built): the "Explain class"
    picker lists them from the start. Only ``predicted`` when the model cannot be resolved."""
    from ferhub.config import ModelConfig
    from ferhub.hub import resolve

    try:
        spec, local = visitors.model_spec(model_id or state.default_model())
        return [PREDICTED, *ModelConfig.load(resolve(spec, local=local)).labels]
    except Exception:
        return [PREDICTED]


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


METHOD_INFO = (
    "What the model looked at. Grad-CAM: coarse regions, fast. Saliency, Guided Backprop: pixel detail, fast."
    " Integrated Gradients, Occlusion: seconds per face."
)
TARGET_INFO = "The class the maps explain: 'predicted' explains each face's own top class."
PHOTO_MIN_WIDTH = 300  # px: narrower, the two result photos go one under the other

# what a screen reader announces for the two result photos before any result, and after one (describe)
FACES_ALT = "The photo with each face boxed and labelled (no result yet)"
ATTRIBUTION_ALT = "The attribution maps over the photo (no result yet)"
ALT_FACES_LISTED = 12  # faces named one by one in the alt text; the rest are counted


def describe(data: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Text alternatives (``alt_text``) for the Faces and Attribution photos of a classify result (its JSON):
    "3 faces boxed and labelled: #1 happy 91%, #2 neutral 60%, #3 sad 45%", and what the maps explain. The
    photos had none: a screen reader announced an unnamed button."""
    faces = (data or {}).get("faces") or []
    if not faces:
        return gr.update(alt_text=FACES_ALT), gr.update(alt_text=ATTRIBUTION_ALT)
    named = [
        face_caption(i, f["label"], f["probabilities"].get(f["label"], 0.0))
        for i, f in enumerate(faces[:ALT_FACES_LISTED], 1)
    ]
    more = len(faces) - len(named)
    listed = ", ".join(named) + (f" and {more} more" if more else "")
    counted = f"{len(faces)} face{'s' if len(faces) != 1 else ''}"
    faces_alt = f"{counted} boxed and labelled: {listed}"
    if not faces[0].get("face_found", True):  # the fallback: no face boxed, the whole photo classified
        counted = "the whole photo"
        faces_alt = f"No face found: the whole photo labelled {listed}"
    saliency = (data or {}).get("saliency")
    if not saliency:
        return gr.update(alt_text=faces_alt), gr.update(alt_text="No attribution (method None)")
    from ferhub.saliency import METHODS

    targets = list(dict.fromkeys(saliency.get("targets") or []))
    explained = ", ".join(targets) if len(targets) <= 3 else f"{len(targets)} classes"
    method = METHODS.get(saliency.get("method", ""), saliency.get("method", ""))
    return gr.update(alt_text=faces_alt), gr.update(
        alt_text=f"{method} attribution over {counted} for {explained}:"
        " warm colours mark the areas that raised that score most, each face scaled to its own maximum"
    )


def attribution_key() -> str:
    """The colour key of the attribution maps (HTML): the turbo colours they are drawn in, from low to high,
    and what they mean. The maps had no key, and each face's map is scaled to its own maximum, so every
    face's strongest area is red however weak its attribution is."""
    import numpy as np

    from ferhub.saliency import colorize

    levels = np.linspace(0, 1, 7)
    colours = colorize(levels[None])[0]
    stops = ", ".join(f"rgb({r},{g},{b}) {100 * t:.0f}%" for (r, g, b), t in zip(colours, levels))
    return (
        '<div class="fh-key"><span class="fh-key-end">low</span>'
        f'<span class="fh-key-bar" role="img" aria-label="colour scale from blue (low) to red (high)"'
        f' style="background: linear-gradient(to right, {stops})"></span>'
        '<span class="fh-key-end">high</span></div>'
        '<p class="fh-key-text">How much each area of a face raised the model\'s score for the explained'
        " class (its predicted one unless picked under <i>Explain class</i>); low areas stay clear. Each face"
        " is scaled to its own maximum: red is that face's strongest area, so compare areas within a face,"
        " not colours across faces.</p>"
    )


# The example thumbnails' names: Gradio draws each as a button holding an <img alt="">, which a screen reader
# announced as "button", where a sighted visitor sees who is in it (gr.Examples' example_labels would replace
# the thumbnails by the text). The page names them from their file names (launch's js, run on load).
EXAMPLE_NAMES = {"astronaut.jpg": "astronaut Eileen Collins", "grace_hopper.jpg": "Grace Hopper"}
EXAMPLES_JS = """() => {
  const names = __NAMES__;
  const thumbnails = "#classify-examples .gallery-item img, #compare-examples .gallery-item img";
  const name = (src) => {
    const file = decodeURIComponent(src.split("?")[0].split("/").pop() || "");
    return names[file] || file.replace(/\\.[^.]*$/, "").replace(/[_-]+/g, " ");
  };
  const label = () => {
    for (const img of document.querySelectorAll(thumbnails)) {
      const text = "Example photo: " + name(img.getAttribute("src") || "");
      if (img.alt !== text) img.alt = text;
    }
  };
  let queued = false;
  new MutationObserver(() => {
    if (!queued) { queued = true; requestAnimationFrame(() => { queued = false; label(); }); }
  }).observe(document.body, { childList: true, subtree: true });
  label();
}""".replace("__NAMES__", json.dumps(EXAMPLE_NAMES))


def face_caption(index: int, label: str, probability: float) -> str:
    return f"#{index} {label} {probability:.0%}"


def annotate(image: Image.Image, faces: list[Any]) -> Image.Image:
    """The photo with each face's box and ``#i label p%`` tag, coloured by label (``FaceResult`` list)."""
    from ferhub.drawing import draw_boxes, label_color

    labels = [face_caption(i, f.label, f.probabilities[f.label]) for i, f in enumerate(faces, 1)]
    return draw_boxes(image, [f.face.box for f in faces], labels, [label_color(f.label) for f in faces])


def model_changed(model_id: str | None, method: str) -> tuple[gr.Dropdown, dict[str, Any]]:
    """A new model: its classes as explainable targets, and a method that works for it (an ensemble has no
    single layer for Grad-CAM, so it gets Integrated Gradients instead). A model that cannot be loaded
    (an unreachable Hub id, a refused path) leaves both pickers working and says why in one warning."""
    try:
        model = state.cache().model(model_id or state.default_model())
    except gr.Error as e:
        visitors.warn(
            f"{visitors.sentence(e.message)} Classify will fail with this model; pick another.",
            action="model_changed",
        )
        return gr.Dropdown(choices=[PREDICTED], value=PREDICTED), gr.update(value=method)
    targets = gr.Dropdown(choices=[PREDICTED, *model.config.labels], value=PREDICTED)
    ensemble = getattr(model, "members", None) is not None
    return targets, gr.update(value="Integrated Gradients" if ensemble and method == "Grad-CAM" else method)


@state.gpu
def _predict(predictor: Any, image: Image.Image) -> Any:
    return predictor.predict_image(image)


SLOW_METHODS = ("occlusion", "integrated_gradients")  # seconds a face on the CPU: explained face by face


@state.gpu
def _explain(model: Any, image: Image.Image, faces: list[Any], method: str, targets: Any, share: int) -> list:
    from ferhub.saliency import explain_faces

    return explain_faces(model, image, faces, method, targets, occlusion_share=share)


def explain(
    model: Any,
    photo: Image.Image,
    faces: Sequence[Any],
    method: str,
    targets: list[str],
    progress: Any,
    moved_on: Callable[[], bool] | None = None,
    run: SlowRun | None = None,
) -> list[Any]:
    """Attributions for every face, a chunk of faces at a time, saying which faces they are on: a cancelled
    or abandoned request, or one whose page has ``moved_on`` to another photo or other settings (raising
    :class:`_MovedOn`), stops between chunks instead of holding the model's attribution copy to the last
    face. Occlusion runs the model once per window position and Integrated Gradients once per step, so they
    go one face at a time; the other methods go ``saliency.faces_per_chunk`` faces at a time, as
    ``explain_faces`` itself would (one call when the faces fit one chunk). The faces share occlusion's
    budget (``saliency.OCCLUSION_BUDGET_FLOPS``). Occlusion and Integrated Gradients wait for their turn
    among all visitors' (:data:`SLOW_RUNS`; ``run``: the place :func:`classify` was admitted to, taken here
    when none is given)."""
    from ferhub.saliency import METHODS, faces_per_chunk, method_id

    faces = list(faces)
    mid = method_id(method)
    slow = mid in SLOW_METHODS
    step = 1 if slow else faces_per_chunk(model)
    if not slow and len(faces) <= step:
        return _explain(model, photo, faces, method, targets, len(faces))
    out: list[Any] = []
    with _slow_turn(run, moved_on, progress) if slow else contextlib.nullcontext():
        for start in range(0, len(faces), step):
            end = min(start + step, len(faces))
            visitors.stop_if_gone()
            if moved_on is not None and moved_on():
                raise _MovedOn()
            which = f"face {end}" if end - start == 1 else f"faces {start + 1}-{end}"
            progress((start, len(faces)), desc=f"{METHODS[mid]}: {which} of {len(faces)}", unit="faces")
            out += _explain(model, photo, faces[start:end], method, targets[start:end], len(faces))
    return out


# -- slow attributions, all visitors together ---------------------------------------------------------------
# Each Classify event had 4 slots (Gradio's concurrency limit), first come first served: four Occlusion runs
# of the zoo ensemble on a 24-face photo (23-32 s each, ~90 s together: one API client's, or four visitors')
# held them all, and every other visitor's Classify, one without attribution (0.2 s) too, waited 67-87 s
# behind them. Gradio gives a slot per event, not per method or visitor, so the slow runs are counted here:
# at most SLOW_IN_FLIGHT of them hold a slot (the others are refused at once, saying why), and the events
# have more slots than that, so a light run always finds one.
# SLOW_AT_ONCE, computing at once in the order they ask: one leaves a core of a 2-core Space to every other
# request (two on two models finished 1.5x sooner on an idle machine, leaving nothing over), and runs on one
# model take turns face by face anyway (its attribution copy's lock), so the first asked finishes first
SLOW_AT_ONCE = 1
SLOW_IN_FLIGHT = 4  # computing or waiting for their turn, all visitors together
# of one page or API client (a Gradio session); runs its page has moved on from (ending at their next face)
# are not counted: a new photo's run starts while the old one's is still ending
SLOW_PER_VISITOR = 2
SLOW_GRACE_S = 0.5  # how long a run over its visitor's share waits for the page's put_in before its refusal
# the slots of the Classify events (upload, button, example, snapshot), one group: 4 or more always free of
# slow runs; a group each (4 slots each) let 16 classifies of big photos run at once, each with its memory
CONCURRENCY = SLOW_IN_FLIGHT + 4


@dataclass(eq=False)
class SlowRun:
    """A slow attribution admitted by :data:`SLOW_RUNS`: whose it is (a Gradio session; ``None`` outside
    one) and whether its page has moved on from it (:func:`put_in`)."""

    visitor: str | None
    moved_on: Callable[[], bool]


class SlowRuns:
    """The slow attributions (:data:`SLOW_METHODS`) of all visitors: at most ``in_flight`` admitted at once
    (:meth:`admit`), at most ``per_visitor`` of them one visitor's, not counting those its page has moved on
    from; beyond, a run is refused with a ``gr.Error`` saying why and what to do (at once, but for a page's
    run over its share: after :data:`SLOW_GRACE_S`, its page's report of a new photo may free it). Of those
    admitted, ``at_once`` compute at a time, in the order they ask for their turn (:meth:`turn`).

    A thread holds its place until it returns: Gradio frees a cancelled event's slot while its thread runs on
    to its next face (:func:`ferhub.ui.visitors.event_gone`), so the places bound the work, and the slots the
    slow runs hold."""

    def __init__(self, at_once: int, in_flight: int, per_visitor: int) -> None:
        self.at_once, self.in_flight, self.per_visitor = at_once, in_flight, per_visitor
        self._changed = threading.Condition()
        self._admitted: list[SlowRun] = []
        self._waiting: list[SlowRun] = []  # asking for their turn, first come first
        self._computing = 0

    def admitted(self) -> int:
        """How many slow runs hold a place now (computing or waiting)."""
        with self._changed:
            return len(self._admitted)

    @contextlib.contextmanager
    def admit(self, moved_on: Callable[[], bool] | None = None) -> Iterator[SlowRun]:
        """A place for a slow run of the calling event's visitor, held until the block ends; ``gr.Error``
        when all are taken, or the visitor holds its share."""
        run = SlowRun(visitors._session(), moved_on or (lambda: False))
        # a page reports a new photo or example (put_in) in an event of its own, which may arrive just after
        # the run it moves the page on to: the visitor's older runs count as moved on then, after a moment.
        # An API caller reports nothing: it is refused at once
        deadline = time.monotonic() + (SLOW_GRACE_S if _PAGE.reports() else 0.0)
        with self._changed:
            while True:
                if len(self._admitted) >= self.in_flight:
                    raise gr.Error(
                        f"The server is already running {self.in_flight} slow attributions ({_slow_names()})"
                        f" for its visitors. Try again in a minute, or pick a fast method ({_fast_names()}).",
                        title="Server busy",
                    )
                mine = [r for r in self._admitted if r.visitor is not None and r.visitor == run.visitor]
                if len([r for r in mine if not r.moved_on()]) < self.per_visitor:
                    break
                if (left := deadline - time.monotonic()) <= 0:
                    raise gr.Error(
                        f"{self.per_visitor} slow attributions ({_slow_names()}) of yours are still running"
                        " or waiting: wait for one to finish before starting another, or pick a fast method"
                        f" ({_fast_names()}).",
                        title="Too many slow attributions",
                    )
                self._changed.wait(min(left, 0.05))  # moved_on() changes without a notify: look again
            self._admitted.append(run)
        try:
            yield run
        finally:
            with self._changed:
                self._admitted.remove(run)
                self._changed.notify_all()

    @contextlib.contextmanager
    def turn(self, run: SlowRun, progress: Any) -> Iterator[None]:
        """Wait until ``run`` (admitted) is the first waiting and fewer than ``at_once`` compute, saying in
        ``progress`` how many are ahead; compute in the block. A run whose visitor leaves, or whose page moves
        on, while it waits ends (:class:`~ferhub.ui.visitors.Gone`, :class:`_MovedOn`)."""
        shown = None
        with self._changed:
            self._waiting.append(run)
        try:
            while True:
                with self._changed:
                    if self._waiting[0] is run and self._computing < self.at_once:
                        self._waiting.pop(0)
                        self._computing += 1
                        break
                    ahead = self._computing + self._waiting.index(run)
                    self._changed.wait(0.25)
                visitors.stop_if_gone()
                if run.moved_on():
                    raise _MovedOn()
                if ahead != shown:
                    shown = ahead
                    runs = "attribution" if ahead == 1 else "attributions"
                    progress(None, desc=f"Waiting for {ahead} slow {runs} ahead of this one")
        except BaseException:
            with self._changed:
                self._waiting.remove(run)
                self._changed.notify_all()
            raise
        try:
            yield
        finally:
            with self._changed:
                self._computing -= 1
                self._changed.notify_all()


SLOW_RUNS = SlowRuns(SLOW_AT_ONCE, SLOW_IN_FLIGHT, SLOW_PER_VISITOR)


def _slow_names() -> str:
    from ferhub.saliency import METHODS

    return ", ".join(METHODS[m] for m in SLOW_METHODS)


def _fast_names() -> str:
    from ferhub.saliency import METHODS

    return ", ".join(name for m, name in METHODS.items() if m not in SLOW_METHODS) + " or None"


def _is_slow(method: str) -> bool:
    """Whether ``method`` (a name or id) is one of :data:`SLOW_METHODS`; an unknown one is refused later."""
    from ferhub.saliency import SaliencyError, method_id

    try:
        return method_id(method) in SLOW_METHODS
    except SaliencyError:
        return False


@contextlib.contextmanager
def _slow_turn(run: SlowRun | None, moved_on: Callable[[], bool] | None, progress: Any) -> Iterator[None]:
    """``run``'s turn among the slow attributions (:meth:`SlowRuns.turn`), admitted first when not yet."""
    with contextlib.ExitStack() as held:
        if run is None:
            run = held.enter_context(SLOW_RUNS.admit(moved_on))
        held.enter_context(SLOW_RUNS.turn(run, progress))
        yield


def _upload_name(image: Any) -> str | None:
    """The photo's own file name (the payload's ``orig_name``; Gradio caches an upload under its name), for
    the JSON and its download: never the server's path to it."""
    if isinstance(image, dict):
        name = image.get("orig_name") or (Path(str(image["path"])).name if image.get("path") else None)
        return Path(str(name)).name if name else None  # a name, whatever a client sent
    return Path(image).name if isinstance(image, (str, os.PathLike)) else None


@visitors.action("classify")
def classify(
    image: Any,
    model_id: str | None = None,
    method: str = "Grad-CAM",
    target: str = PREDICTED,
    fallback: bool = False,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects the tracker through this default
) -> tuple[str, str | None, list[tuple[str, str]], str, dict[str, Any], str]:
    """Classify every face of a photo.

    Returns (as image file paths) the annotated photo, the whole-photo attribution overlay (``None`` without a
    method) and one attribution overlay per face crop; then the probabilities as HTML, the result dict and the
    path of its JSON. Returns :data:`MOVED_ON` instead when the visitor's page has put in another photo or
    picked other settings while this ran (:func:`put_in`). Occlusion and Integrated Gradients take a place
    among all visitors' slow attributions first, or are refused at once (:data:`SLOW_RUNS`).
    """
    state.heavy_imports()
    moved_on = _PAGE.moved_on(image, model_id, method, target)
    # an API caller may send any JSON here (the event takes its inputs unprocessed): text, or a clear refusal
    model_id = visitors.model_name(model_id) or state.default_model()
    method = visitors.text(method, "The attribution method") or NO_SALIENCY
    target = visitors.text(target, "The class to explain") or PREDICTED
    # a slow attribution is admitted (or refused) before any work: see SLOW_RUNS
    slow = method != NO_SALIENCY and _is_slow(method)
    with SLOW_RUNS.admit(moved_on) if slow else contextlib.nullcontext() as run:
        return _classified(image, model_id, method, target, bool(fallback), progress, moved_on, run)


def _classified(
    image: Any,
    model_id: str,
    method: str,
    target: str,
    fallback: bool,
    progress: Any,
    moved_on: Callable[[], bool],
    run: SlowRun | None,
) -> Any:
    """:func:`classify` of its checked inputs; ``run``: its place among the slow attributions, if one."""
    from ferhub.saliency import SaliencyError, overlay, overlay_on_photo

    photo = state.load_photo(image)
    # loaded outside the GPU functions: on ZeroGPU those run in a short-lived worker process, and a model
    # loaded there would be loaded again on every request
    predictor = state.cache().predictor([model_id], fallback=fallback)
    result = _predict(predictor, photo)
    if result.error:
        raise gr.Error(result.error, title="Could not classify this photo")
    if not result.faces:
        raise gr.Error(
            "No face found in this photo. Try a larger, frontal face, or tick 'Classify the whole image when"
            " no face is found'.",
            title="No face",
        )
    model = predictor.models[0]
    explanations = []
    if method != NO_SALIENCY:
        targets = [f.label for f in result.faces] if target == PREDICTED else [target] * len(result.faces)
        faces = [f.face for f in result.faces]
        try:
            explanations = explain(model, photo, faces, method, targets, progress, moved_on, run)
        except SaliencyError as e:
            raise gr.Error(str(e), title="Attribution not possible") from e
        except _MovedOn:
            return MOVED_ON
    if moved_on():  # what is left (drawing, saving) is for nobody
        return MOVED_ON
    data = result.to_dict()
    data["model"] = model_id
    data["saliency"] = None
    gallery: list[tuple[str, str]] = []
    whole = None
    if explanations:
        data["saliency"] = {"method": explanations[0].method, "targets": [e.target for e in explanations]}
        whole = overlay_on_photo(
            photo, [f.face for f in result.faces], [e.heatmap for e in explanations], model.config
        )
        gallery = [
            (state.save_image(overlay(e.crop, e.heatmap, size=192), f"face{i}"), f"#{i} {e.target}")
            for i, e in enumerate(explanations, 1)
        ]
    upload = _upload_name(image)
    # "path" stays null (no server path; and gradio_client takes any dict with a "path" string for a file to
    # fetch): the photo is named under "upload"
    data["upload"] = upload
    download = state.download_path(upload, ".ferhub.json", "ferhub-result")
    download.write_text(strict_json.dumps(data, indent=2), encoding="utf-8")
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
/* the empty part of a bar: the theme's border colour (light grey, dark grey in dark mode); a fixed light grey
   was the brightest thing on a dark page, so empty bars read as full */
.fh-bar { flex: 1; height: 10px; background: var(--border-color-primary, #e5e7eb); border-radius: 3px;
  overflow: hidden; }
.fh-bar span { display: block; height: 100%; }
.fh-p { width: 48px; text-align: right; font-variant-numeric: tabular-nums; }
/* the photo starts below the panel's label chip and its buttons, which Gradio floats over the image's top
   corners: a face's tag drawn above a face at the top edge stays readable */
.fh-tagged .image-container { padding-top: 28px; }
.fh-key { display: flex; align-items: center; gap: 6px; font-size: 13px; }
.fh-key-bar { flex: 1; max-width: 320px; height: 10px; border-radius: 3px; }
.fh-key-text { font-size: 13px; margin: 4px 0 0; opacity: 0.85; }
/* the dark page's red for the webcam's error line (ferhub.ui.webcam): its #dc2626 was 3.96:1 on it */
.dark #webcam-live .fh-live-error { color: #f87171; }
/* the per-face overlays: as many columns as fit, at least ~96 px each, and 6 where there is room (a phone
   showed 3 of every 6, the others off to the side, behind a sideways scroll nobody saw) */
#classify-crops .grid-container {
  grid-template-columns: repeat(auto-fill, minmax(max(96px, calc((100% - 5 * var(--spacing-lg)) / 6)), 1fr));
}
"""

# state.DIRECT, the handler wrapped by state.direct: it takes the upload's payload ({"path": ...}, already
# checked and moved into Gradio's cache) and the plain values and decodes the photo once itself (Gradio's
# preprocessing would hop to a worker thread once per input, five here, and open the photo an extra time:
# ~4 ms per request), and its six outputs are post-processed in its own thread.
# state.LATEST: a photo put in while the last one is still being classified is classified next.
# CONCURRENCY: more slots than slow attributions may hold (SLOW_RUNS), so a light Classify always finds one.
_FAST = {"concurrency_limit": CONCURRENCY, "concurrency_id": "classify", **state.DIRECT, **state.LATEST}


def _handler(parts: dict[str, Any]) -> Any:
    """:func:`classify` sending its outputs' payloads (see ``_FAST``), or nothing at all for a run its page
    has moved on from (:data:`MOVED_ON`)."""
    send = state.direct(lambda values: values, parts["outputs"])

    @functools.wraps(classify)
    def handler(*args: Any, **kwargs: Any) -> Any:
        values = classify(*args, **kwargs)
        return gr.skip() if values is MOVED_ON else send(values)

    return handler


# -- a run its page has moved on from ----------------------------------------------------------------------
# A photo put in (or the one there removed), or a new model, method or class picked, while the last photo was
# still being explained waited for that explanation to end, under its progress bar (a minute for occlusion
# on 60 faces of the zoo ensemble), and Gradio's `cancels` cannot end it: the page holds back the next run of
# an `always_last` event until the running one ends, and drops it when that one ends cancelled (tried in
# Chromium: the new photo was never classified). So the page reports what it holds (`put_in`, on each of
# those inputs) and a run for anything else ends at its next chunk of faces, sending nothing; the page then
# runs the classify it held back, for what it holds now. An API caller reports nothing: its runs never end.
_PRIVATE = {"queue": False, "preprocess": False, "api_visibility": "private", **state.LATEST}
MOVED_ON: Any = object()  # what classify returns for such a run: its outputs left as they are
_PAGE = visitors.PageInputs("classify")  # what each page's Classify tab holds (photo, model, method, class)


class _MovedOn(Exception):
    """The page a run works for holds another photo or other settings now (see :func:`put_in`)."""


def put_in(image: Any, model_id: Any, method: Any, target: Any) -> None:
    """The Classify inputs the visitor's page holds now (its ``input`` events: a photo put in or removed, a
    model, method or class picked): a run for others stops (:meth:`.visitors.PageInputs.moved_on`)."""
    _PAGE.put(image, model_id, method, target)


def _progress_on(parts: dict[str, Any]) -> dict[str, Any]:
    """One progress display, on the Faces photo: it was drawn on all six outputs, and the empty
    probabilities panel's (0 px tall) ran over the JSON accordion."""
    return {"show_progress_on": [parts["outputs"][0]]}


def run_after(event: Any, parts: dict[str, Any], api_name: str) -> Any:
    """Classify once ``event`` has put a photo in the Classify tab (an example, a webcam snapshot); a failure
    clears the outputs, and a run for the photo before stops (:func:`put_in`). Returns the classify event."""
    run = event.success(
        _handler(parts), parts["inputs"], parts["outputs"], api_name=api_name, **_FAST, **_progress_on(parts)
    )
    state.clear_on_failure(run, parts["outputs"], CLEAR_JS, "clear_outputs")
    source = api_name.removeprefix("classify_")  # "example": put_in_example
    event.success(put_in, parts["settings"], None, api_name=f"put_in_{source}", **_PRIVATE)
    return run


def build(models: list[str]) -> dict[str, Any]:
    """Lay out the Classify tab inside the current Blocks; returns the components other tabs connect to
    (``image``, ``model``, and the ``inputs`` / ``outputs`` of :func:`classify`)."""
    default = models[0]
    with gr.Row():
        with gr.Column(scale=1):
            image = gr.Image(
                type="filepath",
                sources=["upload", "clipboard"],
                label="Photo",
                elem_id="classify-input",
                height=320,
            )
            # the button and the examples right under the photo, the settings after them: on a 1366x768
            # laptop neither was on the first screen (the button at 801 px, the examples at 882 px)
            run = gr.Button("Classify", variant="primary", elem_id="classify-button")
            photos = state.example_photos()
            examples = (
                gr.Examples(
                    photos,
                    inputs=image,
                    label="Example photos (public domain)",
                    elem_id="classify-examples",
                )
                if photos
                else None
            )
            model = gr.Dropdown(
                models,
                value=default,
                allow_custom_value=True,
                label=f"Model ({visitors.model_kinds()})",
                elem_id="classify-model",
            )
            with gr.Row():
                method = gr.Dropdown(
                    method_choices(),
                    value="Grad-CAM",
                    label="Attribution method",
                    info=METHOD_INFO,
                    elem_id="classify-method",
                )
                target = gr.Dropdown(
                    target_choices(default),
                    value=PREDICTED,
                    label="Explain class",
                    info=TARGET_INFO,
                    allow_custom_value=True,
                    elem_id="classify-target",
                )
            fallback = gr.Checkbox(False, label="Classify the whole image when no face is found")
        with gr.Column(scale=2):
            # side by side where both get PHOTO_MIN_WIDTH, one under the other below that: at 768-1000 px
            # they shrank to 174 px (tags ~5 px tall), the second's label cut under its buttons
            with gr.Row():
                annotated = gr.Image(
                    label="Faces",
                    format="jpeg",
                    elem_id="classify-annotated",
                    elem_classes=["fh-tagged"],
                    interactive=False,
                    alt_text=FACES_ALT,
                    min_width=PHOTO_MIN_WIDTH,
                )
                saliency = gr.Image(
                    label="Attribution on the photo",
                    format="jpeg",
                    elem_id="classify-saliency",
                    elem_classes=["fh-tagged"],
                    interactive=False,
                    alt_text=ATTRIBUTION_ALT,
                    min_width=PHOTO_MIN_WIDTH,
                )
            gr.HTML(attribution_key(), elem_id="classify-attribution-key")
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
    parts: dict[str, Any] = {
        "image": image,
        "model": model,
        "settings": [image, model, method, target],  # what a classify run is for (see put_in)
        "inputs": [image, model, method, target, fallback],
        "outputs": [annotated, saliency, crops, probs, result, download],
    }
    # One event per user action: an upload (or paste) fires `upload` once, while `change` fired twice when a
    # photo replaced another, which ran classify twice and showed every error twice.
    for trigger, name in ((run.click, "classify"), (image.upload, "classify_on_upload")):
        event = trigger(
            _handler(parts), parts["inputs"], parts["outputs"], api_name=name, **_FAST, **_progress_on(parts)
        )
        state.clear_on_failure(event, parts["outputs"], CLEAR_JS, "clear_outputs")
    # what the page holds now, as its visitor changes it: a run for anything else stops (see put_in)
    gr.on(
        [image.input, model.input, method.input, target.input],
        put_in,
        parts["settings"],
        None,
        api_name="put_in",
        **_PRIVATE,
    )
    if examples is not None:
        run_after(examples.load_input_event, parts, "classify_example")
    # the photos' text alternatives follow each result (and its clearing): every run, whatever started it,
    # ends by setting the JSON
    result.change(
        describe,
        result,
        [annotated, saliency],
        api_name="describe_results",
        api_visibility="private",
        queue=False,
        show_progress="hidden",
    )
    model.change(model_changed, [model, method], [target, method], api_name="model_changed")
    # New settings clear the results (as Compare's "Same photo" does for new models) rather than classify
    # again: a visitor sets model, method and class one after another, often to a slow method (occlusion:
    # a minute on a crowd photo), and one press of Classify then runs once; results left on screen were the
    # last model's or method's, unmarked, under pickers that named the new ones.
    # (on `change`, not `input`: Gradio 6's dropdown fires `input` on a click of the option it already shows)
    gr.on(
        [model.change, method.change, target.change],
        None,
        [image],
        parts["outputs"],
        js=STALE_JS,
        api_name="settings_changed",
        api_visibility="private",
    )
    return parts
