"""A run read in one go, for viewers: ``await handle.snapshot()`` (public as
:mod:`engine.run_snapshot`).

A viewer of a run needs more than its history: every attempt of its activities (Temporal's
history keeps only the last one; the engine keeps them all in a side table), the runs of its
continue-as-new chain, its child runs, the faults injected into it, its status. Fetched one by
one, these can disagree (an attempt recorded between two reads); :func:`read_snapshot` reads
them in one read transaction and decodes the payloads with the client's data converter (its
codec decrypts, say), so a :class:`RunSnapshot` is one consistent, readable moment of the run.

Everything here is a frozen dataclass; nothing is fetched later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Mapping

from engine._frontend import snapshot_reads as sql
from engine._frontend.descriptions import ActivityAttempt, WorkflowExecutionStatus
from engine._persistence.fault_log import FaultFired
from engine.converter import DataConverter, decode_failure_json, decode_history
from engine.errors import PayloadError
from engine.history import History

if TYPE_CHECKING:
    from engine.client import Client

__all__ = ["ChildRun", "RunSnapshot", "RunSummary", "read_snapshot"]

_STATUS = {status.name.title().replace("_", ""): status for status in WorkflowExecutionStatus}
_STATUS["ContinuedAsNew"] = WorkflowExecutionStatus.CONTINUED_AS_NEW
_STATUS["TimedOut"] = WorkflowExecutionStatus.TIMED_OUT


def _status(text: str | None) -> WorkflowExecutionStatus | None:
    return None if text is None else _STATUS.get(text)


@dataclass(frozen=True)
class RunSummary:
    """One run of a continue-as-new chain: ids, status and times."""

    workflow_id: str
    run_id: str
    workflow_type: str
    status: WorkflowExecutionStatus
    start_time: datetime
    close_time: datetime | None
    history_length: int


@dataclass(frozen=True)
class ChildRun:
    """A child workflow the run started: ``run_id`` is ``""`` until the child has started,
    ``status`` is None where this database does not have the child run."""

    initiated_event_id: int
    workflow_id: str
    run_id: str
    workflow_type: str
    status: WorkflowExecutionStatus | None


@dataclass(frozen=True)
class RunSnapshot:
    """One run as read at ``read_at``: its history (payloads decoded by the client's codec),
    every activity attempt, its chain and children, the faults that fired in it.

    ``result`` is the decoded result of a completed run (None otherwise, and where a codec
    this client does not have wrote it) and ``failure`` the
    failure JSON of a failed one (message and stack trace readable); ``chain`` holds every run
    of the continue-as-new chain, first to last, this one included (one run if there is no
    chain); ``child_histories`` maps child workflow ids to their histories, three levels deep,
    for graphs that draw child runs nested.
    """

    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    start_time: datetime
    close_time: datetime | None
    history: History
    attempts: tuple[ActivityAttempt, ...]
    chain: tuple[RunSummary, ...]
    children: tuple[ChildRun, ...]
    child_histories: Mapping[str, History] = field(default_factory=dict)
    faults: tuple[FaultFired, ...] = ()
    result: Any = None
    failure: Mapping[str, Any] | None = None
    read_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def closed(self) -> bool:
        """Whether the run has closed (nothing will be added to its history)."""
        return self.status != WorkflowExecutionStatus.RUNNING

    @property
    def chain_index(self) -> int:
        """This run's position in ``chain`` (0 for the first run)."""
        return next((i for i, run in enumerate(self.chain) if run.run_id == self.run_id), 0)

    def attempts_of(self, scheduled_event_id: int) -> tuple[ActivityAttempt, ...]:
        """Every attempt of the activity scheduled by event ``scheduled_event_id``."""
        return tuple(a for a in self.attempts if a.scheduled_event_id == scheduled_event_id)


def _summary(row: tuple[Any, ...]) -> RunSummary:
    workflow_id, run_id, wtype, _, status, start, close, next_event_id = row
    return RunSummary(
        workflow_id, run_id, wtype, _status(status) or WorkflowExecutionStatus.RUNNING,
        datetime.fromtimestamp(start, timezone.utc), sql._utc(close), next_event_id - 1,
    )


async def _readable_attempts(attempts: list[tuple[Any, ...]], converter: DataConverter) -> tuple[ActivityAttempt, ...]:
    out = []
    for scheduled, attempt, started, ended, outcome, failure, identity in attempts:
        if failure and converter.payload_codec is not None:
            failure = await decode_failure_json(failure, converter)
        out.append(ActivityAttempt(scheduled, attempt, started, ended, outcome, failure, identity or ""))
    return tuple(out)


async def _outcome(history: History, converter: DataConverter) -> tuple[Any, Mapping[str, Any] | None]:
    last = history.events[-1] if history.events else None
    if last is None:
        return None, None
    if last.event_type == "WorkflowExecutionCompleted":
        try:
            values = await converter._decode_json(last.attributes.get("result"), (), "the workflow result")
        except PayloadError:
            # Written by a codec this client does not have: the viewers show it as encrypted.
            return None, None
        return (values[0] if values else None), None
    if last.event_type == "WorkflowExecutionFailed" and isinstance(last.attributes.get("failure"), Mapping):
        return None, dict(last.attributes["failure"])
    return None, None


async def read_snapshot(client: Client, workflow_id: str, run_id: str | None = None) -> RunSnapshot:
    """Read run ``run_id`` of ``workflow_id`` (its latest run without ``run_id``) in one read
    transaction, and decode it with ``client.data_converter``.

    Raises:
        WorkflowNotFoundError: no such workflow or run.
        PayloadError: the client's codec cannot decode the run's payloads (a wrong key, say):
            connect with the data converter that wrote it.
    """
    raw = await client.store.read(sql.read_run, workflow_id, run_id)
    converter = client.data_converter
    history = await decode_history(raw.history, converter)
    children = {wid: await decode_history(h, converter) for wid, h in raw.child_histories.items()}
    attempts = await _readable_attempts(raw.attempts, converter)
    result, failure = await _outcome(history, converter)
    summary = _summary(raw.execution)
    return RunSnapshot(
        workflow_id=summary.workflow_id,
        run_id=summary.run_id,
        workflow_type=summary.workflow_type,
        task_queue=raw.execution[3],
        status=summary.status,
        start_time=summary.start_time,
        close_time=summary.close_time,
        history=history,
        attempts=attempts,
        chain=tuple(_summary(row) for row in raw.chain),
        children=tuple(ChildRun(i, wid, rid, wtype, _status(status)) for i, wid, rid, wtype, status in raw.children),
        child_histories=children,
        faults=tuple(raw.faults),
        result=result,
        failure=failure,
        read_at=client.clock.now(),
    )

