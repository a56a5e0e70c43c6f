"""A running local activity cancelled by the workflow code records the marker Temporal's core
records (tests/histories/local_cancel_*.json, from a real dev server): at once for
TRY_CANCEL, once the activity stopped for WAIT_CANCELLATION_COMPLETED; the code gets
temporalio's ActivityError("Local Activity cancelled") caused by a CancelledError."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine import activity, workflow
from engine._runtime.local_activities import marker_data
from engine.errors import ActivityError
from engine.history import History
from engine.replay import Replayer
from engine.testing import WorkflowEnvironment
from engine.worker import Worker

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
STOPPED: list[str] = []


@activity.defn
async def la_quick() -> str:
    return "quick"


@activity.defn
async def la_slow() -> str:
    try:
        await asyncio.sleep(20)
    except asyncio.CancelledError:
        STOPPED.append("la_slow")
        raise
    return "slow"


# The twin of tests/histories/fixture_workflows.py's LocalCancelWorkflow, with our imports.
@workflow.defn
class LocalCancelWorkflow:
    @workflow.run
    async def run(self, wait: bool) -> list[Any]:
        kind = (workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED if wait
                else workflow.ActivityCancellationType.TRY_CANCEL)
        quick = workflow.start_local_activity(la_quick, start_to_close_timeout=timedelta(seconds=30))
        slow = workflow.start_local_activity(la_slow, start_to_close_timeout=timedelta(seconds=30), cancellation_type=kind)
        await workflow.wait([quick, slow], return_when=asyncio.FIRST_COMPLETED)
        slow.cancel()
        try:
            await slow
            return ["not cancelled"]
        except ActivityError as e:
            return [quick.result(), str(e), e.activity_type, e.activity_id, int(e.retry_state or 0),
                    type(e.cause).__name__, str(e.cause)]


def _real(name: str) -> dict[str, Any]:
    return json.loads((HISTORIES / f"{name}.json").read_text())  # type: ignore[no-any-return]


def _result(events: list[dict[str, Any]]) -> Any:
    payload = events[-1]["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]
    return json.loads(base64.b64decode(payload["data"]))


@pytest.mark.parametrize("name, wait", [("local_cancel_try", False), ("local_cancel_wait", True)])
async def test_the_cancel_marker_is_shaped_as_real_temporals(name: str, wait: bool) -> None:
    STOPPED.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[LocalCancelWorkflow], activities=[la_quick, la_slow]):
        handle = await env.client.start_workflow(LocalCancelWorkflow.run, wait, id=name, task_queue="q")
        result = await handle.result()
        ours = json.loads((await handle.fetch_history()).to_json())["events"]
    await env.shutdown()
    theirs = _real(name)["events"]
    assert result == _result(theirs)
    assert [e["eventType"] for e in ours] == [e["eventType"] for e in theirs]
    markers = [(m["markerRecordedEventAttributes"], t["markerRecordedEventAttributes"])
               for m, t in zip(ours, theirs) if "markerRecordedEventAttributes" in t]
    assert len(markers) == 2
    for mine, real in markers:
        assert sorted(mine) == sorted(real) and sorted(mine["details"]) == sorted(real["details"])
        m, r = marker_data(mine), marker_data(real)
        assert m is not None and r is not None and list(m) == list(r)
        for key in ("seq", "attempt", "activity_id", "activity_type", "backoff", "activation_index"):
            assert m[key] == r[key], key
        assert (m["complete_time"] is None) == (r["complete_time"] is None)
    cancelled, real_cancelled = markers[1]
    assert cancelled["failure"] == real_cancelled["failure"]
    if wait:  # the code waited for the activity to stop
        assert STOPPED == ["la_slow"]


@pytest.mark.parametrize("name", ["local_cancel_try", "local_cancel_wait"])
def test_the_real_histories_replay_here(name: str) -> None:
    history = History.from_json(f"fixture-{name.replace('_', '-')}", (HISTORIES / f"{name}.json").read_text())
    Replayer(workflows=[LocalCancelWorkflow]).replay_workflow(history)
