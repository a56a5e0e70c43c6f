"""Client reads that mirror temporalio's: ``count_workflows``, ``fetch_history_events`` and a
description's ``raw_description`` (issue 11, item 9).

Counts use the same list filter as ``list_workflows``; Temporal's one aggregation,
``GROUP BY ExecutionStatus``, groups them. History events come a page at a time, and with
``wait_new_event`` the iterator waits for the run's next events until it closes (a long poll,
as Temporal's ``GetWorkflowExecutionHistory``).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Sequence

from engine._history import search_attributes as history_search_attributes
from engine._history.workflow_tasks import read_events
from engine._persistence.list_filter import compile_list_filter
from engine.history import HistoryEvent

if TYPE_CHECKING:
    from engine.client import Client

_GROUP_BY = re.compile(r"\s+GROUP\s+BY\s+(\w+)\s*$|^\s*GROUP\s+BY\s+(\w+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class WorkflowExecutionCountAggregationGroup:
    """The runs of one group of a ``GROUP BY`` count: how many, and the group's values."""

    count: int
    group_values: Sequence[Any]


@dataclass(frozen=True)
class WorkflowExecutionCount:
    """What ``client.count_workflows()`` returns (as temporalio's): the number of matching
    runs, and with ``GROUP BY ExecutionStatus`` one group per status (else no groups)."""

    count: int
    groups: Sequence[WorkflowExecutionCountAggregationGroup] = field(default_factory=list)


async def count_workflows(client: Client, query: str | None) -> WorkflowExecutionCount:
    text = (query or "").strip()
    group_by = None
    found = _GROUP_BY.search(text)
    if found:
        group_by = found.group(1) or found.group(2)
        text = text[: found.start()].strip()
        if group_by != "ExecutionStatus":
            raise ValueError(
                f"count_workflows can group by ExecutionStatus only (as Temporal), not {group_by!r}: "
                "end the query with 'GROUP BY ExecutionStatus' or leave the clause out."
            )
    where, params = "", list[Any]()
    if text:
        where, params = compile_list_filter(text, await client.store.read(history_search_attributes.types))
    rows = await client.store.read(_count, where, params, group_by is not None)
    if group_by is None:
        return WorkflowExecutionCount(rows[0][0] if rows else 0)
    groups = [WorkflowExecutionCountAggregationGroup(n, [status]) for status, n in rows]
    return WorkflowExecutionCount(sum(g.count for g in groups), groups)


def _count(conn: Any, where: str, params: list[Any], grouped: bool) -> list[Any]:
    condition = f" WHERE {where}" if where else ""
    if grouped:
        sql = f"SELECT e.status, count(*) FROM executions e{condition} GROUP BY e.status ORDER BY e.status"
    else:
        sql = f"SELECT count(*) FROM executions e{condition}"
    return conn.execute(sql, params).fetchall()


async def history_events(
    client: Client, run_id: str, *, page_size: int | None, wait_new_event: bool, after: int = 0
) -> AsyncIterator[HistoryEvent]:
    """The run's events from ``after + 1`` on, ``page_size`` at a time; with ``wait_new_event``
    it waits for more until the run has closed and every event was given."""
    size = page_size or 1000
    if size < 1:
        raise ValueError(f"page_size must be at least 1 (or None), not {page_size}.")
    while True:
        woken = client.store.waiter("any", "")
        events, open_ = await client.store.read(_page, run_id, after, size)
        for event in events:
            yield event
        if events:
            after = events[-1].event_id
            continue
        if not (wait_new_event and open_):
            return
        # Woken by this process's commits; a short poll for other processes' writes.
        await _wait_any(woken.wait(), 0.25)


async def _wait_any(awaitable: Any, timeout: float) -> None:
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait([task], timeout=timeout)
    finally:
        task.cancel()


def _page(conn: Any, run_id: str, after: int, size: int) -> tuple[list[HistoryEvent], bool]:
    events = read_events(conn, run_id, after)[:size]
    row = conn.execute("SELECT status FROM executions WHERE run_id = ?", (run_id,)).fetchone()
    return events, row is not None and row[0] == "Running"
