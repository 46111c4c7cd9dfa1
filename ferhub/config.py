"""A model's ``config.json``: everything needed to rebuild and use it, and nothing declared elsewhere.

The contract is strict: unknown or missing keys, wrong types, out-of-range or non-finite values are refused
with a short message naming the key and what to write instead (a hostile or hand-edited file never reaches the
model builder). Messages quote values through :func:`brief`, so a 5 MB value gives a one-line error.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ferhub.errors import ConfigError
from ferhub.labels import FER8, canonical_labels

CONFIG_NAME = "config.json"
FORMAT_VERSION = 1
MAX_CONFIG_BYTES = 1 << 20  # a real config.json is well under 2 KB
MAX_INPUT_SIZE = 1024  # the largest network here takes 331 px; a face crop never needs more
INTERPOLATIONS = ("bilinear", "bicubic", "nearest", "area")
# model_args hold builder keyword arguments: small JSON values only
_MAX_ARG_ITEMS = 256
_MAX_ARG_DEPTH = 4
_MAX_STR = 512


def brief(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: error messages stay one short line whatever the input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def _type_name(value: Any) -> str:
    return {bool: "true/false", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_list(value: Any) -> bool:
    """A list, tuple or other sequence, but not a string or bytes (of characters, of byte values)."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))


def _check_json_value(value: Any, where: str, depth: int = 0) -> None:
    """``value`` is a small, finite JSON value (what a builder keyword argument can be)."""
    if depth > _MAX_ARG_DEPTH:
        raise ConfigError(
            f"{where} nests deeper than {_MAX_ARG_DEPTH} levels; give plain values or short lists"
        )
    if value is None or isinstance(value, bool) or _is_int(value):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where} is {value}; give a finite number")
        return
    if isinstance(value, str):
        if len(value) > _MAX_STR:
            raise ConfigError(f"{where} is a string of {len(value):,} characters; at most {_MAX_STR}")
        return
    if isinstance(value, (list, tuple, dict)):
        if len(value) > _MAX_ARG_ITEMS:
            raise ConfigError(f"{where} has {len(value):,} items; at most {_MAX_ARG_ITEMS}")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            if isinstance(value, dict) and not isinstance(k, str):
                raise ConfigError(f"{where} has a non-string key {brief(k)}")
            _check_json_value(v, f"{where}[{brief(k, 30)}]", depth + 1)
        return
    raise ConfigError(f"{where} is {_type_name(value)}; give a number, string, true/false, list or object")


def _check_labels(labels: Any) -> None:
    if not _is_list(labels):
        raise ConfigError(f"labels must be a list of label names, got {_type_name(labels)} {brief(labels)}")
    if not labels or len(labels) > len(FER8):
        raise ConfigError(
            f"labels lists {len(labels):,} names; a model predicts 1 to {len(FER8)} of: {', '.join(FER8)}"
        )
    for name in labels:
        if not isinstance(name, str) or len(name) > 40:
            raise ConfigError(f"labels must be short label names (strings), got {brief(name)}")


def _check_triplet(name: str, values: Any, channels: int) -> tuple[float, ...]:
    if hasattr(values, "tolist"):  # a numpy array (or number): its Python numbers, checked as any others
        values = values.tolist()
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = (values,)  # a single number for a gray model
    if not _is_list(values) or len(values) != channels:
        raise ConfigError(f"{name} needs {channels} number(s), one per channel, got {brief(values)}")
    if not all(_is_real(v) for v in values):
        raise ConfigError(f"{name} must hold finite numbers, got {brief(values)}")
    return tuple(float(v) for v in values)


