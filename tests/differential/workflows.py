"""The differential suite's workflows and activities, written once with temporalio imports.

The same file runs on a real Temporal dev server with the real temporalio SDK and on our
engine with the temporalio switch on (``engine.temporalio_compat.install()``), so nothing
here may import ``engine``. Durations are short because the dev server runs in real time.
Each workflow says what it covers; ``drivers.py`` drives each one the same way on both sides.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    TimeoutError,
)

SHORT = timedelta(seconds=10)
FAST = timedelta(milliseconds=100)
NO_RETRY = RetryPolicy(maximum_attempts=1)
QUICK_RETRY = RetryPolicy(initial_interval=FAST, backoff_coefficient=2.0, maximum_interval=timedelta(seconds=1), maximum_attempts=5)
NOBODY_POLLS = "differential-nobody-polls"  # a task queue without workers: its activities never start

COLOUR = SearchAttributeKey.for_keyword("CustomKeywordField")
SIZE = SearchAttributeKey.for_int("CustomIntField")


def describe(error: BaseException | None) -> dict[str, Any] | None:
    """An exception and its causes as plain data, to compare the two sides' failures."""
    if error is None:
        return None
    out: dict[str, Any] = {"class": type(error).__name__, "message": getattr(error, "message", str(error))}
    if isinstance(error, ApplicationError):
        out.update(type=error.type, non_retryable=error.non_retryable, details=list(error.details))
    if isinstance(error, TimeoutError):
        out.update(timeout_type=error.type.name if error.type is not None else None)
    if isinstance(error, ActivityError):
        out.update(activity_type=error.activity_type, activity_id=error.activity_id, retry_state=_name(error.retry_state))
    if isinstance(error, ChildWorkflowError):
        out.update(workflow_type=error.workflow_type, workflow_id=error.workflow_id, retry_state=_name(error.retry_state))
    if isinstance(error, FailureError) or error.__cause__ is not None:
        out["cause"] = describe(error.__cause__)
    return out


def _name(value: Any) -> Any:
    return getattr(value, "name", value)


# ---------------------------------------------------------------- activities


@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@activity.defn
async def flaky(name: str) -> str:
    attempt = activity.info().attempt
    if attempt < 3:
        raise RuntimeError(f"flaky failure on attempt {attempt}")
    return f"{name} succeeded on attempt {attempt}"


@activity.defn
async def always_fails(kind: str) -> str:
    raise ApplicationError(f"{kind} on attempt {activity.info().attempt}", {"attempt": activity.info().attempt}, type=kind)


@activity.defn
async def refuse(reason: str) -> str:
    raise ApplicationError(f"refused: {reason}", reason, type="Refused", non_retryable=True)


@activity.defn
async def nap(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds}s"


@activity.defn
async def heartbeat_once_then_stall(seconds: float) -> str:
    activity.heartbeat("alive")
    await asyncio.sleep(seconds)
    return "stalled"


@activity.defn
async def resume_from_heartbeat(steps: int) -> list[Any]:
    info = activity.info()
    done = list(info.heartbeat_details[0]) if info.heartbeat_details else []
    for step in range(len(done), steps):
        done.append(f"step {step} on attempt {info.attempt}")
        activity.heartbeat(done)
        if info.attempt == 1 and step == 1:
            raise RuntimeError("lost the connection after step 1")
    return done


@activity.defn
async def wait_for_cancel(label: str) -> str:
    # Cancellation reaches an activity through its heartbeats: it heartbeats until told.
    for _ in range(300):
        activity.heartbeat(label)
        await asyncio.sleep(0.05)
    return f"{label} was never cancelled"


@activity.defn
async def book(item: str) -> str:
    if item == "flight":
        raise ApplicationError("no seats left", type="SoldOut", non_retryable=True)
    return f"booked {item}"


@activity.defn
async def undo(item: str) -> str:
    return f"cancelled {item}"


ACTIVITIES = [greet, flaky, always_fails, refuse, nap, heartbeat_once_then_stall, resume_from_heartbeat, wait_for_cancel, book, undo]


# ---------------------------------------------------------------- activities: retries, timeouts, heartbeats


@workflow.defn
class ActivityRetries:
    """Retries to success, retries exhausted, a non-retryable error type, a non-retryable error."""

    @workflow.run
    async def run(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "flaky": await workflow.execute_activity(flaky, "report", start_to_close_timeout=SHORT, retry_policy=QUICK_RETRY)
        }
        for label, kind, policy in (
            ("exhausted", "Busy", RetryPolicy(initial_interval=FAST, maximum_attempts=2)),
            ("type_not_retried", "Fatal", RetryPolicy(initial_interval=FAST, non_retryable_error_types=["Fatal"])),
        ):
            try:
                await workflow.execute_activity(always_fails, kind, start_to_close_timeout=SHORT, retry_policy=policy)
            except ActivityError as err:
                out[label] = describe(err)
        try:
            await workflow.execute_activity(refuse, "no budget", start_to_close_timeout=SHORT)
        except ActivityError as err:
            out["non_retryable"] = describe(err)
        return out


