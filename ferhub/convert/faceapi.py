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

    Fetches the pinned npm tarball with ``npm pack`` unless ``archive`` (a local copy) is given; either way
    its sha256 must match the pin.
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
    """The model card's provenance, licence, data, preprocessing and limitations for face-api's net (prose in
    ``ferhub/templates/zoo/faceapi-expression.md``)."""
    from ferhub.convert import _cards

    return {
        "model_name": "faceapi-expression",
        "repo_id": "ferhub/faceapi-expression",
        "license": "mit",
        "license_text": license_text.strip(),
        "tags": ["emotion-recognition", "converted-from-tfjs", "face-api", "ferhub-zoo"],
        **_cards.zoo_card(
            "faceapi-expression",
            SOURCE,
            archive=f"vladmandic-face-api-{SOURCE.version}.tgz",
            file="package/model/face_expression_model-weights_manifest.json + face_expression_model.bin",
            file_sha256=files_sha256,
        ),
    }
