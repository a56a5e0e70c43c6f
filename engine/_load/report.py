"""A load test's measurements: one record per run (from its history), one row per second (the
bench's samples), one row per step, and the finding in a sentence.

Everything here is computed from histories and samples alone, so a report can be rebuilt at
any time from the database file: the bench's history holds the samples, the runs' histories
the rest.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

from engine.history import History

CLOSE_STATUS = {
    "WorkflowExecutionCompleted": "Completed",
    "WorkflowExecutionFailed": "Failed",
    "WorkflowExecutionTimedOut": "TimedOut",
    "WorkflowExecutionCanceled": "Canceled",
    "WorkflowExecutionTerminated": "Terminated",
    "WorkflowExecutionContinuedAsNew": "ContinuedAsNew",
}
# The columns of seconds.csv in reading order (then one cpu_* and lock_wait_* per process).
SAMPLE_COLUMNS = (
    "second", "step", "time", "draining", "offered", "started", "closed", "due_total", "started_total", "closed_total",
    "failed_total", "in_flight", "waiting_to_start", "backlog_workflow_tasks", "backlog_activity_tasks",
    "latency_p50", "latency_p95", "latency_p99", "db_bytes", "tick_seconds",
)
# A step whose p99 stays under this (seconds) and whose backlog does not grow is "keeping up".
DEFAULT_P99_LIMIT = 1.0


@dataclass(frozen=True)
class RunRecord:
    """One target run, measured from its history (times are Unix seconds)."""

    workflow_id: str
    run_id: str
    status: str
    start: float
    end: float | None
    latency: float | None
    workflow_tasks: int
    workflow_task_wait_mean: float | None
    workflow_task_wait_max: float | None
    activities: int
    activity_attempts: int
    activity_wait_mean: float | None
    activity_wait_max: float | None
    step: int = -1


def run_record(history: History, step: int = -1) -> RunRecord:
    """Measure one run from its history: start and end (its first and closing events), the
    end-to-end latency, and the schedule-to-start wait of each workflow task and activity
    (the time between a task's Scheduled event and its Started event)."""
    if not history.events or history.events[0].event_type != "WorkflowExecutionStarted":
        raise ValueError(f"The history of {history.workflow_id!r} does not begin with WorkflowExecutionStarted: it cannot be measured.")
    times = {e.event_id: e.event_time for e in history.events}
    start_time = history.events[0].event_time
    assert start_time is not None
    status, end = "Running", None
    wft_waits: list[float] = []
    act_waits: list[float] = []
    attempts = 0
    for event in history.events:
        if event.event_type in CLOSE_STATUS:
            status, end = CLOSE_STATUS[event.event_type], event.event_time
        elif event.event_type in ("WorkflowTaskStarted", "ActivityTaskStarted"):
            scheduled = times.get(int(event.attributes.get("scheduledEventId", 0)))
            if scheduled is None or event.event_time is None:
                continue
            wait = (event.event_time - scheduled).total_seconds()
            if event.event_type == "WorkflowTaskStarted":
                wft_waits.append(wait)
            else:
                act_waits.append(wait)
                attempts += int(event.attributes.get("attempt", 1))
    start = start_time.timestamp()
    end_s = end.timestamp() if end is not None else None
    return RunRecord(
        workflow_id=history.workflow_id,
        run_id=history.run_id,
        status=status,
        start=start,
        end=end_s,
        latency=None if end_s is None else end_s - start,
        workflow_tasks=len(wft_waits),
        workflow_task_wait_mean=_mean(wft_waits),
        workflow_task_wait_max=max(wft_waits, default=None),
        activities=len(act_waits),
        activity_attempts=attempts,
        activity_wait_mean=_mean(act_waits),
        activity_wait_max=max(act_waits, default=None),
        step=step,
    )


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100) of ``values``, interpolated between ranks; None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class StepRow:
    step: int
    description: str
    seconds: int
    wall_seconds: float
    offered_rate: float
    started: int
    started_rate: float
    completed: int
    failed: int
    achieved_rate: float
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    backlog_start: int
    backlog_end: int
    backlog_growth: float
    waiting_to_start: int
    cpu_cores: float
    lock_wait: float | None  # None where the system has no write lock (a Temporal server)
    keeps_up: bool


