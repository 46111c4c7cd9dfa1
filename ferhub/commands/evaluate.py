"""``ferhub evaluate --model ID|PATH --data SOURCE``: metrics into each model repo's eval_results.json and
card."""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from ferhub import strict_json
from ferhub.cli import debug_traceback
from ferhub.commands import (
    DEVICE_HELP,
    add_data_arguments,
    add_scoring_arguments,
    device_arg,
    input_path,
    output_path,
)
from ferhub.writers import encodable, printable


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ferhub.metrics import BOOTSTRAP_RESAMPLES  # the count training's intervals use too

    p.add_argument(
        "--model",
        action="append",
        required=True,
        type=input_path,
        metavar="ID|PATH",
        help="bundled name, Hub id (org/name[@revision]) or local model folder; repeat for several",
    )
    p.add_argument(
        "--data",
        required=True,
        type=input_path,
        metavar="SOURCE",
        help="folder of class folders, .zip of them, fer2013.csv, saved dataset or Hugging Face dataset id",
    )
    add_data_arguments(p)
    add_scoring_arguments(p)
    p.add_argument(
        "--out",
        type=output_path,
        metavar="DIR",
        default="eval_out",
        help="folder for report.html, per-image predictions and the updated repo copies of bundled or Hub "
        "models (a model given as a local folder is updated in place, and results_folders.json records where,"
        " for `ferhub report --results DIR`; a copy of other weights left by an "
        "earlier evaluation is moved aside to DIR/<model>.replaced-N; default eval_out)",
    )
    p.add_argument("--no-report", action="store_true", help="do not write DIR/report.html")
    p.add_argument("--push", action="store_true", help="upload eval_results.json + README.md in one commit")
    p.add_argument("--repo-id", default=None, help="Hub repo to push a local model's results to (org/name)")
    p.add_argument(
        "--revision",
        default=None,
        help="branch to push a local or bundled model's results to (default: the branch its card.json names "
        "when they go to the repo it names, else main); a Hub model's results go to the branch evaluated "
        "(org/name@branch)",
    )
    p.add_argument("--device", type=device_arg, default=None, help=DEVICE_HELP)
    p.add_argument(
        "--bootstrap",
        type=int,
        default=BOOTSTRAP_RESAMPLES,
        metavar="N",
        help=f"bootstrap resamples for the 95%% CIs (default {BOOTSTRAP_RESAMPLES}, as in training)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--json", action="store_true", help="print the new eval_results entries as JSON")


def metrics_table(runs: list[Any]) -> str:
    """A plain-text table of the headline metrics, one row per model."""
    header = [
        "model",
        "images",
        "accuracy [95% CI]",
        "mean recall [95% CI]",
        "macro-F1",
        "top-2",
        "NLL",
        "ECE",
    ]
    rows = []
    for r in runs:
        m = r.entry["metrics"]
        acc, rec = m["accuracy_ci95"], m["mean_class_recall_ci95"]
        rows.append(
            [
                printable(r.name),  # a model folder's newline or escape codes would break the table
                str(r.entry["num_images"]),
                f"{m['accuracy']:.4f} [{acc[0]:.3f}, {acc[1]:.3f}]",
                f"{m['mean_class_recall']:.4f} [{rec[0]:.3f}, {rec[1]:.3f}]",
                f"{m['macro_f1']:.4f}",
                f"{m['top2_accuracy']:.4f}",
                f"{m['nll']:.4f}",
                f"{m['ece']:.4f}",
            ]
        )
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(
        [fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]
    )


def _hub_id(spec: Any) -> str | None:
    """The Hub repo a model given as ``org/name[@revision]`` (not a local folder) belongs to."""
    from ferhub.hub._remote import HUB_ID

    if isinstance(spec, str) and not Path(spec).exists() and HUB_ID.fullmatch(spec.partition("@")[0]):
        return spec.partition("@")[0]
    return None


def _card_published(folder: Path) -> tuple[str | None, str | None]:
    """The ``repo_id`` and ``revision`` (the branch, when not the default one) a model repo folder's
    ``card.json`` names, each ``None`` where it names none."""
    card = folder / "card.json"
    if not card.is_file():
        return None, None
    try:
        ctx = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # an unreadable card names no repo; the push asks for --repo-id
        return None, None
    if not isinstance(ctx, dict):
        return None, None
    repo_id, revision = ctx.get("repo_id"), ctx.get("revision")
    return (str(repo_id) if repo_id else None), (str(revision) if repo_id and revision else None)


