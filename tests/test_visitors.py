"""What a public server's visitors may reach and are told (``ferhub.ui.visitors``), and how its disk is kept
(``ferhub.ui.scratch``), in-process; ``test_app_public.py`` attacks the served app."""

from __future__ import annotations

import collections
import io
import os
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from ferhub.hub import _remote
from ferhub.ui import scratch, visitors


@pytest.fixture(autouse=True)
def public(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A public server's defaults (local paths off), listing one local folder of the operator's."""
    monkeypatch.delenv(visitors.LOCAL_PATHS_SETTING, raising=False)
    visitors.configure(["ferhub/fer-mini-xception", "/srv/models/ours"])
    yield
    visitors.configure([])


def test_model_names_visitors_may_use() -> None:
    assert visitors.model_spec("ferhub/fer-mini-xception") == ("ferhub/fer-mini-xception", True)  # listed
    assert visitors.model_spec("/srv/models/ours") == ("/srv/models/ours", True)  # listed by the operator
    assert visitors.model_spec("facemood") == ("facemood", False)  # bundled, short name
    assert visitors.model_spec("org/model@v1.0") == ("org/model@v1.0", False)  # Hub only, never the disk
    for probe in ("/etc", "../models", "~/x", "a/b/c", "C:\\models", "..", ".", "org/../../etc", ""):
        with pytest.raises(ValueError, match="paths on the server are turned off") as e:
            visitors.model_spec(probe)
        assert probe not in str(e.value) or not probe  # the answer does not depend on the name
    for word in ("nope", "models"):  # a bare word is no path a visitor tried: whatever is on the disk
        with pytest.raises(ValueError, match=f"'{word}' is not a listed or bundled model, nor a Hub id") as e:
            visitors.model_spec(word)
        assert "turned off" not in str(e.value)


def test_the_operator_turns_local_paths_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(visitors.LOCAL_PATHS_SETTING, "1")
    visitors.configure([])
    assert visitors.model_spec(str(tmp_path)) == (str(tmp_path), True)


def test_hub_shaped_names_never_load_a_server_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'org/name' that also exists as a folder under the working directory is looked up on the Hub only."""
    from ferhub.hub import ModelLoadError, load, save
    from ferhub.models import create_model

    save(create_model("test_tiny"), tmp_path / "org" / "name")
    monkeypatch.chdir(tmp_path)
    assert load("org/name").config.architecture == "test_tiny"  # the library itself: the folder
    with pytest.raises(ModelLoadError, match="Hub model 'org/name' is not in the local cache"):
        load("org/name", local=False)
    with pytest.raises(ModelLoadError, match="is not a bundled model or a Hub id"):
        load("org/name/../name", local=False)


def test_messages_lose_server_paths_but_keep_file_names_and_urls() -> None:
    text = (
        "/tmp/gradio/3f2a/holiday.jpg: not an image; cache (/root/.cache/huggingface/hub) and "
        "'/srv/data/x.zip::happy/1.png', see https://huggingface.co/org/name and org/name"
    )
    assert (
        visitors.public_text(text) == "holiday.jpg: not an image; cache (hub) and 'x.zip::happy/1.png', see"
        " https://huggingface.co/org/name and org/name"
    )
    text = "set HTTPS_PROXY / HF_ENDPOINT, or read / to /tmp/x.jpg"  # a lone slash is no path
    assert visitors.public_text(text) == "set HTTPS_PROXY / HF_ENDPOINT, or read / to x.jpg"


def test_a_typed_model_is_named_as_typed_and_a_message_ends_as_a_sentence() -> None:
    # an absolute path keeps a sign that it is one once public_text has cut it to its last part
    shown = visitors.named("/srv/models/fer-mini-xception")
    assert shown == "'.../fer-mini-xception'" and visitors.public_text(shown) == shown
    assert [visitors.named(s) for s in ("../secret", "~/x", "org/name")] == [
        "'../secret'",
        "'~/x'",
        "'org/name'",
    ]
    assert len(visitors.named("/srv/" + "x" * 500)) <= 60
    assert visitors.sentence("allow them with X=1)") == "allow them with X=1)."
    assert visitors.sentence("Try again later. ") == "Try again later."
    assert visitors.sentence("Why?") == "Why?" and visitors.sentence("") == ""


def test_one_log_line_and_no_traceback_per_visitor_error(caplog: pytest.LogCaptureFixture) -> None:
    @visitors.action("demo")
    def handler(kind: str) -> str:
        if kind == "user":
            raise gr.Error("No face found in /tmp/x/photo.jpg\nTry another.", title="No face")
        if kind == "bug":
            raise KeyError("boom")
        return "ok"

    assert handler("fine") == "ok"
    with pytest.raises(gr.Error) as e:
        handler("user")
    assert e.value.message == "No face found in photo.jpg\nTry another." and e.value.title == "No face"
    assert e.value.print_exception is False
    with pytest.raises(gr.Error, match="Something went wrong on the server") as bug:
        handler("bug")
    assert bug.value.print_exception is False
    user, server = [r for r in caplog.records if r.name == "ferhub.app"]
    assert (
        user.getMessage() == "demo: No face: No face found in photo.jpg | Try another." and not user.exc_info
    )
    assert server.exc_info is not None  # a bug of the server's own keeps its traceback, in the log only


def _zip(path: Path, n: int) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(np.full((8, 8, 3), i, dtype=np.uint8)).save(buf, format="PNG")
            zf.writestr(f"{('happy', 'sad')[i % 2]}/{i}.png", buf.getvalue())
    return path


def test_datasets_visitors_may_evaluate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = visitors.open_dataset(str(_zip(tmp_path / "faces.zip", 6)), "", None)
    assert len(source) == 6 and source.labels == ("happy", "sad")
    monkeypatch.setenv("FERHUB_EVAL_MAX_IMAGES", "5")
    visitors.configure([])
    with pytest.raises(ValueError, match="this set has 6 images; this server evaluates at most 5"):
        visitors.open_dataset(str(tmp_path / "faces.zip"), "", None)
    for probe in ("/tmp", str(tmp_path), ".", "faces.zip", "data", "org/name@main", "a/b/c"):
        with pytest.raises(ValueError, match="uploaded zip of class folders or a Hub dataset id") as e:
            visitors.open_dataset(None, probe, None)
        assert str(tmp_path) not in str(e.value)
    # a Hub id: offline and not cached here (the test isolation's offline Hub)
    with pytest.raises(ValueError, match="Hub dataset 'org/faces' is not available on this server"):
        visitors.open_dataset(None, "org/faces", None)


def _snapshot(tmp_path: Path, repo: str, rows: list, readme: str | None = None) -> Path:
    """A visitor's Hub dataset as ``snapshot_download`` leaves it: ``datasets--org--name/snapshots/SHA``
    holding a parquet file of ``rows`` (``{"bytes", "path"}`` images, label happy or sad) and its card."""
    import datasets

    folder = tmp_path / "hub" / f"datasets--{repo.replace('/', '--')}" / "snapshots" / "abc123"
    (folder / "data").mkdir(parents=True)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["happy", "sad"])}
    )
    ds = datasets.Dataset.from_dict(
        {"image": rows, "label": [i % 2 for i in range(len(rows))]}, features=features
    )
    ds.to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    if readme is not None:
        (folder / "README.md").write_text(readme)
    return folder


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_a_visitors_hub_dataset_reads_only_its_own_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row holding a server path and no bytes was read from the server's disk (an image shown back, any
    other file told apart by its error); now only files of the dataset's own repo in the cache are read, and
    the set is named by its id, not the server's folder."""
    secret = tmp_path / "server" / "private.png"
    secret.parent.mkdir()
    secret.write_bytes(_png(200))
    rows = [{"bytes": _png(7), "path": None}, {"bytes": None, "path": str(secret)}]
    folder = _snapshot(tmp_path, "evil/rows", [*rows, {"bytes": None, "path": "/etc/hostname"}])
    monkeypatch.setattr(visitors, "_hub_dataset", lambda repo_id: folder)
    source = visitors.open_dataset(None, "evil/rows", "test")
    assert source.name == "evil/rows" and len(source) == 3
    assert np.asarray(source.image(0)).max() == 7
    for row in (1, 2):
        with pytest.raises(Exception, match=r"no image bytes, and the file it names .* is not among") as e:
            source.image(row)
        assert str(tmp_path) not in str(e.value) and source.path_of(row) == f"evil/rows[test][{row}]"
    blob = tmp_path / "2" / "hub" / "datasets--org--mine" / "blobs" / "face.png"  # a file of the repo itself
    blob.parent.mkdir(parents=True)
    blob.write_bytes(_png(9))
    mine = _snapshot(tmp_path / "2", "org/mine", [{"bytes": None, "path": str(blob)}])
    monkeypatch.setattr(visitors, "_hub_dataset", lambda repo_id: mine)
    assert np.asarray(visitors.open_dataset(None, "org/mine", "test").image(0)).max() == 9
    # the links to its files live as long as the set is read (not the outputs' age: a long evaluation lost
    # them part-way to a sweep), then go
    import gc
    import tempfile

    made: list[Path] = []
    real_mkdtemp = tempfile.mkdtemp
    monkeypatch.setattr(
        visitors.tempfile, "mkdtemp", lambda **kw: made.append(Path(real_mkdtemp(**kw))) or str(made[-1])
    )
    source = visitors.open_dataset(None, "org/mine", "test")
    (links,) = made
    assert links.is_dir() and not links.is_relative_to(scratch.outputs_dir())
    del source
    gc.collect()
    assert not links.exists()
    empty = tmp_path / "4" / "hub" / "datasets--org--empty" / "snapshots" / "abc"
    empty.mkdir(parents=True)
    (empty / "notes.txt").write_text("no data here")
    monkeypatch.setattr(visitors, "_hub_dataset", lambda repo_id: empty)
    with pytest.raises(Exception):  # noqa: B017 - whatever open_source says of a set without data
        visitors.open_dataset(None, "org/empty", "test")
    assert not made[-1].exists()  # a set that could not be opened leaves no links behind
    monkeypatch.setattr(visitors, "_hub_dataset", lambda repo_id: mine)
    monkeypatch.setattr(Path, "symlink_to", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError, match="No space left"):
        visitors.open_dataset(None, "org/mine", "test")
    assert not made[-1].exists()  # nor does a disk that filled while the links were made


