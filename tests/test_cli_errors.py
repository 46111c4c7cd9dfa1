"""Top-level error handling of the ``ferhub`` command line: one line per error, documented exit codes,
``--debug`` for the traceback; evaluate keeps going past unreadable images and reports a failed push cleanly.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferhub import cli, hub
from ferhub.cli import main
from ferhub.labels import FER7


def one_line(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(f"ferhub {command}:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``faces/<class>/<i>.png``: two LFW crops per FER7 class, plus one corrupt file under ``happy``."""
    import skimage.data

    lfw = skimage.data.lfw_subset()
    root = tmp_path_factory.mktemp("data") / "faces"
    for i in range(2 * len(FER7)):
        folder = root / FER7[i % len(FER7)]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((lfw[i] * 255).astype(np.uint8)).save(folder / f"{i:03d}.png")
    (root / "happy" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def test_help_documents_the_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "exit codes: 0 success, 1 unusable" in " ".join(capsys.readouterr().out.split())
    for code in ("0", "1", "2", "3", "4", "130"):
        assert f"\n{code} " in cli.__doc__


def test_evaluate_skips_and_counts_an_unreadable_image(faces, tmp_path, capsys) -> None:
    folder = hub.save(__import__("ferhub").create_model("test_tiny", labels=FER7).eval(), tmp_path / "tiny")
    code = main(
        ["evaluate", "--model", str(folder), "--data", str(faces), "--precropped", "--bootstrap", "10",
         "--out", str(tmp_path / "out"), "--no-report"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "unreadable: 1 images could not be decoded and were skipped" in err
    (entry,) = hub.read_eval_results(folder)["results"].values()
    assert entry["num_images"] == 2 * len(FER7)
    assert entry["unreadable"]["count"] == 1
    assert entry["unreadable"]["examples"][0]["path"].endswith("broken.png")
    assert sum(map(sum, entry["confusion_matrix"])) == 2 * len(FER7)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_a_user_error_with_exit_1(faces, capsys) -> None:
    assert main(["predict", str(faces / "angry"), "--device", "cuda"]) == 1
    line = one_line(capsys.readouterr().err, "predict")
    assert "sees no CUDA GPU" in line and "--device cpu" in line and "internal error" not in line


def test_load_errors_are_one_line_with_exit_1(faces, tmp_path, capsys) -> None:
    missing = str(tmp_path / "no-such-model")
    for argv in (
        ["evaluate", "--model", missing, "--data", str(faces), "--precropped"],
        ["compare", missing, "ferhub/fer-mini-xception", "--data", str(faces), "--precropped"],
        ["push", missing, "org/name"],
        ["predict", str(faces / "angry"), "--model", missing],
    ):
        assert main(argv) == 1, argv
        line = one_line(capsys.readouterr().err, argv[0])
        assert "no-such-model" in line and len(line) < 600
        assert main(["--debug", *argv]) == 1, argv  # the commands that print their own line honour it too
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and err.rstrip().endswith(line), argv


def test_uncached_hub_model_offline_is_the_hub_exit_code_3(faces, tmp_path, capsys) -> None:
    """A Hub id that is not cached while the Hub cannot be reached is the Hub's failure (3), not the id's (1),
    in every command that loads models."""
    photo = str(next((faces / "angry").iterdir()))
    for argv in (
        ["predict", photo, "--model", "org/not-cached"],
        ["evaluate", "--model", "org/not-cached", "--data", str(faces), "--precropped", "--no-report"],
        ["compare", "ferhub/fer-mini-xception", "org/not-cached", "--data", str(faces), "--precropped"],
        ["export", "org/not-cached", "--out", str(tmp_path / "onnx")],
    ):
        assert main(argv) == 3, argv
        line = one_line(capsys.readouterr().err, argv[0])
        assert "'org/not-cached' is not in the local cache" in line and "HF_HUB_OFFLINE=1" in line, argv


def test_evaluate_push_offline_fails_at_once_with_exit_3(faces, tmp_path, capsys) -> None:
    code = main(["evaluate", "--model", "ferhub/fer-mini-xception", "--data", str(faces), "--push"])
    assert code == 3
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in one_line(capsys.readouterr().err, "evaluate")
    tiny = hub.save(__import__("ferhub").create_model("test_tiny", labels=FER7).eval(), tmp_path / "tiny")
    assert main(["push", str(tiny), "org/name"]) == 3  # the Hub's exit code, as evaluate --push
    assert "offline mode is on (HF_HUB_OFFLINE=1)" in one_line(capsys.readouterr().err, "push")


def test_evaluate_push_without_network_keeps_the_results(faces, tmp_path, capsys, monkeypatch) -> None:
    import httpx
    import huggingface_hub

    def create_commit(api, **kw):
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(
        hub._remote, "hub_unreachable", lambda endpoint: None
    )  # the probe passes; the commit fails
    out = tmp_path / "out"
    argv = ["evaluate", "--model", "ferhub/fer-mini-xception", "--data", str(faces), "--precropped",
            "--bootstrap", "10", "--out", str(out), "--no-report", "--push"]  # fmt: skip
    assert main(argv) == 3
    line = one_line(capsys.readouterr().err, "evaluate")
    assert "results written to" in line and "not pushed to ferhub/fer-mini-xception" in line
    assert "cannot reach the Hugging Face Hub (ConnectError" in line
    assert hub.read_eval_results(out / "ferhub--fer-mini-xception")["results"]


def test_internal_error_is_exit_4_and_debug_prints_the_traceback(capsys, monkeypatch) -> None:
    import ferhub.commands.models as models

    def broken(args):
        raise TypeError("'NoneType' object is not subscriptable")

    monkeypatch.setattr(models, "run", broken)
    assert main(["models"]) == 4
    err = capsys.readouterr().err
    line = one_line(err, "models")
    assert "internal error (TypeError: 'NoneType' object is not subscriptable)" in line and "--debug" in line
    for argv in (["--debug", "models"], ["models", "--debug"]):
        assert main(argv) == 4
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "broken" in err
    monkeypatch.setenv("FERHUB_DEBUG", "1")
    assert main(["models"]) == 4 and "Traceback" in capsys.readouterr().err


def test_interrupt_is_exit_130(capsys, monkeypatch) -> None:
    import ferhub.commands.models as models

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "run", interrupted)
    assert main(["models"]) == 130
    assert one_line(capsys.readouterr().err, "models") == "ferhub models: interrupted"


@pytest.mark.parametrize(
    ("error", "code", "expected"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/out/x.png"), 1, "the disk is full: /out/x.png"),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory", "/nope"),
            1,
            "No such file or directory: /nope",
        ),
        (MemoryError(), 1, "out of memory"),
        (ValueError("bad\nvalue " + "x" * 5000), 1, "bad value xxx"),
        (ConnectionError("reset by peer"), 3, "cannot reach the Hugging Face Hub"),
        (RuntimeError("weird"), 4, "internal error (RuntimeError: weird)"),
    ],
)  # fmt: skip
def test_describe_maps_errors_to_codes_and_one_bounded_line(error, code, expected) -> None:
    got, message = cli.describe(error)
    assert got == code and expected in message
    assert "\n" not in message and len(message) <= cli.MAX_MESSAGE + 200


