"""``dlab worker``: serve a task queue from a Python module or file, over the shared database file."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
from datetime import timedelta
from typing import Any

from engine.cli._common import EXIT_INTERRUPTED, EXIT_OK, Out, add_common, db_path, duration, open_client
from engine.cli._loader import add_source_options, definitions
from engine.cli._parent import stop_with_parent
from engine.worker import Worker

READY = "dlab worker ready"


def register(sub: Any) -> None:
    text = (
        "Serve a task queue: run the workflows and activities of a module or file until SIGINT or SIGTERM. "
        f"Prints one line starting with '{READY}' once it polls. Workflows started anywhere (a notebook, "
        "a script, 'dlab workflow start') run here; a worker killed mid-run leaves nothing behind that "
        "another worker cannot finish."
    )
    parser = sub.add_parser("worker", help="Serve a task queue from a Python module or file.", description=text)
    parser.set_defaults(handler=run)
    parser.add_argument("-t", "--task-queue", required=True, metavar="QUEUE", help="Task queue to poll.")
    add_source_options(parser, required=True, purpose="every @workflow.defn class and @activity.defn function in it is served")
    parser.add_argument("--workflow", action="append", default=[], metavar="NAME", help="Serve only this workflow (type or class name); repeatable.")
    parser.add_argument("--activity", action="append", default=[], metavar="NAME", help="Serve only this activity (type or function name); repeatable.")
    parser.add_argument("--max-concurrent-activities", type=int, metavar="N", help="Activities run at once (default 100).")
    parser.add_argument("--max-concurrent-workflow-tasks", type=int, metavar="N", help="Workflow tasks run at once (default 100).")
    parser.add_argument(
        "--graceful-shutdown-timeout", type=duration, default=timedelta(seconds=10), metavar="DURATION",
        help="On SIGINT/SIGTERM, let running activities finish for this long before cancelling them (default 10s; a second signal stops at once).",
    )
    parser.add_argument(
        "--parent-pid", type=int, metavar="PID",
        help="Stop (as on SIGTERM) when process PID exits: a notebook kernel passes its own pid, so that its workers die with it.",
    )
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="warning", help="Engine log messages on stderr (default warning).")
    add_common(parser, output=())


# Repeated SIGTERMs this soon after the first are one stop of a worker whose parent died.
PARENT_DEATH_ECHO = 1.0


async def run(args: argparse.Namespace, out: Out) -> int:
    code = definitions(args.module, args.file, workflows=args.workflow, activities=args.activity)
    logging.basicConfig(level=logging.WARNING, stream=out.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("engine").setLevel(args.log_level.upper())  # not aiosqlite's chatter
    client = await open_client(args, create=True)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signals_seen = 0
    first_signal_at = 0.0

    def on_signal(signum: int) -> None:
        nonlocal signals_seen, first_signal_at
        if signals_seen and signum == signal.SIGTERM and args.parent_pid and (
            os.getppid() != args.parent_pid or time.monotonic() - first_signal_at < PARENT_DEATH_ECHO
        ):
            # The parent is gone, or going: Linux's death signal (sent as the parent's threads
            # exit, before this process is handed to a new parent, and seen here twice at
            # once) and the watchdog each send SIGTERM; no one is asking to stop at once.
            return
        signals_seen += 1
        if signals_seen == 1:
            first_signal_at = time.monotonic()
        if signals_seen > 1:
            out.stderr.write("Stopping at once; unfinished work is retried by the next worker.\n")
            out.stderr.flush()
            out.stdout.flush()
            os._exit(EXIT_INTERRUPTED)  # the database is consistent between transactions
        out.stderr.write(
            f"Stopping ({signal.Signals(signum).name}): workflow tasks in flight finish, running activities get "
            f"{args.graceful_shutdown_timeout.total_seconds():g}s. Signal again to stop at once.\n"
        )
        out.stderr.flush()
        stopping.set()

    watchdog = None
    try:
        worker = Worker(
            client, task_queue=args.task_queue, workflows=list(code.workflows), activities=list(code.activities),
            max_concurrent_activities=args.max_concurrent_activities,
            max_concurrent_workflow_tasks=args.max_concurrent_workflow_tasks,
            graceful_shutdown_timeout=args.graceful_shutdown_timeout,
        )
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        watchdog = stop_with_parent(args.parent_pid) if args.parent_pid else None
        serving = asyncio.ensure_future(worker.run())
        await asyncio.sleep(0)  # run() starts polling before its first await
        if serving.done():
            serving.result()
        out.line(
            f"{READY}: task queue {args.task_queue!r}; workflows: {', '.join(code.workflow_names()) or 'none'}; "
            f"activities: {', '.join(code.activity_names()) or 'none'}; db {_shown(db_path(args))}; pid {os.getpid()}"
        )
        stop = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({serving, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if serving.done():
            serving.result()  # the worker ended on its own: an engine error, reported by main
        await worker.shutdown()
        await serving  # run() returns once in-flight work is done or cancelled
        stats = worker.stats
        out.line(f"dlab worker stopped: {stats['workflow_tasks']} workflow tasks, {stats['activities']} activities run.")
        return EXIT_OK
    finally:
        if watchdog is not None:
            watchdog.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await client.close()


def _shown(path: str) -> str:
    return path if path == ":memory:" else os.path.abspath(os.path.expanduser(path))
