""":func:`fit`: train one model on in-memory crops, choosing its epoch on a validation set, with
checkpoints."""

from __future__ import annotations

import copy
import json
import math
import os
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ferhub.config import ModelConfig
from ferhub.data import Crops
from ferhub.errors import CheckpointError, TrainingDiverged
from ferhub.fileio import atomic_path
from ferhub.training.checkpoint import json_default, read_checkpoint, restore, save_checkpoint, saved_epoch
from ferhub.training.distributed import SINGLE_PROCESS, Dist, barrier, broadcast_buffers, broadcast_object
from ferhub.training.loop import State, epoch_batches, evaluate, score, train_one_epoch
from ferhub.training.optim import EMA, LRSchedule, build_optimizer, kernel_penalty, regularized_kernels
from ferhub.training.settings import CLASS_COUNT_LOSSES, RecipeError, TrainConfig

# on_best(model, epoch, metrics): the epoch's validation metrics, with "loss" the monitored validation loss
OnBest = Callable[[nn.Module, int, dict[str, Any]], None]


@dataclass
class FitResult:
    model: nn.Module  # the weights to release: EMA if on, from the best epoch
    state: State
    val_probs: np.ndarray
    val_metrics: dict[str, Any]
    stopped_early: bool


# how a run does without pretrained weights that are not there (the end of the missing file's message)
WITHOUT_PRETRAINED = (
    "Or train without them (from a random start): --set model_args.pretrained=false (in Python:"
    " model_args={..., 'pretrained': False})."
)


def without_pretrained(cfg: TrainConfig) -> str:
    """:data:`WITHOUT_PRETRAINED` for ``cfg``: where its model freezes backbone stages that the weights would
    fill (seed 003's VGGFace2 backbone, seed 004's ImageNet stages), the setting that trains them too, as
    they would otherwise stay random (:func:`random_frozen_stages` refuses the run)."""
    if cfg.init is not None or not cfg.model_args.get("pretrained"):  # no pretrained file is looked for
        return WITHOUT_PRETRAINED
    frozen = random_frozen_stages(cfg, pretrained=False)
    if frozen is None:
        return WITHOUT_PRETRAINED
    return (
        "Or train without them (from a random start): --set model_args.pretrained=false --set"
        f" {_all_stages_setting(cfg, frozen[1])} (the recipe freezes backbone stages that the weights would"
        " fill: without them those would stay random; this trains every stage)."
    )


def _all_stages_setting(cfg: TrainConfig, total: int) -> str:
    """``KEY=TOTAL``: the setting that trains all ``total`` backbone stages of ``cfg``'s model (the top-level
    ``trainable_stages`` where the recipe sets it, as it is applied last, else the builder's)."""
    key = "trainable_stages" if cfg.trainable_stages is not None else "model_args.trainable_stages"
    return f"{key}={total}"


def random_frozen_stages(cfg: TrainConfig, *, pretrained: bool | None = None) -> tuple[int, int] | None:
    """``(trainable, total)`` backbone stages of ``cfg``'s model where it would train with some frozen at
    their random start: an architecture with pretrained weights to fill them (its builder takes
    ``pretrained``) built without them (``pretrained`` false, or ``pretrained`` given to ask about that
    case) and no ``--init``; else ``None``. Built on the meta device: no memory, no weights read. Tiny test
    models take no ``pretrained``: a smoke test of a freezing recipe keeps its frozen stages."""
    import inspect
    import warnings

    from ferhub.models._registry import ENSEMBLE, get_entry
    from ferhub.models.freeze import StagedModel, set_trainable_stages, trainable_stages

    if cfg.init is not None or cfg.model == ENSEMBLE:
        return None
    builder = get_entry(cfg.model).builder
    param = inspect.signature(builder).parameters.get("pretrained")
    if param is None:  # weights only from --init (LightCNN) or none at all: nothing pretrained is missed
        return None
    if pretrained is None:
        pretrained = bool(cfg.model_args.get("pretrained", param.default))
    if pretrained:
        return None
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")  # builders that copy weights into meta tensors say it is a no-op
            net = builder(num_classes=2, **{**cfg.model_args, "pretrained": False})
            if cfg.trainable_stages is not None and isinstance(net, StagedModel):
                set_trainable_stages(net, cfg.trainable_stages)
    except Exception:  # needs real tensors, or refuses the arguments: the real build says why
        return None
    if not isinstance(net, StagedModel):
        return None
    n = trainable_stages(net)
    return (n, net.num_stages) if n < net.num_stages else None


