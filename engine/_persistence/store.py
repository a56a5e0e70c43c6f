"""The SQLite store: schema, migrations, and group commit.

Every state change is a plain function ``fn(tx, ...)``. Changes submitted while a batch is
being written are grouped into the next one (``BEGIN IMMEDIATE`` ... ``COMMIT``), which runs
on the event loop's thread (see ``Store._flush``); if one change fails, the batch is replayed
with a savepoint around each change so that only that one is undone. No caller is answered,
and no task is handed to a worker, before the commit. Within a batch, event, attempt and run
rows are written with one ``executemany`` each just before COMMIT, and a ``Cache`` of the
rows this connection wrote spares re-reading them (rechecked when another connection has
committed). Reads run on aiosqlite's threads, through a connection of their own when the
database is a file. Processes sharing a file take turns at the write lock
(``writer_lock``); a process waiting for it waits on a thread, so its event loop goes on.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import aiosqlite
import orjson

from engine._persistence import files
from engine._persistence.checkpoint import Checkpointer
from engine._persistence.writer_lock import WriterLock
from engine.errors import StoreCorruptError, StoreError, StoreLockedError, StoreReadOnlyError

T = TypeVar("T")
log = logging.getLogger("engine.store")

APP_ID = "durable-lab"
SCHEMA_VERSION = 9

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
}


class Cache:
    """What this connection knows of rows it wrote itself, so that changes need not re-read them.

    Touched only on the database thread. It is valid while no other connection (another
    process, or another client of this one) commits: ``PRAGMA data_version``, read at the
    start of every write transaction, tells, and any foreign commit clears it all. A rolled
    back transaction clears it too, since the changes it ran had already updated it.
    """

    def __init__(self) -> None:
        self.version: int | None = None
        # Bumped when another connection has committed: runs cached in an older epoch are
        # checked against their row before use (engine._history.mutable_state.load_run).
        self.epoch = 0
        self.runs: dict[str, Any] = {}  # run id -> engine._history.mutable_state.Run
        self.tasks: dict[int, Any] = {}  # task id -> engine._history.activities.HeldActivity (leased here)

    def clear(self) -> None:
        self.version = None
        self.epoch += 1
        self.runs.clear()
        self.tasks.clear()

    def foreign_commit(self, version: int) -> None:
        """Another connection committed. Runs are rechecked lazily; held activities stay, since
        only their lease holder changes them and every use proves the lease by row count."""
        self.version = version
        self.epoch += 1


@dataclass
class Tx:
    """What a state-change function gets: the connection, the cache, and what to do after commit."""

    conn: sqlite3.Connection
    notes: set[tuple[str, str]] = field(default_factory=set)
    cache: Cache = field(default_factory=Cache)
    # Local receivers of eagerly dispatched tasks, by "workflow:Q" / "activity:Q".
    receivers: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # (receiver, task) pairs handed over after the commit.
    dispatched: list[tuple[Any, Any]] = field(default_factory=list)
    # run id -> (closing event type, attributes), for result waiters in this process.
    closed: dict[str, tuple[str, Any]] = field(default_factory=dict)
    # Rows not yet written: one executemany per batch and table rather than one statement
    # per change. Events and attempts are only inserted; runs are updated once per batch
    # however many of its changes touched them (see engine._history.mutable_state.save_run).
    events: list[tuple[Any, ...]] = field(default_factory=list)
    attempts: list[tuple[Any, ...]] = field(default_factory=list)
    runs: dict[str, Any] = field(default_factory=dict)

    def flush(self) -> None:
        """Write pending rows; call before reading the executions or events table."""
        if self.events:
            self.conn.executemany(
                "INSERT INTO events (run_id, event_id, event_type, event_time, attributes) VALUES (?, ?, ?, ?, ?)",
                self.events,
            )
            self.events.clear()
        if self.attempts:
            self.conn.executemany(
                "INSERT OR REPLACE INTO activity_attempts (run_id, scheduled_event_id, attempt, started_at, ended_at, "
                "outcome, failure, identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self.attempts,
            )
            self.attempts.clear()
        if self.runs:
            self.conn.executemany(
                "UPDATE executions SET next_event_id = ?, wft_state = ?, wft_scheduled_id = ?, wft_started_id = ?, "
                "wft_attempt = ?, buffered = ?, flags = ? WHERE run_id = ?",
                [run.row() for run in self.runs.values()],
            )
            self.runs.clear()

    def drop_pending(self) -> None:
        self.events.clear()
        self.attempts.clear()
        self.runs.clear()

    def notify(self, kind: str, key: str) -> None:
        self.notes.add((kind, key))

    def dispatch(self, receiver: Any, task: Any) -> None:
        self.dispatched.append((receiver, task))

    def undo_dispatch(self, keep: int = 0) -> None:
        """Give back the slots of tasks dispatched in a rolled-back change."""
        for receiver, _ in self.dispatched[keep:]:
            receiver.untake()
        del self.dispatched[keep:]


class Store:
    """One aiosqlite connection with group commit and in-process change notification."""

    def __init__(self, conn: aiosqlite.Connection, path: str, lock_timeout: float = 10.0) -> None:
        self._conn = conn
        self.path = path
        # How long a change waits for a write lock another program holds before it fails.
        self.lock_timeout = lock_timeout
        self._pending: list[tuple[Callable[..., Any], tuple[Any, ...], Any]] = []
        self._flushing = False
        self._reads: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future]] = []
        self._reading = False
        self._waiters: dict[tuple[str, str], asyncio.Event] = {}
        self._close_waiters: dict[str, list[asyncio.Future]] = {}
        self._cache = Cache()
        self.receivers: dict[str, tuple[Any, ...]] = {}
        self._checkpointer: Checkpointer | None = None
        self._writer_lock: WriterLock | None = None
        # Reads go through their own connection (and thread) when the database is a file, so
        # that they never hold up a write batch on this one; an in-memory database is only
        # visible to its own connection.
        self._reader = conn
        self._closed = False
        # Opened without write access (see open): changes raise StoreReadOnlyError at once.
        self.read_only = False
        self.batches = 0
        self.changes = 0

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], *, file_mode: int = files.DEFAULT_FILE_MODE, lock_timeout: float = 10.0
    ) -> "Store":
        """Open (or create) the database at ``path``; a new file gets ``file_mode`` (its -wal,
        -shm and -lock files follow the database file's mode). A database this user cannot
        write is opened read-only (``read_only``): reads work, changes raise StoreReadOnlyError.
        ``lock_timeout`` (seconds): how long a change waits while another program holds the
        write lock before it fails."""
        files.check_file_mode(file_mode)
        target = str(path)
        if target != ":memory:":
            parent = Path(target).expanduser().resolve().parent
            if not parent.exists():
                raise StoreError(f"Cannot open database {target!r}: folder {str(parent)!r} does not exist. Create it first.")
            if Path(target).is_dir():
                raise StoreError(f"Cannot open database {target!r}: it is a folder. Give a file path such as {target.rstrip('/')}/engine.db.")
            if files.cannot_write(target):
                return await cls._open_read_only(target, lock_timeout)
            files.create_private(target, file_mode)
        try:
            # check_same_thread off: write batches run on the event loop's thread (Store._flush),
            # never at the same time as anything on the connection's own thread.
            pending = aiosqlite.connect(target, isolation_level=None, check_same_thread=False)
            # A script that forgets client.close() must still exit; SQLite's journal makes an
            # interrupted transaction harmless.
            pending._thread.daemon = True
            conn = await pending
        except sqlite3.Error as e:
            raise StoreError(f"Cannot open database {target!r}: {e}") from e
        store = cls(conn, target, lock_timeout)
        try:
            await conn._execute(_prepare, conn._conn, target, lock_timeout)
        except BaseException:
            await conn.close()
            raise
        if target != ":memory:":
            try:
                pending = aiosqlite.connect(target, isolation_level=None)
                pending._thread.daemon = True
                reader = await pending
                await reader._execute(_prepare_reader, reader._conn, target, lock_timeout)
            except BaseException:
                await conn.close()
                raise
            store._reader = reader
            # Batches run on the event loop's thread, which must not sleep in SQLite's busy
            # handler: a batch that finds the write lock taken waits on the database thread.
            await conn._execute(conn._conn.execute, "PRAGMA busy_timeout = 0")
            store._checkpointer = Checkpointer(target)
            try:
                store._writer_lock = WriterLock(target)
            except OSError as e:  # a read-only folder: SQLite's busy handler alone
                log.debug("no writer lock file next to %s: %s", target, e)
        return store

    @classmethod
    async def _open_read_only(cls, target: str, lock_timeout: float) -> "Store":
        """One connection that never writes, also serving reads. Without a writable folder
        SQLite cannot create the -shm file that reading a WAL database takes; the file is then
        read as immutable, which is exact as long as no -wal file holds changes."""
        for immutable in (False, True):
            if immutable and files.has_log(target):
                raise StoreReadOnlyError(
                    f"The database {target!r} is read-only for this user and its write-ahead log ({target}-wal) holds "
                    "changes that cannot be read without a -shm file, which this user cannot create there. Open it "
                    "once with write access (its owner's engine folds the log in when it closes), or copy it with its "
                    "-wal file somewhere writable."
                )
            try:
                pending = aiosqlite.connect(files.read_only_uri(target, immutable=immutable), uri=True, isolation_level=None)
                pending._thread.daemon = True
                conn = await pending
            except sqlite3.Error as e:
                raise StoreError(f"Cannot open database {target!r}: {e}") from e
            try:
                await conn._execute(_prepare, conn._conn, target, lock_timeout, True)
            except _NeedsShm:
                await conn.close()
                continue
            except BaseException:
                await conn.close()
                raise
            store = cls(conn, target, lock_timeout)
            store.read_only = True
            return store
        raise AssertionError("unreachable: the immutable open either works or raises")

    async def close(self) -> None:
        if self._closed:
            return
        while self._flushing or self._pending or self._reading or self._reads:
            await asyncio.sleep(0.001)
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.stop()
        await self._conn.close()
        if self._reader is not self._conn:
            await self._reader.close()
        if self._writer_lock is not None:
            self._writer_lock.close()

    # ------------------------------------------------------------ state changes
    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(tx, *args)`` in the next group-committed transaction; return its result."""
        if self._closed:
            raise StoreError("The engine's database is closed: connect a new Client.")
        if self.read_only:
            raise StoreReadOnlyError(files.read_only_message(self.path))
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._pending.append((fn, args, fut))
        if not self._flushing:
            self._flushing = True
            loop.create_task(self._flush())
        return await fut

    def submit(self, fn: Callable[..., Any], *args: Any, done: Callable[[bool, Any], None]) -> None:
        """``run`` without awaiting: ``done(ok, result or error)`` is called after the commit."""
        if self._closed or self.read_only:
            done(False, StoreReadOnlyError(files.read_only_message(self.path)) if self.read_only else StoreError("The engine's database is closed: connect a new Client."))
            return
        self._pending.append((fn, args, _Callback(done)))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read-only ``fn(conn, *args)`` on the database thread (no write lock).

        Reads waiting at the same time share one trip to the database thread."""
        if self._closed:
            raise StoreError("The engine's database is closed: connect a new Client.")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._reads.append((fn, args, fut))
        if not self._reading:
            self._reading = True
            loop.create_task(self._read_all())
        return await fut

    async def _read_all(self) -> None:
        try:
            while self._reads:
                batch, self._reads = self._reads, []
                try:
                    outcomes = await _to_end(self._reader._execute(_run_reads, self._reader._conn, batch))
                except BaseException as e:  # noqa: BLE001 - every caller must hear of it
                    outcomes = [(False, e)] * len(batch)
                for (_, _, fut), (ok, value) in zip(batch, outcomes):
                    if fut.done():
                        continue
                    if ok:
                        fut.set_result(value)
                    elif isinstance(value, sqlite3.DatabaseError):
                        fut.set_exception(_translate(value, self.path, self.lock_timeout))
                    else:
                        fut.set_exception(value)
        finally:
            self._reading = False

    async def _flush(self) -> None:
        """Write what is pending, in one transaction per round, on the event loop's thread.

        Write batches run here rather than on the database thread: SQLite does the same work
        either way, but a thread would hand the GIL back and forth with the event loop at every
        statement, and while another process waits for the write lock that handing-over is
        time it waits too. Only the wait for the lock itself happens on the database thread,
        so that the event loop goes on meanwhile (and the batch grows).
        """
        lock = self._writer_lock
        try:
            while self._pending:
                if lock is not None and not lock.acquire(wait=False):
                    await _to_end(self._conn._execute(lock.acquire))
                batch, self._pending = self._pending, []
                try:
                    tx = Tx(self._conn._conn, cache=self._cache, receivers=self.receivers)
                    waited = self.lock_timeout  # how long SQLite waited before any "locked" below
                    if self._reader is self._conn and self._reading:
                        outcomes = await _to_end(self._conn._execute(_run_batch, tx, batch))  # the connection is busy
                    else:
                        try:
                            waited = 0.0  # this path runs with SQLite's busy timeout off
                            outcomes = _run_batch(tx, batch)
                        except _WriterBusy:
                            waited = self.lock_timeout
                            # A program that is not an engine process (those queue on the lock
                            # file) holds SQLite's write lock: wait for it on the database
                            # thread, as SQLite's busy handler would, not on the event loop.
                            outcomes = await _to_end(self._conn._execute(_run_batch_patiently, tx, batch, self.lock_timeout))
                except sqlite3.DatabaseError as e:
                    error = _translate(e, self.path, waited)
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(error)
                    continue
                except BaseException as e:  # noqa: BLE001 - every caller must hear of it
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(e)
                    continue
                finally:
                    if lock is not None:
                        lock.release()
                self.batches += 1
                self.changes += len(batch)
                if self._checkpointer is not None:
                    self._checkpointer.poke()
                for (_, _, fut), (ok, value) in zip(batch, outcomes):
                    if fut.done():
                        continue
                    if ok:
                        fut.set_result(value)
                    else:
                        fut.set_exception(value)
                for receiver, task in tx.dispatched:
                    receiver.accept(task)
                for run_id, closing in tx.closed.items():
                    for waiter in self._close_waiters.pop(run_id, ()):
                        if not waiter.done():
                            waiter.set_result(closing)
                for note in tx.notes:
                    self._wake(note)
                self._wake(("any", ""))
        finally:
            self._flushing = False

    # ------------------------------------------------------------ notifications
    def _wake(self, key: tuple[str, str]) -> None:
        event = self._waiters.pop(key, None)
        if event is not None:
            event.set()

    def close_waiter(self, run_id: str) -> asyncio.Future:
        """A future resolved with (event type, attributes) of the run's closing event when
        this process commits it (closes by other processes are not seen here)."""
        fut = asyncio.get_running_loop().create_future()
        self._close_waiters.setdefault(run_id, []).append(fut)
        return fut

    def drop_close_waiter(self, run_id: str, fut: asyncio.Future) -> None:
        waiters = self._close_waiters.get(run_id)
        if waiters is not None:
            if fut in waiters:
                waiters.remove(fut)
            if not waiters:
                del self._close_waiters[run_id]

    async def settle(self) -> None:
        """Wait until every change submitted so far has committed (or failed)."""
        while self._flushing or self._pending:
            await asyncio.sleep(0.001)

    def waiter(self, kind: str, key: str) -> asyncio.Event:
        """An event set after the next commit that notes ``(kind, key)`` in this process."""
        event = self._waiters.get((kind, key))
        if event is None:
            event = self._waiters[(kind, key)] = asyncio.Event()
        return event


class _Callback:
    """Stands where a change's future would, for changes submitted with a callback."""

    __slots__ = ("_done", "_called")

    def __init__(self, done: Callable[[bool, Any], None]) -> None:
        self._done = done
        self._called = False

    def done(self) -> bool:
        return self._called

    def set_result(self, value: Any) -> None:
        self._finish(True, value)

    def set_exception(self, error: BaseException) -> None:
        self._finish(False, error)

    def _finish(self, ok: bool, value: Any) -> None:
        self._called = True
        try:
            self._done(ok, value)
        except Exception:  # noqa: BLE001 - one caller's bug must not stop the others' results
            log.exception("a commit callback failed")


async def _to_end(job: Any) -> Any:
    """Await a job of a database thread to its end, even if the awaiting task is cancelled.

    Only the store's own flush and read tasks use this: nobody awaits them, and the thread
    runs the job anyway, so a write lock it takes or a batch it commits must be known here
    (callers are waiting for it), and its answer must reach the event loop before the loop
    closes (an answer to a closed loop is aiosqlite's "Event loop is closed" traceback).
    asyncio.run cancels every task at its end: this is how a program that never closed its
    Client still exits cleanly. The cancellation is absorbed; the task finishes its work."""
    future = asyncio.ensure_future(job)
    while True:
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.cancelled():
                raise


def _run_reads(
    conn: sqlite3.Connection, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]]
) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    for fn, args, _ in batch:
        try:
            outcomes.append((True, fn(conn, *args)))
        except Exception as e:  # noqa: BLE001 - handed back to that read's caller
            outcomes.append((False, e))
    return outcomes


