"""``dlab load run``: a load test from the command line (engine.loadtest), with a progress bar.

    dlab load run --steps 10-60+10:5s --processes 2 --activities 3 --activity-latency 20ms
    dlab load run --steps 20:10s --workflow MyWorkflow --file app.py --input '"order"'
    dlab load report --bench-id load-1a2b3c          # the report again, from the database
    dlab load run --steps 10-60+10:5s --target temporal:127.0.0.1:7233 --processes 2   # on a Temporal server

The report goes to ``--report DIR`` (default ``load-reports/<bench id>``): runs.csv,
seconds.csv, steps.csv, summary.json and report.html. A test whose driver was killed goes
on when the same command runs again with ``--bench-id``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from engine import loadtest
from engine.cli._common import EXIT_OK, CliError, Out, add_common, duration, json_inputs
from engine.cli._loader import add_source_options
from engine.client import Client

DEFAULT_LOAD_DB = ".durable/load.db"


def register(sub: Any) -> None:
    parser = sub.add_parser("load", help="Load tests (maru-style): offer runs at a rate, find the knee.",
                            description="Load tests in the spirit of Temporal's maru: a bench workflow starts runs at the "
                            "scenario's rate and measures what keeps up.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=type(parser))
    verbs.required = True
    run = verbs.add_parser("run", help="Run a scenario and write its report.", description=run_description())
    run.set_defaults(handler=run_command)
    run.add_argument("--steps", required=True, metavar="STEPS", help=f"Comma-separated steps: {loadtest.STEP_SYNTAX}.")
    run.add_argument("--processes", type=int, default=1, metavar="N", help="Worker processes on the database file (default 1; 0: in the driving process); "
                     "with --target temporal, temporalio worker processes on the server.")
    _target_options(run)
    run.add_argument("--max-concurrent-activities", type=int, metavar="N", help="Activity slots of each worker (default 100).")
    run.add_argument("--max-in-flight", type=int, default=0, metavar="N", help="At most N runs open at once (default 0: no cap).")
    run.add_argument("--seed", type=int, default=0, help="Seed of the inputs and of the target's failures (default 0).")
    run.add_argument("--drain", type=duration, default=duration("60s"), metavar="DURATION", help="How long to wait for the last runs after the last step (default 60s).")
    run.add_argument("--p99-limit", type=duration, default=duration("1s"), metavar="DURATION", help="A step keeps up while p99 stays under this (default 1s).")
    run.add_argument("--synchronous", choices=loadtest.SYNCHRONOUS, type=str.upper, help="SQLite's durability setting in every process (the engine's is NORMAL).")
    run.add_argument("--bench-id", metavar="ID", help="The bench's workflow id; a running bench of that id (its driver died) is taken over.")
    run.add_argument("--name", default="load", help="Name of the scenario, the start of the bench id (default load).")
    run.add_argument("--report", metavar="DIR", help="Report folder (default load-reports/<bench id>).")
    target = run.add_argument_group("the built-in target (when no --workflow is given)")
    target.add_argument("--activities", type=int, default=1, metavar="N", help="Activities per run, one after the other (default 1).")
    target.add_argument("--activity-latency", type=duration, default=duration("0s"), metavar="DURATION", help="Time each activity takes (default 0s).")
    target.add_argument("--failure-rate", type=float, default=0.0, metavar="P", help="Probability that an activity attempt fails and is retried (default 0).")
    target.add_argument("--timers", type=int, default=0, metavar="N", help="Timers per run (default 0).")
    target.add_argument("--timer", type=duration, default=duration("100ms"), metavar="DURATION", help="Each timer's duration (default 100ms).")
    target.add_argument("--signals", type=int, default=0, metavar="N", help="Signals each run waits for (sent by the bench; default 0).")
    target.add_argument("--children", type=int, default=0, metavar="N", help="Child runs per run (default 0).")
    own = run.add_argument_group("your own workflow")
    own.add_argument("--workflow", metavar="TYPE", help="Workflow type to start instead of the built-in target (needs --module or --file).")
    own.add_argument("--input", action="append", default=[], metavar="JSON", help="Argument of every run, as JSON; repeatable.")
    add_source_options(run, required=False, purpose="the worker processes serve your workflow and activities from it")
    add_common(run, output=("text", "json"))
    _db_default(run)

    report = verbs.add_parser("report", help="Write the report of a load test again, from the database.")
    report.set_defaults(handler=report_command)
    report.add_argument("--bench-id", required=True, metavar="ID", help="The bench's workflow id (printed by 'dlab load run').")
    report.add_argument("--report", metavar="DIR", help="Report folder (default load-reports/<bench id>).")
    _target_options(report)
    add_common(report, output=("text", "json"))
    _db_default(report)


def run_description() -> str:
    return ("Start runs at the rates of --steps (the built-in target, or --workflow from --module/--file), show a progress "
            "bar, and write the report (runs.csv, seconds.csv, steps.csv, summary.json, report.html). Database: --db, "
            f"default {DEFAULT_LOAD_DB} (a file of its own, so that a test does not crowd the notebooks' database).")


def _target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default="engine", metavar="engine|temporal[:ADDRESS]",
                        help="The system under load: the engine on the database file (default), or a Temporal server "
                        "(temporal: 127.0.0.1:7233; temporal:HOST:PORT). The bench stays in the database file either way; "
                        "'load report' finds the server its bench recorded unless --target says otherwise.")
    parser.add_argument("--namespace", default="default", metavar="N", help="Namespace on the Temporal server (default default).")


def server_from(args: argparse.Namespace) -> loadtest.TemporalServer | None:
    """The Temporal server of ``--target temporal[:ADDRESS]``; None for the engine."""
    kind, _, address = str(args.target).partition(":")
    if kind == "engine" and not address:
        if args.namespace != "default":
            raise CliError("--namespace is a Temporal server's: give --target temporal[:ADDRESS] too.", 2)
        return None
    if kind != "temporal":
        raise CliError(f"--target {args.target!r}: write engine, temporal (127.0.0.1:7233) or temporal:HOST:PORT.", 2)
    return loadtest.TemporalServer(address or "127.0.0.1:7233", args.namespace)


def _db_default(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if action.dest == "db":
            action.help = f"Database file of the load test (default {DEFAULT_LOAD_DB})."


def _db(args: argparse.Namespace) -> str:
    path = args.db or DEFAULT_LOAD_DB
    if path != ":memory:":
        Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
    return str(path)


def scenario_from(args: argparse.Namespace) -> loadtest.Scenario:
    if args.workflow and not (args.module or args.file):
        raise CliError("--workflow needs --module or --file: the workers load your workflow and its activities from there.")
    if (args.module or args.file) and not args.workflow:
        raise CliError("--module/--file give your code: name the workflow to start with --workflow TYPE.")
    inputs = json_inputs(args.input)
    try:
        target = loadtest.TargetConfig(
            activities=args.activities, activity_latency=args.activity_latency.total_seconds(), activity_failure_rate=args.failure_rate,
            timers=args.timers, timer_seconds=args.timer.total_seconds(), signals=args.signals, children=args.children,
        )
        return loadtest.Scenario(
            loadtest.parse_steps(args.steps), target=target, workflow=args.workflow,
            make_input=(lambda number, rng: inputs) if args.workflow else None,
            max_in_flight=args.max_in_flight, seed=args.seed, drain_seconds=round(args.drain.total_seconds()),
            name=args.name, p99_limit=args.p99_limit.total_seconds(),
        )
    except ValueError as e:
        raise CliError(str(e), 2) from None


async def run_command(args: argparse.Namespace, out: Out) -> int:
    server = server_from(args)
    if server is not None and args.file:
        raise CliError("--target temporal: the temporalio worker processes import your workflow from --module (a module of "
                       "temporalio definitions), not --file.", 2)
    scenario = scenario_from(args)
    bar = ProgressBar(out, sum(len(s.offered()) for s in scenario.steps), tty=out.stdout.isatty() and args.output == "text")
    if args.processes == 0 and args.workflow and server is None:
        from engine.cli._loader import definitions

        code = definitions(args.module, args.file)
        workflows, activities = list(code.workflows), list(code.activities)
    else:
        workflows, activities = [], []
    try:
        report = await loadtest.run_load_test(
            scenario, db_path=_db(args), processes=args.processes, bench_id=args.bench_id, module=args.module, file=args.file,
            workflows=workflows, activities=activities, synchronous=args.synchronous,
            max_concurrent_activities=args.max_concurrent_activities,
            on_sample=bar.update if args.output == "text" else None,
            on_start=(lambda bench_id, _plan: bar.started(bench_id)) if args.output == "text" else None,
            server=server,
        )
    except RuntimeError as e:  # a server out of reach, a worker process that did not start: said in one line
        raise CliError(str(e)) from None
    bar.done()
    return _emit(report, args, out)


async def report_command(args: argparse.Namespace, out: Out) -> int:
    server = server_from(args)
    client = await Client.connect(_db(args))
    try:
        try:
            # Without --target, the bench says where its runs are (the engine, or the server it ran on).
            target = await loadtest.report_target(client, server) if server is not None else None
            report = await loadtest.build_report(client, args.bench_id, target)
        except RuntimeError as e:
            raise CliError(str(e)) from None
    finally:
        await client.close()
    return _emit(report, args, out)


def _emit(report: loadtest.LoadReport, args: argparse.Namespace, out: Out) -> int:
    folder = Path(args.report or Path("load-reports") / report.bench_id)
    report.write(folder)
    html_note = ""
    try:
        report.write_html(folder / "report.html")
    except ImportError as e:  # matplotlib is an extra: the tables are written anyway
        html_note = f" (no report.html: {e}; pip install matplotlib)"
    if args.output == "json":
        out.json(report.summary())
        return EXIT_OK
    out.line(f"bench {report.bench_id}: {len(report.runs)} runs, {sum(r.status == 'Completed' for r in report.runs)} completed")
    out.line(f"{'step':<28} {'offered/s':>9} {'achieved/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'backlog':>8} {'keeps up':>8}")
    for s in report.steps:
        out.line(f"{s.description[:28]:<28} {s.offered_rate:>9g} {s.achieved_rate:>10g} {_ms(s.latency_p50):>7} {_ms(s.latency_p99):>7} "
                 f"{s.backlog_end:>8} {'yes' if s.keeps_up else out.paint('no', 'red'):>8}")
    out.line(report.finding)
    out.line(f"report: {folder}{os.sep} (runs.csv, seconds.csv, steps.csv, summary.json, report.html){html_note}")
    return EXIT_OK


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


class ProgressBar:
    """One line redrawn each second on a terminal; elsewhere a line every ten seconds."""

    def __init__(self, out: Out, seconds: int, *, tty: bool) -> None:
        self.out, self.seconds, self.tty = out, seconds, tty
        self.shown = False

    def started(self, bench_id: str) -> None:
        self.out.line(f"bench {bench_id} running ({self.seconds} s of steps); Ctrl-C stops the driver, "
                      f"'dlab load run ... --bench-id {bench_id}' goes on")

    def update(self, sample: dict[str, Any]) -> None:
        second = int(sample["second"]) + 1
        width = 24
        filled = min(width, width * second // max(1, self.seconds))
        state = "draining" if sample.get("draining") else f"{second}/{self.seconds} s"
        p99 = sample.get("latency_p99")
        text = (f"[{'#' * filled}{'.' * (width - filled)}] {state}  offered {sample['offered']}/s  "
                f"done {sample['closed']}/s  in flight {sample['in_flight']}  "
                f"backlog {sample['backlog_workflow_tasks'] + sample['backlog_activity_tasks']}  "
                f"p99 {'-' if p99 is None else f'{p99 * 1000:.0f} ms'}")
        if self.tty:
            self.out.stdout.write("\r\x1b[2K" + text)
            self.out.stdout.flush()
            self.shown = True
        elif second % 10 == 0:
            self.out.line(text)

    def done(self) -> None:
        if self.shown:
            self.out.stdout.write("\n")
            self.out.stdout.flush()