def check_random_frozen(cfg: TrainConfig) -> None:
    """Refuse (:class:`RecipeError`, before any data loads) a run whose frozen backbone stages would stay at
    their random start (:func:`random_frozen_stages`): they never train, and a frozen stage keeps its
    BatchNorm statistics too, so the head learns from fixed random features and the results are near chance
    (seed 003's recipe without its VGGFace2 weights kept predicting one class), with nothing saying why."""
    frozen = random_frozen_stages(cfg)
    if frozen is None:
        return
    n, total = frozen
    trained = "only its head" if n == 0 else f"only its head and last {n} of {total} backbone stages"
    frozen_part = f"all {total} stages" if n == 0 else f"first {total - n} stages"
    raise RecipeError(
        f"{cfg.model} without pretrained weights (model_args.pretrained is false, no --init) trains"
        f" {trained}: its stem and {frozen_part} are frozen, so they would stay at their random start for the"
        " whole run and the results would be near chance. Fix:"
        f" --set {_all_stages_setting(cfg, total)} to train every stage from the random start, or give the"
        " pretrained weights (or --init a checkpoint of this architecture)"
    )


def model_args(cfg: TrainConfig) -> dict[str, Any]:
    """The recipe's ``model_args`` as the run builds its model: with ``--init``, without the pretrained
    weights (``pretrained`` false). ``load_init`` then replaces every weight but the new classifier (strictly:
    a file that does not fit is refused), so a pretrained file would be read for nothing, and one that is
    not there must not stop the run. Pretrained weights change no shape (as the model registry relies on)."""
    if cfg.init is not None and cfg.model_args.get("pretrained"):
        return {**cfg.model_args, "pretrained": False}
    return dict(cfg.model_args)


def check_model_builds(cfg: TrainConfig) -> None:
    """Build the recipe's model on the meta device (no memory used, no weights read), looking for its
    pretrained files where their loaders look (none with ``--init``: :func:`model_args`): weights that are
    not there (:class:`~ferhub.errors.PretrainedWeightsError`) and an optional package that is not installed
    (timm for NASNet: :class:`~ferhub._compat.MissingExtraError`) are refused before any data is prepared,
    which for a real data set means minutes of face detection. Any other failure is left to the real build,
    which says why."""
    import warnings

    from ferhub._compat import MissingExtraError
    from ferhub.errors import PretrainedWeightsError
    from ferhub.models._registry import ENSEMBLE, get_entry
    from ferhub.pretrained import pretrained_lookup

    if cfg.model == ENSEMBLE:  # built by loading its members: nothing pretrained of its own
        return
    try:
        with pretrained_lookup(without_pretrained(cfg), check_only=True), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # builders that copy weights into meta tensors say it is a no-op
            with torch.device("meta"):
                get_entry(cfg.model).builder(num_classes=2, **model_args(cfg))
    except (PretrainedWeightsError, MissingExtraError):
        raise
    except Exception:  # needs real tensors, or refuses the arguments: the real build says why
        return


def build_model(cfg: TrainConfig, labels: Sequence[str]) -> nn.Module:
    """The recipe's model for ``labels``, with ``--init`` weights (instead of pretrained ones:
    :func:`model_args`) and partial unfreezing applied."""
    from ferhub.models import create_model
    from ferhub.pretrained import pretrained_lookup

    with pretrained_lookup(without_pretrained(cfg)):  # a missing file's message names the run's settings
        model = create_model(cfg.model, labels, config_overrides=cfg.config_overrides, **model_args(cfg))
    if cfg.init:
        from ferhub.errors import PretrainedWeightsError
        from ferhub.pretrained import load_init

        # LightCNN's own checkpoint layout, or any checkpoint of this architecture (a ferhub model folder, a
        # run's checkpoints/best.safetensors; the classifier kept as built when the label set differs)
        try:
            load_init(model, cfg.init)
        except PretrainedWeightsError as e:  # the file is not there: the setting to change, as train says
            raise RecipeError(f"--init {cfg.init}: {e}") from None
    if cfg.trainable_stages is not None:
        from ferhub.models.freeze import set_trainable_stages

        try:
            set_trainable_stages(model, cfg.trainable_stages)
        except (TypeError, ValueError) as e:  # no stages, or fewer than asked: a setting to change
            raise RecipeError(f"trainable_stages {cfg.trainable_stages}: {e}") from None
    return model


