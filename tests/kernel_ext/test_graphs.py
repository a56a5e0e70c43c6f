"""Runs drawn as steps: real engine histories, Temporal's own histories, synthetic odd ones."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

import pytest

from engine import Worker, workflow
from engine.client import ActivityAttempt
from engine.history import History, HistoryEvent, encode_payload, load_history
from engine.testing import WorkflowEnvironment
from kernel_ext import _dot, graphs
from kernel_ext.graphs import STATUS_COLOURS, collapse_rows, history_timeline_rows, render_svg, run_graph

from tests.engine.workflows import (
    MoneyTransfer,
    Parallel,
    Refusing,
    Sleeper,
    Transfer,
    deposit,
    echo,
    refuse,
    withdraw,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "histories"
SHARED_FILES = sorted(SHARED.glob("*.json")) if SHARED.is_dir() else []
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
NODE = re.compile(r'^  (s\d+) \[label="((?:[^"\\]|\\.)*)", tooltip="((?:[^"\\]|\\.)*)", fillcolor="(#[0-9a-f]{6})", '
                  r'color="(#[0-9a-f]{6})", style="[a-z,]+"(?:, penwidth=2)?(?:, shape=\w+)?\];$')


@workflow.defn
class EchoLoop:
    @workflow.run
    async def run(self, n: int) -> int:
        for _ in range(n):
            await workflow.execute_activity(echo, "x", start_to_close_timeout=timedelta(seconds=5))
        return n


@workflow.defn(name="GraphOrder")
class GraphOrderV1:
    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity(echo, "reserve", start_to_close_timeout=timedelta(seconds=5))
        await workflow.sleep(timedelta(hours=1))
        return "done"


@workflow.defn(name="GraphOrder")
class GraphOrderV2:
    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity(echo, "reserve", start_to_close_timeout=timedelta(seconds=5))
        await workflow.execute_activity(echo, "charge", start_to_close_timeout=timedelta(seconds=5))
        return "done"


async def run_workflow(wf: Any, *args: Any, workflows: Sequence[type] = (), activities: Sequence[Any] = ()) -> tuple[
    History, list[ActivityAttempt]
]:
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        async with Worker(env.client, task_queue="graphs", workflows=list(workflows), activities=list(activities)):
            handle = await env.client.start_workflow(wf, args=list(args), id="graph-run", task_queue="graphs")
            try:
                await handle.result()
            except Exception:  # noqa: BLE001 - failing runs are drawn too
                pass
            return await handle.fetch_history(), await handle.activity_attempts()
    finally:
        await env.shutdown()


def nodes(dot: str) -> dict[str, dict[str, str]]:
    """Node name -> label, tooltip, fill and border (each node statement is one line)."""
    found = {}
    for line in dot.splitlines():
        match = NODE.match(line)
        if match:
            name, label, tooltip, fill, border = match.groups()
            found[name] = {"label": label, "tooltip": tooltip, "fill": fill, "border": border}
    return found


def edges(dot: str) -> list[tuple[str, str]]:
    return re.findall(r"^  (\w+) -> (\w+)", dot, flags=re.M)


def node_titled(dot: str, title: str) -> dict[str, str]:
    matching = [n for n in nodes(dot).values() if n["label"].split("\\n")[0] == title]
    assert len(matching) == 1, (title, dot)
    return matching[0]


# --- histories built by hand -----------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def synthetic(specs: Sequence[tuple[str, dict[str, Any]]], *, step: timedelta = timedelta(seconds=1)) -> History:
    events = tuple(
        HistoryEvent(event_id=i, event_type=kind, event_time=T0 + i * step, attributes=attrs)
        for i, (kind, attrs) in enumerate(specs, start=1)
    )
    return History(workflow_id="synthetic", events=events)


def started(wtype: str = "Synthetic", *inputs: Any) -> tuple[str, dict[str, Any]]:
    return "WorkflowExecutionStarted", {
        "workflowType": {"name": wtype},
        "taskQueue": {"name": "q"},
        "input": {"payloads": [encode_payload(v) for v in inputs]},
    }


def workflow_task(specs: list[tuple[str, dict[str, Any]]]) -> int:
    """Append scheduled/started/completed; return the completed event's id."""
    specs += [("WorkflowTaskScheduled", {}), ("WorkflowTaskStarted", {}), ("WorkflowTaskCompleted", {})]
    return len(specs)


