"""A durable, append-only journal of metric batches on their way to a store (ADR-0020).

The remote store (``chachaml.store.remote``) writes every log call here before it returns and
a sender ships the points later; the local store can use the same journal as a write-behind log
(issue 12). One journal is one file owned by one process, under a folder per destination::

    $XDG_STATE_HOME/chachaml/<sha256 of the destination>[:16]/<host>-<pid>-<start>.spool

Record format: JSON lines (UTF-8, one object per line, ``\\n`` terminated; NaN and infinities
as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``). A last line without its ``\\n`` is a
write cut short by a crash and is ignored:

* ``{"p": seq, "r": run_id, "m": [[key, value, step|null, ts], ...]}`` -- the points of one log
  call; ``seq`` counts up from 1 in this file.
* ``{"g": batch_id, "r": run_id, "lo": seq, "hi": seq}`` -- the points ``lo..hi`` of one run
  form the batch ``batch_id``; written before the batch is first sent, so a resend (by this
  process or an adopter) uses the same id and the destination can ignore a repeat.
* ``{"a": batch_id}`` -- the destination has the batch (``"e": {...}`` when it refused it for
  good, with the error's wire form).

Ownership: the owner holds an exclusive ``flock`` on its file for as long as it lives; the
kernel drops the lock when the process dies (``kill -9`` included), so a process that can take
the lock of another file knows its owner is gone and adopts it (pid reuse cannot fool this).
Durability: each record is written with one ``os.write`` before the log call returns (it
survives the process being killed); ``fsync`` is called on group records and on ``flush``, or
on every record with ``CHACHAML_SPOOL_FSYNC=always`` (then it survives a power cut too).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chachaml._owned_files import adopt_unowned, try_lock

__all__ = ["Group", "Spool", "adopt_dead", "moved_progress", "spool_folder"]

#: One point as the journal keeps it: (key, value, step or None, timestamp ms).
Point = tuple[str, float, "int | None", int]

_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
COMPACT_BYTES = 8 * 1024 * 1024  # start a fresh file once everything is acked and it is this big


def spool_folder(destination: str, root: str | None = None) -> Path:
    """The folder holding every journal for ``destination`` (a server URL) on this machine,
    under ``root`` (default ``$XDG_STATE_HOME``, else ``~/.local/state``)."""
    base = (
        root or os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    )
    digest = hashlib.sha256(destination.rstrip("/").encode("utf-8")).hexdigest()[:16]
    return Path(base) / "chachaml" / digest


def _num(value: float) -> Any:
    if math.isfinite(value):
        return value
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


def _unnum(value: Any) -> float:
    return _WORDS[value] if isinstance(value, str) else float(value)


@dataclass
class Group:
    """Points ``lo..hi`` of one run, sent as one batch with the id ``batch_id``."""

    batch_id: str
    run_id: str
    lo: int
    hi: int
    points: list[Point]


class Spool:
    """One journal file, owned (locked) by this process. Thread-safe.

    Args:
        path: the file; created if missing, read back (records of a dead owner) if present.
        fd: an open descriptor already locked by the caller (``adopt_dead``), else None.

    Raises:
        OSError: the folder cannot be created or the file opened.
    """

    def __init__(self, path: Path, fd: int | None = None) -> None:
        self.path = path
        if fd is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            if not try_lock(fd):  # a fresh name per process: only a bug makes this happen
                os.close(fd)
                raise OSError(f"spool {path} is locked by another process")
        self._fd: int | None = fd
        self._lock = threading.Lock()
        self._always = os.environ.get("CHACHAML_SPOOL_FSYNC", "").lower() == "always"
        self.seq = 0
        self._points: dict[int, tuple[str, list[Point]]] = {}  # seq -> (run, points), not grouped
        self._groups: dict[str, Group] = {}  # sent or to send, not acked yet
        self.rejected: list[tuple[Group, dict[str, Any]]] = []
        self.moved: dict[str, int] = {}  # journal id -> the slot after its last point moved here
        self._replay()

    # -- reading back -------------------------------------------------------------------------
    def _replay(self) -> None:
        with open(self.path, "rb") as fh:
            data = fh.read()
        if data and not data.endswith(b"\n"):  # a torn last record: drop it and start clean
            os.ftruncate(self._fd, data.rfind(b"\n") + 1)  # type: ignore[arg-type]
            data = data[: data.rfind(b"\n") + 1]
        grouped: dict[int, str] = {}
        for line in data.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "j" in rec:  # progress of a memory-mapped journal (store._remote_buffer)
                self.moved[rec["j"]] = max(self.moved.get(rec["j"], 0), int(rec["hi"]))
            if "p" in rec:
                pts = [(k, _unnum(v), s, int(t)) for k, v, s, t in rec["m"]]
                self._points[int(rec["p"])] = (rec["r"], pts)
                self.seq = max(self.seq, int(rec["p"]))
            elif "g" in rec:
                group = Group(rec["g"], rec["r"], int(rec["lo"]), int(rec["hi"]), [])
                self._groups[group.batch_id] = group
                for s in range(group.lo, group.hi + 1):
                    grouped[s] = group.batch_id
            elif "a" in rec:
                group_done = self._groups.pop(rec["a"], None)
                if group_done is not None:
                    for s in range(group_done.lo, group_done.hi + 1):
                        self._points.pop(s, None)
                        grouped.pop(s, None)
        for s in sorted(grouped):
            run, pts = self._points.pop(s, ("", []))
            group = self._groups[grouped[s]]
            if run == group.run_id:
                group.points.extend(pts)
        for g in [g for g in self._groups.values() if not g.points]:
            del self._groups[g.batch_id]  # every point of it was acked under another id: nothing left

    # -- writing ------------------------------------------------------------------------------
    def _write(self, rec: dict[str, Any], sync: bool) -> None:
        if self._fd is None:
            raise OSError(f"spool {self.path} is closed")
        os.write(self._fd, json.dumps(rec, separators=(",", ":")).encode("utf-8") + b"\n")
        if sync or self._always:
            os.fsync(self._fd)

    def append(self, run_id: str, points: Sequence[Point], source: tuple[str, int] | None = None) -> int:
        """Journal the points of one log call; returns its sequence number (durable on return).
        ``source``: the points come from a memory-mapped journal (its id, the slot after them),
        recorded in the same line so a move is applied once (``store._remote_buffer``)."""
        pts = [(k, float(v), s, int(t)) for k, v, s, t in points]
        with self._lock:
            self.seq += 1
            rec: dict[str, Any] = {
                "p": self.seq,
                "r": run_id,
                "m": [[k, _num(v), s, t] for k, v, s, t in pts],
            }
            if source is not None:
                rec["j"], rec["hi"] = source
            self._write(rec, False)
            if source is not None:
                self.moved[source[0]] = source[1]
            self._points[self.seq] = (run_id, pts)
            return self.seq

    def groups(self, max_points: int = 5000) -> list[Group]:
        """The batches to send now, oldest first: those sent before and not acked, then new ones
        made of consecutive records of one run (each recorded before it is returned)."""
        with self._lock:
            out = sorted(self._groups.values(), key=lambda g: g.lo)
            current: Group | None = None
            made: list[Group] = []
            for s in sorted(self._points):
                run, pts = self._points[s]
                if current is None or current.run_id != run or len(current.points) >= max_points:
                    current = Group(uuid.uuid4().hex, run, s, s, [])
                    made.append(current)
                current.hi = s
                current.points.extend(pts)
            for g in made:
                self._write({"g": g.batch_id, "r": g.run_id, "lo": g.lo, "hi": g.hi}, False)
                self._groups[g.batch_id] = g
            if made:
                os.fsync(self._fd)  # type: ignore[arg-type]
            self._points.clear()
            return out + made

    def ack(self, group: Group, error: dict[str, Any] | None = None) -> None:
        """Record that the destination has ``group`` (or refused it for good: ``error``)."""
        with self._lock:
            rec: dict[str, Any] = {"a": group.batch_id}
            if error is not None:
                rec["e"] = error
                self.rejected.append((group, error))
            self._write(rec, False)
            self._groups.pop(group.batch_id, None)
            self._maybe_compact()

    def _maybe_compact(self) -> None:
        if self._points or self._groups or self._fd is None:
            return
        if os.fstat(self._fd).st_size >= COMPACT_BYTES:
            os.ftruncate(self._fd, 0)  # everything in it is acked: nothing is lost
            folder = self.path.parent  # but the progress of a journal that still exists is kept
            self.moved = {j: hi for j, hi in self.moved.items() if (folder / f"{j}.journal").exists()}
            for jid, hi in self.moved.items():
                self._write({"j": jid, "hi": hi}, False)

    @property
    def pending(self) -> int:
        """Points not yet acknowledged by the destination."""
        with self._lock:
            return sum(len(p) for _, p in self._points.values()) + sum(
                len(g.points) for g in self._groups.values()
            )

    def sync(self) -> None:
        """``fsync`` the file (every record so far survives a power cut)."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self, *, remove_if_done: bool = True) -> None:
        """Release the lock; delete the file when nothing in it is pending (idempotent)."""
        with self._lock:
            if self._fd is None:
                return
            journals = [self.path.parent / f"{jid}.journal" for jid in self.moved]
            if (
                remove_if_done
                and not self._points
                and not self._groups
                and not any(p.exists() for p in journals)
            ):
                with contextlib.suppress(OSError):  # (a journal's progress stays while it exists)
                    self.path.unlink()
            os.close(self._fd)
            self._fd = None


