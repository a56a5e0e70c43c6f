"""``%loadtest``: the load lab in a notebook (engine.loadtest), with live plots and a report.

``%loadtest run --steps 10-60+10:5s --processes 2`` runs a scenario on a database file of
its own (``load.db`` beside the kernel's), shows a progress line and the four plots redrawn
every second while it runs, and returns a ``LoadTestView``: the finding, the plots, the table
of steps (``view.report`` holds the data; ``view.save_html("report.html")`` writes a
standalone page). ``%loadtest report --bench-id ID`` shows a test again from the database.
Not ``%load``: that one is IPython's own.

While the notebook is connected to a Temporal server (``%temporal connect``, ``%temporal
dev-server start``), ``%loadtest run`` loads that server: ``--processes`` temporalio worker
processes serve the built-in target there (or the temporalio workflows of ``--module``), and
the bench stays a workflow of the engine on the load test's database file (see
engine.loadtest). For the kernel's own dev server the report also has its CPU and database size.
"""

from __future__ import annotations

import asyncio
import html
import time
from pathlib import Path
from typing import Any, Mapping

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import HTML, Image, display

from engine import loadtest as lt
from engine.client import Client
from engine.errors import EngineError
from kernel_ext import _magic_args as _m

LOAD_DB = "load.db"

_TARGET = (
    (("--activities",), {"type": int, "default": 1, "metavar": "N", "help": "Built-in target: activities per run (default 1)."}),
    (("--activity-latency",), {"default": "0s", "metavar": "D", "help": "Built-in target: time each activity takes (default 0s)."}),
    (("--failure-rate",), {"type": float, "default": 0.0, "metavar": "P", "help": "Built-in target: probability an activity attempt fails (default 0)."}),
    (("--timers",), {"type": int, "default": 0, "metavar": "N", "help": "Built-in target: timers per run (default 0)."}),
    (("--timer",), {"default": "100ms", "metavar": "D", "help": "Built-in target: each timer's duration (default 100ms)."}),
    (("--signals",), {"type": int, "default": 0, "metavar": "N", "help": "Built-in target: signals each run waits for (default 0)."}),
    (("--children",), {"type": int, "default": 0, "metavar": "N", "help": "Built-in target: child runs per run (default 0)."}),
)

LOAD_VERBS: Mapping[str, _m._Parser] = {
    "run": _m._verb(
        "loadtest run", "Run a load test: start runs at the rates of --steps, watch it live, get the report.",
        (("--steps",), {"required": True, "metavar": "STEPS", "help": f"Comma-separated: {lt.STEP_SYNTAX}."}),
        (("--processes",), {"type": int, "default": 1, "metavar": "N", "help": "Worker processes on the load test's database file (default 1; 0: in the kernel)."}),
        *_TARGET,
        (("--workflow",), {"metavar": "T", "help": "Start your workflow (a %%%%workflow cell; on a Temporal server, from --module) instead of the built-in target."}),
        (("--module",), {"metavar": "M", "help": "On a Temporal server: the importable module of your temporalio workflows and activities."}),
        (("--input", "-i"), {"action": "append", "default": [], "metavar": "JSON", "help": "Argument of every run of --workflow, as JSON; repeat for more."}),
        (("--max-concurrent-activities",), {"type": int, "metavar": "N", "help": "Activity slots of each worker (default 100)."}),
        (("--max-in-flight",), {"type": int, "default": 0, "metavar": "N", "help": "At most N runs open at once (default 0: no cap)."}),
        (("--seed",), {"type": int, "default": 0, "help": "Seed of inputs and failures (default 0)."}),
        (("--drain",), {"default": "60s", "metavar": "D", "help": "How long to wait for the last runs (default 60s)."}),
        (("--p99-limit",), {"default": "1s", "metavar": "D", "help": "A step keeps up while p99 stays under this (default 1s)."}),
        (("--synchronous",), {"choices": lt.SYNCHRONOUS, "type": str.upper, "help": "SQLite's durability setting in every process (the engine's: NORMAL)."}),
        (("--name",), {"default": "load", "help": "Scenario name, the start of the bench id (default load)."}),
        (("--bench-id",), {"metavar": "ID", "help": "The bench's workflow id; a bench of that id whose driver died is taken over."}),
        (("--db",), {"metavar": "PATH", "help": f"Database file of the test (default {LOAD_DB} beside the kernel's)."}),
        (("--html",), {"metavar": "PATH", "help": "Also save the report as a standalone HTML file."}),
        (("--report",), {"metavar": "DIR", "help": "Also write runs.csv, seconds.csv, steps.csv and summary.json into DIR."}),
        (("--no-live",), {"action": "store_true", "help": "No live plots (only the progress line), e.g. for quick tests."}),
    ),
    "report": _m._verb(
        "loadtest report", "Show the report of a load test again, from its database.",
        (("--bench-id",), {"required": True, "metavar": "ID", "help": "The bench's workflow id."}),
        (("--db",), {"metavar": "PATH", "help": f"Database file of the test (default {LOAD_DB} beside the kernel's)."}),
        (("--html",), {"metavar": "PATH", "help": "Also save the report as a standalone HTML file."}),
        (("--report",), {"metavar": "DIR", "help": "Also write runs.csv, seconds.csv, steps.csv and summary.json into DIR."}),
    ),
}


