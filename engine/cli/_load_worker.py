"""One worker process of a load test (engine.loadtest starts them; see engine._load.processes).

A ``Client`` and a ``Worker`` on the shared database file, serving the built-in target (and
the user's module or file, if given), writing its counters to the metrics file every half
second, and stopping when its parent (the driver) dies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

from engine._load.bench import load_activity
from engine._load.processes import READY, SYNCHRONOUS, counters, set_synchronous
from engine._load.workflows import LoadChild, LoadTarget
from engine.cli._loader import definitions
from engine.cli._load_serving import serve
from engine.client import Client
from engine.worker import Worker


async def _serve(args: argparse.Namespace) -> None:
    workflows: list[Any] = [LoadTarget, LoadChild]
    activities: list[Any] = [load_activity]
    if args.module or args.file:
        code = definitions(args.module, args.file)
        workflows += list(code.workflows)
        activities += list(code.activities)
    client = await Client.connect(args.db)
    if args.synchronous:
        await set_synchronous(client, args.synchronous)
    try:
        worker = Worker(client, task_queue=args.task_queue, workflows=workflows, activities=activities,
                        max_concurrent_activities=args.max_concurrent_activities, graceful_shutdown_timeout=timedelta(seconds=2))
        await serve(worker, Path(args.metrics), lambda: counters(args.name, client),
                    f"{READY}: {args.name} pid {os.getpid()} on {args.task_queue!r}", args.parent_pid)
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.cli._load_worker", description="One worker process of a load test.")
    parser.add_argument("--db", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--name", default="worker")
    parser.add_argument("--module")
    parser.add_argument("--file")
    parser.add_argument("--synchronous", choices=SYNCHRONOUS)
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--max-concurrent-activities", type=int)
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
