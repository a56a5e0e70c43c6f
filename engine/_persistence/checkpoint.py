"""WAL checkpoints on a thread of their own, off the commit path.

In WAL mode SQLite copies committed pages back into the database file (a checkpoint) when
the log passes 1000 pages, inside whichever COMMIT crossed that mark: with synchronous =
NORMAL that commit also waits for two fsyncs, and every run waiting on it waits too. The
store raises that mark tenfold on its connection (a backstop) and this thread checkpoints
instead, through its own connection, whenever the log has grown past ``limit`` bytes. A PASSIVE checkpoint
never blocks writers or readers, and checkpointing changes nothing about what a commit
guarantees: a committed transaction is in the log either way.

While the log is shorter than the limit, the thread looks at it at most every ``interval``
seconds. Woken at every commit, it cost a workflow run alone (nine commits, each a wake-up and
a trip for the GIL) 0.4 ms of CPU, more than a seventh of the run (benchmarks/one_at_a_time.py);
a poke while it rests only marks the event, and the look after the rest sees it.

Past the limit, a checkpoint alone does not shorten the log: the writer starts the log over
(and cuts the file back to ``journal_size_limit``) only in a transaction that began after a
checkpoint had copied every frame, with no commit in between. One run at a time commits every
few hundred microseconds, so nearly every checkpoint had a commit land while it ran: the log
stayed long and the thread checkpointed at every commit, with two fsyncs each, 0.1-1.1 ms of
CPU per workflow run alone and the event loop's GIL waits besides (benchmarks/README.md,
session 7). So past the limit it checkpoints twice: first without holding anything (the bulk
of the copy, writers going on), then, at the next look, holding the engine's write lock
(``engine._persistence.writer_lock``; a holder lets go after its batch) so that no engine
process commits meanwhile (only while no other connection writes to the file: ``alone``):
that one copies only what was committed since the first, the log is then fully copied, and
the next transaction starts it over. A PASSIVE checkpoint waits for nothing in SQLite, so
holding the lock through one cannot deadlock with a writer.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Callable

from engine._persistence.writer_lock import WriterLock, quick_switches


class Checkpointer:
    def __init__(
        self, path: str, limit: int = 4 * 1024 * 1024, interval: float = 0.05, alone: Callable[[], bool] = lambda: True
    ) -> None:
        self._path = path
        self._wal = path + "-wal"
        self._limit = limit
        self._interval = interval
        # Whether no other connection has been seen writing: with others, the lock passes between
        # busy processes and a third party in its queue slows every hand-over, so the thread
        # checkpoints without it as before (benchmarks/README.md, session 7).
        self._alone = alone
        self._poked = threading.Event()
        self._stopping = threading.Event()  # ends a rest at once
        # Its own open file (flock excludes other open files, even in this process), so that
        # holding it keeps this process's store from committing too.
        try:
            self._lock: WriterLock | None = WriterLock(path)
        except OSError:  # a read-only folder: checkpoints without it, as before
            self._lock = None
        self.checkpoints = 0  # how many it ran, for benchmarks
        self.locked_checkpoints = 0
        self._thread = threading.Thread(target=self._run, name="durable-lab checkpoints", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """A transaction committed: checkpoint if the log grew past the limit."""
        if not self._poked.is_set():
            self._poked.set()

    def stop(self) -> None:
        self._stopping.set()
        self._poked.set()
        self._thread.join(timeout=10)

    def _checkpoint_holding_the_lock(self, conn: sqlite3.Connection) -> None:
        # Waited for: run alone, the event loop holds the GIL except while in SQLite, inside
        # its transactions, so a lock taken only if free was nearly never had; a holder lets
        # go after its batch. Held, this thread must not wait out the interpreter's switch
        # interval (5 ms) for the GIL after each call while writers of every process wait on
        # the lock: the short interval stays on from the wait to the release.
        assert self._lock is not None
        quick_switches.enter()
        try:
            self._lock.acquire()
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                self._lock.release()
        finally:
            quick_switches.leave()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        copied = False  # the last look past the limit checkpointed without the lock
        try:
            while True:
                self._poked.wait()
                self._poked.clear()
                if self._stopping.is_set():
                    return
                try:
                    if os.path.getsize(self._wal) > self._limit:
                        locked = copied and self._lock is not None and self._alone()
                        if locked:
                            self._checkpoint_holding_the_lock(conn)
                        else:
                            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        self.checkpoints += 1
                        self.locked_checkpoints += locked
                        # No rest while the log is long: the next look (the next commit's poke)
                        # checkpoints holding the lock; after that one the next transaction
                        # starts the log over, unless a reader kept a frame from being copied
                        # (then the two begin again).
                        copied = not locked
                        continue
                    copied = False
                except (OSError, sqlite3.Error):
                    pass  # the next commit tries again; the writer's log only grows meanwhile
                if self._stopping.wait(self._interval):
                    return
        finally:
            conn.close()
            if self._lock is not None:
                self._lock.close()
