"""``ferhub`` subcommands: one module each, exposing ``add_arguments(parser)`` and ``run(args)``; their
one-line help lives in :data:`ferhub.cli.COMMANDS`."""

from __future__ import annotations

import argparse


def add_column_arguments(p: argparse.ArgumentParser) -> None:
    """``--image-column`` / ``--label-column``: which columns of a Hugging Face dataset to read."""
    p.add_argument("--image-column", default=None, help="datasets: the image column (default: found)")
    p.add_argument("--label-column", default=None, help="datasets: the label column (default: found)")


def device_error(device: str | None) -> str | None:
    """The line refusing a ``--device`` no command takes (``tpu``), or ``None``: checked before anything
    loads, so every command exits 2 (wrong arguments) for it."""
    from ferhub.device import check_device
    from ferhub.errors import DeviceError

    if device is None:
        return None
    try:
        check_device(device)
    except DeviceError as e:
        return str(e)
    return None