def _run_batch(tx: Tx, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]]) -> list[tuple[bool, Any]]:
    """Run every change in one transaction.

    Changes rarely fail, so the batch first runs without savepoints (they cost two statements
    per change); if one does fail, the whole batch is rolled back and replayed with a savepoint
    around each change, so that only the failing change is undone.
    """
    conn, cache = tx.conn, tx.cache
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        if _is_locked(str(e)):
            raise _WriterBusy() from e
        raise
    try:
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if version != cache.version:
            cache.foreign_commit(version)
        try:
            outcomes: list[tuple[bool, Any]] = [(True, fn(tx, *args)) for fn, args, _ in batch]
        except sqlite3.DatabaseError:
            raise
        except Exception:  # noqa: BLE001 - replayed below, change by change
            conn.execute("ROLLBACK")
            _forget(tx)
            conn.execute("BEGIN IMMEDIATE")
            cache.version = conn.execute("PRAGMA data_version").fetchone()[0]
            outcomes = [_isolated(tx, fn, args) for fn, args, _ in batch]
        tx.flush()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        _forget(tx)
        raise
    return outcomes


class _WriterBusy(Exception):
    """BEGIN IMMEDIATE found SQLite's write lock taken (the write connection does not wait)."""


def _run_batch_patiently(
    tx: Tx, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]], lock_timeout: float
) -> list[tuple[bool, Any]]:
    """``_run_batch`` on the database thread, waiting up to ``lock_timeout`` for SQLite's write lock."""
    tx.conn.execute(f"PRAGMA busy_timeout = {_busy_ms(lock_timeout)}")
    try:
        return _run_batch(tx, batch)
    except _WriterBusy as e:
        raise e.__cause__ or sqlite3.OperationalError("database is locked") from None
    finally:
        tx.conn.execute("PRAGMA busy_timeout = 0")


