"""A warm start (every graph already in the ONNX cache) reads its graphs from the cache: it neither imports
the ``onnx`` package (~0.6 s) nor builds anything, and finds exactly what a cold start finds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
