"""The ONNX cache (:mod:`ferhub._onnx`) never serves a graph of other code or weights, and recovers from a
graph it cannot load: the key covers every file the module's classes come from, the check compares logits
(a saturated softmax hides a different graph), and a stale or truncated graph is built again."""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from ferhub import _onnx, create_model, hub
from ferhub.errors import ConfigError
from ferhub.export import INT8_NAME, ONNX_NAME, check_graphs, export_onnx
from ferhub.models import list_models

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
    with pytest.raises(_onnx.ExportError, match="logits differ from torch's by up to nan"):
        _onnx.check_logits("test_tiny", expected, np.full_like(expected, np.nan))
    # a model whose own logits overflow was said to differ from its graph "by up to nan"
    with pytest.raises(_onnx.ExportError, match="torch's own logits are NaN or infinite on the check inputs"):
        _onnx.check_logits("test_tiny", np.full_like(expected, np.nan), np.full_like(expected, np.nan))


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


def set_weights_hash(path: Path, value: str) -> None:
    """Rewrite the weights hash in a graph's metadata, as an earlier ferhub wrote it."""
    import onnx

    proto = onnx.load(str(path))
    (prop,) = (p for p in proto.metadata_props if p.key == "ferhub_weights_sha256")
    prop.value = value
    path.write_bytes(proto.SerializeToString())


def test_push_refuses_a_graph_of_other_weights(tmp_path: Path) -> None:
    model = saturated()
    folder = hub.save(model, tmp_path / "model")
    export_onnx(folder, tmp_path / "out")
    graph = (tmp_path / "out" / ONNX_NAME).read_bytes()
    out = hub.save(stale_copy(model), tmp_path / "retrained")  # the same probabilities on random inputs
    (out / ONNX_NAME).write_bytes(graph)
    stale = r"model\.onnx does not match the folder's weights.*other weights.*re-run `ferhub export`"
    with pytest.raises(hub.ModelLoadError, match=stale):
        check_graphs(out, hub.load(out))
    assert check_graphs(tmp_path / "out", hub.load(tmp_path / "out")) == [ONNX_NAME]


def test_push_takes_an_export_of_an_earlier_ferhub_whose_model_code_changed(tmp_path: Path) -> None:
    # the weights hash in the metadata also covers the model class's source file: one comment added to
    # mini_xception.py by a ferhub update made every earlier export "not match the folder's weights"
    torch.manual_seed(0)
    folder = hub.save(create_model("test_tiny").eval(), tmp_path / "model")
    out = tmp_path / "out"
    export_onnx(folder, out)
    set_weights_hash(out / ONNX_NAME, "0" * 64)
    (out / INT8_NAME).write_bytes((out / ONNX_NAME).read_bytes())  # quantised by the same export
    assert check_graphs(out, hub.load(out)) == [INT8_NAME, ONNX_NAME]
    # an int8 graph of another export (the weights or the model code changed between them) is refused
    set_weights_hash(out / INT8_NAME, "1" * 64)
    with pytest.raises(
        hub.ModelLoadError, match=r"not quantised from a model\.onnx beside it.*different exports"
    ):
        check_graphs(out, hub.load(out))


