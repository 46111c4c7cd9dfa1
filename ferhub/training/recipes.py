"""Recipes: the shipped ones in :mod:`ferhub.recipes` (or any ``.py`` file), their variants, ``--set``
overrides
and the ``--tiny`` smoke-test shrink.

A recipe module defines ``RECIPE`` (a dict of :class:`TrainConfig` settings) and optionally ``VARIANTS`` (name
-> settings that replace RECIPE's, each with a one-line ``description``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import pkgutil
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from ferhub.training.settings import SETTING_TYPES, RecipeError, TrainConfig


def list_recipes() -> list[str]:
    """Names of the recipes that ship with ferhub (modules of :mod:`ferhub.recipes`)."""
    import ferhub.recipes

    return sorted(m.name for m in pkgutil.iter_modules(ferhub.recipes.__path__) if not m.name.startswith("_"))


def _recipe_module(name: str) -> tuple[ModuleType, str]:
    """The recipe module and its short name: a shipped recipe by name, or a ``.py`` file by path."""
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise RecipeError(f"recipe file {path} not found")
        spec = importlib.util.spec_from_file_location(f"ferhub_recipe_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module, path.stem
    if name not in list_recipes():
        raise RecipeError(
            f"no recipe {name!r}; known recipes: {', '.join(list_recipes())} (or give a path to a .py file)"
        )
    return importlib.import_module(f"ferhub.recipes.{name}"), name


def load_recipe(name: str, variant: str | None = None) -> tuple[TrainConfig, dict[str, dict[str, Any]]]:
    """A recipe by name (``ferhub/recipes/NAME.py``) or ``.py`` path; returns its config (variant applied) and
    its variants."""
    module, stem = _recipe_module(name)
    recipe = dict(getattr(module, "RECIPE", {}))
    if not recipe:
        raise RecipeError(f"recipe {stem!r} defines no RECIPE dict")
    variants: dict[str, dict[str, Any]] = dict(getattr(module, "VARIANTS", {}))
    if variant is not None:
        if variant not in variants:
            raise RecipeError(f"recipe {stem!r} has no variant {variant!r}; variants: {sorted(variants)}")
        recipe = merge(recipe, variants[variant])
    recipe.setdefault("recipe", stem if variant is None else f"{stem}:{variant}")
    return TrainConfig.from_dict(recipe, source=f"recipe {stem!r}"), variants


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict update (an override of ``augment.hflip`` keeps the other augment settings)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_overrides(cfg: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """``key=value`` settings (``lr=0.01``, ``augment.hflip=0.5``, ``model_args={"drop_rate": 0.3}``).

    Values are parsed as JSON when they parse, else kept as strings; a text setting keeps the text as typed
    (``init=2024.pt``, ``recipe=001``). The result is validated as a whole (:meth:`TrainConfig.validate`), so
    a value of the wrong type or out of range is refused here, before any data loads.
    """
    data = cfg.to_dict()
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if _is_text_setting(key.strip()) and value is not None and not isinstance(value, str):
            value = raw  # JSON would turn "001" into the number 1
        *parents, leaf = key.strip().split(".")
        target = data
        for p in parents:
            target = target.setdefault(p, {})
            if not isinstance(target, dict):
                raise RecipeError(f"--set {key}: {p!r} is not a group of settings")
        target[leaf] = value
    return TrainConfig.from_dict(data, source="--set")


def _is_text_setting(key: str) -> bool:
    """Whether ``key`` is a top-level setting that holds text (``str`` or ``str | None``)."""
    return SETTING_TYPES.get(key) in (str, str | None)


def tiny(cfg: TrainConfig) -> TrainConfig:
    """The recipe shrunk for smoke tests: its tiny registered model, <= 2 epochs, small batches, no pretrained
    weights, at most 2 repeats; losses, schedule, augmentations, k-fold and the protocol stay as they are.

    The tiny model gets every ``model_args`` of the recipe but ``pretrained``; one it does not take is refused
    (:class:`RecipeError`) rather than dropped, as the smoke test would then train another variant (seed 000's
    Net B without ``dal=False`` is Net B_DAL)."""
    from ferhub.models import get_entry

    entry = get_entry(cfg.tiny_model)
    params = set(inspect.signature(entry.builder).parameters)
    args = {k: v for k, v in cfg.model_args.items() if k != "pretrained"}
    lacking = sorted(k for k in args if k not in params)
    if lacking:
        given = ", ".join(f"{k}={json.dumps(args[k])}" for k in lacking)
        raise RecipeError(
            f"--tiny: the tiny model {cfg.tiny_model!r} takes no model_args {given} that {cfg.model!r} is"
            " given, so the smoke test would train another variant. Fix: --set tiny_model=NAME (a tiny model"
            " that takes them), or leave them out with --set 'model_args={...}'"
        )
    overrides = {
        k: v for k, v in cfg.config_overrides.items() if k not in ("input_size", "channels", "mean", "std")
    }
    return TrainConfig.from_dict(
        {
            **cfg.to_dict(),
            "model": cfg.tiny_model,
            "model_args": args,
            "config_overrides": overrides,
            "init": None,
            "trainable_stages": cfg.trainable_stages
            if cfg.trainable_stages is None
            else min(cfg.trainable_stages, 1),
            "epochs": min(cfg.epochs, 2),
            "repeats": min(cfg.repeats, 2),
            "batch_size": min(cfg.batch_size, 8),
            "warmup_epochs": min(cfg.warmup_epochs, 0.5),
            "step_epochs": 1,
        },
        source="--tiny",
    )
