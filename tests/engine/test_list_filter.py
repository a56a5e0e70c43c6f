"""Temporal's list filter (``client.list_workflows(query)``): parsing, errors and results."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from engine import Worker, workflow
from engine._persistence.list_filter import compile_list_filter
from engine.errors import ApplicationError, ListFilterError
from engine.testing import WorkflowEnvironment

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@workflow.defn
class Quick:
    @workflow.run
    async def run(self, fail: bool) -> str:
        if fail:
            raise ApplicationError("asked to fail", non_retryable=True)
        return "done"


@workflow.defn
class Waiting:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


def test_compiles_to_parameterised_sql() -> None:
    sql, params = compile_list_filter("WorkflowType='Hello' AND (ExecutionStatus=\"running\" OR TaskQueue != 'q')")
    assert sql == "(e.workflow_type = ? AND (e.status = ? OR e.task_queue != ?))"
    assert params == ["Hello", "Running", "q"]  # status names are matched case-insensitively


def test_between_in_starts_with_and_null() -> None:
    sql, params = compile_list_filter(
        "StartTime BETWEEN '2024-05-01' AND '2024-05-01T13:00:00.123456789+01:00' and WorkflowId not in ('a', 'b') "
        "AND WorkflowType STARTS_WITH 'Pay_%' AND CloseTime IS NULL"
    )
    assert sql == (
        "(e.start_time BETWEEN ? AND ? AND e.workflow_id NOT IN (?, ?) AND e.workflow_type LIKE ? ESCAPE '\\' AND e.close_time IS NULL)"
    )
    assert params == [T0.timestamp() - 12 * 3600, T0.timestamp() + 0.123456, "a", "b", "Pay\\_\\%%"]


def test_quotes_escape_and_precedence() -> None:
    sql, params = compile_list_filter("WorkflowId = 'it''s' OR WorkflowId = \"say \\\"hi\\\"\" AND RunId <> 'x'")
    assert sql == "(e.workflow_id = ? OR (e.workflow_id = ? AND e.run_id != ?))"  # AND binds tighter
    assert params == ["it's", 'say "hi"', "x"]


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("WorkflowType='Hello' AND", "the end of the filter"),
        ("Foo = 'x'", "'Foo' (column 1)"),
        ("WorkflowType = Hello", "'Hello' (column 16)"),
        ("WorkflowType = 'Hello' WorkflowId = 'a'", "'WorkflowId' (column 24)"),
        ("(WorkflowType = 'Hello'", "the end of the filter"),
        ("ExecutionStatus = 'Sleeping'", "'Sleeping' at column 19"),
        ("ExecutionStatus > 'Running'", "not >"),
        ("StartTime > 'yesterday'", "'yesterday' at column 13"),
        ("WorkflowType = 'Hello", "column 16"),
        ("WorkflowType ~ 'Hello'", "'~' at column 14"),
        ("", "empty"),
        ("StartTime STARTS_WITH '2024'", "not on StartTime"),
    ],
)
def test_bad_filters_get_one_line_naming_the_token(query: str, names: str) -> None:
    with pytest.raises(ListFilterError) as caught:
        compile_list_filter(query)
    message = str(caught.value)
    assert names in message
    assert "\n" not in message


async def test_list_workflows_filters_runs() -> None:
    env = await WorkflowEnvironment.start_time_skipping(start=T0)
    client = env.client
    try:
        async with Worker(client, task_queue="q", workflows=[Quick, Waiting]):
            await client.execute_workflow(Quick.run, False, id="ok", task_queue="q")
            await env.sleep(timedelta(hours=1))
            failing = await client.start_workflow(Quick.run, True, id="bad", task_queue="q")
            with pytest.raises(Exception):
                await failing.result()
            await env.sleep(timedelta(hours=1))
            await client.start_workflow(Waiting.run, id="wait", task_queue="q")
            await client.start_workflow(Waiting.run, id="other-queue", task_queue="elsewhere")

        async def ids(query: str, **kwargs: object) -> list[str]:
            return [r.id for r in await client.list_workflows(query, **kwargs)]  # type: ignore[arg-type]

        assert await ids("") == ["other-queue", "wait", "bad", "ok"]  # newest first
        assert await ids("ExecutionStatus = 'Running'") == ["other-queue", "wait"]
        assert await ids("ExecutionStatus IN ('Completed', 'Failed')") == ["bad", "ok"]
        assert await ids("WorkflowType = 'Waiting' AND TaskQueue = 'q'") == ["wait"]
        assert await ids("WorkflowId STARTS_WITH 'o'") == ["other-queue", "ok"]
        assert await ids("StartTime < '2024-05-01T12:30:00Z' OR StartTime >= '2024-05-01T14:00:00Z'") == ["other-queue", "wait", "ok"]
        assert await ids("StartTime BETWEEN '2024-05-01T12:30:00Z' AND '2024-05-01T13:30:00Z'") == ["bad"]
        assert await ids("CloseTime IS NOT NULL AND CloseTime > '2024-05-01T12:30:00Z'") == ["bad"]
        assert await ids("ExecutionStatus != 'Running'", workflow_type="Quick", limit=1) == ["bad"]
        assert len(await client.list_workflows(limit=None)) == 4
        with pytest.raises(ValueError, match="at least 1"):
            await client.list_workflows(limit=0)
        with pytest.raises(ListFilterError, match="'Nope'"):
            await client.list_workflows("Nope = 'x'")
    finally:
        await env.shutdown()


async def test_list_workflows_returns_every_run_a_page_at_a_time_as_temporalio() -> None:
    # The virtual clock stands still: every run has the same start time, so pages are cut by
    # the insertion order alone, the hard case for paging.
    env = await WorkflowEnvironment.start_time_skipping(start=T0)
    client = env.client
    try:
        count = 1005  # more than one default page (1,000)
        await asyncio.gather(*(client.start_workflow("Waiting", id=f"w{i:04}", task_queue="nobody") for i in range(count)))
        newest_first = [f"w{i:04}" for i in reversed(range(count))]
        assert len(await client.list_workflows()) == count  # awaited: every run, as a list
        assert [r.id async for r in client.list_workflows()] == newest_first  # temporalio's async for
        assert [r.id async for r in client.list_workflows(limit=250, page_size=100)] == newest_first[:250]
        assert [r.id async for r in client.list_workflows("WorkflowId STARTS_WITH 'w099'", page_size=3)] == [f"w099{i}" for i in reversed(range(10))]
        # Paging by hand, and going on later from a page's token (as temporalio's iterator does).
        pages = client.list_workflows(page_size=400)
        await pages.fetch_next_page()
        assert pages.current_page is not None and len(pages.current_page) == 400 and pages.next_page_token
        rest = [r.id async for r in client.list_workflows(page_size=400, next_page_token=pages.next_page_token)]
        assert [r.id for r in pages.current_page] + rest == newest_first
        with pytest.raises(ValueError, match="page_size must be at least 1"):
            client.list_workflows(page_size=0)
        with pytest.raises(ValueError, match="next_page_token"):
            client.list_workflows(next_page_token=b"not ours")
    finally:
        await env.shutdown()