@dataclass
class LoadReport:
    """A finished (or interrupted) load test: ``runs`` (one ``RunRecord`` each), ``seconds``
    (the bench's samples), ``steps`` (one ``StepRow`` each) and ``finding`` (a sentence).
    ``write(folder)`` saves runs.csv, seconds.csv, steps.csv and summary.json."""

    bench_id: str
    scenario: dict[str, Any]
    runs: list[RunRecord]
    seconds: list[dict[str, Any]]
    steps: list[StepRow]
    finding: str
    p99_limit: float = DEFAULT_P99_LIMIT
    environment: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        latencies = [r.latency for r in self.runs if r.latency is not None]
        return {
            "bench_id": self.bench_id,
            "scenario": self.scenario,
            "environment": self.environment or {},
            "runs": len(self.runs),
            "completed": sum(r.status == "Completed" for r in self.runs),
            "failed": sum(r.status not in ("Completed", "Running", "ContinuedAsNew") for r in self.runs),
            "unfinished": sum(r.status == "Running" for r in self.runs),
            "seconds": len(self.seconds),
            "latency": {f"p{p}": percentile(latencies, p) for p in (50, 95, 99)},
            "steps": [asdict(s) for s in self.steps],
            "capacity_runs_per_second": self.capacity(),
            "finding": self.finding,
        }

    def capacity(self) -> float | None:
        """The highest offered rate of a step that kept up below the knee (None if none did);
        see ``knee_index``."""
        return capacity(self.steps)

    def runs_csv(self) -> str:
        return _csv([f.name for f in fields(RunRecord)], [asdict(r) for r in self.runs])

    def seconds_csv(self) -> str:
        rows = [_flat(s) for s in self.seconds]
        columns: list[str] = [c for c in SAMPLE_COLUMNS if any(c in row for row in rows)]
        for row in rows:
            columns += [k for k in row if k not in columns]
        return _csv(columns, rows)

    def steps_csv(self) -> str:
        return _csv([f.name for f in fields(StepRow)], [asdict(s) for s in self.steps])

    def html(self) -> str:
        """The report as a standalone HTML page (plots as inline SVG; needs matplotlib)."""
        from engine._load.plots import report_html

        return report_html(self)

    def html_fragment(self) -> str:
        """The report as HTML to put in a page (a notebook shows this): finding, plots, steps."""
        from engine._load.plots import report_body

        return report_body(self)

    def write_html(self, path: str | Path) -> Path:
        """Save ``html()`` to ``path``: one file that opens in any browser, no JavaScript."""
        out = Path(path)
        out.write_text(self.html(), encoding="utf-8")
        return out

    def write(self, folder: str | Path) -> Path:
        """Write runs.csv, seconds.csv, steps.csv and summary.json into ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        (out / "runs.csv").write_text(self.runs_csv())
        (out / "seconds.csv").write_text(self.seconds_csv())
        (out / "steps.csv").write_text(self.steps_csv())
        (out / "summary.json").write_text(json.dumps(self.summary(), indent=2))
        return out


def step_rows(seconds: Sequence[dict[str, Any]], runs: Sequence[RunRecord], descriptions: Sequence[str], p99_limit: float) -> list[StepRow]:
    rows = []
    for index, description in enumerate(descriptions):
        mine = [s for s in seconds if s["step"] == index and not s.get("draining")]
        if not mine:
            continue
        # Wall time of the step: from the sample before its first (or its first tick's start)
        # to its last sample. The rates are per wall second, so a driver that fell behind its
        # ticks shows as a lower started rate rather than as a faster system.
        first = seconds.index(mine[0])
        opened = seconds[first - 1]["time"] if first else mine[0]["time"] - mine[0]["tick_seconds"]
        wall = max(1e-3, mine[-1]["time"] - opened)
        in_step = [r for r in runs if r.step == index]
        latencies = [r.latency for r in in_step if r.latency is not None]
        span = len(mine)
        backlog = [s["backlog_workflow_tasks"] + s["backlog_activity_tasks"] for s in mine]
        completed = sum(s["closed"] for s in mine)
        p99 = percentile(latencies, 99)
        waiting = int(mine[-1]["waiting_to_start"])
        # Growth per second over the whole step: from the sample before it (the backlog it
        # inherited; 0 before the first step) to its last (a straight line through two
        # points: enough to tell flat from climbing, as the finding needs).
        before = seconds[first - 1] if first else None
        inherited = before["backlog_workflow_tasks"] + before["backlog_activity_tasks"] if before else 0
        growth = (backlog[-1] - inherited) / span
        unfinished = any(r.latency is None for r in in_step)
        offered = sum(s["offered"] for s in mine) / span
        keeps_up = (
            not unfinished and waiting <= _waiting_allowed(offered) and (p99 is None or p99 <= p99_limit)
            and growth <= _growth_allowed(offered)
        )
        rows.append(StepRow(
            step=index, description=description, seconds=span, wall_seconds=round(wall, 2), offered_rate=round(offered, 2),
            started=sum(s["started"] for s in mine), started_rate=round(sum(s["started"] for s in mine) / wall, 2), completed=completed,
            failed=sum(r.status not in ("Completed", "Running") for r in in_step),
            achieved_rate=round(completed / wall, 2), latency_p50=_round(percentile(latencies, 50)),
            latency_p95=_round(percentile(latencies, 95)), latency_p99=_round(p99),
            backlog_start=backlog[0], backlog_end=backlog[-1], backlog_growth=round(growth, 2),
            waiting_to_start=waiting, cpu_cores=round(_mean([sum(s["cpu"].values()) for s in mine if s["cpu"]]) or 0.0, 2),
            lock_wait=_lock_wait(mine),
            keeps_up=keeps_up,
        ))
    return rows


def _lock_wait(samples: Sequence[dict[str, Any]]) -> float | None:
    if samples and all(s.get("lock_wait") is None for s in samples):
        return None  # not measured: a Temporal server has no write lock (the samples say None)
    return round(_mean([sum(s["lock_wait"].values()) for s in samples if s.get("lock_wait")]) or 0.0, 3)


def knee_index(steps: Sequence[StepRow]) -> int | None:
    """The index of the knee: the first step from which no later step keeps up (None when the
    last step kept up). A failing step followed by steps that keep up is not the knee: the
    first seconds of a test pay for cold workers, and a step can stumble and recover."""
    knee = None
    for index in range(len(steps) - 1, -1, -1):
        if steps[index].keeps_up:
            break
        knee = index
    return knee


def capacity(steps: Sequence[StepRow]) -> float | None:
    knee = knee_index(steps)
    below = steps if knee is None else steps[:knee]
    kept = [s.offered_rate for s in below if s.keeps_up]
    return max(kept) if kept else None


def finding(steps: Sequence[StepRow], p99_limit: float) -> str:
    """The report's sentence: the last rate that kept up, and what broke at the knee."""
    if not steps:
        return "No step ran: nothing to conclude."
    knee = knee_index(steps)
    top = capacity(steps)
    stumbled = [s for s in (steps if knee is None else steps[:knee]) if not s.keeps_up]
    aside = ""
    if stumbled:
        names = ", ".join(f"{s.offered_rate:g}" for s in stumbled)
        aside = f" (the step at {names} runs/s did not keep up but later ones did: workers warming up, or the machine busy for a moment)"
    if knee is None:
        return (f"Every step kept up{aside}: up to {top:g} runs/s the backlog stays flat and p99 stays under "
                f"{p99_limit:g} s. Offer more to find the knee.")
    bad = steps[knee]
    broke = []
    if bad.backlog_growth > _growth_allowed(bad.offered_rate):
        broke.append(f"the backlog grows by {bad.backlog_growth:g} tasks/s")
    if bad.waiting_to_start > _waiting_allowed(bad.offered_rate):
        broke.append(f"{bad.waiting_to_start} runs wait to be started")
    if bad.latency_p99 is not None and bad.latency_p99 > p99_limit:
        broke.append(f"p99 reaches {_seconds(bad.latency_p99)} (over {p99_limit:g} s)")
    if not broke:
        broke.append("some runs did not finish")
    head = (f"Up to {top:g} runs/s the backlog stays flat and p99 stays under {p99_limit:g} s{aside}; "
            if top is not None else "Even the first step did not keep up; ")
    return head + f"at {bad.offered_rate:g} runs/s " + " and ".join(broke) + "."


def _growth_allowed(offered: float) -> float:
    # A backlog "stays flat" while it grows by at most a fifth of the offered rate (and 2
    # tasks/s): steps of a few seconds see a few tasks of noise, a step past the knee a
    # growth near the excess of offered over served.
    return max(2.0, offered * 0.2)


def _waiting_allowed(offered: float) -> float:
    # Runs the bench could not start yet (the cap on runs in flight): half a second's worth.
    return max(1.0, offered * 0.5)


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _flat(sample: dict[str, Any]) -> dict[str, Any]:
    """A sample's per-process figures as columns of their own (cpu_worker-0, lock_wait_driver)."""
    row = {k: v for k, v in sample.items() if not isinstance(v, dict)}
    for key in ("cpu", "lock_wait"):
        for name, value in sorted((sample.get(key) or {}).items()):
            row[f"{key}_{name}"] = value
    return row


def _csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()