def _card_repo_id(folder: Path) -> str | None:
    """The ``repo_id`` a model repo folder's ``card.json`` names, if any."""
    return _card_published(folder)[0]


def _push_target(run: Any, folder: Path, repo_id: str | None) -> str | None:
    """Where ``--push`` sends a run's results: --repo-id, the model's Hub id, or its card's repo_id."""
    return repo_id or _hub_id(run.spec) or _card_repo_id(folder)


_COMMIT = re.compile(r"[0-9a-fA-F]{40}")  # a full commit id (huggingface_hub's pattern takes 5 digits on)


def _own_hub_repo(spec: Any, repo_id: str | None) -> str | None:
    """The Hub repo of a model given as a Hub id (not a bundled name) whose results ``--push`` sends back to
    that very repo; ``None`` otherwise (their branch is then ``--revision``'s)."""
    from ferhub.hub._layout import bundled_folder

    hub_id = _hub_id(spec)
    if hub_id is None or (repo_id is not None and repo_id != hub_id):
        return None
    if "@" not in spec and bundled_folder(hub_id) is not None:  # bundled: loaded from the package
        return None
    return hub_id


def _push_branch(
    spec: Any, repo_id: str | None, revision: str | None, folder: Path | None = None
) -> str | None:
    """The branch a run's results go to: for a Hub model pushed to its own repo, the revision evaluated
    (after '@'; none: the default branch), so a card and results never land beside other weights; else
    ``--revision``, and without it, for a model whose card.json names the repo they go to (no --repo-id, or
    that repo's), the branch the card names (a model trained with ``--push-to-hub ORG/NAME --revision REV``
    is on REV); else the default branch."""
    if _own_hub_repo(spec, repo_id) is None:
        if revision is None and folder is not None and _hub_id(spec) is None:
            card_repo, card_branch = _card_published(folder)
            return card_branch if repo_id in (None, card_repo) else None
        return revision
    return spec.partition("@")[2] or None


def _revision_refused(args: argparse.Namespace) -> str | None:
    """Why ``--push`` cannot send a Hub model's results to the branch they belong on, said before any work
    (``None`` when it can, or when only the push itself can tell): ``--revision`` naming another branch than
    the one evaluated, or a commit after '@'."""
    if not args.push:
        return None
    for spec in args.model:
        hub_id = _own_hub_repo(spec, args.repo_id)
        if hub_id is None:
            continue
        evaluated = spec.partition("@")[2]
        if args.revision is not None and args.revision != (evaluated or "main"):
            return (
                f"--revision {args.revision} would put the results of {spec} on another branch than the "
                f"weights they were measured on; evaluate {hub_id}@{args.revision} to push to that branch"
            )
        if _COMMIT.fullmatch(evaluated):
            return (
                f"{spec} names a commit, and results can only be pushed to a branch (the branch that holds "
                f"these weights); evaluate {hub_id}@BRANCH with --push, or this commit without --push"
            )
    return None


def _not_a_branch(args: argparse.Namespace) -> str | None:
    """Why a Hub model's ``@revision`` cannot take ``--push``'s results (a tag, no branch of the repo), asked
    of the Hub before any work; ``None`` when it is a branch, or when the Hub cannot say now (the evaluation
    or the push will report that; a Hub that does not answer is said on stderr)."""
    from ferhub.errors import HubConnectionError
    from ferhub.hub._push import branch_head
    from ferhub.hub._remote import online_api

    for spec in args.model if args.push else []:
        hub_id = _own_hub_repo(spec, args.repo_id)
        revision = spec.partition("@")[2] if hub_id else ""
        if not revision:
            continue
        try:
            api = online_api("push")
        except HubConnectionError:  # unreachable: the evaluation or the push says so
            continue
        try:
            branch_head(api, hub_id, revision)
        except ValueError as e:
            return str(e)
        except HubConnectionError as e:  # the Hub accepted the connection and did not answer in time
            _not_checked(spec, e)
        except Exception:  # no such repo, no access, the Hub failing: the evaluation or the push says so
            continue
    return None


