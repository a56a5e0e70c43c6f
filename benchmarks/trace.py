"""Replay debugger: how long recording a trace takes, and how long one step takes to draw.

    .venv/bin/python benchmarks/trace.py                      # a history of about 1,000 events
    .venv/bin/python benchmarks/trace.py --events 3000 --repeat 5

The script runs, once, a workflow of sequential activities in the engine (in memory, time
skipping) sized to give about ``--events`` events, and keeps its history. Then, ``--repeat``
times each: a plain replay (``Replayer.replay_workflow``: what a worker does), and a traced
replay (``Replayer.trace_workflow``: every event and every line recorded with its state).
Then the widget of ``%replay`` is built on one trace (the run graph rendered once by
Graphviz) and moved to random steps: the Python side of one step (every pane redrawn),
without the browser's own drawing. Figures only, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import load  # noqa: E402
from engine import Worker, activity, workflow  # noqa: E402
from engine.history import History  # noqa: E402
from engine.replay import Replayer  # noqa: E402
from engine.testing import WorkflowEnvironment  # noqa: E402

EVENTS_PER_ACTIVITY = 6  # scheduled, started, completed + a workflow task of three


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


async def record(n: int) -> History:
    env = await WorkflowEnvironment.start_time_skipping()
    async with Worker(env.client, task_queue="bench-trace", workflows=[Sequential], activities=[step]):
        await env.client.execute_workflow(Sequential.run, n, id="bench-trace", task_queue="bench-trace")
        history = await env.client.get_workflow_handle("bench-trace").fetch_history()
    await env.shutdown()
    return history


def timed(fn: object, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append(time.perf_counter() - started)
    return out


def spread(values: list[float], unit: float = 1.0, digits: int = 3) -> str:
    values = sorted(v * unit for v in values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"median {statistics.median(values):.{digits}f}, min {values[0]:.{digits}f}, p95 {p95:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="about this many events in the history (default 1000)")
    parser.add_argument("--repeat", type=int, default=5, help="replays and traces of each kind (default 5)")
    parser.add_argument("--steps", type=int, default=200, help="random steps drawn in the widget (default 200)")
    args = parser.parse_args()
    n = max(1, (args.events - 5) // EVENTS_PER_ACTIVITY)
    print(f"load before: {load()}")
    history = asyncio.run(record(n))
    print(f"history: {len(history)} events ({n} activities)")
    replayer = Replayer(workflows=[Sequential])

    plain = timed(lambda: replayer.replay_workflow(history), args.repeat)
    traces = []
    traced = timed(lambda: traces.append(replayer.trace_workflow(history)), args.repeat)
    trace = traces[-1]
    assert trace.ok, trace.failure
    lines = sum(1 for s in trace.steps if s.kind == "line")
    print(f"plain replay:  {spread(plain)} s")
    print(f"traced replay: {spread(traced)} s  ({len(trace.steps)} steps: {len(trace.steps) - lines} events, {lines} lines; "
          f"{statistics.median(traced) / statistics.median(plain):.1f}x the plain replay)")

    try:
        from engine.replay import ReplayDebugger
        from kernel_ext._replay_widget import ReplayView
    except ImportError as e:
        print(f"widget: not measured ({e})")
        return
    from kernel_ext._replay_view import RunGraph

    started = time.perf_counter()
    RunGraph(history).svg()
    graph = time.perf_counter() - started
    started = time.perf_counter()
    view = ReplayView(ReplayDebugger(trace))
    built = time.perf_counter() - started
    picks = random.Random(7).choices(range(len(trace.steps)), k=args.steps)
    draws = timed(lambda: view.debugger.goto(step=picks.pop()), args.steps)
    print(f"widget: built in {built:.3f} s, of which the run graph (steps, DOT, SVG by dot, once) about {graph:.3f} s")
    print(f"one step drawn (Python side, all panes): {spread(draws, 1000, 2)} ms over {args.steps} random steps")
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