def _make_criterion(cfg: TrainConfig, counts: np.ndarray, device: torch.device) -> nn.Module:
    from ferhub.losses import build_loss

    # class frequencies feed the class-weighted CE of seed 001; focal loss gets per-class alpha only when the
    # recipe gives it (seed 003 found equal weights best)
    kwargs = dict(cfg.loss_args)
    if cfg.loss in CLASS_COUNT_LOSSES:
        kwargs.setdefault("class_counts", counts.tolist())
    return build_loss(cfg.loss, **kwargs).to(device)


@dataclass
class _Parts:
    """Everything one run of :func:`fit` trains with, as built (and restored) before the first epoch."""

    model: nn.Module  # the bare model (checkpoints, EMA, scoring)
    net: nn.Module  # what the loop calls: the model, or its DDP wrapper
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    scaler: torch.amp.GradScaler | None
    ema: EMA | None

    def save(self, path: Path, state: State, cfg: TrainConfig) -> Path:
        return save_checkpoint(
            path, model=self.model, optimizer=self.optimizer, schedule=self.schedule, state=state, cfg=cfg,
            scaler=self.scaler, ema=self.ema,
        )  # fmt: skip

    @property
    def scored(self) -> nn.Module:
        """The weights evaluated and released: the EMA ones when EMA is on."""
        return self.ema.module if self.ema is not None else self.model


def _build_parts(cfg: TrainConfig, train: Crops, device: torch.device, dist: Dist) -> _Parts:
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    model = build_model(cfg, train.labels).to(device)
    if dist.world > 1 and cfg.sync_bn and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # swaps the BN children; model.config stays
    if cfg.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    counts = np.bincount(train.targets, minlength=len(train.labels))
    n_batches = len(epoch_batches(len(train), cfg.batch_size, 0, cfg.seed))
    net: nn.Module = model
    if dist.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.local_rank] if device.type == "cuda" else None
        )
    return _Parts(
        model=model,
        net=net,
        criterion=_make_criterion(cfg, counts, device),
        optimizer=build_optimizer(model, cfg),
        schedule=LRSchedule(cfg, n_batches),
        scaler=torch.amp.GradScaler("cuda") if cfg.amp == "fp16" and device.type == "cuda" else None,
        ema=EMA(model, cfg.ema) if cfg.ema > 0 else None,
    )


def _log_line(record: dict[str, Any], cfg: TrainConfig) -> str:
    return (
        f"epoch {record['epoch']}/{cfg.epochs}  loss {record['train_loss']:.4f}"
        f"  train acc {record['train_accuracy']:.3f}  val acc {record['val_accuracy']:.3f}"
        f"  val recall {record['val_mean_class_recall']:.3f}  lr {record['lr']:.2e}"
        f"  {record['images_per_s']:.0f} img/s"
    )


