"""Load tests in the spirit of Temporal's maru: offer runs at a chosen rate, watch what keeps up.

A ``Scenario`` says what to start (the built-in target, configured by ``TargetConfig``, or a
workflow of yours with an input factory) and how fast: a list of ``Step`` (a rate per second
for a duration or a count of runs, or a linear ramp between two rates), an optional cap on
runs in flight, and a seed. ``run_load_test`` runs it against the engine on one database
file with N worker processes and returns a ``LoadReport``: one record per run (latency and
the schedule-to-start wait of its tasks, from its history), one sample per second (offered
and achieved rates, runs in flight, task backlog, CPU and write-lock wait of each process,
database size), one row per step, and a finding in a sentence::

    from engine.loadtest import Scenario, Step, TargetConfig, ramp, run_load_test

    scenario = Scenario(ramp(10, 60, step=10, seconds=5), target=TargetConfig(activities=2))
    report = await run_load_test(scenario, db_path="load.db", processes=2)
    print(report.finding)
    report.write("load-report")          # runs.csv, seconds.csv, steps.csv, summary.json

The bench that drives the test is itself a workflow (``LoadBench``), as in maru: it starts
the runs one second at a time through an activity, so its history shows the test, and a
test whose driving process died goes on when ``run_load_test`` is called again with the same
``bench_id`` (or ``dlab load run --bench-id``).
"""

from __future__ import annotations

import math
import os
import random
import re
import secrets
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from engine._load.bench import BenchActivities, BenchContext, load_activity, runs_prefix
from engine._load.processes import SYNCHRONOUS, WorkerPool, set_synchronous
from engine._load.report import DEFAULT_P99_LIMIT, LoadReport, RunRecord, StepRow, finding, percentile, run_record, step_rows
from engine._load.target import EmbeddedTarget, TargetSystem
from engine._load.temporal_target import TemporalServer, TemporalServerTarget, TemporalWorkerPool, connect
from engine._load.workflows import BENCH_TYPE, TARGET_TYPE, BenchPlan, LoadBench, LoadChild, LoadTarget, TargetConfig
from engine.client import Client
from engine.common import WorkflowIDReusePolicy
from engine.errors import WorkflowAlreadyStartedError, WorkflowNotFoundError
from engine.history import History, decode_payloads
from engine.worker import Worker

__all__ = [
    "Step", "ramp", "parse_steps", "STEP_SYNTAX", "Scenario", "TargetConfig", "plan", "run_load_test", "build_report", "run_record",
    "LoadReport", "RunRecord", "StepRow", "percentile", "SYNCHRONOUS", "TargetSystem", "live_figure", "figure_png",
    "TemporalServer", "report_target",
]


@dataclass(frozen=True)
class Step:
    """Offer ``rate`` runs per second, for ``duration`` seconds or until ``count`` runs are
    offered; with ``to_rate`` the rate goes linearly from ``rate`` to ``to_rate`` over
    ``duration`` (a ramp)."""

    rate: float
    duration: float | None = None
    count: int | None = None
    to_rate: float | None = None

    def __post_init__(self) -> None:
        if self.rate < 0 or (self.to_rate is not None and self.to_rate < 0):
            raise ValueError(f"Step: a rate is runs per second, 0 or more (got {self.rate}).")
        if (self.duration is None) == (self.count is None):
            raise ValueError("Step: give a duration (seconds) or a count (runs), one of the two: Step(20, duration=10) or Step(20, count=200).")
        if self.duration is not None and self.duration <= 0:
            raise ValueError(f"Step: duration is seconds, more than 0 (got {self.duration}).")
        if self.count is not None and (self.count < 1 or self.rate <= 0):
            raise ValueError("Step: a count step needs a count of 1 or more and a rate above 0.")
        if self.to_rate is not None and self.duration is None:
            raise ValueError("Step: a ramp (to_rate) needs a duration: Step(10, duration=30, to_rate=50).")

    def describe(self) -> str:
        if self.to_rate is not None:
            return f"ramp {self.rate:g} -> {self.to_rate:g}/s for {self.duration:g} s"
        if self.count is not None:
            return f"{self.count} runs at {self.rate:g}/s"
        return f"{self.rate:g}/s for {self.duration:g} s"

    def offered(self) -> list[int]:
        """Runs offered in each second of the step (whole runs; fractions carry over)."""
        if self.count is not None:
            seconds = math.ceil(self.count / self.rate)
            rates = [self.rate] * seconds
            total = self.count
        else:
            assert self.duration is not None
            seconds = max(1, round(self.duration))
            end = self.rate if self.to_rate is None else self.to_rate
            rates = [self.rate + (end - self.rate) * (k + 0.5) / seconds for k in range(seconds)]
            total = round(sum(rates))
        out, carried = [], 0.0
        for r in rates:
            before = math.floor(carried + 0.5)  # half up, not to even: a steady 2.5/s alternates 3, 2
            carried += r
            out.append(min(math.floor(carried + 0.5), total) - min(before, total))
        out[-1] += total - sum(out)
        return out


