"""The write-behind journal of the SQLite store: its file format, its writer and its reader
(docs/adr/0023-write-behind-journal.md).

One journal segment is one preallocated file, mapped ``MAP_SHARED`` into the process that owns
it (``flock``-held, ``chachaml._owned_files``). A log call copies a fixed-size record into the
mapping and returns: the bytes are in the page cache at once, so they survive ``kill -9`` of the
process. The store's drain (``_sqlite_journal``) moves records into SQLite later.

Layout of a segment (little-endian)::

    0      header  (64 bytes)  magic b"CHJRNL\\0\\0", version, sizes, created (ms), journal id
    64     names   (NAMES bytes) definition entries: crc32, sid, len(run id), len(key), utf-8 bytes
    64+NAMES records (RECORD bytes each, CAPACITY of them)

A record is ``step (i64), value (f64), timestamp (i64), ref (u32), seq (u32)``. ``ref`` is
``sid << 2 | flags``: bit 0 ``step=None``, bit 1 "the group continues" (all but the last point of
one ``log_metrics``/batch, which is written all or nothing). ``seq`` is the slot number plus one
and is packed last: a record whose ``seq`` is not its slot's was not (completely) written, and
reading stops there. A names entry is valid when its crc32 matches.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from chachaml._owned_files import try_lock

MAGIC = b"CHJRNL\0\0"
VERSION = 1
SUFFIX = ".journal"
HEADER = struct.Struct("<8sHHIIQ16s")  # magic, version, header size, names size, capacity, created, id
HEADER_SIZE = 64
NAMES = 64 * 1024
RECORD = struct.Struct("<qdqII")
RECORD_SIZE = RECORD.size  # 32
CAPACITY = 128 * 1024  # records per segment (4 MiB)
NAME_HEAD = struct.Struct("<IIHH")  # crc32 of the rest, sid, len(run id), len(key)
STEP_NONE = 1
WINDOW = 4096  # records copied out of the mapping at a time by scan()
CONTINUES = 2

#: One point as the drain hands it to SQLite: (run id, key, value, step or None, timestamp).
Point = tuple[str, str, float, "int | None", int]


class NewerJournalError(Exception):
    """A journal written by a newer chachaml: left alone, never misread."""


def folder_for(db_path: str) -> str:
    """Where the journals of the database ``db_path`` live: ``<db path>.journals/``.

    Not SQLite's ``-journal``, ``-wal`` or ``-shm`` files, nor the artifact folder
    (``x-artifacts`` or ``x.db.artifacts``)."""
    return os.path.abspath(db_path) + ".journals"


@dataclass
class Segment:
    """One journal file owned by this process, mapped for writing. Not thread-safe by itself:
    the ``Journal`` serialises writers; the drain reads records below ``next`` without a lock."""

    path: str
    fd: int
    mm: mmap.mmap
    id: str
    capacity: int = CAPACITY
    next: int = 0  # the first free slot
    done: int = 0  # slots already in SQLite (the drain's progress)
    names_end: int = HEADER_SIZE  # the first free byte of the names area
    names: dict[int, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def create(cls, folder: str, capacity: int = CAPACITY) -> Segment:
        """A new, preallocated, locked segment in ``folder``.

        Raises:
            OSError: the folder or file cannot be made, or preallocation failed (disk full):
                the caller writes directly to SQLite instead.
        """
        jid = os.urandom(16)  # the file's name and id; random, as a version-4 uuid would be
        path = os.path.join(folder, f"{jid.hex()}{SUFFIX}")
        size = HEADER_SIZE + NAMES + capacity * RECORD_SIZE
        for attempt in range(5):  # another process may remove the folder when it empties it
            os.makedirs(folder, exist_ok=True)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                break
            except FileNotFoundError:
                if attempt == 4:
                    raise
        try:
            if not try_lock(fd):
                raise OSError(f"journal {path} is locked by another process")
            # Reserve the blocks: a write into the mapping can then never fail for lack of space
            # (which would be SIGBUS, not an exception).
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, size)
            else:  # pragma: no cover - macOS, Windows: no way to reserve, so write zeros
                os.pwrite(fd, bytes(size), 0)
            mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise
        created = time.time_ns() // 1_000_000
        HEADER.pack_into(mm, 0, MAGIC, VERSION, HEADER_SIZE, NAMES, capacity, created, jid)
        return cls(path, fd, mm, jid.hex(), capacity)

    def define(self, sid: int, run_id: str, key: str) -> bool:
        """Write the names entry of ``sid``; False when the names area is full (rotate)."""
        run_b, key_b = run_id.encode("utf-8"), key.encode("utf-8")
        body = struct.pack("<IHH", sid, len(run_b), len(key_b)) + run_b + key_b
        end = self.names_end + 4 + len(body)
        if end > HEADER_SIZE + NAMES - 16:
            return False
        self.mm[self.names_end + 4 : end] = body
        struct.pack_into("<I", self.mm, self.names_end, zlib.crc32(body) or 1)  # last: the commit
        self.names_end = end
        self.names[sid] = (run_id, key)
        return True

    def close(self, *, remove: bool) -> None:
        """Unmap, unlock; delete the file when ``remove`` (everything in it is in SQLite).
        Idempotent."""
        if self.fd < 0:
            return
        if remove:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        fd, self.fd = self.fd, -1
        try:
            self.mm.close()
        finally:
            os.close(fd)


def scan(
    buf: mmap.mmap | bytes,
    names: dict[int, tuple[str, str]],
    start: int,
    stop: int,
    capacity: int,
    limit: int | None = None,
) -> tuple[list[Point], int]:
    """The complete points in slots ``start..stop`` and the slot after the last complete one;
    with ``limit``, stop at the first group boundary after that many records.

    Reading stops at the first record that is not (completely) written, and a group whose last
    point is missing is left for later (or, in a dead process's journal, dropped: its call never
    returned). Records are copied out of ``buf`` a window at a time, so memory stays flat.
    """
    base = HEADER_SIZE + NAMES
    stop = min(stop, capacity)
    out: list[Point] = []
    pending: list[Point] = []
    done = start
    slot = start
    while slot < stop:
        hi = min(stop, slot + WINDOW)
        data = bytes(buf[base + slot * RECORD_SIZE : base + hi * RECORD_SIZE])
        for step, value, ts, ref, seq in RECORD.iter_unpack(data):
            slot += 1
            if seq != slot:
                return out, done
            run_id, key = names[ref >> 2]
            pending.append((run_id, key, value, None if ref & STEP_NONE else step, ts))
            if not ref & CONTINUES:
                out.extend(pending)
                pending.clear()
                done = slot
                if limit is not None and done - start >= limit:
                    return out, done
    return out, done


def read_names(buf: mmap.mmap | bytes) -> dict[int, tuple[str, str]]:
    """The names entries of a segment, up to the first one not (completely) written."""
    names: dict[int, tuple[str, str]] = {}
    at = HEADER_SIZE
    while at + 12 <= HEADER_SIZE + NAMES:
        crc, sid, run_len, key_len = NAME_HEAD.unpack_from(buf, at)
        if crc == 0:
            break
        end = at + 12 + run_len + key_len
        body = bytes(buf[at + 4 : end])
        if end > HEADER_SIZE + NAMES or (zlib.crc32(body) or 1) != crc:
            break
        names[sid] = (
            bytes(buf[at + 12 : at + 12 + run_len]).decode("utf-8"),
            bytes(buf[at + 12 + run_len : end]).decode("utf-8"),
        )
        at = end
    return names


def read_header(buf: mmap.mmap | bytes, path: str) -> tuple[str, int]:
    """``(journal id, capacity)`` of a segment.

    Raises:
        NewerJournalError: a newer chachaml wrote it.
        ValueError: it is not a journal (wrong magic, or cut short).
    """
    if len(buf) < HEADER_SIZE:
        raise ValueError(f"{path} is too short to be a chachaml journal")
    magic, version, header, names, capacity, _, jid = HEADER.unpack_from(buf, 0)
    if magic != MAGIC:
        raise ValueError(f"{path} is not a chachaml journal (its first bytes are {magic!r})")
    if version > VERSION:
        raise NewerJournalError(
            f"the journal {path} has format version {version}, newer than the {VERSION} this "
            "chachaml reads; it was left as it is: open the database with the newer chachaml that "
            "wrote it (pip install -U chachaml) so its points are written to the database"
        )
    if header != HEADER_SIZE or names != NAMES or len(buf) < HEADER_SIZE + NAMES + capacity * RECORD_SIZE:
        raise ValueError(f"{path} is a damaged chachaml journal (its sizes do not add up)")
    return bytes(jid).hex(), int(capacity)


class Journal:
    """This process's journal for one database: the current segment, and what the log calls
    know without asking SQLite.

    ``lock`` serialises writers (threads). ``refs`` maps ``(run id, key)`` to the ``ref`` of its
    records in the current segment; a pair is in it only while its run is known to be running
    here (the fast path writes without any other check). ``running`` holds the runs checked
    running; ``direct`` the pairs that go straight to SQLite (a key at the largest step, whose
    ``step=None`` must be refused at the call); ``refused`` the runs another process ended while
    this one still had points of them in the journal (the number of points not written).
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.lock = threading.Lock()
        self.seg = Segment.create(folder)
        self.refs: dict[tuple[str, str], int] = {}
        self.running: set[str] = set()
        self.direct: set[tuple[str, str]] = set()
        self.refused: dict[str, int] = {}
        self.notices: list[str] = []  # warnings of the drain thread, for the next call to show
        self.pid = os.getpid()
        self._sids = 0

    def ref(self, run_id: str, key: str) -> int:
        """The ref of ``(run_id, key)`` in the current segment, defining it first if needed.
        The caller holds ``lock``.

        Raises:
            OverflowError: the names area is full; the caller rotates and asks again.
        """
        found = self.refs.get((run_id, key))
        if found is not None:
            return found
        self._sids += 1
        if not self.seg.define(self._sids, run_id, key):
            raise OverflowError("journal names area full")
        ref = self.refs[run_id, key] = self._sids << 2
        return ref

    def put(self, run_id: str, points: Sequence[tuple[str, float, int | None, int]]) -> Segment | None:
        """Copy the points (key, value, step or None, timestamp) of one call into the current
        segment as one group: all or nothing. None when they are in; else the segment that is
        full (or whose names area is) for the caller to replace before trying again."""
        with self.lock:
            seg = self.seg
            i = seg.next
            if i + len(points) > seg.capacity:
                return seg
            try:
                refs = [self.ref(run_id, p[0]) for p in points]
            except OverflowError:
                return seg
            mm, last, base = seg.mm, len(points) - 1, HEADER_SIZE + NAMES
            for n, (_, v, s, ts) in enumerate(points):
                flags = refs[n] | (CONTINUES if n < last else 0)
                if s is None:
                    RECORD.pack_into(mm, base + (i << 5), 0, v, ts, flags | STEP_NONE, i + 1)
                else:
                    RECORD.pack_into(mm, base + (i << 5), s, v, ts, flags, i + 1)
                i += 1
            seg.next = i
            return None

    def forget_run(self, run_id: str) -> None:
        """Make the next log call to ``run_id`` check its status again (it ended, or was refused)."""
        self.running.discard(run_id)
        for pair in [p for p in list(self.refs) if p[0] == run_id]:  # list(): one atomic copy
            self.refs.pop(pair, None)

    @property
    def pending(self) -> bool:
        seg = self.seg
        return seg.done < seg.next

    def abandon(self) -> None:
        """Let go of the file without SQLite (the store was garbage-collected, or this is a forked
        child's copy): delete it only if everything in it is in SQLite already. A file left
        behind is replayed by the next process that opens the database."""
        seg = self.seg
        with contextlib.suppress(OSError, ValueError):
            seg.close(remove=seg.done >= seg.next and os.getpid() == self.pid)
