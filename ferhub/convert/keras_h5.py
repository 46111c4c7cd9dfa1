"""Safe reader of Keras HDF5 models: the layer graph from ``model_config`` and each layer's weights, via h5py.

Nothing is executed or unpickled: the graph is parsed from the JSON in the file's attributes (a ``Lambda``
layer's code stays an opaque string), and weights are plain HDF5 datasets. Keras 2.0-2.x functional and
Sequential configs and Keras 3 functional configs are understood; nested models (a Sequential wrapping a
pretrained base) become a :class:`KerasGraph` inside the outer layer.

>>> model = read_keras_h5("emotion_model.hdf5")             # doctest: +SKIP
>>> model.keras_version, model.graph.outputs                # doctest: +SKIP
('2.0.5', ['predictions'])
>>> layer = model.graph.layer("conv2d_1")                   # doctest: +SKIP
>>> layer.class_name, layer.inbound, layer.weights["kernel"].shape  # doctest: +SKIP
('Conv2D', ['input_1'], (3, 3, 1, 8))

The ``*_to_torch`` helpers convert Keras weight layouts to PyTorch's, and :func:`load_state` loads a converted
state dict strictly, naming every missing, unexpected or mis-shaped tensor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ferhub._compat import import_extra
from ferhub.errors import ConversionError

_MODEL_CLASSES = ("Model", "Functional", "Sequential")


class KerasH5Error(ConversionError):
    """The file is not a Keras HDF5 model this reader understands, or a layer is not where it is expected."""


def _h5py() -> Any:
    """h5py (the ``convert`` extra), else the one-line error naming ``pip install 'ferhub[convert]'``."""
    return import_extra("h5py", "convert", "Reading a Keras HDF5 file")


@dataclass
class KerasLayer:
    """One layer: its Keras class and config, the layers feeding it, and its weights by short name.

    ``weights`` maps ``"kernel"``, ``"bias"``, ``"gamma"``, ``"moving_mean"``, ``"depthwise_kernel"``, ... to
    arrays in the file's order; for a nested model the keys keep the sub-layer (``"block1_conv1/kernel"``).
    """

    name: str
    class_name: str
    config: dict[str, Any]
    inbound: list[str] = field(default_factory=list)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    submodel: KerasGraph | None = None

    def weight(self, name: str) -> np.ndarray:
        if name not in self.weights:
            raise KerasH5Error(
                f"layer {self.name!r} ({self.class_name}) has no weight {name!r}; it has {list(self.weights)}"
            )
        return self.weights[name]


@dataclass
class KerasGraph:
    """A model's layers in config order, with its input and output layer names."""

    name: str
    class_name: str
    layers: dict[str, KerasLayer]
    inputs: list[str]
    outputs: list[str]

    def layer(self, name: str) -> KerasLayer:
        if name not in self.layers:
            raise KerasH5Error(f"no layer {name!r} in model {self.name!r}; layers: {list(self.layers)}")
        return self.layers[name]

    def __iter__(self) -> Iterator[KerasLayer]:
        return iter(self.layers.values())

    def consumers(self, name: str) -> list[str]:
        """Layers that take ``name``'s output as an input, in config order."""
        return [lay.name for lay in self if name in lay.inbound]

    def producer(self, name: str, *, expect: str | tuple[str, ...] | None = None) -> KerasLayer:
        """The single layer feeding ``name`` (error if it has none or several, or is not of class
        ``expect``)."""
        inbound = self.layer(name).inbound
        if len(inbound) != 1:
            raise KerasH5Error(f"layer {name!r} has inputs {inbound}; expected exactly one")
        return self.expect(inbound[0], expect)

    def expect(self, name: str, class_name: str | tuple[str, ...] | None) -> KerasLayer:
        """The layer ``name``, checked to be of Keras class ``class_name`` (or one of several)."""
        lay = self.layer(name)
        wanted = (class_name,) if isinstance(class_name, str) else class_name
        if wanted is not None and lay.class_name not in wanted:
            raise KerasH5Error(f"layer {name!r} is a {lay.class_name}; expected {' or '.join(wanted)}")
        return lay


@dataclass
class KerasModel:
    """What a Keras ``.h5`` holds: metadata, the graph with weights, and the training config (if saved)."""

    path: Path
    keras_version: str
    backend: str
    graph: KerasGraph
    training_config: dict[str, Any] | None = None


