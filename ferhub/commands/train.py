"""``ferhub train`` (and ``train/train.py``): the argument parser and a thin :func:`main` over
:func:`ferhub.training.train`.

    ferhub train --recipe seed002_kaskun --data fer2013.csv --test-split test
    torchrun --nproc_per_node 4 -m ferhub train --recipe ferhub_best --data fer2013.csv --push-to-hub org/name
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferhub.cli import debug_traceback
from ferhub.commands import (
    DEVICE_HELP,
    add_column_arguments,
    device_error,
    input_path,
    label_names_error,
    output_path,
    seed_error,
)

if TYPE_CHECKING:
    from ferhub.training import TrainConfig


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``train/train.py`` and ``ferhub train`` (one definition for both)."""
    parser.add_argument(
        "--recipe",
        default="ferhub_best",
        type=input_path,  # a .py path: ~ expanded, a URL refused (a shipped recipe's name passes as it is)
        help="a shipped recipe (ferhub/recipes/) or a .py path (default ferhub_best)",
    )
    parser.add_argument(
        "--variant", default=None, help="a recipe variant (e.g. seed002_kaskun: fcn, mini_xception)"
    )
    parser.add_argument(
        "--data",
        default=None,
        type=input_path,
        help="class folders, a .zip of them, fer2013.csv or a Hub dataset id (required)",
    )
    parser.add_argument(
        "--split", default=None, help="training split (default: train when the source has splits)"
    )
    parser.add_argument(
        "--val-data", default=None, type=input_path, help="a separate validation source (default: --data)"
    )
    parser.add_argument(
        "--val-split", default=None, help="validation split (default: val if present, else a hold-out)"
    )
    parser.add_argument(
        "--test-split",
        default=None,
        help="the split the results are reported on: a split of --val-data when given, else of --data "
        "(default: that source's own test split when it has one); never the split that trains or chooses the "
        "epoch",
    )
    add_column_arguments(parser)
    parser.add_argument(
        "--label-names", default=None, help="names of numbered classes: a dataset (rafdb, fer2013)"
    )
    parser.add_argument(
        "--precropped",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="images are face crops already: skip detection (default: yes for fer2013.csv)",
    )
    parser.add_argument(
        "--face-cache",
        default=None,
        type=output_path,
        help="face-detection cache folder (default $FERHUB_CACHE/faces, else $XDG_CACHE_HOME/ferhub/faces,"
        " else ~/.cache/ferhub/faces; one that cannot be written keeps the detections in memory for the run)",
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        type=output_path,
        help="run folder (default runs/RECIPE, runs/RECIPE-VARIANT with --variant)",
    )
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's, one per core); on a machine shared with other jobs fewer "
        "can train several times faster (see train/README.md)",
    )
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size over all processes")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--kfold", type=int, default=None, help="stratified k-fold cross-validation (k >= 2)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="run the whole protocol N times (seeds seed..seed+N-1); mean ± std in the card",
    )
    parser.add_argument(
        "--amp",
        choices=("none", "bf16", "fp16"),
        default=None,
        help="mixed precision, on CUDA only (refused on a CPU run, where it would do nothing)",
    )
    parser.add_argument(
        "--init",
        default=None,
        type=input_path,
        help="initial weights: a checkpoint file (.safetensors, a weights-only .pth; e.g. LightCNN's), a "
        "ferhub model folder (a run's OUTPUT_DIR/model) or a run's OUTPUT_DIR/checkpoints/best.safetensors "
        "or last.safetensors",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any recipe setting, e.g. --set augment.hflip=0.5 (repeatable)",
    )
    parser.add_argument("--tiny", action="store_true", help="smoke test: the recipe's tiny model, 2 epochs")
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoints/last.safetensors"
    )
    parser.add_argument("--deterministic", action="store_true", help="deterministic kernels (slower on CUDA)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (the log still prints)")
    parser.add_argument(
        "--model-name", default=None, help="name in the model card (default: the push id or recipe)"
    )
    parser.add_argument(
        "--push-to-hub", default=None, metavar="ORG/NAME", help="upload the model repo (one commit)"
    )
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")
    parser.add_argument("--revision", default=None, help="branch to push the final model to")
    parser.add_argument(
        "--push-checkpoints",
        action="store_true",
        help="push the best model so far to branch --checkpoint-branch during training",
    )
    parser.add_argument("--checkpoint-branch", default="checkpoints")
    parser.add_argument("--print-recipe", action="store_true", help="print the resolved settings and exit")
    parser.add_argument(
        "--list-variants",
        action="store_true",
        help="list the recipe's variants (one per row of its paper's results table) and exit",
    )
    return parser


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, rebuilt from the parsed options (whatever called :func:`main`).

    Options left at their defaults are omitted; ``torchrun`` is named when the run was launched by it.
    """
    parts: list[str] = []
    for action in get_args_parser()._actions:
        # --resume continues a run to the same end as an uninterrupted one: a fresh folder would refuse it
        if not action.option_strings or action.dest in ("help", "resume"):
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default and action.dest != "recipe":  # the recipe is always named
            continue
        flag = action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            parts.append(flag if value else "--no-" + flag[2:])
        elif isinstance(action, argparse._StoreTrueAction):
            parts.append(flag)
        elif isinstance(action, argparse._AppendAction):
            for v in value:
                parts += [flag, str(v)]
        else:
            parts += [flag, str(value)]
    script = _launched_by_train_py()
    if "LOCAL_WORLD_SIZE" in os.environ:  # set by torchrun
        nodes = os.environ.get("GROUP_WORLD_SIZE", "1")
        prefix = ["torchrun", "--nnodes", nodes] if nodes != "1" else ["torchrun"]
        prefix += ["--nproc_per_node", os.environ["LOCAL_WORLD_SIZE"]]
        # torchrun runs a script by its path and a module with -m: an installed ferhub has no train/train.py
        prefix += ["train/train.py"] if script else ["-m", "ferhub", "train"]
    else:
        prefix = ["python", "train/train.py"] if script else ["ferhub", "train"]
    return shlex.join(prefix + parts)


def _launched_by_train_py() -> bool:
    """Whether this process runs the checkout's ``train/train.py`` (``python train/train.py``, ``torchrun
    train/train.py``): the only launch a recorded command names that script for. The ``ferhub`` console
    script, ``python -m ferhub`` (``torchrun -m ferhub``) and any other caller of :func:`ferhub.cli.main`
    are recorded as ``ferhub train``, which an installed package runs."""
    main = sys.modules.get("__main__")
    if getattr(main, "__spec__", None) is not None:  # run with -m (ferhub's, or a test runner's)
        return False
    return Path(sys.argv[0]).name == "train.py"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a ferhub FER model from a recipe", add_help=add_help)
    return add_arguments(parser)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Recipe + variant + command-line overrides (+ --tiny) -> the run's settings."""
    from ferhub.training import TrainConfig, apply_overrides, load_recipe, tiny

    cfg, _ = load_recipe(args.recipe, args.variant)
    shortcuts = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "kfold": args.kfold,
        "seed": args.seed,
        "repeats": args.repeats,
        "amp": args.amp,
        "init": args.init,
    }
    given = {k: v for k, v in shortcuts.items() if v is not None}

    def explicit(cfg: TrainConfig, batch: bool = True) -> TrainConfig:
        """``cfg`` with what the command line sets (the shortcuts, then every --set); ``batch=False`` leaves
        the batch size as it is."""
        shortcuts = {k: v for k, v in given.items() if batch or k != "batch_size"}
        sets = [s for s in args.overrides if batch or s.partition("=")[0].strip() != "batch_size"]
        return apply_overrides(
            TrainConfig.from_dict({**cfg.to_dict(), **shortcuts}, source="command line"), sets
        )

    # with --tiny, the batch size is judged with the tiny model the run trains (a BatchNorm that cannot
    # train on one crop is the model's), not with the recipe's
    cfg = explicit(cfg, batch=not args.tiny)
    if args.tiny:
        # --tiny shrinks the recipe as the command line left it (a --set tiny_model counts), and what the
        # command line says explicitly still wins over the shrinking (--init, --batch-size, --epochs ...)
        cfg = explicit(tiny(cfg))
    return cfg