class LoadTestView:
    """A finished load test in a notebook: ``report`` (engine.lt.LoadReport), shown as
    the finding, the plots and the steps."""

    def __init__(self, report: lt.LoadReport) -> None:
        self.report = report

    @property
    def finding(self) -> str:
        return self.report.finding

    def save_html(self, path: str | Path) -> Path:
        """Write the report as one standalone HTML file (inline SVG plots, no JavaScript)."""
        return self.report.write_html(path)

    def text(self) -> str:
        lines = [f"Load test {self.report.bench_id}: {len(self.report.runs)} runs", self.report.finding]
        for s in self.report.steps:
            p99 = "-" if s.latency_p99 is None else f"{s.latency_p99 * 1000:.0f} ms"
            lines.append(f"  {s.description:<24} offered {s.offered_rate:g}/s  achieved {s.achieved_rate:g}/s  p99 {p99}  "
                         f"backlog {s.backlog_end}  {'keeps up' if s.keeps_up else 'does NOT keep up'}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **_: Any) -> dict[str, Any]:
        title = f"<h3>Load test {html.escape(self.report.bench_id)}</h3>"
        return {"text/plain": self.text(), "text/html": f'<div class="dlab-loadtest">{title}{self.report.html_fragment()}</div>'}


class LiveView:
    """The progress line and the plots, redrawn once a second while the test runs.

    The plots are drawn in the kernel, which also drives the test: when a redraw is slow (a
    busy machine), the next one waits three times as long, so drawing never takes more than
    about a quarter of the driver's time and the offered rate stays what the steps say."""

    def __init__(self, seconds: int, p99_limit: float, plots: bool) -> None:
        self.seconds, self.p99_limit, self.plots = seconds, p99_limit, plots
        self.samples: list[dict[str, Any]] = []
        self.bench_id = ""
        self.drawn = 0
        self.plot_cost = 0.0
        self.next_plot = 0.0
        self.live_figure: Any = None
        if plots:
            # Made now, before the bench starts: importing matplotlib and building the figure
            # take a second or more on a busy machine, which the test's first second would pay.
            self.live_figure = lt.live_figure(seconds=seconds, p99_limit=p99_limit)
        self.line = display(HTML("<i>starting the load test…</i>"), display_id=True)
        self.figure = display(HTML(""), display_id=True) if plots else None

    def started(self, bench_id: str, _plan: Any) -> None:
        self.bench_id = bench_id

    def add(self, sample: dict[str, Any]) -> None:
        self.samples.append(sample)

    def draw(self, final: bool = False) -> None:
        if len(self.samples) == self.drawn:
            return
        self.drawn = len(self.samples)
        last = self.samples[-1]
        second = int(last["second"]) + 1
        p99 = last.get("latency_p99")
        state = "draining: waiting for the last runs" if last.get("draining") else f"second {second} of {self.seconds}"
        text = (f"bench <code>{html.escape(self.bench_id)}</code>: {state}; offered {last['offered']}/s, closed {last['closed']}/s, "
                f"in flight {last['in_flight']}, backlog {last['backlog_workflow_tasks'] + last['backlog_activity_tasks']}, "
                f"p99 {'-' if p99 is None else f'{p99 * 1000:.0f} ms'}")
        bar = f'<progress value="{min(second, self.seconds)}" max="{self.seconds}" style="width:20em"></progress> '
        if self.line is not None:
            self.line.update(HTML(bar + text))
        now = time.monotonic()
        if self.figure is not None and (final or now >= self.next_plot):
            self.figure.update(Image(lt.figure_png(self.live_figure.update(self.samples))))
            self.plot_cost = time.monotonic() - now
            self.next_plot = now + 3 * self.plot_cost

    def close(self) -> None:
        # The report below shows the final plots: the live ones would only repeat them.
        if self.figure is not None:
            self.figure.update(HTML(""))
        if self.line is not None and self.samples:
            self.line.update(HTML(f"bench <code>{html.escape(self.bench_id)}</code>: done, {len(self.samples)} seconds."))

    async def redraw_every_second(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.draw()


@magics_class
class LoadTestMagics(Magics):
    """``%loadtest``, bound to the kernel's session (its database folder and definitions)."""

    def __init__(self, shell: Any, session: Any, temporal: Any = None) -> None:
        super().__init__(shell)
        self.session = session
        self.temporal = temporal  # kernel_ext._temporal.TemporalTarget: where %temporal points, if anywhere

    @line_magic
    @_m._help("%loadtest VERB [flags]: load tests in the spirit of Temporal's maru (engine.loadtest).", LOAD_VERBS)
    def loadtest(self, line: str) -> _m.Pending:
        verb, args, parser = _m._split_verb("loadtest", LOAD_VERBS, line)
        db = self._db(args.db)
        if verb == "report":
            return _m.Pending("%loadtest report", lambda: self._report(parser, db, args.bench_id, args.html, args.report))
        server = self._server()
        if server is not None:
            self._check_server_flags(parser, args)
        elif args.module:
            parser.error("--module is for a Temporal server (%temporal connect first); here the worker processes run your %%workflow cells.")
        scenario = self._scenario(parser, args, on_server=server is not None)
        workflows: list[Any] = []
        activities: list[Any] = []
        file = None
        if args.workflow and server is None:
            if args.processes:
                file = str(self._definitions_file(parser, db))
            else:
                workflows, activities = list(self.session.workflows.values()), list(self.session.activities.values())

        async def work() -> LoadTestView:
            __tracebackhide__ = True
            live = LiveView(sum(len(s.offered()) for s in scenario.steps), scenario.p99_limit, plots=not args.no_live)
            drawing = asyncio.get_running_loop().create_task(live.redraw_every_second())
            try:
                report = await lt.run_load_test(
                    scenario, db_path=db, processes=args.processes, bench_id=args.bench_id, file=file,
                    workflows=workflows, activities=activities, synchronous=args.synchronous,
                    max_concurrent_activities=args.max_concurrent_activities,
                    on_sample=live.add, on_start=live.started, server=server, module=args.module,
                )
            except (ValueError, RuntimeError) as e:
                raise UsageError(f"{e}\n{parser.usage_line()}") from None
            finally:
                drawing.cancel()
            live.draw(final=True)
            live.close()
            _save(report, args.html, args.report)
            return LoadTestView(report)

        return _m.Pending("%loadtest run", work)

    def _db(self, given: str | None) -> str:
        if given:
            return given
        kernel_db = self.session.resolved_path()
        folder = Path(".durable") if kernel_db == ":memory:" else Path(kernel_db).parent
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / LOAD_DB)

    def _server(self) -> lt.TemporalServer | None:
        """The Temporal server %temporal is connected to, with the dev server's pid and file when it is the kernel's own."""
        t = self.temporal
        if t is None or not t.connected:
            return None
        own = t.server if t.server is not None and t.server.running and t.server.target == t.address else None
        db_file = own.db_file if own is not None else None
        return lt.TemporalServer(t.address, t.namespace, pid=own.proc.pid if own is not None and own.proc else None,
                                 db_file=str(db_file) if db_file is not None and db_file.exists() else None)

    @staticmethod
    def _check_server_flags(parser: _m._Parser, args: Any) -> None:
        if args.processes < 1:
            parser.error("On a Temporal server temporalio worker processes serve the runs: --processes 1 or more "
                         "(%engine switches back to the kernel's engine).")
        if args.workflow and not args.module:
            parser.error(f"--workflow {args.workflow!r} on a Temporal server: give --module, the importable module of your temporalio "
                         "workflow (the worker processes import it; the kernel's %%workflow cells are the engine's).")
        if args.module and not args.workflow:
            parser.error("--module gives your code: name the workflow to start with --workflow TYPE.")

    def _scenario(self, parser: _m._Parser, args: Any, on_server: bool = False) -> lt.Scenario:
        def seconds(flag: str, text: str) -> float:
            value = _m._duration(parser, flag, text)
            assert value is not None
            return value.total_seconds()

        if args.workflow and not on_server and args.workflow not in self.session.workflows:
            known = ", ".join(sorted(self.session.workflows)) or "none yet"
            parser.error(f"--workflow {args.workflow!r}: no %%workflow cell defines it (defined: {known}).")
        if args.input and not args.workflow:
            parser.error("--input is the argument of your --workflow; the built-in target is set with --activities, --timers, ...")
        inputs = _m._json_inputs(parser, args.input)
        try:
            return lt.Scenario(
                lt.parse_steps(args.steps),
                target=lt.TargetConfig(
                    activities=args.activities, activity_latency=seconds("--activity-latency", args.activity_latency),
                    activity_failure_rate=args.failure_rate, timers=args.timers, timer_seconds=seconds("--timer", args.timer),
                    signals=args.signals, children=args.children,
                ),
                workflow=args.workflow, make_input=(lambda number, rng: inputs) if args.workflow else None,
                max_in_flight=args.max_in_flight, seed=args.seed, drain_seconds=round(seconds("--drain", args.drain)),
                name=args.name, p99_limit=seconds("--p99-limit", args.p99_limit),
            )
        except ValueError as e:
            parser.error(str(e))
            raise  # parser.error raises; this keeps mypy sure

    def _definitions_file(self, parser: _m._Parser, db: str) -> Path:
        from kernel_ext._process_workers import write_code

        if not self.session.sources:
            parser.error("No %%workflow or %%activity cell has run yet: the worker processes run the code of those cells.")
        return write_code(Path(db + "-load"), list(self.session.sources))

    async def _report(self, parser: _m._Parser, db: str, bench_id: str, page: str | None, folder: str | None) -> LoadTestView:
        if not Path(db).exists():
            parser.error(f"No load test database at {db!r}: run %loadtest run first, or give --db.")
        client = await Client.connect(db)
        try:
            report = await lt.build_report(client, bench_id)
        except EngineError as e:  # a wrong id, as a rule
            raise UsageError(f"No load test {bench_id!r} in {db}: {e}\n{parser.usage_line()}") from None
        except RuntimeError as e:  # its runs are on a Temporal server out of reach now
            raise UsageError(f"{e}\n{parser.usage_line()}") from None
        finally:
            await client.close()
        _save(report, page, folder)
        return LoadTestView(report)


def _save(report: lt.LoadReport, page: str | None, folder: str | None) -> None:
    if page:
        report.write_html(page)
    if folder:
        report.write(folder)
