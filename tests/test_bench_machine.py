"""bench/machine.py's steal share: the hypervisor's ticks over all ticks between two reads of /proc/stat."""

from __future__ import annotations

import math


def _stat(user: int, idle: int, steal: int, guest: int = 0) -> str:
    # user nice system idle iowait irq softirq steal guest guest_nice, then the per-CPU lines
    return f"cpu  {user} 5 20 {idle} 3 0 2 {steal} {guest} 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 1\n"


def test_steal_share_counts_the_ticks_between_the_reads(bench_script) -> None:
    machine = bench_script("machine")
    assert machine.cpu_ticks(_stat(100, 300, 50)) == (50, 100 + 5 + 20 + 300 + 3 + 0 + 2 + 50)
    steal = machine.Steal(_stat(1000, 3000, 100, guest=40))
    # 600 more ticks: 400 user (guest time inside it is not counted twice), 120 idle, 80 stolen
    assert abs(steal.share(_stat(1400, 3120, 180, guest=90)) - 80 / 600) < 1e-12
    assert "13.3%" in f"{steal.share(_stat(1400, 3120, 180)) * 100:.1f}%"


def test_steal_share_is_nan_without_ticks_or_proc_stat(bench_script) -> None:
    machine = bench_script("machine")
    assert math.isnan(machine.Steal(_stat(10, 10, 1)).share(_stat(10, 10, 1)))  # no tick in between
    assert machine.cpu_ticks("intr 1\n") is None
    blind = machine.Steal(_stat(10, 10, 1))
    blind.start = None  # no /proc/stat at the start
    assert math.isnan(blind.share(_stat(20, 20, 2)))


def test_steal_reads_this_machines_proc_stat(bench_script) -> None:
    machine = bench_script("machine")
    ticks = machine.cpu_ticks()
    if ticks is None:  # not Linux
        return
    stolen, total = ticks
    assert 0 <= stolen <= total and total > 0
    assert machine.Steal().line().startswith("CPU time taken by the hypervisor (steal) during the run: ")


def test_sgemm_probe_measures_this_host(bench_script) -> None:
    gflops = bench_script("machine").sgemm_gflops(0.2)
    # a 2-core VM's core does tens of GFLOP/s; one below 1 or above 10000 is a broken measure, not a host
    assert 1 < gflops < 10_000


def test_host_watch_reports_steal_and_the_probe_before_and_after(bench_script, monkeypatch) -> None:
    machine = bench_script("machine")
    rates = iter([93.4, 75.2])
    monkeypatch.setattr(machine, "sgemm_gflops", lambda: next(rates))
    steal, speed = machine.HostWatch().lines()
    assert steal.startswith("CPU time taken by the hypervisor (steal) during the run: ")
    assert speed == "one-thread sgemm (host speed) before / after the run: 93 / 75 GFLOP/s"


def test_cpu_name_states_the_model_and_core_count() -> None:
    import os
    from pathlib import Path

    from ferhub.device import cpu_name

    name = cpu_name()
    assert name.endswith(f", {os.cpu_count()} cores")
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():  # Linux: the model line, as `lscpu` names it (Intel and AMD tables differ)
        lines = cpuinfo.read_text().splitlines()
        models = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
        if models:
            assert name.startswith(models[0])


def test_every_benchmark_that_prints_a_table_states_the_cpu() -> None:
    """Every table in bench/ (and so in the README) names the CPU it ran on: the kinds differ 1.6-2x."""
    from pathlib import Path

    bench = Path(__file__).resolve().parent.parent / "bench"
    printing = [p for p in sorted(bench.glob("*.py")) if p.name != "machine.py" and "| " in p.read_text()]
    assert len(printing) >= 10  # the scan sees the scripts
    assert [p.name for p in printing if "cpu_name()" not in p.read_text()] == []
