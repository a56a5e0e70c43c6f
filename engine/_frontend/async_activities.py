"""Asynchronous activity completion (temporalio's ``client.get_async_activity_handle``).

An activity that calls ``activity.raise_complete_async()`` ends its function without an
outcome; its attempt stays started, under the worker's lease, until someone completes, fails
or cancels it through a handle, or its timeouts run out. The handle names the attempt by its
task token (``activity.info().task_token``) or by workflow id, run id and activity id.

The token is the attempt's lease (task row, lease owner, attempt number) as JSON bytes: the
same proof of ownership the worker itself gives when it records an outcome, so an outcome
sent for an attempt that timed out and was retried is refused, as in Temporal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Sequence

import orjson

from engine._history.activities import _held_activity
from engine._history.activities import complete_activity, fail_activity, heartbeat_activity
from engine._persistence.transactions import Tx
from engine.errors import CancelledError, EngineError

if TYPE_CHECKING:
    from engine.client import Client


class AsyncActivityCancelledError(EngineError):
    """A heartbeat through an async activity handle learned that cancellation was requested:
    stop the work and call ``report_cancellation()``."""

    def __init__(self) -> None:
        super().__init__("Activity cancelled")


class ActivityNotFoundError(EngineError):
    """The handle names no running attempt (finished, timed out and retried, or never started)."""


@dataclass(frozen=True)
class AsyncActivityIDReference:
    """An async activity named by its workflow run and activity id."""

    workflow_id: str | None
    run_id: str | None
    activity_id: str


@dataclass(frozen=True)
class _Lease:
    task_id: int
    owner: str
    attempt: int
    run_id: str
    scheduled_event_id: int


def task_token(task_id: int, owner: str, attempt: int, run_id: str, scheduled_event_id: int) -> bytes:
    # The run and event too: SQLite hands a deleted task's row id to the next task.
    return orjson.dumps({"task": task_id, "owner": owner, "attempt": attempt, "run": run_id, "scheduled": scheduled_event_id})


def _from_token(token: bytes) -> _Lease:
    try:
        data = json.loads(token)
        return _Lease(int(data["task"]), str(data["owner"]), int(data["attempt"]), str(data["run"]), int(data["scheduled"]))
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(
            f"{token[:60]!r} is not a task token of this engine: pass activity.info().task_token as it is."
        ) from e


def _lease_by_id(conn: Any, workflow_id: str | None, run_id: str | None, activity_id: str) -> _Lease | str:
    if run_id is None:
        row = conn.execute(
            "SELECT run_id FROM executions WHERE workflow_id = ? ORDER BY start_time DESC, rowid DESC LIMIT 1", (workflow_id,)
        ).fetchone()
        if row is None:
            return f"no workflow with id {workflow_id!r}"
        run_id = row[0]
    elif workflow_id is not None:
        row = conn.execute("SELECT workflow_id FROM executions WHERE run_id = ?", (run_id,)).fetchone()
        if row is None or row[0] != workflow_id:
            return f"no run {run_id!r} of workflow {workflow_id!r}"
    for task_id, owner, attempt, scheduled, info in conn.execute(
        "SELECT id, lease_owner, attempt, scheduled_event_id, info FROM tasks WHERE run_id = ? AND kind = 'activity'", (run_id,)
    ):
        if json.loads(info).get("activityId") == activity_id:
            if owner is None:
                return f"activity {activity_id!r} of run {run_id} is scheduled but no worker has started it"
            return _Lease(task_id, owner, attempt, run_id, scheduled)
    return f"activity {activity_id!r} of run {run_id} is not running (it finished, or the id is wrong)"


def _held(tx: Tx, lease: _Lease) -> dict[str, Any] | None:
    """The attempt's task info while ``lease`` still holds it."""
    held = _held_activity(tx, lease.task_id, lease.owner, lease.attempt)
    if held is None or held[0] != lease.run_id or held[1] != lease.scheduled_event_id:
        return None
    return held[2]


def _heartbeat(tx: Tx, lease: _Lease, details: dict[str, Any] | None, now: datetime) -> bool | None:
    """None when the attempt is gone, else whether cancellation was requested."""
    if _held(tx, lease) is None:
        return None
    return heartbeat_activity(tx, lease.task_id, lease.owner, lease.attempt, details, now)


def _complete(tx: Tx, lease: _Lease, result: dict[str, Any], now: datetime) -> bool:
    if _held(tx, lease) is None:
        return False
    return complete_activity(tx, lease.task_id, lease.owner, lease.attempt, result, now)


