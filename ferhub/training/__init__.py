"""Training: a recipe and labelled data -> a trained ferhub model repo (config.json, model.safetensors, card,
eval_results.json), optionally pushed to the Hub.

One module per job (torchvision's reference-script shape, with the CLI in :mod:`ferhub.commands.train`):

- :mod:`~ferhub.training.settings` — :class:`TrainConfig`, every setting of a run;
- :mod:`~ferhub.training.recipes` — the shipped recipes (:mod:`ferhub.recipes`), variants, ``--set``,
  ``--tiny``;
- :mod:`~ferhub.training.optim` — optimizer, learning-rate schedule, EMA;
- :mod:`~ferhub.training.loop` — :func:`train_one_epoch` and :func:`evaluate` on in-memory crops;
- :mod:`~ferhub.training.checkpoint` — safetensors checkpoints, written atomically, and ``--resume``;
- :mod:`~ferhub.training.fit` — :func:`fit`: one model, its epoch chosen on validation;
- :mod:`~ferhub.training.run` — :func:`train`: data, protocol (hold-out, k-fold), results, card, push;
- :mod:`~ferhub.training.results` — the run's ``eval_results`` entries and the card's recipe section;
- :mod:`~ferhub.training.distributed` — ``torchrun`` (DDP): every rank draws the same global batch.
"""

from ferhub.training.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from ferhub.training.distributed import Dist
from ferhub.training.fit import FitResult, build_model, fit
from ferhub.training.loop import epoch_batches, evaluate, score, train_one_epoch
from ferhub.training.optim import EMA, LRSchedule, build_optimizer
from ferhub.training.recipes import apply_overrides, list_recipes, load_recipe, tiny
from ferhub.training.run import RunOptions, train
from ferhub.training.settings import RecipeError, TrainConfig

__all__ = [
    "EMA",
    "CheckpointError",
    "Dist",
    "FitResult",
    "LRSchedule",
    "RecipeError",
    "RunOptions",
    "TrainConfig",
    "apply_overrides",
    "build_model",
    "build_optimizer",
    "epoch_batches",
    "evaluate",
    "fit",
    "list_recipes",
    "load_recipe",
    "read_checkpoint",
    "save_checkpoint",
    "score",
    "tiny",
    "train",
    "train_one_epoch",
]
