"""Files that ship with ferhub: example photos of real faces (public domain; see ``examples/README.md``)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageFilter

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"


def one_face_photo(width: int = 640, height: int = 480) -> Image.Image:
    """One real face (Grace Hopper, public domain) on a blurred copy of itself, at any size.

    The photo every benchmark times end to end, so their numbers compare.
    """
    with Image.open(EXAMPLES_DIR / "grace_hopper.jpg") as f:
        face = f.convert("RGB")
    canvas = face.resize((width, height)).filter(ImageFilter.GaussianBlur(24 * width / 640))
    face_h = round(height * 400 / 480)
    face = face.resize((round(face.width * face_h / face.height), face_h))
    canvas.paste(face, ((width - face.width) // 2, round(height * 40 / 480)))
    return canvas
