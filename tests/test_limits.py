"""Full disks, file-size and memory limits, read-only caches and closed standard streams: a write the disk
takes only part of is an error naming the file the user knows, caches fall back to working without being
written, one photo that runs out of memory is its own error, and a closed stdout or stderr neither ends a
command as a bug nor puts an error line among its results."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from ferhub import _onnx, cli, create_model, fileio
from ferhub.cli import main
from ferhub.faces import Face

resource = pytest.importorskip("resource")  # POSIX: the file-size limit (ulimit -f)

EXAMPLES = Path(__file__).resolve().parent.parent / "ferhub" / "assets" / "examples"


@contextlib.contextmanager
def file_size_limit(nbytes: int) -> Iterator[None]:
    """``ulimit -f`` for this process while the block runs: a write past ``nbytes`` of a file is cut short,
    then fails with EFBIG (Python ignores SIGXFSZ), as on a nearly full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def noise(size: int = 160) -> Image.Image:
    """An RGB image whose JPEG (quality 90) takes ~25 KB: one write of Pillow's 64 KiB encoder buffer."""
    rng = np.random.default_rng(0)
    return Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def predictor():
    from ferhub.hub import DEFAULT_MODEL
    from ferhub.predict import Predictor

    return Predictor(DEFAULT_MODEL)


# -- 1: an image cut short is an error, not a file reported written ----------------------------------------
def test_an_overlay_cut_short_is_not_written(tmp_path: Path, predictor) -> None:
    from ferhub.saliency import write_overlays

    photo = tmp_path / "astronaut.jpg"
    Image.open(EXAMPLES / "astronaut.jpg").resize((320, 320)).save(photo, quality=95)
    results = predictor.predict([str(photo)])
    assert results[0].faces
    failed: list[tuple[Path, OSError]] = []
    out = tmp_path / "out"
    out.mkdir()
    with file_size_limit(16 << 10):  # the photo's overlay (~35 KB JPEG) fits Pillow's one buffer write
        written = write_overlays(
            predictor, results, method="Grad-CAM", out_dir=out, on_error=lambda p, e: failed.append((p, e))
        )
    assert written == []
    assert {p.name for p, _ in failed} == {"astronaut_face1_gradcam.png", "astronaut_gradcam.jpg"}
    assert all(e.errno == errno.EFBIG for _, e in failed)
    assert os.listdir(out) == []  # nothing half-written, no temporary left


def test_the_apps_image_cut_short_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ferhub.ui import scratch, state

    monkeypatch.setattr(scratch, "outputs_dir", lambda: tmp_path)
    with file_size_limit(16 << 10), pytest.raises(OSError) as e:
        state.save_image(noise(), "faces")
    assert e.value.errno == errno.EFBIG and Path(e.value.filename).parent == tmp_path
    assert os.listdir(tmp_path) == []  # never served: the visitor gets an error instead


