"""Model card tab: the selected model's card, labels, preprocessing, licence and provenance."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import gradio as gr

from ferhub.ui import state, visitors

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


def split_card(text: str) -> tuple[dict[str, Any], str]:
    """A card's YAML front matter (parsed) and its Markdown body."""
    import yaml

    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        meta = {}
    return (meta if isinstance(meta, dict) else {}), text[match.end() :]


def _card_context(folder: Path) -> dict[str, Any]:
    path = folder / "card.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = {}
    return data if isinstance(data, dict) else {}


def _source(model_id: str) -> str:
    return "Hugging Face Hub" if visitors.looks_like_hub_id(model_id) else "a folder on the server"


@visitors.action("model_card", retry="Try again, or another model.")
def model_card(model_id: str | None) -> tuple[str, list[list[str]]]:
    """The card's Markdown body and a table of facts (labels, input, licence, provenance) for a model id."""
    from ferhub.hub import BUNDLED_DIR

    model_id = visitors.model_name(model_id) or state.default_model()
    model = state.cache().model(model_id)  # through the server's rules for what visitors may load
    folder = Path(model.repo_path)
    config = model.config
    card_path = folder / "README.md"
    meta, body = split_card(card_path.read_text(encoding="utf-8")) if card_path.is_file() else ({}, "")
    if not body.strip():
        body = f"*{model_id} has no model card (README.md); `ferhub.hub.render_card(folder)` writes one.*"
    context = _card_context(folder)
    licence = meta.get("license") or context.get("license") or "not stated"
    if licence == "other" and meta.get("license_name"):
        licence = f"other ({meta['license_name']})"
    # provenance: the first paragraph of the card context's account (the card body has the rest)
    source = (context.get("provenance") or "").strip().split("\n\n")[0] or meta.get("base_model") or "-"
    datasets = meta.get("datasets") or context.get("datasets") or "-"
    params = sum(p.numel() for p in model.parameters())
    # an ensemble's own config only frames the crop its explanations are drawn on: each member crops and
    # normalises the face its own way, so the facts list the members'
    configs = [m.config for m in getattr(model, "members", None) or [model]]
    facts = [
        ["model", model_id],
        ["architecture", config.architecture],
        ["labels", ", ".join(config.labels)],
        ["input", "; ".join(_input(c) for c in configs)],
        ["normalisation", "; ".join(_normalisation(c) for c in configs)],
        ["face crop", "; ".join(_crop(c) for c in configs)],
        ["parameters", f"{params:,}"],
        ["licence", str(licence)],
        ["provenance", source if isinstance(source, str) else ", ".join(map(str, source))],
        ["training data", datasets if isinstance(datasets, str) else ", ".join(map(str, datasets))],
        # where the repo came from, never the server's path to it
        ["source", "bundled with ferhub" if folder.parent == BUNDLED_DIR else _source(model_id)],
    ]
    return body, facts


def _input(config: Any) -> str:
    return f"{config.input_size}x{config.input_size} {'gray' if config.channels == 1 else 'RGB'}"


def _normalisation(config: Any) -> str:
    # float32 values read back as float64 (0.48149803921568624): four decimals say them
    return f"mean {[round(v, 4) for v in config.mean]}, std {[round(v, 4) for v in config.std]}"


def _crop(config: Any) -> str:
    return f"margin {config.crop_margin:g}, square {config.crop_square}, aligned {config.align}"


def build(models: list[str]) -> tuple[gr.Dropdown, list[gr.components.Component]]:
    """Lay out the Model card tab; returns the model picker and the outputs of :func:`model_card`."""
    with gr.Row():
        model = gr.Dropdown(models, value=models[0], allow_custom_value=True, label="Model", scale=3)
        show = gr.Button("Show card", scale=1)
    facts = gr.Dataframe(
        headers=["property", "value"], interactive=False, label="Facts", elem_id="card-facts", wrap=True
    )
    card = gr.Markdown(elem_id="card-body")
    show.click(model_card, model, [card, facts], api_name="model_card")
    model.change(model_card, model, [card, facts], api_name="model_card_on_change")
    return model, [card, facts]
