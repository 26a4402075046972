"""Artifact bytes on a local disk: safe names, atomic streamed writes, and the orphan scan.

Layout: ``<root>/<run_id>/<name>``, where ``name`` may contain ``/`` for folders. A write goes
to a temporary file in the destination folder (copied by the kernel or in chunks, then hashed
in chunks, so a 2 GB file never sits in memory) and is renamed into place with ``os.replace``;
the caller records the metadata row afterwards. A crash therefore leaves at worst a file
without a row (an orphan that ``gc`` removes), never a row without its bytes.

Ownership: the root holds an empty folder ``.chachaml-store-<store id>`` naming the one store
whose artifacts it keeps (issue 7). ``gc`` removes files only under a root marked as its own, so
it never takes another store's files, or a folder that was there before, for orphans.

Nothing here knows about SQL, so any backend that keeps bytes on a local disk can reuse it.
The name rules themselves are backend-neutral: ``chachaml.rules.check_artifact_name``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from chachaml._process import HOST, PID_NAMESPACE, pid_alive
from chachaml.errors import ConflictError, InvalidValueError
from chachaml.rules import MAX_NAME, TMP_PREFIX  # noqa: F401 -- re-exported for local backends
from chachaml.rules import check_artifact_name as check_name

CHUNK = 1 << 20  # bytes per read when streaming a file in
STALE_TMP_S = 3600.0  # a temp file untouched this long is abandoned, whoever wrote it
# Who may judge a temporary file's writer by its pid: this host *and* PID namespace (a writer in
# a container has another pid here, issue 7). A writer elsewhere is judged by the file's age.
_HOST = hashlib.sha256(f"{HOST}:{PID_NAMESPACE}".encode()).hexdigest()[:8]
MARKER_PREFIX = ".chachaml-store-"  # + the store id: an empty folder in the root (see above)


def marker_ids(root: str) -> list[str] | None:
    """The store ids marked in ``root`` (``[]``: unmarked), or None if there is no such folder."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return ["(a file, not a folder)"]
    return sorted(n[len(MARKER_PREFIX) :] for n in names if n.startswith(MARKER_PREFIX))


def mark(root: str, store_id: str) -> None:
    """Mark ``root`` (created if needed) as the artifact folder of the store ``store_id``."""
    os.makedirs(os.path.join(root, MARKER_PREFIX + store_id), exist_ok=True)


def holds_run_files(root: str) -> bool:
    """Whether any file lies below a folder of ``root`` (where artifacts would go)."""
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root:
            dirnames[:] = [d for d in dirnames if not d.startswith(MARKER_PREFIX)]
        elif filenames:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Staged:
    """Bytes written to a temporary file, ready to be renamed into place."""

    tmp: str
    final: str
    size: int
    sha256: str


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tmp_owner(filename: str) -> tuple[str, int] | None:
    """(host hash, pid) encoded in a temporary file's name, or None if it is not one of ours."""
    parts = filename[len(TMP_PREFIX) :].split("-")
    if not filename.startswith(TMP_PREFIX) or len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def _kernel_copy(data: BinaryIO, out_fd: int) -> bool:
    """Copy a regular file from its current position into ``out_fd`` inside the kernel.

    False (nothing copied) when ``data`` is not a regular file or the system cannot do it; then
    the caller streams the bytes itself. The source's own file position is left unchanged.
    """
    try:
        fd = data.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        start = pos = data.tell()  # the logical position (a buffered reader may have read ahead)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        return False
    for copy in (getattr(os, "copy_file_range", None), getattr(os, "sendfile", None)):
        if copy is None:
            continue
        try:
            while True:
                if copy is os.sendfile:
                    n = os.sendfile(out_fd, fd, pos, 1 << 30)
                else:
                    n = copy(fd, out_fd, 1 << 30, pos)
                if n == 0:
                    return True
                pos += n
        except OSError:
            if pos != start:
                raise  # failed half-way: the caller deletes the temporary file
            continue  # not supported here (another file system, an old kernel): try the next way
    return False


def _hash_file(path: str) -> tuple[Any, int]:
    """(sha256 object, size) of a file, read in chunks of ``CHUNK`` bytes."""
    h = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(mv):
            h.update(mv[:n])
            size += n
    return h, size


@dataclass(frozen=True, slots=True)
class Found:
    """A file under the artifact folder, as the orphan scan sees it."""

    relpath: str  # relative to the root, '/'-separated: <run_id>/<name>
    size: int
    abandoned_tmp: bool  # a temporary file whose writer is gone (or untouched for an hour)
    is_tmp: bool


