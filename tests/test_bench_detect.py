"""bench/detect.py's pause table: every pause against both detectors, times as multiples of back to back."""

from __future__ import annotations

from ferhub.assets import one_face_photo


def test_idle_table_times_each_pause_for_both_detectors(capsys, bench_script) -> None:
    detect = bench_script("detect")
    table = detect.idle_comparison(one_face_photo(), rounds=1, calls=2)
    pauses = [
        "none (back to back)",
        "asleep 5 ms",
        "asleep 20 ms",
        "busy-looping 20 ms",
        "asleep 100 ms",
        "asleep 100 ms, then busy-looping 5 ms",
        "asleep 100 ms, then busy-looping 40 ms",
    ]
    assert list(dict.fromkeys(p for p, _ in table)) == pauses
    assert {d for _, d in table} == {"two streams (default)", "one stream"}
    assert all(0 < ms < 10_000 for ms in table.values())
    detect.print_idle(table, 1, 2)
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + len(pauses)
    first = rows[1].split(" | ")
    assert first[0] == "| none (back to back)" and first[2] == "1.00" and first[4].startswith("1.00")
    later = rows[3].split(" | ")  # asleep 20 ms: its times over back to back's
    two = "two streams (default)"
    ratio = table["asleep 20 ms", two] / table["none (back to back)", two]
    assert later[2] == f"{ratio:.2f}"
