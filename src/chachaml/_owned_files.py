"""Files owned by one live process, adopted by another once the owner is gone.

The spool of the remote store (ADR-0020) and the write-behind journal of the SQLite store
(ADR-0023) keep one file per process. The owner holds an exclusive ``flock`` on its file for as
long as it lives; the kernel drops the lock when the process dies (``kill -9`` included), so a
process that can take the lock of a file knows its owner is gone and may adopt it. A reused pid
cannot fool this, and neither can a clock.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

__all__ = ["adopt_unowned", "try_lock"]


def try_lock(fd: int) -> bool:
    """Take the exclusive lock of an open file without waiting; False if someone holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: msvcrt locks the first byte instead
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def adopt_unowned(
    folder: str | os.PathLike[str], suffix: str, *, mine: str | None = None, flags: int = os.O_RDWR
) -> Iterator[tuple[str, int]]:
    """The files in ``folder`` whose names end with ``suffix`` and whose owner is gone, each as
    ``(path, fd)`` with ``fd`` open (``flags``) and locked by this process, which now owns the
    file. ``mine`` (a path) is skipped.

    A file whose lock is held belongs to a live process and is left alone; a file that
    disappears meanwhile (its owner finished and removed it, or another adopter did) is skipped.
    The caller closes ``fd`` (which releases the lock).
    """
    folder = os.fspath(folder)
    try:
        names = sorted(os.listdir(folder))
    except OSError:  # no folder (yet), or not a folder
        return
    for name in names:
        path = os.path.join(folder, name)
        if not name.endswith(suffix) or (mine is not None and path == mine):
            continue
        try:
            fd = os.open(path, flags)
        except OSError:
            continue  # removed by its owner or another adopter meanwhile
        if not try_lock(fd):
            os.close(fd)
            continue
        if not os.path.exists(path):  # its last owner finished and removed it after we opened it
            os.close(fd)
            continue
        yield path, fd
