"""A warm start (every graph already in the ONNX cache) reads its graphs from the cache: it imports neither
torch (~1.2 s) nor the ``onnx`` package (~0.6 s), builds nothing, and finds what a cold start finds."""

from __future__ import annotations

import contextlib
import io
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
print(json.dumps({"faces": faces, "onnx": "onnx" in sys.modules, "torch": "torch" in sys.modules}))
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
    assert (
        len(graphs) == 3
    )  # P-net, R-net, O-net (the pixel steps are compiled kernels, ferhub._mtcnn_kernels)
    warm = run_isolated(DETECT, cache, *photos)
    assert cold["onnx"] and cold["torch"]  # the cold start exported the nets and assembled the graphs
    assert not warm["onnx"] and not warm["torch"]
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
    reference = _onnx.torch_logits
    monkeypatch.setattr(_onnx, "torch_logits", lambda m, b: checks.append(1) or reference(m, b))
    monkeypatch.setattr(_onnx, "_MEMORY", {})  # as in a new process
    monkeypatch.setattr(_onnx, "_PASSED", {})
    warm = _onnx.OnnxClassifier(model)
    assert checks == []
    size = model.config.input_size
    batch = np.random.default_rng(1).standard_normal((3, model.config.channels, size, size))
    batch = batch.astype(np.float32)
    np.testing.assert_array_equal(warm(batch), first(batch))
    # another graph under the same key (a cache written by hand, a half-copied folder): checked, failed,
    # built again from the module and checked again
    torch.manual_seed(4)
    (_onnx.cache_dir() / f"{key}.onnx").write_bytes(_onnx.classifier_graph(create_model("test_tiny").eval()))
    monkeypatch.setattr(_onnx, "_MEMORY", {})
    monkeypatch.setattr(_onnx, "_PASSED", {})
    rebuilt = _onnx.OnnxClassifier(model)
    assert checks == [1, 1]
    np.testing.assert_array_equal(rebuilt(batch), first(batch))
    # a fresh graph that disagrees with its module is refused: the caller runs it in torch
    monkeypatch.setattr(_onnx, "_MEMORY", {})
    monkeypatch.setattr(_onnx, "_PASSED", {})
    _onnx.discard(key)
    other = _onnx.build_classifier_graph(create_model("test_tiny").eval())
    monkeypatch.setattr(_onnx, "build_classifier_graph", lambda m: other)
    with pytest.raises(_onnx.ExportError, match="differ from torch"):
        _onnx.OnnxClassifier(model)


def imported(importtime: str) -> set[str]:
    """Top-level packages named in ``python -X importtime``'s report."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in importtime.splitlines() if "|" in line}


@pytest.mark.slow
def test_warm_cli_predict_imports_no_torch_and_gives_the_cold_results(tmp_path: Path) -> None:
    photos = [str(EXAMPLES_DIR / "astronaut.jpg"), str(EXAMPLES_DIR / "grace_hopper.jpg")]
    env = {**os.environ, "FERHUB_ONNX_CACHE": str(tmp_path / "onnx")}
    cmd = [sys.executable, "-X", "importtime", "-m", "ferhub", "predict", *photos]
    cold, warm = (subprocess.run(cmd, env=env, check=True, capture_output=True, text=True) for _ in "12")
    assert [len(r["faces"]) for r in json.loads(cold.stdout)] == [1, 1]
    assert warm.stdout == cold.stdout
    assert {"torch", "onnx"} <= imported(cold.stderr)  # the cold start exported and checked in torch
    assert imported(warm.stderr) & {"torch", "onnx", "torchvision", "facenet_pytorch"} == set()
    cache = tmp_path / "onnx"
    assert len(list(cache.glob("*.passed.json"))) == len(list(cache.glob("*.repo.json"))) == 1


def test_numpy_batch_is_torch_batch_bit_for_bit() -> None:
    """The ONNX path feeds :func:`ferhub.preprocess.eval_array`; torch's is ``eval_tensor``: every pixel value
    of every bundled model's preprocessing (and a crop resized on the way) gives the same float32."""
    from PIL import Image

    from ferhub.hub import list_bundled, load
    from ferhub.preprocess import eval_array
    from ferhub.transforms import eval_tensor

    configs = [load(m).config for m in list_bundled() if load(m).config.architecture != "ensemble"]
    assert len(configs) >= 3
    photo = Image.open(EXAMPLES_DIR / "grace_hopper.jpg")  # resized to each input on the way
    for config in configs:
        size = config.input_size
        values = np.resize(np.arange(256, dtype=np.uint8), (size, size))  # every pixel value, no resize
        crops = [Image.fromarray(np.repeat(values[:, :, None], 3, axis=2)), photo]
        np.testing.assert_array_equal(eval_array(crops, config), eval_tensor(crops, config).numpy())
    assert eval_array([], config).shape == (0, config.channels, config.input_size, config.input_size)


