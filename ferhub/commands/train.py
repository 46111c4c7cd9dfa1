"""``ferhub train``: train a recipe and write (and optionally push) the model repo (same code as train/train.py)."""

from __future__ import annotations

import argparse

HELP = "train a FER model from a recipe and write its model repo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ferhub.training import add_arguments as add

    add(parser)


def run(args: argparse.Namespace) -> int:
    from ferhub.training import main

    main(args)
    return 0
