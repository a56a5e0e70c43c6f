"""The activities of a load test: the built-in target's one, and the bench's second.

``load_tick`` is where the bench meets the system under load: it starts the runs due in its
second, spread over the second in ten slices (as maru's driver activity paces its starts),
sends the signals the built-in target waits for, and returns the second's sample. Run ids
are fixed by their number (``<bench>/run-000042``) and started with REJECT_DUPLICATE, so a
tick that is tried again after its driver died starts nothing twice.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

from engine import activity
from engine._load.processes import ProcessMeter, counters
from engine._load.target import TargetSystem
from engine._load.workflows import TARGET_ACTIVITY, TARGET_SIGNAL, TICK_ACTIVITY, ActivityOrder, TickOrder
from engine.errors import ApplicationError, EngineError

SLICES = 10


@activity.defn(name=TARGET_ACTIVITY)
async def load_activity(order: ActivityOrder) -> str:
    """The built-in target's activity: waits ``latency`` seconds, and fails this attempt with
    probability ``failure_rate`` (a coin seeded by run, activity and attempt: the same test
    fails the same attempts)."""
    if order.latency:
        await asyncio.sleep(order.latency)
    attempt = activity.info().attempt
    if order.failure_rate and random.Random(f"{order.seed}:{attempt}").random() < order.failure_rate:
        raise ApplicationError(f"load test: attempt {attempt} fails (failure rate {order.failure_rate:g})", type="LoadTestFailure")
    return "ok"


def run_id_of(bench_id: str, number: int) -> str:
    return f"{bench_id}/run-{number:06d}"


def runs_prefix(bench_id: str) -> str:
    return f"{bench_id}/run-"


@dataclass
class BenchContext:
    """What the driving process gives the bench's activity: where to start runs, of what, and
    what to do with each sample (a progress bar, a live plot)."""

    bench_id: str
    target: TargetSystem
    workflow_type: str
    task_queue: str
    make_input: Callable[[int], Any]
    signals: int = 0
    readings: Callable[[], list[dict[str, Any]]] = list
    client: Any = None
    on_sample: Callable[[dict[str, Any]], None] | None = None


class BenchActivities:
    def __init__(self, context: BenchContext) -> None:
        self.context = context
        self.meter = ProcessMeter()
        self.last_close = 0.0

    @activity.defn(name=TICK_ACTIVITY)
    async def tick(self, order: TickOrder) -> dict[str, Any]:
        c = self.context
        begin = time.time()
        # The second ends tick_seconds after the previous sample; a driver that fell behind
        # (it was busy, or it is new after a crash) starts a fresh second rather than bursting.
        end = order.previous + order.tick_seconds if order.previous else begin + order.tick_seconds
        if end <= begin or end > begin + order.tick_seconds:
            end = begin + order.tick_seconds
        if not self.meter.primed:
            self.meter.measure(self._readings())  # a baseline, so that the first second has figures too
        prefix = runs_prefix(c.bench_id)
        before = await c.target.progress(prefix, begin)
        want = max(0, order.due - order.started)
        if order.max_in_flight:
            want = min(want, max(0, order.max_in_flight - before.open))
        started = order.started
        for s in range(SLICES):
            share = want * (s + 1) // SLICES - want * s // SLICES
            numbers = range(started, started + share)
            await asyncio.gather(*(self._start(n) for n in numbers))
            started += share
            activity.heartbeat(started)
            pause = begin + (end - begin) * (s + 1) / SLICES - time.time()
            if pause > 0:
                await asyncio.sleep(pause)
        # The second ends when its starts are done: the reads below belong to the sample, and
        # the next second begins from here (else every second would last 1 s plus the reads).
        ended = time.time()
        # Runs closed since the last sample this process took (after a restart: since this tick began).
        since = self.last_close or begin - order.tick_seconds
        after = await c.target.progress(prefix, since)
        self.last_close = max(after.latest_close, since)
        backlog_wf, backlog_act = await c.target.backlog(c.task_queue)
        cpu, lock_wait = self.meter.measure(self._readings())
        now = time.time()
        latencies = sorted(after.latencies)
        sample: dict[str, Any] = {
            "second": order.second,
            "step": order.step,
            "time": round(ended, 3),
            "draining": order.draining,
            "offered": order.offered,
            "due_total": order.due,
            "started": started - order.started,
            "started_total": started,
            "closed": len(latencies),
            "closed_total": after.closed,
            "failed_total": after.failed,
            "in_flight": after.open,
            "waiting_to_start": order.due - started,
            "backlog_workflow_tasks": backlog_wf,
            "backlog_activity_tasks": backlog_act,
            "latency_p50": _pct(latencies, 50),
            "latency_p95": _pct(latencies, 95),
            "latency_p99": _pct(latencies, 99),
            "db_bytes": c.target.storage_bytes(),
            "cpu": cpu,
            "lock_wait": lock_wait if c.target.has_write_lock else None,
            "tick_seconds": round(now - begin, 3),
        }
        if c.on_sample is not None:
            c.on_sample(sample)
        return sample

    def _readings(self) -> list[dict[str, Any]]:
        readings = list(self.context.readings())
        if self.context.client is not None:
            driver = counters("driver", self.context.client)
            if not self.context.target.has_write_lock:
                driver.pop("lock_wait")  # the bench's own database: not the system under load
            readings.append(driver)
        return readings

    async def _start(self, number: int) -> None:
        c = self.context
        workflow_id = run_id_of(c.bench_id, number)
        fresh = await c.target.start_run(workflow_id, c.workflow_type, c.make_input(number), c.task_queue)
        for _ in range(c.signals):
            try:
                await c.target.signal_run(workflow_id, TARGET_SIGNAL)
            except EngineError:
                # Started before a crash: it may have had its signals and closed. One that
                # had not gets them now (extra ones change nothing: the target counts >=).
                if fresh:
                    raise


def _pct(values: list[float], p: float) -> float | None:
    """The p-th percentile of sorted ``values`` (interpolated between ranks); None when there are none."""
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 4)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1], 4)
