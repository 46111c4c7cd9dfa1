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
# the settings a resumed run may change: how long it trains, and the words about it its card shows (a shipped
# recipe's description or citation edited by a later ferhub changes nothing the run does)
RESUME_MAY_CHANGE = ("epochs", "early_stopping", "description", "citation")
# A setting TrainConfig gains from now on, with the value that does what ferhub did before it: a checkpoint
# that does not record it was trained that way, so it resumes. Checkpoints record every setting there is since
# 3ea3617 (2026-12-02); one from before lacks `selection`, whose earlier behaviour no value gives, and is
# refused. tests/test_checkpoint_settings.py makes whoever adds a setting fill this in.
EARLIER_VALUES: dict[str, Any] = {}


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


def _header(path: Path) -> tuple[Any, list[str]]:
    """The ``ferhub`` metadata (parsed JSON) and the tensor names of the checkpoint at ``path``, read from
    its header alone (no tensor) in one open; ``(None, [])`` where there is none to read (missing, truncated,
    not ours)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            names = list(f.keys())
            return json.loads((f.metadata() or {})["ferhub"]), names
    except Exception:  # safetensors raises its own error types for truncated/corrupt files
        return None, []


def _header_meta(path: Path) -> Any:
    """The ``ferhub`` metadata of the checkpoint at ``path`` (:func:`_header`), or ``None``."""
    return _header(path)[0]


def _ran_on_cuda(names: Any) -> bool:
    """Whether the run that saved a checkpoint with these tensor names used CUDA: its CUDA RNG states are
    saved whenever CUDA was initialised, which training on a GPU does (a CPU-only run has none)."""
    return any(str(n).startswith("rng.cuda.") for n in names)


def saved_epoch(path: Path) -> int | None:
    """The number of epochs done when the checkpoint at ``path`` was saved (read from its metadata alone), or
    ``None`` where there is no readable checkpoint."""
    try:
        return int(_header_meta(path)["state"]["epoch"])
    except Exception:  # missing, truncated or not ours: no epoch to trust
        return None


def saved_amp(path: Path) -> str | None:
    """The ``amp`` the checkpoint at ``path`` was trained with (read from its metadata alone), or ``None``
    where there is no readable checkpoint."""
    try:
        amp = _header_meta(path)["train_config"]["amp"]
    except Exception:  # missing, truncated or not ours: nothing to continue
        return None
    return amp if isinstance(amp, str) else None


def check_resume(path: Path, cfg: TrainConfig) -> None:
    """Refuse to resume ``path`` with settings other than those it was trained with, as :func:`restore`
    does, reading its metadata alone (no tensor): the run checks it before minutes of face detection.
    Nothing is said where ``path`` holds no checkpoint of this ferhub's (missing, truncated, another format
    or a newer version): a run that starts fresh there, or :func:`restore`'s refusal, says what it is."""
    meta, names = _header(path)
    try:
        saved = meta["train_config"] if meta.get("format") == CHECKPOINT_FORMAT else None
        if meta.get("version", 0) > CHECKPOINT_VERSION or not isinstance(saved, dict):
            return
    except Exception:  # missing, truncated or not ours: restore (or a fresh part) says so
        return
    _check_settings(path, saved, cfg, on_cuda=_ran_on_cuda(names))


def _json(value: Any) -> str:
    """A setting's value as JSON (a group's entries in any order)."""
    return json.dumps(value, default=json_default, sort_keys=True)


