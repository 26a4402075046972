"""The SQLite store's write-behind journal: appending, draining, replaying (docs/adr/0023).

``log_metric`` (and metric-only ``log_batch``: ``log_metrics``, ``batched()`` flushes) copy
their points into this process's journal (``_journal``) and return; a daemon thread drains
every store's journal into SQLite every ``DRAIN_S`` seconds, each batch in one transaction that
also records how far it got (``journal_progress``). Every read and every other write of the
store drains first, synchronously, so this process sees its own points at once and rowid order
stays logging order. On open, a store replays the journals of processes that died.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import warnings
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chachaml._owned_files import adopt_unowned
from chachaml._process import state as _process
from chachaml.errors import ChachamlError, RunStateError
from chachaml.rules import MAX_STEP, next_step, no_next_step
from chachaml.store._journal import (
    CAPACITY,
    HEADER_SIZE,
    NAMES,
    RECORD,
    SUFFIX,
    Journal,
    NewerJournalError,
    Point,
    Segment,
    folder_for,
    read_header,
    read_names,
    scan,
)

if TYPE_CHECKING:
    from chachaml.store.base import MetricIn

BASE = HEADER_SIZE + NAMES
DRAIN_CHUNK = 8192  # records per drain transaction (more only to finish a group)
pack_record = RECORD.pack_into
_PROGRESS_TABLE = (
    "CREATE TABLE IF NOT EXISTS journal_progress (journal TEXT PRIMARY KEY, slot INTEGER NOT NULL) "
    "WITHOUT ROWID"
)
_PROGRESS_SET = (
    "INSERT INTO journal_progress (journal, slot) VALUES (?, ?) "
    "ON CONFLICT (journal) DO UPDATE SET slot = excluded.slot"
)


def enabled() -> bool:
    """``CHACHAML_JOURNAL=0`` (or ``off``/``false``/``no``) restores the direct commit path."""
    return os.environ.get("CHACHAML_JOURNAL", "1").strip().lower() not in ("0", "off", "false", "no")


def drain_interval() -> float:
    """Seconds between background drains (``CHACHAML_JOURNAL_DRAIN_S``, default 0.15)."""
    try:
        return max(0.001, float(os.environ.get("CHACHAML_JOURNAL_DRAIN_S", "0.15")))
    except ValueError:
        return 0.15


class JournalMixin:
    """The journal half of ``SqliteStore`` (mixed into ``SqliteBase``'s subclasses)."""

    path: str | None
    uri: str
    _lock: threading.RLock
    _readonly: bool
    _journal: Journal | None
    _journal_pid: int
    _conn: sqlite3.Connection | None

    if TYPE_CHECKING:

        def _write(self) -> sqlite3.Connection: ...
        def _write_metrics(
            self, conn: sqlite3.Connection, run_id: str, metrics: Sequence[MetricIn]
        ) -> None: ...
        def _error(self, exc: sqlite3.Error) -> Exception: ...

    # -- opening ---------------------------------------------------------------------------------
    def _journal_for_write(self) -> Journal | None:
        """This process's journal for this store, made on first use; None: write directly
        (``:memory:``, read-only, ``CHACHAML_JOURNAL=0``, or the file could not be made)."""
        j = self._journal
        if j is not None or self._journal_pid == _process.pid:
            return j
        with self._lock:
            if self._journal is not None or self._journal_pid == _process.pid:
                return self._journal
            self._journal_pid = _process.pid
            if not self.path or not enabled():
                return None
            self._write()  # opens the file (and replays dead processes' journals)
            if self._readonly:
                return None
            try:
                j = Journal(folder_for(self.path))
            except OSError as exc:  # no space to preallocate, a read-only folder, no mmap...
                warnings.warn(
                    f"chachaml: cannot make a journal next to {self.path} ({exc}); every log call "
                    "commits to SQLite directly instead (slower, equally durable)",
                    RuntimeWarning,
                    stacklevel=4,
                )
                return None
            self._journal = j
            # Garbage-collected without close(): let go of the file (the next open replays it).
            # Not at exit: the exit handler drains first (_sqlite_base._fold_at_exit).
            weakref.finalize(self, j.abandon).atexit = False
            _journaled.add(self)
            _start_drainer()
            return j

    # -- appending -------------------------------------------------------------------------------
    def _journal_points(self, run_id: str, points: Sequence[MetricIn]) -> bool:
        """Append the points of one call (all or nothing); False: the caller writes them directly
        (no journal, the run is not known running, a key at the largest step, too many points).

        Raises:
            RunStateError: another process ended the run while this one had points of it in the
                journal (they were not written; the drain warned).
        """
        j = self._journal_for_write()
        if j is None or len(points) > CAPACITY // 4:
            return False
        if run_id in j.refused:
            with self._lock:
                self._journal_notices()
            n = j.refused.pop(run_id)
            raise RunStateError(
                f"cannot log metrics to run {run_id[:8]}: another process ended it while this one was "
                f"still logging to it, and the last {n} point(s) logged here were not written; "
                f"start a new run, or resume this one with start_run(run_id={run_id!r})"
            )
        if not points:
            return True
        direct = False
        for k, _, s, _ in points:
            if s is not None and s >= MAX_STEP:  # after it, step=None must be refused at the call
                j.direct.add((run_id, k))
                j.refs.pop((run_id, k), None)
                direct = True
            elif (run_id, k) in j.direct:
                direct = True
        if direct:
            return False
        known = j.refs
        new_keys = [p[0] for p in points if (run_id, p[0]) not in known]
        if (new_keys or run_id not in j.running) and not self._journal_admit(j, run_id, new_keys):
            return False
        for _ in range(4):
            full = j.put(run_id, points)
            if full is None:
                return True
            if not self._journal_rotate(j, full):
                return False
        return False

    def _journal_admit(self, j: Journal, run_id: str, keys: Sequence[str]) -> bool:
        """Check once that ``run_id`` is running (then log calls to it skip the check) and that
        none of ``keys`` already holds the largest step; False: write directly (which raises)."""
        with self._lock:
            conn = self._write()
            try:
                row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
                if row is None or row[0] != "running":
                    return False
                for k in dict.fromkeys(keys):
                    if conn.execute(
                        "SELECT 1 FROM metrics WHERE run_id = ? AND key = ? AND step = ?",
                        (run_id, k, MAX_STEP),
                    ).fetchone():
                        j.direct.add((run_id, k))
                        return False
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            j.running.add(run_id)
            return True

    def _journal_rotate(self, j: Journal, full: Segment) -> bool:
        """Replace the segment ``full`` by a new one, after draining it; False: no new segment
        could be made (disk full): the journal is switched off and calls write directly."""
        with self._lock, j.lock:
            if j.seg is not full:
                return True  # another thread rotated meanwhile
            self._drain_segment(full, live=True)
            try:
                new = Segment.create(j.folder)
            except OSError as exc:
                warnings.warn(
                    f"chachaml: cannot start a new journal file for {self.path} ({exc}); log calls "
                    "commit to SQLite directly from now on",
                    RuntimeWarning,
                    stacklevel=4,
                )
                if full.done >= full.next:
                    full.close(remove=True)
                    self._journal_progress_forget(full.id)
                self._journal = None
                return False
            j.refs.clear()  # before the new segment shows: the fast path re-checks its ref
            j.seg = new
            full.close(remove=full.done >= full.next)  # drained: nothing of it is lost
            self._journal_progress_forget(full.id)
            return True

    # -- draining --------------------------------------------------------------------------------
    def _drain_journal(self) -> None:
        """Write everything journaled so far into SQLite (the caller holds ``_lock``)."""
        j = self._journal
        if j is not None:
            if j.seg.done < j.seg.next:
                self._drain_segment(j.seg, live=True)
            if j.notices and not self.__dict__.get("_journal_background"):
                self._journal_notices()

    def _drain_segment(self, seg: Segment, *, live: bool) -> None:
        """Write the complete points of ``seg`` after ``seg.done``: about ``DRAIN_CHUNK`` records
        per transaction (a group is never split), so memory stays flat whatever the backlog."""
        while True:
            points, done = scan(seg.mm, seg.names, seg.done, seg.next, seg.capacity, DRAIN_CHUNK)
            if done == seg.done:
                return
            self._drain_chunk(seg, points, done, live=live)

    def _drain_chunk(self, seg: Segment, points: list[Point], done: int, *, live: bool) -> None:
        """One transaction: ``points`` (the records of ``seg`` up to slot ``done``) and the progress."""
        conn = self._write()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                refused = self._write_journaled(conn, points, live=live)
                conn.execute(_PROGRESS_TABLE)
                conn.execute(_PROGRESS_SET, (seg.id, done))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        seg.done = done
        if refused:
            self._journal_refused(refused)

    def _write_journaled(
        self, conn: sqlite3.Connection, points: list[Point], *, live: bool
    ) -> dict[str, tuple[str, int]]:
        """Write ``points`` run by run (each run's in logging order) inside the caller's
        transaction; returns the runs whose points were not (all) written: ``{run: (status, count)}``.

        A live process writes to a run another process ended meanwhile only the points whose
        timestamp is not after the run's end (none if the end time is unknown). A replay writes
        to any run that still exists: its points were acknowledged while this process believed
        the run running, and a run whose process died is marked killed only after."""
        by_run: dict[str, list[Point]] = {}
        for point in points:
            found = by_run.get(point[0])
            if found is None:
                found = by_run[point[0]] = []
            found.append(point)
        refused: dict[str, tuple[str, int]] = {}
        for run_id, metrics in by_run.items():
            row = conn.execute("SELECT status, end_time FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                refused[run_id] = ("deleted", len(metrics))
                continue
            if live and row[0] != "running":
                # Ended by another process: what was logged before its end (by the points'
                # timestamps) is kept, what came after is refused.
                end = row[1]
                kept = [] if end is None else [m for m in metrics if m[4] <= end]
                if len(kept) < len(metrics):
                    refused[run_id] = (str(row[0]), len(metrics) - len(kept))
                metrics = kept
                if not metrics:
                    continue
            conn.execute("SAVEPOINT journal_run")
            try:
                conn.executemany(_INSERT_ROW, _rows(conn, run_id, metrics))
            except (ChachamlError, sqlite3.IntegrityError) as exc:  # e.g. no next step: not the rest
                conn.execute("ROLLBACK TO journal_run")
                refused[run_id] = (f"refused ({exc})", len(metrics))
            conn.execute("RELEASE journal_run")
        return refused

    def _journal_refused(self, refused: dict[str, tuple[str, int]]) -> None:
        j = self._journal
        for run_id, (status, count) in refused.items():
            if j is not None:
                j.forget_run(run_id)
                if status != "deleted" and not status.startswith("refused"):
                    j.refused[run_id] = j.refused.get(run_id, 0) + count
            self._journal_notice(
                f"chachaml: {count} metric point(s) logged to run {run_id[:8]} in {self.uri} were "
                f"not written: the run is {status} (another process ended or deleted it while "
                "this one was logging to it); the next log call to it raises RunStateError"
            )

    def _journal_notice(self, message: str, *, once: bool = False) -> None:
        """Warn now, or, in the drain thread, at the next call of the user's code (a warning
        raised as an error there must not stop the drain). ``once``: not again by this store
        (a journal left alone is seen by every read)."""
        j = self._journal
        if j is not None and self.__dict__.get("_journal_background"):
            j.notices.append(message)
            return
        if once:
            seen: set[str] = self.__dict__.setdefault("_journal_warned", set())
            if message in seen:
                return
            seen.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)

    def _journal_notices(self) -> None:
        """Show the warnings the drain thread left (in the caller's thread)."""
        j = self._journal
        while j is not None and j.notices:
            self._journal_notice(j.notices.pop(0))

    def _journal_progress_forget(self, journal_id: str) -> None:
        """Drop the progress row of a journal file that is gone (deleted after its last drain)."""
        conn = self._write()
        with contextlib.suppress(sqlite3.Error):
            conn.execute("DELETE FROM journal_progress WHERE journal = ?", (journal_id,))

    def _journal_close(self) -> None:
        """Drain, then delete this process's journal file (``close()``, interpreter exit)."""
        with self._lock:
            j = self._journal
            if j is None or j.pid != os.getpid():
                return
            with j.lock:
                seg = j.seg
                with contextlib.suppress(sqlite3.Error, Exception):
                    self._drain_segment(seg, live=True)
                self._journal = None
                _journaled.discard(self)
                drained = seg.done >= seg.next
                seg.close(remove=drained)
                if drained:
                    self._journal_progress_forget(seg.id)
                    with contextlib.suppress(OSError):
                        os.rmdir(j.folder)  # only when empty: another process may still be writing

    def _drain_siblings(self) -> None:
        """Drain the journals of the other stores of this process on the same file, so a read
        through any of them sees every point this process logged (one store lock at a time)."""
        n = len(_journaled)
        if n == 0 or (n == 1 and self._journal is not None) or not self.path:
            return  # no other store of this process has a journal
        folder = self.__dict__.get("_journal_folder")
        if folder is None:
            folder = self.__dict__["_journal_folder"] = folder_for(self.path)
        for other in list(_journaled):
            j = other._journal
            if other is not self and j is not None and j.pending and j.folder == folder:
                with other._lock:
                    other._drain_journal()

    def flush(self) -> None:
        """Write every point journaled so far into SQLite (``chachaml.flush()``)."""
        with self._lock:
            self._drain_journal()

    # -- replaying dead processes' journals ------------------------------------------------------
    def _replay_dead(self, conn: sqlite3.Connection) -> None:
        """Write the journals of processes that died into SQLite, exactly once, and delete them
        (on open; the caller holds ``_lock``)."""
        if not self.path:
            return
        folder = self.__dict__.get("_journal_folder")
        if folder is None:
            folder = self.__dict__["_journal_folder"] = folder_for(self.path)
        try:  # the cheap look first: reads call this, and usually only this process's file is there
            names = os.listdir(folder)
        except OSError:
            return
        mine = self._journal.seg.path if self._journal is not None else None
        mine_name = None if mine is None else os.path.basename(mine)
        if not [n for n in names if n.endswith(SUFFIX) and n != mine_name]:
            if not names:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)  # empty: no live writer, nothing left to replay
            return
        for path, fd in adopt_unowned(folder, SUFFIX, mine=mine):
            try:
                self._replay_one(conn, path, fd)
            finally:
                os.close(fd)
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # empty: no live writer, nothing left to replay

    def _replay_one(self, conn: sqlite3.Connection, path: str, fd: int) -> None:
        import mmap

        size = os.fstat(fd).st_size
        if size == 0:  # made by a process that died before preallocating it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return
        mm = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
        try:
            try:
                jid, capacity = read_header(mm, path)
            except (NewerJournalError, ValueError) as exc:
                self._journal_notice(f"chachaml: {exc}", once=True)
                return
            conn.execute(_PROGRESS_TABLE)
            row = conn.execute("SELECT slot FROM journal_progress WHERE journal = ?", (jid,)).fetchone()
            start = 0 if row is None else int(row[0])
            seg = Segment(path, fd, mm, jid, capacity, next=capacity, done=start, names=read_names(mm))
            try:
                self._drain_segment(seg, live=False)
            except KeyError:  # a record naming an undefined sid: damaged beyond the crash model
                self._journal_notice(
                    f"chachaml: the journal {path} is damaged; it was left as it is", once=True
                )
                return
        finally:
            mm.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self._journal_progress_forget(jid)


