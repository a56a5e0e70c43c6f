"""What the throughput benchmarks share: the task queue, a worker for the workload, a batch of
workflows started and awaited, and the figures' helpers. ``throughput.py`` runs them in one
process; ``processes.py`` in several.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Sequence

# The workload is in its own module (see there why): ThreeSteps runs reserve -> charge -> ship.
from benchmarks.bench_workload import ThreeSteps, charge, reserve, ship
from engine import Client, Worker
from engine.worker.workflow_sandbox import SandboxedWorkflowRunner, UnsandboxedWorkflowRunner

TASK_QUEUE = "bench-throughput"


def db_size(path: str) -> tuple[int, int]:
    main = os.path.getsize(path) if os.path.exists(path) else 0
    extra = sum(os.path.getsize(path + s) for s in ("-wal", "-shm") if os.path.exists(path + s))
    return main, extra


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


async def run_batch_of_workflows(
    client: Client, n: int, chunk: int, prefix: str, max_in_flight: int = 0, task_queue: str = TASK_QUEUE
) -> tuple[float, float, list[float]]:
    """Start ``n`` workflows in chunks of ``chunk``; wait for all results.

    Returns (seconds until the last result, seconds until the last start, latencies). With
    ``max_in_flight`` a new workflow starts only when fewer than that many are unfinished
    (closed loop); otherwise all ``n`` are in flight at once (open loop).
    """
    latencies: list[float] = []
    waiters: list[asyncio.Task] = []
    gate = asyncio.Semaphore(max_in_flight) if max_in_flight else None

    async def start_one(i: int) -> None:
        if gate is not None:
            await gate.acquire()
        t0 = time.perf_counter()
        handle = await client.start_workflow(ThreeSteps.run, f"order-{i}", id=f"{prefix}-{i}", task_queue=task_queue)

        async def finish() -> None:
            try:
                result = await handle.result()
            finally:
                if gate is not None:
                    gate.release()
            latencies.append(time.perf_counter() - t0)
            if result != f"shipped:charged:reserved:order-{i}":
                raise RuntimeError(f"unexpected result {result!r}")

        waiters.append(asyncio.ensure_future(finish()))

    t_start = time.perf_counter()
    for base in range(0, n, chunk):
        await asyncio.gather(*(start_one(i) for i in range(base, min(n, base + chunk))))
    t_started = time.perf_counter() - t_start
    await asyncio.gather(*waiters)
    return time.perf_counter() - t_start, t_started, latencies


def bench_worker(client: Client, task_queue: str, args: argparse.Namespace) -> Worker:
    """A worker for the workload, with the options the command line gives."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ThreeSteps],
        activities=[reserve, charge, ship],
        max_concurrent_workflow_tasks=args.slots,
        max_concurrent_activities=args.slots,
        max_cached_workflows=args.cache,
        workflow_runner=SandboxedWorkflowRunner() if args.runner == "sandboxed" else UnsandboxedWorkflowRunner(),
    )
