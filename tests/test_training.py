"""The training loop: presets, schedules, checkpoints, resume after SIGKILL, 2-process DDP, push."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from tasks import quick_train_args as _args
from tasks import transform_task

from ferhub.commands.train import get_args_parser, main
from ferhub.config import ModelConfig
from ferhub.data import Crops, write_class_folders
from ferhub.labels import FER7
from ferhub.training import (
    CheckpointError,
    LRSchedule,
    RecipeError,
    TrainConfig,
    apply_overrides,
    load_recipe,
    read_checkpoint,
)
from ferhub.transforms import TrainTransform, equalize_hist

REPO = Path(__file__).resolve().parent.parent
TRAIN_SCRIPT = REPO / "train" / "train.py"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A learnable 4-class task on real LFW face crops, as class folders (24 px gray PNGs)."""
    images, targets, labels = transform_task(12, size=24, num_classes=4, seed=0)
    return write_class_folders(images, targets, labels, tmp_path_factory.mktemp("task") / "faces")


# ------------------------------------------------------------------------------------------------- presets
def test_hist_eq_matches_pil_per_channel() -> None:
    rng = np.random.default_rng(0)
    batch = rng.integers(30, 140, (3, 20, 20, 3)).astype(np.uint8)
    batch[1, :, :, 2] = 77  # a flat channel is left alone, as PIL does
    ours = equalize_hist(torch.from_numpy(batch).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    pil = np.stack([np.asarray(ImageOps.equalize(Image.fromarray(im))) for im in batch])
    assert np.array_equal(ours, pil)


def test_train_transform_is_seeded_and_each_option_acts() -> None:
    cfg = ModelConfig(architecture="test_tiny", labels=FER7, input_size=24, channels=1)
    batch = torch.from_numpy(transform_task(4, size=24, num_classes=4)[0])
    plain = TrainTransform.from_recipe(cfg, {})(batch, torch.Generator().manual_seed(0))
    assert plain.shape == (16, 1, 24, 24)
    assert torch.allclose(plain, (batch.float() / 255 - 0.5).unsqueeze(1) / 0.5)
    options = {
        "hflip": 1.0,
        "rotate": 15,
        "scale": [0.8, 1.2],
        "translate": 0.1,
        "brightness": 0.3,
        "hist_eq": 1.0,
        "cutout": 1.0,
        "erasing": 1.0,
    }
    for key, value in options.items():
        t = TrainTransform.from_recipe(cfg, {key: value})
        a, b = t(batch, torch.Generator().manual_seed(1)), t(batch, torch.Generator().manual_seed(1))
        assert torch.equal(a, b), key  # same seed, same batch
        assert not torch.allclose(a, plain), key  # the option changes the images
    flipped = TrainTransform.from_recipe(cfg, {"hflip": 1.0})(batch, torch.Generator())
    assert torch.equal(flipped, plain.flip(-1))
    with pytest.raises(ValueError, match=r"unknown augmentation options \['hflp'\]"):
        TrainTransform.from_recipe(cfg, {"hflp": 0.5})


# ----------------------------------------------------------------------------------------------- schedules
def _factors(cfg: TrainConfig, steps: int, metrics: list[float] | None = None) -> list[float]:
    s = LRSchedule(cfg, steps)
    out = []
    for e in range(cfg.epochs):
        out += [s.factor(e, i) for i in range(steps)]
        if metrics:
            s.end_epoch(metrics[e])
    return out


def test_schedules_warmup_cosine_step_plateau() -> None:
    f = _factors(TrainConfig(epochs=4, schedule="cosine", warmup_epochs=1), steps=2)
    assert f[:2] == [0.5, 1.0]  # linear warm-up over the first epoch
    # a warm-up that is not a whole number of steps never goes past the recipe's rate (was 1.33x, 1.11x)
    assert max(_factors(TrainConfig(epochs=2, warmup_epochs=0.5), steps=3)) == 1.0
    assert _factors(TrainConfig(epochs=2, warmup_epochs=1.5), steps=3)[:5] == pytest.approx(
        [2 / 9, 4 / 9, 6 / 9, 8 / 9, 1]
    )
    assert f[2] == pytest.approx(1.0) and f[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 2.5 / 3)))
    assert _factors(TrainConfig(epochs=5, schedule="step", step_epochs=2, gamma=0.5), 1) == [
        1,
        1,
        0.5,
        0.5,
        0.25,
    ]
    plateau = TrainConfig(epochs=6, schedule="plateau", plateau_patience=1, gamma=0.1)
    f = _factors(plateau, 1, metrics=[0.5, 0.6, 0.6, 0.6, 0.6, 0.7])
    assert f == pytest.approx([1, 1, 1, 1, 0.1, 0.1])  # 2 flat epochs (> patience 1) after the best


def test_recipe_overrides_and_errors() -> None:
    cfg, variants = load_recipe("seed002_kaskun", "fcn")
    assert cfg.model == "fcn" and cfg.recipe == "seed002_kaskun:fcn" and "mini_xception" in variants
    cfg = apply_overrides(cfg, ["lr=0.01", "augment.hflip=0.25", 'loss_args={"label_smoothing": 0.1}'])
    assert cfg.lr == 0.01 and cfg.augment["hflip"] == 0.25 and cfg.augment["rotate"] == 10
    with pytest.raises(RecipeError, match="unknown settings \\['lrr'\\]"):
        apply_overrides(cfg, ["lrr=1"])
    with pytest.raises(RecipeError, match=r"no recipe 'nope'; known recipes: .*seed000_zhai"):
        load_recipe("nope")
    with pytest.raises(RecipeError, match="optimizer must be"):
        TrainConfig.from_dict({"optimizer": "rmsprop"})


# ---------------------------------------------------------------------------------------- end-to-end runs


def test_checkpoint_is_safetensors_and_corruption_is_refused(task_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = main(get_args_parser().parse_args(_args(task_folder, out, "--epochs", "1")))
    tensors, meta = read_checkpoint(out / "checkpoints" / "last.safetensors")
    assert meta["state"]["epoch"] == 1 and meta["train_config"]["model"] == "test_tiny"
    assert {k.split(".")[0] for k in tensors} == {"model", "optim", "rng"}
    assert (out / "model" / "model.safetensors").is_file() and summary["epochs"] == 1
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1] and 0 <= log[0]["val_mean_class_recall"] <= 1
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((out / "checkpoints" / "last.safetensors").read_bytes()[:500])
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        read_checkpoint(bad)
    with pytest.raises(CheckpointError, match=r"other settings than this run's: lr 0.001 -> 0.5;"):
        main(
            get_args_parser().parse_args(_args(task_folder, out, "--epochs", "2", "--lr", "0.5", "--resume"))
        )


