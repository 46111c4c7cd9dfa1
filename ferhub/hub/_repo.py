"""A model repo folder: which folder an id means, writing one (:func:`save`), reading one (:func:`load`,
cached, with a lock per model), and checking one before it is pushed (:func:`check_repo`)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferhub import eval_results as results_file
from ferhub.config import CONFIG_NAME, ModelConfig
from ferhub.device import device_name
from ferhub.errors import ConfigError, ModelLoadError, NotAFolderError, WrongTypeError
from ferhub.fileio import atomic_write_json, writing
from ferhub.hub import _layout, _remote
from ferhub.hub._layout import (
    CARD_CONTEXT_NAME,
    CARD_NAME,
    ENSEMBLE,
    EVAL_RESULTS_NAME,
    PICKLE_SUFFIXES,
    REPO_FILES,
    WEIGHTS_NAME,
    list_bundled,
    read_config,
)
from ferhub.hub._weights import load_state_strict, read_weights, unwrap, write_weights

if TYPE_CHECKING:  # torch only where a model is built: resolving a repo (the ONNX warm start) needs none
    import torch
    from torch import nn


# ---------------------------------------------------------------------------------------------------------
# which folder an id means
# ---------------------------------------------------------------------------------------------------------
def _parse(
    id_or_path: str | os.PathLike, revision: str | None, local: bool = True
) -> tuple[Path | None, str | None, str | None]:
    """Classify a model reference as ``(local folder, None, None)`` or ``(None, hub repo id, revision)``.

    ``local=False`` never looks at the filesystem (a public app's visitors): only bundled names and Hub ids.
    """
    spec = os.fspath(id_or_path)
    if len(spec) > 1000:  # echoed in every message below: a hostile reference must not make them megabytes
        raise ModelLoadError(
            f"a model reference of {len(spec):,} characters is neither a folder nor a Hub id"
        )
    path = Path(spec).expanduser()
    if local and path.is_dir():
        if revision is not None:
            raise ModelLoadError(
                f"{spec!r} is a local folder; a revision ({revision!r}) only applies to Hub ids"
            )
        return path.resolve(), None, None
    if local and path.is_file():
        hint = (
            " A PyTorch checkpoint is read only through "
            f"ferhub.hub.import_torch_checkpoint({spec!r}, config), then ferhub.hub.save(model, FOLDER)."
            if path.suffix in PICKLE_SUFFIXES
            else ""
        )
        raise ModelLoadError(
            f"{spec} is a file; ferhub loads a model repo folder (config.json + {WEIGHTS_NAME}).{hint}"
        )
    if local and any("@" in a.name and a.is_dir() for a in path.parents):
        # runs/lr@0.01/model (or .../seed1/model), not written yet or mistyped: a folder with '@' in its name
        # holds it, so it is a path on this disk, not the Hub id runs/lr at revision 0.01/model
        raise ModelLoadError(
            f"model folder {spec} does not exist; check the path (a folder ferhub.hub.save wrote)"
        )
    name, _, at_rev = spec.partition("@")
    if at_rev:
        if revision is not None and revision != at_rev:
            raise ModelLoadError(
                f"{spec!r} names revision {at_rev!r} but revision={revision!r} was also given"
            )
        revision = at_rev
    if revision is None and (bundled := _layout.bundled_folder(name)) is not None:
        return bundled, None, None
    # the revision after '@' may hold '/' (refs/pr/1, feature/x): only the part before it can make a path
    looks_like_path = name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1
    if looks_like_path and not local:
        raise ModelLoadError(
            f"{spec!r} is not a bundled model or a Hub id ('org/name' or 'org/name@revision')"
        )
    if looks_like_path:
        raise ModelLoadError(
            f"model folder {spec} does not exist; check the path (a folder ferhub.hub.save wrote)"
        )
    if not _remote.HUB_ID.fullmatch(name):
        if (hint := _zoo_import_hint(spec)) is not None:
            raise ModelLoadError(hint)
        raise ModelLoadError(
            f"{spec!r} is not a model folder, a bundled model "
            f"({', '.join(list_bundled()) or 'none installed'}) or a Hub id of the form 'org/name' or "
            "'org/name@revision'"
        )
    if revision is not None and _BAD_REVISION.search(revision):
        # huggingface_hub keeps refs/<revision> files in its cache: a '..' must never reach that path
        raise ModelLoadError(
            f"{spec!r}: {revision!r} is not a branch, tag or commit name (git refuses '..', '//', spaces and "
            "~^:?*[\\ in them)"
        )
    return None, name, revision


# what git's check-ref-format refuses in a ref name (and so no Hub branch, tag or commit has)
_BAD_REVISION = re.compile(r"\.\.|//|^[/.]|/$|[\\~^:?*\[\s\x00-\x1f\x7f]")


def _zoo_import_hint(spec: str) -> str | None:
    from ferhub.zoo import import_hint  # the zoo builds on this module

    return import_hint(spec)


def _download(repo_id: str, revision: str | None) -> Path:
    try:
        return _remote.download(repo_id, revision, list(REPO_FILES), list_bundled())
    except ModelLoadError as e:  # a zoo model is made by `ferhub zoo import`, not downloaded
        if (hint := _zoo_import_hint(repo_id)) is not None:
            raise ModelLoadError(hint) from e
        raise


def resolve(id_or_path: str | os.PathLike, *, revision: str | None = None, local: bool = True) -> Path:
    """The local folder holding a model repo: a folder as given, a bundled model, or a Hub snapshot.

    Hub ids download into (or resolve from) the Hugging Face cache; offline or when the Hub cannot be reached,
    only the cache is consulted and an uncached id fails at once with :class:`ModelLoadError`.

    >>> resolve("fer-mini-xception").name                   # doctest: +SKIP
    'fer-mini-xception'
    """
    folder, repo_id, rev = _parse(id_or_path, revision, local)
    return folder if folder is not None else _download(repo_id, rev)


def local_folder(id_or_path: str | os.PathLike) -> Path | None:
    """The folder of a local repo or bundled model as :func:`load` reads it, found without asking the Hub or
    importing torch; ``None`` for a Hub id. A reference that is neither raises :func:`load`'s
    :class:`ModelLoadError`."""
    return _parse(id_or_path, None)[0]


# ---------------------------------------------------------------------------------------------------------
# save
# ---------------------------------------------------------------------------------------------------------
def save(
    model: nn.Module,
    folder: str | os.PathLike,
    *,
    eval_results: Mapping[str, Any] | None = None,
    card_context: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` (which carries its ``.config``) as a ferhub model repo in ``folder``; returns it.

    Writes ``config.json``, ``model.safetensors`` (not for an ensemble), ``card.json``, ``eval_results.json``
    when given (a document as :func:`ferhub.eval_results.merge` builds) and ``README.md``. Everything is
    written to a temporary folder first; an existing repo is replaced with ``config.json`` removed first and
    put back last, so a crash leaves either the old repo, the new one, or a folder that does not load. Other
    files in the folder (logs, checkpoints) are kept; repo files the new save does not write (an old
    ``eval_results.json``) are removed. Weights holding NaN or infinity, which :func:`load` refuses, raise
    ``NonFiniteWeightsError`` (a ``ValueError``) before anything is written; a ``folder`` that is a file
    raises ``NotAFolderError`` (a ``FileExistsError``).

    ``card_context`` keys: see ``ferhub.hub.CARD_CONTEXT_KEYS`` (model_name, license, license_text,
    base_model, datasets, tags, description, intended_use, limitations, recipe, training_command,
    provenance, attribution, upstream_claims, citation, repo_id).
    """
    from ferhub.hub import card

    model = unwrap(model)
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        raise WrongTypeError(
            "save() needs the model's ModelConfig as model.config; build it with ferhub.create_model or "
            "ferhub.hub.load, or attach one before saving"
        )
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise NotAFolderError(f"{folder} exists and is not a folder; save() writes a model repo folder there")
    context = card.check_card_context(card_context or {}, "save()")
    context.setdefault("model_name", folder.resolve().name)
    if eval_results is not None:
        results_file.validate(eval_results, "save(eval_results=...)")
    if config.architecture != ENSEMBLE:  # an ensemble's weights are its members' repos
        from ferhub.models._limits import check_finite_weights

        # load() refuses NaN/inf weights (every face NaN): a repo it would refuse is never written
        check_finite_weights(model.state_dict(), f"save(): the model ({config.architecture})")
    folder.parent.mkdir(parents=True, exist_ok=True)
    # mkdir, not mkdtemp: the repo folder gets the umask's mode (0755), where mkdtemp's 0700 made a model
    # another user (or a server under another uid) could not load
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex}"
    # a full disk names the repo's own file (fileio.writing), never the hidden stage folder the user never
    # sees: "the disk is full: .model.tmp-3f2a.../model.safetensors" named no folder of theirs
    with writing(folder):
        tmp.mkdir()
    try:
        with writing(folder / CONFIG_NAME):
            atomic_write_json(tmp / CONFIG_NAME, config.to_dict())
        if config.architecture != ENSEMBLE:
            with writing(folder / WEIGHTS_NAME):
                write_weights(model, tmp / WEIGHTS_NAME)
        if eval_results is not None:
            with writing(folder / EVAL_RESULTS_NAME):
                atomic_write_json(tmp / EVAL_RESULTS_NAME, dict(eval_results))
        with writing(folder / CARD_CONTEXT_NAME):
            atomic_write_json(tmp / CARD_CONTEXT_NAME, context)
        with writing(folder / CARD_NAME):
            card.render_card(tmp)
        _install(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _install(tmp: Path, folder: Path) -> None:
    """Move the repo files written in ``tmp`` into ``folder``, config.json last (it makes a folder a repo)."""
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


# ---------------------------------------------------------------------------------------------------------
# load
# ---------------------------------------------------------------------------------------------------------
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
    except ConfigError as e:  # model_args, sizes, ensemble cycles: ferhub.models._registry says what to fix
        raise ModelLoadError(f"{folder / CONFIG_NAME}: {e}") from e
    except UnknownModelError as e:
        raise ModelLoadError(
            f"{folder / CONFIG_NAME}: {e}. Fix: import the module that registers {config.architecture!r} "
            "(a family in ferhub.models, or your own register_model) before loading, or upgrade ferhub"
        ) from e
    except TypeError as e:
        raise ModelLoadError(
            f"{folder / CONFIG_NAME}: {e}. Fix: model_args must be keyword arguments the "
            f"{config.architecture!r} builder accepts"
        ) from e
    model.config = config
    return model


def _hub_snapshot(folder: Path) -> tuple[str, Path] | None:
    """``(repo id, its folder in the Hugging Face cache)`` when ``folder`` is a snapshot there
    (``models--ORG--NAME/snapshots/COMMIT``), else ``None``: its files came from the Hub (or ``zoo import``),
    so a problem with them is the repo's or the cache's, never something to re-save."""
    repo_dir = folder.parent.parent
    if folder.parent.name != "snapshots" or not repo_dir.name.startswith("models--"):
        return None
    return repo_dir.name.removeprefix("models--").replace("--", "/", 1), repo_dir


def _listing(repo_id: str, snapshot: Path) -> set[str] | None:
    """The files of the snapshot's commit on the Hub, from the listing huggingface_hub caches beside it;
    ``None`` when none is cached (``zoo import``, an older huggingface_hub)."""
    try:
        from huggingface_hub import get_cached_repo_tree

        tree = get_cached_repo_tree(repo_id, revision=snapshot.name, cache_dir=snapshot.parents[2])
    except Exception:  # no listing cached, or a huggingface_hub without this function
        return None
    return {str(getattr(f, "path", "")) for f in tree}


def hash_file(path: str | os.PathLike, *hashes: Any) -> None:
    """Feed the file at ``path`` to each of ``hashes`` (``hashlib`` objects) in 1 MiB chunks, in one read: a
    weights file of gigabytes is never held in memory."""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            for h in hashes:
                h.update(chunk)


def _cached_file_intact(path: Path) -> bool:
    """Whether a cached file still holds what the Hub sent: its blob is named by the file's git oid (sha1)
    or sha256, as huggingface_hub (and ``zoo import``) name them."""
    import hashlib

    try:
        blob = path.resolve().name
        git_oid = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
        sha256 = hashlib.sha256()
        hash_file(path, git_oid, sha256)
    except OSError:
        return False
    return blob in (git_oid.hexdigest(), sha256.hexdigest())


def _missing_from_snapshot(repo_id: str, snapshot: Path, repo_dir: Path, name: str) -> ModelLoadError:
    """A Hub snapshot without ``name``: the repo is no ferhub repo, or the cached copy lost the file."""
    listing = _listing(repo_id, snapshot)
    if listing is not None and name not in listing:
        pickles = sorted(f for f in listing if "/" not in f and f.endswith(PICKLE_SUFFIXES))
        hint = (
            f"; its {pickles[0]} is a pickle ferhub never loads (unpickling runs arbitrary code): download "
            f"it (`hf download {repo_id} {pickles[0]}`), convert it once with "
            "ferhub.hub.import_torch_checkpoint and save it with ferhub.hub.save"
            if pickles and name == WEIGHTS_NAME
            else ""
        )
        return ModelLoadError(
            f"Hub model {repo_id!r} is not a ferhub model repo (no {name}): ferhub loads repos holding "
            f"{CONFIG_NAME} and {WEIGHTS_NAME}, written by ferhub.hub.save and uploaded with `ferhub push`"
            f"{hint}"
        )
    return ModelLoadError(
        f"the copy of Hub model {repo_id!r} in the Hugging Face cache ({snapshot}) has no {name}. Fix: "
        f"delete it from the Hugging Face cache ({repo_dir}) and load again; if {name} is still missing, "
        "the repo is not a ferhub model repo"
    )


def _hub_config(repo_id: str, snapshot: Path, repo_dir: Path) -> ModelConfig:
    """The config of a Hub snapshot, with messages that say whose fault an unusable one is."""
    path = snapshot / CONFIG_NAME
    if not path.is_file():
        raise _missing_from_snapshot(repo_id, snapshot, repo_dir, CONFIG_NAME)
    try:
        return ModelConfig.load(snapshot)
    except ConfigError as e:
        why = _layout.without_resave_hint(str(e))
        if not _cached_file_intact(path):
            raise ModelLoadError(
                f"{why}. Fix: the cached copy is damaged; delete it from the Hugging Face cache ({repo_dir}) "
                "and load again"
            ) from e
        raise ModelLoadError(
            f"{why}. Hub model {repo_id!r} is not a ferhub model repo this ferhub can read; if it was "
            "written by a newer ferhub, upgrade ferhub"
        ) from e


def _weights_fix(hub: tuple[str, Path], weights: Path) -> str:
    """What to do about a Hub snapshot's unreadable weights, as :func:`_hub_config` tells it: a cached copy
    that is no longer what the Hub sent is downloaded again, but one that is (its blob named by its hash) is
    the Hub's own file, which only its owner can replace."""
    if not _cached_file_intact(weights):
        return f"the cached copy is damaged; delete it from the Hugging Face cache ({hub[1]}) and load again"
    return (
        f"the cached copy is exactly the file on the Hub (its hash matches), so Hub model {hub[0]!r} holds a "
        "damaged file and downloading it again cannot help; ask its owner to push the model again "
        "(`ferhub push`)"
    )


# how the ensemble being built loads its members (see load_folder): whether from folders on this machine too,
# and for which device (a resolved name)
_MEMBERS: ContextVar[tuple[bool, str]] = ContextVar("ferhub_members", default=(True, "cpu"))


def load_member(reference: str) -> nn.Module:
    """An ensemble member, for the ensemble's builder, from :func:`load`'s cache for the ensemble's device: a
    folder on this machine only where the ensemble being built may name one (:func:`load_folder`), else a
    bundled name or Hub id."""
    local, device = _MEMBERS.get()
    return load(reference, local=local, device=device)


def load_folder(folder: Path, *, local: bool = True, device: str = "cpu") -> nn.Module:
    """Build and fill the model of a repo folder on ``device``, a name :func:`~ferhub.device.device_name`
    gives (the model itself is not cached).

    An ensemble's members come from :func:`load`'s cache for ``device``: each (member, device) is its own
    entry, so moving the ensemble never moves a member that a :func:`load` on another device handed out.
    They load from folders on this machine only when ``local`` (the user named this folder)
    and the folder is no Hub download: a downloaded ensemble's config.json is someone else's, and a public
    app (``local=False``) must not read the paths it lists, so its members must be bundled names or Hub ids
    (:func:`check_repo`'s rule), refused before anything is loaded.
    """
    hub = _hub_snapshot(folder)
    config = read_config(folder) if hub is None else _hub_config(hub[0], folder, hub[1])
    members_local = local and hub is None
    if not members_local:
        _check_members(folder, config, local=False)
    weights = folder / WEIGHTS_NAME
    if config.architecture != ENSEMBLE and not weights.is_file():
        if hub is not None:  # only the repo files are downloaded: a pickle in the repo is never seen here
            raise _missing_from_snapshot(hub[0], folder, hub[1], WEIGHTS_NAME)
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise ModelLoadError(
                f"{weights} not found; {folder} holds {', '.join(pickles)}, a pickle format ferhub never "
                "loads (unpickling runs arbitrary code). Fix: convert it once with "
                f"ferhub.hub.import_torch_checkpoint('{folder / pickles[0]}', "
                f"ferhub.ModelConfig.load('{folder}')) and ferhub.hub.save(model, folder)"
            )
        raise ModelLoadError(
            f"{weights} not found: a ferhub model repo needs config.json and {WEIGHTS_NAME}. Fix: write the "
            "folder with ferhub.hub.save(model, folder)"
        )
    token = _MEMBERS.set((members_local, device))
    try:
        model = _build(config, folder)
    finally:
        _MEMBERS.reset(token)
    if config.architecture != ENSEMBLE:
        # the fix is worked out only for weights that fail (it hashes the file)
        state = read_weights(weights, None if hub is None else lambda: _weights_fix(hub, weights))
        load_state_strict(model, state, str(weights), str(folder / CONFIG_NAME))
    return model.to(device).eval()  # an ensemble's members are there already: none of them moves


_MODEL_CACHE: dict[tuple, nn.Module] = {}
_KEY_LOCKS: dict[tuple, threading.RLock] = {}
_CACHE_LOCK = threading.Lock()  # guards the two dicts only; never held while a model loads


def forget(models: Sequence[nn.Module], keep: Sequence[nn.Module] = ()) -> None:
    """Drop ``models`` (and the ensemble members they hold) from :func:`load`'s cache, which otherwise keeps
    every model loaded for good (a server whose visitors name models bounds its memory so); a module ``keep``
    holds stays. Callers holding a forgotten model go on using it; the next :func:`load` reads it again."""
    held = {id(sub) for model in keep for sub in model.modules()}
    drop = {id(sub) for model in models for sub in model.modules()} - held
    with _CACHE_LOCK:
        for key in [k for k, m in _MODEL_CACHE.items() if id(m) in drop]:
            del _MODEL_CACHE[key]


def _fingerprint(folder: Path, local: bool = True, seen: tuple[Path, ...] = ()) -> tuple:
    """The state of ``folder``'s repo files, so that a folder re-saved in place (training checkpoints) never
    comes back from :func:`load`'s cache stale. An ensemble (a repo without weights) adds
    ``("member", path, fingerprint)`` for each member that is a folder here, as its builder would load it
    (``local``): its model holds its members' models, so a member saved again makes it stale too. Hub members
    are keyed by id, as :func:`load` keys them."""
    files = tuple(
        (name, st.st_ino, st.st_mtime_ns, st.st_size)
        for name in (CONFIG_NAME, WEIGHTS_NAME)
        if (st := _stat(folder / name)) is not None
    )
    if any(entry[0] == WEIGHTS_NAME for entry in files):
        return files  # a model with weights of its own
    from ferhub.models._registry import MAX_NESTING  # torch: only for an ensemble, which builds in torch

    if len(seen) > MAX_NESTING:
        return files  # nested deeper than its build allows: loading it fails anyway
    members_local = local and _hub_snapshot(folder) is None  # as load_folder loads the members
    members = []
    for member in _member_references(folder):
        try:
            member_folder = _parse(member, None, members_local)[0]
        except ModelLoadError:  # loading the ensemble says what is wrong with it
            continue
        if member_folder is not None and member_folder not in (*seen, folder):  # a cycle fails to build
            fingerprint = _fingerprint(member_folder, members_local, (*seen, folder))
            members.append(("member", str(member_folder), fingerprint))
    return files + tuple(members)


def _member_references(folder: Path) -> list[str]:
    """The member references an ensemble's config.json lists, read without checking it (that is
    :func:`load_folder`'s to do, with its messages); none for anything else or anything unreadable."""
    try:
        config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
        members = config["model_args"]["members"] if config.get("architecture") == ENSEMBLE else []
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []
    return [m for m in members if isinstance(m, str)] if isinstance(members, list) else []


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def load(
    id_or_path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    revision: str | None = None,
    local: bool = True,
) -> nn.Module:
    """Load a model repo as an ``nn.Module`` in eval mode with ``.config``, ``.name_or_path``, ``.repo_path``.

    ``id_or_path``, tried in this order: an existing local folder, a bundled model
    (``"ferhub/fer-mini-xception"`` or ``"fer-mini-xception"``, without a revision), a Hub id ``"org/name"`` /
    ``"org/name@revision"``; ``local=False`` skips the first (no filesystem path is looked at), also for an
    ensemble's members, as for any ensemble downloaded from the Hub (:func:`load_folder`). Models are
    cached per (id, revision, device) (an ensemble's members too, loaded for its device, so that moving it
    never moves a member loaded on another device), and local folders also per the state of their files (an
    ensemble's: with its member folders' too), so a folder re-saved in place is read again (and the models
    of its earlier files, the ensembles holding them included, are dropped from the cache). One model
    loading (a slow download) never holds up another. A cached model is shared, so callers never change it:
    ``copy.deepcopy`` it before training it, and keep names of your own beside it (``name_or_path`` is the
    reference it was first loaded by). ``device``: ``"cpu"``, ``"cuda"`` or
    ``"cuda:N"``; one torch cannot use here raises :class:`~ferhub.errors.DeviceError`.

    >>> model = load("ferhub/fer-mini-xception")            # doctest: +SKIP
    >>> model.config.labels                                 # doctest: +SKIP
    ('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral')
    """
    dev = device_name(device)  # checked as the Predictor checks it, before anything is read
    folder, repo_id, rev = _parse(id_or_path, revision, local)
    fingerprint = None if folder is None else _fingerprint(folder, local)
    key = ("hub", repo_id, rev, dev) if folder is None else ("folder", str(folder), fingerprint, dev)
    with _CACHE_LOCK:
        model = _MODEL_CACHE.get(key)
        if model is not None:
            return model
        # re-entrant: an ensemble that lists itself comes back here in the same thread, and must reach the
        # registry's cycle check (a ConfigError), not wait on its own lock forever
        lock = _KEY_LOCKS.setdefault(key, threading.RLock())
    with lock:  # two first loads of one model load it once; other models go ahead meanwhile
        with _CACHE_LOCK:
            model = _MODEL_CACHE.get(key)
        if model is None:
            if folder is None:
                folder = _download(repo_id, rev)
            model = load_folder(folder, local=local, device=dev)
            model.name_or_path = os.fspath(id_or_path)
            model.repo_path = folder
            current = _fingerprint(folder, local) if key[0] == "folder" else None
            with _CACHE_LOCK:
                _MODEL_CACHE[key] = model
                if current is not None:
                    _drop_superseded(key[1], current)
    return model


def _drop_superseded(folder: str, current: tuple) -> None:
    """Forget the models (and key locks) of ``folder`` cached under fingerprints other than its ``current``
    one, on every device, and of the ensembles cached with such a ``folder`` among their members: its files
    have changed since, so no later :func:`load` reaches them, and a training loop that re-saves and reloads
    its checkpoint folder kept one whole model per epoch. Called under ``_CACHE_LOCK``. A model loaded from
    files that changed while it loaded is dropped too (it was cached under a fingerprint that is already
    stale)."""
    for table in (_MODEL_CACHE, _KEY_LOCKS):
        for key in [k for k in table if k[0] == "folder" and _stale(k[1], k[2], folder, current)]:
            del table[key]


def _stale(path: str, fingerprint: tuple, folder: str, current: tuple) -> bool:
    """Whether the repo at ``path`` with ``fingerprint`` is, or holds as a member, ``folder`` in a state
    other than its ``current`` one."""
    if path == folder:
        return fingerprint != current
    return any(e[0] == "member" and _stale(e[1], e[2], folder, current) for e in fingerprint)


def clear_cache() -> None:
    """Forget every model :func:`load` has cached (the next load reads the repo again)."""
    with _CACHE_LOCK:
        _MODEL_CACHE.clear()
        _KEY_LOCKS.clear()


# ---------------------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------------------
def _local_member(member: str, local: bool = True) -> bool:
    """Whether an ensemble member is not a bundled name or a Hub id (which load on any machine): with
    ``local``, a folder on this machine (as :func:`load` reads it), which the same reference does not mean on
    another one; without, anything :func:`load` with ``local=False`` refuses, told without looking at the
    disk."""
    try:
        folder = _parse(member, None, local)[0]
    except ModelLoadError:  # a path (that does not exist here): no Hub id either
        return True
    return folder is not None and folder != _layout.bundled_folder(member)


def _check_members(folder: Path, config: ModelConfig, *, local: bool = True) -> None:
    """Refuse an ensemble whose members include anything but bundled names and Hub ids.

    ``local``: the ensemble is pushed, and a local folder among its members would not load anywhere else (and
    would publish this machine's paths). Not ``local``: it was downloaded from the Hub or named by a public
    app's visitor, so a path among its members is someone else's, never read; the message is the same whether
    or not the path exists here, so that it tells nothing about this machine's files.
    """
    if config.architecture != ENSEMBLE:
        return
    members = config.model_args.get("members") or []
    bad = [str(m) for m in members if not isinstance(m, str) or _local_member(m, local)]
    if not bad:
        return
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    if local:
        raise ModelLoadError(
            f"{folder} is an ensemble whose member {bad[0]} is a local folder{more}; on the Hub an ensemble "
            "loads its members by bundled name or Hub id. Fix: push that member first "
            f"(`ferhub push {bad[0]} org/name`), list its Hub id among the members "
            "(ferhub.models.ensemble.make_ensemble) and save the ensemble again"
        )
    hub = _hub_snapshot(folder)
    shown = bad[0] if len(bad[0]) <= 200 else f"{bad[0][:200]}..."
    raise ModelLoadError(
        f"{f'Hub model {hub[0]!r}' if hub else folder} is an ensemble whose member {shown!r}{more} is not a "
        "bundled model or a Hub id; an ensemble downloaded from the Hub, or named where only bundled models "
        "and Hub ids are taken, loads its members by bundled name or Hub id only, never from a folder on "
        "this machine. Fix: its config.json must list its members' Hub ids (push each member first, then "
        "make the ensemble with ferhub.models.ensemble.make_ensemble)"
    )


def check_repo(folder: str | os.PathLike) -> list[str]:
    """Verify that ``folder`` is a complete, loadable ferhub repo; return the repo files it holds.

    Loads the model (strictly), parses ``eval_results.json`` and ``card.json``, requires a ``README.md`` and
    checks the ONNX graphs ``ferhub export`` wrote against the weights (:func:`ferhub.export.check_graphs`).
    An ensemble's members must be bundled names or Hub ids, which load on any machine.
    """
    from ferhub.export import check_graphs
    from ferhub.hub import card

    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file():
        raise ModelLoadError(
            f"{folder} is not a ferhub model repo (no {CONFIG_NAME}); write it with ferhub.hub.save"
        )
    _check_members(folder, read_config(folder))
    model = load_folder(folder)
    results_file.read(folder)
    card.read_card_context(folder)
    if not (folder / CARD_NAME).is_file():
        raise ModelLoadError(
            f"{folder / CARD_NAME} is missing; write it with ferhub.hub.render_card('{folder}')"
        )
    return [name for name in REPO_FILES if (folder / name).is_file()] + check_graphs(folder, model)
