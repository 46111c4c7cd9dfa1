""":func:`train`: a recipe and a data source -> a trained ferhub model repo (weights, config, card, results).

The data is decoded, face-detected (once, through :class:`ferhub.data.FaceCache`) and cropped once into an
in-memory ``uint8`` array; the protocol (a hold-out or k-fold) then calls :func:`ferhub.training.fit.fit`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import sys
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
from ferhub.data.crops import first_unreadable
from ferhub.errors import DataSourceError, DeviceError, HubConnectionError
from ferhub.hub._weights import unwrap
from ferhub.training.checkpoint import check_resume, json_default, saved_amp
from ferhub.training.distributed import Dist, barrier, broadcast_object, init_distributed, leave
from ferhub.training.fit import FitResult, OnBest, check_model_builds, check_random_frozen, fit
from ferhub.training.loop import evaluate, no_face_record, score
from ferhub.training.outdir import OutputDirBusy, OutputLock, claim, forget_checkpoints
from ferhub.training.protocol import (
    FitFn,
    Plan,
    copies_in,
    duplicates_note,
    fit_folder,
    make_plan,
    released,
    run_plan,
    summarize_runs,
)
from ferhub.training.results import eval_results, recipe_changes, recipe_markdown, result_entry
from ferhub.training.settings import RecipeError, TrainConfig
from ferhub.writers import encodable


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
    data_config: str | None = None  # Hub datasets only: the configuration to load (--data-config)
    label_names: str | None = None  # names of numbered classes: a dataset (rafdb, fer2013)
    precropped: bool | None = None  # the images are face crops already (default: the source says)
    face_cache: str | None = None
    output_dir: str | None = None  # default runs/RECIPE
    device: str = "auto"
    threads: int | None = None  # torch's CPU threads for the run (None: torch's own choice)
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
    made_out_dir: bool = False  # this run made the output folder (so may remove it while still empty)
    lock: OutputLock | None = None  # rank 0's claim on the output folder, held until release()
    threads_before: int | None = None  # torch's thread count before --threads changed it (restored)

    def release(self) -> None:
        """Let go of the output folder (removing the lock file) and of ``--threads`` (torch's thread count as
        it was); the run's end, or the refusal of its data."""
        if self.lock is not None:
            self.lock.release()
        if self.threads_before is not None:
            torch.set_num_threads(self.threads_before)
            self.threads_before = None

    @classmethod
    def start(cls, cfg: TrainConfig, opts: RunOptions) -> _Session:
        if opts.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        from ferhub.device import resolve_device

        # the one default-device rule (ferhub.device); a CUDA device asked for without a GPU is refused at
        # once
        try:
            device = resolve_device(None if opts.device == "auto" else opts.device)
        except DeviceError as e:  # a CUDA device asked for on a machine without one: the user's to fix
            raise RecipeError(str(e)) from None
        _check_amp(cfg, device, _resumed_checkpoint(cfg, opts))
        dist = init_distributed(str(device))
        if device.type == "cuda" and device.index is None and dist.world > 1:
            device = torch.device("cuda", dist.local_rank)  # torchrun: each rank on its own GPU
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = not opts.deterministic
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        out_dir = Path(opts.output_dir or cfg.default_output_dir())
        made = dist.main and not out_dir.exists()
        lock, busy = None, None
        if dist.main:  # the other ranks write nothing there but through rank 0
            out_dir.mkdir(parents=True, exist_ok=True)
            try:
                lock = claim(out_dir)  # a second run into the folder is refused here, before any data loads
            except OutputDirBusy as e:
                busy = str(e)
            except OSError as e:  # under torchrun every rank says why (rank 1 called it "a bug" alone)
                if dist.world <= 1:
                    raise
                busy = f"{out_dir}: cannot hold the folder ({e.strerror or e}); give another --output-dir"
        busy = broadcast_object(busy, dist)  # every rank refuses with rank 0's message (not a crash later)
        if busy is not None:
            leave(dist)
            raise OutputDirBusy(busy)
        before = _set_threads(opts.threads)
        say = print if dist.main else (lambda _msg: None)
        # the run's first line: where it trains, and on how many CPU threads (what its speed depends on)
        given = f" (--threads {opts.threads})" if opts.threads is not None else ""
        n = torch.get_num_threads()
        say(f"device: {device}, {n} torch CPU thread{'s' if n != 1 else ''}{given}")
        return cls(device, dist, out_dir, say, made, lock, before)


def _set_threads(threads: int | None) -> int | None:
    """Set torch's CPU threads to ``threads`` (intra-op; inter-op too where torch still allows it, before
    any inter-op work); returns the intra-op count it replaced (``None``: nothing changed). On a machine
    other jobs share, fewer threads than torch's default (one per core) can train several times faster:
    each operator's threads wait for the slowest, and OpenMP's waiting threads spin on cores the other jobs
    need (train/README.md, ``bench/train.py --threads-sweep``)."""
    if threads is None:
        return None
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # "cannot set ... after parallel work has started": left as is
        torch.set_num_interop_threads(threads)
    return before


_SKIPPED = "left out of training and selection; the reported data keeps them, the whole image standing in"


