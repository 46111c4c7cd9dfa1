"""The protocol of a run: which data trains, which chooses the released epoch, which reports — kept apart.

A reported number never comes from data that took part in choosing the model.

- ``selection="inner"``: the epoch (and a plateau schedule, early stopping) is chosen on selection data — the
  source's own validation split, or an inner stratified split of the training data — and the report comes
  from data outside both: the test split, the validation split when it did not select, a stratified hold-out
  of the training data (seed 001's 10%), or each fold's held-out part in k-fold cross-validation.
- ``selection="last"``: nothing is chosen on data; the last epoch of the fixed schedule is released (seed 003:
  fixed schedule, two folds, three runs averaged).
- ``selection="epoch_mean"``: as ``"last"``, and the headline number is the mean over epochs of the held-out
  accuracy (seed 004: "average ... accuracy ... in 20 epochs").

``no_face="skip"`` (seed 000: images "that contain no human face or the face ... could not be detected" are
excluded from the *training* set, the test set "unchanged") leaves the images where no face was found out of
the data that trains and selects; the data that reports keeps every image, the whole image standing in.

``repeats`` runs the whole protocol again with seeds ``seed + r`` (the splits stay those of ``seed``); the
reported metrics pool every held-out prediction, with mean ± std over folds and over repeats beside them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ferhub.data import Crops
from ferhub.training.fit import FitResult
from ferhub.training.loop import evaluate, score
from ferhub.training.settings import TrainConfig

# fit(cfg, train, watched, out_dir, only_fit) -> FitResult, bound to the run's device, log and options
FitFn = Callable[[TrainConfig, Crops, Crops, Path, bool], FitResult]
EPOCH_MEAN_KEYS = ("val_accuracy", "val_mean_class_recall", "val_macro_f1", "val_loss", "train_accuracy",
                   "train_loss")  # fmt: skip


def subset(crops: Crops, idx: np.ndarray) -> Crops:
    fallback = crops.fallback[idx] if crops.fallback is not None else None
    keys = crops.keys[idx] if crops.keys is not None else None
    return Crops(crops.images[idx], crops.targets[idx], crops.labels, fallback=fallback, keys=keys)


def faces_only(crops: Crops) -> Crops:
    """``crops`` without the images where no face was found (their whole image stood in)."""
    if crops.fallback is None or not crops.fallback.any():
        return crops
    return subset(crops, np.flatnonzero(~crops.fallback))


@dataclass
class Fold:
    train: Crops
    select: Crops | None  # chooses the epoch (selection "inner" only)
    report: Crops  # reports; never seen by training or selection


def _called(names: dict[str, str], role: str) -> str:
    """How the card names the ``role`` data: ``names[role + "_text"]``, else ``split NAME``."""
    return names.get(f"{role}_text") or f"split {names[role]}"


@dataclass
class Plan:
    """How every repeat splits the data."""

    folds: list[Fold]
    report_split: str  # the eval_results split name of the reported data
    report_name: str  # how the card names it
    select_name: str | None  # how the card names the selection data (None: nothing is selected)
    carved: bool = False  # whether val_fraction took a stratified share out (to select or to report)
    # images reported on (chosen on) with a pixel-identical crop in the data that trained or chose (trained)
    # the model, over the folds: {"reported": N[, "selected": M]} (:func:`exact_duplicates`)
    duplicates: dict[str, int] = dataclasses.field(default_factory=dict)


def _carve(crops: Crops, cfg: TrainConfig) -> tuple[Crops, Crops]:
    """A stratified ``val_fraction`` taken out of ``crops``: (the rest, the part taken); exact duplicates
    stay on one side."""
    from ferhub.data import stratified_split

    rest, part = stratified_split(crops.targets, cfg.val_fraction, cfg.seed, groups=crops.content_keys())
    return subset(crops, rest), subset(crops, part)


def copies_in(part: Crops | None, seen: list[Crops | None]) -> int:
    """How many crops of ``part`` have a pixel-identical crop in ``seen``: the same picture (exact duplicates
    of a data set, under any name) on both sides of a split."""
    keys = [s.content_keys() for s in seen if s is not None and len(s)]
    if part is None or not len(part) or not keys:
        return 0
    return int(np.isin(part.content_keys(), np.concatenate(keys)).sum())


def exact_duplicates(folds: list[Fold]) -> dict[str, int]:
    """``{"reported": N[, "selected": M]}``: the images reported on with a pixel-identical crop in their
    fold's training or selection data, and the images selecting with one in its training data (with
    selection data), summed over the folds. Splits made here keep duplicates together (0); a data set's own
    splits need not (FER2013's Training and PrivateTest share pictures)."""
    counts = {"reported": sum(copies_in(f.report, [f.train, f.select]) for f in folds)}
    if any(f.select is not None for f in folds):
        counts["selected"] = sum(copies_in(f.select, [f.train]) for f in folds)
    return counts


def duplicates_note(reported: int, images: int) -> str | None:
    """The card's note on ``reported`` of the ``images`` reported on having a pixel-identical copy in the
    data that trained or chose the model; ``None`` for none."""
    if not reported:
        return None
    return (
        f"{reported} of the {images} images reported on have a pixel-identical copy (after cropping) in the"
        " data that trained or chose the model (exact duplicates across the data's own splits); these"
        " results count them as held out, which can inflate them (a copy may also carry another label)."
    )


def make_plan(
    cfg: TrainConfig, train: Crops, val: Crops | None, test: Crops | None, names: dict[str, str]
) -> Plan:
    """Split the prepared crops for ``cfg``'s protocol. ``names``: ``train`` / ``val`` / ``test`` split
    names; ``val_text`` / ``test_text``, where given, how the card names that data (else ``split NAME``)."""
    plan = _split(cfg, train, val, test, names)
    if cfg.no_face == "skip":  # no-face images leave training and selection only (see the module docstring)
        for fold in plan.folds:
            fold.train = faces_only(fold.train)
            fold.select = faces_only(fold.select) if fold.select is not None else None
    plan.duplicates = exact_duplicates(plan.folds)
    return plan


def _split(
    cfg: TrainConfig, train: Crops, val: Crops | None, test: Crops | None, names: dict[str, str]
) -> Plan:
    inner = cfg.selection == "inner"
    share = f"{cfg.val_fraction:.0%}"
    if cfg.kfold:
        from ferhub.data import stratified_kfold
        from ferhub.training.settings import RecipeError, kfold_problem

        # the source's counts were checked when it opened (TrainConfig.validate_classes); images that could
        # not be decoded may have left a class short since
        counts = np.bincount(train.targets, minlength=len(train.labels))
        if (problem := kfold_problem(cfg.kfold, train.labels, counts)) is not None:
            raise RecipeError(problem)
        folds = []
        # an image's exact duplicates go to its fold: its copy must not train the model that it reports on
        groups = train.content_keys()
        for tr, te in stratified_kfold(train.targets, cfg.kfold, cfg.seed, train.labels, groups=groups):
            part, select = _carve(subset(train, tr), cfg) if inner else (subset(train, tr), None)
            folds.append(Fold(part, select, subset(train, te)))
        select_name = f"an inner stratified {share} of each fold's training part" if inner else None
        return Plan(folds, f"kfold{cfg.kfold}", f"the held-out folds of {cfg.kfold}-fold cross-validation",
                    select_name, carved=inner)  # fmt: skip
    if test is not None:
        report, split = test, names["test"]
    elif val is not None:
        report, split, val = val, names["val"], None  # the validation split reports; selection is carved
    else:
        train, report = _carve(train, cfg)
        split = "heldout"
    role = "test" if test is not None else "val"
    report_name = (
        f"a stratified {share} held out of {names['train']}" if split == "heldout" else _called(names, role)
    )
    select, select_name = None, None
    if inner and val is not None:
        select, select_name = val, _called(names, "val")
    elif inner:
        train, select = _carve(train, cfg)
        select_name = f"an inner stratified {share} of the training data"
    carved = split == "heldout" or (inner and val is None)
    return Plan([Fold(train, select, report)], split, report_name, select_name, carved=carved)


@dataclass
class FoldRun:
    result: FitResult
    report: Crops
    probs: np.ndarray  # the released model's probabilities on ``report``


def run_plan(
    cfg: TrainConfig,
    plan: Plan,
    out_dir: Path,
    fit_fn: FitFn,
    device: torch.device,
    say: Callable[[str], None],
) -> list[list[FoldRun]]:
    """Every repeat of every fold; ``runs[r][f]``. ``fit_fn``'s last argument says whether this fit is the
    run's only one (then ``--resume`` insists on its checkpoint and ``--push-checkpoints`` applies)."""
    runs = []
    for r in range(cfg.repeats):
        cfg_r = dataclasses.replace(cfg, seed=cfg.seed + r)
        runs.append([])
        for f, fold in enumerate(plan.folds):
            where = fit_folder(out_dir, cfg, r, f, len(plan.folds))
            say(_fold_line(cfg, r, f, fold, len(plan.folds)))
            watched = fold.select if fold.select is not None else fold.report
            result = fit_fn(cfg_r, fold.train, watched, where, cfg.repeats == 1 and len(plan.folds) == 1)
            probs = result.val_probs
            if fold.select is not None:  # the released model meets the report data only now
                probs = evaluate(result.model, torch.from_numpy(fold.report.images), result.model.config,
                                 device=device, tta=cfg.tta)  # fmt: skip
            runs[-1].append(FoldRun(result, fold.report, probs))
    return runs


def fit_folder(out_dir: Path, cfg: TrainConfig, repeat: int, fold: int, folds: int) -> Path:
    """Where repeat ``repeat`` of fold ``fold`` (of ``folds``; both from 0) keeps its checkpoints: ``out_dir``
    for a run of one fit, else ``repeatR/`` and ``foldF/`` under it."""
    where = out_dir if cfg.repeats == 1 else out_dir / f"repeat{repeat + 1}"
    return where if folds == 1 else where / f"fold{fold + 1}"


def _fold_line(cfg: TrainConfig, r: int, f: int, fold: Fold, n_folds: int) -> str:
    where = (f"repeat {r + 1}/{cfg.repeats}, " if cfg.repeats > 1 else "") + (
        f"fold {f + 1}/{n_folds}: " if n_folds > 1 else ""
    )
    select = f"selecting on {len(fold.select)}, " if fold.select is not None else ""
    return f"{where}training on {len(fold.train)} crops, {select}reporting on {len(fold.report)}"


def released(cfg: TrainConfig, runs: list[list[FoldRun]]) -> tuple[int, FoldRun]:
    """The fold whose model is released (of the first repeat): the best on its selection data, or the
    first."""
    first = runs[0]
    if cfg.selection != "inner" or len(first) == 1:
        return 0, first[0]
    best = int(np.argmax([fr.result.state.best_metric for fr in first]))
    return best, first[best]


def summarize_runs(cfg: TrainConfig, plan: Plan, runs: list[list[FoldRun]]) -> dict[str, Any]:
    """The reported results: metrics of every held-out prediction pooled, plus the protocol that made them."""
    from ferhub.metrics import kfold_summary

    labels = runs[0][0].report.labels
    model_labels = runs[0][0].result.model.config.labels

    def scored(frs: list[FoldRun], groups: np.ndarray | None = None) -> dict[str, Any]:
        probs = np.concatenate([fr.probs for fr in frs])
        return score(probs, np.concatenate([fr.report.targets for fr in frs]), labels, model_labels, groups)

    # every repeat reports on the same images in the same order (the repeats share the splits): the pooled
    # rows are each image once per repeat, so the confidence intervals resample images, each with its
    # repeats' predictions (resampling rows would make them about sqrt(repeats) too narrow)
    images = sum(len(fr.report) for fr in runs[0])
    pooled = scored([fr for rep in runs for fr in rep], np.tile(np.arange(images), len(runs)))
    pooled["num_images"] = images
    protocol: dict[str, Any] = {
        "selection": cfg.selection,
        "monitor": cfg.monitor if cfg.selection == "inner" else None,
        "selected_on": plan.select_name,
        "reported_on": plan.report_name,
        "kfold": cfg.kfold or None,
        "repeats": cfg.repeats,
        "exact_duplicates": plan.duplicates,
    }
    if cfg.kfold:
        protocol["folds"] = kfold_summary([scored([fr])["metrics"] for rep in runs for fr in rep])
    if cfg.repeats > 1:
        protocol["repeat_results"] = kfold_summary([scored(rep)["metrics"] for rep in runs])
    if cfg.selection == "epoch_mean":
        history = [rec for rep in runs for fr in rep for rec in fr.result.state.history]
        protocol["epoch_mean"] = {
            k.removeprefix("val_"): float(np.mean([h[k] for h in history])) for k in EPOCH_MEAN_KEYS
        }
        pooled["metrics"]["accuracy_epoch_mean"] = protocol["epoch_mean"]["accuracy"]
    duplicates = duplicates_note(plan.duplicates.get("reported", 0), images)
    pooled["notes"] = [*pooled.get("notes", []), *protocol_notes(cfg, protocol), *filter(None, [duplicates])]
    pooled["protocol"] = protocol
    return pooled


def protocol_notes(cfg: TrainConfig, protocol: dict[str, Any]) -> list[str]:
    """The protocol in words, for the card (its figures in the card's units: accuracy in percent)."""
    from ferhub.hub.card import format_mean_std

    how = {
        "inner": (
            f"the released epoch was chosen on {protocol['selected_on']} (by validation "
            f"{cfg.monitor.replace('_', ' ')}); "
            f"these numbers come from {protocol['reported_on']}, which took no part in training or selection"
        ),
        "last": (
            "no epoch was chosen on any data (the last epoch of a fixed schedule is released); these numbers"
            f" come from {protocol['reported_on']}"
        ),
        "epoch_mean": (
            "no epoch was chosen on any data; these numbers are the last epoch's on "
            f"{protocol['reported_on']}, and `accuracy_epoch_mean` is the mean held-out accuracy over the "
            f"{cfg.epochs} epochs (the paper's protocol)"
        ),
    }[cfg.selection]
    notes = [f"Protocol: {how}."]
    folds = f"{cfg.kfold} folds" if cfg.repeats == 1 else f"{cfg.kfold} folds x {cfg.repeats} repeats"
    for key, label in (("folds", folds), ("repeat_results", f"{cfg.repeats} repeats")):
        if key in protocol:
            acc, recall = (format_mean_std(k, protocol[key][k]["mean"], protocol[key][k]["std"])
                           for k in ("accuracy", "mean_class_recall"))  # fmt: skip
            notes.append(f"Mean ± std over {label}: accuracy {acc}, mean class recall {recall}.")
    if cfg.repeats > 1:
        notes.append(f"Every held-out image is counted once per repeat ({cfg.repeats} repeats, seeds "
                     f"{cfg.seed}-{cfg.seed + cfg.repeats - 1}) in the confusion matrix and per-class "
                     "support; the repeats share the splits, and the 95% intervals resample images, each "
                     "with all its repeats' predictions.")  # fmt: skip
    return notes
