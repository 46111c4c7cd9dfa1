"""A warm start (every graph already in the ONNX cache) reads its graphs from the cache: it neither imports
the ``onnx`` package (~0.6 s) nor builds anything, and finds exactly what a cold start finds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ferhub.assets import EXAMPLES_DIR

DETECT = """
import json, sys
from PIL import Image
from ferhub.faces import FaceDetector
detector = FaceDetector(runtime="onnx")
faces = [[f.to_dict() for f in detector.detect(Image.open(p).convert("RGB"))] for p in sys.argv[1:]]
print(json.dumps({"faces": faces, "onnx": "onnx" in sys.modules}))
"""


def run_isolated(code: str, cache: Path, *args: str) -> dict:
    """``code`` in a fresh interpreter whose ONNX cache is ``cache``; its last stdout line as JSON."""
    env = {**os.environ, "FERHUB_ONNX_CACHE": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_warm_detection_reads_assembled_graphs_from_the_cache(tmp_path: Path) -> None:
    photos = [str(EXAMPLES_DIR / "astronaut.jpg"), str(EXAMPLES_DIR / "grace_hopper.jpg")]
    cache = tmp_path / "onnx"
    cold = run_isolated(DETECT, cache, *photos)
    graphs = sorted(cache.glob("*.onnx"))
    # prepare + the three nets + resize + the two crop-and-net graphs
    assert len(graphs) == 7
    warm = run_isolated(DETECT, cache, *photos)
    assert cold["onnx"]  # the cold start assembled the graphs with the onnx package
    assert not warm["onnx"]
    assert sorted(cache.glob("*.onnx")) == graphs  # nothing rebuilt under another key
    assert [len(f) for f in warm["faces"]] == [1, 1]
    assert warm["faces"] == cold["faces"]  # the cached graphs find exactly what freshly built ones find


def test_classifier_is_checked_against_torch_once_per_graph(isolated_hf: Path, monkeypatch) -> None:
    import torch

    from ferhub import _onnx
    from ferhub.models import create_model

    monkeypatch.setattr(_onnx, "_MEMORY", {})  # this process has not seen the graph either
    monkeypatch.setattr(_onnx, "_PASSED", {})
    torch.manual_seed(3)
    model = create_model("test_tiny").eval()
    first = _onnx.OnnxClassifier(model)  # first use on this machine: checked, and the pass recorded
    key = _onnx.classifier_key(model)
    assert (_onnx.cache_dir() / f"{key}.passed.json").is_file()
    checks: list[int] = []
    reference = _onnx.torch_probabilities
    monkeypatch.setattr(_onnx, "torch_probabilities", lambda m, b: checks.append(1) or reference(m, b))
    monkeypatch.setattr(_onnx, "_MEMORY", {})  # as in a new process
    monkeypatch.setattr(_onnx, "_PASSED", {})
    warm = _onnx.OnnxClassifier(model)
    assert checks == []
    size = model.config.input_size
    batch = np.random.default_rng(1).standard_normal((3, model.config.channels, size, size))
    batch = batch.astype(np.float32)
    np.testing.assert_array_equal(warm(batch), first(batch))
    # another graph under the same key (a cache written by hand, a half-copied folder): checked, refused
    torch.manual_seed(4)
    (_onnx.cache_dir() / f"{key}.onnx").write_bytes(_onnx.classifier_graph(create_model("test_tiny").eval()))
    monkeypatch.setattr(_onnx, "_MEMORY", {})
    monkeypatch.setattr(_onnx, "_PASSED", {})
    with pytest.raises(_onnx.ExportError, match="differ from torch"):
        _onnx.OnnxClassifier(model)
    assert checks == [1]


@pytest.mark.slow
def test_warm_cli_predict_gives_the_cold_results(tmp_path: Path) -> None:
    photos = [str(EXAMPLES_DIR / "astronaut.jpg"), str(EXAMPLES_DIR / "grace_hopper.jpg")]
    env = {**os.environ, "FERHUB_ONNX_CACHE": str(tmp_path / "onnx")}
    cmd = [sys.executable, "-m", "ferhub", "predict", *photos]
    cold, warm = (subprocess.run(cmd, env=env, check=True, capture_output=True, text=True) for _ in "12")
    assert [len(r["faces"]) for r in json.loads(cold.stdout)] == [1, 1]
    assert warm.stdout == cold.stdout
    assert len(list((tmp_path / "onnx").glob("*.passed.json"))) == 1  # the classifier's recorded check
