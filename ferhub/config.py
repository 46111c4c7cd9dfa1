"""A model's ``config.json``: everything needed to rebuild and use it, and nothing declared elsewhere."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ferhub.errors import ConfigError
from ferhub.labels import canonical_labels

CONFIG_NAME = "config.json"
FORMAT_VERSION = 1


@dataclass
class ModelConfig:
    """How to rebuild a model (architecture + kwargs) and how to feed it (labels, crop, preprocessing).

    ``mean``/``std`` apply to pixels scaled to [0, 1]; ``crop_margin`` is the fraction of the detected box
    added on every side; ``crop_square`` expands the box to a square around its centre before the margin.
    ``align``: ``False`` (the box as detected), ``True`` (turned so the eyes are level) or ``"similarity"``
    (the five landmarks mapped onto a fixed template, see :func:`ferhub.faces.crop_face`).
    """

    architecture: str
    labels: tuple[str, ...]
    model_args: dict[str, Any] = field(default_factory=dict)
    input_size: int = 64
    channels: int = 1
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    crop_margin: float = 0.1
    crop_square: bool = True
    align: bool | str = False
    interpolation: str = "bilinear"
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.labels = canonical_labels(self.labels)
        self.mean = tuple(float(m) for m in self.mean)
        self.std = tuple(float(s) for s in self.std)
        if self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 (gray) or 3 (RGB), got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ConfigError(f"mean/std need {self.channels} values each, got {self.mean} / {self.std}")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"std must be positive, got {self.std}")
        if not isinstance(self.input_size, int) or self.input_size < 8:
            raise ConfigError(f"input_size must be an integer >= 8, got {self.input_size!r}")
        if not 0 <= self.crop_margin <= 2:
            raise ConfigError(
                f"crop_margin must be in [0, 2] (a fraction of the box), got {self.crop_margin}"
            )
        if not (isinstance(self.align, bool) or self.align == "similarity"):
            raise ConfigError(f'align must be true, false or "similarity", got {self.align!r}')
        if self.interpolation not in ("bilinear", "bicubic", "nearest", "area"):
            raise ConfigError(
                f"interpolation must be bilinear, bicubic, nearest or area, got {self.interpolation!r}"
            )
        if self.format_version > FORMAT_VERSION:
            raise ConfigError(
                f"config format_version {self.format_version} is newer than this ferhub understands "
                f"({FORMAT_VERSION}); upgrade ferhub"
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
        """Build from a parsed config, refusing unknown or missing keys with a message naming ``source``."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown keys {unknown}; known keys: {sorted(known)}")
        missing = [k for k in ("architecture", "labels") if k not in data]
        if missing:
            raise ConfigError(f"{source}: missing required keys {missing}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{source}: {e}") from e

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ModelConfig:
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            raise ConfigError(
                f"{path} not found: a ferhub model folder needs config.json (see ferhub.hub.save)"
            )
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(
                f"{path} is not valid JSON ({e}); re-save the model with ferhub.hub.save"
            ) from e
        return cls.from_dict(data, source=str(path))
