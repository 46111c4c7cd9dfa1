"""``--amp`` off CUDA: autocast runs on CUDA only, so a CPU run asked for bf16/fp16 is refused before any data
loads (it trained in float32 while its card said bf16), and a checkpoint an older ferhub wrote for such a run
resumes without it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from ferhub.cli import main as cli_main
from ferhub.errors import CheckpointError
from ferhub.training import RecipeError, TrainConfig, load_recipe
from ferhub.training.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, check_resume
from ferhub.training.run import _check_amp

CPU = torch.device("cpu")


@pytest.mark.parametrize("option", [["--amp", "bf16"], ["--set", "amp=fp16"]])
def test_amp_on_a_cpu_run_is_exit_2_before_the_data_loads(
    option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["train", "--recipe", "seed002_kaskun", "--data", str(tmp_path / "no-such-data"), "--tiny",
            "--device", "cpu", "--output-dir", str(out), *option]  # fmt: skip
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert "AMP runs on CUDA only here, and this run is on cpu" in err and "drop --amp" in err, err
    assert "no-such-data" not in err  # refused before the data was looked at
    assert not out.exists()


def test_amp_none_and_a_shipped_recipes_own_amp_still_run_on_the_cpu() -> None:
    cfg = load_recipe("seed002_kaskun")[0]
    _check_amp(dataclasses.replace(cfg, amp="none"), CPU)
    best = load_recipe("ferhub_best")[0]
    assert best.amp == "bf16"  # for its GPU runs; on the CPU it trains in float32, as it always did
    _check_amp(best, CPU)
    with pytest.raises(RecipeError, match="AMP runs on CUDA only"):
        _check_amp(dataclasses.replace(cfg, amp="bf16"), CPU)
    with pytest.raises(RecipeError, match="AMP runs on CUDA only"):
        _check_amp(dataclasses.replace(best, amp="fp16"), CPU)


def _checkpoint(path: Path, cfg: TrainConfig, *, cuda: bool) -> Path:
    """A checkpoint header as save_checkpoint writes it: the settings, and CUDA RNG states where the run
    used CUDA."""
    from safetensors.torch import save_file

    tensors = {"rng.torch": torch.get_rng_state()}
    if cuda:
        tensors["rng.cuda.0"] = torch.zeros(16, dtype=torch.uint8)
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "train_config": cfg.to_dict()}
    save_file(tensors, str(path), metadata={"ferhub": json.dumps(meta)})
    return path


def test_a_cpu_run_an_older_ferhub_took_amp_for_resumes_without_it(tmp_path: Path) -> None:
    cfg = load_recipe("seed002_kaskun")[0]
    older = dataclasses.replace(cfg, amp="bf16")  # recorded, though it trained in float32
    check_resume(_checkpoint(tmp_path / "cpu.safetensors", older, cuda=False), cfg)
    # on CUDA it did train in bf16: resuming in float32 is another run, refused as before
    with pytest.raises(CheckpointError, match="amp 'bf16' -> 'none'"):
        check_resume(_checkpoint(tmp_path / "cuda.safetensors", older, cuda=True), cfg)
    # other settings still count on a CPU run's checkpoint
    with pytest.raises(CheckpointError, match="lr "):
        check_resume(
            _checkpoint(tmp_path / "lr.safetensors", older, cuda=False), dataclasses.replace(cfg, lr=1.0)
        )


def test_a_cuda_runs_checkpoint_resumes_on_the_cpu_with_its_own_amp(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A GPU run given --amp bf16 resumes with --amp bf16 alone (its checkpoint refuses any other): refusing
    that too on the CPU left no way to finish it there. Another amp than the checkpoint's is still refused."""
    cfg = dataclasses.replace(load_recipe("seed002_kaskun")[0], amp="bf16")
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    ckpt = _checkpoint(out / "checkpoints" / "last.safetensors", cfg, cuda=True)
    argv = ["train", "--recipe", "seed002_kaskun", "--data", str(tmp_path / "none"), "--device", "cpu",
            "--output-dir", str(out), "--resume", "--amp", "bf16"]  # fmt: skip
    assert cli_main(argv) != 0
    err = capsys.readouterr().err
    assert "AMP runs on CUDA only" not in err and "other settings" not in err, err
    assert "none not found" in err  # past every settings check, refused for its data alone
    _check_amp(cfg, CPU, ckpt)
    with pytest.raises(RecipeError, match="AMP runs on CUDA only"):
        _check_amp(dataclasses.replace(cfg, amp="fp16"), CPU, ckpt)
    with pytest.raises(RecipeError, match="AMP runs on CUDA only"):
        _check_amp(cfg, CPU, tmp_path / "no-checkpoint.safetensors")
