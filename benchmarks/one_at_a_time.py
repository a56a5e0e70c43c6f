"""One workflow at a time: what a learner feels in a notebook (``%workflow execute``).

    .venv/bin/python benchmarks/one_at_a_time.py                  # engine, then the kernel's Session
    .venv/bin/python benchmarks/one_at_a_time.py --workflows 1000 --mode engine

Each workflow (``ThreeSteps`` of ``bench_workload.py``: three sequential activities that return at
once) is started and its result awaited before the next one starts, on a file database with one
worker in the same process and the same event loop. Two ways in:

- ``engine``: ``client.start_workflow`` then ``handle.result()``, as a script would.
- ``session``: ``kernel_ext``'s ``Session.execute_workflow``, what ``%workflow execute`` runs (the
  magic is a thin wrapper over it), with the workflow and activities given to ``Session.define``
  as a ``%%workflow`` cell gives them, and a worker of ``Session.start_worker``.

Figures, per workflow, after a warm-up: latency (start to result) p50 / p99, CPU split by thread
(from ``/proc/self/task/*/schedstat``, nanoseconds), transactions, SQL statements (counted in a
second, shorter pass with SQLite's trace hook on, so the hook's cost stays out of the CPU
figures), reads, wake-ups (event-loop iterations and each thread's voluntary context
switches: a switch is the thread going to sleep; each sleep ends in a wake-up), and the
checkpoint thread's WAL checkpoints per workflow with the log file's size at the end. The
script prints figures and never asserts on them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import load  # noqa: E402
from benchmarks._runs import pct  # noqa: E402
from benchmarks.bench_workload import ThreeSteps, charge, reserve, ship  # noqa: E402
from engine import Client, Worker  # noqa: E402
from engine._persistence.store import Store  # noqa: E402
from engine.worker.workflow_sandbox import SandboxedWorkflowRunner, UnsandboxedWorkflowRunner  # noqa: E402

TASK_QUEUE = "bench-one-at-a-time"
EXPECTED = "shipped:charged:reserved:order-{}"


# ---------------------------------------------------------------------------- what the threads did
def thread_figures() -> dict[int, tuple[float, int]]:
    """Per native thread id of this process: (CPU seconds, voluntary context switches)."""
    out: dict[int, tuple[float, int]] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                cpu = int(f.read().split()[0]) / 1e9
            with open(f"/proc/self/task/{tid}/status") as f:
                switches = next(int(line.split()[1]) for line in f if line.startswith("voluntary_ctxt_switches"))
        except (OSError, StopIteration, ValueError):
            continue
        out[int(tid)] = (cpu, switches)
    return out


def thread_names(store: Store) -> dict[int, str]:
    """Native thread id -> what the thread is for."""
    names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    names[threading.get_native_id()] = "event loop"
    writer = getattr(store._conn, "_thread", None)
    reader = getattr(store._reader, "_thread", None)
    if writer is not None and writer.native_id is not None:
        names[writer.native_id] = "writer connection's thread (lock waits)"
    if reader is not None and reader.native_id is not None and reader is not writer:
        names[reader.native_id] = "reader connection's thread"
    checkpointer = store._checkpointer
    if checkpointer is not None and checkpointer._thread.native_id is not None:
        names[checkpointer._thread.native_id] = "checkpoints"
    return names


class LoopWakeups:
    """Counts the event loop's iterations: each one is a return from epoll (a wake-up)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.count = 0
        self._selector = loop._selector  # type: ignore[attr-defined]
        self._select = self._selector.select

        def select(timeout: float | None = None) -> Any:
            self.count += 1
            return self._select(timeout)

        self._selector.select = select

    def remove(self) -> None:
        self._selector.select = self._select


