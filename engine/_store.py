"""The SQLite store: schema, migrations, and group commit.

Every state change is a plain function ``fn(tx, ...)`` run on aiosqlite's database thread.
Changes that arrive while a transaction is in flight are grouped into the next one
(``BEGIN IMMEDIATE`` ... ``COMMIT``), each inside its own savepoint so that one failing
change does not undo the others; no caller is answered before the commit. This keeps the
cost of aiosqlite's thread hop and of the commit per *batch*, not per event.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import aiosqlite

from engine.errors import StoreCorruptError, StoreError

T = TypeVar("T")

APP_ID = "durable-lab"
SCHEMA_VERSION = 6

_SCHEMA = [
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
_MIGRATIONS: dict[int, list[str]] = {
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
}


@dataclass
class Tx:
    """What a state-change function gets: the connection and a notes list for after commit."""

    conn: sqlite3.Connection
    notes: set[tuple[str, str]] = field(default_factory=set)

    def notify(self, kind: str, key: str) -> None:
        self.notes.add((kind, key))


class Store:
    """One aiosqlite connection with group commit and in-process change notification."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self._pending: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future]] = []
        self._flushing = False
        self._waiters: dict[tuple[str, str], asyncio.Event] = {}
        self._closed = False
        self.batches = 0
        self.changes = 0

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> "Store":
        target = str(path)
        if target != ":memory:":
            parent = Path(target).expanduser().resolve().parent
            if not parent.exists():
                raise StoreError(f"Cannot open database {target!r}: folder {str(parent)!r} does not exist. Create it first.")
            if Path(target).is_dir():
                raise StoreError(f"Cannot open database {target!r}: it is a folder. Give a file path such as {target.rstrip('/')}/engine.db.")
        try:
            pending = aiosqlite.connect(target, isolation_level=None)
            # A script that forgets client.close() must still exit; SQLite's journal makes an
            # interrupted transaction harmless.
            pending._thread.daemon = True
            conn = await pending
        except sqlite3.Error as e:
            raise StoreError(f"Cannot open database {target!r}: {e}") from e
        store = cls(conn, target)
        try:
            await conn._execute(_prepare, conn._conn, target)
        except BaseException:
            await conn.close()
            raise
        return store

    async def close(self) -> None:
        if self._closed:
            return
        while self._flushing or self._pending:
            await asyncio.sleep(0.001)
        self._closed = True
        await self._conn.close()

    # ------------------------------------------------------------ state changes
    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(tx, *args)`` in the next group-committed transaction; return its result."""
        if self._closed:
            raise StoreError("The engine's database is closed: connect a new Client.")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._pending.append((fn, args, fut))
        if not self._flushing:
            self._flushing = True
            loop.create_task(self._flush())
        return await fut

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read-only ``fn(conn, *args)`` on the database thread (no write lock)."""
        if self._closed:
            raise StoreError("The engine's database is closed: connect a new Client.")
        try:
            return await self._conn._execute(fn, self._conn._conn, *args)
        except sqlite3.DatabaseError as e:
            raise _translate(e, self.path) from e

    async def _flush(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    outcomes, notes = await self._conn._execute(_run_batch, self._conn._conn, batch)
                except sqlite3.DatabaseError as e:
                    error = _translate(e, self.path)
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(error)
                    continue
                except BaseException as e:  # noqa: BLE001 - every caller must hear of it
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(e)
                    continue
                self.batches += 1
                self.changes += len(batch)
                for (_, _, fut), (ok, value) in zip(batch, outcomes):
                    if fut.done():
                        continue
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(value)
                for note in notes:
                    self._wake(note)
                self._wake(("any", ""))
        finally:
            self._flushing = False

    # ------------------------------------------------------------ notifications
    def _wake(self, key: tuple[str, str]) -> None:
        event = self._waiters.pop(key, None)
        if event is not None:
            event.set()

    def waiter(self, kind: str, key: str) -> asyncio.Event:
        """An event set after the next commit that notes ``(kind, key)`` in this process."""
        event = self._waiters.get((kind, key))
        if event is None:
            event = self._waiters[(kind, key)] = asyncio.Event()
        return event


def _run_batch(
    conn: sqlite3.Connection, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]]
) -> tuple[list[tuple[bool, Any]], set[tuple[str, str]]]:
    """Run every change in one transaction.

    Changes rarely fail, so the batch first runs without savepoints (they cost two statements
    per change); if one does fail, the whole batch is rolled back and replayed with a savepoint
    around each change, so that only the failing change is undone.
    """
    tx = Tx(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        try:
            outcomes: list[tuple[bool, Any]] = [(True, fn(tx, *args)) for fn, args, _ in batch]
        except sqlite3.DatabaseError:
            raise
        except Exception:  # noqa: BLE001 - replayed below, change by change
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            tx = Tx(conn)
            outcomes = [_isolated(tx, fn, args) for fn, args, _ in batch]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes, tx.notes


def _isolated(tx: Tx, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    conn = tx.conn
    conn.execute("SAVEPOINT change")
    notes_before = set(tx.notes)
    try:
        result = fn(tx, *args)
    except sqlite3.DatabaseError:
        raise
    except Exception as e:  # noqa: BLE001 - handed back to that change's caller
        conn.execute("ROLLBACK TO change")
        conn.execute("RELEASE change")
        tx.notes = notes_before
        return (False, e)
    conn.execute("RELEASE change")
    return (True, result)


def _prepare(conn: sqlite3.Connection, path: str) -> None:
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        if path != ":memory:":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        raise _translate(e, path) from e
    if not tables:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA + [m for v in sorted(_MIGRATIONS) for m in _MIGRATIONS[v]]:
                conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("app", APP_ID), ("schema_version", str(SCHEMA_VERSION))],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return
    if "meta" not in tables:
        raise StoreCorruptError(
            f"{path!r} is an SQLite database of another application (tables: "
            f"{', '.join(sorted(tables)[:5])}), not a durable-lab engine database. "
            "Give another path; the engine does not write into foreign databases."
        )
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("app") != APP_ID:
        raise StoreCorruptError(
            f"{path!r} is not a durable-lab engine database (its meta table says app="
            f"{meta.get('app')!r}). Give another path."
        )
    version = int(meta.get("schema_version", "0"))
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path!r} was written by a newer durable-lab (schema {version}, this one knows "
            f"{SCHEMA_VERSION}). Upgrade durable-lab to open it."
        )
    missing = {"executions", "events", "tasks", "timers", "activity_attempts"} - tables
    if missing:
        raise StoreCorruptError(
            f"{path!r} is a damaged durable-lab database: tables {sorted(missing)} are missing. "
            "Restore it from a copy, or start over with a new file."
        )
    if version < SCHEMA_VERSION:
        _migrate(conn, version)


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        now = int(conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
        for target in sorted(v for v in _MIGRATIONS if v > now):
            for statement in _MIGRATIONS[target]:
                conn.execute(statement)
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _translate(error: sqlite3.DatabaseError, path: str) -> StoreError:
    text = str(error)
    if "file is not a database" in text or "malformed" in text:
        return StoreCorruptError(
            f"{path!r} is not a usable SQLite database ({text}). It may be another kind of file "
            "or damaged. Give another path, or delete the file to start over."
        )
    if "locked" in text or "busy" in text:
        return StoreError(
            f"The database {path!r} stayed locked by another process for 10 s ({text}). "
            "Is a long transaction open elsewhere (a DB browser, a stuck process)?"
        )
    return StoreError(f"Database error on {path!r}: {text}")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