def _attr_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes | np.bytes_) else str(value)


def _strip_weight_name(layer: str, weight_name: str) -> str:
    """``conv2d_1_1/kernel:0`` -> ``kernel``; a nested model's ``block1_conv1/kernel:0`` keeps its
    sub-layer."""
    name = re.sub(r":\d+$", "", weight_name)
    parts = name.split("/")
    # Keras 2 prefixes the layer's own scope (``conv2d_1`` or ``conv2d_1_1``); Keras 3 legacy h5 may not.
    if len(parts) > 1 and re.fullmatch(re.escape(layer) + r"(_\d+)?", parts[0]):
        parts = parts[1:]
    return "/".join(parts)


def _read_layer_weights(group: Any, layer: str) -> dict[str, np.ndarray]:
    h5py = _h5py()

    if layer not in group:
        return {}
    g = group[layer]
    names = [_attr_str(n) for n in g.attrs.get("weight_names", [])]
    out: dict[str, np.ndarray] = {}
    for wn in names:
        ds = g.get(wn)
        if not isinstance(ds, h5py.Dataset):
            raise KerasH5Error(f"layer {layer!r}: weight {wn!r} listed in weight_names is not in the file")
        if ds.dtype.kind not in "fiub":
            raise KerasH5Error(f"layer {layer!r}: weight {wn!r} has non-numeric dtype {ds.dtype}")
        key = _strip_weight_name(layer, wn)
        if key in out:
            raise KerasH5Error(f"layer {layer!r}: two weights map to the name {key!r}")
        out[key] = np.asarray(ds[()])
    return out


def _inbound_names(raw: Any) -> list[str]:
    """Layer names of the first call node, from Keras 2 (nested lists) or Keras 3 (``keras_history``) form."""
    if not raw:
        return []
    node = raw[0]
    names: list[str] = []
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}

        def visit(obj: Any) -> None:
            if isinstance(obj, dict):
                if "keras_history" in obj.get("config", {}):
                    names.append(obj["config"]["keras_history"][0])
                    return
                for v in obj.values():
                    visit(v)
            elif isinstance(obj, list):
                for v in obj:
                    visit(v)

        visit(node.get("args", []))
        return names
    for entry in node:  # Keras 2: [[layer_name, node_index, tensor_index, kwargs], ...]
        if not (isinstance(entry, list) and entry and isinstance(entry[0], str)):
            raise KerasH5Error(f"unrecognised inbound node entry {entry!r}")
        names.append(entry[0])
    return names


def _io_names(raw: Any) -> list[str]:
    if raw and isinstance(raw[0], str):  # a single [name, node, tensor] triple (Keras 3 single output)
        return [raw[0]]
    return [entry[0] for entry in raw]


def _parse_graph(cfg: dict[str, Any], weights_group: Any) -> KerasGraph:
    class_name = cfg.get("class_name")
    if class_name not in _MODEL_CLASSES:
        raise KerasH5Error(f"model_config class {class_name!r} is not one of {_MODEL_CLASSES}")
    conf = cfg["config"]
    if class_name == "Sequential":
        raw_layers = conf if isinstance(conf, list) else conf["layers"]  # Keras 2.0 stored a bare list
        name = "sequential" if isinstance(conf, list) else conf.get("name", "sequential")
        layers: dict[str, KerasLayer] = {}
        prev: str | None = None
        for raw in raw_layers:
            lname = raw.get("name") or raw["config"]["name"]
            layers[lname] = _make_layer(raw, lname, [prev] if prev else [], weights_group)
            prev = lname
        if not layers:
            raise KerasH5Error("Sequential model without layers")
        first = next(iter(layers))
        return KerasGraph(name, class_name, layers, [first], [prev] if prev else [])
    layers = {}
    for raw in conf["layers"]:
        lname = raw.get("name") or raw["config"]["name"]
        layers[lname] = _make_layer(raw, lname, _inbound_names(raw.get("inbound_nodes")), weights_group)
    graph = KerasGraph(
        conf.get("name", "model"),
        class_name,
        layers,
        _io_names(conf["input_layers"]),
        _io_names(conf["output_layers"]),
    )
    for lay in graph:
        for src in lay.inbound:
            if src not in layers:
                raise KerasH5Error(f"layer {lay.name!r} reads from unknown layer {src!r}")
    return graph


