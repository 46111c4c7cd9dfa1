"""``ferhub train``: train a recipe and write (and optionally push) the model repo (same code as train/train.py)."""

from __future__ import annotations

import argparse
import sys

HELP = "train a FER model from a recipe and write its model repo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ferhub.training import add_arguments as add

    add(parser)


def run(args: argparse.Namespace) -> int:
    from ferhub.data import DataSourceError
    from ferhub.training import CheckpointError, RecipeError, main

    try:
        main(args)
    except (RecipeError, CheckpointError, DataSourceError) as e:  # the message says what to change
        print(f"ferhub train: error: {e}", file=sys.stderr)
        return 2
    return 0