@workflow.defn
class ActivityTimeouts:
    """Each activity timeout: start-to-close, schedule-to-close, schedule-to-start, heartbeat."""

    @workflow.run
    async def run(self) -> dict[str, Any]:
        attempts: dict[str, Any] = {
            "start_to_close": lambda: workflow.execute_activity(
                nap, 3.0, start_to_close_timeout=timedelta(milliseconds=300), retry_policy=NO_RETRY),
            "schedule_to_close": lambda: workflow.execute_activity(
                nap, 3.0, schedule_to_close_timeout=timedelta(milliseconds=500), retry_policy=QUICK_RETRY),
            "schedule_to_start": lambda: workflow.execute_activity(
                greet, "nobody", task_queue=NOBODY_POLLS, schedule_to_start_timeout=timedelta(milliseconds=300),
                start_to_close_timeout=SHORT, retry_policy=NO_RETRY),
            "heartbeat": lambda: workflow.execute_activity(
                heartbeat_once_then_stall, 3.0, start_to_close_timeout=SHORT,
                heartbeat_timeout=timedelta(milliseconds=500), retry_policy=NO_RETRY),
        }
        out: dict[str, Any] = {}
        for label, attempt in attempts.items():
            try:
                out[label] = await attempt()
            except ActivityError as err:
                out[label] = describe(err)
        return out


@workflow.defn
class Heartbeats:
    """An attempt that heartbeats progress and fails; the retry resumes from the details."""

    @workflow.run
    async def run(self, steps: int) -> list[Any]:
        return await workflow.execute_activity(
            resume_from_heartbeat, steps, start_to_close_timeout=SHORT, heartbeat_timeout=timedelta(seconds=5),
            retry_policy=QUICK_RETRY,
        )


# ---------------------------------------------------------------- timers and conditions


@workflow.defn
class Timers:
    """workflow.sleep, asyncio.sleep, and two timers at once that fire in the order of their durations."""

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.sleep(timedelta(milliseconds=200))
        await asyncio.sleep(0.1)
        fired: list[str] = []

        async def timer(label: str, seconds: float) -> None:
            await workflow.sleep(seconds)
            fired.append(label)

        # The dev server fires timers on a coarse tick (about 1 s here): far apart, so the order is fixed.
        await asyncio.gather(timer("long", 2.0), timer("short", 0.1))
        return fired


@workflow.defn
class WaitConditions:
    """wait_condition without a timeout (a signal releases it), with one that expires, and with one
    on a condition that already holds (temporalio starts no timer for it)."""

    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> list[str]:
        out = []
        await workflow.wait_condition(lambda: self.go)
        out.append("released by signal")
        try:
            await workflow.wait_condition(lambda: False, timeout=timedelta(milliseconds=300))
        except asyncio.TimeoutError:
            out.append("timed out")
        await workflow.wait_condition(lambda: self.go, timeout=timedelta(seconds=30))
        out.append("already true")
        return out

    @workflow.signal
    def release(self) -> None:
        self.go = True


# ---------------------------------------------------------------- signals, queries, updates


