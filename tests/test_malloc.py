"""The app's malloc trimming (``ferhub._malloc.Trimmer``): memory handed back after bursts, not taken from
under every request."""

from __future__ import annotations

import pytest
from fresh import passes_in_fresh_process

from ferhub import _malloc

MB = 1 << 20


class FakeLibc:
    """``malloc_trim`` that moves the process from one size to the next, as a test tells it."""

    def __init__(self) -> None:
        self.trims = 0
        self.rss = 600 * MB
        self.after_trim = 600 * MB

    def malloc_trim(self, pad: int) -> int:
        self.trims += 1
        self.rss = self.after_trim
        return 1


def trimmer(libc: FakeLibc, free: list[int | None]) -> _malloc.Trimmer:
    return _malloc.Trimmer(libc, slack=8 * MB, resident=lambda: libc.rss, free=lambda: free[0])


def test_a_trim_that_gives_back_little_stops_the_trims_until_there_is_more() -> None:
    libc, free = FakeLibc(), [6 * MB]
    t = trimmer(libc, free)
    libc.rss, libc.after_trim = 700 * MB, 640 * MB
    assert t.step() and libc.trims == 1  # 60 MB back: trims go on
    libc.after_trim = 635 * MB
    assert t.step() and libc.trims == 2  # 5 MB back: little; malloc's 6 MB free noted
    for size in (640, 645, 650, 655):  # a visitor's requests: a few MB more each step, malloc as before
        libc.rss = size * MB
        assert not t.step()
    assert libc.trims == 2
    free[0] = 6 * MB + 8 * MB  # no more than the slack: still not
    assert not t.step() and libc.trims == 2
    free[0] = 40 * MB  # a burst ended: 34 MB more free in malloc
    libc.rss, libc.after_trim = 690 * MB, 645 * MB
    assert t.step() and libc.trims == 3
    assert t.step() and libc.trims == 4  # the last gave back 45 MB: the next step trims again


def test_a_process_growing_fast_is_trimmed_again() -> None:
    libc, free = FakeLibc(), [6 * MB]
    t = trimmer(libc, free)
    libc.rss = libc.after_trim = 600 * MB
    assert t.step() and t.held == 6 * MB  # gave back nothing
    libc.rss = 606 * MB
    assert not t.step()
    libc.rss = 640 * MB  # 34 MB in one step (a burst under way), malloc's free bytes unchanged
    libc.after_trim = 635 * MB
    assert t.step() and libc.trims == 2
    assert not t.step()  # gave back little, and no growth since


def test_without_mallinfo2_every_step_trims() -> None:
    libc, free = FakeLibc(), [None]
    t = trimmer(libc, free)
    assert all(t.step() for _ in range(3)) and libc.trims == 3


@pytest.mark.skipif(_malloc.glibc() is None, reason="glibc's malloc only")
def test_the_real_malloc_hands_back_freed_memory_then_stops() -> None:
    """In a fresh process on glibc: 60 MB freed between live blocks stays resident until a step gives most
    of it back; the next step gives back little, and the one after does not trim."""
    code = """
from ferhub import _malloc
MB = 1 << 20
libc = _malloc.glibc()
assert _malloc.free_bytes(libc) is not None
blocks = [(bytes(100_000), bytes(1000)) for _ in range(600)]  # 100 KB between 1 KB blocks (malloc's)
keep = [small for _, small in blocks]
del blocks
t = _malloc.Trimmer(libc)
before = _malloc.resident_bytes()
assert _malloc.free_bytes(libc) > 50 * MB
assert t.step() and before - _malloc.resident_bytes() > 30 * MB, (before, _malloc.resident_bytes())
assert t.step() and t.held is not None  # nothing left to give back
assert not t.step()
print("ok")
"""
    passes_in_fresh_process(code, timeout=120)
