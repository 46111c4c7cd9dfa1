"""What a model repo may cost before ferhub allocates it, and what its weights may hold.

A ``config.json`` decides how much memory its network takes (widths in ``model_args``, ``input_size``), so a
hostile or mistaken one could ask for terabytes. Before anything real is allocated the network is built on
the ``meta`` device (shapes only) and its parameters counted; after the real build, one face is pushed through
it with a guard that refuses any layer whose output would exceed what is left of the budget, before that
layer allocates. The budget, weights plus one face's activations, is :data:`DEFAULT_MAX_MODEL_MB` unless
``FERHUB_MAX_MODEL_MB`` raises it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ferhub.config import ModelConfig
from ferhub.errors import ConfigError, NonFiniteWeightsError

MAX_MODEL_MB_ENV = "FERHUB_MAX_MODEL_MB"
DEFAULT_MAX_MODEL_MB = 2048  # the largest registered network (NASNet-A Large at 331 px) needs ~1,350 MB
_MB = 2**20


class ModelTooLargeError(ConfigError):
    """A config whose network would need more memory than the limit allows."""


def max_model_bytes() -> int:
    """The memory budget for one model (weights + one face's activations), from ``FERHUB_MAX_MODEL_MB``."""
    raw = os.environ.get(MAX_MODEL_MB_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_MODEL_MB * _MB
    try:
        mb = float(raw)
    except ValueError:
        mb = float("nan")
    if not math.isfinite(mb) or mb <= 0:
        raise ConfigError(f"{MAX_MODEL_MB_ENV}={raw[:40]!r} must be a positive number of megabytes")
    return int(mb * _MB)


def too_large(what: str, need: float, limit: int) -> ModelTooLargeError:
    return ModelTooLargeError(
        f"{what} would need about {need / _MB:,.0f} MB, over the {limit / _MB:,.0f} MB limit for one model."
        " Fix: check input_size and the widths in model_args; if the model really is that large, raise the"
        f" limit with {MAX_MODEL_MB_ENV}=<MB>"
    )


def meta_param_bytes(build: Callable[[], nn.Module]) -> int | None:
    """Bytes of the parameters and buffers ``build()`` creates, counted on the meta device (nothing
    allocated).

    ``None`` when the builder cannot run on the meta device (it reads a file, say): the real build and the
    activation probe still bound it.
    """
    try:
        with torch.device("meta"):
            model = build()
    except Exception:  # a builder that needs real tensors; its real build reports its own errors
        return None
    return tensor_bytes(model)


def tensor_bytes(model: nn.Module) -> int:
    tensors = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def check_param_bytes(nbytes: int, what: str) -> None:
    limit = max_model_bytes()
    if nbytes > limit:
        raise too_large(f"{what}: its weights alone", nbytes, limit)


def _conv_output_numel(module: nn.modules.conv._ConvNd, x: torch.Tensor) -> int:
    """Elements of ``module(x)``, computed from shapes (``x`` is the layer's input)."""
    spatial = x.shape[2:] if x.dim() == len(module.kernel_size) + 2 else x.shape[1:]
    batch = x.shape[0] if x.dim() == len(module.kernel_size) + 2 else 1
    if isinstance(module.padding, str):
        pads = [0] * len(spatial) if module.padding == "valid" else None
    else:
        pads = list(module.padding)
    out = []
    for i, n in enumerate(spatial):
        if pads is None:  # "same"
            out.append(n)
        elif isinstance(module, nn.modules.conv._ConvTransposeNd):
            k, s, d = module.kernel_size[i], module.stride[i], module.dilation[i]
            out.append((n - 1) * s - 2 * pads[i] + d * (k - 1) + 1 + module.output_padding[i])
        else:
            k, s, d = module.kernel_size[i], module.stride[i], module.dilation[i]
            out.append(max((n + 2 * pads[i] - d * (k - 1) - 1) // s + 1, 0))
    return batch * module.out_channels * math.prod(out)


def activation_bytes(model: nn.Module, config: ModelConfig, budget: int) -> int:
    """Sum of the outputs of every layer for one face at the config's input size, refused past ``budget``.

    A convolution's output is computed from its input's shape before it runs, so a layer that would blow the
    budget is refused before it allocates; other layers never grow their input by much and are counted after.
    """
    total = 0
    limit = max_model_bytes()

    def before(module: nn.Module, args: tuple) -> None:
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if x is not None and isinstance(module, nn.modules.conv._ConvNd):
            need = _conv_output_numel(module, x) * x.element_size()
            if total + need > budget:
                raise too_large(_what(config), limit - budget + total + need, limit)

    def after(module: nn.Module, args: tuple, out: Any) -> None:
        nonlocal total
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
        if total > budget:
            raise too_large(_what(config), limit - budget + total, limit)

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    hooks = [h for m in leaves for h in (m.register_forward_pre_hook(before), m.register_forward_hook(after))]
    was_training = model.training
    x = torch.zeros(1, config.channels, config.input_size, config.input_size)
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    except ModelTooLargeError:
        raise
    except Exception as e:
        raise ConfigError(
            f"{config.architecture!r} with model_args {_brief_args(config.model_args)} cannot take a"
            f" {config.channels}-channel {config.input_size}x{config.input_size} input ({first_line(e)})."
            " Fix: input_size and channels must be what the network was built for"
        ) from e
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


def _what(config: ModelConfig) -> str:
    return (
        f"{config.architecture!r} at input_size {config.input_size} with model_args "
        f"{_brief_args(config.model_args)}"
    )


def _brief_args(args: Mapping[str, Any]) -> str:
    from ferhub.config import brief

    return brief(dict(args), 80)


def first_line(e: BaseException) -> str:
    line = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return line if len(line) <= 160 else line[:157] + "..."


def check_finite_weights(
    tensors: Mapping[str, torch.Tensor], source: str, error: type[Exception] = NonFiniteWeightsError
) -> None:
    """Raise ``error`` for a state dict holding NaN or infinity: such a model gives NaN for every face."""
    bad = [
        name
        for name, t in tensors.items()
        if (t.is_floating_point() or t.is_complex()) and t.numel() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        shown = ", ".join(bad[:3]) + (f" (+{len(bad) - 3} more)" if len(bad) > 3 else "")
        raise error(
            f"{source} holds NaN or infinite values in {shown}. Fix: the weights are corrupt or training "
            "diverged; re-save them from a good checkpoint"
        )
