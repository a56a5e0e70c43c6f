"""Replay speed: how fast a worker rebuilds a workflow's state from its history.

    .venv/bin/python benchmarks/replay.py                     # 10 / 100 / 1000 activities
    .venv/bin/python benchmarks/replay.py --sizes 10 100 --repeat 50
    .venv/bin/python benchmarks/replay.py --profile 1000      # cProfile one size's replays

For each size the script runs, once, a workflow of that many sequential activities in the
engine (a real client and worker on an in-memory database) and keeps its closed history.
Then it replays that history ``--repeat`` times, each time with a fresh worker-side instance
(``WorkflowInstance`` + ``WorkflowInfo``, built the way ``Worker._new_instance`` builds one)
fed the whole history with ``apply(events, live_tail=False)``: the work a worker does after a
restart or a cache eviction, minus the database read. The database read (``read_events``:
SQL + JSON decoding of every event) is timed separately, and together with the replay as
"cold". The script prints figures; it never asserts on them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import Client, Worker, activity, workflow  # noqa: E402
from engine._history.workflow_tasks import read_events
from engine._sandbox.translation import workflow_definition  # noqa: E402
from engine._api.durations import from_duration  # noqa: E402
from engine._runtime.info import WorkflowInfo  # noqa: E402
from engine._runtime.instance import WorkflowInstance  # noqa: E402
from engine.history import HistoryEvent  # noqa: E402
from engine.worker.workflow_sandbox import SandboxedWorkflowRunner, UnsandboxedWorkflowRunner, WorkflowRunner  # noqa: E402

# Set from --runner in main(); builds each instance as a worker with that runner does.
RUNNER: WorkflowRunner = SandboxedWorkflowRunner()

TASK_QUEUE = "bench-replay"


@activity.defn
async def step(i: int) -> int:
    return i + 1


@workflow.defn
class Sequential:
    @workflow.run
    async def run(self, n: int) -> int:
        total = 0
        for i in range(n):
            total += await workflow.execute_activity(step, i, start_to_close_timeout=timedelta(seconds=30))
        return total


def expected(n: int) -> int:
    return n * (n + 1) // 2


async def record(client: Client, n: int) -> tuple[str, str, list[HistoryEvent], float]:
    """Run one workflow of ``n`` activities; return its ids, its closed history, and seconds taken."""
    t0 = time.perf_counter()
    handle = await client.start_workflow(Sequential.run, n, id=f"replay-{n}", task_queue=TASK_QUEUE)
    result = await handle.result()
    took = time.perf_counter() - t0
    if result != expected(n):
        raise RuntimeError(f"workflow of {n} activities returned {result!r}")
    history = await handle.fetch_history()
    assert handle.run_id is not None
    return handle.id, handle.run_id, list(history.events), took


def fresh_instance(workflow_id: str, run_id: str, events: Sequence[HistoryEvent], namespace: str = "default") -> WorkflowInstance:
    """A worker-side instance for the run, as ``Worker._new_instance`` builds it."""
    defn = workflow_definition(Sequential)
    started = events[0].attributes
    info = WorkflowInfo(
        workflow_id=workflow_id,
        run_id=run_id,
        workflow_type=defn.name,
        task_queue=TASK_QUEUE,
        namespace=namespace,
        attempt=int(started.get("attempt", 1) or 1),
        start_time=events[0].event_time,
        first_execution_run_id=str(started.get("firstExecutionRunId") or run_id),
        execution_timeout=from_duration(started.get("workflowExecutionTimeout")),
        run_timeout=from_duration(started.get("workflowRunTimeout")),
        task_timeout=from_duration(started.get("workflowTaskTimeout")) or timedelta(seconds=10),
    )
    return RUNNER.create_instance(defn, info)


def replay_once(workflow_id: str, run_id: str, events: Sequence[HistoryEvent]) -> float:
    t0 = time.perf_counter()
    instance = fresh_instance(workflow_id, run_id, events)
    instance.apply(events, live_tail=False)
    took = time.perf_counter() - t0
    if not instance._finished:
        raise RuntimeError("replay did not reach the end of the workflow")
    instance.evict()
    return took


def timed_runs(fn: Callable[[], float], repeat: int) -> list[float]:
    fn()  # warm-up (imports, caches)
    gc.collect()
    return [fn() for _ in range(repeat)]


def repeat_for(n_events: int, requested: int | None) -> int:
    if requested:
        return requested
    # About 100k events per size by default, at least 5 and at most 2000 replays.
    return max(5, min(2000, 100_000 // max(n_events, 1)))


async def main(args: argparse.Namespace) -> None:
    global RUNNER
    RUNNER = SandboxedWorkflowRunner() if args.runner == "sandboxed" else UnsandboxedWorkflowRunner()
    client = await Client.connect(":memory:")
    rows: list[tuple[Any, ...]] = []
    try:
        async with Worker(client, task_queue=TASK_QUEUE, workflows=[Sequential], activities=[step]):
            recorded = {}
            for n in args.sizes:
                recorded[n] = await record(client, n)

        for n in args.sizes:
            workflow_id, run_id, events, ran = recorded[n]
            repeat = repeat_for(len(events), args.repeat)

            if args.profile == n:
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.enable()
                for _ in range(repeat):
                    replay_once(workflow_id, run_id, events)
                prof.disable()
                print(f"\ncProfile of {repeat} replays of the {n}-activity history ({len(events)} events):")
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)

            replays = timed_runs(lambda: replay_once(workflow_id, run_id, events), repeat)

            reads: list[float] = []
            for _ in range(max(3, min(repeat, 200))):
                t0 = time.perf_counter()
                fetched = await client.store.read(read_events, run_id, 0)
                reads.append(time.perf_counter() - t0)
            if len(fetched) != len(events):
                raise RuntimeError("read_events returned a different history")
            rows.append((n, len(events), ran, repeat, statistics.median(replays), min(replays), statistics.median(reads)))
    finally:
        await client.close()

    print(f"durable-lab replay speed (Python {sys.version.split()[0]}); each history replayed by a fresh WorkflowInstance "
          f"({args.runner} runner: instance creation included)")
    print(f"{'activities':>10} {'events':>7} {'recorded in':>12} {'replays':>8} {'ms/replay':>10} {'events/s':>11} "
          f"{'best ms':>8} {'db read ms':>11} {'cold ms':>8} {'cold ev/s':>10}")
    for n, n_events, ran, repeat, med, best, read in rows:
        cold = med + read
        print(f"{n:>10} {n_events:>7} {ran * 1000:>10.0f}ms {repeat:>8} {med * 1000:>10.3f} {n_events / med:>11,.0f} "
              f"{best * 1000:>8.3f} {read * 1000:>11.3f} {cold * 1000:>8.3f} {n_events / cold:>10,.0f}")
    print("ms/replay and events/s: median over the replays (apply only); best: fastest replay;")
    print("db read: median read_events of the whole history from SQLite; cold = db read + replay (a worker after a cache miss).")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], help="activities per history (default 10 100 1000)")
    p.add_argument("--repeat", type=int, default=None, help="replays per size (default: ~100k events' worth, 5..2000)")
    p.add_argument("--profile", type=int, default=None, metavar="SIZE", help="also cProfile the replays of this size")
    p.add_argument("--runner", choices=("sandboxed", "unsandboxed"), default="sandboxed",
                   help="how each instance is built (default sandboxed, as a worker does by default)")
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
