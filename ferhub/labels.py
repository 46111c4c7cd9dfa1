"""Canonical expression label sets, aliases, and the label ids of public FER datasets.

ferhub's canonical names are ``angry, disgust, fear, happy, sad, surprise, neutral`` (FER2013's order) and
``contempt`` for 8-class sets. A model's own label order lives in its ``config.json``; these helpers map
whatever a dataset or an upstream model calls a class onto the canonical names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ferhub.errors import UnknownLabelError

FER7: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER8: tuple[str, ...] = (*FER7, "contempt")

ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "smile": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
    "contempt": "contempt",
    "contemptuous": "contempt",
}

# Integer label ids of public datasets, in each dataset's own order.
DATASET_LABELS: dict[str, tuple[str, ...]] = {
    "fer2013": FER7,
    "ferplus": ("neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"),
    "rafdb": ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral"),  # ids 1..7 shifted to 0..6
    "affectnet": ("neutral", "happy", "sad", "surprise", "fear", "disgust", "angry", "contempt"),
    "ckplus": ("neutral", "angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"),
    "jaffe": ("neutral", "happy", "sad", "surprise", "angry", "disgust", "fear"),
}


def canonical(name: str) -> str:
    """Map a label name or alias (any case, spaces or dashes) to ferhub's canonical name.

    >>> canonical("Happiness")
    'happy'
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in ALIASES:
        return ALIASES[key]
    raise UnknownLabelError(
        f"unknown expression label {name!r}; known names and aliases: {', '.join(sorted(ALIASES))}"
    )


def canonical_labels(names: Iterable[str]) -> tuple[str, ...]:
    """Canonicalise a label list, refusing duplicates (two names that mean the same class)."""
    out = tuple(canonical(n) for n in names)
    if len(set(out)) != len(out):
        raise UnknownLabelError(
            f"label list {list(names)!r} names the same class twice after aliasing: {out}"
        )
    return out


def _rank(name: str) -> int:
    return FER8.index(name) if name in FER8 else len(FER8)


def canonical_order(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` in ferhub's order: FER2013's seven (angry ... neutral), then contempt; names outside the
    canonical set (a custom label list) follow, in the order given.

    >>> canonical_order(["neutral", "happy", "contempt", "angry"])
    ('angry', 'happy', 'neutral', 'contempt')
    """
    return tuple(sorted(names, key=_rank))  # stable: unknown names keep their order


def union_labels(*label_lists: Sequence[str]) -> tuple[str, ...]:
    """The one label order for several label lists (a dataset and models, an ensemble's members, results
    compared side by side): the first list's classes in canonical order, then the classes only the other
    lists have, appended, in canonical order.

    >>> union_labels(["sad", "happy"], ["neutral", "happy", "angry"])
    ('happy', 'sad', 'angry', 'neutral')
    """
    if not label_lists:
        return ()
    first = canonical_order(dict.fromkeys(label_lists[0]))
    extra = dict.fromkeys(n for labels in label_lists[1:] for n in labels if n not in first)
    return first + canonical_order(extra)


def class_order(label_lists: Iterable[Sequence[str]]) -> list[str]:
    """The classes of several models (or datasets) in one order for panels shown side by side: ferhub's
    (FER2013's seven, then contempt), then any other class as first seen, so one cell means one thing in
    every panel whichever model comes first.

    >>> class_order([["neutral", "happy", "sad"], ["angry", "happy", "bored"]])
    ['angry', 'happy', 'sad', 'neutral', 'bored']
    """
    return list(canonical_order(dict.fromkeys(name for labels in label_lists for name in labels)))


def dataset_labels(dataset: str) -> tuple[str, ...]:
    """The canonical label names of a dataset's integer ids, e.g. ``dataset_labels("rafdb")``.

    A dataset with no table is an :class:`UnknownLabelError` (a ``ValueError``) that lists the known ones."""
    key = dataset.lower().replace("-", "").replace("_", "").replace("+", "plus")
    if key not in DATASET_LABELS:
        raise UnknownLabelError(
            f"no label table for dataset {dataset!r}; known: {', '.join(DATASET_LABELS)} (any case, '-' and"
            " '_' ignored: 'RAF-DB' is rafdb)"
        )
    return DATASET_LABELS[key]


def index_map(source: Sequence[str], target: Sequence[str]) -> list[int | None]:
    """For each label in ``source``, its index in ``target`` (``None`` when ``target`` lacks it)."""
    pos = {canonical(n): i for i, n in enumerate(target)}
    return [pos.get(canonical(n)) for n in source]