@contextlib.contextmanager
def counted(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Iterator[dict[str, int]]:
    """How often ``folder`` is listed and a file fsynced while the block runs."""
    calls = {"listed": 0, "fsynced": 0}
    listdir, fsync = os.listdir, os.fsync

    def counting_listdir(path: str | os.PathLike = ".") -> list[str]:
        calls["listed"] += Path(path) == folder
        return listdir(path)

    def counting_fsync(fd: int) -> None:
        calls["fsynced"] += 1
        fsync(fd)

    monkeypatch.setattr(os, "listdir", counting_listdir)
    monkeypatch.setattr(os, "fsync", counting_fsync)
    yield calls
    monkeypatch.undo()


def test_overlays_list_their_folder_once_a_run(monkeypatch, tmp_path: Path, predictor) -> None:
    """Each overlay's write listed the whole --out folder for leftovers and fsynced: thousands of photos'
    overlays into one folder took 73 s for 1.2 s of writing, more for each photo."""
    from ferhub.saliency import write_overlays

    photos = []
    for name in ("a", "b"):
        photos.append(tmp_path / f"{name}.jpg")
        Image.open(EXAMPLES / "astronaut.jpg").resize((240, 240)).save(photos[-1])
    results = predictor.predict([str(p) for p in photos])
    out = tmp_path / "out"
    out.mkdir()
    dead = 2**22 + 12345  # past Linux's pid_max: no process
    stale = out / f".old_gradcam.jpg.{dead}-0badcafe.tmp"  # an earlier run killed mid-write
    others = [out / f".results.json.{dead}-0badcafe.tmp", out / f".a_gradcam.jpg.{os.getpid()}-0badcafe.tmp"]
    for temp in (stale, *others):
        temp.write_bytes(b"half")
    taken: set[str] = set()
    with counted(monkeypatch, out) as calls:
        written = [
            p
            for r in results
            for p in write_overlays(predictor, [r], method="gradcam", out_dir=out, taken=taken)
        ]
    assert sorted(p.name for p in written) == [
        "a_face1_gradcam.png", "a_gradcam.jpg", "b_face1_gradcam.png", "b_gradcam.jpg"
    ]  # fmt: skip
    assert calls == {"listed": 1, "fsynced": 0}
    assert not stale.exists() and all(t.exists() for t in others)  # not an overlay's, or its writer runs


def test_the_apps_image_lists_no_folder_and_syncs_nothing(monkeypatch, tmp_path: Path) -> None:
    """A fresh name in a scratch folder: no leftovers to look for, nothing worth an fsync (+3 to +11 ms a
    served image with the folder's 10 minutes of outputs)."""
    from ferhub.ui import scratch, state

    monkeypatch.setattr(scratch, "outputs_dir", lambda: tmp_path)
    with counted(monkeypatch, tmp_path) as calls:
        saved = [state.save_image(noise(), "faces"), state.save_image(noise(), "faces", lossless=True)]
    assert calls == {"listed": 0, "fsynced": 0}
    assert [Image.open(p).size for p in saved] == [(160, 160)] * 2
    assert sorted(os.listdir(tmp_path)) == sorted(Path(p).name for p in saved)  # no temporary left


def test_a_write_without_sweep_or_fsync_is_still_whole_or_nothing(tmp_path: Path) -> None:
    target = tmp_path / "x.jpg"
    with file_size_limit(16 << 10), pytest.raises(OSError) as e:
        fileio.atomic_save_image(target, noise(), quality=90, durable=False, sweep=False)
    assert e.value.errno == errno.EFBIG and e.value.filename == str(target)
    assert os.listdir(tmp_path) == []


# -- 2 and 9: errors of a write name the file the user knows ------------------------------------------------
def test_safetensors_on_a_full_disk_is_an_oserror_naming_the_file(tmp_path: Path) -> None:
    from ferhub.hub._weights import write_weights

    target = tmp_path / "model.safetensors"
    with file_size_limit(2048), pytest.raises(OSError) as e:  # safetensors' own SafetensorError before
        write_weights(create_model("test_tiny"), target)
    assert e.value.errno == errno.EFBIG and e.value.filename == str(target)
    assert os.listdir(tmp_path) == []
    code, message = cli.describe(e.value)
    assert code == 1 and message.startswith(f"the file is too large to write: {target} (")


def test_writing_names_its_file() -> None:
    from safetensors import SafetensorError

    with pytest.raises(OSError) as e, fileio.writing("/out/x.json"):
        raise OSError(errno.ENOSPC, "No space left on device")  # write() names no file
    assert e.value.filename == "/out/x.json" and isinstance(e.value, OSError)
    with pytest.raises(OSError) as e, fileio.writing("/out/x.json"):
        raise OSError(errno.EDQUOT, "Disk quota exceeded", "/out/.x.json.1-ab.tmp", None, "/out/y")
    assert (e.value.filename, e.value.filename2) == ("/out/x.json", None)
    with pytest.raises(FileNotFoundError) as e, fileio.writing("/out/x.json"):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "/in/a")  # not the write's
    assert e.value.filename == "/in/a"
    with pytest.raises(OSError) as e, fileio.writing("/out/m.safetensors"):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    assert (e.value.errno, e.value.filename) == (errno.ENOSPC, "/out/m.safetensors")
    with pytest.raises(ValueError), fileio.writing("/out/x"):
        raise ValueError("no OS error here")


