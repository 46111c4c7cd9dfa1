"""``ferhub`` subcommands: one module each, exposing ``add_arguments(parser)`` and ``run(args)``; their
one-line help lives in :data:`ferhub.cli.COMMANDS`."""

from __future__ import annotations

import argparse


def add_column_arguments(p: argparse.ArgumentParser) -> None:
    """``--image-column`` / ``--label-column``: which columns of a Hugging Face dataset to read."""
    p.add_argument("--image-column", default=None, help="datasets: the image column (default: found)")
    p.add_argument("--label-column", default=None, help="datasets: the label column (default: found)")