@workflow.defn
class SignalsAndQueries:
    """Signals with arguments, a query answered while running and after the run closed."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.closed = False

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: self.closed)
        greeting = await workflow.execute_activity(greet, ", ".join(self.items), start_to_close_timeout=SHORT)
        return [*self.items, greeting]

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal(name="close-list")
    def close(self) -> None:
        self.closed = True

    @workflow.query
    def count(self) -> int:
        return len(self.items)

    @workflow.query(name="items-so-far")
    def so_far(self) -> list[str]:
        return list(self.items)


@workflow.defn
class Updates:
    """An update with a validator: accepted, rejected by the validator, failed by its handler."""

    def __init__(self) -> None:
        self.total = 0
        self.done = False

    @workflow.run
    async def run(self, start: int) -> int:
        self.total = start
        await workflow.wait_condition(lambda: self.done and workflow.all_handlers_finished())
        return self.total

    @workflow.update
    async def add(self, amount: int) -> int:
        if amount == 13:
            raise ApplicationError("unlucky amount", amount, type="Unlucky")
        await workflow.execute_activity(greet, str(amount), start_to_close_timeout=SHORT)
        self.total += amount
        return self.total

    @add.validator
    def check_add(self, amount: int) -> None:
        if amount < 0:
            raise ValueError(f"negative amount {amount}")

    @workflow.update(name="finish")
    def finish(self) -> str:
        self.done = True
        return "finishing"


# ---------------------------------------------------------------- children


@workflow.defn
class Child:
    """A child that greets, fails, or waits for a signal (and can be cancelled while waiting)."""

    def __init__(self) -> None:
        self.released = False

    @workflow.run
    async def run(self, mode: str) -> str:
        if mode == "fail":
            raise ApplicationError("child refused", "child detail", type="ChildRefused", non_retryable=True)
        if mode == "wait":
            await workflow.wait_condition(lambda: self.released)
            return "released"
        return await workflow.execute_activity(greet, mode, start_to_close_timeout=SHORT)

    @workflow.signal
    def release(self) -> None:
        self.released = True


@workflow.defn
class Children:
    """A child's result, a failed child, a signalled child, and a child whose id comes from uuid4."""

    @workflow.run
    async def run(self) -> list[Any]:
        prefix = workflow.info().workflow_id
        out: list[Any] = [await workflow.execute_child_workflow(Child.run, "Grace", id=f"{prefix}-greet")]
        try:
            await workflow.execute_child_workflow(Child.run, "fail", id=f"{prefix}-fail")
        except ChildWorkflowError as err:
            out.append(describe(err))
        waiting = await workflow.start_child_workflow(Child.run, "wait", id=f"{prefix}-wait")
        await waiting.signal(Child.release)
        out.append(await waiting)
        out.append(await workflow.execute_child_workflow(Child.run, "anonymous"))
        return out


@workflow.defn
class ParentClosePolicies:
    """Three waiting children, one per parent-close policy; the parent returns at once."""

    @workflow.run
    async def run(self) -> list[str]:
        prefix = workflow.info().workflow_id
        started = []
        for policy in (workflow.ParentClosePolicy.TERMINATE, workflow.ParentClosePolicy.ABANDON,
                       workflow.ParentClosePolicy.REQUEST_CANCEL):
            child = await workflow.start_child_workflow(
                Child.run, "wait", id=f"{prefix}-{policy.name.lower()}", parent_close_policy=policy)
            started.append(child.id)
        return started


# ---------------------------------------------------------------- continue-as-new


@workflow.defn
class ContinueAsNew:
    """Three runs linked by continue-as-new, each with an activity."""

    @workflow.run
    async def run(self, remaining: int) -> str:
        greeting = await workflow.execute_activity(greet, str(remaining), start_to_close_timeout=SHORT)
        if remaining > 1:
            workflow.continue_as_new(remaining - 1)
        return greeting


@workflow.defn
class ResetAfterSignal:
    """Waits for a name, then greets it with an activity. The driver resets it to its first
    workflow task: the new run gets the signal again (re-applied) and greets anew."""

    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: bool(self.names))
        return await workflow.execute_activity(greet, self.names[0], start_to_close_timeout=SHORT)

    @workflow.signal
    def name(self, value: str) -> None:
        self.names.append(value)


# ---------------------------------------------------------------- cancellation and termination


@workflow.defn
class CancelInside:
    """The workflow cancels an activity (try-cancel, then wait-cancellation-completed), a timer and a child."""

    @workflow.run
    async def run(self) -> list[Any]:
        out: list[Any] = []
        for cancellation_type in (workflow.ActivityCancellationType.TRY_CANCEL,
                                  workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED):
            handle = workflow.start_activity(
                wait_for_cancel, cancellation_type.name, start_to_close_timeout=SHORT,
                heartbeat_timeout=timedelta(seconds=1), cancellation_type=cancellation_type)
            await workflow.sleep(timedelta(milliseconds=500))
            handle.cancel()
            try:
                out.append(await handle)
            except ActivityError as err:
                out.append(describe(err))
        timer = asyncio.ensure_future(workflow.sleep(timedelta(seconds=30)))
        await workflow.sleep(timedelta(milliseconds=100))
        timer.cancel()
        try:
            await timer
        except asyncio.CancelledError:
            out.append("timer cancelled")
        child = await workflow.start_child_workflow(Child.run, "wait", id=f"{workflow.info().workflow_id}-child")
        await workflow.sleep(timedelta(milliseconds=100))
        child.cancel()
        try:
            out.append(await child)
        except ChildWorkflowError as err:
            out.append(describe(err))
        return out


@workflow.defn
class CancelledByClient:
    """The client cancels the run while it waits on an activity; the workflow cleans up and is cancelled."""

    @workflow.run
    async def run(self) -> str:
        try:
            return await workflow.execute_activity(
                wait_for_cancel, "cancel me", start_to_close_timeout=SHORT, heartbeat_timeout=timedelta(seconds=1))
        except ActivityError as err:
            if not isinstance(err.cause, CancelledError):
                raise
            await workflow.execute_activity(greet, "cleanup", start_to_close_timeout=SHORT)
            raise


