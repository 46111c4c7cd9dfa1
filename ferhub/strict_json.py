"""JSON that every parser accepts: NaN and infinity become ``null`` instead of Python's bare ``NaN``.

Python's ``json`` writes ``NaN``/``Infinity``, which is not JSON: browsers, ``jq`` and strict parsers reject
the whole document. A model with finite weights can still overflow to a NaN probability, so everything ferhub
prints or writes as JSON for people and other programs goes through :func:`dumps`.

>>> dumps({"p": float("nan"), "q": [1.5, float("inf")]})
'{"p": null, "q": [1.5, null]}'
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (numpy scalars and arrays become lists)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy scalars and arrays
        return finite(value.tolist())
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`finite` ``(value)``; refuses (rather than writes) anything still not JSON."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)