def _make_layer(raw: dict[str, Any], name: str, inbound: list[str], weights_group: Any) -> KerasLayer:
    sub = None
    if raw.get("class_name") in _MODEL_CLASSES:
        # A nested model's weights are stored flat under the outer layer's group; its sub-layers get none.
        sub = _parse_graph(raw, None)
    weights = _read_layer_weights(weights_group, name) if weights_group is not None else {}
    return KerasLayer(name, raw["class_name"], dict(raw.get("config") or {}), inbound, weights, sub)


def read_keras_h5(path: str | Path) -> KerasModel:
    """Read a Keras ``model.save(...h5)`` file: graph from ``model_config`` plus every layer's weights."""
    h5py = _h5py()

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise KerasH5Error(f"{path} is not a readable HDF5 file ({e})") from e
    with f:
        if "model_config" not in f.attrs:
            raise KerasH5Error(
                f"{path} has no model_config: it holds weights only (save_weights); read it with "
                "read_keras_weights() and supply the architecture yourself"
            )
        cfg = json.loads(_attr_str(f.attrs["model_config"]))
        group = f.get("model_weights", f)
        graph = _parse_graph(cfg, group)
        train = f.attrs.get("training_config")
        return KerasModel(
            path=path,
            keras_version=_attr_str(f.attrs.get("keras_version", group.attrs.get("keras_version", "?"))),
            backend=_attr_str(f.attrs.get("backend", group.attrs.get("backend", "?"))),
            graph=graph,
            training_config=json.loads(_attr_str(train)) if train is not None else None,
        )


def read_keras_weights(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Weights of every layer that has any, by layer name (for ``save_weights`` files without a graph)."""
    h5py = _h5py()

    with h5py.File(path, "r") as f:
        group = f.get("model_weights", f)
        names = [_attr_str(n) for n in group.attrs.get("layer_names", list(group))]
        out = {n: _read_layer_weights(group, n) for n in names}
    return {k: v for k, v in out.items() if v}


# --- Keras -> PyTorch layouts -----------------------------------------------------------------------------


def conv2d_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Conv2D kernel (H, W, in, out) -> PyTorch (out, in, H, W)."""
    if kernel.ndim != 4:
        raise KerasH5Error(f"Conv2D kernel must be 4-D (H, W, in, out), got shape {kernel.shape}")
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def depthwise_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Depthwise kernel (H, W, C, M) -> grouped PyTorch conv (C*M, 1, H, W), channel-major like Keras."""
    if kernel.ndim != 4:
        raise KerasH5Error(f"depthwise kernel must be 4-D (H, W, C, M), got shape {kernel.shape}")
    h, w, c, m = kernel.shape
    return np.ascontiguousarray(kernel.transpose(2, 3, 0, 1).reshape(c * m, 1, h, w))


def dense_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Dense kernel (in, out) -> Linear weight (out, in)."""
    if kernel.ndim != 2:
        raise KerasH5Error(f"Dense kernel must be 2-D (in, out), got shape {kernel.shape}")
    return np.ascontiguousarray(kernel.T)


def batchnorm_to_torch(layer: KerasLayer) -> dict[str, np.ndarray]:
    """BatchNormalization weights -> ``weight``/``bias``/``running_mean``/``running_var``.

    Keras omits gamma when ``scale=False`` and beta when ``center=False``; those become 1 and 0.
    """
    mean, var = layer.weight("moving_mean"), layer.weight("moving_variance")
    return {
        "weight": layer.weights.get("gamma", np.ones_like(mean)),
        "bias": layer.weights.get("beta", np.zeros_like(mean)),
        "running_mean": mean,
        "running_var": var,
    }


def load_state(module: Any, arrays: Mapping[str, np.ndarray]) -> None:
    """Load converted arrays into ``module`` strictly: every parameter and buffer set, shapes identical.

    ``num_batches_tracked`` buffers of BatchNorm layers (PyTorch-only bookkeeping) are set to 0 when absent.
    """
    import torch

    expected = module.state_dict()
    state = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()}
    for k, v in expected.items():
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = torch.zeros_like(v)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{k}: converted {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:
        raise KerasH5Error(
            "converted weights do not fit the PyTorch model: "
            f"missing {missing}, unexpected {unexpected}, wrong shapes {wrong}"
        )
    module.load_state_dict(state, strict=True)
