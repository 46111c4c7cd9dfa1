"""The ferhub model repo: one folder, locally or on the Hugging Face Hub, that the same code reads.

A repo holds exactly these files (:data:`REPO_FILES`):

- ``config.json``: architecture, its arguments, labels, preprocessing (:class:`~ferhub.config.ModelConfig`);
- ``model.safetensors``: the weights (absent for an ``ensemble``, whose members carry their own);
- ``README.md``: the model card, rendered from ``model_cards/template.md`` by :func:`render_card`;
- ``card.json``: the card's prose context (licence, provenance, recipe, ...), kept so that the card can be
  re-rendered from the folder alone when ``eval_results.json`` changes;
- ``eval_results.json`` (optional): evaluation results (:mod:`ferhub.eval_results` owns the format).

>>> import ferhub.hub as hub
>>> model = hub.load("ferhub/fer-mini-xception")  # bundled, offline       # doctest: +SKIP
>>> model = hub.load("someone/fer-resnet18@v1.0")  # Hub id at a revision  # doctest: +SKIP
>>> hub.save(model, "out/my-model", card_context={"license": "mit"})       # doctest: +SKIP
>>> hub.push("out/my-model", "someone/my-model")                           # doctest: +SKIP

Pickles are never read: weights load from ``model.safetensors`` only, and an outside PyTorch checkpoint goes
through :func:`import_torch_checkpoint` (``torch.load(weights_only=True)``), then :func:`save`.

The parts, one job each: ``_layout`` (file names, bundled models), ``_remote`` (Hub probe and downloads),
``_weights`` (safetensors in and out, strict loading), ``_repo`` (resolve, save, load and its cache, check),
``card`` (the model card), ``_push`` (uploads). This module is their public face.
"""

from __future__ import annotations

from ferhub.errors import EvalResultsError, HubConnectionError, ModelLoadError
from ferhub.eval_results import read as read_eval_results
from ferhub.hub._layout import (
    BUNDLED_DIR,
    BUNDLED_ORG,
    CARD_CONTEXT_NAME,
    CARD_NAME,
    DEFAULT_MODEL,
    ENSEMBLE,
    EVAL_RESULTS_NAME,
    PICKLE_SUFFIXES,
    REPO_FILES,
    TEMPLATE_PATHS,
    WEIGHTS_NAME,
    list_bundled,
)
from ferhub.hub._push import push, push_files
from ferhub.hub._remote import HUB_PROBE_TIMEOUT_S
from ferhub.hub._repo import check_repo, clear_cache, load, resolve, save
from ferhub.hub._weights import import_torch_checkpoint, unwrap
from ferhub.hub.card import CARD_CONTEXT_KEYS, card_is_current, render_card

__all__ = [
    "BUNDLED_DIR",
    "BUNDLED_ORG",
    "CARD_CONTEXT_KEYS",
    "CARD_CONTEXT_NAME",
    "CARD_NAME",
    "DEFAULT_MODEL",
    "ENSEMBLE",
    "EVAL_RESULTS_NAME",
    "HUB_PROBE_TIMEOUT_S",
    "PICKLE_SUFFIXES",
    "REPO_FILES",
    "TEMPLATE_PATHS",
    "WEIGHTS_NAME",
    "EvalResultsError",
    "HubConnectionError",
    "ModelLoadError",
    "card_is_current",
    "check_repo",
    "clear_cache",
    "import_torch_checkpoint",
    "list_bundled",
    "load",
    "push",
    "push_files",
    "read_eval_results",
    "render_card",
    "resolve",
    "save",
    "unwrap",
]
