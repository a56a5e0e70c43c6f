"""The run explorer's Python side, without a browser: what a click shows, the timeline's bars,
the event table's filter and search, switching runs, the heartbeat, the static fallback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("anywidget")

from engine import Worker
from engine.client import WorkflowExecutionStatus
from engine.testing import WorkflowEnvironment
from kernel_ext._explorer_model import ExplorerModel
from kernel_ext._steps import seconds_between
from kernel_ext.explorer import RunExplorer, explore
from tests.kernel_ext import explorer_runs as runs


async def _busy_and_trip(env: WorkflowEnvironment) -> None:
    runs.TRIES.clear()
    async with Worker(env.client, task_queue="q", workflows=[runs.Busy, runs.Leaf, runs.Trip],
                      activities=[runs.flaky, runs.book, runs.cancel]):
        handle = await env.client.start_workflow(runs.Busy.run, 2, id="busy", task_queue="q")
        assert await runs.finish_busy(env.client, "busy", handle.result()) == "ok round 1 2"
        trip = await env.client.start_workflow(runs.Trip.run, id="trip", task_queue="q")
        with pytest.raises(Exception):
            await trip.result()


async def _env() -> WorkflowEnvironment:
    """A time-skipping engine holding the two runs (made per test: each test has its own loop)."""
    env = await WorkflowEnvironment.start_time_skipping()
    await _busy_and_trip(env)
    return env


def _node_of(model: ExplorerModel, title: str) -> str:
    return next(name for name, row in model.nodes.items() if row["title"] == title)


async def test_a_click_on_an_activity_node_shows_its_events_and_every_attempt() -> None:
    env = await _env()
    try:
        explorer = await explore(env.client, "busy")
        details = explorer.select("node:" + _node_of(explorer.model, "flaky"))
        assert details["title"] == "flaky" and details["status"] == "retried"
        assert [e["type"] for e in details["events"]] == ["ActivityTaskScheduled", "ActivityTaskStarted", "ActivityTaskCompleted"]
        assert 'input:\n  - [0]: "round 1"' in details["events"][0]["attributes"] or '"round 1"' in details["events"][0]["attributes"]
        attempts = details["attempts"]
        assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "failed"), (2, "failed"), (3, "completed")]
        assert attempts[0]["failure"] == "try 1 of round 1 failed" and "flaky" in attempts[0]["stack_trace"]
        assert attempts[1]["took"].endswith("s") and attempts[2]["failure"] == ""
        # A table row opens the step it belongs to, the clicked event first.
        by_event = explorer.select("event:7")
        assert by_event["title"] == "flaky" and by_event["events"][0]["id"] == 7
        assert explorer.select("node:nope")["missing"]
    finally:
        await env.shutdown()


async def test_a_failed_run_shows_the_failure_with_its_stack_trace() -> None:
    env = await _env()
    try:
        explorer = await explore(env.client, "trip")
        assert explorer.header["status"] == "FAILED" and "sold out" in explorer.header["failure"]
        failed = explorer.select("node:" + next(n for n, r in explorer.model.nodes.items() if r["status"] == "failed" and r["kind"] == "activity"))
        assert failed["attempts"][0]["failure"] == "sold out"
        assert "stackTrace: |" in failed["events"][-1]["attributes"]
    finally:
        await env.shutdown()


async def test_timeline_bars_sit_at_the_histories_and_attempts_times() -> None:
    env = await _env()
    try:
        explorer = await explore(env.client, "busy")
        snapshot = explorer.snapshot
        origin = snapshot.history.events[0].event_time
        events = {e.event_id: e for e in snapshot.history.events}
        bars = explorer.model.timeline.bars
        tasks = [b for b in bars if b.kind == "workflow_task"]
        completed = [e for e in snapshot.history.events if e.event_type == "WorkflowTaskCompleted"]
        assert len(tasks) == len(completed)
        for bar, event in zip(tasks, completed):
            assert bar.end == pytest.approx(seconds_between(origin, event.event_time), abs=1e-6)
            assert bar.start == pytest.approx(seconds_between(origin, events[event.event_id - 1].event_time), abs=1e-6)
        tries = [b for b in bars if b.kind == "attempt"]
        assert [b.status for b in tries] == ["failed", "failed", "ok"]
        for bar, attempt in zip(tries, snapshot.attempts):
            assert bar.start == pytest.approx(seconds_between(origin, attempt.started_at), abs=1e-6)
            assert bar.end == pytest.approx(seconds_between(origin, attempt.ended_at), abs=1e-6)
        gaps = [b for b in bars if b.kind == "backoff"]
        assert [round(b.end - b.start) for b in gaps] == [1, 2]  # the retry policy's backoff
        timer = next(b for b in bars if b.kind == "timer")
        assert timer.end - timer.start == pytest.approx(3, abs=0.01)
        assert {b.kind for b in bars} >= {"signal", "child"}
        assert explorer.timeline["end"] >= max(b.end for b in bars)
    finally:
        await env.shutdown()


async def test_parallel_compensations_overlap_on_the_timeline() -> None:
    env = await _env()
    try:
        explorer = await explore(env.client, "trip")
        undo = [b for b in explorer.model.timeline.bars if b.kind == "compensation"]
        assert len(undo) == 2 and len({b.lane for b in undo}) == 2
        first, second = undo
        assert first.start < second.end and second.start < first.end
    finally:
        await env.shutdown()


async def test_the_event_table_filters_by_type_searches_and_pages() -> None:
    env = await _env()
    try:
        explorer = await explore(env.client, "busy")
        everything = explorer.table
        assert everything["total"] == everything["all"] == len(explorer.snapshot.history.events)
        explorer.kind_filter = "WorkflowTaskCompleted"
        assert {r["type"] for r in explorer.table["rows"]} == {"WorkflowTaskCompleted"}
        explorer.kind_filter = ""
        explorer.search = "proceed"
        assert [r["type"] for r in explorer.table["rows"]] == ["WorkflowExecutionSignaled"]
        explorer.search = "FLAKY attempt"
        assert [r["type"] for r in explorer.table["rows"]] == ["ActivityTaskStarted"]
        paged = explorer.model.table(page=1, page_size=10)
        assert paged["page"] == 1 and paged["pages"] == 3 and paged["rows"][0]["id"] == 11
        assert explorer.model.table(page=99, page_size=10)["page"] == 2  # clamped to the last page
    finally:
        await env.shutdown()


async def test_chain_and_children_are_a_click_away() -> None:
    env = await _env()
    try:
        explorer = await explore(env.client, "busy")
        chain = explorer.runs["chain"]
        assert [r["status"] for r in chain] == ["CONTINUED_AS_NEW", "COMPLETED"] and chain[1]["current"]
        await explorer.switch("busy", chain[0]["run_id"])
        assert explorer.header["run_id"] == chain[0]["run_id"] and explorer.runs["chain"][0]["current"]
        child = explorer.runs["children"][0]
        assert child["workflow_id"] == "leaf-2" and child["status"] == "COMPLETED"
        explorer.goto = child["key"]  # as the browser does
        for _ in range(100):
            if explorer.header["workflow_id"] == "leaf-2":
                break
            await asyncio.sleep(0.01)
        assert explorer.header["type"] == "Leaf" and explorer.runs["parent"]["workflow_id"] == "busy"
        await explorer.switch("nope")
        assert "Cannot open run latest of nope" in explorer.message and explorer.header["type"] == "Leaf"
    finally:
        await env.shutdown()


async def test_the_kernel_answers_the_browsers_heartbeat() -> None:
    env = await _env()
    try:
        explorer = await explore(env.client, "busy")
        sent: list[Any] = []
        explorer.send = sent.append  # type: ignore[method-assign]
        explorer._on_message(explorer, {"ping": 7}, [])
        assert sent == [{"pong": 7}]
        # What the browser says when the answers stop: the module holds the words.
        assert "The kernel behind this explorer is not answering" in RunExplorer._esm
    finally:
        await env.shutdown()


async def test_a_live_explorer_gains_events_and_stops_when_the_run_closes() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        runs.TRIES.clear()
        handle = await env.client.start_workflow(runs.Busy.run, 1, id="live", task_queue="later")
        explorer = RunExplorer.loading(env.client, "live")
        assert "its explorer follows it live" in explorer.static_html()
        explorer.POLL = explorer.MIN_INTERVAL = 0.01
        explorer.follow_soon()
        for _ in range(200):
            if explorer.header.get("events"):
                break
            await asyncio.sleep(0.01)
        before = explorer.header["events"]
        assert before == 2 and not explorer.header["closed"]
        async with Worker(env.client, task_queue="later", workflows=[runs.Busy, runs.Leaf], activities=[runs.flaky]):
            await runs.finish_busy(env.client, "live", handle.result())
            for _ in range(300):
                if explorer.header["closed"]:
                    break
                await asyncio.sleep(0.01)
        assert explorer.header["closed"] and explorer.header["events"] > before
        assert explorer.snapshot.status == WorkflowExecutionStatus.COMPLETED
        assert explorer._task is not None and explorer._task.done()
    finally:
        await env.shutdown()


async def test_the_mimebundle_has_a_widget_and_a_static_graph_and_table() -> None:
    env = await _env()
    try:
        explorer = await explore(env.client, "busy")
        data, _ = explorer._repr_mimebundle_()
        assert "application/vnd.jupyter.widget-view+json" in data
        assert "durable-lab-table" in data["text/html"] and "durable-lab-graph" in data["text/html"]
        assert data["text/plain"].startswith("<run explorer of 'busy'")
    finally:
        await env.shutdown()


def test_the_magic_opens_the_explorer_and_a_handle_shows_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.kernel_ext.test_magics import define, loaded_shell, run, usage_error

    monkeypatch.chdir(tmp_path)
    for shell in loaded_shell(before=("%config DurableLab.db_path = ':memory:'",)):
        define(shell)
        run(shell, "%worker start --task-queue q")
        run(shell, "%workflow execute --type Hello --task-queue q --workflow-id w1 --input '\"x\"'")
        explorer = run(shell, "%workflow show --workflow-id w1 --output explorer")
        assert isinstance(explorer, RunExplorer) and explorer.header["status"] == "COMPLETED"
        assert "No workflow with id 'nope'" in usage_error(shell, "%workflow show --workflow-id nope --output explorer")


async def test_a_handle_shown_in_a_notebook_is_its_runs_explorer() -> None:
    from kernel_ext._explorer_handle import handle_bundle

    env = await WorkflowEnvironment.start_time_skipping()
    try:
        handle = await env.client.start_workflow(runs.Leaf.run, 1, id="shown", task_queue="nobody")
        bundle = handle_bundle(handle)
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert "its explorer follows it live" in bundle["text/html"] and "shown" in bundle["text/html"]
    finally:
        await env.shutdown()


async def test_a_node_of_a_child_run_drawn_inside_opens_that_run() -> None:
    env = await _env()
    try:
        explorer = await explore(env.client, "busy")
        model = explorer.model
        child_step = next(name for name, row in model.nodes.items() if row["kind"] == "child")
        assert f"subgraph cluster_{child_step}l0c" in model.dot  # the child run, drawn nested
        details = explorer.select(f"node:{child_step}l0cs0")  # its first node
        (link,) = details["links"]
        assert link["relation"] == "child" and link["workflow_id"] == "leaf-1"
        assert link["key"] == explorer.runs["children"][0]["key"]
    finally:
        await env.shutdown()


async def test_the_runs_tab_holds_the_child_tree() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        async with Worker(env.client, task_queue="q", workflows=[runs.Tree, runs.Middle, runs.Leaf]):
            assert await env.client.execute_workflow(runs.Tree.run, id="tree", task_queue="q") == 10
        explorer = await explore(env.client, "tree")
        tree = [(c["depth"], c["workflow_id"], c["status"], bool(c["key"])) for c in explorer.runs["children"]]
        assert tree == [(0, "middle", "COMPLETED", True), (1, "leaf-of-middle-5", "COMPLETED", True)]
        await explorer.switch(*explorer.runs["children"][1]["key"].split("\n"))
        assert explorer.header["type"] == "Leaf" and explorer.runs["parent"]["workflow_id"] == "middle"
    finally:
        await env.shutdown()


async def test_an_open_timer_is_a_bar_up_to_the_moment_the_run_was_read() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        async with Worker(env.client, task_queue="q", workflows=[runs.Busy, runs.Leaf], activities=[runs.flaky]):
            runs.TRIES.clear()
            handle = await env.client.start_workflow(runs.Busy.run, 1, id="napping", task_queue="q")
            explorer = None
            for _ in range(300):  # until the three attempts ran (time skips the backoff) and the timer started
                await env.sleep(1)
                explorer = await explore(env.client, "napping")
                if any(b.kind == "timer" for b in explorer.model.timeline.bars):
                    break
            assert explorer is not None
            timer = next(b for b in explorer.model.timeline.bars if b.kind == "timer")
            read_at = seconds_between(explorer.snapshot.history.events[0].event_time, explorer.snapshot.read_at)
            assert timer.status == "running" and timer.end == pytest.approx(read_at, abs=1e-6)
            await handle.terminate(reason="enough")
    finally:
        await env.shutdown()