def test_a_diverged_run_stops_and_never_releases_an_earlier_runs_best(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second run into the same --output-dir whose loss went NaN released the FIRST run's best checkpoint
    as its model (its epochs never "improved"), and in a fresh folder trained to the end and died on JSON."""
    from ferhub.cli import main as cli_main

    out = tmp_path / "run"
    main(get_args_parser().parse_args(_args(task_folder, out, "--epochs", "1")))
    assert (out / "checkpoints" / "best.safetensors").is_file()
    released = (out / "model" / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert cli_main(["train", *_args(task_folder, out, "--epochs", "2", "--lr", "1e30")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ferhub train: training diverged in epoch 1: the training loss is nan;"), err
    assert "lower the learning rate (--lr)" in err
    assert not (out / "checkpoints" / "best.safetensors").exists()  # the first run's: removed at the start
    assert (out / "log.jsonl").read_text() == ""  # no epoch of the diverged run logged as done
    assert (out / "model" / "model.safetensors").read_bytes() == released  # the first run's model, untouched


def test_validation_data_lacking_a_class_is_scored_in_the_training_labels(
    task_folder: Path, tmp_path: Path
) -> None:
    """--val-data without one of the training classes was refused ("validation labels differ"); evaluation
    scores such a subset anyway. A validation class the model never learns is still refused."""
    import shutil

    from ferhub.training import RecipeError

    classes = sorted(p.name for p in task_folder.iterdir())
    val = tmp_path / "val"
    for c in classes[1:]:
        shutil.copytree(task_folder / c, val / c)
    out = tmp_path / "run"
    summary = main(
        get_args_parser().parse_args(_args(task_folder, out, "--epochs", "1", "--val-data", str(val)))
    )
    assert summary["epochs"] == 1 and (out / "model" / "model.safetensors").is_file()
    shutil.copytree(task_folder / classes[0], val / "contempt")  # a class training never sees
    with pytest.raises(
        RecipeError, match=r"validation classes \['contempt'\] are not among the training classes"
    ):
        main(
            get_args_parser().parse_args(
                _args(task_folder, tmp_path / "run2", "--epochs", "1", "--val-data", str(val))
            )
        )


def test_a_result_on_val_data_is_named_as_evaluate_names_that_data(task_folder: Path, tmp_path: Path) -> None:
    """Reported on --val-data, the entry was keyed and named by the training data (``faces:default:val``):
    the card said the model was measured on a split of its training data, and `ferhub evaluate --data VAL`
    filed its results on the same images under another key."""
    import shutil

    from ferhub import evaluation

    val = tmp_path / "holdout"
    for c in sorted(p.name for p in task_folder.iterdir()):
        shutil.copytree(task_folder / c, val / c)
    out = tmp_path / "run"
    main(get_args_parser().parse_args(_args(task_folder, out, "--epochs", "1", "--val-data", str(val))))
    ((key, entry),) = json.loads((out / "model" / "eval_results.json").read_text())["results"].items()
    (run,) = evaluation.evaluate([str(out / "model")], str(val), precropped=True, n_resamples=10)
    assert key == run.key == "holdout:default:all"
    assert (
        entry["dataset"]
        == run.entry["dataset"]
        == {
            "id": "holdout",
            "config": "default",
            "split": "all",
            "name": "holdout",
        }
    )
    assert "## Evaluation" in (card := (out / "model" / "README.md").read_text()) and "holdout" in card


def test_a_result_on_val_data_without_splits_names_that_data_and_keeps_both_counts(
    task_folder: Path, tmp_path: Path
) -> None:
    """Reported on a --val-data without splits, the protocol and the card said "split val" (it has none), the
    card's Data line never named it, and its count of images left out replaced the training data's (both
    were filed as "all")."""
    import shutil

    data = _with_damaged_files(task_folder, tmp_path)
    val = Path(shutil.copytree(task_folder, tmp_path / "holdout"))
    (val / "angry" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "run"
    summary = main(get_args_parser().parse_args(_args(data, out, "--epochs", "1", "--val-data", str(val))))
    n = len(list(task_folder.rglob("*.png")))
    assert summary["data"]["all"]["unreadable"] == 2 and summary["data"]["all"]["images"] == n + 2
    assert summary["data"][f"all of `{val}`"]["unreadable"] == 1
    (entry,) = json.loads((out / "model" / "eval_results.json").read_text())["results"].values()
    assert entry["protocol"]["reported_on"] == summary["protocol"]["reported_on"] == f"all of `{val}`"
    card = (out / "model" / "README.md").read_text()
    assert "split val" not in card and f"these numbers come from all of `{val}`" in card
    assert f"results reported on {n} images (all of `{val}`)" in card
    assert f"2 of {n + 2} images (all), 1 of {n + 1} images (all of `{val}`)" in card


def test_kfold_refuses_val_data_it_would_not_use(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """k-fold selects and reports on folds of --data; a --val-data without a test split was ignored without a
    word in the log or the card."""
    import shutil

    from ferhub.cli import main as cli_main

    val = shutil.copytree(task_folder, tmp_path / "holdout")
    out = tmp_path / "run"
    argv = ["train", *_args(task_folder, out, "--epochs", "1", "--kfold", "2", "--val-data", str(val))]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert f"--kfold 2 with --val-data {val}: k-fold cross-validation" in err
    assert "leave out --val-data (or --kfold)" in err and not out.exists()


def _run_env() -> dict[str, str]:
    # one thread: the same kernels and summation order in every process
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _model_tensors(path: Path) -> dict[str, torch.Tensor]:
    tensors, _ = read_checkpoint(path)
    return {k: v for k, v in tensors.items() if k.startswith(("model.", "ema."))}


@pytest.mark.slow
def test_resume_after_sigkill_equals_straight_run(task_folder: Path, tmp_path: Path) -> None:
    # dropout, EMA, mixup, augmentation and a warm-up + cosine schedule all carry state across the kill
    common = [
        "--deterministic",
        "--set",
        "model=test_fcn",
        "--set",
        "kernel_l2=0",
        "--set",
        "ema=0.9",
        "--set",
        "mixup=0.4",
        "--set",
        "schedule=cosine",
        "--set",
        "warmup_epochs=1",
        "--epochs",
        "4",
    ]
    straight = tmp_path / "straight"
    # the straight run goes alongside the one that gets killed (2 cores)
    straight_proc = subprocess.Popen(
        [sys.executable, str(TRAIN_SCRIPT), *_args(task_folder, straight, *common)],
        env=_run_env(),
        stdout=subprocess.DEVNULL,
    )
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, str(TRAIN_SCRIPT), *_args(task_folder, killed, *common)],
        env=_run_env(),
        stdout=subprocess.DEVNULL,
    )
    last = killed / "checkpoints" / "last.safetensors"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if last.is_file() and read_checkpoint(last)[1]["state"]["epoch"] >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    # proof that the kill landed mid-run: the process died of SIGKILL, its last checkpoint is short of the
    # 4 epochs, and it never got as far as writing the model repo
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    epoch_at_kill = read_checkpoint(last)[1]["state"]["epoch"]
    assert 2 <= epoch_at_kill < 4
    assert not (killed / "model").exists()
    resumed = subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *_args(task_folder, killed, *common, "--resume")],
        check=True,
        env=_run_env(),
        capture_output=True,
        text=True,
    )
    # the second process continued after the killed one's last epoch and trained only the epochs left
    assert f"after epoch {epoch_at_kill}" in resumed.stdout
    trained = [
        int(line.split()[1].split("/")[0])
        for line in resumed.stdout.splitlines()
        if line.startswith("epoch ")
    ]
    assert trained == list(range(epoch_at_kill + 1, 5))
    assert straight_proc.wait(timeout=300) == 0
    a = _model_tensors(straight / "checkpoints" / "last.safetensors")
    b = _model_tensors(killed / "checkpoints" / "last.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("ema.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    log = [json.loads(x) for x in (killed / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4]  # rewritten from the checkpoint: no line twice
    straight_log = [json.loads(x) for x in (straight / "log.jsonl").read_text().splitlines()]
    assert [r["train_loss"] for r in log] == [r["train_loss"] for r in straight_log]


@pytest.mark.slow
def test_two_process_ddp_trains_the_same_model(task_folder: Path, tmp_path: Path) -> None:
    # BatchNorm statistics are per process under DDP without SyncBatchNorm (CUDA-only); freeze_bn keeps them
    # out of the comparison so the two runs must agree on everything else
    common = ["--set", "freeze_bn=true", "--set", "augment.rotate=10", "--epochs", "2", "--device", "cpu"]
    one = tmp_path / "one"
    subprocess.run(
        [sys.executable, str(TRAIN_SCRIPT), *_args(task_folder, one, *common)], check=True, env=_run_env()
    )
    two = tmp_path / "two"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    subprocess.run(
        [*launcher, str(TRAIN_SCRIPT), *_args(task_folder, two, *common)], check=True, env=_run_env()
    )
    a = _model_tensors(one / "checkpoints" / "last.safetensors")
    b = _model_tensors(two / "checkpoints" / "last.safetensors")
    assert a.keys() == b.keys()
    moved = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert moved < 1e-5
    from ferhub.models import create_model

    torch.manual_seed(0)  # fit() seeds torch with the recipe seed (0) before building the model
    init = create_model("test_tiny", ("angry", "disgust", "fear", "happy")).state_dict()
    assert (
        max(float((a["model." + k] - v).abs().max()) for k, v in init.items() if v.is_floating_point()) > 1e-3
    )
    card = (two / "model" / "README.md").read_text()
    assert "torchrun --nproc_per_node 2" in card  # the exact launch command is recorded


# train/train.py with a spy: what each rank validated and decided after every epoch, and the model it released
DDP_SPY = """
import importlib, os, sys
import torch
from ferhub.cli import main

fit = importlib.import_module("ferhub.training.fit")  # the module (ferhub.training.fit is also its function)

out, end_epoch, release = sys.argv.pop(1), fit._end_epoch, fit._release
rank = os.environ["RANK"]


def spy_end_epoch(cfg, state, parts, stats, metrics):
    improved = end_epoch(cfg, state, parts, stats, metrics)
    seen = {"nll": float(metrics["nll"]), "recall": float(metrics["mean_class_recall"]), "improved": improved,
            "best_epoch": state.best_epoch, "bad_epochs": state.bad_epochs, **parts.schedule.state_dict()}
    path = f"{out}/rank{rank}.epoch{state.epoch}.pt"
    torch.save({"seen": seen, "weights": parts.scored.state_dict()}, path)
    return improved


def spy_release(*args):
    final = release(*args)
    torch.save(final.state_dict(), f"{out}/rank{rank}.released.pt")
    return final


fit._end_epoch, fit._release = spy_end_epoch, spy_release
sys.exit(main(["train", *sys.argv[1:]]))
"""


@pytest.mark.slow
def test_two_process_ddp_ranks_validate_and_decide_alike(task_folder: Path, tmp_path: Path) -> None:
    # BatchNorm trains (no freeze_bn): each rank's running statistics follow its own half of the last batch,
    # so the ranks must validate rank 0's, or they score the same data differently, choose different best
    # epochs (rank 1 then refused rank 0's best.safetensors) and cut the plateau rate apart; EMA copies them
    spy = tmp_path / "spy.py"
    spy.write_text(DDP_SPY)
    seen = tmp_path / "seen"
    seen.mkdir()
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    extra = ["--epochs", "2", "--device", "cpu", "--set", "ema=0.5", "--set", "plateau_patience=1"]
    run = subprocess.run(
        [*launcher, str(spy), str(seen), *_args(task_folder, tmp_path / "run", *extra)],
        env=_run_env(),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    for name in ("epoch1", "epoch2"):
        a, b = (torch.load(seen / f"rank{r}.{name}.pt") for r in (0, 1))
        assert a["seen"] == b["seen"], name  # the same scores, best epoch, plateau state on both ranks
        assert a["weights"].keys() == b["weights"].keys()
        for k, v in a["weights"].items():  # the same weights validated, running statistics included
            assert torch.equal(v, b["weights"][k]), (name, k)
    released = [torch.load(seen / f"rank{r}.released.pt") for r in (0, 1)]
    for k, v in released[0].items():
        assert torch.equal(v, released[1][k]), k


# --------------------------------------------------------------------------------------------------- push
def test_push_to_hub_one_commit_with_card(
    task_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    # the card quotes the command as the user typed it; the runner's argv[0] (pytest, an xdist worker) must
    # not decide which form that is
    monkeypatch.setattr(sys, "argv", ["ferhub", *sys.argv[1:]])
    calls: list[tuple[str, tuple, dict]] = []

    class Info:
        commit_url = "https://huggingface.co/org/fer-test/commit/abc"

    def record(name: str):
        def fn(self, *args, **kwargs):
            if name == "upload_folder":
                kwargs["_files"] = sorted(p.name for p in Path(kwargs["folder_path"]).iterdir())
                kwargs["_card"] = (Path(kwargs["folder_path"]) / "README.md").read_text()
            calls.append((name, args, kwargs))
            return Info() if name == "upload_folder" else None

        return fn

    import huggingface_hub.constants

    from ferhub import hub

    # the push path checks offline mode and probes the endpoint before any API call: say "online"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub._remote, "hub_unreachable", lambda endpoint: None)
    for name in ("create_repo", "create_branch", "upload_folder"):
        monkeypatch.setattr(huggingface_hub.HfApi, name, record(name))
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", lambda self, *a, **k: [], raising=False)
    out = tmp_path / "run"
    argv = _args(task_folder, out, "--epochs", "2", "--push-to-hub", "org/fer-test", "--private")
    argv += ["--revision", "v1", "--push-checkpoints"]
    summary = main(get_args_parser().parse_args(argv))
    uploads = [c for c in calls if c[0] == "upload_folder"]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    best_epochs = {r["best_epoch"] for r in log}  # each distinct best epoch was a new best when it ran
    assert len(uploads) == len(best_epochs) + 1  # one commit per new best checkpoint, one for the final repo
    *ckpts, final = uploads
    for _, _, kw in ckpts:
        assert kw["repo_id"] == "org/fer-test" and kw["revision"] == "checkpoints"
        assert kw["commit_message"].startswith("seed002_kaskun: epoch ")
        assert 'ferhub.Predictor("org/fer-test@checkpoints")' in kw["_card"]  # the branch it is on
    kw = final[2]
    assert kw["repo_id"] == "org/fer-test" and kw["revision"] == "v1" and kw["repo_type"] == "model"
    assert kw["folder_path"] == str(out / "model")
    assert sorted(kw["allow_patterns"]) == [
        "README.md",
        "card.json",
        "config.json",
        "eval_results.json",
        "model.safetensors",
    ]
    assert kw["commit_message"].startswith("Train seed002_kaskun: heldout accuracy ")
    card = kw["_card"]
    front = card.split("---")[1]
    assert "library_name: ferhub" in front and "recipe-seed002_kaskun" in front and "model-index" in front
    assert "name: fer-test" in front  # model name from the push id
    assert f"value: {summary['report']['accuracy']}" in front
    assert "train --recipe seed002_kaskun --data" in card and "Kaskun" in card  # command and citation
    # the push id at the branch pushed to loads it (`org/fer-test` alone would load main)
    assert 'ferhub.Predictor("org/fer-test@v1")' in card and "path/to/model" not in card
    assert json.loads((out / "model" / "card.json").read_text())["revision"] == "v1"
    creates = [c for c in calls if c[0] == "create_repo"]
    assert all(c[1] == ("org/fer-test",) and c[2]["private"] is True for c in creates)
    branches = {c[2]["branch"] for c in calls if c[0] == "create_branch"}
    assert branches == {"checkpoints", "v1"}
    assert summary["pushed"] == Info.commit_url


def test_card_says_how_to_load_the_folder_and_how_much_data_did_what(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import re

    out = tmp_path / "run"
    main(get_args_parser().parse_args(_args(task_folder, out, "--epochs", "1")))
    log = capsys.readouterr().out
    used = re.search(r"training on (\d+) crops, selecting on (\d+), reporting on (\d+)", log)
    assert used is not None
    n_train, n_select, n_report = used.groups()
    assert int(n_train) + int(n_select) + int(n_report) == 48  # the three parts of the 48 images
    card = (out / "model" / "README.md").read_text()
    # no push id: a placeholder the card explains, never the recipe name (neither a folder nor a Hub id)
    assert 'ferhub.Predictor("path/to/model")' in card and "--model path/to/model`" in card
    assert 'seed002_kaskun")' not in card and "--model seed002_kaskun" not in card
    assert "Replace `path/to/model` with the path of the folder that holds this card" in card
    snippet = card[card.index("## How to use") : card.index("## Intended use")]
    assert set(re.findall(r'(?:Predictor|load)\("([^"]+)"\)|--model (\S+)`', snippet)) == {
        ("path/to/model", ""),
        ("", "path/to/model"),
    }
    # the data actually used for each job, not the source's total as if all of it trained
    assert (
        f"Data: `{task_folder}` (48 images). Trained on {n_train} images; the epoch chosen on {n_select}"
        f" images (an inner stratified 20% of the training data); results reported on {n_report} images (a"
        " stratified 20% held out of the data)."
    ) in card
    # credited to the command that measured it
    evaluation = card[card.index("## Evaluation") : card.index("## Limitations")]
    assert "`ferhub evaluate`)" not in evaluation
    assert "- Measured by `ferhub train` when training ended, on data it held out" in evaluation


def test_fer2013_csv_uses_public_test_to_select_and_private_test_to_report(tmp_path: Path) -> None:
    import csv

    images, targets, _ = transform_task(12, size=48, num_classes=7, seed=3)
    usage = ["Training"] * 56 + ["PublicTest"] * 14 + ["PrivateTest"] * 14
    path = tmp_path / "fer2013.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        for im, t, u in zip(images, targets, usage):
            w.writerow([int(t), " ".join(map(str, im.ravel())), u])
    out = tmp_path / "run"
    argv = [
        "--recipe",
        "seed002_kaskun",
        "--data",
        str(path),
        "--tiny",
        "--epochs",
        "1",
        "--test-split",
        "test",
    ]
    summary = main(get_args_parser().parse_args([*argv, "--output-dir", str(out), "--no-progress"]))
    results = json.loads((out / "model" / "eval_results.json").read_text())["results"]
    # PublicTest chose the epoch, so only PrivateTest is published as a result
    assert sorted(results) == ["fer2013:default:test"]
    test = results["fer2013:default:test"]
    assert test["num_images"] == 14 and summary["selection"] is not None
    assert test["metrics"]["accuracy"] == summary["report"]["accuracy"]
    assert test["protocol"]["selected_on"] == "split val" and test["protocol"]["reported_on"] == "split test"
    assert "--test-split test" in test["command"]
    assert test["no_face"] == {"count": 0, "policy": "precropped", "per_class": {c: 0 for c in FER7}}
    assert (
        "(split train, 56 images). Trained on 56 images; the epoch chosen on 14 images (split val); results "
        "reported on 14 images (split test)."
    ) in (out / "model" / "README.md").read_text()
    # k-fold on the training split, and the released fold's model on the test split as well
    kfold = tmp_path / "kfold"
    argv += ["--set", "kfold=2", "--output-dir", str(kfold), "--no-progress"]
    main(get_args_parser().parse_args(argv))
    assert (  # each fold: 28 held out, 7 of the other 28 select, 21 train
        "(split train, 56 images). Trained on 21 images in each of the 2 folds; the epoch chosen on 7 images"
        " (an inner stratified 20% of each fold's training part); results reported on all 56 images, each"
        " once (the held-out folds of 2-fold cross-validation), and on the 14 images of split test by the"
        " released model."
    ) in (kfold / "model" / "README.md").read_text()


def test_ema_follows_the_weights_at_its_decay() -> None:
    from ferhub.training import EMA

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = EMA(model, decay=0.9)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(3.0)
    ema.update(model)
    assert torch.allclose(ema.module[0].weight, start + 0.1)  # 0.9 * w + 0.1 * (w + 1)
    assert torch.equal(ema.module[1].running_mean, torch.full((2,), 3.0))  # statistics are copied


def test_early_stopping_on_validation_recall(task_folder: Path, tmp_path: Path) -> None:
    # a learning rate too small to change any prediction, BatchNorm statistics fixed: recall never improves
    argv = _args(task_folder, tmp_path / "run", "--epochs", "10", "--lr", "1e-12", "--set", "freeze_bn=true")
    argv += ["--set", "early_stopping=2", "--set", "monitor=mean_class_recall"]
    summary = main(get_args_parser().parse_args(argv))
    assert summary["epochs"] == 3 and summary["best_epoch"] == 1


def test_trains_from_a_datasets_folder_with_its_validation_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """... and its rows without a label (-1, the datasets convention) left out of training, said on stderr."""
    import datasets

    images, targets, labels = transform_task(8, size=24, num_classes=4, seed=4)
    features = datasets.Features(
        {
            "face": datasets.Image(),
            "emotion": datasets.ClassLabel(names=["Anger", "Disgust", "Fear", "Happiness"]),
        }
    )
    rows = {"face": [Image.fromarray(im) for im in images], "emotion": [-1, -1, *targets.tolist()[2:]]}
    ds = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict(
        {"train": ds.select(range(24)), "validation": ds.select(range(24, 32))}
    ).save_to_disk(str(tmp_path / "hf"))
    out = tmp_path / "run"
    argv = [
        "--recipe",
        "seed002_kaskun",
        "--data",
        str(tmp_path / "hf"),
        "--tiny",
        "--precropped",
        "--epochs",
        "1",
    ]
    argv += ["--image-column", "face", "--label-column", "emotion", "--output-dir", str(out), "--no-progress"]
    main(get_args_parser().parse_args(argv))
    (entry,) = json.loads((out / "model" / "eval_results.json").read_text())["results"].values()
    assert entry["dataset"]["split"] == "val" and entry["num_images"] == 8
    assert entry["labels"] == list(labels)
    err = capsys.readouterr().err
    note = "unlabelled: 2 of 24 rows have no label ('emotion' missing or < 0) and were left out"
    assert f"hf/train: {note}" in err
    # its column options are for it, not for a --val-data of class folders (which refused them)
    val = write_class_folders(images[24:], targets[24:], labels, tmp_path / "val")
    argv[argv.index(str(out))] = str(tmp_path / "run2")
    main(get_args_parser().parse_args([*argv, "--val-data", str(val)]))
    assert (tmp_path / "run2" / "model" / "model.safetensors").is_file()


def test_trains_on_photos_through_detection_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Full photos go through MTCNN once; the no-face fallback is counted; a second run detects nothing."""
    import matplotlib.cbook
    import skimage.data

    photos = {
        "happy": [Image.fromarray(skimage.data.astronaut())],
        "neutral": [Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")],
    }
    for cls, ims in photos.items():
        (tmp_path / "photos" / cls).mkdir(parents=True)
        for i, im in enumerate(
            [ims[0], ImageOps.mirror(ims[0]), ims[0].rotate(8), ImageOps.mirror(ims[0]).rotate(-8)]
        ):
            im.save(tmp_path / "photos" / cls / f"{i}.jpg", quality=95)
    Image.new("RGB", (200, 150), (90, 120, 90)).save(tmp_path / "photos" / "neutral" / "no_face.png")
    argv = ["--recipe", "seed004_chen", "--data", str(tmp_path / "photos"), "--tiny", "--epochs", "1"]
    argv += ["--set", "kfold=0", "--set", "val_fraction=0.4", "--face-cache", str(tmp_path / "cache")]
    first = main(get_args_parser().parse_args([*argv, "--output-dir", str(tmp_path / "a"), "--no-progress"]))
    assert first["data"]["all"] == {"images": 9, "crops": 9, "no_face": 1, "no_face_policy": "fallback",
                                    "detections_run": 9}  # fmt: skip
    card = (tmp_path / "a" / "model" / "README.md").read_text()
    assert "No face found by MTCNN in 1 of 9 images (all) (the whole image was used)" in card
    assert "photos/all: no face found in 1 of 9 images" in capsys.readouterr().out  # not photos/None
    second = main(get_args_parser().parse_args([*argv, "--output-dir", str(tmp_path / "b"), "--no-progress"]))
    assert second["data"]["all"]["detections_run"] == 0 and second["data"]["all"]["no_face"] == 1
    # seed 000's protocol: images without a detected face are left out of training (the reported data keeps
    # them)
    argv += ["--set", "no_face=skip", "--output-dir", str(tmp_path / "c"), "--no-progress"]
    third = main(get_args_parser().parse_args(argv))
    assert third["data"]["all"] == {"images": 9, "crops": 9, "no_face": 1, "no_face_policy": "skip",
                                    "detections_run": 0}  # fmt: skip
    assert (
        "(left out of training and selection; the reported data keeps them"
        in (tmp_path / "c" / "model" / "README.md").read_text()
    )


@pytest.mark.slow
def test_the_reported_no_face_count_and_policy_are_evaluates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training's results said `no_face: {count: 0, policy: fallback}` whatever the data (the report showed
    "0 (fallback)" where evaluate counts every image without a face), and "fallback" for --precropped."""
    import images_corpus

    from ferhub import evaluation
    from ferhub.data import open_source

    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "faces"
    test = {"angry": [images_corpus.lfw_nonface(0), images_corpus.lfw_nonface(1)],
            "happy": [images_corpus.lfw_nonface(2), images_corpus.astronaut()]}  # fmt: skip
    train = {c: [images_corpus.lfw_nonface(10 + 4 * k + i) for i in range(4)] for k, c in enumerate(test)}
    for split, classes in (("train", train), ("test", test)):
        for c, images in classes.items():
            (root / split / c).mkdir(parents=True)
            for i, image in enumerate(images):
                image.resize((112, 112) if image.width < 100 else image.size).save(
                    root / split / c / f"{i}.png"
                )
    argv = ["--recipe", "seed002_kaskun", "--data", str(root), "--tiny", "--epochs", "1", "--no-progress",
            "--face-cache", str(tmp_path / "cache")]  # fmt: skip
    for extra, precropped in (([], None), (["--precropped"], True)):
        out = tmp_path / f"run{len(extra)}"
        main(get_args_parser().parse_args([*argv, *extra, "--output-dir", str(out)]))
        (entry,) = json.loads((out / "model" / "eval_results.json").read_text())["results"].values()
        (run,) = evaluation.evaluate(
            str(out / "model"), open_source(str(root), "test"), precropped=precropped, n_resamples=10
        )
        assert entry["num_images"] == run.entry["num_images"] == 4
        assert entry["no_face"] == run.entry["no_face"]
        expected = {"count": 3, "policy": "fallback", "per_class": {"angry": 2, "happy": 1}}
        if precropped:
            expected = {"count": 0, "policy": "precropped", "per_class": {"angry": 0, "happy": 0}}
        assert entry["no_face"] == expected


def test_init_loads_a_local_checkpoint(tmp_path: Path) -> None:
    from ferhub import hub
    from ferhub.models import create_model
    from ferhub.training import build_model

    torch.manual_seed(5)
    source = create_model("test_fcn", FER7)
    folder = hub.save(source, tmp_path / "init_repo")
    torch.manual_seed(6)
    model = build_model(TrainConfig(model="test_fcn", init=str(folder)), FER7)
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in model.state_dict().items())


def test_training_tta_is_evaluations_tta(task_folder: Path) -> None:
    """Training's validation and `ferhub evaluate` on the same crops give the same TTA probabilities."""
    from ferhub import evaluation
    from ferhub.data import ArraySource
    from ferhub.models import create_model
    from ferhub.training import evaluate

    torch.manual_seed(0)
    model = create_model("test_tiny", ("angry", "disgust", "fear", "happy")).eval()
    images, targets, labels = transform_task(3, size=16, num_classes=4, seed=5)
    source = ArraySource(images, targets, labels, "crops", None)
    for method in ("flip", "tencrop"):
        ours = evaluate(model, torch.from_numpy(images), model.config, device=torch.device("cpu"), tta=method)
        (run,) = evaluation.evaluate(model, source, tta=method, n_resamples=10)
        np.testing.assert_allclose(ours, run.predictions.probabilities, atol=1e-5)
        plain = evaluate(model, torch.from_numpy(images), model.config, device=torch.device("cpu"))
        assert not np.allclose(ours, plain)  # the views do change the answer


# ------------------------------------------------------------------------------------------------ protocol
def _numbered(n: int, num_classes: int = 4, offset: int = 0) -> Crops:
    """Crops whose first two pixels spell their own index: any crop can be traced back after splitting."""
    images = np.zeros((n, 8, 8), dtype=np.uint8)
    ids = np.arange(offset, offset + n)
    images[:, 0, 0], images[:, 0, 1] = ids % 256, ids // 256
    return Crops(images, np.arange(n) % num_classes, ("angry", "disgust", "fear", "happy")[:num_classes])


def _ids(crops: Crops | None) -> set[int]:
    return set() if crops is None else {int(a) + 256 * int(b) for a, b in crops.images[:, 0, :2]}


@pytest.mark.parametrize(
    ("settings", "val", "test", "report_split", "selects"),
    [
        ({}, False, False, "heldout", "an inner stratified 10% of the training data"),
        ({}, True, False, "val", "an inner stratified 10% of the training data"),  # val reports
        ({}, True, True, "test", "split val"),  # val selects, test reports
        ({"kfold": 4}, False, False, "kfold4", "an inner stratified 10% of each fold's training part"),
        ({"selection": "last"}, True, False, "val", None),
        ({"selection": "epoch_mean", "kfold": 3}, False, False, "kfold3", None),
    ],
)
def test_no_reported_image_took_part_in_training_or_selection(
    settings: dict, val: bool, test: bool, report_split: str, selects: str | None
) -> None:
    from ferhub.training.protocol import make_plan

    cfg = TrainConfig.from_dict(settings)
    train = _numbered(200)
    plan = make_plan(
        cfg,
        train,
        _numbered(40, offset=1000) if val else None,
        _numbered(40, offset=2000) if test else None,
        {"train": "all", "val": "val", "test": "test"},
    )
    assert plan.report_split == report_split and plan.select_name == selects
    reported: set[int] = set()
    for fold in plan.folds:
        tr, se, re_ = _ids(fold.train), _ids(fold.select), _ids(fold.report)
        assert not (tr & se) and not (tr & re_) and not (se & re_)  # three disjoint roles
        assert (fold.select is not None) == (cfg.selection == "inner")
        if fold.select is not None:  # each class is represented in the selection data
            assert set(fold.select.targets) == {0, 1, 2, 3}
        reported |= re_
    if cfg.kfold:  # every training image is reported exactly once over the folds
        assert reported == _ids(train) and sum(len(f.report) for f in plan.folds) == 200


def test_training_picks_its_device_by_the_one_default_device_rule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--device auto`` asks :func:`ferhub.device.default_device` (as the Predictor and the app do); a CUDA
    device asked for on a machine without one is refused at once with a message that says what to do."""
    import ferhub.device
    from ferhub.cli import main as cli_main
    from ferhub.training.run import RunOptions, _Session

    asked = []
    monkeypatch.setattr(ferhub.device, "default_device", lambda: asked.append(1) or "cpu")
    session = _Session.start(TrainConfig(), RunOptions(data="unused", output_dir=str(tmp_path / "a")))
    assert asked == [1] and session.device == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["train", "--recipe", "seed002_kaskun", "--data", str(tmp_path), "--device", "cuda"]
    assert cli_main([*argv, "--output-dir", str(tmp_path / "b")]) == 2  # an option to change, not a bug (4)
    assert "torch sees no CUDA GPU; use --device cpu" in capsys.readouterr().err


def test_batchnorm_lag_is_the_share_of_running_statistics_still_initial() -> None:
    from ferhub.training.fit import batchnorm_lag, batchnorm_note

    keras, torch_default, cumulative = (
        torch.nn.BatchNorm2d(3, momentum=0.01),
        torch.nn.BatchNorm1d(3, momentum=0.1),
        torch.nn.BatchNorm2d(3, momentum=None),  # a cumulative average: never lags
    )
    model = torch.nn.ModuleList([torch.nn.Conv2d(3, 3, 1), keras, torch_default, cumulative])
    for bn, batches in ((keras, 150), (torch_default, 150), (cumulative, 3)):
        bn.num_batches_tracked.fill_(batches)
    share, batches, momentum = batchnorm_lag(model)
    assert (batches, momentum) == (150, 0.01) and abs(share - 0.99**150) < 1e-12  # 0.22
    note = batchnorm_note(model)
    assert note is not None and "150 batches at momentum 0.01" in note and "22%" in note
    keras.num_batches_tracked.fill_(500)  # 0.99 ** 500 = 0.7%: caught up
    assert batchnorm_note(model) is None
    plain = torch.nn.Linear(2, 2)
    assert batchnorm_lag(plain) == (0.0, 0, 0.0) and batchnorm_note(plain) is None
    frozen = torch.nn.BatchNorm2d(3, momentum=0.01)  # never in train mode: keeps its loaded statistics
    assert batchnorm_lag(frozen) == (0.0, 0, 0.0) and batchnorm_note(frozen) is None


def test_a_run_with_frozen_batchnorm_says_nothing_of_it(task_folder: Path, tmp_path: Path, capsys) -> None:
    argv = _args(task_folder, tmp_path / "run", "--epochs", "1", "--set", "freeze_bn=true")
    main(get_args_parser().parse_args(argv))
    out = capsys.readouterr()
    assert "BatchNorm's running statistics" not in out.out + out.err


def test_a_run_too_short_for_its_batchnorm_statistics_says_so(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # test_tiny keeps Keras' momentum (0.01): one epoch of a few batches leaves the statistics ~95% initial
    main(get_args_parser().parse_args(_args(task_folder, tmp_path / "run", "--epochs", "1")))
    out = capsys.readouterr()
    assert "BatchNorm's running statistics have seen" in out.out + out.err


# -------------------------------------------------------------------------------- unreadable images, errors
def _with_damaged_files(task_folder: Path, root: Path) -> Path:
    """A copy of the task with a truncated PNG (angry) and an empty JPEG (happy) among its images."""
    import shutil

    data = Path(shutil.copytree(task_folder, root / "faces"))
    (data / "angry" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (data / "happy" / "empty.jpg").write_bytes(b"")
    return data


class _NoFaceDetector:
    """Finds no face anywhere (the whole image stands in), without running MTCNN."""

    def detect_batch(self, images: list) -> list:
        return [[] for _ in images]


@pytest.mark.parametrize("precropped", [True, False])
def test_materialize_skips_and_counts_unreadable_images(
    task_folder: Path, tmp_path: Path, precropped
) -> None:
    from ferhub.data import DataSourceError, FaceCache, materialize, open_source

    src = open_source(_with_damaged_files(task_folder, tmp_path))
    bad = {i for i in range(len(src)) if Path(src.path_of(i)).stem in ("broken", "empty")}
    good = [i for i in range(len(src)) if i not in bad]
    cfg = ModelConfig(architecture="test_tiny", labels=src.labels, input_size=24, channels=1)
    cache = FaceCache(_NoFaceDetector(), persist=False, signature="test")
    crops = materialize(src, cfg, cache=cache, precropped=precropped, batch_size=8)
    assert set(crops.unreadable) == bad and len(crops) == len(good) and crops.skipped == 0
    assert np.array_equal(crops.targets, src.targets[good])
    assert crops.no_face == (0 if precropped else len(good))
    assert "unreadable image header" in crops.unreadable[min(bad)] or "empty" in crops.unreadable[min(bad)]
    with pytest.raises(DataSourceError, match=r"none of its 2 images could be decoded \(first: .*broken.png"):
        materialize(src, cfg, indices=sorted(bad), cache=cache, precropped=precropped)


def test_train_skips_unreadable_images_and_says_how_many(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ferhub.cli import main as cli_main

    data = _with_damaged_files(task_folder, tmp_path)
    out = tmp_path / "run"
    assert cli_main(["train", *_args(data, out, "--epochs", "1")]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    n = len(list(task_folder.rglob("*.png")))
    (line,) = [x for x in err.splitlines() if "could not be decoded" in x]
    assert f"2 of {n + 2} images could not be decoded and were skipped (first: " in line
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["all"]["unreadable"] == 2 and summary["data"]["all"]["crops"] == n
    assert (
        f"Left out because they could not be decoded: 2 of {n + 2} images"
        in (out / "model" / "README.md").read_text()
    )


def test_train_data_errors_are_exit_1_or_3_and_option_errors_stay_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Data that cannot be used is exit 1 (3: the Hub holding it cannot be reached) with the same one line as
    every other command; only an option to change is exit 2."""
    import ferhub.data
    from ferhub.cli import main as cli_main
    from ferhub.data import DataSourceError
    from ferhub.errors import HubConnectionError

    def lines(err: str) -> list[str]:
        return [x for x in err.splitlines() if x.startswith("ferhub train:")]

    argv = ["train", "--recipe", "seed002_kaskun", "--tiny", "--output-dir", str(tmp_path / "run")]
    assert cli_main([*argv, "--data", str(tmp_path / "missing")]) == 1
    (line,) = lines(capsys.readouterr().err)
    assert "missing" in line and "error:" not in line

    class HubDown(DataSourceError, HubConnectionError):
        pass

    opened = []

    def down(source, split=None, **kw):
        opened.append(split)
        raise HubDown(f"Hub dataset {source!r} is not in the datasets cache and the Hub is unreachable")

    monkeypatch.setattr(ferhub.data, "open_source", down)
    assert cli_main([*argv, "--data", "org/data"]) == 3
    (line,) = lines(capsys.readouterr().err)
    assert (
        line == "ferhub train: Hub dataset 'org/data' is not in the datasets cache and the Hub is unreachable"
    )
    assert opened == ["train"]  # not asked again without a split: the Hub is down, not the split missing

    assert cli_main(["train", "--recipe", "nope", "--data", "org/data"]) == 2
    (line,) = lines(capsys.readouterr().err)
    assert line.startswith("ferhub train: no recipe 'nope'")
    monkeypatch.undo()

    one_class = tmp_path / "one" / "happy"  # every image of one class: nothing to learn, accuracy 1.0
    one_class.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (48, 48), (40 * i, 90, 120)).save(one_class / f"{i}.png")
    assert cli_main([*argv, "--data", str(tmp_path / "one"), "--precropped"]) == 1
    (line,) = lines(capsys.readouterr().err)
    assert "its images are all of one class (happy)" in line and "at least two classes" in line