def load_file_module(name: str, path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    return module


HELPER_LAYER = """
from torch import nn

import ferhub_test_helpers


class Layer(nn.Module):
    def forward(self, x):
        return ferhub_test_helpers.act(x)
"""


def test_a_module_of_a_users_files_is_checked_on_every_use(tmp_path: Path, monkeypatch, caplog) -> None:
    # a layer whose forward calls a helper of another file: the key cannot see the helper, so an edit of it
    # kept the key and the recorded pass served the old graph in every later process
    helpers = tmp_path / "ferhub_test_helpers.py"
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    helpers.write_text("def act(x):\n    return x.relu()\n")
    helper = load_file_module("ferhub_test_helpers", helpers, monkeypatch)
    (tmp_path / "ferhub_test_layer2.py").write_text(HELPER_LAYER)
    layer = load_file_module("ferhub_test_layer2", tmp_path / "ferhub_test_layer2.py", monkeypatch)
    torch.manual_seed(0)
    model = create_model("test_tiny").eval()
    model.stem[2] = layer.Layer()
    key = _onnx.classifier_key(model)
    _onnx.OnnxClassifier(model)
    helpers.write_text("def act(x):\n    return x.relu() * 3.0\n")
    helper.__spec__.loader.exec_module(helper)  # the user's edit, imported again (importlib.reload)
    assert _onnx.classifier_key(model) == key  # the key cannot tell
    monkeypatch.setattr(_onnx, "_MEMORY", {})  # as in a new process
    monkeypatch.setattr(_onnx, "_PASSED", {})
    with caplog.at_level(logging.WARNING, logger="ferhub._onnx"):
        runner = _onnx.OnnxClassifier(model)
    assert "failed its check" in caplog.text
    batch = random_batch(model)
    np.testing.assert_allclose(runner(batch), _onnx.softmax(logits(model, batch)), atol=_onnx.TOLERANCE)
    assert not _onnx.trusted(model) and _onnx.trusted(create_model("test_tiny"))


@pytest.mark.parametrize("architecture", [m for m in list_models() if m.startswith("test_")])
def test_every_registered_architecture_of_ferhub_is_trusted(architecture: str) -> None:
    """Their graphs' keys cover all their code, so a recorded pass lets a warm start skip torch: NASNet's timm
    layers were left out, and its models imported torch and ran the check at every start."""
    assert _onnx.trusted(create_model(architecture))


def notebook_cell(scale: float) -> type:
    """A layer class as a notebook cell defines it: in ``__main__``-like module with no file, so the key
    cannot hash it; each run of the edited cell defines a new class of the same name."""

    class Cell(torch.nn.Module):
        def forward(self, x):
            return x.relu() * scale

    Cell.__module__, Cell.__qualname__ = "ferhub_test_notebook", "Cell"
    return Cell


def test_a_notebook_class_edited_in_the_same_process_is_checked_again() -> None:
    torch.manual_seed(0)
    model = create_model("test_tiny").eval()
    model.stem[2] = notebook_cell(1.0)()
    key = _onnx.classifier_key(model)
    _onnx.OnnxClassifier(model)
    edited = copy.deepcopy(model)
    edited.stem[2] = notebook_cell(4.0)()  # the cell edited and run again, the same weights loaded
    assert _onnx.classifier_key(edited) == key
    runner = _onnx.OnnxClassifier(edited)
    batch = random_batch(edited)
    np.testing.assert_allclose(runner(batch), _onnx.softmax(logits(edited, batch)), atol=_onnx.TOLERANCE)


def test_the_key_does_not_depend_on_where_the_code_is_installed(tmp_path: Path, monkeypatch) -> None:
    # the files were hashed in the order of their absolute paths: an editable checkout and a site-packages
    # install of the same code (torch before or after ferhub) gave different keys
    keys = []
    for first, second in (("a", "b"), ("b", "a")):
        root = tmp_path / first
        (root / first).mkdir(parents=True)
        (root / second).mkdir(parents=True)
        (root / first / "ferhub_test_zz.py").write_text(LAYER.format(""))
        (root / second / "ferhub_test_aa.py").write_text(LAYER.format(" * 2"))
        zz = load_file_module("ferhub_test_zz", root / first / "ferhub_test_zz.py", monkeypatch)
        aa = load_file_module("ferhub_test_aa", root / second / "ferhub_test_aa.py", monkeypatch)
        torch.manual_seed(0)
        model = create_model("test_tiny").eval()
        model.stem[2] = torch.nn.Sequential(zz.Layer(), aa.Layer())
        keys.append(_onnx.classifier_key(model))
    assert keys[0] == keys[1]


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


def test_graphs_kept_in_memory_are_bounded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A server whose visitors named model after model kept every graph's bytes in memory for good (the app
    forgot the models, not their graphs): the least recently used go beyond the budget (they stay on disk)."""
    monkeypatch.setenv("FERHUB_ONNX_CACHE", str(tmp_path))
    monkeypatch.setattr(_onnx, "_MEMORY", {})
    monkeypatch.setattr(_onnx, "MEMORY_BYTES", 25)
    for name in "abcd":
        assert _onnx.cached(name * 64, lambda n=name: n.encode() * 10) == name.encode() * 10
    assert list(_onnx._MEMORY) == ["c" * 64, "d" * 64]  # 20 bytes kept; a and b forgotten
    _onnx.cached("c" * 64, lambda: b"built again")  # used: the most recent now
    _onnx.cached("e" * 64, lambda: b"e" * 10)
    assert list(_onnx._MEMORY) == ["c" * 64, "e" * 64]
    monkeypatch.setattr(_onnx, "MEMORY_BYTES", 0)
    _onnx.cached("f" * 64, lambda: b"f" * 10)
    assert list(_onnx._MEMORY) == ["f" * 64]  # the latest is always kept


def test_a_fresh_graph_that_fails_its_check_is_not_kept(caplog, monkeypatch) -> None:
    """A graph that disagreed with its module when just built was left in the cache: every later use (in the
    same process or the next) read it, warned that "the cached ONNX graph ... failed its check" as if a stale
    cache were to blame, exported it again, failed again and stored it again. Here the module's own output
    is NaN (finite weights, a BatchNorm with no variance and no eps), as any disagreeing graph goes."""
    torch.manual_seed(0)
    model = create_model("test_tiny").eval()
    model.stem[1].eps = 0.0
    with torch.no_grad():
        model.stem[1].running_var.zero_()
    key = _onnx.classifier_key(model)
    for _ in range(2):
        with (
            caplog.at_level(logging.WARNING, logger="ferhub._onnx"),
            pytest.raises(_onnx.ExportError, match="torch's own logits are NaN"),
        ):
            _onnx.OnnxClassifier(model)
        assert not _onnx.is_cached(key) and not list(_onnx.cache_dir().glob(f"{key}*"))
        assert "failed its check" not in caplog.text
        monkeypatch.setattr(_onnx, "_MEMORY", {})  # as in a new process


def cache_files() -> dict[str, int]:
    return {p.name: p.stat().st_size for p in _onnx.cache_dir().iterdir()}


def tiny_models(n: int) -> list:
    """``n`` tiny classifiers with different weights (seeds 0 .. n-1), so each has a graph of its own."""
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        models.append(create_model("test_tiny").eval())
    return models


def cached_graphs(n: int) -> list[str]:
    """The cache keys of ``n`` tiny classifiers' graphs, each exported into the cache (oldest first)."""
    keys = []
    for model in tiny_models(n):
        _onnx.OnnxClassifier(model)
        keys.append(_onnx.classifier_key(model))
    return keys


