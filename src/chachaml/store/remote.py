"""The remote store: the store contract over a chachaml tracking server (SPEC 10, ADR-0020).

``use_store("http://host:port", token=...)`` (or ``$CHACHAML_TOKEN``) opens one; the ``Client``
and every module verb work over it unchanged. Each store method is one call to
``POST /api/v1/store/<method>`` (``chachaml.web._store_rpc``), except:

* **metric points of a run this store started or resumed** (``log_metric``, and ``log_batch``
  with only metrics) go to the local spool (``chachaml.spool``) before the call returns, and a
  background sender ships them in batches with ids, so a resend is ignored by the server;
* every other call first waits until the server has this process's earlier points, so a run's
  reads see its writes and ``end_run`` ends a run whose points have all arrived;
* artifact bytes stream with ``PUT``/``GET`` (``_http_client``), ``restore_artifact``'s too.

``restore_run`` reads its points into a temporary file first (a source failing mid-copy sends
nothing) and streams them in one ``PUT`` of JSON lines, of any length, in one transaction there.

An error the server gives a spooled batch (401/403 included) is never dropped: the sender
stops on a refused token, and the next log call, ``flush()`` or read raises it.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, BinaryIO

from chachaml.entities import (
    Artifact,
    Dataset,
    Experiment,
    GcReport,
    Metric,
    Model,
    ModelEvent,
    ModelVersion,
    Run,
)
from chachaml.errors import AccessError, ChachamlError, RunStateError, StoreError
from chachaml.spool import Group, Spool, adopt_dead, new_spool, spool_folder
from chachaml.store._http_client import HttpClient, Unreachable, filter_json, lines_body, sized_body
from chachaml.store._remote_automation import RemoteAutomation
from chachaml.store._remote_buffer import SpoolBuffer, adopt_journals
from chachaml.store.base import MetricIn, NewRun, Owner, RunFilter

__all__ = ["RemoteStore", "open_remote"]

#: How long ``flush()`` (and so ``end_run`` and every read) waits for an unreachable server.
FLUSH_TIMEOUT_S = float(os.environ.get("CHACHAML_FLUSH_TIMEOUT", "600"))
#: How long the sender waits for the reply to one batch before resending it (same id).
SEND_TIMEOUT_S = float(os.environ.get("CHACHAML_SEND_TIMEOUT", "10"))
#: How long the sender lets points gather before a send (unless someone waits for them): fewer,
#: larger batches -- one HTTP request and one transaction carry many points.
LINGER_S = 0.05
BUFFER_KICK = 4096  # points waiting in the mapping that wake the sender (it also looks every second)


def open_remote(
    target: str, *, token: str | None = None, spool_root: str | None = None, **options: Any
) -> RemoteStore:
    """The ``http``/``https`` factory of ``chachaml.store.SCHEMES``."""
    return RemoteStore(target, token=token, spool_root=spool_root)


class RemoteStore(RemoteAutomation):
    """A ``Store`` backed by a chachaml server (see the module docstring).

    Args:
        url: ``http(s)://host:port``.
        token: the bearer token (default ``$CHACHAML_TOKEN``).
        adopt: send the spools that dead processes left for this server (default True).
        spool_root: the state folder (default ``$XDG_STATE_HOME``, else ``~/.local/state``).
    """

    def __init__(
        self, url: str, *, token: str | None = None, adopt: bool = True, spool_root: str | None = None
    ) -> None:
        self.uri = url.rstrip("/")
        token = token if token is not None else os.environ.get("CHACHAML_TOKEN")
        self._http = HttpClient(self.uri, token)
        # The sender's own client, with a short timeout: a batch whose reply never comes (a
        # half-open connection) is resent with its id rather than waited on for a minute.
        self._sender_http = HttpClient(self.uri, token, timeout=SEND_TIMEOUT_S)
        self._closed = False
        self._running: set[str] = set()  # runs this store started or resumed: their points spool
        self._folder = spool_folder(self.uri, spool_root)
        self._spool: Spool | None = None
        self._adopted: list[Spool] = list(adopt_dead(self._folder)) if adopt else []
        self._buffer = SpoolBuffer(str(self._folder), self._own_spool)  # log calls copy in here
        if adopt:
            adopt_journals(str(self._folder), self._own_spool)
        self._cond = threading.Condition()
        self._wake = False
        self._fatal: ChachamlError | None = None  # a refused token: sending stops
        self._problem = False  # something for _raise_problems: log_metric's hot path steps aside
        self._urgent = threading.Event()  # someone waits (flush, a read, close): send at once
        self._sender: threading.Thread | None = None
        atexit.register(_close_at_exit, weakref.ref(self))
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _after_fork(ref))
        if self._pending():
            self._kick()

    # -- spool and sender -----------------------------------------------------------------------
    def _spools(self) -> list[Spool]:
        return [*self._adopted, *([self._spool] if self._spool is not None else [])]

    def _kick(self) -> None:
        with self._cond:
            self._wake = True
            if self._sender is None or not self._sender.is_alive():
                self._sender = threading.Thread(target=self._send_loop, name="chachaml-sender", daemon=True)
                self._sender.start()
            self._cond.notify_all()

    def _send_loop(self) -> None:
        delay = 0.05
        while True:
            with self._cond:
                while not self._wake and not self._closed:
                    self._cond.wait(1.0)
                    if self._pending() and self._fatal is None:
                        break
                if self._closed:
                    return  # close() waited already; what is left stays in the spool for adoption
                self._wake = False
            if self._fatal is not None:
                continue  # a refused token: keep the points, send nothing until closed
            self._urgent.wait(LINGER_S)
            try:
                self._send_all()
                delay = 0.05
            except Unreachable:
                time.sleep(delay)  # the server is down or restarting: the spool keeps everything
                delay = min(delay * 2, 2.0)
                with self._cond:
                    self._wake = True
            with self._cond:
                self._cond.notify_all()

    def _send_all(self) -> None:
        self._buffer.move()
        for spool in self._spools():
            for group in spool.groups():
                self._send(spool, group)
            if spool is not self._spool and not spool.pending:
                spool.close()  # an adopted spool fully sent: its file goes
                self._adopted.remove(spool)

    def _send(self, spool: Spool, group: Group) -> None:
        args = {
            "run_id": group.run_id,
            "metrics": [list(p) for p in group.points],
            "batch_id": group.batch_id,
        }
        try:
            self._sender_http.call("log_batch", args, idempotent=True)
        except AccessError as exc:
            self._fatal = exc
            self._problem = True
            raise Unreachable(str(exc)) from exc
        except StoreError as exc:  # 5xx: the server or its database failed, not the batch
            raise Unreachable(str(exc)) from exc  # kept in the spool and sent again (same id)
        except ChachamlError as exc:  # refused for good (the run was ended or deleted elsewhere)
            from chachaml.errors import error_to_dict

            spool.ack(group, error_to_dict(exc))
            self._problem = True  # the next log call takes the long way, which raises it
            return
        spool.ack(group)

    def _pending(self) -> int:
        return self._buffer.pending + sum(s.pending for s in self._spools())

    def _raise_problems(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        for spool in self._spools():
            if spool.rejected:
                group, err = spool.rejected.pop(0)
                from chachaml.errors import error_from_dict

                exc = error_from_dict(err)
                raise type(exc)(
                    f"{len(group.points)} metric point(s) of run {group.run_id[:8]} were refused by "
                    f"the server: {exc}"
                ) from None

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the server has every point this process (and the dead ones it adopted)
        logged; raise what the server refused.

        Raises:
            AccessError: the server refused the token (the points stay in the spool).
            StoreError: the server stayed unreachable for ``timeout`` seconds
                (``$CHACHAML_FLUSH_TIMEOUT``, default 600); the points stay in the spool.
        """
        self._raise_problems()
        if not self._pending():
            return
        deadline = time.monotonic() + (FLUSH_TIMEOUT_S if timeout is None else timeout)
        self._urgent.set()
        self._kick()
        with self._cond:
            while self._pending() and self._fatal is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StoreError(
                        f"the server at {self.uri} did not take {self._pending()} metric point(s) "
                        f"in time; they are kept in {self._folder} and sent by the next process "
                        f"using this server or by `chachaml sync --store {self.uri}`"
                    )
                self._cond.wait(min(left, 0.5))
        self._urgent.clear()
        self._raise_problems()

    def _own_spool(self) -> Spool:
        if self._spool is None:
            self._spool = new_spool(self._folder)
        return self._spool

    def _spooled(self, run_id: str, points: Sequence[MetricIn]) -> None:
        self._check_open()
        self._raise_problems()
        if self._buffer.append(run_id, points):  # in the mapping: durable, the sender moves it
            if self._sender is None or self._buffer.pending >= BUFFER_KICK:
                self._kick()
            return
        self._buffer.move()  # what is in the mapping goes first: points stay in logging order
        self._own_spool().append(run_id, points)
        self._kick()

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise RunStateError(f"the remote store {self.uri} is closed; open it again with use_store()")

    def _call(self, method: str, idempotent: bool = True, **args: Any) -> Any:
        self._check_open()
        self.flush()
        return self._http.call(method, args, idempotent=idempotent)

    def close(self) -> None:
        """Send what is left (waiting as ``flush``), then release the spool (idempotent)."""
        if self._closed:
            return
        try:
            if self._fatal is None:
                try:
                    self.flush(timeout=min(2.0, FLUSH_TIMEOUT_S))
                except StoreError as slow:
                    if isinstance(slow, AccessError) or not self._pending():
                        raise
                    print(
                        f"chachaml: waiting for {self.uri} to take {self._pending()} metric point(s), "
                        f"up to {FLUSH_TIMEOUT_S:.0f} s (CHACHAML_FLUSH_TIMEOUT); Ctrl-C leaves them "
                        f"in the spool for the next process or `chachaml sync`",
                        file=sys.stderr,
                        flush=True,
                    )
                    self.flush()
        except ChachamlError as exc:
            print(f"chachaml: {exc}", file=sys.stderr)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            self._buffer.close()  # moved into the spool, then deleted
            for spool in self._spools():
                spool.sync()
                spool.close()
            self._http.close()
            self._sender_http.close()

    def __repr__(self) -> str:
        return f"<RemoteStore {self.uri}>"

    # -- run lifecycle ----------------------------------------------------------------------------
    def create_run(self, new: NewRun) -> Run:
        d = asdict(new)
        d["tags"], d["env"] = dict(new.tags), dict(new.env)
        run = Run.from_dict(self._call("create_run", idempotent=False, new=d))
        self._running.add(run.id)
        return run

    def resume_run(self, run_id: str, owner: Owner, now: int) -> Run:
        run = Run.from_dict(self._call("resume_run", run_id=run_id, owner=asdict(owner), now=now))
        self._running.add(run.id)
        return run

    def end_run(
        self, run_id: str, status: str, end_time: int, error: Mapping[str, str] | None = None
    ) -> bool:
        ended = bool(
            self._call(
                "end_run", run_id=run_id, status=status, end_time=end_time, error=error and dict(error)
            )
        )
        self._running.discard(run_id)
        return ended

    def heartbeat(self, run_ids: Sequence[str], now: int) -> None:
        self._check_open()
        self._http.call("heartbeat", {"run_ids": list(run_ids), "now": now})

    # -- writes -----------------------------------------------------------------------------------
    def log_batch(
        self,
        run_id: str,
        *,
        params: Mapping[str, str] | None = None,
        metrics: Sequence[MetricIn] = (),
        tags: Mapping[str, str] | None = None,
        overwrite: bool = False,
        batch_id: str | None = None,
    ) -> bool:
        if metrics and not params and not tags and batch_id is None and run_id in self._running:
            self._spooled(run_id, metrics)
            return True
        args: dict[str, Any] = {
            "run_id": run_id,
            "metrics": [list(m) for m in metrics],
            "overwrite": overwrite,
        }
        if params:
            args["params"] = dict(params)
        if tags:
            args["tags"] = dict(tags)
        if batch_id is not None:
            args["batch_id"] = batch_id
        return bool(self._call("log_batch", idempotent=batch_id is not None or not metrics, **args))

    def log_metric(self, run_id: str, key: str, value: float, step: int | None, ts: int) -> None:
        if run_id in self._running and not self._closed:
            # The hot path: no problem to report yet, the point copied into the mapped journal.
            if not self._problem and self._buffer.append1(run_id, key, value, step, ts):
                if self._sender is None or self._buffer.pending >= BUFFER_KICK:
                    self._kick()
                return
            self._spooled(run_id, [(key, value, step, ts)])
        else:
            self.log_batch(run_id, metrics=[(key, value, step, ts)])

    def delete_tag(self, run_id: str, key: str) -> None:
        self._call("delete_tag", run_id=run_id, key=key)

    def set_note(self, run_id: str, note: str) -> None:
        self._call("set_note", run_id=run_id, note=note)

    def log_dataset(self, run_id: str, dataset: Dataset) -> None:
        self._call("log_dataset", idempotent=False, run_id=run_id, dataset=dataset.to_dict())

    def create_experiment(
        self, name: str, description: str | None, owner: str | None, now: int
    ) -> Experiment:
        return Experiment.from_dict(
            self._call("create_experiment", name=name, description=description, owner=owner, now=now)
        )

    # -- reads --------------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run:
        return Run.from_dict(self._call("get_run", run_id=run_id))

    def find_runs(self, flt: RunFilter) -> list[Run]:
        return [Run.from_dict(r) for r in self._call("find_runs", flt=filter_json(flt))]

    def metric_history(self, run_id: str, key: str, *, after_step: int | None = None) -> list[Metric]:
        found = self._call("metric_history", run_id=run_id, key=key, after_step=after_step)
        return [Metric.from_dict(m) for m in found]

    def metric_window(
        self,
        run_id: str,
        key: str,
        *,
        after_step: int | None = None,
        before_step: int | None = None,
        max_points: int | None = None,
    ) -> tuple[list[Metric], int]:
        bounds: dict[str, Any] = {"before_step": before_step, "max_points": max_points}
        points, count = self._call("metric_window", run_id=run_id, key=key, after_step=after_step, **bounds)
        return [Metric.from_dict(m) for m in points], int(count)

    def metric_summaries(self, run_id: str) -> dict[str, dict[str, Any]]:
        return dict(self._call("metric_summaries", run_id=run_id))

    def experiments(self) -> list[Experiment]:
        return [Experiment.from_dict(e) for e in self._call("experiments")]

    def best_run(self, flt: RunFilter, key: str, mode: str) -> Run | None:
        found = self._call("best_run", flt=filter_json(flt), key=key, mode=mode)
        return None if found is None else Run.from_dict(found)

    def delete_run(self, run_id: str) -> None:
        self._call("delete_run", run_id=run_id)
        self._running.discard(run_id)

    def delete_experiment(self, name: str) -> int:
        return int(self._call("delete_experiment", name=name))

    def archive_runs(
        self, archived: bool, *, experiment: str | None = None, started_before: int | None = None
    ) -> int:
        return int(
            self._call(
                "archive_runs", archived=archived, experiment=experiment, started_before=started_before
            )
        )

    # -- artifacts ----------------------------------------------------------------------------------
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
        self._check_open()
        self.flush()
        body, size, temp = sized_body(data)
        try:
            query = {"format": format, "content_type": content_type, "created": created}
            if overwrite:
                query["overwrite"] = "true"
            return Artifact.from_dict(self._http.upload(run_id, name, body, size, query))
        finally:
            if temp is not None:
                temp.close()

    def get_artifact(self, run_id: str, name: str) -> Artifact:
        return Artifact.from_dict(self._call("get_artifact", run_id=run_id, name=name))

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        return [Artifact.from_dict(a) for a in self._call("list_artifacts", run_id=run_id)]

    def open_artifact(self, run_id: str, name: str) -> BinaryIO:
        self._check_open()
        self.flush()
        self.get_artifact(run_id, name)  # the store's own not-found errors, before any bytes
        return self._http.download(run_id, name)

    def restore_artifact(self, artifact: Artifact, data: bytes | BinaryIO) -> Artifact:
        self._check_open()
        self.flush()
        body, size, temp = sized_body(data)
        try:
            query = {"restore": "true", "sha256": artifact.sha256, "size": artifact.size,
                     "format": artifact.format, "content_type": artifact.content_type,
                     "created": artifact.created}  # fmt: skip
            return Artifact.from_dict(self._http.upload(artifact.run_id, artifact.name, body, size, query))
        finally:
            if temp is not None:
                temp.close()

    def gc_artifacts(self, *, dry_run: bool = False) -> GcReport:  # pragma: no cover - not a role
        raise StoreError("garbage collection runs on the server: `chachaml gc --store <server's store>`")

    # -- registry -----------------------------------------------------------------------------------
    def register_model(
        self,
        name: str,
        *,
        run_id: str,
        artifact: str,
        stage: str = "none",
        description: str | None = None,
        who: str | None = None,
        now: int,
    ) -> ModelVersion:
        found = self._call("register_model", idempotent=False, name=name, run_id=run_id, artifact=artifact,
                           stage=stage, description=description, who=who, now=now)  # fmt: skip
        return ModelVersion.from_dict(found)

    def promote(
        self, name: str, version: int, stage: str, *, who: str | None = None, now: int
    ) -> ModelVersion:
        return ModelVersion.from_dict(
            self._call("promote", name=name, version=version, stage=stage, who=who, now=now)
        )

    def set_alias(
        self, name: str, alias: str, version: int, *, who: str | None = None, now: int
    ) -> ModelVersion:
        return ModelVersion.from_dict(
            self._call("set_alias", name=name, alias=alias, version=version, who=who, now=now)
        )

    def delete_alias(self, name: str, alias: str, *, who: str | None = None, now: int) -> bool:
        return bool(self._call("delete_alias", name=name, alias=alias, who=who, now=now))

    def set_model_description(
        self, name: str, description: str | None, *, version: int | None = None, now: int
    ) -> None:
        self._call("set_model_description", name=name, description=description, version=version, now=now)

    def get_model_version(
        self, name: str, *, version: int | None = None, stage: str | None = None, alias: str | None = None
    ) -> ModelVersion:
        return ModelVersion.from_dict(
            self._call("get_model_version", name=name, version=version, stage=stage, alias=alias)
        )

    def get_model(self, name: str) -> Model:
        return Model.from_dict(self._call("get_model", name=name))

    def models(self) -> list[Model]:
        return [Model.from_dict(m) for m in self._call("models")]

    def model_versions(self, name: str) -> list[ModelVersion]:
        return [ModelVersion.from_dict(v) for v in self._call("model_versions", name=name)]

    def model_history(self, name: str) -> list[ModelEvent]:
        return [ModelEvent.from_dict(e) for e in self._call("model_history", name=name)]

    # -- copies from another store (chachaml migrate) -----------------------------------------------
    def restore_run(self, run: Run, metrics: Iterable[Metric]) -> bool:
        """Streamed in one ``PUT`` of JSON lines, whatever its length (see the module docstring)."""
        self._check_open()
        points = ([m.key, m.value, m.step, m.timestamp] for m in metrics)
        with lines_body({"run": run.to_dict()}, points) as (body, size):  # read whole before sending
            self.flush()
            headers = {"Content-Type": "application/x-ndjson", "Content-Length": str(size)}
            # not retried on a lost reply: a resend would answer False for the run the first wrote
            status, out = self._http.request("PUT", "/api/v1/store/restore_run", body, headers,
                                             safe_retry=False)  # fmt: skip
        if status >= 300:
            raise self._http.error(status, out)
        return bool(json.loads(out.decode("utf-8"))["result"])

    def restore_model(self, model: Model, history: Sequence[ModelEvent]) -> bool:
        found = self._call("restore_model", idempotent=False, model=model.to_dict(),
                           history=[e.to_dict() for e in history])  # fmt: skip
        return bool(found)


def _after_fork(ref: weakref.ref[RemoteStore]) -> None:
    """A forked child starts its own spool, sender and connections; the parent's spool and the
    spools it adopted stay the parent's (sharing a journal would interleave two writers)."""
    store = ref()
    if store is None:
        return
    store._buffer.forget()
    store._buffer = SpoolBuffer(str(store._folder), store._own_spool)
    store._spool = None
    store._adopted = []
    store._sender = None
    store._cond = threading.Condition()
    store._urgent = threading.Event()
    store._wake = False
    store._http = HttpClient(store.uri, store._http.token)
    store._sender_http = HttpClient(store.uri, store._http.token, timeout=SEND_TIMEOUT_S)


def _close_at_exit(ref: weakref.ref[RemoteStore]) -> None:
    """Exit waits until the server has this process's points (SPEC 10), as ``flush`` does."""
    store = ref()
    if store is not None:
        store.close()
