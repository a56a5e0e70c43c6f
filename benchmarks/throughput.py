"""End-to-end throughput of the engine: N workflows of three sequential activities each.

    .venv/bin/python benchmarks/throughput.py                       # 2000 workflows, 1 worker
    .venv/bin/python benchmarks/throughput.py --workflows 5000 --workers 2
    .venv/bin/python benchmarks/throughput.py --max-in-flight 300   # closed loop: latency under load
    .venv/bin/python benchmarks/throughput.py --profile cprofile    # + top functions of both threads

Everything runs in one process on a file database (WAL mode, as ``Client.connect`` sets it
up): the client starts the workflows as fast as it can (``start_workflow`` calls gathered in
chunks of ``--concurrency``), each workflow's result is awaited in its own task, and the
clock stops when the last result is in. The script prints figures; it never asserts on them.

Besides throughput and latency it reports how the work splits between the event-loop thread
(Python: workflow code, worker, client) and aiosqlite's database thread (SQL, JSON, commit),
how many group-commit transactions and reads each workflow cost, and how big the database got.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Client, Worker  # noqa: E402
from engine._matching.task_queues import has_tasks
from engine._persistence import store as _store  # noqa: E402
from engine.errors import StoreError  # noqa: E402
from engine.worker import POLL_INTERVAL  # noqa: E402

# ---------------------------------------------------------------------------- the workload and its runs
from benchmarks import _lock  # noqa: E402
from benchmarks import _collector  # noqa: E402
from benchmarks._runs import TASK_QUEUE, bench_worker, db_size, mib, pct, run_batch_of_workflows  # noqa: E402


# ---------------------------------------------------------------------------- instrumentation
class Meter:
    """Counts and times what goes through the store, without touching the engine's code.

    ``_store._run_batch`` (the body of every group-commit transaction) is looked up as a module
    global by ``Store._flush``, so wrapping it here times every write batch on the database
    thread; reads are wrapped per store instance.
    """

    def __init__(self) -> None:
        self.batch_seconds = 0.0
        self.inline_batches = 0
        self.batch_sizes: list[int] = []
        self.read_seconds = 0.0
        self.reads: dict[str, int] = {}
        self.changes: dict[str, int] = {}
        self.db_thread_ids: set[int] = set()
        self.idle_waits: dict[str, list[float]] = {"workflow": [], "activity": []}
        self.missed_wakeups: dict[str, int] = {"workflow": 0, "activity": 0}
        self.statements: dict[str, int] = {}
        self.check_wakeups = False
        self._orig_run_batch = _store._run_batch

    def install_worker(self, worker: Worker) -> None:
        """Time the worker's waits for new work (a wait that lasts the whole poll interval
        means the worker slept although a notification could have woken it)."""
        orig = worker._wait_for_work
        meter = self
        waits = self.idle_waits
        missed = self.missed_wakeups
        store, clock = worker.client.store, worker.client.clock

        async def wait_for_work(arrived: asyncio.Event) -> None:
            t0 = time.perf_counter()
            # The worker took `arrived` before its claim: find which queue it belongs to, then
            # look whether claimable work already exists (its notification was missed).
            kind = next(
                (k for k in ("workflow", "activity") if store._waiters.get(("queue", f"{k}:{worker.task_queue}")) is arrived),
                "workflow",
            )
            if meter.check_wakeups:
                if await store.read(has_tasks, kind, worker.task_queue, clock.now().timestamp()):
                    missed[kind] += 1
            try:
                await orig(arrived)
            finally:
                waits[kind].append(time.perf_counter() - t0)

        worker._wait_for_work = wait_for_work  # type: ignore[method-assign]

    def install(self, store: _store.Store) -> None:
        meter = self
        orig_batch = self._orig_run_batch

        def run_batch(tx: Any, batch: list[Any]) -> Any:
            # Written on the event loop's thread (Store._flush), or on the database thread
            # when a read was using the connection (an in-memory database only).
            inline = threading.current_thread() is threading.main_thread()
            if not inline:
                meter.db_thread_ids.add(threading.get_native_id())
            t0 = time.perf_counter()
            outcomes = orig_batch(tx, batch)
            meter.inline_batches += inline
            meter.batch_seconds += time.perf_counter() - t0
            meter.batch_sizes.append(len(batch))
            for fn, _, _ in batch:
                name = getattr(fn, "__name__", str(fn))
                meter.changes[name] = meter.changes.get(name, 0) + 1
            return outcomes

        _store._run_batch = run_batch  # type: ignore[assignment]

        orig_read = store.read

        async def read(fn: Any, *args: Any) -> Any:
            name = getattr(fn, "__name__", str(fn))
            meter.reads[name] = meter.reads.get(name, 0) + 1

            def timed(conn: Any, *a: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return fn(conn, *a)
                finally:
                    meter.read_seconds += time.perf_counter() - t0

            timed.__name__ = name
            return await orig_read(timed, *args)

        store.read = read  # type: ignore[method-assign]

    async def count_statements(self, store: _store.Store) -> None:
        """Count SQL statements by verb (SQLite's trace hook, on the database thread). Each
        row of a batched executemany counts as one statement, as SQLite runs it once per row."""
        counts = self.statements

        def trace(sql: str) -> None:
            verb = sql.split(None, 1)[0].upper() if sql else "?"
            counts[verb] = counts.get(verb, 0) + 1

        # Writes run on the event loop's thread through the store's own connection; reads
        # through another one (a file database) on its thread.
        store._conn._conn.set_trace_callback(trace)
        await store.read(lambda conn: conn.set_trace_callback(trace))

    def uninstall(self) -> None:
        _store._run_batch = self._orig_run_batch  # type: ignore[assignment]

    def reset(self) -> None:
        self.batch_seconds = 0.0
        self.inline_batches = 0
        self.batch_sizes.clear()
        self.read_seconds = 0.0
        self.reads.clear()
        self.changes.clear()
        for waits in self.idle_waits.values():
            waits.clear()
        for kind in self.missed_wakeups:
            self.missed_wakeups[kind] = 0
        self.statements.clear()


def thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) per native thread id of this process (Linux /proc)."""
    out: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
    except OSError:
        pass
    return out


# ---------------------------------------------------------------------------- the run
def database_path(args: argparse.Namespace) -> tuple[str, str | None]:
    """(the database file, the temp folder to delete afterwards or None)."""
    if not args.db:
        tmpdir = tempfile.mkdtemp(prefix="durable-bench-")
        return os.path.join(tmpdir, "throughput.db"), tmpdir
    path = args.db
    if os.path.exists(path):
        if not args.overwrite:
            sys.exit(f"{path} exists: give a new path, or pass --overwrite to delete it (and its -wal/-shm/-lock) first.")
        for suffix in ("", "-wal", "-shm", "-lock"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    return path, None


async def main(args: argparse.Namespace) -> None:
    path, tmpdir = database_path(args)

    meter = Meter()
    meter.check_wakeups = args.check_wakeups
    client = await Client.connect(path)
    meter.install(client.store)
    if args.count_statements:
        await meter.count_statements(client.store)
    workers = [bench_worker(client, TASK_QUEUE, args) for _ in range(args.workers)]
    profiler: Any = None
    db_profiler: Any = None
    for w in workers:
        meter.install_worker(w)
    try:
        for w in workers:
            await w.__aenter__()
        if args.warmup:
            await run_batch_of_workflows(client, args.warmup, args.concurrency, "warmup", args.max_in_flight)
        events_before = await client.store.read(lambda c: c.execute("SELECT count(*) FROM events").fetchone()[0])
        batches_before, changes_before = client.store.batches, client.store.changes
        meter.reset()
        main_tid = threading.get_native_id()
        cpu_before = thread_cpu()
        wall_cpu_before = time.process_time()
        lock_before = _lock.snapshot(client)

        if args.profile == "cprofile":
            import cProfile

            # One profiler per thread: cProfile only sees the thread that enabled it. Wall-clock
            # timer: the event loop's idle time shows as epoll 'poll', and the database thread's
            # SQL calls include waiting for the GIL (py-spy --gil separates those; see README).
            db_profiler = cProfile.Profile()
            await client.store.read(lambda conn: db_profiler.enable())
            profiler = cProfile.Profile()
            profiler.enable()
        elif args.profile == "pyinstrument":
            from pyinstrument import Profiler

            profiler = Profiler(async_mode="disabled")
            profiler.start()

        collector = _collector.CollectorTimer()
        collector.start()
        elapsed, started, latencies = await run_batch_of_workflows(client, args.workflows, args.concurrency, "wf", args.max_in_flight)
        collected = collector.stop()

        if args.profile == "cprofile":
            profiler.disable()
            await client.store.read(lambda conn: db_profiler.disable())
        elif args.profile == "pyinstrument":
            profiler.stop()

        cpu_after = thread_cpu()
        process_cpu = time.process_time() - wall_cpu_before
        lock_stats = _lock.diff(_lock.snapshot(client), lock_before)
        events = await client.store.read(lambda c: c.execute("SELECT count(*) FROM events").fetchone()[0]) - events_before
        batches = client.store.batches - batches_before
        changes = client.store.changes - changes_before
        size_main, size_extra = db_size(path)
        stats = [w.stats for w in workers]
    finally:
        for w in workers:
            await w.shutdown()
        await client.close()
        meter.uninstall()

    n = args.workflows
    print(f"durable-lab throughput: {n} workflows x 3 sequential activities, {args.workers} worker(s), "
          f"{args.runner} workflow code, start chunk {args.concurrency}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"  database                {path}")
    print(f"  elapsed                 {elapsed:.2f} s (all {n} started after {started:.2f} s"
          + (f", at most {args.max_in_flight} in flight)" if args.max_in_flight else ", all in flight at once)"))
    print(f"  throughput              {n / elapsed:.0f} workflows/s   (issue target >= 700/s; DBOS on SQLite: 58-87/s)")
    print(f"  latency start->result   p50 {pct(latencies, 50) * 1000:.0f} ms   p99 {pct(latencies, 99) * 1000:.0f} ms   "
          f"max {max(latencies) * 1000:.0f} ms   mean {statistics.fmean(latencies) * 1000:.0f} ms")
    print(f"  events                  {events} total, {events / n:.1f} per workflow, {events / elapsed:.0f} events/s")
    print(f"  database size           {mib(size_main + size_extra)} (main {mib(size_main)} + wal/shm {mib(size_extra)}), "
          f"{(size_main + size_extra) / (n + args.warmup) / 1024:.1f} KiB per workflow (warm-up included)")
    print(f"  group commit            {batches} batches, {changes} changes, {changes / max(batches, 1):.1f} changes/batch, "
          f"{batches / elapsed:.0f} commits/s")
    print(f"  per workflow            {batches / n:.2f} transactions, {changes / n:.2f} changes, "
          f"{sum(meter.reads.values()) / n:.2f} reads")
    sizes = meter.batch_sizes
    if sizes:
        print(f"  batch size              p50 {pct(sizes, 50):.0f}  p99 {pct(sizes, 99):.0f}  max {max(sizes)}")
    statements = sum(meter.statements.values())
    if args.count_statements:
        print(f"  SQL statements          {statements / n:.1f} per workflow ("
              + ", ".join(f"{k} {v / n:.1f}" for k, v in sorted(meter.statements.items(), key=lambda kv: -kv[1]))
              + "; each row of a batched executemany counts as one)")
    print("  changes by kind         " + ", ".join(f"{k} {v / n:.2f}/wf" for k, v in sorted(meter.changes.items(), key=lambda kv: -kv[1])))
    print("  reads by kind           " + ", ".join(f"{k} {v / n:.2f}/wf" for k, v in sorted(meter.reads.items(), key=lambda kv: -kv[1])))
    # CPU split: the event-loop thread runs Python (worker, workflow code, client), the
    # aiosqlite thread runs SQL + JSON + commit. Wall time inside write batches / reads too.
    main_cpu = cpu_after.get(main_tid, 0.0) - cpu_before.get(main_tid, 0.0)
    db_cpu = sum(cpu_after.get(t, 0.0) - cpu_before.get(t, 0.0) for t in meter.db_thread_ids)
    print(f"  CPU                     process {process_cpu:.2f} s ({process_cpu / elapsed:.2f} cores); "
          f"event-loop thread {main_cpu:.2f} s ({main_cpu / elapsed:.0%} of wall), "
          f"database thread {db_cpu:.2f} s ({db_cpu / elapsed:.0%} of wall)")
    print(f"  CPU per workflow        {process_cpu / n * 1000:.2f} ms (event loop {main_cpu / n * 1000:.2f} ms + database thread "
          f"{db_cpu / n * 1000:.2f} ms); at this cost one core (one GIL) allows ~{n / max(process_cpu, 1e-9):.0f} workflows/s")
    for line in _lock.lines(lock_stats, n, process_cpu, elapsed):
        print(line)
    print(_collector.line(collected, n, process_cpu))
    print(f"  write batches           {len(sizes)}, {meter.inline_batches} of them on the event loop's thread (the connection free and no other "
          "process writing), the others on the database thread")
    print(f"  database thread wall    write batches {meter.batch_seconds:.2f} s "
          f"({meter.batch_seconds / max(len(sizes), 1) * 1000:.2f} ms/batch), reads {meter.read_seconds:.2f} s")
    for kind, waits in meter.idle_waits.items():
        full = sum(1 for w in waits if w >= 0.9 * POLL_INTERVAL)
        print(f"  {kind + ' poller idle':<24}{len(waits)} waits for work, {sum(waits):.2f} s in total, "
              f"{full} lasted the whole {POLL_INTERVAL * 1000:.0f} ms poll interval"
              + (f", {meter.missed_wakeups[kind]} began with claimable tasks already committed (missed wake-up)" if args.check_wakeups else ""))
    wf_tasks = sum(s["workflow_tasks"] for s in stats)
    replays = sum(s["replays"] for s in stats)
    print(f"  worker                  {wf_tasks} workflow tasks ({wf_tasks / max(n + args.warmup, 1):.2f}/wf incl. warmup), "
          f"{replays} instances built from full history (cache misses, each run's first task included), "
          f"{sum(s['activities'] for s in stats)} activities")

    if args.profile == "cprofile":
        import pstats

        out = args.profile_out or "throughput.prof"
        profiler.dump_stats(out)
        db_profiler.dump_stats(out + ".db")
        print(f"\n=== cProfile, event-loop thread (saved to {out}), by own time")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile_top)
        print("\n=== cProfile, event-loop thread, by cumulative time")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile_top)
        print(f"\n=== cProfile, database thread: reads and lock waits (saved to {out}.db), by own time")
        pstats.Stats(db_profiler).sort_stats("tottime").print_stats(args.profile_top)
        print("\n=== cProfile, database thread: reads and lock waits, by cumulative time")
        pstats.Stats(db_profiler).sort_stats("cumulative").print_stats(args.profile_top)
    elif args.profile == "pyinstrument":
        print(profiler.output_text(unicode=False, color=False, show_all=False))

    if tmpdir and not args.keep:
        shutil.rmtree(tmpdir, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workflows", type=int, default=2000, help="workflows to run (default 2000)")
    p.add_argument("--db", default=None, help="database file (default: a new temp file, deleted afterwards); kept after the run")
    p.add_argument("--overwrite", action="store_true", help="delete the --db file first if it exists")
    p.add_argument("--concurrency", type=int, default=500, help="start_workflow calls gathered at once (default 500)")
    p.add_argument("--workers", type=int, default=1, choices=(1, 2), help="Worker instances on the task queue (default 1)")
    p.add_argument("--processes", type=int, default=1,
                   help="engine processes sharing the database file, each a client and a worker (default 1: this process only; see processes.py)")
    p.add_argument("--shared-queue", action="store_true", help="with --processes: one task queue for all processes instead of one each")
    p.add_argument("--slots", type=int, default=None, help="max concurrent workflow tasks / activities per worker (default: the engine's, 100)")
    p.add_argument("--max-in-flight", type=int, default=0, help="at most this many unfinished workflows at once (default 0: all N at once)")
    p.add_argument("--cache", type=int, default=1000, help="max_cached_workflows per worker (default 1000, the engine's default)")
    p.add_argument("--warmup", type=int, default=50, help="workflows run before measuring (default 50)")
    p.add_argument("--runner", choices=("sandboxed", "unsandboxed"), default="sandboxed",
                   help="workflow runner of the workers (default sandboxed, the engine's default)")
    p.add_argument("--count-statements", action="store_true",
                   help="count SQL statements by verb (SQLite's trace hook: a Python call per statement, about 5%% of the database thread's CPU)")
    p.add_argument("--check-wakeups", action="store_true", help="before each poller sleep, read whether claimable tasks already exist (costs one read per sleep)")
    p.add_argument("--busy", type=int, default=0, metavar="N",
                   help="N processes spinning on a core each during the run: the engine under CPU contention (default 0)")
    p.add_argument("--keep", action="store_true", help="keep the temp database")
    p.add_argument("--profile", choices=("cprofile", "pyinstrument"), default=None, help="profile the measured run")
    p.add_argument("--profile-out", default=None, help="where to save the cProfile stats (default throughput.prof)")
    p.add_argument("--profile-top", type=int, default=30, help="rows of the cProfile table (default 30)")
    args = p.parse_args(argv)
    if args.processes < 1:
        p.error(f"--processes must be 1 or more, not {args.processes}")
    if args.busy < 0:
        p.error(f"--busy must be 0 or more, not {args.busy}")
    if args.shared_queue and args.processes == 1:
        p.error("--shared-queue is for --processes 2 or more (one process has one queue anyway)")
    return args


if __name__ == "__main__":
    from benchmarks._machine import busy_loops, load

    arguments = parse_args()
    load_before = load()
    try:
        with busy_loops(arguments.busy):
            if arguments.processes > 1:
                from benchmarks.processes import run_processes

                run_processes(arguments, *database_path(arguments))
            else:
                asyncio.run(main(arguments))
    except StoreError as e:  # a --db that cannot be opened: the message says why and what to do
        sys.exit(f"throughput.py: {e}")
    # The load includes this run's own processes (about 1 per engine process, plus --busy).
    print(f"  machine load            before {load_before}; after {load()}; {arguments.busy} busy loop(s)")