class LocalFiles:
    """The artifact folder of one store."""

    def __init__(self, root: str, *, fsync: bool = False) -> None:
        self.root = root
        self.fsync = fsync

    def run_dir(self, run_id: str) -> str:
        check_name(run_id, "run id")
        if "/" in run_id:
            raise InvalidValueError(f"run id {run_id!r} contains '/'; pass the id of a run")
        return os.path.join(self.root, run_id)

    def final_path(self, run_id: str, name: str) -> str:
        """Absolute path of an artifact; refuses names that would resolve outside the run folder.

        Beyond ``check_name``, the resolved path (following symlinks that already exist on
        disk) must stay inside the run's folder.
        """
        run_dir = self.run_dir(run_id)
        path = os.path.join(run_dir, *check_name(name).split("/"))
        real_dir = os.path.realpath(run_dir)
        real = os.path.realpath(path)
        if os.path.commonpath([real_dir, real]) != real_dir or real == real_dir:
            raise InvalidValueError(
                f"artifact name {name!r} resolves to {real!r}, outside the run's folder {real_dir!r} "
                "(a symlink on disk?); choose another name"
            )
        return path

    def stage(self, run_id: str, name: str, data: bytes | BinaryIO) -> Staged:
        """Write ``data`` to a temporary file next to its destination and hash what was written.

        ``data`` is ``bytes`` or a binary file object. A regular file is copied by the kernel
        (``copy_file_range`` / ``sendfile``: no bytes pass through Python) and the temporary
        file is then hashed in chunks, so the recorded sha256 is that of the stored bytes; other
        streams (pipes, sockets, ``BytesIO``) are read, hashed and written in chunks of
        ``CHUNK`` bytes. Either way memory use does not grow with the size of the data.
        """
        final = self.final_path(run_id, name)
        folder = os.path.dirname(final)
        try:
            os.makedirs(folder, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ConflictError(
                f"cannot store artifact {name!r}: part of its folder path is a file "
                f"({exc.filename or folder}); an artifact cannot be both a file and a folder, "
                "choose another name (or run chachaml.gc_artifacts() if that file is a leftover)"
            ) from exc
        tmp = os.path.join(folder, f"{TMP_PREFIX}{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}")
        h = hashlib.sha256()
        size = 0
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        try:
            with open(fd, "wb", buffering=0, closefd=True) as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    view = memoryview(data)
                    h.update(view)
                    size = len(view)
                    while view:  # raw writes may be partial
                        view = view[out.write(view) or 0 :]
                elif _kernel_copy(data, out.fileno()):
                    out.flush()
                    h, size = _hash_file(tmp)
                else:
                    buf = bytearray(CHUNK)
                    mv = memoryview(buf)
                    readinto = getattr(data, "readinto", None)
                    while True:
                        if readinto is not None:
                            n = readinto(mv)
                            if not n:
                                break
                            chunk = mv[:n]
                        else:
                            piece = data.read(CHUNK)
                            if not piece:
                                break
                            chunk = memoryview(piece)
                            n = len(chunk)
                        h.update(chunk)
                        size += n
                        while chunk:
                            chunk = chunk[out.write(chunk) or 0 :]
                if self.fsync:
                    os.fsync(out.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return Staged(tmp=tmp, final=final, size=size, sha256=h.hexdigest())

    def commit(self, staged: Staged, name: str) -> None:
        """Rename the staged file into place (atomic on POSIX and Windows)."""
        try:
            os.replace(staged.tmp, staged.final)
        except IsADirectoryError as exc:
            self.discard(staged)
            raise ConflictError(
                f"cannot store artifact {name!r}: a folder of that name holds other artifacts; "
                "choose another name"
            ) from exc

    @staticmethod
    def discard(staged: Staged) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged.tmp)

    def scan(self) -> Iterator[Found]:
        """Every file under the root's run folders (what ``gc`` checks against the rows)."""
        if not os.path.isdir(self.root):
            return
        now = time.time()
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            if dirpath == self.root:
                dirnames[:] = [d for d in dirnames if not d.startswith(MARKER_PREFIX)]
                continue  # files directly in the root are not ours: leave them alone
            for fn in sorted(filenames):
                full = os.path.join(dirpath, fn)
                try:
                    st = os.lstat(full)
                except FileNotFoundError:
                    continue
                rel = os.path.relpath(full, self.root).replace(os.sep, "/")
                owner = _tmp_owner(fn)
                abandoned = False
                if owner is not None:
                    host, pid = owner
                    gone = host == _HOST and pid_alive(pid) is False  # None: cannot tell, keep it
                    abandoned = gone or now - st.st_mtime > STALE_TMP_S
                yield Found(rel, st.st_size, abandoned, owner is not None)

    def remove(self, relpath: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(self.root, *relpath.split("/")))

    def prune_empty_dirs(self) -> None:
        """Remove empty folders below the root (left after deletions), never the root itself."""
        if not os.path.isdir(self.root):
            return
        for dirpath, _dirs, _files in os.walk(self.root, topdown=False):
            if dirpath != self.root and not os.path.basename(dirpath).startswith(MARKER_PREFIX):
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)  # fails (and is skipped) unless empty

    # -- the ArtifactFiles seam (chachaml.store._artifact_files): what object storage also does --
    local = True

    def open(self, relpath: str) -> BinaryIO:
        """The file's bytes, open for reading (the caller closes it)."""
        return open(os.path.join(self.root, *relpath.split("/")), "rb")

    def exists(self, relpath: str) -> bool:
        return os.path.isfile(os.path.join(self.root, *relpath.split("/")))

    def remove_run(self, run_id: str) -> None:
        """Remove ``<root>/<run_id>`` (after the run's rows are gone)."""
        if not run_id or run_id in (".", "..") or "/" in run_id or "\\" in run_id or "\0" in run_id:
            return  # never leave the artifact folder, whatever an id looks like
        folder = os.path.join(self.root, run_id)
        if os.path.isdir(folder):
            shutil.rmtree(folder)

    def marker_ids(self) -> list[str] | None:
        return marker_ids(self.root)

    def mark(self, store_id: str) -> None:
        mark(self.root, store_id)

    def holds_run_files(self) -> bool:
        return holds_run_files(self.root)

    def has_marker(self, store_id: str) -> bool:
        return os.path.isdir(os.path.join(self.root, MARKER_PREFIX + store_id))
