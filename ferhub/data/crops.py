"""Faces detected once per image (:class:`FaceCache`, on disk, keyed by pixel content) and a source turned
into one in-memory ``uint8`` array of face crops for a model config (:func:`materialize`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ferhub.data.sources import ArraySource, DataSourceError, LabeledSource
from ferhub.errors import ArchiveRefused, ImageDecodeError

log = logging.getLogger(__name__)

# What reading one image of a source raises when its file (or zip member) is damaged, empty, or over a cap of
# ferhub.archives. Such an image is skipped and counted: one bad file never loses the rest of the data.
UNREADABLE_IMAGE_ERRORS: tuple[type[Exception], ...] = (
    ImageDecodeError,
    ArchiveRefused,
    OSError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
)


def read_image(source: LabeledSource, i: int, unreadable: dict[int, str]) -> Image.Image | None:
    """Image ``i`` of ``source``, or ``None`` after noting in ``unreadable`` (index -> why) that it cannot be
    decoded."""
    try:
        return source.image(i)
    except UNREADABLE_IMAGE_ERRORS as e:
        # BadZipFile's own text ("Bad CRC-32 for file ...") does not say what kind of failure it is
        unreadable[i] = f"{type(e).__name__}: {e}" if isinstance(e, zipfile.BadZipFile) else str(e)
        return None


def first_unreadable(source: LabeledSource, unreadable: dict[int, str]) -> str:
    """The first image of ``unreadable`` (index -> why) and why it cannot be decoded, for a one-line
    message."""
    first, why = next(iter(unreadable.items()))
    where = source.path_of(first) or f"image {first}"
    why = why if why.startswith(where) else f"{where}: {why}"  # ferhub's decode errors name the file already
    return why[:300]


def image_key(image: Image.Image) -> str:
    """Content hash of decoded pixels: the same picture under another name or format reuses its detection."""
    h = hashlib.sha1(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def default_cache_dir() -> Path:
    """``$FERHUB_CACHE/faces``, else ``$XDG_CACHE_HOME/ferhub/faces``, else ``~/.cache/ferhub/faces`` (where
    torch and Hugging Face keep theirs: a container with a read-only home points XDG_CACHE_HOME elsewhere)."""
    if os.environ.get("FERHUB_CACHE"):
        return Path(os.environ["FERHUB_CACHE"]) / "faces"
    user = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(user).expanduser() / "ferhub" / "faces"


def _home_cache_file(path: Path) -> Path | None:
    """The file ``~/.cache/ferhub/faces/<name of path>``, where an earlier ferhub kept the cache whatever
    XDG_CACHE_HOME said, when it exists and ``path`` (in the default folder, XDG_CACHE_HOME's) is another
    file that does not; else ``None``. ``$FERHUB_CACHE`` was always used where set: nothing moved then."""
    if os.environ.get("FERHUB_CACHE"):
        return None
    try:
        old = Path.home() / ".cache" / "ferhub" / "faces" / path.name
        return old if old.is_file() and not path.exists() and old.resolve() != path.resolve() else None
    except (OSError, RuntimeError, KeyError):  # no home to find (RuntimeError), or none to read
        return None


def _writable(path: Path) -> bool:
    """Whether this process may append to the file ``path``."""
    return os.access(path, os.W_OK)


class FaceCache:
    """Face detections stored by image content hash, so each image is detected once, ever.

    Detections (the top-scoring face, or ``None`` when none was found) are appended to a JSONL file named
    after the detector settings, under ``cache_dir`` (default :func:`default_cache_dir`); ``cache_dir=None``
    with ``persist=False`` keeps them in memory only. The cache is only a speed-up: one that cannot be read or
    written (a read-only home, a full disk) is said in one warning and the detections are kept in memory.
    ``detector`` is a ``ferhub.faces.FaceDetector`` (created on first use when omitted).

    A face is kept at full float precision, so a cached face crops exactly what ``predict`` crops from the
    same detection. Lines of files written before (boxes rounded to 0.01 px, no ``"exact"`` mark) are read
    but not used: those images are detected once more and the exact face appended.
    """

    def __init__(
        self,
        detector: Any = None,
        *,
        cache_dir: str | Path | None = None,
        persist: bool = True,
        signature: str | None = None,
    ) -> None:
        self._detector = detector
        self.signature = signature or _detector_signature(detector)
        self.path = (Path(cache_dir) if cache_dir else default_cache_dir()) / f"{self.signature}.jsonl"
        self.persist = persist
        self.entries: dict[str, dict[str, Any] | None] = {}
        self.detections_run = 0
        # the cache of a ferhub that kept it in ~/.cache whatever XDG_CACHE_HOME said, else every image was
        # detected again (hours for a large set) and the old file forgotten: used where it is while it can be
        # written there (a home that persists beside a scratch XDG_CACHE_HOME per job copied it every job),
        # else copied to the folder XDG_CACHE_HOME names (a read-only home)
        old = _home_cache_file(self.path) if persist and not cache_dir else None
        if old is not None and _writable(old):
            self.path = old
        elif old is not None:
            self._move_in(old)
        if persist and self.path.is_file():
            try:
                text = self.path.read_text()
            except (OSError, UnicodeError) as e:
                self._unusable(e)
                text = ""
            for line in text.splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill: detect that image again
                    continue
                if not isinstance(rec, dict) or not rec.get("exact") or "key" not in rec:
                    continue  # a face rounded to 0.01 px (an older ferhub's line): detect that image again
                self.entries[rec["key"]] = rec.get("face")

    def _move_in(self, old: Path) -> None:
        """Copy the cache file ``old`` to :attr:`path` (said once: the next run finds it there); a copy that
        fails leaves the detections to be read from ``old`` for this run."""
        from ferhub.fileio import atomic_path

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.path) as tmp:  # never a part of it: a cut line would stay forgotten
                shutil.copyfile(old, tmp)  # streamed: a cache of a large set is tens of MB
        except OSError as e:
            log.warning(
                "the face-detection cache %s cannot be copied to %s (%s); reading it where it is",
                old,
                self.path,
                getattr(e, "strerror", None) or e,
            )
            self.path = old  # read from there (and written there, where that can be done)
            return
        log.warning(
            "the face-detection cache is now in %s (XDG_CACHE_HOME): copied from %s, which cannot be written",
            self.path.parent,
            old,
        )

    @property
    def detector(self) -> Any:
        if self._detector is None:
            from ferhub.faces import FaceDetector

            self._detector = FaceDetector()
        return self._detector

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def get_many(self, images: Sequence[Image.Image], keys: Sequence[str] | None = None) -> list[Any]:
        """The top :class:`ferhub.faces.Face` of each image (``None`` when no face), detecting only misses."""
        from ferhub.faces import Face

        keys = list(keys) if keys is not None else [image_key(im) for im in images]
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in self.entries:
                first.setdefault(k, i)  # the same picture twice in one batch is detected once
        missing = list(first.values())
        if missing:
            found = self.detector.detect_batch([images[i] for i in missing])
            self.detections_run += len(missing)
            new = {}
            for i, faces in zip(missing, found):
                top = _face_record(faces[0]) if faces else None
                self.entries[keys[i]] = new[keys[i]] = top
            if self.persist:
                self._append(new)
        return [_face_from_dict(Face, self.entries[k]) for k in keys]

    def _append(self, new: dict[str, Any]) -> None:
        """Append detections to the file; a full disk leaves at most a line cut short, which is read back as
        one to detect again."""
        text = "".join(json.dumps({"key": k, "face": v, "exact": True}) + "\n" for k, v in new.items())
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as f:
                f.write(text)
        except OSError as e:
            self._unusable(e)

    def _unusable(self, e: OSError | UnicodeError) -> None:
        """Go on in memory, said once: the cache file cannot be read or written (``e``)."""
        self.persist = False
        why = getattr(e, "strerror", None) or e
        log.warning(
            "the face-detection cache %s cannot be used (%s); detections are kept in memory for this run."
            " Fix: set FERHUB_CACHE (or XDG_CACHE_HOME) to a writable folder with free space",
            self.path,
            why,
        )


def _face_record(face: Any) -> dict[str, Any]:
    """A face as the cache stores it: every coordinate and the score at full float precision (JSON writes
    a float's shortest exact decimals), unlike :meth:`~ferhub.faces.Face.to_dict`'s rounded display form."""
    return {
        "box": [float(v) for v in face.box],
        "score": float(face.score),
        "landmarks": None if face.landmarks is None else [[float(x), float(y)] for x, y in face.landmarks],
        "face_found": bool(face.face_found),
    }


def _face_from_dict(face_cls: Any, d: dict[str, Any] | None) -> Any:
    if d is None:
        return None
    lm = d.get("landmarks")
    return face_cls(
        box=tuple(float(v) for v in d["box"]),
        score=float(d["score"]),
        landmarks=tuple((float(p[0]), float(p[1])) for p in lm) if lm else None,
        face_found=bool(d.get("face_found", True)),
    )


_DETECTOR_SETTINGS = ("min_face_size", "thresholds", "max_side")


def _detector_signature(detector: Any) -> str:
    """Name of the cache file: detections of differently configured detectors are kept apart, while the
    default detector (built later, or given) and any equal one share a file. The device is left out."""
    if detector is None:
        import inspect

        from ferhub.faces import FaceDetector

        params = inspect.signature(FaceDetector).parameters
        settings = {k: params[k].default for k in _DETECTOR_SETTINGS if k in params}
    else:
        settings = {k: getattr(detector, k) for k in _DETECTOR_SETTINGS if hasattr(detector, k)}
    text = json.dumps(
        {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}, sort_keys=True
    )
    return f"mtcnn-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


# --------------------------------------------------------------------------------------- materialised crops
@dataclass
class Crops:
    """Face crops of a source for one model config, held in memory as ``uint8`` (N, S, S[, 3])."""

    images: np.ndarray
    targets: np.ndarray
    labels: tuple[str, ...]
    no_face: int = 0  # images where no face was found (seed 004: the whole image was used instead)
    skipped: int = 0  # images dropped because no face was found and fallback was off
    detections_run: int = 0
    # per crop: True where no face was found and the whole image stands in (None: not tracked, all faces)
    fallback: np.ndarray | None = None
    # source index -> why, for the images left out because they could not be decoded
    unreadable: dict[int, str] = field(default_factory=dict)
    # per crop: a digest of its pixels (:meth:`content_keys`; None until first asked for)
    keys: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def content_keys(self) -> np.ndarray:
        """A digest (sha1, ``S20``) of each crop's pixels, computed once: equal keys are pixel-identical
        crops, what the model sees of the same picture twice (a data set's exact duplicates, under any name
        or format). From the crops in memory, so no image is decoded again."""
        if self.keys is None:
            rows = np.ascontiguousarray(self.images).reshape(len(self.images), -1)
            self.keys = np.array([hashlib.sha1(row).digest() for row in rows], dtype="S20")
        return self.keys


def materialize(
    source: LabeledSource,
    config: Any,
    *,
    indices: Sequence[int] | np.ndarray | None = None,
    cache: FaceCache | None = None,
    precropped: bool | None = None,
    no_face: str = "fallback",
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> Crops:
    """Decode, detect (once, through ``cache``) and crop every image for ``config``, into one array.

    ``precropped`` (default: ``source.precropped``) skips detection and resizes the whole image;
    ``no_face="fallback"`` uses the whole image when no face is found (seed 004) and counts it,
    ``"skip"`` drops the image. An image that cannot be decoded is left out and noted in ``unreadable``;
    :class:`~ferhub.data.DataSourceError` when that leaves none.
    """
    if no_face not in ("fallback", "skip"):
        raise ValueError(f"no_face must be 'fallback' or 'skip', got {no_face!r}")
    precropped = source.precropped if precropped is None else precropped
    idx = np.arange(len(source)) if indices is None else np.asarray(indices, dtype=np.int64)
    shape = (config.input_size, config.input_size) + (() if config.channels == 1 else (3,))
    out = np.empty((len(idx), *shape), dtype=np.uint8)
    keep = np.ones(len(idx), dtype=bool)
    fallback = np.zeros(len(idx), dtype=bool)
    n_no_face = 0
    unreadable: dict[int, str] = {}
    bad = np.zeros(len(idx), dtype=bool)  # rows whose image could not be decoded
    before = cache.detections_run if cache is not None else 0
    if precropped and isinstance(source, ArraySource) and source.images.shape[1:] == shape:
        out[:] = source.images[idx]  # FER2013 rows already at the model's size: no decode at all
        if source.errors:  # rows whose pixels could not be read: skipped and counted, as undecodable files
            for j in np.flatnonzero(np.isin(idx, list(source.errors))):
                bad[j] = read_image(source, int(idx[j]), unreadable) is None
    elif precropped:
        _resize_whole(source, config, idx, out, bad, unreadable, progress)
    else:
        cache = cache if cache is not None else FaceCache()
        n_no_face = _crop_faces(
            source,
            config,
            idx,
            out,
            keep,
            fallback,
            cache,
            bad,
            unreadable,
            no_face=no_face,
            batch_size=batch_size,
            progress=progress,
        )
    if len(idx) and bad.all():
        raise DataSourceError(
            f"{source.name}: none of its {len(idx)} images could be decoded "
            f"(first: {first_unreadable(source, unreadable)}); check the files"
        )
    skipped = int((~keep).sum())  # no face, with no_face="skip"
    keep &= ~bad
    return Crops(
        images=out[keep],
        targets=source.targets[idx][keep],
        labels=source.labels,
        no_face=n_no_face,
        skipped=skipped,
        detections_run=(cache.detections_run - before) if cache is not None else 0,
        fallback=fallback[keep],
        unreadable=unreadable,
    )


def _resize_whole(
    source: LabeledSource,
    config: Any,
    idx: np.ndarray,
    out: np.ndarray,
    bad: np.ndarray,
    unreadable: dict[int, str],
    progress: Callable[[int, int], None] | None,
) -> None:
    """Fill ``out`` with the whole images at ``idx`` (already face crops) resized for ``config``; an image
    that cannot be decoded sets ``bad`` and goes into ``unreadable``."""
    from ferhub.transforms import crop_to_array

    for j, i in enumerate(idx):
        image = read_image(source, int(i), unreadable)
        if image is None:
            bad[j] = True
        else:
            out[j] = crop_to_array(image, config)
        if progress and j % 256 == 0:
            progress(j, len(idx))


def _crop_faces(
    source: LabeledSource,
    config: Any,
    idx: np.ndarray,
    out: np.ndarray,
    keep: np.ndarray,
    fallback: np.ndarray,
    cache: FaceCache,
    bad: np.ndarray,
    unreadable: dict[int, str],
    *,
    no_face: str,
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Fill ``out`` with the face crops of the images at ``idx``, detected in batches through ``cache``.

    Where no face is found the whole image stands in and ``fallback`` is set (``no_face="fallback"``), or
    ``keep`` is cleared (``"skip"``); an image that cannot be decoded sets ``bad`` and goes into
    ``unreadable``. Returns the number of images without a face."""
    from ferhub.faces import crop_face, whole_image_face
    from ferhub.transforms import crop_to_array

    n_no_face = 0
    for start in range(0, len(idx), batch_size):
        rows, images = [], []
        for j in range(start, min(start + batch_size, len(idx))):
            im = read_image(source, int(idx[j]), unreadable)
            if im is None:
                bad[j] = True
            else:
                rows.append(j)
                images.append(im)
        faces = cache.get_many(images)
        for j, im, face in zip(rows, images, faces):
            if face is None:
                n_no_face += 1
                if no_face == "skip":
                    keep[j] = False
                    continue
                face, fallback[j] = whole_image_face(im), True
            out[j] = crop_to_array(crop_face(im, face, config), config)
        if progress:
            progress(min(start + batch_size, len(idx)), len(idx))
    return n_no_face
