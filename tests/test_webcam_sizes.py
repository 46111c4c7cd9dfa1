"""The webcam when its frames change size mid-stream (a phone turned, another camera picked, the browser's
capture mode changing), crops of boxes outside the image, and what the route says of an oversized frame."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.applications import Starlette
from starlette.testclient import TestClient

from ferhub.faces import Face, _edge_padded_region, crop_face
from ferhub.ui import live, state, webcam

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HOPPER = Path(__file__).resolve().parent.parent / "ferhub" / "assets" / "examples" / "grace_hopper.jpg"


def scene(width: int, height: int) -> Image.Image:
    """Grace Hopper in the lower right of a grey frame (the finding's scene, smaller)."""
    face = Image.open(HOPPER).convert("RGB")
    frame = Image.new("RGB", (width, height), (90, 90, 90))
    h = height // 2
    frame.paste(face.resize((round(face.width * h / face.height), h)), (width * 7 // 10, height * 2 // 5))
    return frame


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (scene(640, 360), scene(640, 360).resize((320, 180))),  # the camera lowers its resolution
        (scene(640, 360), scene(640, 360).rotate(90, expand=True)),  # a phone turned
        (
            Image.open(HOPPER).convert("RGB").resize((320, 375)),
            Image.open(HOPPER).convert("RGB").resize((64, 75)),
        ),
    ],
    ids=["smaller", "turned", "tiny"],
)
def test_a_frame_size_change_mid_stream_is_a_new_scene(first: Image.Image, second: Image.Image) -> None:
    """The tracker's boxes and the last faces were in the old frame's pixels: carried onto a smaller or turned
    frame they lay outside it, and cropping them failed (HTTP 500 on every later frame)."""
    session = None
    for _ in range(4):
        _, _, session = webcam.process_frame(first, session)
    assert session.tracker.tracks
    for _ in range(3):
        drawn, _, session = webcam.process_frame(second, session)
        assert drawn.size == second.size
        # nothing carried from the old size (those boxes lie off this frame): only faces found in this one
        for face in session.faces.values():
            x1, y1, x2, y2 = face.box
            assert x1 < second.width and y1 < second.height and x2 > 0 and y2 > 0, face.box
        assert session.pending is None or session.pending_image.size == second.size


def test_the_route_keeps_streaming_when_the_frames_turn() -> None:
    """Over the page's route: every frame after a 1280x720 -> 720x1280 turn got 500 until a reload."""
    client = TestClient(Starlette(routes=live.routes()))
    sid = live.new_id()
    frame = scene(640, 360)
    codes = [
        client.post(f"{live.ROUTE}?session={sid}" + ("&start=1" if i == 0 else ""), content=jpeg(image))
        for i, image in enumerate([frame] * 4 + [frame.rotate(90, expand=True)] * 3 + [frame] * 2)
    ]
    assert [c.status_code for c in codes] == [200] * 9
    assert Image.open(io.BytesIO(codes[-1].content)).size == frame.size


@pytest.mark.parametrize(
    "region",
    [
        (700, 10, 760, 60),  # wholly right of a 640x360 image
        (10, 400, 60, 470),  # wholly below
        (-90, 10, -30, 60),  # wholly left
        (10, -90, 60, -20),  # wholly above
        (-90, -90, -20, -20),  # beyond a corner
        (700, 400, 800, 500),
    ],
)
def test_a_region_wholly_outside_the_image_is_its_nearest_edge_repeated(region: tuple[int, ...]) -> None:
    """``np.pad`` was given a negative width ("index can't contain negative values")."""
    a = np.zeros((360, 640, 3), np.uint8)
    a[..., 0] = np.arange(640)[None, :] % 256  # red: the column, green: the row
    a[..., 1] = np.arange(360)[:, None] % 256
    x0, y0, x1, y1 = region
    out = np.asarray(_edge_padded_region(Image.fromarray(a), x0, y0, x1, y1))
    assert out.shape == (y1 - y0, x1 - x0, 3)
    # each pixel is the image's pixel nearest to it
    columns = np.clip(np.arange(x0, x1), 0, 639)
    rows = np.clip(np.arange(y0, y1), 0, 359)
    assert np.array_equal(out, a[rows][:, columns])


def test_a_face_box_outside_the_image_still_crops() -> None:
    config = state.cache().model(state.default_model()).config
    image = Image.new("RGB", (64, 75), (120, 80, 40))
    for box in [(500.0, 300.0, 800.0, 650.0), (-400.0, -300.0, -100.0, -20.0), (30.0, 600.0, 60.0, 640.0)]:
        crop = crop_face(image, Face(box=box, score=1.0), config)
        assert crop.size == (config.input_size, config.input_size)


def test_an_oversized_camera_frame_is_told_as_for_a_web_visitor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The route passed the decoder's words on: the frame named ``<N bytes>`` and advice for Python callers
    ("from Python, load_image's max_pixels sets the limit")."""
    monkeypatch.setattr(state, "MAX_PIXELS", 100_000)
    client = TestClient(Starlette(routes=live.routes()))
    reply = client.post(f"{live.ROUTE}?session={live.new_id()}", content=jpeg(scene(640, 360)))
    assert reply.status_code == 400
    assert reply.json()["error"] == (
        "Not a usable camera frame: image is 640x360 = 0.2 MP, over the limit of 0.1 MP (a decompression bomb"
        " or a very large photo); pick a camera resolution of 0.1 MP or less"
    )
