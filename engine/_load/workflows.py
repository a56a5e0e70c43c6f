"""The load lab's workflows: the built-in target and the bench that drives a scenario.

A module of its own and kept small, because the sandbox runs a fresh copy of the defining
module for every workflow instance. Activities are called by name, so that this module does
not import the activities' module (and what it imports) into every instance.

The bench is a workflow for the reason maru's is one: the load test is then durable. Its
history is the test (one ``load_tick`` activity per second, whose result is that second's
sample), and when the process driving it dies, a new driver replays the bench and it goes
on from the last completed second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from engine import workflow
from engine.common import RetryPolicy

TICK_ACTIVITY = "load_tick"
TARGET_ACTIVITY = "load_activity"
TARGET_SIGNAL = "load_signal"
TARGET_TYPE = "LoadTarget"
CHILD_TYPE = "LoadChild"
BENCH_TYPE = "LoadBench"


@dataclass(frozen=True)
class TargetConfig:
    """What one run of the built-in target ``LoadTarget`` does, in this order: ``activities``
    activities one after the other, each taking ``activity_latency`` seconds and failing an
    attempt with probability ``activity_failure_rate`` (retried, at most ``max_attempts``
    attempts); ``timers`` timers of ``timer_seconds``; waiting for ``signals`` signals (the
    bench sends them right after the start); ``children`` child runs of one activity each."""

    activities: int = 1
    activity_latency: float = 0.0
    activity_failure_rate: float = 0.0
    max_attempts: int = 5
    timers: int = 0
    timer_seconds: float = 0.1
    signals: int = 0
    children: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("activities", "timers", "signals", "children"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be 0 or more (got {getattr(self, name)})")
        if self.activity_latency < 0 or self.timer_seconds < 0:
            problems.append("activity_latency and timer_seconds are seconds, 0 or more")
        if not 0 <= self.activity_failure_rate < 1:
            problems.append(f"activity_failure_rate is a probability below 1 (got {self.activity_failure_rate})")
        if self.max_attempts < 1:
            problems.append(f"max_attempts must be 1 or more (got {self.max_attempts})")
        if problems:
            raise ValueError("TargetConfig: " + "; ".join(problems) + ".")


@dataclass(frozen=True)
class ActivityOrder:
    """One activity of the target: its latency and failure rate, and a seed for its coin."""

    latency: float
    failure_rate: float
    seed: str


@dataclass
class BenchPlan:
    """The bench's input: the offered starts of each second (``offered[k]`` runs in second
    k), the step each second belongs to, the cap on runs in flight (0: none), and how many
    seconds after the last start the bench waits for the runs to close."""

    offered: list[int]
    step_of_second: list[int]
    max_in_flight: int = 0
    drain_seconds: int = 60
    tick_seconds: float = 1.0
    # The scenario as the report shows it (steps, target, seed): a report rebuilt later from
    # the database alone needs it.
    scenario: dict = field(default_factory=dict)


@dataclass
class TickOrder:
    """What the bench asks of the second ``second``: start runs up to ``due`` in all, given
    that ``started`` are started already."""

    second: int
    step: int
    offered: int
    due: int
    started: int
    max_in_flight: int
    tick_seconds: float
    draining: bool = False
    # When the previous second's sample was taken (Unix seconds; 0 for the first): this second
    # ends tick_seconds later, so that the time between ticks (the bench's own workflow task)
    # does not stretch the test's seconds and lower the rate actually offered.
    previous: float = 0.0


@dataclass
class BenchOutcome:
    seconds: int
    started: int
    closed: int
    total: int
    drained: bool


@workflow.defn(name=CHILD_TYPE)
class LoadChild:
    @workflow.run
    async def run(self, order: ActivityOrder) -> str:
        await workflow.execute_activity(TARGET_ACTIVITY, order, start_to_close_timeout=timedelta(seconds=60))
        return "done"


@workflow.defn(name=TARGET_TYPE)
class LoadTarget:
    """The built-in target: a configurable mix of what workflows do (omes calls its own the
    kitchen sink)."""

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


@workflow.defn(name=BENCH_TYPE)
class LoadBench:
    """Drives a scenario one second at a time; its history holds one sample per second."""

    def __init__(self) -> None:
        self.last: dict = {}

    @workflow.query(name="progress")
    def progress(self) -> dict:
        return self.last

    @workflow.run
    async def run(self, plan: BenchPlan) -> BenchOutcome:
        total = sum(plan.offered)
        due = started = closed = 0
        second = 0
        previous = 0.0
        drained = total == 0
        # A tick is short; the heartbeat timeout is what lets a new driver take the second
        # over soon after the old one died mid-tick.
        retry = RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=1.0)
        while not drained:
            scheduled = second < len(plan.offered)
            if not scheduled and second >= len(plan.offered) + plan.drain_seconds:
                break
            offered = plan.offered[second] if scheduled else 0
            due += offered
            step = plan.step_of_second[second] if scheduled else plan.step_of_second[-1]
            order = TickOrder(second, step, offered, due, started, plan.max_in_flight, plan.tick_seconds, not scheduled, previous)
            sample = await workflow.execute_activity(
                TICK_ACTIVITY, order, result_type=dict, start_to_close_timeout=timedelta(seconds=120),
                heartbeat_timeout=timedelta(seconds=3), retry_policy=retry,
            )
            started = int(sample["started_total"])
            closed = int(sample["closed_total"])
            previous = float(sample["time"])
            self.last = sample
            second += 1
            drained = second >= len(plan.offered) and started >= total and closed >= total
        return BenchOutcome(second, started, closed, total, drained)
