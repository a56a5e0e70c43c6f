"""Schedules' calendar specs, skip, jitter, backfill and the TERMINATE_OTHER overlap policy,
with temporalio's classes and semantics (UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from engine import Worker, workflow
from engine._history.schedule_specs import calendar_next, jitter_delay, next_time
from engine.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from engine.client import WorkflowExecutionStatus
from engine.testing import WorkflowEnvironment

START = datetime(2026, 12, 7, 12, 0, 30, tzinfo=timezone.utc)  # a Monday


@workflow.defn(sandboxed=False)
class Tick:
    @workflow.run
    async def run(self) -> str:
        return "tick"


@workflow.defn(sandboxed=False)
class Long:
    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(days=1))


def _action(workflow_cls: type = Tick) -> ScheduleActionStartWorkflow:
    return ScheduleActionStartWorkflow(workflow_cls.run, id="tick", task_queue="q")  # type: ignore[attr-defined]


async def _names(env: WorkflowEnvironment, workflow_type: str = "Tick") -> list[str]:
    return sorted([d.id async for d in env.client.list_workflows(f"WorkflowType = '{workflow_type}'")])


async def test_a_calendar_schedule_acts_at_its_times_less_the_skipped_ones(tmp_path: Path) -> None:
    env = await WorkflowEnvironment.start_time_skipping(start=START, path=str(tmp_path / "s.db"))
    weekdays_at_9_30 = ScheduleCalendarSpec(minute=(ScheduleRange(30),), hour=(ScheduleRange(9),), day_of_week=(ScheduleRange(1, 5),))
    async with Worker(env.client, task_queue="q", workflows=[Tick]):
        handle = await env.client.create_schedule("cal", Schedule(
            action=_action(),
            spec=ScheduleSpec(calendars=[weekdays_at_9_30], skip=[ScheduleCalendarSpec(
                minute=[ScheduleRange(30)], hour=[ScheduleRange(9)], day_of_month=[ScheduleRange(9)], month=[ScheduleRange(12)])]),
        ))
        description = await handle.describe()
        assert description.info.next_action_times[:4] == [
            datetime(2026, 12, d, 9, 30, tzinfo=timezone.utc) for d in (8, 10, 11, 14)  # the 9th skipped, a weekend
        ]
        assert description.schedule.spec.calendars == [weekdays_at_9_30]
        await env.sleep(timedelta(days=3))
        assert await _names(env) == ["tick-2026-12-08T09:30:00Z", "tick-2026-12-10T09:30:00Z"]
    await env.shutdown()


async def test_jitter_delays_each_action_within_its_bound_and_keeps_the_nominal_time(tmp_path: Path) -> None:
    env = await WorkflowEnvironment.start_time_skipping(start=START, path=str(tmp_path / "s.db"))
    async with Worker(env.client, task_queue="q", workflows=[Tick]):
        handle = await env.client.create_schedule("jittery", Schedule(
            action=_action(), spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))], jitter=timedelta(minutes=10)),
        ))
        await env.sleep(timedelta(hours=3, minutes=30))
        recent = (await handle.describe()).info.recent_actions
    await env.shutdown()
    assert [a.action.workflow_id for a in recent] == [f"tick-2026-12-07T{h}:00:00Z" for h in (13, 14, 15)]
    delays = [a.started_at - a.scheduled_at for a in recent]
    assert all(timedelta(0) <= d < timedelta(minutes=10) for d in delays) and len(set(delays)) == 3
    for action in recent:  # the same delay whenever it is computed
        nominal = action.scheduled_at.timestamp()
        assert abs(jitter_delay("jittery", nominal, 600) - (action.started_at - action.scheduled_at).total_seconds()) < 1


async def test_backfill_takes_the_actions_of_past_times_even_when_paused(tmp_path: Path) -> None:
    env = await WorkflowEnvironment.start_time_skipping(start=START, path=str(tmp_path / "s.db"))
    async with Worker(env.client, task_queue="q", workflows=[Tick]):
        handle = await env.client.create_schedule("hourly", Schedule(
            action=_action(), spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            state=ScheduleState(paused=True),
        ))
        await handle.backfill(ScheduleBackfill(START - timedelta(hours=3), START, overlap=ScheduleOverlapPolicy.ALLOW_ALL))
        await env.sleep(timedelta(seconds=5))
        # From 09:00:30 to 12:00:30: the hours 10, 11 and 12.
        assert await _names(env) == [f"tick-2026-12-07T{h}:00:00Z" for h in ("10", "11", "12")]
        assert (await handle.describe()).info.num_actions == 3
        with pytest.raises(ValueError, match="BUFFER_ALL is not supported"):
            await handle.backfill(ScheduleBackfill(START, START, overlap=ScheduleOverlapPolicy.BUFFER_ALL))
        with pytest.raises(ValueError, match="ends .* before it starts"):
            await handle.backfill(ScheduleBackfill(START, START - timedelta(hours=1)))
    await env.shutdown()


async def test_terminate_other_ends_the_open_run_before_the_next_starts(tmp_path: Path) -> None:
    env = await WorkflowEnvironment.start_time_skipping(start=START, path=str(tmp_path / "s.db"))
    async with Worker(env.client, task_queue="q", workflows=[Long]):
        await env.client.create_schedule("replacing", Schedule(
            action=_action(Long), spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.TERMINATE_OTHER),
        ))
        await env.sleep(timedelta(hours=2))
        first = await env.client.get_workflow_handle("tick-2026-12-07T13:00:00Z").describe()
        second = await env.client.get_workflow_handle("tick-2026-12-07T14:00:00Z").describe()
    await env.shutdown()
    assert first.status == WorkflowExecutionStatus.TERMINATED and second.status == WorkflowExecutionStatus.RUNNING


def test_unsupported_overlap_policies_are_refused_when_the_schedule_is_made() -> None:
    from engine._frontend.schedules import check

    with pytest.raises(ValueError, match="BUFFER_ONE is not supported by this engine"):
        check(Schedule(action=_action(), spec=ScheduleSpec(cron_expressions=["0 * * * *"]),
                       policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.BUFFER_ONE)))
    with pytest.raises(ValueError, match="hour range"):
        check(Schedule(action=_action(), spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(25)])])))


_minutes = st.lists(st.integers(0, 59), min_size=1, max_size=4)
_hours = st.lists(st.integers(0, 23), min_size=1, max_size=3)


@settings(max_examples=60, deadline=None)
@given(minutes=_minutes, hours=_hours, weekdays=st.lists(st.integers(0, 6), min_size=1, max_size=3),
       after=st.integers(0, 6 * 24 * 60))
def test_calendar_next_is_the_first_matching_time(minutes: list[int], hours: list[int], weekdays: list[int], after: int) -> None:
    calendar = {"second": [[0, 0, 1]], "minute": [[m, m, 1] for m in minutes], "hour": [[h, h, 1] for h in hours],
                "day_of_month": [[1, 31, 1]], "month": [[1, 12, 1]], "year": [], "day_of_week": [[d, d, 1] for d in weekdays]}
    start = START + timedelta(minutes=after)
    found = calendar_next(calendar, start)
    moment = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while not (moment.minute in minutes and moment.hour in hours and moment.isoweekday() % 7 in weekdays):
        moment += timedelta(minutes=1)  # brute force, a minute at a time: at most 8 days
    assert found == moment
    spec = {"intervals": [], "cron": [], "calendars": [calendar]}
    assert next_time(spec, start.timestamp()) == moment.timestamp()