def activity_loop(count: int, *, parallel: bool, types: Sequence[str] = ("echo",)) -> History:
    specs = [started()]
    completed = workflow_task(specs)
    for i in range(count):
        if not parallel and i:
            completed = workflow_task(specs)
        specs.append(("ActivityTaskScheduled", {
            "activityId": str(i + 1), "activityType": {"name": types[i % len(types)]},
            "input": {"payloads": [encode_payload("x")]}, "workflowTaskCompletedEventId": str(completed),
        }))
        scheduled = len(specs)
        specs.append(("ActivityTaskStarted", {"scheduledEventId": str(scheduled), "attempt": 1}))
        specs.append(("ActivityTaskCompleted", {"scheduledEventId": str(scheduled), "result": {"payloads": [encode_payload("x")]}}))
    completed = workflow_task(specs)
    specs.append(("WorkflowExecutionCompleted", {"result": {"payloads": [encode_payload(count)]},
                                                  "workflowTaskCompletedEventId": str(completed)}))
    return synthetic(specs, step=timedelta(milliseconds=10))


# --- the money transfer ----------------------------------------------------------------


async def test_money_transfer_shows_withdraw_then_retried_deposit_then_result() -> None:
    history, attempts = await run_workflow(
        MoneyTransfer.run, Transfer("alice", "bob", 100), workflows=[MoneyTransfer], activities=[withdraw, deposit]
    )
    dot = run_graph(history, attempts)

    start, withdraw_node = node_titled(dot, "Workflow started"), node_titled(dot, "withdraw")
    deposit_node, done = node_titled(dot, "deposit"), node_titled(dot, "Completed")
    assert "MoneyTransfer(" in start["label"] and "alice" in start["label"]
    assert withdraw_node["fill"] == STATUS_COLOURS["ok"][0]
    assert "events 5-7" in withdraw_node["label"] and "activity 1" in withdraw_node["label"]
    assert "3 attempts" in deposit_node["label"] and "events 11-13" in deposit_node["label"]
    assert deposit_node["fill"] == STATUS_COLOURS["retried"][0]
    assert "attempt 1 failed: bank bob unavailable (attempt 1)" in deposit_node["tooltip"]
    assert "attempt 2 failed: bank bob unavailable (attempt 2)" in deposit_node["tooltip"]
    assert "deposited 100 into bob" in deposit_node["tooltip"]
    assert done["fill"] == STATUS_COLOURS["ok"][0] and f"event {len(history)}" in done["label"]
    names = {n["label"].split("\\n")[0]: name for name, n in nodes(dot).items()}
    chain = ["Workflow started", "withdraw", "deposit", "Completed"]
    assert edges(dot) == [(names[a], names[b]) for a, b in zip(chain, chain[1:])]

    rows = history_timeline_rows(history, attempts)
    assert [(r["kind"], r["status"], r["attempts"]) for r in rows] == [
        ("start", "info", 0), ("activity", "ok", 1), ("activity", "retried", 3), ("result", "ok", 0)
    ]
    assert rows[2]["event_ids"] == [11, 12, 13]


async def test_without_the_attempts_table_the_history_still_tells_the_retries() -> None:
    history, _ = await run_workflow(
        MoneyTransfer.run, Transfer("alice", "bob", 100), workflows=[MoneyTransfer], activities=[withdraw, deposit]
    )
    deposit_node = node_titled(run_graph(history), "deposit")
    assert "3 attempts" in deposit_node["label"] and deposit_node["fill"] == STATUS_COLOURS["retried"][0]
    # Only the last failure is in the history (ActivityTaskStarted.lastFailure).
    assert "attempt 2 failed: bank bob unavailable (attempt 2)" in deposit_node["tooltip"]
    assert "attempt 1 failed" not in deposit_node["tooltip"]


