"""One base for every error ferhub raises on purpose, each exported from ``ferhub`` and still the built-in
exception callers caught before the base existed."""

from __future__ import annotations

import importlib

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
    "ferhub.evaluation": ["EvaluationError"],
    "ferhub.saliency": ["SaliencyError"],
    "ferhub.zoo": ["ZooError", "LicenseError"],
    "ferhub.videoio": ["VideoDecodeError"],
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
