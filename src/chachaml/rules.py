"""The product's rules, once, above any backend (issue 8; docs/architecture.md).

Every rule here is pure: no store, no context, no SQL. The ``Client`` applies the argument rules
before it calls a store (so a bad value or a typo in ``where=`` is reported before a backend is
touched), and the stores apply the decision rules inside their transactions (param
immutability, artifact immutability and folder clashes, id-prefix resolution, the default step,
one production version per model), so a second backend reuses them instead of copying them.
Key and value normalisation lives in ``chachaml._values``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chachaml._values import check_key, decode_param, encode_param, tag_value
from chachaml.errors import ConflictError, InvalidValueError, QueryError, RunNotFoundError

__all__ = [
    "DAY_MS",
    "FINAL_STATUSES",
    "ID_LENGTH",
    "MAX_NAME",
    "STAGES",
    "STATUSES",
    "TMP_PREFIX",
    "archives_production",
    "artifact_ancestors",
    "artifact_unchanged",
    "check_artifact_name",
    "check_description",
    "check_final_status",
    "check_mode",
    "check_paging",
    "check_stage",
    "check_status",
    "check_tags",
    "check_version",
    "is_full_id",
    "MAX_DAYS",
    "MAX_STEP",
    "next_step",
    "no_next_step",
    "no_nul",
    "param_conflict",
    "resolve_prefix",
    "started_before",
    "validate_query",
]

#: Run statuses, in lifecycle order. A run is created ``running`` and ends in one of the others.
STATUSES = ("running", "completed", "failed", "killed")
FINAL_STATUSES = STATUSES[1:]
#: Registry stages, in lifecycle order (SPEC section 3). At most one version per model is
#: ``production``.
STAGES = ("none", "staging", "production", "archived")
#: A run id is a uuid4 in 32 lowercase hex characters; anything shorter is a prefix.
ID_LENGTH = 32
DAY_MS = 86_400_000
#: How many candidates a store fetches to resolve an id prefix (one more than it reports).
PREFIX_CANDIDATES = 11


# -- runs ---------------------------------------------------------------------------------------
def check_status(status: Any) -> str | None:
    """A status filter: None or one of ``STATUSES``."""
    if status is not None and status not in STATUSES:
        raise InvalidValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    return status  # type: ignore[no-any-return]


def check_final_status(status: Any) -> str:
    """The status a run ends with: completed, failed or killed."""
    if status not in FINAL_STATUSES:
        raise InvalidValueError(
            f"status {status!r} is not a final status; use one of {', '.join(FINAL_STATUSES)}"
        )
    return status  # type: ignore[no-any-return]


def check_tags(tags: Any) -> dict[str, str]:
    """Tag keys checked and values converted as ``set_tag`` stores them (``None``: no tags)."""
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise InvalidValueError(f"tags must be a mapping such as {{'team': 'nlp'}}, got {tags!r}")
    return {check_key(k, "tag key"): tag_value(v) for k, v in tags.items()}


def no_nul(text: str | None, what: str) -> None:
    """Refuse the NUL character in text a PostgreSQL store is asked to keep (a run name, a tag
    value, a note): PostgreSQL text cannot hold it. SQLite stores it as it is (SPEC: values are
    stored literally), so this is the PostgreSQL store's rule, named here so its message is the
    same wherever it is raised."""
    at = -1 if text is None else text.find("\x00")
    if at >= 0:
        assert text is not None
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise InvalidValueError(
            f"{what} {shown!r} contains the NUL character (\\x00) at position {at}, which a "
            "PostgreSQL store cannot keep; remove it (e.g. text.replace('\\x00', '')), or log "
            "binary data as an artifact"
        )


def check_paging(limit: Any, offset: Any) -> None:
    """``limit`` is None or an int >= 0, ``offset`` an int >= 0 (bools refused)."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidValueError(f"limit must be a non-negative int or None, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidValueError(f"offset must be a non-negative int, got {offset!r}")


def check_mode(mode: Any) -> str:
    """``best_run``'s direction: ``max`` or ``min``."""
    if mode not in ("max", "min"):
        raise InvalidValueError(f"mode must be 'max' or 'min', got {mode!r}; use mode='min' for a loss")
    return mode  # type: ignore[no-any-return]


def _given(text: object, what: str) -> bool:
    """Whether a ``where=`` / ``order_by=`` string says anything (blank means no filter/order)."""
    if text is None:
        return False
    if not isinstance(text, str):
        raise QueryError(f'{what}= must be a str such as "metrics.acc desc", got {text!r}')
    return bool(text.strip())


