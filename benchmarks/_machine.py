"""The machine beside a figure: its load while the figure was taken, and contention made on purpose.

A throughput figure from a shared 2-core machine means little without the load it was taken
under (the same run did 189-400 workflows/s in one minute and 470-682 in another), so every run
prints the load average before and after. ``busy_loops(n)`` adds ``n`` processes that spin on a
core each for the run, to measure the engine when something else wants the CPU too.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from typing import Iterator

# A spinning process stops by itself after this long even if the benchmark dies without
# terminating it (bounded, as every load this project makes must be).
SPIN_LIMIT_S = 900.0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} / {five:.2f} (1 / 5 min) on {os.cpu_count()} cores"


def _spin(deadline: float) -> None:
    while time.monotonic() < deadline:
        pass


@contextlib.contextmanager
def busy_loops(n: int) -> Iterator[None]:
    """``n`` processes each spinning on a core while the block runs."""
    deadline = time.monotonic() + SPIN_LIMIT_S
    procs = [multiprocessing.Process(target=_spin, args=(deadline,), daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()
