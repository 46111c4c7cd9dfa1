"""Servers for tests: a free local port, and a Gradio ``Blocks`` launched on one as the app launches."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def free_port() -> int:
    """A local TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def launched(demo: Any, **launch: Any) -> Iterator[str]:
    """``demo`` launched in this process on a free local port with the app's ``launch_kwargs()`` (and
    ``launch``'s further ``Blocks.launch`` arguments, such as ``auth``); yields its URL, closes it after."""
    from ferhub.ui import launch_kwargs

    for attempt in range(3):
        port = free_port()
        try:
            demo.launch(
                server_name="127.0.0.1",
                server_port=port,
                prevent_thread_lock=True,
                quiet=True,
                **launch_kwargs(),
                **launch,
            )
            break
        except ValueError as e:
            # Gradio's start-up check gives the page 3 s to answer a HEAD, and none to a refused first
            # connection: on two cores busy with other tests it can fail although the server is fine
            demo.close()
            if "localhost is not accessible" not in str(e) or attempt == 2:
                raise
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
