"""``ferhub train`` stopped at a bad moment or run twice: a stop between an epoch's two checkpoint saves, a
finished run's command run again and stopped before its first epoch ends, and two runs into one folder."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tasks import quick_train_args, transform_task

from ferhub.cli import main as cli_main
from ferhub.commands.train import get_args_parser, main
from ferhub.data import write_class_folders
from ferhub.training import read_checkpoint
from ferhub.training.outdir import LOCK_NAME, forget_checkpoints

pytestmark = pytest.mark.usefixtures("one_torch_thread")
fit_module = importlib.import_module("ferhub.training.fit")  # the package's `fit` is the function


@pytest.fixture(scope="module")
def task_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-class task on real LFW face crops, as class folders (24 px gray PNGs)."""
    images, targets, labels = transform_task(12, size=24, num_classes=4, seed=0)
    return write_class_folders(images, targets, labels, tmp_path_factory.mktemp("task") / "faces")


def _args(data: Path, out: Path, seed: int, *extra: str) -> list[str]:
    """3 epochs of a tiny model, monitoring the validation loss: with seed 1 every epoch improves on it,
    with seed 0 epoch 1 stays the best."""
    return quick_train_args(data, out, "--epochs", "3", "--seed", str(seed), "--set", "monitor=loss", *extra)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _best_epochs(folder: Path) -> list[int]:
    return [json.loads(line)["best_epoch"] for line in (folder / "log.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------- 1. a stop between last and best of an epoch
def test_a_stop_between_the_two_saves_of_a_best_epoch_resumes_to_that_epochs_weights(
    task_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``last.safetensors`` said "best: epoch 3" while ``best.safetensors`` still held epoch 2: --resume
    released epoch 2's weights under a summary, log and card that name epoch 3."""
    straight = tmp_path / "straight"
    assert main(get_args_parser().parse_args(_args(task_folder, straight, 1)))["best_epoch"] == 3
    out = tmp_path / "stopped"
    link_best = fit_module._link_best

    def stop_before_best(
        last: Path, best: Path
    ) -> None:  # Ctrl-C once last.safetensors of epoch 3 is written
        if read_checkpoint(last)[1]["state"]["epoch"] == 3:
            raise KeyboardInterrupt
        link_best(last, best)

    monkeypatch.setattr(fit_module, "_link_best", stop_before_best)
    with pytest.raises(KeyboardInterrupt):
        main(get_args_parser().parse_args(_args(task_folder, out, 1)))
    assert read_checkpoint(out / "checkpoints" / "best.safetensors")[1]["state"]["epoch"] == 2
    monkeypatch.setattr(fit_module, "_link_best", link_best)
    summary = main(get_args_parser().parse_args(_args(task_folder, out, 1, "--resume")))
    assert summary["best_epoch"] == 3 and _best_epochs(out) == _best_epochs(straight)
    released = _weights(out / "model" / "model.safetensors")
    assert _same(released, _weights(straight / "model" / "model.safetensors"))
    for name in ("last", "best"):  # the pair as the uninterrupted run left it
        ours, theirs = (_weights(d / "checkpoints" / f"{name}.safetensors") for d in (out, straight))
        assert _same(ours, theirs), name


@pytest.mark.parametrize("links", [True, False])
def test_a_released_epoch_is_saved_once_and_best_keeps_it_when_last_moves_on(
    links: bool, task_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every epoch that was released was serialised twice, ``best`` a byte-identical second full checkpoint
    of ``last`` (optimizer state included): with ``selection`` last or epoch_mean (seeds 003 and 004) twice
    the writes and the disk, every epoch. Now ``best`` is a hard link to ``last`` (a copy where links fail),
    and the next epoch's ``last`` is a new file, so ``best`` keeps the epoch it was."""
    saves = []
    save = fit_module._Parts.save

    def counted(self, path, state, cfg):
        saves.append(path.name)
        return save(self, path, state, cfg)

    monkeypatch.setattr(fit_module._Parts, "save", counted)
    if not links:
        monkeypatch.setattr(
            fit_module.os, "link", lambda *a: (_ for _ in ()).throw(PermissionError("no links"))
        )
    every = tmp_path / "every"  # seed 1: each epoch improves, so each is released (as with selection last)
    assert main(get_args_parser().parse_args(_args(task_folder, every, 1)))["best_epoch"] == 3
    assert saves == ["last.safetensors"] * 3
    best, last = every / "checkpoints" / "best.safetensors", every / "checkpoints" / "last.safetensors"
    assert best.samefile(last) is links and best.read_bytes() == last.read_bytes()
    # with selection on the validation loss, seed 0's best epoch is the first: best keeps epoch 1 as last
    # goes on to epoch 3
    saves.clear()
    chosen = tmp_path / "chosen"
    assert main(get_args_parser().parse_args(_args(task_folder, chosen, 0)))["best_epoch"] == 1
    assert saves == ["last.safetensors"] * 3
    assert read_checkpoint(chosen / "checkpoints" / "best.safetensors")[1]["state"]["epoch"] == 1
    assert read_checkpoint(chosen / "checkpoints" / "last.safetensors")[1]["state"]["epoch"] == 3


def test_a_best_checkpoint_of_another_epoch_is_refused_not_released(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A best.safetensors that is not the epoch the run names (or none at all, where the best epoch is not
    the last) was released (or the last epoch's weights were) with exit 0."""
    out = tmp_path / "run"
    argv = _args(task_folder, out, 0)
    assert main(get_args_parser().parse_args(argv))["best_epoch"] == 1
    best, last = out / "checkpoints" / "best.safetensors", out / "checkpoints" / "last.safetensors"
    best.write_bytes(last.read_bytes())  # epoch 3 where epoch 1 belongs
    capsys.readouterr()
    assert cli_main(["train", *argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{best} holds epoch 3, but the run's best epoch is 1" in err and "without --resume" in err
    best.unlink()
    assert cli_main(["train", *argv, "--resume"]) == 2
    assert f"{best} is missing, so epoch 1's weights are gone" in capsys.readouterr().err


# ------------------------------------------------- 2. a finished run's command again, stopped, then --resume
def test_a_fresh_run_stopped_before_its_first_epoch_leaves_nothing_to_resume(
    task_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The rerun removed the old best.safetensors but kept its last.safetensors: Ctrl-C said "continue it
    with --resume", and --resume "continued" the old finished run, releasing its last epoch as the best."""
    out = tmp_path / "run"
    argv = _args(task_folder, out, 0)
    main(get_args_parser().parse_args(argv))
    assert (out / "checkpoints" / "last.safetensors").is_file()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_module, "train_one_epoch", interrupted)
    capsys.readouterr()
    assert cli_main(["train", *argv]) == 130
    assert capsys.readouterr().err == "ferhub train: interrupted\n"  # no --resume hint: nothing to resume
    assert sorted(out.glob("**/checkpoints/*.safetensors")) == []
    monkeypatch.undo()
    assert cli_main(["train", *argv, "--resume"]) == 2
    assert "last.safetensors not found; start without --resume" in capsys.readouterr().err


def test_forget_checkpoints_removes_only_the_parts_ferhub_names(tmp_path: Path) -> None:
    """A fresh k-fold or --repeats run stopped in its first part left the other parts' old checkpoints, which
    --resume continued as parts of the new run."""
    names = [".", "repeat1", "fold2", "repeat2/fold10", "other", "repeat1/other", "fold2/repeat1"]
    for part in names:
        (tmp_path / part / "checkpoints").mkdir(parents=True, exist_ok=True)
        for name in ("last", "best", "extra"):
            (tmp_path / part / "checkpoints" / f"{name}.safetensors").write_text("x")
    removed = {p.relative_to(tmp_path).as_posix() for p in forget_checkpoints(tmp_path)}
    assert removed == {f"{p}/checkpoints/{n}.safetensors".removeprefix("./") for p in names[:4]
                       for n in ("last", "best")}  # fmt: skip
    left = {p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("**/*.safetensors")}
    assert len(left) == 7 * 3 - 8 and "other/checkpoints/last.safetensors" in left


# ---------------------------------------------------------------------------- 3. two runs into one folder
HOLDER = "import sys; from pathlib import Path; from ferhub.training.outdir import claim; " \
    "lock = claim(Path(sys.argv[1])); print('held', flush=True); sys.stdin.read()"  # fmt: skip


@contextlib.contextmanager
def _held_by_another_process(out: Path) -> Iterator[subprocess.Popen[str]]:
    """``out`` claimed by another process for the block, which is then killed (SIGKILL: it never lets go
    itself, so its lock file stays)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_second_run_into_a_folder_in_use_is_refused_and_a_dead_runs_lock_is_not(
    task_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs into one --output-dir both exited 0, leaving weights of one run under the card of the other
    and a log of both runs' epochs interleaved."""
    import ferhub.data

    out = tmp_path / "run"
    out.mkdir()
    with _held_by_another_process(out) as holder:
        real_materialize = ferhub.data.materialize

        def no_crops(*args, **kw):
            raise AssertionError("the data was cropped before the run was refused")

        monkeypatch.setattr(ferhub.data, "materialize", no_crops)
        capsys.readouterr()
        assert cli_main(["train", *_args(task_folder, out, 0)]) == 2
        assert capsys.readouterr().err == (
            f"ferhub train: {out} is in use by another ferhub train (pid {holder.pid}); wait for it to end, "
            "or give another --output-dir\n"
        )
        assert not (out / "log.jsonl").exists()
        monkeypatch.setattr(ferhub.data, "materialize", real_materialize)
    assert (out / LOCK_NAME).read_text() == f"{holder.pid}\n"
    assert cli_main(["train", *_args(task_folder, out, 0)]) == 0
    assert not (out / LOCK_NAME).exists()  # let go, and no file of its own left in the run folder


# ------------------------------------------------------------------------------------ found by review
def test_a_fresh_run_keeps_the_earlier_checkpoint_its_init_names(task_folder: Path, tmp_path: Path) -> None:
    """Forgetting the folder's earlier checkpoints deleted the one --init named (a run's own best, in the
    default runs/RECIPE folder) before it was read: "--init ...: no such file", exit 2."""
    out = tmp_path / "run"
    argv = _args(task_folder, out, 0, "--epochs", "1")
    assert cli_main(["train", *argv]) == 0
    best = out / "checkpoints" / "best.safetensors"
    assert cli_main(["train", *argv, "--init", str(best)]) == 0


def test_forgetting_keeps_the_init_name_only_not_its_hard_link(tmp_path: Path) -> None:
    """``best`` is a hard link to ``last`` while they are the same epoch: the --init named ``best`` kept
    ``last`` too (the same file), so a fresh run stopped before its first save left the earlier run's
    ``last`` for --resume to find. The other name goes; the one --init names stays, however it is named."""
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    best, last = checkpoints / "best.safetensors", checkpoints / "last.safetensors"
    best.write_bytes(b"weights")
    os.link(best, last)
    (tmp_path / "alias").symlink_to(best)
    assert forget_checkpoints(tmp_path, keep=tmp_path / "alias") == [last]
    assert best.read_bytes() == b"weights" and not last.exists()
    os.link(best, last)
    assert forget_checkpoints(tmp_path, keep=Path(os.path.relpath(last))) == [best]
    assert last.read_bytes() == b"weights"


def test_a_stop_while_the_data_opens_gives_no_resume_hint_for_an_earlier_run(
    task_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stopped before it forgot the earlier run's checkpoints, a fresh run said "continue it with --resume",
    which continued the earlier, finished run (with the new run's data named on its card)."""
    from ferhub.training import run as run_module

    out = tmp_path / "run"
    argv = _args(task_folder, out, 0, "--epochs", "1")
    assert cli_main(["train", *argv]) == 0

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_module, "_Data", stopped)
    capsys.readouterr()
    assert cli_main(["train", *argv]) == 130
    assert capsys.readouterr().err == "ferhub train: interrupted\n"
    monkeypatch.undo()
    monkeypatch.setattr(fit_module, "train_one_epoch", stopped)  # a --resume run keeps its hint
    assert cli_main(["train", *argv, "--epochs", "2", "--resume"]) == 130
    assert "continue it with the same command and --resume" in capsys.readouterr().err


def test_a_file_system_without_flock_trains_and_writes_results_unlocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where flock is not supported (Lustre, some NFS mounts) every train and every results write failed
    with "[Errno 38] Function not implemented"."""
    import errno

    from ferhub import eval_results, fileio
    from ferhub.training import outdir

    def unsupported(*args):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fileio.fcntl, "flock", unsupported)
    lock = outdir.claim(tmp_path)
    assert lock.file is None and not (tmp_path / LOCK_NAME).exists()
    lock.release()
    entry = {"dataset": {"id": "x"}}
    monkeypatch.setattr(eval_results, "merge", lambda old, new: dict(new))
    monkeypatch.setattr(eval_results, "_write", lambda folder, entries, render: folder / "done")
    assert eval_results.write(tmp_path, {"x": entry}) == tmp_path / "done"
    assert not (tmp_path / eval_results.LOCK_NAME).exists()


@pytest.mark.slow
def test_torchrun_into_a_folder_in_use_is_refused_on_every_rank(task_folder: Path, tmp_path: Path) -> None:
    """Only rank 0 claims the folder: rank 1 went on alone and ended in "internal error ... a bug"."""
    out = tmp_path / "run"
    out.mkdir()
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    train_script = Path(__file__).resolve().parent.parent / "train" / "train.py"

    def torchrun() -> subprocess.CompletedProcess:
        return subprocess.run(
            [*launcher, str(train_script), *_args(task_folder, out, 0), "--device", "cpu"],
            capture_output=True,
            text=True,
            timeout=300,
        )

    with _held_by_another_process(out):
        done = torchrun()
    assert done.returncode != 0
    assert done.stderr.count("is in use by another ferhub train") == 2, done.stderr
    assert "internal error" not in done.stderr
    # a lock that cannot be made at all (its name taken by a folder): every rank says why, none "a bug"
    (out / LOCK_NAME).unlink(missing_ok=True)
    (out / LOCK_NAME).mkdir()
    done = torchrun()
    assert done.returncode != 0
    assert done.stderr.count("cannot hold the folder") == 2, done.stderr
    assert "internal error" not in done.stderr
