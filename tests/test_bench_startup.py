"""bench/startup.py runs the tree it is given, not the installed ferhub (whose editable-install import hook
outranks ``PYTHONPATH``), each tree with its own ONNX cache."""

from __future__ import annotations

from pathlib import Path


def test_each_tree_runs_its_own_ferhub_with_its_own_cache(tmp_path: Path, bench_script) -> None:
    startup = bench_script("startup")
    tree = tmp_path / "tree"
    (tree / "ferhub").mkdir(parents=True)
    (tree / "ferhub" / "__init__.py").write_text("")
    marker = tmp_path / "ran.txt"
    record = "' '.join([__file__, os.environ['FERHUB_ONNX_CACHE'], *sys.argv[1:]])"
    (tree / "ferhub" / "__main__.py").write_text(
        f"import os, sys\nopen({str(marker)!r}, 'w').write({record})\n"
    )
    seconds = startup.wall(tree, tmp_path / "photo.jpg", tmp_path / "cache")
    ran_file, cache, *args = marker.read_text().split()
    assert ran_file == str(tree / "ferhub" / "__main__.py")  # the given tree's, not the installed one
    assert cache == str(tmp_path / "cache") and args == ["predict", str(tmp_path / "photo.jpg")]
    assert seconds > 0
