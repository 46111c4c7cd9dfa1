"""The app's server set-up, shared by ``app.py`` (a checkout, the Space) and ``ferhub app`` (an installed
package): :func:`create_app` builds the Blocks, :func:`serve` runs them until Ctrl-C or SIGTERM. A stop by
either signal, whenever it comes, removes the server's files and exits as every ``ferhub`` command does: 130
after Ctrl-C, 143 after SIGTERM (128 + the signal, as a shell reports a process that signal ends).

Host and port follow Gradio's ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` environment variables (default
127.0.0.1:7860); what visitors may reach and how much disk the server keeps follow the settings in
``ferhub.ui.visitors`` and ``ferhub.ui.scratch`` (README, "The app as a public Space").

Imports no Gradio at import time: :func:`create_app` must give Gradio its cache folder before Gradio is
imported (Gradio reads the folder then).
"""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING

from ferhub.cli import EXIT_TERMINATED
from ferhub.ui import scratch

if TYPE_CHECKING:
    import gradio as gr

CONCURRENCY = 2  # ``Blocks.queue(default_concurrency_limit=...)``: requests each event runs at once


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(EXIT_TERMINATED)  # exits through atexit, which removes the server's folders


def create_app() -> gr.Blocks:
    """The app's Blocks, built after giving Gradio an upload folder of this server's own."""
    # before the folder is made: SIGTERM during start-up (a Space stopped, a supervisor's restart; importing
    # Gradio takes seconds) exits through atexit, which removes it, where it would otherwise end the process
    # with the folder left behind. ``ferhub app`` has ferhub.cli's handler (one line, 143) already.
    main = threading.current_thread() is threading.main_thread()  # signals only reach the main thread
    if main and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # before Gradio is imported (it reads the folder then): uploads and served outputs in a folder of this
    # server's own, capped and removed at exit, instead of the /tmp/gradio every app on the machine shares
    scratch.own_gradio_cache()

    from ferhub.ui import build_app

    return build_app()


def serve(demo: gr.Blocks | None = None) -> int:
    """Serve ``demo`` (default: :func:`create_app`) until Ctrl-C or SIGTERM; its files are removed then.
    Returns the exit status the stop calls for, as ``ferhub.cli`` gives it: 130 (Ctrl-C), 143 (SIGTERM), 0
    when the server was closed otherwise."""
    if demo is None:
        demo = create_app()
    stopped_by: list[int] = []

    def stop(signum: int, frame: object) -> None:
        stopped_by.append(signum)
        raise KeyboardInterrupt  # Gradio's block_thread closes the server on it

    # a stopped Space gets SIGTERM: close the server and remove its files as on Ctrl-C, noting which it was
    main = threading.current_thread() is threading.main_thread()  # signals only reach the main thread
    before = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    try:
        # only now: ferhub.ui.state imports Gradio, which must find the upload folder create_app gives it
        from ferhub.ui import launch_kwargs, state

        state.tune_native_memory()  # a long-running server: keep its memory from creeping after load bursts
        scratch.start_sweeper(demo)
        demo.queue(default_concurrency_limit=CONCURRENCY)
        demo.launch(prevent_thread_lock=True, **launch_kwargs())
        state.start_warm_up()  # first-request costs paid in the background once the server answers
        demo.block_thread()
    except KeyboardInterrupt:  # stopped before block_thread took over
        demo.close()
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
    return 128 + stopped_by[0] if stopped_by else 0
