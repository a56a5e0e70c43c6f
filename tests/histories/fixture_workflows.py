"""Workflows and activities whose real-Temporal histories are saved in this folder.

Written with plain ``temporalio`` imports: ``record_fixtures.py`` runs them on a real
``temporal server start-dev`` to produce the ``*.json`` histories, and the same classes are
what those histories replay against (``record_fixtures.py --verify-only``).

Changing anything a workflow does (commands, their order, ids, arguments) invalidates the
saved histories: re-record them. Activities may change freely (replay never runs them),
except for their names and the arguments the workflows pass.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from temporalio import activity, workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ApplicationErrorCategory,
    ChildWorkflowError,
    is_cancelled_exception,
)

SHORT = timedelta(seconds=10)
NO_RETRY = RetryPolicy(maximum_attempts=1)


# ---------------------------------------------------------------- activities


class FixtureActivities:
    """Activities as methods, so the recorder can see when the heartbeating one runs."""

    def __init__(self) -> None:
        # Set by slow_heartbeat after its first heartbeat: the recorder waits on it before
        # it cancels the workflow, so the cancel lands while the activity is running.
        self.heartbeating = asyncio.Event()
        self.cancelled_activities: list[str] = []
        self.attempts: dict[str, int] = {}
        self.task_tokens: dict[str, bytes] = {}

    @activity.defn
    async def greet(self, name: str) -> str:
        return f"Hello, {name}!"

    @activity.defn
    async def slow_heartbeat(self, label: str) -> str:
        # Heartbeats until cancelled. A heartbeat is how an activity learns of a cancel
        # request, so the worker's heartbeat throttle decides how fast it sees it.
        try:
            for i in range(600):
                activity.heartbeat(i)
                self.heartbeating.set()
                await asyncio.sleep(0.1)
            return f"{label}: finished without being cancelled"
        except asyncio.CancelledError:
            self.cancelled_activities.append(label)
            raise

    @activity.defn
    async def cleanup(self, reason: str) -> str:
        return f"cleaned up after {reason}"

    @activity.defn
    async def book(self, step: str) -> str:
        if step == "car":
            raise ApplicationError(
                "no cars left", {"step": step}, type="SoldOut", non_retryable=True
            )
        return f"{step}-booking-1"

    @activity.defn
    async def undo(self, booking: str) -> str:
        return f"undid {booking}"

    @activity.defn
    async def flaky(self, label: str) -> str:
        # Fails its first two attempts (counted per label): local retries, then a backoff.
        self.attempts[label] = self.attempts.get(label, 0) + 1
        if activity.info().attempt < 3:
            raise ApplicationError(f"{label} not yet", type="NotYet")
        return f"{label} after {activity.info().attempt} attempts"

    @activity.defn
    async def complete_later(self, label: str) -> str:
        # Hands its task token to the recorder, which completes or fails it from the client.
        self.task_tokens[label] = activity.info().task_token
        activity.raise_complete_async()


# ---------------------------------------------------------------- patched (versioning)


@workflow.defn
class PatchedWorkflow:
    """New code path behind ``patched``, plus a ``deprecate_patch`` of another change."""

    @workflow.run
    async def run(self, name: str) -> str:
        if workflow.patched("my-change"):
            result = await workflow.execute_activity_method(
                FixtureActivities.greet, f"{name} (new branch)", start_to_close_timeout=SHORT
            )
        else:  # the pre-change code; never taken when recording a fresh execution
            result = await workflow.execute_activity_method(
                FixtureActivities.cleanup, name, start_to_close_timeout=SHORT
            )
        # Asking again for the same patch id is memoised by the SDK: no second marker.
        assert workflow.patched("my-change")
        # The old branch of "other-change" is gone everywhere; the id is kept so histories
        # that recorded it still replay.
        workflow.deprecate_patch("other-change")
        await workflow.sleep(0.1)
        return result


# ---------------------------------------------------------------- child workflows


@workflow.defn
class GreetChild:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity_method(
            FixtureActivities.greet, name, start_to_close_timeout=SHORT
        )


@workflow.defn
class FailingChild:
    @workflow.run
    async def run(self, reason: str) -> str:
        # An ApplicationError raised by workflow code fails the workflow (no retry policy).
        raise ApplicationError(f"child refused: {reason}", type="ChildRefused")


@workflow.defn
class ParentWorkflow:
    @workflow.run
    async def run(self, name: str) -> dict[str, str]:
        wid = workflow.info().workflow_id
        ok = await workflow.execute_child_workflow(
            GreetChild.run, name, id=f"{wid}-greet-child"
        )
        try:
            await workflow.execute_child_workflow(
                FailingChild.run, "bad input", id=f"{wid}-failing-child"
            )
            failed = "child unexpectedly succeeded"
        except ChildWorkflowError as err:
            failed = f"{type(err.cause).__name__}: {err.cause}"
        return {"ok_child": ok, "failing_child": failed}


# ---------------------------------------------------------------- continue-as-new


@workflow.defn
class ContinueAsNewWorkflow:
    """Runs 3 times: iteration 0 and 1 continue as new, iteration 2 completes."""

    @workflow.run
    async def run(self, iteration: int) -> str:
        await workflow.sleep(0.1)
        if iteration < 2:
            workflow.continue_as_new(iteration + 1)
        return f"done after {iteration} continue-as-new"


# ---------------------------------------------------------------- cancellation


@workflow.defn
class CancelWorkflow:
    """Cancelled by the client while it awaits a heartbeating activity; cleans up, re-raises.

    ``mode``:

    - ``"try_cancel"``: the default ``TRY_CANCEL``; the workflow's await fails as soon as it
      has asked to cancel the activity (``ActivityTaskCanceled`` may or may not follow).
    - ``"wait_cancellation_completed"``: the await fails only once the activity has
      reported its cancellation, so ``ActivityTaskCanceled`` is always in the history.
    - ``"asyncio_only"``: like ``try_cancel`` but catching only ``asyncio.CancelledError``.
      In temporalio the await of a cancelled activity raises ``ActivityError`` (cause
      ``temporalio.exceptions.CancelledError``), NOT ``asyncio.CancelledError``, so this
      clause never runs and no cleanup activity is scheduled: the workflow is still
      recorded as cancelled (the SDK turns any cancel-like error into
      ``CancelWorkflowExecution`` once a cancel was requested).

    The cleanup activity's argument names the exception the workflow caught, so the
    history itself shows it.
    """

    @workflow.run
    async def run(self, mode: str) -> str:
        cancellation_type = (
            workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
            if mode == "wait_cancellation_completed"
            else workflow.ActivityCancellationType.TRY_CANCEL
        )
        run_slow = workflow.execute_activity_method(
            FixtureActivities.slow_heartbeat,
            "long job",
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=2),
            cancellation_type=cancellation_type,
        )
        if mode == "asyncio_only":
            try:
                return await run_slow
            except asyncio.CancelledError:  # never reached: see the docstring
                await workflow.execute_activity_method(
                    FixtureActivities.cleanup, "asyncio.CancelledError",
                    start_to_close_timeout=SHORT,
                )
                raise
        try:
            return await run_slow
        except BaseException as err:
            if not is_cancelled_exception(err):
                raise
            cause = getattr(err, "cause", None)
            caught = type(err).__name__ + (f" (cause {type(cause).__name__})" if cause else "")
            await workflow.execute_activity_method(
                FixtureActivities.cleanup, f"cancellation: caught {caught}",
                start_to_close_timeout=SHORT,
            )
            raise


# ---------------------------------------------------------------- signals, query, update


@workflow.defn
class SignalsQueriesUpdateWorkflow:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.discount = 0
        self.done = False

    @workflow.run
    async def run(self, customer: str) -> dict:
        await workflow.wait_condition(lambda: self.done)
        return {"customer": customer, "items": self.items, "discount": self.discount}

    @workflow.signal
    def add_item(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def item_count(self) -> int:
        return len(self.items)

    @workflow.update
    async def set_discount(self, percent: int) -> str:
        # Runs an activity so the update's events interleave with the activity's.
        greeting = await workflow.execute_activity_method(
            FixtureActivities.greet, f"{percent}% off", start_to_close_timeout=SHORT
        )
        self.discount = percent
        return greeting

    @set_discount.validator
    def validate_discount(self, percent: int) -> None:
        if not 0 <= percent <= 50:
            raise ValueError(f"discount {percent}% is not between 0 and 50")


# ---------------------------------------------------------------- side effects


@workflow.defn
class SideEffectsWorkflow:
    @workflow.run
    async def run(self) -> dict:
        before = workflow.now()
        rnd = workflow.random().random()
        dice = workflow.random().randint(1, 6)
        uid = str(workflow.uuid4())
        await workflow.sleep(0.2)
        after = workflow.now()
        return {
            "now_before_timer": before.isoformat(),
            "now_after_timer": after.isoformat(),
            "random": rnd,
            "dice": dice,
            "uuid4": uid,
        }


# ---------------------------------------------------------------- saga


@workflow.defn
class SagaWorkflow:
    """Books hotel, flight, car; the car fails non-retryably, so the bookings made so far
    are undone in reverse order, then the workflow fails."""

    @workflow.run
    async def run(self, trip: str) -> list[str]:
        compensations: list[str] = []
        try:
            for step in ["hotel", "flight", "car"]:
                booking = await workflow.execute_activity_method(
                    FixtureActivities.book, step, start_to_close_timeout=SHORT,
                    retry_policy=RetryPolicy(maximum_attempts=3),
                )
                compensations.append(booking)
        except ActivityError as err:
            undone = []
            for booking in reversed(compensations):
                undone.append(
                    await workflow.execute_activity_method(
                        FixtureActivities.undo, booking, start_to_close_timeout=SHORT,
                        retry_policy=NO_RETRY,
                    )
                )
            raise ApplicationError(
                f"trip {trip} failed, compensated: {undone}", undone, type="SagaFailed",
                non_retryable=True,
            ) from err
        return compensations


# ---------------------------------------------------------------- wait_condition, search attributes


@workflow.defn
class WaitConditionTrueWorkflow:
    """``wait_condition`` with a timeout on a condition that already holds: no timer."""

    def __init__(self) -> None:
        self.ready = True

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.wait_condition(lambda: self.ready, timeout=timedelta(seconds=30))
        await workflow.sleep(timedelta(milliseconds=100))
        return f"ready: {name}"


KEYWORD = SearchAttributeKey.for_keyword("CustomKeywordField")
TEXT = SearchAttributeKey.for_text("CustomTextField")
INT = SearchAttributeKey.for_int("CustomIntField")
DOUBLE = SearchAttributeKey.for_float("CustomDoubleField")
BOOL = SearchAttributeKey.for_bool("CustomBoolField")
DATETIME = SearchAttributeKey.for_datetime("CustomDatetimeField")
KEYWORD_LIST = SearchAttributeKey.for_keyword_list("CustomKeywordListField")
START_ATTRIBUTES = TypedSearchAttributes([
    SearchAttributePair(KEYWORD, "started"),
    SearchAttributePair(TEXT, "some words"),
    SearchAttributePair(INT, 7),
    SearchAttributePair(DOUBLE, 1.5),
    SearchAttributePair(BOOL, True),
    SearchAttributePair(DATETIME, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)),
    SearchAttributePair(KEYWORD_LIST, ["a", "b"]),
])


@workflow.defn
class SearchAttributesWorkflow:
    """Started with search attributes and a memo; upserts both, patches, continues once."""

    @workflow.run
    async def run(self, round: int) -> dict:
        seen = {
            "keyword": workflow.info().typed_search_attributes.get(KEYWORD),
            "int": workflow.info().typed_search_attributes.get(INT),
            "memo": dict(workflow.memo()),
        }
        if round == 0:
            workflow.upsert_search_attributes([INT.value_set(8), KEYWORD_LIST.value_set(["c"]), TEXT.value_unset()])
            workflow.upsert_memo({"note": "changed", "gone": None})
            if workflow.patched("sa-change"):
                await workflow.sleep(timedelta(milliseconds=100))
            workflow.continue_as_new(1)
        return seen


@workflow.defn
class CronWorkflow:
    """Started with a cron schedule: each run returns what it knows of the schedule."""

    @workflow.run
    async def run(self, name: str) -> str:
        return f"{name}: {workflow.info().cron_schedule}"


@workflow.defn
class CartWorkflow:
    """Started by update-with-start: items arrive by update, a signal checks out."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.done = False

    @workflow.run
    async def run(self, owner: str) -> list[str]:
        await workflow.wait_condition(lambda: self.done)
        return self.items

    @workflow.update
    def add_item(self, item: str) -> int:
        self.items.append(item)
        return len(self.items)

    @workflow.signal
    def checkout(self) -> None:
        self.done = True