def ramp(start: float, stop: float, *, seconds: float, step: float | None = None) -> list[Step]:
    """Steps from ``start`` to ``stop`` runs/s: with ``step``, a staircase of constant rates
    (``start``, ``start + step``, ... up to ``stop``), each for ``seconds`` (the report then
    has one row per rate, which is how the knee is found); without, one linear ramp."""
    if step is None:
        return [Step(start, duration=seconds, to_rate=stop)]
    if step <= 0 or stop < start:
        raise ValueError(f"ramp: step must be above 0 and stop ({stop}) at least start ({start}).")
    rates, rate = [], float(start)
    while rate <= stop + 1e-9:
        rates.append(rate)
        rate += step
    return [Step(r, duration=seconds) for r in rates]


@dataclass(frozen=True)
class Scenario:
    """What to offer and how fast. ``steps``: the rates; ``target``: the built-in target's
    configuration (used when ``workflow`` is None); ``workflow``: the type name of a workflow
    of yours, with ``make_input(number, rng)`` returning its argument list (``rng`` is seeded
    by ``seed`` and the run number); ``max_in_flight``: at most this many runs open at once
    (0: no cap; runs over the cap wait and are counted as waiting to start);
    ``drain_seconds``: how long the bench waits for the last runs to close."""

    steps: Sequence[Step]
    target: TargetConfig = field(default_factory=TargetConfig)
    workflow: str | None = None
    make_input: Callable[[int, random.Random], Sequence[Any]] | None = None
    max_in_flight: int = 0
    seed: int = 0
    drain_seconds: int = 60
    name: str = "load"
    p99_limit: float = DEFAULT_P99_LIMIT

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError("Scenario: give at least one Step, e.g. Scenario([Step(10, duration=5)]).")
        if not all(isinstance(s, Step) for s in self.steps):
            raise ValueError("Scenario: steps must be Step objects (engine.loadtest.Step).")
        if self.max_in_flight < 0 or self.drain_seconds < 0:
            raise ValueError("Scenario: max_in_flight and drain_seconds are 0 or more.")
        if not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"Scenario: name {self.name!r} must be letters, digits, - and _ (it starts the bench's workflow id).")

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "steps": [s.describe() for s in self.steps],
            "workflow": self.workflow or TARGET_TYPE,
            "target": asdict(self.target) if self.workflow is None else None,
            "max_in_flight": self.max_in_flight,
            "seed": self.seed,
            "p99_limit": self.p99_limit,
        }

    def input_for(self, number: int) -> list[Any]:
        if self.workflow is None:
            return [self.target]
        if self.make_input is None:
            return []
        return list(self.make_input(number, random.Random(f"{self.seed}:{number}")))


_STEP = re.compile(r"(?P<rate>\d+(?:\.\d+)?)(?:-(?P<to>\d+(?:\.\d+)?)(?:\+(?P<by>\d+(?:\.\d+)?))?)?(?:/s)?:(?P<amount>\d+(?:\.\d+)?)(?P<unit>ms|s|m)?")
STEP_SYNTAX = "RATE:SECONDSs (20:10s), RATE:COUNT (20:200 runs), a ramp FROM-TO:SECONDSs (10-50:30s) or stairs FROM-TO+BY:SECONDSs each (10-60+10:5s)"