def test_the_disk_cache_keeps_the_most_recently_used_graphs_within_its_bound(monkeypatch, caplog) -> None:
    """Every Predictor on weights not seen before (a notebook evaluating each epoch's checkpoint) wrote a
    model-sized graph and its pass into $HF_HOME/ferhub/onnx, and nothing ever removed them. Past
    FERHUB_ONNX_CACHE_MAX_MB the least recently used go (used, not stored: a read marks a graph used), and
    a removed graph is built again when next used."""
    models = tiny_models(4)
    keys = [_onnx.classifier_key(m) for m in models]

    def new_process() -> None:
        monkeypatch.setattr(_onnx, "_MEMORY", {})
        monkeypatch.setattr(_onnx, "_PASSED", {})

    _onnx.OnnxClassifier(models[0])
    one = sum(cache_files().values())  # a graph and its pass
    limit = int(2.5 * one)
    monkeypatch.setenv("FERHUB_ONNX_CACHE_MAX_MB", repr(limit / 2**20))
    (_onnx.cache_dir() / "model.onnx").write_bytes(b"a user's file")  # not ferhub's: never removed
    (_onnx.cache_dir() / f"{'f' * 64}.repo.json").write_text(json.dumps({"graph": keys[0]}))
    _onnx.OnnxClassifier(models[1])
    _onnx.OnnxClassifier(models[2])  # over the bound: 0, the least recently used, goes
    assert {name.partition(".")[0] for name in cache_files()} == {keys[1], keys[2], "model"}
    new_process()
    _onnx.OnnxClassifier(models[1])  # read from the disk: now used after 2
    with caplog.at_level(logging.INFO, logger="ferhub._onnx"):
        _onnx.OnnxClassifier(models[3])
    assert "removed 1 least recently used ONNX graph" in caplog.text
    files = cache_files()
    assert sorted(files) == sorted(
        [f"{k}{suffix}" for k in (keys[1], keys[3]) for suffix in (".onnx", ".passed.json")] + ["model.onnx"]
    )  # each graph went with its pass and the repo record pointing to it
    assert sum(files.values()) - files["model.onnx"] <= limit
    new_process()
    runner = _onnx.OnnxClassifier(models[0])  # removed: exported and checked again, transparently
    batch = random_batch(models[0])
    np.testing.assert_allclose(runner(batch), _onnx.softmax(logits(models[0], batch)), atol=_onnx.TOLERANCE)
    assert _onnx._passed(keys[0], (_onnx.cache_dir() / f"{keys[0]}.onnx").read_bytes())
    assert sum(cache_files().values()) - files["model.onnx"] <= limit


