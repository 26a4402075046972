"""Artifacts of the SQLite store: bytes in files next to the database, metadata in ``artifacts``.

The write protocol (``log_artifact``), which keeps the row and the bytes consistent:

1. validate the name and check the run is running -- before a single byte is written;
2. write the bytes to a temporary file in the destination folder and hash what was written
   (a regular file is copied by the kernel, anything else is streamed in chunks; outside any
   lock, so a 1 GB copy does not block other writers);
3. in one ``BEGIN IMMEDIATE`` transaction: check the run again, compare with an existing row
   (same bytes: no-op; other bytes: ``ConflictError`` unless ``overwrite``, and the stored file
   is never touched), rename the temporary file into place, write the row, commit.

A crash before step 3 leaves a temporary file; a crash between the rename and the commit leaves
a file without a row. Both are orphans that ``gc_artifacts`` removes, and never a row without
its bytes. ``gc_artifacts`` takes the same write lock, so it cannot mistake a file that is being
committed for an orphan. The registry lives in ``_sqlite_registry``.

Whose folder (issue 7, docs/adr/0008): each database gets a random store id
(``chachaml_meta('store_id')``) on its first artifact write or ``gc``, and its artifact folder a
marker naming it (``_files.mark``). Writes go only to a folder that is unmarked and empty, or
marked with this id; ``gc`` cleans only a folder marked with this id. A database that held
artifacts before ids existed (``artifacts_before_marker``) adopts its unmarked folder, unless
the sibling store that used to share that folder (``x`` and ``x.db``) exists too.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from chachaml import entities
from chachaml._process import Liveness
from chachaml.errors import ArtifactNotFoundError, InvalidValueError, RunNotFoundError, StoreError
from chachaml.rules import artifact_ancestors, artifact_unchanged, folder_clash
from chachaml.store._sqlite_base import marks
from chachaml.store._sqlite_registry import RegistryMixin

# The file layer (shutil, which imports bz2 and lzma; hashlib; uuid) loads with the first
# artifact, not with every store: a store that only logs metrics never needs it.
if TYPE_CHECKING:
    from chachaml.entities import Artifact, GcReport
    from chachaml.store._artifact_files import ArtifactFiles

_COLS = "run_id, name, path, size, sha256, content_type, format, created"


def _remove_tree(path: str, pid: int) -> None:
    if os.getpid() == pid:  # a forked child never removes its parent's folder
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def _digest(data: bytes) -> str:
    from chachaml.store._files import digest

    return digest(data)


def _artifact(row: Sequence[Any]) -> Artifact:
    return entities.Artifact(
        run_id=row[0],
        name=row[1],
        path=row[2],
        size=row[3],
        sha256=row[4],
        content_type=row[5],
        format=row[6],
        created=row[7],
    )


class ArtifactsMixin(RegistryMixin):
    """Artifact storage; the model registry comes from ``RegistryMixin``."""

    def __init__(
        self, path: str | None, *, is_dead: Liveness | None = None, artifacts: str | None = None
    ) -> None:
        super().__init__(path, is_dead=is_dead)
        # Where the bytes go when chosen at open (a folder or s3://...; docs/adr/0017), else
        # the folder next to the database.
        self._location: ArtifactFiles | None = None
        if artifacts is not None:
            from chachaml.store._artifact_files import open_location

            self._location = open_location(artifacts)
        self._tmp_root: str | None = None
        self._tmp_cleanup: weakref.finalize[Any, Any] | None = None
        self._store_id: str | None = None  # see _identity
        self._recorded: str | None = None  # the location this store recorded or found recorded
        self._legacy: bool | None = None  # held artifacts before store ids existed
        self._marked: str | None = None  # the root last found marked with our id
        self._given = self._location  # what the caller named, to compare with the recorded one
        self._location_read = False  # whether chachaml_meta('artifact_location') was read
        if artifacts is not None and self.path and os.path.isfile(self.path):
            self._recorded_location()  # a different location than the recorded one: refused now

    def _recorded_location(self) -> None:
        """Use the artifact location recorded in the database (``chachaml_meta``), written on
        the first artifact put in a location given with ``artifacts=``: a later ``use_store(path)``
        finds the artifacts without the argument, and a different one is refused."""
        if self._location_read or self.closed or not self.path:  # PostgreSQL: its URL says where
            return
        with self._lock:
            conn = self._connection(create=False)
            if conn is None:
                return
            row = conn.execute("SELECT value FROM chachaml_meta WHERE key = 'artifact_location'").fetchone()
        self._location_read = True
        if row is None:
            return
        recorded = self._recorded = str(row[0])
        if self._given is None:
            from chachaml.store._artifact_files import open_location

            self._location = open_location(recorded)
        elif self._given.root != recorded:
            raise InvalidValueError(
                f"the database {self.uri} keeps its artifacts in {recorded!r}, but it was opened "
                f"with artifacts={self._given.root!r}; open it with artifacts={recorded!r} (or "
                "without artifacts=), or copy it with its artifacts to the new location: "
                f"`chachaml migrate {self.path} NEW.db --artifacts {self._given.root}`"
            )

    def _record_location(self, files: ArtifactFiles) -> None:
        """Record ``files`` as this database's artifact location (before its first artifact)."""
        if not self.path or files is not self._given or self._recorded == files.root:
            return
        with self._tx() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO chachaml_meta (key, value) VALUES ('artifact_location', ?)",
                (files.root,),
            )
        self._location_read = False
        self._recorded_location()  # another process may have recorded another one first
        self._recorded = files.root

    @property
    def artifact_root(self) -> str | None:
        """The artifact folder next to the database (see ``SqliteBase.artifact_root``); for
        ``:memory:``, a temporary folder (created on the first artifact, removed when the store
        is closed), else None. A store without the ``.db`` extension that held artifacts before
        issue 7 keeps its old ``<path>-artifacts``."""
        self._recorded_location()
        if self._location is not None:
            return self._location.root
        root = super().artifact_root
        if root is None:
            return self._tmp_root
        if self.path and not self.path.endswith(".db") and self._held_artifacts_before_markers():
            return self.path + "-artifacts"
        return root

    def _held_artifacts_before_markers(self) -> bool:
        """Whether this database logged artifacts before store ids (and folder markers) existed."""
        if self._legacy is not None:
            return self._legacy
        if self.closed:
            return False  # nothing can be read or written through a closed store anyway
        with self._lock:
            conn = self._connection(create=False)
            if conn is None:
                return False
            row = conn.execute(
                "SELECT value FROM chachaml_meta WHERE key = 'artifacts_before_marker'"
            ).fetchone()
            if row is not None:
                self._legacy = bool(row[0])  # decided for good (see _identity)
                return self._legacy
            # Not decided yet, so nothing logged an artifact since: any row is an old one.
            return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM artifacts)").fetchone()[0])

    def _identity(self) -> str:
        """This database's store id, created (with the legacy decision) on first use."""
        if self._store_id is None:
            with self._tx() as conn:
                # Decided before this store writes its first artifact row: rows then are old.
                conn.execute(
                    "INSERT OR IGNORE INTO chachaml_meta (key, value) "
                    "SELECT 'artifacts_before_marker', EXISTS (SELECT 1 FROM artifacts)"
                )
                conn.execute(
                    "INSERT OR IGNORE INTO chachaml_meta (key, value) "
                    "VALUES ('store_id', random() & 9223372036854775807)"
                )
                meta = dict(
                    conn.execute(
                        "SELECT key, value FROM chachaml_meta "
                        "WHERE key IN ('store_id', 'artifacts_before_marker')"
                    ).fetchall()
                )
            self._legacy = bool(meta["artifacts_before_marker"])
            self._store_id = f"{int(meta['store_id']):016x}"
        return self._store_id

    def _owns(self, files: ArtifactFiles, *, adopt: bool) -> bool | None:
        """Whether ``files`` is this store's artifact location: True (marked with our id, or
        adopted now when ``adopt``), False (another store's, or someone's files), None (an old
        folder of ours shared with a sibling store: usable, never cleaned)."""
        root = files.root
        if self._marked == root and files.has_marker(self._identity()):
            return True
        store_id = self._identity()
        ids = files.marker_ids()
        if ids == [store_id]:
            self._marked = root
            return True
        if ids:  # another store's marker (alone or beside ours: then nobody may clean it)
            return False
        if ids is not None and files.holds_run_files():
            if not self._legacy or self._location is not None:
                return False  # a folder (or prefix) that was there before this store
            if self._shares_old_folder():
                return None
        if adopt:
            files.mark(store_id)
            self._marked = root
        return True

    def _shares_old_folder(self) -> bool:
        """Whether the store that shared this store's folder before issue 7 exists."""
        assert self.path is not None
        stem, ext = os.path.splitext(self.path)
        return os.path.exists(stem if ext == ".db" else self.path + ".db")

    def _claim(self, files: ArtifactFiles) -> None:
        """Make sure artifacts may be written to ``files.root``; raise naming it if not."""
        owned = self._owns(files, adopt=True)
        if owned is not False:
            self._record_location(files)
            return
        ids = files.marker_ids() or []
        if ids:
            from chachaml.store._files import MARKER_PREFIX

            raise StoreError(
                f"cannot store artifacts of {self.uri} in {files.root!r}: that folder belongs to "
                f"another chachaml store (it is marked {MARKER_PREFIX}{ids[0]}, this database is "
                f"store {self._identity()}), and two stores never share an artifact folder; move "
                "that folder away, or keep this database somewhere else"
            )
        raise StoreError(
            f"cannot store artifacts of {self.uri} in {files.root!r}: that folder already holds "
            "files this store did not write, and chachaml does not mix its artifacts with them "
            "(gc_artifacts() could not tell them apart); move or rename that folder, or keep this database "
            "somewhere else"
        )

    def close(self) -> None:
        super().close()
        if self._tmp_cleanup is not None:
            self._tmp_cleanup()  # runs at most once; also registered for interpreter exit

    def _files(self) -> ArtifactFiles:
        self._recorded_location()
        if self._location is not None:
            return self._location
        from chachaml.store._files import LocalFiles, mark

        root = self.artifact_root
        if root is None:
            with self._lock:
                if self._tmp_root is None:
                    import tempfile  # here: only an in-memory store with artifacts needs it

                    self._tmp_root = tempfile.mkdtemp(prefix="chachaml-artifacts-")
                    self._tmp_cleanup = weakref.finalize(self, _remove_tree, self._tmp_root, os.getpid())
                    mark(self._tmp_root, self._identity())
                root = self._tmp_root
        return LocalFiles(root)

    # -- writes --------------------------------------------------------------------------------
    def log_artifact(
        self,
        run_id: str,
        name: str,
        data: bytes | BinaryIO,
        *,
        format: str,
        content_type: str,
        created: int,
        overwrite: bool = False,
    ) -> Artifact:
        """Store ``data`` (bytes, or a binary file read in chunks) as the run's artifact ``name``.

        See the module docstring for the protocol. Returns the stored ``Artifact`` (the existing
        one when identical bytes were already there).
        """
        files = self._files()
        files.final_path(run_id, name)  # InvalidValueError before anything is written
        with self._lock:
            conn = self._write()
            existing = self._loggable(conn, run_id, name)
            if existing is None:
                self._check_folder_clash(conn, run_id, name)
        self._claim(files)  # the folder is this store's (or refused) before a byte goes in
        if (
            existing is not None
            and isinstance(data, bytes | bytearray | memoryview)
            and self._unchanged(existing, _digest(data), format, overwrite)
        ):
            return existing  # identical bytes: nothing is written at all
        staged = files.stage(run_id, name, data)
        try:
            with self._tx() as conn:
                existing = self._loggable(conn, run_id, name)
                if existing is not None and self._unchanged(existing, staged.sha256, format, overwrite):
                    return existing
                self._check_folder_clash(conn, run_id, name)
                files.commit(staged, name)  # the bytes are in place before the row is written
                path = f"{run_id}/{name}"
                conn.execute(
                    f"INSERT INTO artifacts ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (run_id, name) DO UPDATE SET path = excluded.path, size = excluded.size, "
                    "sha256 = excluded.sha256, content_type = excluded.content_type, "
                    "format = excluded.format, created = excluded.created",
                    (run_id, name, path, staged.size, staged.sha256, content_type, format, created),
                )
        finally:
            files.discard(staged)  # a no-op once the rename happened
        return entities.Artifact(
            run_id, name, staged.size, staged.sha256, content_type, format, created, path
        )

    def _loggable(self, conn: sqlite3.Connection, run_id: str, name: str) -> Artifact | None:
        """The existing row for ``name`` (or None); raises unless the run is running."""
        try:
            row = conn.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or row[0] != "running":
                self._raise_not_running(conn, run_id, f"log artifact {name!r} to", accepts="artifacts")
            found = conn.execute(
                f"SELECT {_COLS} FROM artifacts WHERE run_id = ? AND name = ?", (run_id, name)
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return None if found is None else _artifact(found)

    @staticmethod
    def _unchanged(existing: Artifact, sha256: str, fmt: str, overwrite: bool) -> bool:
        """True if the new bytes are what is stored; raises ``ConflictError`` if they differ."""
        stored = (existing.sha256, existing.format, existing.size)
        return artifact_unchanged(existing.run_id, existing.name, stored, sha256, fmt, overwrite)

    @staticmethod
    def _check_folder_clash(conn: sqlite3.Connection, run_id: str, name: str) -> None:
        """An artifact cannot be both a file and a folder of other artifacts."""
        ancestors = artifact_ancestors(name)
        clash = None
        if ancestors:
            clash = conn.execute(
                f"SELECT name FROM artifacts WHERE run_id = ? AND name IN ({marks(len(ancestors))})",
                (run_id, *ancestors),
            ).fetchone()
        if clash is None:
            clash = conn.execute(
                "SELECT name FROM artifacts WHERE run_id = ? AND substr(name, 1, ?) = ? LIMIT 1",
                (run_id, len(name) + 1, name + "/"),
            ).fetchone()
        if clash is not None:
            raise folder_clash(run_id, name, clash[0])

    # -- reads ---------------------------------------------------------------------------------
    def get_artifact(self, run_id: str, name: str) -> Artifact:
        with self._reading() as conn:
            row = None
            if conn is not None:
                row = conn.execute(
                    f"SELECT {_COLS} FROM artifacts WHERE run_id = ? AND name = ?", (run_id, name)
                ).fetchone()
            if row is None:
                self._no_artifact(conn, run_id, name)
            return _artifact(row)

    def _no_artifact(self, conn: sqlite3.Connection | None, run_id: str, name: str) -> NoReturn:
        if conn is None or conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise RunNotFoundError(
                f"no run has the id {run_id!r} in {self.uri}; check it with chachaml.runs()"
            )
        has = self._artifacts_hint(conn, run_id)
        raise ArtifactNotFoundError(
            f"run {run_id[:8]} has no artifact {name!r} ({has}); "
            f"list them with chachaml.list_artifacts({run_id[:8]!r})"
        )

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        with self._reading() as conn:
            if conn is None or conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise RunNotFoundError(
                    f"no run has the id {run_id!r} in {self.uri}; check it with chachaml.runs()"
                )
            return [
                _artifact(r)
                for r in conn.execute(
                    f"SELECT {_COLS} FROM artifacts WHERE run_id = ? ORDER BY name", (run_id,)
                )
            ]

    def artifact_path(self, run_id: str, name: str) -> str:
        """The absolute path of the artifact's file (``ArtifactNotFoundError`` if there is no row)."""
        art = self.get_artifact(run_id, name)
        files = self._files()
        if not files.local:
            raise StoreError(
                f"artifact {name!r} of run {run_id[:8]} is in object storage ({files.root}), not in "
                "a file on this machine; read it with chachaml.load_artifact(), or stream it with "
                "Client.open_artifact()"
            )
        return os.path.join(files.root, *art.path.split("/"))

    def open_artifact(self, run_id: str, name: str) -> BinaryIO:
        """The artifact's bytes as a binary file open for reading (the caller closes it)."""
        art = self.get_artifact(run_id, name)
        files = self._files()
        path = os.path.join(files.root, *art.path.split("/")) if files.local else files.root
        try:
            return files.open(art.path)  # the caller closes it
        except FileNotFoundError as exc:
            raise ArtifactNotFoundError(
                f"artifact {name!r} of run {run_id[:8]} is recorded, but its file {path!r} is missing "
                "(deleted outside chachaml?); log it again with overwrite=True, and see "
                "chachaml.gc_artifacts()"
            ) from exc

    # -- housekeeping ----------------------------------------------------------------------------
    def gc_artifacts(self, *, dry_run: bool = False) -> GcReport:
        """Remove orphan files: bytes without a row, and abandoned temporary files.

        Files are listed first, then checked against the rows and deleted while holding the
        write lock, so a file being committed by another writer is never taken for an orphan.
        """
        root = self.artifact_root
        if root is None or (self._location is None and not os.path.isdir(root)):
            return entities.GcReport(dry_run=dry_run)
        files = self._files()
        # Only files of a folder proven to be this store's may go (issue 7): another store's
        # folder, or one that was there before, is left alone whatever it holds.
        owned = self._owns(files, adopt=not dry_run) is True
        found = list(files.scan()) if owned else []
        with self._tx() as conn:
            known = {p for (p,) in conn.execute("SELECT path FROM artifacts")}
            orphans = [f for f in found if (f.abandoned_tmp if f.is_tmp else f.relpath not in known)]
            # Only rows whose bytes the scan did not see are looked up (one request each in
            # object storage), under the lock, so a commit that raced the scan is not "missing".
            seen = {f.relpath for f in found}
            missing = sorted(p for p in known if p not in seen and not files.exists(p))
            if not dry_run:
                for f in orphans:
                    files.remove(f.relpath)
        if owned and not dry_run:
            files.prune_empty_dirs()
        return entities.GcReport(
            removed=tuple(f.relpath for f in orphans),
            freed_bytes=sum(f.size for f in orphans),
            missing=tuple(missing),
            dry_run=dry_run,
        )
