"""Shared fixtures: every test runs offline with Hugging Face caches in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_hf(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every Hugging Face cache and token path at a fresh folder and forbid network access."""
    home = tmp_path_factory.mktemp("hf_home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))
    monkeypatch.setenv("HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    import sys

    # datasets reads its settings at import time too: imported while collecting (an importorskip at the top
    # of a test module), before these variables are set, it would go online and into the user's own cache
    datasets = sys.modules.get("datasets")
    if datasets is not None:
        monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    # huggingface_hub reads its constants at import time; keep the module-level copies in step
    try:
        import huggingface_hub.constants as c
    except ImportError:
        return home
    monkeypatch.setattr(c, "HF_HOME", str(home), raising=False)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(home / "hub"), raising=False)
    monkeypatch.setattr(c, "HF_TOKEN_PATH", str(home / "token"), raising=False)
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True, raising=False)
    return home


@pytest.fixture(autouse=True)
def seeded() -> None:
    """Seed the global generators before each test, so a test's random data is the same in every run and
    in any order (an unseeded ``torch.rand`` once drew inputs that broke a fixed tolerance on one CI run)."""
    import random
    import sys

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    torch = sys.modules.get("torch")  # every test that draws from torch has imported it by now
    if torch is not None:
        torch.manual_seed(0)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a browser test module's screenshots go: ``$FERHUB_SCREENSHOTS`` (to keep and look at them), else
    a temporary folder."""
    import os

    folder = Path(os.environ.get("FERHUB_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def astronaut():
    """scikit-image's astronaut photo (public domain, NASA): one face."""
    from PIL import Image
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="session")
def grace_hopper():
    """matplotlib's Grace Hopper photo (public domain, US Navy): one face."""
    from matplotlib import cbook
    from PIL import Image

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        return Image.open(f).convert("RGB")


@pytest.fixture
def lfw_crops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``crops/<class>/<i>.png``: 14 real LFW face crops in the 7 FER classes (``FERHUB_CACHE`` in the
    test's folder)."""
    import numpy as np
    import skimage.data
    from PIL import Image

    from ferhub.labels import FER7

    monkeypatch.setenv("FERHUB_CACHE", str(tmp_path / "ferhub_cache"))
    lfw = skimage.data.lfw_subset()
    root = tmp_path / "crops"
    for i in range(14):
        (root / FER7[i % 7]).mkdir(parents=True, exist_ok=True)
        Image.fromarray((lfw[i] * 255).astype(np.uint8)).save(root / FER7[i % 7] / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models and small detections gain nothing from a second intra-op thread, and on a shared 2-core
    machine every parallel region can wait on a descheduled thread. Use with ``pytest.mark.usefixtures``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def bench_script(monkeypatch: pytest.MonkeyPatch):
    """Loads a ``bench/`` script from its file by name (``bench_script("ab")``), the folder on ``sys.path``
    for the scripts it imports (``vs_fer``, ``fer_env``, ``machine``)."""
    import importlib.util

    folder = Path(__file__).resolve().parent.parent / "bench"
    monkeypatch.syspath_prepend(str(folder))

    def load(name: str):
        spec = importlib.util.spec_from_file_location(f"bench_{name}", folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module

    return load


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests start Chromium and a Gradio server (seconds each): ``-m "not slow"`` leaves them out
    too."""
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture()
def public_space(monkeypatch: pytest.MonkeyPatch):
    """The app's handlers as a public Space runs them: no server paths, the default model listed. Use with
    ``pytest.mark.usefixtures``."""
    from ferhub.ui import visitors

    monkeypatch.delenv(visitors.LOCAL_PATHS_SETTING, raising=False)
    visitors.configure(["ferhub/fer-mini-xception"])
    yield
    visitors.configure([])


@pytest.fixture
def no_crops(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ferhub train`` stops with :class:`tasks.Cropped` where it would crop its first image."""
    from tasks import Cropped

    def cropped(*_a: object, **_k: object) -> None:
        raise Cropped

    monkeypatch.setattr("ferhub.data.materialize", cropped)
