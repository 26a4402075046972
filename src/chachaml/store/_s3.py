"""Artifact bytes in S3-compatible object storage: ``s3://bucket/prefix`` (extra ``s3``, boto3).

The same duties as ``_files.LocalFiles`` (see ``_artifact_files.ArtifactFiles``), in objects:
layout ``<prefix>/<run_id>/<name>``; a write streams the data through a hashing reader into a
multipart upload under a temporary key (``<prefix>/<run_id>/.chachaml-tmp-<host>-<pid>-<rand>``;
boto3's managed transfer reads a non-seekable stream part by part, so memory is a few parts, not
the file), and ``commit`` copies it to its final key server-side and deletes the temporary one.
The store writes the row only after ``commit``: a crash leaves at worst an object without a row
(an orphan ``gc`` removes), never a row without its object. ``open`` streams the body.

Ownership is proven as for a folder: an empty object ``<prefix>/.chachaml-store-<store id>``
names the one store whose artifacts live under the prefix; ``gc`` deletes only under a prefix
marked with its own id, so a bucket shared with anything else is never taken for orphans.

The endpoint is ``$AWS_ENDPOINT_URL`` when set (MinIO, Ceph, moto...), credentials and region the
usual boto3 chain. boto3 is imported on first use, never by ``import chachaml``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from chachaml._optional import require
from chachaml._process import pid_alive
from chachaml.errors import ArtifactNotFoundError, InvalidValueError, StoreError
from chachaml.rules import TMP_PREFIX
from chachaml.rules import check_artifact_name as check_name
from chachaml.store._files import _HOST, CHUNK, MARKER_PREFIX, STALE_TMP_S, Found, Staged, _tmp_owner

PART = 8 << 20  # bytes per multipart part (S3's minimum is 5 MiB)
CONCURRENCY = 4  # parts in flight: memory is about PART * (CONCURRENCY + 1), whatever the size


class _HashingReader(io.RawIOBase):
    """A non-seekable reader over ``data`` that hashes and counts what passes through it.

    Non-seekable on purpose: boto3 then reads the stream in order, part by part, so the hash is
    that of the uploaded bytes and only the parts in flight are in memory.
    """

    def __init__(self, data: bytes | BinaryIO) -> None:
        self._src: Any = io.BytesIO(data) if isinstance(data, bytes | bytearray | memoryview) else data
        self.sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        readinto = getattr(self._src, "readinto", None)
        if readinto is not None:
            n = readinto(view) or 0
        else:
            piece = self._src.read(len(view))
            n = len(piece)
            view[:n] = piece
        self.sha.update(view[:n])
        self.size += n
        return n


class _Body(io.RawIOBase):
    """A botocore ``StreamingBody`` as a raw binary file (wrapped in a ``BufferedReader``)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        piece = self._body.read(len(view))
        view[: len(piece)] = piece
        return len(piece)

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


# boto3 clients are thread-safe but slow to make (the service model is loaded each time): one
# per process, endpoint and credentials. A forked child makes its own (pid in the key).
_clients: dict[tuple[Any, ...], Any] = {}


def _client(endpoint: str | None) -> Any:
    key = (os.getpid(), endpoint, *(os.environ.get(k) for k in _CREDENTIAL_VARS))
    found = _clients.get(key)
    if found is None:
        boto3 = require("boto3", "s3")
        found = _clients[key] = boto3.session.Session().client("s3", endpoint_url=endpoint)
    return found


_CREDENTIAL_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
)


def parse_s3(uri: str) -> tuple[str, str]:
    """(bucket, prefix without slashes at either end) of ``s3://bucket/prefix``."""
    parts = urlsplit(uri)
    prefix = parts.path.strip("/")
    if parts.scheme != "s3" or not parts.netloc or "//" in prefix or parts.query or parts.fragment:
        raise InvalidValueError(
            f"the artifact location {uri!r} is not an S3 URI; write it s3://bucket or s3://bucket/prefix"
        )
    return parts.netloc, prefix


