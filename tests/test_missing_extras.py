"""An optional package (a ferhub extra: timm of ``[train]``, h5py of ``[convert]``) that is not installed is a
ferhub error naming the ``pip install`` that brings it: the CLI ends with that one line and exit 1, never as
"internal error ... a bug in ferhub" (exit 4), and ``ferhub train`` says it before any data is prepared."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ferhub
from ferhub import cli
from ferhub._compat import MissingExtraError, import_extra

INSTALL_TIMM = (
    "NASNet needs timm, which is not installed. Fix: pip install 'ferhub[train]' (or pip install timm)"
)


def _uninstalled(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``package`` (and every submodule already imported) import as if it were not installed."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")] + [package]:
        monkeypatch.setitem(sys.modules, name, None)  # `import name` raises ModuleNotFoundError


def _one_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ferhub {command}: "), err
    return lines[0]


def test_a_missing_extra_is_a_ferhub_import_error_that_the_cli_ends_with_exit_1(tmp_path: Path) -> None:
    with pytest.raises(MissingExtraError) as e:
        import_extra("ferhub_no_such_package.sub", "train", "This feature", package="no-such-package")
    assert isinstance(e.value, ImportError) and isinstance(e.value, ferhub.FerhubError)
    assert str(e.value) == (
        "This feature needs no-such-package, which is not installed. Fix: pip install 'ferhub[train]' (or pip"
        " install no-such-package)"
    )
    assert cli.describe(e.value) == (cli.EXIT_ERROR, str(e.value))
    # installed but broken (or one of its own dependencies missing): said so, with the error it gave
    package = tmp_path / "ferhub_broken_extra"
    package.mkdir()
    (package / "__init__.py").write_text("import ferhub_missing_dependency_of_it\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(
            MissingExtraError, match=r"installed but cannot be imported \(ModuleNotFoundError"
        ):
            import_extra("ferhub_broken_extra", "convert", "Reading it")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("ferhub_broken_extra", None)


def test_nasnet_without_timm_names_the_train_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from ferhub.models import create_model

    _uninstalled(monkeypatch, "timm")
    with pytest.raises(MissingExtraError) as e:
        create_model("test_nasnet")
    assert str(e.value) == INSTALL_TIMM and isinstance(e.value, ImportError)


def test_keras_h5_without_h5py_names_the_convert_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ferhub.convert import keras_h5

    _uninstalled(monkeypatch, "h5py")
    with pytest.raises(MissingExtraError, match=r"pip install 'ferhub\[convert\]' \(or pip install h5py\)"):
        keras_h5.read_keras_h5(tmp_path / "model.h5")


def test_a_nasnet_model_without_timm_is_exit_1_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pack report's case: a NASNet model folder used where timm is not installed (export, predict)."""
    from ferhub import hub
    from ferhub.models import create_model

    folder = hub.save(create_model("test_nasnet", ("happy", "sad")), tmp_path / "nasnet")
    image = tmp_path / "face.png"
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(image)
    _uninstalled(monkeypatch, "timm")
    for argv in (
        ["export", str(folder), "--out", str(tmp_path / "onnx")],
        ["predict", str(image), "--model", str(folder)],
    ):
        assert cli.main(argv) == cli.EXIT_ERROR, argv
        line = _one_line(capsys.readouterr().err, argv[0])
        assert INSTALL_TIMM in line and "internal error" not in line, line


def test_train_without_timm_is_exit_1_before_any_data_is_prepared(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The data is never opened (it does not exist), and no output folder is left behind."""
    _uninstalled(monkeypatch, "timm")
    out = tmp_path / "run"
    argv = ["train", "--recipe", "seed001_wang", "--variant", "nasnet_weighted_lr8.1e-5", "--tiny",
            "--data", str(tmp_path / "no-such-data"), "--precropped", "--no-progress",
            "--output-dir", str(out)]  # fmt: skip
    assert cli.main(argv) == cli.EXIT_ERROR
    assert INSTALL_TIMM in _one_line(capsys.readouterr().err, "train")
    assert not out.exists()


def test_a_missing_dependency_of_ferhubs_own_is_exit_1_naming_the_reinstall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ONNX Runtime and facenet-pytorch are ferhub's own dependencies, missing only from a broken install:
    each raised a bare ModuleNotFoundError, which the CLI ended as "internal error ... a bug in ferhub" (exit
    4). Now the one ferhub error of a missing package, with the pip install that fixes it."""
    import importlib.util

    from ferhub import _mtcnn_onnx, _onnx
    from ferhub.predict import resolve_runtime

    monkeypatch.setattr(_onnx, "available", lambda: False)
    with pytest.raises(MissingExtraError) as e:
        resolve_runtime("onnx", "cpu")
    assert str(e.value) == (
        "runtime 'onnx' needs onnxruntime, which is not installed. Fix: pip install --force-reinstall ferhub"
        " (or pip install onnxruntime)"
    )
    assert cli.describe(e.value) == (cli.EXIT_ERROR, str(e.value))
    assert resolve_runtime("auto", "cpu") == "torch"  # the default falls back, as before
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "facenet_pytorch" else found(name, *a)
    )
    with pytest.raises(MissingExtraError, match=r"needs facenet-pytorch, which is not installed") as e:
        _mtcnn_onnx._weights_file("pnet")
    assert cli.describe(e.value)[0] == cli.EXIT_ERROR
    assert ferhub.MissingExtraError is MissingExtraError  # exported, from ferhub.errors