def test_writing_names_its_file_only_for_its_own_writes() -> None:
    """A full disk on another file of the block (ONNX Runtime's quantiser in TMPDIR) named ``--out``'s file,
    on a disk with room: the user looked at the wrong disk."""
    elsewhere = "/tmp/ort.quant.x1/augmented_model.onnx"
    with pytest.raises(OSError) as e, fileio.writing("/out/model.int8.onnx"):
        raise OSError(errno.ENOSPC, "No space left on device", elsewhere)
    assert e.value.filename == elsewhere
    with pytest.raises(OSError) as e, fileio.writing("/out/model.int8.onnx", unnamed=False):
        raise OSError(errno.ENOSPC, "No space left on device")  # write() in TMPDIR, or in the stage?
    assert e.value.filename is None
    assert cli.describe(e.value)[1].startswith("the disk is full. Fix")
    # the stand-ins the user never sees still name the file they know
    stand_ins = {
        "/out/model.onnx": "/out/.ferhub-export-12-ab/model.onnx",  # export's stage
        "/m/repo/config.json": "/m/.repo.tmp-3f2a/config.json",  # ferhub.save's stage
        "/m/repo": "/m/.repo.tmp-3f2a",  # ... the stage folder itself
        "/m/repo/README.md": "/m/.repo.tmp-3f2a/.README.md.12-ab34cd56.tmp",
    }
    for path, stand_in in stand_ins.items():
        with pytest.raises(OSError) as e, fileio.writing(path):
            raise OSError(errno.ENOSPC, "No space left on device", stand_in)
        assert e.value.filename == path, stand_in


def _crops(config: object) -> np.ndarray:
    """A batch of the model's input (what ``export.real_face_crops`` gives, without LFW)."""
    size, channels = config.input_size, config.channels  # type: ignore[attr-defined]
    return np.random.default_rng(0).random((4, channels, size, size)).astype(np.float32)


def test_int8_export_with_a_full_tmpdir_names_no_file_of_out(monkeypatch, tmp_path: Path) -> None:
    from ferhub import export
    from ferhub.hub import DEFAULT_MODEL

    def full(*args: object) -> float:  # ONNX Runtime's write() into a full TMPDIR names no file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export, "quantize_problem", lambda *args: None)
    monkeypatch.setattr(export, "real_face_crops", lambda config, **kwargs: _crops(config))
    monkeypatch.setattr(export, "_quantize", full)
    with pytest.raises(OSError) as e:
        export.export_onnx(DEFAULT_MODEL, tmp_path / "exp", quantize="int8")
    assert e.value.filename is None and "exp" not in cli.describe(e.value)[1]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "the disk is full. Fix"),
        # shutil.copyfile names its source first: the destination is where the disk is full
        (OSError(errno.ENOSPC, "No space left on device", "/pkg/m", None, "/out/m"), "full: /out/m."),
        (OSError(errno.EFBIG, "File too large", "/out/report.html"), "too large to write: /out/report.html"),
        (OSError(errno.EDQUOT, "Disk quota exceeded", "/out/a"), "the disk quota is used up: /out/a"),
        (type("SafetensorError", (Exception,), {})("I/O error: No space left (os error 28)"), "full"),
    ],
)  # fmt: skip
def test_a_full_disk_is_one_line_naming_the_file_written(error: BaseException, expected: str) -> None:
    code, message = cli.describe(error)
    assert code == 1 and expected in message and "bug" not in message


