"""Weights in and out of a model repo: ``model.safetensors`` written and read strictly, tied tensors stored
once, and outside PyTorch checkpoints imported without unpickling code."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ferhub.errors import CheckpointError, ModelLoadError, PretrainedWeightsError
from ferhub.fileio import atomic_path

if TYPE_CHECKING:  # torch only where tensors are handled: resolving a repo needs none
    import torch
    from torch import nn

    from ferhub.config import ModelConfig


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside torch.compile / DataParallel / DistributedDataParallel wrappers (their state dict
    names carry ``_orig_mod.`` / ``module.`` prefixes that the registry's model does not have)."""
    from torch import nn

    while True:
        if isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        elif isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        else:
            return model


def _view_key(t: torch.Tensor) -> tuple:
    """Identity of a tensor view: equal keys mean the very same memory (tied weights)."""
    return (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)


def _alias_groups(state: Mapping[str, torch.Tensor]) -> list[list[str]]:
    """Names that are the same tensor (tied parameters), each group sorted, only groups of two or more."""
    groups: dict[tuple, list[str]] = {}
    for name, t in state.items():
        if t.numel():
            groups.setdefault(_view_key(t), []).append(name)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def tensors_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as safetensors wants it: tied tensors once, contiguous, on CPU, no shared memory."""
    state = model.state_dict()
    drop = {name for group in _alias_groups(state) for name in group[1:]}
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple] = set()
    for name, t in state.items():
        if name in drop:
            continue
        t = t.detach().to("cpu").contiguous()
        storage = (t.untyped_storage().data_ptr(), t.device)
        if t.numel() and storage in seen:  # distinct views of one buffer: safetensors refuses shared memory
            t = t.clone()
        seen.add((t.untyped_storage().data_ptr(), t.device))
        out[name] = t
    return out


def canonical_header(data: bytes) -> tuple[bytes, int]:
    """The length prefix and header of ``data`` (a safetensors file) in one canonical form, and where its
    tensor bytes start: safetensors writes the ``__metadata__`` map in hash-map order, which differs from save
    to save, so the same model gave different bytes (a new upload, a new cache snapshot). Keys sorted,
    compact JSON padded to 8 bytes; the tensors' entries and order are kept."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    if isinstance(header.get("__metadata__"), dict):
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))  # stays first in the header
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text, 8 + n


def write_weights(model: nn.Module, path: Path) -> None:
    """``model.safetensors`` of ``model`` (atomically), with architecture and ferhub version as metadata;
    byte for byte the same file for the same weights (:func:`canonical_header`).

    ``save_file`` streams the tensors to disk (building the whole file in memory took twice the model's size
    at peak); the header is then made canonical in place, where it keeps its length (it does: sorting the
    metadata moves no bytes in or out of safetensors' compact JSON), else the file is rewritten after it.
    """
    from safetensors.torch import save_file

    from ferhub import __version__

    metadata = {"format": "pt", "architecture": model.config.architecture, "ferhub_version": __version__}
    with atomic_path(path) as tmp:
        save_file(tensors_for_saving(model), str(tmp), metadata=metadata)
        with open(tmp, "r+b") as f:
            prefix = f.read(8)
            header, start = canonical_header(prefix + f.read(int.from_bytes(prefix, "little")))
            if len(header) == start:
                f.seek(0)
                f.write(header)
                return
        with atomic_path(tmp) as rewritten, open(tmp, "rb") as src, open(rewritten, "wb") as dst:
            dst.write(header)
            src.seek(start)
            shutil.copyfileobj(src, dst, 1 << 20)  # the tensors, a megabyte at a time


