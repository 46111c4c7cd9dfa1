"""ferhub: a facial-expression-recognition workbench.

``import ferhub`` is cheap: torch, facenet-pytorch, gradio and the rest load only when a call needs them.

>>> import ferhub
>>> predictor = ferhub.Predictor()                      # doctest: +SKIP  (bundled default model)
>>> predictor.predict(["photo.jpg"])[0].to_dict()       # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ferhub import _malloc

# OpenMP threads (torch's intra-op pool) spin-wait between parallel regions by default. On a machine whose cores
# are shared (another process, Gradio's worker threads) the spinning starves the thread they wait for: measured
# here on 2 cores with one busy, a 4 ms mini-Xception forward took ~770 ms; with passive waiting, 5.5 ms. It
# must be set before torch loads libgomp, i.e. before ferhub imports torch; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# glibc malloc: keep MB-sized tensor buffers mapped between calls instead of faulting them in again each time
# (detection 1.26x as fast on these VMs; FERHUB_MALLOC=default or a MALLOC_* variable of the user's opts out)
_malloc.tune()

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access (PEP 562)
_LAZY = {
    "Predictor": "ferhub.predict",
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
    "FaceDetector",
    "FaceResult",
    "ImageResult",
    "ModelConfig",
    "Predictor",
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
    from ferhub.predict import FaceResult, ImageResult, Predictor


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ferhub' has no attribute {name!r}")
