"""``ferhub`` subcommands: one module each, exposing ``add_arguments(parser)`` and ``run(args)``; their
one-line help lives in :data:`ferhub.cli.COMMANDS`."""

from __future__ import annotations

import argparse
import os
import re

# a URL's scheme (https://, s3://, file://): no command reads or writes one, and pathlib would mangle it
# (https:/host/...) into a path that is then "not found"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _not_a_url(value: str, what: str) -> None:
    """Raise ``ArgumentTypeError`` for a URL given where a local path (or a Hub id) is wanted."""
    if _URL.match(value):
        hub = " (for a Hugging Face Hub page, give its id: org/name)" if "huggingface.co/" in value else ""
        raise argparse.ArgumentTypeError(
            f"{value}: {what} URLs is not supported: download it first and give its local path{hub}"
        )


def input_path(value: str) -> str:
    """``type=`` of every option naming something to read (a photo, a folder, data, a model, results): ``~``
    expanded here, once for every command (the shell leaves ``--data=~/x`` and quoted paths alone); ``-``
    (stdin) and URLs refused with one line, exit 2."""
    if value == "-":
        raise argparse.ArgumentTypeError(
            "-: reading from stdin is not supported: save it to a file first and give its path"
        )
    if not os.path.exists(value):  # a folder that is there named like a URL (data://x) is read as it is
        _not_a_url(value, "reading from")
    return os.path.expanduser(value)


def output_path(value: str) -> str:
    """``type=`` of every option naming a file or folder to write: ``~`` expanded (as :func:`input_path`), so
    ``--out=~/x`` never makes a folder named ``~`` here; ``-`` (stdout, which holds the command's own lines)
    and URLs refused, exit 2."""
    if value == "-":
        raise argparse.ArgumentTypeError(
            "-: writing to stdout is not supported here: give a file name (redirect stdout for the results"
            " printed there)"
        )
    _not_a_url(value, "writing to")
    return os.path.expanduser(value)


DEVICE_HELP = "auto (the default: cuda when torch sees a GPU, else cpu), cpu, cuda or cuda:N"


def device_arg(value: str) -> str | None:
    """``type=`` of ``--device``: ``auto`` (the default device: CUDA when torch sees a GPU, else the CPU) is
    ``None``, what every command and the Python API read as the default; other values are checked by
    :func:`device_error` before anything loads."""
    return None if value == "auto" else value


def seed_error(seed: int | None) -> str | None:
    """The line refusing a negative ``--seed`` (numpy's seeding takes none), or ``None``: ``train`` and
    ``evaluate`` check it before any work."""
    if seed is not None and seed < 0:
        return f"--seed must be 0 or more, got {seed}"
    return None


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """``--split``, ``--label-names`` and the column options (:func:`add_column_arguments`): how
    ``evaluate``, ``compare`` and ``report`` open ``--data``."""
    p.add_argument("--split", default=None, help="train, val or test (or the source's own split name)")
    p.add_argument(
        "--label-names", default=None, help="what numbered classes mean: a dataset name (rafdb, fer2013, ...)"
    )
    add_column_arguments(p)


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


def add_scoring_arguments(p: argparse.ArgumentParser, no_face_default: str = "fallback") -> None:
    """``--tta``, ``--no-face`` and ``--precropped`` / ``--detect``: how ``evaluate`` and ``compare`` score
    each image; ``no_face_default`` says in ``--no-face``'s help what happens when it is not given."""
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
        help="image where no face is found: classify the whole image (fallback, seed 004) or count it wrong"
        f" (wrong); default: {no_face_default}",
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
