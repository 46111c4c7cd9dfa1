"""The ferhub web app: one module per tab, each thin over the library; :func:`build_app` assembles them.

>>> from ferhub.ui import build_app
>>> demo = build_app()          # doctest: +SKIP
>>> demo.launch()               # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gradio as gr

TITLE = "ferhub: facial expression recognition"
INTRO = (
    "Classify the expression of every face in a photo or your webcam, see what the model looked at, and"
    " compare models side by side: put in a photo, or click one of the example photos under the Photo box."
    " Results describe the configuration of a face, not what a person feels."
)


def build_app(models: Sequence[str] | None = None) -> gr.Blocks:
    """The app's Blocks; ``models`` are the picker choices (default: the bundled and zoo models)."""
    # imported here, not at the top: `ferhub.ui.scratch` must be importable before Gradio (see app.py)
    import gradio as gr

    from ferhub.ui import classify, compare, model_card, scratch, sessions, state, video, visitors, webcam

    state.configure_runtime()
    sessions.install()  # a page load or session-less API call: 0.1 ms of session set-up, not 13-20 ms
    choices = list(models) if models else state.model_choices()
    visitors.configure(choices)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=scratch.delete_cache()) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Tabs(selected="classify") as tabs:
            with gr.Tab("Classify", id="classify"):
                parts = classify.build(choices)
            with gr.Tab("Webcam", id="webcam"):
                snapshot = webcam.build(choices, parts["image"], tabs, demo)
                classify.run_after(snapshot, parts, "classify_snapshot")
            with gr.Tab("Video", id="video"):
                video.build(choices)
            with gr.Tab("Compare", id="compare"):
                compare.build(choices)
            with gr.Tab("Model card", id="card") as card_tab:
                card_model, card_outputs = model_card.build(choices)
        card_tab.select(model_card.model_card, card_model, card_outputs, api_name="model_card_tab")
    return demo


def launch_kwargs() -> dict:
    """``Blocks.launch`` arguments shared by ``app.py``, the tests and the benchmark."""
    from ferhub.ui import classify, live, state

    return {
        "max_file_size": state.MAX_UPLOAD,
        "css": classify.CSS,
        "js": classify.EXAMPLES_JS,  # names the example thumbnails for screen readers
        "show_error": True,
        "state_session_capacity": state.SESSIONS_KEPT,
        "app_kwargs": {"routes": live.routes()},  # the webcam's frames (ferhub.ui.live)
    }