def _not_checked(spec: str, e: Exception) -> None:
    """Say on stderr that the check before evaluating ``spec`` got no answer from the Hub (``e``): the
    evaluation goes on, and its push checks again."""
    why = str(e).split(". Fix:")[0]  # its fix (try again later) is the push's to give, if it fails too
    print(
        printable(
            f"ferhub evaluate: note: where --push would put the results of {spec} was not checked before "
            f"evaluating: {why}; evaluating, and the push checks it again"
        ),
        file=sys.stderr,
    )


def _other_model_on_hub(args: argparse.Namespace) -> str | None:
    """Why ``--push`` would put a local or bundled model's results beside another model on the Hub (the
    branch holds other weights or config, none, or the repo or branch does not exist), asked of the Hub
    before any work; ``None`` when it holds this model, or when the Hub cannot say now (the push checks
    again; a Hub that does not answer in time is said on stderr). A Hub model pushed to its own repo needs no
    check: its push goes on the commit evaluated."""
    from ferhub.errors import HubConnectionError
    from ferhub.evaluation import results_copy
    from ferhub.hub import ModelLoadError
    from ferhub.hub._push import _zoo_name, hub_model_problem, other_model_fix
    from ferhub.hub._remote import online_api
    from ferhub.hub._repo import local_folder

    for spec in args.model if args.push else []:
        if _own_hub_repo(spec, args.repo_id) is not None:
            continue
        try:
            folder = local_folder(spec)
        except ModelLoadError:  # the evaluation says what is wrong with it
            continue
        repo_id = args.repo_id or (_card_repo_id(folder) if folder is not None else None)
        if folder is None or repo_id is None:  # a Hub model pushed elsewhere: the push checks its snapshot
            continue
        branch = _push_branch(spec, args.repo_id, args.revision, folder)
        try:
            api = online_api("push")
        except HubConnectionError:  # unreachable: the push says so
            continue
        try:
            check = hub_model_problem(api, repo_id, branch, folder)
        except HubConnectionError as e:  # the Hub accepted the connection and did not answer in time
            _not_checked(spec, e)
            continue
        except Exception:  # the Hub failing: the push says so
            continue
        if check.problem is None:
            continue
        refused = (
            f"--push: {check.problem}, so the results of {spec} would sit beside another model (or none); "
            "nothing was evaluated. Fix: "
        )
        if args.repo_id is None and _zoo_name(repo_id):  # a bundled model's card names ferhub's own repo
            return refused + "give --repo-id ORG/NAME, a repo of yours, to push the results with the model"
        # evaluated in place, a folder holds the results afterwards; else its copy under --out does
        pushed = Path(spec) if Path(spec).is_dir() else results_copy(args.out, spec)
        then = other_model_fix(pushed, repo_id, branch, other_model=check.other_model)
        return refused + (
            f"give the --repo-id of the repo that holds this model; or evaluate without --push, then {then}"
        )
    return None


def _unknown_push_targets(args: argparse.Namespace) -> list[str]:
    """The ``--model`` folders whose Hub repo ``--push`` cannot tell without ``--repo-id`` (none with it).

    Checked before evaluating, so that the user does not wait for an evaluation whose push cannot start.
    Bundled names and Hub ids always have a repo; a folder has one when its card.json names it. A model that
    cannot be found is left to the evaluation to report."""
    if not args.push or args.repo_id:
        return []
    from ferhub.hub import ModelLoadError
    from ferhub.hub._repo import local_folder

    unknown = []
    for spec in args.model:
        if _hub_id(spec):
            continue
        try:
            folder = local_folder(spec)
        except ModelLoadError:
            continue
        if folder is not None and not _card_repo_id(folder):
            unknown.append(spec)
    return unknown


