"""The detector reads a PIL image upright, as the Predictor's classify_faces does: boxes found by
``detector.detect(image)`` crop the same face in ``classify_faces(image, faces)`` (the webcam's pattern), and
images that need no change (video frames, the Predictor's decoded photos) are read without a copy."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from images_corpus import ASTRONAUT_FACE, astronaut, exif_rotated
from PIL import Image

from ferhub.faces import FaceDetector, _as_image
from ferhub.images import load_image
from ferhub.labels import FER7
from ferhub.models import create_model
from ferhub.predict import Predictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def _boxes(faces) -> list[tuple[float, ...]]:
    return [tuple(round(v, 3) for v in f.box) for f in faces]


def test_detect_reads_an_exif_rotated_pil_image_upright(detector: FaceDetector) -> None:
    """detect() took the stored (sideways) pixels while classify_faces() turned the image upright: the boxes
    cropped the wrong pixels, or fell partly outside the image (width and height swap)."""
    upright = astronaut()
    stored = Image.open(io.BytesIO(exif_rotated(upright, "PNG")))
    assert stored.size == upright.size and stored.getexif()[0x0112] == 6  # square: only the pixels are turned
    expected = _boxes(detector.detect(upright))
    assert len(expected) == 1
    faces = detector.detect(stored)
    assert _boxes(faces) == expected
    (x1, y1, x2, y2), (ex1, ey1, ex2, ey2) = faces[0].box, ASTRONAUT_FACE
    assert ex1 - 20 < x1 < x2 < ex2 + 20 and ey1 - 20 < y1 < y2 < ey2 + 20  # the face, not a turned spot
    assert [_boxes(f) for f in detector.detect_batch([stored, upright])] == [expected, expected]
    assert np.array_equal(np.asarray(stored), np.asarray(upright.transpose(Image.Transpose.ROTATE_90)))

    torch.manual_seed(0)
    predictor = Predictor(create_model("test_tiny", labels=FER7).eval(), detector=detector, runtime="torch")
    (probs,) = predictor.classify_faces(stored, faces)  # the webcam's detect-then-classify
    (face,) = predictor.predict_image(stored).faces
    np.testing.assert_allclose(probs[0], [face.probabilities[k] for k in FER7], atol=1e-6)


def test_images_that_need_no_change_are_read_without_a_copy() -> None:
    """Video frames (fromarray) and the Predictor's decoded photos (load_image) stay on the no-copy path."""
    frame = Image.fromarray(np.zeros((48, 64, 3), np.uint8))
    assert _as_image(frame) is frame
    buffer = io.BytesIO()
    astronaut().save(buffer, "JPEG", quality=90)
    decoded = load_image(buffer.getvalue())
    assert _as_image(decoded) is decoded
    opened = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")  # bench/predict.py's detection input
    assert _as_image(opened) is opened
    grey = frame.convert("L")
    assert _as_image(grey).mode == "RGB"  # read as the classifier's crops read it