def test_export_on_a_full_disk_names_the_destination(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import shutil

    from ferhub import export
    from ferhub.hub import DEFAULT_MODEL

    def full(source: Path, target: Path) -> None:  # as shutil's sendfile copy raises it
        raise OSError(errno.ENOSPC, "No space left on device", str(source), None, str(target))

    monkeypatch.setattr(shutil, "copyfile", full)
    out = tmp_path / "exp"
    with pytest.raises(OSError) as e:
        export.export_onnx(DEFAULT_MODEL, out)
    assert Path(e.value.filename).parent == out and e.value.filename2 is None
    assert f"the disk is full: {out}{os.sep}" in cli.describe(e.value)[1]


# -- 3: a damaged graph in a read-only ONNX cache -----------------------------------------------------------
def test_a_damaged_graph_that_cannot_be_removed_is_built_in_memory(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_onnx, "_MEMORY", {})
    monkeypatch.setattr(_onnx, "_PASSED", {})
    model = create_model("test_tiny").eval()
    _onnx.OnnxClassifier(model)
    graph = _onnx.cache_dir() / f"{_onnx.classifier_key(model)}.onnx"
    graph.write_bytes(graph.read_bytes()[:1000])  # cut short, as a half-copied HF_HOME
    monkeypatch.setattr(_onnx, "_MEMORY", {})  # as in a new process
    monkeypatch.setattr(_onnx, "_PASSED", {})
    cache = _onnx.cache_dir()

    unlink = Path.unlink

    def read_only(self: Path, missing_ok: bool = False) -> None:
        if self.parent == cache:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        unlink(self, missing_ok=missing_ok)

    def unwritable(path: Path, data: bytes, **_: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(Path, "unlink", read_only)
    monkeypatch.setattr(_onnx, "atomic_write_bytes", unwritable)
    with caplog.at_level(logging.WARNING, logger="ferhub._onnx"):
        runner = _onnx.OnnxClassifier(model)  # read the damaged file again and raised ExportError before
    assert "cannot be removed (Read-only file system); building it in memory" in caplog.text
    size, channels = model.config.input_size, model.config.channels
    batch = np.random.default_rng(1).standard_normal((2, channels, size, size)).astype(np.float32)
    assert np.isfinite(runner(batch)).all()
    assert len(graph.read_bytes()) == 1000  # left as it was: nothing claims it was built again there


# -- 4: closed stdout and stderr ----------------------------------------------------------------------------
def test_a_closed_stdout_is_no_bug(monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    # results in files: the log goes nowhere, as print() sends it; flushing None raised
    assert main(["predict", str(EXAMPLES / "astronaut.jpg"), "--out-dir", str(tmp_path / "res")]) == 0
    assert os.listdir(tmp_path / "res") == ["astronaut.jpg.json"]
    assert "internal error" not in capsys.readouterr().err
    # predict's results would be lost after all the work: refused first, as a refused output is
    assert main(["predict", str(EXAMPLES / "astronaut.jpg")]) == 2
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert "stdout is closed" in err and "--out-dir" in err and "bug" not in err


@pytest.mark.parametrize(
    ("args", "keep"),
    [
        (["models"], "send stdout to a file"),
        (["zoo", "list"], "send stdout to a file"),
        (["compare", "m1", "m2", "--data", "nowhere"], "give --json FILE, or send stdout to a file"),
        (["train", "--print-recipe"], "send stdout to a file"),
    ],
)
def test_a_command_whose_results_are_stdout_refuses_a_closed_one(monkeypatch, capsys, args, keep) -> None:
    """``compare`` without --out evaluated every model, lost its table and exited 0."""
    monkeypatch.setattr(sys, "stdout", None)
    assert main(args) == 2
    monkeypatch.undo()
    expected = f"ferhub {args[0]}: stdout is closed: the results have nowhere to go; {keep}\n"
    assert capsys.readouterr().err == expected


def test_a_command_with_result_files_takes_a_closed_stdout(monkeypatch) -> None:
    from ferhub.commands import compare, predict, train, zoo

    monkeypatch.setattr(sys, "stdout", None)
    for module, argv in [
        (compare, ["compare", "m1", "m2", "--data", "d", "--json", "c.json"]),
        (compare, ["compare", "m1", "m2", "--data", "d", "--out", "c.html"]),
        (predict, ["predict", "p.jpg", "--out-dir", "res"]),
        (train, ["train", "--data", "faces"]),
        (zoo, ["zoo", "import", "facemood"]),
    ]:
        assert cli._stdout_refused(module, cli.build_parser(argv).parse_args(argv)) is None, argv


def test_a_closed_stderr_puts_nothing_in_the_results(monkeypatch, capsys, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "stderr", None)
    assert main(["predict", str(tmp_path)]) == 2  # "no photo or video files found in ...": one line
    assert sys.stderr is None  # given back as it was
    monkeypatch.undo()
    assert capsys.readouterr().out == ""  # print(file=None) wrote the error line to stdout, the results


@pytest.mark.slow
def test_closed_streams_in_a_real_process(tmp_path: Path) -> None:
    def ferhub(args: str) -> subprocess.CompletedProcess:
        command = f"exec {sys.executable} -m ferhub {args}"
        return subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)

    closed_stdout = ferhub("models >&-")  # its list would be lost: refused, said on stderr
    assert closed_stdout.returncode == 2 and "stdout is closed" in closed_stdout.stderr
    closed_stderr = ferhub(f"predict {tmp_path} 2>&-")  # its one line goes nowhere
    assert closed_stderr.returncode == 2 and closed_stderr.stdout == ""
    for usage_error in ("predict --bogus", "nosuch"):  # argparse put the usage into stdout, the results
        closed_stderr = ferhub(f"{usage_error} 2>&-")
        assert closed_stderr.returncode == 2 and closed_stderr.stdout == "", usage_error


def test_a_usage_error_with_stderr_closed_puts_nothing_in_the_results(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stderr", None)
    with pytest.raises(SystemExit) as e:
        main(["predict", "--bogus"])
    assert e.value.code == 2 and sys.stderr is None  # given back as it was
    monkeypatch.undo()
    assert capsys.readouterr().out == ""


# -- 7: a Numba cache folder on a full disk -----------------------------------------------------------------
def twice(x: float) -> float:
    return 2.0 * x


def test_a_kernel_runs_when_its_cache_cannot_be_saved(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import numba
    from numba.core import caching

    from ferhub import _numba

    def full(self: object, name: str, data: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))  # writable: found at decoration
    monkeypatch.setattr(caching.IndexDataCacheFile, "_save_data", full)
    assert _numba.kernel()(twice)(2.5) == 5.0  # raised out of the first call before


# -- 8: the face-detection cache ----------------------------------------------------------------------------
def test_the_face_cache_follows_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ferhub.data import default_cache_dir

    monkeypatch.delenv("FERHUB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "ferhub" / "faces"
    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path / "own"))  # ferhub's own setting wins
    assert default_cache_dir() == tmp_path / "own" / "faces"


def test_the_face_cache_of_home_is_taken_to_xdg_cache_home(monkeypatch, tmp_path: Path, caplog) -> None:
    """With XDG_CACHE_HOME set, the cache an earlier ferhub kept in ~/.cache was left unread: every image
    detected again (hours for a large set), the old file orphaned, and nothing said."""
    from ferhub.data import FaceCache
    from ferhub.data.crops import image_key

    image = Image.new("RGB", (50, 50), (7, 0, 0))
    home = tmp_path / "home" / ".cache" / "ferhub" / "faces" / "t.jsonl"
    home.parent.mkdir(parents=True)
    face = {"box": [1.0, 2.0, 30.0, 40.0], "score": 0.9, "landmarks": None, "face_found": True}
    home.write_text(json.dumps({"key": image_key(image), "face": face, "exact": True}) + "\n")
    monkeypatch.delenv("FERHUB_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    detector = OneFace()
    # a home this process may write: the cache is used where it is, not copied at every start (a home that
    # persists beside a scratch XDG_CACHE_HOME per job copied it every job)
    with caplog.at_level(logging.WARNING, logger="ferhub.data.crops"):
        cache = FaceCache(detector, signature="t")
    assert cache.path == home and cache.get_many([image])[0].box == (1.0, 2.0, 30.0, 40.0)
    assert detector.calls == 0 and not (tmp_path / "xdg").exists() and not caplog.records
    # a read-only home: copied once to XDG_CACHE_HOME, which the next run then finds
    monkeypatch.setattr("ferhub.data.crops._writable", lambda path: False)
    with caplog.at_level(logging.WARNING, logger="ferhub.data.crops"):
        cache = FaceCache(detector, signature="t")
        assert cache.get_many([image])[0].box == (1.0, 2.0, 30.0, 40.0) and detector.calls == 0
        again = FaceCache(detector, signature="t")  # said once: the next run finds it in its place
    assert cache.path == again.path == tmp_path / "xdg" / "ferhub" / "faces" / "t.jsonl"
    assert image_key(image) in again and again.path.read_text() == home.read_text()
    (record,) = [r for r in caplog.records if r.name == "ferhub.data.crops"]
    assert record.getMessage() == (
        f"the face-detection cache is now in {cache.path.parent} (XDG_CACHE_HOME): copied from {home}, which"
        " cannot be written"
    )


class OneFace:
    """A detector finding one face in every image, counting its calls."""

    calls = 0

    def detect_batch(self, images: list) -> list[list[Face]]:
        self.calls += 1
        return [[Face((1.0, 2.0, 30.0, 40.0), 0.9)] for _ in images]


def test_an_unwritable_face_cache_works_in_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from ferhub.data import FaceCache

    (tmp_path / "home").write_text("a file where the cache folder must be")  # no folder can be made there
    detector = OneFace()
    cache = FaceCache(detector, cache_dir=tmp_path / "home" / "faces", signature="t")
    images = [Image.new("RGB", (50, 50), (i, 0, 0)) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="ferhub.data.crops"):
        first = cache.get_many(images[:2])
        again = cache.get_many(images)  # the two found already come from memory
    assert [f.box for f in first] == [(1.0, 2.0, 30.0, 40.0)] * 2 and len(again) == 3
    assert cache.detections_run == 3 and detector.calls == 2
    warnings = [r for r in caplog.records if r.name == "ferhub.data.crops"]
    assert len(warnings) == 1 and "kept in memory" in warnings[0].getMessage()


# -- 10: out of memory --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        MemoryError(),
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you"
            " tried to allocate 4611686018427387904 bytes. Error code 12 (Cannot allocate memory)"
        ),
        OSError(errno.ENOMEM, "Cannot allocate memory"),
    ],
)
def test_out_of_memory_in_any_library_is_the_out_of_memory_line(error: BaseException) -> None:
    code, message = cli.describe(error)
    assert code == 1 and message.startswith("out of memory (") and "bug" not in message


