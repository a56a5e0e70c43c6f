"""A Temporal server's runs in the engine's read model: ``RunSnapshot`` from the temporalio client.

The views (graph, saga, chain, explorer, replay debugger) read a :class:`RunSnapshot`, which the
engine builds in one read of its database. On a Temporal server the same facts come from
histories: each run's history is fetched through the temporalio client and imported
(``History.from_json``: Temporal's JSON is the engine's format), its continue-as-new chain is
walked along the links Temporal writes into the histories (a start event's
``continuedExecutionRunId`` back, a closing event's ``newExecutionRunId`` forward: continue-as-new,
a retry of a failed run, the next run of a cron), its children are read from its events and
their histories fetched. Two things the engine has that a server does not give: every attempt
of an activity (Temporal's history keeps the last one; ``attempts`` is empty and the views
count attempts from ``ActivityTaskStarted``) and injected faults.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

from engine.client import WorkflowExecutionStatus
from engine.converter import DataConverter, decode_history
from engine.errors import EngineError, HistoryFormatError, WorkflowNotFoundError
from engine.history import History
from engine.run_snapshot import ChildRun, RunSnapshot, RunSummary

CHAIN_LIMIT = 50  # runs each way along a chain (a cron runs for ever)
CHILD_DEPTH = 3  # levels of child runs drawn nested, as the engine's snapshot does
CHILD_HISTORIES = 50

_CLOSED = {
    "WorkflowExecutionCompleted": WorkflowExecutionStatus.COMPLETED,
    "WorkflowExecutionFailed": WorkflowExecutionStatus.FAILED,
    "WorkflowExecutionCanceled": WorkflowExecutionStatus.CANCELED,
    "WorkflowExecutionTerminated": WorkflowExecutionStatus.TERMINATED,
    "WorkflowExecutionContinuedAsNew": WorkflowExecutionStatus.CONTINUED_AS_NEW,
    "WorkflowExecutionTimedOut": WorkflowExecutionStatus.TIMED_OUT,
}


def status_of(history: History) -> WorkflowExecutionStatus:
    """A run's status as its history says (running until a closing event)."""
    return _CLOSED.get(history.events[-1].event_type, WorkflowExecutionStatus.RUNNING) if history.events else WorkflowExecutionStatus.RUNNING


def _start(history: History) -> Mapping[str, Any]:
    return history.events[0].attributes if history.events else {}


def previous_run(history: History) -> str:
    """The run before this one in its chain ("" for the first)."""
    value = _start(history).get("continuedExecutionRunId")
    return value if isinstance(value, str) else ""


def next_run(history: History) -> str:
    """The run after this one in its chain ("" for the last, or while it runs)."""
    if not history.events or history.events[-1].event_type not in _CLOSED:
        return ""
    value = history.events[-1].attributes.get("newExecutionRunId")
    return value if isinstance(value, str) else ""


def summary(workflow_id: str, run_id: str, history: History) -> RunSummary:
    status = status_of(history)
    start = history.events[0].event_time if history.events else None
    close = history.events[-1].event_time if status != WorkflowExecutionStatus.RUNNING else None
    return RunSummary(workflow_id, run_id, history.workflow_type, status, start or datetime.now(timezone.utc), close, len(history.events))