async def test_parallel_activities_fan_out_from_the_start_and_join_at_the_result() -> None:
    history, attempts = await run_workflow(Parallel.run, ["a", "b", "c"], workflows=[Parallel], activities=[echo])
    dot = run_graph(history, attempts)
    found = nodes(dot)
    start = next(n for n, v in found.items() if v["label"].startswith("Workflow started"))
    done = next(n for n, v in found.items() if v["label"].startswith("Completed"))
    echoes = {n for n, v in found.items() if v["label"].startswith("echo")}
    assert len(echoes) == 3
    assert sorted(edges(dot)) == sorted([(start, e) for e in echoes] + [(e, done) for e in echoes])
    rows = history_timeline_rows(history, attempts)
    assert len({r["batch"] for r in rows if r["kind"] == "activity"}) == 1


async def test_a_failing_workflow_ends_in_a_red_node_with_the_cause() -> None:
    history, attempts = await run_workflow(Refusing.run, workflows=[Refusing], activities=[refuse])
    dot = run_graph(history, attempts)
    failed = node_titled(dot, "Failed")
    assert failed["fill"] == STATUS_COLOURS["failed"][0] and "refused: no" in failed["label"]
    assert node_titled(dot, "refuse")["fill"] == STATUS_COLOURS["failed"][0]


async def test_timers_show_their_duration() -> None:
    history, attempts = await run_workflow(Sleeper.run, 1, workflows=[Sleeper])
    dot = run_graph(history, attempts)
    day = node_titled(dot, "sleep 1d")
    assert "timer 1 · fired" in day["label"] and day["fill"] == STATUS_COLOURS["ok"][0]
    assert "fired after 1d" in day["tooltip"]
    assert "timer 2" in node_titled(dot, "sleep 1m")["label"]


async def test_an_activity_called_in_a_loop_collapses_into_one_node() -> None:
    history, attempts = await run_workflow(EchoLoop.run, 12, workflows=[EchoLoop], activities=[echo])
    dot = run_graph(history, attempts)
    loop = node_titled(dot, "echo x12")
    assert re.search(r"events 5-\d+", loop["label"])
    assert len(nodes(dot)) == 3
    assert len(collapse_rows(history_timeline_rows(history, attempts))) == 3
    assert len(history_timeline_rows(history, attempts)) == 14


async def test_a_nondeterminism_failure_shows_the_first_line_of_its_message() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="orders", workflows=[GraphOrderV1], activities=[echo]):
        handle = await env.client.start_workflow("GraphOrder", id="graph-order", task_queue="orders")
        for _ in range(500):
            if any(e.event_type == "TimerStarted" for e in (await handle.fetch_history()).events):
                break
            await asyncio.sleep(0.01)
    async with Worker(env.client, task_queue="orders", workflows=[GraphOrderV2], activities=[echo]):
        await env.sleep(timedelta(hours=1))
        for _ in range(500):
            history = await handle.fetch_history()
            if any(e.event_type == "WorkflowTaskFailed" for e in history.events):
                break
            await asyncio.sleep(0.01)
    await env.shutdown()

    failure = next(e for e in history.events if e.event_type == "WorkflowTaskFailed")
    node = node_titled(run_graph(history), "Workflow task failed (non-determinism)")
    assert node["fill"] == STATUS_COLOURS["failed"][0]
    first_line = failure.attributes["failure"]["message"].splitlines()[0]
    assert _dot.quote(first_line[:30])[1:-1] in node["label"]
    assert f"event {failure.event_id}" in node["label"]
    assert node_titled(run_graph(history), "Running")["fill"] == STATUS_COLOURS["running"][0]


# --- odd, large and hostile histories ---------------------------------------------


