"""Helpers shared by the benchmark scripts: floors, statistics, memory probes and report lines.

A *floor* is the cheapest plain-``sqlite3`` code that does the same durable work as the chachaml
call being measured, on the same machine, in the same run. Floors use a database of exactly
chachaml's schema: the CREATE statements are taken from ``chachaml.store._sqlite_schema`` at run
time, so an index added to chachaml is added to the floor too.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Sequence

# Same row, same statement as chachaml's explicit-step insert.
INSERT_METRIC = "INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan) VALUES (?, ?, ?, ?, ?, ?)"


def fresh_db(path: str) -> sqlite3.Connection:
    """A new database with chachaml's schema, in WAL mode with chachaml's pragmas, autocommit."""
    from chachaml.store._sqlite_schema import MIGRATIONS

    if os.path.exists(path):
        raise FileExistsError(f"{path} exists; floors start from a fresh database")
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL").fetchone()
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN IMMEDIATE")
    for number, statements in MIGRATIONS:
        for stmt in statements:
            conn.execute(stmt)
        conn.execute(f"PRAGMA user_version = {int(number)}")
    conn.execute("COMMIT")
    return conn


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (garbage collected first, so no earlier garbage is billed)."""
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleave(
    rounds: int, floor: Callable[[], object], ours: Callable[[], object]
) -> tuple[list[float], list[float]]:
    """Time ``floor`` and ``ours`` alternately, ``rounds`` times each (order flips every round).

    The machine is noisy: alternating puts both sides under the same background load, and the
    medians of the rounds are what the report compares.
    """
    f: list[float] = []
    o: list[float] = []
    for r in range(rounds):
        if r % 2 == 0:
            f.append(timed(floor))
            o.append(timed(ours))
        else:
            o.append(timed(ours))
            f.append(timed(floor))
    return f, o


def interleave_cpu(
    rounds: int,
    floor: Callable[[], object],
    ours: Callable[[], object],
    settle: Callable[[], object] | None = None,
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Like ``interleave``, also recording CPU seconds: (floor wall, ours wall, floor CPU, ours CPU).

    CPU time does not count the time another process held the core, so the CPU ratio is the
    steadier figure when the machine is busy; the wall-clock ratio is the one judged.
    ``settle`` (untimed) runs before every timed block: pass ``flush_writes`` so that writes a
    background thread still drains into SQLite never slow the floor (or the next round).
    """
    fw: list[float] = []
    ow: list[float] = []
    fc: list[float] = []
    oc: list[float] = []

    def one(fn: Callable[[], object], wall: list[float], cpu: list[float]) -> None:
        if settle is not None:
            settle()
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)

    for r in range(rounds):
        if r % 2 == 0:
            one(floor, fw, fc)
            one(ours, ow, oc)
        else:
            one(ours, ow, oc)
            one(floor, fw, fc)
    return fw, ow, fc, oc


def flush_writes() -> None:
    """Wait until every point logged so far is in SQLite (untimed; a no-op where writes are
    synchronous). Uses ``chachaml.flush()`` when chachaml has it, else the store's ``flush``."""
    import chachaml

    fn = getattr(chachaml, "flush", None)
    if fn is None:
        fn = getattr(chachaml.current_store(), "flush", None)
    if fn is not None:
        fn()


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc``; else the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def fmt_bound(x: float) -> str:
    """``2.0``, ``0.4``, ``0.25``: one decimal unless the bound needs more."""
    return f"{x:.1f}" if round(x, 1) == x else f"{x:g}"


class Report:
    """Collects figure lines; each line ends in PASS, FAIL or info."""

    def __init__(self) -> None:
        self.results: list[tuple[str, bool | None]] = []

    def line(self, label: str, body: str, ok: bool | None, note: str = "") -> None:
        verdict = "info" if ok is None else ("PASS" if ok else "FAIL")
        text = f"{label:<34} {body}  {verdict}"
        print(text + (f"  {note}" if note else ""), flush=True)
        self.results.append((label, ok))

    def ratio(
        self,
        label: str,
        ours_s: float,
        floor_s: float,
        unit: str,
        target: float,
        aim: float | None = None,
        cpu_ratio: float | None = None,
        limit: float | None = None,
        extra: str = "",
        ms: bool = False,
    ) -> None:
        """``label  31.2 µs/call  floor 24.0 µs  ratio 1.30  target <=2.0  PASS  (aim <=1.5: met)``.

        ``limit`` is a looser bound shown next to the target (SPEC section 6's 2.0 where the
        issue's target is tighter); ``extra`` is a note printed first.
        """
        ratio = ours_s / floor_s
        if ms:  # reads: milliseconds
            shown = f"{ours_s * 1e3:8.2f} ms/{unit}  floor {floor_s * 1e3:7.2f} ms"
        else:
            shown = f"{ours_s * 1e6:8.2f} µs/{unit}  floor {floor_s * 1e6:7.2f} µs"
        body = f"{shown}  ratio {ratio:5.2f}  target <={fmt_bound(target)}"
        notes = [extra] if extra else []
        if limit is not None:
            notes.append(f"SPEC limit <={limit:.1f}: {'met' if ratio <= limit else 'missed'}")
        if aim is not None:
            notes.append(f"aim <={aim:.1f}: {'met' if ratio <= aim else 'missed'}")
        if cpu_ratio is not None:
            notes.append(f"CPU-time ratio {cpu_ratio:.2f}")
        self.line(label, body, ratio <= target, f"({'; '.join(notes)})" if notes else "")

    def summary(self) -> None:
        failed = [label for label, ok in self.results if ok is False]
        passed = sum(1 for _, ok in self.results if ok)
        print(f"\nsummary: {passed} PASS, {len(failed)} FAIL" + (f" ({', '.join(failed)})" if failed else ""))