@dataclass
class ModelConfig:
    """How to rebuild a model (architecture + kwargs) and how to feed it (labels, crop, preprocessing).

    ``mean``/``std`` apply to pixels scaled to [0, 1]; ``crop_margin`` is the fraction of the detected box
    added on every side; ``crop_square`` expands the box to a square around its centre before the margin.
    ``align``: ``False`` (the box as detected), ``True`` (turned so the eyes are level) or ``"similarity"``
    (the five landmarks mapped onto a fixed template, see :func:`ferhub.faces.crop_face`).
    """

    architecture: str
    labels: Sequence[str]  # any sequence of names (not one string); stored as a tuple
    model_args: dict[str, Any] = field(default_factory=dict)
    input_size: int = 64
    channels: int = 1
    mean: Sequence[float] = (0.5,)  # stored as tuples of floats
    std: Sequence[float] = (0.5,)
    crop_margin: float = 0.1
    crop_square: bool = True
    align: bool | str = False
    interpolation: str = "bilinear"
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not _is_int(self.format_version) or self.format_version < 1:
            raise ConfigError(
                f"format_version must be the integer {FORMAT_VERSION}, got {_type_name(self.format_version)} "
                f"{brief(self.format_version)}"
            )
        if self.format_version > FORMAT_VERSION:
            raise ConfigError(
                f"config format_version {self.format_version} is newer than this ferhub understands "
                f"({FORMAT_VERSION}); upgrade ferhub"
            )
        if not isinstance(self.architecture, str) or not 0 < len(self.architecture) <= 100:
            raise ConfigError(
                "architecture must be a registered architecture name (a string), got"
                f" {brief(self.architecture)}"
            )
        _check_labels(self.labels)
        self.labels = canonical_labels(self.labels)
        if not isinstance(self.model_args, dict):
            raise ConfigError(
                f"model_args must be an object of builder keyword arguments (e.g. {{}}), got "
                f"{_type_name(self.model_args)} {brief(self.model_args)}"
            )
        _check_json_value(self.model_args, "model_args")
        if not _is_int(self.channels) or self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (gray) or 3 (RGB), got {brief(self.channels)}")
        self.mean = _check_triplet("mean", self.mean, self.channels)
        self.std = _check_triplet("std", self.std, self.channels)
        if any(not 1e-6 <= s <= 1e3 for s in self.std) or any(abs(m) > 1e3 for m in self.mean):
            raise ConfigError(
                f"std must be in [1e-6, 1000] and mean in [-1000, 1000] (pixels are scaled to [0, 1]), got "
                f"mean {brief(self.mean)}, std {brief(self.std)}"
            )
        if not _is_int(self.input_size) or not 8 <= self.input_size <= MAX_INPUT_SIZE:
            raise ConfigError(
                f"input_size must be an integer from 8 to {MAX_INPUT_SIZE} (pixels per side), got "
                f"{brief(self.input_size)}"
            )
        if not _is_real(self.crop_margin) or not 0 <= self.crop_margin <= 2:
            raise ConfigError(
                "crop_margin must be a number in [0, 2] (a fraction of the box), got"
                f" {brief(self.crop_margin)}"
            )
        if not isinstance(self.crop_square, bool):
            raise ConfigError(f"crop_square must be true or false, got {brief(self.crop_square)}")
        if not (isinstance(self.align, bool) or self.align == "similarity"):
            raise ConfigError(f'align must be true, false or "similarity", got {brief(self.align)}')
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"interpolation must be bilinear, bicubic, nearest or area, got {brief(self.interpolation)}"
            )

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = list(self.labels)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> ModelConfig:
        """Build from a parsed config, refusing unknown or missing keys with a message naming ``source``.

        Every field is required (what :meth:`save` writes); the field defaults serve configs built in Python
        (a builder's ``register_model`` settings), never a file's missing key."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {_type_name(data)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(k) for k in set(data) - known)
        if unknown:
            shown = ", ".join(brief(k, 30) for k in unknown[:5]) + (
                f" (+{len(unknown) - 5} more)" if len(unknown) > 5 else ""
            )
            raise ConfigError(f"{source}: unknown keys {shown}; known keys: {', '.join(sorted(known))}")
        # every key is required, as ModelConfig.save has always written them all: a default standing in for a
        # missing one would re-declare the model's preprocessing (a 16 px model fed 64 px crops, silently)
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ConfigError(f"{source}: missing required keys {missing}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{source}: {e}") from e

    def save(self, folder: str | os.PathLike) -> Path:
        path = Path(folder) / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> ModelConfig:
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            raise ConfigError(
                f"{path} not found: a ferhub model folder needs config.json (see ferhub.hub.save)"
            )
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path} is {size / 2**20:.1f} MB; a ferhub config.json is a few KB (re-save the model with "
                "ferhub.hub.save)"
            )
        try:
            data = json.loads(path.read_bytes(), parse_constant=_refuse_constant)
        except _NonFiniteNumber as e:
            raise ConfigError(f"{path}: {e}; give finite numbers") from None
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise ConfigError(
                f"{path} is not valid JSON ({brief(str(e), 120)}); re-save the model with ferhub.hub.save"
            ) from e
        return cls.from_dict(data, source=str(path))


# what a builder's registered defaults and ``create_model``'s (and a recipe's) ``config_overrides`` may set:
# the preprocessing; the model itself is given on its own
_THE_MODEL = ("architecture", "labels", "model_args")
PREPROCESSING_KEYS = tuple(sorted({f.name for f in fields(ModelConfig)} - set(_THE_MODEL)))


def preprocessing_problem(settings: Any) -> str | None:
    """What is wrong with the keys of ``settings`` (``config_overrides``, a builder's registered defaults), as
    the end of a sentence naming them (``"has unknown keys ['inputsize']; known: align, ..."``), or ``None``
    when each is one of :data:`PREPROCESSING_KEYS`. The values are :class:`ModelConfig`'s to check."""
    if not isinstance(settings, Mapping):
        return f"must be an object of ModelConfig fields, got {_type_name(settings)} {brief(settings)}"
    unknown = sorted(str(k) for k in set(settings) - set(PREPROCESSING_KEYS))
    if not unknown:
        return None
    text = f"has unknown keys {unknown}; known: {', '.join(PREPROCESSING_KEYS)}"
    if set(unknown) & set(_THE_MODEL):  # fields of ModelConfig, but no preprocessing
        text += " (architecture, labels and model_args are given on their own)"
    return text


class _NonFiniteNumber(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    # Python's json reads NaN/Infinity, which JSON does not allow; a config holding one is refused.
    raise _NonFiniteNumber(f"it holds {name}, which is not a JSON number")