def variant_lines(recipe: str) -> list[str]:
    """One line per variant of ``recipe``: its name and description; the one equal to the recipe's own
    settings is marked ``[default]``."""
    from ferhub.training import load_recipe

    def settings(variant: str | None) -> dict[str, Any]:
        d = load_recipe(recipe, variant)[0].to_dict()
        return {k: v for k, v in d.items() if k not in ("recipe", "description")}

    base, variants = settings(None), load_recipe(recipe)[1]
    if not variants:
        return [f"{recipe} has no variants"]
    width = max(map(len, variants))
    return [
        f"{name:<{width}}  {v.get('description', '')}" + ("  [default]" if settings(name) == base else "")
        for name, v in variants.items()
    ]


def _check_push_options(args: argparse.Namespace) -> None:
    """The options of a push given without ``--push-to-hub`` would be ignored: a user who meant to push
    would learn only after training that nothing left the machine."""
    from ferhub.training import RecipeError

    given = [
        flag
        for flag, dest in (("--push-checkpoints", "push_checkpoints"), ("--private", "private"),
                           ("--revision", "revision"), ("--checkpoint-branch", "checkpoint_branch"))
        if getattr(args, dest) != get_args_parser().get_default(dest)
    ]  # fmt: skip
    if given and not args.push_to_hub:
        raise RecipeError(
            f"{', '.join(given)} {'only applies' if len(given) == 1 else 'only apply'} to a push: add "
            "--push-to-hub ORG/NAME, or leave it out"
        )