def test_pruning_beside_another_process_that_prunes_too(monkeypatch) -> None:
    """Two processes over the bound at once remove the same files: the one that comes second skips what
    the first removed meanwhile, counts it gone and goes on to the next least recently used graph (giving up
    at the first file it could not remove left the cache over its bound)."""
    keys = cached_graphs(4)
    sizes = cache_files()
    one = sizes[f"{keys[0]}.onnx"] + sizes[f"{keys[0]}.passed.json"]
    real = os.scandir

    def raced(path: Path) -> Iterator[os.DirEntry]:
        entries = list(real(path))
        for entry in entries:
            entry.stat(follow_symlinks=False)  # listed and sized before the other process removes any
        for suffix in (".onnx", ".passed.json"):  # the other process removes the least recently used
            os.unlink(Path(path) / f"{keys[0]}{suffix}")
        return iter(entries)

    monkeypatch.setattr(_onnx.os, "scandir", raced)
    _onnx._prune(keys[3], int(2.5 * one))
    assert {name.partition(".")[0] for name in cache_files()} == {keys[2], keys[3]}


def test_every_use_marks_a_graph_used_and_the_graph_just_stored_stays(tmp_path: Path, monkeypatch) -> None:
    """What the bound keeps is what is used: a warm start of a saved folder (the graph its files recorded,
    without torch) and a graph found in this process's memory (a Predictor made again) mark it used as a
    read from the disk does, so a model run every day is not the first to go. And a graph bigger than the
    whole bound stays once stored: removed, every later process exported it again."""
    models = tiny_models(6)
    folder = hub.save(models[0], tmp_path / "m0")
    loaded = hub.load(folder)
    _onnx.OnnxClassifier(loaded)
    _onnx.remember_repo(folder, loaded)  # as a Predictor on the folder records it for the next start
    for model in models[1:4]:
        _onnx.OnnxClassifier(model)
    keys = [_onnx.classifier_key(m) for m in models]
    assert keys[0] == _onnx.classifier_key(loaded)
    sizes = cache_files()
    one = sizes[f"{keys[1]}.onnx"] + sizes[f"{keys[1]}.passed.json"]
    monkeypatch.setenv("FERHUB_ONNX_CACHE_MAX_MB", repr(3.5 * one / 2**20))
    _onnx.OnnxClassifier(models[1])  # still in this process's memory: used after 2 and 3
    monkeypatch.setattr(_onnx, "_MEMORY", {})  # as a new process
    monkeypatch.setattr(_onnx, "_PASSED", {})
    assert _onnx.repo_classifier(folder, loaded.config) is not None  # a warm start: used after 1
    _onnx.OnnxClassifier(models[4])  # over the bound: 2 and 3, the least recently used, go
    kept = {keys[0], keys[1], keys[4], _onnx._repo_key(folder)}  # and the folder's record of its graph
    assert {name.partition(".")[0] for name in cache_files()} == kept

    monkeypatch.setenv("FERHUB_ONNX_CACHE_MAX_MB", repr(one / 4 / 2**20))  # less than one graph
    _onnx.OnnxClassifier(models[5])
    assert sorted(cache_files()) == [
        f"{keys[5]}.onnx",
        f"{keys[5]}.passed.json",
    ]  # the folder's record went with its graph
    monkeypatch.setattr(_onnx, "_MEMORY", {})
    monkeypatch.setattr(_onnx, "_PASSED", {})
    monkeypatch.setattr(_onnx, "build_classifier_graph", lambda m: pytest.fail("exported again"))
    _onnx.OnnxClassifier(models[5])  # read from the disk, its pass too


