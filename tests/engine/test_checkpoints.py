"""The checkpoint thread keeps the write-ahead log short while a writer commits without pause.

SQLite starts the log over only in a transaction that began after a checkpoint had copied
every frame, with no commit in between. A writer committing back to back (one run at a time)
nearly always committed during the thread's checkpoint, so the log stayed past its limit and
was checkpointed at every commit. The thread now follows a checkpoint made while writers went
on with one made holding the engine's write lock: the log is then started over. Only while no
other connection writes to the file: busy processes pass the lock between them.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from engine import Client
from engine._persistence.checkpoint import Checkpointer
from engine._persistence.writer_lock import WriterLock

from tests.engine.workflows import Parallel

LIMIT = 64 * 1024  # bytes: a few transactions of the writer below


def _writer(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # only the thread checkpoints
    # As the store's connection does, with the thread's limit: a restarted log is cut back to it.
    conn.execute(f"PRAGMA journal_size_limit = {LIMIT}")
    conn.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB)")
    return conn


def test_a_log_past_its_limit_is_started_over_while_a_writer_commits_back_to_back(tmp_path: Path) -> None:
    path = str(tmp_path / "ck.db")
    conn = _writer(path)
    lock = WriterLock(path)
    checkpointer = Checkpointer(path, limit=LIMIT, interval=0.001)
    wal = path + "-wal"
    was_long = started_over = False
    largest = 0
    deadline = time.monotonic() + 30  # a bound for a loaded machine, not a figure
    try:
        i = 0
        while not started_over and time.monotonic() < deadline:
            lock.acquire()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT INTO rows (body) VALUES (?)", (os.urandom(6000),))
                conn.execute("COMMIT")
            finally:
                lock.release()
            checkpointer.poke()
            size = os.path.getsize(wal)
            largest = max(largest, size)
            if size > LIMIT:
                was_long = True
            elif was_long:
                started_over = True  # cut back to the limit: the writer started it over
            i += 1
    finally:
        checkpointer.stop()
        conn.close()
        lock.close()
    assert started_over, f"the log never started over ({i} commits, {checkpointer.checkpoints} checkpoints)"
    assert checkpointer.locked_checkpoints >= 1
    # Every row is still there: checkpoints move pages, never lose a commit.
    check = sqlite3.connect(path)
    try:
        assert check.execute("SELECT count(*) FROM rows").fetchone()[0] == i
    finally:
        check.close()


def test_the_write_lock_is_not_taken_below_the_limit(tmp_path: Path) -> None:
    path = str(tmp_path / "ck.db")
    conn = _writer(path)
    lock = WriterLock(path)
    checkpointer = Checkpointer(path, limit=LIMIT, interval=0.001)
    try:
        # The writer holds the lock throughout: a thread that tried to take it would hang here.
        lock.acquire()
        for _ in range(3):
            conn.execute("INSERT INTO rows (body) VALUES (?)", (b"x" * 100,))
            checkpointer.poke()
        lock.release()
    finally:
        checkpointer.stop()
        conn.close()
        lock.close()
    assert checkpointer.checkpoints == 0


def test_with_another_process_writing_the_lock_is_left_to_the_writers(tmp_path: Path) -> None:
    """Busy processes pass the lock between them; the thread then checkpoints without it."""
    path = str(tmp_path / "ck.db")
    conn = _writer(path)
    lock = WriterLock(path)
    checkpointer = Checkpointer(path, limit=LIMIT, interval=0.001, alone=lambda: False)
    deadline = time.monotonic() + 30
    try:
        # The writer holds the lock throughout: a thread waiting for it would stop checkpointing.
        lock.acquire()
        while checkpointer.checkpoints < 3 and time.monotonic() < deadline:
            conn.execute("INSERT INTO rows (body) VALUES (?)", (os.urandom(6000),))
            checkpointer.poke()
        lock.release()
    finally:
        checkpointer.stop()
        conn.close()
        lock.close()
    assert checkpointer.checkpoints >= 3
    assert checkpointer.locked_checkpoints == 0


async def test_a_store_takes_the_lock_for_checkpoints_only_until_another_connection_commits(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    mine = await Client.connect(db)
    other = await Client.connect(db)
    try:
        checkpointer = mine.store._checkpointer
        assert checkpointer is not None
        await mine.start_workflow(Parallel.run, ["a"], id="mine", task_queue="nobody")
        assert checkpointer._alone()
        await other.start_workflow(Parallel.run, ["b"], id="other", task_queue="nobody")
        # The next write of this connection finds the other's commit.
        await mine.start_workflow(Parallel.run, ["c"], id="mine-again", task_queue="nobody")
        assert not checkpointer._alone()
    finally:
        await mine.close()
        await other.close()
