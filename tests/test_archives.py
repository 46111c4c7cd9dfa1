"""Zips from strangers (``ferhub.archives``): real zip bombs made here are refused before anything inflates,
members stream under caps, and the data loader reads zips only through it."""

from __future__ import annotations

import io
import resource
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from bombs import write_bomb
from PIL import Image

from ferhub.archives import ArchiveLimits, ArchiveRefused, SafeZip
from ferhub.data import DataSourceError, ZipSource, open_source

MiB = 1 << 20


def png(seed: int, size: int = 64) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def gib_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 MB zip holding one 1 GiB member inside a class folder, as the issue's attack used."""
    return write_bomb(
        tmp_path_factory.mktemp("bombs") / "faces.zip", [("happy/0.png", png(0)), ("happy/1.png", 1024)]
    )


def test_a_gib_member_is_refused_before_anything_inflates(gib_bomb: Path) -> None:
    assert gib_bomb.stat().st_size < 8 * MiB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(
        ArchiveRefused, match=r"happy/1\.png' inflates to 1024\.0 MiB; the limit for one file"
    ):
        SafeZip(gib_bomb)
    with pytest.raises(DataSourceError, match=r"inflates to 1024\.0 MiB"):
        open_source(gib_bomb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200 * 1024


def test_ratio_entry_count_and_total_caps(tmp_path: Path) -> None:
    # under the member cap, but 1000x smaller packed
    ratio = write_bomb(tmp_path / "ratio.zip", [("sad/big.bmp", 4)])
    with pytest.raises(ArchiveRefused, match=r"expands [\d,]+x \(limit 100x\): it looks like a zip bomb"):
        SafeZip(ratio)
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(101):
            zf.writestr(f"happy/{i}.png", b"x")
    with pytest.raises(ArchiveRefused, match="holds 101 entries; the limit here is 100"):
        SafeZip(many, ArchiveLimits(max_members=100))
    assert len(SafeZip(many, ArchiveLimits(max_members=101)).names()) == 101
    total = tmp_path / "total.zip"
    with zipfile.ZipFile(total, "w") as zf:
        for i in range(3):
            zf.writestr(f"happy/{i}.png", png(i, 128))
    with pytest.raises(ArchiveRefused, match="in all; the limit here is"):
        SafeZip(total, ArchiveLimits(max_total_bytes=100_000))
    # small members are never refused for their ratio: a blank bitmap compresses far, harmlessly
    blank = tmp_path / "blank.zip"
    with zipfile.ZipFile(blank, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("neutral/0.bmp", bytes(200_000))
    assert SafeZip(blank).read("neutral/0.bmp") == bytes(200_000)


@pytest.mark.parametrize("entries", [6000, 70_000])  # the plain end record; the zip64 one (over 65,535)
def test_the_entry_count_is_refused_before_the_directory_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: int
) -> None:
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w", zipfile.ZIP_STORED) as zf:
        for i in range(entries):
            zf.writestr(f"happy/{i}.png", b"x")

    def parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the central directory was parsed before the count was checked")

    monkeypatch.setattr(zipfile, "ZipFile", parsing)
    with pytest.raises(ArchiveRefused, match=f"holds {entries:,} entries; the limit here is 5,000"):
        SafeZip(many, ArchiveLimits(max_members=5000))


def test_a_lying_header_is_stopped_at_its_declared_size(tmp_path: Path) -> None:
    """A central directory that declares 1 KiB for a member holding 8 MiB: reading stops at 1 KiB and
    fails."""
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("happy/0.png", bytes(8 * MiB))
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    data[central + 24 : central + 28] = struct.pack("<I", 1024)  # uncompressed size in the central directory
    path.write_bytes(bytes(data))
    z = SafeZip(path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ArchiveRefused, match="cannot be read"):
        z.read("happy/0.png")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 64 * 1024


def test_not_a_zip_encrypted_and_unknown_members(tmp_path: Path) -> None:
    text = tmp_path / "notes.zip"
    text.write_text("not a zip")
    with pytest.raises(ArchiveRefused, match=r"notes\.zip is not a readable zip file"):
        SafeZip(text)
    path = tmp_path / "locked.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("happy/0.png", b"x")
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the "encrypted" flag bit
        at = data.index(signature) + offset
        data[at] |= 1
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveRefused, match="is encrypted; zip the images without a password"):
        SafeZip(path)
    with pytest.raises(KeyError, match="has no member 'x" + "y" * 76 + r"\.\.\.'"):
        SafeZip(_one_member(tmp_path)).read("x" + "y" * 500)


def _one_member(tmp_path: Path) -> Path:
    path = tmp_path / "one.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("happy/0.png", png(1))
    return path


def test_zip_source_reads_through_the_caps(tmp_path: Path) -> None:
    path = tmp_path / "faces.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(4):
            zf.writestr(f"set/{('happy', 'sad')[i % 2]}/{i}.png", png(i))
    source = ZipSource(path)
    assert source.labels == ("happy", "sad") and len(source) == 4
    image, label = source[1]
    assert image.size == (64, 64) and label == 0
    with pytest.raises(DataSourceError, match="holds 4 entries; the limit here is 3"):
        ZipSource(path, limits=ArchiveLimits(max_members=3))
    import pickle

    copy = pickle.loads(pickle.dumps(source))  # DataLoader workers get a copy that reopens the file
    assert np.array_equal(np.asarray(copy.image(2)), np.asarray(source.image(2)))
