"""How long the run explorer takes to open a big run, and to answer clicks on it.

    .venv/bin/python benchmarks/explorer.py                 # a run of about 10,000 events
    .venv/bin/python benchmarks/explorer.py --activities 300 --repeat 5

The script runs, once, a workflow of sequential activities in the engine (a real client and
worker on an in-memory database; 6 events per activity, so 1,666 activities make about 10,000
events), every fifth activity failing once so that attempts and backoff gaps exist. Then, each
``--repeat`` times from a cold start (the graph's SVG cache emptied), it times what opening the
explorer costs: the snapshot read (one read transaction, JSON decoding), building the model
(steps, collapsed graph, timeline, first page of events), Graphviz's layout, the widget's state
as sent to the browser, and the static HTML fallback. Then what the learner's actions cost:
a click on a node, a search, a filter, a page. It prints figures; it never asserts on them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._machine import load  # noqa: E402
from engine import Client, Worker, activity, workflow  # noqa: E402
from engine.common import RetryPolicy  # noqa: E402
from engine.errors import ApplicationError  # noqa: E402
from engine.run_snapshot import read_snapshot  # noqa: E402
from kernel_ext import graphs  # noqa: E402
from kernel_ext.explorer import RunExplorer  # noqa: E402

FAILED_ONCE: set[int] = set()


@activity.defn
async def step(i: int) -> int:
    if i % 5 == 0 and i not in FAILED_ONCE:
        FAILED_ONCE.add(i)
        raise ApplicationError(f"step {i}: first try fails")
    return i + 1


@workflow.defn
class Loop:
    @workflow.run
    async def run(self, n: int) -> int:
        total = 0
        policy = RetryPolicy(initial_interval=timedelta(milliseconds=1), maximum_attempts=3)
        for i in range(n):
            total += await workflow.execute_activity(step, i, start_to_close_timeout=timedelta(seconds=30), retry_policy=policy)
        return total


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


async def open_once(client: Client) -> dict[str, float]:
    graphs._render.cache_clear()  # cold: Graphviz lays the graph out again
    figures: dict[str, float] = {}
    started = time.perf_counter()
    snapshot = await read_snapshot(client, "big")
    figures["snapshot read"] = time.perf_counter() - started
    figures["widget built (model, graph SVG, timeline, first page)"], explorer = timed(lambda: RunExplorer(client, snapshot))
    figures["state sent to the browser (serialised)"], size = timed(lambda: len(json.dumps(explorer.get_state())))
    figures["static HTML fallback"], _ = timed(explorer.static_html)
    figures["total to open"] = time.perf_counter() - started
    figures["state size (MB)"] = size / 1e6
    node = next(iter(explorer.model.nodes))
    figures["click on a node"], _ = timed(lambda: explorer.select("node:" + node))
    figures["click on an event"], _ = timed(lambda: explorer.select("event:5000"))
    figures["search 'attempt 2'"], _ = timed(lambda: setattr(explorer, "search", "attempt 2"))
    figures["filter by type"], _ = timed(lambda: setattr(explorer, "kind_filter", "ActivityTaskStarted"))
    figures["next page"], _ = timed(lambda: setattr(explorer, "page", 3))
    return figures


async def main(activities: int, repeat: int) -> None:
    logging.getLogger("engine.worker").setLevel(logging.CRITICAL)  # the failed first tries are on purpose
    print(f"load before: {load()}")
    client = await Client.connect(":memory:")
    async with Worker(client, task_queue="bench", workflows=[Loop], activities=[step]):
        started = time.perf_counter()
        await client.execute_workflow(Loop.run, activities, id="big", task_queue="bench")
        made = time.perf_counter() - started
    history = await client.get_workflow_handle("big").fetch_history()
    attempts = await client.get_workflow_handle("big").activity_attempts()
    print(f"run: {activities} activities, {len(history.events)} events, {len(attempts)} attempts (made in {made:.1f} s)")
    rounds = [await open_once(client) for _ in range(repeat)]
    explorer = RunExplorer(client, await read_snapshot(client, "big"))
    print(f"graph: {len(explorer.model.nodes)} nodes for {len(explorer.model.rows)} steps (runs of identical steps collapsed, "
          f"at most 200 nodes); timeline: {len(explorer.timeline['bars'])} bars "
          f"on {len(explorer.timeline['lanes'])} lanes{' (' + explorer.timeline['note'] + ')' if explorer.timeline['note'] else ''}; "
          f"events table: {explorer.table['pages']} pages of {len(explorer.table['rows'])}")
    print(f"{'':58} {'median':>9} {'min':>9} {'max':>9}")
    for name in rounds[0]:
        values = [r[name] for r in rounds]
        unit = "" if name.endswith("(MB)") else " s"
        print(f"{name:58} {statistics.median(values):>8.3f}{unit} {min(values):>8.3f}{unit} {max(values):>8.3f}{unit}")
    print(f"load after: {load()}")
    await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=1666, help="sequential activities (6 events each)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.activities, args.repeat))
