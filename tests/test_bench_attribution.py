"""``bench/attribution.py``: the crowd photo's faces attributed a chunk at a time against one batch, each
measure in a fresh process, the CPU named."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def test_attribution_bench_prints_its_table(
    bench_script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    from ferhub.device import cpu_name
    from ferhub.hub import save
    from ferhub.models import create_model

    torch.manual_seed(0)
    model = save(create_model("test_tiny"), tmp_path / "tiny")
    bench = bench_script("attribution")
    monkeypatch.setattr(bench.tempfile, "mkdtemp", lambda prefix: str(tmp_path))
    monkeypatch.setattr(
        sys,
        "argv",
        ["attribution.py", "--faces", "6", "--runs", "1", "--models", str(model), "--methods", "Saliency"],
    )
    bench.main()
    out = capsys.readouterr().out
    assert out.startswith(cpu_name()) and "faces found of 6" in out
    (row,) = [line.split(" | ") for line in out.splitlines() if line.startswith(f"| {model}")]
    assert row[1] == "Saliency" and int(row[2]) >= 1
    one, chunked = (float(v) for v in row[3].removesuffix(" MB").split(" / "))
    assert one >= 0 and chunked >= 0 and row[4].endswith(" s") and row[5].endswith("x |")
    assert (tmp_path / "crowd6.png").is_file()
