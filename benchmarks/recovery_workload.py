"""The workload of recovery.py: three sequential activities that return at once, with the crash
test's timeouts (workflow task 1 s, start-to-close 2 s, retries after 0.1 s), each execution
counted. In a worker process started with ``RECOVERY_HANG=1`` the third activity hangs (a bug
that the next version of the worker fixes), so every run piles up there until it is killed.

Every real execution appends one line ``<workflow_id> <activity_id> <attempt> <pid>`` to the
file named by ``RECOVERY_LOG`` before it returns (one ``write`` of a short line to a file
opened for appending: whole, and kept by the kernel when the process is SIGKILLed).
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

from engine import RetryPolicy, activity, workflow

TASK_TIMEOUT = timedelta(seconds=1)
STEP_TIMEOUT = timedelta(seconds=2)
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.1), backoff_coefficient=1.5, maximum_interval=timedelta(seconds=0.5))


async def _work(value: str, step: str) -> str:
    if step == "c" and os.environ.get("RECOVERY_HANG") == "1":
        await asyncio.sleep(3600)
    info = activity.info()
    line = f"{info.workflow_id} {info.activity_id} {info.attempt} {os.getpid()}\n"
    fd = os.open(os.environ["RECOVERY_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return f"{value}:{step}"


@activity.defn
async def step_a(value: str) -> str:
    return await _work(value, "a")


@activity.defn
async def step_b(value: str) -> str:
    return await _work(value, "b")


@activity.defn
async def step_c(value: str) -> str:
    return await _work(value, "c")


@workflow.defn
class ThreeSteps:
    @workflow.run
    async def run(self, n: int) -> str:
        a = await workflow.execute_activity(step_a, str(n), start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY)
        b = await workflow.execute_activity(step_b, a, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY)
        return await workflow.execute_activity(step_c, b, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY)


ACTIVITIES = [step_a, step_b, step_c]
