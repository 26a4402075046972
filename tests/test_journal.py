"""The SQLite store's write-behind journal (docs/adr/0023): what survives kill -9, exactly once.

Children are real interpreters killed with SIGKILL; journal files that a dead process would
leave are made with the journal's own writer (``Segment``) and let go, which is state, not a
mock. No test asserts a time: visibility is polled with a timeout.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import chachaml
from chachaml.store._journal import HEADER, RECORD, STEP_NONE, Segment, folder_for
from chachaml.store._sqlite_journal import BASE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs Linux"),
]

WAIT_S = 60.0

LOGGER = """
import os, sys
import chachaml

db, marker, run_file, first = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
chachaml.use_store(db)
run = chachaml.start_run("victim")
with open(run_file + ".tmp", "w") as fh:
    fh.write(run.id)
os.replace(run_file + ".tmp", run_file)
fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
for i in range(first, first + 10_000_000):
    chachaml.log_metric("loss", i / 2, step=i)
    os.write(fd, b"%d\\n" % i)  # written only after log_metric returned
"""


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def _wait_for(what: str, predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


def _marked(marker: Path) -> list[int]:
    data = marker.read_bytes() if marker.exists() else b""
    return [int(line) for line in data.split(b"\n")[:-1]]


def _spawn(
    tmp_path: Path, source: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    script = tmp_path / f"child-{uuid.uuid4().hex[:6]}.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or _env(),
    )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(WAIT_S)
    assert proc.returncode == -signal.SIGKILL
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _rows(db: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def _steps(db: Path, run_id: str, key: str = "loss") -> list[int]:
    return [
        int(r[0])  # type: ignore[call-overload]
        for r in _rows(db, "SELECT step FROM metrics WHERE run_id = ? AND key = ? ORDER BY step", run_id, key)
    ]


# -- kill -9 before any drain: the journal alone holds the points -------------------------------
def test_points_survive_sigkill_before_any_drain_and_are_replayed_exactly_once(tmp_path: Path) -> None:
    db, marker, run_file = tmp_path / "runs.db", tmp_path / "marker", tmp_path / "run_id"
    proc = _spawn(
        tmp_path, LOGGER, str(db), str(marker), str(run_file), "0", env=_env(CHACHAML_JOURNAL_DRAIN_S="3600")
    )
    kill_after = random.Random(7).randint(50, 3000)
    _wait_for("logged points", lambda: len(_marked(marker)) >= kill_after)
    _kill(proc)
    run_id = run_file.read_text()
    confirmed = _marked(marker)
    # Nothing was drained: the points are only in the dead process's journal.
    assert _steps(db, run_id) == []
    assert os.listdir(folder_for(str(db))) != []

    # Several processes open the store at once: one adopts the journal, none writes it twice.
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", f"import chachaml; chachaml.use_store({str(db)!r}); chachaml.runs()"],
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    for p in openers:
        _, err = p.communicate(timeout=WAIT_S)
        assert p.returncode == 0, err.decode()

    stored = _steps(db, run_id)
    assert stored[: len(confirmed)] == confirmed  # every acknowledged point, in order
    assert len(stored) - len(confirmed) in (0, 1)  # at most the call the kill interrupted
    assert stored == list(range(len(stored)))  # and none twice
    assert not os.path.exists(folder_for(str(db)))  # replayed journals are deleted (and the empty folder)
    with chachaml.with_store(db):
        assert chachaml.get_run(run_id).status == "killed"
        assert chachaml.get_run(run_id).metrics["loss"] == (len(stored) - 1) / 2


# -- kill -9 during drains and replays, many times ------------------------------------------------
def test_kills_at_random_moments_during_drains_and_replays_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    db, run_files = tmp_path / "runs.db", []
    rng = random.Random(2023)
    confirmed: dict[int, list[int]] = {}
    for round_no in range(10):
        marker, run_file = tmp_path / f"marker{round_no}", tmp_path / f"run{round_no}"
        # A short drain interval with a fast loop: every drain meets a backlog of thousands of
        # points; each child also replays the journal the previous one left when it opens the file.
        proc = _spawn(
            tmp_path,
            LOGGER,
            str(db),
            str(marker),
            str(run_file),
            str(round_no * 1_000_000),
            env=_env(CHACHAML_JOURNAL_DRAIN_S="0.02"),
        )
        _wait_for("the child's run", run_file.exists)
        time.sleep(rng.uniform(0.0, 0.6))  # the kill lands at a random moment, not a sync point
        _kill(proc)
        run_files.append(run_file)
        confirmed[round_no] = _marked(marker)

    with chachaml.with_store(db):
        chachaml.runs()  # replays the last journal
    for round_no, run_file in enumerate(run_files):
        run_id = run_file.read_text()
        stored = _steps(db, run_id)
        counts = Counter(stored)
        assert [s for s, n in counts.items() if n > 1] == [], f"round {round_no}: duplicated points"
        mine = confirmed[round_no]
        assert set(mine) <= set(stored), f"round {round_no}: acknowledged points lost"
        assert len(stored) - len(mine) in (0, 1)
        base = round_no * 1_000_000
        assert stored == list(range(base, base + len(stored)))
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]


# -- readers in other processes ----------------------------------------------------------------
LIVE_LOGGER = """
import sys, time
import chachaml

