"""What API callers of a public Space can send the app's handlers beyond what the page sends: names of any
length, numbers, lists and objects where text is expected, NaN in a slider. Each gets one clear visitor
message (a ``gr.Error`` with one log line), and nothing of it is kept by the server."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import clips
import gradio as gr
import pytest

from ferhub.ui import classify, compare, live, state, video

pytestmark = pytest.mark.usefixtures("one_torch_thread", "public_space")

EXAMPLES = Path(__file__).resolve().parent.parent / "ferhub" / "assets" / "examples"
HOPPER = str(EXAMPLES / "grace_hopper.jpg")
DEFAULT_MODEL = "ferhub/fer-mini-xception"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    frames, _ = clips.pan(4)
    return str(clips.write_clip(tmp_path_factory.mktemp("clip") / "pan.mp4", frames))


# -- 3: model names are not kept ----------------------------------------------------------------------------
def test_refused_and_unknown_model_names_leave_nothing_behind() -> None:
    """Every distinct name a caller sent stayed a key of the cache's lock map, whatever its length (1 MB
    names: +280 MB of RSS over HTTP, for good)."""
    import gc
    import tracemalloc

    cache = state.ModelCache()
    with pytest.raises(gr.Error) as e:  # (also the first call's imports, before memory is counted)
        cache.model("x/" + uuid.uuid4().hex + "a" * 100_000)
    assert e.value.message.startswith("A model name of 100,034 characters; names are at most 512")
    assert len(e.value.message) < 300
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(30):  # 3 MB of names
            with pytest.raises(gr.Error):
                cache.model("x/" + uuid.uuid4().hex + "a" * 100_000)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 300_000, kept
    for name in [
        *(f"someone/not-cached-{i}" for i in range(20)),  # Hub ids this server has no copy of (offline)
        *(f"word{i}" for i in range(20)),  # not a listed model nor a Hub id
        "/etc/passwd",  # a server path
    ]:
        with pytest.raises(gr.Error, match="Cannot load model"):
            cache.model(name)
    assert cache._loading == {} and list(cache._models) == []
    cache.model(DEFAULT_MODEL)
    assert cache._loading == {} and list(cache._models) == [DEFAULT_MODEL]


def test_two_first_requests_for_a_model_load_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import ferhub.hub

    calls: list[str] = []
    real = ferhub.hub.load

    def slow_load(spec: str, **kwargs):
        calls.append(spec)
        time.sleep(0.3)
        return real(spec, **kwargs)

    monkeypatch.setattr(ferhub.hub, "load", slow_load)
    cache = state.ModelCache()
    loaded: list[object] = []
    threads = [threading.Thread(target=lambda: loaded.append(cache.model(DEFAULT_MODEL))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [DEFAULT_MODEL] and len(loaded) == 3 and loaded[0] is loaded[1] is loaded[2]
    assert cache._loading == {}


# -- the models visitors name are kept in a bounded cache ----------------------------------------------------
class FakeModel:
    """What the fake loader gives: one object per load, named, with ``modules()`` as a module has."""

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def modules(self) -> list[object]:
        return [self]


@pytest.fixture
def fake_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``ferhub.hub.load`` made a counter that caches each model in the hub's cache, as it does."""
    import ferhub.hub
    from ferhub.hub import _repo

    loads: list[str] = []
    lock = threading.Lock()

    def fake_load(spec: str, **kwargs) -> FakeModel:
        time.sleep(0.01)
        model = FakeModel(spec)
        with lock:
            loads.append(spec)
        with _repo._CACHE_LOCK:
            _repo._MODEL_CACHE[("hub", spec)] = model
        return model

    monkeypatch.setattr(ferhub.hub, "load", fake_load)
    monkeypatch.setattr(_repo, "_MODEL_CACHE", {})
    return loads