def run(args: argparse.Namespace) -> int:
    from ferhub import evaluation
    from ferhub.cli import describe
    from ferhub.commands import device_error, label_names_error, seed_error
    from ferhub.commands.predict import out_folder_unwritable
    from ferhub.data import DataSourceError
    from ferhub.hub import EvalResultsError, ModelLoadError

    error = device_error(args.device) or label_names_error(args.label_names) or seed_error(args.seed)
    if error is None and args.bootstrap < 1:
        error = f"--bootstrap must be 1 or more resamples (the default is 1000), got {args.bootstrap}"
    if error:
        print(f"ferhub evaluate: {error}", file=sys.stderr)
        return 2
    # before any work, as predict checks --out-dir: an evaluation of a large set is not lost at its end
    # (the default eval_out too, made in the current folder)
    error = out_folder_unwritable(
        Path(args.out), f"--out {args.out}", "evaluate writes its predictions and report into a folder"
    )
    if error:
        print(f"ferhub evaluate: {error}", file=sys.stderr)
        return 2
    refused = _refuse_push(args)
    if refused:
        return refused
    out = Path(args.out)
    try:
        source, runs, folders, not_finite, unwritten = _evaluate_and_write(args, out)
    except (DataSourceError, ModelLoadError, EvalResultsError, evaluation.EvaluationError, ValueError) as e:
        debug_traceback(args)
        code, why = describe(e)  # 1, or 3 when the Hub holding the model or data cannot be reached
        print(f"ferhub evaluate: {why}", file=sys.stderr)
        return code
    if folders:  # `ferhub report --results OUT` then finds them all, a local model folder's too
        _record_results_folders(out, folders)
    if runs:
        _print_results(args, runs)
        if not args.no_report:
            _write_report(source, runs, out)
    nothing = "; nothing was pushed" if args.push else ""
    for line in unwritten:  # after the table and the report: the last lines on the terminal
        print(f"ferhub evaluate: {line}{nothing}", file=sys.stderr)
    if not_finite is not None:  # the other models' results are written and shown; nothing is pushed
        print(f"ferhub evaluate: {not_finite}{nothing}", file=sys.stderr)
        return 1
    if unwritten:
        return 1
    if args.push:
        return _push(args, runs, folders)
    return 0


def _refuse_push(args: argparse.Namespace) -> int:
    """The exit code for a ``--push`` that cannot work (2: --repo-id with several models, or a model folder
    whose repo is unknown; 3: offline), after saying why on stderr; 0 when nothing is refused."""
    if args.push and args.repo_id and len(args.model) > 1:
        print(
            "ferhub evaluate: --repo-id applies to one model; push several models by their Hub ids",
            file=sys.stderr,
        )
        return 2
    unknown = _unknown_push_targets(args)
    if unknown:
        print(
            f"ferhub evaluate: --push cannot tell which Hub repo {unknown[0]} belongs to (its card.json "
            "names none); pass --repo-id org/name",
            file=sys.stderr,
        )
        return 2
    refused = _revision_refused(args)
    if refused:
        print(f"ferhub evaluate: {refused}", file=sys.stderr)
        return 2
    if args.push and _offline():
        print(
            "ferhub evaluate: --push needs the Hugging Face Hub but offline mode is on (HF_HUB_OFFLINE=1); "
            "unset HF_HUB_OFFLINE, or evaluate without --push and push the results later",
            file=sys.stderr,
        )
        return 3
    refused = _not_a_branch(args) or _other_model_on_hub(args)
    if refused:
        print(f"ferhub evaluate: {refused}", file=sys.stderr)
        return 2
    return 0


def _command() -> str:
    """This evaluation as a command to paste into a shell (for the card and ``eval_results.json``): the
    arguments after the subcommand (global options such as ``--debug`` before it left out), quoted."""
    argv = sys.argv[1:]
    # ferhub [--debug] evaluate ARGS; eval/evaluate.py ARGS has no subcommand (an ARG may be "evaluate")
    if Path(sys.argv[0]).name != "evaluate.py" and "evaluate" in argv:
        argv = argv[argv.index("evaluate") + 1 :]
    # recorded in eval_results.json and the card, which must encode to UTF-8: a path's bytes that are not
    # UTF-8 (lone surrogates) as \xNN escapes, as the data's name is
    return encodable(shlex.join(["ferhub", "evaluate", *argv]))


class _Progress:
    """Progress on stderr (a file name's newline or escape codes shown as escapes: they would break the line,
    or colour the terminal). On a terminal one line, overwritten until done; elsewhere (a log file, a Slurm
    job's output, a pipe), where ``ferhub train`` leaves its bar out, a line of its own at each tenth of the
    images and at the end: every ``\\r`` update there piled onto one line (110 of them for FER2013)."""

    def __init__(self) -> None:
        self.terminal = sys.stderr.isatty()
        self.tenths = 0  # the tenths of the images said so far (not on a terminal)

    def __call__(self, done: int, total: int, message: str) -> None:
        text = printable(message)
        if self.terminal:
            print(f"\r{text}", end="" if done < total else "\n", file=sys.stderr, flush=True)
            return
        tenths = 10 * done // total if total > 0 else 10
        if tenths > self.tenths or done >= total:
            self.tenths = tenths
            print(text, file=sys.stderr, flush=True)


