"""The model registry: ``register_model`` / ``create_model`` / ``list_models``.

Each registered builder takes ``num_classes`` plus its own keyword arguments and returns an ``nn.Module``
mapping a normalised ``(B, C, H, W)`` batch to ``(B, num_classes)`` logits. Its default preprocessing
(input size, channels, mean/std, crop) is registered beside it; ``create_model`` attaches the resulting
:class:`~ferhub.config.ModelConfig` as ``model.config`` so the model can be saved and used without anything
else re-declaring it.
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import inspect
import json
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ferhub.config import ModelConfig, brief, preprocessing_problem
from ferhub.errors import ConfigError, UnknownModelError
from ferhub.labels import FER7
from ferhub.models import _limits


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
        if problem := preprocessing_problem(defaults):  # else a typo shows only at the first create_model
            raise ConfigError(f"register_model({f.__name__}): the default preprocessing {problem}")
        # the first paragraph, one line
        summary = " ".join((f.__doc__ or "").strip().split("\n\n")[0].split())
        _REGISTRY[f.__name__] = ModelEntry(f.__name__, f, dict(defaults), summary)
        return f

    return wrap(fn) if fn is not None else wrap


def _ensure_families() -> None:
    # Families register on import; importing them here keeps `import ferhub` free of model code.
    import ferhub.models  # noqa: F401


def get_entry(name: str) -> ModelEntry:
    _ensure_families()
    if name not in _REGISTRY:
        raise UnknownModelError(
            f"unknown architecture {name!r}; registered: {', '.join(sorted(_REGISTRY))}. A model repo's"
            " config.json names its architecture; to load a saved model use ferhub.load(ID|PATH)."
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
    if problem := preprocessing_problem(config_overrides or {}):
        raise ConfigError(f"create_model({name!r}): config_overrides {problem}")
    if isinstance(labels, Iterable) and not isinstance(labels, str):  # ModelConfig refuses one string by name
        labels = tuple(labels)
    cfg_kwargs = {**entry.defaults, **(config_overrides or {})}
    config = ModelConfig(architecture=name, labels=labels, model_args=dict(model_args), **cfg_kwargs)
    return build_from_config(config)


ENSEMBLE = "ensemble"  # builds by loading other repos: its members are checked as they load
MAX_NESTING = 4  # ensembles of ensembles, at most this deep

_BUILDING: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("ferhub_building", default=())


class ModelArgsError(ConfigError):
    """``model_args`` the architecture's builder does not accept (unknown name or wrong type)."""


def _hint_accepts(hint: Any, value: Any) -> bool:
    """Whether a JSON ``value`` fits a builder's type hint; hints not understood here accept anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_hint_accepts(a, value) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list, Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(map(_hint_accepts, args, value))
        return not args or all(_hint_accepts(args[0], v) for v in value)
    return True


def _hint_text(hint: Any) -> str:
    return getattr(hint, "__name__", None) if isinstance(hint, type) else str(hint).replace("typing.", "")


def check_model_args(name: str, model_args: dict[str, Any]) -> None:
    """Every key of ``model_args`` is a keyword of ``name``'s builder and every value fits its type hint."""
    builder = get_entry(name).builder
    params = {p: v for p, v in inspect.signature(builder).parameters.items() if p != "num_classes"}
    takes_any = any(v.kind is inspect.Parameter.VAR_KEYWORD for v in params.values())
    unknown = sorted(k for k in model_args if k not in params) if not takes_any else []
    if unknown:
        accepted = ", ".join(p for p, v in params.items() if v.kind is not inspect.Parameter.VAR_KEYWORD)
        raise ModelArgsError(
            f"model_args {', '.join(brief(k, 30) for k in unknown[:5])} not accepted by {name!r}; model_args "
            f"must be keyword arguments the builder accepts: {accepted or 'none'}"
        )
    try:
        hints = typing.get_type_hints(builder)
    except Exception:  # unresolvable annotations: the builder checks its own arguments
        hints = {}
    for key, value in model_args.items():
        if key in hints and not _hint_accepts(hints[key], value):
            raise ModelArgsError(
                f"model_args[{key!r}] must be {_hint_text(hints[key])} for {name!r}, got {brief(value)}"
            )


