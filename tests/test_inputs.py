"""Which files ``ferhub predict`` takes from the paths it is given (:mod:`ferhub.inputs`), and the names of
their results under ``--out-dir``: no image is read here, so these run in milliseconds."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from ferhub.fileio import Folding
from ferhub.inputs import scan


def touch(*paths: Path) -> None:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"not decoded here")


def names_by_file(found) -> dict[str, str]:
    return {f.as_posix(): name.as_posix() for f, name in zip(found.files, found.result_names())}


def test_result_names_of_same_named_folders_and_files_are_unique_and_stable(tmp_path, monkeypatch) -> None:
    """``predict a/photos b/photos --out-dir res`` (and two ``img1.jpg`` named directly) took the second for
    "already done": both results were named ``photos/img1.jpg``, or ``img1.jpg``."""
    monkeypatch.chdir(tmp_path)
    touch(Path("a/photos/img1.jpg"), Path("b/photos/img1.jpg"), Path("b/photos/sub/img2.png"))
    folders = names_by_file(scan(["a/photos", "b/photos"]))
    assert folders == {
        "a/photos/img1.jpg": "a/photos/img1.jpg",
        "b/photos/img1.jpg": "b/photos/img1.jpg",
        "b/photos/sub/img2.png": "b/photos/sub/img2.png",
    }
    files = names_by_file(scan(["a/photos/img1.jpg", "b/photos/img1.jpg"]))
    assert files == {"a/photos/img1.jpg": "a/photos/img1.jpg", "b/photos/img1.jpg": "b/photos/img1.jpg"}
    # a rerun finds its results whatever the order or spelling of the arguments
    assert names_by_file(scan(["b/photos", "a/photos"])) == folders
    assert set(names_by_file(scan([str(tmp_path / "b/photos"), "./a/../a/photos"])).values()) == set(
        folders.values()
    )
    # one folder: the paths inside it; one file: its name; folders side by side: prefixed by their names
    assert names_by_file(scan(["b/photos"]))["b/photos/sub/img2.png"] == "sub/img2.png"
    assert names_by_file(scan(["a/photos/img1.jpg"])) == {"a/photos/img1.jpg": "img1.jpg"}
    assert set(names_by_file(scan(["a", "b"])).values()) == set(folders.values())


def test_result_names_that_a_case_insensitive_file_system_would_merge_are_kept_apart(tmp_path) -> None:
    """``Case.jpg`` and ``case.jpg`` (or ``café`` composed and decomposed) are one file on macOS and Windows
    volumes: where the output folder's file system folds names so, one name of each such group keeps its
    name and the others get a tag from their exact name, the same at every run; other names are left as they
    are."""
    nfc, nfd = unicodedata.normalize("NFC", "café.jpg"), unicodedata.normalize("NFD", "café.jpg")
    touch(*(tmp_path / n for n in ["Case.jpg", "case.jpg", "other.jpg", nfc, nfd, "Sub/x.png", "sub/x.png"]))
    found = scan([tmp_path])
    folding = Folding(case=True, unicode=True)
    names = [n.as_posix() for n in found.result_names(folding)]
    assert len({unicodedata.normalize("NFC", n).casefold() for n in names}) == len(names) == 7
    tagged = [n for n in names if n.rpartition(".")[0][-9:-8] == "~"]
    assert len(tagged) == 3 and {"Case.jpg", "Sub/x.png", "other.jpg"} <= set(names)
    assert names == [n.as_posix() for n in scan([tmp_path]).result_names(folding)]


def test_linked_folders_are_scanned_once_each_and_loops_end(tmp_path) -> None:
    """A link to a photo folder was silently not entered ("no photo or video files found")."""
    touch(tmp_path / "store/trip/a.jpg", tmp_path / "photos/mine/b.jpg")
    photos = tmp_path / "photos"
    (photos / "trip").symlink_to(tmp_path / "store/trip")
    (photos / "again").symlink_to(tmp_path / "store/trip")  # the same folder linked twice: read once
    (photos / "mine/up").symlink_to(photos)  # a link back up the tree: ends there
    (photos / "a_mine").symlink_to(photos / "mine")  # a link to a folder the tree holds: the folder wins
    found = scan([photos])
    assert [f.relative_to(photos).as_posix() for f in found.files] == ["again/a.jpg", "mine/b.jpg"]
    assert "left out 3 link(s) to a folder read already" in found.skipped_message()


def test_hidden_files_and_folders_are_passed_over_unless_named(tmp_path) -> None:
    """Trash, thumbnail caches and macOS's ``._`` files were classified (or an error each), where evaluation
    and training pass over names starting with "." """
    photos = tmp_path / "photos"
    touch(photos / "IMG_0001.jpg", photos / "._IMG_0001.jpg", photos / ".thumbnails/IMG_0001.png")
    touch(photos / ".Trash-1000/files/deleted.jpg", photos / ".hidden.jpg")
    assert scan([photos]).files == [photos / "IMG_0001.jpg"]
    assert scan([photos]).skipped_message() is None
    # named on the command line: read
    assert scan([photos / ".hidden.jpg"]).files == [photos / ".hidden.jpg"]
    assert scan([photos / ".thumbnails"]).files == [photos / ".thumbnails/IMG_0001.png"]


def test_a_folder_past_the_path_limit_is_named_once_and_the_rest_scanned(tmp_path, monkeypatch) -> None:
    """A tree deeper than PATH_MAX stopped the whole scan ("File name too long"), photos at the top too."""
    monkeypatch.chdir(tmp_path)
    touch(Path("tree/top.jpg"))
    os.chdir("tree")
    for i in range(22):  # 22 levels of 200-byte names: 4.4 KB, past Linux's 4096
        os.mkdir(f"L{i:02d}" + "x" * 197)
        os.chdir(f"L{i:02d}" + "x" * 197)
    Path("bottom.jpg").write_bytes(b"")
    os.chdir(tmp_path)
    found = scan(["tree"])
    assert found.files == [Path("tree/top.jpg")]
    message = found.skipped_message()
    assert message.startswith("unreadable: left out 1 folder(s) or link(s) that could not be read: tree/L00")
    assert message.endswith("(File name too long)")


@pytest.mark.parametrize("loop", ["self", "pair"])
def test_a_link_loop_inside_a_folder_is_named_not_followed(tmp_path, loop) -> None:
    touch(tmp_path / "photos/a.jpg")
    if loop == "self":
        (tmp_path / "photos/x").symlink_to(tmp_path / "photos/x")
    else:
        (tmp_path / "photos/x").symlink_to(tmp_path / "photos/y")
        (tmp_path / "photos/y").symlink_to(tmp_path / "photos/x")
    found = scan([tmp_path / "photos"])
    assert found.files == [tmp_path / "photos/a.jpg"]
    assert "Too many levels of symbolic links" in found.skipped_message()
