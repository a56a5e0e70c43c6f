"""Signals are recorded and never lost; queries read state by replay without writing history."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from engine import Worker, workflow
from engine._history.commands import complete_workflow_task
from engine._history.signals import signal_workflow
from engine._history.starts import StartRequest, start_workflow
from engine._history.workflow_tasks import claim_workflow_tasks, read_events
from engine._persistence.store import Store
from engine.client import Client
from engine.errors import WorkflowNotFoundError, WorkflowQueryFailedError
from engine.testing import WorkflowEnvironment

from tests.engine.workflows import echo


@workflow.defn
class Approval:
    def __init__(self) -> None:
        self.decisions: list[str] = []

    @workflow.run
    async def run(self, needed: int) -> list[str]:
        try:
            await workflow.wait_condition(lambda: len(self.decisions) >= needed, timeout=timedelta(days=7))
        except asyncio.TimeoutError:
            return self.decisions + ["expired"]
        await workflow.execute_activity(echo, "recorded", start_to_close_timeout=timedelta(seconds=5))
        return self.decisions

    @workflow.signal
    def decide(self, decision: str) -> None:
        self.decisions.append(decision)

    @workflow.signal(name="decide_later")
    async def decide_async(self, decision: str) -> None:
        await workflow.sleep(1)
        self.decisions.append(decision)

    @workflow.query
    def status(self) -> str:
        return f"{len(self.decisions)} decision(s)"

    @workflow.query
    def decision(self, index: int) -> str:
        return self.decisions[index]  # an IndexError past the end: a handler that raises


async def test_a_signal_sent_while_no_worker_runs_is_delivered_when_one_starts() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    handle = await env.client.start_workflow(Approval.run, 2, id="a1", task_queue="q")
    await handle.signal(Approval.decide, "approve")
    await handle.signal("decide_later", "approve too")
    async with Worker(env.client, task_queue="q", workflows=[Approval], activities=[echo]):
        assert await handle.result() == ["approve", "approve too"]
        assert await handle.query(Approval.status) == "2 decision(s)"  # a closed run answers too
    history = await handle.fetch_history()
    await env.shutdown()
    signaled = [e for e in history.events if e.event_type == "WorkflowExecutionSignaled"]
    assert [e.attributes["signalName"] for e in signaled] == ["decide", "decide_later"]


async def test_queries_replay_an_evicted_run_and_write_nothing() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Approval], activities=[echo], max_cached_workflows=0):
        handle = await env.client.start_workflow(Approval.run, 3, id="a2", task_queue="q")
        await handle.signal(Approval.decide, "yes")
        for _ in range(300):
            # Settled: the signal's workflow task completed and nothing else is pending.
            last = (await handle.fetch_history()).events[-1].event_type
            if last == "WorkflowTaskCompleted" and await handle.query("status") == "1 decision(s)":
                break
            await asyncio.sleep(0.01)
        before = len((await handle.fetch_history()).events)
        assert await handle.query(Approval.status) == "1 decision(s)"
        assert len((await handle.fetch_history()).events) == before
        # temporalio's words first (the unknown name, the known ones), then what to do.
        with pytest.raises(WorkflowQueryFailedError, match=r"^Query handler for 'nope' expected but not found, known queries: \[decision status\]\. Workflow Approval has no query 'nope'.*add a @workflow.query method named 'nope'") as unknown:
            await handle.query("nope")
        assert unknown.value.cause is None and unknown.value.message == str(unknown.value)
        with pytest.raises(WorkflowQueryFailedError, match=r"^Query 'decision' raised IndexError: list index out of range$") as raised:
            await handle.query(Approval.decision, 5)
        assert isinstance(raised.value.cause, IndexError)
        assert await handle.query(Approval.decision, 0) == "yes"
        await env.sleep(timedelta(days=8))
        assert await handle.result() == ["yes", "expired"]
        with pytest.raises(WorkflowNotFoundError, match="already closed"):
            await handle.signal(Approval.decide, "too late")
    await env.shutdown()


async def test_query_without_any_worker_says_what_to_do() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    handle = await env.client.start_workflow(Approval.run, 1, id="a3", task_queue="q")
    with pytest.raises(WorkflowQueryFailedError, match="No worker answered query 'status' within 0.3 s.*workflow type 'Approval' on task queue 'q'"):
        await handle.query(Approval.status, rpc_timeout=timedelta(seconds=0.3))
    await env.shutdown()


async def test_a_query_is_answered_by_a_worker_of_another_client(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Two clients on one database file stand for two processes: only the second has the code.
    db = tmp_path / "engine.db"
    asking = await Client.connect(str(db))
    serving = await Client.connect(str(db))
    async with Worker(serving, task_queue="q", workflows=[Approval], activities=[echo]):
        handle = await asking.start_workflow(Approval.run, 2, id="a4", task_queue="q")
        await handle.signal(Approval.decide, "yes")
        for _ in range(200):
            if await handle.query(Approval.status) == "1 decision(s)":
                break
            await asyncio.sleep(0.02)
        assert await handle.query("status") == "1 decision(s)"
        # Answered in the other process: the same errors, with the same words, as in this one.
        with pytest.raises(WorkflowQueryFailedError, match=r"^Query handler for 'nope' expected but not found, known queries: \[decision status\]\. Workflow Approval has no query 'nope'"):
            await handle.query("nope")
        with pytest.raises(WorkflowQueryFailedError, match=r"^Query 'decision' raised IndexError: list index out of range$"):
            await handle.query(Approval.decision, 5)
        with pytest.raises(WorkflowNotFoundError):
            await asking.get_workflow_handle("no-such-id").query(Approval.status)
        history = await handle.fetch_history()
        assert "Query" not in " ".join(e.event_type for e in history.events)
    await asking.close()
    await serving.close()


async def test_completion_is_refused_while_a_signal_waits_in_the_buffer() -> None:
    store = await Store.open(":memory:")
    now = datetime.now(timezone.utc)
    request = StartRequest(workflow_id="w", workflow_type="Approval", task_queue="q", input={"payloads": []}, identity="t")
    run_id = await store.run(start_workflow, request, now)
    [task] = await store.run(claim_workflow_tasks, "q", "worker#1", now, 1, lambda run_id: 0)
    await store.run(signal_workflow, run_id, "decide", {"payloads": []}, "t", now)
    complete = [("CompleteWorkflowExecution", {"result": {"payloads": []}})]
    await store.run(complete_workflow_task, task.task_id, "worker#1", run_id, task.started_event_id, complete, now, True)
    events = await store.read(read_events, run_id, 0)
    await store.close()
    types = [e.event_type for e in events]
    assert types == [
        "WorkflowExecutionStarted",
        "WorkflowTaskScheduled",
        "WorkflowTaskStarted",
        "WorkflowTaskFailed",
        "WorkflowExecutionSignaled",
        "WorkflowTaskScheduled",
    ]
    assert events[3].attributes["cause"] == "WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND"


def test_a_query_answers_from_completed_workflow_tasks_only() -> None:
    # The last workflow task (the one that delivers the signal) is still running on a worker:
    # a query replays what the run has shown so far, without running that task itself.
    from engine._conversion.payload_converter import from_json_payload, to_json_payloads
    from engine.converter import DataConverter

    converter = DataConverter.default.payload_converter

    def to_payloads(values: list) -> dict:
        return to_json_payloads(converter, values, "input")
    from engine.history import History, HistoryEvent
    from engine.replay import Replayer

    at = datetime(2024, 1, 1, tzinfo=timezone.utc)
    kinds: list[tuple[str, dict]] = [
        ("WorkflowExecutionStarted", {"workflowType": {"name": "Approval"}, "taskQueue": {"name": "q"}, "input": to_payloads([1])}),
        ("WorkflowTaskScheduled", {}),
        ("WorkflowTaskStarted", {}),
        ("WorkflowTaskCompleted", {}),
        ("TimerStarted", {"timerId": "1"}),
        ("WorkflowExecutionSignaled", {"signalName": "decide", "input": to_payloads(["yes"])}),
        ("WorkflowTaskScheduled", {}),
        ("WorkflowTaskStarted", {}),
    ]
    events = [HistoryEvent(i, kind, at, attrs) for i, (kind, attrs) in enumerate(kinds, start=1)]
    for completed, expected in ((False, "0 decision(s)"), (True, "1 decision(s)")):
        history = events + [HistoryEvent(9, "WorkflowTaskCompleted", at, {})] if completed else events
        instance = Replayer(workflows=[Approval]).instance_for(History("a4", tuple(history)))
        instance.apply(history, live_tail=False, check_end=False)  # as Worker.query does
        assert from_json_payload(converter, instance.query("status", [])) == expected
        instance.evict()


@dataclass
class Vote:
    voter: str
    approve: bool


@workflow.defn
class Ballot:
    def __init__(self) -> None:
        self.votes: list[Vote] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: len(self.votes) >= 1)
        return [f"{v.voter}:{v.approve}" for v in self.votes]

    @workflow.signal
    def vote(self, vote: Vote) -> None:
        self.votes.append(vote)


async def test_a_signal_whose_input_does_not_convert_is_dropped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    # As temporalio: the run goes on without that signal. Failing the workflow task instead
    # would fail it again on every retry, since the signal stays in the history.
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Ballot]):
        handle = await env.client.start_workflow(Ballot.run, id="ballot", task_queue="q")
        with caplog.at_level(logging.WARNING, logger="engine.workflow"):
            await handle.signal("vote", "not a vote")
            await handle.signal(Ballot.vote, Vote("ada", True))
            assert await asyncio.wait_for(handle.result(), 10) == ["ada:True"]
    types = [e.event_type for e in (await handle.fetch_history()).events]
    await env.shutdown()
    assert types.count("WorkflowExecutionSignaled") == 2 and "WorkflowTaskFailed" not in types
    dropped = [r.getMessage() for r in caplog.records if "Dropped signal" in r.getMessage()]
    assert len(dropped) == 1 and "'vote'" in dropped[0] and "Ballot" in dropped[0]
