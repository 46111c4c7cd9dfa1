"""Uploading a model repo folder to the Hub: the whole repo (:func:`push`) or some of its files
(:func:`push_files`, e.g. new evaluation results), each in one commit and each behind the offline probe."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ferhub.config import CONFIG_NAME
from ferhub.errors import ModelLoadError
from ferhub.hub._layout import CARD_NAME, REPO_FILES
from ferhub.hub._remote import HUB_ID, online_api
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

    The folder is verified first (:func:`check_repo`), and a card that lags its results is re-rendered;
    offline or with the Hub unreachable, :class:`ferhub.errors.HubConnectionError` is raised at once. The
    repo is created if needed (``private`` applies to a new repo), the branch ``revision`` too, then exactly
    the repo files go up in one ``upload_folder`` commit; repo files on the Hub that the folder no longer has
    (an old ``eval_results.json``) are deleted in it.
    """
    _check_repo_id(repo_id)
    folder = Path(folder)
    files = check_repo(folder)
    api = online_api("push", token)
    _refresh_card(folder)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    if revision is not None:
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        repo_type="model",
        folder_path=str(folder),
        revision=revision,
        commit_message=commit_message,
        allow_patterns=files,
        # None when nothing is stale: huggingface_hub then skips listing the remote files
        delete_patterns=[name for name in REPO_FILES if name not in files] or None,
    )
    return str(info.commit_url)


def push_files(
    folder: str | os.PathLike,
    repo_id: str,
    files: Sequence[str],
    *,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str,
) -> str:
    """Upload some files of a repo folder to an existing Hub repo in one commit; returns the commit URL.

    Offline or with the Hub unreachable, :class:`ferhub.errors.HubConnectionError` is raised at once. When
    the card is among the files and lags the folder's results, it is re-rendered first.
    """
    import huggingface_hub

    _check_repo_id(repo_id)
    folder = Path(folder)
    for name in files:
        if not (folder / name).is_file():
            raise ModelLoadError(f"{folder / name} is missing; nothing was uploaded")
    api = online_api("push", token)
    if CARD_NAME in files:
        _refresh_card(folder)
    operations = [
        huggingface_hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name))
        for name in files
    ]
    info = api.create_commit(
        repo_id=repo_id,
        operations=operations,
        commit_message=commit_message,
        repo_type="model",
        revision=revision,
    )
    return str(info.commit_url)
