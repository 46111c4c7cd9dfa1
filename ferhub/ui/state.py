"""What the app's tabs share: one model cache, one face detector, the GPU wrapper, limits and example photos.

Models are loaded once per process (the first request that names one pays for it) and kept; every handler
goes through :class:`ferhub.predict.Predictor`, the library's one inference path.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import logging
import os
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import gradio as gr

from ferhub.assets import EXAMPLES_DIR
from ferhub.ui import visitors

if TYPE_CHECKING:
    from torch import nn

    from ferhub.faces import FaceDetector
    from ferhub.predict import Predictor

F = TypeVar("F", bound=Callable[..., Any])

# uploads larger than this are refused by the server before a handler runs (launch(max_file_size=...))
MAX_UPLOAD = "20mb"
# decoded images larger than this are refused by ferhub.images.load_image with a clear message
MAX_PIXELS = 40_000_000
# Gradio keeps a session's state (a copy of every component's config: ~85 KB in this app with
# ferhub.ui.sessions' shallow copies, 182 KB as Gradio makes it) for each page load and each API call
# without a session (every plain-HTTP `/call/...`), up to its default of 10,000: ~0.9 GB on a server that
# answers API calls. The least recently used beyond this many are dropped.
SESSIONS_KEPT = 1000


def example_photos() -> list[str]:
    """The bundled example photos of real faces (see ``ferhub/assets/examples/README.md``)."""
    from ferhub.images import image_suffixes

    return sorted(str(p) for p in EXAMPLES_DIR.glob("*") if p.suffix.lower() in image_suffixes())


def zerogpu() -> bool:
    """Whether this is a Hugging Face ZeroGPU Space: there the GPU is lent per request, inside the functions
    :func:`gpu` wraps. Told as the ``spaces`` package tells it (``SPACES_ZERO_GPU``, which ZeroGPU sets), not
    by the package being importable: Hugging Face installs it on every Gradio Space, CPU ones too, where
    taking this branch made the webcam detect in line (its detection frames ~2-3x slower)."""
    if os.environ.get("SPACES_ZERO_GPU", "").strip().lower() not in ("1", "t", "true"):
        return False
    try:
        import spaces  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def gpu(fn: F) -> F:
    """``spaces.GPU`` on a Hugging Face ZeroGPU Space, a no-op elsewhere."""
    if not zerogpu():
        return fn
    import spaces  # type: ignore[import-not-found]

    return spaces.GPU(fn)  # type: ignore[no-any-return]


def configure_runtime() -> None:
    """Settings for serving many short requests; each can be overridden by setting its variable first.

    - One torch intra-op thread per request (``FERHUB_TORCH_THREADS``): the server runs several requests at
      once, and with torch's default of one thread per core they oversubscribe the CPU and spin against each
      other. Measured on the 2-core machines: a classify request took ~5x longer with 2 threads than with 1
      while other work shared the CPU.
    - Gradio's run statistics (the "Runs" page): by default Gradio rebuilds a pandas summary of up to 10,000
      stored events after every event, a cost and a memory footprint that grow with traffic; here it keeps
      1,000 events and refreshes the summary every 100.
    """
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("FERHUB_TORCH_THREADS", "1"))))
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")


def device() -> str:
    from ferhub.device import default_device

    return default_device()


def default_model() -> str:
    from ferhub.hub import DEFAULT_MODEL

    return DEFAULT_MODEL


def model_choices() -> list[str]:
    """Model ids for the pickers: the default first, then every bundled (and imported zoo) model."""
    from ferhub.hub import DEFAULT_MODEL, list_bundled

    names = [DEFAULT_MODEL, *list_bundled()]
    return list(dict.fromkeys(names))


# models named by visitors (Hub ids; local folders where paths are allowed) kept loaded at once, beyond the
# models the app lists (the default and bundled ones, and those the server was started with), which stay
VISITOR_MODELS_SETTING = "FERHUB_MAX_VISITOR_MODELS"
VISITOR_MODELS = 4  # its default
# predictors (a set of models with their ONNX Runtime sessions) kept at once
PREDICTORS_KEPT = 16
# what a visitor is told of a Hub model the server has no copy of while the Hub is out of reach: the CLI's
# advice (unset HF_HUB_OFFLINE, the cache's folder) is for whoever runs the server
HUB_DOWN = (
    "this server has no copy of it and cannot reach the Hugging Face Hub now. Pick a listed model, or try"
    " again later."
)


def model_problem(error: BaseException) -> str:
    """Why a model cannot be loaded (or its repo read), in a visitor's words (:data:`HUB_DOWN` for a Hub
    that cannot be reached); server paths are left for :func:`ferhub.ui.visitors.public_text` to cut."""
    from ferhub.errors import HubConnectionError

    return HUB_DOWN if isinstance(error, HubConnectionError) else str(error)


def _visitor_models() -> int:
    try:
        return max(1, int(os.environ.get(VISITOR_MODELS_SETTING, VISITOR_MODELS)))
    except ValueError:
        return VISITOR_MODELS


class ModelCache:
    """Loaded models by id, one shared face detector, and predictors over tuples of model ids.

    The listed models (:func:`model_choices` and the server's own list) stay loaded; of the others, named by
    visitors, the ``max_visitor_models`` (``FERHUB_MAX_VISITOR_MODELS``, 4) most recently used are kept, and
    an older one is forgotten (with the predictors over it) when another is loaded: any number of Hub ids, or
    revisions of one, never pile up in memory. A request that holds a forgotten model or predictor goes on
    with it; the next one loads it again.
    """

    def __init__(self, max_visitor_models: int | None = None) -> None:
        self._lock = threading.Lock()
        self.max_visitor_models = max_visitor_models or _visitor_models()
        # least recently used first
        self._models: collections.OrderedDict[str, nn.Module] = collections.OrderedDict()
        # a lock per model being loaded now, with how many requests wait on it; removed when the last one is
        # done, so that names visitors send (refused, unknown or failing ones too) are not kept
        self._loading: dict[str, tuple[threading.Lock, list[int]]] = {}
        self._predictors: collections.OrderedDict[tuple[str, ...], Predictor] = collections.OrderedDict()
        self._detector: FaceDetector | None = None
        self._fast_detector: FaceDetector | None = None

    def model(self, model_id: str | None) -> nn.Module:
        """The model for a bundled name, Hub id or local folder, loaded once; ``gr.Error`` when it cannot
        be."""
        # the name is checked (text, length, what a visitor may name) before anything keeps it
        model_id = visitors.model_name(model_id) or default_model()
        with self._lock:
            found = self._models.get(model_id)
            if found is not None:
                self._models.move_to_end(model_id)
                return found
        spec, local = self._spec(model_id)
        with self._loading_lock(model_id):  # two first requests for one model load it once, others go on
            with self._lock:
                found = self._models.get(model_id)
            if found is None:
                found = self._load(model_id, spec, local)  # shared with ferhub.hub's cache
                self._keep(model_id, found)
        return found  # this request's reference: the model works for it even if forgotten meanwhile

    @staticmethod
    def listed() -> Callable[[str], bool]:
        """Whether a model is one the app lists (always kept loaded), not one a visitor named."""
        from ferhub.hub import BUNDLED_ORG, list_bundled

        ids = {*visitors.policy().listed, default_model(), *list_bundled()}
        return lambda model_id: model_id in ids or f"{BUNDLED_ORG}/{model_id}" in ids

    def _keep(self, model_id: str, model: nn.Module) -> None:
        """Keep a loaded model, forgetting the least recently used visitor-named ones beyond the bound."""
        listed = self.listed()
        with self._lock:
            self._models[model_id] = model
            self._models.move_to_end(model_id)
            named = [m for m in self._models if not listed(m)]
            gone = {m: self._models.pop(m) for m in named[: max(0, len(named) - self.max_visitor_models)]}
            if not gone:
                return
            for key in [k for k in self._predictors if gone.keys() & set(k)]:
                del self._predictors[key]
            kept = list(self._models.values())
        from ferhub.hub._repo import forget

        forget(list(gone.values()), kept)
        visitors.log.info(
            "model cache: forgot %s (%d visitor models kept)", ", ".join(gone), self.max_visitor_models
        )

    @staticmethod
    def _spec(model_id: str) -> tuple[str, bool]:
        """``visitors.model_spec`` of ``model_id``, its refusals as ``gr.Error``."""
        from ferhub.zoo import import_hint

        shown = visitors.named(model_id)
        try:
            spec, local = visitors.model_spec(model_id)  # a public server's visitors: no server paths
            hint = import_hint(spec)
        except gr.Error:
            raise
        except visitors.PathRefused as e:  # said as a path: a bundled model's name alone is not one
            raise gr.Error(
                f"Cannot load model {shown} (a path on the server): {e}", title="Model not loaded"
            ) from e
        except Exception as e:
            raise gr.Error(f"Cannot load model {shown}: {e}", title="Model not loaded") from e
        if hint is not None:  # importing is for whoever runs the server
            name = spec.partition("@")[0].rpartition("/")[2]
            raise gr.Error(
                f"Cannot load model {shown}: it is a zoo model this server has not imported (whoever runs the"
                f" server can, with `ferhub zoo import {name}`). Pick a listed model meanwhile.",
                title="Model not loaded",
            )
        return spec, local

    @contextlib.contextmanager
    def _loading_lock(self, model_id: str) -> Iterator[None]:
        """Hold the lock of ``model_id`` while it loads; it is forgotten once no request waits on it."""
        with self._lock:
            lock, waiting = self._loading.setdefault(model_id, (threading.Lock(), [0]))
            waiting[0] += 1
        try:
            with lock:
                yield
        finally:
            with self._lock:
                waiting[0] -= 1
                if not waiting[0]:
                    del self._loading[model_id]

    @staticmethod
    def _load(model_id: str, spec: str, local: bool) -> nn.Module:
        from ferhub.hub import load

        shown = visitors.named(model_id)
        try:
            return load(spec, device=device(), local=local)
        except Exception as e:  # the server's network: the CLI's fixes are not the visitor's (model_problem)
            raise gr.Error(f"Cannot load model {shown}: {model_problem(e)}", title="Model not loaded") from e

    def detector(self, *, fast: bool = False) -> FaceDetector:
        """The shared MTCNN detector; ``fast`` (webcam) skips faces under 48 px, which a person in front of a
        camera never is, and so searches a much smaller image pyramid."""
        from ferhub.faces import FaceDetector

        with self._lock:
            if fast:
                if self._fast_detector is None:
                    self._fast_detector = FaceDetector(min_face_size=48, max_side=640, device=device())
                return self._fast_detector
            if self._detector is None:
                self._detector = FaceDetector(device=device())
            return self._detector

    def predictor(self, model_ids: Sequence[str], *, fast: bool = False, fallback: bool = False) -> Predictor:
        """A :class:`Predictor` over these models (loaded once) and the shared detector."""
        from ferhub.predict import Predictor

        if isinstance(model_ids, str):  # one name, not its characters
            model_ids = [model_ids]
        ids = tuple(visitors.model_name(m) or default_model() for m in model_ids) or (default_model(),)
        key = (*ids, f"fast={fast}", f"fallback={fallback}")
        with self._lock:
            cached = self._predictors.get(key)
            if cached is not None:
                self._predictors.move_to_end(key)
                return cached
        predictor = Predictor(
            [self.model(m) for m in ids],
            names=list(ids),  # results under the ids picked; the shared cached modules are not renamed
            device=device(),
            detector=self.detector(fast=fast),
            no_face="fallback" if fallback else "skip",
        )
        with self._lock:
            if any(m not in self._models for m in ids):
                return predictor  # a model of it was forgotten meanwhile: this request's only
            predictor = self._predictors.setdefault(key, predictor)
            self._predictors.move_to_end(key)
            while len(self._predictors) > PREDICTORS_KEPT:
                self._predictors.popitem(last=False)
            return predictor


@functools.cache
def cache() -> ModelCache:
    """The process-wide model cache shared by every tab."""
    return ModelCache()


# ferhub.images' advice for a photo over the pixel limit names load_image's max_pixels: a web visitor has no
# such argument, only the photo to make smaller
_PYTHON_ADVICE = re.compile(r"; downscale it first \(from Python, [^)]*\)")  # (also inside a longer message)


def _for_visitors(message: str, advice: str | None = None) -> str:
    """A decoder message with advice a web visitor can act on (``advice``; by default, to upload the photo
    again downscaled) instead of the Python caller's."""
    advice = advice or f"downscale it to {MAX_PIXELS / 1e6:g} MP or less and upload it again"
    return _PYTHON_ADVICE.sub(f"; {advice}", message)


def load_photo(src: Any) -> Any:
    """Decode an uploaded photo through ``ferhub.images.load_image``; ``gr.Error`` with its message
    otherwise."""
    from ferhub.images import ImageDecodeError, load_image

    if src is None:
        raise gr.Error("Upload a photo first (drag and drop, paste, or pick an example).", title="No image")
    if isinstance(src, dict):  # an unprocessed gr.Image payload (events with preprocess=False)
        src = src.get("path")
        if not src:
            raise gr.Error("The upload carried no file.", title="No image")
    try:
        return load_image(src, max_pixels=MAX_PIXELS)
    except ImageDecodeError as e:
        raise gr.Error(_for_visitors(str(e)), title="Not a usable image") from e
    except OSError as e:
        raise gr.Error(f"Cannot read the upload: {e}", title="Not a usable image") from e


def output_path(suffix: str) -> Path:
    """A fresh file path for a handler's output (an image, a JSON download), in a folder kept bounded and
    removed at exit (:mod:`ferhub.ui.scratch`).

    Handlers return paths rather than PIL images: Gradio copies a returned file into its cache atomically,
    whereas a returned PIL image is written to a path named by its content hash without a lock, so two
    requests with identical outputs could serve each other a half-written file.
    """
    from ferhub.ui import scratch

    return scratch.output_path(suffix)


def download_path(upload: Any, suffix: str, default: str) -> Path:
    """A fresh path for a download named after an upload (``my photo (1).jpg`` -> ``my_photo_1`` +
    ``suffix``, ``café.jpg`` -> ``café``, ``фото.jpg`` -> ``фото``; ``default`` without one): only the name
    the visitor gave, never the server's path (:func:`ferhub.ui.scratch.download_path`).

    Letters, digits and marks of any script are kept, ``-`` too; anything else (path separators, dots,
    quotes, spaces, control and format characters such as a right-to-left override) becomes ``_``. The end of
    a long name is kept, at most :data:`DOWNLOAD_STEM_BYTES` in UTF-8.
    """
    from ferhub.ui import scratch

    return scratch.download_path(f"{(download_stem(str(upload)) if upload else '') or default}{suffix}")


# a download name's stem at most, in UTF-8 bytes: with the longest suffix ("-annotated.mp4") far below the
# 255 bytes a file name may have
DOWNLOAD_STEM_BYTES = 120


def download_stem(name: str) -> str:
    """The stem of ``name`` (a file name or path) as :func:`download_path` keeps it ("" when nothing is)."""
    stem = unicodedata.normalize("NFC", Path(name).stem)
    runs = itertools.groupby(stem, key=lambda c: c in "-_" or unicodedata.category(c)[0] in "LNM")
    kept = "".join("".join(run) if ok else "_" for ok, run in runs).strip("_")
    # the end of a long name is kept; a cut (or a name) starting with a mark has nothing to put it on
    while kept and (
        len(kept.encode()) > DOWNLOAD_STEM_BYTES or kept[0] == "_" or unicodedata.category(kept[0])[0] == "M"
    ):
        kept = kept[1:]
    return kept


def save_image(image: Any, name: str = "image", *, lossless: bool = False, named: bool = False) -> str:
    """Save a PIL image under :func:`output_path` (JPEG, or PNG when ``lossless``) and return its path.
    ``named``: the file is called ``name`` itself (:func:`download_path`), for an image whose file name a
    visitor sees: a webcam snapshot put in the Classify tab names the result's download after it."""
    from ferhub.fileio import atomic_save_image

    suffix = ".png" if lossless else ".jpg"
    path = download_path(None, suffix, name) if named else output_path(f"-{name}{suffix}")
    # encoded in memory and written whole or not at all: Pillow's save(path) served a truncated JPEG from a
    # nearly full GRADIO_TEMP_DIR without an error; now the disk's error reaches the handler (visitors.action)
    # A fresh name in a scratch folder swept every 10 minutes: no leftovers to look for (a listing of a
    # folder of thousands of outputs) and nothing worth an fsync (3 ms a request)
    fresh = {"durable": False, "sweep": False}
    if lossless:
        atomic_save_image(path, image, format="PNG", compress_level=1, **fresh)
    else:
        # convert copies even an RGB image (~0.2 ms for a 640x480 photo): only for other modes
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        atomic_save_image(path, rgb, format="JPEG", quality=90, **fresh)
    return str(path)


# the event options of a handler wrapped by `direct`
DIRECT = {"preprocess": False, "postprocess": False}
# an event that runs again for what the visitor did while it ran: with Gradio's default trigger mode ("once")
# the browser dropped that trigger, leaving the old photo's (set's, clip's) results under the new one
LATEST = {"trigger_mode": "always_last"}


def clear_on_failure(
    event: Any, outputs: Sequence[Any], js: str, api_name: str, inputs: Sequence[Any] | None = None
) -> None:
    """After a failed ``event``, set ``outputs`` to what ``js`` returns (their empty values) in the browser,
    with no server round trip and no API endpoint: a failed action leaves no stale result beside its error.
    ``js`` is given the values of ``inputs``."""
    event.failure(None, inputs, outputs, js=js, api_name=api_name, api_visibility="private")


def direct(fn: F, outputs: Sequence[Any]) -> F:
    """``fn`` for an event registered with :data:`DIRECT`: the output components' own post-processing runs
    inside the one worker thread the handler already runs in, and ``fn`` takes the inputs' payloads as they
    come.

    Gradio otherwise hops from its event loop to a worker thread and back once per input and once per output
    and, for outputs, copies each returned file into its cache twice (measured on 2 cores: classify's six
    outputs took 6 ms of its ~48 ms on the server that way, 2.5 ms this way). What reaches the browser is what
    Gradio's own post-processing makes.
    """
    from gradio.data_classes import GradioModel, GradioRootModel

    def post(component: Any, value: Any) -> Any:
        out = component.postprocess(value)
        return out.model_dump() if isinstance(out, (GradioModel, GradioRootModel)) else out

    @functools.wraps(fn)
    def handler(*args: Any, **kwargs: Any) -> list[Any]:
        return [post(c, v) for c, v in zip(outputs, fn(*args, **kwargs))]

    return handler  # type: ignore[return-value]


def tune_native_memory(trim_every_s: float = 10.0) -> None:
    """On glibc: cap malloc arenas at 2 and every ``trim_every_s`` seconds hand freed memory back to the OS,
    unless the last trim gave back little and nothing has been freed or grown since
    (:class:`ferhub._malloc.Trimmer`).

    Each of the server's worker threads otherwise gets its own malloc arena, and memory freed after a burst of
    concurrent requests stays mapped: measured here, 16 clients x 10 requests left the server ~30% larger
    than before the burst with no Python-level growth (tracemalloc), and ~5-9% with this in place.
    """
    from ferhub import _malloc

    libc = _malloc.glibc()
    if libc is None:  # not glibc (macOS, musl): nothing to tune
        return
    libc.mallopt(_malloc.M_ARENA_MAX, 2)
    trimmer = _malloc.Trimmer(libc)

    def trim() -> None:
        while True:
            time.sleep(trim_every_s)
            trimmer.step()

    threading.Thread(target=trim, name="ferhub-malloc-trim", daemon=True).start()


_HEAVY_IMPORTS = threading.Lock()
_heavy_imported = False


def heavy_imports() -> None:
    """Import Captum (and with it matplotlib), plotly and the modules over them once, one thread at a time.

    Two threads importing these at the same moment (the warm-up and a first request, or two first requests)
    can deadlock in their circular imports; Python then hands one thread a half-initialised module, and here
    every later request failed with "module 'matplotlib' has no attribute 'get_data_path'". The warm-up and
    each handler that needs these modules call this first; once done it costs one flag check.
    """
    global _heavy_imported
    if _heavy_imported:
        return
    with _HEAVY_IMPORTS:
        if not _heavy_imported:
            import captum.attr  # noqa: F401
            import plotly.graph_objects  # noqa: F401

            import ferhub.plots
            import ferhub.saliency  # noqa: F401

            _heavy_imported = True


def warm_up() -> None:
    """Pay the first-request costs (model, detector, the PNG decoder's kernel, Captum, plotly imports) in the
    background after start."""
    try:
        from PIL import Image

        from ferhub.images import warm_up_png

        examples = example_photos()
        predictor = cache().predictor([default_model()])
        if examples:
            predictor.predict_image(Image.open(examples[0]))
        warm_up_png()
        heavy_imports()
    except Exception:  # the app still serves; the first request pays the cost and shows the error itself
        logging.getLogger(__name__).exception("ferhub app warm-up failed")


def start_warm_up() -> None:
    if os.environ.get("FERHUB_NO_WARMUP") != "1":
        threading.Thread(target=warm_up, name="ferhub-warmup", daemon=True).start()
