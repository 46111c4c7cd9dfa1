"""Gradio's per-session state made from the launch config (``ferhub.ui.sessions``): the same values as
Gradio's own, each session's its own, and the one the app's server builds."""

from __future__ import annotations

import json
from collections.abc import Iterator

import gradio as gr
import pytest
import servers
from gradio import state_holder

from ferhub.hub import DEFAULT_MODEL
from ferhub.ui import build_app, sessions


@pytest.fixture
def launched(request: pytest.FixtureRequest) -> Iterator[gr.Blocks]:
    """A Blocks launched on a free port with the app's launch arguments (``request.param`` builds it)."""
    demo = request.param()
    with servers.launched(demo):
        yield demo


def small_blocks() -> gr.Blocks:
    with gr.Blocks() as demo:
        with gr.Tabs(), gr.Tab("one"):
            image = gr.Image(type="filepath", label="Photo")
            choice = gr.Dropdown(["a", "b"], value="a", allow_custom_value=True)
            count = gr.State(0)
        with gr.Tab("two"):
            gallery, html, number = gr.Gallery(columns=3), gr.HTML("<b>x</b>"), gr.Number()
        gr.Button().click(lambda n, c: (n + 1, n + 1), [count, choice], [count, number], api_name="count")
        gr.Button().click(lambda i: None, image, gallery)
        del html
    return demo


@pytest.mark.parametrize(
    "launched", [small_blocks, lambda: build_app([DEFAULT_MODEL])], ids=["small", "app"], indirect=True
)
def test_lean_session_state_holds_gradios_values(launched: gr.Blocks) -> None:
    """The same per-block configs as Gradio's ``SessionState`` makes, in the same order, for a small Blocks
    and for the app itself; a session's values written into them stay that session's."""
    gradios, lean = sessions._GradioSessionState(launched), sessions.LeanSessionState(launched)
    assert list(lean.config_values) == list(gradios.config_values)
    assert lean.config_values == gradios.config_values
    assert list(lean.components) == list(gradios.components)

    key = next(k for k, c in lean.config_values.items() if "value" in c.get("props", {}))
    launched_props = next(c["props"] for c in launched.config["components"] if c["id"] == key)
    before = json.dumps(launched_props, sort_keys=True, default=str)
    lean._update_value_in_config(key, "this session's")
    other = sessions.LeanSessionState(launched)
    assert lean.config_values[key]["props"]["value"] == "this session's"
    assert other.config_values[key] == gradios.config_values[key]
    assert json.dumps(launched_props, sort_keys=True, default=str) == before


def test_a_block_missing_from_the_launch_config_gets_gradios_config() -> None:
    """Before launch (no ``config`` yet) or for a block the launch config lacks, the config is made as
    Gradio makes it."""
    demo = small_blocks()
    dropdown = next(b for b in demo.blocks.values() if isinstance(b, gr.Dropdown))
    demo.config = {
        **demo.config,
        "components": [c for c in demo.config["components"] if c["id"] != dropdown._id],
    }
    assert sessions.LeanSessionState(demo).config_values == sessions._GradioSessionState(demo).config_values
    del demo.config
    assert sessions.LeanSessionState(demo).config_values == sessions._GradioSessionState(demo).config_values


def test_the_app_installs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """``build_app`` has Gradio's state holders build lean session states (the plain-HTTP calls that get them
    are in ``test_app_client.test_sessions_kept_are_bounded_under_api_calls``)."""
    monkeypatch.setattr(state_holder, "SessionState", sessions._GradioSessionState)  # undone after the test
    build_app([DEFAULT_MODEL])
    assert state_holder.SessionState is sessions.LeanSessionState
