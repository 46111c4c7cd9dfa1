"""A Hub repo's branches and file listing, as ``HfApi`` reports them, for tests of pushes that check what
the Hub holds (``evaluate --push`` of a local folder goes only beside the same weights): :class:`HubListing`
replaces ``HfApi.list_repo_refs`` and ``HfApi.list_repo_tree`` (what
:func:`ferhub.hub._push.hub_model_problem` asks), and answers from the files given to
:meth:`HubListing.holds`."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

COMMIT = "c" * 40


class HubListing:
    """The Hub's side of the model check: ``repos[repo_id] = {"branches": {name: commit}, "files": {path:
    bytes}}``; a repo not in ``repos`` is not found (404), as the Hub answers. ``lfs`` lists large files as
    the Hub does (with their sha256), else by git oid only. ``asked`` records ``(method, repo_id, revision)``.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, lfs: bool = True) -> None:
        import huggingface_hub
        from huggingface_hub.hf_api import GitRefInfo, GitRefs, RepoFile

        self.repos: dict[str, dict[str, Any]] = {}
        self.asked: list[tuple[str, str, str | None]] = []
        listing = self

        def not_found(repo_id: str) -> Exception:
            """The error huggingface_hub raises for the Hub's answer to a repo that is not there."""
            import httpx2
            from huggingface_hub.utils import hf_raise_for_status

            request = httpx2.Request("GET", f"https://huggingface.co/api/models/{repo_id}/refs")
            response = httpx2.Response(
                404, json={"error": "Repository not found"}, headers={"X-Error-Code": "RepoNotFound"},
                request=request,
            )  # fmt: skip
            try:
                hf_raise_for_status(response)
            except Exception as e:
                return e
            raise AssertionError("a 404 raised nothing")

        def list_repo_refs(api: Any, repo_id: str, **kwargs: Any) -> GitRefs:
            listing.asked.append(("refs", repo_id, None))
            if repo_id not in listing.repos:
                raise not_found(repo_id)
            branches = [
                GitRefInfo(name=n, ref=f"refs/heads/{n}", target_commit=c)
                for n, c in listing.repos[repo_id]["branches"].items()
            ]
            return GitRefs(branches=branches, converts=[], tags=[], pull_requests=[])

        def list_repo_tree(api: Any, repo_id: str, **kwargs: Any) -> list[RepoFile]:
            listing.asked.append(("tree", repo_id, kwargs.get("revision")))
            if repo_id not in listing.repos:
                raise not_found(repo_id)
            out = []
            for path, data in listing.repos[repo_id]["files"].items():
                oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
                info: dict[str, Any] = {"path": path, "size": len(data), "oid": oid}
                if lfs and path.endswith(".safetensors"):  # the Hub's listing of an LFS file: its sha256
                    sha = hashlib.sha256(data).hexdigest()
                    info.update(oid="0" * 40, lfs={"size": len(data), "oid": sha, "pointerSize": 134})
                out.append(RepoFile(**info))
            return out

        monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_refs", list_repo_refs)
        monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_tree", list_repo_tree)

    def holds(
        self, repo_id: str, folder: Path, *, branches: tuple[str, ...] = ("main",), commit: str = COMMIT
    ) -> str:
        """Make every branch of ``repo_id`` hold the files of ``folder`` (a model repo) at ``commit``."""
        files = {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}
        self.repos[repo_id] = {"branches": dict.fromkeys(branches, commit), "files": files}
        return commit
