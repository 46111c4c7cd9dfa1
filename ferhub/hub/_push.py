"""Uploading a model repo folder to the Hub: the whole repo (:func:`push`) or some of its files
(:func:`push_files`, e.g. new evaluation results), each in one commit and each behind the offline probe."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ferhub.config import CONFIG_NAME
from ferhub.errors import ModelLoadError
from ferhub.fileio import atomic_write_json
from ferhub.hub._layout import CARD_CONTEXT_NAME, CARD_NAME, REPO_FILES, WEIGHTS_NAME
from ferhub.hub._remote import HUB_ID, answered, http_status, online_api
from ferhub.hub._repo import check_repo, hash_file


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
    old ``eval_results.json``, the ``model.onnx`` of earlier weights) are deleted in it. The card goes up
    naming ``repo_id`` (at ``revision`` when that is not the default branch) whatever repo its card.json named
    (a trained model's says ``path/to/model``, a copy's its first repo), a bundled zoo name excepted (see
    :func:`_staged`).
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
    with _staged(folder, files, repo_id, revision) as (upload, files):
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


def _zoo_name(repo_id: str) -> bool:
    """Whether ``repo_id`` is a bundled or zoo model's own name (``ferhub/<name>``), which loads that model on
    any machine (from the package, or as ``ferhub zoo import`` makes it): a card naming it is right wherever a
    copy of the model goes."""
    from ferhub.hub._layout import BUNDLED_ORG, list_bundled
    from ferhub.zoo import ZOO  # the zoo builds on this package: imported when needed

    return repo_id in list_bundled() or (
        repo_id.startswith(f"{BUNDLED_ORG}/") and any(e.repo_id == repo_id for e in ZOO)
    )


def published_as(repo_id: str, revision: str | None) -> dict[str, str]:
    """The card.json keys that name where a repo is published: ``repo_id``, and ``revision`` for a branch
    other than the default one (the card then loads ``ORG/NAME@REV``, as the README documents)."""
    from huggingface_hub import constants

    if revision is None or revision == constants.DEFAULT_REVISION:
        return {"repo_id": repo_id}
    return {"repo_id": repo_id, "revision": revision}


@contextlib.contextmanager
def _staged(
    folder: Path, files: list[str], repo_id: str, revision: str | None = None
) -> Iterator[tuple[Path, list[str]]]:
    """The folder to upload and its files: ``folder`` itself when its card names ``repo_id`` at ``revision``
    already (or a bundled zoo name, right for any copy), else a copy (hard links where it can) whose
    ``card.json`` and card name ``repo_id`` (``ORG/NAME@REV`` on a branch other than main), so that the pushed
    card's usage example loads the pushed repo and branch, never ``path/to/model`` or the repo a copy came
    from; ``card.json`` then goes up with the card, so that the Hub's card is what its card.json renders to.
    ``folder`` itself is not changed."""
    from ferhub.hub import card

    context = card.read_card_context(folder)
    named = context.get("repo_id")
    target = published_as(repo_id, revision)
    if (named and _zoo_name(named)) or {k: context.get(k) for k in ("repo_id", "revision")} == {
        "revision": None,
        **target,
    }:
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
        if named and context["model_name"] == named.split("/")[-1]:  # a name taken from the old repo's id
            context["model_name"] = repo_id.split("/")[-1]
        context.pop("revision", None)
        atomic_write_json(staged / CARD_CONTEXT_NAME, {**context, **target})
        card.render_card(staged)
        yield staged, list(dict.fromkeys([*files, CARD_CONTEXT_NAME]))


def branch_head(api: Any, repo_id: str, revision: str | None) -> str:
    """The commit that branch ``revision`` (default ``main``; a pull request's ``refs/pr/N`` too) of
    ``repo_id`` points at now. ``ValueError`` when ``revision`` is a tag, a commit or no ref of the repo:
    results belong on a branch, next to the weights they were measured on. A Hub that does not answer within
    :data:`~ferhub.hub._remote.HUB_ANSWER_TIMEOUT_S` raises :class:`~ferhub.errors.HubConnectionError`."""
    from huggingface_hub import constants

    branch = revision or constants.DEFAULT_REVISION
    refs = answered(
        lambda: api.list_repo_refs(repo_id, repo_type="model", include_pull_requests=True),
        f"listing the branches of {repo_id}",
    )
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


class OtherModelOnHub(ValueError):
    """The Hub branch that results (or a card) would go to does not hold the model they were made from: other
    weights or config, none, or no such repo or branch. Nothing was uploaded."""


def _same_file(local: Path, remote: Any) -> bool:
    """Whether ``local`` holds the bytes of ``remote`` (a :class:`huggingface_hub.hf_api.RepoFile`): by the
    LFS sha256 the Hub lists for a large file, else by its git oid (sha1 of ``blob <size>\\0`` + bytes)."""
    stat = local.stat()
    lfs = getattr(remote, "lfs", None)
    size = getattr(lfs if lfs is not None else remote, "size", None)
    if isinstance(size, int) and size != stat.st_size:  # no need to read a weights file of another size
        return False
    kind = "git" if lfs is None else "sha256"
    digest = _file_digest(str(local.resolve()), kind, stat.st_size, stat.st_mtime_ns)
    return digest == (remote.blob_id if lfs is None else lfs.sha256)


@functools.lru_cache(maxsize=16)
def _file_digest(path: str, kind: str, size: int, mtime_ns: int) -> str:
    """The sha256 (``kind`` ``"sha256"``) or git blob id (``"git"``) of the file at ``path``, read in 1 MiB
    chunks: a weights file of gigabytes is never held in memory. Remembered by path, size and modification
    time, so that the check before an evaluation and the one at its push read the file once."""
    import hashlib

    h = hashlib.sha256() if kind == "sha256" else hashlib.sha1(b"blob %d\0" % size)
    hash_file(path, h)
    return h.hexdigest()


class HubModelCheck(NamedTuple):
    """What :func:`hub_model_problem` found on a Hub branch."""

    head: str | None  # the commit checked; None when there is no such repo or branch
    problem: str | None  # what is wrong; None when the branch holds the folder's model
    other_model: bool  # the branch holds a config.json or model.safetensors: a push there replaces them


def hub_model_problem(api: Any, repo_id: str, revision: str | None, folder: Path) -> HubModelCheck:
    """``(head, None, False)`` when branch ``revision`` (default ``main``) of ``repo_id`` holds ``folder``'s
    model (its ``config.json`` and ``model.safetensors``, compared with the Hub's listing at the branch's
    ``head`` commit), else ``(head or None, what is wrong, whether it holds another model)``: no such repo or
    branch, a file missing, or other bytes. A Hub that does not answer (:func:`answered`) and other Hub
    errors (no network, 5xx) are raised."""
    from huggingface_hub.errors import RepositoryNotFoundError
    from huggingface_hub.hf_api import RepoFile

    branch = revision or "main"
    try:
        head = branch_head(api, repo_id, revision)
    except RepositoryNotFoundError:
        return HubModelCheck(
            None,
            f"Hub repo {repo_id} was not found (it does not exist yet, or this account has no access to it)",
            False,
        )
    except ValueError as e:  # a tag, a commit, no such branch: its first clause says which
        return HubModelCheck(None, str(e).split(";")[0], False)
    listing = answered(  # the listing is paged: every page is asked for within the bound
        lambda: list(api.list_repo_tree(repo_id, revision=head, repo_type="model")),
        f"listing the files of {repo_id} at {head[:7]}",
    )
    tree = {f.path: f for f in listing if isinstance(f, RepoFile)}
    where = f"branch {branch!r} of {repo_id} (commit {head[:7]})"
    other = CONFIG_NAME in tree or WEIGHTS_NAME in tree
    for name in (CONFIG_NAME, WEIGHTS_NAME):  # an ensemble has no weights of its own: none on either side
        here, there = (folder / name).is_file(), tree.get(name)
        if not here and there is None:
            continue
        if there is None:
            return HubModelCheck(head, f"{where} has no {name}", other)
        if not here:
            return HubModelCheck(head, f"{where} holds a {name} that {folder} has not", other)
        if not _same_file(folder / name, there):
            return HubModelCheck(head, f"{where} holds another {name} than {folder}", other)
    return HubModelCheck(head, None, False)


def push_command(folder: Path, repo_id: str, revision: str | None) -> str:
    """The ``ferhub push`` command that uploads ``folder`` (the model with its results) to ``repo_id``."""
    import shlex

    branch = ["--revision", revision] if revision else []
    return shlex.join(["ferhub", "push", str(folder), repo_id, *branch])


def other_model_fix(folder: Path, repo_id: str, revision: str | None, *, other_model: bool) -> str:
    """How to publish ``folder`` (a model with its results) when branch ``revision`` of ``repo_id`` does not
    hold its model (:func:`hub_model_problem`): where the branch holds another model, to a new repo or branch,
    saying that a push onto it replaces that model; where it holds none, there (the push makes the repo or
    branch); never into ferhub's own repo of a bundled or zoo model, which is not the user's to write."""
    elsewhere = push_command(folder, "ORG/NAME", None)
    if _zoo_name(repo_id):
        return f"push it to a repo of yours (`{elsewhere}` uploads the model with its results)"
    here = push_command(folder, repo_id, revision)
    if not other_model:
        return f"`{here}` uploads the model with its results"
    return (
        f"upload the model with its results to a new repo or branch (`{elsewhere}`, or "
        f"`{push_command(folder, repo_id, 'NEW-BRANCH')}`); `{here}` would replace the model on branch "
        f"{revision or 'main'!r} of {repo_id} with this one"
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
    """Upload some files of a model repo folder to an existing Hub repo in one commit; returns the commit URL.

    Offline or with the Hub unreachable, :class:`ferhub.errors.HubConnectionError` is raised at once. When
    the card is among the files it goes up as :func:`push` sends it: re-rendered if it lags the folder's
    results, and naming ``repo_id`` at ``revision`` (with its ``card.json``).

    The files go only beside the model they were made from, so results never sit beside other weights:
    ``parent_commit`` (the commit the files were made from, e.g. the evaluated one) makes the commit land only
    on a branch ``revision`` that still points there: a tag, a commit or a branch that moved since is refused
    with :class:`ValueError` saying to evaluate again. Without it, the branch must hold the folder's own
    ``config.json`` and ``model.safetensors`` (by the Hub's listing: git oid or LFS sha256), and the commit
    goes on top of the commit that was checked; else :class:`OtherModelOnHub` says what differs and how to
    publish the model with its results (:func:`other_model_fix`). These checks are bounded
    (:func:`~ferhub.hub._remote.answered`): a Hub that does not answer raises
    :class:`~ferhub.errors.HubConnectionError`, nothing uploaded.
    """
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    _check_repo_id(repo_id)
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise ModelLoadError(
            f"{folder} is not a ferhub model repo (no {CONFIG_NAME}), and its files go up only beside the "
            "model they were made from; nothing was uploaded"
        )
    for name in files:
        if not (folder / name).is_file():
            raise ModelLoadError(f"{folder / name} is missing; nothing was uploaded")
    api = online_api("push", token)
    files = list(files)
    branch = revision or "main"
    moved = (
        f"branch {branch!r} of {repo_id} has moved since commit {parent_commit} that these "
        "results were measured on, so they would sit beside other weights; nothing was uploaded. Fix: "
        f"evaluate {repo_id}@{branch} again and push those results"
    )
    if parent_commit is not None and branch_head(api, repo_id, revision) != parent_commit:
        raise ValueError(moved)
    parent = parent_commit
    if parent is None:
        parent, problem, other_model = hub_model_problem(api, repo_id, revision, folder)
        if problem is not None:
            fix = other_model_fix(folder, repo_id, revision, other_model=other_model)
            raise OtherModelOnHub(
                f"{problem}, so {', '.join(files)} of {folder} would sit beside another model (or none); "
                f"nothing was uploaded. Fix: {fix}"
            )
        moved = (
            f"branch {branch!r} of {repo_id} moved on from commit {parent}, whose model was checked, before "
            "the commit; nothing was uploaded. Fix: push again (the model on the branch is checked again)"
        )
    if CARD_NAME in files:
        _refresh_card(folder)
    with contextlib.ExitStack() as stack:
        if CARD_NAME in files:
            folder, files = stack.enter_context(_staged(folder, files, repo_id, revision))
        operations = [
            huggingface_hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name))
            for name in files
        ]
        try:
            info = api.create_commit(
                repo_id=repo_id,
                operations=operations,
                commit_message=commit_message,
                repo_type="model",
                revision=revision,
                parent_commit=parent,  # the commit whose model these files are of: never on top of another
            )
        except HfHubHTTPError as e:
            if http_status(e) == 412:  # moved between the check and the commit
                raise ValueError(moved) from e
            raise
    return str(info.commit_url)