def validate_query(where: object, order_by: object) -> tuple[str | None, str | None]:
    """Parse ``where=`` and ``order_by=`` (``QueryError`` with the position of a typo), before any
    backend sees them; blank strings mean "none". Returns the texts to hand to the store."""
    w = where if _given(where, "where") else None
    o = order_by if _given(order_by, "order_by") else None
    if w is None and o is None:
        return None, None
    from chachaml import query  # here: the query language is ~2 ms to import, and logging never needs it

    if w is not None:
        query.parse_where(w)  # cached: the SQL store's compile reuses it
    if o is not None:
        query.parse_order_by(o)  # type: ignore[arg-type]
    return w, o  # type: ignore[return-value]


#: The largest ``older_than_days``: about 2,700 years, far beyond any run's age, and small
#: enough that the bound in milliseconds is an integer every store can bind.
MAX_DAYS = 1_000_000


def started_before(older_than_days: Any, now: int) -> int | None:
    """The exclusive start-time bound of ``archive_runs(older_than_days=...)``: runs started
    ``older_than_days`` ago or earlier are below it (None: no bound).

    The Python verbs, the command line and the HTTP API refuse the same range (0 to
    ``MAX_DAYS``), rather than clamping a huge value: a number past 1970 is a mistake (hours or
    seconds typed as days), not a real age.
    """
    if older_than_days is None:
        return None
    if isinstance(older_than_days, bool) or not isinstance(older_than_days, int | float):
        raise InvalidValueError(f"older_than_days must be a number of days, got {older_than_days!r}")
    if not 0 <= older_than_days <= MAX_DAYS:  # also refuses NaN and infinity
        raise InvalidValueError(
            f"older_than_days must be between 0 and {MAX_DAYS:,} days, got {older_than_days!r}; "
            "pass the age in days of the oldest runs to keep listed (e.g. 30)"
        )
    # "Started N days ago or earlier", inclusive: with N = 0 a run started in this very
    # millisecond is included (issue 7, defect 8). The store's bound is exclusive, hence + 1.
    return now - int(older_than_days * DAY_MS) + 1


# -- run references -----------------------------------------------------------------------------
def is_full_id(ref: str) -> bool:
    """Whether ``ref`` has the length of a whole run id (then it is used as it is)."""
    return len(ref) == ID_LENGTH


def resolve_prefix(prefix: str, matches: Sequence[str], where: str) -> str:
    """The one run id among ``matches`` (ids starting with ``prefix``, at most
    ``PREFIX_CANDIDATES`` of them, fetched by the store), like git's short ids.

    Raises:
        RunNotFoundError: nothing matches.
        InvalidValueError: the prefix is ambiguous (the message lists the candidates).
    """
    if not matches:
        raise RunNotFoundError(
            f"no run has the id (or id prefix) {prefix!r} in {where}; list runs with chachaml.runs()"
        )
    if len(matches) > 1:
        ids = ", ".join(matches[:10])
        raise InvalidValueError(
            f"the id prefix {prefix!r} matches several runs ({ids}); type more characters"
        )
    return matches[0]


# -- params and metrics ---------------------------------------------------------------------------
def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def param_conflict(run_id: str, key: str, old: str, new: str) -> ConflictError | None:
    """The error for changing an immutable param from ``old`` to ``new`` (JSON texts), or None
    when they are the same value. Canonical JSON is compared, not decoded values: ``1 == True ==
    1.0`` in Python, but a param keeps its JSON type, so ``True`` after ``1`` is a change."""
    if encode_param(decode_param(old)) == encode_param(decode_param(new)):
        return None
    return ConflictError(
        f"param {key!r} of run {run_id[:8]} is already {_clip(old)} and params are "
        f"immutable, so it cannot become {_clip(new)}; log it under another key, "
        "or pass overwrite=True to replace it"
    )


#: The largest step (SQLite's 64-bit integers): after it ``step=None`` has no next step.
MAX_STEP = 2**63 - 1


def next_step(highest: int | None) -> int:
    """The step of a point logged with ``step=None``: one past the highest step of that key in
    that run, else 0 (stores resolve it inside the write, so concurrent writers never share one).
    Past ``MAX_STEP`` there is none: the store raises ``no_next_step``."""
    return 0 if highest is None else highest + 1


def no_next_step(run_id: str, key: str) -> InvalidValueError:
    """The error for ``step=None`` after a key's step reached ``MAX_STEP`` (issue 7)."""
    return InvalidValueError(
        f"metric {key!r} of run {run_id[:8]} already has step {MAX_STEP}, the largest "
        "64-bit step, so step=None has no next step; pass an explicit step= (or log "
        "under another key)"
    )


