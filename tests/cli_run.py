"""The one ``run_cli`` helper of the CLI tests: ``ferhub`` run in-process, its exit code and output."""

from __future__ import annotations

import pytest

from ferhub.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``ferhub ARGV...`` in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
