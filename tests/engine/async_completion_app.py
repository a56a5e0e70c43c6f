"""A workflow whose activities are completed from outside (asynchronous completion)."""

from __future__ import annotations

from datetime import timedelta

from engine import activity, workflow
from engine.common import RetryPolicy
from engine.errors import ActivityError

TOKENS: dict[str, bytes] = {}


@activity.defn
async def complete_later(label: str) -> str:
    TOKENS[label] = activity.info().task_token
    activity.raise_complete_async()


@activity.defn
def complete_later_sync(label: str) -> str:
    TOKENS[label] = activity.info().task_token
    activity.raise_complete_async()


@workflow.defn
class AsyncCompletion:
    @workflow.run
    async def run(self) -> list[str]:
        out = []
        for label in ("by-token", "by-id"):
            out.append(await workflow.execute_activity(
                complete_later, label, start_to_close_timeout=timedelta(seconds=30), activity_id=label))
        out.append(await workflow.execute_activity(
            complete_later_sync, "sync", start_to_close_timeout=timedelta(seconds=30), activity_id="sync"))
        try:
            await workflow.execute_activity(
                complete_later, "failed", start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=1), activity_id="failed")
        except ActivityError as err:
            out.append(f"failed: {err.cause}")
        return out


@workflow.defn
class CancelledAsync:
    def __init__(self) -> None:
        self.stop = False

    @workflow.signal
    def cancel_it(self) -> None:
        self.stop = True

    @workflow.run
    async def run(self) -> str:
        handle = workflow.start_activity(
            complete_later, "to-cancel", start_to_close_timeout=timedelta(seconds=30),
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
        await workflow.wait_condition(lambda: self.stop)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            return f"cancelled: {type(err.cause).__name__}"
        return "not cancelled"