db, run_file = sys.argv[1:3]
chachaml.use_store(db)
run = chachaml.start_run("live")
chachaml.log_metric("seen", 1.5)
with open(run_file, "w") as fh:
    fh.write(run.id)
time.sleep(600)
"""


def test_another_process_sees_a_point_while_the_writer_lives(tmp_path: Path) -> None:
    db, run_file = tmp_path / "runs.db", tmp_path / "run_id"
    proc = _spawn(tmp_path, LIVE_LOGGER, str(db), str(run_file))
    try:
        _wait_for("the child's run", lambda: run_file.exists() and run_file.read_text() != "")
        run_id = run_file.read_text()
        # A plain sqlite3 reader: the drain writes the point in the background.
        _wait_for(
            "the point in SQLite",
            lambda: _rows(db, "SELECT value FROM metrics WHERE run_id = ?", run_id) == [(1.5,)],
            timeout=5.0,
        )

        def chachaml_sees() -> bool:
            with chachaml.with_store(db):
                return [m.value for m in chachaml.metric_history(run_id, "seen")] == [1.5]

        _wait_for("the point through chachaml", chachaml_sees, timeout=5.0)
        with chachaml.with_store(db):
            assert chachaml.get_run(run_id).status == "running"  # the live writer's journal is left alone
        assert proc.poll() is None
    finally:
        _kill(proc)


# -- journal files as a dead process leaves them ----------------------------------------------------
def _dead_journal(
    db: Path, run_id: str, points: list[tuple[float, int | None]], *, torn_at: int | None = None
) -> Path:
    """A journal a process killed mid-write would leave: ``points`` of key "k", the record at
    ``torn_at`` without its sequence number (the copy was cut short), then let go (unlocked)."""
    seg = Segment.create(folder_for(str(db)))
    seg.define(1, run_id, "k")
    for i, (value, step) in enumerate(points):
        ref = (1 << 2) | (STEP_NONE if step is None else 0)
        seq = 0 if i == torn_at else i + 1
        RECORD.pack_into(seg.mm, BASE + i * RECORD.size, step or 0, value, 1_700_000_000_000 + i, ref, seq)
    path = Path(seg.path)
    seg.close(remove=False)
    return path


def _running_run(db: Path) -> str:
    with chachaml.with_store(db):
        run = chachaml.start_run("target")
        chachaml.end_run()
    return run.id


def test_a_torn_record_and_everything_after_it_is_ignored(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = _running_run(db)
    path = _dead_journal(db, run_id, [(float(i), None) for i in range(10)], torn_at=6)
    with chachaml.with_store(db):
        assert [(m.step, m.value) for m in chachaml.metric_history(run_id, "k")] == [
            (i, float(i)) for i in range(6)
        ]
    assert not path.exists()


def test_a_group_cut_short_by_the_kill_is_dropped_whole(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = _running_run(db)
    seg = Segment.create(folder_for(str(db)))
    seg.define(1, run_id, "k")
    seg.define(2, run_id, "j")
    RECORD.pack_into(seg.mm, BASE, 0, 1.0, 1, 1 << 2, 1)  # a single point
    RECORD.pack_into(seg.mm, BASE + 32, 1, 2.0, 1, (1 << 2) | 2, 2)  # a group of two whose 2nd ...
    seg.close(remove=False)  # ... never came
    with chachaml.with_store(db):
        assert [m.value for m in chachaml.metric_history(run_id, "k")] == [1.0]
        assert chachaml.metric_history(run_id, "j") == []


def test_a_journal_from_a_newer_version_is_left_alone_with_a_warning(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = _running_run(db)
    path = _dead_journal(db, run_id, [(0.5, 3)])
    with path.open("r+b") as fh:
        head = bytearray(fh.read(HEADER.size))
        magic, version, *rest = HEADER.unpack(bytes(head))
        fh.seek(0)
        fh.write(HEADER.pack(magic, version + 1, *rest))
    warned = pytest.warns(RuntimeWarning, match=r"newer than the 1 this chachaml reads.*left as it is")
    with warned, chachaml.with_store(db):
        assert chachaml.metric_history(run_id, "k") == []
    assert path.exists()  # not misread, not deleted
    with path.open("r+b") as fh:  # the newer chachaml (here: the version put back) replays it
        fh.write(HEADER.pack(magic, version, *rest))
    with chachaml.with_store(db):
        assert [(m.step, m.value) for m in chachaml.metric_history(run_id, "k")] == [(3, 0.5)]


def test_a_replay_after_a_partial_drain_writes_only_the_rest(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    run_id = _running_run(db)
    path = _dead_journal(db, run_id, [(float(i), i) for i in range(8)])
    # The dead process had drained five points before it died: the progress says so, in SQLite.
    with chachaml.with_store(db):
        chachaml.runs()  # (this replays the whole journal; start again with a fresh one)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM metrics")
        conn.execute("UPDATE chachaml_meta SET value = 0 WHERE key = 'summary_rowid'")
        conn.execute("DELETE FROM metric_summary")
    path = _dead_journal(db, run_id, [(float(i), i) for i in range(8)])
    jid = path.stem
    with conn:
        conn.executemany(
            "INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan) VALUES (?, 'k', ?, ?, 0, 0)",
            [(run_id, i, float(i)) for i in range(5)],
        )
        conn.execute("INSERT INTO journal_progress (journal, slot) VALUES (?, 5)", (jid,))
    conn.close()
    with chachaml.with_store(db):
        assert [m.step for m in chachaml.metric_history(run_id, "k")] == list(range(8))
    assert _rows(db, "SELECT count(*) FROM journal_progress") == [(0,)]


# -- processes sharing runs ---------------------------------------------------------------------
SHARED_LOGGER = """
import sys
import chachaml

