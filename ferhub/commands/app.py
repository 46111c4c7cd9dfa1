"""``ferhub app``: serve the web app, as ``python app.py`` does in a checkout (:mod:`ferhub.ui.server`)."""

from __future__ import annotations

import argparse

EPILOG_ENV = (
    "Host and port: GRADIO_SERVER_NAME / GRADIO_SERVER_PORT (default 127.0.0.1:7860); the public-Space"
    " settings (FERHUB_* environment variables) as README's 'The app as a public Space' describes. Ctrl-C or"
    " SIGTERM stops it and removes its files."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = f"{EPILOG_ENV} {p.epilog or ''}".strip()


def run(args: argparse.Namespace) -> int:
    from ferhub.ui import server

    server.serve()
    return 0
