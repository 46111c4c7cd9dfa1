"""Hostile requests to ``python app.py`` over HTTP: each gets one clear error (or a correct answer), within a
time limit, while the server's peak resident memory (``VmHWM``, reset before each request) stays bounded and
the server keeps answering. Zip bombs, server-path probes and disk growth are in test_app_public.py; these
are the other kinds."""

from __future__ import annotations

import io
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile import CASE_MEMORY_MB, CASE_SECONDS, MAX_MESSAGE
from PIL import Image
from test_app_public import DEFAULT_MODEL, HOPPER, Server, no_server_paths, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("hostile-app"))


@pytest.fixture(scope="module")
def client(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from gradio_client import Client, handle_file

    c = Client(server.url, verbose=False, download_files=str(tmp_path_factory.mktemp("client")))
    c.predict(handle_file(str(HOPPER)), DEFAULT_MODEL, "None", api_name="/classify")  # loads the model
    return c


def attack(server: Server, request: Callable[[], Any]) -> tuple[str | None, float, float]:
    """(error message or None, seconds, MB the server's peak RSS rose above its RSS before the request)."""
    from gradio_client.exceptions import AppError

    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = server.status("VmRSS")
    t = time.perf_counter()
    try:
        request()
        error = None
    except AppError as e:
        error = str(e)
    seconds = time.perf_counter() - t
    grew = (server.status("VmHWM") - before) / 1024
    assert server.process.poll() is None, "the server died"
    return error, seconds, grew


def png(width: int, height: int, *chunks: bytes) -> bytes:
    from images_corpus import png_chunk

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = zlib.compress((b"\x00" + b"\x80" * 3 * width) * height)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + b"".join(chunks) + png_chunk(b"IDAT", raw)


def upload(tmp: Path, name: str, data: bytes) -> Any:
    from gradio_client import handle_file

    (tmp / name).write_bytes(data)
    return handle_file(str(tmp / name))


def _photo_7000() -> bytes:
    import numpy as np

    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 255, (7000, 7000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, "JPEG", quality=40)
    return buf.getvalue()


def _escaping_zip() -> bytes:
    buf = io.BytesIO()
    hopper = HOPPER.read_bytes()
    with zipfile.ZipFile(buf, "w") as zf:
        for label in ("happy", "sad"):
            zf.writestr(f"../../../tmp/escape/{label}/0.jpg", hopper)
            zf.writestr(f"/abs/{label}/1.jpg", hopper)
    return buf.getvalue()


# kind -> (what the visitor sends, the error pattern; None: it must succeed)
UPLOADS: dict[str, tuple[str, Callable[[], bytes], str | None]] = {
    "upload_bomb_header_png": (
        "bomb.png",
        lambda: png(40000, 40000),
        r"1600\.0 MP, over the limit of [\d.]+ MP",
    ),
    "upload_text_chunk_bomb": (
        "text.png",
        lambda: png(
            64,
            64,
            __import__("images_corpus").png_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"a" * (256 << 20), 9)),
        ),
        r"too large",
    ),
    "upload_html_named_jpg": (
        "page.jpg",
        lambda: b"<html><script>alert(1)</script></html>" * 50,
        r"not an image",
    ),
    "upload_zero_bytes": ("empty.jpg", lambda: b"", r"no data|empty"),
    "upload_truncated_png": ("cut.png", lambda: png(640, 480)[:300], r"truncated|cannot|unreadable|broken"),
    "upload_7000x7000_photo": ("big.jpg", _photo_7000, r"49\.0 MP, over the limit|No face"),
}
MODEL_BOX: dict[str, tuple[str, str]] = {
    "model_box_10k_characters": ("x" * 10_000, r"."),
    "model_box_nul_and_newline": ("ferhub/fer-mini-xception\0\n/etc/passwd", r"."),
    "model_box_revision_5k": ("someone/model@" + "r" * 5000, r"."),
    "model_box_uncached_hub_id": (
        "someone/not-cached",
        r"has no copy of it and cannot reach the Hugging Face Hub",
    ),
    "model_box_dot_dot": ("../../../../etc", r"paths on the server are turned off"),
}


@pytest.mark.parametrize("kind", list(UPLOADS))
def test_hostile_upload(server: Server, client: Any, tmp_path: Path, kind: str) -> None:
    name, make, pattern = UPLOADS[kind]
    photo = upload(tmp_path, name, make())
    error, seconds, grew = attack(
        server, lambda: client.predict(photo, DEFAULT_MODEL, "None", api_name="/classify")
    )
    assert error is not None and re.search(pattern, error), f"{kind}: {error}"
    assert len(error) <= MAX_MESSAGE and "Traceback" not in error, error
    no_server_paths(error, server)
    assert seconds <= CASE_SECONDS and grew <= CASE_MEMORY_MB, (kind, seconds, grew)


@pytest.mark.parametrize("kind", list(MODEL_BOX))
def test_hostile_model_box(server: Server, client: Any, kind: str) -> None:
    from gradio_client import handle_file

    model, pattern = MODEL_BOX[kind]
    photo = handle_file(str(HOPPER))
    error, seconds, grew = attack(server, lambda: client.predict(photo, model, "None", api_name="/classify"))
    assert error is not None and re.search(pattern, error), f"{kind}: {error}"
    assert len(error) <= MAX_MESSAGE and "Traceback" not in error and "\n" not in error.strip(), error
    no_server_paths(error, server)
    assert seconds <= 5 and grew <= CASE_MEMORY_MB, (kind, seconds, grew)  # offline Hub ids fail at once


def test_hostile_zip_member_names(server: Server, client: Any, tmp_path: Path) -> None:
    """A labelled zip whose members climb out (``../../../tmp/escape``) or are absolute: nothing lands
    there."""
    data = upload(tmp_path, "faces.zip", _escaping_zip())
    error, seconds, grew = attack(
        server, lambda: client.predict([DEFAULT_MODEL], data, "", "", api_name="/evaluate")
    )
    assert not Path("/tmp/escape").exists() and not Path("/abs").exists()
    assert error is None or (len(error) <= MAX_MESSAGE and "Traceback" not in error), error
    if error:
        no_server_paths(error, server)
    assert seconds <= 60 and grew <= CASE_MEMORY_MB, (seconds, grew)


def test_server_still_answers_after_the_attacks(server: Server, client: Any) -> None:
    from gradio_client import handle_file

    result = client.predict(handle_file(str(HOPPER)), DEFAULT_MODEL, "None", api_name="/classify")
    assert len(result[4]["faces"]) == 1