def test_warm_predictor_runs_from_the_cache_and_loads_modules_only_when_asked(monkeypatch) -> None:
    from ferhub import _onnx
    from ferhub.hub import load
    from ferhub.predict import Predictor

    monkeypatch.setattr(_onnx, "_MEMORY", {})
    monkeypatch.setattr(_onnx, "_PASSED", {})
    cold = Predictor()  # loads the module, exports and checks its graph, records it for the repo's files
    assert cold._models[0] is not None
    assert len(list(_onnx.cache_dir().glob("*.repo.json"))) == 1
    faces = cold.predict([EXAMPLES_DIR / "astronaut.jpg"])[0].faces
    monkeypatch.setattr(_onnx, "_MEMORY", {})  # as in a new process
    monkeypatch.setattr(_onnx, "_PASSED", {})
    warm = Predictor()
    assert warm._models == [None] and isinstance(warm._runners[0], _onnx.OnnxClassifier)
    assert warm.configs[0] == load("fer-mini-xception").config
    again = warm.predict([EXAMPLES_DIR / "astronaut.jpg"])[0].faces
    assert [f.to_dict() for f in again] == [f.to_dict() for f in faces]
    assert warm.models[0] is load("fer-mini-xception")  # the shared module, loaded when asked for


def test_a_module_changed_after_loading_is_not_recorded_for_its_files() -> None:
    import copy

    import torch

    from ferhub import _onnx
    from ferhub.hub import load

    model = copy.deepcopy(load("fer-mini-xception"))
    with torch.no_grad():
        next(model.parameters()).add_(0.5)
    _onnx.OnnxClassifier(model)  # its own graph, checked against it: fine
    _onnx.remember_repo(model.repo_path, model)
    assert list(_onnx.cache_dir().glob("*.repo.json")) == []  # but not what the repo's files make
    assert _onnx.repo_classifier(model.repo_path, model.config) is None
    original = load("fer-mini-xception")
    _onnx.OnnxClassifier(original)
    _onnx.remember_repo(original.repo_path, original)
    assert _onnx.repo_classifier(original.repo_path, original.config) is not None


def test_a_cpu_build_of_torch_picks_the_cpu_without_importing_torch() -> None:
    from ferhub.device import installed_torch

    if installed_torch().get("cuda", "unknown") is not None:
        pytest.skip("torch here is a CUDA build: the device rule asks torch")
    code = "import sys; from ferhub.device import default_device as d; print(d(), 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.split() == ["cpu", "False"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_first_run_notice_only_at_a_terminal_and_only_before_the_graphs_are_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ferhub import _mtcnn_onnx, _onnx
    from ferhub.commands.predict import FIRST_RUN, first_run_notice

    monkeypatch.setattr(_onnx, "_MEMORY", {})  # this process has not seen the graphs either
    monkeypatch.setenv("FERHUB_ONNX_CACHE", str(tmp_path / "onnx"))
    terminal, pipe = _Terminal(), io.StringIO()
    assert not first_run_notice("cpu", pipe) and pipe.getvalue() == ""  # a script reading a pipe: nothing
    assert not first_run_notice("cuda", terminal)  # torch on the GPU: no graphs to export
    assert first_run_notice("cpu", terminal) and terminal.getvalue() == FIRST_RUN + "\n"
    (tmp_path / "onnx").mkdir()
    for name in ("pnet", "rnet", "onet"):  # every net's graph on this machine: nothing to prepare
        (tmp_path / "onnx" / f"{_mtcnn_onnx._graph_key(name)}.onnx").write_bytes(b"graph")
    assert _mtcnn_onnx.graphs_cached() and not first_run_notice("cpu", terminal)


@pytest.mark.slow
def test_ferhub_predict_at_a_terminal_says_why_its_first_run_is_slow(tmp_path: Path) -> None:
    """The real command under a pseudo-terminal: the notice on the first run, none on the second."""
    import pty

    from ferhub.commands.predict import FIRST_RUN

    env = {**os.environ, "FERHUB_ONNX_CACHE": str(tmp_path / "onnx")}
    photo = str(EXAMPLES_DIR / "grace_hopper.jpg")
    outputs = []
    for _ in range(2):
        primary, secondary = pty.openpty()
        proc = subprocess.run(
            [sys.executable, "-m", "ferhub", "predict", photo], env=env, stdout=subprocess.PIPE,
            stderr=secondary, check=True, text=True,
        )  # fmt: skip
        os.close(secondary)
        err = b""
        with contextlib.suppress(OSError):  # EIO once the terminal's writer has closed
            while chunk := os.read(primary, 4096):
                err += chunk
        os.close(primary)
        outputs.append((json.loads(proc.stdout), err.decode()))
    (first, first_err), (second, second_err) = outputs
    assert FIRST_RUN in first_err and FIRST_RUN not in second_err
    assert first == second and len(first[0]["faces"]) == 1  # stdout holds the results alone
