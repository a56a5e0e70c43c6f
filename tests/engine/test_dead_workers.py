"""A dead worker's leases are taken back at once; a live worker's never (two real processes)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from engine import Client, Worker, activity
from engine._matching import dead_workers
from engine._matching.worker_registry import DEAD_SUFFIX, folder_of, live_workers

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no flock")
ROOT = Path(__file__).resolve().parents[2]


@activity.defn(name="step")
async def _done(value: str) -> str:
    """The fixed version of dead_worker_app's activity."""
    return value + ":done"


def _spawn(db: str, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.engine.dead_worker_app", db, "q", mode],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return proc


async def _started(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=30)
    assert line == "started\n", f"the worker process did not run its activity: {line!r}"


def _leases(db: str) -> list[tuple[str, str | None]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT kind, lease_owner FROM tasks ORDER BY id").fetchall()
    finally:
        conn.close()


async def test_a_live_workers_lease_stays_and_a_killed_workers_is_taken_over_at_once(tmp_path: Path) -> None:
    from tests.engine.dead_worker_app import OneStep

    db = str(tmp_path / "engine.db")
    client = await Client.connect(db)
    proc = _spawn(db, "hang")
    try:
        handle = await client.start_workflow(OneStep.run, "x", id="one", task_queue="q")
        await _started(proc)
        [(kind, owner)] = _leases(db)
        assert kind == "activity" and owner is not None and owner.startswith(f"{proc.pid}@")
        # Alive: another process that looks finds nothing to take back, however often.
        for _ in range(3):
            assert await dead_workers.reclaim(client.store, client.clock.now()) == 0
        assert _leases(db) == [(kind, owner)]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Dead: a worker starting here takes the lease back at once (it would expire in 600 s).
        async with Worker(client, task_queue="q", workflows=[OneStep], activities=[_done]):
            assert await asyncio.wait_for(handle.result(), timeout=60) == "x:done"
        events = [e.event_type for e in (await handle.fetch_history()).events]
        assert "ActivityTaskCompleted" in events
        attempts = await handle.activity_attempts()
        assert [(a.attempt, a.outcome) for a in attempts] == [(1, "timed out"), (2, "completed")]
        assert not list(folder_of(db).iterdir())  # the dead worker's entry is gone with its leases
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await client.close()


async def test_an_activity_completing_asynchronously_keeps_its_lease_when_its_worker_dies(tmp_path: Path) -> None:
    from tests.engine.dead_worker_app import OneStep

    db = str(tmp_path / "engine.db")
    client = await Client.connect(db)
    proc = _spawn(db, "async")
    try:
        await client.start_workflow(OneStep.run, "x", id="one", task_queue="q")
        await _started(proc)
        # The mark is written right after the activity's function returns.
        for _ in range(200):
            conn = sqlite3.connect(db)
            marked = conn.execute(f"SELECT json_extract(info, '$.{dead_workers.ASYNC_MARK}') FROM tasks").fetchone()
            conn.close()
            if marked and marked[0]:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the attempt was never marked as completing asynchronously")
        [(_, owner)] = _leases(db)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert await dead_workers.reclaim(client.store, client.clock.now()) == 0
        assert _leases(db) == [("activity", owner)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        await client.close()


def _entry(db: str, name: str, owner: str, host: str) -> Path:
    folder = folder_of(db)
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"identity": "w", "task_queue": "q", "pid": os.getpid(), "host": host, "started": 0.0, "owner": owner}))
    return path