def test_every_kind_of_step_gets_its_status() -> None:
    specs = [started("Kitchen", 1), ("WorkflowExecutionSignaled", {"signalName": "go", "input": {"payloads": [encode_payload(2)]}})]
    c = workflow_task(specs)
    specs += [
        ("ActivityTaskScheduled", {"activityId": "1", "activityType": {"name": "slow"}, "workflowTaskCompletedEventId": str(c)}),
        ("TimerStarted", {"timerId": "t", "startToFireTimeout": "3600s", "workflowTaskCompletedEventId": str(c)}),
        ("MarkerRecorded", {"markerName": "SideEffect", "details": {"data": {"payloads": [encode_payload(7)]}}}),
        ("StartChildWorkflowExecutionInitiated", {"workflowId": "kid", "workflowType": {"name": "Kid"}}),
    ]
    specs += [
        ("ChildWorkflowExecutionFailed", {"initiatedEventId": str(c + 4), "failure": {"message": "kid broke"}}),
        ("WorkflowExecutionCancelRequested", {"identity": "me"}),
        ("ActivityTaskCancelRequested", {"scheduledEventId": str(c + 1)}),
        ("TimerCanceled", {"timerId": "t", "startedEventId": str(c + 2)}),
        ("ActivityTaskCanceled", {"scheduledEventId": str(c + 1)}),
        ("WorkflowTaskFailed", {"cause": "WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE",
                                "failure": {"message": "KeyError: 'x'\nTraceback ...", "stackTrace": "line 1\nline 2"}}),
        ("SomethingFromTheFuture", {"whatever": [1, 2]}),
        ("WorkflowExecutionCanceled", {}),
    ]
    rows = history_timeline_rows(synthetic(specs))
    got = {r["title"]: (r["kind"], r["status"]) for r in rows}
    assert got == {
        "Workflow started": ("start", "info"),
        "signal go": ("signal", "info"),
        "slow": ("activity", "cancelled"),
        "sleep 1h": ("timer", "cancelled"),
        "marker SideEffect": ("marker", "info"),
        "child Kid": ("child", "failed"),
        "Cancel requested": ("cancel_request", "info"),
        "Workflow task failed": ("workflow_task_failed", "failed"),
        "SomethingFromTheFuture": ("event", "info"),
        "Cancelled": ("result", "cancelled"),
    }
    failed = next(r for r in rows if r["kind"] == "workflow_task_failed")
    assert failed["detail"] == "KeyError: 'x'"
    dot = run_graph(synthetic(specs))
    assert node_titled(dot, "Cancelled")["fill"] == STATUS_COLOURS["cancelled"][0]
    assert len({r["batch"] for r in rows if r["kind"] in ("activity", "timer", "marker", "child")}) == 1


def test_a_thousand_sequential_activities_collapse_into_one_node() -> None:
    history = activity_loop(1000, parallel=False)
    dot = run_graph(history)
    loop = node_titled(dot, "echo x1000")
    assert f"events 5-{len(history) - 4}" in loop["label"]
    assert len(nodes(dot)) == 3


def test_a_thousand_parallel_activities_collapse_into_one_node() -> None:
    dot = run_graph(activity_loop(1000, parallel=True))
    assert "in parallel" in node_titled(dot, "echo x1000")["label"]
    assert len(nodes(dot)) == 3


def test_many_different_steps_are_capped_and_the_result_is_still_drawn() -> None:
    history = activity_loop(400, parallel=False, types=[f"step{i}" for i in range(400)])
    dot = run_graph(history, max_nodes=50)
    found = nodes(dot)
    assert len(found) == 50
    more = node_titled(dot, "... 353 more steps")
    assert more["fill"] == STATUS_COLOURS["info"][0]
    assert "Completed" in [n["label"].split("\\n")[0] for n in found.values()]


def test_short_runs_of_identical_steps_are_kept() -> None:
    assert len(nodes(run_graph(activity_loop(5, parallel=False)))) == 7
    assert len(nodes(run_graph(activity_loop(6, parallel=False)))) == 3


def test_hostile_text_is_escaped_in_dot() -> None:
    nasty = 'say "hi"\nthen <script>alert(1)</script> & a back\\slash\\'
    specs = [started("Nasty", nasty)]
    c = workflow_task(specs)
    specs.append(("ActivityTaskScheduled", {"activityId": '"1"', "activityType": {"name": nasty},
                                            "input": {"payloads": [encode_payload(nasty)]},
                                            "workflowTaskCompletedEventId": str(c)}))
    specs.append(("ActivityTaskFailed", {"scheduledEventId": "5", "failure": {"message": nasty}}))
    dot = run_graph(synthetic(specs))
    for line in dot.splitlines()[4:-1]:
        assert NODE.match(line) or re.match(r"^  \w+ -> \w+( \[arrowhead=none\])?;$", line), line
    assert [n["label"].split("\\n")[0] for n in nodes(dot).values()][-1] == "Running"
    assert len(nodes(dot)) == 3