def _forget(tx: Tx) -> None:
    """After a rollback: the cache saw changes that did not happen, and nothing is handed out."""
    tx.cache.clear()
    tx.drop_pending()
    tx.undo_dispatch()
    tx.notes.clear()
    tx.closed.clear()


def _isolated(tx: Tx, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
    conn = tx.conn
    tx.flush()
    conn.execute("SAVEPOINT change")
    notes_before = set(tx.notes)
    closed_before = dict(tx.closed)
    dispatched_before = len(tx.dispatched)
    try:
        result = fn(tx, *args)
    except sqlite3.DatabaseError:
        raise
    except Exception as e:  # noqa: BLE001 - handed back to that change's caller
        conn.execute("ROLLBACK TO change")
        conn.execute("RELEASE change")
        tx.notes = notes_before
        tx.closed = closed_before
        tx.drop_pending()
        tx.undo_dispatch(dispatched_before)
        # The failed change may have updated cached rows before failing.
        version = tx.cache.version
        tx.cache.clear()
        tx.cache.version = version
        return (False, e)
    conn.execute("RELEASE change")
    return (True, result)


def _busy_ms(lock_timeout: float) -> int:
    return max(0, round(lock_timeout * 1000))


def _prepare_reader(conn: sqlite3.Connection, path: str, lock_timeout: float) -> None:
    try:
        conn.execute(f"PRAGMA busy_timeout = {_busy_ms(lock_timeout)}")
        conn.execute("PRAGMA cache_size = -16384")
        conn.execute("PRAGMA query_only = 1")  # Store.read is for reads: a write there is a bug
    except sqlite3.DatabaseError as e:
        raise _translate(e, path, lock_timeout) from e


class _NeedsShm(Exception):
    """A read-only connection could not read: SQLite needs a -shm file it cannot create."""


def _prepare(conn: sqlite3.Connection, path: str, lock_timeout: float, read_only: bool = False) -> None:
    if read_only:
        conn.execute("PRAGMA query_only = 1")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as e:
            if "readonly" in str(e) or "unable to open" in str(e):
                raise _NeedsShm() from e
            raise _translate(e, path, lock_timeout) from e
    try:
        conn.execute(f"PRAGMA busy_timeout = {_busy_ms(lock_timeout)}")
        if path != ":memory:" and not read_only:
            conn.execute("PRAGMA journal_mode = WAL")
            # Checkpoints run on their own thread (see _checkpoint), not inside our commits;
            # the writer's own stays as a backstop should that thread ever fall far behind.
            conn.execute("PRAGMA wal_autocheckpoint = 10000")
            # When the log restarts, it is cut back to 4 MiB rather than kept at its largest.
            conn.execute("PRAGMA journal_size_limit = 4194304")
        if not read_only:
            conn.execute("PRAGMA synchronous = NORMAL")
        # SQLite's default page cache (2 MB) is smaller than the pages a busy engine keeps
        # touching; every miss is a read from the file (or the log). Allocated as used.
        conn.execute("PRAGMA cache_size = -65536")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as e:
        raise _translate(e, path, lock_timeout) from e
    if not tables and read_only:
        raise StoreCorruptError(f"{path!r} is empty (no engine tables) and read-only for this user: give the path of an engine database.")
    if not tables:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have made the schema while this one waited for the lock
            # (a worker and a starter started together on a new file): then it is checked below.
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
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
        if not tables:
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
    raw_version = meta.get("schema_version", "0")
    try:
        version = int(raw_version)
    except ValueError:
        raise StoreCorruptError(
            f"{path!r} is a damaged durable-lab database: its schema version {raw_version!r} is not "
            f"a number. {_RESTORE}"
        ) from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path!r} was written by a newer durable-lab (schema {version}, this one knows "
            f"{SCHEMA_VERSION}). Upgrade durable-lab to open it."
        )
    mismatch = _schema_mismatch(conn, version, tables)
    if mismatch:
        raise StoreCorruptError(
            f"{path!r} is a damaged durable-lab database: it says schema version {version}, but "
            f"{mismatch}. {_RESTORE}"
        )
    if version < SCHEMA_VERSION:
        if read_only:
            raise StoreReadOnlyError(
                f"{path!r} was written by an older durable-lab (schema {version}; this one reads {SCHEMA_VERSION}) and "
                "must be upgraded when opened, which needs write access it does not have for this user: open it "
                "once as its owner, or work on a copy."
            )
        _migrate(conn, version)