def children_of(history: History) -> list[ChildRun]:
    """Every child the run initiated (no run id for one that never started)."""
    found: dict[int, list[Any]] = {}
    closed = {"ChildWorkflowExecutionCompleted": "COMPLETED", "ChildWorkflowExecutionFailed": "FAILED",
              "ChildWorkflowExecutionCanceled": "CANCELED", "ChildWorkflowExecutionTerminated": "TERMINATED",
              "ChildWorkflowExecutionTimedOut": "TIMED_OUT"}
    for event in history.events:
        a = event.attributes
        if event.event_type == "StartChildWorkflowExecutionInitiated":
            found[event.event_id] = [event.event_id, a.get("workflowId", ""), "", (a.get("workflowType") or {}).get("name", ""), None]
            continue
        child = found.get(_int(a.get("initiatedEventId")))
        if child is None:
            continue
        if event.event_type == "ChildWorkflowExecutionStarted":
            child[2] = (a.get("workflowExecution") or {}).get("runId", "") or ""
            child[4] = WorkflowExecutionStatus.RUNNING
        elif event.event_type in closed:
            child[4] = WorkflowExecutionStatus[closed[event.event_type]]
    return [ChildRun(*child) for child in found.values()]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class TemporalRuns:
    """Reads runs of the Temporal server a temporalio ``client`` is connected to, as the engine's
    read model (what ``engine.run_snapshot.read_snapshot`` gives for the engine's own runs)."""

    def __init__(self, client: Any, address: str, data_converter: DataConverter = DataConverter.default) -> None:
        self.client = client
        self.address = address
        self.data_converter = data_converter

    async def latest_run(self, workflow_id: str) -> str:
        """The run id of ``workflow_id``'s latest run."""
        from temporalio.service import RPCError, RPCStatusCode

        try:
            return str((await self.client.get_workflow_handle(workflow_id).describe()).run_id)
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                raise WorkflowNotFoundError(f"Workflow {workflow_id!r} is unknown on Temporal at {self.address}. List runs with %workflow list.") from None
            raise EngineError(f"Temporal at {self.address} says: {e}") from None

    async def history(self, workflow_id: str, run_id: str | None = None) -> History:
        """Run ``run_id`` of ``workflow_id`` (its latest without one), as stored on the server."""
        from temporalio.service import RPCError, RPCStatusCode

        try:
            fetched = await self.client.get_workflow_handle(workflow_id, run_id=run_id or None).fetch_history()
        except RPCError as e:
            if e.status == RPCStatusCode.NOT_FOUND:
                run = f" has no run {run_id!r}" if run_id else " is unknown"
                raise WorkflowNotFoundError(f"Workflow {workflow_id!r}{run} on Temporal at {self.address}. List runs with %workflow list.") from None
            raise EngineError(f"Temporal at {self.address} says: {e}") from None
        try:
            return History.from_json(workflow_id, fetched.to_json())
        except HistoryFormatError as e:
            raise EngineError(f"The history of {workflow_id!r} from Temporal at {self.address} cannot be read: {e}") from None

    async def readable(self, workflow_id: str, run_id: str | None = None) -> History:
        """The history with its payloads decoded by the session's data converter (its codec)."""
        return await decode_history(await self.history(workflow_id, run_id), self.data_converter)

    async def chain(self, workflow_id: str, history: History, run_id: str) -> list[tuple[str, History]]:
        """Every run of the chain ``history`` belongs to, first to last: (run id, readable history)."""
        runs = [(run_id, history)]
        previous = previous_run(history)
        while previous and len(runs) < CHAIN_LIMIT:
            runs.insert(0, (previous, await self.readable(workflow_id, previous)))
            previous = previous_run(runs[0][1])
        following = next_run(history)
        while following and len(runs) < 2 * CHAIN_LIMIT:
            runs.append((following, await self.readable(workflow_id, following)))
            following = next_run(runs[-1][1])
        return runs

    async def read_snapshot(self, workflow_id: str, run_id: str | None = None) -> RunSnapshot:
        """The run as a ``RunSnapshot``: its history, chain and children, read from the server."""
        run_id = run_id or await self.latest_run(workflow_id)
        history = await self.readable(workflow_id, run_id)
        chain = await self.chain(workflow_id, history, run_id)
        children = children_of(history)
        child_histories: dict[str, History] = {}
        await self._child_histories(children, 1, child_histories)
        this = summary(workflow_id, run_id, history)
        result, failure = None, None
        last = history.events[-1] if history.events else None
        if last is not None and last.event_type == "WorkflowExecutionCompleted":
            try:
                result = history.result()
            except HistoryFormatError:
                result = None  # written by a codec the session does not have: shown as encoded
        elif last is not None and last.event_type == "WorkflowExecutionFailed" and isinstance(last.attributes.get("failure"), Mapping):
            failure = dict(last.attributes["failure"])
        start = _start(history)
        return RunSnapshot(
            workflow_id=workflow_id, run_id=run_id, workflow_type=history.workflow_type,
            task_queue=str((start.get("taskQueue") or {}).get("name", "")), status=this.status,
            start_time=this.start_time, close_time=this.close_time, history=history, attempts=(),
            chain=tuple(summary(workflow_id, rid, h) for rid, h in chain), children=tuple(children),
            child_histories=child_histories, result=result, failure=failure, read_at=datetime.now(timezone.utc),
        )

    async def _child_histories(self, children: list[ChildRun], depth: int, out: dict[str, History]) -> None:
        for child in children:
            if depth > CHILD_DEPTH or len(out) >= CHILD_HISTORIES:
                return
            if not child.run_id or child.workflow_id in out:
                continue
            try:
                history = await self.readable(child.workflow_id, child.run_id)
            except WorkflowNotFoundError:
                continue  # in another namespace, or already deleted by retention
            out[child.workflow_id] = history
            await self._child_histories(children_of(history), depth + 1, out)
