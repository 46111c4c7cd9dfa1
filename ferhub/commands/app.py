"""``ferhub app``: serve the web app, as ``python app.py`` does in a checkout (:mod:`ferhub.ui.server`)."""

from __future__ import annotations

import argparse

EPILOG_ENV = (
    "Host and port: GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860); the public-Space"
    " settings (FERHUB_* environment variables) as README's 'The app as a public Space' describes. Ctrl-C or"
    " SIGTERM stops it, at start-up or while it serves, and removes its files: it then says so in one line"
    " and exits 130 (Ctrl-C) or 143 (SIGTERM), as every command does."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = f"{EPILOG_ENV} {p.epilog or ''}".strip()


def run(args: argparse.Namespace) -> int:
    from ferhub import cli
    from ferhub.ui import server

    code = server.serve()
    if code:  # stopped by Ctrl-C or SIGTERM while serving: the stop every command has (one line, 130 or 143)
        cli.stop_requested(code - 128)
        raise KeyboardInterrupt
    return 0