def mismatch(
    model: nn.Module, tensors: Mapping[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str], list[str], list[str]]:
    """How ``tensors`` fit ``model``: ``(tensors, tied names filled in; missing; unexpected; wrong shapes)``.

    Tied weights are stored once, under any of their names, so each alias group is completed from whichever
    name the file holds. Wrong shapes read ``"name (file shape) vs (model shape)"``.
    """
    expected = model.state_dict()
    tensors = dict(tensors)
    for group in _alias_groups(expected):
        present = [n for n in group if n in tensors]
        for n in group:
            if present and n not in tensors:
                tensors[n] = tensors[present[0]]
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        f"{n} {tuple(tensors[n].shape)} vs {tuple(expected[n].shape)}"
        for n in set(tensors) & set(expected)
        if tensors[n].shape != expected[n].shape
    )
    return tensors, missing, unexpected, wrong


def _short(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > limit else shown


def load_state_strict(
    model: nn.Module, tensors: Mapping[str, torch.Tensor], source: str, config_path: str
) -> None:
    """Load ``tensors`` into ``model``; missing, unexpected or wrongly shaped weights are a clear error."""
    from ferhub.models._limits import check_finite_weights

    check_finite_weights(tensors, source, ModelLoadError)  # NaN/inf weights give NaN for every face
    tensors, missing, unexpected, wrong = mismatch(model, tensors)
    if missing or unexpected or wrong:
        config: ModelConfig = model.config
        problems = [
            f"missing weights: {_short(missing)}" if missing else "",
            f"unexpected weights: {_short(unexpected)}" if unexpected else "",
            f"wrong shapes (file vs model): {_short(wrong)}" if wrong else "",
        ]
        raise ModelLoadError(
            f"{source} does not match the network that {config_path} describes (architecture "
            f"{config.architecture!r}, model_args {config.model_args}, {config.num_classes} labels): "
            f"{'; '.join(p for p in problems if p)}. Fix: config.json must describe the network these "
            "weights were trained as (architecture, model_args, number of labels); re-save the model with "
            "ferhub.hub.save(model, folder) rather than editing either file by hand."
        )
    model.load_state_dict(tensors, strict=True)


def read_weights(path: Path, fix: str | Callable[[], str] | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a repo's ``model.safetensors``; :class:`ModelLoadError` when it cannot be read, ending
    in ``fix`` (a Hub snapshot's says whose copy is damaged; a callable is asked only then) or, by default,
    in re-saving the model."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        fix = fix() if callable(fix) else fix
        raise ModelLoadError(
            f"{path} is not a readable safetensors file ({e}). Fix: it is corrupt or truncated; "
            f"{fix or 're-save the model with ferhub.hub.save(model, folder)'}"
        ) from e


MAX_HEADER = 100_000_000  # bytes: safetensors' own limit on a header


def num_weights(path: Path) -> int | None:
    """How many numbers a safetensors file holds, read from its header; ``None`` without the file or a header
    that cannot be read. Read here, not by ``safe_open``, which refuses a path that is not UTF-8 (a Latin-1
    folder name): ``ferhub evaluate --out`` there ended in an internal error."""
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        text = f.read(size) if size <= MAX_HEADER else b""
    try:
        header = json.loads(text)
        return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):  # not a safetensors header
        return None


def import_torch_checkpoint(path: str | os.PathLike, config: ModelConfig) -> nn.Module:
    """Build ``config``'s network and fill it from a PyTorch ``.pt/.pth/.bin`` state dict, unpickling no code.

    The file is read by :func:`ferhub.pretrained.load_checkpoint` (``torch.load(weights_only=True)``, which
    accepts only tensors and plain containers; ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers and
    ``module.`` prefixes are unwrapped). :func:`ferhub.hub.save` the result to get a safetensors repo.

    >>> model = import_torch_checkpoint("resnet.pth", ModelConfig.load("repo"))  # doctest: +SKIP
    """
    from ferhub.models import build_from_config
    from ferhub.pretrained import load_checkpoint

    try:
        state = load_checkpoint(path)
    except (CheckpointError, PretrainedWeightsError) as e:
        raise ModelLoadError(str(e)) from e
    model = build_from_config(config)
    load_state_strict(model, state, str(path), "the given config")
    return model.eval()
