"""The one default-device rule: CUDA when torch sees a GPU, else the CPU.

Every part of ferhub that picks a device on its own (the Predictor, the app, training, evaluation) asks
:func:`default_device`, and :func:`resolve_device` turns a user's choice into a checked ``torch.device``;
:func:`check_device` checks a command line's ``--device`` before anything is loaded.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ferhub.errors import DeviceError

if TYPE_CHECKING:
    import torch


@functools.cache
def installed_torch() -> dict[str, object]:
    """The installed torch's ``version.py`` (``__version__``, ``cuda``, ...), read without importing torch
    (~1.2 s); empty when it cannot be read."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return {}
    try:
        text = (Path(next(iter(spec.submodule_search_locations))) / "version.py").read_text()
    except OSError:
        return {}
    info: dict[str, object] = {}
    for name, value in re.findall(r"^(\w+)(?:: [^=\n]+)? = (.+)$", text, re.MULTILINE):
        with contextlib.suppress(ValueError, SyntaxError):
            info[name] = ast.literal_eval(value)
    return info


def _torch_has_cuda() -> bool:
    """Whether torch was built with CUDA: a CPU build never sees a GPU, so a CPU-only process need not
    import torch to pick its device."""
    if "torch" not in sys.modules and "cuda" in installed_torch() and installed_torch()["cuda"] is None:
        return False
    import torch

    return torch.backends.cuda.is_built()


def default_device(local_rank: int | None = None) -> str:
    """``"cuda"`` when torch sees a CUDA GPU, else ``"cpu"``; ``"cuda:<local_rank>"`` for one process of a
    ``torchrun`` job (one GPU per process; CPU processes share the CPU)."""
    if not _torch_has_cuda():
        return "cpu"
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return "cuda" if local_rank is None else f"cuda:{local_rank}"


DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"  # what every command's --device takes (its help says the same)
AUTO = "auto"  # the default device (default_device), by name: train's default, taken by every command
_COMMAND_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


def check_device(device: str) -> str:
    """``device`` when it is one a command's ``--device`` takes (:data:`DEVICE_CHOICES`); else
    :class:`~ferhub.errors.DeviceError`. Read without importing torch, so a typo fails at once.

    >>> check_device("cuda:1")
    'cuda:1'
    """
    if not _COMMAND_DEVICE.fullmatch(device):
        # the one wording of a --device no command takes, before anything loads (train's too)
        raise DeviceError(f"--device must be {DEVICE_CHOICES}, got {device!r}")
    return device


def device_name(device: str | torch.device | None) -> str:
    """What :func:`resolve_device` resolves ``device`` to, as a string; ``"cpu"`` (given or the default) is
    answered without importing torch."""
    if device is None:
        device = default_device()
    return "cpu" if device == "cpu" else str(resolve_device(device))


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` (``None`` or ``"auto"``: :func:`default_device`) as a ``torch.device``; a string torch
    does not read as a device (``"tpu"``), a device type other than CPU, CUDA and MPS (``"xpu"``), a CUDA or
    MPS device torch does not see and a GPU number past the last are refused with
    :class:`~ferhub.errors.DeviceError`.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    if device == AUTO:  # train's --device default, taken from Python too
        device = None
    try:
        dev = torch.device(device if device is not None else default_device())
    except RuntimeError as e:  # torch's own message lists ~20 device types ferhub never runs on
        raise DeviceError(f"unknown device {str(device)!r}: use {DEVICE_CHOICES}") from e
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {str(device)!r} was asked for but torch sees no Apple GPU (MPS); use cpu")
    if dev.type not in ("cpu", "cuda", "mps"):
        # a type torch names but ferhub does not run on ("xpu", "meta"): refused here, not by a bare
        # RuntimeError from the first tensor moved there (or, on "meta", by results that hold no numbers);
        # an Apple GPU is taken from Python where torch has one, as before
        raise DeviceError(f"device {str(device)!r} is not one ferhub runs on: use {DEVICE_CHOICES}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        # the CLI prints this message as it is: its option's words, and the Python argument's
        raise DeviceError(
            f"device {str(dev)!r} was asked for but torch sees no CUDA GPU; use --device cpu on the command"
            " line, device='cpu' from Python"
        )
    # torch accepts any index here and fails only at the first tensor moved there, deep in a model
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(
            f"device {str(dev)!r} was asked for but torch sees {torch.cuda.device_count()} CUDA GPU(s),"
            " numbered from 0; use --device cuda:0 on the command line, device='cuda:0' from Python"
        )
    return dev


def autograd_batch(x: torch.Tensor) -> torch.Tensor:
    """``x`` in torch's default (contiguous) memory format: how every batch handed to autograd must be laid
    out on the CPU. Free when ``x`` already is.

    oneDNN's ``brgconv_strided`` backward (a 1x1 stride-2 convolution with few input channels, NHWC)
    corrupts the heap on AVX-512 CPUs, at any batch size, in train or eval mode, whenever the module *or the
    batch* is channels-last. A channels-last batch comes easily: an RGB ``(B, H, W, 3)`` tensor permuted to
    ``(B, 3, H, W)`` is one. Modules handed to autograd stay contiguous too (see
    :func:`ferhub.predict.inference_copy`); channels-last training is for CUDA only.
    """
    return x.contiguous()


def cpu_cores() -> int:
    """CPU cores this process may run on: its affinity mask (a container's or ``taskset``'s share), else the
    machine's count."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_name() -> str:
    """The CPU's model and core count, e.g. ``"AMD EPYC, 2 cores"``: the line every benchmark table states."""
    import os
    import platform
    from pathlib import Path

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"
