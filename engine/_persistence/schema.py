"""The database's tables: the schema a new file gets, the migrations that bring an older file
up to date (each once, in order), and the check that a file is this engine's.
"""

from __future__ import annotations

import functools
import sqlite3

from typing import Any, Callable

from engine._persistence.event_rows import EVENT_TYPES, readable_view, repack


APP_ID = "durable-lab"


SCHEMA_VERSION = 11


SCHEMA = [
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE executions (
        run_id TEXT PRIMARY KEY,
        workflow_id TEXT NOT NULL,
        workflow_type TEXT NOT NULL,
        task_queue TEXT NOT NULL,
        status TEXT NOT NULL,
        start_time REAL NOT NULL,
        close_time REAL,
        next_event_id INTEGER NOT NULL,
        wft_state TEXT NOT NULL DEFAULT '',
        wft_scheduled_id INTEGER,
        wft_started_id INTEGER,
        wft_attempt INTEGER NOT NULL DEFAULT 1,
        buffered TEXT,
        task_timeout REAL NOT NULL DEFAULT 10,
        last_task_failure TEXT
    )""",
    """CREATE INDEX executions_by_workflow ON executions (workflow_id, start_time)""",
    """CREATE INDEX executions_by_status ON executions (status, start_time)""",
    """CREATE TABLE events (
        run_id TEXT NOT NULL,
        event_id INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        event_time TEXT NOT NULL,
        attributes TEXT NOT NULL,
        PRIMARY KEY (run_id, event_id)
    ) WITHOUT ROWID""",
    """CREATE TABLE tasks (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        task_queue TEXT NOT NULL,
        run_id TEXT NOT NULL,
        scheduled_event_id INTEGER NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1,
        visible_at REAL NOT NULL,
        due_at REAL,
        lease_owner TEXT,
        lease_expires REAL,
        started_at REAL,
        info TEXT NOT NULL DEFAULT '{}'
    )""",
    """CREATE INDEX tasks_to_poll ON tasks (kind, task_queue, visible_at) WHERE lease_owner IS NULL""",
    """CREATE INDEX tasks_due ON tasks (due_at) WHERE due_at IS NOT NULL""",
    """CREATE INDEX tasks_by_run ON tasks (run_id)""",
    """CREATE TABLE timers (
        run_id TEXT NOT NULL,
        timer_key TEXT NOT NULL,
        kind TEXT NOT NULL,
        fire_at REAL NOT NULL,
        info TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (run_id, timer_key)
    )""",
    """CREATE INDEX timers_due ON timers (fire_at)""",
    """CREATE TABLE activity_attempts (
        run_id TEXT NOT NULL,
        scheduled_event_id INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        started_at REAL,
        ended_at REAL NOT NULL,
        outcome TEXT NOT NULL,
        failure TEXT,
        identity TEXT,
        PRIMARY KEY (run_id, scheduled_event_id, attempt)
    ) WITHOUT ROWID""",
]


# Schema changes after version 1, by the version they lead to. Each runs once, in order.
MIGRATIONS: dict[int, list[str]] = {
    2: [
        # A child run's link to its parent: whom to tell when it closes, and what the
        # parent's close does to it. Follows the child across continue-as-new.
        """CREATE TABLE children (
            child_run_id TEXT PRIMARY KEY,
            parent_run_id TEXT NOT NULL,
            initiated_event_id INTEGER NOT NULL,
            close_policy TEXT NOT NULL
        ) WITHOUT ROWID""",
        """CREATE INDEX children_by_parent ON children (parent_run_id)""",
    ],
    3: [
        # Update requests and their outcomes. History holds only accepted updates; the
        # requests waiting for a workflow task and the rejected ones live here.
        """CREATE TABLE updates (
            run_id TEXT NOT NULL,
            update_id TEXT NOT NULL,
            name TEXT NOT NULL,
            input TEXT NOT NULL,
            identity TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL,
            accepted_event_id INTEGER,
            outcome TEXT,
            UNIQUE (run_id, update_id)
        )""",
    ],
    4: [
        # Faults injected on purpose (engine.faults): every worker of every process sharing
        # the file sees them; each firing is logged so viewers tell injected from organic.
        """CREATE TABLE faults (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            target TEXT NOT NULL,
            remaining INTEGER NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            created REAL NOT NULL
        )""",
        """CREATE TABLE fault_log (
            id INTEGER PRIMARY KEY,
            fault_id INTEGER,
            kind TEXT NOT NULL,
            target TEXT NOT NULL,
            run_id TEXT,
            workflow_id TEXT,
            detail TEXT NOT NULL DEFAULT '',
            identity TEXT NOT NULL DEFAULT '',
            fired_at REAL NOT NULL
        )""",
    ],
    5: [
        # Queries for runs whose code only another process's worker has: the client asks
        # here, a worker of that task queue answers (nothing is written to history).
        """CREATE TABLE queries (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            task_queue TEXT NOT NULL,
            workflow_type TEXT NOT NULL,
            name TEXT NOT NULL,
            args TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            answer TEXT,
            created REAL NOT NULL
        )""",
        """CREATE INDEX queries_pending ON queries (task_queue, state)""",
    ],
    6: [
        # Which activity attempt each injected fault hit (its scheduled event id and attempt
        # number), so that viewers mark exactly that step in the run's graph.
        """ALTER TABLE fault_log ADD COLUMN scheduled_event_id INTEGER""",
        """ALTER TABLE fault_log ADD COLUMN attempt INTEGER""",
    ],
    7: [
        # Which side tables hold rows of a run (updates, children): read with the run, so
        # that most runs skip those look-ups, and changed in the row when another client
        # adds an update, so that a connection caching the run sees it (engine._history.mutable_state.FLAG_*).
        """ALTER TABLE executions ADD COLUMN flags INTEGER""",
    ],
    8: [
        # Search attributes and memo. The run's row holds them as Temporal's payloads (what
        # describe shows and continue-as-new carries over); search_attributes indexes each
        # value (a keyword list one row per keyword) so that list filters on them stay
        # indexed look-ups. The value column has no type: ints and floats compare as numbers,
        # datetimes are epoch seconds. search_attribute_types keeps the type each name was
        # first used with, which list filters need to read their values.
        """ALTER TABLE executions ADD COLUMN search_attributes TEXT""",
        """ALTER TABLE executions ADD COLUMN memo TEXT""",
        """CREATE TABLE search_attributes (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL,
            position INTEGER NOT NULL,
            value,
            PRIMARY KEY (run_id, name, position)
        ) WITHOUT ROWID""",
        """CREATE INDEX search_attributes_by_value ON search_attributes (name, value)""",
        """CREATE TABLE search_attribute_types (name TEXT PRIMARY KEY, type TEXT NOT NULL) WITHOUT ROWID""",
    ],
    9: [
        # Runs of a cron chain: their schedule and execution time (start plus the first
        # task's backoff), from which the next run's backoff is counted when one closes.
        """CREATE TABLE crons (
            run_id TEXT PRIMARY KEY,
            schedule TEXT NOT NULL,
            execution_time REAL NOT NULL
        ) WITHOUT ROWID""",
        # Schedules (client.create_schedule): spec, action and state as JSON a learner can
        # read; the next action time is a row of timers (run_id 'schedule:<id>'), so the
        # engine's clock (and time skipping) drives them like any timer.
        """CREATE TABLE schedules (
            schedule_id TEXT PRIMARY KEY,
            spec TEXT NOT NULL,
            action TEXT NOT NULL,
            state TEXT NOT NULL,
            policy TEXT NOT NULL DEFAULT '{}',
            info TEXT NOT NULL DEFAULT '{}',
            memo TEXT,
            created REAL NOT NULL
        ) WITHOUT ROWID""",
    ],
    10: [
        # Compact history rows (engine._persistence.event_rows): a run's events (and its
        # activity attempts) are keyed by the run's small integer id instead of its
        # 36-character run id, their types are
        # numbers, new rows' times are integers and their JSON has its frequent fragments
        # replaced by single bytes. Rows written before stay as they are (times and JSON as
        # text read back the same); their keys and types are converted here.
        """CREATE TABLE executions_v10 (
            run_id TEXT NOT NULL UNIQUE,
            workflow_id TEXT NOT NULL,
            workflow_type TEXT NOT NULL,
            task_queue TEXT NOT NULL,
            status TEXT NOT NULL,
            start_time REAL NOT NULL,
            close_time REAL,
            next_event_id INTEGER NOT NULL,
            wft_state TEXT NOT NULL DEFAULT '',
            wft_scheduled_id INTEGER,
            wft_started_id INTEGER,
            wft_attempt INTEGER NOT NULL DEFAULT 1,
            buffered TEXT,
            task_timeout REAL NOT NULL DEFAULT 10,
            last_task_failure TEXT,
            flags INTEGER,
            search_attributes TEXT,
            memo TEXT,
            id INTEGER PRIMARY KEY
        )""",
        # The old rowid is the new id: list orders that break ties by rowid stay the same.
        """INSERT INTO executions_v10 SELECT *, rowid FROM executions""",
        """CREATE TABLE events_v10 (
            run INTEGER NOT NULL,
            event_id INTEGER NOT NULL,
            event_type NOT NULL,
            event_time NOT NULL,
            attributes NOT NULL,
            PRIMARY KEY (run, event_id)
        ) WITHOUT ROWID""",
        "INSERT INTO events_v10 SELECT x.rowid, e.event_id, CASE e.event_type "
        + " ".join(f"WHEN '{name}' THEN {code}" for code, name in enumerate(EVENT_TYPES, 1))
        + " ELSE e.event_type END, e.event_time, e.attributes FROM events e JOIN executions x ON x.run_id = e.run_id",
        # Activity attempts are keyed by the run's id too.
        """CREATE TABLE activity_attempts_v10 (
            run INTEGER NOT NULL,
            scheduled_event_id INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            started_at REAL,
            ended_at REAL NOT NULL,
            outcome TEXT NOT NULL,
            failure TEXT,
            identity TEXT,
            PRIMARY KEY (run, scheduled_event_id, attempt)
        ) WITHOUT ROWID""",
        "INSERT INTO activity_attempts_v10 SELECT x.rowid, a.scheduled_event_id, a.attempt, a.started_at, a.ended_at, "
        "a.outcome, a.failure, a.identity FROM activity_attempts a JOIN executions x ON x.run_id = a.run_id",
        """DROP TABLE activity_attempts""",
        """ALTER TABLE activity_attempts_v10 RENAME TO activity_attempts""",
        """DROP TABLE events""",
        """ALTER TABLE events_v10 RENAME TO events""",
        """DROP TABLE executions""",
        """ALTER TABLE executions_v10 RENAME TO executions""",
        """CREATE INDEX executions_by_workflow ON executions (workflow_id, start_time)""",
        """CREATE INDEX executions_by_status ON executions (status, start_time)""",
        # The events as text, for people reading the file with sqlite3 (no engine code).
        readable_view(),
    ],
    11: [
        # Namespaces and their ids (engine._history.namespaces): Temporal names a namespace by
        # id as well as by name in child, signal and cancel events. A namespace is registered
        # on first use and keeps its id for the life of the file.
        """CREATE TABLE namespaces (
            name TEXT PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            created REAL NOT NULL
        ) WITHOUT ROWID""",
    ],
}


# Rewrites of rows in Python, run after that version's statements (a new file has no rows).
REWRITES: dict[int, Callable[[Any], None]] = {10: repack}


RESTORE = "Restore it from a copy, or start over with a new file."


@functools.lru_cache(maxsize=None)
def _schema_at(version: int) -> dict[str, tuple[str, ...]]:
    """The tables and their columns a database of ``version`` has, built in memory."""
    conn = sqlite3.connect(":memory:")
    try:
        for statement in SCHEMA + [m for v in sorted(MIGRATIONS) if v <= version for m in MIGRATIONS[v]]:
            conn.execute(statement)
        return _columns(conn, {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")})
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, tables: set[str]) -> dict[str, tuple[str, ...]]:
    return {t: tuple(r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')) for t in sorted(tables)}


def _added_in(table: str, column: str | None = None) -> int:
    return min(v for v in range(1, SCHEMA_VERSION + 1) if column in _schema_at(v).get(table, ()) or (column is None and table in _schema_at(v)))


def schema_mismatch(conn: sqlite3.Connection, version: int, tables: set[str]) -> str:
    """What in the file disagrees with its schema version, or "": a meta table edited by
    hand or copied between files would otherwise surface as SQL errors deep in the engine
    (or in a migration that finds its table already there)."""
    if version < 1:
        return "there is no version 0"
    expected = _schema_at(version)
    actual = _columns(conn, tables & set(_schema_at(SCHEMA_VERSION)))
    for table in sorted(expected.keys() - actual.keys(), key=lambda t: (_added_in(t), t)):
        return f"table {table!r} (added in version {_added_in(table)}) is missing"
    for table in sorted(actual.keys() - expected.keys(), key=lambda t: (_added_in(t), t)):
        return f"table {table!r} is already there, which version {_added_in(table)} adds"
    for table, columns in expected.items():
        for column in sorted(set(columns) - set(actual[table])):
            return f"column '{table}.{column}' (added in version {_added_in(table, column)}) is missing"
        for column in sorted(set(actual[table]) - set(columns)):
            return f"column '{table}.{column}' is already there, which version {_added_in(table, column)} adds"
    return ""


def migrate(conn: sqlite3.Connection, version: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        now = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
        for target in sorted(v for v in MIGRATIONS if v > now):
            for statement in MIGRATIONS[target]:
                conn.execute(statement)
            if target in REWRITES:
                REWRITES[target](conn)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
