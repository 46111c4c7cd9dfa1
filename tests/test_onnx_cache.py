"""The ONNX cache (:mod:`ferhub._onnx`) never serves a graph of other code or weights, and recovers from a
graph it cannot load: the key covers every file the module's classes come from, the check compares logits
(a saturated softmax hides a different graph), and a stale or truncated graph is built again."""

from __future__ import annotations

import copy
import importlib.util
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ferhub import _onnx, create_model, hub
from ferhub.export import ONNX_NAME, check_graphs, export_onnx

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LAYER = """
from torch import nn


class Layer(nn.Module):
    def forward(self, x):
        return x.relu(){}
"""


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of another test's graphs or passes in this process's memory (the disk cache is per test)."""
    monkeypatch.setattr(_onnx, "_MEMORY", {})
    monkeypatch.setattr(_onnx, "_PASSED", {})


def saturated(seed: int = 0) -> torch.nn.Module:
    """A tiny model whose softmax is one class at 1.0 on random input, as the bundled human-emotion's is."""
    torch.manual_seed(seed)
    model = create_model("test_tiny").eval()
    with torch.no_grad():
        model.classifier.weight.mul_(1000)
    return model


def logits(model: torch.nn.Module, batch: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(batch)).numpy()


def random_batch(model: torch.nn.Module, n: int = 3) -> np.ndarray:
    size = model.config.input_size
    return np.random.default_rng(5).standard_normal((n, model.config.channels, size, size)).astype(np.float32)


