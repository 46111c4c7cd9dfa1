"""``ferhub app`` (an installed package, no checkout) serves the app exactly as ``python app.py`` does:
both run ``ferhub.ui.server``'s set-up (own upload folder before Gradio, SIGTERM as Ctrl-C, sweeper, queue
limit, launch arguments with the session cap, warm-up)."""

from __future__ import annotations

import os
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ferhub import cli
from ferhub.cli import main
from ferhub.ui import server

ROOT = Path(__file__).resolve().parent.parent


def test_app_help_names_the_host_and_port_settings(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["app", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: ferhub app" in out and "GRADIO_SERVER_PORT" in out
    exe = os.path.join(os.path.dirname(sys.executable), "ferhub")
    listing = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    assert "serve the web app" in listing


def _handler(handler: object) -> object:
    """A signal handler as the test names it: serve()'s own (a closure) by its name."""
    return getattr(handler, "__qualname__", handler) if callable(handler) else handler


def _serve_recorded(monkeypatch, start) -> list[tuple]:
    """What ``start()`` does to set up and serve the app, in order; nothing is served (launch and the
    blocking loop are recorded, not run) and the Blocks are a small stand-in for ``build_app()``'s. Signal
    handlers are installed for real (and recorded); the test's own are put back after."""
    import gradio as gr

    from ferhub import ui
    from ferhub.ui import scratch, state

    calls: list[tuple] = []

    def record(name):
        return lambda *args, **kwargs: calls.append((name, args, kwargs))

    with gr.Blocks() as small:
        gr.Markdown("stand-in")

    def build_app(*args, **kwargs):
        calls.append(("build_app", args, kwargs))
        return small

    def launch(self, *args, **kwargs):
        app_kwargs = kwargs.get("app_kwargs", {})  # the webcam's routes: fresh objects each call
        routes = [(r.path, sorted(r.methods)) for r in app_kwargs.get("routes", [])]
        kwargs = {**kwargs, "app_kwargs": {**app_kwargs, "routes": routes}}
        calls.append(("launch", (self is small, *args), kwargs))

    def block_thread(self):  # what a Ctrl-C or SIGTERM would reach while serving
        handlers = {s: _handler(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)}
        calls.append(("block_thread", self is small, handlers))

    real_signal = signal.signal

    def install(signum, handler):
        calls.append(("signal", (signum, _handler(handler)), {}))
        return real_signal(signum, handler)

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with monkeypatch.context() as mp:  # undone before the next run builds its Blocks
        mp.setattr(scratch, "own_gradio_cache", record("own_gradio_cache"))
        mp.setattr(scratch, "start_sweeper", lambda demo: calls.append(("start_sweeper", demo is small)))
        mp.setattr(ui, "build_app", build_app)
        mp.setattr(state, "tune_native_memory", record("tune_native_memory"))
        mp.setattr(state, "start_warm_up", record("start_warm_up"))
        mp.setattr(signal, "signal", install)
        mp.setattr(gr.Blocks, "queue", lambda self, **kw: calls.append(("queue", self is small, kw)))
        mp.setattr(gr.Blocks, "launch", launch)
        mp.setattr(gr.Blocks, "block_thread", block_thread)
        try:
            start()
        finally:
            calls.append(("left", {s: _handler(signal.getsignal(s)) for s in before}))
            for signum, handler in before.items():
                real_signal(signum, handler)
    return calls


def test_ferhub_app_sets_up_and_launches_as_app_py_does(monkeypatch) -> None:
    from ferhub.ui import launch_kwargs

    def app_py() -> None:
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
        assert exit_.value.code == 0  # closed, not stopped by a signal

    monkeypatch.chdir(ROOT)
    found = signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as a process starts
    try:
        by_app_py = _serve_recorded(monkeypatch, app_py)
        by_cli = _serve_recorded(monkeypatch, lambda: main(["app"]))
    finally:
        signal.signal(signal.SIGTERM, found)
    stop = "serve.<locals>.stop"
    int_, term = signal.SIGINT, signal.SIGTERM
    # the handlers each installs, in order: app.py's own for start-up (SIGTERM exits through atexit, which
    # removes the folder); under ferhub.cli, which takes SIGTERM as Ctrl-C for every command, none
    assert [c[1] for c in by_app_py if c[0] == "signal"] == [
        (term, server._exit_on_sigterm.__qualname__),
        (int_, stop),  # serving: Ctrl-C and SIGTERM close the server, noting which stopped it
        (term, stop),
        (int_, _handler(signal.default_int_handler)),  # and are put back after
        (term, server._exit_on_sigterm.__qualname__),
    ]
    assert [c[1] for c in by_cli if c[0] == "signal"] == [
        (term, cli._terminated.__qualname__),
        (int_, stop),
        (term, stop),
        (int_, _handler(signal.default_int_handler)),
        (term, cli._terminated.__qualname__),
        (term, signal.SIG_DFL),  # ferhub.cli puts back the handler it found
    ]
    assert by_cli[-1] == ("left", {int_: _handler(signal.default_int_handler), term: signal.SIG_DFL})
    by_app_py = [c for c in by_app_py if c[0] not in ("signal", "left")]
    by_cli = [c for c in by_cli if c[0] not in ("signal", "left")]
    assert by_cli == by_app_py
    expected = launch_kwargs()
    expected["app_kwargs"] = {
        "routes": [(r.path, sorted(r.methods)) for r in expected["app_kwargs"]["routes"]]
    }
    assert [c[0] for c in by_cli] == [
        "own_gradio_cache",  # before the Blocks (and so Gradio's upload folder) are made
        "build_app",
        "tune_native_memory",
        "start_sweeper",
        "queue",
        "launch",
        "start_warm_up",
        "block_thread",
    ]
    calls = {c[0]: c[1:] for c in by_cli}
    assert calls["build_app"] == ((), {})  # the default model choices
    assert calls["start_sweeper"] == (True,)
    assert calls["block_thread"] == (True, {int_: stop, term: stop})
    assert calls["queue"] == (True, {"default_concurrency_limit": 2})
    assert calls["launch"] == ((True,), {"prevent_thread_lock": True, **expected})
    assert expected["state_session_capacity"] and expected["max_file_size"]  # the session and upload caps


# Stops the process at its first import of Gradio and prints the upload folder Gradio would read then.
WATCH_GRADIO = """
import os, sys

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "gradio":
            print("GRADIO_TEMP_DIR=" + os.environ.get("GRADIO_TEMP_DIR", ""))
            sys.stdout.flush()
            os._exit(0)

sys.meta_path.insert(0, Watch())
"""


@pytest.mark.parametrize(
    "start",
    [
        "from ferhub.cli import main; main(['app'])",
        "import runpy; runpy.run_path('app.py', run_name='__main__')",
    ],
    ids=["ferhub app", "app.py"],
)
def test_gradio_is_first_imported_with_the_servers_own_upload_folder(start: str, tmp_path: Path) -> None:
    """Gradio reads its upload folder (``GRADIO_TEMP_DIR``) when imported: by then the server has made its
    own (``ferhub-gradio-*``, removed at exit), or uploads would go to the ``/tmp/gradio`` every app shares.
    ``ferhub app`` first imported the app's state module, and so Gradio, before making it."""
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env["TMPDIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", WATCH_GRADIO + start],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    folder = out.strip().removeprefix("GRADIO_TEMP_DIR=")
    assert out.startswith("GRADIO_TEMP_DIR=") and Path(folder).parent == tmp_path
    assert Path(folder).name.startswith("ferhub-gradio-")
