"""Streamed output of ``ferhub predict``: JSON, CSV and table writers for photo and video results.

Each writer writes a result the moment it exists and keeps nothing but counters, so output memory is flat in
the number of photos and the length of videos. Whatever was written when the run stops (Ctrl-C included)
stays valid: JSON closes its open arrays, CSV only ever writes whole rows.

CSV (one schema for photos and videos): ``path,frame,time,face_id,x1,y1,x2,y2,score,label`` then one column
per class probability; with several models a ``model`` column follows and each face has one row per model.
Photos leave ``frame`` and ``time`` empty; their ``face_id`` is the face's number (1-based, left to right).

File names are written as text every format can hold: the bytes of a name that are not UTF-8 (legal on
Linux: a Latin-1 ``caf\\xe9.jpg`` from an old zip) as ``\\xNN`` escapes, the same in JSON, CSV, the table and
on stderr (:func:`encodable`). In CSV, a text cell (path, label, model) that a spreadsheet would read as a
formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a ``'`` in front, as
OWASP recommends against CSV injection (:func:`csv_text`); numbers are never changed.
"""

from __future__ import annotations

import csv
import re
from typing import Any, TextIO

from ferhub import strict_json as json  # NaN/inf are written as null: always valid JSON

_SURROGATE = re.compile("[\ud800-\udfff]")
# what makes a spreadsheet (Excel, LibreOffice, Google Sheets) read a cell as a formula (OWASP, CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ... unless the whole cell is a plain decimal number ("-1", "+0.5", "-2e-3": a class or model named so),
# which every spreadsheet reads as that number, never a formula (as defusedcsv leaves numbers alone)
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _escape_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    # Python holds a name's undecodable byte B as the lone surrogate U+DC00+B (os.fsdecode's surrogateescape)
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def encodable(text: object) -> str:
    """``text`` that encodes to UTF-8: the bytes of a file name that are not UTF-8, which Python holds as lone
    surrogates, written as ``\\xNN`` escapes.

    >>> encodable("caf\\udce9.jpg")  # os.fsdecode(b"caf\\xe9.jpg")
    'caf\\\\xe9.jpg'
    """
    return _SURROGATE.sub(_escape_surrogate, str(text))


def _encodable_all(value: Any) -> Any:
    """``value`` with :func:`encodable` applied to every string in it (keys too)."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, dict):
        return {_encodable_all(k): _encodable_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encodable_all(v) for v in value]
    return value


def csv_text(text: object) -> str:
    """A CSV text cell: :func:`encodable`, with a ``'`` in front where a spreadsheet would read a formula (a
    plain number, such as a class named ``-1``, stays as it is).

    >>> csv_text('=HYPERLINK("http://x")'), csv_text("photo.jpg"), csv_text("-1")
    ('\\'=HYPERLINK("http://x")', 'photo.jpg', '-1')
    """
    text = encodable(text)
    return "'" + text if text.startswith(FORMULA_START) and not _NUMBER.fullmatch(text) else text


def printable(text: object) -> str:
    """``text`` on one line: control characters (a newline in a file name) and a name's bytes that are not
    UTF-8 shown as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in encodable(text))


def photo_entry(result: Any) -> dict[str, Any]:
    return _encodable_all({"kind": "image", **result.to_dict()})


class JsonWriter:
    """A JSON array of entries (``array=False``: one entry, for a per-input result file); a video's frames
    are streamed inside its entry, one frame per line."""

    def __init__(self, out: TextIO, *, array: bool = True) -> None:
        self.out, self.array = out, array
        self._count = 0
        self._frames = 0

    def begin(self) -> None:
        if self.array:
            self.out.write("[")

    def _next_entry(self) -> None:
        if self.array:
            self.out.write("\n" if self._count == 0 else ",\n")
        self._count += 1

    def photo(self, result: Any) -> None:
        self._next_entry()
        text = json.dumps(photo_entry(result), indent=2)
        self.out.write("\n".join("  " + line for line in text.splitlines()) if self.array else text)

    def error(self, path: str, kind: str, message: str) -> None:
        self._next_entry()
        self.out.write(
            ("  " if self.array else "")
            + json.dumps(_encodable_all({"path": path, "kind": kind, "error": message}))
        )

    def video_begin(self, run: Any) -> None:
        self._next_entry()
        head = json.dumps(_encodable_all({"kind": "video", **run.header()}))
        self.out.write(("  " if self.array else "") + head[:-1] + ', "frames": [')
        self._frames = 0

    def video_frame(self, run: Any, frame: Any) -> None:
        text = json.dumps(_encodable_all(frame.to_dict()))  # model names are the user's text
        self.out.write(("\n    " if self._frames == 0 else ",\n    ") + text)
        self._frames += 1

    def video_end(self, run: Any, *, interrupted: bool) -> None:
        tail = {
            "frames_analysed": run.frames_done,
            "tracks": run.summaries(),
            "error": run.error,
            "interrupted": interrupted,
        }
        self.out.write(("\n  " if self._frames else "") + "], " + json.dumps(_encodable_all(tail))[1:])

    def end(self) -> None:
        self.out.write("\n]\n" if self.array else "\n")
        self.out.flush()