def stale_copy(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with other weights whose probabilities on random input are still the same one-hot ones."""
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.classifier.weight.mul_(1.5)
    return other


def test_the_key_covers_every_file_the_modules_classes_come_from(tmp_path: Path, monkeypatch) -> None:
    # a layer of another file (ferhub's big_xception takes SameMaxPool2d from mini_xception.py; a user's
    # model its layers from their own files): changed, the graph is another one
    path = tmp_path / "ferhub_test_layer.py"
    path.write_text(LAYER.format(""))
    spec = importlib.util.spec_from_file_location("ferhub_test_layer", path)
    layer = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "ferhub_test_layer", layer)  # imported, as a model's layers are
    spec.loader.exec_module(layer)
    torch.manual_seed(0)
    model = create_model("test_tiny").eval()
    model.stem[2] = layer.Layer()
    key = _onnx.classifier_key(model)
    assert _onnx.classifier_key(model) == key
    path.write_text(LAYER.format(" * 1.5"))
    assert _onnx.classifier_key(model) != key
    # and ferhub's own code, any module of it (the shared layers, the exporter)
    monkeypatch.setattr(_onnx, "source_hash", lambda: "another ferhub")
    assert _onnx.classifier_key(create_model("test_tiny").eval()) != _onnx.classifier_key(
        copy.deepcopy(model)
    )


def test_logits_are_compared_where_probabilities_saturate() -> None:
    model = saturated()
    batch = random_batch(model)
    expected, other = logits(model, batch), logits(stale_copy(model), batch)
    assert np.abs(_onnx.softmax(expected) - _onnx.softmax(other)).max() <= _onnx.TOLERANCE
    with pytest.raises(_onnx.ExportError, match="logits differ from torch's"):
        _onnx.check_logits("test_tiny", expected, other)
    assert _onnx.check_logits("test_tiny", expected, expected * (1 + 1e-6)) <= _onnx.TOLERANCE
    with pytest.raises(_onnx.ExportError):
        _onnx.check_logits("test_tiny", expected, np.full_like(expected, np.nan))


def test_a_stale_graph_under_the_key_is_built_again(caplog) -> None:
    model = saturated()
    key = _onnx.classifier_key(model)
    _onnx.cache_dir().mkdir(parents=True)
    stale = _onnx.build_classifier_graph(stale_copy(model))
    (_onnx.cache_dir() / f"{key}.onnx").write_bytes(stale)
    with caplog.at_level(logging.WARNING, logger="ferhub._onnx"):
        runner = _onnx.OnnxClassifier(model)
    assert "failed its check" in caplog.text
    batch = random_batch(model)
    got = runner.session.run(None, {"input": batch})[0]
    np.testing.assert_allclose(got, logits(model, batch), rtol=1e-4, atol=1e-4)
    assert (_onnx.cache_dir() / f"{key}.onnx").read_bytes() != stale  # the cache holds the new graph


def test_export_builds_its_graph_fresh(tmp_path: Path) -> None:
    model = saturated()
    folder = hub.save(model, tmp_path / "model")
    key = _onnx.classifier_key(hub.load(folder))
    _onnx.cache_dir().mkdir(parents=True)
    (_onnx.cache_dir() / f"{key}.onnx").write_bytes(_onnx.build_classifier_graph(stale_copy(model)))
    export_onnx(folder, tmp_path / "out")
    batch = random_batch(model)
    got = _onnx.session(tmp_path / "out" / ONNX_NAME).run(None, {"input": batch})[0]
    np.testing.assert_allclose(got, logits(model, batch), rtol=1e-4, atol=1e-4)


def test_push_refuses_a_graph_of_earlier_weights_that_random_inputs_cannot_tell(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("test_tiny").eval()
    folder = hub.save(model, tmp_path / "model")
    export_onnx(folder, tmp_path / "out")
    graph = (tmp_path / "out" / ONNX_NAME).read_bytes()
    with torch.no_grad():
        model.classifier.bias.add_(1e-6)  # retrained a little: the graph still matches on random inputs
    out = hub.save(model, tmp_path / "retrained")
    (out / ONNX_NAME).write_bytes(graph)
    stale = r"model\.onnx does not match the folder's weights.*`ferhub export`"
    with pytest.raises(hub.ModelLoadError, match=stale):
        check_graphs(out, hub.load(out))
    (out / ONNX_NAME).write_bytes(_onnx.build_classifier_graph(model))  # no metadata: not ferhub's export
    with pytest.raises(hub.ModelLoadError, match="weights hash in its metadata"):
        check_graphs(out, hub.load(out))
    assert check_graphs(tmp_path / "out", hub.load(tmp_path / "out")) == [ONNX_NAME]


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def test_a_truncated_classifier_graph_is_built_again(caplog, monkeypatch) -> None:
    torch.manual_seed(0)
    model = create_model("test_tiny").eval()
    _onnx.OnnxClassifier(model)
    key = _onnx.classifier_key(model)
    truncate(_onnx.cache_dir() / f"{key}.onnx")
    monkeypatch.setattr(_onnx, "_MEMORY", {})  # as in a new process
    monkeypatch.setattr(_onnx, "_PASSED", {})
    with caplog.at_level(logging.WARNING, logger="ferhub._onnx"):
        runner = _onnx.OnnxClassifier(model)
    assert "does not load" in caplog.text and "building it again" in caplog.text
    batch = random_batch(model)
    np.testing.assert_allclose(runner(batch), _onnx.softmax(logits(model, batch)), atol=_onnx.TOLERANCE)
    _onnx.session(_onnx.cache_dir() / f"{key}.onnx")  # the cache holds a whole graph again
    # a graph that does not load when built again either: ExportError, on which predict runs in torch
    truncate(_onnx.cache_dir() / f"{key}.onnx")
    monkeypatch.setattr(_onnx, "_MEMORY", {})
    monkeypatch.setattr(_onnx, "build_classifier_graph", lambda m: b"not a graph")
    with pytest.raises(_onnx.ExportError, match="does not load"):
        _onnx.OnnxClassifier(model)


def test_a_truncated_detector_graph_is_built_again(monkeypatch) -> None:
    from PIL import Image

    from ferhub._mtcnn_onnx import OnnxMTCNN, _graph_key
    from ferhub.assets import EXAMPLES_DIR

    photo = Image.open(EXAMPLES_DIR / "grace_hopper.jpg").convert("RGB")
    expected = OnnxMTCNN().detect(photo)
    for name in ("pnet", "rnet", "onet"):
        truncate(_onnx.cache_dir() / f"{_graph_key(name)}.onnx")
    monkeypatch.setattr(_onnx, "_MEMORY", {})
    got = OnnxMTCNN().detect(photo)  # boxes, scores, landmarks
    assert len(expected[0]) == 1 and all(np.array_equal(a, b) for a, b in zip(got, expected))