def test_models_named_by_visitors_are_kept_in_a_bounded_cache(fake_loads: list[str]) -> None:
    """Every Hub id (and every revision name of one) a visitor named stayed loaded for good: a handful of
    names pinned all of a Space's memory. The listed models stay; of the others the most recently used are
    kept, and the hub's own cache forgets the others too."""
    from ferhub.hub import _repo

    cache = state.ModelCache(max_visitor_models=2)
    first = cache.model("org/a")
    cache.model("org/b")
    assert cache.model("org/a") is first  # used again: the most recent
    cache.model("org/a@v1")  # another revision name is another model, and counts
    assert list(cache._models) == ["org/a", "org/a@v1"] and fake_loads == ["org/a", "org/b", "org/a@v1"]
    assert [k[1] for k in _repo._MODEL_CACHE] == ["org/a", "org/a@v1"]  # org/b is gone from memory
    cache.model("org/b")  # loaded again when asked for again
    assert fake_loads[-1] == "org/b" and list(cache._models) == ["org/a@v1", "org/b"]
    cache.model(DEFAULT_MODEL)  # a listed model
    for i in range(5):
        cache.model(f"org/x{i}")
    assert list(cache._models) == [DEFAULT_MODEL, "org/x3", "org/x4"]
    assert first.spec == "org/a"  # a request holding a forgotten model goes on with it