# ---------------------------------------------------------------------------- the two ways in
async def engine_way(path: str, args: argparse.Namespace) -> tuple[Store, Callable[[int], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    client = await Client.connect(path)
    worker = Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[ThreeSteps],
        activities=[reserve, charge, ship],
        workflow_runner=SandboxedWorkflowRunner() if args.runner == "sandboxed" else UnsandboxedWorkflowRunner(),
    )
    await worker.__aenter__()

    async def one(i: int) -> Any:
        handle = await client.start_workflow(ThreeSteps.run, f"order-{i}", id=f"one-{i}", task_queue=TASK_QUEUE)
        return await handle.result()

    async def close() -> None:
        await worker.shutdown()
        await client.close()

    return client.store, one, close


async def session_way(path: str, args: argparse.Namespace) -> tuple[Store, Callable[[int], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    from kernel_ext._session import Session

    session = Session(path)
    session.define([ThreeSteps, reserve, charge, ship])
    await session.start_worker(TASK_QUEUE)
    client = await session.ensure_ready()

    async def one(i: int) -> Any:
        return await session.execute_workflow("ThreeSteps", task_queue=TASK_QUEUE, workflow_id=f"one-{i}", args=[f"order-{i}"])

    return client.store, one, session.close


# ---------------------------------------------------------------------------- a measured pass
async def measure(way: str, args: argparse.Namespace, path: str) -> None:
    store, one, close = await (engine_way if way == "engine" else session_way)(path, args)
    loop = asyncio.get_running_loop()
    number = iter(range(10**9))
    try:
        for _ in range(args.warmup):
            i = next(number)
            if await one(i) != EXPECTED.format(i):
                raise RuntimeError("unexpected result in the warm-up")
        names = thread_names(store)
        batches, changes = store.batches, store.changes
        checkpointer = store._checkpointer
        checkpoints = (checkpointer.checkpoints, checkpointer.locked_checkpoints) if checkpointer is not None else (0, 0)
        wakeups = LoopWakeups(loop)
        before, process_before, t0 = thread_figures(), time.process_time(), time.perf_counter()
        latencies = []
        for _ in range(args.workflows):
            i = next(number)
            started = time.perf_counter()
            result = await one(i)
            latencies.append(time.perf_counter() - started)
            if result != EXPECTED.format(i):
                raise RuntimeError(f"unexpected result {result!r}")
        elapsed, process_cpu, after = time.perf_counter() - t0, time.process_time() - process_before, thread_figures()
        wakeups.remove()
        batches, changes = store.batches - batches, store.changes - changes
        if checkpointer is not None:
            checkpoints = (checkpointer.checkpoints - checkpoints[0], checkpointer.locked_checkpoints - checkpoints[1])
        log_bytes = os.path.getsize(path + "-wal") if os.path.exists(path + "-wal") else 0
        statements, reads = await count_statements(store, one, number, args.count)
    finally:
        await close()

    n = args.workflows
    print(f"{way}: {n} workflows one at a time, 3 sequential activities each, {args.runner} workflow code ({'%workflow execute: Session.execute_workflow' if way == 'session' else 'client.start_workflow + handle.result()'})")
    print(f"  throughput              {n / elapsed:.0f} workflows/s ({elapsed:.2f} s)")
    print(f"  latency start->result   p50 {pct(latencies, 50) * 1000:.2f} ms   p99 {pct(latencies, 99) * 1000:.2f} ms   "
          f"max {max(latencies) * 1000:.2f} ms   (issue target: p50 <= 3 ms)")
    print(f"  CPU per workflow        {process_cpu / n * 1000:.2f} ms, process (issue target: <= 2.5 ms)")
    rows = []
    for tid, (cpu, switches) in after.items():
        cpu0, switches0 = before.get(tid, (0.0, 0))
        rows.append((cpu - cpu0, switches - switches0, names.get(tid, f"thread {tid}")))
    for cpu, switches, name in sorted(rows, reverse=True):
        if cpu > 0 or switches > 0:
            print(f"    {name:<40}{cpu / n * 1000:6.3f} ms   {switches / n:6.2f} wake-ups")
    print(f"  wake-ups per workflow   event loop {wakeups.count / n:.1f} iterations; threads {sum(r[1] for r in rows) / n:.1f} voluntary context switches")
    print(f"  per workflow            {batches / n:.2f} transactions, {changes / n:.2f} changes, "
          f"{sum(reads.values()) / args.count:.2f} reads ({', '.join(f'{k} {v / args.count:.2f}' for k, v in sorted(reads.items(), key=lambda kv: -kv[1]))})")
    print(f"  WAL checkpoints         {checkpoints[0] / n:.3f} per workflow ({checkpoints[1]} of {checkpoints[0]} holding the "
          f"write lock); log file {log_bytes / 2**20:.1f} MiB after the measured runs")
    total = sum(statements.values())
    print(f"  SQL statements          {total / args.count:.1f} per workflow ("
          + ", ".join(f"{k} {v / args.count:.1f}" for k, v in sorted(statements.items(), key=lambda kv: -kv[1]))
          + f"; counted over {args.count} more workflows with SQLite's trace hook)")


async def count_statements(store: Store, one: Callable[[int], Awaitable[Any]], number: Any, n: int) -> tuple[dict[str, int], dict[str, int]]:
    """SQL statements by verb and reads by function, over ``n`` more workflows."""
    counts: dict[str, int] = {}
    reads: dict[str, int] = {}

    def trace(sql: str) -> None:
        verb = sql.split(None, 1)[0].upper() if sql else "?"
        counts[verb] = counts.get(verb, 0) + 1

    original_read = store.read

    async def read(fn: Any, *a: Any) -> Any:
        name = getattr(fn, "__name__", "?")
        reads[name] = reads.get(name, 0) + 1
        return await original_read(fn, *a)

    await original_read(lambda conn: conn.set_trace_callback(trace))
    store._conn._conn.set_trace_callback(trace)
    store.read = read  # type: ignore[method-assign]
    try:
        for _ in range(n):
            await one(next(number))
    finally:
        store.read = original_read  # type: ignore[method-assign]
        store._conn._conn.set_trace_callback(None)
        await original_read(lambda conn: conn.set_trace_callback(None))
    return counts, reads


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workflows", type=int, default=300, help="workflows measured per way (default 300)")
    p.add_argument("--warmup", type=int, default=30, help="workflows run first and left out (default 30)")
    p.add_argument("--count", type=int, default=50, help="workflows of the statement-counting pass (default 50)")
    p.add_argument("--mode", choices=("engine", "session", "both"), default="both", help="which way in (default both)")
    p.add_argument("--runner", choices=("sandboxed", "unsandboxed"), default="sandboxed", help="engine way's workflow runner (default sandboxed)")
    args = p.parse_args(argv)
    for name in ("workflows", "count"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be 1 or more")
    if args.warmup < 0:
        p.error("--warmup must be 0 or more")
    return args


def main() -> None:
    args = parse_args()
    load_before = load()
    for way in ("engine", "session") if args.mode == "both" else (args.mode,):
        folder = tempfile.mkdtemp(prefix="durable-one-")
        try:
            asyncio.run(measure(way, args, os.path.join(folder, "one.db")))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"  machine load            before {load_before}; after {load()}")


if __name__ == "__main__":
    main()