class _Data:
    """The run's sources and their crops (each made once; rank 0 fills the shared face cache first)."""

    def __init__(self, cfg: TrainConfig, opts: RunOptions, session: _Session) -> None:
        from ferhub.data import FaceCache, open_source
        from ferhub.data.sources import column_options, takes_columns

        self.cfg, self.opts, self.session = cfg, opts, session
        self.kw: dict[str, Any] = {"label_names": opts.label_names, "precropped": opts.precropped}
        # the column options pick a Hugging Face dataset's columns: they go to the sources that are one (a
        # Hub --data with a folder --val-data takes them for the first only); given where no source is one,
        # the data refuses them
        self.columns = column_options(opts)
        self._column_sources = {s for s in (opts.data, opts.val_data) if s is not None and takes_columns(s)}
        self.train_src = self._open(opts.data, opts.split, "train") or open_source(
            opts.data, None, **self._kw(opts.data)
        )
        self.val_src = None
        if not cfg.kfold:
            if opts.val_data is not None:
                self.val_src = self._open(opts.val_data, opts.val_split, "val") or open_source(
                    opts.val_data, None, **self._kw(opts.val_data)
                )
            elif opts.val_split is not None or self.train_src.split is not None:
                self.val_src = self._open(opts.data, opts.val_split, "val", optional=True)
        present = [self.train_src.labels[t] for t in sorted(set(self.train_src.targets.tolist()))]
        if len(present) < 2:  # one class: every prediction is right, and the model learns nothing
            raise DataSourceError(
                f"{self.train_src.name}: its images are all of one class ({', '.join(present) or 'none'}); "
                "an expression classifier needs images of at least two classes (one folder per class)"
            )
        # validation data lacking a class is scored in the training labels (as evaluate scores a subset); a
        # class the model would never learn cannot be
        unknown = set(self.val_src.labels) - set(self.train_src.labels) if self.val_src is not None else set()
        if unknown:
            raise RecipeError(
                f"validation classes {sorted(unknown)} are not among the training classes "
                f"{list(self.train_src.labels)}; the model could never predict them. Give validation data of "
                "the training classes"
            )
        self.test_src = self.test_source()
        if cfg.kfold and opts.val_data is not None and self.test_src is None:
            raise RecipeError(
                f"--kfold {cfg.kfold} with --val-data {opts.val_data}: k-fold cross-validation selects and "
                "reports on folds of --data, and uses --val-data only for its test split, which "
                f"{opts.val_data} does not have; leave out --val-data (or --kfold)"
            )
        self._kept_apart()
        self.model_config = model_config(cfg, self.train_src.labels)
        # seed 004's Table 3 ablation (face_detection=False) resizes every image whole, like face crops
        self.precropped = True if not cfg.face_detection else opts.precropped
        detect = cfg.face_detection and (not self.train_src.precropped or opts.precropped is False)
        self.cache = FaceCache(cache_dir=opts.face_cache) if detect else None
        self.prepared: dict[str, dict[str, int]] = {}  # per split: how the crops were made (no-face counts)

    def _kw(self, source: str) -> dict[str, Any]:
        """``open_source`` keywords for ``source``: the column options where they apply (see ``__init__``)."""
        if source in self._column_sources or not self._column_sources:
            return {**self.kw, **self.columns}
        return self.kw

    def _open(self, source: str, split: str | None, preferred: str, *, optional: bool = False) -> Any:
        """``source``'s split ``split`` (one the user named), else its split ``preferred``; ``None`` where it
        has no such split (the caller then opens all of it, or goes on without). ``optional``: a split the
        run can do without (the validation split of ``--data``, the test split), also ``None`` where it has
        no label at all (a Hub test split's hidden labels, a test/ folder of loose images) or no row, each
        said in one line; a split the run needs is refused then. Any other error of the data is raised as it
        is: opening the data again without a split would only say to choose one."""
        from ferhub.data import open_source
        from ferhub.data.sources import SplitNotFound, UnlabelledSplit

        if split is not None:
            return self._named(open_source(source, split, **self._kw(source)), source, preferred)
        try:  # sources with splits (fer2013.csv, train/ test/ folders, Hub datasets) give `preferred`
            src = open_source(source, preferred, **self._kw(source))
        except SplitNotFound:
            return None
        except UnlabelledSplit as e:
            if not optional:
                raise
            self.session.say(encodable(f"{preferred} split left out: {e}"))  # its path may not be UTF-8
            return None
        # data without splits of its own (a single parquet file) takes any split name for all of its images:
        # it has no `preferred` split
        if src.split_is_label:
            return None
        if not len(src):  # a split saved without rows (datasets keeps it so): nothing to select or report on
            if not optional:
                raise self._no_images(src, source, preferred)
            self.session.say(
                f"{preferred} split left out: {encodable(source)}: its split {src.split!r} has no images"
            )
            return None
        return src

    @staticmethod
    def _no_images(src: Any, source: str, role: str) -> Exception:
        """The refusal of ``source``'s split ``src`` of no rows for ``role``: a result or an epoch chosen on
        0 images means nothing."""
        from ferhub.data import DataSourceError

        option = {"train": "--split", "val": "--val-split", "test": "--test-split"}[role]
        return DataSourceError(
            f"{encodable(source)}: its split {src.split!r} has no images; name a split that holds images "
            f"({option})"
        )

    def _named(self, src: Any, source: str, role: str) -> Any:
        """``src``, opened for ``role`` by a split the user named; refused where that split only names all of
        data without splits that also trains (or selects): those images would report on themselves."""
        from ferhub.data import DataSourceError

        if not len(src):
            raise self._no_images(src, source, role)
        val_source = self.opts.val_data if getattr(self, "val_src", None) is not None else None
        if src.split_is_label and role != "train" and source in (self.opts.data, val_source):
            raise DataSourceError(
                f"{source} has no splits of its own, so its split {src.split!r} would be all of its images, "
                f"the same that {'train' if source == self.opts.data else 'select the epoch'}; give the "
                f"{role} data as a source of its own (--val-data) or data with train/val/test splits"
            )
        return src

    def _kept_apart(self) -> None:
        """Refuse (before any image is cropped) a report on the images that train or choose the epoch: one
        split in two roles, or ``--val-data`` naming ``--data`` again. ``make_plan`` reports on the test split
        when there is one (the validation split then selects, with ``selection="inner"``), else on the
        validation split."""
        opts, inner = self.opts, self.cfg.selection == "inner"
        other = opts.val_data or opts.data  # the source of the validation and the test split
        train = _identity(opts.data, self.train_src)
        val, test = _identity(other, self.val_src), _identity(other, self.test_src)
        if _share(val, train) and opts.val_data is not None and (test is None or inner):
            raise RecipeError(
                f"--val-data {opts.val_data} holds images of --data that train the model; "
                "give validation data of its own, or omit --val-data (the source's validation split, else a "
                "stratified share of --data, then takes its place)"
            )
        twice = []  # (role, role, what the first does, what the second does)
        if _share(test, train):
            twice.append(("train", "test", "train the model", "report its results"))
        if _share(val, train) and (test is None or inner):
            twice.append(
                ("train", "val", "train the model", "choose the epoch" if test else "report its results")
            )
        if _share(test, val) and inner:
            twice.append(("val", "test", "choose the released epoch", "report its results"))
        if not twice:
            return
        a, b, does, also = twice[0]
        options = {"train": ("--split", opts.split), "val": ("--val-split", opts.val_split),
                   "test": ("--test-split", opts.test_split)}  # fmt: skip
        split = {"train": self.train_src, "val": self.val_src, "test": self.test_src}[b].split
        named = [options[r] for r in (a, b) if options[r][1] is not None] or [(options[b][0], split)]
        raise RecipeError(
            f"{', '.join(f'{o} {v}' for o, v in named)}: split {split} would both {does} and {also}, and a "
            "result must come from data that neither trains nor chooses the model; give "
            f"{' or '.join(f'{o} another split' for o, _ in named)}, or leave it out"
        )

    def test_source(self) -> Any:
        """The ``--test-split`` source, else the source's own test split when it has one (else ``None``)."""
        from ferhub.data import open_source

        source = self.opts.val_data or self.opts.data
        if self.opts.test_split is not None:
            return self._named(open_source(source, self.opts.test_split, **self._kw(source)), source, "test")
        return self._open(source, None, "test", optional=True)

    def called(self, src: Any) -> str | None:
        """How the card names ``src`` where it comes from ``--val-data`` (that source named, not only a split
        name that reads as one of ``--data``'s); else ``None``."""
        if self.opts.val_data is None or src is None or src is self.train_src:
            return None
        val_data = encodable(self.opts.val_data)
        return f"split {src.split} of `{val_data}`" if src.split else f"all of `{val_data}`"

    def crops_given(self, src: Any) -> bool:
        """Whether ``src``'s images went in whole, as face crops (no detection; as materialize decides)."""
        return bool(src.precropped if self.precropped is None else self.precropped)

    def crops(self, src: Any) -> Crops:
        from ferhub.data import FaceCache, materialize

        dist, cfg = self.session.dist, self.cfg
        # no_face="skip" leaves no-face images out of training and selection only (protocol.make_plan): every
        # image is cropped, the whole image standing in, and marked
        kw = {"precropped": self.precropped, "no_face": "fallback"}
        if dist.main:
            c = materialize(src, self.model_config, cache=self.cache, **kw)
        barrier(dist)
        if not dist.main:  # the cache is full now: the other ranks only read it
            cache = FaceCache(cache_dir=self.opts.face_cache) if self.cache else None
            c = materialize(src, self.model_config, cache=cache, **kw)
        if c.no_face:
            self.session.say(
                f"{src.name}/{src.split or 'all'}: no face found in {c.no_face} of {len(src)} images "
                f"({'whole image used' if cfg.no_face == 'fallback' else _SKIPPED})"
            )
        for note in src.notes if dist.main else ():  # rows the loader left out (no label): said, on stderr
            print(f"{src.name}/{src.split or 'all'}: {note}", file=sys.stderr)
        if c.unreadable and dist.main:  # a warning, so stderr (the log is stdout); once, not once per rank
            print(
                f"{src.name}/{src.split or 'all'}: {len(c.unreadable)} of {len(src)} images could not be "
                f"decoded and were skipped (first: {first_unreadable(src, c.unreadable)})",
                file=sys.stderr,
            )
        key = self.called(src) or src.split or "all"  # --val-data's "all" is not the training data's
        self.prepared[key] = {
            "images": len(src),
            "crops": len(c),
            "no_face": c.no_face,
            "no_face_policy": cfg.no_face,
            "detections_run": c.detections_run,
        }
        if c.unreadable:  # only then: a clean data set's summary stays as it was
            self.prepared[key]["unreadable"] = len(c.unreadable)
        return c

    def description(self, plan: Plan, test: tuple[str, int] | None = None) -> str:
        """The card's account of the data: where it came from, how many images trained, chose the epoch and
        reported (as the plan split them, not the source's total), no-face counts. ``test``: (how the card
        names it, size) of a test split the released model of a k-fold run was also reported on."""
        src = self.train_src
        data = encodable(self.opts.data)  # the card must encode to UTF-8 (see train)
        text = f"`{data}` ({f'split {src.split}, ' if src.split else ''}{len(src)} images). "
        folds = plan.folds
        each = f" in each of the {len(folds)} folds" if len(folds) > 1 else ""
        text += f"Trained on {_sizes([len(f.train) for f in folds])} images{each}; "
        if plan.select_name:
            selects = [len(f.select) for f in folds if f.select is not None]
            text += f"the epoch chosen on {_sizes(selects)} images ({plan.select_name}); "
        else:
            text += "no epoch chosen on data; "
        # each image is held out by exactly one fold (per repeat): the report pools them all
        repeats = self.cfg.repeats
        once = "each once" if repeats == 1 else f"each once in each of the {repeats} repeats"
        if len(folds) > 1:
            reported = sum(len(f.report) for f in folds)
            text += f"results reported on all {reported} images, {once} ({plan.report_name})"
        else:
            text += f"results reported on {len(folds[0].report)} images ({plan.report_name})"
            text += f", {once}" if repeats > 1 else ""
        if test is not None:
            text += f", and on the {test[1]} images of {test[0]} by the released model"
        no_face = [
            f"{v['no_face']} of {v['images']} images ({k})" for k, v in self.prepared.items() if v["no_face"]
        ]
        if no_face:
            text += ". No face found by MTCNN in " + ", ".join(no_face)
            text += " (the whole image was used)" if self.cfg.no_face == "fallback" else f" ({_SKIPPED})"
        unreadable = [
            f"{v['unreadable']} of {v['images']} images ({k})"
            for k, v in self.prepared.items()
            if v.get("unreadable")
        ]
        if unreadable:
            text += ". Left out because they could not be decoded: " + ", ".join(unreadable)
        return text


