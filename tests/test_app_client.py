"""``python app.py`` served on a free port in a subprocess, driven over HTTP with ``gradio_client``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from servers import free_port, launched

ROOT = Path(__file__).resolve().parent.parent
HOPPER = ROOT / "ferhub" / "assets" / "examples" / "grace_hopper.jpg"
DEFAULT_MODEL = "ferhub/fer-mini-xception"


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"app.py did not answer {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    home = tmp_path_factory.mktemp("hf")
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "FERHUB_CACHE": str(home / "ferhub"),
        "FERHUB_ALLOW_LOCAL_PATHS": "1",  # the compare test names a model folder of its own
    }
    process = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def client(app_url: str):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch

    from ferhub.hub import save
    from ferhub.models import create_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save(create_model("test_tiny"), folder)
    return str(folder)


def test_classify_endpoint_returns_annotated_photo_and_faces(client) -> None:
    from gradio_client import handle_file

    annotated, whole, gallery, _, result, download = client.predict(
        handle_file(str(HOPPER)), api_name="/classify"
    )
    assert Image.open(annotated).size == Image.open(HOPPER).size == Image.open(whole).size
    (face,) = result["faces"]
    assert result["model"] == DEFAULT_MODEL and face["label"] in face["probabilities"]
    assert result["saliency"]["method"] == "gradcam"  # the UI's default method
    assert len(gallery) == 1 and Path(gallery[0]["image"]).is_file()
    assert Path(download).read_text().startswith("{")


def test_classify_without_attribution_and_with_a_target(client) -> None:
    from gradio_client import handle_file

    out = client.predict(handle_file(str(HOPPER)), DEFAULT_MODEL, "None", api_name="/classify")
    assert out[1] is None and out[2] == [] and out[4]["saliency"] is None
    out = client.predict(
        handle_file(str(HOPPER)), DEFAULT_MODEL, "Occlusion", "surprise", api_name="/classify"
    )
    assert out[4]["saliency"] == {"method": "occlusion", "targets": ["surprise"]}


def test_bad_inputs_are_clear_errors_and_the_app_lives_on(client, tmp_path: Path) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    fake = tmp_path / "fake.png"
    fake.write_bytes(b"definitely not a PNG")
    with pytest.raises(AppError, match=r"fake\.png"):
        client.predict(handle_file(str(fake)), api_name="/classify")
    # the Compare tab decodes the upload as Classify does: ferhub's one line, no server path, not Gradio's
    # "Could not preprocess input component" with the cached file's path
    with pytest.raises(AppError, match=r"^fake\.png: not an image file") as e:
        client.predict(handle_file(str(fake)), [DEFAULT_MODEL, "facemood"], api_name="/compare_photo")
    assert "preprocess" not in str(e.value) and "/" not in str(e.value).split(":")[0]
    with pytest.raises(AppError, match="Cannot load model 'nobody/nothing'"):
        client.predict(handle_file(str(HOPPER)), "nobody/nothing", api_name="/classify")
    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (300, 200), "white").save(blank)
    with pytest.raises(AppError, match="No face found"):
        client.predict(handle_file(str(blank)), api_name="/classify")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + os.urandom(21 * 1024 * 1024))  # over the 20 MB upload limit
    with pytest.raises(Exception, match=r"(?i)(exceeds|too large|413|maximum)"):
        client.predict(handle_file(str(big)), api_name="/classify")
    # and the app still answers
    assert client.predict(handle_file(str(HOPPER)), DEFAULT_MODEL, "None", api_name="/classify")[4]["faces"]


def test_compare_and_model_card_endpoints(client, tiny_model: str) -> None:
    from gradio_client import handle_file

    gallery, table, _, summary = client.predict(
        handle_file(str(HOPPER)), [tiny_model, DEFAULT_MODEL], api_name="/compare_photo"
    )
    assert [item["caption"] for item in gallery] == [tiny_model, DEFAULT_MODEL]
    assert table["data"][0][0] == "#1" and "1 face(s)" in summary
    assert table["headers"] == ["face", tiny_model, DEFAULT_MODEL, "majority", "share", ""]
    body, facts = client.predict(DEFAULT_MODEL, api_name="/model_card")
    assert dict(facts["data"])["labels"].startswith("angry, disgust") and body


# Imported by ferhub only where present, or for an extra's feature; named with why.
OPTIONAL_IMPORTS = {
    "spaces": "a ZeroGPU Space's own package (ferhub.ui.state.gpu)",
    "timm": "extra 'train': NASNet-A",
    "h5py": "extra 'convert': Keras files of the zoo",
    "skimage": "LFW crops for int8 calibration when installed (ferhub.export)",
    "anyio": "gradio's (through starlette)",
    "starlette": "gradio's (through fastapi)",
}


def test_every_package_ferhub_imports_is_a_dependency() -> None:
    """Each third-party module that ``ferhub/`` imports, at the top or inside a function, belongs to a
    distribution in pyproject.toml's dependencies (or is in ``OPTIONAL_IMPORTS``): a fresh ``pip install .``
    has it. SciPy, which the trackers need, was missing: the Webcam and Video tabs and ``ferhub predict`` on a
    video failed on a fresh install."""
    import ast
    import importlib.metadata
    import sys

    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    declared = {
        canonicalize_name(Requirement(r).name)
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for path in sorted((ROOT / "ferhub").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {name.split(".")[0] for name in names}:
                if top in sys.stdlib_module_names or top == "ferhub" or top in OPTIONAL_IMPORTS:
                    continue
                owners = {canonicalize_name(d) for d in distributions.get(top, [top])}
                if not owners & declared:
                    missing.setdefault(top, str(path.relative_to(ROOT)))
    assert not missing, f"imported but not in pyproject.toml's dependencies: {missing}"


def test_space_requirements_pin_the_package_dependencies() -> None:
    """The Space installs requirements.txt: the same packages (and extras) as ferhub's runtime dependencies,
    each pinned exactly (``==``) to a version that pyproject.toml's range admits."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    declared = {
        canonicalize_name(r.name): r
        for r in map(
            Requirement, tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        )
    }
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pinned = {
        canonicalize_name(r.name): r
        for r in (Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#"))
    }
    assert sorted(pinned) == sorted(declared)
    for name, pin in pinned.items():
        (spec,) = pin.specifier  # exactly one clause: "==version"
        assert spec.operator == "==", f"requirements.txt: {pin} is not an exact pin"
        assert declared[name].specifier.contains(spec.version, prereleases=True), (
            f"{pin} outside {declared[name]}"
        )
        assert pin.extras == declared[name].extras, f"{pin}: extras differ from pyproject's {declared[name]}"


def test_video_endpoint_tracks_and_plots_two_models(client, tmp_path: Path) -> None:
    """The Video tab over HTTP (``api_name="video"``): annotated H.264 back, a timeline per person with both
    models' lines, the summary table and the CSV/JSON files ``ferhub predict`` writes."""
    import csv
    import json

    import clips
    from gradio_client import handle_file

    frames, _ = clips.leave_and_return(12, away=(12, 12))
    clip = clips.write_clip(tmp_path / "two people.mp4", frames)
    models = [DEFAULT_MODEL, "ferhub/human-emotion"]
    video, plot, table, files, status = client.predict(
        handle_file(str(clip)), models, 5, 0.3, api_name="/video"
    )
    video = video["video"] if isinstance(video, dict) else video
    assert Path(video).read_bytes()[4:8] == b"ftyp" and "2 face track(s)" in status
    # a row per person and model, named
    assert [row[0] for row in table["data"]] == [f"{face} · {m}" for face in (1, 2) for m in models]
    figure = json.loads(plot["plot"])
    names = {t.get("name") for t in figure["data"]}
    assert any(n and n.endswith("· ferhub/human-emotion") for n in names)
    csv_path, json_path = (Path(f) for f in files)
    assert (csv_path.name, json_path.name) == ("two_people.csv", "two_people.json")  # named after the clip
    rows = list(csv.DictReader(csv_path.open()))
    assert {r["model"] for r in rows} == set(models) and {r["face_id"] for r in rows} == {"1", "2"}
    entry = json.loads(json_path.read_text())
    assert [t["face_id"] for t in entry["tracks"]] == [1, 2] and len(entry["frames"]) == 4
    # the upload by its own name, as `ferhub predict` names a file: not the server's cache path
    assert entry["path"] == "two people.mp4" and {r["path"] for r in rows} == {"two people.mp4"}


def test_sessions_kept_are_bounded_under_api_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gradio keeps a session state for each API call made without a session (every plain-HTTP
    ``/call/...``): with ``launch_kwargs()`` the oldest are dropped beyond ``state.SESSIONS_KEPT``, while a
    session in use keeps its ``gr.State``; each is the app's lean one (``ferhub.ui.sessions``)."""
    import json

    import gradio as gr
    import httpx
    from gradio import state_holder

    from ferhub.ui import launch_kwargs, sessions, state

    assert launch_kwargs()["state_session_capacity"] == state.SESSIONS_KEPT
    monkeypatch.setattr(state, "SESSIONS_KEPT", 3)
    monkeypatch.setattr(state_holder, "SessionState", sessions._GradioSessionState)  # undone after the test
    sessions.install()  # as build_app does
    with gr.Blocks() as demo:
        count, out = gr.State(0), gr.Number()
        gr.Button().click(lambda n: (n + 1, n + 1), count, [count, out], api_name="count")
    with launched(demo) as url, httpx.Client(base_url=f"{url}gradio_api/", timeout=30) as http:

        def call(session: str | None = None) -> float:
            body: dict = {"data": [], "session_hash": session} if session else {"data": []}
            event = http.post("call/count", json=body).json()["event_id"]
            lines = http.get(f"call/count/{event}").text.splitlines()
            data = [line for line in lines if line.startswith("data:")]
            return json.loads(data[-1][5:])[-1]  # the state's own output comes back empty

        assert [call("mine"), call("mine")] == [1, 2]
        for n in range(3, 9):  # six sessions come and go beside it, twice the bound
            assert call() == 1
            assert len(demo.state_holder.session_data) <= 3
            assert call("mine") == n  # used between them: never the least recent, never dropped
        assert {type(s) for s in demo.state_holder.session_data.values()} == {sessions.LeanSessionState}
