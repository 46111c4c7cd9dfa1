"""One base for every error ferhub raises on purpose, each exported from ``ferhub`` and still the built-in
exception callers caught before the base existed."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import ferhub
from ferhub import errors

# module -> the error classes it raises and re-exports under its own name
HOMES = {
    "ferhub.config": ["ConfigError"],
    "ferhub.hub": ["ModelLoadError", "HubConnectionError", "EvalResultsError"],
    "ferhub.pretrained": ["CheckpointError", "PretrainedWeightsError"],
    "ferhub.training": ["CheckpointError", "RecipeError"],
    "ferhub.models": ["UnknownModelError"],
    "ferhub.models.ensemble": ["EnsembleError"],
    "ferhub.labels": ["UnknownLabelError"],
    "ferhub.images": ["ImageDecodeError"],
    "ferhub.data": ["DataSourceError"],
    "ferhub.evaluation": ["EvaluationError", "EvaluationSettingError", "NotFiniteError"],
    "ferhub.faces": ["DetectorSettingError", "WrongTypeError"],
    "ferhub.predict": ["PredictorSettingError", "WrongTypeError"],
    "ferhub.models._limits": ["NonFiniteWeightsError"],
    "ferhub._compat": ["MissingExtraError"],
    "ferhub.hub._repo": ["NotAFolderError"],
    "ferhub.saliency": ["SaliencyError"],
    "ferhub.zoo": ["ZooError", "LicenseError"],
    "ferhub.videoio": ["VideoDecodeError"],
    "ferhub.video": ["VideoSettingError"],
    "ferhub.archives": ["ArchiveRefused"],
    "ferhub._onnx": ["ExportError"],
}


def test_every_error_has_one_base_and_is_exported() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert len(classes) >= 18
    for cls in classes:
        assert issubclass(cls, ferhub.FerhubError), cls
        assert getattr(ferhub, cls.__name__) is cls and cls.__name__ in ferhub.__all__
    assert ferhub.Prediction.__name__ == "Prediction" and "Prediction" in ferhub.__all__


@pytest.mark.parametrize("module", sorted(HOMES))
def test_modules_raise_the_one_class(module: str) -> None:
    mod = importlib.import_module(module)
    for name in HOMES[module]:
        assert getattr(mod, name) is getattr(errors, name), f"{module}.{name} is a second class"


def test_builtin_bases_are_kept() -> None:
    assert issubclass(errors.ModelLoadError, OSError) and issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.PretrainedWeightsError, FileNotFoundError)
    assert issubclass(errors.UnknownModelError, KeyError) and str(errors.UnknownModelError("x y")) == "x y"
    assert issubclass(errors.LicenseError, errors.ZooError)


def test_convert_errors_share_the_base() -> None:
    from ferhub.convert import _fetch, faceapi, human, keras_h5, pyemotion

    for cls in (
        keras_h5.KerasH5Error,
        faceapi.TfjsWeightsError,
        human.GraphModelError,
        pyemotion.PickleRefusedError,
        pyemotion.PyEmotionConversionError,
        _fetch.FetchError,
    ):
        assert issubclass(cls, ferhub.FerhubError), cls


def test_a_load_failure_is_caught_by_the_base() -> None:
    with pytest.raises(ferhub.FerhubError, match="does not exist"):
        ferhub.load("./no-such-folder")


def test_arguments_of_the_wrong_type_are_ferhub_errors_and_still_type_errors() -> None:
    """Faces that are no faces, one image where a list is wanted and a model without a config were a plain
    ``TypeError``, which ``except ferhub.FerhubError`` missed (the README: every refused argument is one)."""
    import numpy as np

    from ferhub.faces import as_faces
    from ferhub.models import create_model

    predictor = ferhub.Predictor(create_model("test_tiny"), device="cpu")
    calls = [
        lambda: as_faces([(0, 0, 10, 10)], "classify_faces"),
        lambda: as_faces([{"box": [0, 0, 10, 10]}], "classify_faces"),
        lambda: ferhub.Predictor(3),
        lambda: ferhub.Predictor([object()]),
        lambda: predictor.predict(np.zeros((48, 48, 3), np.uint8)),
        lambda: predictor.predict("photo.jpg"),
    ]
    for call in calls:
        with pytest.raises(errors.WrongTypeError) as e:
            call()
        assert isinstance(e.value, TypeError) and isinstance(e.value, ferhub.FerhubError), e.value


def test_ferhubs_own_argument_checks_are_ferhub_errors_and_still_the_builtin(tmp_path: Path) -> None:
    """These checks raised a plain ValueError (or FileExistsError) that ``except ferhub.FerhubError`` missed;
    they keep the built-in base, so ``except ValueError`` callers still catch them."""
    from ferhub import evaluation
    from ferhub.models import create_model

    a_file = tmp_path / "photo.jpg"
    a_file.write_bytes(b"not a folder")
    calls = [
        (lambda: ferhub.FaceDetector(thresholds=(2, 0, 0)), errors.DetectorSettingError, ValueError),
        (lambda: ferhub.FaceDetector(max_side=10), errors.DetectorSettingError, ValueError),
        (lambda: ferhub.FaceDetector(min_face_size=0), errors.DetectorSettingError, ValueError),
        (lambda: ferhub.FaceDetector(runtime="tf"), errors.DetectorSettingError, ValueError),
        (lambda: ferhub.Predictor([]), errors.PredictorSettingError, ValueError),
        (lambda: evaluation.evaluate("m", "d", tta="x"), errors.EvaluationSettingError, ValueError),
        (lambda: evaluation.evaluate("m", "d", no_face="skip"), errors.EvaluationSettingError, ValueError),
        (lambda: ferhub.save(create_model("test_tiny"), a_file), errors.NotAFolderError, FileExistsError),
    ]
    for call, cls, builtin in calls:
        with pytest.raises(ferhub.FerhubError) as e:
            call()
        assert type(e.value) is cls and isinstance(e.value, builtin), e.value
    assert issubclass(errors.EvaluationSettingError, errors.EvaluationError)
    assert issubclass(errors.NotFiniteError, errors.EvaluationError)
    assert issubclass(errors.MissingExtraError, ImportError)
    assert a_file.read_bytes() == b"not a folder"