_RESTORE = "Restore it from a copy, or start over with a new file."


@functools.lru_cache(maxsize=None)
def _schema_at(version: int) -> dict[str, tuple[str, ...]]:
    """The tables and their columns a database of ``version`` has, built in memory."""
    conn = sqlite3.connect(":memory:")
    try:
        for statement in _SCHEMA + [m for v in sorted(_MIGRATIONS) if v <= version for m in _MIGRATIONS[v]]:
            conn.execute(statement)
        return _columns(conn, {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")})
    finally:
        conn.close()


def _columns(conn: sqlite3.Connection, tables: set[str]) -> dict[str, tuple[str, ...]]:
    return {t: tuple(r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')) for t in sorted(tables)}


def _added_in(table: str, column: str | None = None) -> int:
    return min(v for v in range(1, SCHEMA_VERSION + 1) if column in _schema_at(v).get(table, ()) or (column is None and table in _schema_at(v)))


def _schema_mismatch(conn: sqlite3.Connection, version: int, tables: set[str]) -> str:
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


def _is_locked(text: str) -> bool:
    """SQLite's "database is locked" / "database is busy": another connection holds the lock."""
    return "locked" in text or "busy" in text


def _translate(error: sqlite3.DatabaseError, path: str, lock_timeout: float = 10.0) -> StoreError:
    text = str(error)
    if "file is not a database" in text or "malformed" in text:
        return StoreCorruptError(
            f"{path!r} is not a usable SQLite database ({text}). It may be another kind of file "
            "or damaged. Give another path, or delete the file to start over."
        )
    if "readonly" in text:  # a write reached SQLite after all (permissions changed while open)
        return StoreReadOnlyError(files.read_only_message(path))
    if _is_locked(text):
        if lock_timeout <= 0:  # SQLite answered busy without waiting: say so, not "for 0 s"
            return StoreLockedError(
                f"The database {path!r} was locked by another connection in the middle of a write ({text}); "
                "nothing was written and trying again is safe."
            )
        return StoreLockedError(
            f"The database {path!r} stayed locked by another process for {lock_timeout:g} s ({text}). "
            "Is a long transaction open elsewhere (a DB browser, a stuck process)?"
        )
    return StoreError(f"Database error on {path!r}: {text}")


# Every event's attributes, task and buffered rows are encoded inside the write transaction,
# the one part of the engine that processes sharing a file take in turns: orjson encodes them
# about six times faster than the standard library (49 -> 8 us for a workflow's 23 events).
# What it refuses (integers beyond 64 bits, keys that are not strings) goes to json, whose C
# encoder is built once here rather than on every json.dumps call.
_c_encode = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, json.JSONEncoder().default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
) if json.encoder.c_make_encoder is not None else None  # type: ignore[attr-defined]
_encode = json.JSONEncoder(separators=(",", ":")).encode
_orjson_dumps = orjson.dumps


def dumps(value: Any) -> str:
    try:
        return _orjson_dumps(value).decode()
    except TypeError:
        pass
    if _c_encode is not None:
        return "".join(_c_encode(value, 0))
    return _encode(value)
