"""Talking to the Hugging Face Hub: a bounded reachability probe, snapshot downloads, and the API for pushes.

huggingface_hub's own requests have no connect timeout and are retried, so a dead network costs ~23 s there.
Everything here that would reach the Hub first asks :func:`hub_unreachable` (a TCP connect bounded by
:data:`HUB_PROBE_TIMEOUT_S`), and offline or unreachable, fails at once with a message that says what to do.
Questions that change nothing (a repo's branches and files, before a push) are bounded too
(:func:`answered`): a Hub that accepts the connection but never answers fails them after
:data:`HUB_ANSWER_TIMEOUT_S`.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from ferhub.errors import HubConnectionError, HubModelUnavailable, ModelLoadError

HUB_PROBE_TIMEOUT_S = 1.0  # offline or unreachable Hub ids must fail in well under 2 s
# a Hub that accepts the connection must answer a question about a repo (its branches, its file listing)
# within this; huggingface_hub waits forever (timeout=None). Longer than the probe: an answer, not a
# connect, and a large repo's listing over a slow link
HUB_ANSWER_TIMEOUT_S = 10.0
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")

T = TypeVar("T")

_PROBE_CACHE: dict[tuple[str, int], tuple[float, str | None]] = {}
_PROBE_TTL_S = 30.0


def hub_unreachable(endpoint: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """``None`` when a TCP connection to the Hub (or the proxy for it) opens within ``timeout``, else why not,
    as a clause for messages: ``"the Hub cannot be reached (huggingface.co:443: OSError: ...)"``.

    Name resolution and connect run together in a daemon thread, so a resolver that never answers is cut
    short too. Answers are remembered for 30 s per host.
    """
    url = urlsplit(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    proxy = getproxies().get(url.scheme)
    if proxy and not proxy_bypass(host):
        purl = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = purl.hostname or "", purl.port or (443 if purl.scheme == "https" else 80)
    now = time.monotonic()
    cached = _PROBE_CACHE.get((host, port))
    if cached is not None and now - cached[0] < _PROBE_TTL_S:
        return cached[1]
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as e:
            outcome.append(f"{type(e).__name__}: {e}")

    thread = threading.Thread(target=probe, name="ferhub-hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    reason = outcome[0] if outcome else f"no answer within {timeout:g} s"
    reason = None if reason is None else f"the Hub cannot be reached ({host}:{port}: {reason})"
    _PROBE_CACHE[(host, port)] = (now, reason)
    return reason


def answered(call: Callable[[], T], what: str, timeout: float | None = None) -> T:
    """``call()``'s return (or its error), run in a daemon thread as :func:`hub_unreachable` runs its probe;
    :class:`HubConnectionError` when it has not returned within ``timeout`` (default
    :data:`HUB_ANSWER_TIMEOUT_S`): a Hub that accepts connections but never answers. For questions that
    change nothing (``what``: ``"listing the branches of org/name"``); the thread is left behind, blocked."""
    from huggingface_hub import constants

    limit = HUB_ANSWER_TIMEOUT_S if timeout is None else timeout
    outcome: list[tuple[bool, Any]] = []

    def ask() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as e:  # handed to the caller's thread, as raised
            outcome.append((False, e))

    thread = threading.Thread(target=ask, name="ferhub-hub-answer", daemon=True)
    thread.start()
    thread.join(limit)
    if not outcome:
        raise HubConnectionError(
            f"the Hub ({constants.ENDPOINT}) accepted the connection but did not answer within {limit:g} s "
            f"({what}). Fix: try again later"
        )
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def online_api(action: str, token: str | None = None) -> Any:
    """An ``HfApi`` for ``action`` (e.g. ``"push"``), or :class:`HubConnectionError` at once when offline mode
    is on or the Hub does not answer the probe."""
    import huggingface_hub
    from huggingface_hub import constants

    if constants.is_offline_mode():
        raise HubConnectionError(
            f"cannot {action} while offline mode is on (HF_HUB_OFFLINE=1); unset HF_HUB_OFFLINE and {action} "
            "again"
        )
    if (unreachable := hub_unreachable(constants.ENDPOINT)) is not None:
        raise HubConnectionError(
            f"cannot {action}: {unreachable}; connect to the network (or set HTTPS_PROXY / "
            f"HF_ENDPOINT) and {action} again"
        )
    return huggingface_hub.HfApi(token=token)


def _http_response(e: BaseException) -> tuple[BaseException, Any] | None:
    """The error in ``e``'s chain that carries an HTTP response (snapshot_download wraps the one it fell back
    on) and that response, ``None`` if none does."""
    cause: BaseException | None = e
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        response = getattr(cause, "response", None)
        if isinstance(getattr(response, "status_code", None), int):
            return cause, response
        cause = cause.__cause__ or cause.__context__
    return None


def http_status(e: BaseException) -> int | None:
    """The HTTP status of a huggingface_hub error (or of the error it was raised from), ``None`` if none."""
    found = _http_response(e)
    return None if found is None else int(found[1].status_code)


def summary(e: BaseException) -> str:
    """One line for a huggingface_hub error, whose own text runs over several lines (url, docs link, server
    text): ``"HTTP 503 Service Unavailable: Internal Error"``, else the error's first line."""
    found = _http_response(e)
    if found is not None:
        http, response = found
        text = f"HTTP {response.status_code} {getattr(response, 'reason_phrase', '') or ''}".strip()
        server = (getattr(http, "server_message", None) or "").strip().splitlines()
        return f"{text}: {server[0].strip()}" if server else text
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    first = lines[0] if lines else type(e).__name__
    return first if first.startswith(type(e).__name__) else f"{type(e).__name__}: {first}"


