"""What the system-metrics sampler costs (issue 11 part 5: under 1% of a core at the default interval).

    python benchmarks/bench_system_metrics.py            # 200 samples of each kind (about 20 s)
    python benchmarks/bench_system_metrics.py --quick    # 20 samples (a few seconds)

Figures, all CPU time (``time.thread_time`` in the sampling thread, ``time.process_time`` for the
whole process), never wall time, so a busy machine does not inflate them:

* ``read`` -- one ``Probe.sample()``: /proc/stat, /proc/meminfo, /proc/net/dev, /proc/diskstats,
  ``shutil.disk_usage`` (and NVML when present), median per sample.
* ``read + write`` -- one tick of the real ``Sampler`` thread: the read plus ``log_metrics`` of
  about 14 values into a SQLite run (one transaction), mean per sample, from the sampler's own
  ``cpu_seconds`` counter.
* ``process CPU per sample`` -- the whole process's CPU time while a sampler ticks at 20 ms and the
  main thread waits, per sample (includes thread wake-ups and the interpreter's switching).
* ``% of one core at 10 s`` -- the largest per-sample figure above divided by the default
  interval; target < 1%.

Everything is written under ``--dir`` (default: a new temporary folder), deleted at the end.
The exit code is 0 even when the target is missed: this is a report.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

from _floor import Report

import chachaml
from chachaml import system_metrics
from chachaml.system_metrics import DEFAULT_INTERVAL, Probe


def bench_read(n: int) -> tuple[float, int]:
    """Median thread CPU seconds of one Probe.sample(), and the number of values it returns."""
    probe = Probe()
    costs, size = [], 0
    for _ in range(n):
        t0 = time.thread_time()
        size = len(probe.sample())
        costs.append(time.thread_time() - t0)
    probe.close()
    return statistics.median(costs), size


def bench_sampler(n: int, folder: str) -> tuple[float, float, int]:
    """(thread CPU per tick, process CPU per tick, ticks) of a real Sampler writing to SQLite."""
    chachaml.use_store(os.path.join(folder, "bench.db"))
    run = chachaml.start_run("bench", system_metrics=0.02)
    sampler = system_metrics.running(run.id)
    assert sampler is not None
    start_samples, p0 = sampler.samples, time.process_time()
    cpu0 = sampler.cpu_seconds
    while sampler.samples - start_samples < n:
        time.sleep(0.05)  # sleep, not spin: the main thread must not burn the CPU being measured
    p1, ticks, cpu1 = time.process_time(), sampler.samples - start_samples, sampler.cpu_seconds
    chachaml.end_run()
    if sampler.error is not None:
        raise RuntimeError(f"the sampler stopped: {sampler.error!r}")
    history = chachaml.metric_history(run.id, "system/memory_percent")
    assert len(history) >= ticks, (len(history), ticks)
    return (cpu1 - cpu0) / ticks, (p1 - p0) / ticks, ticks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="20 samples instead of 200")
    parser.add_argument("--dir", help="folder for the benchmark database (default: a temporary one)")
    args = parser.parse_args()
    n = 20 if args.quick else 200
    folder = tempfile.mkdtemp(prefix="chachaml-bench-sysmetrics-", dir=args.dir)
    report = Report()
    print(f"python {sys.version.split()[0]} on {sys.platform}, {os.cpu_count()} CPUs, {n} samples each\n")
    try:
        read, size = bench_read(n)
        report.line("read (Probe.sample)", f"{read * 1e3:7.3f} ms CPU/sample  ({size} values)", None)
        tick, process, ticks = bench_sampler(n, folder)
        report.line("read + write (Sampler tick)", f"{tick * 1e3:7.3f} ms CPU/sample  ({ticks} ticks)", None)
        report.line("process CPU per sample", f"{process * 1e3:7.3f} ms CPU/sample", None)
        worst = max(read, tick, process)
        share = 100.0 * worst / DEFAULT_INTERVAL
        report.line(
            f"% of one core at {DEFAULT_INTERVAL:g} s",
            f"{share:8.4f} %  (worst per-sample figure / interval)  target < 1%",
            share < 1.0,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report.summary()


if __name__ == "__main__":
    main()
