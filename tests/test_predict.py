"""The one inference path: detection once, batched classification, typed results, nothing lost on bad
input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ferhub.faces import FaceDetector
from ferhub.labels import FER7, FER8
from ferhub.models import create_model
from ferhub.predict import ImageResult, Predictor, iter_image_files


def tiny(labels=FER7, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("test_tiny", labels=labels).eval()


class CountingDetector(FaceDetector):
    calls = 0

    def detect(self, image):  # type: ignore[override]
        CountingDetector.calls += 1
        return super().detect(image)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_one_face_has_label_box_landmarks_and_probabilities(astronaut: Image.Image, detector) -> None:
    result = Predictor(tiny(), detector=detector).predict_image(astronaut)
    assert result.ok and (result.width, result.height) == astronaut.size
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.label in FER7
    assert set(face.probabilities) == set(FER7)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert face.label == max(face.probabilities, key=face.probabilities.get)
    d = result.to_dict()
    assert set(d) == {"path", "width", "height", "faces", "error"}
    assert set(d["faces"][0]) >= {"box", "score", "landmarks", "label", "probabilities"}
    assert len(d["faces"][0]["landmarks"]) == 5


def test_several_models_share_one_detection(astronaut, grace_hopper) -> None:
    CountingDetector.calls = 0
    p = Predictor([tiny(), tiny(FER8, seed=1)], detector=CountingDetector())
    results = p.predict([astronaut, grace_hopper])
    assert CountingDetector.calls == 2  # once per image, not once per model
    for r in results:
        assert len(r.faces) == 1
        preds = r.faces[0].predictions
        assert [len(x.probabilities) for x in preds] == [7, 8]
        assert "predictions" in r.faces[0].to_dict()


def test_batched_equals_one_by_one(astronaut, grace_hopper, detector) -> None:
    p = Predictor(tiny(), detector=detector)
    together = p.predict([astronaut, grace_hopper])
    alone = [p.predict_image(astronaut), p.predict_image(grace_hopper)]
    for a, b in zip(together, alone):
        assert a.faces[0].probabilities == pytest.approx(b.faces[0].probabilities, abs=1e-6)


def test_bad_image_in_batch_loses_nothing(astronaut, tmp_path, detector) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("this is not an image")
    good = tmp_path / "good.png"
    astronaut.save(good)
    results = Predictor(tiny(), detector=detector).predict([good, bad, tmp_path / "missing.jpg", good])
    assert [r.ok for r in results] == [True, False, False, True]
    assert "bad.jpg" in results[1].error and "missing.jpg" in results[2].error
    assert len(results[0].faces) == 1 and len(results[3].faces) == 1
    assert results[0].faces[0].probabilities == results[3].faces[0].probabilities


def test_no_face_policy(detector) -> None:
    blank = Image.new("RGB", (200, 160), (120, 140, 160))
    assert Predictor(tiny(), detector=detector).predict_image(blank).faces == []
    fallback = Predictor(tiny(), detector=detector, no_face="fallback").predict_image(blank)
    assert len(fallback.faces) == 1
    assert fallback.faces[0].face.face_found is False
    assert fallback.faces[0].face.box == (0, 0, 200, 160)


def test_classify_crops_shapes_and_softmax() -> None:
    p = Predictor([tiny(), tiny(FER8)])
    crops = [Image.new("L", (48, 48), v) for v in (0, 128, 255)]
    probs = p.classify_crops(crops)
    assert [a.shape for a in probs] == [(3, 7), (3, 8)]
    for a in probs:
        np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-5)
    assert [a.shape for a in p.classify_crops([])] == [(0, 7), (0, 8)]


class BrokenNet(torch.nn.Module):
    """A model with a bug: its forward fails whatever the input."""

    def __init__(self) -> None:
        super().__init__()
        self.config = tiny().config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("a bug in the model")


def test_model_error_raises_instead_of_becoming_per_image_errors(astronaut, grace_hopper, detector) -> None:
    """Only bad input is a per-image error: a model bug is raised once, not retried image by image."""
    p = Predictor(BrokenNet(), detector=detector)
    with pytest.raises(RuntimeError, match="a bug in the model"):
        p.predict([astronaut, grace_hopper])


def test_detector_error_raises(astronaut) -> None:
    class BrokenDetector(FaceDetector):
        def detect(self, image):  # type: ignore[override]
            raise ValueError("a bug in the detector")

    with pytest.raises(ValueError, match="a bug in the detector"):
        Predictor(tiny(), detector=BrokenDetector()).predict([astronaut])


def test_model_without_config_is_refused() -> None:
    with pytest.raises(TypeError, match="ModelConfig"):
        Predictor(torch.nn.Linear(2, 2))


def test_default_model_is_bundled_and_finds_the_face(grace_hopper, detector) -> None:
    p = Predictor(detector=detector)
    assert p.names == ["ferhub/fer-mini-xception"]
    r = p.predict_image(grace_hopper)
    assert len(r.faces) == 1 and r.faces[0].label in FER7


def test_iter_image_files_recurses(tmp_path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.jpg", "a/b/y.PNG", "a/notes.txt"):
        (tmp_path / name).write_bytes(b"")
    found = iter_image_files([tmp_path / "a"])
    # sorted by path: the folder "b" sorts before the file "x.jpg"
    assert found == [tmp_path / "a" / "b" / "y.PNG", tmp_path / "a" / "x.jpg"]
    assert iter_image_files([tmp_path / "a" / "notes.txt"]) == [tmp_path / "a" / "notes.txt"]


def test_image_result_error_dict() -> None:
    r = ImageResult(path="x.jpg", error="cannot decode")
    assert r.to_dict() == {
        "path": "x.jpg",
        "width": None,
        "height": None,
        "faces": [],
        "error": "cannot decode",
    }


def test_whole_bad_input_corpus_in_one_batch(tmp_path, astronaut, detector) -> None:
    """Every awkward file in one batch with a real face: each gets a result or a clear error, none is lost."""
    from images_corpus import write_corpus

    corpus = write_corpus(tmp_path / "corpus")
    face = tmp_path / "face.png"
    astronaut.save(face)
    paths = [face, *(item.path for item in corpus.values()), face]
    results = Predictor(tiny(), detector=detector, no_face="fallback").predict(paths)
    assert [r.path for r in results] == [str(p) for p in paths]
    for item, r in zip(corpus.values(), results[1:-1]):
        if item.ok:
            assert r.ok, f"{item.path.name}: {r.error}"
            assert (r.width, r.height) == item.size
            assert len(r.faces) == 1  # no face in these: the whole-image fallback, flagged
            assert r.faces[0].face.face_found is False
        else:
            assert r.error and not r.faces, item.path.name
    for r in (results[0], results[-1]):
        assert r.ok and len(r.faces) == 1 and r.faces[0].face.face_found
