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

from ferhub.errors import CheckpointError, FerhubError
from ferhub.fileio import atomic_path
from ferhub.hub._weights import unwrap
from ferhub.training.loop import State
from ferhub.training.optim import EMA, LRSchedule
from ferhub.training.settings import TrainConfig

CHECKPOINT_FORMAT = "ferhub-checkpoint"
CHECKPOINT_VERSION = 1
# the settings a resumed run may change
RESUME_MAY_CHANGE = ("epochs", "early_stopping")
# The settings TrainConfig gained after checkpoints began (6f55eae, 2026-11-24), each with the value that does
# what ferhub did before the setting existed: a checkpoint that does not record one was trained that way. A
# setting added later needs its entry here (the value that keeps the earlier behaviour, read from the commit
# that added it) or in NO_EARLIER_VALUE; without one, no checkpoint lacking it can be resumed.
EARLIER_VALUES: dict[str, Any] = {
    "sync_bn": False,  # a4fb8bf: no SyncBatchNorm
    "plateau_rule": "torch",  # 3ea3617: the plateau schedule cut the rate after patience + 1 flat epochs
    "kernel_l2": 0.0,  # 3ea3617: no kernel penalty
    "kernel_l2_layers": [],
    "monitor": "mean_class_recall",  # 3ea3617: it chose the epoch and drove plateau and early stopping
    "repeats": 1,
    "sampler": "shuffle",  # 3ea3617: every epoch a permutation of the crops
    "face_detection": True,
}
# settings added since for which no value reproduces what ferhub did before them, and why: a checkpoint that
# lacks one cannot be continued by this ferhub
NO_EARLIER_VALUE: dict[str, str] = {
    # 3ea3617: without a test split, the validation data carved out of the training data chose the epoch and
    # was reported; "inner" carves a second share to choose on, and "last" chooses nothing
    "selection": "until it came, a run without a test split reported on the data that chose its epoch, which"
    " no selection does now, so the run could go on training and choosing on other images than it began with",
}
# values older checkpoints hold that today's settings spell otherwise: tta was true/false until 0421352, and
# false (no test-time augmentation) is today's null; its true (the old ten-crop) has no exact counterpart
_RESPELLED: dict[str, dict[str, Any]] = {"tta": {"false": None}}


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


def _json(value: Any) -> str:
    """A setting's value as JSON, to compare (a group's entries in any order)."""
    return json.dumps(value, default=json_default, sort_keys=True)


def _as_today(key: str, value: Any) -> str:
    """A setting's value as :func:`_json`, an older spelling of the same setting turned into today's."""
    text = _json(value)
    return _json(_RESPELLED[key][text]) if text in _RESPELLED.get(key, {}) else text


def setting_differences(saved: dict[str, Any], now: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """How the settings a checkpoint was trained with (``saved``) differ from a run's (``now``), leaving out
    those a resumed run may change: ``({setting: its value in the checkpoint}, [settings nothing tells])``.

    A setting the checkpoint does not record (an older ferhub wrote it) counts with its
    :data:`EARLIER_VALUES` value, what that ferhub did; one without such a value (:data:`NO_EARLIER_VALUE`,
    or a setting added since with no entry) is in the second list.
    """
    differ: dict[str, Any] = {}
    unknown: list[str] = []
    for key in sorted(set(now) - set(RESUME_MAY_CHANGE)):
        if key in saved:
            old = saved[key]
        elif key in EARLIER_VALUES:
            old = EARLIER_VALUES[key]
        else:
            unknown.append(key)
            continue
        if _as_today(key, old) != _as_today(key, now[key]):
            differ[key] = old
    return differ, unknown


def _settings(names: list[str]) -> str:
    """``setting a`` or ``settings a, b``."""
    return f"setting{'s' if len(names) > 1 else ''} {', '.join(names)}"


def _changes(key: str, old: Any, new: Any) -> list[str]:
    """``key old -> new``, or for a group of settings (``augment``, ``loss_args``) one such per entry that
    differs, so a long group shows what changed."""
    from ferhub.config import brief

    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [f"{key} {brief(old, 40)} -> {brief(new, 40)}"]
    unset = object()

    def text(v: Any) -> str:
        return "(not set)" if v is unset else brief(v, 40)

    return [
        f"{key}.{k} {text(old.get(k, unset))} -> {text(new.get(k, unset))}"
        for k in sorted(set(old) | set(new), key=str)
        if _json(old.get(k)) != _json(new.get(k)) or (k in old) != (k in new)
    ]


def _set_items(old: dict[str, Any]) -> list[str]:
    """The ``KEY=VALUE`` items of ``--set`` that give a run these settings' values (text as typed, the
    rest as JSON, as :func:`~ferhub.training.recipes.apply_overrides` reads them)."""
    return [f"{k}={v if isinstance(v, str) else json.dumps(v, default=json_default)}" for k, v in old.items()]


def _check_settings(path: Path, saved: dict[str, Any], cfg: TrainConfig) -> None:
    """Refuse to resume ``path`` with settings other than those it was trained with (bar
    :data:`RESUME_MAY_CHANGE`): the message says which differ (old -> new), whether an older ferhub wrote it,
    and the ``--set`` options that continue it as it was trained, where this ferhub takes them."""
    import shlex

    from ferhub.training.recipes import apply_overrides

    now = cfg.to_dict()
    differ, unknown = setting_differences(saved, now)
    # a new run from the checkpoint's weights works whatever the settings; a run without --resume into this
    # folder would remove the checkpoint first
    anew = f"start again in a new --output-dir (add --init {path} to start from its weights)"
    if unknown:
        why = "; ".join(
            f"{k}: {NO_EARLIER_VALUE.get(k, 'no value of it is known to do what that ferhub did')}"
            for k in unknown
        )
        raise CheckpointError(
            f"{path} was written by an older ferhub, before the {_settings(unknown)} existed, so this ferhub"
            f" cannot continue that run as it was trained ({why}); finish it with the ferhub that started it,"
            f" or {anew}"
        )
    if not differ:
        return
    unrecorded = [k for k in differ if k not in saved]
    # what the checkpoint records first: those values are facts, the others what that ferhub did
    names = [k for k in differ if k in saved] + unrecorded
    changes = [c for k in names for c in _changes(k, differ[k], now[k])]
    shown = ", ".join(changes[:4]) + (f" and {len(changes) - 4} more" if len(changes) > 4 else "")
    if unrecorded:
        why = (
            f"; an older ferhub wrote it, before the {_settings(unrecorded)} existed (the old value shown"
            " is what that ferhub did), so ferhub or its recipe changed since, not only the command line"
        )
    else:
        why = f"; the recipe or overrides changed (only {' and '.join(RESUME_MAY_CHANGE)} may)"
    items = _set_items({k: differ[k] for k in names})
    # advice only where it works: a value this ferhub refuses (an old tta true) cannot be given back, and an
    # old value of another shape (TypeError) gives no advice but never hides the refusal
    try:
        works = not setting_differences(saved, apply_overrides(cfg, items).to_dict())[0]
    except (FerhubError, TypeError, ValueError):
        works = False
    if works:
        fix = f"To continue it as it was trained, add {' '.join('--set ' + shlex.quote(i) for i in items)}"
    else:
        fix = "This ferhub cannot take all of its settings: finish it with the ferhub that started it"
    raise CheckpointError(
        f"{path} was trained with other settings than this run's: {shown}{why}. {fix}; or {anew}"
    )


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
    _check_settings(path, meta["train_config"], cfg)
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
