""":func:`train`: a recipe and a data source -> a trained ferhub model repo (weights, config, card, results).

The data is decoded, face-detected (once, through :class:`ferhub.data.FaceCache`) and cropped once into an
in-memory ``uint8`` array; the protocol (a hold-out or k-fold) then calls :func:`ferhub.training.fit.fit`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ferhub.config import ModelConfig
from ferhub.data import Crops
from ferhub.training.checkpoint import json_default
from ferhub.training.distributed import Dist, barrier, init_distributed, unwrap
from ferhub.training.fit import FitResult, OnBest, fit
from ferhub.training.loop import evaluate, score
from ferhub.training.results import eval_results, recipe_markdown, result_entry
from ferhub.training.settings import RecipeError, TrainConfig


@dataclass
class RunOptions:
    """Where the data is and where the run goes: everything of a run that is not the recipe."""

    data: str
    split: str | None = None  # training split (default: train when the source has splits)
    val_data: str | None = None  # a separate validation source
    val_split: str | None = None
    test_split: str | None = None  # also evaluate the final model on this split
    image_column: str | None = None  # Hub datasets only (found automatically when omitted)
    label_column: str | None = None
    label_names: str | None = None  # names of numbered classes: a dataset (rafdb, fer2013)
    precropped: bool | None = None  # the images are face crops already (default: the source says)
    face_cache: str | None = None
    output_dir: str | None = None  # default runs/RECIPE
    device: str = "auto"
    resume: bool = False
    deterministic: bool = False
    progress: bool = True
    model_name: str | None = None
    push_to_hub: str | None = None
    private: bool = False
    revision: str | None = None
    push_checkpoints: bool = False
    checkpoint_branch: str = "checkpoints"
    command: str = ""  # the command line that reproduces the run (recorded in the card and results)


@dataclass
class _Session:
    """The process side of a run: device, place in a torchrun job, output folder, logging."""

    device: torch.device
    dist: Dist
    out_dir: Path
    say: Callable[[str], None]

    @classmethod
    def start(cls, cfg: TrainConfig, opts: RunOptions) -> _Session:
        if opts.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        name = ("cuda" if torch.cuda.is_available() else "cpu") if opts.device == "auto" else opts.device
        dist = init_distributed(name)
        if name == "cuda" and dist.world > 1:
            name = f"cuda:{dist.local_rank}"
        device = torch.device(name)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = not opts.deterministic
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        out_dir = Path(opts.output_dir or Path("runs") / cfg.recipe.replace(":", "-"))
        if dist.main:
            out_dir.mkdir(parents=True, exist_ok=True)
        return cls(device, dist, out_dir, print if dist.main else (lambda _msg: None))


class _Data:
    """The run's sources and their crops (each made once; rank 0 fills the shared face cache first)."""

    def __init__(self, cfg: TrainConfig, opts: RunOptions, session: _Session) -> None:
        from ferhub.data import FaceCache, open_source

        self.cfg, self.opts, self.session = cfg, opts, session
        self.kw: dict[str, Any] = {"label_names": opts.label_names, "precropped": opts.precropped}
        self.kw.update(
            {k: v for k in ("image_column", "label_column") if (v := getattr(opts, k)) is not None}
        )
        self.train_src = self._open(opts.data, opts.split, "train") or open_source(opts.data, None, **self.kw)
        self.val_src = None
        if not cfg.kfold:
            if opts.val_data is not None:
                self.val_src = self._open(opts.val_data, opts.val_split, "val") or open_source(
                    opts.val_data, None, **self.kw
                )
            elif opts.val_split is not None or self.train_src.split is not None:
                self.val_src = self._open(opts.data, opts.val_split, "val")
        if self.val_src is not None and self.val_src.labels != self.train_src.labels:
            raise RecipeError(
                f"validation labels {self.val_src.labels} differ from training labels {self.train_src.labels}"
            )
        self.model_config = model_config(cfg, self.train_src.labels)
        detect = not self.train_src.precropped or opts.precropped is False
        self.cache = FaceCache(cache_dir=opts.face_cache) if detect else None
        self.prepared: dict[str, dict[str, int]] = {}  # per split: how the crops were made (no-face counts)

    def _open(self, source: str, split: str | None, preferred: str) -> Any:
        from ferhub.data import DataSourceError, open_source

        if split is not None:
            return open_source(source, split, **self.kw)
        try:  # sources with splits (fer2013.csv, train/ test/ folders, Hub datasets) give `preferred`
            return open_source(source, preferred, **self.kw)
        except DataSourceError:
            return None

    def test_source(self) -> Any:
        from ferhub.data import open_source

        return open_source(self.opts.val_data or self.opts.data, self.opts.test_split, **self.kw)

    def crops(self, src: Any) -> Crops:
        from ferhub.data import FaceCache, materialize

        dist, cfg = self.session.dist, self.cfg
        if dist.main:
            c = materialize(src, self.model_config, cache=self.cache, no_face=cfg.no_face)
        barrier(dist)
        if not dist.main:  # the cache is full now: the other ranks only read it
            cache = FaceCache(cache_dir=self.opts.face_cache) if self.cache else None
            c = materialize(src, self.model_config, cache=cache, no_face=cfg.no_face)
        if c.no_face:
            self.session.say(f"{src.name}/{src.split}: no face found in {c.no_face} of {len(src)} images "
                             f"({'whole image used' if cfg.no_face == 'fallback' else 'skipped'})")  # fmt: skip
        self.prepared[src.split or "all"] = {"images": len(src), "crops": len(c), "no_face": c.no_face,
                                             "skipped": c.skipped, "detections_run": c.detections_run}  # fmt: skip
        return c

    def description(self, val_name: str) -> str:
        """The card's one-line account of the data, with the no-face counts."""
        src = self.train_src
        text = f"`{self.opts.data}` (training split {src.split or 'all'}, {len(src)} images; validation: {val_name})"
        no_face = [
            f"{v['no_face']} of {v['images']} images ({k})" for k, v in self.prepared.items() if v["no_face"]
        ]
        if no_face:
            text += ". No face found by MTCNN in " + ", ".join(no_face)
            text += " (the whole image was used)" if self.cfg.no_face == "fallback" else " (left out)"
        return text