def fit(
    cfg: TrainConfig,
    train: Crops,
    val: Crops,
    out_dir: Path,
    *,
    device: torch.device,
    dist: Dist = SINGLE_PROCESS,
    resume: bool = False,
    progress: bool = True,
    on_best: OnBest | None = None,
    log: Callable[[str], None] = print,
) -> FitResult:
    """Train one model on ``train``, watching ``val`` after every epoch.

    With ``cfg.selection == "inner"`` the epoch with the best monitored value on ``val`` (mean class recall,
    or the loss) is released and ``val`` also drives a plateau schedule and early stopping, so ``val`` must be
    selection data, never the data that reports. Otherwise the last epoch is released and ``val`` is only
    watched. Writes ``out_dir/checkpoints/{last,best}.safetensors`` (``best``: the epoch released, a hard
    link to ``last`` while they are the same epoch) and
    ``out_dir/log.jsonl`` (rank 0 only).
    """
    from ferhub.transforms import TrainTransform

    cfg.validate_classes(train.labels)  # a class-weight vector of the wrong length: before the first epoch
    parts = _build_parts(cfg, train, device, dist)
    config: ModelConfig = parts.model.config
    state = _start(cfg, parts, out_dir, resume, dist, log)
    # crops live on the device when they fit, so batches are gathered and augmented there
    store = device if device.type == "cuda" and train.images.nbytes < 4 * 2**30 else torch.device("cpu")
    data, targets = torch.from_numpy(train.images).to(store), torch.from_numpy(train.targets).to(store)
    val_data = torch.from_numpy(val.images)
    transform = TrainTransform.from_recipe(config, cfg.augment)
    # the stop is decided from the state alone, before each epoch, so a resumed run that had already stopped
    # early (its checkpoint holds the same bad_epochs) trains no further, as if it had never been interrupted
    while state.epoch < cfg.epochs and not stops_early(cfg, state):
        stats = train_one_epoch(
            parts.net, parts.criterion, parts.optimizer, data, targets, transform, state.epoch, cfg,
            schedule=parts.schedule, device=device, dist=dist, scaler=parts.scaler, ema=parts.ema,
            progress=progress,
        )  # fmt: skip
        if not math.isfinite(stats["train_loss"]):  # the same on every rank (summed over all of them)
            raise TrainingDiverged(
                f"training diverged in epoch {state.epoch + 1}: the training loss is {stats['train_loss']};"
                f" nothing was released (learning rate {stats['lr']:.3g}). Fix: lower the learning rate"
                " (--lr), or check the data and the recipe's loss settings"
            )
        metrics = _validate(cfg, parts, val, val_data, train.labels, device, dist)
        improved = _end_epoch(cfg, state, parts, stats, metrics)
        if dist.main:
            _record(cfg, state, parts, out_dir, improved, log)
            if improved and on_best is not None:  # with the monitored loss (kernel_l2 penalty included)
                on_best(parts.scored, state.epoch, {**metrics, "loss": state.history[-1]["val_loss"]})
        barrier(dist)
    stopped = stops_early(cfg, state)
    if stopped and dist.main:
        log(f"early stopping: no better validation {cfg.monitor} for {cfg.early_stopping} epochs")
    final = _release(parts, out_dir / "checkpoints" / "best.safetensors", state, dist)
    if dist.main and (note := batchnorm_note(final)):
        log(note)
    probs = evaluate(final, val_data, config, device=device, tta=cfg.tta, amp=cfg.amp)
    return FitResult(final, state, probs, score(probs, val.targets, val.labels, train.labels), stopped)


def _validate(
    cfg: TrainConfig,
    parts: _Parts,
    val: Crops,
    val_data: torch.Tensor,
    labels: Sequence[str],
    device: torch.device,
    dist: Dist,
) -> dict[str, Any]:
    """The epoch's validation metrics, the same on every rank: rank 0's.

    Every rank first takes rank 0's buffers (:func:`~ferhub.training.distributed.broadcast_buffers`: DDP
    leaves each rank's BatchNorm statistics, and the EMA's copy of them, from its own share of the last
    batch), so each holds the model rank 0 saves and releases. Rank 0 alone scores it, and its metrics decide
    the best epoch, the plateau rate and early stopping on every rank: computed on each, they could differ
    in the last bits (other kernels) and split the ranks' decisions.
    """
    broadcast_buffers(parts.model, dist)
    if parts.ema is not None:
        broadcast_buffers(parts.ema.module, dist)
    metrics = None
    if dist.main:
        probs = evaluate(parts.scored, val_data, parts.model.config, device=device, tta=cfg.tta, amp=cfg.amp)
        metrics = score(probs, val.targets, val.labels, labels)["metrics"]
    return broadcast_object(metrics, dist)