# -- artifacts ----------------------------------------------------------------------------------
MAX_NAME = 1000  # characters in a whole artifact name
TMP_PREFIX = ".chachaml-tmp-"  # temporary files of local stores; reserved in every name component
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_artifact_name(name: object, what: str = "artifact name") -> str:
    """Return ``name`` if it is a safe relative path inside a run's folder, else raise.

    Accepted: non-empty ``str`` components joined by ``/``. Refused with ``InvalidValueError``
    (and nothing written): absolute paths, drive letters, ``..`` and ``.`` components, empty
    components (``a//b``, a trailing ``/``), backslashes, NUL and other control characters,
    components over 255 bytes, and the reserved temporary-file prefix.
    """
    if not isinstance(name, str):
        raise InvalidValueError(
            f"{what} must be a str such as 'model.pkl' or 'plots/loss.png', got {type(name).__name__} "
            f"{name!r}"
        )
    fix = "use a relative name such as 'model.pkl' or 'plots/loss.png'"
    if not name:
        raise InvalidValueError(f"{what} must not be empty; {fix}")
    if len(name) > MAX_NAME:
        raise InvalidValueError(f"{what} is {len(name)} characters long; the limit is {MAX_NAME}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidValueError(
            f"{what} {name!r} contains the lone surrogate {name[exc.start]!r} at position {exc.start}, "
            f"which is not valid text; {fix}"
        ) from None
    bad = _CONTROL.search(name)
    if bad:
        raise InvalidValueError(
            f"{what} {name!r} contains the control character {bad.group()!r} at position {bad.start()}; {fix}"
        )
    if "\\" in name:
        raise InvalidValueError(f"{what} {name!r} contains a backslash; separate folders with '/'; {fix}")
    if name.startswith("/") or _DRIVE.match(name):
        raise InvalidValueError(f"{what} {name!r} is an absolute path; it must stay inside the run; {fix}")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise InvalidValueError(
                f"{what} {name!r} has the path component {part!r}, which could leave the run's "
                f"folder or is ambiguous; {fix}"
            )
        if part.startswith(TMP_PREFIX):
            raise InvalidValueError(f"{what} {name!r}: the prefix {TMP_PREFIX!r} is reserved; {fix}")
        if len(part.encode("utf-8")) > 255:
            raise InvalidValueError(f"{what} {name!r} has a component longer than 255 bytes; shorten it")
    return name


def artifact_ancestors(name: str) -> list[str]:
    """The folder names above an artifact (``a/b/c`` -> ``a``, ``a/b``): none of them may be an
    artifact itself, and ``name`` may not be the folder of another (a file and a folder at once)."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def folder_clash(run_id: str, name: str, other: str) -> ConflictError:
    """The error for an artifact name that clashes with the existing artifact ``other``."""
    return ConflictError(
        f"cannot store artifact {name!r} in run {run_id[:8]}: it clashes with the artifact "
        f"{other!r} (one would have to be a file and a folder at once); choose another name"
    )


def artifact_unchanged(
    run_id: str, name: str, stored: tuple[str, str, int], sha256: str, fmt: str, overwrite: bool
) -> bool:
    """True if new bytes (``sha256`` in format ``fmt``) are what is stored (a no-op), False if
    they replace it (``overwrite``); raises ``ConflictError`` otherwise. ``stored`` is the
    existing artifact's (sha256, format, size): artifacts are immutable like params."""
    old_sha, old_fmt, old_size = stored
    if old_sha == sha256 and old_fmt == fmt:
        return True
    if overwrite:
        return False
    what = "other bytes" if old_sha != sha256 else f"the same bytes in the format {old_fmt!r}"
    raise ConflictError(
        f"artifact {name!r} of run {run_id[:8]} already holds {what} "
        f"(sha256 {old_sha[:12]}..., {old_size} bytes, format {old_fmt!r}) and "
        "artifacts are immutable, so it was left as it was; log under another name, or pass "
        "overwrite=True to replace it"
    )


# -- registry -----------------------------------------------------------------------------------
def check_stage(stage: Any) -> str:
    if stage not in STAGES:
        raise InvalidValueError(f"stage {stage!r} is not one of {', '.join(map(repr, STAGES))}")
    return str(stage)


def archives_production(stage: str) -> bool:
    """Whether moving a version to ``stage`` archives the model's current production version
    (at most one production version per model, in the same transaction)."""
    return stage == "production"


def check_version(version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidValueError(
            f"a model version is a positive int such as 1 or 2, got {version!r}; "
            "list them with chachaml.model_versions(name)"
        )
    return version


def check_description(text: Any) -> str | None:
    if text is not None and not isinstance(text, str):
        raise InvalidValueError(f"a description is a str (markdown) or None, got {type(text).__name__}")
    return text


def check_features(features: Any) -> list[str] | None:
    """``log_dataset(features=...)``: a list of column names (not one string)."""
    if features is None:
        return None
    if isinstance(features, str | bytes) or not isinstance(features, Iterable):
        raise InvalidValueError(
            f"features must be a list of column names such as ['age', 'income'], got {features!r}"
        )
    return [str(f) for f in features]


def check_count(label: str, n: Any) -> int | None:
    """A non-negative int or None (``n_rows``, ``n_cols``)."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise InvalidValueError(f"{label} must be a non-negative int or None, got {n!r}")
    return n
