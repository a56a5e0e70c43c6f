"""The cyclic garbage collector's share of a benchmark's CPU (``gc.callbacks``): how long its
collections took over the measured run, by generation, and how many objects they freed.

Session 7 found it at 30-55% of the process's CPU in ``throughput.py``, mostly full
collections (benchmarks/README.md); this prints it with every run so that a change to it
shows. The callbacks cost two calls per collection (hundreds per run)."""

from __future__ import annotations

import gc
import time
from typing import Any

GENERATIONS = 3


class CollectorTimer:
    def __init__(self) -> None:
        self.seconds = [0.0] * GENERATIONS
        self.collections = [0] * GENERATIONS
        self.freed = [0] * GENERATIONS
        self._since = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._since = time.perf_counter()
            return
        g = info["generation"]
        self.seconds[g] += time.perf_counter() - self._since
        self.collections[g] += 1
        self.freed[g] += info["collected"]

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> dict[str, list[float]]:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
        return {"seconds": list(self.seconds), "collections": list(self.collections), "freed": list(self.freed)}


def add(reports: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    total: dict[str, list[float]] = {}
    for r in reports:
        for key, values in r.items():
            total[key] = [a + b for a, b in zip(total.get(key, [0.0] * GENERATIONS), values)]
    return total


def line(report: dict[str, list[float]], workflows: int, cpu: float) -> str:
    """One line: collector time per workflow and its share of ``cpu``, then by generation."""
    if not report:
        return "  garbage collector       (not measured)"
    n = max(workflows, 1)
    total = sum(report["seconds"])
    by_generation = ", ".join(
        f"{int(c)} x {s / c * 1000:.2f} ms" if c else "0" for c, s in zip(report["collections"], report["seconds"])
    )
    return (
        f"  garbage collector       {total / n * 1000:.3f} ms/wf ({total / max(cpu, 1e-9):.0%} of all CPU); collections by generation "
        f"0 / 1 / 2: {by_generation}; {sum(report['freed']) / n:.0f} objects of cyclic garbage freed per workflow"
    )