def model_config(cfg: TrainConfig, labels: tuple[str, ...]) -> ModelConfig:
    """The ModelConfig the run's model will carry (for cropping the data before the model exists)."""
    from ferhub.models import get_entry

    entry = get_entry(cfg.model)
    return ModelConfig(
        architecture=cfg.model,
        labels=tuple(labels),
        model_args=dict(cfg.model_args),
        **{**entry.defaults, **cfg.config_overrides},
    )


def _subset(crops: Crops, idx: np.ndarray) -> Crops:
    return Crops(crops.images[idx], crops.targets[idx], crops.labels)


@dataclass
class _Outcome:
    """What the protocol produced: the model to release, scored on its validation part."""

    result: FitResult
    val_split: str  # the eval_results split name of the validation part
    val_name: str  # how the card describes it
    fold_summary: dict[str, Any] | None = None
    selected_fold: int | None = None


def _kfold(cfg: TrainConfig, train_all: Crops, session: _Session, opts: RunOptions) -> _Outcome:
    from ferhub.data import stratified_kfold
    from ferhub.metrics import kfold_summary

    results = []
    for f, (tr, va) in enumerate(stratified_kfold(train_all.targets, cfg.kfold, cfg.seed)):
        session.say(f"fold {f + 1}/{cfg.kfold}: {len(tr)} train, {len(va)} validation")
        fold_dir = session.out_dir / f"fold{f + 1}"
        resume = opts.resume and (fold_dir / "checkpoints" / "last.safetensors").is_file()
        results.append(fit(cfg, _subset(train_all, tr), _subset(train_all, va), fold_dir, device=session.device,
                           dist=session.dist, resume=resume, progress=opts.progress, log=session.say))  # fmt: skip
    summary = kfold_summary([r.val_metrics["metrics"] for r in results])
    best = int(np.argmax([r.val_metrics["metrics"]["mean_class_recall"] for r in results]))
    shown = ", ".join(
        f"{k} {v['text']}" for k, v in summary.items() if k in ("accuracy", "mean_class_recall")
    )
    session.say(f"k-fold: {shown}")
    return _Outcome(
        results[best],
        val_split=f"kfold{cfg.kfold}-fold{best + 1}",  # the released fold's validation part
        val_name=f"{cfg.kfold}-fold validation (fold {best + 1}, the best of {cfg.kfold})",
        fold_summary=summary,
        selected_fold=best + 1,
    )