class CsvWriter:
    """One row per face (per model) per photo or analysed frame, in the schema of the module docstring.

    Its text cells (the path, the label, the model, and the header's class names) go through
    :func:`csv_text`: one that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return, which a
    spreadsheet would run as a formula (``=HYPERLINK(...).jpg``), gets a ``'`` in front (OWASP's defence
    against CSV injection; a program reading the CSV sees the quote). Number cells are written as numbers,
    never changed (a box's ``-3.5`` stays a number). A name's bytes that are not UTF-8 are ``\\xNN``
    escapes, so the CSV is always UTF-8.
    """

    BASE = ("path", "frame", "time", "face_id", "x1", "y1", "x2", "y2", "score", "label")

    def __init__(self, out: TextIO, models: list[str], labels: list[tuple[str, ...]]) -> None:
        self.out = out
        self.models = models
        self.columns: list[str] = []
        for ls in labels:
            self.columns += [k for k in ls if k not in self.columns]
        self._w = csv.writer(out)

    def begin(self) -> None:
        labels = [csv_text(k) for k in self.columns]
        self._w.writerow([*self.BASE, *labels, *(["model"] if len(self.models) > 1 else [])])

    def _row(
        self, path: str, frame: Any, time: Any, face_id: int, face: Any, model: str, label: str, probs: dict
    ) -> None:
        box = [f"{v:.1f}" for v in face.box]
        values = [f"{probs[k]:.6f}" if k in probs else "" for k in self.columns]
        extra = [csv_text(model)] if len(self.models) > 1 else []
        score = f"{face.score:.4f}"
        self._w.writerow(
            [csv_text(path), frame, time, face_id, *box, score, csv_text(label), *values, *extra]
        )

    def photo(self, result: Any) -> None:
        for i, f in enumerate(result.faces, 1):
            for pred in f.predictions:
                self._row(str(result.path), "", "", i, f.face, pred.model, pred.label, pred.probabilities)

    def error(self, path: str, kind: str, message: str) -> None:
        """Errors go to stderr only: the CSV holds face rows."""

    def video_begin(self, run: Any) -> None:
        pass

    def video_frame(self, run: Any, frame: Any) -> None:
        time = f"{frame.time:.4f}"
        for f in frame.faces:
            for name, labels, raw in zip(run.models, run.labels, f.raw):
                probs = dict(zip(labels, (float(v) for v in raw)))
                label = labels[int(raw.argmax())]
                self._row(run.path, frame.index, time, f.track_id, f.face, name, label, probs)

    def video_end(self, run: Any, *, interrupted: bool) -> None:
        self.out.flush()

    def end(self) -> None:
        self.out.flush()


class TableWriter:
    """Human-readable lines: each photo's faces (numbered from 1, left to right); each video's people."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def begin(self) -> None:
        pass

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")

    def photo(self, r: Any) -> None:
        if r.error:  # no size to show: the line says what went wrong, as a failed video's does
            self.error(str(r.path), "image", r.error)
            return
        fallback = any(not f.face.face_found for f in r.faces)  # --no-face fallback: no face, the whole image
        found = "no face found, whole image classified" if fallback else f"{len(r.faces)} face(s)"
        self._line(f"{printable(r.path)} ({r.width}x{r.height}): {found}")
        for i, f in enumerate(r.faces, 1):
            x1, y1, x2, y2 = (round(v) for v in f.face.box)
            for pred in f.predictions:
                top = sorted(pred.probabilities.items(), key=lambda kv: -kv[1])[:3]
                probs = ", ".join(f"{k} {v:.2f}" for k, v in top)
                self._line(
                    f"  face {i} [{x1},{y1},{x2},{y2}] score {f.face.score:.3f}  "
                    f"{printable(pred.model)}: {pred.label}  ({probs})"
                )

    def error(self, path: str, kind: str, message: str) -> None:
        message = message.removeprefix(f"{path}: ")  # most messages name their file: name it once
        self._line(f"{printable(path)}: ERROR {printable(message)}")

    def video_begin(self, run: Any) -> None:
        i = run.info
        duration = f"{i.duration:.1f} s" if i.duration is not None else "unknown length"
        fps = f"{i.fps:.2f} fps" if i.fps else "unknown rate"
        self._line(f"{printable(run.path)} (video {i.width}x{i.height}, {duration}, {fps})")

    def video_frame(self, run: Any, frame: Any) -> None:
        pass

    def video_end(self, run: Any, *, interrupted: bool) -> None:
        from ferhub.timeline import summary_rows

        tracks = run.summaries()
        note = " (interrupted)" if interrupted else ""
        self._line(f"  {run.frames_done} frames analysed, {len(tracks)} face track(s){note}")
        # one line per person, or per person and model (named) where several models ran, as the Video tab
        # and `ferhub report --video` show them
        for face, first, last, seconds, dominant, shares, _ in summary_rows(tracks):
            self._line(
                f"  face {printable(str(face))}: {first:.2f}-{last:.2f} s, {seconds:.1f} s on screen,"
                f" mostly {dominant} ({shares})"
            )
        if run.error:
            self._line(f"  ERROR {printable(run.error)}")

    def end(self) -> None:
        self.out.flush()


def make_writer(fmt: str, out: TextIO, predictor: Any, *, array: bool = True) -> Any:
    if fmt == "json":
        return JsonWriter(out, array=array)
    if fmt == "csv":
        return CsvWriter(out, list(predictor.names), [tuple(c.labels) for c in predictor.configs])
    return TableWriter(out)
