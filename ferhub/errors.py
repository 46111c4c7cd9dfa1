"""Every error ferhub raises on purpose, under one base: ``except ferhub.FerhubError`` catches them all.

Each class also derives from the built-in exception its callers caught before there was a base (a bad config
is still a ``ValueError``, a model that cannot be found still an ``OSError``), so existing ``except`` clauses
keep working. Messages say what is wrong and what to do; the CLI prints them without a traceback.

>>> import ferhub
>>> try:
...     ferhub.load("./no-such-folder")
... except ferhub.FerhubError as e:
...     print(type(e).__name__)
ModelLoadError
"""

from __future__ import annotations

import errno
from typing import Any


class FerhubError(Exception):
    """Base of every error ferhub raises on purpose; the message says what to do."""


class ConfigError(FerhubError, ValueError):
    """A config.json that cannot describe a usable model."""


class ModelLoadError(FerhubError, OSError):
    """A model repo that cannot be found, read or matched to its architecture; the message says the fix."""


class HubConnectionError(FerhubError, ConnectionError):
    """The Hub cannot be reached (offline mode, or no connection) for an operation that needs it."""


class HubModelUnavailable(ModelLoadError, HubConnectionError):
    """A Hub model that is not in the local cache while the Hub cannot be reached (or offline mode is on)."""


class EvalResultsError(FerhubError, ValueError):
    """An ``eval_results.json`` that ferhub cannot read; the message names the file and what is wrong."""


class CheckpointError(FerhubError, ValueError):
    """A weights or training checkpoint file that cannot be read safely, does not fit, or cannot resume."""


class PretrainedWeightsError(FerhubError, FileNotFoundError):
    """Pretrained weights that are not where their loader looks; the message says where to get them."""


class UnknownModelError(FerhubError, KeyError):
    """An architecture name that no builder is registered under."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class EnsembleError(FerhubError, ValueError):
    """An ensemble whose members or weights cannot be combined."""


class UnknownLabelError(FerhubError, ValueError):
    """A label name that is neither canonical nor a known alias."""


class ImageDecodeError(FerhubError, ValueError):
    """An input that cannot be turned into an RGB image; the message says what is wrong and what works."""


class VideoDecodeError(FerhubError, ValueError):
    """A file that cannot be read as a video; the message says what is wrong and what to do."""


class ArchiveRefused(FerhubError, ValueError):
    """An archive (or a member) over one of the ``ferhub.archives.ArchiveLimits``; the message says which."""


class DataSourceError(FerhubError, ValueError):
    """A data source that cannot be read as labelled FER data; the message says what to change."""


class HubDataUnavailable(DataSourceError, HubConnectionError):
    """A Hub dataset that is not in the datasets cache while the Hub cannot be reached (or offline mode is
    on)."""


class EvaluationError(FerhubError, RuntimeError):
    """Evaluation cannot run as asked; the message says what to change."""


class EvaluationSettingError(EvaluationError, ValueError):
    """An argument of :func:`ferhub.evaluation.evaluate` that cannot work (``tta``, ``no_face``, a
    ``predictor`` holding other models than those named), refused before any image is read. Still a
    ``ValueError``, as before it had a class of its own."""


class NotFiniteError(EvaluationError):
    """Some models gave NaN or infinite probabilities: no result for them; ``runs`` holds the other models'
    evaluations (:class:`ferhub.evaluation.ModelEvaluation`, in the order named), which callers keep."""

    def __init__(self, message: str, runs: list[Any]) -> None:
        super().__init__(message)
        self.runs = runs


class SaliencyError(FerhubError, ValueError):
    """An attribution that cannot be computed for this model, method or target."""


class RecipeError(FerhubError, ValueError):
    """A recipe (or an override of one) that cannot be trained."""


class TrainingDiverged(FerhubError, RuntimeError):
    """Training produced a loss that is not a finite number; the message says which epoch and what to
    change."""


class ZooError(FerhubError, RuntimeError):
    """A zoo model that cannot be listed, imported or pushed; the message says what to do."""


class LicenseError(ZooError):
    """The package's licence is not one ferhub converts, or its metadata and LICENSE file disagree."""


class DeviceError(FerhubError, RuntimeError):
    """A device that cannot be used here, e.g. ``cuda`` on a machine where torch sees no GPU."""


class PredictorSettingError(FerhubError, ValueError):
    """A :class:`~ferhub.predict.Predictor` argument that cannot work (``batch_size``, ``no_face``,
    ``names``, ``runtime``, no model at all), refused when the predictor is built rather than part-way
    through a prediction."""


class DetectorSettingError(FerhubError, ValueError):
    """A :class:`~ferhub.faces.FaceDetector` argument that cannot work (``thresholds``, ``min_face_size``,
    ``max_side``, ``runtime``), refused when the detector is built."""


