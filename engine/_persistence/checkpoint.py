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
"""

from __future__ import annotations

import os
import sqlite3
import threading


class Checkpointer:
    def __init__(self, path: str, limit: int = 4 * 1024 * 1024, interval: float = 0.05) -> None:
        self._path = path
        self._wal = path + "-wal"
        self._limit = limit
        self._interval = interval
        self._poked = threading.Event()
        self._stopping = threading.Event()  # ends a rest at once
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

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while True:
                self._poked.wait()
                self._poked.clear()
                if self._stopping.is_set():
                    return
                try:
                    if os.path.getsize(self._wal) > self._limit:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        # No rest while the log is long: the writer starts it over only
                        # after a checkpoint that copied every frame, so the next one follows.
                        continue
                except (OSError, sqlite3.Error):
                    pass  # the next commit tries again; the writer's log only grows meanwhile
                if self._stopping.wait(self._interval):
                    return
        finally:
            conn.close()