@pytest.mark.parametrize("value", ["1G", "0", "-5", "nan", "inf"])
def test_a_cache_bound_that_is_no_size_is_told_before_exporting(monkeypatch, value: str) -> None:
    monkeypatch.setenv("FERHUB_ONNX_CACHE_MAX_MB", value)
    monkeypatch.setattr(_onnx, "build_classifier_graph", lambda m: pytest.fail("exported"))
    with pytest.raises(ConfigError, match=f"FERHUB_ONNX_CACHE_MAX_MB='{value}' must be a positive number"):
        _onnx.OnnxClassifier(create_model("test_tiny").eval())


def test_a_cache_bound_that_is_no_size_is_told_at_a_warm_start_too(tmp_path: Path, monkeypatch) -> None:
    """A wrong FERHUB_ONNX_CACHE_MAX_MB was told only once a graph had to be exported: a process finding its
    graphs cached (a warm start of a saved folder, a Predictor on a model seen before) ran on without it, and
    the cache's bound was never what the user set. It is told at the first use of the cache."""
    torch.manual_seed(0)
    folder = hub.save(create_model("test_tiny").eval(), tmp_path / "m")
    model = hub.load(folder)
    _onnx.OnnxClassifier(model)
    _onnx.remember_repo(folder, model)
    monkeypatch.setattr(_onnx, "_MEMORY", {})  # as a new process
    monkeypatch.setattr(_onnx, "_PASSED", {})
    monkeypatch.setenv("FERHUB_ONNX_CACHE_MAX_MB", "1G")
    monkeypatch.setattr(_onnx, "build_classifier_graph", lambda m: pytest.fail("exported"))
    with pytest.raises(ConfigError, match="FERHUB_ONNX_CACHE_MAX_MB='1G' must be a positive number"):
        _onnx.repo_classifier(folder, model.config)
    with pytest.raises(ConfigError, match="FERHUB_ONNX_CACHE_MAX_MB='1G' must be a positive number"):
        _onnx.OnnxClassifier(model)
    monkeypatch.setenv("FERHUB_ONNX_CACHE_MAX_MB", "64")
    assert _onnx.repo_classifier(folder, model.config) is not None and _onnx.cache_max_bytes() == 64 << 20


def test_pruning_says_a_bound_under_a_megabyte_in_kilobytes(monkeypatch, caplog) -> None:
    """A bound under 1 MB was logged as 'within 0 MB'."""
    keys = cached_graphs(2)
    with caplog.at_level(logging.INFO, logger="ferhub._onnx"):
        _onnx._prune(keys[1], 1536)
    assert "removed 1 least recently used ONNX graph(s)" in caplog.text
    assert "to keep it within 1.5 KB (FERHUB_ONNX_CACHE_MAX_MB)" in caplog.text
    assert [_onnx._size_text(n) for n in (1024 << 20, 7 << 19, 300)] == ["1024 MB", "3.5 MB", "300 bytes"]