def _evaluate_and_write(
    args: argparse.Namespace, out: Path
) -> tuple[Any, list[Any], list[Path], Exception | None, list[str]]:
    """Evaluate every model on the data and write each one's eval_results.json and predictions under ``out``.

    Returns the data source, the runs, the results folder of each run written, the error naming the models
    that gave NaN or infinite probabilities (``None`` when none did), and a line per model whose files could
    not be written (a full disk, a folder it may not write): the others' results are written all the same."""
    from ferhub import eval_results, evaluation, fileio
    from ferhub.cli import describe
    from ferhub.data.sources import column_options
    from ferhub.errors import EvalResultsError

    source = evaluation.open_data(
        args.data,
        args.split,
        label_names=args.label_names,
        precropped=args.precropped,
        **column_options(args),
    )
    not_finite = None
    try:
        runs = evaluation.evaluate(
            args.model,
            source,
            tta=args.tta,
            no_face=args.no_face,
            precropped=args.precropped,
            device=args.device,
            n_resamples=args.bootstrap,
            seed=args.seed,
            dataset_config=args.data_config,
            command=_command(),
            progress=_Progress(),
        )
    except evaluation.NotFiniteError as e:
        runs, not_finite = e.runs, e
    folders: list[Path] = []
    unwritten: list[str] = []
    for r in runs:
        try:
            folder = evaluation.results_folder(r, out)
            path = eval_results.write(folder, {r.key: r.entry})
            # the model's and the data's names, each cut to its share of the 255 bytes a file name may have
            name = fileio.fit_parts([evaluation.slug(r.name), evaluation.slug(r.key)], ".predictions.json")
            r.predictions.save(out / name)
        except (OSError, EvalResultsError) as e:  # this model's files only: the others' are still written
            unwritten.append(printable(f"{r.name}: writing its results failed: {describe(e)[1]}"))
            continue
        folders.append(folder)
        print(printable(f"{r.name}: {r.key} -> {path}"), file=sys.stderr)
    return source, runs, folders, not_finite, unwritten


# in --out: where each model evaluated into it has its results (a model given as a local folder keeps them in
# that folder, not under --out), for `ferhub report --results OUT`
RESULTS_FOLDERS_NAME = "results_folders.json"


def read_results_folders(out: Path) -> list[str] | None:
    """The results folders ``out``'s :data:`RESULTS_FOLDERS_NAME` records (relative to ``out``, or absolute),
    in the order evaluated; ``None`` without one (an older ferhub's ``--out``). ``ValueError`` for a file of
    that name that is not one evaluate wrote."""
    path = out / RESULTS_FOLDERS_NAME
    if not path.is_file():  # a FIFO of that name would block the read
        return None
    refused = (
        f"{path}: not the list of results folders `ferhub evaluate --out` writes; remove it, and give the"
        " folders of the models evaluated to --results"
    )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{refused} ({e})") from e
    folders = data.get("results_folders") if isinstance(data, dict) else None
    if not isinstance(folders, list) or not all(isinstance(f, str) and f for f in folders):
        raise ValueError(refused)
    return folders


def _record_results_folders(out: Path, folders: list[Path]) -> None:
    """Add ``folders`` (where the models just evaluated into ``out`` have their results) to ``out``'s
    :data:`RESULTS_FOLDERS_NAME`, after those of earlier evaluations into it: one under ``out`` relative to it
    (it moves with it), another absolute. A failure is said on stderr; the results themselves are written."""
    from ferhub import eval_results, fileio

    base = out.resolve()
    new = [str(f.relative_to(base)) if f.is_relative_to(base) else str(f) for f in map(Path.resolve, folders)]
    try:
        with eval_results.locked(out):  # two evaluations into one --out at once: both add theirs
            try:
                earlier = read_results_folders(out) or []
            except ValueError:  # not evaluate's file: this evaluation's folders replace it
                earlier = []
            recorded = list(dict.fromkeys([*earlier, *new]))
            text = json.dumps({"results_folders": recorded}, indent=2)  # ASCII: any path's bytes round-trip
            fileio.atomic_write_text(out / RESULTS_FOLDERS_NAME, text + "\n")
    except OSError as e:
        given = " ".join(shlex.quote(str(f)) for f in folders)
        print(
            printable(
                f"ferhub evaluate: note: {out / RESULTS_FOLDERS_NAME} not written ({e}); give `ferhub report"
                f" --results` the results folders: {given}"
            ),
            file=sys.stderr,
        )


