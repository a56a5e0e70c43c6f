"""The path of a run started alone (issue 18): what it no longer pays for, and that nothing
it skips was needed.

- A new run's first workflow task goes straight to an idle worker of this process, in the
  start's own transaction, unless tasks already wait in the queue (they keep their turn).
- A result waiter of a run this process started and nothing else touched does not read
  the run first; a close by another connection still reaches it.
- Commits that only add later due times do not wake the timer queue; earlier ones do.
- A flush or read task cancelled before it began (asyncio.run's end) leaves neither
  ``settle`` nor ``close`` waiting for ever (found while checking these changes under load).
"""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from pathlib import Path

import pytest

from engine import Client, Worker, workflow
from engine._matching.dispatch import Receiver, pick_waiting, queued
from engine._persistence.transactions import Tx
from engine.client import WorkflowFailureError

from tests.engine.workflows import Parallel, echo


@workflow.defn
class Napper:
    @workflow.run
    async def run(self, seconds: float) -> str:
        await workflow.sleep(timedelta(seconds=seconds))
        return "rested"


def _receiver(slots: int = 2) -> Receiver:
    return Receiver("workflow:q", "owner", slots, lambda task: None)


def test_a_new_run_passes_nobody_waiting_in_the_queue() -> None:
    receiver = _receiver()
    receivers = {"workflow:q": (receiver,)}
    # Before any claim the queue's state is unknown: the task goes to the queue.
    assert pick_waiting(receivers, "workflow:q") is None
    receiver.drained = True  # the last claim found fewer tasks than it could take
    assert pick_waiting(receivers, "workflow:q") is receiver
    assert receiver.free() == 1
    queued(receivers, "workflow:q")  # another task went to the queue meanwhile
    assert pick_waiting(receivers, "workflow:q") is None
    receiver.drained = True
    assert pick_waiting(receivers, "workflow:q") is receiver
    assert pick_waiting(receivers, "workflow:q") is None  # no slot left
    assert pick_waiting(receivers, "workflow:other") is None


def test_a_worker_obeying_faults_takes_no_new_run_eagerly() -> None:
    receiver = Receiver("workflow:q", "owner", 2, lambda task: None, eager=lambda: False)
    receiver.drained = True
    assert pick_waiting({"workflow:q": (receiver,)}, "workflow:q") is None


async def test_a_new_run_starts_its_first_workflow_task_in_the_start_transaction(tmp_path: Path) -> None:
    client = await Client.connect(str(tmp_path / "engine.db"))
    try:
        async with Worker(client, task_queue="q", workflows=[Parallel], activities=[echo]) as worker:
            # The worker's first claim finds the queue empty.
            while not worker._receivers["workflow"].drained:
                await asyncio.sleep(0.01)
            batches = client.store.batches
            handle = await client.start_workflow(Parallel.run, ["a"], id="eager-start", task_queue="q")
            assert await asyncio.wait_for(handle.result(), 10) == ["a"]
            events = (await handle.fetch_history()).events
        started, scheduled, task_started = events[0], events[1], events[2]
        assert (scheduled.event_type, task_started.event_type) == ("WorkflowTaskScheduled", "WorkflowTaskStarted")
        # One change wrote all three (a claim would have started the task later).
        assert started.event_time == scheduled.event_time == task_started.event_time
        # start, then per activity: the workflow task's completion and the activity's, then the last task
        assert client.store.batches - batches <= 4
    finally:
        await client.close()


