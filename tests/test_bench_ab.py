"""bench/ab.py's copy of a revision's package: importable beside ferhub, and all of it its own code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the git checkout")
def test_old_package_imports_itself_not_the_working_tree(tmp_path: Path, bench_script) -> None:
    ab = bench_script("ab")
    ab.old_package("HEAD", tmp_path)
    package = tmp_path / "ferhub_old"
    assert (package / "__init__.py").exists() and not (tmp_path / "ferhub").exists()
    code = (
        "import sys, ferhub_old; from ferhub_old import Predictor; import ferhub_old._mtcnn_onnx;"
        " tree = any(m.split('.')[0] == 'ferhub' for m in sys.modules);"
        " print(Predictor.__module__, ferhub_old.__file__, tree)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    # the lazy attribute resolves to the copy's module, the copy's files are the ones imported, and the
    # working tree's package is never imported on the way
    assert out == ["ferhub_old.predict", str(package / "__init__.py"), "False"]