# ---------------------------------------------------------------- local activities


@workflow.defn
class LocalActivitiesWorkflow:
    """A local activity's result, one retried locally then after a backoff timer (its
    backoff is over local_retry_threshold), and one that fails for good: markers of each."""

    @workflow.run
    async def run(self, name: str) -> list[str]:
        out = [await workflow.execute_local_activity_method(
            FixtureActivities.greet, name, start_to_close_timeout=SHORT)]
        out.append(await workflow.execute_local_activity(
            "flaky", "quick", start_to_close_timeout=SHORT,
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0)))
        out.append(await workflow.execute_local_activity(
            "flaky", "slow", start_to_close_timeout=SHORT,
            local_retry_threshold=timedelta(seconds=1),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=1.0)))
        try:
            await workflow.execute_local_activity_method(
                FixtureActivities.book, "car", start_to_close_timeout=SHORT)
        except (ActivityError, ApplicationError) as err:
            out.append(f"book failed: {type(err).__name__}: {err.cause}")
        return out


# ---------------------------------------------------------------- asynchronous completion


@workflow.defn
class AsyncCompletionWorkflow:
    """Activities that end with raise_complete_async, completed or failed from a client."""

    @workflow.run
    async def run(self) -> list[str]:
        out = []
        for label in ("by-token", "by-id"):
            out.append(await workflow.execute_activity_method(
                FixtureActivities.complete_later, label, start_to_close_timeout=timedelta(seconds=30),
                activity_id=label))
        try:
            await workflow.execute_activity_method(
                FixtureActivities.complete_later, "failed", start_to_close_timeout=timedelta(seconds=30),
                retry_policy=NO_RETRY, activity_id="failed")
        except ActivityError as err:
            out.append(f"failed: {err.cause}")
        return out