async def test_a_close_by_another_connection_reaches_a_result_waiter(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    starter = await Client.connect(db)
    other = await Client.connect(db)
    try:
        handle = await starter.start_workflow(Parallel.run, ["a"], id="closed-elsewhere", task_queue="nobody")
        assert starter.store.knows_open(handle.run_id or "")
        await other.get_workflow_handle("closed-elsewhere").terminate(reason="done here")
        # The starter's connection still has the run as open: its waiter hears of the close
        # from the shared poll, then reads the closing event.
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(handle.result(), 10)
        again = starter.get_workflow_handle("closed-elsewhere")
        with pytest.raises(WorkflowFailureError):
            await asyncio.wait_for(again.result(), 10)
    finally:
        await starter.close()
        await other.close()


async def test_a_connection_that_saw_another_commit_reads_before_waiting(tmp_path: Path) -> None:
    db = str(tmp_path / "engine.db")
    starter = await Client.connect(db)
    other = await Client.connect(db)
    try:
        first = await starter.start_workflow(Parallel.run, ["a"], id="first", task_queue="nobody")
        assert starter.store.knows_open(first.run_id or "")
        await other.start_workflow(Parallel.run, ["b"], id="elsewhere", task_queue="nobody")
        handle = await starter.start_workflow(Parallel.run, ["c"], id="here", task_queue="nobody")
        # This connection's write found another's commit: what it holds may be stale.
        assert not starter.store.knows_open(first.run_id or "")
        assert not starter.store.knows_open(handle.run_id or "")
    finally:
        await starter.close()
        await other.close()


def test_a_batch_keeps_its_earliest_due_time() -> None:
    tx = Tx(conn=None)  # type: ignore[arg-type]
    tx.note_due(None)
    assert tx.due is None
    tx.note_due(30.0)
    tx.note_due(10.0)
    tx.note_due(20.0)
    assert tx.due == 10.0 and not tx.notes


async def test_a_short_timer_fires_although_later_due_times_do_not_wake_the_timer_queue(tmp_path: Path) -> None:
    client = await Client.connect(str(tmp_path / "engine.db"))
    try:
        async with Worker(client, task_queue="q", workflows=[Napper, Parallel], activities=[echo]):
            # Runs whose due times (task and activity timeouts) are far off, one after another.
            for i in range(3):
                assert await asyncio.wait_for(client.execute_workflow(Parallel.run, ["x"], id=f"p{i}", task_queue="q"), 10) == ["x"]
            while client.store.timers_deadline == math.inf:  # the timer queue sleeps
                await asyncio.sleep(0.01)
            # A timer due before the queue's next look wakes it.
            assert await asyncio.wait_for(client.execute_workflow(Napper.run, 0.05, id="nap", task_queue="q"), 10) == "rested"
    finally:
        await client.close()


def _insert_meta(tx: Tx, key: str) -> str:
    tx.conn.execute("INSERT INTO meta (key, value) VALUES (?, 'x')", (key,))
    return key


async def test_a_flush_cancelled_before_it_began_does_not_hang_settle_or_close(tmp_path: Path) -> None:
    # asyncio.run cancels every task at its end, a flush task created in the last moment too;
    # cancelled before its first step, it never cleared the store's "flushing" flag, and a
    # worker left running waited in settle() for ever (the program hung at exit).
    from engine._persistence.store import Store

    store = await Store.open(tmp_path / "engine.db")
    before = set(asyncio.all_tasks())
    change = asyncio.ensure_future(store.run(_insert_meta, "one"))
    await asyncio.sleep(0)  # the change is pending and its flush task created, not yet begun
    flushes = [t for t in asyncio.all_tasks() - before if t is not change]
    assert len(flushes) == 1
    flushes[0].cancel()
    await asyncio.wait_for(store.settle(), 10)
    assert await asyncio.wait_for(change, 10) == "one"
    reading = asyncio.ensure_future(store.read(lambda conn: conn.execute("SELECT value FROM meta WHERE key = 'one'").fetchone()[0]))
    await asyncio.sleep(0)
    reads = [t for t in asyncio.all_tasks() - before if t is not reading and not t.done()]
    assert len(reads) == 1
    reads[0].cancel()
    await asyncio.sleep(0)
    await asyncio.wait_for(store.close(), 10)
    assert await asyncio.wait_for(reading, 10) == "x"
