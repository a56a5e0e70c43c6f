"""Several connections on one database file: what one caches, another may change.

Each ``Client.connect`` is a connection of its own, as another process would be. A worker's
connection keeps the runs it wrote in memory (with the events it appended and the workflow
task it leased); when another connection has committed, those runs are checked against
their rows before use. These tests make another client change a run that a worker holds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from engine import Client, Worker
from engine._persistence.writer_lock import WriterLock

from tests.engine.test_updates import Cart
from tests.engine.workflows import echo


def _event_ids(history) -> list[int]:  # type: ignore[no-untyped-def]
    return [e.event_id for e in history.events]


async def test_signals_and_updates_from_another_client_reach_a_run_the_worker_caches(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    serving = await Client.connect(db)
    other = await Client.connect(db)
    try:
        async with Worker(serving, task_queue="q", workflows=[Cart], activities=[echo]):
            handle = await serving.start_workflow(Cart.run, "Grace", id="cart-shared", task_queue="q")
            # The worker now holds the run; everything below is committed by the other client.
            elsewhere = other.get_workflow_handle("cart-shared")
            await elsewhere.signal(Cart.add_item, "apple")
            await elsewhere.signal(Cart.add_item, "pear")
            # The run's cached row said "no updates": the request must be seen all the same.
            assert await asyncio.wait_for(elsewhere.execute_update(Cart.remove_item, "pear"), 10) == 1
            await handle.signal(Cart.add_item, "plum")  # and the worker's own client again
            assert await asyncio.wait_for(elsewhere.execute_update(Cart.set_discount, 20), 10) == "20% off"
            await elsewhere.signal(Cart.finish)
            result = await asyncio.wait_for(handle.result(), 10)
        assert result == {"customer": "Grace", "items": ["apple", "plum"], "discount": 20}
        history = await other.get_workflow_handle("cart-shared").fetch_history()
        # One history, whoever wrote which part: ids 1..n without a gap or a repeat.
        assert _event_ids(history) == list(range(1, len(history.events) + 1))
        types = [e.event_type for e in history.events]
        assert types.count("WorkflowExecutionSignaled") == 4
        assert types.count("WorkflowExecutionUpdateAccepted") == 2
    finally:
        await serving.close()
        await other.close()


async def test_a_run_written_before_schema_7_still_gets_its_updates(tmp_path: Path) -> None:
    # Runs of older files have no flags: the engine looks in the side tables every time.
    db = str(tmp_path / "engine.db")
    client = await Client.connect(db)
    handle = await client.start_workflow(Cart.run, "Edsger", id="cart-old", task_queue="q")
    await handle.signal(Cart.add_item, "fig")
    await client.close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE executions SET flags = NULL")
    conn.commit()
    conn.close()
    client = await Client.connect(db)
    try:
        async with Worker(client, task_queue="q", workflows=[Cart], activities=[echo]):
            handle = client.get_workflow_handle("cart-old")
            assert await asyncio.wait_for(handle.execute_update(Cart.remove_item, "fig"), 10) == 0
            await handle.signal(Cart.finish)
            assert (await asyncio.wait_for(handle.result(), 10))["items"] == []
    finally:
        await client.close()


def test_the_writer_lock_lets_one_store_write_at_a_time(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    first, second = WriterLock(db), WriterLock(db)
    assert Path(first.path).name == "engine.db-lock"
    order: list[str] = []
    first.acquire()

    def take_second() -> None:
        second.acquire()
        order.append("second took it")
        second.release()

    thread = threading.Thread(target=take_second)
    thread.start()
    thread.join(0.2)
    assert thread.is_alive() and order == []  # blocked while the first holds it
    order.append("first let go")
    first.release()
    thread.join(5)
    assert order == ["first let go", "second took it"]
    first.close()
    second.close()


async def test_a_file_store_takes_the_writer_lock_around_each_commit(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    client = await Client.connect(db)
    try:
        holder = WriterLock(db)
        holder.acquire()
        started = asyncio.ensure_future(client.start_workflow(Cart.run, "Barbara", id="cart-locked", task_queue="q"))
        await asyncio.sleep(0.2)
        assert not started.done()  # its transaction waits for the lock
        holder.release()
        handle = await asyncio.wait_for(started, 5)
        assert handle.id == "cart-locked"
        holder.close()
    finally:
        await client.close()


async def test_a_cached_run_is_rechecked_after_another_connection_commits(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    from engine._history.mutable_state import load_run

    from engine._history.signals import signal_workflow

    from engine._history.starts import StartRequest, start_workflow
    from engine._history import updates as _service_updates
    from engine._persistence.store import Store

    db = str(tmp_path / "engine.db")
    mine, theirs = await Store.open(db), await Store.open(db)
    now = datetime.now(timezone.utc)
    try:
        request = StartRequest("wf", "Cart", "q", {"payloads": []}, "me")
        run_id = await mine.run(start_workflow, request, now)
        cached = await mine.run(load_run, run_id)
        assert cached.has_updates is False and len(cached.tail) == 2  # Started, WorkflowTaskScheduled
        # Another connection asks for an update while the workflow task is pending: the
        # events stay as they are; only the run's row says that updates now exist.
        await theirs.run(_service_updates.request_update, run_id, "u1", "remove_item", {"payloads": []}, "them", now)
        seen = await mine.run(load_run, run_id)
        assert seen is not cached and seen.has_updates is True
        assert [e.event_id for e in seen.tail] == [1, 2]  # nothing appended elsewhere: the tail stays
        # Another connection appends events: the tail is no longer the newest, so it goes.
        await theirs.run(signal_workflow, run_id, "add_item", {"payloads": []}, "them", now)
        after = await mine.run(load_run, run_id)
        assert after.next_event_id == 4 and after.tail == []
        # Without foreign commits in between the cached run is used as it is.
        assert await mine.run(load_run, run_id) is after
        # A foreign commit that leaves the run's row alone costs one look at the row only.
        await theirs.run(start_workflow, StartRequest("other", "Cart", "q", {"payloads": []}, "them"), now)
        assert await mine.run(load_run, run_id) is after
    finally:
        await mine.close()
        await theirs.close()


async def test_a_foreign_writer_holding_sqlite_s_lock_does_not_freeze_the_event_loop(tmp_path: Path) -> None:
    # A program that is not an engine process (a DB browser, the sqlite3 shell) takes
    # SQLite's write lock without the lock file: the engine waits for it off the event loop.
    db = str(tmp_path / "engine.db")
    client = await Client.connect(db)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        started = asyncio.ensure_future(client.start_workflow(Cart.run, "Ada", id="cart-foreign", task_queue="q"))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(0.1)
        assert loop.time() - t0 < 1.0  # the loop kept turning while the start waited
        assert not started.done()
        other.execute("COMMIT")
        handle = await asyncio.wait_for(started, 5)
        assert handle.id == "cart-foreign"
    finally:
        other.close()
        await client.close()


def test_processes_that_create_the_same_new_file_at_once_all_open_it(tmp_path) -> None:
    # A sample's worker and starter, started together against a new file (found by the
    # samples suite): the second to take the write lock found the schema made meanwhile.
    import sqlite3
    import threading

    from engine._persistence.connection import prepare as _prepare

    path = str(tmp_path / "new.db")
    # The file starts empty but already in WAL mode: the race under test is two openers that
    # both read "no tables"; a conversion to WAL racing a reader that waits at the barrier
    # would only time the test out (seen on a loaded machine).
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.close()
    stale = threading.Barrier(2)
    errors: list[BaseException] = []

    class SlowFirstRead(sqlite3.Connection):
        def execute(self, sql: str, *args: object) -> sqlite3.Cursor:  # type: ignore[override]
            cursor = super().execute(sql, *args)
            if sql.startswith("SELECT name FROM sqlite_master") and not getattr(self, "_waited", False):
                self._waited = True
                rows = cursor.fetchall()
                stale.wait(5)  # both have read "no tables" before either creates them
                return super().execute("SELECT name FROM sqlite_master WHERE 0") if not rows else super().execute(sql, *args)
            return cursor

    def open_it() -> None:
        conn = sqlite3.connect(path, isolation_level=None, factory=SlowFirstRead, check_same_thread=False)
        try:
            _prepare(conn, path, 5.0)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