def parse_steps(text: str) -> list[Step]:
    """Steps written as text, comma-separated (the CLI's and the magic's ``--steps``):
    ``20:10s`` 20 runs/s for 10 s; ``20:200`` 200 runs at 20/s; ``10-50:30s`` a ramp from
    10 to 50 runs/s over 30 s; ``10-60+10:5s`` stairs 10, 20, ... 60 runs/s, 5 s each."""
    steps: list[Step] = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        m = _STEP.fullmatch(part)
        if m is None:
            raise ValueError(f"Step {part!r} is not understood: write {STEP_SYNTAX}.")
        rate, amount = float(m["rate"]), float(m["amount"])
        seconds = amount * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 0.0}[m["unit"]]
        if m["to"] is None:
            steps.append(Step(rate, duration=seconds) if m["unit"] else Step(rate, count=int(amount)))
        elif not m["unit"]:
            raise ValueError(f"Step {part!r}: a ramp lasts a time, e.g. {m['rate']}-{m['to']}:30s.")
        elif m["by"] is None:
            steps.append(Step(rate, duration=seconds, to_rate=float(m["to"])))
        else:
            steps += ramp(rate, float(m["to"]), step=float(m["by"]), seconds=seconds)
    if not steps:
        raise ValueError(f"No steps given: write {STEP_SYNTAX}.")
    return steps


def live_figure(*, seconds: int | None = None, p99_limit: float = DEFAULT_P99_LIMIT) -> Any:
    """The report's four panels as a matplotlib figure to redraw while a test runs:
    ``figure.update(samples)``, then ``figure_png(figure)`` (needs matplotlib)."""
    from engine._load.plots import LoadFigure

    return LoadFigure(p99_limit=p99_limit, seconds=seconds)


def figure_png(figure: Any, dpi: int = 75) -> bytes:
    """A PNG of a ``live_figure``."""
    from engine._load.plots import png

    return png(figure.fig, dpi=dpi)


def plan(scenario: Scenario, tick_seconds: float = 1.0) -> BenchPlan:
    """The bench's input: runs offered in each second and the step of each second."""
    offered: list[int] = []
    step_of_second: list[int] = []
    for index, step in enumerate(scenario.steps):
        counts = step.offered()
        offered += counts
        step_of_second += [index] * len(counts)
    return BenchPlan(offered, step_of_second, scenario.max_in_flight, scenario.drain_seconds, tick_seconds, scenario.describe())


