"""The SQLite store: group commit of the history service's state changes, and reads.

Every state change is a plain function ``fn(tx, ...)``. Changes submitted while a batch is
being written are grouped into the next one (``BEGIN IMMEDIATE`` ... ``COMMIT``), which runs
on the event loop's thread (see ``Store._flush``); if one change fails, the batch is replayed
with a savepoint around each change so that only that one is undone. No caller is answered,
and no task is handed to a worker, before the commit. Within a batch, event, attempt and run
rows are written with one ``executemany`` each just before COMMIT, and a ``Cache`` of the
rows this connection wrote spares re-reading them (rechecked when another connection has
committed; see transactions.py). Reads run on aiosqlite's threads, through a connection of their own when the
database is a file. Processes sharing a file take turns at the write lock
(``writer_lock``); a process waiting for it waits on a thread, so its event loop goes on.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import math
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

import aiosqlite

from engine._persistence import files
from engine._persistence.checkpoint import Checkpointer
from engine._persistence.connection import NeedsShm, busy_ms, is_locked, prepare, prepare_reader, translate
from engine._persistence.transactions import Cache, Tx
from engine._persistence.writer_lock import Hold, LockStats, WriterLock
from engine.errors import StoreError, StoreReadOnlyError


T = TypeVar("T")


log = logging.getLogger("engine.store")


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
        self._jobs: dict[str, asyncio.Task] = {}  # the latest flush and read tasks (see _start)
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
        # Seconds this store's write batches waited for another engine process's write lock
        # (engine.loadtest reports it per process).
        self.lock_wait_seconds = 0.0
        # When the timer queue (engine._history.timer_queue) next looks at due times anyway:
        # a batch whose earliest due time (Tx.due) is later need not wake it. Infinity: wake.
        self.timers_deadline = math.inf
        # The earliest due time committed since the timer queue last began to look (None: none).
        self.due_seen: float | None = None
        self.lock_stats = LockStats()
        # Also count this thread's CPU inside the lock (benchmarks turn it on): two
        # clock_gettime(CLOCK_THREAD_CPUTIME_ID) per batch cost one run at a time 0.1-0.3 ms
        # of CPU per workflow here (benchmarks/one_at_a_time.py, alternating rounds).
        self.measure_lock_cpu = False

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
            await conn._execute(prepare, conn._conn, target, lock_timeout)
        except BaseException:
            await conn.close()
            raise
        if target != ":memory:":
            try:
                pending = aiosqlite.connect(target, isolation_level=None)
                pending._thread.daemon = True
                reader = await pending
                await reader._execute(prepare_reader, reader._conn, target, lock_timeout)
            except BaseException:
                await conn.close()
                raise
            store._reader = reader
            # Batches run on the event loop's thread, which must not sleep in SQLite's busy
            # handler: a batch that finds the write lock taken waits on the database thread.
            await conn._execute(conn._conn.execute, "PRAGMA busy_timeout = 0")
            cache = store._cache
            store._checkpointer = Checkpointer(target, alone=lambda: cache.foreign_commits == 0)
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
                await conn._execute(prepare, conn._conn, target, lock_timeout, True)
            except NeedsShm:
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
            loop = asyncio.get_running_loop()
            if self._pending and not self._flushing:  # tasks cancelled before they began
                self._start(loop, "_flushing", self._flush)
            if self._reads and not self._reading:
                self._start(loop, "_reading", self._read_all)
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
            self._start(loop, "_flushing", self._flush)
        return await fut

    def submit(self, fn: Callable[..., Any], *args: Any, done: Callable[[bool, Any], None]) -> None:
        """``run`` without awaiting: ``done(ok, result or error)`` is called after the commit."""
        if self._closed or self.read_only:
            done(False, StoreReadOnlyError(files.read_only_message(self.path)) if self.read_only else StoreError("The engine's database is closed: connect a new Client."))
            return
        self._pending.append((fn, args, _Callback(done)))
        if not self._flushing:
            self._start(asyncio.get_running_loop(), "_flushing", self._flush)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read-only ``fn(conn, *args)`` on the database thread (no write lock).

        Reads waiting at the same time share one trip to the database thread."""
        if self._closed:
            raise StoreError("The engine's database is closed: connect a new Client.")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        self._reads.append((fn, args, fut))
        if not self._reading:
            self._start(loop, "_reading", self._read_all)
        return await fut

    def _start(self, loop: asyncio.AbstractEventLoop, flag: str, job: Callable[[], Any]) -> None:
        """Run the flush or read job in a task, ``flag`` set while it runs. A task cancelled
        before its first step (asyncio.run cancels every task at its end) never enters its
        ``finally``: the flag is cleared here then, and ``settle`` starts another for what
        is left, instead of waiting for ever (a program hung at exit)."""
        setattr(self, flag, True)

        def ended(task: asyncio.Task) -> None:
            # Only the latest job's end may clear the flag: a later one may be running.
            if task.cancelled() and self._jobs.get(flag) is task:
                setattr(self, flag, False)

        task = loop.create_task(job())
        self._jobs[flag] = task
        task.add_done_callback(ended)

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
                        fut.set_exception(translate(value, self.path, self.lock_timeout))
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
                if lock is not None and not lock.acquire(wait=False) and await self._wait_and_write(lock):
                    continue
                await self._write(lock)
        finally:
            self._flushing = False

    async def _wait_and_write(self, lock: WriterLock) -> bool:
        """Wait for another process's write lock on the database thread, then write the batch
        in the callback that tells the event loop the lock is taken: one turn of the loop
        after the hand-over, where resolving the thread's future, the task awaiting it and
        this flush took four, each behind every callback made ready meanwhile, with the lock
        held and unused. True if the batch was written (and the lock released); False if
        ``_write`` must write it, the lock held."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # the flush task's, for the callbacks of the answers
        stats = self.lock_stats
        waiting_since = time.perf_counter()
        written = False

        def taken(at: float, handover: float | None) -> None:  # on the event loop
            nonlocal written
            now = time.perf_counter()
            self.lock_wait_seconds += now - waiting_since
            stats.waits += 1
            stats.wait_seconds += now - waiting_since
            stats.held_idle_seconds += now - at
            if handover is not None:
                stats.handovers += 1
                stats.handover_seconds += handover
            done = self._write_now(lock)
            if done is not None:
                written = True  # before the answers: the lock is released whatever they do
                if done:
                    self._answer(*done)

        def wait() -> None:  # on the database thread
            at, handover = lock.acquire_timed()
            try:
                loop.call_soon_threadsafe(taken, at, handover, context=context)
            except RuntimeError:  # the event loop is closed: nobody is left to write
                lock.release()
                raise

        await _to_end(self._conn._execute(wait))
        return written

    def _write_now(self, lock: WriterLock) -> tuple[Any, ...] | None:
        """Write the pending batch at once, the lock held (``_wait_and_write``), and release
        the lock; returns what ``_answer`` takes (empty if the batch failed). None, the lock
        still held and nothing written, when the batch must be written on the database thread
        (``_write``)."""
        if not self._pending:
            lock.release()
            return ()
        if self._reader is self._conn and self._reading:  # the connection is busy
            return None
        hold = Hold(self.lock_stats, self.measure_lock_cpu)
        batch, self._pending = self._pending, []
        tx = Tx(self._conn._conn, cache=self._cache, receivers=self.receivers)
        try:
            outcomes = _run_batch(tx, batch)
        except _WriterBusy:
            self._pending[:0] = batch  # nothing was written: _write waits for SQLite's lock
            hold.end()
            return None
        except BaseException as e:  # noqa: BLE001 - every caller must hear of it
            hold.end()
            lock.release()
            _fail(batch, translate(e, self.path, 0.0) if isinstance(e, sqlite3.DatabaseError) else e)
            return ()
        hold.end()
        lock.release()
        return (tx, batch, outcomes)

    async def _write(self, lock: WriterLock | None) -> None:
        """Write the pending batch, the lock (if any) held, and release it."""
        hold = Hold(self.lock_stats, self.measure_lock_cpu) if lock is not None else None
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
            _fail(batch, translate(e, self.path, waited))
            return
        except BaseException as e:  # noqa: BLE001 - every caller must hear of it
            _fail(batch, e)
            return
        finally:
            if hold is not None:
                hold.end()
            if lock is not None:
                lock.release()
        self._answer(tx, batch, outcomes)

    def _answer(self, tx: Tx, batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]], outcomes: list[tuple[bool, Any]]) -> None:
        """After the commit: answer each change, hand the tasks over, wake who waits."""
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
        if tx.dispatched:
            # The tasks handed over run here, one after another (a worker replays a run it has
            # not cached). Their allocations would set off a collection every 700 objects,
            # each walking all the young objects the batch's other tasks still hold; one
            # collection after the batch walks them once. Bounded: these are the batch's tasks.
            collect_after = gc.isenabled()
            gc.disable()
            try:
                for receiver, task in tx.dispatched:
                    receiver.accept(task)
            finally:
                if collect_after:
                    gc.enable()
        for run_id, closing in tx.closed.items():
            for waiter in self._close_waiters.pop(run_id, ()):
                if not waiter.done():
                    waiter.set_result(closing)
        for note in tx.notes:
            self._wake(note)
        if tx.due is not None:
            if self.due_seen is None or tx.due < self.due_seen:
                self.due_seen = tx.due
            if tx.due < self.timers_deadline:
                self._wake(("timers", ""))
        self._wake(("any", ""))

    # ------------------------------------------------------------ notifications
    def _wake(self, key: tuple[str, str]) -> None:
        event = self._waiters.pop(key, None)
        if event is not None:
            event.set()

    def knows_open(self, run_id: str) -> bool:
        """Whether this connection wrote the run as open and no other connection has been seen
        committing to the file: then the run closes through this store (``close_waiter`` hears
        of it), or through another process whose first commit nothing noticed yet, which the
        result waiters' shared poll (engine._frontend.closing_watch) finds."""
        run = self._cache.runs.get(run_id)
        return run is not None and run.open and self._cache.foreign_commits == 0

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
            if not self._flushing:  # its flush task was cancelled before it began
                self._start(asyncio.get_running_loop(), "_flushing", self._flush)
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


def _fail(batch: list[tuple[Callable[..., Any], tuple[Any, ...], Any]], error: BaseException) -> None:
    for _, _, fut in batch:
        if not fut.done():
            fut.set_exception(error)


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
        if is_locked(str(e)):
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
    tx.conn.execute(f"PRAGMA busy_timeout = {busy_ms(lock_timeout)}")
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