def _identity(source: str, src: Any) -> frozenset[str] | tuple[str, str | None] | None:
    """Which images ``src`` (opened from ``source``) holds, for :func:`_share`: the real paths of a folder's
    files or a zip's members, so ``data/splits`` opened as split train and the folder ``data/splits/train``
    are the same images; else the data (a local one by resolved path) and its split (none for data without
    splits, where any name is all of it)."""
    if src is None:
        return None
    files = getattr(src, "files", None)
    if files is not None:  # class folders
        return frozenset(os.path.realpath(f) for f in files)
    members = getattr(src, "members", None)
    if members is not None:  # a zip of class folders
        zip_path = os.path.realpath(src.path)
        return frozenset(f"{zip_path}::{m}" for m in members)
    path = Path(str(source)).expanduser()
    where = str(path.resolve()) if path.exists() else str(source)
    return where, None if getattr(src, "split_is_label", False) else src.split


def _share(a: Any, b: Any) -> bool:
    """Whether two :func:`_identity` values hold a common image: files in common (a partial overlap, a
    sub-folder of the same data, is the same problem as the whole), or the same data and split."""
    if a is None or b is None:
        return False
    if isinstance(a, frozenset) and isinstance(b, frozenset):
        return not a.isdisjoint(b)
    return a == b


