"""Cron schedules (issue 11, item 7): parsed as Temporal reads them, and a cron start makes a
chain of runs with the history a real Temporal writes (tests/histories/cron_*.json, recorded
on the dev server with '@every 5s')."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from engine import Worker, workflow
from engine._history.cron import CronError, cron_backoff, parse_cron
from engine.client import Client
from engine.history import History
from engine.testing import WorkflowEnvironment

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
UTC = timezone.utc


def _real(name: str) -> History:
    return History.from_json("fixture-cron", (HISTORIES / f"{name}.json").read_text())


@pytest.mark.parametrize(
    "spec, after, expected",
    [
        ("* * * * *", datetime(2026, 12, 7, 12, 16, 13, tzinfo=UTC), datetime(2026, 12, 7, 12, 17, tzinfo=UTC)),
        ("*/15 * * * *", datetime(2026, 12, 7, 12, 30, tzinfo=UTC), datetime(2026, 12, 7, 12, 45, tzinfo=UTC)),
        ("0 9 * * MON-FRI", datetime(2026, 12, 11, 10, 0, tzinfo=UTC), datetime(2026, 12, 14, 9, 0, tzinfo=UTC)),
        ("0 0 1 JAN ?", datetime(2026, 12, 7, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("@hourly", datetime(2026, 12, 7, 12, 59, 59, tzinfo=UTC), datetime(2026, 12, 7, 13, 0, tzinfo=UTC)),
        ("@weekly", datetime(2026, 12, 7, tzinfo=UTC), datetime(2026, 12, 13, tzinfo=UTC)),
        ("@every 1h30m", datetime(2026, 12, 7, 12, 0, 0, 500000, tzinfo=UTC), datetime(2026, 12, 7, 13, 30, tzinfo=UTC)),
        # Both day fields restricted: either matches (the 13th, or a Friday), as robfig/cron.
        ("0 0 13 * 5", datetime(2026, 12, 7, tzinfo=UTC), datetime(2026, 12, 11, tzinfo=UTC)),
        ("CRON_TZ=Europe/Paris 0 9 * * *", datetime(2026, 12, 7, 12, tzinfo=UTC), datetime(2026, 12, 8, 8, tzinfo=UTC)),
    ],
)
def test_next_schedule_time(spec: str, after: datetime, expected: datetime) -> None:
    assert parse_cron(spec).next(after) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("* * *", "has 3 fields, not 5"),
        ("61 * * * *", "'61' is outside 0-59 in the minute field"),
        ("@often", "unknown descriptor '@often'"),
        ("@every 0s", "needs a duration of at least one second"),
        ("* * * FOO *", "'FOO' is not a value of the month field"),
    ],
)
def test_bad_schedules_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(CronError, match=message) as caught:
        parse_cron(spec)
    assert "\n" not in str(caught.value)


def test_backoff_as_the_dev_server_wrote_it() -> None:
    first, second = _real("cron_1"), _real("cron_2")
    start = first.events[0].event_time
    assert start is not None
    every = parse_cron("@every 5s")
    assert cron_backoff(every, start, start) == timedelta(seconds=5)
    assert first.events[0].attributes["firstWorkflowTaskBackoff"] == "5s"
    execution_time = start + timedelta(seconds=5)
    closed = first.events[-1].event_time
    assert closed is not None
    assert cron_backoff(every, execution_time, closed) == timedelta(seconds=5)
    assert second.events[0].attributes["firstWorkflowTaskBackoff"] == "5s"


@workflow.defn(name="CronWorkflow", sandboxed=False)
class CronWorkflow:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"{name}: {workflow.info().cron_schedule}"


def _shape(history: History) -> list[tuple[str, list[str]]]:
    """Event types, with the attribute names that matter for a cron chain."""
    keys = {
        "cronSchedule", "initiator", "firstWorkflowTaskBackoff", "continuedExecutionRunId",
        "lastCompletionResult", "newExecutionRunId", "result", "input", "firstExecutionRunId",
    }
    return [(e.event_type, sorted(k for k in e.attributes if k in keys)) for e in history.events]


async def _runs(client: Client, workflow_id: str) -> list[History]:
    chain = [d async for d in client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    chain.sort(key=lambda d: d.start_time)
    return [await client.get_workflow_handle(workflow_id, run_id=d.run_id).fetch_history() for d in chain]


async def test_a_cron_chain_has_the_history_temporal_writes() -> None:
    real = [_real("cron_1"), _real("cron_2")]
    start = real[0].events[0].event_time
    env = await WorkflowEnvironment.start_time_skipping(start=start)
    client = env.client
    async with Worker(client, task_queue="fixtures", workflows=[CronWorkflow]):
        handle = await client.start_workflow(CronWorkflow.run, "tick", id="fixture-cron", task_queue="fixtures", cron_schedule="@every 5s")
        await env.sleep(timedelta(seconds=11))
        runs = await _runs(client, "fixture-cron")
        await client.get_workflow_handle("fixture-cron").terminate("enough")
    await env.client.close()
    assert len(runs) == 3  # two closed, the third waiting for its time
    ours = runs[:2]
    assert [_shape(h) for h in ours] == [_shape(h) for h in real]
    for mine, theirs in zip(ours, real):
        started, expected = mine.events[0].attributes, theirs.events[0].attributes
        for key in ("cronSchedule", "initiator", "firstWorkflowTaskBackoff"):
            assert started[key] == expected[key], key
        # The first workflow task is scheduled when the backoff ends, as on the server.
        waited = mine.events[1].event_time - mine.events[0].event_time
        assert abs(waited - timedelta(seconds=5)) < timedelta(milliseconds=100), waited
        assert mine.events[-1].event_type == "WorkflowExecutionCompleted"
    assert ours[0].events[-1].attributes["newExecutionRunId"] == ours[1].run_id
    assert ours[1].events[0].attributes["continuedExecutionRunId"] == ours[0].run_id
    assert ours[1].events[0].attributes["lastCompletionResult"] == ours[0].events[-1].attributes["result"]
    assert ours[1].events[0].attributes["firstExecutionRunId"] == handle.first_execution_run_id
    assert "identity" not in ours[1].events[0].attributes and "identity" in ours[0].events[0].attributes
    # As on the server, the next run of the chain carries the reset points, with their expiry.
    (point,) = ours[1].events[0].attributes["prevAutoResetPoints"]["points"]
    (expected_point,) = real[1].events[0].attributes["prevAutoResetPoints"]["points"]
    assert list(point) == list(expected_point)
    assert point["runId"] == ours[0].run_id and point["firstWorkflowTaskCompletedId"] == expected_point["firstWorkflowTaskCompletedId"]


@workflow.defn(sandboxed=False)
class CronUntil:
    """Completes until 12:15, then waits for ever: result() awaited in time-skipping mode lets
    time run, and a run that stays open makes terminating it free of races."""

    @workflow.run
    async def run(self, name: str) -> str:
        if workflow.now() >= datetime(2026, 12, 7, 12, 15, tzinfo=UTC):
            await workflow.wait_condition(lambda: False)
        return name


async def test_result_follows_the_chain_and_terminate_ends_it() -> None:
    import asyncio

    from engine.errors import TerminatedError, WorkflowFailureError

    env = await WorkflowEnvironment.start_time_skipping(start=datetime(2026, 12, 7, 12, 0, 10, tzinfo=UTC))
    client = env.client
    async with Worker(client, task_queue="q", workflows=[CronUntil]):
        handle = await client.start_workflow(CronUntil.run, "m", id="c", task_queue="q", cron_schedule="*/5 * * * *")
        await env.sleep(timedelta(minutes=11))
        descriptions = [d async for d in client.list_workflows("WorkflowId = 'c'")]
        assert sorted(d.status.name for d in descriptions) == ["COMPLETED", "COMPLETED", "RUNNING"]
        starts = []
        for d in descriptions:
            events = (await client.get_workflow_handle("c", run_id=d.run_id).fetch_history()).events
            if len(events) > 1 and events[1].event_time is not None:
                starts.append(events[1].event_time.strftime("%H:%M:%S"))
        assert sorted(starts) == ["12:05:00", "12:10:00"]  # the third waits for 12:15
        follower = client.get_workflow_handle("c", run_id=handle.run_id)
        waiting = asyncio.ensure_future(follower.result())
        for _ in range(100):  # time runs while result() waits: the 12:15 run starts and stays
            await asyncio.sleep(0.02)
            if follower.result_run_id not in (None, handle.run_id) and len([d async for d in client.list_workflows("WorkflowId = 'c'")]) == 3:
                break
        assert not waiting.done()  # result() follows the chain rather than return the first run's
        await client.get_workflow_handle("c").terminate()
        with pytest.raises(WorkflowFailureError) as caught:
            await waiting
        assert isinstance(caught.value.cause, TerminatedError)
    await client.close()


async def test_a_bad_cron_schedule_fails_the_start_in_one_line() -> None:
    async with await Client.connect(":memory:") as client:
        with pytest.raises(CronError, match="has 2 fields, not 5"):
            await client.start_workflow("W", id="w", task_queue="q", cron_schedule="* *")