async def run_load_test(
    scenario: Scenario,
    *,
    db_path: str,
    processes: int = 1,
    bench_id: str | None = None,
    module: str | None = None,
    file: str | None = None,
    workflows: Sequence[type] = (),
    activities: Sequence[Callable[..., Any]] = (),
    synchronous: str | None = None,
    max_concurrent_activities: int | None = None,
    on_sample: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[str, BenchPlan], None] | None = None,
    server: TemporalServer | None = None,
) -> LoadReport:
    """Run ``scenario`` on the database file ``db_path`` with ``processes`` worker processes
    (0: the target runs in this process, beside the bench) and return its report.

    ``module``/``file``: where the worker processes find your workflow (``scenario.workflow``);
    ``workflows``/``activities``: the same for ``processes=0``. ``synchronous``: SQLite's
    durability setting in every process (OFF, NORMAL as the engine uses, FULL, EXTRA).
    ``max_concurrent_activities``: activity slots of each worker (the engine's default is 100);
    with few slots and slow activities, capacity is slots x processes / activity time.
    ``bench_id``: the bench's workflow id; a bench of that id still running (its driver died)
    is taken over and finished, a finished one only reported. ``on_sample`` gets each second's
    sample as it is taken; ``on_start`` the bench id and plan once the bench runs.

    ``server``: run the target on a Temporal server instead (``TemporalServer(address,
    namespace)``): ``processes`` temporalio worker processes serve it there (the built-in
    target written with temporalio, plus the temporalio workflows and activities of
    ``module``), and the bench, still a workflow of the engine on ``db_path``, starts and
    measures the runs through the server's client. The write-lock wait is not measured there,
    nor the database size unless ``server.db_file`` is given."""
    if server is not None:
        _check_server_options(scenario, processes, module, file, workflows, activities, synchronous)
    if processes < 0:
        raise ValueError(f"processes is 0 or more (got {processes}).")
    if max_concurrent_activities is not None and max_concurrent_activities < 1:
        raise ValueError(f"max_concurrent_activities is 1 or more (got {max_concurrent_activities}).")
    if db_path == ":memory:" and processes:
        raise ValueError("Worker processes need a database file: give db_path='load.db' (or processes=0).")
    if scenario.workflow and processes and not (module or file):
        raise ValueError(f"Scenario workflow {scenario.workflow!r}: give module= or file= where the worker processes find it.")
    if scenario.workflow and not processes and not workflows:
        raise ValueError(f"Scenario workflow {scenario.workflow!r}: with processes=0, give workflows=[...] (and activities=[...]) to run it here.")
    if synchronous is not None and synchronous.upper() not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)} (got {synchronous!r}).")
    bench_id = bench_id or f"{scenario.name}-{secrets.token_hex(3)}"
    load_before = os.getloadavg()[0]  # the machine's load beside the figures: before and after
    task_queue = f"{bench_id}-target"
    client = await Client.connect(db_path)
    pool: WorkerPool | None = None
    try:
        await _same_target_as_before(client, bench_id, server)
        if synchronous:
            await set_synchronous(client, synchronous)
        if processes and server is None:
            folder = Path(db_path + "-load").expanduser().resolve() / bench_id
            pool = WorkerPool(db_path, task_queue, folder, processes, module=module, file=file, synchronous=synchronous,
                              max_concurrent_activities=max_concurrent_activities)
            await pool.start()
        target: TargetSystem = EmbeddedTarget(client)
        readings: Callable[[], list[dict[str, Any]]] = pool.readings if pool is not None else list
        if server is not None:
            server_target = TemporalServerTarget(await connect(server), server)
            target = server_target
            folder = Path(db_path + "-load").expanduser().resolve() / bench_id
            pool = TemporalWorkerPool(server, task_queue, folder, processes, module=module, max_concurrent_activities=max_concurrent_activities)
            await pool.start()
            workers_of = pool.readings

            def readings() -> list[dict[str, Any]]:  # the workers' CPU, and the server's when it runs here
                return workers_of() + server_target.readings()
        context = BenchContext(
            bench_id=bench_id, target=target, workflow_type=scenario.workflow or TARGET_TYPE,
            task_queue=task_queue, make_input=scenario.input_for, signals=scenario.target.signals if scenario.workflow is None else 0,
            readings=readings, client=client, on_sample=on_sample,
        )
        workers = [Worker(client, task_queue=f"{bench_id}-bench", workflows=[LoadBench], activities=[BenchActivities(context).tick])]
        if not processes and server is None:
            workers.append(Worker(client, task_queue=task_queue, workflows=[LoadTarget, LoadChild, *workflows],
                                  activities=[load_activity, *activities], max_concurrent_activities=max_concurrent_activities))
        bench_plan = plan(scenario)
        if server is not None:  # so that build_report finds the runs again from the database alone
            bench_plan.scenario["temporal"] = {"address": server.address, "namespace": server.namespace}
        for w in workers:
            await w.__aenter__()
        try:
            try:
                handle = await client.start_workflow(
                    BENCH_TYPE, bench_plan, id=bench_id, task_queue=f"{bench_id}-bench", id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
            except WorkflowAlreadyStartedError:
                handle = client.get_workflow_handle(bench_id)  # a bench whose driver died: take it over
            if on_start is not None:
                on_start(bench_id, bench_plan)
            await handle.result()
        finally:
            for w in reversed(workers):
                await w.__aexit__(None, None, None)
        report = await build_report(client, bench_id, target)
        report.environment = _environment(processes, synchronous, max_concurrent_activities, load_before, server)
        return report
    finally:
        if pool is not None:
            await pool.stop()
        await client.close()


async def build_report(client: Client, bench_id: str, target: TargetSystem | None = None) -> LoadReport:
    """The report of the load test ``bench_id`` from the database alone: the plan and the
    samples from the bench's history, the runs from theirs (also for an unfinished test).
    ``target``: where the runs are; by default the database, or the Temporal server the test
    ran on (its bench recorded the address)."""
    bench = await client.get_workflow_handle(bench_id).fetch_history()
    if target is None:
        target = await report_target(client, _recorded_server(bench))
    return report_from(bench_id, bench, await target.histories(runs_prefix(bench_id)))


def report_from(bench_id: str, bench: History, runs: Sequence[History]) -> LoadReport:
    started = bench.events[0].attributes
    plan_ = BenchPlan(**decode_payloads(started.get("input"))[0])
    seconds = [
        decode_payloads(e.attributes.get("result"))[0]
        for e in bench.events
        if e.event_type == "ActivityTaskCompleted"
    ]
    step_by_number: dict[int, int] = {}
    number = 0
    for count, step in zip(plan_.offered, plan_.step_of_second):
        for n in range(number, number + count):
            step_by_number[n] = step
        number += count
    limit = float(plan_.scenario.get("p99_limit", DEFAULT_P99_LIMIT))
    records = [run_record(h, step_by_number.get(_number_of(bench_id, h.workflow_id), -1)) for h in runs]
    descriptions = list(plan_.scenario.get("steps", [])) or [f"step {i}" for i in sorted(set(plan_.step_of_second))]
    steps = step_rows(seconds, records, descriptions, limit)
    return LoadReport(bench_id, plan_.scenario, records, seconds, steps, finding(steps, limit), limit)


def _number_of(bench_id: str, workflow_id: str) -> int:
    tail = workflow_id[len(runs_prefix(bench_id)):]
    return int(tail) if tail.isdigit() else -1


def _environment(processes: int, synchronous: str | None, slots: int | None, load_before: float,
                 server: TemporalServer | None = None) -> dict[str, Any]:
    one, five, _ = os.getloadavg()
    where: dict[str, Any] = {"synchronous": (synchronous or "NORMAL").upper()}
    if server is not None:
        where = {"target": server.describe(), "not_measured": server.not_measured()}
    return {
        "load_average_1m_before": round(load_before, 2),
        "worker_processes": processes,
        "max_concurrent_activities": slots or 100,  # the default of the engine and of temporalio alike
        **where,
        "cpus": os.cpu_count(),
        "load_average_1m": round(one, 2),
        "load_average_5m": round(five, 2),
        "python": sys.version.split()[0],
    }

def _recorded_server(bench: History) -> TemporalServer | None:
    """The Temporal server a bench's test ran on, from its input (None: the engine)."""
    recorded = (decode_payloads(bench.events[0].attributes.get("input"))[0].get("scenario") or {}).get("temporal")
    return TemporalServer(recorded["address"], recorded["namespace"]) if recorded else None


async def _same_target_as_before(client: Client, bench_id: str, server: TemporalServer | None) -> None:
    """A bench taken over after its driver died must go on against the system it started on:
    its runs are there (a test begun on a server and resumed on the engine would start the
    rest of its runs in the wrong place)."""
    try:
        bench = await client.get_workflow_handle(bench_id).fetch_history()
    except WorkflowNotFoundError:
        return  # a new test
    before = _recorded_server(bench)
    if (before is None) != (server is None) or (before and server and before.namespace != server.namespace):
        where = "the engine" if before is None else f"{before.describe()} (--target temporal:{before.address})"
        raise ValueError(f"Load test {bench_id!r} ran on {where}: go on against the same target, or give a new --bench-id.")


def _check_server_options(scenario: Scenario, processes: int, module: str | None, file: str | None, workflows: Sequence[type],
                          activities: Sequence[Callable[..., Any]], synchronous: str | None) -> None:
    if processes < 1:
        raise ValueError("On a Temporal server the runs are served by temporalio worker processes: give processes=1 or more.")
    if file or workflows or activities:
        raise ValueError("On a Temporal server your workflow comes from a module of temporalio definitions: give module='package.module' "
                         "(the workers import it), not file=, workflows= or activities=.")
    if synchronous:
        raise ValueError("synchronous is SQLite's setting of the engine's database: a Temporal server's persistence is its own.")
    if scenario.workflow and not module:
        raise ValueError(f"Scenario workflow {scenario.workflow!r}: give module= (the temporalio module the worker processes import).")


async def report_target(client: Client, server: TemporalServer | None) -> TargetSystem:
    """Where ``build_report`` reads a test's runs: the database (``server`` None) or the server."""
    if server is None:
        return EmbeddedTarget(client)
    return TemporalServerTarget(await connect(server), server)