def test_a_thread_that_cannot_start_names_the_thread_limit_too() -> None:
    """Python's "can't start new thread" is a process or thread limit (``ulimit -u``, a container's pids
    limit) as often as memory: "use smaller inputs" sent the user after the wrong cause."""
    from ferhub.errors import is_out_of_memory

    error = RuntimeError("can't start new thread")
    code, message = cli.describe(error)
    assert code == 1 and message.startswith("cannot start a thread (can't start new thread)")
    assert "ulimit -u" in message and "pids limit" in message and "smaller inputs" not in message
    assert is_out_of_memory(error)  # still tried again in smaller parts, as memory may be why
    # and a photo's own error says the same two causes
    from ferhub.predict import ImageResult, _out_of_memory

    line = _out_of_memory(ImageResult(path="a.jpg", width=8, height=6), error)
    assert line.startswith("a.jpg: cannot start a thread (8x6 pixels)") and "ulimit -u" in line, line
    assert "out of memory" not in line


def test_ferhubs_own_type_refusals_are_wrong_type_errors() -> None:
    """Two plain TypeErrors were left past ``except FerhubError`` (make_entry's tta, a float (B,) target)."""
    import torch

    from ferhub import eval_results, losses
    from ferhub.errors import WrongTypeError

    with pytest.raises(WrongTypeError, match="tta is a method name or None"):
        eval_results.make_entry({}, dataset={"id": "d"}, tta=1)
    with pytest.raises(WrongTypeError, match="must hold integer class indices"):
        losses.as_probabilities(torch.tensor([0.5]), 2)
    # and two more: a module without a ModelConfig saved, a model without stages partly unfrozen
    import ferhub
    from ferhub.models.freeze import _require_staged

    with pytest.raises(WrongTypeError, match="save\\(\\) needs the model's ModelConfig"):
        ferhub.save(torch.nn.Linear(1, 1), "unused")
    with pytest.raises(WrongTypeError, match="does not declare stages"):
        _require_staged(torch.nn.Linear(1, 1))


