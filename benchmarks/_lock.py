"""The write lock's figures (``Store.lock_stats``, engine/_persistence/writer_lock.py) for the
benchmarks: taken before and after the measured run, and printed per workflow."""

from __future__ import annotations

import dataclasses
from typing import Any


def snapshot(client: Any) -> dict[str, float]:
    """The store's lock counters now ({} for an engine without them, such as an older commit).
    The first snapshot turns on the CPU count inside the lock (off by default: it costs a
    system call per batch edge)."""
    if hasattr(client.store, "measure_lock_cpu"):
        client.store.measure_lock_cpu = True
    stats = getattr(client.store, "lock_stats", None)
    return dataclasses.asdict(stats) if stats is not None else {}


def time_handovers(client: Any) -> None:
    """Stamp each release, so that waiters measure the hand-over (every process must do it)."""
    lock = getattr(client.store, "_writer_lock", None)
    if lock is not None and hasattr(lock, "timed"):
        lock.timed = True


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0) for k in after}


def add(reports: list[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for r in reports:
        for k, v in r.items():
            total[k] = total.get(k, 0) + v
    return total


def lines(lock: dict[str, float], workflows: int, cpu: float, elapsed: float) -> list[str]:
    """What the lock cost, per workflow: held (wall and CPU inside it), CPU outside it, waits
    and their hand-over. ``cpu``: the processes' CPU over the same run."""
    if not lock:
        return ["  write lock              (not measured: this engine has no Store.lock_stats)"]
    n = max(workflows, 1)
    holds = max(lock["holds"], 1)
    out = [
        f"  write lock held         {lock['hold_seconds'] / n * 1000:.3f} ms/wf ({lock['hold_seconds'] / elapsed:.0%} of wall), "
        f"{lock['hold_seconds'] / holds * 1000:.2f} ms per batch, {lock['holds'] / n:.3f} batches/wf; "
        f"CPU inside {lock['hold_cpu_seconds'] / n * 1000:.3f} ms/wf, outside {(cpu - lock['hold_cpu_seconds']) / n * 1000:.3f} ms/wf "
        f"({lock['hold_cpu_seconds'] / max(cpu, 1e-9):.0%} of all CPU inside)",
    ]
    if "hold_preemptions" in lock:
        out.append(
            f"  while held, per batch   {lock['hold_waits_voluntary'] / holds:.2f} waits of the holder (the GIL, the disk), "
            f"{lock['hold_preemptions'] / holds:.2f} preemptions by the scheduler"
        )
    if lock["waits"]:
        handover = (f"hand-over (release -> waiter's thread has it) mean {lock['handover_seconds'] / lock['handovers'] * 1000:.3f} ms; "
                    if lock["handovers"] else "")
        out.append(
            f"  write lock waits        {lock['waits'] / n:.3f}/wf ({lock['waits'] / holds:.0%} of batches), "
            f"{lock['wait_seconds'] / lock['waits'] * 1000:.2f} ms each, {lock['wait_seconds'] / n * 1000:.3f} ms/wf; {handover}"
            f"held before the batch ran (the waiter's event loop busy) {lock['held_idle_seconds'] / lock['waits'] * 1000:.3f} ms per wait, "
            f"{lock['held_idle_seconds'] / n * 1000:.3f} ms/wf"
        )
    return out
