"""``chachaml migrate SOURCE DEST``: copy everything from one store to another (SPEC section 10).

    chachaml migrate laptop.db postgresql://team@db/chachaml --artifacts s3://ml/artifacts
    python -m chachaml.migrate runs.db copy.db

Copies experiments, runs (params, metrics with their steps and timestamps, tags, notes, datasets,
status, times, errors, archived), artifacts (streamed, into the destination's artifact location)
and the model registry (versions, stages, aliases, history) with their ids and times, from any
store to any store, through the store contract only (the ``restore_*`` primitives of each role,
docs/adr/0017).

Resumable and idempotent: each run is written in one transaction (absent or whole), each
artifact is compared by sha256 before it is copied, each model is written in one transaction.
Running it again -- after it finished, or after it was killed anywhere -- copies only what is
missing, and the destination ends identical to a copy made in one go. Runs still ``running`` in
the source are not copied (their data is still changing): the summary says how many, and a later
run of ``migrate`` copies them once they have ended.

Progress goes to stderr: a bar on a terminal, one plain line per run otherwise, nothing with
``--quiet``; the summary goes to stdout. Exit codes: 0 done, 1 an error or a conflict (the
destination holds different bytes or records under the same names), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from chachaml.client import Client
from chachaml.entities import Metric, Run
from chachaml.errors import ChachamlError, ConflictError, InvalidValueError, NotFoundError
from chachaml.store.base import RunFilter, Store

__all__ = ["Summary", "add_arguments", "main", "migrate", "run"]


@dataclass
class Summary:
    """What one ``migrate`` call copied, found already there, and left for later."""

    experiments: int = 0
    runs_copied: int = 0
    runs_present: int = 0
    runs_running: int = 0  # still running in the source: copied by a later migrate
    points: int = 0
    artifacts_copied: int = 0
    artifacts_present: int = 0
    bytes_copied: int = 0
    models_copied: int = 0
    models_present: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"runs: {self.runs_copied} copied ({self.points} metric points), "
            f"{self.runs_present} already there",
            f"artifacts: {self.artifacts_copied} copied ({self.bytes_copied} bytes), "
            f"{self.artifacts_present} already there",
            f"models: {self.models_copied} copied, {self.models_present} already there",
            f"experiments: {self.experiments} created",
        ]
        if self.runs_running:
            out.append(
                f"not copied: {self.runs_running} run(s) still running in the source; "
                "run migrate again once they have ended"
            )
        out += [f"problem: {p}" for p in self.problems]
        return out


class _Progress:
    """A bar on a terminal, one line per step otherwise, or nothing (``quiet``)."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = not quiet and stream.isatty()
        self.total = 0
        self.done = 0

    def start(self, total: int) -> None:
        self.total = total

    def step(self, text: str) -> None:
        self.done += 1
        if self.quiet:
            return
        if self.tty:
            width = 30
            filled = width * self.done // max(self.total, 1)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} runs  ")
        else:
            self.stream.write(f"migrate: run {self.done}/{self.total} {text}\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if self.quiet:
            return
        self.stream.write(("\n" if self.tty and self.done else "") + f"migrate: {text}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self.done:
            self.stream.write("\n")
            self.stream.flush()


def _ordered(runs: list[Run]) -> list[Run]:
    """Runs oldest first, each parent before its children (a child may start before its parent)."""
    by_id = {r.id: r for r in runs}
    out: list[Run] = []
    seen: set[str] = set()
    for run in sorted(runs, key=lambda r: (r.start_time, r.id)):
        chain: list[Run] = []
        while run.id not in seen:
            seen.add(run.id)
            chain.append(run)
            parent = by_id.get(run.parent_id) if run.parent_id else None
            if parent is None:
                break
            run = parent
        out.extend(reversed(chain))
    return out


def _canon(value: Any) -> str:
    """Comparable text of a record (NaN equals NaN here, unlike in ``==``)."""
    return json.dumps(value, sort_keys=True, default=str)


def _points(src: Store, run_id: str, counter: list[int]) -> Iterator[Metric]:
    for key in src.metric_summaries(run_id):
        for point in src.metric_history(run_id, key):
            counter[0] += 1
            yield point


def migrate(
    source: Any,
    dest: Any,
    *,
    artifacts: str | None = None,
    source_artifacts: str | None = None,
    progress: _Progress | None = None,
) -> Summary:
    """Copy everything ``source`` holds into ``dest`` that ``dest`` does not hold yet.

    Args:
        source: a store target (path, URI) or ``Store``; it must exist.
        dest: a store target or ``Store``; created if needed.
        artifacts: the destination's artifact location (a folder or ``s3://bucket/prefix``).
        source_artifacts: the source's artifact location, when it is not the default.
        progress: where progress goes (default: nothing).

    Returns:
        The ``Summary``; ``problems`` lists what could not be copied (other data under the same
        names in the destination), everything else was copied.

    Raises:
        NotFoundError: the source database does not exist.
        InvalidValueError: source and destination are the same store.
    """
    from chachaml.store import store_path

    path = store_path(source) if isinstance(source, str | os.PathLike) else None
    if path is not None and not os.path.exists(path):
        raise NotFoundError(f"no chachaml store at {path}; check the SOURCE path")
    show = progress or _Progress(sys.stderr, quiet=True)
    with (
        Client(source, **({"artifacts": source_artifacts} if source_artifacts else {})) as s,
        Client(dest, **({"artifacts": artifacts} if artifacts else {})) as d,
    ):
        if s.store.uri == d.store.uri:
            raise InvalidValueError(f"SOURCE and DEST are the same store ({s.store.uri}); name another DEST")
        summary = Summary()
        _copy_experiments(s.store, d.store, summary)
        _copy_runs(s.store, d.store, summary, show)
        _copy_models(s.store, d.store, summary, show)
        show.finish()
    return summary


def _copy_experiments(src: Store, dst: Store, summary: Summary) -> None:
    have = {e.name for e in dst.experiments()}
    for e in src.experiments():
        if e.name not in have:
            dst.create_experiment(e.name, e.description, e.owner, e.created or 0)
            summary.experiments += 1


def _copy_runs(src: Store, dst: Store, summary: Summary, show: _Progress) -> None:
    runs = _ordered(src.find_runs(RunFilter(include_archived=True)))
    there = {r.id: r for r in dst.find_runs(RunFilter(include_archived=True))}
    have = set(there)
    show.start(len(runs))
    for run in runs:
        if run.status == "running":
            summary.runs_running += 1
            show.step(f"{run.id[:8]} still running: not copied")
            continue
        if run.parent_id is not None and run.parent_id not in have:
            summary.problems.append(f"run {run.id[:8]} not copied: its parent {run.parent_id[:8]} is not")
            show.step(f"{run.id[:8]} waits for its parent")
            continue
        if run.id in have:
            summary.runs_present += 1
            state = "already there"
            if _canon(there[run.id].to_dict()) != _canon(run.to_dict()):
                summary.problems.append(
                    f"run {run.id[:8]} differs in the destination (changed in one of them after it "
                    "was copied); left as the destination has it"
                )
        else:
            counter = [0]
            dst.restore_run(run, _points(src, run.id, counter))  # one transaction
            have.add(run.id)
            summary.runs_copied += 1
            summary.points += counter[0]
            state = f"copied ({counter[0]} points)"
        arts = src.list_artifacts(run.id)
        show.step(f"{run.id[:8]} {state}, {len(arts)} artifact(s)")
        _copy_artifacts(src, dst, run.id, arts, summary)


def _copy_artifacts(src: Store, dst: Store, run_id: str, arts: list[Any], summary: Summary) -> None:
    there = {a.name: a for a in dst.list_artifacts(run_id)}
    for art in arts:
        old = there.get(art.name)
        if old is not None and old.sha256 == art.sha256:
            summary.artifacts_present += 1
            continue
        try:
            with src.open_artifact(run_id, art.name) as fh:
                dst.restore_artifact(art, fh)  # streamed; bytes before the row
        except ConflictError:
            summary.problems.append(
                f"artifact {art.name!r} of run {run_id[:8]}: the destination holds other bytes; not copied"
            )
            continue
        summary.artifacts_copied += 1
        summary.bytes_copied += art.size


def _copy_models(src: Store, dst: Store, summary: Summary, show: _Progress) -> None:
    have = {m.name for m in dst.models()}
    for m in src.models():
        if m.name in have:
            summary.models_present += 1
            mine, theirs = src.get_model(m.name), dst.get_model(m.name)
            if _canon(mine.to_dict()) != _canon(theirs.to_dict()):
                summary.problems.append(
                    f"model {m.name!r} differs in the destination (versions or stages changed after "
                    "it was copied); left as the destination has it"
                )
            continue
        model = src.get_model(m.name)
        try:
            dst.restore_model(model, src.model_history(m.name))  # one transaction
        except NotFoundError as exc:  # a version's run is still running in the source
            summary.problems.append(f"model {m.name!r} not copied: {exc}")
            continue
        summary.models_copied += 1
    show.note(f"registry: {summary.models_copied} model(s) copied")


# -- command line ---------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``migrate`` (for ``chachaml migrate`` in ``chachaml.cli``)."""
    parser.add_argument("source", metavar="SOURCE", help="the store to copy from (path or URI)")
    parser.add_argument(
        "dest", metavar="DEST", help="the store to copy into (path or URI; created if needed)"
    )
    parser.add_argument(
        "--artifacts",
        metavar="URI",
        help="DEST's artifact location: a folder or s3://bucket/prefix (default: the store's own)",
    )
    parser.add_argument(
        "--source-artifacts", metavar="URI", help="SOURCE's artifact location, if not its default"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def run(args: argparse.Namespace) -> int:
    """Run ``migrate`` for parsed arguments; print the summary; the exit code."""
    show = _Progress(sys.stderr, args.quiet)
    summary = migrate(
        args.source,
        args.dest,
        artifacts=args.artifacts,
        source_artifacts=args.source_artifacts,
        progress=show,
    )
    for line in summary.lines():
        print(line)
    return 1 if summary.problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``chachaml migrate SOURCE DEST [--artifacts URI] [--source-artifacts URI] [--quiet]``."""
    parser = argparse.ArgumentParser(
        prog="chachaml migrate",
        description="Copy runs, artifacts, experiments and the model registry from one store to "
        "another with their ids and times; running it again copies only what is missing.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ChachamlError as exc:
        print(f"chachaml: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
