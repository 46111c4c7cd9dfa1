"""Every ferhub module's docstrings parse as doctests: a directive followed by free text (``# doctest: +SKIP
(needs PyPI)``) made doctest refuse the whole docstring, for ``python -m doctest`` and
``pytest --doctest-modules`` alike."""

from __future__ import annotations

import subprocess
import sys

# run in a fresh interpreter: importing every module (the app's, training's) must not change this one's state
_PARSE_ALL = """
import doctest, importlib, pkgutil, ferhub
names = ["ferhub"] + [m.name for m in pkgutil.walk_packages(ferhub.__path__, "ferhub.")]
finder, parsed, failed = doctest.DocTestFinder(), 0, []
for name in names:
    if name.rsplit(".", 1)[-1] == "__main__":
        continue  # runs the CLI when imported
    try:
        module = importlib.import_module(name)
    except ImportError:
        continue  # an optional dependency this installation lacks
    try:
        finder.find(module)
        parsed += 1
    except ValueError as e:
        failed.append(f"{name}: {e}")
print(parsed)
print("\\n".join(failed))
"""


def test_every_modules_docstrings_parse_as_doctests() -> None:
    run = subprocess.run([sys.executable, "-c", _PARSE_ALL], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    parsed, *failed = run.stdout.splitlines()
    assert [line for line in failed if line] == []
    assert int(parsed) > 50  # the walk found the package's modules