def test_a_forgotten_model_keeps_working_for_the_requests_that_hold_it(
    fake_loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent requests for more models than the cache keeps: each gets the model it named, whole, while
    others are loaded and forgotten; the predictors over a forgotten model are forgotten with it."""
    import random

    import ferhub.predict

    class FakePredictor:
        def __init__(self, models: list[FakeModel], **kwargs) -> None:
            self.models = models

    monkeypatch.setattr(ferhub.predict, "Predictor", FakePredictor)
    cache = state.ModelCache(max_visitor_models=2)
    monkeypatch.setattr(cache, "detector", lambda fast=False: None)
    names = [f"org/m{i}" for i in range(6)]
    wrong: list[str] = []

    def request(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(20):
            picked = rng.sample(names, rng.choice([1, 2]))
            predictor = cache.predictor(picked)
            time.sleep(0.001)  # in use while other requests load and forget
            if [m.spec for m in predictor.models] != picked:
                wrong.append(f"{picked} -> {[m.spec for m in predictor.models]}")

    threads = [threading.Thread(target=request, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong
    assert len(cache._models) <= 2 and cache._loading == {}
    assert all(set(key[:-2]) <= set(cache._models) for key in cache._predictors)
    held = cache.predictor(["org/m0"])
    for name in names[1:]:
        cache.model(name)
    assert held.models[0].spec == "org/m0" and not any("org/m0" in key for key in cache._predictors)


def test_compare_tells_a_hub_model_out_of_reach_as_classify_does() -> None:
    """Compare's "Load results" gave the CLI's advice (unset HF_HUB_OFFLINE, the cache folder) for a Hub id
    the server has no copy of; Classify and Model card say the server cannot reach the Hub."""
    _, notes, _ = compare.repo_results(["someone/not-cached"])
    assert notes == [f"**someone/not-cached**: cannot read its evaluation results: {state.HUB_DOWN}"]
    with pytest.raises(gr.Error) as e:
        state.ModelCache().model("someone/not-cached")
    assert e.value.message == f"Cannot load model 'someone/not-cached': {state.HUB_DOWN}"


# -- 4: NaN in the Video tab's sliders ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fps", "smooth", "message"),
    [
        (float("nan"), 0.3, "Frames per second must be a number from 0.5 to 10, got nan."),
        (5, float("nan"), "Smoothing must be a number from 0 to 3, got nan."),
        (float("inf"), 0.3, "Frames per second must be a number from 0.5 to 10, got inf."),
        (5, float("-inf"), "Smoothing must be a number from 0 to 3, got -inf."),
    ],
    ids=["fps_nan", "smooth_nan", "fps_inf", "smooth_inf"],
)
def test_video_sliders_refuse_what_is_no_number(clip: str, fps: float, smooth: float, message: str) -> None:
    """Gradio's range check lets NaN through: a NaN frame rate was a server error with a traceback, and a NaN
    smoothing "completed" with every smoothed label the first class."""
    with pytest.raises(gr.Error) as e:
        video.analyse_video(clip, [DEFAULT_MODEL], fps, smooth, progress=lambda *a, **k: None)
    assert e.value.message == message and e.value.title == "Wrong value"


def test_video_sliders_clamp_numbers_out_of_range() -> None:
    assert (
        video.setting(0, "fps", 5.0, 0.5, 10.0) == 5.0 and video.setting(None, "fps", 5.0, 0.5, 10.0) == 5.0
    )
    assert (
        video.setting(100, "fps", 5.0, 0.5, 10.0) == 10.0 and video.setting(0.1, "fps", 5.0, 0.5, 10) == 0.5
    )
    assert video.setting(-2, "smoothing", 0.0, 0.0, 3.0) == 0.0


def test_the_library_refuses_a_smoothing_that_is_no_number() -> None:
    from ferhub.tracking import Smoother
    from ferhub.video import VideoAnalyzer

    for seconds in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="smooth must be 0 \\(off\\) or a positive number of seconds"):
            VideoAnalyzer(None, smooth=seconds)
        with pytest.raises(ValueError, match="smoothing must be 0 \\(off\\) or a positive number of seconds"):
            Smoother(seconds)
    for fps in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="fps must be a positive number"):
            VideoAnalyzer(None, fps=fps)


# -- 5: values of the wrong type ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: classify.classify(HOPPER, 7, "None"), "A model must be given as text, not a number."),
        (lambda: classify.classify(HOPPER, ["a"], "None"), "A model must be given as text, not a list."),
        (
            lambda: classify.classify(HOPPER, DEFAULT_MODEL, 3),
            "The attribution method must be given as text, not a number.",
        ),
        (
            lambda: classify.classify(HOPPER, DEFAULT_MODEL, "None", {"a": 1}),
            "The class to explain must be given as text, not an object.",
        ),
        (lambda: compare.compare_photo(HOPPER, [1, 2]), "A model must be given as text, not a number."),
        (lambda: compare.compare_photo(HOPPER, 5), "The models must be a list of names, not a number."),
        (lambda: compare.evaluate_now([DEFAULT_MODEL], None, 3, None, {}), "The Hub dataset id must be"),
        (lambda: live.set_model(live.new_id(), {"a": 1}), "A model must be given as text, not an object."),
    ],
    ids=[
        "model_number",
        "model_list",
        "method",
        "target",
        "models_numbers",
        "models_number",
        "set",
        "webcam",
    ],
)
def test_a_value_of_the_wrong_type_is_a_visitor_message(
    call, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Each was "Something went wrong on the server" and a traceback in the log (``'int' object has no
    attribute 'strip'``): anyone could flood the log with tracebacks."""
    with pytest.raises(gr.Error) as e:
        call()
    assert e.value.message.startswith(message) and "\n" not in e.value.message
    assert e.value.print_exception is False
    assert not any(r.exc_info for r in caplog.records)  # one log line, no traceback


def test_video_models_of_the_wrong_type_and_its_server_error_note(
    clip: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(gr.Error) as e:
        video.analyse_video(clip, [{"a": 1}])
    assert e.value.message == "A model must be given as text, not an object."
    assert not any(r.exc_info for r in caplog.records)

    def bug(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(video, "_analyse", bug)
    with pytest.raises(gr.Error) as e:  # a bug of the server's own: the note is for a video's visitor
        video.analyse_video(clip, [DEFAULT_MODEL])
    assert e.value.message == (
        "Something went wrong on the server (it logged the details). Try again, or another clip."
    )


def test_the_same_model_twice_is_one_model(clip: str) -> None:
    *_, status = video.analyse_video(clip, [DEFAULT_MODEL] * 5, 5, 0.3, progress=lambda *a, **k: None)
    assert status.startswith("2 frames analysed")


def test_the_same_photo_tab_ignores_picks_that_are_no_names() -> None:
    """Its table's columns for a new pick (an event that shows no error): numbers are no column names."""
    _, table, _, _ = compare.agreement_headers([DEFAULT_MODEL, 3, {"a": 1}])
    assert table["headers"] == ["face", DEFAULT_MODEL, "majority", "share", ""]
    assert compare.agreement_headers(7)[1]["headers"] == ["face", "majority", "share", ""]


# -- 6: the dashboard with no model picked ------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda: compare.dashboard([], None, compare.COUNTS, {}, False, None, None),
        lambda: compare.dashboard(None, "lfw", compare.NORMALISED, {}, True, None, None),
        lambda: compare.difference_plot([], None, {}, False, None, None),
    ],
    ids=["dashboard", "dashboard_view", "difference"],
)
def test_the_dashboard_without_models_says_to_pick_one(call) -> None:
    """``gr.Error`` is a ``ValueError``: the dashboard's "incomplete results file" handler wrapped it into
    "Incomplete results: Cannot draw the results for None: Error 'Pick at least 1 model to compare.'. Re-run
    the evaluation to rewrite eval_results.json"."""
    with pytest.raises(gr.Error) as e:
        call()
    assert e.value.message == "Pick at least 1 model to compare." and e.value.title == "Too few models"