def _holdout(
    cfg: TrainConfig, data: _Data, train_all: Crops, session: _Session, on_best: OnBest | None
) -> _Outcome:
    from ferhub.data import stratified_split

    if data.val_src is None:
        tr, va = stratified_split(train_all.targets, cfg.val_fraction, cfg.seed)
        val_all, train_all = _subset(train_all, va), _subset(train_all, tr)
        val_name = f"held-out {cfg.val_fraction:.0%} of {data.train_src.split or 'the data'}"
        val_split = "heldout"
    else:
        val_all = data.crops(data.val_src)
        val_name = val_split = data.val_src.split or "validation"
    session.say(f"training on {len(train_all)} crops, validating on {len(val_all)} ({val_name})")
    result = fit(cfg, train_all, val_all, session.out_dir, device=session.device, dist=session.dist,
                 resume=data.opts.resume, progress=data.opts.progress, on_best=on_best, log=session.say)  # fmt: skip
    return _Outcome(result, val_split=val_split, val_name=val_name)


def _checkpoint_pusher(cfg: TrainConfig, opts: RunOptions, session: _Session) -> OnBest | None:
    """With ``--push-checkpoints``: push each new best model to the checkpoint branch during training."""
    if not (opts.push_to_hub and opts.push_checkpoints and session.dist.main):
        return None
    from ferhub import hub

    def on_best(model: nn.Module, epoch: int, metrics: dict[str, Any]) -> None:
        recall = metrics["mean_class_recall"]
        folder = hub.save(
            for_saving(model),
            session.out_dir / "best_model",
            card_context={"model_name": opts.model_name or opts.push_to_hub.split("/")[-1],
                          "repo_id": opts.push_to_hub, "training_command": opts.command,
                          "recipe": f"Best checkpoint so far (epoch {epoch}, validation mean class recall "
                                    f"{recall:.4f}) of recipe **{cfg.recipe}**."},
        )  # fmt: skip
        hub.push(folder, opts.push_to_hub, private=opts.private, revision=opts.checkpoint_branch,
                 commit_message=f"{cfg.recipe}: epoch {epoch}, val mean recall {recall:.4f}")  # fmt: skip

    return on_best


