"""``ferhub`` subcommands: one module each, exposing ``add_arguments(parser)`` and ``run(args)``; their
one-line help lives in :data:`ferhub.cli.COMMANDS`."""

from __future__ import annotations

import argparse


def add_column_arguments(p: argparse.ArgumentParser) -> None:
    """``--image-column`` / ``--label-column``: which columns of a Hugging Face dataset to read;
    ``--data-config``: which of its configurations (``train``, ``evaluate`` and ``compare``)."""
    p.add_argument("--image-column", default=None, help="datasets: the image column (default: found)")
    p.add_argument("--label-column", default=None, help="datasets: the label column (default: found)")
    p.add_argument(
        "--data-config",
        default=None,
        metavar="NAME",
        help="datasets: the configuration to load, for a Hub dataset that has several (load_dataset(id, "
        "NAME)); recorded in the results' key (<dataset>:<config>:<split>)",
    )


def label_names_error(label_names: str | None) -> str | None:
    """Why ``--label-names`` names no label table (listing the known ones); ``None`` when it names one or
    is not given: checked before any data loads, whether or not the data has numbered classes."""
    from ferhub.labels import UnknownLabelError, dataset_labels

    if label_names is None:
        return None
    try:
        dataset_labels(label_names)
    except UnknownLabelError as e:
        return f"--label-names {label_names}: {e}"
    return None


def add_scoring_arguments(p: argparse.ArgumentParser) -> None:
    """``--tta``, ``--no-face`` and ``--precropped`` / ``--detect``: how ``evaluate`` and ``compare`` score
    each image."""
    p.add_argument(
        "--tta",
        nargs="?",
        const="flip",
        choices=("flip", "tencrop"),
        default=None,
        help="test-time augmentation: average over the mirror image (flip, the default for bare --tta) or "
        "ten crops (tencrop)",
    )
    p.add_argument(
        "--no-face",
        choices=("fallback", "wrong"),
        default="fallback",
        help="image where no face is found: classify the whole image (fallback, seed 004; the default) "
        "or count it wrong",
    )
    crop = p.add_mutually_exclusive_group()
    crop.add_argument(
        "--precropped",
        dest="precropped",
        action="store_true",
        default=None,
        help="the images are face crops already: skip detection (default for FER2013 CSV)",
    )
    crop.add_argument("--detect", dest="precropped", action="store_false", help="detect faces in every image")


def device_error(device: str | None) -> str | None:
    """The line refusing a ``--device`` no command takes (``tpu``), or ``None``: checked before anything
    loads, so every command exits 2 (wrong arguments) for it."""
    from ferhub.device import check_device
    from ferhub.errors import DeviceError

    if device is None:
        return None
    try:
        check_device(device)
    except DeviceError as e:
        return str(e)
    return None