def test_hub_refusal_is_exit_3() -> None:
    import httpx
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    request = httpx.Request("POST", "https://huggingface.co/api/repos/create")
    response = httpx.Response(401, request=request)
    code, message = cli.describe(HfHubHTTPError("401 Client Error: Unauthorized", response=response))
    assert code == 3 and "hf auth login" in message
    code, message = cli.describe(OfflineModeIsEnabled("Cannot reach https://huggingface.co: offline mode"))
    assert code == 3 and "HF_HUB_OFFLINE" in message


def test_a_hub_that_failed_is_told_to_try_later_not_to_log_in() -> None:
    """A 5xx or 429 (``ferhub zoo push`` with the Hub down) is the Hub's failure: the fix is to wait, not the
    login advice a 401 gets; one line."""
    import httpx
    from huggingface_hub.errors import HfHubHTTPError

    for status in (503, 429):
        request = httpx.Request("POST", "https://huggingface.co/api/models/org/name/commit/main")
        response = httpx.Response(status, request=request, text="Internal Error")
        error = HfHubHTTPError(f"{status} Server Error\nfor url ...\nmore", response=response)
        code, message = cli.describe(error)
        assert code == 3 and "try again later" in message and f"HTTP {status}" in message, message
        assert "hf auth login" not in message and "\n" not in message


def _ferhub(*argv: str, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ferhub", *argv], stdout=stdout, stderr=subprocess.PIPE, text=True, env=env,
        timeout=120,
    )  # fmt: skip


def test_full_disk_on_stdout_is_one_line() -> None:
    with open("/dev/full", "w") as full:
        proc = _ferhub("models", stdout=full)
    assert proc.returncode == 1
    assert "the disk is full" in one_line(proc.stderr, "models")


def test_closed_pipe_ends_quietly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferhub", "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.read(5)
    proc.stdout.close()  # like `ferhub models | head -c 5`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 1) and "Traceback" not in err and "BrokenPipe" not in err


def test_load_error_in_a_real_process_is_one_line(tmp_path) -> None:
    bad = tmp_path / "m"
    bad.mkdir()
    config = json.loads((hub.resolve(hub.DEFAULT_MODEL) / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps(config | {"labels": ["happy"] * 9}))
    (tmp_path / "photo.jpg").write_bytes(b"x")  # a folder of no photo is refused first (nothing to do)
    proc = _ferhub("compare", str(bad), "ferhub/fer-mini-xception", "--images", str(tmp_path))
    assert proc.returncode == 1
    assert "labels lists 9 names" in one_line(proc.stderr, "compare")


def test_output_is_strict_json_even_when_a_model_overflows(tmp_path, capsys) -> None:
    """Finite weights big enough to overflow give NaN scores: never a label, the image's error instead, and
    the JSON still parses strictly."""
    import torch

    import ferhub

    model = ferhub.create_model("test_tiny", labels=FER7).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(3e38)
    folder = hub.save(model, tmp_path / "overflowing")
    photo = tmp_path / "astronaut.png"
    import skimage.data

    Image.fromarray(skimage.data.astronaut()).save(photo)

    def strict(text: str):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON output"))

    main(["predict", str(photo), "--model", str(folder), "--no-face", "fallback"])
    (result,) = strict(capsys.readouterr().out)
    assert result["faces"] == [] and "gave NaN or infinite probabilities" in result["error"]
    from ferhub import strict_json

    assert strict(strict_json.dumps({"a": np.float32("nan"), "b": np.array([1.0, np.inf])})) == {
        "a": None,
        "b": [1.0, None],
    }
