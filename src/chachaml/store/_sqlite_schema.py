"""The SQLite schema as ordered migrations; ``PRAGMA user_version`` records the version.

Each migration runs in one ``BEGIN IMMEDIATE`` transaction together with the version bump, so
several processes opening a fresh database at once serialise here and each migration is applied
exactly once (the version is re-read inside the transaction). Never edit a released migration:
append a new one. ``docs/schema.md`` documents the resulting tables.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE experiments (
            name        TEXT PRIMARY KEY,
            description TEXT,
            owner       TEXT,
            created     INTEGER NOT NULL
        )""",
            """CREATE TABLE runs (
            id          TEXT PRIMARY KEY,
            experiment  TEXT NOT NULL,
            name        TEXT,
            status      TEXT NOT NULL CHECK (status IN ('running','completed','failed','killed')),
            start_time  INTEGER NOT NULL,
            end_time    INTEGER,
            parent_id   TEXT,
            created_by  TEXT,
            note        TEXT,
            error       TEXT,
            env         TEXT,
            archived    INTEGER NOT NULL DEFAULT 0,
            host        TEXT,
            pid         INTEGER,
            proc_start  TEXT,
            heartbeat   INTEGER
        )""",
            "CREATE INDEX runs_by_start ON runs (start_time)",
            "CREATE INDEX runs_by_experiment ON runs (experiment, start_time)",
            "CREATE INDEX runs_by_parent ON runs (parent_id)",
            "CREATE INDEX runs_running ON runs (status) WHERE status = 'running'",
            """CREATE TABLE params (
            run_id TEXT NOT NULL,
            key    TEXT NOT NULL,
            value  TEXT NOT NULL,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID""",
            """CREATE TABLE tags (
            run_id TEXT NOT NULL,
            key    TEXT NOT NULL,
            value  TEXT NOT NULL,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID""",
            """CREATE TABLE metrics (
            run_id    TEXT NOT NULL,
            key       TEXT NOT NULL,
            step      INTEGER NOT NULL,
            value     REAL,
            timestamp INTEGER NOT NULL,
            is_nan    INTEGER NOT NULL DEFAULT 0,
            CHECK (value IS NOT NULL OR is_nan = 1)
        )""",
            "CREATE INDEX metrics_by_run_key_step ON metrics (run_id, key, step)",
            """CREATE TABLE datasets (
            id       INTEGER PRIMARY KEY,
            run_id   TEXT NOT NULL,
            name     TEXT NOT NULL,
            role     TEXT NOT NULL,
            source   TEXT,
            n_rows   INTEGER,
            n_cols   INTEGER,
            features TEXT,
            digest   TEXT,
            created  INTEGER NOT NULL
        )""",
            "CREATE INDEX datasets_by_run ON datasets (run_id)",
        ],
    ),
    # 2: per-(run, key) metric summaries, folded in on read from a rowid watermark
    # (docs/adr/0005-durable-writes-and-metric-summaries.md).
    (
        2,
        [
            """CREATE TABLE metric_summary (
            run_id         TEXT NOT NULL,
            key            TEXT NOT NULL,
            last_step      INTEGER NOT NULL,
            last_value     REAL,
            last_is_nan    INTEGER NOT NULL,
            last_timestamp INTEGER NOT NULL,
            min            REAL,
            max            REAL,
            count          INTEGER NOT NULL,
            PRIMARY KEY (run_id, key)
        ) WITHOUT ROWID""",
            "CREATE INDEX metric_summary_by_key ON metric_summary (key, last_value)",
            """CREATE TABLE chachaml_meta (
            key   TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        )""",
            "INSERT INTO chachaml_meta (key, value) VALUES ('summary_rowid', 0)",
        ],
    ),
    # 3: artifacts and the model registry (issue 4). Artifact bytes live in files next to the
    # database; a row is written only after its file is in place. The partial unique index makes
    # "at most one production version per model" a database rule, not just application logic.
    (
        3,
        [
            """CREATE TABLE artifacts (
            run_id       TEXT NOT NULL,
            name         TEXT NOT NULL,
            path         TEXT NOT NULL,
            size         INTEGER NOT NULL,
            sha256       TEXT NOT NULL,
            content_type TEXT NOT NULL,
            format       TEXT NOT NULL,
            created      INTEGER NOT NULL,
            PRIMARY KEY (run_id, name)
        ) WITHOUT ROWID""",
            """CREATE TABLE models (
            name        TEXT PRIMARY KEY,
            description TEXT,
            created     INTEGER NOT NULL,
            updated     INTEGER NOT NULL
        )""",
            """CREATE TABLE model_versions (
            model       TEXT NOT NULL,
            version     INTEGER NOT NULL,
            run_id      TEXT NOT NULL,
            artifact    TEXT NOT NULL,
            stage       TEXT NOT NULL CHECK (stage IN ('none','staging','production','archived')),
            description TEXT,
            created     INTEGER NOT NULL,
            created_by  TEXT,
            PRIMARY KEY (model, version)
        ) WITHOUT ROWID""",
            "CREATE UNIQUE INDEX model_versions_one_production ON model_versions (model) "
            "WHERE stage = 'production'",
            "CREATE INDEX model_versions_by_run ON model_versions (run_id)",
            """CREATE TABLE model_aliases (
            model   TEXT NOT NULL,
            alias   TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (model, alias)
        ) WITHOUT ROWID""",
            """CREATE TABLE registry_events (
            id         INTEGER PRIMARY KEY,
            model      TEXT NOT NULL,
            version    INTEGER,
            kind       TEXT NOT NULL CHECK (kind IN ('register','stage','alias')),
            alias      TEXT,
            from_value TEXT,
            to_value   TEXT,
            who        TEXT,
            at         INTEGER NOT NULL
        )""",
            "CREATE INDEX registry_events_by_model ON registry_events (model, id)",
        ],
    ),
    # 4: query indexes (issue 3, docs/adr/0007). best_run walks a metric's summaries in order of
    # their max (or min) and stops at the first matching run, instead of joining and sorting every
    # run: 46 ms -> 0.02 ms at 10,000 runs (benchmarks/bench_query.py). Secondary indexes of a
    # WITHOUT ROWID table carry its primary key, so both are covering for (run_id, key, max|min).
    (
        4,
        [
            "CREATE INDEX metric_summary_by_key_max ON metric_summary (key, max)",
            "CREATE INDEX metric_summary_by_key_min ON metric_summary (key, min)",
        ],
    ),
    # 5: query plans at scale (issue 9, docs/adr/0018). A param's JSON value indexed per key,
    # so a range (`params.lr < 0.05`) can enumerate its runs instead of testing every run; the
    # default listing (not archived, newest first) as one index, so paging deep (offset 50,000)
    # skips rows inside the index. Run.env's package list stored once per distinct list:
    # `env_packages` keyed by the sha256 of its JSON, the run row keeps the digest (the data
    # step, `_sqlite_env.split_legacy_packages`, moves older rows' inline lists there).
    (
        5,
        [
            # `value` too: then the index covers a range's probe and the drive's join (SQLite
            # before 3.41 does not read an indexed expression back from the index: 30x slower)
            "CREATE INDEX params_by_key_value ON params (key, json_extract(value, '$'), value)",
            "CREATE INDEX runs_by_archived_start ON runs (archived, start_time)",
            """CREATE TABLE env_packages (
            digest   TEXT PRIMARY KEY,
            packages TEXT NOT NULL
        ) WITHOUT ROWID""",
            "ALTER TABLE runs ADD COLUMN env_packages TEXT",
        ],
    ),
    # 6: alerts and pipelines (issue 11, SPEC section 11; docs/adr/0013). An event is unique per
    # (alert, alert version, run): "each run fires an alert at most once" holds for concurrent
    # checkers too (INSERT ... ON CONFLICT DO NOTHING). since_point is the newest metric rowid
    # when the alert was created or changed: "logged since" is exact, whatever the clock says.
    # Pipelines keep their steps' statuses; their runs are ordinary runs (the pipeline's id is
    # its run's id).
    (
        6,
        [
            """CREATE TABLE alerts (
            name       TEXT PRIMARY KEY,
            metric     TEXT NOT NULL,
            op         TEXT NOT NULL CHECK (op IN ('>','>=','<','<=')),
            threshold  REAL NOT NULL,
            experiment TEXT,
            webhook    TEXT,
            version    INTEGER NOT NULL,
            created    INTEGER NOT NULL,
            updated    INTEGER NOT NULL,
            since_point INTEGER NOT NULL
        )""",
            """CREATE TABLE alert_events (
            id            INTEGER PRIMARY KEY,
            alert         TEXT NOT NULL,
            alert_version INTEGER NOT NULL,
            run_id        TEXT NOT NULL,
            metric        TEXT NOT NULL,
            value         REAL NOT NULL,
            step          INTEGER NOT NULL,
            op            TEXT NOT NULL,
            threshold     REAL NOT NULL,
            fired         INTEGER NOT NULL,
            webhook       TEXT,
            delivery      TEXT CHECK (delivery IN ('pending','delivered','failed')),
            attempts      INTEGER NOT NULL DEFAULT 0,
            error         TEXT,
            UNIQUE (alert, alert_version, run_id)
        )""",
            """CREATE TABLE pipelines (
            id      TEXT PRIMARY KEY,
            name    TEXT NOT NULL,
            status  TEXT NOT NULL CHECK (status IN ('running','completed','failed','killed')),
            created INTEGER NOT NULL,
            updated INTEGER NOT NULL
        )""",
            "CREATE INDEX pipelines_by_created ON pipelines (created)",
            """CREATE TABLE pipeline_steps (
            pipeline_id TEXT NOT NULL,
            position    INTEGER NOT NULL,
            name        TEXT NOT NULL,
            status      TEXT NOT NULL
                        CHECK (status IN ('pending','running','completed','failed','killed','skipped')),
            run_id      TEXT,
            PRIMARY KEY (pipeline_id, position)
        )""",
        ],
    ),
    # 7: a min/max pyramid per long metric history (issue 9, docs/adr/0025): a downsampled read
    # of a 1,000,000-point history touches a few thousand tiles instead of every point. Built
    # for the histories already folded right after these statements (_sqlite_tiles.backfill),
    # then kept by the fold.
    (
        7,
        [
            """CREATE TABLE metric_tiles (
            run_id    TEXT NOT NULL,
            key       TEXT NOT NULL,
            shift     INTEGER NOT NULL,
            tile      INTEGER NOT NULL,
            n         INTEGER NOT NULL,
            min_step  INTEGER,
            min_value REAL,
            min_ts    INTEGER,
            max_step  INTEGER,
            max_value REAL,
            max_ts    INTEGER,
            nan_step  INTEGER,
            nan_ts    INTEGER,
            PRIMARY KEY (run_id, key, shift, tile)
        ) WITHOUT ROWID""",
        ],
    ),
]

LATEST = MIGRATIONS[-1][0]
