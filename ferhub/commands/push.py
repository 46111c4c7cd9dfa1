"""``ferhub push FOLDER REPO_ID``: upload a model repo folder to the Hugging Face Hub in one commit."""

from __future__ import annotations

import argparse
import sys

from ferhub.cli import EXIT_ERROR, EXIT_HUB, EXIT_USAGE, debug_traceback
from ferhub.commands import input_path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "folder", type=input_path, help="model repo folder (config.json, model.safetensors, README.md, ...)"
    )
    p.add_argument("repo_id", help="Hub repo id, 'org/name'; created if it does not exist")
    p.add_argument("--private", action="store_true", help="create the repo as private (a new repo only)")
    p.add_argument("--revision", help="branch to commit to; created from main if it does not exist")
    p.add_argument("--message", default="Upload ferhub model", help="commit message")


def run(args: argparse.Namespace) -> int:
    from huggingface_hub.errors import HfHubHTTPError

    from ferhub.hub import EvalResultsError, HubConnectionError, ModelLoadError, push
    from ferhub.hub._remote import HUB_ID, upload_refused

    if not HUB_ID.fullmatch(args.repo_id):  # the argument, not the folder: a usage error, before any work
        print(f"ferhub push: REPO_ID must look like 'org/name', got {args.repo_id!r}", file=sys.stderr)
        return EXIT_USAGE
    try:
        url = push(
            args.folder,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.message,
        )
    except HfHubHTTPError as e:  # before ValueError: a 400 is both
        debug_traceback(args)
        print(f"ferhub push: {upload_refused(e, args.repo_id)}", file=sys.stderr)
        return EXIT_HUB
    except (ModelLoadError, EvalResultsError, ValueError) as e:
        debug_traceback(args)
        print(f"ferhub push: {args.folder} is not ready to push: {e}", file=sys.stderr)
        return EXIT_ERROR
    except HubConnectionError as e:
        debug_traceback(args)
        print(f"ferhub push: {e}", file=sys.stderr)
        return EXIT_HUB
    print(url)
    return 0
