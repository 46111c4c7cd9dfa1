"""``ferhub models``: the bundled models and the registered architectures."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pattern", default="*", help="glob over architecture names")


def stdout_results(args: argparse.Namespace) -> str | None:
    """How to keep the list, printed to stdout alone (refused closed: :func:`ferhub.cli._stdout_refused`)."""
    return "send stdout to a file"


def run(args: argparse.Namespace) -> int:
    from ferhub.config import ModelConfig
    from ferhub.hub import DEFAULT_MODEL, ENSEMBLE, list_bundled, resolve
    from ferhub.models import get_entry, list_models

    print("Bundled models (load by name, offline):")
    rows = []
    for name in list_bundled():
        cfg = ModelConfig.load(resolve(name))
        # an ensemble feeds each member its own crop: its config's size and channels describe none of them
        shape = (
            "per member"
            if cfg.architecture == ENSEMBLE
            else f"{cfg.input_size}x{cfg.input_size} {'gray' if cfg.channels == 1 else 'RGB'}"
        )
        rows.append((name, cfg, shape))
    width = max((len(cfg.architecture) for _, cfg, _ in rows), default=0)  # every row's columns in line
    for name, cfg, shape in rows:
        default = "  (default)" if name == DEFAULT_MODEL else ""
        print(
            f"  {name:<32} {cfg.architecture:<{width}} {shape:<12} {len(cfg.labels)} classes:"
            f" {', '.join(cfg.labels)}{default}"
        )
    print("\nRegistered architectures (ferhub.create_model / training):")
    for name in list_models(args.pattern):
        print(f"  {name:<32} {get_entry(name).description}")
    return 0
