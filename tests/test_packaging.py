"""The wheel and the sdist built from the working tree: the MIT licence text in both (``License-File``), the
sdist's tests complete (``conftest.py``, helper modules, fixtures and what they read beside the package: a
test that cannot be collected is worse than none), ``ferhub app``'s code in the wheel, no duplicate
requirement."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAME = "ferhub-0.1.0"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, set[str]]:
    """(wheel, sdist, the files git knows in the working tree) built offline from a copy of the working
    tree's files (tracked, and new ones not ignored), with the installed setuptools (no build isolation)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = {name for name in listed.split("\0") if name and (ROOT / name).exists()}
    tmp = tmp_path_factory.mktemp("packaging")
    src, dist = tmp / "src", tmp / "dist"
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name, follow_symlinks=False)
    built = []
    for hook in ("build_sdist", "build_wheel"):  # one process each, as `python -m build` runs them
        code = f"import sys; from setuptools import build_meta as b; print(b.{hook}(sys.argv[1]))"
        out = subprocess.run(
            [sys.executable, "-c", code, str(dist)], cwd=src, capture_output=True, text=True, check=True
        )
        built.append(dist / out.stdout.split()[-1])
    sdist, wheel = built
    return wheel, sdist, files


@pytest.mark.slow
def test_the_wheel_carries_the_licence_and_the_app_command(built) -> None:
    wheel, _, _ = built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read(f"{NAME}.dist-info/METADATA").decode()
        licence = z.read(f"{NAME}.dist-info/licenses/LICENSE").decode()
        entry_points = z.read(f"{NAME}.dist-info/entry_points.txt").decode()
    assert "Copyright (c) 2026 the ferhub authors" in licence and "MIT License" in licence
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata
    assert {"ferhub/ui/server.py", "ferhub/commands/app.py"} <= names
    assert "ferhub = ferhub.cli:main" in entry_points
    # tqdm is a base dependency: the train extra does not list it again
    assert [line for line in metadata.splitlines() if line.startswith("Requires-Dist: tqdm")] == [
        "Requires-Dist: tqdm>=4.66"
    ]


@pytest.mark.slow
def test_the_sdist_carries_the_licence_and_complete_tests(built) -> None:
    _, sdist, files = built
    with tarfile.open(sdist) as tar:
        names = {m.name.removeprefix(f"{NAME}/") for m in tar.getmembers() if m.isfile() or m.issym()}
        pkg_info = tar.extractfile(f"{NAME}/PKG-INFO").read().decode()
    assert {"LICENSE", "pyproject.toml", "README.md", "app.py", "requirements.txt"} <= names
    assert "License-File: LICENSE" in pkg_info
    tests = {name for name in files if name.startswith("tests/")}
    assert {"tests/conftest.py", "tests/clips.py", "tests/tasks.py", "tests/images_corpus.py"} <= tests
    assert any(name.startswith("tests/fixtures/") for name in tests)
    assert tests - names == set(), "tests/ files missing from the sdist"
    # what the tests read beside the package: the benchmark scripts, the eval/train tools, scripts, docs
    beside = {
        n for n in files if n.split("/")[0] in ("bench", "eval", "train", "scripts", "docs", "model_cards")
    }
    assert beside - names == set()
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("bench/.")]


def _upload_patterns(text: str) -> tuple[list[str], list[str]]:
    """The ``--include`` and ``--exclude`` patterns of the ``hf upload`` command of a Space in ``text``."""
    command = re.search(r"hf upload YOUR_NAME/ferhub \. \.(.*?)(?:`|\n\s*```)", text, re.S)
    assert command, "no `hf upload YOUR_NAME/ferhub . .` command"
    args = command.group(1)
    return re.findall(r'--include "([^"]+)"', args), re.findall(r'--exclude "([^"]+)"', args)


def test_the_space_upload_carries_the_licence_app_and_every_file_the_readme_links() -> None:
    """README's and docs/deploy.md's ``hf upload`` lists are the same, and, applied by huggingface_hub as the
    upload applies them to the checkout's files, carry the app, the package, the licence (MIT wants it in
    copies) and every repository file the README (the Space's page) links to."""
    from huggingface_hub.utils import filter_repo_objects

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    patterns = _upload_patterns(readme)
    assert patterns == _upload_patterns((ROOT / "docs" / "deploy.md").read_text(encoding="utf-8"))
    include, exclude = patterns
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    files = [name for name in listed.split("\0") if name]
    uploaded = set(filter_repo_objects(files, allow_patterns=include, ignore_patterns=exclude))
    linked = {
        target.split("#")[0]
        for target in re.findall(r"\]\(([^)\s]+)\)", readme)
        if not re.match(r"[a-z]+:|#", target)
    }
    assert linked, "the README links no repository file: the pattern above is out of date"
    needed = linked | {"app.py", "requirements.txt", "README.md", "pyproject.toml", "LICENSE"}
    assert needed - uploaded == set()
    assert "ferhub/__init__.py" in uploaded and "ferhub/bundled/fer-mini-xception/config.json" in uploaded
    assert not [n for n in uploaded if n.startswith(("tests/", "bench/.")) or "__pycache__" in n]
