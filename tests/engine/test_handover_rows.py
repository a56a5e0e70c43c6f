"""A workflow task handed to an idle worker in a write batch: its history travels as stored
rows, decoded when the worker runs the task, and the worker runs the batch's tasks with the
cycle collector off (one collection after the batch, not one per 700 allocations in it)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine import Client, Worker, activity, workflow
from engine._history.workflow_tasks import WorkflowTask, decode_rows, read_events
from engine._persistence.event_rows import read_rows, stored_rows
from engine.history import HistoryEvent


@activity.defn
async def bump(n: int) -> int:
    await asyncio.sleep(0)
    return n + 1


@workflow.defn
class TwoSteps:
    @workflow.run
    async def run(self, n: int) -> int:
        n = await workflow.execute_activity(bump, n, start_to_close_timeout=timedelta(seconds=10))
        return await workflow.execute_activity(bump, n, start_to_close_timeout=timedelta(seconds=10))


async def test_handed_over_history_is_decoded_by_the_worker_with_the_collector_off(tmp_path: Path) -> None:
    seen: list[tuple[bool, bool, int]] = []
    client = await Client.connect(str(tmp_path / "engine.db"))
    try:
        # One cached run: the others' tasks carry their whole history, read from the file.
        worker = Worker(client, task_queue="q", workflows=[TwoSteps], activities=[bump], max_cached_workflows=1)
        accept = worker._accept_workflow_task

        def watching(task: WorkflowTask) -> Any:
            seen.append((gc.isenabled(), task._events is None, len(task.stored)))
            return accept(task)

        worker._accept_workflow_task = watching  # type: ignore[method-assign]
        async with worker:
            handles = [await client.start_workflow(TwoSteps.run, k, id=f"two-{k}", task_queue="q") for k in range(4)]
            assert [await h.result() for h in handles] == [k + 2 for k in range(4)]
            history = (await handles[0].fetch_history()).events
    finally:
        await client.close()
    assert gc.isenabled()
    handed = [s for s in seen if s[2]]  # the tasks that came with stored rows
    assert handed, seen
    assert all(not enabled and undecoded for enabled, undecoded, _ in handed)
    assert [e.event_type for e in history][:3] == ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted"]


def test_decode_rows_matches_read_events(tmp_path: Path) -> None:
    async def record() -> str:
        client = await Client.connect(str(tmp_path / "engine.db"))
        try:
            async with Worker(client, task_queue="q", workflows=[TwoSteps], activities=[bump]):
                handle = await client.start_workflow(TwoSteps.run, 1, id="two", task_queue="q")
                assert await handle.result() == 3
                assert handle.run_id is not None
                return handle.run_id
        finally:
            await client.close()

    run_id = asyncio.run(record())
    conn = sqlite3.connect(str(tmp_path / "engine.db"))
    try:
        rows = stored_rows(conn, run_id, 0)
        assert all(isinstance(r, tuple) for r in rows)
        decoded = decode_rows(rows)
        assert decoded == [HistoryEvent(*row) for row in read_rows(conn, run_id)] == read_events(conn, run_id, 0)
        assert all(type(e) is HistoryEvent for e in decoded) and len(decoded) == 17
        with pytest.raises(dataclasses.FrozenInstanceError):
            decoded[0].event_id = 2  # type: ignore[misc]
        task = WorkflowTask(1, run_id, "two", "TwoSteps", "q", 3, True, stored=rows[:3], later=read_events(conn, run_id, 3))
        assert task._events is None
        assert task.events == read_events(conn, run_id, 0) and task.stored == []
    finally:
        conn.close()
