"""The ferhub model repo: one folder, locally or on the Hugging Face Hub, that the same code reads.

A repo holds exactly these files (:data:`REPO_FILES`):

- ``config.json``: architecture, its arguments, labels and preprocessing (:class:`~ferhub.config.ModelConfig`);
- ``model.safetensors``: the weights (absent for an ``ensemble``, whose members carry their own);
- ``README.md``: the model card, rendered from ``model_cards/template.md`` by :func:`render_card`;
- ``card.json``: the card's prose context (licence, provenance, recipe, ...), kept so that the card can be
  re-rendered from the folder alone when ``eval_results.json`` changes;
- ``eval_results.json`` (optional): evaluation results, written by :mod:`ferhub.evaluation`.

>>> import ferhub.hub as hub
>>> model = hub.load("ferhub/fer-mini-xception")         # doctest: +SKIP  (bundled, offline)
>>> model = hub.load("someone/fer-resnet18@v1.0")        # doctest: +SKIP  (Hub id at a revision)
>>> hub.save(model, "out/my-model", card_context={"license": "mit"})  # doctest: +SKIP
>>> hub.push("out/my-model", "someone/my-model")         # doctest: +SKIP

Pickles are never read: weights load from ``model.safetensors`` only, and an outside PyTorch checkpoint goes
through :func:`import_torch_checkpoint` (``torch.load(weights_only=True)``), then :func:`save`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

import torch
from torch import nn

from ferhub.config import CONFIG_NAME, ConfigError, ModelConfig

WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
CARD_CONTEXT_NAME = "card.json"
EVAL_RESULTS_NAME = "eval_results.json"
REPO_FILES: tuple[str, ...] = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, CARD_CONTEXT_NAME, EVAL_RESULTS_NAME)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
ENSEMBLE = "ensemble"  # an architecture with no weights of its own: its builder loads its members

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
BUNDLED_ORG = "ferhub"
DEFAULT_MODEL = "ferhub/fer-mini-xception"
# The card template lives in the top-level model_cards/; ferhub/templates/model_card.md is a symlink to it, so
# that a wheel (setuptools copies what a symlink points to) carries the template too.
TEMPLATE_PATHS = (
    Path(__file__).resolve().parent.parent / "model_cards" / "template.md",  # a source checkout
    Path(__file__).resolve().parent / "templates" / "model_card.md",  # an installed wheel
)

EVAL_RESULTS_FORMAT_VERSION = 1
HUB_PROBE_TIMEOUT_S = 1.0  # offline or unreachable Hub ids must fail in well under 2 s

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


class ModelLoadError(OSError):
    """A model repo that cannot be found, read or matched to its architecture; the message says how to fix it."""


class HubConnectionError(ConnectionError):
    """The Hub cannot be reached (offline mode, or no connection) for an operation that needs it."""


class EvalResultsError(ValueError):
    """An ``eval_results.json`` that ferhub cannot read; the message names the file and what is wrong."""


# ---------------------------------------------------------------------------------------------------------
# resolving ids and folders
# ---------------------------------------------------------------------------------------------------------
def list_bundled() -> list[str]:
    """Ids of the models that ship inside the ferhub package (``ferhub/<name>``), sorted; they load offline."""
    if not BUNDLED_DIR.is_dir():
        return []
    return sorted(f"{BUNDLED_ORG}/{d.name}" for d in BUNDLED_DIR.iterdir() if (d / CONFIG_NAME).is_file())


def _bundled_folder(name: str) -> Path | None:
    bare = name.removeprefix(f"{BUNDLED_ORG}/")
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*", bare):  # a plain name, never '..' or a path
        return None
    folder = BUNDLED_DIR / bare
    return folder if (folder / CONFIG_NAME).is_file() else None


def _parse(
    id_or_path: str | os.PathLike, revision: str | None, local: bool = True
) -> tuple[Path | None, str | None, str | None]:
    """Classify a model reference as ``(local folder, None, None)`` or ``(None, hub repo id, revision)``.

    ``local=False`` never looks at the filesystem (a public app's visitors): only bundled names and Hub ids.
    """
    spec = os.fspath(id_or_path)
    path = Path(spec).expanduser()
    if local and path.is_dir():
        if revision is not None:
            raise ModelLoadError(
                f"{spec!r} is a local folder; a revision ({revision!r}) only applies to Hub ids"
            )
        return path.resolve(), None, None
    if local and path.is_file():
        hint = (
            f" A PyTorch checkpoint is read only through ferhub.hub.import_torch_checkpoint({spec!r}, config), "
            "then ferhub.hub.save(model, FOLDER)."
            if path.suffix in PICKLE_SUFFIXES
            else ""
        )
        raise ModelLoadError(
            f"{spec} is a file; ferhub loads a model repo folder (config.json + {WEIGHTS_NAME}).{hint}"
        )
    name, _, at_rev = spec.partition("@")
    if at_rev:
        if revision is not None and revision != at_rev:
            raise ModelLoadError(
                f"{spec!r} names revision {at_rev!r} but revision={revision!r} was also given"
            )
        revision = at_rev
    if revision is None and (bundled := _bundled_folder(name)) is not None:
        return bundled, None, None
    looks_like_path = spec.startswith((".", "/", "~")) or "\\" in spec or spec.count("/") > 1
    if looks_like_path and not local:
        raise ModelLoadError(
            f"{spec!r} is not a bundled model or a Hub id ('org/name' or 'org/name@revision')"
        )
    if looks_like_path:
        raise ModelLoadError(
            f"model folder {spec} does not exist; check the path (a folder ferhub.hub.save wrote)"
        )
    if not _HUB_ID.fullmatch(name):
        raise ModelLoadError(
            f"{spec!r} is not a model folder, a bundled model ({', '.join(list_bundled()) or 'none installed'}) "
            "or a Hub id of the form 'org/name' or 'org/name@revision'"
        )
    return None, name, revision


def resolve(id_or_path: str | os.PathLike, *, revision: str | None = None, local: bool = True) -> Path:
    """The local folder holding a model repo: a folder as given, a bundled model, or a Hub snapshot.

    Hub ids download into (or resolve from) the Hugging Face cache; offline or when the Hub cannot be reached,
    only the cache is consulted and an uncached id fails at once with :class:`ModelLoadError`.

    >>> resolve("fer-mini-xception").name                   # doctest: +SKIP
    'fer-mini-xception'
    """
    folder, repo_id, rev = _parse(id_or_path, revision, local)
    return folder if folder is not None else _download(repo_id, rev)


_PROBE_CACHE: dict[tuple[str, int], tuple[float, str | None]] = {}
_PROBE_TTL_S = 30.0


def _hub_unreachable(endpoint: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> str | None:
    """``None`` when a TCP connection to the Hub (or the proxy for it) opens within ``timeout``, else why not.

    huggingface_hub's own requests have no connect timeout and are retried, so a dead network costs tens of
    seconds there; this probe bounds name resolution and connect together by running them in a daemon thread.
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
    reason = None if reason is None else f"{host}:{port} unreachable ({reason})"
    _PROBE_CACHE[(host, port)] = (now, reason)
    return reason


def _download(repo_id: str, revision: str | None) -> Path:
    """Snapshot of the repo files of a Hub model, from the cache when offline or when the Hub is unreachable."""
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from ferhub import __version__

    ref = f"{repo_id}@{revision}" if revision else repo_id
    offline = constants.is_offline_mode()
    unreachable = None if offline else _hub_unreachable(constants.ENDPOINT)
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=list(REPO_FILES),
            local_files_only=offline or unreachable is not None,
            library_name="ferhub",
            library_version=__version__,
        )
    except RevisionNotFoundError as e:
        raise ModelLoadError(
            f"revision {revision!r} of Hub model {repo_id!r} does not exist; give an existing branch, tag or "
            "commit after '@'"
        ) from e
    except RepositoryNotFoundError as e:  # also gated repos
        raise ModelLoadError(
            f"Hub model {repo_id!r} was not found or you have no access to it; check the id, and for a private "
            "or gated repo log in with `hf auth login` or set HF_TOKEN"
        ) from e
    except LocalEntryNotFoundError as e:  # not (completely) in the cache, and the Hub was not asked
        if offline:
            why = "offline mode is on (HF_HUB_OFFLINE=1)"
            fix = "unset HF_HUB_OFFLINE and load it once with network access to cache it"
        elif unreachable:
            why = f"the Hub is unreachable: {unreachable}"
            fix = "connect to the network (or set HTTPS_PROXY / HF_ENDPOINT) and load it once to cache it"
        else:
            why = f"the Hub could not be reached ({e})"
            fix = "check your connection and try again"
        raise ModelLoadError(
            f"Hub model {ref!r} is not in the local cache ({constants.HF_HUB_CACHE}) and {why}. Fix: {fix}; "
            f"or download it elsewhere (`hf download {repo_id} --local-dir DIR`) and load DIR; or use a bundled "
            f"model ({', '.join(list_bundled()) or 'none installed'})."
        ) from e
    except HfHubHTTPError as e:
        raise ModelLoadError(f"the Hub refused to serve {ref!r}: {e}") from e
    return Path(folder)


