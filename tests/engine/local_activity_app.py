"""tests/histories/fixture_workflows.py's LocalActivitiesWorkflow, with our imports."""

from __future__ import annotations

import threading
from datetime import timedelta

from engine import activity, workflow
from engine.common import RetryPolicy
from engine.errors import ActivityError, ApplicationError

SHORT = timedelta(seconds=10)
CALLS: list[tuple[str, int]] = []


class FixtureActivities:
    @activity.defn
    async def greet(self, name: str) -> str:
        CALLS.append(("greet", activity.info().attempt))
        return f"Hello, {name}!"

    @activity.defn
    async def flaky(self, label: str) -> str:
        CALLS.append((label, activity.info().attempt))
        assert activity.info().is_local
        if activity.info().attempt < 3:
            raise ApplicationError(f"{label} not yet", type="NotYet")
        return f"{label} after {activity.info().attempt} attempts"

    @activity.defn
    async def book(self, step: str) -> str:
        CALLS.append((step, activity.info().attempt))
        raise ApplicationError("no cars left", {"step": step}, type="SoldOut", non_retryable=True)


@workflow.defn
class LocalActivitiesWorkflow:
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


SLOW_STARTED = threading.Event()


@activity.defn
async def slow_local(seconds: float) -> str:
    import asyncio

    SLOW_STARTED.set()
    await asyncio.sleep(seconds)  # real time: the workflow task is held all along
    return "slept"


@workflow.defn
class SlowLocal:
    @workflow.run
    async def run(self, seconds: float) -> str:
        return await workflow.execute_local_activity(slow_local, seconds, start_to_close_timeout=SHORT)