db, run_id, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
chachaml.use_store(db)
for i in range(n):
    if i % 3:
        chachaml.log_metric("loss", float(i), run=run_id)
    else:
        chachaml.log_metrics({"loss": float(i)}, run=run_id)
"""


def test_two_processes_logging_step_none_to_one_run_never_share_a_step(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    chachaml.use_store(db)
    run = chachaml.start_run("shared")
    chachaml.log_metric("loss", -1.0)
    procs = [
        _spawn(tmp_path, SHARED_LOGGER, str(db), run.id, "3000", env=_env(CHACHAML_JOURNAL_DRAIN_S="0.01"))
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=WAIT_S)
        assert p.returncode == 0, err.decode()
    steps = [m.step for m in chachaml.metric_history(run.id, "loss")]
    assert sorted(steps) == list(range(6001))
    chachaml.end_run()


ENDED_ELSEWHERE = """
import sys, warnings
import chachaml

db, run_file = sys.argv[1:3]
chachaml.use_store(db)
run = chachaml.start_run("ended elsewhere")
with open(run_file + ".tmp", "w") as fh:
    fh.write(run.id)
import os
os.replace(run_file + ".tmp", run_file)
acked = 0
try:
    for i in range(100_000_000):
        chachaml.log_metric("loss", float(i))
        acked += 1
except chachaml.RunStateError as exc:
    print("REFUSED", acked, exc, flush=True)