# ---------------------------------------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------------------------------------
def _view_key(t: torch.Tensor) -> tuple:
    """Identity of a tensor view: equal keys mean the very same memory (tied weights)."""
    return (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)


def _alias_groups(state: Mapping[str, torch.Tensor]) -> list[list[str]]:
    """Names that are the same tensor (tied parameters), each group sorted, only groups of two or more."""
    groups: dict[tuple, list[str]] = {}
    for name, t in state.items():
        if t.numel():
            groups.setdefault(_view_key(t), []).append(name)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def _tensors_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as safetensors wants it: tied tensors stored once, contiguous, on CPU, no shared memory."""
    state = model.state_dict()
    drop = {name for group in _alias_groups(state) for name in group[1:]}
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple] = set()
    for name, t in state.items():
        if name in drop:
            continue
        t = t.detach().to("cpu").contiguous()
        storage = (t.untyped_storage().data_ptr(), t.device)
        if t.numel() and storage in seen:  # distinct views of one buffer: safetensors refuses shared memory
            t = t.clone()
        seen.add((t.untyped_storage().data_ptr(), t.device))
        out[name] = t
    return out


def _short(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > limit else shown


def _load_state_strict(
    model: nn.Module, tensors: dict[str, torch.Tensor], source: str, config_path: str
) -> None:
    """Load ``tensors`` into ``model``, refusing missing, unexpected or wrongly shaped weights with a clear error."""
    expected = model.state_dict()
    tensors = dict(tensors)
    for group in _alias_groups(expected):  # tied weights are stored once, under any of their names
        present = [n for n in group if n in tensors]
        for n in group:
            if present and n not in tensors:
                tensors[n] = tensors[present[0]]
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        f"{n} {tuple(tensors[n].shape)} vs {tuple(expected[n].shape)}"
        for n in set(tensors) & set(expected)
        if tensors[n].shape != expected[n].shape
    )
    if missing or unexpected or wrong:
        config: ModelConfig = model.config
        problems = [
            f"missing weights: {_short(missing)}" if missing else "",
            f"unexpected weights: {_short(unexpected)}" if unexpected else "",
            f"wrong shapes (file vs model): {_short(wrong)}" if wrong else "",
        ]
        raise ModelLoadError(
            f"{source} does not match the network that {config_path} describes (architecture "
            f"{config.architecture!r}, model_args {config.model_args}, {config.num_classes} labels): "
            f"{'; '.join(p for p in problems if p)}. Fix: config.json must describe the network these weights "
            "were trained as (architecture, model_args, number of labels); re-save the model with "
            "ferhub.hub.save(model, folder) rather than editing either file by hand."
        )
    model.load_state_dict(tensors, strict=True)


def import_torch_checkpoint(path: str | os.PathLike, config: ModelConfig) -> nn.Module:
    """Build ``config``'s network and fill it from a PyTorch ``.pt/.pth/.bin`` state dict, without unpickling code.

    The file is read with ``torch.load(weights_only=True)``, which accepts only tensors and plain containers;
    a state dict wrapped as ``{"state_dict": ...}`` or ``{"model": ...}`` and a ``module.`` prefix
    (``DataParallel``) are unwrapped. Save the result with :func:`save` to get a safetensors repo.

    >>> model = import_torch_checkpoint("resnet.pth", ModelConfig.load("repo"))  # doctest: +SKIP
    """
    from ferhub.models import build_from_config

    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelLoadError(f"{path} does not exist") from None
    except Exception as e:  # torch raises UnpicklingError / RuntimeError subclasses for refused content
        raise ModelLoadError(
            f"{path} is not a plain state dict of tensors ({type(e).__name__}: {e}); ferhub does not unpickle "
            "arbitrary objects. Fix: in the code that trained it, save `model.state_dict()` with torch.save."
        ) from e
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k.removeprefix("module."): v for k, v in obj.items()}
    model = build_from_config(config)
    _load_state_strict(model, obj, str(path), "the given config")
    return model.eval()


# ---------------------------------------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------------------------------------
CARD_CONTEXT_KEYS: dict[str, str] = {
    # key: what it holds (all optional). Lists may be given where noted.
    "model_name": "the model's name (card title, model-index name); defaults to the folder name",
    "repo_id": "the Hub id the model is published under, used in the card's usage example",
    "description": "one paragraph on what the model is",
    "license": "Hub licence id, e.g. 'mit', 'apache-2.0', 'other'",
    "license_name": "licence name when license is 'other'",
    "license_link": "licence link when license is 'other'",
    "license_text": "the licence text to reproduce with the attribution (e.g. an MIT notice)",
    "base_model": "Hub id(s) of the model(s) this was fine-tuned from (str or list)",
    "datasets": "Hub id(s) of the training data (str or list)",
    "tags": "extra Hub tags (list)",
    "intended_use": "intended and out-of-scope uses (markdown); a default is used when absent",
    "limitations": "limitations and known biases (markdown); a default is used when absent",
    "recipe": "training recipe (markdown)",
    "training_command": "the exact command that trained the model",
    "provenance": "where the weights come from (markdown)",
    "attribution": "credit to the original authors (markdown)",
    "upstream_claims": "accuracy figures claimed upstream, not measured by ferhub (str or list)",
    "citation": "BibTeX or reference text",
}
_LIST_KEYS = {"base_model", "datasets", "tags", "upstream_claims"}


def _check_card_context(context: Mapping[str, Any], source: str) -> dict[str, Any]:
    unknown = sorted(set(context) - set(CARD_CONTEXT_KEYS))
    if unknown:
        raise ValueError(
            f"{source}: unknown card_context keys {unknown}; known keys: {sorted(CARD_CONTEXT_KEYS)}"
        )
    out: dict[str, Any] = {}
    for key, value in context.items():
        if value is None:
            continue
        if key in _LIST_KEYS and isinstance(value, (list, tuple)):
            if not all(isinstance(v, str) for v in value):
                raise ValueError(f"{source}: card_context[{key!r}] must be a string or a list of strings")
            value = list(value)
        elif not isinstance(value, str):
            kind = "a string or a list of strings" if key in _LIST_KEYS else "a string"
            raise ValueError(f"{source}: card_context[{key!r}] must be {kind}, got {type(value).__name__}")
        out[key] = value
    return out


def _write_text(path: Path, text: str) -> None:
    """Write and fsync, so that a file renamed into place after this never comes back empty after a crash."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _write_json(path: Path, data: Any) -> None:
    _write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def save(
    model: nn.Module,
    folder: str | os.PathLike,
    *,
    eval_results: Mapping[str, Any] | None = None,
    card_context: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` (which carries its ``.config``) as a ferhub model repo in ``folder``; returns the folder.

    Writes ``config.json``, ``model.safetensors`` (not for an ensemble), ``card.json``, ``eval_results.json``
    when given (schema: :func:`read_eval_results`) and ``README.md``. Everything is written to a temporary
    folder first; an existing repo is replaced with ``config.json`` removed first and put back last, so a crash
    leaves either the old repo, the new one, or a folder that does not load. Other files in the folder (logs,
    checkpoints) are kept; repo files the new save does not write (an old ``eval_results.json``) are removed.

    ``card_context`` keys: see ``CARD_CONTEXT_KEYS`` (model_name, license, license_text, base_model, datasets,
    tags, description, intended_use, limitations, recipe, training_command, provenance, attribution,
    upstream_claims, citation, repo_id).
    """
    model = _unwrap(model)
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise TypeError(
            "save() needs the model's ModelConfig as model.config; build it with ferhub.create_model or "
            "ferhub.hub.load, or attach one before saving"
        )
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    context = _check_card_context(card_context or {}, "save()")
    context.setdefault("model_name", folder.resolve().name)
    if eval_results is not None:
        _validate_eval_results(eval_results, "save(eval_results=...)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        _write_json(tmp / CONFIG_NAME, config.to_dict())
        if config.architecture != ENSEMBLE:
            from safetensors.torch import save_file

            from ferhub import __version__

            metadata = {"format": "pt", "architecture": config.architecture, "ferhub_version": __version__}
            save_file(_tensors_for_saving(model), str(tmp / WEIGHTS_NAME), metadata=metadata)
            _fsync(tmp / WEIGHTS_NAME)
        if eval_results is not None:
            _write_json(tmp / EVAL_RESULTS_NAME, dict(eval_results))
        _write_json(tmp / CARD_CONTEXT_NAME, context)
        render_card(tmp)
        _install(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside torch.compile / DataParallel / DistributedDataParallel wrappers (their state dict
    names carry ``_orig_mod.`` / ``module.`` prefixes that the registry's model does not have)."""
    while True:
        if isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        elif isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        else:
            return model


def _install(tmp: Path, folder: Path) -> None:
    """Move the repo files written in ``tmp`` into ``folder``, config.json last (it marks a folder as a repo)."""
    if not folder.exists():
        os.rename(tmp, folder)
        return
    (folder / CONFIG_NAME).unlink(missing_ok=True)  # from here until the end, the folder does not load
    for name in REPO_FILES:
        if name == CONFIG_NAME:
            continue
        if (tmp / name).exists():
            os.replace(tmp / name, folder / name)
        else:
            (folder / name).unlink(missing_ok=True)
    os.replace(tmp / CONFIG_NAME, folder / CONFIG_NAME)


def _read_config(folder: Path) -> ModelConfig:
    try:
        return ModelConfig.load(folder)
    except ConfigError as e:
        raise ModelLoadError(
            f"{e}. Fix: config.json is written by ferhub.hub.save; re-save the model or correct the file "
            "(keys: see ferhub.config.ModelConfig)"
        ) from e


def _build(config: ModelConfig, folder: Path) -> nn.Module:
    """The untrained network of ``config``, with ``config`` attached.

    ``pretrained=True`` in model_args records how training started; the repo's own weights replace the
    backbone's ImageNet/face weights, which therefore are not loaded here (they may not even be on this
    machine). Families keep their architecture independent of ``pretrained``.
    """
    from ferhub.models import UnknownModelError, build_from_config

    build_config = config
    if config.model_args.get("pretrained") is True:
        build_config = dataclasses.replace(config, model_args={**config.model_args, "pretrained": False})
    try:
        model = build_from_config(build_config)
    except UnknownModelError as e:
        raise ModelLoadError(
            f"{folder / CONFIG_NAME}: {e}. Fix: import the module that registers {config.architecture!r} "
            "(a family in ferhub.models, or your own register_model) before loading, or upgrade ferhub"
        ) from e
    except TypeError as e:
        raise ModelLoadError(
            f"{folder / CONFIG_NAME}: {e}. Fix: model_args must be keyword arguments the {config.architecture!r} "
            "builder accepts"
        ) from e
    model.config = config
    return model


def _load_folder(folder: Path) -> nn.Module:
    """Build and fill the model of a repo folder on CPU (no caching)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config = _read_config(folder)
    weights = folder / WEIGHTS_NAME
    if config.architecture != ENSEMBLE and not weights.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise ModelLoadError(
                f"{weights} not found; {folder} holds {', '.join(pickles)}, a pickle format ferhub never loads "
                "(unpickling runs arbitrary code). Fix: convert it once with "
                f"ferhub.hub.import_torch_checkpoint('{folder / pickles[0]}', ferhub.ModelConfig.load('{folder}')) "
                "and ferhub.hub.save(model, folder)"
            )
        raise ModelLoadError(
            f"{weights} not found: a ferhub model repo needs config.json and {WEIGHTS_NAME}. Fix: write the folder "
            "with ferhub.hub.save(model, folder)"
        )
    model = _build(config, folder)
    if config.architecture != ENSEMBLE:
        try:
            tensors = load_file(weights)
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelLoadError(
                f"{weights} is not a readable safetensors file ({e}). Fix: it is corrupt or truncated; "
                "re-save the model, or for a Hub model download it again (delete it from the HF cache)"
            ) from e
        _load_state_strict(model, tensors, str(weights), str(folder / CONFIG_NAME))
    return model.eval()


_MODEL_CACHE: dict[tuple, nn.Module] = {}
_CACHE_LOCK = threading.RLock()


def _fingerprint(folder: Path) -> tuple:
    # a folder re-saved in place (training checkpoints) must not come back from the cache stale
    return tuple(
        (name, st.st_ino, st.st_mtime_ns, st.st_size)
        for name in (CONFIG_NAME, WEIGHTS_NAME)
        if (st := _stat(folder / name)) is not None
    )


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def load(
    id_or_path: str | os.PathLike, *, device: str = "cpu", revision: str | None = None, local: bool = True
) -> nn.Module:
    """Load a model repo as an ``nn.Module`` in eval mode, with ``.config``, ``.name_or_path`` and ``.repo_path``.

    ``id_or_path``, tried in this order: an existing local folder, a bundled model
    (``"ferhub/fer-mini-xception"`` or ``"fer-mini-xception"``, without a revision), a Hub id ``"org/name"`` /
    ``"org/name@revision"``; ``local=False`` skips the first (no filesystem path is looked at). Models are cached per (id, revision, device), and local folders also per the
    state of their files, so a folder re-saved in place is read again. A cached model is shared:
    ``copy.deepcopy`` it before training it.

    >>> model = load("ferhub/fer-mini-xception")            # doctest: +SKIP
    >>> model.config.labels                                 # doctest: +SKIP
    ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral')
    """
    dev = str(torch.device(device))
    folder, repo_id, rev = _parse(id_or_path, revision, local)
    with _CACHE_LOCK:
        key = (
            ("hub", repo_id, rev, dev)
            if folder is None
            else ("folder", str(folder), _fingerprint(folder), dev)
        )
        model = _MODEL_CACHE.get(key)
        if model is None:
            if folder is None:
                folder = _download(repo_id, rev)
            model = _load_folder(folder).to(dev)
            model.name_or_path = os.fspath(id_or_path)
            model.repo_path = folder
            _MODEL_CACHE[key] = model
        return model


def clear_cache() -> None:
    """Forget every model :func:`load` has cached (the next load reads the repo again)."""
    with _CACHE_LOCK:
        _MODEL_CACHE.clear()


# ---------------------------------------------------------------------------------------------------------
# eval_results.json
# ---------------------------------------------------------------------------------------------------------
def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _validate_eval_results(data: Any, source: str) -> dict[str, Any]:
    """Check the parts of the schema that ferhub reads; other keys are kept as they are."""

    def bad(what: str) -> EvalResultsError:
        return EvalResultsError(f"{source}: {what}. Fix: re-run `ferhub evaluate` to rewrite it")

    if not isinstance(data, Mapping):
        raise bad(f"expected a JSON object, got {type(data).__name__}")
    version = data.get("format_version")
    if version != EVAL_RESULTS_FORMAT_VERSION:
        if isinstance(version, int) and version > EVAL_RESULTS_FORMAT_VERSION:
            raise EvalResultsError(
                f"{source}: format_version {version} is newer than this ferhub reads "
                f"({EVAL_RESULTS_FORMAT_VERSION}); upgrade ferhub"
            )
        raise bad(f"format_version must be {EVAL_RESULTS_FORMAT_VERSION}, got {version!r}")
    results = data.get("results")
    if not isinstance(results, Mapping):
        raise bad("'results' must be an object keyed by dataset/config/split")
    for key, r in results.items():
        where = f"results[{key!r}]"
        if not isinstance(r, Mapping):
            raise bad(f"{where} must be an object")
        dataset = r.get("dataset")
        if not isinstance(dataset, Mapping) or not isinstance(dataset.get("id"), str) or not dataset["id"]:
            raise bad(f"{where}.dataset must be an object with a non-empty 'id'")
        for field in ("config", "split", "name", "revision"):
            if dataset.get(field) is not None and not isinstance(dataset[field], str):
                raise bad(f"{where}.dataset.{field} must be a string")
        metrics = r.get("metrics")
        if not isinstance(metrics, Mapping):
            raise bad(f"{where}.metrics must be an object of metric name -> value")
        labels = r.get("labels")
        if labels is not None and (
            not isinstance(labels, list) or not all(isinstance(x, str) for x in labels)
        ):
            raise bad(f"{where}.labels must be a list of label names")
        cm = r.get("confusion_matrix")
        if cm is not None:
            n = len(labels or [])
            if (
                not labels
                or not isinstance(cm, list)
                or len(cm) != n
                or not all(
                    isinstance(row, list) and len(row) == n and all(map(_is_number, row)) for row in cm
                )
            ):
                raise bad(f"{where}.confusion_matrix must be a {n}x{n} list of counts matching 'labels'")
        per_class = r.get("per_class")
        if per_class is not None and not (
            isinstance(per_class, Mapping) and all(isinstance(v, Mapping) for v in per_class.values())
        ):
            raise bad(f"{where}.per_class must map each label to an object of metrics")
        if r.get("tta") is not None and not isinstance(r["tta"], bool):
            raise bad(f"{where}.tta must be true or false")
        if r.get("num_images") is not None and not (
            isinstance(r["num_images"], int) and r["num_images"] >= 0
        ):
            raise bad(f"{where}.num_images must be a non-negative integer")
    return dict(data)


def read_eval_results(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed ``eval_results.json`` of a repo folder, ``None`` if it has none; :class:`EvalResultsError` if bad.

    Schema (owned by :mod:`ferhub.evaluation`; the parts read here)::

        {"format_version": 1,
         "results": {KEY: {"dataset": {"id", "config"?, "split"?, "name"?, "revision"?},
                           "metrics": {"accuracy": float, "mean_class_recall": float, "macro_f1": float, ...},
                           "labels"?: [...], "confusion_matrix"?: [[counts]] (rows true, columns predicted),
                           "per_class"?: {label: {"precision", "recall", "f1", "support"}},
                           "tta"?: bool, "num_images"?: int, "date"?, "ferhub_version"?, "command"?, ...}}}
    """
    path = Path(folder) / EVAL_RESULTS_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EvalResultsError(
            f"{path} is not valid JSON ({e}). Fix: re-run `ferhub evaluate` to rewrite it"
        ) from e
    return _validate_eval_results(data, str(path))


# ---------------------------------------------------------------------------------------------------------
# model card
# ---------------------------------------------------------------------------------------------------------
_METRIC_NAMES = {
    "accuracy": "Accuracy",
    "mean_class_recall": "Mean class recall",
    "macro_f1": "Macro F1",
    "top2_accuracy": "Top-2 accuracy",
    "nll": "Negative log-likelihood",
    "ece": "Expected calibration error",
}
# Hub model-index metric types (https://hf.co/metrics ids where one fits) and their configs
_METRIC_TYPES = {
    "accuracy": ("accuracy", None),
    "mean_class_recall": ("recall", "macro"),
    "macro_f1": ("f1", "macro"),
}
_FRACTION_METRICS = {
    "accuracy",
    "mean_class_recall",
    "macro_f1",
    "top2_accuracy",
    "precision",
    "recall",
    "f1",
}
_DEFAULT_INTENDED_USE = (
    "Research, teaching and demonstrations of facial-expression recognition: estimating which of the labels "
    "below a face in a photo most resembles. The output describes the configuration of the face, not what the "
    "person feels.\n\n"
    "Out of scope: decisions about people (hiring, education, policing, border control, health, credit, "
    "insurance), surveillance, and inferring the emotions of people who have not agreed to it."
)
_DEFAULT_LIMITATIONS = (
    "- The model has only been measured on the data listed under *Evaluation*; on other cameras, lighting, "
    "head poses, occlusions (glasses, masks), ages and populations it can be much less accurate.\n"
    "- Web-scraped expression datasets such as FER2013 are unbalanced across classes (few *disgust* images) and "
    "across age, gender and skin tone, and their labels are noisy; error rates differ between groups. Measure "
    "on data from the population you care about before relying on the model.\n"
    "- Posed and spontaneous expressions differ, expression conventions vary across cultures, and a handful of "
    "basic categories is a contested simplification of emotion.\n"
    "- Faces the detector (MTCNN) misses (small, profile, occluded) get no prediction."
)


def _metric_name(key: str) -> str:
    return _METRIC_NAMES.get(key, key.replace("_", " ").capitalize())


def _format_metric(key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if key in _FRACTION_METRICS and 0 <= value <= 1:
        return f"{100 * value:.2f}%"
    return f"{value:.4g}"


def _eval_result_objects(results: Mapping[str, Any]) -> list:
    from huggingface_hub import EvalResult

    out = []
    for r in results.values():
        dataset = r["dataset"]
        for key, value in r["metrics"].items():
            if not _is_number(value):
                continue
            metric_type, metric_config = _METRIC_TYPES.get(key, (key, None))
            out.append(
                EvalResult(
                    task_type="image-classification",
                    task_name="Facial expression recognition",
                    dataset_type=dataset["id"],
                    dataset_name=dataset.get("name") or dataset["id"],
                    dataset_config=dataset.get("config"),
                    dataset_split=dataset.get("split"),
                    dataset_revision=dataset.get("revision"),
                    metric_type=metric_type,
                    metric_name=_metric_name(key) + (" (TTA)" if r.get("tta") else ""),
                    metric_config=metric_config,
                    metric_value=value,
                )
            )
    return out


def _format_interval(key: str, interval: Any) -> str:
    """`` (95% CI a–b)`` for a two-number interval stored beside a metric, else nothing."""
    if not (isinstance(interval, list) and len(interval) == 2 and all(map(_is_number, interval))):
        return ""
    return f" (95% CI {_format_metric(key, interval[0])}–{_format_metric(key, interval[1])})"


def _no_face_note(no_face: Any) -> str | None:
    if not isinstance(no_face, Mapping) or not isinstance(no_face.get("count"), int) or not no_face["count"]:
        return None
    how = {
        "fallback": "classified on the whole image",
        "wrong": "counted as wrong",
        "precropped": "images given as face crops",
    }.get(no_face.get("policy"), str(no_face.get("policy") or "not stated"))
    return f"No face was found in {no_face['count']:,} images ({how})."


def _confusion_summary(labels: list[str], cm: list[list[float]], top: int = 3) -> list[str]:
    """The most frequent confusions, as shares of each true class."""
    cells = []
    for i, row in enumerate(cm):
        total = sum(row)
        for j, count in enumerate(row):
            if i != j and count > 0 and total > 0:
                cells.append((count / total, labels[i], labels[j], int(count), int(total)))
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [
        f"*{t}* taken for *{p}*: {100 * share:.1f}% ({n} of {total})" for share, t, p, n, total in cells[:top]
    ]


def _results_for_template(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, r in results.items():
        dataset = r["dataset"]
        where = ", ".join(
            x
            for x in (dataset.get("config"), f"split {dataset['split']}" if dataset.get("split") else None)
            if x
        )
        per_class = r.get("per_class") or {}
        columns = [
            c for c in ("precision", "recall", "f1", "support") if any(c in v for v in per_class.values())
        ]
        columns += sorted({c for v in per_class.values() for c in v} - set(columns))
        labels, cm = r.get("labels"), r.get("confusion_matrix")
        out.append(
            {
                "key": key,
                "title": (dataset.get("name") or dataset["id"]) + (f" ({where})" if where else ""),
                "dataset_id": dataset["id"],
                "tta": bool(r.get("tta")),
                "tta_method": r.get("tta_method") if isinstance(r.get("tta_method"), str) else None,
                "num_images": r.get("num_images"),
                "date": r.get("date"),
                "ferhub_version": r.get("ferhub_version"),
                "command": r.get("command"),
                "metrics": [
                    (
                        _metric_name(k),
                        _format_metric(k, v) + _format_interval(k, r["metrics"].get(f"{k}_ci95")),
                    )
                    for k, v in r["metrics"].items()
                    if _is_number(v)
                ],
                "no_face": _no_face_note(r.get("no_face")),
                "notes": [n for n in r.get("notes") or [] if isinstance(n, str)],
                "per_class_columns": [_metric_name(c) for c in columns],
                "per_class_rows": [
                    (label, [_format_metric(c, v.get(c, "")) for c in columns])
                    for label, v in per_class.items()
                ],
                "confusion_labels": labels if cm else None,
                "confusion_rows": list(zip(labels, [[int(x) for x in row] for row in cm])) if cm else None,
                "confusion_top": _confusion_summary(labels, cm) if cm else [],
            }
        )
    return out


def _num_weights(weights: Path) -> int | None:
    if not weights.is_file():
        return None
    from safetensors import safe_open

    with safe_open(weights, framework="pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118  (not a dict)


def _read_card_context(folder: Path) -> dict[str, Any]:
    path = folder / CARD_CONTEXT_NAME
    if not path.is_file():
        return {"model_name": folder.resolve().name}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); re-save the model with ferhub.hub.save") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object of card context")
    return _check_card_context(data, str(path))


def _as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def render_card(folder: str | os.PathLike) -> str:
    """Render the folder's ``README.md`` from ``model_cards/template.md``, its config, card.json and eval results.

    Writes README.md (atomically) and returns its text. The front matter carries ``library_name: ferhub``,
    ``pipeline_tag``, licence, base model, datasets, tags and a ``model-index`` with one entry per numeric
    metric of every result in ``eval_results.json``.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from ferhub import __version__

    folder = Path(folder)
    config = _read_config(folder)
    context = _read_card_context(folder)
    eval_data = read_eval_results(folder)
    results = eval_data["results"] if eval_data else {}
    model_name = context.get("model_name") or folder.resolve().name
    template = next((p for p in TEMPLATE_PATHS if p.is_file()), None)
    if template is None:
        raise FileNotFoundError(
            f"the model card template is missing (looked for {', '.join(map(str, TEMPLATE_PATHS))}); "
            "reinstall ferhub"
        )
    card_data = ModelCardData(
        model_name=model_name,
        library_name="ferhub",
        pipeline_tag="image-classification",
        license=context.get("license"),
        license_name=context.get("license_name"),
        license_link=context.get("license_link"),
        base_model=context.get("base_model"),
        datasets=_as_list(context.get("datasets")) or None,
        tags=list(
            dict.fromkeys(
                [
                    "ferhub",
                    "facial-expression-recognition",
                    "pytorch",
                    config.architecture,
                    *_as_list(context.get("tags")),
                ]
            )
        ),
        eval_results=_eval_result_objects(results) or None,
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(template),
        model_name=model_name,
        ctx=context,
        config=config,
        model_args_json=json.dumps(config.model_args, sort_keys=True),
        gray=config.channels == 1,
        load_id=context.get("repo_id") or model_name,
        num_weights=_num_weights(folder / WEIGHTS_NAME),
        intended_use=context.get("intended_use") or _DEFAULT_INTENDED_USE,
        limitations=context.get("limitations") or _DEFAULT_LIMITATIONS,
        upstream_claims=_as_list(context.get("upstream_claims")),
        results=_results_for_template(results),
        ferhub_version=__version__,
    )
    text = re.sub(r"\n{3,}", "\n\n", str(card).strip()) + "\n"
    tmp = folder / f".{CARD_NAME}.tmp"
    _write_text(tmp, text)
    os.replace(tmp, folder / CARD_NAME)
    return text


# ---------------------------------------------------------------------------------------------------------
# push
# ---------------------------------------------------------------------------------------------------------
def check_repo(folder: str | os.PathLike) -> list[str]:
    """Verify that ``folder`` is a complete, loadable ferhub repo; return the repo files it holds.

    Loads the model (strictly), parses ``eval_results.json`` and requires a rendered ``README.md``.
    """
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise ModelLoadError(
            f"{folder} is not a ferhub model repo (no {CONFIG_NAME}); write it with ferhub.hub.save"
        )
    _load_folder(folder)
    read_eval_results(folder)
    _read_card_context(folder)
    if not (folder / CARD_NAME).is_file():
        raise ModelLoadError(
            f"{folder / CARD_NAME} is missing; write it with ferhub.hub.render_card('{folder}')"
        )
    return [name for name in REPO_FILES if (folder / name).is_file()]


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

    The folder is verified first (:func:`check_repo`); offline or with the Hub unreachable,
    :class:`HubConnectionError` is raised at once. The repo is created if needed (``private`` applies to a
    new repo), the branch ``revision`` too, then exactly the repo files go up in one ``upload_folder`` commit;
    repo files on the Hub that the folder no longer has (an old ``eval_results.json``) are deleted in it.
    """
    import huggingface_hub
    from huggingface_hub import constants

    if not _HUB_ID.fullmatch(repo_id):
        raise ValueError(f"repo_id must look like 'org/name', got {repo_id!r}")
    files = check_repo(folder)
    if constants.is_offline_mode():
        raise HubConnectionError(
            "cannot push while offline mode is on (HF_HUB_OFFLINE=1); unset HF_HUB_OFFLINE and push again"
        )
    if (unreachable := _hub_unreachable(constants.ENDPOINT)) is not None:
        raise HubConnectionError(
            f"cannot push: the Hub is {unreachable}; connect to the network (or set HTTPS_PROXY / HF_ENDPOINT) "
            "and push again"
        )
    api = huggingface_hub.HfApi(token=token)
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
