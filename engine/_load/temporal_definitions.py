"""The built-in target written for a real Temporal server: temporalio's own workflow and activity.

The same runs as ``engine._load.workflows.LoadTarget`` (same type, activity and signal names,
same inputs), but defined with the temporalio SDK, so that temporalio workers serve them on a
Temporal server (``engine.cli._load_temporal_worker``). The inputs are the engine's
``TargetConfig`` and ``ActivityOrder`` dataclasses, passed through temporalio's sandbox: they are
plain frozen dataclasses, and sharing them keeps the two targets' knobs one and the same.

``definitions_in(module)`` finds a user's temporalio workflows and activities in a module (the
``--module`` of a load test on a server).
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from types import ModuleType
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from engine._load.workflows import CHILD_TYPE, TARGET_ACTIVITY, TARGET_SIGNAL, TARGET_TYPE, ActivityOrder, TargetConfig


@activity.defn(name=TARGET_ACTIVITY)
async def load_activity(order: ActivityOrder) -> str:
    """Waits ``latency`` seconds and fails this attempt with probability ``failure_rate``
    (the coin is seeded by run, activity and attempt, as in the engine's target)."""
    if order.latency:
        await asyncio.sleep(order.latency)
    attempt = activity.info().attempt
    if order.failure_rate and random.Random(f"{order.seed}:{attempt}").random() < order.failure_rate:
        raise ApplicationError(f"load test: attempt {attempt} fails (failure rate {order.failure_rate:g})", type="LoadTestFailure")
    return "ok"


@workflow.defn(name=CHILD_TYPE)
class LoadChild:
    @workflow.run
    async def run(self, order: ActivityOrder) -> str:
        await workflow.execute_activity(TARGET_ACTIVITY, order, start_to_close_timeout=timedelta(seconds=60))
        return "done"


@workflow.defn(name=TARGET_TYPE)
class LoadTarget:
    """Activities, then timers, then waiting for signals, then children (see TargetConfig)."""

    def __init__(self) -> None:
        self.signals = 0

    @workflow.signal(name=TARGET_SIGNAL)
    def load_signal(self) -> None:
        self.signals += 1

    @workflow.run
    async def run(self, config: TargetConfig) -> str:
        me = workflow.info().workflow_id
        retry = RetryPolicy(initial_interval=timedelta(milliseconds=100), backoff_coefficient=1.0, maximum_attempts=config.max_attempts)
        timeout = timedelta(seconds=max(10.0, config.activity_latency * 4))
        for i in range(config.activities):
            order = ActivityOrder(config.activity_latency, config.activity_failure_rate, f"{me}:{i}")
            await workflow.execute_activity(TARGET_ACTIVITY, order, start_to_close_timeout=timeout, retry_policy=retry)
        for _ in range(config.timers):
            await workflow.sleep(config.timer_seconds)
        if config.signals:
            await workflow.wait_condition(lambda: self.signals >= config.signals)
        # Children get ids outside the bench's run-id range (<bench>/run-...), which counts runs.
        base, _, number = me.rpartition("/run-")
        for c in range(config.children):
            order = ActivityOrder(config.activity_latency, 0.0, f"{me}:child:{c}")
            child_id = f"{base}/child-{number}-{c}" if base else f"{me}-child-{c}"
            await workflow.execute_child_workflow(CHILD_TYPE, order, id=child_id)
        return "done"


def definitions_in(module: ModuleType) -> tuple[list[type], list[Any]]:
    """The temporalio workflow classes and activity functions defined at the top of ``module``."""
    workflows = [v for v in vars(module).values() if isinstance(v, type) and hasattr(v, "__temporal_workflow_definition")]
    activities = [v for v in vars(module).values() if callable(v) and hasattr(v, "__temporal_activity_definition")]
    return workflows, activities
