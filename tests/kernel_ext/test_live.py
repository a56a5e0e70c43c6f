"""The live run view re-renders as events arrive and stops when the run closes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from engine import Worker, activity, workflow
from engine.testing import WorkflowEnvironment

import re

from kernel_ext.live import STALE_AFTER, LiveRunView, clock_time

GATE: dict[str, asyncio.Event] = {}


@activity.defn
async def wait_for_gate() -> str:
    await GATE["open"].wait()
    return "through"


@workflow.defn
class Gated:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(wait_for_gate, start_to_close_timeout=timedelta(seconds=30))


async def test_live_view_follows_a_run_until_it_closes() -> None:
    GATE["open"] = asyncio.Event()
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Gated], activities=[wait_for_gate]):
        handle = await env.client.start_workflow(Gated.run, id="gated", task_queue="q")
        view = LiveRunView(handle)
        view.MIN_INTERVAL = 0.01
        follower = asyncio.ensure_future(view.follow())
        for _ in range(200):
            if view.renders and "wait_for_gate" in await view.refresh():
                break
            await asyncio.sleep(0.01)
        assert not view.closed and not follower.done()
        GATE["open"].set()
        await asyncio.wait_for(follower, 10)
        assert view.closed
        final = await view.refresh()
    await env.shutdown()
    assert "Completed" in final and "through" in final


async def test_mimebundle_is_a_widget_with_a_text_fallback() -> None:
    GATE["open"] = asyncio.Event()
    GATE["open"].set()
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Gated], activities=[wait_for_gate]):
        handle = await env.client.start_workflow(Gated.run, id="g2", task_queue="q")
        view = LiveRunView(handle)
        bundle = view._repr_mimebundle_()
        assert bundle["text/plain"] == "<live view of run 'g2'>"
        assert "application/vnd.jupyter.widget-view+json" in bundle
        await handle.result()
        for _ in range(300):
            if view.closed:
                break
            await asyncio.sleep(0.01)
        assert view.closed and "Completed" in view._body.value
        assert "this view is final" in view._line.value and "dlab-stale" not in view._line.value
    await env.shutdown()


async def test_follow_stops_quietly_when_the_engine_closes() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    handle = await env.client.start_workflow(Gated.run, id="g3", task_queue="nobody")
    view = LiveRunView(handle)
    await env.shutdown()
    await asyncio.wait_for(view.follow(), 5)  # returns instead of raising
    assert not view.closed


async def test_the_status_line_counts_a_quiet_run_to_now_and_carries_its_own_alarm() -> None:
    # A run waiting for a gate has no new events; its age must still grow, so a stuck run
    # does not look young, and the line must say it stopped updating if the kernel goes.
    GATE["open"] = asyncio.Event()
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Gated], activities=[wait_for_gate]):
        handle = await env.client.start_workflow(Gated.run, id="quiet", task_queue="q")
        view = LiveRunView(handle)
        for _ in range(200):
            if "wait_for_gate" in await view.refresh():
                break
            await asyncio.sleep(0.01)
        # Virtual time moves on with nothing happening (no timers fire: the clock alone moves).
        start = view.history.events[0].event_time if view.history else None
        assert start is not None
        env.client.clock.advance_to(start + timedelta(minutes=3, seconds=12, milliseconds=500))
        line = view.line()
        GATE["open"].set()
        await handle.result()
    await env.shutdown()
    assert "running for <strong>0:03:12</strong>" in line and "last event 0:03:12 ago" in line
    # The alarm: hidden by CSS until STALE_AFTER seconds pass without a new line, then it
    # counts on from the run's age when the line was drawn.
    assert f"animation: dlab-show 0s {STALE_AFTER}s forwards" in line
    assert re.search(r'running for <span class="dlab-age" style="--dlab-from: 192">', line)
    assert "This view stopped updating" in line and "%workflow show --workflow-id quiet" in line


def test_clock_time() -> None:
    assert [clock_time(s) for s in (0, 59.9, 192.4, 3721, 90061)] == ["0:00:00", "0:00:59", "0:03:12", "1:02:01", "25:01:01"]