def hub_failed(e: BaseException) -> bool:
    """Whether the Hub itself failed (5xx) or asked to slow down (429): trying again later is the fix."""
    status = http_status(e)
    return status is not None and (status >= 500 or status == 429)


def upload_refused(e: BaseException, repo_id: str) -> str:
    """Why an upload to ``repo_id`` failed with an HTTP error, as one line ending in what to do: a Hub that
    failed (5xx, 429) is not the user's login or files."""
    from huggingface_hub.errors import RepositoryNotFoundError

    if hub_failed(e):
        return f"the Hub failed while uploading to {repo_id} ({summary(e)}). Fix: try again later"
    if http_status(e) in (401, 403) or isinstance(e, RepositoryNotFoundError):
        return (
            f"the Hub refused the upload to {repo_id} ({summary(e)}). Fix: log in with `hf auth login` (or "
            f"set HF_TOKEN) with write access to {repo_id}"
        )
    return f"the Hub refused the upload to {repo_id} ({summary(e)})"


def repo_url(repo_id: str) -> str:
    """The page of a Hub model, on the Hub ferhub talks to (``HF_ENDPOINT``)."""
    from huggingface_hub import constants

    return f"{constants.ENDPOINT.rstrip('/')}/{repo_id}"


def download(repo_id: str, revision: str | None, allow_patterns: list[str], bundled: list[str]) -> Path:
    """Snapshot of a Hub model's repo files, from the cache alone when offline or the Hub is unreachable.

    ``bundled`` (the models that ship with ferhub) is offered in the message when the id cannot be had.
    Messages are one line (huggingface_hub's own run over several) and end in what to do.
    """
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from ferhub import __version__

    ref = f"{repo_id}@{revision}" if revision else repo_id
    offline = constants.is_offline_mode()
    unreachable = None if offline else hub_unreachable(constants.ENDPOINT)
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=allow_patterns,
            local_files_only=offline or unreachable is not None,
            library_name="ferhub",
            library_version=__version__,
        )
    except RevisionNotFoundError as e:
        raise ModelLoadError(
            f"revision {revision!r} of Hub model {repo_id!r} does not exist; give an existing branch, tag or "
            "commit after '@'"
        ) from e
    except GatedRepoError as e:  # a RepositoryNotFoundError too, but logging in is not enough
        raise ModelLoadError(
            f"Hub model {repo_id!r} is gated: only accounts granted access can download it. Fix: open "
            f"{repo_url(repo_id)} while logged in and request access there, then log in here with that "
            "account (`hf auth login`, or set HF_TOKEN)"
        ) from e
    except RepositoryNotFoundError as e:
        raise ModelLoadError(
            f"Hub model {repo_id!r} was not found or you have no access to it; check the id, and for a "
            "private repo log in with `hf auth login` or set HF_TOKEN"
        ) from e
    except LocalEntryNotFoundError as e:  # not (completely) in the cache, and the Hub was not asked
        if offline:
            why = "offline mode is on (HF_HUB_OFFLINE=1)"
            fix = "unset HF_HUB_OFFLINE and load it once with network access to cache it"
        elif unreachable:
            why = unreachable
            fix = "connect to the network (or set HTTPS_PROXY / HF_ENDPOINT) and load it once to cache it"
        elif hub_failed(e):
            why = f"the Hub failed to answer ({summary(e)})"
            fix = "try again later"
        else:
            why = f"the Hub could not be reached ({summary(e)})"
            fix = "check your connection and try again"
        # a bundled name asked for at a revision is a Hub repo of that name: the bundled one has no revisions
        bundled_as_typed = f": `{repo_id}` without `@{revision}`" if revision and repo_id in bundled else ""
        # the revision asked for, not main, is what DIR must hold
        revision_option = f" --revision {revision}" if revision else ""
        # the Hub, not the id, is the problem: exit code 3 in the CLI, a "Hub down" message in the app
        raise HubModelUnavailable(
            f"Hub model {ref!r} is not in the local cache ({constants.HF_HUB_CACHE}) and {why}. Fix: {fix}; "
            f"or download it elsewhere (`hf download {repo_id}{revision_option} --local-dir DIR`) and load "
            f"DIR; or use a bundled model ({', '.join(bundled) or 'none installed'}){bundled_as_typed}."
        ) from e
    except HfHubHTTPError as e:
        if hub_failed(e):  # the Hub is down, not the id wrong: exit code 3 in the CLI
            raise HubModelUnavailable(
                f"the Hub failed to serve {ref!r} ({summary(e)}). Fix: try again later"
            ) from e
        raise ModelLoadError(
            f"the Hub refused to serve {ref!r} ({summary(e)}). Fix: check the id, and for a private repo log "
            "in with `hf auth login` or set HF_TOKEN"
        ) from e
    return Path(folder)