def train(cfg: TrainConfig, opts: RunOptions) -> dict[str, Any]:
    """Train the recipe on the data, write the model repo (and push it); returns a summary dict."""
    session = _Session.start(cfg, opts)
    data = _Data(cfg, opts, session)
    t0 = time.perf_counter()
    train_all = data.crops(data.train_src)
    mcfg = data.model_config
    session.say(f"data: {len(train_all)} crops of {mcfg.input_size}x{mcfg.input_size}x{mcfg.channels} "
                f"({time.perf_counter() - t0:.1f}s to prepare)")  # fmt: skip
    if cfg.kfold:
        outcome = _kfold(cfg, train_all, session, opts)
    else:
        outcome = _holdout(cfg, data, train_all, session, _checkpoint_pusher(cfg, opts, session))
    result = outcome.result
    summary: dict[str, Any] = {"val": result.val_metrics["metrics"], "epochs": result.state.epoch,
                               "best_epoch": result.state.best_epoch + 1, "kfold": outcome.fold_summary,
                               "data": data.prepared}  # fmt: skip
    entries = [_entry(result.val_metrics, data, outcome.val_split, cfg)]
    if outcome.fold_summary:
        entries[0]["kfold"] = {"k": cfg.kfold, "selected_fold": outcome.selected_fold, **outcome.fold_summary}
    if opts.test_split:
        test_src = data.test_source()
        test = data.crops(test_src)
        probs = evaluate(result.model, torch.from_numpy(test.images), result.model.config,
                         device=session.device, tta=cfg.tta)  # fmt: skip
        test_summary = score(probs, test.targets, test_src.labels, result.model.config.labels)
        summary["test"] = test_summary["metrics"]
        entries.append(_entry(test_summary, data, test_src.split, cfg))
        session.say(f"test ({test_src.split}): accuracy {test_summary['metrics']['accuracy']:.4f}, "
                    f"mean class recall {test_summary['metrics']['mean_class_recall']:.4f}")  # fmt: skip
    if session.dist.main:
        _write_repo(cfg, opts, session, data, outcome, entries, summary)
    return summary


def _entry(scored: dict[str, Any], data: _Data, split: str | None, cfg: TrainConfig) -> dict[str, Any]:
    opts = data.opts
    dataset_id = str(opts.data) if not Path(str(opts.data)).exists() else data.train_src.name
    return result_entry(scored, dataset=dataset_id, split=split, tta=cfg.tta, command=opts.command,
                        name=data.train_src.name)  # fmt: skip


def _write_repo(
    cfg: TrainConfig,
    opts: RunOptions,
    session: _Session,
    data: _Data,
    outcome: _Outcome,
    entries: list[dict[str, Any]],
    summary: dict[str, Any],
) -> None:
    """Write the model repo and ``summary.json`` (rank 0), and push the repo when asked."""
    from ferhub import hub

    on_disk = Path(str(opts.data)).exists()
    context = {
        "model_name": opts.model_name
        or (opts.push_to_hub.split("/")[-1] if opts.push_to_hub else cfg.recipe.replace(":", "-")),
        "repo_id": opts.push_to_hub,
        "description": f"A {cfg.model} facial-expression classifier trained with ferhub's `{cfg.recipe}` recipe.",
        "recipe": recipe_markdown(cfg, data.description(outcome.val_name), outcome.fold_summary),
        "training_command": opts.command,
        "citation": cfg.citation or None,
        "datasets": None if on_disk else [str(opts.data)],
        "tags": ["ferhub", f"recipe-{cfg.recipe.split(':')[0]}"],
    }
    model_dir = hub.save(for_saving(outcome.result.model), session.out_dir / "model",
                         eval_results=eval_results(entries), card_context=context)  # fmt: skip
    (session.out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=json_default) + "\n")
    session.say(f"model repo written to {model_dir}")
    summary["model_dir"] = str(model_dir)
    if opts.push_to_hub:
        url = hub.push(model_dir, opts.push_to_hub, private=opts.private, revision=opts.revision,
                       commit_message=f"Train {cfg.recipe}: val accuracy {summary['val']['accuracy']:.4f}")  # fmt: skip
        session.say(f"pushed: {url}")
        summary["pushed"] = url


def for_saving(model: nn.Module) -> nn.Module:
    """A CPU copy in the default memory format (safetensors stores contiguous tensors), whose config no longer
    asks for pretrained weights: the trained weights are in the repo, and loading must not fetch others."""
    m = copy.deepcopy(unwrap(model)).to("cpu", memory_format=torch.contiguous_format)
    args = {k: v for k, v in m.config.model_args.items() if k != "pretrained"}
    m.config = dataclasses.replace(m.config, model_args=args)
    return m.eval()