def test_onnx_runtimes_allocation_failure_is_out_of_memory() -> None:
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    error = Fail(
        "[ONNXRuntimeError] : 1 : FAIL : Failed to allocate memory for requested buffer of size 2711808"
    )
    assert cli.describe(error)[1].startswith("out of memory (")
    assert cli.describe(RuntimeError("weird"))[0] == 4  # a bug is still a bug


def test_a_photo_that_runs_out_of_memory_keeps_the_others(predictor, monkeypatch, astronaut) -> None:
    big = astronaut.resize((700, 700))
    detect = predictor._detect_all

    def detect_all(images: list[Image.Image]) -> list[list[Face]]:
        if any(image.size == big.size for image in images):
            raise MemoryError("Unable to allocate 2.3 GiB for an array")
        return detect(images)

    monkeypatch.setattr(predictor, "_detect_all", detect_all)
    results = predictor.predict([astronaut, big, astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)])
    assert [bool(r.faces) for r in results] == [True, False, True]
    assert results[1].error == (
        "<image>: out of memory (700x700 pixels) (Unable to allocate 2.3 GiB for an array); downscale it or"
        " free memory"
    )
    assert results[0].error is None and results[2].error is None


def test_a_photo_that_cannot_be_decoded_in_memory_is_its_error(predictor, monkeypatch, astronaut) -> None:
    from ferhub import predict

    load = predict.load_image

    def load_image(src, **kwargs):
        if str(src).endswith("grace_hopper.jpg"):
            raise MemoryError("Unable to allocate 5.0 GiB for an array with shape (50000, 35000, 3)")
        return load(src, **kwargs)

    monkeypatch.setattr(predict, "load_image", load_image)
    results = predictor.predict([str(EXAMPLES / "grace_hopper.jpg"), str(EXAMPLES / "astronaut.jpg")])
    assert "grace_hopper.jpg: out of memory (Unable to allocate 5.0 GiB" in results[0].error
    assert results[1].faces and results[1].error is None


