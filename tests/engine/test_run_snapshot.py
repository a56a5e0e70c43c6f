"""A run read in one go (``handle.snapshot()``): history, every attempt, chain, children."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine import Worker, activity, workflow
from engine.client import WorkflowExecutionStatus
from engine.codecs import EncryptionCodec
from engine.common import RetryPolicy
from engine.converter import DataConverter
from engine.errors import ApplicationError, WorkflowNotFoundError
from engine.run_snapshot import RunSnapshot, read_snapshot
from engine.testing import WorkflowEnvironment

TRIES: dict[str, int] = {}


@activity.defn
async def flaky(name: str) -> str:
    TRIES[name] = TRIES.get(name, 0) + 1
    if TRIES[name] < 3:
        raise ApplicationError(f"try {TRIES[name]} of {name} failed")
    return f"ok {name}"


@workflow.defn
class Leaf:
    @workflow.run
    async def run(self, n: int) -> int:
        return n * 2


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, rounds: int) -> str:
        policy = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=5)
        value = await workflow.execute_activity(
            flaky, f"round {rounds}", start_to_close_timeout=timedelta(seconds=5), retry_policy=policy
        )
        doubled = await workflow.execute_child_workflow(Leaf.run, rounds, id=f"leaf-{rounds}")
        if rounds > 1:
            workflow.continue_as_new(rounds - 1)
        return f"{value} {doubled}"


async def _run(env: WorkflowEnvironment) -> RunSnapshot:
    TRIES.clear()
    async with Worker(env.client, task_queue="q", workflows=[Parent, Leaf], activities=[flaky]):
        handle = await env.client.start_workflow(Parent.run, 2, id="parent", task_queue="q")
        assert await handle.result() == "ok round 1 2"
    return await env.client.get_workflow_handle("parent").snapshot()


async def test_a_snapshot_holds_every_attempt_the_chain_and_the_children() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        last = await _run(env)
        assert last.status == WorkflowExecutionStatus.COMPLETED and last.closed
        assert last.result == "ok round 1 2" and last.failure is None
        assert [run.status for run in last.chain] == [WorkflowExecutionStatus.CONTINUED_AS_NEW, WorkflowExecutionStatus.COMPLETED]
        assert last.chain_index == 1 and last.chain[1].run_id == last.run_id
        # Three attempts of the one activity, two failed, each with its failure and times.
        scheduled = next(e.event_id for e in last.history.events if e.event_type == "ActivityTaskScheduled")
        tries = last.attempts_of(scheduled)
        assert [(a.attempt, a.outcome) for a in tries] == [(1, "failed"), (2, "failed"), (3, "completed")]
        assert tries[0].failure and tries[0].failure["message"] == "try 1 of round 1 failed"
        assert all(a.started_at is not None and a.started_at <= a.ended_at for a in tries)
        assert tries[0].ended_at < tries[1].started_at  # the backoff gap
        (child,) = last.children
        assert (child.workflow_id, child.workflow_type, child.status) == ("leaf-1", "Leaf", WorkflowExecutionStatus.COMPLETED)
        assert child.run_id and last.child_histories["leaf-1"].events[-1].event_type == "WorkflowExecutionCompleted"
        first = await read_snapshot(env.client, "parent", last.chain[0].run_id)
        assert first.status == WorkflowExecutionStatus.CONTINUED_AS_NEW and first.chain == last.chain
        assert first.chain_index == 0 and first.children[0].workflow_id == "leaf-2"
    finally:
        await env.shutdown()


async def test_a_snapshot_is_decoded_with_the_clients_codec() -> None:
    pytest.importorskip("cryptography")
    converter = DataConverter(payload_codec=EncryptionCodec(b"k" * 32))
    env = await WorkflowEnvironment.start_time_skipping(data_converter=converter)
    try:
        snapshot = await _run(env)
        started = snapshot.history.events[0].attributes["input"]["payloads"][0]
        assert started["metadata"]["encoding"] != "binary/encrypted"
        failed = [a for a in snapshot.attempts if a.failure]
        assert failed and "failed" in failed[0].failure["message"]
    finally:
        await env.shutdown()


async def test_an_unknown_run_says_so() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    try:
        with pytest.raises(WorkflowNotFoundError, match="No workflow with id 'nope'"):
            await read_snapshot(env.client, "nope")
        with pytest.raises(WorkflowNotFoundError, match="has no run 'r1'"):
            await read_snapshot(env.client, "nope", "r1")
    finally:
        await env.shutdown()


def test_everything_is_read_in_one_read_transaction(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    from engine._frontend.snapshot_reads import read_run

    async def record() -> None:
        env = await WorkflowEnvironment.start_time_skipping(path=str(tmp_path / "runs.db"))
        try:
            await _run(env)
        finally:
            await env.shutdown()

    asyncio.run(record())
    conn = sqlite3.connect(tmp_path / "runs.db", isolation_level=None)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    raw = read_run(conn, "parent", None)
    assert statements[0] == "BEGIN" and statements[-1] == "COMMIT" and len(statements) > 5
    assert all(s.lstrip().upper().startswith("SELECT") for s in statements[1:-1])
    assert not conn.in_transaction and raw.children and raw.attempts