@workflow.defn
class WaitsLong:
    """Sleeps for a minute: the client terminates it, or its execution timeout ends it."""

    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(minutes=1))
        return "woke up"


# ---------------------------------------------------------------- versioning, search attributes, memo


@workflow.defn
class Patches:
    """patched (a marker, and TemporalChangeVersion upserted) and deprecate_patch."""

    @workflow.run
    async def run(self, name: str) -> list[str]:
        out = []
        if workflow.patched("polite"):
            name = f"dear {name}"
        out.append(await workflow.execute_activity(greet, name, start_to_close_timeout=SHORT))
        workflow.deprecate_patch("old-change")
        if workflow.patched("polite"):
            out.append("still patched")
        return out


@workflow.defn
class SearchAttributesAndMemo:
    """Search attributes and a memo given at start, upserted, unset, and read back."""

    @workflow.run
    async def run(self) -> dict[str, Any]:
        before = {"colour": workflow.info().typed_search_attributes.get(COLOUR), "memo": dict(workflow.memo())}
        workflow.upsert_search_attributes([COLOUR.value_set("blue"), SIZE.value_set(3)])
        workflow.upsert_memo({"note": "painted", "draft": None})
        await workflow.sleep(timedelta(milliseconds=100))
        workflow.upsert_search_attributes([SIZE.value_unset()])
        attributes = workflow.info().typed_search_attributes
        after = {"colour": attributes.get(COLOUR), "size": attributes.get(SIZE), "memo": dict(workflow.memo())}
        return {"before": before, "after": after}


# ---------------------------------------------------------------- saga


@workflow.defn
class Saga:
    """Books three things; the third fails, so the two bookings are undone in parallel."""

    @workflow.run
    async def run(self) -> dict[str, Any]:
        undo_steps: list[str] = []
        try:
            for item in ("car", "hotel", "flight"):
                await workflow.execute_activity(book, item, start_to_close_timeout=SHORT)
                undo_steps.append(item)
        except ActivityError as err:
            undone = await asyncio.gather(
                *(workflow.execute_activity(undo, item, start_to_close_timeout=SHORT) for item in reversed(undo_steps)))
            return {"failed": describe(err), "undone": list(undone)}
        return {"failed": None, "undone": []}


# ---------------------------------------------------------------- workflow failures


@workflow.defn
class FailsWithApplicationError:
    @workflow.run
    async def run(self) -> str:
        raise ApplicationError("invalid order", {"order": 7}, type="InvalidOrder", non_retryable=True)


@workflow.defn
class FailsFromActivity:
    """An activity's non-retryable failure, not caught, fails the workflow."""

    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(refuse, "closed account", start_to_close_timeout=SHORT)


@workflow.defn(failure_exception_types=[ValueError])
class FailsWithDeclaredException:
    """A ValueError listed in failure_exception_types fails the workflow (not only the task)."""

    @workflow.run
    async def run(self) -> str:
        raise ValueError("bad value")


@workflow.defn
class FailsTask:
    """A plain exception fails the workflow task, which is retried: the run stays open."""

    @workflow.run
    async def run(self) -> str:
        raise RuntimeError("bug in the workflow")


@workflow.defn
class ChildFails:
    """An uncaught child failure fails the parent."""

    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_child_workflow(Child.run, "fail", id=f"{workflow.info().workflow_id}-child")


# ---------------------------------------------------------------- side effects


@workflow.defn
class SideEffects:
    """workflow.random, uuid4 and now; an activity id made from uuid4 (the replay checks ids)."""

    @workflow.run
    async def run(self) -> dict[str, Any]:
        start = workflow.now()
        number = workflow.random().randint(0, 1_000_000)
        token = str(workflow.uuid4())
        greeting = await workflow.execute_activity(
            greet, "dice", start_to_close_timeout=SHORT, activity_id=f"greet-{workflow.uuid4()}")
        return {"number": number, "uuid": token, "greeting": greeting, "now_moved": workflow.now() >= start,
                "now_type": type(start).__name__, "now_tz": str(start.tzinfo)}


WORKFLOWS = [
    ActivityRetries, ActivityTimeouts, Heartbeats, Timers, WaitConditions, SignalsAndQueries, Updates, Child, Children,
    ParentClosePolicies, ContinueAsNew, CancelInside, CancelledByClient, WaitsLong, Patches, SearchAttributesAndMemo,
    Saga, FailsWithApplicationError, FailsFromActivity, FailsWithDeclaredException, FailsTask, ChildFails, SideEffects,
    ResetAfterSignal,
]
