"""Temporal's Schedules API (issue 11, item 7): create, describe, list, pause, unpause,
trigger, update, delete, driven by the engine's clock (time skipping) and stored with the
runs they start."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine import Worker, workflow
from engine.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleNotFoundError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from engine.testing import WorkflowEnvironment

START = datetime(2026, 12, 7, 12, 0, 30, tzinfo=timezone.utc)


@workflow.defn(sandboxed=False)
class Report:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"report {name}"


def _schedule(**state: object) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(Report.run, "daily", id="report", task_queue="q"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))], cron_expressions=["30 12 * * *"]),
        state=ScheduleState(**state),  # type: ignore[arg-type]
    )


async def _runs(env: WorkflowEnvironment) -> list[str]:
    return sorted([d.id async for d in env.client.list_workflows("WorkflowType = 'Report'")])


async def test_a_schedule_starts_runs_at_its_times_and_is_described(tmp_path: Path) -> None:
    env = await WorkflowEnvironment.start_time_skipping(start=START, path=str(tmp_path / "s.db"))
    client = env.client
    async with Worker(client, task_queue="q", workflows=[Report]):
        handle = await client.create_schedule("hourly", _schedule(note="made"))
        await env.sleep(timedelta(hours=2))
        assert await _runs(env) == ["report-2026-12-07T12:30:00Z", "report-2026-12-07T13:00:00Z", "report-2026-12-07T14:00:00Z"]
        description = await handle.describe()
        assert description.id == "hourly" and description.info.num_actions == 3
        assert [a.action.workflow_id for a in description.info.recent_actions][-1] == "report-2026-12-07T14:00:00Z"
        assert description.info.next_action_times[0] == datetime(2026, 12, 7, 15, 0, tzinfo=timezone.utc)
        assert description.schedule.state.note == "made"
        action = description.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == "Report" and list(action.args) == ["daily"]
        result = await client.get_workflow_handle("report-2026-12-07T13:00:00Z").result()
        assert result == "report daily"

        await handle.pause(note="holiday")
        await env.sleep(timedelta(hours=2))
        assert len(await _runs(env)) == 3
        assert (await handle.describe()).schedule.state.paused
        await handle.trigger()  # also when paused
        await env.sleep(timedelta(seconds=1))
        assert len(await _runs(env)) == 4
        await handle.unpause()
        await env.sleep(timedelta(hours=1))
        assert len(await _runs(env)) == 5

        def every_two_hours(update: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule = update.description.schedule
            schedule.spec = ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=2))])
            return ScheduleUpdate(schedule)

        await handle.update(every_two_hours)
        times = (await handle.describe()).info.next_action_times
        assert times[1] - times[0] == timedelta(hours=2)
        assert [s.id async for s in client.list_schedules()] == ["hourly"]
        with pytest.raises(ScheduleAlreadyRunningError):
            await client.create_schedule("hourly", _schedule())
        await handle.delete()
        assert [s.id async for s in client.list_schedules()] == []
        with pytest.raises(ScheduleNotFoundError):
            await handle.describe()
    await client.close()
    # The schedule's bookkeeping and its runs are in the same file.
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT count(*) FROM schedules").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM executions WHERE workflow_type = 'Report'").fetchone()[0] == 5


@workflow.defn(sandboxed=False)
class Slow:
    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(hours=3))


async def test_overlap_skip_counts_skipped_actions() -> None:
    env = await WorkflowEnvironment.start_time_skipping(start=START)
    client = env.client
    async with Worker(client, task_queue="q", workflows=[Slow]):
        handle = await client.create_schedule(
            "slow",
            Schedule(
                action=ScheduleActionStartWorkflow(Slow.run, id="slow", task_queue="q"),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            ),
        )
        await env.sleep(timedelta(hours=2, minutes=30))
        info = (await handle.describe()).info
        assert info.num_actions == 1 and info.num_actions_skipped_overlap == 1
        assert len(info.running_actions) == 1
        await handle.delete()
    await client.close()


async def test_unsupported_parts_are_one_line_errors() -> None:
    env = await WorkflowEnvironment.start_time_skipping(start=START)
    bad_policy = Schedule(
        action=ScheduleActionStartWorkflow("Report", id="r", task_queue="q"),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ALL),
    )
    with pytest.raises(ValueError, match="BUFFER_ALL is not supported"):
        await env.client.create_schedule("x", bad_policy)
    with pytest.raises(ValueError, match="needs calendars=.*, intervals=.* or cron_expressions"):
        await env.client.create_schedule("x", Schedule(action=ScheduleActionStartWorkflow("R", id="r", task_queue="q"), spec=ScheduleSpec()))
    await env.client.close()
