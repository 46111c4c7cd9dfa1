"""The ``ferhub`` command line: ``ferhub predict|models|train|evaluate|...``.

Each subcommand lives in ``ferhub/commands/<name>.py`` and is imported only when it runs, so ``ferhub --help``
and each command pay only for what they use.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help). Help strings live here so `ferhub --help` imports no command module.
COMMANDS: dict[str, tuple[str, str]] = {
    "predict": ("ferhub.commands.predict", "classify the expression of every face in images"),
    "models": ("ferhub.commands.models", "list bundled models and registered architectures"),
    "train": ("ferhub.commands.train", "train a FER model from a recipe and write its model repo"),
    "push": ("ferhub.commands.push", "upload a model repo folder to the Hugging Face Hub in one commit"),
    "evaluate": (
        "ferhub.commands.evaluate",
        "evaluate models on labelled data; results into eval_results.json",
    ),
    "report": ("ferhub.commands.report", "write a standalone HTML report from eval_results.json files"),
    "compare": ("ferhub.commands.compare", "compare models: agreement, Cohen's kappa, McNemar's exact test"),
    "export": (
        "ferhub.commands.export",
        "write a model repo with model.onnx (ONNX Runtime, TensorRT, browser), checked against PyTorch",
    ),
    "zoo": (
        "ferhub.commands.zoo",
        "list, import and push the pretrained models converted from registry packages",
    ),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    from ferhub import __version__

    parser = argparse.ArgumentParser(prog="ferhub", description="Facial-expression-recognition workbench.")
    parser.add_argument("--version", action="version", version=f"ferhub {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:  # only the command that runs is imported
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
