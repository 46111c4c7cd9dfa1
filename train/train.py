"""Train a ferhub FER model from a recipe and write (and optionally push) its model repo.

    python train/train.py --recipe seed002_kaskun --data fer2013.csv --test-split test
    torchrun --nproc_per_node 4 train/train.py --recipe ferhub_best --data fer2013.csv --push-to-hub org/name

The same code runs as ``ferhub train``; everything lives in :mod:`ferhub.training` (recipes in
``train/recipes/``). The README's "how to train" log gives each recipe's exact command.
"""

from __future__ import annotations

import sys

from ferhub.commands.train import run
from ferhub.training import evaluate, get_args_parser, main, train_one_epoch

__all__ = ["evaluate", "get_args_parser", "main", "train_one_epoch"]

if __name__ == "__main__":
    sys.exit(run(get_args_parser().parse_args()))