# -- 11: the app with a full GRADIO_TEMP_DIR ----------------------------------------------------------------
def test_the_servers_full_disk_is_told_as_such(caplog: pytest.LogCaptureFixture) -> None:
    from ferhub.ui import visitors

    @visitors.action("classify")
    def handler() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "/srv/gradio/1234/x-faces.jpg")

    with pytest.raises(gr.Error) as e:
        handler()
    assert e.value.message == visitors.SERVER_DISK_FULL and "/srv" not in e.value.message
    (record,) = [r for r in caplog.records if r.name == "ferhub.app"]
    assert record.exc_info is None  # one line, no traceback: no bug of the server's
    assert record.getMessage() == (
        "classify failed: the server's disk is full: /srv/gradio/1234/x-faces.jpg (No space left on device)"
    )


def test_a_full_disk_under_out_dir_names_the_result_file(monkeypatch, capsys, tmp_path: Path) -> None:
    from ferhub import writers

    photo = tmp_path / "in" / "a.png"
    photo.parent.mkdir()
    Image.new("RGB", (64, 64), (90, 90, 90)).save(photo)

    def full(self) -> None:  # as a write() on a full disk: no file named
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(writers.JsonWriter, "end", full)
    assert main(["predict", str(photo), "--out-dir", str(tmp_path / "res")]) == 1
    err = capsys.readouterr().err
    assert f"ferhub predict: the disk is full: {tmp_path / 'res' / 'a.png.json'}. Fix" in err
