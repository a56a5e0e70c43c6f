"""What both kinds of load-test worker process do once their worker is built: run it, write
its counters every half second, announce that it is ready, and stop on SIGINT/SIGTERM or when
the driver (its parent) dies. The engine's worker (``_load_worker``) and temporalio's
(``_load_temporal_worker``) differ only in how they are built and what they count."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any, Callable, Protocol

from engine._load.processes import METRICS_EVERY, write_atomically
from engine.cli._parent import stop_with_parent


class Runnable(Protocol):
    async def run(self) -> None: ...

    async def shutdown(self) -> None: ...


async def serve(worker: Runnable, metrics: Path, counters: Callable[[], dict[str, Any]], ready: str, parent_pid: int | None) -> None:
    """Run ``worker`` until a stop signal or the parent's death, then shut it down gracefully.
    A worker that fails on its own re-raises here, so the process exits with its error."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    watchdog = stop_with_parent(parent_pid) if parent_pid else None
    try:
        serving = asyncio.ensure_future(worker.run())
        await asyncio.sleep(0)
        write_atomically(metrics, counters())
        print(ready, flush=True)
        while not stopping.is_set() and not serving.done():
            try:
                await asyncio.wait_for(stopping.wait(), METRICS_EVERY)
            except asyncio.TimeoutError:
                pass
            write_atomically(metrics, counters())
        if serving.done():
            serving.result()
        await worker.shutdown()
        await serving
    finally:
        if watchdog is not None:
            watchdog.cancel()
