"""Bad input gets an error that names the problem and the fix."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from engine import Client, Worker, activity, workflow
from engine.common import RetryPolicy
from engine.errors import (
    ActivityError,
    DefinitionError,
    PayloadError,
    StoreCorruptError,
    StoreError,
    WorkflowAlreadyStartedError,
    WorkflowFailureError,
    WorkflowNotFoundError,
)
from engine.testing import WorkflowEnvironment

from tests.engine.workflows import Parallel, echo


async def test_non_serializable_workflow_argument() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    with pytest.raises(PayloadError, match=r"argument 1 of workflow 'Parallel'.*object.*not serializable.*dataclasses"):
        await env.client.start_workflow(Parallel.run, object(), id="x", task_queue="q")
    await env.shutdown()


@activity.defn
async def returns_a_socket() -> object:
    return object()


@workflow.defn
class NonSerializableResult:
    @workflow.run
    async def run(self) -> object:
        return await workflow.execute_activity(returns_a_socket, start_to_close_timeout=timedelta(seconds=5))


async def test_non_serializable_activity_result_fails_without_retrying() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[NonSerializableResult], activities=[returns_a_socket]):
        with pytest.raises(WorkflowFailureError) as info:
            await env.client.execute_workflow(NonSerializableResult.run, id="x", task_queue="q")
    await env.shutdown()
    assert isinstance(info.value.cause, ActivityError)
    assert "Cannot serialize the result of activity 'returns_a_socket'" in str(info.value.cause.__cause__)


async def test_unknown_workflow_type_fails_the_task_with_the_known_types() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[Parallel], activities=[echo]):
        handle = await env.client.start_workflow("Paralel", id="typo", task_queue="q")
        for _ in range(300):
            events = (await handle.fetch_history()).events
            failed = [e for e in events if e.event_type == "WorkflowTaskFailed"]
            if failed:
                break
            await asyncio.sleep(0.01)
    await env.shutdown()
    message = failed[0].attributes["failure"]["message"]
    assert "'Paralel' is not registered" in message and "it has: Parallel" in message


@workflow.defn
class CallsUnknownActivity:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(
            "no_such_activity", start_to_close_timeout=timedelta(seconds=5), retry_policy=RetryPolicy(maximum_attempts=1)
        )


async def test_unknown_activity_type() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[CallsUnknownActivity], activities=[echo]):
        with pytest.raises(WorkflowFailureError) as info:
            await env.client.execute_workflow(CallsUnknownActivity.run, id="x", task_queue="q")
    await env.shutdown()
    cause = info.value.cause.__cause__
    assert "'no_such_activity' is not registered" in str(cause) and "it has: echo" in str(cause)


@workflow.defn
class NoTimeout:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(echo, "x")


async def test_activity_without_timeout_fails_the_task_with_a_fix() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[NoTimeout], activities=[echo]):
        handle = await env.client.start_workflow(NoTimeout.run, id="x", task_queue="q")
        for _ in range(300):
            failed = [e for e in (await handle.fetch_history()).events if e.event_type == "WorkflowTaskFailed"]
            if failed:
                break
            await asyncio.sleep(0.01)
    await env.shutdown()
    assert "start_to_close_timeout=timedelta(seconds=10)" in failed[0].attributes["failure"]["message"]


async def test_duplicate_open_workflow_id_and_unknown_id() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    await env.client.start_workflow(Parallel.run, ["a"], id="dup", task_queue="q")
    with pytest.raises(WorkflowAlreadyStartedError, match="'dup'"):
        await env.client.start_workflow(Parallel.run, ["a"], id="dup", task_queue="q")
    with pytest.raises(WorkflowNotFoundError, match="'nope'.*case-sensitive"):
        await env.client.get_workflow_handle("nope").describe()
    await env.shutdown()


def test_definitions_are_checked_with_every_problem_listed() -> None:
    with pytest.raises(DefinitionError) as info:

        @workflow.defn
        class Broken:  # noqa: F841 - defined to be rejected
            def __init__(self, needed: int) -> None:
                pass

    assert "no method decorated with @workflow.run" in str(info.value)
    assert "constructible without arguments" in str(info.value)

    class NotAWorkflow:
        pass

    async def not_an_activity() -> None:
        pass

    with pytest.raises(DefinitionError) as info2:
        Worker(object(), task_queue="q", workflows=[NotAWorkflow], activities=[not_an_activity])  # type: ignore[arg-type]
    assert "@workflow.defn" in str(info2.value) and "@activity.defn" in str(info2.value)


def test_retry_policy_validation() -> None:
    with pytest.raises(ValueError, match="backoff_coefficient must be at least 1.0"):
        RetryPolicy(backoff_coefficient=0.5)
    with pytest.raises(ValueError, match="maximum_interval must not be below initial_interval"):
        RetryPolicy(initial_interval=timedelta(seconds=10), maximum_interval=timedelta(seconds=1))
    assert RetryPolicy().delay_before_attempt(2) == timedelta(seconds=1)
    assert RetryPolicy().delay_before_attempt(20) == timedelta(seconds=100)


async def test_corrupt_and_foreign_database_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreCorruptError, match="not a usable SQLite database.*Give another path"):
        await Client.connect(str(garbage))

    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER)")
    with pytest.raises(StoreCorruptError, match="another application.*customers"):
        await Client.connect(str(foreign))

    with pytest.raises(StoreError, match="does not exist"):
        await Client.connect(str(tmp_path / "missing" / "engine.db"))


async def test_a_database_file_is_reopened_with_its_runs(tmp_path: Path) -> None:
    path = str(tmp_path / "engine.db")
    client = await Client.connect(path)
    await client.start_workflow(Parallel.run, ["a"], id="kept", task_queue="q")
    await client.close()
    client = await Client.connect(path)
    async with Worker(client, task_queue="q", workflows=[Parallel], activities=[echo]):
        assert await client.get_workflow_handle("kept").result() == ["a"]
    await client.close()
