"""The worker process of tests/engine/test_dead_workers.py.

Run as ``python -m tests.engine.dead_worker_app DB_PATH QUEUE MODE`` from the project root.
It serves ``OneStep`` on ``QUEUE``; its activity ``hangs`` (MODE ``hang``: it never returns)
or completes asynchronously (MODE ``async``: ``raise_complete_async``). It prints ``started``
once the activity runs, then serves until it is killed.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from engine import Client, RetryPolicy, Worker, activity, workflow

MODE = sys.argv[3] if len(sys.argv) > 3 else "hang"


@activity.defn
async def step(value: str) -> str:
    if MODE == "done":
        return value + ":done"
    print("started", flush=True)
    if MODE == "async":
        activity.raise_complete_async()
    await asyncio.sleep(3600)
    return value


@workflow.defn
class OneStep:
    @workflow.run
    async def run(self, value: str) -> str:
        # Leases that expire long after any test would give up: only a takeover finishes it.
        return await workflow.execute_activity(
            step, value, start_to_close_timeout=timedelta(seconds=600),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=10)),
        )


async def main(db_path: str, queue: str) -> None:
    client = await Client.connect(db_path)
    await Worker(client, task_queue=queue, workflows=[OneStep], activities=[step]).run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
