"""Slow attributions (Occlusion, Integrated Gradients) never hold every Classify slot.

Each Classify event had 4 slots, first come first served: four Occlusion runs of the zoo ensemble on a 24-face
photo (one API client's, or four visitors') held them all for ~90 s, and another visitor's Classify without
attribution (0.2 s) waited 67-87 s behind them. Now at most ``classify.SLOW_IN_FLIGHT`` slow runs hold a slot
(``SLOW_PER_VISITOR`` of one visitor's), more are refused at once saying why, one computes at a time, and the
events have more slots than that. Here the slow runs are held in place (their face's attribution waits for the
test), so the assertions are on places and refusals, never on timings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from ferhub.ui import build_app, classify, visitors

pytestmark = pytest.mark.usefixtures("one_torch_thread", "public_space")

DEFAULT_MODEL = "ferhub/fer-mini-xception"
EXAMPLES = Path(__file__).resolve().parent.parent / "ferhub" / "assets" / "examples"
ASTRONAUT = str(EXAMPLES / "astronaut.jpg")
HOPPER = str(EXAMPLES / "grace_hopper.jpg")


def quiet(*args: Any, **kwargs: Any) -> None:
    """A progress tracker that shows nothing (the handlers' ``gr.Progress`` outside Gradio)."""


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


class Held:
    """Holds each slow attribution's face until :attr:`release` is set, counting those computing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.computing = 0
        self.most = 0
        self._lock = threading.Lock()
        real = classify._explain

        def held(*args: Any) -> Any:
            if not classify._is_slow(args[3]):
                return real(*args)
            with self._lock:
                self.computing += 1
                self.most = max(self.most, self.computing)
            try:
                assert self.release.wait(120)
                return real(*args)
            finally:
                with self._lock:
                    self.computing -= 1

        monkeypatch.setattr(classify, "_explain", held)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[Held]:
    from ferhub import saliency

    monkeypatch.setattr(saliency, "OCCLUSION_BUDGET_FLOPS", 1e9)  # the fewest positions: quick once released
    watch = Held(monkeypatch)
    yield watch
    watch.release.set()  # a failed test leaves no thread behind
    wait_for(lambda: classify.SLOW_RUNS.admitted() == 0)


class Visitors:
    """Runs ``classify`` in threads as given visitors (Gradio sessions), keeping what each returned."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.who = threading.local()
        self.results: dict[str, Any] = {}
        self.threads: list[threading.Thread] = []
        monkeypatch.setattr(visitors, "_session", lambda: getattr(self.who, "id", None))

    def call(self, visitor: str, photo: str = ASTRONAUT, method: str = "Occlusion") -> Any:
        self.who.id = visitor
        return classify.classify(photo, DEFAULT_MODEL, method, "predicted", False, progress=quiet)

    def start(self, name: str, visitor: str, photo: str = ASTRONAUT, method: str = "Occlusion") -> None:
        def run() -> None:
            try:
                self.results[name] = self.call(visitor, photo, method)
            except BaseException as e:
                self.results[name] = e

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(120)
            assert not thread.is_alive()


def classified(result: Any) -> bool:
    """Whether a classify call returned its six outputs, with one face explained."""
    return isinstance(result, tuple) and len(result[4]["faces"]) == 1


def test_a_visitors_slow_runs_are_bounded_and_a_light_classify_goes_on(
    monkeypatch: pytest.MonkeyPatch, held: Held
) -> None:
    """One visitor's third slow run is refused, and so is any once SLOW_IN_FLIGHT are running or waiting;
    meanwhile another visitor's Classify without attribution, or with a fast one, is answered."""
    assert (classify.SLOW_AT_ONCE, classify.SLOW_IN_FLIGHT, classify.SLOW_PER_VISITOR) == (1, 4, 2)
    pages = Visitors(monkeypatch)
    pages.start("a1", "api-1")
    wait_for(lambda: held.computing == 1)
    pages.start("a2", "api-1", method="Integrated Gradients")  # admitted: it waits for its turn
    wait_for(lambda: classify.SLOW_RUNS.admitted() == 2)
    with pytest.raises(gr.Error) as e:
        pages.call("api-1")
    assert e.value.title == "Too many slow attributions" and "2 slow attributions" in e.value.message
    assert "Grad-CAM" in e.value.message  # what to do instead
    pages.start("b", "page-b")
    pages.start("c", "page-c", photo=HOPPER)
    wait_for(lambda: classify.SLOW_RUNS.admitted() == 4)
    with pytest.raises(gr.Error) as e:
        pages.call("page-d")
    assert e.value.title == "Server busy" and "Occlusion, Integrated Gradients" in e.value.message
    # the light runs of another visitor: not held, not refused
    for method in (classify.NO_SALIENCY, "Grad-CAM"):
        assert classified(pages.call("page-d", method=method))
    assert held.computing == 1 and classify.SLOW_RUNS.admitted() == 4  # the slow ones still in flight
    held.release.set()
    pages.join()
    assert all(classified(pages.results[name]) for name in ("a1", "a2", "b", "c")), pages.results
    assert held.most == 1  # one computing at a time, the others waited for their turn
    assert classify.SLOW_RUNS.admitted() == 0


def test_a_page_that_moves_on_starts_its_new_run_at_once(monkeypatch: pytest.MonkeyPatch, held: Held) -> None:
    """A page's runs for a photo or settings it no longer holds do not count against it: its run for the new
    ones is admitted while they end (one waiting for its turn at once, the computing one at its next face),
    sending nothing. Counted here with one place a visitor, so that a single old run would block it."""
    monkeypatch.setattr(classify.SLOW_RUNS, "per_visitor", 1)
    monkeypatch.setattr(visitors, "_held", type(visitors._held)())
    pages = Visitors(monkeypatch)
    pages.who.id = "page-1"
    classify.put_in(ASTRONAUT, DEFAULT_MODEL, "Occlusion", "predicted")
    pages.start("old", "page-1")
    wait_for(lambda: held.computing == 1)
    with pytest.raises(gr.Error, match="1 slow attributions"):  # its place is taken while the page holds it
        pages.call("page-1", method="Integrated Gradients")
    classify.put_in(HOPPER, DEFAULT_MODEL, "Occlusion", "predicted")  # the visitor puts in another photo
    pages.start("new", "page-1", photo=HOPPER)
    wait_for(lambda: classify.SLOW_RUNS.admitted() == 2)  # admitted: it waits for its turn
    pages.who.id = "page-1"
    classify.put_in(HOPPER, DEFAULT_MODEL, "Integrated Gradients", "predicted")  # and picks another method
    wait_for(lambda: "new" in pages.results)  # ended while waiting for its turn, the old one still computing
    assert pages.results["new"] is classify.MOVED_ON and held.computing == 1
    pages.start("last", "page-1", photo=HOPPER, method="Integrated Gradients")
    wait_for(lambda: classify.SLOW_RUNS.admitted() == 2)
    held.release.set()
    pages.join()
    assert pages.results["old"] is classify.MOVED_ON and classified(pages.results["last"])


def test_every_classify_event_keeps_slots_for_light_runs() -> None:
    """Slow runs hold at most SLOW_IN_FLIGHT of each Classify event's slots; the rest are for the others."""
    demo = build_app([DEFAULT_MODEL])
    events = [f for f in demo.fns.values() if (f.api_name or "").startswith("classify")]
    assert {f.api_name for f in events} == {
        "classify",
        "classify_on_upload",
        "classify_example",
        "classify_snapshot",
    }
    for event in events:
        assert event.concurrency_limit == classify.CONCURRENCY > classify.SLOW_IN_FLIGHT, event.api_name
    # one group: a group per event let 4 x CONCURRENCY classifies of big photos run at once
    assert {event.concurrency_id for event in events} == {"classify"}


def test_a_run_just_ahead_of_its_pages_report_is_admitted(
    monkeypatch: pytest.MonkeyPatch, held: Held
) -> None:
    """A page picks an Example while two slow runs work for its photo: the example's classify may come in
    before the page's report of it (put_in, an event of its own); it was refused as over the visitor's share,
    and the new photo was never classified. It now waits a moment for the report."""
    monkeypatch.setattr(visitors, "_held", type(visitors._held)())
    pages = Visitors(monkeypatch)
    pages.who.id = "page-1"
    classify.put_in(ASTRONAUT, DEFAULT_MODEL, "Occlusion", "predicted")
    pages.start("one", "page-1")
    pages.start("two", "page-1")
    wait_for(lambda: classify.SLOW_RUNS.admitted() == 2)
    pages.start("example", "page-1", photo=HOPPER)  # before the page says it holds HOPPER now
    time.sleep(classify.SLOW_GRACE_S / 5)
    pages.who.id = "page-1"
    classify.put_in(HOPPER, DEFAULT_MODEL, "Occlusion", "predicted")  # the report, a moment late
    held.release.set()
    pages.join()
    assert classified(pages.results["example"]), pages.results["example"]
    assert pages.results["one"] is classify.MOVED_ON and pages.results["two"] is classify.MOVED_ON


@pytest.mark.slow
def test_over_http_a_light_classify_is_answered_while_slow_runs_hold_their_places(
    monkeypatch: pytest.MonkeyPatch, held: Held
) -> None:
    """The report's case, served: one API client sends 4 Occlusion runs at once (2 refused at once), two
    others one each; another visitor's Classify without attribution is answered while they are all held
    (before, the 4 held every slot of the event and it waited for them to end)."""
    from gradio_client import Client, handle_file
    from servers import launched

    from ferhub.ui import server

    demo = build_app([DEFAULT_MODEL])
    demo.queue(default_concurrency_limit=server.CONCURRENCY)  # as the app queues its events
    with launched(demo) as url:
        photo = handle_file(ASTRONAUT)
        heavy = Client(url, verbose=False)
        jobs = [heavy.submit(photo, DEFAULT_MODEL, "Occlusion", "predicted", False, api_name="/classify")]
        wait_for(lambda: held.computing == 1)
        jobs += [
            heavy.submit(photo, DEFAULT_MODEL, "Occlusion", "predicted", False, api_name="/classify")
            for _ in range(3)
        ]
        wait_for(lambda: sum(job.done() for job in jobs) == 2 and classify.SLOW_RUNS.admitted() == 2)
        refused = [str(job.exception()) for job in jobs if job.done()]  # gradio_client's AppError
        assert len(refused) == 2 and all("of yours are still running" in m for m in refused), refused
        others = [Client(url, verbose=False) for _ in range(2)]
        jobs += [
            c.submit(photo, DEFAULT_MODEL, "Occlusion", "predicted", False, api_name="/classify")
            for c in others
        ]
        wait_for(lambda: classify.SLOW_RUNS.admitted() == 4)
        light = Client(url, verbose=False).predict(
            photo, DEFAULT_MODEL, classify.NO_SALIENCY, "predicted", False, api_name="/classify"
        )
        assert len(light[4]["faces"]) == 1 and light[4]["saliency"] is None
        assert held.computing == 1 and classify.SLOW_RUNS.admitted() == 4  # all still in flight
        admitted = [job for job in jobs if not job.done()]
        held.release.set()
        assert len(admitted) == 4
        assert all(len(job.result(timeout=120)[4]["faces"]) == 1 for job in admitted)
    assert held.most == 1


def test_an_api_callers_run_over_its_share_is_refused_without_the_pages_grace(
    monkeypatch: pytest.MonkeyPatch, held: Held
) -> None:
    """The grace waits for a page's report, which an API caller never sends: its extra run held a shared
    slot for the whole grace before the same refusal."""
    monkeypatch.setattr(classify, "SLOW_GRACE_S", 600.0)  # a page would wait this long; the API caller not
    monkeypatch.setattr(visitors, "_held", type(visitors._held)())
    pages = Visitors(monkeypatch)
    pages.start("one", "api-1")
    pages.start("two", "api-1")
    wait_for(lambda: classify.SLOW_RUNS.admitted() == 2)
    began = time.monotonic()
    with pytest.raises(gr.Error, match="2 slow attributions"):
        pages.call("api-1")
    assert time.monotonic() - began < 60  # refused at once, not after the 600 s grace
    held.release.set()
    pages.join()
