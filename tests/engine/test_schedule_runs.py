"""A schedule's runs start as Temporal's scheduler starts them (tests/histories/schedule_run_*.json,
recorded from a real dev server): the scheduler's identity, the TemporalScheduledById and
TemporalScheduledStartTime search attributes, and the last completed run's result."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from engine import Worker, workflow
from engine.client import Schedule, ScheduleActionStartWorkflow, ScheduleIntervalSpec, ScheduleSpec
from engine.common import SearchAttributeKey
from engine.testing import WorkflowEnvironment

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
START = datetime(2026, 12, 7, 12, 0, 1, tzinfo=timezone.utc)


# The twin of tests/histories/fixture_workflows.py's ScheduledWorkflow, with our imports.
@workflow.defn(sandboxed=False)
class ScheduledWorkflow:
    @workflow.run
    async def run(self, n: int) -> str:
        await workflow.sleep(1)
        return f"ran {n}"


def _started(events: list[dict[str, Any]]) -> dict[str, Any]:
    return events[0]["workflowExecutionStartedEventAttributes"]  # type: ignore[no-any-return]


def _data(payload: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(payload["data"]))


async def test_schedule_runs_start_as_temporals_scheduler_starts_them(tmp_path: Path) -> None:
    env = await WorkflowEnvironment.start_time_skipping(start=START, path=str(tmp_path / "s.db"))
    client = env.client
    async with Worker(client, task_queue="fixtures", workflows=[ScheduledWorkflow]):
        handle = await client.create_schedule("fixture-schedule", Schedule(
            action=ScheduleActionStartWorkflow(ScheduledWorkflow.run, 7, id="fixture-scheduled", task_queue="fixtures"),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=3))]),
        ))
        await env.sleep(timedelta(seconds=6))
        recent = (await handle.describe()).info.recent_actions[:2]
        ours = []
        for action in recent:
            run = client.get_workflow_handle(action.action.workflow_id)
            assert await run.result() == "ran 7"
            ours.append((action.action.workflow_id, json.loads((await run.fetch_history()).to_json())["events"]))
        by_schedule = [d.id async for d in client.list_workflows("TemporalScheduledById = 'fixture-schedule'")]
        await handle.delete()
    await env.shutdown()
    assert [w for w, _ in ours] == ["fixture-scheduled-2026-12-07T12:00:03Z", "fixture-scheduled-2026-12-07T12:00:06Z"]
    assert sorted(by_schedule) == [w for w, _ in ours]
    for number, (workflow_id, events) in enumerate(ours, 1):
        real = _started(json.loads((HISTORIES / f"schedule_run_{number}.json").read_text())["events"])
        mine = _started(events)
        assert mine["identity"] == real["identity"] == "temporal-scheduler-default-fixture-schedule"
        fields, real_fields = mine["searchAttributes"]["indexedFields"], real["searchAttributes"]["indexedFields"]
        assert sorted(fields) == sorted(real_fields) == ["TemporalScheduledById", "TemporalScheduledStartTime"]
        for name in fields:
            assert fields[name]["metadata"] == real_fields[name]["metadata"], name
        assert _data(fields["TemporalScheduledById"]) == _data(real_fields["TemporalScheduledById"]) == "fixture-schedule"
        when = _data(fields["TemporalScheduledStartTime"])
        assert workflow_id.endswith(when) and len(when) == len(_data(real_fields["TemporalScheduledStartTime"]))
        # The second run carries the first one's result, as Temporal's scheduler passes it on.
        assert ("lastCompletionResult" in mine) == ("lastCompletionResult" in real) == (number == 2)
        if number == 2:
            assert mine["lastCompletionResult"] == real["lastCompletionResult"]
    described = await _described_attributes(tmp_path)
    assert described == ("fixture-schedule", datetime(2026, 12, 7, 12, 0, 3, tzinfo=timezone.utc))


async def _described_attributes(tmp_path: Path) -> tuple[Any, Any]:
    from engine.client import Client

    client = await Client.connect(str(tmp_path / "s.db"))
    try:
        attributes = (await client.get_workflow_handle("fixture-scheduled-2026-12-07T12:00:03Z").describe()).typed_search_attributes
        return (attributes.get(SearchAttributeKey.for_keyword("TemporalScheduledById")),
                attributes.get(SearchAttributeKey.for_datetime("TemporalScheduledStartTime")))
    finally:
        await client.close()
