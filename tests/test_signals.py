"""Stopping ferhub from outside: Ctrl-C during ``predict --saliency`` stops at the next photo, SIGTERM
(``kill``, ``timeout``, Slurm) is the same clean stop as Ctrl-C with exit 143, and what a process killed past
any handler (SIGKILL) leaves behind is removed by the next run: ``--out-dir`` temporaries, export stages, the
app's upload folders. Each runs ``ferhub`` or ``app.py`` in a subprocess and signals it as a terminal or a
supervisor would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import clips
import pytest

from ferhub.cli import main

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}


def ferhub(*argv: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ferhub", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(**extra),
    )


def wait_for(found: Callable[[], object], proc: subprocess.Popen, timeout: float = 120) -> None:
    """Poll until ``found()`` is true; fails if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while not found():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    """The rest of ``proc``'s stdout and stderr once it has ended. Not ``communicate()``: it reads the pipes
    themselves, and would lose what a line loop over one has read ahead already."""
    out, err = proc.stdout.read(), proc.stderr.read()  # a few lines on stderr: it never fills its pipe
    proc.wait(timeout=120)
    return out, err


def dead_pid() -> int:
    """The pid of a process that has ended (a killed writer's, as its leftovers name it)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def photos(folder: Path, n: int) -> list[Path]:
    folder.mkdir()
    clips.photo("astronaut").save(folder / "p00.png")
    for i in range(1, n):
        (folder / f"p{i:02d}.png").write_bytes((folder / "p00.png").read_bytes())
    return sorted(folder.iterdir())


# ------------------------------------------------------------------------------- Ctrl-C during --saliency
@pytest.mark.slow
def test_ctrl_c_during_saliency_stops_after_the_current_photo(tmp_path: Path) -> None:
    """The overlays of a whole batch (16 photos) were attributed before the stop was looked at: up to a
    minute of silence after Ctrl-C."""
    photos(tmp_path / "in", 12)  # one batch
    out = tmp_path / "overlays"
    proc = ferhub("predict", str(tmp_path / "in"), "--saliency", "occlusion", "--out", str(out))
    for line in proc.stderr:  # the first photo's overlays are written: Ctrl-C
        if line.rstrip().endswith("_occlusion.jpg"):
            proc.send_signal(signal.SIGINT)
            break
    stdout, err = finish(proc)
    assert proc.returncode == 130, err
    assert "stopping after the current photo or frame (Ctrl-C again to stop at once)" in err
    assert len(json.loads(stdout)) == 12  # the batch's results came before its overlays: all kept
    assert 1 <= len(list(out.glob("*_occlusion.jpg"))) <= 3  # the one in progress finished, no more


# ------------------------------------------------------------------------------------ SIGTERM = Ctrl-C
@pytest.mark.slow
def test_sigterm_closes_the_json_and_exits_143(tmp_path: Path) -> None:
    """SIGTERM killed the process: JSON cut off (and up to 8 KB of results lost in stdout's buffer), no
    message, exit -15."""
    photos(tmp_path / "in", 64)
    # unbuffered, to see the first result come; the buffered case gains the flush at the clean stop too
    proc = ferhub("predict", str(tmp_path / "in"), PYTHONUNBUFFERED="1")
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if '"path":' in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest, err = finish(proc)
    assert proc.returncode == 143, err
    assert 1 <= len(json.loads("".join(seen) + rest)) < 64
    assert "ferhub predict: interrupted; the output written so far is complete and valid" in err


@pytest.mark.slow
def test_sigterm_under_out_dir_leaves_no_temporaries_and_a_rerun_removes_killed_ones(
    tmp_path: Path, capsys
) -> None:
    inputs = photos(tmp_path / "in", 24)
    out = tmp_path / "results"
    proc = ferhub("predict", str(tmp_path / "in"), "--out-dir", str(out))
    wait_for(lambda: (out / "p00.png.json").exists(), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = finish(proc)
    assert proc.returncode == 143, err
    assert "interrupted; finished inputs are in" in err
    assert not list(out.glob(".*.tmp"))
    done = {p.name for p in out.iterdir()}
    assert 1 <= len(done) < 24
    # what writers killed with SIGKILL leave (the naming of older ferhubs too), next to a live writer's
    todo = next(f"{p.name}.json" for p in inputs if f"{p.name}.json" not in done)
    dead = dead_pid()
    killed = [out / f".{todo}.{dead}-x1y2.tmp", out / f".p23.png.json.{dead}.tmp"]
    live = out / f".{todo}.{os.getppid()}-abcd.tmp"  # the test runner's parent still runs
    other = out / f".notes.txt.{dead}-abcd.tmp"  # not a result file of this run: not ours to remove
    for p in (*killed, live, other):
        p.write_text('{"half": ')
    assert main(["predict", str(tmp_path / "in"), "--out-dir", str(out)]) == 0
    assert f"{24 - len(done)} input(s) written to {out}, {len(done)} already done" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob(".*.tmp")) == sorted([live.name, other.name])
    assert len(list(out.glob("*.png.json"))) == 24


@pytest.mark.slow
def test_sigterm_during_export_removes_its_stage(tmp_path: Path) -> None:
    out = tmp_path / "export"
    proc = ferhub("export", "fer-mini-xception", "--out", str(out))
    wait_for(lambda: out.is_dir() and any(out.glob(".ferhub-export-*")), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = finish(proc)
    assert proc.returncode == 143, err
    assert err.strip() == "ferhub export: interrupted (SIGTERM)"
    assert not out.exists() or not any(out.iterdir())


# ---------------------------------------------------------------------------------------------- the app
def app_env(tmp: Path) -> dict[str, str]:
    settings = env(TMPDIR=str(tmp), FERHUB_NO_WARMUP="1", GRADIO_ANALYTICS_ENABLED="False")
    settings.pop("GRADIO_TEMP_DIR", None)
    return settings


def start_app(how: str, tmp: Path) -> subprocess.Popen:
    argv = ["app.py"] if how == "app.py" else ["-m", "ferhub", "app"]
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env=app_env(tmp),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("how", ["app.py", "ferhub app"])
def test_sigterm_during_app_start_up_removes_its_folder(how: str, tmp_path: Path) -> None:
    """The handler came after the folder was made, while Gradio's import still took seconds: a SIGTERM then
    (a Space stopped, a supervisor's restart) left ``ferhub-gradio-*`` behind."""
    proc = start_app(how, tmp_path)
    wait_for(lambda: any(tmp_path.glob("ferhub-gradio-*")), proc)
    proc.send_signal(signal.SIGTERM)  # Gradio is still being imported
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("ferhub-gradio-*"))


def test_a_killed_apps_folder_is_removed_by_the_next_start_and_a_live_ones_is_not(
    tmp_path: Path, monkeypatch
) -> None:
    from ferhub.ui import scratch

    proc = start_app("app.py", tmp_path)
    wait_for(lambda: any(tmp_path.glob("ferhub-gradio-*")), proc)
    proc.kill()  # SIGKILL: nothing of the process runs, its folder stays
    proc.communicate(timeout=60)
    (killed,) = tmp_path.glob("ferhub-gradio-*")
    (killed / "upload.jpg").write_bytes(b"a visitor's photo")
    live = tmp_path / f"ferhub-gradio-{os.getppid()}-abcd1234"  # the test runner's parent still runs
    older = tmp_path / "ferhub-gradio-k2x9w8q1"  # an older ferhub's name, without its pid: left alone
    for folder in (live, older):
        folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("GRADIO_TEMP_DIR", "")  # set, then removed: monkeypatch puts back what was there
    monkeypatch.delenv("GRADIO_TEMP_DIR")
    monkeypatch.setattr(scratch, "_owned_gradio", None)
    mine = scratch.own_gradio_cache()
    assert mine is not None and sorted(tmp_path.iterdir()) == sorted([live, older, mine])
    assert mine.name.startswith(f"ferhub-gradio-{os.getpid()}-")  # what the next server will go by
