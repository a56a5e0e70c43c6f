"""Auto-reset points: one per worker build, at the first workflow task that build completed;
carried to a continued run's start (``prevAutoResetPoints``) and shown by describe."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from engine import Worker, workflow
from engine._history.reset_points import MAX_POINTS, auto_reset_points, carried_over
from engine.history import HistoryEvent
from engine.testing import WorkflowEnvironment
from engine.worker._build_id import code_build_id


@workflow.defn(name="Counter")
class Counter:
    def __init__(self) -> None:
        self.ticks = 0

    @workflow.run
    async def run(self, rounds: int) -> int:
        await workflow.wait_condition(lambda: self.ticks >= 2)
        if rounds > 1:
            workflow.continue_as_new(rounds - 1)
        return self.ticks

    @workflow.signal
    def tick(self) -> None:
        self.ticks += 1


@workflow.defn(name="Counter")
class CounterFixed:
    def __init__(self) -> None:
        self.ticks = 0

    @workflow.run
    async def run(self, rounds: int) -> int:
        await workflow.wait_condition(lambda: self.ticks >= 2)
        return self.ticks * 10

    @workflow.signal
    def tick(self) -> None:
        self.ticks += 1


def test_the_build_id_follows_the_code_not_the_file_or_line() -> None:
    assert code_build_id([Counter]) == code_build_id([Counter])
    assert code_build_id([Counter]) != code_build_id([CounterFixed])
    assert len(code_build_id([Counter])) == 32


def test_the_build_id_is_the_same_in_every_process() -> None:
    """A set literal compiles to a frozenset, whose order follows the per-process string hash."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "from engine import workflow\n"
        "from engine.worker._build_id import code_build_id\n"
        "@workflow.defn\n"
        "class W:\n"
        "    @workflow.run\n"
        "    async def run(self, x: str) -> bool:\n"
        "        return x in {'alpha', 'beta', 'gamma', 'delta', 'epsilon'}\n"
        "print(code_build_id([W]))\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    ids = {
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": root},
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(ids) == 1 and len(ids.pop()) == 32


async def test_one_point_per_build_and_describe_shows_them() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Counter]) as first:
        handle = await env.client.start_workflow(Counter.run, 1, id="c", task_queue="q")
        await handle.signal(Counter.tick)
        await _wait_for_tasks(handle, 2)
    async with Worker(env.client, task_queue="q", workflows=[CounterFixed]) as second:
        await handle.signal(CounterFixed.tick)
        assert await handle.result() == 20
    described = await handle.describe()
    history = await handle.fetch_history()
    await env.shutdown()
    completed = [e for e in history.events if e.event_type == "WorkflowTaskCompleted"]
    assert completed[0].attributes["workerVersion"] == {"buildId": first.build_id}
    assert completed[-1].attributes["workerVersion"] == {"buildId": second.build_id}
    points = list(described.auto_reset_points)
    assert [(p["buildId"], p["firstWorkflowTaskCompletedId"]) for p in points] == [
        (first.build_id, str(completed[0].event_id)),
        (second.build_id, str(completed[-1].event_id)),
    ]
    assert all(p["runId"] == handle.run_id or p["runId"] == described.run_id for p in points)
    assert all(p["resettable"] is True and "expireTime" not in p for p in points)
    raw = described.raw_description.to_json()["workflowExecutionInfo"]["autoResetPoints"]["points"]
    assert raw == points


async def test_continue_as_new_carries_the_points_with_an_expiry() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Counter]) as worker:
        handle = await env.client.start_workflow(Counter.run, 2, id="can", task_queue="q")
        for _ in range(2):
            await handle.signal(Counter.tick)
        first_run = handle.run_id
        latest = env.client.get_workflow_handle("can")
        await _wait_for_new_run(latest, first_run)
        second = await latest.describe()
    started = (await env.client.get_workflow_handle("can", run_id=second.run_id).fetch_history()).events[0]
    await env.shutdown()
    carried = started.attributes["prevAutoResetPoints"]["points"]
    assert len(carried) == 1
    point = carried[0]
    assert point["runId"] == first_run and point["buildId"] == worker.build_id and point["firstWorkflowTaskCompletedId"] == "4"
    assert list(point) == ["runId", "firstWorkflowTaskCompletedId", "createTime", "expireTime", "resettable", "buildId"]
    # The same build in the new run adds no point: describe shows the carried one.
    assert list(second.auto_reset_points) == carried


def _event(event_id: int, event_type: str, **attrs: object) -> HistoryEvent:
    return HistoryEvent(event_id, event_type, datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=event_id), attrs)


def test_a_point_taken_while_a_child_is_pending_is_not_resettable() -> None:
    events = [
        _event(1, "WorkflowExecutionStarted"),
        _event(4, "WorkflowTaskCompleted", workerVersion={"buildId": "a"}),
        _event(5, "StartChildWorkflowExecutionInitiated"),
        _event(8, "WorkflowTaskCompleted", workerVersion={"buildId": "b"}),
        _event(9, "ChildWorkflowExecutionCompleted", initiatedEventId="5"),
        _event(12, "WorkflowTaskCompleted", workerVersion={"buildId": "c"}),
    ]
    points = auto_reset_points("r", events)
    assert [(p["buildId"], p["resettable"]) for p in points] == [("a", True), ("b", False), ("c", True)]


def test_a_worker_without_a_build_id_still_gets_one_point_and_at_most_twenty_are_kept() -> None:
    events = [_event(1, "WorkflowExecutionStarted"), _event(4, "WorkflowTaskCompleted"), _event(8, "WorkflowTaskCompleted")]
    assert [p["firstWorkflowTaskCompletedId"] for p in auto_reset_points("r", events)] == ["4"]
    many = [_event(1, "WorkflowExecutionStarted")] + [
        _event(4 + i, "WorkflowTaskCompleted", workerVersion={"buildId": f"b{i}"}) for i in range(MAX_POINTS + 5)
    ]
    kept = auto_reset_points("r", many)
    assert len(kept) == MAX_POINTS and kept[0]["buildId"] == "b5"


def test_expired_points_are_dropped_when_carried_over() -> None:
    now = datetime(2026, 1, 10, tzinfo=timezone.utc)
    points = [
        {"runId": "old", "firstWorkflowTaskCompletedId": "4", "createTime": "2026-01-01T00:00:00Z", "expireTime": "2026-01-02T00:00:00Z", "resettable": True},
        {"runId": "prev", "firstWorkflowTaskCompletedId": "4", "createTime": "2026-01-09T00:00:00Z", "resettable": True},
    ]
    assert carried_over(points, "prev", now) == [{**points[1], "expireTime": "2026-01-11T00:00:00.000000Z"}]


async def _wait_for_tasks(handle: object, count: int) -> None:
    import asyncio

    for _ in range(400):
        history = await handle.fetch_history()  # type: ignore[attr-defined]
        if sum(e.event_type == "WorkflowTaskCompleted" for e in history.events) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} workflow tasks completed")


async def _wait_for_new_run(handle: object, first_run: str) -> None:
    import asyncio

    for _ in range(400):
        if (await handle.describe()).run_id != first_run:  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the run did not continue as new")