def _sizes(counts: list[int]) -> str:
    """``"7"``, or ``"26-27"`` when the folds differ in size."""
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}-{high}"


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


def _checkpoint_pusher(cfg: TrainConfig, opts: RunOptions, session: _Session) -> OnBest | None:
    """With ``--push-checkpoints``: push each new best model to the checkpoint branch during training."""
    if not (opts.push_to_hub and opts.push_checkpoints and session.dist.main):
        return None
    from ferhub import hub
    from ferhub.hub._push import published_as

    # the value that chose the checkpoint (cfg.monitor), as the log and the protocol name it
    words = {"loss": "loss", "mean_class_recall": "mean class recall"}[cfg.monitor]
    start = _start_context(cfg)

    def on_best(model: nn.Module, epoch: int, metrics: dict[str, Any]) -> None:
        value = metrics[cfg.monitor]
        better = "lowest" if cfg.monitor == "loss" else "highest"
        folder = hub.save(
            for_saving(model),
            session.out_dir / "best_model",
            card_context={"model_name": opts.model_name or opts.push_to_hub.split("/")[-1],
                          **published_as(opts.push_to_hub, opts.checkpoint_branch),
                          "training_command": opts.command, **start,
                          "recipe": f"Best checkpoint so far (epoch {epoch}, validation {words} {value:.4f}, "
                                    f"the {better} yet: the value that selects the epoch) of recipe "
                                    f"**{cfg.recipe}**."},
        )  # fmt: skip
        hub.push(folder, opts.push_to_hub, private=opts.private, revision=opts.checkpoint_branch,
                 commit_message=f"{cfg.recipe}: epoch {epoch}, val {words} {value:.4f}")  # fmt: skip

    return on_best


def _fitter(cfg: TrainConfig, opts: RunOptions, session: _Session) -> FitFn:
    """:func:`fit` bound to the run's device, log and options (``--resume``, ``--push-checkpoints``)."""
    on_best = _checkpoint_pusher(cfg, opts, session) if cfg.selection == "inner" else None

    def fit_fn(cfg_r: TrainConfig, train: Crops, watched: Crops, where: Path, only: bool) -> FitResult:
        # the run's only fit insists on its checkpoint; in k-fold / repeats a part not reached yet starts
        # fresh
        resume = opts.resume and (only or (where / "checkpoints" / "last.safetensors").is_file())
        return fit(cfg_r, train, watched, where, device=session.device, dist=session.dist, resume=resume,
                   progress=opts.progress, on_best=on_best if only else None, log=session.say)  # fmt: skip

    return fit_fn


