"""bench/timeline.py: its rows are the steps each thread ran, and its wrappers come off the detector again."""

from __future__ import annotations

from ferhub.assets import EXAMPLES_DIR


def test_rows_are_medians_of_the_steps_most_calls_ran(bench_script) -> None:
    timeline = bench_script("timeline")
    calls = [
        [("main", "pnet", 1.0, 2.0), ("main", "pnet", 3.0, 4.0), ("nets", "pnet", 1.5, 3.5)],
        [("main", "pnet", 1.2, 2.2), ("main", "pnet", 3.2, 4.4), ("nets", "pnet", 1.5, 3.3)],
        [("main", "pnet", 1.1, 2.1), ("main", "pnet", 3.1, 4.2), ("main", "rare", 0.0, 0.1)],
    ]
    assert timeline.rows(calls) == [
        (1.1, 2.1, "main", "pnet", 0),
        (1.5, 3.4, "nets", "pnet", 0),  # in 2 of 3 calls: a row; "rare", in 1 of 3, is not
        (3.1, 4.2, "main", "pnet", 1),
    ]


def test_timeline_of_a_real_photo_names_each_threads_steps_and_unwraps(capsys, bench_script) -> None:
    import ferhub
    from ferhub import _mtcnn_onnx as onnx_mtcnn

    timeline = bench_script("timeline")
    steps = {n: getattr(onnx_mtcnn, n) for n in timeline.STEPS}
    timeline.main(["--photo", str(EXAMPLES_DIR / "grace_hopper.jpg"), "--runs", "4"])
    out = capsys.readouterr().out
    assert "cores" in out and "| start, ms | end, ms | ms | thread | step |" in out
    table = [line.split(" | ") for line in out.splitlines() if line.startswith("| ") and "ms |" not in line]
    ran = {(thread, step.split(" #")[0].rstrip(" |")) for _, _, _, thread, step in table}
    for step in (
        "pnet",
        "rnet",
        "onet",
        "_stage1",
        "_stage2",
        "_stage3",
        "_halve",
        "crops_of_pixels",
        "pnet_boxes",
        "candidates",
        "refined",
        "faces",
    ):
        assert any(s == step for _, s in ran), step
    detector = ferhub.Predictor().detector._mtcnn
    if detector.streams == 2:  # the second stream's share shows under its own thread
        assert any(thread.startswith("ferhub-nets") for thread, _ in ran)
    # the module's functions are the originals again
    assert {n: getattr(onnx_mtcnn, n) for n in timeline.STEPS} == steps

    recorder = timeline.Recorder()
    undo = timeline.instrument(detector, recorder)
    assert "_run" in vars(detector)
    undo()
    assert not {"_run", *timeline.STAGES} & set(vars(detector))  # the class's methods again
