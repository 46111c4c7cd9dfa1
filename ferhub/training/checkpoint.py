"""Training checkpoints: one safetensors file each (tensors + JSON metadata, no pickles), written atomically;
:func:`restore` brings back model, optimizer, schedule, scaler, EMA and every RNG, so ``--resume`` continues
as if the run had never stopped."""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ferhub.errors import CheckpointError
from ferhub.fileio import atomic_path
from ferhub.hub._weights import unwrap
from ferhub.training.loop import State
from ferhub.training.optim import EMA, LRSchedule
from ferhub.training.settings import TrainConfig

CHECKPOINT_FORMAT = "ferhub-checkpoint"
CHECKPOINT_VERSION = 1


def _flat_optimizer(opt_state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for pid, st in opt_state["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def _unflat_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for pid, sc in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(sc)
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    np_state = np.random.get_state()
    meta = {
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted((k for k in tensors if k.startswith("rng.cuda.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    n = meta["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = meta["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))


def save_checkpoint(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    state: State,
    cfg: TrainConfig,
    scaler: torch.amp.GradScaler | None = None,
    ema: EMA | None = None,
) -> Path:
    """One safetensors file: model/EMA/optimizer tensors and RNG states, the rest as JSON metadata.

    Written to a temporary file, fsynced and renamed over ``path``, so a kill leaves the old or the new file.
    """
    from safetensors.torch import save_file

    tensors = {
        f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in unwrap(model).state_dict().items()
    }
    if ema is not None:
        tensors.update(
            {f"ema.{k}": v.detach().cpu().contiguous().clone() for k, v in ema.module.state_dict().items()}
        )
    opt_tensors, opt_meta = _flat_optimizer(optimizer.state_dict())
    tensors.update(opt_tensors)
    rng_tensors, rng_meta = _rng_state()
    tensors.update(rng_tensors)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "state": asdict(state),
        "optimizer": opt_meta,
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_meta,
        "train_config": cfg.to_dict(),
        "model_config": unwrap(model).config.to_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"ferhub": json.dumps(meta, default=json_default)})
    return path


def json_default(o: Any) -> Any:
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, tuple):
        return list(o)
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    raise TypeError(f"cannot store {type(o).__name__} in a checkpoint")


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a checkpoint written by :func:`save_checkpoint`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path} not found; start without --resume, or give the --output-dir of the run to continue"
        )
    try:
        with safe_open(str(path), "pt") as f:
            raw = (f.metadata() or {}).get("ferhub")
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({e})") from e
    meta = json.loads(raw) if raw else {}
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a ferhub training checkpoint (no '{CHECKPOINT_FORMAT}' metadata)"
        )
    if meta.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path} was written by a newer ferhub (checkpoint version {meta['version']})")
    return tensors, meta


def saved_epoch(path: Path) -> int | None:
    """The number of epochs done when the checkpoint at ``path`` was saved (read from its metadata alone), or
    ``None`` where there is no readable checkpoint."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return int(json.loads((f.metadata() or {})["ferhub"])["state"]["epoch"])
    except Exception:  # missing, truncated or not ours: no epoch to trust
        return None


def restore(
    path: Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: LRSchedule,
    cfg: TrainConfig,
    scaler: torch.amp.GradScaler | None,
    ema: EMA | None,
) -> State:
    """Load ``path`` into the run's objects (refusing one trained with other settings); returns its state."""
    tensors, meta = read_checkpoint(path)
    saved = {k: v for k, v in meta["train_config"].items() if k not in ("epochs", "early_stopping")}
    now = {k: v for k, v in cfg.to_dict().items() if k not in ("epochs", "early_stopping")}
    diff = sorted(
        k
        for k in now
        if json.dumps(now[k], default=json_default) != json.dumps(saved.get(k), default=json_default)
    )
    if diff:
        raise CheckpointError(
            f"{path} was trained with different settings ({', '.join(diff)}); resume with the same recipe and"
            " overrides (only epochs and early_stopping may change), or start a new output folder"
        )
    # the classes come from the data, not the settings: other data would fail in load_state_dict (another
    # count) or silently relabel every class (the same count)
    saved_labels = list((meta.get("model_config") or {}).get("labels") or [])
    labels = list(unwrap(model).config.labels)
    if saved_labels and saved_labels != labels:
        raise CheckpointError(
            f"{path} was trained on classes {saved_labels}, but the data now gives {labels}; resume with the "
            "same data, or start a new output folder"
        )
    unwrap(model).load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.module.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    # CPU tensors: load_state_dict moves moments to each parameter's device and keeps Adam's "step" counters
    # where a non-capturable Adam wants them (on the CPU)
    optimizer.load_state_dict(_unflat_optimizer(tensors, meta["optimizer"]))
    for g in optimizer.param_groups:  # JSON turned tuples into lists
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    schedule.load_state_dict(meta["schedule"])
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    _set_rng_state(tensors, meta["rng"])
    st = meta["state"]
    st["best_metric"] = float(st["best_metric"])
    return State(**st)
