"""workflow.patched: runs started on old code finish the old way, new runs take the new path."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from engine import Worker, workflow
from engine.errors import NondeterminismError
from engine.replay import Replayer
from engine.testing import WorkflowEnvironment

from tests.engine.workflows import echo

T = timedelta(seconds=5)


@workflow.defn(name="Shipping")
class ShippingV1:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(hours=1))
        return await workflow.execute_activity(echo, "by truck", start_to_close_timeout=T)


@workflow.defn(name="Shipping")
class ShippingV2Unsafe:
    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity(echo, "check customs", start_to_close_timeout=T)
        await workflow.sleep(timedelta(hours=1))
        return await workflow.execute_activity(echo, "by drone", start_to_close_timeout=T)


@workflow.defn(name="Shipping")
class ShippingV2:
    @workflow.run
    async def run(self) -> str:
        if workflow.patched("customs-check"):
            await workflow.execute_activity(echo, "check customs", start_to_close_timeout=T)
        await workflow.sleep(timedelta(hours=1))
        return await workflow.execute_activity(echo, "by truck", start_to_close_timeout=T)


@workflow.defn(name="Shipping")
class ShippingV3:
    @workflow.run
    async def run(self) -> str:
        workflow.deprecate_patch("customs-check")
        await workflow.execute_activity(echo, "check customs", start_to_close_timeout=T)
        await workflow.sleep(timedelta(hours=1))
        return await workflow.execute_activity(echo, "by truck", start_to_close_timeout=T)


async def _timer_started(handle) -> None:  # type: ignore[no-untyped-def]
    for _ in range(300):
        if any(e.event_type == "TimerStarted" for e in (await handle.fetch_history()).events):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no timer")


async def test_old_run_finishes_on_new_code_thanks_to_patched() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[ShippingV1], activities=[echo]):
        old = await env.client.start_workflow("Shipping", id="old", task_queue="q")
        await _timer_started(old)
        old_history_v1 = await old.fetch_history()
    with pytest.raises(NondeterminismError):
        Replayer(workflows=[ShippingV2Unsafe]).replay_workflow(old_history_v1)  # the unsafe change breaks it
    async with Worker(env.client, task_queue="q", workflows=[ShippingV2], activities=[echo]):
        assert await old.result() == "by truck"
        new = await env.client.start_workflow("Shipping", id="new", task_queue="q")
        assert await new.result() == "by truck"
        old_history = await old.fetch_history()
        new_history = await new.fetch_history()
    await env.shutdown()
    assert not any(e.event_type == "MarkerRecorded" for e in old_history.events)
    markers = [e for e in new_history.events if e.event_type == "MarkerRecorded"]
    assert [m.attributes["markerName"] for m in markers] == ["core_patch"]
    scheduled = [e.attributes["input"] for e in new_history.events if e.event_type == "ActivityTaskScheduled"]
    assert len(scheduled) == 2
    # Both kinds of run replay against V2, and the patched run also against V3 (deprecated).
    Replayer(workflows=[ShippingV2]).replay_workflow(old_history)
    Replayer(workflows=[ShippingV2]).replay_workflow(new_history)
    Replayer(workflows=[ShippingV3]).replay_workflow(new_history)


def test_markers_recorded_by_a_real_temporal_server_are_understood() -> None:
    from pathlib import Path

    from engine._runtime.commands import patch_of
    from engine.history import load_history

    folder = Path(__file__).resolve().parents[1] / "histories"
    histories = {p.stem: load_history(p) for p in sorted(folder.glob("*.json")) if p.name != "recorded_with.json"}
    assert len(histories) >= 9
    patches = [patch_of(e) for e in histories["patched"].events if e.event_type == "MarkerRecorded"]
    assert patches == [("my-change", False), ("other-change", True)]