def new_spool(folder: Path) -> Spool:
    """A fresh journal for this process in ``folder`` (named host-pid-start, for people)."""
    from chachaml._process import owner

    me = owner()
    start = "".join(c if c.isalnum() else "_" for c in me.proc_start)[-24:]
    host = "".join(c if c.isalnum() or c in "-." else "_" for c in socket.gethostname())[:40]
    return Spool(folder / f"{host}-{me.pid}-{start}-{uuid.uuid4().hex[:8]}.spool")


def adopt_dead(folder: Path, mine: Path | None = None) -> Iterator[Spool]:
    """The journals in ``folder`` whose owner is gone, locked by (and now owned by) this process.

    A file whose lock is held belongs to a live process and is left alone (``chachaml._owned_files``).
    """
    own = None if mine is None else os.fspath(mine)
    for path, fd in adopt_unowned(folder, ".spool", mine=own, flags=os.O_RDWR | os.O_APPEND):
        yield Spool(Path(path), fd)


def moved_progress(folder: str | os.PathLike[str]) -> dict[str, int]:
    """The progress of every memory-mapped journal recorded by the spools in ``folder`` (read
    without their locks: a line is whole or ignored): journal id -> the slot after its last
    point moved into a spool."""
    done: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if not name.endswith(".spool"):
                continue
            with contextlib.suppress(OSError), open(os.path.join(folder, name), "rb") as fh:
                for line in fh:
                    if b'"j":' not in line or not line.endswith(b"\n"):
                        continue
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        rec = json.loads(line)
                        done[rec["j"]] = max(done.get(rec["j"], 0), int(rec["hi"]))
    return done
