"""ferhub: a facial-expression-recognition workbench.

``import ferhub`` is cheap: torch, facenet-pytorch, gradio and the rest load only when a call needs them.

>>> import ferhub
>>> predictor = ferhub.Predictor()  # bundled default model  # doctest: +SKIP
>>> predictor.predict(["photo.jpg"])[0].to_dict()            # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferhub.errors import (  # every error ferhub raises on purpose, under FerhubError (imports nothing heavy)
    ArchiveRefused,
    CheckpointError,
    ConfigError,
    ConversionError,
    DataSourceError,
    DetectorSettingError,
    DeviceError,
    EnsembleError,
    EvalResultsError,
    EvaluationError,
    EvaluationSettingError,
    ExportError,
    FerhubError,
    HubConnectionError,
    HubDataUnavailable,
    HubModelUnavailable,
    ImageDecodeError,
    LicenseError,
    MissingExtraError,
    ModelLoadError,
    NonFiniteWeightsError,
    NotAFolderError,
    NotFiniteError,
    PredictorSettingError,
    PretrainedWeightsError,
    RecipeError,
    SaliencyError,
    TrainingDiverged,
    UnknownLabelError,
    UnknownModelError,
    VideoDecodeError,
    VideoSettingError,
    WrongTypeError,
    ZooError,
)

# Importing ferhub changes no process-wide setting (environment, malloc, torch threads): tuning that helps a
# long-running server is applied by that server (see ``ferhub.tuning``), where it was measured to help.

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562)
_LAZY = {
    "Predictor": "ferhub.predict",
    "Prediction": "ferhub.predict",
    "ImageResult": "ferhub.predict",
    "FaceResult": "ferhub.predict",
    "load": "ferhub.hub",
    "save": "ferhub.hub",
    "push": "ferhub.hub",
    "create_model": "ferhub.models",
    "list_models": "ferhub.models",
    "register_model": "ferhub.models",
    "ModelConfig": "ferhub.config",
    "FaceDetector": "ferhub.faces",
    "load_image": "ferhub.images",
}

__all__ = [
    "ArchiveRefused",
    "CheckpointError",
    "ConfigError",
    "ConversionError",
    "DataSourceError",
    "DetectorSettingError",
    "DeviceError",
    "EnsembleError",
    "EvalResultsError",
    "EvaluationError",
    "EvaluationSettingError",
    "ExportError",
    "FaceDetector",
    "FaceResult",
    "FerhubError",
    "HubConnectionError",
    "HubDataUnavailable",
    "HubModelUnavailable",
    "ImageDecodeError",
    "ImageResult",
    "LicenseError",
    "MissingExtraError",
    "ModelConfig",
    "ModelLoadError",
    "NonFiniteWeightsError",
    "NotAFolderError",
    "NotFiniteError",
    "Prediction",
    "Predictor",
    "PredictorSettingError",
    "PretrainedWeightsError",
    "RecipeError",
    "SaliencyError",
    "TrainingDiverged",
    "UnknownLabelError",
    "UnknownModelError",
    "VideoDecodeError",
    "VideoSettingError",
    "WrongTypeError",
    "ZooError",
    "__version__",
    "create_model",
    "list_models",
    "load",
    "load_image",
    "push",
    "register_model",
    "save",
]

if TYPE_CHECKING:
    from ferhub.config import ModelConfig
    from ferhub.faces import FaceDetector
    from ferhub.hub import load, push, save
    from ferhub.images import load_image
    from ferhub.models import create_model, list_models, register_model
    from ferhub.predict import FaceResult, ImageResult, Prediction, Predictor


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ferhub' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy names too, so ``dir(ferhub)``, ``help(ferhub)`` and tab completion show the public API."""
    return sorted(set(globals()) | set(_LAZY))
