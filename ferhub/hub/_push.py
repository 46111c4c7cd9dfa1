"""Uploading a model repo folder to the Hub: the whole repo (:func:`push`) or some of its files
(:func:`push_files`, e.g. new evaluation results), each in one commit and each behind the offline probe."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ferhub.config import CONFIG_NAME
from ferhub.errors import ModelLoadError
from ferhub.fileio import atomic_write_json
from ferhub.hub._layout import CARD_CONTEXT_NAME, CARD_NAME, REPO_FILES
from ferhub.hub._remote import HUB_ID, http_status, online_api
from ferhub.hub._repo import check_repo


def _check_repo_id(repo_id: str) -> None:
    if not HUB_ID.fullmatch(repo_id):
        raise ValueError(f"repo_id must look like 'org/name', got {repo_id!r}")


def _refresh_card(folder: Path) -> None:
    """Re-render a card that lags the folder's results (a writer killed between the two renames)."""
    from ferhub.hub import card

    if (
        (folder / CONFIG_NAME).is_file()
        and (folder / CARD_NAME).is_file()
        and not card.card_is_current(folder)
    ):
        card.render_card(folder)


def push(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = "Upload ferhub model",
) -> str:
    """Upload a repo folder to the Hub in one commit; returns the commit URL.

    The folder is verified first (:func:`check_repo`: the model loads, and the ONNX graphs ``ferhub export``
    wrote match its weights), and a card that lags its results is re-rendered; offline or with the Hub
    unreachable, :class:`ferhub.errors.HubConnectionError` is raised at once. The repo is created if needed
    (``private`` applies to a new repo), the branch ``revision`` too, then exactly the repo files and graphs
    go up in one ``upload_folder`` commit; repo files and graphs on the Hub that the folder no longer has (an
    old ``eval_results.json``, the ``model.onnx`` of earlier weights) are deleted in it. A card that names no
    Hub id (a trained model's says ``path/to/model``) goes up naming ``repo_id`` (see :func:`_staged`).
    """
    from ferhub.export import GRAPH_PATTERNS

    _check_repo_id(repo_id)
    folder = Path(folder)
    files = check_repo(folder)
    api = online_api("push", token)
    _refresh_card(folder)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    with _staged(folder, files, repo_id) as (upload, files):
        info = api.upload_folder(
            repo_id=repo_id,
            repo_type="model",
            folder_path=str(upload),
            revision=revision,
            commit_message=commit_message,
            allow_patterns=files,
            # files being uploaded are not deleted (huggingface_hub leaves them out of the deletions)
            delete_patterns=[name for name in REPO_FILES if name not in files] + list(GRAPH_PATTERNS),
        )
    return str(info.commit_url)


@contextlib.contextmanager
def _staged(folder: Path, files: list[str], repo_id: str) -> Iterator[tuple[Path, list[str]]]:
    """The folder to upload and its files: ``folder`` itself when its card names a Hub id already, else a copy
    (hard links where it can) whose ``card.json`` and card name ``repo_id``, so that the pushed card's usage
    example loads the pushed repo rather than ``path/to/model``; ``card.json`` then goes up with the card, so
    that the Hub's card is what its card.json renders to. ``folder`` itself is not changed."""
    from ferhub.hub import card

    context = card.read_card_context(folder)
    if context.get("repo_id"):
        yield folder, files
        return
    with tempfile.TemporaryDirectory(prefix="ferhub-push-") as tmp:
        staged = Path(tmp)
        # the card renders from the repo files (config, weights, results), uploaded or not
        for name in dict.fromkeys([*files, *REPO_FILES]):
            if name not in (CARD_NAME, CARD_CONTEXT_NAME) and (folder / name).is_file():
                try:
                    os.link(folder / name, staged / name)
                except OSError:  # another file system, or links not allowed: a copy
                    shutil.copy2(folder / name, staged / name)
        context.setdefault("model_name", folder.resolve().name)  # not the staging folder's random name
        atomic_write_json(staged / CARD_CONTEXT_NAME, {**context, "repo_id": repo_id})
        card.render_card(staged)
        yield staged, list(dict.fromkeys([*files, CARD_CONTEXT_NAME]))


def branch_head(api: Any, repo_id: str, revision: str | None) -> str:
    """The commit that branch ``revision`` (default ``main``; a pull request's ``refs/pr/N`` too) of
    ``repo_id`` points at now. ``ValueError`` when ``revision`` is a tag, a commit or no ref of the repo:
    results belong on a branch, next to the weights they were measured on."""
    from huggingface_hub import constants

    branch = revision or constants.DEFAULT_REVISION
    refs = api.list_repo_refs(repo_id, repo_type="model", include_pull_requests=True)
    for ref in [*refs.branches, *(refs.pull_requests or [])]:
        if branch in (ref.name, ref.ref):
            return str(ref.target_commit)
    if any(branch in (ref.name, ref.ref) for ref in refs.tags):
        what = "is a tag"
    elif constants.REGEX_COMMIT_OID.fullmatch(branch):
        what = "is a commit"
    else:
        what = "is no branch of the repo"
    raise ValueError(
        f"revision {branch!r} of {repo_id} {what}; results can only be committed to a branch (the one that "
        f"holds the weights they were measured on). Fix: evaluate {repo_id}@BRANCH and push that"
    )


def push_files(
    folder: str | os.PathLike,
    repo_id: str,
    files: Sequence[str],
    *,
    token: str | None = None,
    revision: str | None = None,
    parent_commit: str | None = None,
    commit_message: str,
) -> str:
    """Upload some files of a repo folder to an existing Hub repo in one commit; returns the commit URL.

    Offline or with the Hub unreachable, :class:`ferhub.errors.HubConnectionError` is raised at once. When
    the card is among the files it goes up as :func:`push` sends it: re-rendered if it lags the folder's
    results, and naming ``repo_id`` (with its ``card.json``) when it names no Hub id.

    ``parent_commit`` (the commit the files were made from, e.g. the evaluated one) makes the commit land only
    on a branch ``revision`` that still points there: a tag, a commit or a branch that moved since is refused
    with :class:`ValueError` saying to evaluate again, so results never sit beside other weights.
    """
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    _check_repo_id(repo_id)
    folder = Path(folder)
    for name in files:
        if not (folder / name).is_file():
            raise ModelLoadError(f"{folder / name} is missing; nothing was uploaded")
    api = online_api("push", token)
    files = list(files)
    moved = (
        f"branch {revision or 'main'!r} of {repo_id} has moved since commit {parent_commit} that these "
        "results were measured on, so they would sit beside other weights; nothing was uploaded. Fix: "
        f"evaluate {repo_id}@{revision or 'main'} again and push those results"
    )
    if parent_commit is not None and branch_head(api, repo_id, revision) != parent_commit:
        raise ValueError(moved)
    if CARD_NAME in files:
        _refresh_card(folder)
    with contextlib.ExitStack() as stack:
        if CARD_NAME in files:
            folder, files = stack.enter_context(_staged(folder, files, repo_id))
        operations = [
            huggingface_hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name))
            for name in files
        ]
        # the parent only when there is one: a commit without one goes on top of whatever the branch holds
        parent = {} if parent_commit is None else {"parent_commit": parent_commit}
        try:
            info = api.create_commit(
                repo_id=repo_id,
                operations=operations,
                commit_message=commit_message,
                repo_type="model",
                revision=revision,
                **parent,
            )
        except HfHubHTTPError as e:
            if parent_commit is not None and http_status(e) == 412:  # moved between the check and the commit
                raise ValueError(moved) from e
            raise
    return str(info.commit_url)
