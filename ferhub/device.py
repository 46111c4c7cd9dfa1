"""The one default-device rule: CUDA when torch sees a GPU, else the CPU.

Every part of ferhub that picks a device on its own (the Predictor, the app, training, evaluation) asks
:func:`default_device`, and :func:`resolve_device` turns a user's choice into a checked ``torch.device``.
"""

from __future__ import annotations

import torch

from ferhub.errors import DeviceError


def default_device(local_rank: int | None = None) -> str:
    """``"cuda"`` when torch sees a CUDA GPU, else ``"cpu"``; ``"cuda:<local_rank>"`` for one process of a
    ``torchrun`` job (one GPU per process; CPU processes share the CPU)."""
    if not torch.cuda.is_available():
        return "cpu"
    return "cuda" if local_rank is None else f"cuda:{local_rank}"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` (``None``: :func:`default_device`) as a ``torch.device``; a CUDA device without a GPU is
    refused with :class:`~ferhub.errors.DeviceError`.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    dev = torch.device(device if device is not None else default_device())
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {str(dev)!r} was asked for but torch sees no CUDA GPU; use --device cpu")
    return dev


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
