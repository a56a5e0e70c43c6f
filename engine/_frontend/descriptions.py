"""What a client reads about runs: their descriptions and statuses, activity attempts, pages of
runs for a list filter, and a run's closing event.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from engine._conversion import search_attributes as _search_attributes
from engine._history.mutable_state import from_ts
from engine._persistence.event_rows import RUN_KEY, read_attributes
from engine.common import TypedSearchAttributes
from engine.converter import DataConverter
from engine.errors import WorkflowNotFoundError


# A default that no caller passes: tells 'not given' from None.
_arg_unset = object()


class WorkflowExecutionStatus(enum.IntEnum):
    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    CANCELED = 4
    TERMINATED = 5
    CONTINUED_AS_NEW = 6
    TIMED_OUT = 7


_STATUS = {
    "Running": WorkflowExecutionStatus.RUNNING,
    "Completed": WorkflowExecutionStatus.COMPLETED,
    "Failed": WorkflowExecutionStatus.FAILED,
    "Canceled": WorkflowExecutionStatus.CANCELED,
    "Terminated": WorkflowExecutionStatus.TERMINATED,
    "ContinuedAsNew": WorkflowExecutionStatus.CONTINUED_AS_NEW,
    "TimedOut": WorkflowExecutionStatus.TIMED_OUT,
}


@dataclass(frozen=True)
class WorkflowExecutionDescription:
    """What ``handle.describe()`` returns."""

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    start_time: datetime
    close_time: datetime | None
    history_length: int
    pending_activities: int
    pending_timers: int
    typed_search_attributes: TypedSearchAttributes = TypedSearchAttributes.empty
    raw_memo: dict[str, Any] = field(default_factory=dict)
    data_converter: DataConverter = field(default=DataConverter.default, repr=False, compare=False)
    # Temporal's PendingActivityInfo JSON of each pending activity (raw_description shows them).
    pending_activity_infos: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    # Temporal's ResetPointInfo JSON of each auto-reset point (engine._history.reset_points).
    auto_reset_points: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    @property
    def search_attributes(self) -> dict[str, list[Any]]:
        """temporalio's deprecated untyped view of ``typed_search_attributes``: name -> list of values."""
        from engine._conversion.search_attributes_dict import untyped

        return untyped(self.typed_search_attributes)

    @property
    def raw_description(self) -> Any:
        """The description as Temporal's ``DescribeWorkflowExecutionResponse``, read as
        temporalio reads that protobuf message (``.workflow_execution_info.status``);
        ``.to_json()`` gives its JSON."""
        from engine._frontend.describe_json import describe_json
        from engine._api.proto_view import DESCRIBE_DEFAULTS, ProtoView

        return ProtoView(describe_json(self), DESCRIBE_DEFAULTS)

    async def memo(self) -> dict[str, Any]:
        """The memo, decoded (the payload codec runs) and converted."""
        return {k: await self.memo_value(k) for k in self.raw_memo}

    async def memo_value(self, key: str, default: Any = _arg_unset, *, type_hint: type | None = None) -> Any:
        """One memo field; ``default`` if absent, else ``KeyError``."""
        payload = self.raw_memo.get(key)
        if payload is None:
            if default is _arg_unset:
                raise KeyError(f"The memo of {self.id!r} has no field {key!r} (it has: {', '.join(sorted(self.raw_memo)) or 'none'}).")
            return default
        return (await self.data_converter._decode_json({"payloads": [payload]}, [type_hint], f"memo field {key!r}"))[0]


@dataclass(frozen=True)
class ActivityAttempt:
    """One try of an activity: when it ran, how it ended, and its failure if it failed."""

    scheduled_event_id: int
    attempt: int
    started_at: datetime | None
    ended_at: datetime
    outcome: str
    failure: dict[str, Any] | None
    identity: str


def _attempts(conn: Any, run_id: str) -> list[tuple[Any, ...]]:
    import json

    return [
        (s, a, from_ts(st) if st is not None else None, from_ts(en), o, json.loads(f) if f else None, i)
        for s, a, st, en, o, f, i in conn.execute(
            "SELECT scheduled_event_id, attempt, started_at, ended_at, outcome, failure, identity "
            "FROM activity_attempts WHERE run = " + RUN_KEY + " ORDER BY scheduled_event_id, attempt",
            (run_id,),
        )
    ]


# ---------------------------------------------------------------------- reads (database thread)
_COLUMNS = (
    "e.workflow_id, e.run_id, e.workflow_type, e.task_queue, e.status, e.start_time, e.close_time, "
    "e.next_event_id - 1, (SELECT count(*) FROM tasks t WHERE t.run_id = e.run_id AND t.kind = 'activity'), "
    "(SELECT count(*) FROM timers m WHERE m.run_id = e.run_id AND m.kind = 'timer'), e.search_attributes, e.memo"
)


_DESC = f"SELECT {_COLUMNS} FROM executions e"


def _description(row: Sequence[Any], data_converter: DataConverter) -> WorkflowExecutionDescription:
    return WorkflowExecutionDescription(
        id=row[0],
        run_id=row[1],
        workflow_type=row[2],
        task_queue=row[3],
        status=_STATUS[row[4]],
        start_time=from_ts(row[5]),
        close_time=from_ts(row[6]) if row[6] is not None else None,
        history_length=row[7],
        pending_activities=row[8],
        pending_timers=row[9],
        typed_search_attributes=_search_attributes.decode_typed(json.loads(row[10])) if row[10] else TypedSearchAttributes.empty,
        raw_memo=json.loads(row[11]) if row[11] else {},
        data_converter=data_converter,
    )


def _list_page(conn: Any, where: str, params: list[Any], size: int, after: tuple[float, int] | None) -> list[Any]:
    """One page of runs in list order, each row ending with its key (start time, row id)."""
    conditions = [f"({where})"] if where else []
    values = list(params)
    if after is not None:
        conditions.append("(e.start_time < ? OR (e.start_time = ? AND e.rowid < ?))")
        values += [after[0], after[0], after[1]]
    sql = f"SELECT {_COLUMNS}, e.start_time, e.rowid FROM executions e"
    sql += (" WHERE " + " AND ".join(conditions) if conditions else "") + " ORDER BY e.start_time DESC, e.rowid DESC LIMIT ?"
    return conn.execute(sql, (*values, size)).fetchall()


def _list_runs_by_id(conn: Any, run_id: str) -> list[Any]:
    return conn.execute(_DESC + " WHERE e.run_id = ?", (run_id,)).fetchall()


def _latest_run(conn: Any, workflow_id: str) -> str | None:
    row = conn.execute(
        "SELECT run_id FROM executions WHERE workflow_id = ? ORDER BY start_time DESC, rowid DESC LIMIT 1", (workflow_id,)
    ).fetchone()
    return row[0] if row else None


def _closing_event(conn: Any, run_id: str) -> tuple[str, dict[str, Any]] | None:
    row = conn.execute("SELECT status, next_event_id FROM executions WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise WorkflowNotFoundError(f"No workflow run {run_id!r}.")
    if row[0] == "Running":
        return None
    event = read_attributes(conn, run_id, row[1] - 1)
    if event is None:
        raise WorkflowNotFoundError(f"No closing event in the history of run {run_id!r}.")
    return event
