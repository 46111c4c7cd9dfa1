"""The model registry: ``register_model`` / ``create_model`` / ``list_models``.

Each registered builder takes ``num_classes`` plus its own keyword arguments and returns an ``nn.Module``
mapping a normalised ``(B, C, H, W)`` batch to ``(B, num_classes)`` logits. Its default preprocessing
(input size, channels, mean/std, crop) is registered beside it; ``create_model`` attaches the resulting
:class:`~ferhub.config.ModelConfig` as ``model.config`` so the model can be saved and used without anything
else re-declaring it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ferhub.config import ModelConfig
from ferhub.errors import UnknownModelError
from ferhub.labels import FER7


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    fn: Callable[..., nn.Module] | None = None, **defaults: Any
) -> Callable[..., nn.Module] | Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder under its function name, with its default preprocessing as keyword arguments.

    >>> @register_model(input_size=48, channels=1, mean=(0.5,), std=(0.5,))  # doctest: +SKIP
    ... def my_net(num_classes: int = 7) -> nn.Module: ...
    """

    def wrap(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if f.__name__ in _REGISTRY:
            raise ValueError(f"a model named {f.__name__!r} is already registered")
        doc = (f.__doc__ or "").strip().splitlines()
        _REGISTRY[f.__name__] = ModelEntry(f.__name__, f, dict(defaults), doc[0] if doc else "")
        return f

    return wrap(fn) if fn is not None else wrap


def _ensure_families() -> None:
    # Families register on import; importing them here keeps `import ferhub` free of model code.
    import ferhub.models  # noqa: F401


def get_entry(name: str) -> ModelEntry:
    _ensure_families()
    if name not in _REGISTRY:
        raise UnknownModelError(
            f"unknown architecture {name!r}; registered: {', '.join(sorted(_REGISTRY))}. "
            "A model repo's config.json names its architecture; to load a saved model use ferhub.load(ID|PATH)."
        )
    return _REGISTRY[name]


def list_models(pattern: str = "*") -> list[str]:
    """Registered architecture names matching a glob pattern, sorted."""
    _ensure_families()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def create_model(
    name: str,
    labels: Sequence[str] = FER7,
    *,
    config_overrides: dict[str, Any] | None = None,
    **model_args: Any,
) -> nn.Module:
    """Build a registered architecture for ``labels`` and attach its :class:`ModelConfig` as ``model.config``.

    >>> m = create_model("mini_xception")
    >>> m.config.input_size, m.config.labels[:2]
    (64, ('angry', 'disgust'))
    """
    entry = get_entry(name)
    cfg_kwargs = {**entry.defaults, **(config_overrides or {})}
    config = ModelConfig(architecture=name, labels=tuple(labels), model_args=dict(model_args), **cfg_kwargs)
    return build_from_config(config)


def build_from_config(config: ModelConfig) -> nn.Module:
    """Rebuild the (untrained) module a config describes, with the config attached."""
    entry = get_entry(config.architecture)
    try:
        model = entry.builder(num_classes=config.num_classes, **config.model_args)
    except TypeError as e:
        raise TypeError(
            f"cannot build {config.architecture!r} with model_args {config.model_args}: {e}"
        ) from e
    model.config = config
    return model
