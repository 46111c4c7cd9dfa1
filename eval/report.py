"""Standalone HTML report: ``python eval/report.py --results MODEL_OR_FILE ... --out report.html``.

The same code as ``ferhub report`` (see ``ferhub report --help``); the page embeds plotly and opens offline.
"""

from __future__ import annotations

import sys

from ferhub.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