_INSERT_ROW = "INSERT INTO metrics (run_id, key, step, value, timestamp, is_nan) VALUES (?, ?, ?, ?, ?, ?)"
_MISSING: Any = object()


def _rows(conn: sqlite3.Connection, run_id: str, points: list[Point]) -> list[tuple[Any, ...]]:
    """Metric rows of one run's journaled points, in logging order, with every ``step=None``
    resolved as the direct path resolves it (``chachaml.rules.next_step``): one past the highest
    step of that key in the run, counting the points before it in this batch. Called under the
    write lock, so writers in other processes never pick the same step.

    Raises:
        InvalidValueError: a key already holds the largest 64-bit step (``no_next_step``).
    """
    top: dict[str, int] = {}  # highest step per key, once the database was asked
    before: dict[str, int] = {}  # highest explicit step per key in this batch, before that
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for _, k, v, s, ts in points:
        if s is None:
            t = top.get(k, _MISSING)
            if t is _MISSING:
                t = conn.execute(
                    "SELECT max(step) FROM metrics WHERE run_id = ? AND key = ?", (run_id, k)
                ).fetchone()[0]
                b = before.get(k)
                if b is not None and (t is None or b > t):
                    t = b
            s = next_step(t)
            if s > MAX_STEP:
                raise no_next_step(run_id, k)
            top[k] = s
        elif k in top:
            if s > top[k]:
                top[k] = s
        else:
            b = before.get(k)
            if b is None or s > b:
                before[k] = s
        append((run_id, k, s, v, ts, 1 if v != v else 0))
    return rows