def stops_early(cfg: TrainConfig, state: State) -> bool:
    """Whether early stopping ends the run at ``state``: ``early_stopping`` epochs in a row without a better
    monitored value.

    A function of the saved state (``bad_epochs`` is in every checkpoint), so a fit that stopped early stays
    stopped on ``--resume`` (a resumed k-fold or ``--repeats`` run refits its finished parts), and resuming
    with a larger ``early_stopping`` goes on exactly as an uninterrupted run with that patience would have.
    """
    return bool(cfg.early_stopping) and state.bad_epochs >= cfg.early_stopping


def _start(
    cfg: TrainConfig, parts: _Parts, out_dir: Path, resume: bool, dist: Dist, log: Callable[[str], None]
) -> State:
    """The state to start from (restored from ``last.safetensors`` with ``resume``) and a log that matches
    it."""
    last = out_dir / "checkpoints" / "last.safetensors"
    state = State()
    if resume:
        state = restore(last, model=parts.model, optimizer=parts.optimizer, schedule=parts.schedule, cfg=cfg,
                        scaler=parts.scaler, ema=parts.ema)  # fmt: skip
        log(f"resumed from {last} after epoch {state.epoch}")
    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            _complete_best(last, state)
        else:  # an earlier run's best epoch in this folder must never be released as this run's
            (out_dir / "checkpoints" / "best.safetensors").unlink(missing_ok=True)
        # a fresh run starts a fresh log; a resumed one rewrites it from the checkpoint's history, dropping
        # any line written after that checkpoint by the killed run
        (out_dir / "log.jsonl").write_text(
            "".join(json.dumps(r, default=json_default) + "\n" for r in state.history)
        )
    return state


def _complete_best(last: Path, state: State) -> None:
    """Bring ``best.safetensors`` up to ``last``, where a stop came between the two saves of an epoch that
    was the best (:func:`_record` saves ``last`` first): ``last`` then holds that epoch's weights and
    ``best`` an earlier one, which would be released under the epoch ``last`` names. ``last`` is what the
    uninterrupted run saved as ``best`` (the same state, no random draw between the saves): it is linked."""
    best = last.with_name("best.safetensors")
    if state.epoch > 0 and state.best_epoch + 1 == state.epoch and saved_epoch(best) != state.epoch:
        _link_best(last, best)


def _link_best(last: Path, best: Path) -> None:
    """Make ``best`` the checkpoint ``last`` holds (the epoch just saved, when it is the one released),
    atomically: a hard link, so the same bytes are neither written nor stored twice (with ``selection`` last
    or epoch_mean every epoch is released: a second full copy of the model and optimizer each epoch), else a
    copy (a file system without links). The next save of ``last`` renames a new file over its name
    (:func:`~ferhub.fileio.atomic_path`), so ``best`` keeps this epoch."""
    with atomic_path(best, mode=last.stat().st_mode & 0o777) as tmp:  # the link's mode is last's own
        tmp.unlink()
        try:
            os.link(last, tmp)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(last, tmp)


def _record(
    cfg: TrainConfig, state: State, parts: _Parts, out_dir: Path, improved: bool, log: Callable[[str], None]
) -> None:
    """Rank 0 after an epoch: its log line (file and console), the last checkpoint, and the best when it
    is."""
    with (out_dir / "log.jsonl").open("a") as f:
        f.write(json.dumps(state.history[-1], default=json_default) + "\n")
    log(_log_line(state.history[-1], cfg))
    last = parts.save(out_dir / "checkpoints" / "last.safetensors", state, cfg)
    if improved:  # the same state, no random draw between: the same bytes
        _link_best(last, out_dir / "checkpoints" / "best.safetensors")


def _monitored(cfg: TrainConfig, metrics: dict[str, Any], parts: _Parts) -> tuple[float, float]:
    """The epoch's validation loss and its selection score (higher is better).

    The loss is the validation NLL plus the ``kernel_l2`` penalty, as Keras' ``val_loss`` includes the
    regularisation losses (seed 002's reference monitors it).
    """
    penalty = 0.0
    if cfg.kernel_l2:
        with torch.no_grad():
            kernels = regularized_kernels(parts.model, cfg.kernel_l2_layers)
            penalty = float(kernel_penalty(kernels, cfg.kernel_l2))
    val_loss = metrics["nll"] + penalty
    return val_loss, -val_loss if cfg.monitor == "loss" else metrics["mean_class_recall"]


