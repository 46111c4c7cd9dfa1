"""The Keras CNN of the PyPI package ``facemood`` (Apache-2.0) -> a ferhub model repo.

The wheel's ``facemood/model__version1.0.0__.h5`` (a Keras 2.15 ``Sequential``) is read with
:mod:`ferhub.convert.keras_h5` (h5py; nothing executed). Every layer's class and config is checked against
what :mod:`ferhub.models.facemood_net` computes before any weight is copied.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ferhub.convert._fetch import SourcePackage, extract_member, fetch, read_member, sha256_file
from ferhub.convert.keras_h5 import (
    KerasGraph,
    KerasH5Error,
    KerasLayer,
    batchnorm_to_torch,
    conv2d_kernel_to_torch,
    dense_kernel_to_torch,
    load_state,
    read_keras_h5,
)
from ferhub.models.facemood_net import FACEMOOD_LABELS, feature_size

if TYPE_CHECKING:
    from torch import nn

SOURCE = SourcePackage(
    "pypi", "facemood", "1.0.1", sha256="7290de6d8035e1481899db7388525d7d191031098433b6fbf56f0dcfe76102ef"
)
H5_MEMBER = "facemood/model__version1.0.0__.h5"
LICENSE_MEMBER = "facemood-1.0.1.dist-info/LICENSE"
MODEL_NAME = "facemood"
ARCHITECTURE = "facemood_cnn"
INPUT_SIZE = 170


class FacemoodConversionError(KerasH5Error):
    """The Keras file is not the Sequential CNN that ferhub's facemood_cnn reproduces."""


def _expect(layer: KerasLayer, class_name: str, **config: Any) -> None:
    if layer.class_name != class_name:
        raise FacemoodConversionError(f"layer {layer.name!r} is a {layer.class_name}; expected {class_name}")
    for key, want in config.items():
        got = layer.config.get(key)
        got = list(got) if isinstance(got, list | tuple) else got
        if got != want:
            raise FacemoodConversionError(
                f"layer {layer.name!r}: {key}={got!r}, ferhub's facemood_cnn computes {key}={want!r}"
            )


def facemood_state(
    graph: KerasGraph, input_size: int = INPUT_SIZE
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Check the Sequential layer by layer; return the PyTorch state (arrays) and the model_args it
    implies."""
    layers = [lay for lay in graph if lay.class_name != "InputLayer"]
    inp = graph.layer(graph.inputs[0])
    shape = inp.config.get("batch_input_shape") or inp.config.get("batch_shape")
    if list(shape)[1:] != [input_size, input_size, 3]:
        raise FacemoodConversionError(f"input shape {shape}; expected (None, {input_size}, {input_size}, 3)")
    state: dict[str, np.ndarray] = {}
    widths: list[int] = []
    i = 0
    while layers[i].class_name == "Conv2D":
        conv, bn, pool = layers[i : i + 3]
        _expect(conv, "Conv2D", kernel_size=[3, 3], strides=[1, 1], padding="valid", activation="relu")
        _expect(conv, "Conv2D", use_bias=True, dilation_rate=[1, 1], data_format="channels_last")
        _expect(bn, "BatchNormalization", epsilon=1e-3, axis=[3])
        _expect(pool, "MaxPooling2D", pool_size=[2, 2], strides=[2, 2], padding="valid")
        s = len(widths) * 4  # nn.Sequential index of this stage's conv (conv, ReLU, BN, pool)
        state[f"features.{s}.weight"] = conv2d_kernel_to_torch(conv.weight("kernel"))
        state[f"features.{s}.bias"] = conv.weight("bias")
        state.update({f"features.{s + 2}.{k}": v for k, v in batchnorm_to_torch(bn).items()})
        widths.append(int(conv.config["filters"]))
        i += 3
    flatten, dense, bn, out = layers[i : i + 4]
    if len(layers) != i + 4:
        raise FacemoodConversionError(
            f"unexpected layers after {out.name!r}: {[x.name for x in layers[i + 4 :]]}"
        )
    _expect(flatten, "Flatten", data_format="channels_last")
    _expect(dense, "Dense", activation="linear", use_bias=True)
    _expect(bn, "BatchNormalization", epsilon=1e-3, axis=[1])
    _expect(
        out, "Dense", activation="softmax", use_bias=True
    )  # ferhub returns logits; softmax is the caller's
    side = feature_size(input_size, len(widths))
    kernel = dense.weight("kernel")  # rows in Keras' (H, W, C) flatten order -> PyTorch's (C, H, W)
    kernel = kernel.reshape(side, side, widths[-1], -1).transpose(2, 0, 1, 3).reshape(kernel.shape)
    state["dense.weight"] = dense_kernel_to_torch(kernel)
    state["dense.bias"] = dense.weight("bias")
    state.update({f"bn.{k}": v for k, v in batchnorm_to_torch(bn).items()})
    state["classifier.weight"] = dense_kernel_to_torch(out.weight("kernel"))
    state["classifier.bias"] = out.weight("bias")
    if int(out.config["units"]) != len(FACEMOOD_LABELS):
        raise FacemoodConversionError(f"classifier has {out.config['units']} units; expected 7")
    return state, {"widths": widths, "hidden": int(dense.config["units"])}


def model_from_h5(h5_path: str | Path) -> nn.Module:
    """Build ``facemood_cnn`` with facemood's labels and load the Keras weights strictly."""
    from ferhub.models import create_model

    state, model_args = facemood_state(read_keras_h5(h5_path).graph)
    model = create_model(ARCHITECTURE, labels=FACEMOOD_LABELS, **model_args)
    load_state(model, state)
    return model.eval()


def convert(
    out_dir: str | Path, *, archive: str | Path | None = None, workdir: str | Path | None = None
) -> Path:
    """Write the ferhub repo for facemood to ``out_dir``, fetching the pinned wheel unless ``archive`` is
    given."""
    from ferhub import hub

    with tempfile.TemporaryDirectory(prefix="ferhub-facemood-") as tmp:
        wheel = Path(archive) if archive is not None else fetch(SOURCE, workdir or tmp)
        if sha256_file(wheel) != SOURCE.sha256:
            raise FacemoodConversionError(f"{wheel} is not the pinned {SOURCE.spec} wheel (sha256 differs)")
        h5 = extract_member(wheel, H5_MEMBER, Path(tmp) / "x")
        model = model_from_h5(h5)
        license_text = read_member(wheel, LICENSE_MEMBER).decode("utf-8")
        return hub.save(model, out_dir, card_context=card_context(license_text, h5_sha256=sha256_file(h5)))


def card_context(license_text: str, *, h5_sha256: str) -> dict[str, Any]:
    """The model card's provenance, licence, data, preprocessing and limitations for facemood (prose in
    ``ferhub/templates/zoo/facemood.md``)."""
    from ferhub.convert import _cards

    return {
        "model_name": MODEL_NAME,
        "repo_id": f"ferhub/{MODEL_NAME}",
        "license": "apache-2.0",
        "license_text": license_text.strip(),
        "tags": ["emotion-recognition", "converted-from-keras", "ferhub-zoo"],
        **_cards.zoo_card(
            MODEL_NAME,
            SOURCE,
            archive=f"facemood-{SOURCE.version}-py3-none-any.whl",
            file=H5_MEMBER,
            file_sha256=h5_sha256,
        ),
    }