def _check_init(cfg: TrainConfig) -> None:
    """``init`` (``--init``) names a file or a model folder that is there, before any data loads (whether
    its weights fit the model is known only once the classes are)."""
    if cfg.init is None:
        return
    path = Path(cfg.init)
    if path.is_dir() and not (path / "model.safetensors").is_file():
        raise RecipeError(
            f"--init {cfg.init}: a folder without model.safetensors; give a checkpoint file (.safetensors, "
            ".pth) or a ferhub model folder (a run's OUTPUT_DIR/model)"
        )
    if not path.exists():
        raise RecipeError(
            f"--init {cfg.init}: no such file; give a checkpoint file (.safetensors, .pth) or a ferhub model "
            "folder (a run's OUTPUT_DIR/model)"
        )


def _check_push_target(opts: RunOptions) -> None:
    """With ``--push-to-hub``: a well-formed id, and a Hub that answers now (the 1 s probe every push makes),
    so that a run that cannot push learns it before training rather than after."""
    if not opts.push_to_hub:
        return
    from huggingface_hub import constants

    from ferhub.hub import _remote

    if not _remote.HUB_ID.fullmatch(opts.push_to_hub):
        raise RecipeError(f"--push-to-hub must be a Hub id of the form ORG/NAME, got {opts.push_to_hub!r}")
    if constants.is_offline_mode():
        why, fix = "offline mode is on (HF_HUB_OFFLINE=1)", "unset HF_HUB_OFFLINE"
    elif (unreachable := _remote.hub_unreachable(constants.ENDPOINT)) is not None:
        why, fix = unreachable, "connect to the network (or set HTTPS_PROXY / HF_ENDPOINT)"
    else:
        return
    raise HubConnectionError(
        f"--push-to-hub {opts.push_to_hub}: cannot push, {why}; nothing was trained. Fix: {fix}, or train "
        "without --push-to-hub and `ferhub push` the model folder later"
    )


def train(cfg: TrainConfig, opts: RunOptions) -> dict[str, Any]:
    """Train the recipe on the data by its protocol, write the model repo (and push it); returns a summary.

    Settings (an ``init`` path that is not there among them) and the push target are checked first
    (:class:`RecipeError`, :class:`HubConnectionError`), before any data loads; what must fit the data's
    classes, once its source is open, before any image is cropped."""
    cfg.validate("settings")  # a TrainConfig built in Python has not been through from_dict
    _check_threads(opts.threads)
    _check_init(cfg)
    check_model_builds(cfg)  # pretrained files and optional packages, before minutes of face detection
    check_random_frozen(cfg)  # frozen stages without the weights that would fill them
    _check_push_target(opts)
    _check_output_dir(cfg, opts)
    _check_resumed_settings(cfg, opts)
    # the command line goes into the card and the results, which must encode to UTF-8: a path's bytes that
    # are not UTF-8 (held as lone surrogates) as \xNN escapes, as the data's name is (data.sources.local_name)
    opts = dataclasses.replace(opts, command=encodable(opts.command))
    session = _Session.start(cfg, opts)
    try:
        return _train(cfg, opts, session)
    finally:
        session.release()


def _check_amp(cfg: TrainConfig, device: torch.device, resumed: Path | None = None) -> None:
    """Refuse mixed precision asked for on a run off CUDA, before any data loads: autocast runs on CUDA only
    here (:func:`~ferhub.training.loop._autocast`), so the run would train in float32 while its card and
    checkpoints said bf16/fp16. A shipped recipe's own ``amp`` (for its GPU runs) is left as it is, and so
    is the one of the ``resumed`` checkpoint (a GPU run finished on the CPU)."""
    if cfg.amp == "none" or device.type == "cuda":
        return
    compared = recipe_changes(cfg)
    if compared is not None and not any(key == "amp" for key, _, _ in compared[1]):
        return  # the recipe's own setting, not the user's
    if resumed is not None and saved_amp(resumed) == cfg.amp:
        # --resume of a CUDA run's checkpoint insists on its amp (checkpoint._check_settings): refusing it
        # here too would leave no way to finish that run on the CPU
        return
    raise RecipeError(
        f"--amp {cfg.amp}: AMP runs on CUDA only here, and this run is on {device.type}, where it would "
        "train in float32 all the same; drop --amp (or --set amp=none)"
    )