def _same(a: Any, b: Any) -> bool:
    """Whether two values of a setting train alike: numbers by value (``0`` and ``0.0``: ``--set lr=1`` and
    ``--lr 1`` are one setting), a group's entries in any order, lists and tuples alike."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    numbers = [isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b)]
    if all(numbers):
        return bool(a == b or (a != a and b != b))  # NaN is no other value than NaN
    return _json(a) == _json(b)


def _settings(names: list[str]) -> str:
    """``setting a`` or ``settings a, b``."""
    return f"setting{'s' if len(names) > 1 else ''} {', '.join(names)}"


def _change(key: str, old: Any, new: Any) -> str:
    """``key old -> new``; for a group of settings (``augment``, ``loss_args``), its entries that differ
    (``augment.hflip 0.5 -> 0.25``, or ``augment (hflip 0.5 -> (not set), rotate ... and 2 more)``)."""
    from ferhub.config import brief

    if not (isinstance(old, dict) and isinstance(new, dict)):
        return f"{key} {brief(old, 40)} -> {brief(new, 40)}"
    unset = object()

    def text(v: Any) -> str:
        return "(not set)" if v is unset else brief(v, 40)

    entries = [
        f"{k} {text(old.get(k, unset))} -> {text(new.get(k, unset))}"
        for k in sorted(set(old) | set(new), key=str)
        if (k in old) != (k in new) or not _same(old.get(k), new.get(k))
    ]
    if len(entries) == 1:
        return f"{key}.{entries[0]}"
    more = f" and {len(entries) - 2} more" if len(entries) > 2 else ""
    return f"{key} ({', '.join(entries[:2])}{more})"


def _set_item(key: str, value: Any) -> str:
    """The ``--set KEY=VALUE`` that gives a run this value of a setting, as
    :func:`~ferhub.training.recipes.apply_overrides` reads it: text as typed where it reads back as that
    text (``001`` for a text setting), else as JSON (``"q"`` with its quotes, ``null`` as text, numbers)."""
    from ferhub.training.recipes import _is_text_setting

    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return f"{key}={value}"  # not JSON: read as typed
        if _is_text_setting(key) and parsed is not None and not isinstance(parsed, str):
            return f"{key}={value}"  # a text setting keeps "001", "true" or "[1]" as typed
    return f"{key}={json.dumps(value, default=json_default)}"


def _recipe_advice(recipe: str) -> str:
    """How to resume with the recipe (and variant) a checkpoint was trained with: by its options for a shipped
    one, else by its name (a recipe file's, or a name given with ``--set recipe=``)."""
    import shlex

    from ferhub.training.recipes import list_recipes

    name, _, variant = recipe.partition(":")
    if name not in list_recipes():
        return f"resume with the recipe it was started with (named {recipe!r})"
    given = f"--recipe {shlex.quote(name)}" + (f" --variant {shlex.quote(variant)}" if variant else "")
    return f"resume with {given}"


def _check_settings(path: Path, saved: dict[str, Any], cfg: TrainConfig, *, on_cuda: bool = True) -> None:
    """Refuse to resume ``path`` with settings other than those it was trained with (bar
    :data:`RESUME_MAY_CHANGE`, and ``amp`` where the saved run was not ``on_cuda``): one that an older
    ferhub's checkpoint lacks, or values that differ (old -> new, the recipe first), saying what continues it
    as it was trained."""
    import shlex

    from ferhub.training.recipes import apply_overrides

    now = cfg.to_dict()
    # a new run from the checkpoint's weights works whatever the settings; a run without --resume into this
    # folder would remove the checkpoint first
    anew = f"start again in a new --output-dir (add --init {path} to start from its weights)"
    missing = sorted(k for k in now if k not in saved and k not in EARLIER_VALUES)
    if missing:  # in practice a checkpoint from before 3ea3617, which lacks selection (see EARLIER_VALUES)
        raise CheckpointError(
            f"{path} was written by an older ferhub, before the {_settings(missing)} existed, so this ferhub"
            f" cannot continue it as it was trained; finish it with that ferhub, or {anew}"
        )
    old = {k: saved[k] if k in saved else EARLIER_VALUES[k] for k in now if k not in RESUME_MAY_CHANGE}
    if not on_cuda:
        # autocast is CUDA-only (training.loop._autocast): a run off CUDA trained in float32 whatever its amp
        # said (an older ferhub took --amp on the CPU; a recipe's own amp still runs there), so no refusal
        old.pop("amp", None)
    # another recipe is why most of its settings differ: named first, and it is what to give back
    differ = sorted((k for k in old if not _same(old[k], now[k])), key=lambda k: (k != "recipe", k))
    if not differ:
        return
    changes = [_change(k, old[k], now[k]) for k in differ]
    shown = ", ".join(changes[:4]) + (f" and {len(changes) - 4} more" if len(changes) > 4 else "")
    may = ", ".join(RESUME_MAY_CHANGE[:-1]) + f" and {RESUME_MAY_CHANGE[-1]}"
    if "recipe" in differ:
        fix = f"To continue it as it was trained, {_recipe_advice(old['recipe'])} and the options that"
        fix += " started it"
    else:
        items = [_set_item(k, old[k]) for k in differ]
        # advice only where it works: a value this ferhub refuses (another ferhub wrote it) is no --set option
        try:
            again = apply_overrides(cfg, items).to_dict()
            works = all(_same(old[k], again[k]) for k in old)
        except (FerhubError, TypeError, ValueError):
            works = False
        options = " ".join("--set " + shlex.quote(i) for i in items)
        fix = f"To continue it as it was trained, add {options}"
        if not works:
            fix = "This ferhub does not take all of its values back as --set options: finish it with the"
            fix += " ferhub that started it"
    raise CheckpointError(
        f"{path} was trained with other settings than this run's: {shown}; the recipe or overrides changed"
        f" (only {may} may). {fix}; or {anew}"
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
    _check_settings(path, meta["train_config"], cfg, on_cuda=_ran_on_cuda(tensors))
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
