"""Local activities (issue 11, item 6): run in the workflow task, recorded as core's markers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import Worker
from engine.replay import Replayer
from engine.testing import WorkflowEnvironment

from tests.engine import local_activity_app as app

FIXTURE = Path(__file__).resolve().parents[1] / "histories" / "local_activities.json"
EXPECTED = ["Hello, Ada!", "quick after 3 attempts", "slow after 3 attempts", "book failed: ApplicationError: None"]


async def _run() -> tuple[list[str], object]:
    app.CALLS.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    acts = app.FixtureActivities()
    async with Worker(env.client, task_queue="q", workflows=[app.LocalActivitiesWorkflow], activities=[acts.greet, acts.flaky, acts.book]):
        result = await env.client.execute_workflow(app.LocalActivitiesWorkflow.run, "Ada", id="la", task_queue="q")
        history = await env.client.get_workflow_handle("la").fetch_history()
    await env.shutdown()
    return result, history


async def test_local_activities_run_retry_and_record_markers() -> None:
    result, history = await _run()
    assert result == EXPECTED
    assert app.CALLS == [("greet", 1), ("quick", 1), ("quick", 2), ("quick", 3), ("slow", 1), ("slow", 2), ("slow", 3), ("car", 1)]
    types = [e.event_type for e in history.events]  # type: ignore[attr-defined]
    assert not [t for t in types if t.startswith("ActivityTask")]
    markers = [e for e in history.events if e.event_type == "MarkerRecorded"]  # type: ignore[attr-defined]
    assert [m.attributes["markerName"] for m in markers] == ["core_local_activity"] * 6


@pytest.mark.skipif(not FIXTURE.exists(), reason="fixture not recorded")
async def test_history_is_shaped_as_real_temporals() -> None:
    from engine._runtime.local_activities import marker_data

    _, history = await _run()
    theirs = json.loads(FIXTURE.read_text())["events"]
    their_types = [e["eventType"].removeprefix("EVENT_TYPE_") for e in theirs]
    ours = history.to_json()  # type: ignore[attr-defined]
    our_types = [e["eventType"].removeprefix("EVENT_TYPE_") for e in json.loads(ours)["events"]]
    assert our_types == their_types
    their_markers = [e["markerRecordedEventAttributes"] for e in theirs if "markerRecordedEventAttributes" in e]
    # Exported, as Temporal's JSON leaves zero values out.
    our_markers = [e["markerRecordedEventAttributes"] for e in json.loads(ours)["events"] if "markerRecordedEventAttributes" in e]
    for mine, real in zip(our_markers, their_markers, strict=True):
        assert sorted(mine) == sorted(real)
        assert sorted(mine["details"]) == sorted(real["details"])
        m, r = marker_data(mine), marker_data(real)
        assert m is not None and r is not None and list(m) == list(r)
        for key in ("seq", "attempt", "activity_id", "activity_type", "backoff", "activation_index"):
            assert m[key] == r[key], key
        if "failure" in real:
            assert mine["failure"]["applicationFailureInfo"] == real["failure"]["applicationFailureInfo"]
        else:
            assert mine["details"]["result"] == real["details"]["result"]
    timers = [e.attributes for e in history.events if e.event_type == "TimerStarted"]  # type: ignore[attr-defined]
    assert [(t["timerId"], t["startToFireTimeout"]) for t in timers] == [("1", "2s"), ("2", "2s")]


async def test_replay_uses_the_markers_and_runs_nothing() -> None:
    _, history = await _run()
    app.CALLS.clear()
    Replayer(workflows=[app.LocalActivitiesWorkflow]).replay_workflow(history)  # type: ignore[arg-type]
    assert app.CALLS == []


async def test_the_real_temporal_history_replays_here() -> None:
    from engine.history import History

    history = History.from_json("fixture-local-activities", FIXTURE.read_text())
    app.CALLS.clear()
    Replayer(workflows=[app.LocalActivitiesWorkflow]).replay_workflow(history)
    assert app.CALLS == []


def test_a_changed_local_activity_is_nondeterminism() -> None:
    from datetime import timedelta

    from engine import workflow
    from engine.errors import NondeterminismError
    from engine.history import History

    @workflow.defn(name="LocalActivitiesWorkflow", sandboxed=False)
    class Changed:
        @workflow.run
        async def run(self, name: str) -> str:
            return await workflow.execute_local_activity("shout", name, start_to_close_timeout=timedelta(seconds=1))

    history = History.from_json("fixture-local-activities", FIXTURE.read_text())
    with pytest.raises(NondeterminismError, match="core_local_activity"):
        Replayer(workflows=[Changed]).replay_workflow(history)


async def test_local_activities_under_a_payload_codec(tmp_path: Path) -> None:
    from engine.codecs import EncryptionCodec
    from engine.converter import DataConverter

    converter = DataConverter(payload_codec=EncryptionCodec(b"k" * 32))
    app.CALLS.clear()
    env = await WorkflowEnvironment.start_time_skipping(path=str(tmp_path / "la.db"), data_converter=converter)
    acts = app.FixtureActivities()
    async with Worker(env.client, task_queue="q", workflows=[app.LocalActivitiesWorkflow], activities=[acts.greet, acts.flaky, acts.book]):
        result = await env.client.execute_workflow(app.LocalActivitiesWorkflow.run, "Ada", id="la", task_queue="q")
        history = await env.client.get_workflow_handle("la").fetch_history()
    await env.shutdown()
    assert result == EXPECTED
    marker = next(e for e in history.events if e.event_type == "MarkerRecorded")
    assert b"Hello, Ada" not in json.dumps(marker.attributes).encode()


async def test_time_skipping_never_times_out_the_task_of_a_worker_started_during_a_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's clock loop read the idle state with the workers it knew before one
    started; that worker's lease was not counted, so time jumped over the timeout of the
    workflow task it was running local activities in (a race that failed 1 run in 8)."""
    import asyncio

    from engine._history import timer_queue  # the clock loop reads the idle state there

    real = timer_queue.idle_state
    armed = {"on": False}
    app.SLOW_STARTED.clear()

    def stale_read(conn, now, served, owners=()):  # type: ignore[no-untyped-def]
        if armed["on"] and not owners:
            armed["on"] = False
            # On the reader's thread: this read began before the worker started; it runs
            # once the worker holds the workflow task and runs the local activity.
            app.SLOW_STARTED.wait(10)
        return real(conn, now, served, owners)

    monkeypatch.setattr(timer_queue, "idle_state", stale_read)
    env = await WorkflowEnvironment.start_time_skipping(path=str(tmp_path / "race.db"))
    handle = await env.client.start_workflow(app.SlowLocal.run, 0.8, id="race", task_queue="q")
    waiting = asyncio.ensure_future(handle.result())  # someone awaits: time may skip
    armed["on"] = True
    await asyncio.sleep(1.2)  # the clock loop reads at least once a second
    async with Worker(env.client, task_queue="q", workflows=[app.SlowLocal], activities=[app.slow_local]):
        assert await asyncio.wait_for(waiting, 20) == "slept"
        history = await handle.fetch_history()
    await env.shutdown()
    assert "WorkflowTaskTimedOut" not in [e.event_type for e in history.events]