def _check_threads(threads: Any) -> None:
    """``--threads`` a whole number of at least 1, or not given (torch's own choice)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise RecipeError(f"--threads must be a whole number of 1 or more, got {threads!r}")


def _check_output_dir(cfg: TrainConfig, opts: RunOptions) -> None:
    """Refuse, before any data loads, an output folder named with bytes that are not UTF-8 (held as lone
    surrogates): safetensors cannot open a file by such a path, so the run would train, then fail reading its
    best checkpoint back, and no model would be written."""
    out = str(opts.output_dir or cfg.default_output_dir())
    if encodable(out) != out:
        raise RecipeError(
            f"--output-dir {encodable(out)}: its name has bytes that are not UTF-8, which the model's "
            "safetensors files cannot be read back from; give a folder whose name is UTF-8"
        )


def _check_resumed_settings(cfg: TrainConfig, opts: RunOptions) -> None:
    """With ``--resume``: refuse, before any data loads, a checkpoint trained with other settings (from its
    metadata; :func:`~ferhub.training.checkpoint.restore` checks again, with the data's classes). The one
    checked is the first fit's (``repeat1``/``fold1`` of a run of several), trained with this run's own seed;
    every rank reads the same file, so all refuse alike, before any collective. None there yet: nothing to
    check."""
    resumed = _resumed_checkpoint(cfg, opts)
    if resumed is not None:
        check_resume(resumed, cfg)


def _resumed_checkpoint(cfg: TrainConfig, opts: RunOptions) -> Path | None:
    """With ``--resume``, the first fit's last checkpoint (whether or not it is there yet); else ``None``."""
    if not opts.resume:
        return None
    first = fit_folder(Path(opts.output_dir or cfg.default_output_dir()), cfg, 0, 0, cfg.kfold or 1)
    return first / "checkpoints" / "last.safetensors"


def _train(cfg: TrainConfig, opts: RunOptions, session: _Session) -> dict[str, Any]:
    """:func:`train` with the output folder claimed."""
    try:
        data = _Data(cfg, opts, session)
        # the classes (and how many images each) are known once the source is open, before any image is
        # decoded or cropped
        labels = data.train_src.labels
        counts = np.bincount(np.asarray(data.train_src.targets, dtype=np.int64), minlength=len(labels))
        cfg.validate_classes(labels, counts=counts.tolist())
    except BaseException:  # data refused before any work: no empty output folder left behind by this run
        if session.made_out_dir:
            session.release()  # its lock file is the one file in it
            with contextlib.suppress(OSError):
                session.out_dir.rmdir()  # only if still empty
        raise
    if session.dist.main and not opts.resume:
        # a stop before this run's first checkpoint must not leave an earlier run's for --resume to continue
        forget_checkpoints(session.out_dir, keep=Path(cfg.init) if cfg.init else None)
    t0 = time.perf_counter()
    train_all = data.crops(data.train_src)
    val = data.crops(data.val_src) if data.val_src is not None else None
    test_src = data.test_src
    test = data.crops(test_src) if test_src is not None else None
    mcfg = data.model_config
    session.say(f"data: {len(train_all)} crops of {mcfg.input_size}x{mcfg.input_size}x{mcfg.channels} "
                f"({time.perf_counter() - t0:.1f}s to prepare)")  # fmt: skip
    names = {
        "train": data.train_src.split or "the data",
        "val": getattr(data.val_src, "split", None) or "all",  # --val-data without splits: all of it
        "test": getattr(test_src, "split", None) or "test",
    }
    texts = {role: data.called(src) or f"split {names[role]}" for role, src in
             (("val", data.val_src), ("test", test_src))}  # fmt: skip
    names.update({f"{role}_text": text for role, text in texts.items()})
    plan = make_plan(cfg, train_all, None if cfg.kfold else val, None if cfg.kfold else test, names)
    if session.dist.main:
        _warn_duplicates(plan.duplicates.get("reported", 0), plan.report_name,
                         plan.duplicates.get("selected", 0), plan.select_name)  # fmt: skip
    runs = run_plan(cfg, plan, session.out_dir, _fitter(cfg, opts, session), session.device, session.say)
    fold, chosen = released(cfg, runs)
    reported = summarize_runs(cfg, plan, runs)
    # the report data's images once each (every repeat reports on the same ones): what evaluate would count
    report_src = test_src if test is not None and not cfg.kfold else data.val_src
    if cfg.kfold or report_src is None:  # the folds, or a share held out of the training data
        report_src = data.train_src
    reported["no_face"] = _no_face(data, report_src, [fr.report for fr in runs[0]], chosen)
    entries = [_entry(reported, data, plan.report_split, cfg, report_src)]
    if cfg.kfold and test is not None:  # k-fold reports on its folds; a test split is one more report
        probs = evaluate(chosen.result.model, torch.from_numpy(test.images), chosen.result.model.config,
                         device=session.device, tta=cfg.tta)  # fmt: skip
        extra = score(probs, test.targets, test.labels, chosen.result.model.config.labels)
        extra["no_face"] = _no_face(data, test_src, [test], chosen)
        seen_parts = plan.folds[fold]
        copies = copies_in(test, [seen_parts.train, seen_parts.select])
        if session.dist.main:
            _warn_duplicates(copies, texts["test"])
        # how this entry was measured: the released fold's model, chosen as the k-fold run chose it, once on
        # the test split; the k-fold's own statistics (folds, repeats, epoch means) are of other data and stay
        # in the k-fold entry
        extra["protocol"] = {
            **{k: v for k, v in reported["protocol"].items() if k not in _KFOLD_STATISTICS},
            "reported_on": texts["test"],
            "released_fold": fold + 1,
            "exact_duplicates": {"reported": copies},  # of the released fold's training and selection data
            **({"released_repeat": 1} if cfg.repeats > 1 else {}),  # released() takes the first repeat's
        }
        of_run = "the k-fold run" if cfg.repeats == 1 else "the first repeat of the k-fold run"
        extra["notes"] = [*extra["notes"], f"The released model (fold {fold + 1} of {of_run}) on "
                          f"{texts['test']}, which took no part in training or selection."]  # fmt: skip
        if note := duplicates_note(copies, len(test)):
            extra["notes"].append(note)
        entries.append(_entry(extra, data, names["test"], cfg, test_src))
    seen = _seen_data(data, cfg, selects=not cfg.kfold and cfg.selection == "inner" and val is not None
                      and test is not None)  # fmt: skip
    for entry in entries:  # also here, where earlier ferhub versions look for it
        entry["protocol"] = {**(entry.get("protocol") or {}), "seen_data": seen}
    metrics = reported["metrics"]
    session.say(f"reported on {plan.report_name}: accuracy {metrics['accuracy']:.4f}, mean class recall "
                f"{metrics['mean_class_recall']:.4f}")  # fmt: skip
    summary: dict[str, Any] = {
        "report": metrics,
        "selection": chosen.result.val_metrics["metrics"] if cfg.selection == "inner" else None,
        "released_fold": fold + 1 if cfg.kfold else None,
        "epochs": chosen.result.state.epoch,
        "best_epoch": chosen.result.state.best_epoch + 1,
        "protocol": reported["protocol"],
        "data": data.prepared,
        # how it ran (not what it learnt): the device and torch's CPU threads
        "device": str(session.device),
        "threads": torch.get_num_threads(),
    }
    if session.dist.main:
        also = (texts["test"], len(test)) if cfg.kfold and test is not None else None
        _write_repo(cfg, opts, session, data.description(plan, also), plan, chosen.result.model, entries,
                    summary, seen)  # fmt: skip
    return summary


def _warn_duplicates(
    reported: int, report_name: str, selected: int = 0, select_name: str | None = None
) -> None:
    """Say on stderr that ``reported`` images of the data that reports (``selected`` of the data that chooses
    the epoch) have a pixel-identical copy in the data that trains (or chooses) the model: exact duplicates
    across a data set's own splits (FER2013's Training and PrivateTest share pictures), which the splits
    ferhub makes keep together but a source's splits need not. The count goes into the results and the card
    (``protocol.exact_duplicates``)."""
    if reported:
        print(
            f"warning: {reported} images of {report_name} (which reports the results) have a pixel-identical "
            "copy in the data that trains or chooses the model: the results count them as held out, which "
            "can inflate them (recorded in the card and eval_results.json); remove the duplicates from the "
            "data to report on held-out images only",
            file=sys.stderr,
        )
    if selected:
        print(
            f"warning: {selected} images of {select_name} (which chooses the epoch) have a pixel-identical "
            "copy in the training data, which favours epochs that memorise them",
            file=sys.stderr,
        )


def _seen_data(data: _Data, cfg: TrainConfig, *, selects: bool) -> list[dict[str, Any]]:
    """The data that trained the model (``role: "train"``) and, when the validation split chose its epoch
    (``selects``), that split (``"select"``), named as the entries name data and as ``ferhub evaluate``
    keys it (``id``, ``config``, ``split``; ``all`` for data without splits), with the number of images it
    has (``num_images``: a local folder is named by its name alone, and another folder of that name with
    other images is told apart by its count): recorded as the results document's ``training.seen_data``
    (kept whatever evaluation replaces, :func:`ferhub.eval_results.merge`) and in each entry's protocol, so
    that an evaluation on them is told from a held-out one (:func:`ferhub.evaluation.training_overlap`). A
    k-fold run trains on every fold of its data."""
    opts, train = data.opts, data.train_src
    train_id = str(opts.data) if not Path(str(opts.data)).exists() else train.name  # as _entry names it
    seen: list[dict[str, Any]] = [{"id": train_id, "config": getattr(train, "config", None) or "default",
                                   "split": train.split or "all", "role": "train",
                                   "num_images": len(train)}]  # fmt: skip
    val = data.val_src
    if selects and val is not None:
        val_id = val.name if opts.val_data is not None else train_id
        seen.append({"id": val_id, "config": getattr(val, "config", None) or "default",
                     "split": val.split or "all", "role": "select", "num_images": len(val)})  # fmt: skip
    return seen


# the k-fold entry's protocol statistics, of the folds' held-out data (and its repeat count): not of a test
# split's entry, which one released model measured once
_KFOLD_STATISTICS = ("folds", "repeat_results", "epoch_mean", "repeats")


def _no_face(data: _Data, src: Any, crops: list[Crops], chosen: Any) -> dict[str, Any]:
    """The ``no_face`` of an entry reported on ``crops`` of ``src``: :func:`no_face_record` (the metrics'
    default said 0 images without a face, policy fallback, whatever the data)."""
    fallback = [c.fallback if c.fallback is not None else np.zeros(len(c), dtype=bool) for c in crops]
    return no_face_record(
        np.concatenate([c.targets for c in crops]),
        np.concatenate(fallback),
        crops[0].labels,
        chosen.result.model.config.labels,
        precropped=data.crops_given(src),
    )


# the card's Evaluation section serves results of `ferhub evaluate` too: say who measured these
_MEASURED_BY_TRAIN = (
    "Measured by `ferhub train` when training ended, on data it held out (see *Protocol*), not by "
    "`ferhub evaluate`."
)


def _entry(
    scored: dict[str, Any], data: _Data, split: str | None, cfg: TrainConfig, src: Any
) -> dict[str, Any]:
    """The entry of results on ``src``. Data of ``--val-data`` (its validation or test split) is named as
    ``ferhub evaluate --data`` names it (the source's name and split): the entry is of those images, not of
    the training data, and both commands' results on them share a key."""
    opts = data.opts
    scored = {**scored, "notes": [_MEASURED_BY_TRAIN, *scored.get("notes", [])]}
    images = scored.pop("num_images", None)  # the images reported on (repeats predict each several times)
    if opts.val_data is not None and src is not data.train_src:
        return result_entry(scored, dataset=src.name, split=src.split, tta=cfg.tta, command=opts.command,
                            name=src.name, num_images=images,
                            config=getattr(src, "config", None))  # fmt: skip
    dataset_id = str(opts.data) if not Path(str(opts.data)).exists() else data.train_src.name
    return result_entry(scored, dataset=dataset_id, split=split, tta=cfg.tta, command=opts.command,
                        name=data.train_src.name, num_images=images,
                        config=getattr(data.train_src, "config", None))  # fmt: skip


def _write_repo(
    cfg: TrainConfig,
    opts: RunOptions,
    session: _Session,
    data_text: str,
    plan: Plan,
    model: nn.Module,
    entries: list[dict[str, Any]],
    summary: dict[str, Any],
    seen: list[dict[str, Any]],
) -> None:
    """Write the model repo and ``summary.json`` (rank 0), and push the repo when asked. ``data_text``: the
    card's account of the data (:meth:`_Data.description`); ``seen``: the data that trained or chose the
    model (:func:`_seen_data`)."""
    from ferhub import hub
    from ferhub.hub._push import published_as

    on_disk = Path(str(opts.data)).exists()
    context = {
        "model_name": (
            opts.model_name
            or (opts.push_to_hub.split("/")[-1] if opts.push_to_hub else cfg.recipe.replace(":", "-"))
        ),
        **(published_as(opts.push_to_hub, opts.revision) if opts.push_to_hub else {}),
        "description": (
            f"A {cfg.model} facial-expression classifier trained with ferhub's `{cfg.recipe}` recipe."
        ),
        "recipe": recipe_markdown(cfg, data_text, summary["protocol"], carved=plan.carved),
        "training_command": opts.command,
        "citation": cfg.citation or None,
        "datasets": None if on_disk else [str(opts.data)],
        "tags": ["ferhub", f"recipe-{cfg.recipe.split(':')[0]}"],
        **_start_context(cfg),
    }
    model_dir = hub.save(for_saving(model), session.out_dir / "model",
                         eval_results=eval_results(entries, seen), card_context=context)  # fmt: skip
    (session.out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=json_default) + "\n")
    session.say(f"model repo written to {model_dir}")
    summary["model_dir"] = str(model_dir)
    if opts.push_to_hub:
        accuracy = summary["report"]["accuracy"]
        url = hub.push(
            model_dir,
            opts.push_to_hub,
            private=opts.private,
            revision=opts.revision,
            commit_message=f"Train {cfg.recipe}: {plan.report_split} accuracy {accuracy:.4f}",
        )
        session.say(f"pushed: {url}")
        summary["pushed"] = url


