"""The remote store's memory-mapped front for its spool (ADR-0026, ADR-0023).

A spooled ``log_metric`` used to encode a JSON line and ``os.write`` it (about 7 µs), while the
SQLite store's points go into a memory-mapped journal (about 1.3 µs). Here the remote store
copies a point into the same kind of journal (``store._journal``: a preallocated file mapped
``MAP_SHARED``, fixed-size records, the last field packed last), which survives ``kill -9`` once
the call has returned. The sender thread then *moves* the records into the spool before it ships
them: one ``p`` record per stretch of one run, carrying the journal's id and the slot after its
last point (``"j"``/``"hi"``). That pair is the journal's progress, and it is written in the same
line as the points, so a move is applied once: a process that adopts a dead process's journal
starts after the highest ``hi`` any spool in the folder records for it.

Files: ``<spool folder>/<id>.journal`` beside the ``.spool`` files, locked (``flock``) by the
owner while it lives; a dead owner's journal is adopted like its spool (``adopt_journals``).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from chachaml._owned_files import adopt_unowned
from chachaml.store._journal import (
    CAPACITY,
    HEADER_SIZE,
    NAMES,
    RECORD,
    STEP_NONE,
    SUFFIX,
    Journal,
    Point,
    Segment,
    read_header,
    read_names,
    scan,
)

if TYPE_CHECKING:
    from chachaml.spool import Spool
    from chachaml.store.base import MetricIn

__all__ = ["SpoolBuffer", "adopt_journals"]

_BASE = HEADER_SIZE + NAMES
_pack = RECORD.pack_into


def _stretches(points: Sequence[Point], first_slot: int) -> Iterable[tuple[str, list[Point], int]]:
    """``points`` (consecutive records from ``first_slot`` on) as stretches of one run each:
    ``(run id, points, the slot after the stretch's last point)``."""
    start = 0
    for n in range(1, len(points) + 1):
        if n == len(points) or points[n][0] != points[start][0]:
            yield points[start][0], list(points[start:n]), first_slot + n
            start = n


def _move(seg: Segment, stop: int, spool: Spool) -> int:
    """Append the complete records of ``seg`` from ``seg.done`` to ``stop`` to ``spool``; returns
    the slot after the last record moved."""
    points, done = scan(seg.mm, seg.names, seg.done, stop, seg.capacity)
    for run_id, stretch, hi in _stretches(points, seg.done):
        spool.append(run_id, [(k, v, s, ts) for _, k, v, s, ts in stretch], source=(seg.id, hi))
    return done


class SpoolBuffer:
    """This process's journal in front of its spool. Thread-safe.

    Args:
        folder: the spool folder of the destination.
        spool: returns this process's spool (made on first use).
    """

    def __init__(self, folder: str, spool: Callable[[], Spool]) -> None:
        self.folder = folder
        self._spool = spool
        self._journal: Journal | None = None
        self._failed = False  # no journal could be made: the caller spools directly
        self._move_lock = threading.Lock()
        self.pid = os.getpid()

    @property
    def pending(self) -> int:
        """Points copied in and not yet moved to the spool."""
        j = self._journal
        return 0 if j is None else j.seg.next - j.seg.done

    def append1(self, run_id: str, key: str, value: float, step: int | None, ts: int) -> bool:
        """``append`` of one point: the hot path of ``log_metric``."""
        j = self._journal
        if j is not None:
            with j.lock:
                seg = j.seg
                i = seg.next
                ref = j.refs.get((run_id, key))
                if ref is not None and i < seg.capacity:
                    if step is None:
                        _pack(seg.mm, _BASE + (i << 5), 0, value, ts, ref | STEP_NONE, i + 1)
                    else:
                        _pack(seg.mm, _BASE + (i << 5), step, value, ts, ref, i + 1)
                    seg.next = i + 1
                    return True
        return self.append(run_id, [(key, value, step, ts)])

    def append(self, run_id: str, points: Sequence[MetricIn]) -> bool:
        """Copy the points of one call into the mapping (all or nothing; durable on return).
        False: the caller writes them to the spool itself (no journal, or too many points)."""
        if len(points) > CAPACITY // 4:
            return False
        j = self._journal
        if j is None:
            if self._failed:
                return False
            try:
                j = self._journal = Journal(self.folder)
            except OSError:  # no space to preallocate, a read-only folder: spool directly
                self._failed = True
                return False
        for _ in range(3):
            if j.put(run_id, points) is None:
                return True
            self.move(rotate=True)
        return False

    def move(self, *, rotate: bool = False) -> None:
        """Move every complete record into the spool; with ``rotate``, or when the file is full,
        replace a fully moved file by a new one (the old one is deleted)."""
        with self._move_lock:
            j = self._journal
            if j is None or os.getpid() != self.pid:
                return
            seg = j.seg
            if seg.done < seg.next:
                seg.done = _move(seg, seg.next, self._spool())
            if (rotate or seg.done >= seg.capacity) and seg.done >= seg.next:
                try:
                    new = Segment.create(self.folder)
                except OSError:
                    return  # stay on the full file: append() then spools directly
                with j.lock:
                    j.refs.clear()
                    j._sids = 0
                    j.seg = new
                seg.close(remove=True)

    def close(self) -> None:
        """Move what is left, then delete the file (everything in it is in the spool)."""
        self.move()
        j, self._journal = self._journal, None
        if j is not None:
            with contextlib.suppress(OSError, ValueError):
                j.seg.close(remove=j.seg.done >= j.seg.next and os.getpid() == self.pid)

    def forget(self) -> None:
        """In a forked child: let go of the parent's mapping without touching its file."""
        j, self._journal = self._journal, None
        self.pid = os.getpid()
        if j is not None:
            with contextlib.suppress(OSError, ValueError):
                j.seg.mm.close()
                os.close(j.seg.fd)


def adopt_journals(folder: str, into: Callable[[], Spool]) -> int:
    """Move the records of dead processes' journals in ``folder`` into a spool and delete the
    journals; returns the number of points moved.

    Each journal's progress is the highest ``hi`` any spool file in ``folder`` records for it,
    read after the journal is locked (no one else moves it then), so records already moved are
    not moved again; a spool holding such progress is kept while its journal exists
    (``Spool.close``). A journal written by a newer chachaml, or damaged, is left as it is.
    """
    from chachaml.spool import moved_progress

    moved = 0
    for path, fd in adopt_unowned(folder, SUFFIX):
        done = moved_progress(folder)
        try:
            size = os.fstat(fd).st_size
            if size == 0:  # made by a process that died before preallocating it
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                continue
            mm = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
            try:
                try:
                    jid, capacity = read_header(mm, path)
                except ValueError:
                    continue  # a newer version or not a journal: left alone
                seg = Segment(path, fd, mm, jid, capacity, next=capacity, done=done.get(jid, 0))
                seg.names = read_names(mm)
                before = seg.done
                try:
                    after = _move(seg, capacity, into())
                except KeyError:  # a record naming an undefined sid: damaged beyond the crash model
                    continue
                moved += after - before
            finally:
                mm.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        finally:
            os.close(fd)
    return moved
