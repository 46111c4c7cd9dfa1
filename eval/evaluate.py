"""Evaluate models on labelled data: ``python eval/evaluate.py --model ID|PATH --data SOURCE [--split test]``.

The same code as ``ferhub evaluate`` (see ``ferhub evaluate --help``): metrics go into each model repo's
``eval_results.json`` and model card, per-image predictions and ``report.html`` into ``--out``.
"""

from __future__ import annotations

import sys

from ferhub.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