# -- the drain thread (one per process, for every store with a journal) ---------------------------
_journaled: weakref.WeakSet[JournalMixin] = weakref.WeakSet()
_gate = threading.Lock()  # held while one store drains; fork waits for it (no lock is copied held)
_drainer: list[threading.Thread] = []
ADOPT_S = 5.0  # how often a long-lived store looks for journals whose owner died meanwhile


def _start_drainer() -> None:
    with _gate:
        if _drainer and _drainer[0].is_alive():
            return
        thread = threading.Thread(target=_drain_forever, name="chachaml-journal-drain", daemon=True)
        _drainer[:] = [thread]
        thread.start()


def _drain_forever() -> None:
    complained: set[str] = set()
    adopt_at = time.monotonic() + ADOPT_S
    while True:
        time.sleep(drain_interval())
        adopt = time.monotonic() >= adopt_at
        if adopt:
            adopt_at = time.monotonic() + ADOPT_S
        for store in list(_journaled):
            j = store._journal
            if j is None or not (j.pending or adopt):
                continue
            try:
                with _gate, store._lock:
                    store.__dict__["_journal_background"] = True
                    try:
                        store._drain_journal()
                        if adopt and store._conn is not None and store._journal is not None:
                            # journals of processes that died since this store opened the file
                            store._replay_dead(store._conn)
                    finally:
                        store.__dict__["_journal_background"] = False
            except Exception as exc:
                if store.uri not in complained:  # the next read or write raises it in the caller
                    complained.add(store.uri)
                    with contextlib.suppress(Exception):
                        warnings.warn(
                            f"chachaml: writing journaled points into {store.uri} failed ({exc}); "
                            "retrying, and the next read or write of the store raises if it still fails",
                            RuntimeWarning,
                            stacklevel=1,
                        )
            del store


def _before_fork() -> None:
    _gate.acquire()


def _after_fork_parent() -> None:
    _gate.release()


def _after_fork_child() -> None:
    """A forked child never writes into its parent's mapping: it forgets the parent's journals
    (unmapping its own copy; the parent keeps the file and its lock) and makes its own."""
    _gate.release()
    for store in list(_journaled):
        j = store._journal
        store._journal = None
        if j is not None:
            with contextlib.suppress(OSError, ValueError):
                j.seg.close(remove=False)
    _journaled.clear()
    _drainer.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork_parent, after_in_child=_after_fork_child
    )