class S3Objects:
    """The artifact objects of one store under ``s3://bucket/prefix`` (see the module docstring)."""

    local = False

    def __init__(self, uri: str, *, client: Any = None) -> None:
        """Args:
        uri: ``s3://bucket`` or ``s3://bucket/prefix``.
        client: a boto3 S3 client (default: one for ``$AWS_ENDPOINT_URL`` / the boto3 chain).

        Raises:
            InvalidValueError: not an ``s3://`` URI.
            MissingDependencyError: boto3 is not installed (``pip install 'chachaml[s3]'``).
        """
        self.bucket, prefix = parse_s3(uri)
        self.root = f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"
        self._base = prefix + "/" if prefix else ""
        self._botocore = require("botocore.exceptions", "s3")
        self._s3 = client if client is not None else _client(os.environ.get("AWS_ENDPOINT_URL") or None)
        transfer = require("boto3.s3.transfer", "s3")
        self._config = transfer.TransferConfig(
            multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=CONCURRENCY
        )

    def __repr__(self) -> str:
        return f"<S3Objects {self.root}>"

    # -- errors --------------------------------------------------------------------------------
    def _fail(self, exc: Exception, doing: str) -> StoreError:
        hint = "check the bucket exists, $AWS_ENDPOINT_URL, and the credentials (boto3's usual chain)"
        return StoreError(f"object storage {self.root} failed to {doing}: {exc}; {hint}")

    def _code(self, exc: Exception) -> str:
        response = getattr(exc, "response", None) or {}
        return str(response.get("Error", {}).get("Code", ""))

    # -- names ---------------------------------------------------------------------------------
    def key(self, relpath: str) -> str:
        return self._base + relpath

    def final_path(self, run_id: str, name: str) -> str:
        """The object key of an artifact; ``InvalidValueError`` for a bad run id or name."""
        check_name(run_id, "run id")
        if "/" in run_id:
            raise InvalidValueError(f"run id {run_id!r} contains '/'; pass the id of a run")
        return self.key(f"{run_id}/{check_name(name)}")

    # -- writes --------------------------------------------------------------------------------
    def stage(self, run_id: str, name: str, data: bytes | BinaryIO) -> Staged:
        """Upload ``data`` to a temporary key beside its destination, hashing while streaming."""
        final = self.final_path(run_id, name)
        tmp = self.key(f"{run_id}/{TMP_PREFIX}{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}")
        reader = _HashingReader(data)
        try:
            self._s3.upload_fileobj(reader, self.bucket, tmp, Config=self._config)
        except self._botocore.BotoCoreError as exc:
            raise self._fail(exc, f"upload artifact {name!r}") from exc
        except self._botocore.ClientError as exc:
            raise self._fail(exc, f"upload artifact {name!r}") from exc
        return Staged(tmp=tmp, final=final, size=reader.size, sha256=reader.sha.hexdigest())

    def commit(self, staged: Staged, name: str) -> None:
        """Copy the staged object to its final key (server-side, multipart when large)."""
        try:
            self._s3.copy(
                {"Bucket": self.bucket, "Key": staged.tmp}, self.bucket, staged.final, Config=self._config
            )
        except (self._botocore.BotoCoreError, self._botocore.ClientError) as exc:
            raise self._fail(exc, f"store artifact {name!r}") from exc
        self.discard(staged)

    def discard(self, staged: Staged) -> None:
        self._delete([staged.tmp])

    def _delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            try:
                self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except (self._botocore.BotoCoreError, self._botocore.ClientError) as exc:
                raise self._fail(exc, "delete objects") from exc

    # -- reads ---------------------------------------------------------------------------------
    def open(self, relpath: str) -> BinaryIO:
        """The object's bytes, streamed (nothing is read until the caller reads)."""
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self.key(relpath))["Body"]
        except self._botocore.ClientError as exc:
            if self._code(exc) in ("NoSuchKey", "404"):
                raise ArtifactNotFoundError(
                    f"artifact {relpath!r} is recorded, but its object {self.root}/{relpath} is missing "
                    "(deleted outside chachaml?); log it again with overwrite=True, and see "
                    "chachaml.gc_artifacts()"
                ) from exc
            raise self._fail(exc, f"read {relpath!r}") from exc
        except self._botocore.BotoCoreError as exc:
            raise self._fail(exc, f"read {relpath!r}") from exc
        return io.BufferedReader(_Body(body), CHUNK)

    def exists(self, relpath: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=self.key(relpath))
        except self._botocore.ClientError as exc:
            if self._code(exc) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._fail(exc, f"look up {relpath!r}") from exc
        except self._botocore.BotoCoreError as exc:
            raise self._fail(exc, f"look up {relpath!r}") from exc
        return True

    def _list(self, prefix: str, delimiter: str | None = None) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        try:
            yield from self._s3.get_paginator("list_objects_v2").paginate(**kwargs)
        except (self._botocore.BotoCoreError, self._botocore.ClientError) as exc:
            raise self._fail(exc, "list objects") from exc

    # -- ownership (like the folder marker of _files) ------------------------------------------
    def marker_ids(self) -> list[str] | None:
        """Store ids marked under the prefix (``[]``: unmarked)."""
        start = self._base + MARKER_PREFIX
        return sorted(o["Key"][len(start) :] for page in self._list(start) for o in page.get("Contents", ()))

    def mark(self, store_id: str) -> None:
        try:
            self._s3.put_object(Bucket=self.bucket, Key=self._base + MARKER_PREFIX + store_id, Body=b"")
        except (self._botocore.BotoCoreError, self._botocore.ClientError) as exc:
            raise self._fail(exc, "mark the prefix as this store's") from exc

    def holds_run_files(self) -> bool:
        """Whether any object lies below a "folder" of the prefix (where artifacts would go)."""
        return any(page.get("CommonPrefixes") for page in self._list(self._base, "/"))

    def has_marker(self, store_id: str) -> bool:
        return self.exists(MARKER_PREFIX + store_id)

    # -- housekeeping --------------------------------------------------------------------------
    def scan(self) -> Iterator[Found]:
        """Every object under the prefix's run "folders" (what ``gc`` checks against the rows)."""
        now = time.time()
        for page in self._list(self._base):
            for obj in page.get("Contents", ()):
                rel = obj["Key"][len(self._base) :]
                if "/" not in rel:
                    continue  # markers and anything else at the top are not artifacts
                owner = _tmp_owner(rel.rsplit("/", 1)[1])
                abandoned = False
                if owner is not None:
                    host, pid = owner
                    modified: datetime = obj["LastModified"]
                    gone = host == _HOST and pid_alive(pid) is False
                    abandoned = gone or now - modified.timestamp() > STALE_TMP_S
                yield Found(rel, int(obj["Size"]), abandoned, owner is not None)

    def remove(self, relpath: str) -> None:
        self._delete([self.key(relpath)])

    def remove_run(self, run_id: str) -> None:
        """Delete every object of a run (after its rows are gone)."""
        keys = [o["Key"] for page in self._list(self.key(run_id + "/")) for o in page.get("Contents", ())]
        self._delete(keys)

    def prune_empty_dirs(self) -> None:
        """Nothing to do: object storage has no folders."""
