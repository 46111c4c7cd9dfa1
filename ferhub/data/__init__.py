"""Labelled FER data: image folders, zips of folders, the Kaggle ``fer2013.csv`` and Hugging Face datasets.

Every source opens as a :class:`LabeledSource` (``len``, ``[i] -> (PIL RGB image, int label)``, ``.labels``
in canonical names, ``.targets``); :func:`open_source` picks the reader from the source string.
:class:`FaceCache` runs face detection once per image (keyed by pixel content) and keeps it on disk, and
:func:`materialize` turns a source into one in-memory ``uint8`` array of face crops for a model config, so
training epochs never decode, detect or crop again.

>>> src = open_source("fer2013.csv", split="train")         # doctest: +SKIP
>>> src.labels, len(src), src[0][1]                          # doctest: +SKIP
(('angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'), 28709, 0)
"""

from __future__ import annotations

from ferhub.data.crops import Crops, FaceCache, default_cache_dir, image_key, materialize
from ferhub.data.hf import HFSource, open_hf
from ferhub.data.sources import (
    FER2013_USAGE,
    SPLIT_ALIASES,
    ArraySource,
    DataSourceError,
    FolderSource,
    LabeledSource,
    ZipSource,
    open_fer2013_csv,
    open_source,
    split_name,
    write_class_folders,
)
from ferhub.data.splits import stratified_kfold, stratified_split

__all__ = [
    "FER2013_USAGE",
    "SPLIT_ALIASES",
    "ArraySource",
    "Crops",
    "DataSourceError",
    "FaceCache",
    "FolderSource",
    "HFSource",
    "LabeledSource",
    "ZipSource",
    "default_cache_dir",
    "image_key",
    "materialize",
    "open_fer2013_csv",
    "open_hf",
    "open_source",
    "split_name",
    "stratified_kfold",
    "stratified_split",
    "write_class_folders",
]
