"""Time and memory of every hostile case of the test suite, printed as Markdown tables (the README quotes
them).

    python bench/hostile.py [--kinds]

Runs the cases of ``tests/test_hostile_models.py`` and ``tests/test_hostile_inputs.py`` the way the tests do
(one memory-limited child per module, ``tests/hostile.py``) and prints, per group of kinds, how many there
are, how each ended, and the slowest case and the largest rise of resident memory; ``--kinds`` adds a row per
case. The app's hostile requests (``tests/test_hostile_app.py``) are bounded by their tests the same way
(``pytest tests/test_hostile_app.py``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import tempfile
from collections import Counter
from pathlib import Path

from machine import print_table

from ferhub.device import cpu_name

TESTS = Path(__file__).resolve().parent.parent / "tests"
MODULES = {"model repos": "test_hostile_models", "images, paths, zips, CLI": "test_hostile_inputs"}


def main() -> int:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--kinds", action="store_true", help="also print a row per case")
    args = parser.parse_args()
    sys.path.insert(0, str(TESTS))
    from hostile import CASE_MEMORY_MB, CASE_SECONDS, kinds_of, run_cases

    print(f"\n**{cpu_name()}**, Python {platform.python_version()}, "
          f"`{' '.join(sys.argv)}`")  # fmt: skip
    # times here are bounds checked on a shared machine: the load says how busy it was
    print(f"machine load (1-min average) at start: {os.getloadavg()[0]:.2f}\n")
    rows, details = [], []
    with tempfile.TemporaryDirectory(prefix="ferhub-hostile-") as tmp:
        for group, name in MODULES.items():
            module = importlib.import_module(name)
            kinds = kinds_of(module)
            results = run_cases(name, kinds, Path(tmp) / name)
            got = [results[k] for k in kinds if k in results]
            ends = Counter(o.error or "result" for o in got)
            died = len(kinds) - len(got)
            slowest = max(got, key=lambda o: o.seconds)
            largest = max(got, key=lambda o: o.grew_mb)
            rows.append(
                (
                    group,
                    str(len(kinds)),
                    ", ".join(f"{n} {e}" for e, n in ends.most_common()) + (f", {died} died" if died else ""),
                    f"{slowest.seconds:.2f} s ({slowest.kind})",
                    f"{largest.grew_mb:.0f} MB ({largest.kind})",
                )
            )
            details += [
                (o.kind, o.error or "result", f"{o.seconds:.2f} s", f"{o.grew_mb:.0f} MB") for o in got
            ]
    bounds = (f"slowest (bound {CASE_SECONDS:.0f} s)", f"most memory (bound {CASE_MEMORY_MB:.0f} MB)")
    print_table(("kinds", "cases", "ended as", *bounds), rows)
    if args.kinds:
        print()
        print_table(("case", "ended as", "time", "memory"), details)
    return 0


if __name__ == "__main__":
    sys.exit(main())
