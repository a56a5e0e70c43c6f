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
    ApplicationError,
    DefinitionError,
    HistoryFormatError,
    ListFilterError,
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


# --- issue 10, item 8: one-line errors where tracebacks were ---------------------------------


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


async def _new_database(path: Path) -> Path:
    client = await Client.connect(str(path))
    await client.close()
    return path


async def test_a_schema_version_that_disagrees_with_the_tables(tmp_path: Path) -> None:
    lowered = await _new_database(tmp_path / "lowered.db")
    _sql(lowered, "UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with pytest.raises(StoreCorruptError, match=r"says schema version 3, but table 'fault_log' is already there, which version 4 adds\. Restore it from a copy") as info:
        await Client.connect(str(lowered))
    assert "\n" not in str(info.value)

    no_children = await _new_database(tmp_path / "no-children.db")
    _sql(no_children, "DROP TABLE children")
    with pytest.raises(StoreCorruptError, match=r"says schema version \d+.*table 'children' .*missing"):
        await Client.connect(str(no_children))

    no_column = await _new_database(tmp_path / "no-column.db")
    _sql(no_column, "ALTER TABLE executions DROP COLUMN flags")
    with pytest.raises(StoreCorruptError, match=r"column 'executions\.flags' .*missing"):
        await Client.connect(str(no_column))


async def test_a_schema_version_that_is_not_a_number(tmp_path: Path) -> None:
    path = await _new_database(tmp_path / "words.db")
    _sql(path, "UPDATE meta SET value = 'seven' WHERE key = 'schema_version'")
    with pytest.raises(StoreCorruptError, match=r"schema version 'seven' is not a number.*Restore it from a copy"):
        await Client.connect(str(path))


async def test_a_list_filter_nested_too_deep_or_too_long() -> None:
    client = await Client.connect(":memory:")
    deep = "(" * 500 + "WorkflowId = 'a'" + ")" * 500
    with pytest.raises(ListFilterError, match=r"nests brackets more than \d+ deep.*column \d+"):
        await client.list_workflows(deep)
    long = " OR ".join(["WorkflowId = 'a'"] * 3000)
    with pytest.raises(ListFilterError, match=r"more than \d+ conditions"):
        await client.list_workflows(long)
    many = "WorkflowId IN (" + ", ".join(["'a'"] * 40_000) + ")"
    with pytest.raises(ListFilterError, match=r"more than \d+ values"):
        await client.list_workflows(many)
    # The largest filter the limits let through is one SQLite runs.
    largest = "(" * 50 + " OR ".join(["WorkflowId IN (" + ", ".join(["'a'"] * 20) + ")"] * 500) + ")" * 50
    assert list(await client.list_workflows(largest)) == []
    # What a person writes still works.
    assert list(await client.list_workflows("(" * 20 + "WorkflowId = 'a'" + ")" * 20 + " OR WorkflowId = 'b'")) == []
    await client.close()


def test_a_deeply_nested_history_is_a_history_format_error(tmp_path: Path) -> None:
    from engine.history import History, load_history

    text = '{"events": [' + "[" * 100_000 + "]" * 100_000 + "]}"
    with pytest.raises(HistoryFormatError, match=r"nested more than .* deep"):
        History.from_json("deep", text)
    path = tmp_path / "deep.json"
    path.write_text(text)
    with pytest.raises(HistoryFormatError, match=r"deep\.json: .*nested"):
        load_history(path)
    nested: dict[str, object] = {}
    inner = nested
    for _ in range(5000):
        inner["a"] = {}
        inner = inner["a"]  # type: ignore[assignment]
    document = {"events": [{"eventId": "1", "eventType": "WorkflowExecutionStarted",
                            "workflowExecutionStartedEventAttributes": nested}]}
    with pytest.raises(HistoryFormatError, match=r"nested more than .* deep"):
        History.from_json("deep", document)


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@activity.defn
async def raises_unprintable() -> str:
    raise _Unprintable()


@activity.defn
async def raises_unprintable_arg() -> str:
    class Bad:
        def __str__(self) -> str:
            raise ValueError("nope")

    raise RuntimeError(Bad())


@workflow.defn
class CallsUnprintable:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            name, start_to_close_timeout=timedelta(seconds=5), retry_policy=RetryPolicy(maximum_attempts=1)
        )


async def test_an_exception_whose_str_raises_is_recorded_as_itself() -> None:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="q", workflows=[CallsUnprintable], activities=[raises_unprintable, raises_unprintable_arg]):
        for name, kind in (("raises_unprintable", "_Unprintable"), ("raises_unprintable_arg", "RuntimeError")):
            with pytest.raises(WorkflowFailureError) as info:
                await env.client.execute_workflow(CallsUnprintable.run, name, id=name, task_queue="q")
            cause = info.value.cause.__cause__
            assert isinstance(cause, ApplicationError) and cause.type == kind
            assert "codec" not in str(cause) and "str() failed" in str(cause), str(cause)
    await env.shutdown()