@workflow.defn
class BenignFailureWorkflow:
    """Fails with an ApplicationError of category BENIGN (an expected failure)."""

    @workflow.run
    async def run(self) -> None:
        raise ApplicationError("not ready yet", type="NotReady", category=ApplicationErrorCategory.BENIGN)

# ---------------------------------------------------------------- a running local activity, cancelled


@activity.defn
async def la_quick() -> str:
    return "quick"


@activity.defn
async def la_slow() -> str:
    await asyncio.sleep(20)  # cancelled long before
    return "slow"


@workflow.defn
class LocalCancelWorkflow:
    """Two local activities; once the quick one is done the slow one, still running, is
    cancelled: with TRY_CANCEL its marker is written at once, with WAIT_CANCELLATION_COMPLETED
    once it has stopped."""

    @workflow.run
    async def run(self, wait: bool) -> list:
        kind = (workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED if wait
                else workflow.ActivityCancellationType.TRY_CANCEL)
        quick = workflow.start_local_activity(la_quick, start_to_close_timeout=timedelta(seconds=30))
        slow = workflow.start_local_activity(la_slow, start_to_close_timeout=timedelta(seconds=30), cancellation_type=kind)
        await workflow.wait([quick, slow], return_when=asyncio.FIRST_COMPLETED)
        slow.cancel()
        try:
            await slow
            return ["not cancelled"]
        except ActivityError as e:
            return [quick.result(), str(e), e.activity_type, e.activity_id, int(e.retry_state or 0),
                    type(e.cause).__name__, str(e.cause)]

# ---------------------------------------------------------------- a schedule's runs


@workflow.defn
class ScheduledWorkflow:
    """Started by a schedule every 3 s: its runs carry the schedule's search attributes and,
    from the second on, the last run's result."""

    @workflow.run
    async def run(self, n: int) -> str:
        await workflow.sleep(1)
        return f"ran {n}"


ALL_WORKFLOWS = [
    ScheduledWorkflow,
    LocalCancelWorkflow,
    PatchedWorkflow,
    GreetChild,
    FailingChild,
    ParentWorkflow,
    ContinueAsNewWorkflow,
    CancelWorkflow,
    SignalsQueriesUpdateWorkflow,
    SideEffectsWorkflow,
    SagaWorkflow,
    WaitConditionTrueWorkflow,
    SearchAttributesWorkflow,
    CronWorkflow,
    CartWorkflow,
    LocalActivitiesWorkflow,
    AsyncCompletionWorkflow,
    BenignFailureWorkflow,
]


def all_activities(acts: FixtureActivities) -> list:
    return [acts.greet, acts.slow_heartbeat, acts.cleanup, acts.book, acts.undo, acts.flaky, acts.complete_later, la_quick, la_slow]
