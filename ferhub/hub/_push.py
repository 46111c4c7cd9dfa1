"""Uploading a model repo folder to the Hub: the whole repo (:func:`push`) or some of its files
(:func:`push_files`, e.g. new evaluation results), each in one commit and each behind the offline probe."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from ferhub.config import CONFIG_NAME
from ferhub.errors import ModelLoadError
from ferhub.fileio import atomic_write_json
from ferhub.hub._layout import CARD_CONTEXT_NAME, CARD_NAME, REPO_FILES
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
    example loads the pushed repo rather than ``path/to/model``. ``folder`` itself is not changed."""
    from ferhub.hub import card

    context = card.read_card_context(folder)
    if context.get("repo_id"):
        yield folder, files
        return
    with tempfile.TemporaryDirectory(prefix="ferhub-push-") as tmp:
        staged = Path(tmp)
        for name in files:
            if name not in (CARD_NAME, CARD_CONTEXT_NAME):
                try:
                    os.link(folder / name, staged / name)
                except OSError:  # another file system, or links not allowed: a copy
                    shutil.copy2(folder / name, staged / name)
        context.setdefault("model_name", folder.resolve().name)  # not the staging folder's random name
        atomic_write_json(staged / CARD_CONTEXT_NAME, {**context, "repo_id": repo_id})
        card.render_card(staged)
        yield staged, list(dict.fromkeys([*files, CARD_CONTEXT_NAME]))


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