"""


def test_logging_to_a_run_another_process_ended_warns_then_raises_and_writes_nothing_after(
    tmp_path: Path,
) -> None:
    db, run_file = tmp_path / "runs.db", tmp_path / "run_id"
    proc = _spawn(
        tmp_path, ENDED_ELSEWHERE, str(db), str(run_file), env=_env(CHACHAML_JOURNAL_DRAIN_S="0.02")
    )
    try:
        _wait_for("the child's run", run_file.exists)
        run_id = run_file.read_text()
        _wait_for("some points", lambda: len(_steps(db, run_id)) > 100)
        # Another process ends the run. Its end time is read once it holds the write lock: a
        # drain that committed before that wrote points logged before it, and every point logged
        # after it is drained after the end is committed. (Read before waiting for the lock, the
        # end time could precede points that were legitimately written while the run was still
        # running: that made this test fail under load.)
        conn = sqlite3.connect(db, timeout=60, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            end = time.time_ns() // 1_000_000
            conn.execute(
                "UPDATE runs SET status = 'completed', end_time = ? WHERE id = ? AND status = 'running'",
                (end, run_id),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            _kill(proc)
    assert proc.returncode == 0, err.decode()
    line = out.decode()
    assert line.startswith("REFUSED") and "another process ended it" in line, line
    assert "were not written: the run is completed" in err.decode()
    stored = _steps(db, run_id)
    assert stored == list(range(len(stored)))  # a prefix of what was logged, nothing torn
    assert len(stored) <= int(line.split()[1])
    # What was logged before the end is kept; nothing logged after it was written.
    assert _rows(db, "SELECT count(*) FROM metrics WHERE run_id = ? AND timestamp > ?", run_id, end) == [(0,)]


# -- fork, disk full, the escape hatch ------------------------------------------------------------
def test_a_forked_child_logs_through_its_own_journal_never_the_parents(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    chachaml.use_store(db)
    run = chachaml.start_run("forking")
    chachaml.log_metric("parent", 0.0, step=0)  # the parent's journal exists before the fork
    pid = os.fork()
    if pid == 0:  # the child: log, then die without draining (its journal is replayed later)
        code = 1
        try:
            for i in range(500):
                chachaml.log_metric("child", float(i), step=i)
            code = 0
        finally:
            os._exit(code)
    for i in range(1, 500):
        chachaml.log_metric("parent", float(i), step=i)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    for i in range(500, 1000):
        chachaml.log_metric("parent", float(i), step=i)
    chachaml.end_run()
    with chachaml.with_store(db):  # a fresh open replays the dead child's journal
        assert [m.step for m in chachaml.metric_history(run.id, "parent")] == list(range(1000))
        assert [m.step for m in chachaml.metric_history(run.id, "child")] == list(range(500))


DISK_FULL = """
import resource, signal, sqlite3, sys, warnings
import chachaml

