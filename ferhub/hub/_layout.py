"""What a model repo folder holds and where ferhub's own copies live: file names, bundled models, template."""

from __future__ import annotations

import re
from pathlib import Path

from ferhub.config import CONFIG_NAME, ModelConfig
from ferhub.errors import ConfigError, ModelLoadError
from ferhub.eval_results import FILE_NAME as EVAL_RESULTS_NAME

WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
CARD_CONTEXT_NAME = "card.json"
REPO_FILES: tuple[str, ...] = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, CARD_CONTEXT_NAME, EVAL_RESULTS_NAME)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
ENSEMBLE = "ensemble"  # an architecture with no weights of its own: its builder loads its members

_PACKAGE = Path(__file__).resolve().parent.parent
BUNDLED_DIR = _PACKAGE / "bundled"
BUNDLED_ORG = "ferhub"
DEFAULT_MODEL = "ferhub/fer-mini-xception"
TEMPLATES_DIR = _PACKAGE / "templates"
# The card template lives in the top-level model_cards/; ferhub/templates/model_card.md is a symlink to it, so
# that a wheel (setuptools copies what a symlink points to) carries the template too.
TEMPLATE_PATHS = (
    _PACKAGE.parent / "model_cards" / "template.md",  # a source checkout
    TEMPLATES_DIR / "model_card.md",  # an installed wheel
)


# ModelConfig.load's own hints: "...; re-save the model with ferhub.hub.save", "(see ferhub.hub.save)", ...
_RESAVE_HINT = re.compile(r"\s*(?:;\s*|\()(?:re-save the model with|see) ferhub\.hub\.save\)?")


def without_resave_hint(text: str) -> str:
    """``ModelConfig.load``'s message without its own "re-save with ferhub.hub.save" hint, for callers that
    end the message with the fix that fits (a local folder's, or a Hub model's), so no advice comes twice."""
    return _RESAVE_HINT.sub("", text).rstrip()


def read_config(folder: Path) -> ModelConfig:
    """The folder's ``config.json``; :class:`ModelLoadError` saying how to fix it when it is unusable."""
    try:
        return ModelConfig.load(folder)
    except ConfigError as e:
        raise ModelLoadError(
            f"{without_resave_hint(str(e))}. Fix: config.json is written by ferhub.hub.save; re-save the "
            "model or correct the file (keys: see ferhub.config.ModelConfig)"
        ) from e


def list_bundled() -> list[str]:
    """Ids of the models that ship inside the ferhub package (``ferhub/<name>``), sorted; offline."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(f"{BUNDLED_ORG}/{d.name}" for d in BUNDLED_DIR.iterdir() if (d / CONFIG_NAME).is_file())


def bundled_folder(name: str) -> Path | None:
    """The folder of bundled model ``name`` (``ferhub/<name>`` or ``<name>``), ``None`` if there is none."""
    bare = name.removeprefix(f"{BUNDLED_ORG}/")
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", bare):  # a plain name, never '..' or a path
        return None
    folder = BUNDLED_DIR / bare
    return folder if (folder / CONFIG_NAME).is_file() else None