@needs_dot
def test_dot_accepts_hostile_text_and_svg_escapes_it() -> None:
    nasty = 'say "hi"\nthen <script>alert(1)</script> & a back\\slash\\'
    history = synthetic([started("Nasty", nasty), ("WorkflowExecutionSignaled", {"signalName": nasty})])
    svg = render_svg(run_graph(history))
    assert svg is not None and "<svg" in svg
    assert "<script" not in svg and "&lt;script&gt;" in svg


def test_empty_history_draws_a_single_node() -> None:
    empty = History(workflow_id="nothing", events=())
    assert history_timeline_rows(empty) == []
    assert [n["label"].split("\\n")[0] for n in nodes(run_graph(empty)).values()] == ["empty history"]


def test_graphviz_colours_are_six_digit_hex() -> None:
    dot = run_graph(activity_loop(3, parallel=True))
    assert not re.search(r'color="#[0-9a-fA-F]{3}"', dot)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for pair in STATUS_COLOURS.values() for c in pair)


# --- Temporal's own histories ---------------------------------------------------------


@pytest.mark.skipif(not SHARED_FILES, reason="no shared histories (../shared/histories)")
@pytest.mark.parametrize("path", SHARED_FILES, ids=[p.stem for p in SHARED_FILES])
def test_shared_histories_render(path: Path) -> None:
    history = load_history(path)
    rows = history_timeline_rows(history)
    assert rows[0]["kind"] == "start" and rows[-1]["kind"] == "result"
    covered = {i for r in rows for i in r["event_ids"]}
    assert covered <= {e.event_id for e in history.events}
    dot = run_graph(history)
    assert len(nodes(dot)) >= 2
    if shutil.which("dot"):
        svg = render_svg(dot)
        assert svg is not None and "</svg>" in svg


@pytest.mark.skipif(not (SHARED / "ts__signal_workflow_1_13_1.json").exists(), reason="no shared histories")
def test_child_workflow_timer_and_external_signal_from_typescript() -> None:
    rows = history_timeline_rows(load_history(SHARED / "ts__signal_workflow_1_13_1.json"))
    kinds = {r["kind"]: r for r in rows}
    assert kinds["child"]["status"] == "ok" and "Hello Temporal" in kinds["child"]["detail"]
    assert kinds["signal_external"]["status"] == "ok" and kinds["timer"]["batch"] == kinds["signal_external"]["batch"]


# --- render_svg -------------------------------------------------------------------------


def test_render_svg_without_dot_returns_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graphs.shutil, "which", lambda name: None)
    assert render_svg("digraph { a }") is None


@needs_dot
def test_render_svg_caches_and_reports_errors() -> None:
    dot = run_graph(activity_loop(2, parallel=True))
    assert render_svg(dot) is render_svg(dot)
    with pytest.raises(RuntimeError, match="could not render"):
        render_svg("digraph { a -> }")


@needs_dot
def test_render_svg_timeout_says_to_use_the_table() -> None:
    dot = run_graph(activity_loop(300, parallel=False, types=[f"t{i}" for i in range(300)]))
    with pytest.raises(RuntimeError, match="too large.*table view"):
        render_svg(dot, timeout=0.001)


