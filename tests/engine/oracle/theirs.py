"""Oracle workflows for temporalio: the same code as ``ours.py`` with temporalio imports.

temporalio's ``Replayer`` replays histories recorded by our engine against these classes.
Everything between the ``SHARED CODE`` marker and the ``NEGATIVE CONTROLS`` marker must
stay byte-for-byte identical to ``ours.py``; the variants after it exist only here.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError

# ---- SHARED CODE: identical in ours.py and theirs.py below this line ----

SHORT = timedelta(seconds=30)

# Labels of wait_for_cancel calls that have started (lets a test wait for the activity).
STARTED_WAITS: list[str] = []


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
async def refuse(reason: str) -> str:
    raise ApplicationError(f"refused: {reason}", type="Refused", non_retryable=True)


@activity.defn
async def wait_for_cancel(label: str) -> str:
    # Heartbeats until the engine reports the cancel (bounded, so a test never hangs).
    STARTED_WAITS.append(label)
    for _ in range(400):
        activity.heartbeat(label)
        if activity.is_cancelled():
            raise asyncio.CancelledError()
        await asyncio.sleep(0.02)
    return f"{label} was never cancelled"


@workflow.defn
class OneActivity:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=SHORT)


@workflow.defn
class ParallelActivities:
    @workflow.run
    async def run(self, names: list[str]) -> list[str]:
        results = await asyncio.gather(
            *(workflow.execute_activity(greet, n, start_to_close_timeout=SHORT) for n in names)
        )
        return list(results)


@workflow.defn
class RetriedActivity:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            flaky,
            name,
            start_to_close_timeout=SHORT,
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=5),
        )


@workflow.defn
class Timers:
    @workflow.run
    async def run(self, seconds: int) -> dict[str, Any]:
        start = workflow.now()
        await workflow.sleep(timedelta(seconds=seconds))
        middle = workflow.now()
        await asyncio.sleep(seconds * 2)
        end = workflow.now()
        return {
            "first": (middle - start).total_seconds(),
            "second": (end - middle).total_seconds(),
        }


@workflow.defn
class FailingActivity:
    @workflow.run
    async def run(self, reason: str) -> str:
        # The ActivityError is not caught: it fails the workflow.
        return await workflow.execute_activity(refuse, reason, start_to_close_timeout=SHORT)


@workflow.defn
class DeterministicValues:
    @workflow.run
    async def run(self, label: str) -> dict[str, Any]:
        first_now = workflow.now()
        first_random = workflow.random().randint(0, 1_000_000_000)
        first_uuid = str(workflow.uuid4())
        greeting = await workflow.execute_activity(greet, label, start_to_close_timeout=SHORT)
        return {
            "greeting": greeting,
            "now": [first_now.isoformat(), workflow.now().isoformat()],
            "random": [first_random, workflow.random().randint(0, 1_000_000_000)],
            "uuid": [first_uuid, str(workflow.uuid4())],
        }


@workflow.defn
class ConditionTimeout:
    def __init__(self) -> None:
        self.released = False

    @workflow.run
    async def run(self, seconds: int) -> str:
        try:
            await workflow.wait_condition(lambda: self.released, timeout=timedelta(seconds=seconds))
        except asyncio.TimeoutError:
            return f"timed out after {seconds}s"
        return "released"


@workflow.defn
class ConditionAlreadyTrue:
    """wait_condition with a timeout on a condition that holds: temporalio starts no timer."""

    def __init__(self) -> None:
        self.ready = True

    @workflow.run
    async def run(self, seconds: int) -> str:
        await workflow.wait_condition(lambda: self.ready, timeout=timedelta(seconds=seconds))
        await workflow.sleep(timedelta(seconds=1))
        return "ready"


@workflow.defn
class StartThenAwait:
    @workflow.run
    async def run(self, name: str) -> list[str]:
        handle = workflow.start_activity(greet, name, start_to_close_timeout=SHORT)
        await workflow.sleep(timedelta(seconds=5))
        late = await handle
        early = await workflow.execute_activity(greet, "again", start_to_close_timeout=SHORT)
        return [late, early]


@workflow.defn
class CancelActivity:
    @workflow.run
    async def run(self, label: str) -> str:
        handle = workflow.start_activity(
            wait_for_cancel,
            label,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=5),
        )
        await workflow.sleep(timedelta(seconds=1))
        handle.cancel()
        try:
            await handle
        except (ActivityError, asyncio.CancelledError):
            return "cancelled"
        return "not cancelled"


@workflow.defn
class RandomActivityId:
    @workflow.run
    async def run(self, name: str) -> str:
        # The activity id comes from workflow.uuid4(); temporalio checks activity ids on replay.
        return await workflow.execute_activity(
            greet, name, start_to_close_timeout=SHORT, activity_id=f"greet-{workflow.uuid4()}"
        )


@workflow.defn
class Signals:
    def __init__(self) -> None:
        self.items: list[str] = []

    @workflow.run
    async def run(self, wanted: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self.items) >= wanted)
        last = await workflow.execute_activity(greet, self.items[-1], start_to_close_timeout=timedelta(seconds=10))
        return self.items + [last]

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)


@workflow.defn
class ContinueOnce:
    @workflow.run
    async def run(self, n: int) -> str:
        greeting = await workflow.execute_activity(greet, str(n), start_to_close_timeout=timedelta(seconds=10))
        if n > 1:
            workflow.continue_as_new(n - 1)
        return greeting


@workflow.defn
class Patched:
    @workflow.run
    async def run(self, name: str) -> str:
        if workflow.patched("polite-greeting"):
            name = f"dear {name}"
        workflow.deprecate_patch("old-change")
        return await workflow.execute_activity(greet, name, start_to_close_timeout=timedelta(seconds=10))


@workflow.defn
class CancelBeforeSent:
    """An activity and a timer cancelled in the activation that started them: nothing is
    recorded for either (a real Temporal server's history has no event of them)."""

    @workflow.run
    async def run(self, name: str) -> str:
        handle = workflow.start_activity(greet, name, start_to_close_timeout=timedelta(seconds=10))
        handle.cancel()
        try:
            await handle
            outcome = "completed"
        except asyncio.CancelledError:
            outcome = "cancelled before it was sent"
        nap = asyncio.ensure_future(workflow.sleep(timedelta(seconds=5)))
        await asyncio.sleep(0)
        nap.cancel()
        await workflow.sleep(timedelta(seconds=1))
        return outcome


COLOUR = SearchAttributeKey.for_keyword("CustomKeywordField")
SIZE = SearchAttributeKey.for_int("CustomIntField")


@workflow.defn
class SearchAttributesAndMemo:
    """Upserts search attributes and the memo, and patches (which upserts TemporalChangeVersion)."""

    @workflow.run
    async def run(self, colour: str) -> dict:
        workflow.upsert_search_attributes([COLOUR.value_set(colour), SIZE.value_set(3)])
        workflow.upsert_memo({"note": f"painted {colour}", "draft": None})
        if workflow.patched("paint"):
            workflow.upsert_search_attributes([SIZE.value_unset()])
        await workflow.sleep(timedelta(seconds=1))
        attributes = workflow.info().typed_search_attributes
        return {"colour": attributes.get(COLOUR), "size": attributes.get(SIZE), "memo": workflow.memo()}


def _message(error: BaseException | None) -> str:
    return str(getattr(error, "message", error))


@workflow.defn
class OracleChild:
    def __init__(self) -> None:
        self.pokes: list[str] = []

    @workflow.run
    async def run(self, mode: str) -> str:
        if mode == "fail":
            raise ApplicationError("child refused", type="ChildRefused")
        if mode == "wait":
            await workflow.wait_condition(lambda: bool(self.pokes))
            return f"poked: {self.pokes[0]}"
        return await workflow.execute_activity(greet, mode, start_to_close_timeout=SHORT)

    @workflow.signal
    def poke(self, value: str) -> None:
        self.pokes.append(value)


@workflow.defn
class ChildWorkflows:
    @workflow.run
    async def run(self, name: str) -> list[str]:
        prefix = workflow.info().workflow_id
        out = [await workflow.execute_child_workflow(OracleChild.run, name, id=f"{prefix}-greet")]
        try:
            await workflow.execute_child_workflow(OracleChild.run, "fail", id=f"{prefix}-fail")
        except ChildWorkflowError as err:
            out.append(f"child failed: {_message(err.__cause__)}")
        waiting = await workflow.start_child_workflow(OracleChild.run, "wait", id=f"{prefix}-wait")
        await waiting.signal(OracleChild.poke, "hi")
        out.append(await waiting)
        # No id: the child's id comes from workflow.uuid4(), which replay must reproduce.
        out.append(await workflow.execute_child_workflow(OracleChild.run, "anonymous"))
        return out


@workflow.defn
class CancelChild:
    @workflow.run
    async def run(self, label: str) -> str:
        child = await workflow.start_child_workflow(OracleChild.run, "wait", id=f"{workflow.info().workflow_id}-{label}")
        await workflow.sleep(timedelta(seconds=1))
        child.cancel()
        try:
            await child
        except ChildWorkflowError as err:
            return f"child cancelled: {type(err.__cause__).__name__}"
        return "not cancelled"


@workflow.defn
class CancelledWorkflow:
    @workflow.run
    async def run(self, label: str) -> str:
        try:
            return await workflow.execute_activity(
                wait_for_cancel, label, start_to_close_timeout=timedelta(minutes=10), heartbeat_timeout=timedelta(minutes=5)
            )
        except BaseException:
            await workflow.execute_activity(greet, f"cleanup after {label}", start_to_close_timeout=SHORT)
            raise


@workflow.defn
class CancelActivityAndWait:
    @workflow.run
    async def run(self, label: str) -> str:
        handle = workflow.start_activity(
            wait_for_cancel,
            label,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=5),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await workflow.sleep(timedelta(seconds=1))
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            return f"cancel completed: {type(err.__cause__).__name__}"
        return "not cancelled"


@workflow.defn
class Updates:
    def __init__(self) -> None:
        self.total = 0
        self.done = False

    @workflow.run
    async def run(self, start: int) -> int:
        self.total += start
        await workflow.wait_condition(lambda: self.done)
        return self.total

    @workflow.update
    async def add(self, n: int) -> int:
        await workflow.execute_activity(greet, str(n), start_to_close_timeout=SHORT)
        self.total += n
        return self.total

    @add.validator
    def check_add(self, n: int) -> None:
        if n < 0:
            raise ValueError("no negative amounts")

    @workflow.signal
    def finish(self) -> None:
        self.done = True


@workflow.defn
class LocalActivities:
    @workflow.run
    async def run(self, name: str) -> list:
        out = [await workflow.execute_local_activity(greet, name, start_to_close_timeout=SHORT)]
        out.append(await workflow.execute_local_activity(
            flaky, name, start_to_close_timeout=SHORT, local_retry_threshold=timedelta(seconds=1),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=1.0)))
        try:
            await workflow.execute_local_activity(refuse, name, start_to_close_timeout=SHORT)
        except (ActivityError, ApplicationError) as err:
            out.append(type(err).__name__)
        return out


# ---- NEGATIVE CONTROLS: only in theirs.py; each claims the workflow type "OneActivity" ----


@activity.defn
async def shout(name: str) -> str:
    return f"HELLO, {name.upper()}!"


@workflow.defn(name="OneActivity")
class OneActivityOtherActivity:
    """Schedules a different activity type than the recorded OneActivity run."""

    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(shout, name, start_to_close_timeout=SHORT)


@workflow.defn(name="OneActivity")
class OneActivityExtraTimer:
    """Starts a timer before the activity the recorded OneActivity run scheduled first."""

    @workflow.run
    async def run(self, name: str) -> str:
        await workflow.sleep(timedelta(seconds=1))
        return await workflow.execute_activity(greet, name, start_to_close_timeout=SHORT)
