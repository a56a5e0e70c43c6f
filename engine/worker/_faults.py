"""How a worker obeys injected faults (engine.faults) and crash points (exploration).

Kept apart from the worker's normal path: with no fault in the database and no crash hook,
each check is one comparison.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from engine._persistence import lock_waits as _lock_waits
from engine._runtime.commands import COMMAND_EVENTS
from engine.errors import ApplicationError
from engine.worker import _injected_faults as faults
from engine.worker._injected_faults import ChangePoint, Fault

if TYPE_CHECKING:
    from engine._history.activities import ActivityTask
    from engine._history.workflow_tasks import WorkflowTask
    from engine.worker import Worker

REFRESH = 1.0  # how stale a worker's copy of the fault table may get (other processes' faults)
_EVENT_OF = {command: event for event, command in COMMAND_EVENTS.items()}


class Crashed(BaseException):
    """Unwinds the task that made its worker crash (a BaseException: nothing may catch it)."""


def _command_name(kind: str, attrs: dict[str, Any]) -> str:
    for key in ("activityType", "workflowType"):
        if isinstance(attrs.get(key), dict):
            return str(attrs[key].get("name", ""))
    return str(attrs.get("timerId") or attrs.get("markerName") or attrs.get("signalName") or "")


def workflow_task_point(task: WorkflowTask, commands: Sequence[tuple[str, dict[str, Any]]]) -> ChangePoint:
    events = [("WorkflowTaskCompleted", task.workflow_type)]
    events += [(_EVENT_OF[kind], _command_name(kind, attrs)) for kind, attrs in commands if kind in _EVENT_OF]
    return ChangePoint("workflow_task_completed", task.run_id, task.workflow_id, tuple(events))


def activity_point(task: ActivityTask, outcome: str) -> ChangePoint:
    name = str(task.info.get("activityType", ""))
    final = {"ok": "ActivityTaskCompleted", "cancelled": "ActivityTaskCanceled"}.get(outcome, "ActivityTaskFailed")
    label = "activity_completed" if outcome == "ok" else "activity_failed"
    return ChangePoint(
        label,
        task.run_id,
        str(task.info.get("workflowId", "")),
        (("ActivityTaskStarted", name), (final, name)),
        f"{task.run_id}:{task.scheduled_event_id}",
        task.scheduled_event_id,
        task.attempt,
    )


async def _faults(worker: Worker) -> list[Fault]:
    client = worker.client
    if worker._faults_epoch != client._faults_epoch or time.monotonic() - worker._faults_read_at > REFRESH:
        worker._faults_epoch = client._faults_epoch
        worker._faults_read_at = time.monotonic()
        worker._fault_cache = await client.store.read(faults._active)
    return worker._fault_cache


async def _fire(
    worker: Worker, fault: Fault, run_id: str, workflow_id: str, detail: str, scheduled_event_id: int | None = None, attempt: int | None = None
) -> Fault | None:
    fired = await worker.client.store.run(
        faults.consume, fault.id, run_id, workflow_id, detail, worker.identity, time.time(), scheduled_event_id, attempt
    )
    worker._faults_read_at = 0.0  # re-read: the count changed
    return fired


def quiet(worker: Worker) -> bool:
    """True when the worker has nothing to obey: no crash hook, and a fresh copy of the fault
    table that is empty. Then its changes may be submitted without the checks below."""
    return (
        worker._crash_hook is None
        and not worker._fault_cache
        and worker._faults_epoch == worker.client._faults_epoch
        and time.monotonic() - worker._faults_read_at <= REFRESH
    )


async def change(worker: Worker, point: ChangePoint, what: str, make: Callable[[], tuple[Any, ...]]) -> Any:
    """Submit the state change ``make()`` returns, crashing before or after its commit if a
    fault or hook says so (tried again while another program holds the write lock)."""
    await _maybe_crash(worker, point, "before_commit")
    result = await _lock_waits.record(worker.client.store, what, make, lambda: worker.crashed)
    await _maybe_crash(worker, point, "after_commit")
    return result


async def _maybe_crash(worker: Worker, point: ChangePoint, phase: str) -> None:
    hook = worker._crash_hook
    if hook is not None and hook(point, phase):
        worker.crash()
        raise Crashed()
    for fault in await _faults(worker):
        if faults.crash_matches(fault, point, phase):
            detail = f"{phase.replace('_', ' ')} of {point.describe()}"
            if await _fire(worker, fault, point.run_id, point.workflow_id, detail, point.scheduled_event_id, point.attempt):
                worker.crash()
                raise Crashed()


async def activity_fault(worker: Worker, task: ActivityTask) -> tuple[str, Any] | None:
    """The outcome an injected fault imposes on this attempt, or None to run it normally."""
    hook = worker._crash_hook
    name = str(task.info.get("activityType", ""))
    if hook is not None:
        key = f"{task.run_id}:{task.scheduled_event_id}"
        hook(ChangePoint("activity_started", task.run_id, str(task.info.get("workflowId", "")), (("ActivityTaskStarted", name),), key), "start")
    for fault in await _faults(worker):
        if fault.kind not in faults.ACTIVITY_KINDS or fault.target != name:
            continue
        detail = f"{fault.kind} attempt {task.attempt} of {name}"
        fired = await _fire(worker, fault, task.run_id, str(task.info.get("workflowId", "")), detail, task.scheduled_event_id, task.attempt)
        if fired is None:
            continue
        p = fired.params
        if fired.kind == "fail":
            error = ApplicationError(
                p.get("message") or f"injected fault: {name} failed on purpose",
                {"injected_fault": fired.id},
                type=p.get("error_type") or faults.INJECTED_TYPE,
                non_retryable=bool(p.get("non_retryable")),
            )
            return ("fail", error)
        if fired.kind == "hang":
            # Hand the attempt to no one: the engine's timeout ends it, as for a stuck call.
            await worker.client.store.run(_abandon, task.task_id, worker._owner)
            return ("abandoned", None)
        if fired.kind == "slow":
            await asyncio.sleep(float(p.get("delay", 0)))
    return None


def _abandon(tx: Any, task_id: int, owner: str) -> None:
    tx.conn.execute("UPDATE tasks SET lease_owner = ? WHERE id = ? AND lease_owner = ?", (owner + "/hung", task_id, owner))