def _end_epoch(
    cfg: TrainConfig, state: State, parts: _Parts, stats: dict[str, float], metrics: dict[str, Any]
) -> bool:
    """Step the schedule, update the released epoch and the history; returns whether this epoch is released.

    With ``selection="inner"`` the released epoch is the best on the monitored value so far; otherwise every
    epoch replaces the last (nothing is chosen on the data watched).
    """
    val_loss, score = _monitored(cfg, metrics, parts)
    parts.schedule.end_epoch(score)
    improved = score > state.best_metric or cfg.selection != "inner"
    if improved:
        state.best_metric, state.best_epoch, state.bad_epochs = score, state.epoch, 0
    else:
        state.bad_epochs += 1
    state.epoch += 1
    state.history.append(
        {
            "epoch": state.epoch,
            **stats,
            "val_accuracy": metrics["accuracy"],
            "val_mean_class_recall": metrics["mean_class_recall"],
            "val_macro_f1": metrics["macro_f1"],
            "val_nll": metrics["nll"],
            "val_loss": val_loss,
            "best_epoch": state.best_epoch + 1,
        }
    )
    return improved


STALE_BATCHNORM = 0.05  # the share of initial running statistics above which a run's end says so


def batchnorm_lag(model: nn.Module) -> tuple[float, int, float]:
    """The largest share of a trained BatchNorm layer's running statistics that is still their initial value
    (``(1 - momentum) ** batches``: torch's exponential average), with that layer's batch count and momentum;
    ``(0.0, 0, 0.0)`` without such layers. Layers that saw no batch are left out: frozen (``freeze_bn``, the
    frozen part of a partial unfreezing), they keep the statistics they were loaded with, as meant."""
    worst = (0.0, 0, 0.0)
    for m in model.modules():
        if not isinstance(m, nn.modules.batchnorm._BatchNorm):  # as freeze_bn finds them (loop._train_mode)
            continue
        batches = int(m.num_batches_tracked) if m.track_running_stats else 0
        if batches > 0 and m.momentum is not None:
            worst = max(worst, ((1.0 - m.momentum) ** batches, batches, m.momentum))
    return worst


def batchnorm_note(model: nn.Module) -> str | None:
    """A line for the end of a run whose BatchNorm running statistics are still mostly where they started.

    Evaluation mode normalises with those statistics, so its results lag the trained weights: mini-Xception
    and the FCN keep Keras' momentum (0.99 of the statistics kept a step, seed 002's reference), and a
    6-epoch run of 150 steps scored 0.44 held-out accuracy where torch's momentum gave 0.995 and 20 epochs
    0.9975 (``bench/train.py``, 2026-12-04).
    """
    share, batches, momentum = batchnorm_lag(model)
    if share <= STALE_BATCHNORM:
        return None
    return (
        f"note: BatchNorm's running statistics have seen {batches} batches at momentum {momentum:g}, so"
        f" {share:.0%} of them is still their initial value and evaluation-mode results lag the trained"
        " weights; train for more steps"
    )


def _release(parts: _Parts, best: Path, state: State, dist: Dist) -> nn.Module:
    """The best epoch's weights (the EMA ones when EMA is on), in eval mode; :class:`CheckpointError` where
    ``best`` is not the epoch ``state`` names as the best (the weights would not be the summary's)."""
    final = copy.deepcopy(parts.scored)
    wanted = state.best_epoch + 1
    fix = "train again without --resume (a fresh run) to release weights of the epoch the run names"
    if best.is_file():
        tensors, meta = read_checkpoint(best)
        if meta["state"]["epoch"] != wanted:
            raise CheckpointError(
                f"{best} holds epoch {meta['state']['epoch']}, but the run's best epoch is {wanted}; {fix}"
            )
        prefix = "ema." if parts.ema is not None else "model."
        final.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
    elif dist.main and state.best_epoch >= 0 and wanted != state.epoch:
        raise CheckpointError(f"{best} is missing, so epoch {wanted}'s weights are gone; {fix}")
    # (a rank that cannot see rank 0's folder keeps its own weights, which DDP and _validate kept rank 0's)
    return final.eval()
