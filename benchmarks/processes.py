"""``throughput.py --processes N``: N engine processes share one database file.

Each process is what an application instance would be: a ``Client`` and a ``Worker`` over the
same file, starting its share of the workflows and awaiting their results. A process's
client and worker use a task queue of their own (``bench-throughput-<i>``) unless
``--shared-queue`` puts them all on one: then a process's poller also takes tasks that
another process queued while its slots were full, and the run moves to a worker that must
rebuild it from history (there is no cross-process sticky queue yet).

One process (one GIL) uses about one core; several processes are how the engine uses more,
as Temporal workers do. They take turns at the write lock (``engine/_persistence/writer_lock.py``).
The parent creates the database, starts the processes, releases them together after their
warm-up, and adds up what they report. Throughput is all workflows over the wall time from
that release to the last result anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from typing import Any

from benchmarks import _collector, _lock
from benchmarks._runs import TASK_QUEUE, bench_worker, db_size, mib, pct, run_batch_of_workflows
from engine import Client


def _child(path: str, index: int, args: argparse.Namespace, barrier: Any, results: Any) -> None:
    queue = TASK_QUEUE if args.shared_queue else f"{TASK_QUEUE}-{index}"
    share = args.workflows // args.processes + (1 if index < args.workflows % args.processes else 0)
    in_flight = max(1, args.max_in_flight // args.processes) if args.max_in_flight else 0

    async def run() -> None:
        client = await Client.connect(path)
        _lock.time_handovers(client)
        worker = bench_worker(client, queue, args)
        try:
            async with worker:
                if args.warmup:
                    await run_batch_of_workflows(client, args.warmup, args.concurrency, f"warmup-{index}", in_flight, queue)
                barrier.wait()
                t0, cpu0, lock0 = time.time(), time.process_time(), _lock.snapshot(client)
                collector = _collector.CollectorTimer()
                collector.start()
                _, _, latencies = await run_batch_of_workflows(client, share, args.concurrency, f"wf-{index}", in_flight, queue)
                collected = collector.stop()
                results.put(
                    {
                        "start": t0,
                        "end": time.time(),
                        "cpu": time.process_time() - cpu0,
                        "latencies": latencies,
                        "workflows": share,
                        "stats": dict(worker.stats),
                        "batches": client.store.batches,
                        "lock": _lock.diff(_lock.snapshot(client), lock0),
                        "gc": collected,
                    }
                )
        finally:
            await client.close()

    try:
        asyncio.run(run())
    except BaseException as e:  # the parent must not wait for a result that never comes
        barrier.abort()  # nor the other processes, at the barrier
        results.put({"error": f"process {index}: {type(e).__name__}: {e}"})
        raise


async def _count_events(path: str) -> int:
    """Events in the file (opening it the first time creates the schema)."""
    client = await Client.connect(path)
    try:
        return int(await client.store.read(lambda c: c.execute("SELECT count(*) FROM events").fetchone()[0]))
    finally:
        await client.close()


def run_processes(args: argparse.Namespace, path: str, tmpdir: str | None) -> None:
    asyncio.run(_count_events(path))  # schema first, so the processes do not race to create it
    # spawn, not fork: a forked child would inherit the parent's SQLite state.
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(args.processes)
    results = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(path, i, args, barrier, results), daemon=True) for i in range(args.processes)]
    for p in procs:
        p.start()
    reports = [results.get() for _ in procs]
    for p in procs:
        p.join()
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        sys.exit("benchmark failed: " + "; ".join(errors))
    events = asyncio.run(_count_events(path))

    n = sum(r["workflows"] for r in reports)
    elapsed = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    latencies = [x for r in reports for x in r["latencies"]]
    cpu = sum(r["cpu"] for r in reports)
    size_main, size_extra = db_size(path)
    queues = "one shared task queue" if args.shared_queue else "a task queue each"
    print(f"durable-lab throughput: {n} workflows x 3 sequential activities, {args.processes} processes "
          f"(each a client and a worker, {queues}) on one database file, {args.runner} workflow code, "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"  database                {path}")
    print(f"  elapsed                 {elapsed:.2f} s" + (f" (at most {args.max_in_flight} in flight in all)" if args.max_in_flight else ""))
    print(f"  throughput              {n / elapsed:.0f} workflows/s   (issue target >= 700/s; DBOS on SQLite: 58-87/s)")
    for i, r in enumerate(reports):
        own = r["end"] - r["start"]
        print(f"    process {i}            {r['workflows']} workflows in {own:.2f} s ({r['workflows'] / own:.0f}/s), "
              f"CPU {r['cpu']:.2f} s ({r['cpu'] / own:.2f} cores), p50 {pct(r['latencies'], 50) * 1000:.0f} ms, "
              f"{r['stats']['replays']} instances built from history")
    print(f"  latency start->result   p50 {pct(latencies, 50) * 1000:.0f} ms   p99 {pct(latencies, 99) * 1000:.0f} ms   "
          f"max {max(latencies) * 1000:.0f} ms   mean {statistics.fmean(latencies) * 1000:.0f} ms")
    print(f"  events                  {events} in the file (warm-up included), {events * n / (n + args.warmup * args.processes) / elapsed:.0f} events/s")
    print(f"  database size           {mib(size_main + size_extra)} (main {mib(size_main)} + wal/shm {mib(size_extra)})")
    print(f"  CPU                     {cpu:.2f} s in all processes ({cpu / elapsed:.2f} cores), {cpu / n * 1000:.2f} ms per workflow")
    for line in _lock.lines(_lock.add([r["lock"] for r in reports]), n, cpu, elapsed):
        print(line)
    print(_collector.line(_collector.add([r["gc"] for r in reports]), n, cpu))
    if tmpdir and not args.keep:
        shutil.rmtree(tmpdir, ignore_errors=True)