def _output_dir_unwritable(args: argparse.Namespace) -> str | None:
    """The line refusing an ``--output-dir`` that cannot be made or written (a file there, or where one of its
    parent folders must be; no permission), or ``None``: the check ``predict --out-dir`` and ``evaluate
    --out`` make."""
    from ferhub.commands.predict import out_folder_unwritable

    if args.output_dir is None or args.print_recipe:
        return None
    return out_folder_unwritable(
        Path(args.output_dir),
        f"--output-dir {args.output_dir}",
        "train writes its checkpoints, log and model repo into a folder",
    )


def main(args: argparse.Namespace) -> dict[str, Any]:
    """Resolve the recipe and train it (or only print the resolved settings); returns the run's summary."""
    from ferhub.training import RecipeError, RunOptions, train

    if args.list_variants:
        lines = variant_lines(args.recipe)
        print("\n".join(lines))
        return {"variants": lines}
    _check_push_options(args)
    # a typo was ignored on named class folders; the device and seed in the words every command uses
    if error := label_names_error(args.label_names) or device_error(args.device) or seed_error(args.seed):
        raise RecipeError(error)
    if error := _output_dir_unwritable(args):  # before the data opens: a run is not lost at its first save
        raise RecipeError(error)
    cfg = resolve_config(args)
    if args.print_recipe:
        print(json.dumps(cfg.to_dict(), indent=2))
        return {"config": cfg.to_dict()}
    if args.data is None:
        raise RecipeError(
            "--data is required: class folders, a .zip of them, fer2013.csv or a Hub dataset id"
        )
    fields = {f for f in RunOptions.__dataclass_fields__ if f not in ("progress", "command")}
    opts = RunOptions(**{k: getattr(args, k) for k in fields}, progress=not args.no_progress,
                      command=command_line(args))  # fmt: skip
    return train(cfg, opts)


def _checkpoints(args: argparse.Namespace) -> tuple[Path | None, dict[Path, tuple[int, int, int]]]:
    """The run's output folder (``None`` where its settings are refused) and the ``last`` checkpoints in it,
    each with what tells one save from another (inode, size, modification time in ns)."""
    from ferhub.training import RecipeError

    if args.output_dir is not None:
        out = Path(args.output_dir)
    else:  # the run's default folder, the recipe as resolved
        try:
            out = resolve_config(args).default_output_dir()
        except RecipeError:  # the settings were refused: no run started
            return None, {}
    found = {}
    for path in out.glob("**/checkpoints/last.safetensors"):
        with contextlib.suppress(OSError):
            st = path.stat()
            found[path] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out, found


def _resume_hint(args: argparse.Namespace, before: dict[Path, tuple[int, int, int]]) -> str:
    """``"; ..."`` telling how to continue an interrupted run, where it left a checkpoint (else ``""``): one
    it saved (not among ``before``, the folder's checkpoints when it started; an atomic save is a new file),
    or the one a ``--resume`` run continues. A fresh run stopped before it forgot an earlier run's checkpoints
    (while its data opened) has none of its own."""
    out, now = _checkpoints(args)
    if out is None or not now or not (args.resume or any(before.get(p) != v for p, v in now.items())):
        return ""
    return f"; continue it with the same command and --resume (checkpoints in {out})"


def stdout_results(args: argparse.Namespace) -> str | None:
    """How to keep what ``--list-variants`` and ``--print-recipe`` print to stdout alone (refused closed:
    :func:`ferhub.cli._stdout_refused`); a run writes its model repo."""
    return "send stdout to a file" if args.list_variants or args.print_recipe else None


def run(args: argparse.Namespace) -> int:
    """``ferhub train`` entry: an option to change (recipe, ``--set``, ``--epochs``, ``--resume``) is one line
    and exit code 2; data that cannot be used is one line and exit 1 (3 when the Hub holding it cannot be
    reached), as in every other command."""
    from ferhub.cli import describe
    from ferhub.errors import FerhubError
    from ferhub.training import CheckpointError, RecipeError

    _, before = _checkpoints(args)
    try:
        main(args)
    except KeyboardInterrupt:  # ferhub.cli's one line and exit code, and how to go on
        from ferhub.cli import EXIT_INTERRUPTED

        print(f"ferhub train: interrupted{_resume_hint(args, before)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (RecipeError, CheckpointError) as e:  # the message says which option to change
        debug_traceback(args)
        print(f"ferhub train: {e}", file=sys.stderr)
        return 2
    except FerhubError as e:  # data, models, the Hub: mapped here too, as train/train.py has no cli.main
        debug_traceback(args)
        code, why = describe(e)
        print(f"ferhub train: {why}", file=sys.stderr)
        return code
    return 0