def _print_results(args: argparse.Namespace, runs: list[Any]) -> None:
    """The notes worth a warning on stderr, the metrics table on stdout, and with ``--json`` the entries.

    With ``--json`` stdout holds the JSON alone (for ``| jq`` and ``json.load``): the table goes to stderr.
    """
    for r in runs:
        for note in r.entry["notes"]:
            if "cannot predict" in note or "no face" in note or note.startswith(("unreadable", "unlabelled")):
                print(printable(f"{r.name}: {note}"), file=sys.stderr)
        if r.entry.get("not_held_out"):  # measured on images that trained or chose the model
            # a local folder or file is told by its name alone: another one of that name is other images
            named = (
                ". If these are other images than the ones that trained it, give their folder or file a "
                "name of its own and evaluate again"
                if Path(args.data).exists()
                else ""
            )
            print(
                printable(
                    f"ferhub evaluate: warning: {r.name}: {r.key} is no held-out result: "
                    f"{r.entry['not_held_out']}, as its training records data of this name; it is recorded "
                    f"as such, and its card leaves it out of the model-index{named}"
                ),
                file=sys.stderr,
            )
    print(metrics_table(runs), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(strict_json.dumps({r.name: {r.key: r.entry} for r in runs}, indent=2))


def _write_report(source: Any, runs: list[Any], out: Path) -> None:
    """``out/report.html``: one section with every model's metrics, figures and misclassified examples."""
    from ferhub.report import runs_section, write_report

    report = write_report(out / "report.html", [runs_section(source, runs)])
    print(printable(f"report: {report}"), file=sys.stderr)


def _offline() -> bool:
    from huggingface_hub import constants

    return constants.is_offline_mode()


def _push(args: argparse.Namespace, runs: list[Any], folders: list[Path]) -> int:
    """Push each model's results; a failure is one line naming where the results are (exit 3 for the Hub).

    A Hub model's results go to the branch evaluated, on top of the evaluated commit only (see
    :func:`ferhub.evaluation.push_results`); a local or bundled model's to ``--revision`` (else, going to the
    repo its card.json names, the branch the card names), its card naming the repo, and only where that branch
    holds the same config and weights (exit 2 when it holds others: the repo named is the user's choice to
    change)."""
    from huggingface_hub.errors import HfHubHTTPError

    from ferhub import evaluation
    from ferhub.cli import EXIT_HUB, EXIT_USAGE, describe
    from ferhub.hub._push import OtherModelOnHub
    from ferhub.hub._remote import upload_refused

    code = 0
    for r, folder in zip(runs, folders):
        repo_id = _push_target(r, folder, args.repo_id)
        if repo_id is None:  # a card.json changed since the check before evaluating
            print(
                f"ferhub evaluate: {r.name}: results written to {folder} but not pushed: its card.json "
                "names no Hub repo; push them with --repo-id org/name",
                file=sys.stderr,
            )
            code = code or 1
            continue
        branch = _push_branch(r.spec, args.repo_id, args.revision, folder)
        # the commit evaluated (its snapshot's, recorded with the results): the push goes on top of it only
        parent = r.entry["model"]["revision"] if _own_hub_repo(r.spec, args.repo_id) else None
        target = f"{repo_id}@{branch}" if branch else repo_id
        try:
            url = evaluation.push_results(
                folder,
                repo_id,
                revision=branch,
                parent_commit=parent,
                commit_message=f"Evaluation results on {r.key}",
            )
        except Exception as e:
            hub_error = isinstance(e, HfHubHTTPError)  # a Hub that failed is no login problem
            failed, why = (EXIT_HUB, upload_refused(e, repo_id)) if hub_error else describe(e)
            if isinstance(e, OtherModelOnHub):  # the repo or branch named holds another model: the user's
                failed = EXIT_USAGE
            print(
                f"ferhub evaluate: {r.name}: results written to {folder} but not pushed to {target}: {why}",
                file=sys.stderr,
            )
            code = code or failed
            continue
        print(f"pushed {r.name} results to {target}: {url}", file=sys.stderr)
    return code
