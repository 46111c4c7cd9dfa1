"""Train a ferhub FER model from a recipe and write (and optionally push) its model repo.

    python train/train.py --recipe seed002_kaskun --data fer2013.csv --test-split test
    torchrun --nproc_per_node 4 train/train.py --recipe ferhub_best --data fer2013.csv --push-to-hub org/name

The same code runs as ``ferhub train`` (:mod:`ferhub.commands.train`); the recipes ship in ``ferhub/recipes/``
and ``train/README.md`` is the log of how to train each one.
"""

from __future__ import annotations

import sys

from ferhub.cli import main

if __name__ == "__main__":
    # through the CLI: its exit codes, one-line errors and Ctrl-C handling, exactly as `ferhub train`
    sys.exit(main(["train", *sys.argv[1:]]))
