"""An activity that waits for its worker's shutdown, and a workflow that runs it."""

from __future__ import annotations

from datetime import timedelta

from engine import activity, workflow

SEEN: list[str] = []


@activity.defn
async def until_shutdown() -> str:
    SEEN.append("started")
    await activity.wait_for_worker_shutdown()
    if activity.is_worker_shutdown():
        SEEN.append("shutdown seen")
    return "done"


@workflow.defn
class Schedules:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity(until_shutdown, start_to_close_timeout=timedelta(seconds=30))