@contextlib.contextmanager
def _building(config: ModelConfig) -> Iterator[None]:
    """Track the configs being built in this thread: an ensemble that lists itself must fail, not recurse."""
    stack = _BUILDING.get()
    key = json.dumps(config.to_dict(), sort_keys=True)
    if key in stack:
        raise ConfigError(
            f"ensemble {_members(config)} lists itself among its members (directly or through another "
            "ensemble). Fix: name only other models in model_args['members']"
        )
    if len(stack) >= MAX_NESTING:
        raise ConfigError(
            f"ensembles nest more than {MAX_NESTING} deep (at {_members(config)}). Fix: list the models "
            "themselves as members"
        )
    token = _BUILDING.set((*stack, key))
    try:
        yield
    finally:
        _BUILDING.reset(token)


def _members(config: ModelConfig) -> str:
    return brief(config.model_args.get("members", []), 100)


def _is_preset(config: ModelConfig, entry: ModelEntry) -> bool:
    """The registered input size and channels with default model_args: a size the test suite measures."""
    params = inspect.signature(entry.builder).parameters
    return (
        config.input_size == entry.defaults.get("input_size")
        and config.channels == entry.defaults.get("channels")
        and all(k in params and params[k].default == v for k, v in config.model_args.items())
    )


_MEASURED: dict[str, int] = {}  # activation bytes of configs already probed in this process


def build_from_config(config: ModelConfig) -> nn.Module:
    """Rebuild the (untrained) module a config describes, with the config attached.

    ``model_args`` are checked against the builder's signature first; then the weights are counted on the
    meta device and, once built, one face's activations are measured at ``input_size``
    (:mod:`ferhub.models._limits`): a network over the memory limit is refused before it is allocated.
    """
    entry = get_entry(config.architecture)
    check_model_args(config.architecture, config.model_args)
    with _building(config):
        if config.architecture == ENSEMBLE:
            model = _call_builder(entry, config, config.model_args)
        else:
            model = _build_sized(entry, config)
    model.config = config
    return model


def _call_builder(entry: ModelEntry, config: ModelConfig, model_args: dict[str, Any]) -> nn.Module:
    try:
        return entry.builder(num_classes=config.num_classes, **model_args)
    except TypeError as e:
        raise TypeError(
            f"cannot build {config.architecture!r} with model_args {brief(config.model_args, 200)}: {e}"
        ) from e
    except (ValueError, RuntimeError) as e:  # e.g. a negative width: torch's own words, one line
        raise ModelArgsError(
            f"cannot build {config.architecture!r} with model_args {brief(config.model_args, 200)} "
            f"({_limits.first_line(e)}). Fix: give values the architecture accepts"
        ) from e


def _build_sized(entry: ModelEntry, config: ModelConfig) -> nn.Module:
    what = f"{config.architecture!r} with model_args {brief(config.model_args, 80)}"
    # pretrained weights change no shape; the meta count must not go and read them
    meta_args = dict(config.model_args)
    if "pretrained" in inspect.signature(entry.builder).parameters:
        meta_args["pretrained"] = False
    params = _limits.meta_param_bytes(lambda: entry.builder(num_classes=config.num_classes, **meta_args))
    if params is not None:
        _limits.check_param_bytes(params, what)
    model = _call_builder(entry, config, config.model_args)
    weights = _limits.tensor_bytes(model)
    _limits.check_param_bytes(weights, what)
    if _is_preset(config, entry):
        return model
    limit = _limits.max_model_bytes()
    key = json.dumps([config.architecture, config.model_args, config.input_size, config.channels])
    if key not in _MEASURED:
        _MEASURED[key] = _limits.activation_bytes(model, config, limit - weights)
    elif weights + _MEASURED[key] > limit:  # measured under a larger limit earlier in this process
        raise _limits.too_large(what, weights + _MEASURED[key], limit)
    return model