db = sys.argv[1]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 1024 * 1024, 2 * 1024 * 1024))
chachaml.use_store(db)
chachaml.start_run("full")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    chachaml.log_metric("loss", 0.25)
print("WARNED", [str(w.message) for w in caught])
# No journal: the point was committed by the call itself.
print("ROWS", sqlite3.connect(db).execute("SELECT count(*) FROM metrics").fetchone()[0])
"""


def test_when_the_journal_cannot_be_preallocated_calls_commit_directly(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    proc = _spawn(tmp_path, DISK_FULL, str(db))
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert "cannot make a journal" in text and "commits to SQLite directly" in text, text
    assert "ROWS 1" in text


def test_chachaml_journal_0_restores_the_direct_commit_path(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    code = (
        "import chachaml, sqlite3, sys; chachaml.use_store(sys.argv[1]); chachaml.start_run('x'); "
        "chachaml.log_metric('loss', 0.5); "
        "print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM metrics').fetchone()[0]); "
        "import os; print(os.path.exists(sys.argv[1] + '.journals'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        capture_output=True,
        env=_env(CHACHAML_JOURNAL="0"),
        timeout=WAIT_S,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode().split() == ["1", "False"]


def test_a_store_sees_its_own_points_at_once_and_close_leaves_no_journal(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = chachaml.use_store(db)
    with chachaml.with_run() as run:
        for i in range(100):
            chachaml.log_metric("loss", float(i))
        chachaml.log_metrics({"a": float("nan"), "b": float("inf")}, step=7)
        assert len(chachaml.metric_history(run.id, "loss")) == 100  # no flush needed
        chachaml.log_metric("loss", 100.0)
        with chachaml.with_store(db):  # another store of this process on the same file too
            assert len(chachaml.metric_history(run.id, "loss")) == 101
        got = chachaml.get_run(run.id).metrics
        assert got["loss"] == 100.0 and got["a"] != got["a"] and got["b"] == float("inf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store.close()
    assert not os.path.exists(folder_for(str(db)))
    assert _rows(db, "SELECT count(*) FROM metrics") == [(103,)]


def _log_sequence(db: Path, seed: int) -> dict[str, object]:
    """The same random calls (steps None, explicit, negative, repeated; NaN and inf values)
    against ``db``; returns what reads give back."""
    rng = random.Random(seed)
    with chachaml.with_store(db), chachaml.with_run("same") as run:
        for _ in range(400):
            step = None if rng.random() < 0.6 else rng.randint(-5, 60)
            value = rng.choice([rng.uniform(-1, 1), float("nan"), float("inf"), -float("inf"), 0.5])
            if rng.random() < 0.7:
                chachaml.log_metric(rng.choice("abc"), value, step)
            else:
                chachaml.log_metrics({k: value for k in rng.sample("abc", 2)}, step)
        out: dict[str, object] = {}
        for key in "abc":
            out[key] = [(m.step, repr(m.value)) for m in chachaml.metric_history(run.id, key)]
        out["summaries"] = repr(chachaml.get_run(run.id).metrics)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_journal_stores_what_the_direct_path_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    journaled = _log_sequence(tmp_path / "journal.db", seed)
    monkeypatch.setenv("CHACHAML_JOURNAL", "0")
    direct = _log_sequence(tmp_path / "direct.db", seed)
    assert not os.path.exists(folder_for(str(tmp_path / "direct.db")))
    assert journaled == direct


def test_a_full_journal_file_is_drained_and_replaced_without_losing_a_point(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    code = textwrap.dedent(
        """
        import os, sys, chachaml
        from chachaml.store._journal import CAPACITY
        store = chachaml.use_store(sys.argv[1])
        run = chachaml.start_run("long")
        first = store._journal_for_write().seg.path
        n = CAPACITY + CAPACITY // 2
        for i in range(n):
            chachaml.log_metric("loss", float(i))
        now = store._journal.seg.path
        print(run.id, n, first != now, os.path.exists(first))
        os._exit(0)  # no drain at exit: the second file's points come back by replay
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(db)],
        capture_output=True,
        env=_env(CHACHAML_JOURNAL_DRAIN_S="3600"),
        timeout=WAIT_S,
    )
    assert out.returncode == 0, out.stderr.decode()
    run_id, n, rotated, old_left = out.stdout.decode().split()
    assert (rotated, old_left) == ("True", "False")  # a new file; the full one drained and deleted
    assert len(_steps(db, run_id)) < int(n)  # the rest is only in the new journal file
    with chachaml.with_store(db):
        assert [m.step for m in chachaml.metric_history(run_id, "loss")] == list(range(int(n)))


def test_a_group_longer_than_a_drain_transaction_is_written_whole(tmp_path: Path) -> None:
    from chachaml.store._sqlite_journal import DRAIN_CHUNK

    db = tmp_path / "runs.db"
    store = chachaml.use_store(db)
    with chachaml.with_run() as run:
        chachaml.log_metrics({f"k{i}": float(i) for i in range(3)})
        store.log_batch(run.id, metrics=[("big", float(i), None, 1) for i in range(DRAIN_CHUNK + 500)])
        chachaml.flush()
        assert _rows(db, "SELECT count(*), min(step), max(step) FROM metrics WHERE key = 'big'") == [
            (DRAIN_CHUNK + 500, 0, DRAIN_CHUNK + 499)
        ]


def test_step_none_after_a_largest_step_written_elsewhere_is_refused_at_the_call(tmp_path: Path) -> None:
    from chachaml.errors import InvalidValueError

    db = tmp_path / "runs.db"
    chachaml.use_store(db)
    with chachaml.with_run() as run:
        chachaml.log_metric("a", 1.0)  # the run is known running here: no status check per call
        conn = sqlite3.connect(db)
        with conn:
            conn.execute(
                "INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan) "
                "VALUES (?, 'k', ?, 1.0, 0, 0)",
                (run.id, 2**63 - 1),
            )
        conn.close()
        with pytest.raises(InvalidValueError, match="already has step"):
            chachaml.log_metric("k", 2.0)
        chachaml.log_metric("a", 2.0)  # the run is still usable
    assert [m.value for m in chachaml.metric_history(run.id, "a")] == [1.0, 2.0]
