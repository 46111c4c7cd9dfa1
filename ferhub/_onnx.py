"""ONNX export of ferhub's nets and the ONNX Runtime sessions of the CPU inference path.

Why ONNX Runtime on the CPU: a session has its own thread pool, sized and spun per session, so inference speed
does not depend on how torch's OpenMP threads wait between parallel regions (which differs 1.6-2x between CPU
kinds and with other work on the cores), and its per-operator overhead is low: the bundled mini-Xception on
one face ran ~4x faster than torch (README, "Why ONNX Runtime"). Torch stays for training, attributions (they
need gradients) and CUDA.

Exports are made on the fly from the loaded module and kept per process and in a cache folder keyed by a hash
of the weights and of the code that defines the module (``$HF_HOME/ferhub/onnx``), so a model is exported once
per machine; that folder keeps the most recently used graphs within :func:`cache_max_bytes` (1 GiB), so a
notebook evaluating checkpoint after checkpoint does not fill the disk. Every session built for inference
is first checked against the module on a random batch (its logits: once per graph for ferhub's own modules,
on every use for modules with classes of other code, :func:`trusted`); a cached graph that does not load or
does not match is built again, and a model that does not export or whose fresh graph does not match runs in
torch, with a log line.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import inspect
import io
import json
import logging
import math
import os
import re
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ferhub.errors import ConfigError, ExportError, ModelLoadError, not_finite
from ferhub.fileio import atomic_write_bytes

if TYPE_CHECKING:  # imported where a module is hashed, exported or checked: warm starts never need torch
    import torch
    from torch import nn

log = logging.getLogger(__name__)

# The opset torch's current exporter writes by default; ONNX Runtime >= 1.17 runs it.
OPSET = 20
# The IR version that came with opset 20 (ONNX 1.15). Graphs ferhub builds with `onnx.helper` say this instead
# of the installed onnx package's newest IR, which runtimes older than that package refuse ("Unsupported model
# IR version").
IR_VERSION = 9
# Bump when the way ferhub exports changes, so cached graphs of an older ferhub are not reused.
EXPORT_VERSION = 1
# The largest |probability| difference a session may show against its torch module on random input.
TOLERANCE = 1e-5
# The logits a graph gives may differ from its torch module's by LOGITS_ATOL + LOGITS_RTOL * |logit|.
# Logits, not probabilities: a random input often drives a net's softmax to one class at 1.0, where a graph of
# other code or weights gives the same probabilities. ONNX Runtime and torch differed by at most 1.8e-05 on
# logits up to 62 (the bundled models, random and real-face inputs; 2026-12-06).
LOGITS_RTOL = 1e-4
LOGITS_ATOL = 1e-4
# The disk cache's size: graphs past it go, the least recently used first. 1 GiB holds the detector's graphs
# (2 MB), every bundled model and ~20 ResNet-18s (43 MB each); a notebook evaluating each epoch's checkpoint
# wrote one graph per epoch, kept for good.
CACHE_MAX_MB_ENV = "FERHUB_ONNX_CACHE_MAX_MB"
DEFAULT_CACHE_MAX_MB = 1024


def available() -> bool:
    """Whether ONNX Runtime is installed (``pip install onnxruntime``)."""
    return importlib.util.find_spec("onnxruntime") is not None


def weights_hash(module: nn.Module, *extra: object) -> str:
    """SHA-256 over the module's class and the source file defining it, every parameter and buffer (names,
    dtypes, shapes, bytes) and ``extra``: a cached graph is never reused for other weights or other code."""
    import torch

    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    with contextlib.suppress(OSError, TypeError):  # a class whose source is not on disk (a REPL)
        h.update(Path(inspect.getfile(type(module))).read_bytes())
    for item in extra:
        h.update(repr(item).encode())
    for name, t in module.state_dict().items():
        shape = t.shape
        t = t.detach().cpu().flatten().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def code_hash(module: nn.Module) -> str:
    """A hash of the code that defines ``module``'s graph: ferhub's (:func:`source_hash`, with torch's
    version and the exporter's) and the source file of every class of every submodule and of their bases, so
    that a layer imported from another file, or a class of the user's own outside ferhub, that changes gives
    another hash. Each file is hashed with its module's name, in the order of those names: the same code
    installed elsewhere (an editable checkout, site-packages) gives the same hash.

    Code outside those files (a helper function of another file, a class of a notebook or ``__main__`` with
    no file) is not covered: such modules are checked against torch on every use (:func:`trusted`)."""
    files: dict[str, str] = {}  # module name -> its file
    for sub in module.modules():
        for cls in type(sub).__mro__:
            with contextlib.suppress(OSError, TypeError):  # builtins, classes defined in a REPL
                files[cls.__module__] = inspect.getfile(cls)
    h = hashlib.sha256(source_hash().encode())
    for name in sorted(files):
        with contextlib.suppress(OSError):
            data = Path(files[name]).read_bytes()
            h.update(f"{name}:{len(data)}:".encode() + data)
    return h.hexdigest()


# Packages whose classes a recorded pass may vouch for: ferhub (source_hash covers every file of it), torch
# (its version is in the key) and the libraries ferhub's own architectures take layers from.
TRUSTED_PACKAGES = frozenset({"ferhub", "torch", "torchvision", "facenet_pytorch", "timm"})


def trusted(module: nn.Module) -> bool:
    """Whether every class of ``module``'s submodules, with its bases, is defined in a file of ferhub's own
    package (or of torch, torchvision, facenet-pytorch, or Python's standard library): then the graph's key
    covers all the code the graph comes from, and a graph that passed its check once passes again (its pass
    is recorded and trusted). A class of the user's own file, a notebook or ``__main__`` may call code the key
    does not see (a helper function of another file, an edited cell): its graph is checked on every use."""
    return all(_trusted_class(cls) for sub in module.modules() for cls in type(sub).__mro__)


@functools.cache
def _trusted_class(cls: type) -> bool:
    import sys

    if cls is object:
        return True
    top = cls.__module__.partition(".")[0]
    if top in sys.stdlib_module_names or top == "builtins":
        return True
    package = sys.modules.get(top)
    if top not in TRUSTED_PACKAGES or package is None or not getattr(package, "__file__", None):
        return False
    try:
        file = Path(inspect.getfile(cls)).resolve()
    except (OSError, TypeError):
        return False
    return file.is_relative_to(Path(package.__file__).resolve().parent)


def export_bytes(
    module: nn.Module,
    example: Sequence[torch.Tensor],
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> bytes:
    """The module's ONNX graph (opset :data:`OPSET`) as bytes.

    torch's TorchScript-based exporter: it exports ferhub's nets in well under a second, where the
    ``torch.export`` one needs onnxscript and ~7 s per model on these machines. torch is pinned, so its
    deprecation notice is silenced here rather than shown to every user.
    """
    import torch

    buf = io.BytesIO()
    was_training = module.training
    module.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                tuple(example),
                buf,
                dynamo=False,
                opset_version=OPSET,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=dynamic_axes,
            )
    except Exception as e:  # the exporter raises many kinds; all mean "this module does not export"
        raise ExportError(f"{type(module).__name__} does not export to ONNX: {type(e).__name__}: {e}") from e
    finally:
        module.train(was_training)
    return buf.getvalue()


def cache_dir() -> Path:
    """Where exported graphs are kept between processes: ``$HF_HOME/ferhub/onnx`` (``FERHUB_ONNX_CACHE``
    wins)."""
    if os.environ.get("FERHUB_ONNX_CACHE"):
        return Path(os.environ["FERHUB_ONNX_CACHE"])
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "ferhub" / "onnx"


def cache_max_bytes() -> int:
    """How much the disk cache (:func:`cache_dir`) keeps: ``FERHUB_ONNX_CACHE_MAX_MB`` megabytes, default
    :data:`DEFAULT_CACHE_MAX_MB`; a value that is not a positive number raises
    :class:`~ferhub.errors.ConfigError`. Parsed once per value: every use of the cache asks
    (:func:`_cache_folder`)."""
    global _BOUND
    raw = os.environ.get(CACHE_MAX_MB_ENV, "").strip()
    if _BOUND is not None and _BOUND[0] == raw:
        return _BOUND[1]
    try:
        mb = float(raw) if raw else float(DEFAULT_CACHE_MAX_MB)
    except ValueError:
        mb = math.nan
    if not math.isfinite(mb) or mb <= 0:
        raise ConfigError(
            f"{CACHE_MAX_MB_ENV}={raw[:40]!r} must be a positive number of megabytes (how much the ONNX graph"
            f" cache in {cache_dir()} keeps; default {DEFAULT_CACHE_MAX_MB})"
        )
    _BOUND = (raw, int(mb * (1 << 20)))
    return _BOUND[1]


_BOUND: tuple[str, int] | None = None  # the setting cache_max_bytes last parsed, and its bytes


def _cache_folder() -> Path:
    """:func:`cache_dir`, for a use of the cache, with its bound checked (:func:`cache_max_bytes`): a wrong
    setting is told at the first use in a process, a warm start's included, not only once a graph must be
    exported (every process that found its graphs cached ran on without it)."""
    cache_max_bytes()
    return cache_dir()


# graphs read or built by this process, the most recently used last: a server whose visitors name models
# would otherwise keep every graph for good (a session holds its own copy; the disk cache keeps them all)
_MEMORY: dict[str, bytes] = {}
MEMORY_BYTES = 256 << 20  # the graphs kept in memory past the latest one
_MEMORY_LOCK = threading.Lock()


def _remember(key: str, graph: bytes) -> None:
    """Keep ``graph`` in memory as the most recently used, forgetting the least recently used ones beyond
    :data:`MEMORY_BYTES`."""
    with _MEMORY_LOCK:  # callers hold only their key's lock
        _MEMORY.pop(key, None)
        _MEMORY[key] = graph
        total = sum(map(len, _MEMORY.values()))
        while total > MEMORY_BYTES and len(_MEMORY) > 1:
            total -= len(_MEMORY.pop(next(iter(_MEMORY))))


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def cached(key: str, build: Callable[[], bytes]) -> bytes:
    """The graph stored under ``key`` (in memory, then on disk), built with ``build`` and stored when
    absent (:func:`_store_graph`). Each use marks the file as recently used, for the cache's bound.

    Graphs of modules passed in memory (a training loop's, ``evaluate(model)``) go to the disk too: their key
    is the one the same weights saved with ``ferhub.save`` and loaded again give, so an evaluated model that
    is saved and then served starts warm, and a module cannot tell whether it changed since it was loaded.
    What they cost the disk is bounded by :func:`cache_max_bytes` like any other graph's."""
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        path = _cache_path(key)
        if key in _MEMORY:
            data = _MEMORY[key]
            _remember(key, data)
            _touch(path)  # in use on this machine: the last the cache's bound removes
            return data
        try:
            data = path.read_bytes()  # whole: another process may remove the file the moment after
        except OSError:
            limit = cache_max_bytes()  # a wrong setting is told before the export's work, not after
            data = build()
            _store_graph(key, data, limit)
        else:
            _touch(path)
        _remember(key, data)
        return data


def discard(key: str) -> OSError | None:
    """Forget the graph stored under ``key``, in memory, on disk and its recorded pass; returns why the
    graph's file could not be removed (a read-only cache), or ``None`` when it is gone."""
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        with _MEMORY_LOCK:  # _remember iterates it under this lock
            _MEMORY.pop(key, None)
        _PASSED.pop(key, None)
        with contextlib.suppress(OSError):
            _passed_path(key).unlink(missing_ok=True)
        try:
            _cache_path(key).unlink(missing_ok=True)
        except OSError as e:
            return e
        return None


def rebuild(key: str, build: Callable[[], bytes], problem: str) -> bytes:
    """The graph under ``key`` built anew, after ``problem`` (what is wrong with the stored one: "does not
    load (...)"), logged: stored in place of the old one and kept in memory. Never read back from the disk:
    where the old file cannot be removed (a read-only ``HF_HOME``), it would be read again, so the new graph
    is used from memory, and the log says so and how to stop it."""
    path = _cache_path(key)
    kept = discard(key)
    if kept is None:
        log.warning("the cached ONNX graph %s %s; building it again", path, problem)
    else:
        log.warning(
            "the cached ONNX graph %s %s and cannot be removed (%s); building it in memory, as every process"
            " will until the file is removed or FERHUB_ONNX_CACHE names a writable folder",
            path,
            problem,
            kept.strerror or kept,
        )
    with _LOCKS_LOCK:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        limit = cache_max_bytes()
        data = build()
        _store_graph(key, data, limit)  # (logged where the cache cannot take it)
        _remember(key, data)
    return data


def cached_session(key: str, build: Callable[[], bytes], threads: int = 1) -> tuple[Any, bytes]:
    """A :func:`session` of the graph :func:`cached` under ``key``, and the graph. A stored graph ONNX
    Runtime cannot load (ferhub writes atomically, but a disk error or a half-copied ``HF_HOME`` can truncate
    one) is built again (:func:`rebuild`), with a log line; :class:`ExportError` if the new one does not load
    either."""
    graph = cached(key, build)
    try:
        return session(graph, threads), graph
    except Exception as e:  # ONNX Runtime raises kinds of its own: InvalidProtobuf, Fail, InvalidGraph...
        problem = f"does not load ({e})"
    graph = rebuild(key, build, problem)
    try:
        return session(graph, threads), graph
    except Exception as e:
        raise ExportError(f"the ONNX graph built again for {_cache_path(key).name} does not load: {e}") from e


def is_cached(key: str) -> bool:
    """Whether :func:`cached` finds the graph stored under ``key`` without building it."""
    return key in _MEMORY or _cache_path(key).is_file()


def _cache_path(key: str) -> Path:
    """Where the graph stored under ``key`` lives on disk."""
    return _cache_folder() / f"{key}.onnx"


def _store(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically; a cache that cannot be written only costs a re-export later.
    Returns whether it was written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except OSError as e:
        log.info("could not cache the ONNX graph in %s (%s); it will be exported again next time", path, e)
        return False
    return True


def _store_graph(key: str, data: bytes, limit: int) -> None:
    """Store the graph ``data`` under ``key`` (:func:`_store`), then bring the cache within ``limit`` bytes
    (:func:`_prune`), keeping this graph."""
    path = _cache_path(key)
    if _store(path, data):
        _touch(path)
        _prune(key, limit)


def _touch(path: Path) -> None:
    """Mark a cached file as just used (its mtime): the cache's bound removes the least recently used. The
    time is Python's, to the nanosecond: the kernel stamps files from a clock that may stand still for
    milliseconds, which made graphs used one after the other look equally old."""
    now = time.time_ns()
    with contextlib.suppress(OSError):  # gone meanwhile, or a read-only cache (which is never pruned)
        os.utime(path, ns=(now, now))


_GRAPH_FILE = re.compile(r"([0-9a-f]{64})\.onnx")
_PASSED_FILE = re.compile(r"([0-9a-f]{64})\.passed\.json")
_REPO_FILE = re.compile(r"[0-9a-f]{64}\.repo\.json")


def _prune(keep: str, limit: int) -> None:
    """Remove the least recently used graphs (their mtime, :func:`_touch`) from the cache folder until its
    files take at most ``limit`` bytes, each with its recorded pass and the ``.repo.json`` records that
    point to it; never the graph ``keep`` (just stored: it is used now), and only files named as ferhub names
    them (``FERHUB_ONNX_CACHE`` may name a folder holding other files).

    Safe beside other processes: a graph is always read whole into memory (:func:`cached`), so one removed
    after its read costs nothing, and one removed before is built again; a file another process removed
    first is skipped. A pass or repo record whose graph is gone is removed too (a graph removed by
    :func:`discard`, or by another process between its writes): it could never be used again."""
    folder = _cache_folder()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    graphs: dict[str, tuple[int, int]] = {}  # key -> (mtime_ns, size)
    sides: dict[str, list[tuple[Path, int]]] = {}  # graph key -> its pass and repo records (path, size)
    repos: list[tuple[Path, int]] = []
    total = 0
    for entry in entries:
        name = entry.name
        graph, passed = _GRAPH_FILE.fullmatch(name), _PASSED_FILE.fullmatch(name)
        if not (graph or passed or _REPO_FILE.fullmatch(name)):
            continue  # a temporary of a write in progress, or not ferhub's
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:  # removed meanwhile
            continue
        total += st.st_size
        if graph:
            graphs[graph[1]] = (st.st_mtime_ns, st.st_size)
        elif passed:
            sides.setdefault(passed[1], []).append((Path(entry.path), st.st_size))
        else:
            repos.append((Path(entry.path), st.st_size))
    if total <= limit:
        return
    for path, size in repos:  # read only now: a cache within its bound is never read through
        try:
            key = json.loads(path.read_text())["graph"]
        except (OSError, ValueError, KeyError, TypeError):
            key = None  # unreadable: as good as pointing nowhere
        sides.setdefault(key if isinstance(key, str) else "", []).append((path, size))
    for key in [k for k in sides if k not in graphs]:
        total -= _remove(sides.pop(key))
    removed = []
    for key in sorted(graphs, key=lambda k: (graphs[k][0], k)):
        if total <= limit:
            break
        if key == keep:
            continue
        path = _cache_path(key)
        try:
            path.unlink(missing_ok=True)  # gone already: another process pruning too
        except OSError as e:  # files of a folder this process cannot change: nothing more can go
            log.info("could not remove %s to keep the ONNX cache within its bound (%s)", path, e)
            return
        total -= graphs[key][1] + _remove(sides.pop(key, []))
        removed.append(key)
    if removed:
        log.info(
            "removed %d least recently used ONNX graph(s) from %s to keep it within %s (%s)",
            len(removed),
            folder,
            _size_text(limit),
            CACHE_MAX_MB_ENV,
        )


def _size_text(size: int) -> str:
    """``size`` bytes as a person reads it: "1024 MB", "3.5 MB", "256 KB" (a bound under a megabyte showed
    as "0 MB")."""
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def _remove(files: list[tuple[Path, int]]) -> int:
    """Remove ``files`` (path, size) as far as possible; returns their total size."""
    for path, _size in files:
        with contextlib.suppress(OSError):  # gone already, or not ours to remove: it stays, small
            path.unlink(missing_ok=True)
    return sum(size for _path, size in files)


def session(model: bytes | str | os.PathLike, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session running on ``threads`` threads of its own, which never spin.

    One thread by default: ferhub's nets are small, and a second thread costs a wake-up per operator that
    takes longer than the operator on a busy 2-core machine (README, "Why ONNX Runtime"). Callers that want
    throughput run several images at once instead.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise here
    source = model if isinstance(model, bytes) else os.fspath(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 arithmetic, returned as float32."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z.astype(np.float32)


def check_logits(name: str, expected: np.ndarray, got: np.ndarray) -> float:
    """Check ONNX Runtime's logits ``got`` against torch's ``expected``: :class:`ExportError` where they
    differ by more than ``LOGITS_ATOL + LOGITS_RTOL * |expected|``, or their softmaxes by more than
    :data:`TOLERANCE`. Returns the largest probability difference."""
    if expected.shape != got.shape:
        raise ExportError(f"{name}: ONNX Runtime's logits have shape {got.shape}, torch's {expected.shape}")
    if not np.isfinite(expected).all():  # nothing to compare with: the model itself is broken, not its graph
        raise ExportError(
            f"{name}: torch's own logits are NaN or infinite on the check inputs; {not_finite()}"
        )
    if expected.size:
        expected64 = expected.astype(np.float64)
        diff = np.abs(got - expected64)
        if not bool((diff <= LOGITS_ATOL + LOGITS_RTOL * np.abs(expected64)).all()):  # NaN fails too
            raise ExportError(
                f"{name}: ONNX Runtime's logits differ from torch's by up to {float(np.max(diff)):.2e} (>"
                f" {LOGITS_ATOL} + {LOGITS_RTOL} * |logit|)"
            )
    return _check(name, softmax(expected), softmax(got), TOLERANCE)


def _check(name: str, expected: np.ndarray, got: np.ndarray, tolerance: float) -> float:
    """The largest difference between two probability arrays; :class:`ExportError` above ``tolerance``."""
    diff = float(np.abs(expected.astype(np.float64) - got).max()) if expected.size else 0.0
    if not diff <= tolerance:  # also catches NaN
        raise ExportError(
            f"{name}: ONNX Runtime's probabilities differ from torch's by {diff:.2e} (> {tolerance})"
        )
    return diff


def classifier_key(model: nn.Module) -> str:
    """The cache key of a classifier's graph: its weights' hash, the code that defines it (:func:`code_hash`),
    the exporter and the input shape."""
    import torch

    config = model.config
    return weights_hash(
        model, EXPORT_VERSION, OPSET, torch.__version__, config.channels, config.input_size, code_hash(model)
    )


def build_classifier_graph(model: nn.Module) -> bytes:
    """A classifier's ONNX graph, exported now: ``input`` (batch, C, H, W) normalised crops -> ``logits``;
    batch is dynamic. Built from a copy: exporting never touches the caller's module."""
    import copy

    import torch

    config = model.config
    clone = copy.deepcopy(model).cpu().float().eval()
    example = torch.zeros(2, config.channels, config.input_size, config.input_size)
    axes = {"input": {0: "batch"}, "logits": {0: "batch"}}
    return export_bytes(clone, (example,), ["input"], ["logits"], axes)


def classifier_graph(model: nn.Module, key: str | None = None) -> bytes:
    """A classifier's ONNX graph (:func:`build_classifier_graph`), cached by :func:`classifier_key` (``key``,
    when the caller has it already)."""
    return cached(key or classifier_key(model), functools.partial(build_classifier_graph, model))


def torch_logits(model: nn.Module, batch: np.ndarray) -> np.ndarray:
    """Logits of ``model`` (on the CPU, in float32) over a normalised numpy batch: the reference."""
    import copy

    import torch

    clone = copy.deepcopy(model).cpu().float().eval()
    with torch.inference_mode():
        return clone(torch.from_numpy(batch)).float().numpy()


def torch_probabilities(model: nn.Module, batch: np.ndarray) -> np.ndarray:
    """Softmax of ``model`` (on the CPU, in float32) over a normalised numpy batch."""
    import torch

    return torch.softmax(torch.from_numpy(torch_logits(model, batch)), dim=1).numpy()


@functools.cache
def source_hash() -> str:
    """A hash of what makes an exported graph besides its input files, read without importing torch: ferhub's
    code (every module of the package: networks, loaders, exporters; an edit anywhere only costs one export),
    torch's version (its exporter), :data:`EXPORT_VERSION` and :data:`OPSET`."""
    from ferhub.device import installed_torch

    version = installed_torch().get("__version__")
    if not isinstance(version, str):  # an unusual torch install: ask the package metadata
        from importlib.metadata import version as package_version

        version = package_version("torch")
    h = hashlib.sha256(repr((version, EXPORT_VERSION, OPSET)).encode())
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _pass_record(graph: bytes) -> dict[str, str]:
    """What a recorded pass vouches for: this graph's bytes, checked by this ferhub against this torch."""
    return {"graph_sha256": hashlib.sha256(graph).hexdigest(), "source": source_hash()}


def _passed_path(key: str) -> Path:
    return _cache_folder() / f"{key}.passed.json"


def _passed(key: str, graph: bytes) -> bool:
    """Whether this very graph passed its check against torch within :data:`TOLERANCE` (recorded by
    :func:`_record_passed` in this process or an earlier one)."""
    expected = _pass_record(graph)
    if _PASSED.get(key) == expected:
        return True
    path = _passed_path(key)  # outside the try: a wrong cache bound is told, not taken for no record
    try:
        record = json.loads(path.read_text())
        ok = all(record[k] == v for k, v in expected.items()) and float(record["max_diff"]) <= TOLERANCE
    except (OSError, ValueError, KeyError, TypeError):  # absent, unreadable or from another ferhub
        return False
    if ok:
        _PASSED[key] = expected
    return ok


def _record_passed(key: str, graph: bytes, diff: float) -> None:
    """Remember that ``graph`` (stored under ``key``) matched its torch module: later processes skip the
    torch forward of the check (0.3-0.7 s of start-up, most of it torch's first call)."""
    record = _pass_record(graph)
    _PASSED[key] = record
    _store(_passed_path(key), json.dumps({**record, "max_diff": diff}).encode())


_PASSED: dict[str, dict[str, str]] = {}  # key -> the pass record of its graph, for this process


class OnnxClassifier:
    """A classifier's ONNX Runtime session: a normalised ``(N, C, H, W)`` batch -> probabilities ``(N, K)``.

    Checked against the torch module on a random batch (:func:`check_logits`). A cached graph that disagrees
    (stored by other code under the same key: a cache copied from elsewhere, a user's helper function or
    notebook cell edited since) is built again and checked again; a fresh graph that disagrees raises
    :class:`ExportError` instead of giving different results, and is removed from the cache (a later use
    exports it anew, never taking it for a stale cache's). For a module of ferhub's own classes
    (:func:`trusted`) the graph's key hashes the weights and all the code, so a graph that passed passes
    again: the cache records the pass (with the graph's hash) and later uses skip the check. Any other module
    is checked every time.
    """

    def __init__(self, model: nn.Module, threads: int = 1) -> None:
        self.config = model.config
        key = classifier_key(model)
        build = functools.partial(build_classifier_graph, model)
        stored = is_cached(key)
        self.session, graph = cached_session(key, build, threads)
        keep = trusted(model)
        if keep and _passed(key, graph):
            return
        try:
            try:
                diff = self._check(model)
            except ExportError as e:
                if not stored:  # built just now: building again gives the same graph
                    raise
                graph = rebuild(key, build, f"failed its check ({e})")
                self.session = session(graph, threads)
                diff = self._check(model)
        except ExportError:
            # a graph that disagrees with its module is not kept: left in the cache, every later Predictor
            # took it for a stale cache's (and said so), built it again and failed again
            discard(key)
            raise
        if keep:
            _record_passed(key, graph, diff)

    def _check(self, model: nn.Module) -> float:
        """The session's logits against ``model``'s on a random batch (:func:`check_logits`)."""
        size, channels = self.config.input_size, self.config.channels
        probe = np.random.default_rng(0).standard_normal((2, channels, size, size)).astype(np.float32)
        got = self.session.run(None, {"input": probe})[0]
        return check_logits(self.config.architecture, torch_logits(model, probe), got)

    @classmethod
    def from_graph(cls, config: Any, graph: bytes, threads: int = 1) -> OnnxClassifier:
        """A session of a graph that passed its check already (see :func:`repo_classifier`)."""
        self = cls.__new__(cls)
        self.config = config
        self.session = session(graph, threads)
        return self

    def __call__(self, batch: np.ndarray | torch.Tensor) -> np.ndarray:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        return softmax(self.session.run(None, {"input": x})[0])


# -- warm starts: a model repo's graph found from its files, without torch ----------------------------------
def _repo_key(folder: Path) -> str | None:
    """A hash of a repo's ``config.json`` and weights bytes and of :func:`source_hash`: equal keys mean the
    same files loaded by the same ferhub into the same module. ``None`` when a file cannot be read."""
    from ferhub.hub._layout import CONFIG_NAME, WEIGHTS_NAME

    h = hashlib.sha256(f"classifier {source_hash()}".encode())
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        try:
            data = (folder / name).read_bytes()
        except OSError:
            return None
        h.update(f"{name}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()


def _repo_path(repo_key: str) -> Path:
    return _cache_folder() / f"{repo_key}.repo.json"


def remember_repo(folder: Path, model: nn.Module) -> None:
    """Record which cached graph the files of ``folder`` make (``model`` was loaded from them and its graph
    passed its check), for :func:`repo_classifier`. Only if a fresh load of the folder hashes to ``model``'s
    key, so that neither a module changed after loading nor files changed meanwhile are recorded."""
    from ferhub.hub._repo import load_folder

    repo_key = _repo_key(folder)
    if repo_key is None or not trusted(model):  # a module checked on every use is never run unchecked
        return
    key = classifier_key(model)
    try:
        fresh = classifier_key(load_folder(folder))
    except (ModelLoadError, OSError, ValueError):  # the folder changed meanwhile: nothing to record
        return
    if fresh != key or _repo_key(folder) != repo_key:
        return
    _store(_repo_path(repo_key), json.dumps({"graph": key}).encode())


def repo_classifier(folder: Path, config: Any, threads: int = 1) -> OnnxClassifier | None:
    """The classifier of repo ``folder`` (its ``config``) from the cache: the graph :func:`remember_repo`
    recorded for these files, if it is still there and passed its check (:func:`_passed`). ``None``
    otherwise; the caller then loads the model in torch."""
    repo_key = _repo_key(folder)
    if repo_key is None:
        return None
    record = _repo_path(repo_key)  # outside the try: a wrong cache bound is told, not taken for no record
    try:
        key = json.loads(record.read_text())["graph"]
        if not (isinstance(key, str) and re.fullmatch("[0-9a-f]{64}", key)):
            return None
        graph = _MEMORY.get(key) or _cache_path(key).read_bytes()
    except (OSError, ValueError, KeyError, TypeError):  # absent, unreadable or from another ferhub
        return None
    if not _passed(key, graph):
        return None
    _touch(_cache_path(key))  # a warm start uses it: the last the cache's bound removes
    _remember(key, graph)
    return OnnxClassifier.from_graph(config, graph, threads)