def test_repeats_pool_each_image_once_per_repeat_and_resample_images() -> None:
    """--kfold K --repeats R: the pooled result counted each image R times as num_images, and its bootstrap
    resampled the R x N rows as independent images (an interval about sqrt(R) too narrow)."""
    from types import SimpleNamespace

    from ferhub.metrics import BOOTSTRAP_RESAMPLES, bootstrap_ci, summarize
    from ferhub.training.protocol import Fold, FoldRun, Plan, subset, summarize_runs

    cfg = TrainConfig.from_dict({"kfold": 2, "repeats": 3})
    crops = _numbered(40)
    halves = [subset(crops, np.arange(i, 40, 2)) for i in (0, 1)]
    plan = Plan([Fold(h, None, h) for h in halves], "kfold2", "the held-out folds", None)
    rng = np.random.default_rng(0)
    probs = [rng.dirichlet(np.ones(4), len(h)).astype(np.float32) for h in halves]
    result = SimpleNamespace(model=SimpleNamespace(config=SimpleNamespace(labels=crops.labels)))
    # every repeat predicts the same: three copies of each image's prediction tell no more than one
    runs = [[FoldRun(result, h, p) for h, p in zip(halves, probs)] for _ in range(3)]  # type: ignore[arg-type]
    pooled = summarize_runs(cfg, plan, runs)
    assert pooled["num_images"] == 40 and sum(map(sum, pooled["confusion_matrix"])) == 120
    targets, all_probs = np.concatenate([h.targets for h in halves]), np.concatenate(probs)
    once = summarize(
        targets,
        all_probs,
        data_labels=crops.labels,
        model_labels=crops.labels,
        n_resamples=BOOTSTRAP_RESAMPLES,
    )
    for key in ("accuracy_ci95", "mean_class_recall_ci95", "accuracy"):
        assert pooled["metrics"][key] == once["metrics"][key]
    rows = bootstrap_ci(np.tile(targets, 3), np.tile(all_probs.argmax(axis=1), 3), 4)
    assert rows["accuracy"] != once["metrics"]["accuracy_ci95"]  # what resampling rows gave
    assert len(pooled["protocol"]["folds"]["accuracy"]["values"]) == 6
    notes = " ".join(pooled["notes"])
    assert "Mean ± std over 2 folds x 3 repeats: accuracy " in notes and "over 2 folds:" not in notes
    assert "the 95% intervals resample images, each with all its repeats' predictions" in notes


