"""Another program holding the database's write lock for longer than the store waits: the
worker says so in one line and records the work once the lock is free (nothing is lost, no
"Task exception was never retrieved")."""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
from pathlib import Path
from typing import Any, Sequence

import pytest

from engine import Client, Worker
from engine._conversion.payload_converter import Payload
from engine._persistence.store import Store
from engine.converter import DataConverter, PayloadCodec
from engine.errors import StoreError, StoreLockedError

from tests.engine.workflows import Parallel, echo

LOCK_TIMEOUT = 0.2  # the store's 10 s, shortened


class _Gate(PayloadCodec):
    """Holds a worker inside its workflow task (decoding the history) until the test opens it."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.entered = asyncio.Event()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.entered.set()
        await self.open.wait()
        return list(payloads)


async def test_a_write_lock_held_past_the_timeout_is_one_log_line_and_the_work_is_recorded_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = str(tmp_path / "engine.db")
    unretrieved: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: unretrieved.append(context))
    gate = _Gate()
    client = Client(await Store.open(db, lock_timeout=LOCK_TIMEOUT), data_converter=DataConverter(payload_codec=gate))
    foreign = sqlite3.connect(db, isolation_level=None)
    caplog.set_level(logging.INFO, logger="engine")
    try:
        async with Worker(client, task_queue="q", workflows=[Parallel], activities=[echo]):
            handle = await client.start_workflow(Parallel.run, ["a", "b"], id="locked", task_queue="q")
            await asyncio.wait_for(gate.entered.wait(), 10)  # the worker holds the first workflow task
            foreign.execute("BEGIN IMMEDIATE")  # another program (a DB browser, say) takes the write lock
            gate.open.set()
            await asyncio.sleep(LOCK_TIMEOUT * 5)  # every write of the worker gives up meanwhile
            with pytest.raises(StoreError, match=f"stayed locked by another process for {LOCK_TIMEOUT:g} s"):
                await client.start_workflow(Parallel.run, ["c"], id="refused", task_queue="q")
            foreign.execute("COMMIT")
            # Recorded once the lock is free: not after the task's 10 s timeout.
            assert await asyncio.wait_for(handle.result(), 5) == ["a", "b"]
            types = [e.event_type for e in (await handle.fetch_history()).events]
    finally:
        foreign.close()
        await client.close()
    gc.collect()
    await asyncio.sleep(0)
    assert unretrieved == []
    assert "WorkflowTaskTimedOut" not in types
    waits = [r for r in caplog.records if r.levelno == logging.WARNING and "stayed locked" in r.getMessage()]
    assert waits and all(r.exc_info is None for r in waits), [r.getMessage() for r in waits]  # no tracebacks
    messages = [r.getMessage() for r in waits]
    completing = [m for m in messages if m.startswith("Workflow task 3 of workflow 'locked'")]
    assert len(completing) == 1, messages  # one line for the task however often it is tried
    assert "is not recorded yet: The database " in completing[0] and completing[0].endswith("It is tried again once the lock is free.")
    assert sum(m.startswith("polling workflow tasks of task queue 'q' waits: ") for m in messages) == 1, messages
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
    assert any(r.getMessage().endswith("is recorded: the lock is free again.") for r in caplog.records)


@pytest.mark.parametrize("change", ["complete_workflow_task", "complete_activity"])
async def test_a_commit_refused_for_the_lock_on_the_fast_path_is_tried_again(
    change: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a codec or faults, workflow tasks and activity outcomes are submitted without
    awaiting; a batch that found the lock taken reaches them through their callbacks."""
    # Patched where the worker looks them up: its workflow-task and activity-task parts.
    from engine.worker import _activity_tasks, _workflow_tasks

    worker_module = _workflow_tasks if change == "complete_workflow_task" else _activity_tasks
    real = getattr(worker_module, change)
    refusals = [3]

    def refused_at_first(*args: Any) -> Any:
        if refusals[0]:
            refusals[0] -= 1
            raise StoreLockedError(f"The database {db!r} stayed locked by another process for {LOCK_TIMEOUT:g} s (database is locked).")
        return real(*args)

    monkeypatch.setattr(worker_module, change, refused_at_first)
    db = str(tmp_path / "engine.db")
    unretrieved: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: unretrieved.append(context))
    caplog.set_level(logging.INFO, logger="engine")
    client = Client(await Store.open(db, lock_timeout=LOCK_TIMEOUT))
    try:
        async with Worker(client, task_queue="q", workflows=[Parallel], activities=[echo]):
            result = await asyncio.wait_for(client.execute_workflow(Parallel.run, ["a"], id="fast", task_queue="q"), 5)
            types = [e.event_type for e in (await client.get_workflow_handle("fast").fetch_history()).events]
    finally:
        await client.close()
    gc.collect()
    await asyncio.sleep(0)
    assert result == ["a"] and refusals == [0] and unretrieved == []
    assert not {"WorkflowTaskTimedOut", "ActivityTaskTimedOut"} & set(types)
    waits = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(waits) == 1 and "is not recorded yet" in waits[0], waits
    assert waits[0].startswith("Workflow task 3 of" if change == "complete_workflow_task" else "The outcome of attempt 1 of activity echo")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
