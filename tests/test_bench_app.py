"""bench/app.py's split of a webcam frame's time, from the page's capture and frame times."""

from __future__ import annotations


def test_frame_split_pairs_each_capture_with_its_frame(bench_script) -> None:
    app = bench_script("app")
    # captures at 0, 45 and 100 ms; frames at 30 (the first capture's), 80 (the second's) and 130 (the last
    # capture's, which has no next capture to end its turn)
    trips, turns = app.frame_split([0.0, 45.0, 100.0], [30.0, 80.0, 130.0])
    assert trips == [30.0, 35.0] and turns == [15.0, 20.0]


def test_frame_split_leaves_out_captures_without_a_frame_before_the_next(bench_script) -> None:
    app = bench_script("app")
    # a frame from before the first capture, a capture whose frame comes only after the next capture
    # (10 -> 20, frame at 25: it is the second capture's), and two frames after one capture (only the first
    # counts)
    trips, turns = app.frame_split([10.0, 20.0, 60.0, 90.0], [5.0, 25.0, 70.0, 75.0])
    assert trips == [5.0, 10.0] and turns == [35.0, 20.0]
    assert app.frame_split([1.0], [2.0]) == ([], [])
    assert app.frame_split([], []) == ([], [])