async def test_only_unlocked_entries_of_this_host_count_as_dead_whatever_their_pid(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    client = await Client.connect(db)
    try:
        async with Worker(client, task_queue="q", activities=[_done]) as live:
            # Written once the worker runs: one that starts takes a dead entry back at once.
            # This process's pid is alive, but nobody holds the entry's lock: its worker is gone.
            here = _entry(db, "1-1.json", "me#1", socket.gethostname())
            elsewhere = _entry(db, "2-1.json", "them#1", "another-machine")
            found = dead_workers.find_dead(db)
            try:
                assert [(d.path.name, d.owner) for d in found] == [("1-1.json", "me#1")]
                assert live._owner not in [d.owner for d in found]  # its own entry is locked
            finally:
                for d in found:
                    d.release(remove=False)
        assert here.exists() and elsewhere.exists()
        # A reader that lists workers keeps a dead entry's owner for the reclaim.
        assert live_workers(db) == []
        assert (folder_of(db) / ("1-1" + DEAD_SUFFIX)).exists()
        assert await dead_workers.reclaim(client.store, client.clock.now()) == 0  # no leases, entry removed
        assert not (folder_of(db) / ("1-1" + DEAD_SUFFIX)).exists()
    finally:
        await client.close()


async def test_expire_leases_makes_only_the_named_owners_leases_due(tmp_path: Path) -> None:
    client = await Client.connect(str(tmp_path / "engine.db"))
    try:
        def setup(tx: object, now: object) -> None:
            conn = tx.conn  # type: ignore[attr-defined]
            for owner, info in (("dead#1", "{}"), ("dead#1", '{"completesAsync": true}'), ("alive#1", "{}")):
                conn.execute(
                    "INSERT INTO tasks (kind, task_queue, run_id, scheduled_event_id, visible_at, lease_owner, lease_expires, due_at, info) "
                    "VALUES ('activity', 'q', 'r', 5, 0, ?, 1e12, 1e12, ?)", (owner, info))
        now = client.clock.now()
        await client.store.run(setup, now)
        assert await client.store.run(dead_workers.expire_leases, ["dead#1"], now) == 1
        rows = await client.store.read(lambda c: c.execute("SELECT lease_owner, due_at FROM tasks ORDER BY id").fetchall())
        assert rows == [("dead#1", now.timestamp()), ("dead#1", 1e12), ("alive#1", 1e12)]
    finally:
        await client.close()


async def test_a_workflow_task_leased_by_a_dead_worker_is_timed_out_and_retried_at_once(tmp_path: Path) -> None:
    from engine._history.workflow_tasks import claim_workflow_tasks
    from tests.engine.dead_worker_app import OneStep

    db = str(tmp_path / "engine.db")
    client = await Client.connect(db)
    try:
        # Its workflow task would time out in 2 minutes: only a takeover finishes the run in time.
        handle = await client.start_workflow(OneStep.run, "x", id="w", task_queue="q", task_timeout=timedelta(seconds=120))
        [task] = await client.store.run(claim_workflow_tasks, "q", "ghost#1", client.clock.now(), 10, lambda run_id: 0)
        assert task.run_id == handle.run_id
        _entry(db, "9-1.json", "ghost#1", socket.gethostname())  # its worker's entry, unlocked: dead
        async with Worker(client, task_queue="q", workflows=[OneStep], activities=[_done]):
            assert await asyncio.wait_for(handle.result(), timeout=60) == "x:done"
        types = [e.event_type for e in (await handle.fetch_history()).events]
        assert types[:5] == ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskTimedOut", "WorkflowTaskScheduled"]
    finally:
        await client.close()


async def test_a_dead_workers_leases_are_timed_out_in_the_change_that_takes_them_back(tmp_path: Path) -> None:
    """A starting worker passes the timer queue's ``fire_due``: the timeouts commit with the
    expiry, not on the timer queue's next turn (which would wait behind its pollers' claims)."""
    from engine._history.timers import fire_due
    from engine._history.workflow_tasks import claim_workflow_tasks
    from tests.engine.dead_worker_app import OneStep

    db = str(tmp_path / "engine.db")
    starter = await Client.connect(db)
    try:
        handle = await starter.start_workflow(OneStep.run, "x", id="w", task_queue="q", task_timeout=timedelta(seconds=120))
        await starter.store.run(claim_workflow_tasks, "q", "ghost#1", starter.clock.now(), 10, lambda run_id: 0)
    finally:
        await starter.close()
    _entry(db, "9-1.json", "ghost#1", socket.gethostname())
    client = await Client.connect(db)  # no timer queue runs in this one: nothing started through it
    try:
        assert await dead_workers.reclaim(client.store, client.clock.now(), fire_due) == 1
        types = [e.event_type for e in (await client.get_workflow_handle("w", run_id=handle.run_id).fetch_history()).events]
        assert types == ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskTimedOut"]
        assert _leases(db) == [("workflow", None)]  # its retry, queued for any worker
        assert not list(folder_of(db).iterdir())
    finally:
        await client.close()