def _fail(tx: Tx, lease: _Lease, failure: dict[str, Any], now: datetime) -> bool:
    if _held(tx, lease) is None:
        return False
    return fail_activity(tx, lease.task_id, lease.owner, lease.attempt, failure, now)


def _cancel(tx: Tx, lease: _Lease, failure: dict[str, Any], now: datetime) -> bool | None:
    """None when the attempt is gone; False when nobody asked to cancel it (as Temporal, the
    cancellation is refused then)."""
    info = _held(tx, lease)
    if info is None:
        return None
    if not info.get("cancelRequested"):
        return False
    return fail_activity(tx, lease.task_id, lease.owner, lease.attempt, failure, now, True)


class AsyncActivityHandle:
    """Completes, fails, heartbeats or cancels an activity that ended with
    ``activity.raise_complete_async()``, from anywhere that has a client."""

    def __init__(self, client: "Client", id_or_token: AsyncActivityIDReference | bytes) -> None:
        self._client = client
        self._id_or_token = id_or_token
        if isinstance(id_or_token, (bytes, bytearray)):
            _from_token(bytes(id_or_token))  # a bad token is an error here, not at first use

    async def _lease(self) -> _Lease:
        ref = self._id_or_token
        if isinstance(ref, (bytes, bytearray)):
            return _from_token(bytes(ref))
        found = await self._client.store.read(_lease_by_id, ref.workflow_id, ref.run_id, ref.activity_id)
        if isinstance(found, str):
            raise ActivityNotFoundError(f"Cannot reach the activity: {found}.")
        return found

    def _gone(self) -> ActivityNotFoundError:
        return ActivityNotFoundError(
            "The activity attempt is no longer running: it completed, failed, timed out (then it "
            "may be retried under a new token) or its workflow closed. Check its timeouts: an "
            "async activity needs a start_to_close_timeout long enough for its completer."
        )

    async def heartbeat(self, *details: Any) -> None:
        """Record a heartbeat (and progress ``details``); raises ``AsyncActivityCancelledError``
        when cancellation of the activity was requested."""
        lease = await self._lease()
        converter = self._client.data_converter
        encoded = await converter._encode_json(list(details), "heartbeat detail") if details else None
        cancel = await self._client.store.run(_heartbeat, lease, encoded, self._client.clock.now())
        if cancel is None:
            raise self._gone()
        if cancel:
            raise AsyncActivityCancelledError()

    async def complete(self, result: Any = None) -> None:
        """Complete the activity with ``result``."""
        lease = await self._lease()
        payload = await self._client.data_converter._encode_json([result], "the result of an async activity", numbered=False)
        if not await self._client.store.run(_complete, lease, payload, self._client.clock.now()):
            raise self._gone()

    async def fail(self, error: Exception, *, last_heartbeat_details: Sequence[Any] = ()) -> None:
        """Fail this attempt with ``error``; the activity's retry policy decides what follows."""
        lease = await self._lease()
        failure = await self._client.data_converter.encode_failure(error)
        if not await self._client.store.run(_fail, lease, failure, self._client.clock.now()):
            raise self._gone()

    async def report_cancellation(self, *details: Any) -> None:
        """Say the activity stopped because its cancellation was requested."""
        lease = await self._lease()
        failure = await self._client.data_converter.encode_failure(CancelledError("Cancelled", *details))
        done = await self._client.store.run(_cancel, lease, failure, self._client.clock.now())
        if done is None:
            raise self._gone()
        if done is False:
            raise ActivityNotFoundError(
                "Cannot report the activity cancelled: nobody requested its cancellation. Complete or fail it instead."
            )


def handle(
    client: "Client", *, workflow_id: str | None, run_id: str | None, activity_id: str | None, task_token: bytes | None
) -> AsyncActivityHandle:
    if task_token is not None:
        if workflow_id is not None or run_id is not None or activity_id is not None:
            raise ValueError("Give either task_token, or workflow_id, run_id and activity_id, not both.")
        return AsyncActivityHandle(client, task_token)
    if activity_id is None or (workflow_id is None and run_id is None):
        raise ValueError(
            "Name the activity: get_async_activity_handle(task_token=...) or "
            "get_async_activity_handle(workflow_id=..., run_id=..., activity_id=...)."
        )
    return AsyncActivityHandle(client, AsyncActivityIDReference(workflow_id, run_id, activity_id))