def _init_model(init: str) -> tuple[str | None, str | None, dict[str, Any]]:
    """``(Hub id, revision, card context)`` of the model repo ``--init`` names (a model folder, or its
    ``model.safetensors``): the id its card.json names (``repo_id``, ``revision``), or, for a folder in the
    Hugging Face cache, the repo and commit it was downloaded from; ``(None, None, {})`` for a checkpoint
    file of no model repo."""
    from ferhub.hub import card
    from ferhub.hub._repo import _hub_snapshot

    folder = Path(init)
    if folder.is_file() and folder.name == "model.safetensors":
        folder = folder.parent
    if not (folder / "config.json").is_file():
        return None, None, {}
    try:
        context = card.read_card_context(folder)
    except ValueError:  # a card.json ferhub cannot read: no licence or id from it
        context = {}
    snapshot = _hub_snapshot(folder.resolve())
    if snapshot is not None:
        return snapshot[0], folder.resolve().name, context
    return context.get("repo_id"), context.get("revision"), context


# the init model's licence goes with its weights into the fine-tuned model's card
_LICENCE_KEYS = ("license", "license_name", "license_link", "license_text")


def _start_context(cfg: TrainConfig) -> dict[str, Any]:
    """The card.json keys saying where the weights started: ``--init``'s model (``base_model`` when it has a
    Hub id, and its licence, which its weights carry into these), or the pretrained backbone
    ``model_args.pretrained`` loaded (its registry description; ``base_model`` only where that is a Hub
    repo, never an invented one); ``{}`` for weights trained from scratch."""
    from ferhub.models import get_entry

    if cfg.init is not None:
        repo_id, revision, context = _init_model(cfg.init)
        licence = {k: context[k] for k in _LICENCE_KEYS if context.get(k)}
        if "license" in licence:
            stated = f" Its licence ({licence['license']}) carries over to these weights."
        else:
            stated = " Its card states no licence." if context else ""
        if repo_id is not None:
            at = f"`{repo_id}@{revision}`" if revision else f"`{repo_id}`"
            text = f"Fine-tuned by `ferhub train` from {at} (`--init`).{stated}"
            return {"base_model": repo_id, **licence, "provenance": text}
        what = "a model folder whose card names no Hub id" if context else "a checkpoint with no Hub id"
        text = f"Fine-tuned by `ferhub train` from the `--init` weights ({what}; see the settings above)."
        text += stated
        return {"provenance": text, **licence}
    if cfg.model_args.get("pretrained") is not True:
        return {}
    from ferhub.models.transfer import NASNET_HUB_ID

    described = get_entry(cfg.model).description.replace("``", "`").rstrip(".")  # the registry's words
    text = (
        f"Trained by `ferhub train` from the pretrained weights of `{cfg.model}` with `pretrained=True` "
        f"(the model registry: {described}); the licence and training data of those weights are their "
        "source's."
    )
    # timm's NASNet weights are a Hub repo; torchvision's and facenet-pytorch's have no Hub id
    return {"provenance": text, **({"base_model": NASNET_HUB_ID} if cfg.model == "nasnet_a_large" else {})}


def for_saving(model: nn.Module) -> nn.Module:
    """A CPU copy in the default memory format (safetensors stores contiguous tensors), whose config no longer
    asks for pretrained weights: the trained weights are in the repo, and loading must not fetch others."""
    m = copy.deepcopy(unwrap(model)).to("cpu", memory_format=torch.contiguous_format)
    args = {k: v for k, v in m.config.model_args.items() if k != "pretrained"}
    m.config = dataclasses.replace(m.config, model_args=args)
    return m.eval()