def test_kfold_repeats_card_counts_the_images_once(task_folder: Path, tmp_path: Path) -> None:
    """The card said "results reported on all 48 images, each once" and, below, "96 images"."""
    out = tmp_path / "run"
    argv = _args(task_folder, out, "--epochs", "1", "--kfold", "2", "--repeats", "2")
    main(get_args_parser().parse_args(argv))
    (entry,) = json.loads((out / "model" / "eval_results.json").read_text())["results"].values()
    assert entry["num_images"] == 48 and sum(map(sum, entry["confusion_matrix"])) == 96
    card = (out / "model" / "README.md").read_text()
    assert "results reported on all 48 images, each once in each of the 2 repeats (the held-out folds" in card
    assert "Dataset `faces`, 48 images," in card
    assert "- 2-fold x 2 repeats, mean ± std, accuracy: " in card
    assert "Mean ± std over 2 folds x 2 repeats: accuracy " in card


def test_a_parquet_file_without_splits_gives_no_split_of_itself_to_select_or_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file without splits now takes any split name for all of its rows: probing it for a validation or
    test split must not find one (those would be the training images), and naming one is refused."""
    import datasets

    from ferhub.cli import main as cli_main

    images, targets, labels = transform_task(8, size=24, num_classes=4, seed=5)
    rows = {"image": [Image.fromarray(im) for im in images], "label": [labels[t] for t in targets]}
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("string")})
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / "faces.parquet"))
    out = tmp_path / "run"
    summary = main(get_args_parser().parse_args(_args(tmp_path / "faces.parquet", out, "--epochs", "1")))
    assert list(summary["data"]) == ["all"]  # one source, neither a val nor a test split taken of it
    (key,) = json.loads((out / "model" / "eval_results.json").read_text())["results"]
    assert key == "faces:default:heldout"
    argv = [
        "train",
        *_args(tmp_path / "faces.parquet", tmp_path / "r2", "--epochs", "1", "--val-split", "val"),
    ]
    assert cli_main(argv) == 1
    assert (
        "has no splits of its own, so its split 'val' would be all of its images" in capsys.readouterr().err
    )