class VideoSettingError(FerhubError, ValueError):
    """A :class:`~ferhub.video.VideoAnalyzer` argument that cannot work (``detect_every``, ``fps``,
    ``smooth``, ``max_side``, ``batch_frames``, ``tracker``), refused when the analyzer is built rather than
    part-way through a video. Still a ``ValueError``, as before it had a class of its own."""


class NonFiniteWeightsError(FerhubError, ValueError):
    """A model (or weights file) holding NaN or infinity: refused by ``Predictor``, ``load`` and ``save``."""


class WrongTypeError(FerhubError, TypeError):
    """An argument of a type ferhub cannot take (faces that are no faces, one image where a list is wanted, a
    model without a ``ModelConfig``), or a :class:`~ferhub.predict.Predictor` copied where it cannot be.
    Still a ``TypeError``, as before it had a class of its own."""


class NotAFolderError(FerhubError, FileExistsError):
    """A path where ferhub writes a folder (``ferhub.save``'s model repo) that is a file."""


class MissingExtraError(FerhubError, ImportError):
    """An optional package (one of ferhub's extras, e.g. timm of ``ferhub[train]``) or a dependency that is
    not installed or cannot be imported; the message names the ``pip install`` that fixes it. Still an
    ``ImportError``, as before it had a class of its own."""


class ExportError(FerhubError, RuntimeError):
    """A model that cannot be exported to ONNX, or whose exported graph disagrees with the module."""


class ConversionError(FerhubError, ValueError):
    """An upstream model file (Keras, TF.js, a pickle) that ferhub cannot convert; the message says why."""


# Exception classes (by name, anywhere in a class's MRO) that mean the Hub or the network could not be
# reached; names keep huggingface_hub and httpx unimported where they are not used.
NETWORK_ERRORS = frozenset(
    {
        "HubConnectionError",  # ferhub: offline or unreachable, raised before trying
        "OfflineModeIsEnabled",  # huggingface_hub with HF_HUB_OFFLINE=1
        "ConnectError",  # httpx
        "TimeoutException",  # httpx
        "NetworkError",  # httpx
        "ConnectionError",  # builtin and requests
    }
)


def not_finite(several: bool = False) -> str:
    """What NaN or infinite probabilities say of the model(s) that gave them, in every message about them."""
    whose = "the models' weights or their" if several else "the model's weights or its"
    return f"{whose} computation are not finite (a diverged or corrupt model)"


# what native allocators say in errors that are no MemoryError when memory (or address space, under ``ulimit
# -v``) runs out: torch's CPU allocator ("DefaultCPUAllocator: can't allocate memory: you tried to allocate
# ..."), ONNX Runtime's arena ("Failed to allocate memory for requested buffer of size ..."), C++'s
# std::bad_alloc, and Python when a thread cannot start (:data:`_THREAD_TEXT`)
_OUT_OF_MEMORY_TEXTS = ("can't allocate memory", "failed to allocate memory", "bad_alloc")
# CPython's RuntimeError for any failure of pthread_create: a thread's stack that cannot be mapped (memory,
# ``ulimit -v``) and a process or thread limit (``ulimit -u``, a container's pids limit) alike
_THREAD_TEXT = "can't start new thread"


def is_out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` says memory ran out: a ``MemoryError`` (numpy's ``_ArrayMemoryError`` included), torch's
    ``OutOfMemoryError`` (CUDA), ``ENOMEM``, a ``RuntimeError`` or ONNX Runtime error in an allocator's
    words (:data:`_OUT_OF_MEMORY_TEXTS`), or a thread that cannot start (:func:`is_thread_limit`: memory
    perhaps, so that work is tried again in smaller parts as for memory; its message says both causes)."""
    if isinstance(e, MemoryError) or any(c.__name__ == "OutOfMemoryError" for c in type(e).__mro__):
        return True
    if isinstance(e, OSError):
        return e.errno == errno.ENOMEM  # "Cannot allocate memory" (an mmap, a fork)
    if isinstance(e, RuntimeError) or type(e).__module__.startswith("onnxruntime"):
        text = str(e).lower()
        return any(t in text for t in _OUT_OF_MEMORY_TEXTS) or is_thread_limit(e)
    return False


def is_thread_limit(e: BaseException) -> bool:
    """Whether ``e`` is Python's "can't start new thread": out of memory for the thread's stack, or the
    process or thread limit reached (``ulimit -u``, a container's pids limit), which Python does not tell
    apart; "use smaller images" sent the user of a pids-limited container after the wrong cause."""
    return isinstance(e, RuntimeError) and _THREAD_TEXT in str(e).lower()


def is_network_error(e: BaseException) -> bool:
    """Whether ``e`` says the Hub or the network could not be reached (:data:`NETWORK_ERRORS`)."""
    return any(c.__name__ in NETWORK_ERRORS for c in type(e).__mro__)
