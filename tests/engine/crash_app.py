"""The worker process of the crash test (tests/engine/test_crash.py).

Run as ``python -m tests.engine.crash_app DB_PATH QUEUE`` from the project root, with the
environment variable ``CRASH_LOG`` naming the side file. It serves ``ThreeSteps`` and its
three activities on ``QUEUE`` until it is killed; it prints ``ready`` once it polls.

Every real execution of an activity appends one line to the side file::

    <workflow_id> <activity_type> <attempt> <pid> <run_id> <activity_id>

written, flushed and fsynced *before* the activity returns, so an activity completion that
the engine recorded implies the line of that execution is on disk.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from datetime import timedelta

from engine import Client, RetryPolicy, Worker, activity, workflow

STEP_TIMEOUT = timedelta(seconds=2)
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=0.1), backoff_coefficient=1.5, maximum_interval=timedelta(seconds=0.5))
TASK_TIMEOUT = timedelta(seconds=1)
# Few slots and activities of 20-150 ms, so that a worker's life spans many kills.
ACTIVITY_SLOTS = 6


def _record_execution() -> None:
    """Append this execution's line to the side file and make it durable."""
    info = activity.info()
    line = f"{info.workflow_id} {info.activity_type} {info.attempt} {os.getpid()} {info.workflow_run_id} {info.activity_id}\n"
    fd = os.open(os.environ["CRASH_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one write of one short line: appended whole
        os.fsync(fd)
    finally:
        os.close(fd)


@activity.defn
async def step_a(value: str) -> str:
    await asyncio.sleep(random.uniform(0.02, 0.15))
    _record_execution()
    return f"{value}:a"


@activity.defn
def step_b(value: str) -> str:
    time.sleep(random.uniform(0.02, 0.15))
    _record_execution()
    return f"{value}:b"


@activity.defn
async def step_c(value: str) -> str:
    await asyncio.sleep(random.uniform(0.02, 0.15))
    _record_execution()
    return f"{value}:c"


@workflow.defn
class ThreeSteps:
    @workflow.run
    async def run(self, n: int) -> str:
        a = await workflow.execute_activity(step_a, str(n), start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY)
        b = await workflow.execute_activity(step_b, a, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY)
        return await workflow.execute_activity(step_c, b, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY)


ACTIVITIES = [step_a, step_b, step_c]


def expected_result(n: int) -> str:
    return f"{n}:a:b:c"


async def main(db_path: str, queue: str) -> None:
    client = await Client.connect(db_path)
    worker = Worker(
        client, task_queue=queue, workflows=[ThreeSteps], activities=ACTIVITIES, max_concurrent_activities=ACTIVITY_SLOTS
    )
    print("ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    if len(sys.argv) != 3 or "CRASH_LOG" not in os.environ:
        sys.exit("usage: CRASH_LOG=side.log python -m tests.engine.crash_app DB_PATH QUEUE")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