@pytest.mark.parametrize("where", ["README.md", ".huggingface.yaml"])
@pytest.mark.parametrize(
    "pattern", ["{server}/*.parquet", "file:{server}/*.parquet", "../../../../server/*.parquet"]
)
def test_a_visitors_dataset_card_cannot_point_at_other_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, pattern: str
) -> None:
    """A card's (or ``.huggingface.yaml``'s) ``data_files`` had datasets load the server's own files as the
    visitor's set (``file:`` and a ``.huggingface.yaml`` got past a check of the card's patterns): only the
    dataset's own data files are opened, whatever its configs say."""
    server = tmp_path / "server"
    _snapshot(tmp_path / "srv", "x/y", [{"bytes": _png(i), "path": None} for i in range(5)])
    server.mkdir()
    for f in (tmp_path / "srv").rglob("*.parquet"):
        f.rename(server / f.name)
    files = pattern.format(server=server)
    card = f'configs:\n- config_name: default\n  data_files:\n  - split: test\n    path: "{files}"\n'
    folder = _snapshot(tmp_path, "evil/card", [{"bytes": _png(1), "path": None}])
    (folder / where).write_text(f"---\n{card}---\n" if where == "README.md" else card)
    monkeypatch.setattr(visitors, "_hub_dataset", lambda repo_id: folder)
    assert len(visitors.open_dataset(None, "evil/card", "test")) == 1  # its own row, not the server's five


