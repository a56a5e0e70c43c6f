"""The seed's trip booking: car, hotel, flight; the flight fails; compensations run back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine import Worker, activity, workflow
from engine.common import RetryPolicy
from engine.errors import ActivityError, ApplicationError, WorkflowFailureError
from engine.saga import CompensationError, Saga
from engine.testing import WorkflowEnvironment

LOG: list[str] = []
NO_RETRY = RetryPolicy(maximum_attempts=1)


@activity.defn
async def reserve(kind: str) -> str:
    if kind == "flight":
        raise ApplicationError("no seats left", type="SoldOut", non_retryable=True)
    LOG.append(f"reserve {kind}")
    return f"{kind}-1"


@activity.defn
async def cancel(reservation: str) -> None:
    if reservation == "broken-1":
        raise ApplicationError("cannot cancel", non_retryable=True)
    LOG.append(f"cancel {reservation}")


@workflow.defn
class BookTrip:
    @workflow.run
    async def run(self, kinds: list[str], parallel: bool, keep_going: bool) -> None:
        saga = Saga(parallel_compensation=parallel, continue_with_error=keep_going)
        try:
            for kind in kinds:
                reservation = await workflow.execute_activity(
                    reserve, kind, start_to_close_timeout=timedelta(seconds=5), retry_policy=NO_RETRY
                )
                saga.add_compensation(cancel, reservation, retry_policy=NO_RETRY)
        except ActivityError:
            await saga.compensate()
            raise


async def _book(kinds: list[str], parallel: bool = False, keep_going: bool = False):  # type: ignore[no-untyped-def]
    LOG.clear()
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="trips", workflows=[BookTrip], activities=[reserve, cancel]):
        handle = await env.client.start_workflow(BookTrip.run, args=[kinds, parallel, keep_going], id="trip", task_queue="trips")
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        history = await handle.fetch_history()
    await env.shutdown()
    return info.value, history


async def test_compensations_run_in_reverse_and_are_marked_in_history() -> None:
    error, history = await _book(["car", "hotel", "flight"])
    assert LOG == ["reserve car", "reserve hotel", "cancel hotel-1", "cancel car-1"]
    assert isinstance(error.cause, ActivityError) and "no seats left" in str(error.cause.__cause__)
    summaries = [
        e.attributes.get("userMetadata", {}).get("summary")
        for e in history.events
        if e.event_type == "ActivityTaskScheduled"
    ]
    assert [s is not None for s in summaries] == [False, False, False, True, True]


async def test_parallel_compensation_schedules_all_at_once() -> None:
    _, history = await _book(["car", "hotel", "flight"], parallel=True)
    assert sorted(LOG[2:]) == ["cancel car-1", "cancel hotel-1"]
    types = [e.event_type for e in history.events]
    last_failed = types.index("ActivityTaskFailed")
    assert types[last_failed:].count("ActivityTaskScheduled") == 2
    first = types.index("ActivityTaskScheduled", last_failed)
    assert types[first + 1] == "ActivityTaskScheduled"  # one workflow task scheduled both


async def test_continue_with_error_tries_every_compensation() -> None:
    error, _ = await _book(["car", "broken", "hotel", "flight"], keep_going=True)
    assert LOG[-2:] == ["cancel hotel-1", "cancel car-1"]
    assert "compensation(s) failed" in str(error.cause)


def test_compensation_error_lists_failures() -> None:
    err = CompensationError([RuntimeError("a"), RuntimeError("b")])
    assert "2 compensation(s) failed: a; b" == str(err)


async def test_compensation_summaries_export_where_temporal_keeps_them() -> None:
    import json

    from temporalio.client import WorkflowHistory

    from engine.history import History

    _, history = await _book(["car", "hotel", "flight"])
    exported = json.loads(history.to_json())
    scheduled = [e for e in exported["events"] if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"]
    # On the event, as in Temporal's HistoryEvent.user_metadata, not inside its attributes.
    assert [("userMetadata" in e) for e in scheduled] == [False, False, False, True, True]
    assert all("userMetadata" not in e["activityTaskScheduledEventAttributes"] for e in scheduled)
    parsed = WorkflowHistory.from_json("trip", history.to_json())
    assert [e.HasField("user_metadata") for e in parsed.events if e.activity_task_scheduled_event_attributes.activity_id] == [False, False, False, True, True]
    back = History.from_json(history.workflow_id, history.to_json())
    # Zero-valued fields are left out of the export, as Temporal's are: compare exports.
    assert back.to_json() == history.to_json()