async def test_injected_faults_are_drawn_apart_from_organic_failures() -> None:
    from engine import Worker, faults
    from engine.testing import WorkflowEnvironment
    from kernel_ext._dot import INJECTED_COLOUR

    from tests.engine.workflows import RUNS, MoneyTransfer, Transfer, deposit, withdraw

    RUNS.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    await faults.fail_activity(env.client, withdraw, times=1)
    async with Worker(env.client, task_queue="q", workflows=[MoneyTransfer], activities=[withdraw, deposit]):
        handle = await env.client.start_workflow(MoneyTransfer.run, Transfer("a", "b", 5), id="inj", task_queue="q")
        await handle.result()
        history, attempts = await handle.fetch_history(), await handle.activity_attempts()
    await env.shutdown()
    rows = {r["title"]: r for r in history_timeline_rows(history, attempts)}
    # withdraw failed once on purpose; deposit failed twice by itself (its bank was down).
    assert rows["withdraw"]["injected"] == 1 and "⚡ 1 injected fault" in rows["withdraw"]["detail"]
    assert "(injected fault)" in rows["withdraw"]["tooltip"]
    assert rows["deposit"]["injected"] == 0 and "injected" not in rows["deposit"]["tooltip"]
    dot = run_graph(history, attempts)
    withdraw_line = next(line for line in dot.splitlines() if 'label="withdraw' in line)
    deposit_line = next(line for line in dot.splitlines() if 'label="deposit' in line)
    assert INJECTED_COLOUR in withdraw_line and "dotted" in withdraw_line
    assert INJECTED_COLOUR not in deposit_line and "dotted" not in deposit_line


async def test_hangs_and_worker_crashes_from_the_fault_log_mark_their_steps() -> None:
    from engine import Worker, faults
    from engine.testing import WorkflowEnvironment
    from kernel_ext._dot import INJECTED_COLOUR

    from tests.engine.workflows import RUNS, MoneyTransfer, Transfer, deposit, withdraw

    RUNS.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    await faults.hang_activity(env.client, withdraw)
    await faults.crash_worker(env.client, after="ActivityTaskCompleted", activity="deposit")
    worker = Worker(env.client, task_queue="q", workflows=[MoneyTransfer], activities=[withdraw, deposit])
    async with worker:
        handle = await env.client.start_workflow(MoneyTransfer.run, Transfer("a", "b", 5), id="log", task_queue="q")
        waiting = asyncio.ensure_future(handle.result())  # someone waits: virtual time moves
        for _ in range(1000):
            if worker.crashed:
                break
            await asyncio.sleep(0.01)
    assert worker.crashed
    async with Worker(env.client, task_queue="q", workflows=[MoneyTransfer], activities=[withdraw, deposit]):
        await asyncio.wait_for(waiting, 30)
    history, attempts = await handle.fetch_history(), await handle.activity_attempts()
    fired = await faults.fault_log(env.client, run_id=handle.run_id)
    await env.shutdown()
    assert [f.kind for f in fired] == ["hang", "crash_worker"]
    rows = {r["title"]: r for r in history_timeline_rows(history, attempts, fired)}
    assert rows["withdraw"]["injected"] == 1 and "⚡ injected fault: hang attempt 1 of withdraw" in rows["withdraw"]["tooltip"]
    assert rows["deposit"]["injected"] == 1 and "worker crashed here (injected)" in rows["deposit"]["detail"]
    assert "crashed after commit of ActivityTaskStarted(deposit) + ActivityTaskCompleted(deposit)" in rows["deposit"]["tooltip"]
    dot = run_graph(history, attempts, faults=fired)
    assert sum(INJECTED_COLOUR in line for line in dot.splitlines()) == 2
    # Without the log the same history shows only what the engine saw: a timeout, retries.
    plain = {r["title"]: r for r in history_timeline_rows(history, attempts)}
    assert plain["withdraw"]["injected"] == 0 and plain["deposit"]["injected"] == 0


_PROJECT_HISTORIES = sorted(
    p for p in (Path(__file__).resolve().parents[1] / "histories").glob("*.json") if p.name != "recorded_with.json"
)


@pytest.mark.parametrize("path", _PROJECT_HISTORIES + SHARED_FILES, ids=lambda p: p.stem)
def test_histories_without_times_render(path: Path) -> None:
    timed = load_history(path)
    history = History.from_json(path.stem, _without_times(json.loads(path.read_text(encoding="utf-8"))))
    assert all(e.event_time is None for e in history)
    rows = history_timeline_rows(history)
    assert [r["kind"] for r in rows] == [r["kind"] for r in history_timeline_rows(timed)]
    assert rows[0]["kind"] == "start"
    assert len(nodes(run_graph(history))) == len(nodes(run_graph(timed)))


def _without_times(document: dict[str, Any]) -> dict[str, Any]:
    for event in document["history"]["events"] if "history" in document else document["events"]:
        event.pop("eventTime", None)
    return document