def test_a_visitors_saved_dataset_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``save_to_disk`` layout's ``state.json`` names its arrow files by path (any arrow file here)."""
    folder = _snapshot(tmp_path, "evil/saved", [{"bytes": _png(1), "path": None}])
    (folder / "state.json").write_text('{"_data_files": [{"filename": "/srv/other.arrow"}]}')
    monkeypatch.setattr(visitors, "_hub_dataset", lambda repo_id: folder)
    with pytest.raises(ValueError, match="is a save_to_disk folder; this server evaluates"):
        visitors.open_dataset(None, "evil/saved", "test")


def test_a_hub_dataset_over_the_download_cap_is_refused_before_download(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import huggingface_hub
    from huggingface_hub import constants

    asked = []

    def dataset_info(self, repo_id: str, **kwargs) -> SimpleNamespace:
        asked.append((repo_id, kwargs))
        return SimpleNamespace(siblings=[SimpleNamespace(size=150 << 20), SimpleNamespace(size=100 << 20)])

    def snapshot_download(*args, **kwargs):
        raise AssertionError("downloaded despite the cap")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(_remote, "hub_unreachable", lambda endpoint: None)  # the probe passes
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", dataset_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    with pytest.raises(ValueError, match="holds 250 MB of files; this server downloads at most 200 MB"):
        visitors.open_dataset(None, "org/huge", None)
    assert asked == [("org/huge", {"files_metadata": True, "timeout": 10})]


def test_a_hub_dataset_with_the_hub_down_is_a_visitor_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online, but the Hub does not answer: no request that would hang, and the visitor is told, not given a
    server error; a network error after a passing probe reads the same."""
    import httpx
    import huggingface_hub
    from huggingface_hub import constants

    def dataset_info(self, repo_id: str, **kwargs) -> None:
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", dataset_info)
    monkeypatch.setattr(
        _remote, "hub_unreachable", lambda endpoint: "the Hub cannot be reached (huggingface.co:443: refused)"
    )
    down = "Hub dataset 'org/faces' is not available on this server (it cannot reach the Hugging Face Hub now"
    with pytest.raises(ValueError, match=re.escape(down)):
        visitors.open_dataset(None, "org/faces", None)  # the probe failed: the cache only, no dataset_info
    monkeypatch.setattr(_remote, "hub_unreachable", lambda endpoint: None)
    with pytest.raises(ValueError, match=re.escape(down)):
        visitors.open_dataset(None, "org/faces", None)  # dataset_info's ConnectError


def test_sweep_by_age_then_size_never_a_fresh_file(tmp_path: Path) -> None:
    now = time.time()
    for i, (age, size) in enumerate([(900, 100), (500, 300), (300, 300), (100, 300), (1, 300)]):
        path = tmp_path / f"d{i}" / f"f{i}.bin"
        path.parent.mkdir()
        path.write_bytes(bytes(size))
        os.utime(path, (now - age, now - age))
        os.utime(path.parent, (now - 120, now - 120))
    # f0 is too old; then the oldest go until 700 bytes remain, but f4 (1 s) is too fresh to take
    deleted = scratch.sweep_folder(tmp_path, max_age=600, cap=700, min_age=10, now=now)
    assert deleted == 3 and sorted(p.name for p in tmp_path.rglob("*.bin")) == ["f3.bin", "f4.bin"]
    assert scratch.sweep_folder(tmp_path, max_age=600, cap=0, min_age=10, now=now) == 1  # f3, not f4
    # emptied folders go once nothing has been written in them for a minute (Gradio may be about to)
    scratch.sweep_folder(tmp_path, max_age=600, cap=10**6, now=now + 61)
    assert [p.name for p in tmp_path.iterdir()] == ["d4"]


def test_gradio_files_expire_while_requests_add_more(tmp_path: Path) -> None:
    import threading

    with gr.Blocks() as demo:
        image = gr.Image()
    served = set()
    demo.temp_file_sets.append(served)
    for name in ("old.jpg", "example.jpg"):
        (tmp_path / name).write_bytes(b"x")
        served.add(str(tmp_path / name))
    image.keep_in_cache.add(str(tmp_path / "example.jpg"))  # a cached example: Gradio keeps it
    assert scratch.expire_gradio_files(demo, max_age=600) == 0  # young
    assert scratch.expire_gradio_files(demo, max_age=600, now=time.time() + 601) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["example.jpg"] and served == {
        str(tmp_path / "example.jpg")
    }

    # request threads add files while the sweeper walks the set (Gradio's own walk dies of this); a bounded
    # number, so the set stays small enough to walk many times
    def requests() -> None:
        for i in range(20_000):
            served.add(str(tmp_path / f"gone-{i}.jpg"))

    adder = threading.Thread(target=requests)
    adder.start()
    sweeps = 0
    while adder.is_alive() or sweeps < 3:
        scratch.expire_gradio_files(demo, max_age=600, now=time.time() + 601)
        sweeps += 1
    adder.join()
    scratch.expire_gradio_files(demo, max_age=600, now=time.time() + 601)
    assert served == {str(tmp_path / "example.jpg")}
    assert [p.name for p in tmp_path.iterdir()] == ["example.jpg"]


def test_outputs_are_served_by_gradio_as_they_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ferhub's outputs live inside Gradio's cache folder, so Gradio serves a returned file from where it is
    (no hash, no copy); the Gradio folder's own sweep leaves them, and their folder, to theirs."""
    import asyncio

    from gradio import processing_utils

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setattr(scratch, "_outputs", None)
    out = scratch.output_path(".jpg")
    assert out.parent.parent == tmp_path / "gradio"
    Image.new("RGB", (8, 8)).save(out)
    image = gr.Image(type="filepath")
    payload = image.postprocess(str(out)).model_dump()
    served = asyncio.run(processing_utils.async_move_files_to_cache(payload, image, postprocess=True))
    assert served["path"] == str(out) and served["url"].endswith(str(out))
    files = [p for p in (tmp_path / "gradio").rglob("*") if p.is_file()]
    assert sorted(files) == sorted([out, out.parent / scratch.LOCK_NAME])  # no copy beside it (held folder)

    old = time.time() - 3600
    os.utime(out, (old, old))
    os.utime(out.parent, (old, old))
    stray = tmp_path / "gradio" / "abc" / "upload.jpg"
    stray.parent.mkdir()
    stray.write_bytes(bytes(100))
    deleted = scratch.sweep_folder(tmp_path / "gradio", max_age=None, cap=0, skip=out.parent)
    assert deleted == 1 and not stray.exists() and out.exists()
    out.unlink()
    scratch.sweep_folder(tmp_path / "gradio", max_age=None, cap=0, skip=out.parent)
    assert out.parent.is_dir()  # empty and old, but a handler may be about to write there


def test_outputs_folder_is_made_on_first_use_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERHUB_CACHE_MAX_AGE_S", "600")
    first = scratch.output_path(".json")
    assert first.parent == scratch.outputs_dir() and first.parent.name.startswith("ferhub-app-")
    work = scratch.work_dir("ferhub-eval-")
    assert work.parent == scratch.outputs_dir() and work.is_dir()
    assert scratch.delete_cache() == (60, 600)


def test_public_text_keeps_double_slashes_and_closing_tags() -> None:
    """Only server paths are cut: git's "'//'" and a closing tag ("</script>") in a visitor's own text were
    taken for absolute paths ("'(server path)'", "<script>")."""
    texts = [
        "'a/b@../../../x' is not a branch, tag or commit name (git refuses '..', '//', spaces and ~^:?*[\\ in"
        " them)",
        "Cannot load model 'a/b@<script>alert(1)</script>'",
        "class names ['<b>neutral</b>']",
        "say '/' or '//' or //",
    ]
    for text in texts:
        assert visitors.public_text(text) == text
    assert visitors.public_text("'/srv/data//secret/x.jpg' and </b>/tmp/y.png") == "'x.jpg' and </b>y.png"


def test_page_inputs_are_kept_by_page_and_tab(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a page holds is kept per page and tab (a report from the Video tab is no reason to stop the same
    page's Classify run, nor the other way round), for the last pages only; an API caller's run (no page)
    never stops so."""
    page: dict[str, str | None] = {"id": "page-1"}
    monkeypatch.setattr(visitors, "_session", lambda: page["id"])
    monkeypatch.setattr(visitors, "_held", collections.OrderedDict())
    monkeypatch.setattr(visitors, "event_queued_at", lambda: None)
    photos, clips = visitors.PageInputs("classify"), visitors.PageInputs("video")
    photo, clip = ("a.jpg", "model", "Grad-CAM"), ("a.mp4", 5.0)
    # the photo's own report, then another clip: the Video run stops, the Classify run does not
    photo_run, clip_run = photos.moved_on(*photo), clips.moved_on(*clip)
    time.sleep(0.001)  # (reports after the runs were asked for)
    photos.put(*photo)
    clips.put("b.mp4", 5.0)
    assert (photo_run(), clip_run()) == (False, True)
    # and the other way round: the clip's own report, then another photo
    photo_run, clip_run = photos.moved_on(*photo), clips.moved_on(*clip)
    time.sleep(0.001)
    clips.put(*clip)
    photos.put("b.jpg", "model", "Grad-CAM")
    assert (photo_run(), clip_run()) == (True, False)
    photo_run = photos.moved_on(*photo)
    time.sleep(0.001)
    photos.put({"path": "a.jpg", "orig_name": "a.jpg"}, "model", "Grad-CAM")  # an upload's payload: its file
    assert not photo_run()
    photos.put(None, "model", "Grad-CAM")  # the photo removed
    assert photo_run()
    page["id"] = None  # an API caller: nothing kept, and its runs never stop
    api_run = photos.moved_on(*photo)
    photos.put("b.jpg", "model", "Grad-CAM")
    assert not api_run() and list(visitors._held) == [("page-1", "video"), ("page-1", "classify")]
    monkeypatch.setattr(visitors, "PAGE_INPUTS_KEPT", 2)  # the pair reported longest ago is forgotten first
    page["id"] = "page-2"
    clips.put("c.mp4", 5.0)
    assert list(visitors._held) == [("page-1", "classify"), ("page-2", "video")]
