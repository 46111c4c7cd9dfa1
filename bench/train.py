"""Training benchmark: (a) proof that the loop learns, offline; (b) training throughput with data +
augmentation.

(a) mini-Xception is trained on a generated task made of real face crops (scikit-image's LFW subset): each
    crop is shown as is, upside down, inverted or rotated 90° (4 classes, chance = 25%), with random zoom,
    shift and noise. The faces used for validation are held out of training entirely. 20 epochs (500 steps of
    64): mini-Xception keeps Keras' BatchNorm momentum (0.99 of the running statistics kept per step, seed
    002's reference), so its evaluation-mode statistics lag a short run's weights: after 6 epochs the
    held-out accuracy was 0.44 where the same run with torch's momentum gave 0.995; after 20, 0.9975
    (2026-12-04, AMD EPYC).
(b) img/s of ``train_one_epoch`` (batch gather + the papers' augmentations + forward/backward/step) against a
    bare model step on a ready-made normalised batch, measured in the same run; medians of several runs.
(c) ``--threads-sweep 1,2``: the end-to-end img/s of (b) and the CPU time it costs, for each torch thread
    count with OpenMP's default waiting (its threads spin between operators) and with
    ``OMP_WAIT_POLICY=PASSIVE`` (they sleep), each setting in a process of its own (OpenMP reads the policy
    once, at start), the settings interleaved round by round so that load on the machine hits all alike; the
    load average is printed at the start and the end, as the comparison depends on it (what ``ferhub train
    --threads`` is for).

    python bench/train.py                       # CPU: mini-Xception 48x48, batch 128
    python bench/train.py --device cuda         # GPU: also ResNet18 112x112, AMP bf16 + channels_last
    python bench/train.py --threads-sweep 1,2 --batch 32   # CPU threads x OMP_WAIT_POLICY (seed 002's batch)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ferhub.data import Crops
from ferhub.device import cpu_name
from ferhub.models import create_model
from ferhub.training import (
    Dist,
    LRSchedule,
    TrainConfig,
    build_optimizer,
    fit,
    train_one_epoch,
)
from ferhub.transforms import TrainTransform, normalize

# the generated task the training tests learn lives with the tests (it needs scikit-image, a test dependency)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from tasks import transform_task

AUGMENT = {
    "hflip": 0.5,
    "rotate": 10,
    "scale": [0.9, 1.1],
    "translate": 0.1,
    "brightness": 0.2,
    "erasing": 0.25,
}


def learnability(epochs: int, per_class: int, device: torch.device) -> dict[str, float]:
    """Train mini-Xception on faces 0-79 of the LFW subset, validate on faces 80-99."""
    train_x, train_y, labels = transform_task(per_class, size=48, num_classes=4, seed=0, faces=slice(0, 80))
    val_x, val_y, _ = transform_task(
        max(per_class // 4, 25), size=48, num_classes=4, seed=1, faces=slice(80, 100)
    )
    cfg = TrainConfig(
        recipe="bench",
        model="mini_xception",
        config_overrides={"input_size": 48},
        epochs=epochs,
        batch_size=64,
        lr=3e-3,
        schedule="cosine",
        warmup_epochs=0.5,
        augment={"scale": [0.95, 1.05], "translate": 0.05, "brightness": 0.1},
        selection="last",  # the held-out faces only report: no epoch is chosen on them
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = fit(
            cfg,
            Crops(train_x, train_y, labels),
            Crops(val_x, val_y, labels),
            Path(tmp),
            device=device,
            progress=False,
            log=lambda _msg: None,
        )
    m = result.val_metrics["metrics"]
    return {
        "train_images": len(train_y),
        "val_images": len(val_y),
        "epochs": epochs,
        "accuracy": m["accuracy"],
        "mean_class_recall": m["mean_class_recall"],
        "chance": 1 / len(labels),
        "seconds": time.perf_counter() - start,
    }


def throughput(
    model_name: str,
    size: int,
    batch: int,
    steps: int,
    repeats: int,
    device: torch.device,
    amp: str = "none",
    channels: int | None = None,
    end_to_end_only: bool = False,
) -> dict[str, float]:
    """img/s of train_one_epoch (data + augmentation + step) and of a bare step, medians over ``repeats``;
    ``end_to_end_only``: the first alone (with its CPU time)."""
    labels = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    overrides = {"input_size": size} | ({"channels": channels} if channels else {})
    model = create_model(model_name, labels, config_overrides=overrides).to(device)
    cfg = TrainConfig(
        model=model_name,
        epochs=10**6,
        batch_size=batch,
        lr=1e-3,
        augment=AUGMENT,
        amp=amp,
        channels_last=True,
    )
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg)
    criterion = torch.nn.CrossEntropyLoss()
    schedule = LRSchedule(cfg, steps)
    n = batch * steps
    shape = (n, size, size) + (() if model.config.channels == 1 else (3,))
    rng = np.random.default_rng(0)
    data = torch.from_numpy(rng.integers(0, 256, shape, dtype=np.uint8)).to(device)
    targets = torch.from_numpy(rng.integers(0, len(labels), n)).to(device)
    transform = TrainTransform.from_recipe(model.config, AUGMENT)

    cpu = []  # the process's CPU seconds (all its threads) of each end-to-end run

    def e2e(epoch: int) -> float:
        sync(device)
        t, c = time.perf_counter(), time.process_time()
        train_one_epoch(
            model, criterion, optimizer, data, targets, transform, epoch, cfg,
            schedule=schedule, device=device, dist=Dist(), progress=False,
        )  # fmt: skip
        sync(device)
        cpu.append(time.process_time() - c)
        return n / (time.perf_counter() - t)

    x = normalize(data[:batch], model.config)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = targets[:batch]

    def bare() -> float:
        model.train()
        sync(device)
        t = time.perf_counter()
        for _ in range(steps):
            with torch.autocast(
                "cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and amp == "bf16"
            ):
                out = model(x)
            loss = criterion(out.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        sync(device)
        return n / (time.perf_counter() - t)

    def loader_only() -> float:
        g = torch.Generator(device=data.device).manual_seed(0)
        sync(device)
        t = time.perf_counter()
        for i in range(steps):
            index = torch.arange(i * batch, (i + 1) * batch, device=data.device)
            transform(data.index_select(0, index), g)
        sync(device)
        return n / (time.perf_counter() - t)

    e2e(0)  # warm-up (allocator, cuDNN autotuning)
    cpu.clear()
    if end_to_end_only:
        runs = [e2e(r + 1) for r in range(repeats)]
        return {"end_to_end": statistics.median(runs), "cpu_ms_per_image": 1000 * statistics.median(cpu) / n}
    bare(), loader_only()
    runs_e2e, runs_bare, runs_loader = [], [], []
    for r in range(repeats):  # interleaved, so load changes on the machine hit all alike
        runs_bare.append(bare())
        runs_e2e.append(e2e(r + 1))
        runs_loader.append(loader_only())
    med_e2e, med_bare = statistics.median(runs_e2e), statistics.median(runs_bare)
    return {
        "end_to_end": med_e2e,
        "bare_step": med_bare,
        "loader_only": statistics.median(runs_loader),
        "cpu_ms_per_image": 1000 * statistics.median(cpu) / n,
    }


POLICIES = ("default", "PASSIVE")  # OMP_WAIT_POLICY unset (OpenMP spins its waiting threads), or passive


def threads_sweep(threads: list[int], batch: int, steps: int, rounds: int) -> list[dict[str, object]]:
    """(c): for each thread count and OpenMP wait policy, the median over ``rounds`` of the end-to-end img/s
    and CPU ms per image of mini-Xception 48x48, each measured in a child process of its own."""
    settings = [(t, policy) for t in threads for policy in POLICIES]
    found: dict[tuple[int, str], list[dict[str, float]]] = {s: [] for s in settings}
    for r in range(rounds):
        for t, policy in settings if r % 2 == 0 else reversed(settings):  # neither order always first
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
            if policy != "default":
                env["OMP_WAIT_POLICY"] = policy
            command = [sys.executable, __file__, "--child", "--threads", str(t), "--batch", str(batch),
                       "--steps", str(steps)]  # fmt: skip
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
            found[(t, policy)].append(json.loads(out.splitlines()[-1]))
    return [
        {
            "threads": t,
            "policy": policy,
            "end_to_end": statistics.median(m["end_to_end"] for m in found[(t, policy)]),
            "cpu_ms_per_image": statistics.median(m["cpu_ms_per_image"] for m in found[(t, policy)]),
        }
        for t, policy in settings
    ]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--epochs", type=int, default=20, help="epochs of the learnability run")
    p.add_argument("--per-class", type=int, default=400, help="training images per class (learnability)")
    p.add_argument("--steps", type=int, default=10, help="batches per throughput run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--skip-learnability", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--batch", type=int, default=128, help="mini-Xception's batch size in (b) and (c)")
    p.add_argument(
        "--threads-sweep",
        default=None,
        metavar="N,N,...",
        help="(c) only: these torch thread counts, each with and without OMP_WAIT_POLICY=PASSIVE",
    )
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # one setting of (c), as JSON
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        t = throughput(
            "mini_xception", 48, args.batch, args.steps, 1, torch.device("cpu"), end_to_end_only=True
        )
        print(json.dumps(t))
        return
    if args.threads_sweep:
        sweep(args)
        return
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{cpu_name()}, {torch.get_num_threads()} threads"
    print(f"# ferhub training benchmark ({name}, torch {torch.__version__})\n")
    if not args.skip_learnability:
        r = learnability(args.epochs, args.per_class, device)
        print("## (a) learns: mini-Xception on LFW crops labelled by transformation (faces held out)\n")
        print("| train images | held-out images | epochs | accuracy | mean class recall | chance | time |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print(
            f"| {r['train_images']} | {r['val_images']} | {r['epochs']} | {r['accuracy']:.3f} | "
            f"{r['mean_class_recall']:.3f} | {r['chance']:.2f} | {r['seconds']:.0f} s |\n"
        )
    rows = [("mini_xception", 48, args.batch, "none", None)]
    if device.type == "cuda":
        rows += [("resnet18", 112, 256, "bf16", None), ("resnet18", 112, 512, "bf16", None)]
    print(f"## (b) training throughput, images/s (median of {args.repeats} runs of {args.steps} batches)\n")
    print(
        "| model | input | batch | AMP | end to end (data + augmentation + step) | bare step | end to end /"
        " bare | gather + augmentation alone |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for model_name, size, batch, amp, channels in rows:
        t = throughput(model_name, size, batch, args.steps, args.repeats, device, amp, channels)
        print(
            f"| {model_name} | {size}x{size} | {batch} | {amp} | {t['end_to_end']:,.0f} |"
            f" {t['bare_step']:,.0f} | {t['end_to_end'] / t['bare_step']:.0%} | {t['loader_only']:,.0f} |"
        )
    print(f"\naugmentation in the end-to-end runs: {AUGMENT}")


def sweep(args: argparse.Namespace) -> None:
    """Print (c): the table of :func:`threads_sweep`, with the machine's load average around it."""
    threads = [int(t) for t in args.threads_sweep.split(",")]
    print(f"# ferhub training threads ({cpu_name()}, torch {torch.__version__}; "
          f"torch's default: {torch.get_num_threads()} threads)\n")  # fmt: skip
    load = os.getloadavg()
    rows = threads_sweep(threads, args.batch, args.steps, args.repeats)
    print(f"## (c) mini-Xception 48x48, batch {args.batch}: end-to-end images/s and CPU time, median of "
          f"{args.repeats} rounds of {args.steps} batches, each setting in its own process\n")  # fmt: skip
    print("| torch threads | OMP_WAIT_POLICY | end to end, img/s | CPU ms per image |")
    print("|---:|---|---:|---:|")
    for r in rows:
        print(f"| {r['threads']} | {r['policy']} | {r['end_to_end']:,.0f} | {r['cpu_ms_per_image']:.2f} |")
    after = os.getloadavg()
    print(f"\nload average (1, 5, 15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} at the start, "
          f"{after[0]:.1f} {after[1]:.1f} {after[2]:.1f} at the end")  # fmt: skip


if __name__ == "__main__":
    main()
