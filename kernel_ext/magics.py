"""The durable-lab magics: ``%worker``, ``%workflow``, ``%engine``, ``%%workflow``, ``%%activity``.

Each magic parses its line with IPython's magic argument parser and calls one function of
:class:`kernel_ext._session.Session`; misuse raises ``UsageError`` (IPython shows its message,
no traceback). Line magics return an awaitable; the input transformer of
:mod:`kernel_ext._transform` puts ``await`` in front of them, so a cell that uses one runs on
the kernel's event loop and shows the awaited value.
"""

from __future__ import annotations

import ast
import asyncio
from typing import Any, Awaitable, Callable, Mapping

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from traitlets import Enum, Instance, Unicode, observe
from traitlets.config import Configurable

from engine import temporalio_compat
from engine._sandbox.translation import activity_methods
from kernel_ext import _cell_modules as cell_modules
from engine.converter import DataConverter
from engine.errors import WorkflowAlreadyStartedError, WorkflowNotFoundError
from engine.worker.workflow_sandbox import register_source
from engine._runtime import code_names as _code_names
from kernel_ext import _errors, _temporal, _transform
from kernel_ext._session import DEFAULT_DB_PATH, SHOW_OUTPUTS, TIME_MODES, Session, SessionError
from kernel_ext._magic_args import _ID, _INPUT, _RUN, Pending, _duration, _help, _json_inputs, _Parser, _split_verb, _verb

__all__ = ["DurableLab", "DurableMagics", "Pending", "load", "unload"]

# Mistakes a user fixes by changing the command; anything else keeps its traceback.
_USER_ERRORS = (SessionError, WorkflowNotFoundError, WorkflowAlreadyStartedError)


class DurableLab(Configurable):
    """Settings of the kernel's engine (``%config DurableLab.db_path = ':memory:'``, or an
    IPython profile's ``c.DurableLab.time_mode = 'skip'``). Changes apply at the next magic."""

    db_path = Unicode(
        DEFAULT_DB_PATH, help="SQLite file of the kernel's engine, relative to the notebook's folder, or ':memory:'."
    ).tag(config=True)
    time_mode = Enum(
        list(TIME_MODES), default_value="real", help="'real': the wall clock; 'skip': time jumps to the next timer while a result is awaited."
    ).tag(config=True)
    data_converter = Instance(
        "engine.converter.DataConverter",
        allow_none=True,
        help="Data converter of the engine's client and workers, e.g. DataConverter(payload_codec=EncryptionCodec(key)) "
        "(%config DurableLab.data_converter = converter, with converter a variable of the notebook). The viewers decode "
        "payloads with its codec.",
    ).tag(config=True)

    session: Session | None = None  # set by load(); config loading may fire the observer before

    @observe("db_path", "time_mode", "data_converter")
    def _settings_changed(self, change: Any) -> None:
        if self.session is not None:
            value = change["new"]
            if change["name"] == "data_converter" and value is None:
                value = DataConverter.default
            self.session.configure(**{change["name"]: value})


_START = (
    (("--type",), {"required": True, "metavar": "T", "help": "Workflow type (a class defined in a %%%%workflow cell)."}),
    (("--task-queue", "-t"), {"required": True, "metavar": "Q", "help": "Task queue a worker polls."}),
    (("--workflow-id", "-w"), {"metavar": "ID", "help": "Workflow id (default: a new UUID)."}),
    _INPUT,
    (("--execution-timeout",), {"metavar": "D", "help": "Limit for the whole execution, e.g. 30s, 5m, 1h."}),
    (("--run-timeout",), {"metavar": "D", "help": "Limit for one run."}),
    (("--task-timeout",), {"metavar": "D", "help": "Limit for one workflow task (default 10s)."}),
)


WORKER_VERBS: Mapping[str, _Parser] = {
    "start": _verb("worker start", "Start a worker serving every workflow and activity the kernel defined (while %temporal is connected: a temporalio worker on that server).",
                   (("--task-queue", "-t"), {"required": True, "metavar": "Q", "help": "Task queue to poll."}),
                   (("--name", "-n"), {"metavar": "N", "help": "Worker name (default w1, w2, ...; p1, p2, ... for processes)."}),
                   (("--process",), {"action": "store_true", "help": "Run it as a separate process (dlab worker) over the database file."})),
    "stop": _verb("worker stop", "Stop a worker: workflow tasks in flight finish, running activities are cancelled.",
                  (("name",), {"metavar": "N", "help": "Worker name (see %%worker list)."})),
    "kill": _verb("worker kill", "Kill a worker abruptly (SIGKILL for a process): its cache and work in flight are lost.",
                  (("name",), {"metavar": "N", "help": "Worker name (see %%worker list)."})),
    "list": _verb("worker list", "List the kernel's workers, then the other workers running on its database file."),
}


WORKFLOW_VERBS: Mapping[str, _Parser] = {
    "start": _verb("workflow start", "Start a run; returns its handle at once (await it for the result).", *_START),
    "execute": _verb("workflow execute", "Start a run and wait for its result; stops with the failure if its workflow task fails (the run goes on).", *_START),
    "show": _verb("workflow show", "Show a run's event history (or a history file's).",
                  (("--workflow-id", "-w"), {"metavar": "ID", "help": "Workflow id (or --file)."}), _RUN,
                  (("--file", "-f"), {"metavar": "PATH", "help": "A history JSON file (temporal workflow show -o json, the Web UI's download, -o json): table, json, graph or saga."}),
                  (("--detailed",), {"action": "store_true", "help": "Show every event's attributes."}),
                  (("--output", "-o"), {"choices": SHOW_OUTPUTS, "default": "table", "help": "table (default); json (Temporal's format); graph (the run's steps); saga (steps, failure, compensations); chain (every run of a continue-as-new chain); explorer (a widget: click the graph, timeline, events, runs)."})),
    "list": _verb("workflow list", "List runs, newest first.",
                  (("--query", "-q"), {"metavar": "FILTER", "help": "Temporal's list filter, e.g. \"WorkflowType='Hello' AND ExecutionStatus='Running'\" (also WorkflowId, RunId, TaskQueue, StartTime, CloseTime; = != < > BETWEEN IN STARTS_WITH AND OR)."}),
                  (("--limit",), {"type": int, "metavar": "N", "help": "Show at most N runs."})),
    "describe": _verb("workflow describe", "Show a run's status and counts.", _ID, _RUN),
    "result": _verb("workflow result", "Wait for a run's result; stops with the failure if its workflow task fails.", _ID, _RUN),
    "signal": _verb("workflow signal", "Send a signal to a run.", _ID, _RUN,
                    (("--name",), {"required": True, "metavar": "SIGNAL", "help": "Signal name."}), _INPUT),
    "query": _verb("workflow query", "Query a run.", _ID, _RUN,
                   (("--name", "--type"), {"required": True, "dest": "name", "metavar": "QUERY", "help": "Query name."}), _INPUT),
    "cancel": _verb("workflow cancel", "Ask a run to cancel; its code may clean up.", _ID, _RUN,
                    (("--reason",), {"default": "", "help": "Why (recorded in the history)."})),
    "terminate": _verb("workflow terminate", "End a run at once; no workflow code runs.", _ID, _RUN,
                       (("--reason",), {"help": "Why (recorded in the history)."})),
    "reset": _verb("workflow reset", "Reset a run to the end of a workflow task: a new run copies its history up to there and the code defined now takes over (a bug fixed since); later signals are re-applied; the open run is terminated.",
                   _ID, _RUN,
                   (("--event-id", "-e"), {"type": int, "metavar": "N", "help": "A WorkflowTaskCompleted event id to reset to (%%workflow describe lists the run's reset points)."}),
                   (("--type",), {"dest": "reset_type", "choices": ("FirstWorkflowTask", "LastWorkflowTask"), "help": "Reset to the first or the last completed workflow task."}),
                   (("--reason",), {"required": True, "help": "Why (recorded in the new run's history)."}),
                   (("--no-signals",), {"action": "store_true", "help": "Do not re-apply the signals received after the point."})),
}


ENGINE_PARSER = _verb("engine", "Show the engine's status, or reset it, or switch its clock.",
                      (("--reset",), {"action": "store_true", "help": "Start over with an empty database at the same path."}),
                      (("--time",), {"choices": TIME_MODES, "help": "real: the wall clock; skip: time jumps to the next timer while a result is awaited."}),
                      (("--advance",), {"metavar": "D", "help": "Time skipping only: move the engine's clock forward by D (e.g. 30d, 12h) at once; what falls due fires."}))


_DEFINITIONS_HELP = """
%%{kind} [--module NAME]
  On the first line of a cell that defines {what}. The cell runs in the notebook's
  namespace; every {what_short} it defines is registered with the kernel's workers
  (running ones too). Re-running the cell replaces the definition: runs in flight
  continue with the new code from their next workflow task (they replay their history).
  Activities may be methods of a class: an instance the cell creates at top level
  (acts = TranslationActivities(session)) has its @activity.defn methods registered,
  called with that instance, as Worker(activities=[acts.translate_term]) does.

  --module NAME   also make the cell importable as module NAME (what it binds at top
                  level becomes the module's attributes), so code written for files runs
                  unchanged: `from NAME import TranslationActivities`, also in workflow
                  code inside workflow.unsafe.imports_passed_through(). Re-running the
                  cell replaces the module. NAME may not hide an installed module.{extra}
"""


_SANDBOX_HELP = """
  Workflows run in the engine's sandbox, as module code does: each run re-runs the cell's
  definitions (not its expression statements) in a copy of the notebook's namespace, so
  the cell's own globals belong to the run, and time.time(), random, open() and the like
  raise an error from workflow code (see docs/sandbox.md for the escape hatches)."""


# ---------------------------------------------------------------------- the magics
@magics_class
class DurableMagics(Magics):
    """The durable-lab magics, bound to one :class:`Session`."""

    def __init__(self, shell: Any, session: Session, settings: DurableLab) -> None:
        super().__init__(shell)
        self.session = session
        self.settings = settings
        # Engine messages (non-determinism, sandbox) name cells as IPython does: Cell In[12].
        self.namer = _errors.cell_namer(shell)
        self.temporal: Any = None  # kernel_ext._temporal.TemporalTarget, set by load()

    def _pending(self, what: str, parser: _Parser, work: Callable[[], Awaitable[Any]]) -> Pending:
        async def run() -> Any:
            __tracebackhide__ = True  # IPython leaves this wrapper's frame out of tracebacks
            try:
                return await work()
            except _USER_ERRORS as e:
                raise UsageError(f"{e}\n{parser.usage_line()}") from None

        return Pending(what, run)

    # ------------------------------------------------------------ %worker
    @line_magic
    @_help("%worker VERB [flags]: start, stop and list the kernel's workers.", WORKER_VERBS)
    def worker(self, line: str) -> Pending:
        verb, args, parser = _split_verb("worker", WORKER_VERBS, line)
        session = self.session
        temporal = self.temporal
        if temporal is not None and (temporal.connected and verb == "start" or verb != "start" and temporal.workers):
            return self._temporal_worker(verb, args, parser)
        match verb:
            case "start":
                return self._pending("%worker start", parser, lambda: session.start_worker(args.task_queue, args.name, process=args.process))
            case "stop":
                return self._pending("%worker stop", parser, lambda: session.stop_worker(args.name))
            case "kill":
                return self._pending("%worker kill", parser, lambda: session.kill_worker(args.name))
            case _:
                async def show() -> None:
                    print(session.worker_table())

                return self._pending("%worker list", parser, show)

    def _temporal_worker(self, verb: str, args: Any, parser: _Parser) -> Pending:
        """%worker while connected to Temporal (start) or while the kernel runs temporalio workers."""
        session, temporal = self.session, self.temporal
        if verb == "start":
            if args.process:
                raise UsageError("%worker start --process runs the engine's worker process; on Temporal the kernel runs a "
                                 f"temporalio worker: drop --process (or %engine to switch back).\n{parser.usage_line()}")
            taken = {w.name for w in session.workers()} | set(getattr(session, "_processes", {}))
            return self._pending("%worker start", parser, lambda: temporal.start_worker(list(session.sources), args.task_queue, args.name, taken))
        if verb == "list":
            async def show() -> None:
                ours, engines = temporal.worker_table(), session.worker_table()
                if engines.startswith("No workers."):  # none on the engine: only the Temporal ones
                    print(ours)
                else:
                    print(f"{engines}\n\ntemporalio workers of this kernel:\n{ours}")

            return self._pending("%worker list", parser, show)
        if args.name not in temporal.workers:
            call = session.stop_worker if verb == "stop" else session.kill_worker
            return self._pending(f"%worker {verb}", parser, lambda: call(args.name))
        if verb == "kill":
            raise UsageError(f"{args.name} is a temporalio worker on Temporal: %worker kill crashes engine workers only; "
                             f"%worker stop {args.name} stops it.\n{parser.usage_line()}")
        return self._pending("%worker stop", parser, lambda: temporal.stop_worker(args.name))

    # ------------------------------------------------------------ %workflow and %%workflow
    @line_cell_magic
    @_help(
        "%workflow VERB [flags]: the verbs of `temporal workflow` against the kernel's engine.",
        WORKFLOW_VERBS,
        _DEFINITIONS_HELP.format(kind="workflow", what="@workflow.defn classes", what_short="workflow class", extra=_SANDBOX_HELP),
    )
    def workflow(self, line: str, cell: str | None = None) -> Pending:
        if cell is not None:
            return self._definitions("workflow", line, cell)
        verb, args, parser = _split_verb("workflow", WORKFLOW_VERBS, line)
        session = self.session
        what = f"%workflow {verb}"
        if verb == "reset" and (args.event_id is None) == (args.reset_type is None):  # on the engine and on Temporal
            raise UsageError(f"%workflow reset needs either --event-id N or --type FirstWorkflowTask|LastWorkflowTask.\n{parser.usage_line()}")
        if self.temporal is not None and self.temporal.connected and verb in _temporal.REMOTE_VERBS and not getattr(args, "file", None):
            if verb in ("start", "execute"):  # durations as on the engine: 30s, 5m, 1h30m
                for flag in ("execution_timeout", "run_timeout", "task_timeout"):
                    setattr(args, flag, _duration(parser, "--" + flag.replace("_", "-"), getattr(args, flag)))
            elif verb != "list" and not args.workflow_id:
                raise UsageError(f"%workflow {verb} needs --workflow-id ID.\n{parser.usage_line()}")
            return self._pending(what, parser, lambda: self.temporal.workflow(verb, args, session.data_converter))
        match verb:
            case "start" | "execute":
                options = dict(
                    task_queue=args.task_queue,
                    workflow_id=args.workflow_id,
                    args=_json_inputs(parser, args.input),
                    execution_timeout=_duration(parser, "--execution-timeout", args.execution_timeout),
                    run_timeout=_duration(parser, "--run-timeout", args.run_timeout),
                    task_timeout=_duration(parser, "--task-timeout", args.task_timeout),
                )
                call = session.start_workflow if verb == "start" else session.execute_workflow
                return self._pending(what, parser, lambda: call(args.type, **options))
            case "show" if args.file:
                from kernel_ext._history_file import show_history_file

                return self._pending(what, parser, lambda: show_history_file(
                    args.file, output=args.output, detailed=args.detailed, data_converter=session.data_converter))
            case "show" if not args.workflow_id:
                raise UsageError(f"%workflow show needs --workflow-id ID (a run here) or --file PATH (a history file).\n{parser.usage_line()}")
            case "show":
                return self._pending(what, parser, lambda: session.show_workflow(args.workflow_id, args.run_id, output=args.output, detailed=args.detailed))
            case "list":
                return self._pending(what, parser, lambda: session.list_workflows(args.query, args.limit))
            case "describe":
                return self._pending(what, parser, lambda: session.describe_workflow(args.workflow_id, args.run_id))
            case "result":
                return self._pending(what, parser, lambda: session.workflow_result(args.workflow_id, args.run_id))
            case "signal" | "query":
                inputs = _json_inputs(parser, args.input)
                send = session.signal_workflow if verb == "signal" else session.query_workflow
                return self._pending(what, parser, lambda: send(args.workflow_id, args.name, inputs, args.run_id))
            case "cancel":
                async def cancel() -> None:
                    run_id = await session.cancel_workflow(args.workflow_id, args.run_id, args.reason)
                    print(f"Cancellation requested for workflow {args.workflow_id!r} (run {run_id}).")

                return self._pending(what, parser, cancel)
            case "reset":
                async def reset() -> None:
                    print(await session.reset_workflow(args.workflow_id, args.run_id, args.event_id, args.reset_type, args.reason, not args.no_signals))

                return self._pending(what, parser, reset)
            case _:
                async def terminate() -> None:
                    run_id = await session.terminate_workflow(args.workflow_id, args.run_id, args.reason)
                    print(f"Workflow {args.workflow_id!r} (run {run_id}) terminated.")

                return self._pending(what, parser, terminate)

    # ------------------------------------------------------------ %%activity
    @cell_magic
    @_help("", {}, _DEFINITIONS_HELP.format(kind="activity", what="@activity.defn functions", what_short="activity function", extra=""))
    def activity(self, line: str, cell: str) -> Pending:
        return self._definitions("activity", line, cell)

    def _definitions(self, kind: str, line: str, cell: str) -> Pending:
        plural = "workflows" if kind == "workflow" else "activities"
        usage = f"usage: %%{kind} [--module NAME]  (on the first line of a cell that defines {plural})"
        module_name = cell_modules.module_option(line, f"%%{kind}", usage)
        shell = self.shell
        assert shell is not None
        before = dict(shell.user_ns)
        # Code pasted from Temporal's courses imports temporalio: map it onto the engine here.
        with temporalio_compat.mapped():
            bound, classes, (source, filename) = _run_source(shell, cell)
        self.session.remember_source(cell if module_name is None else cell_modules.for_process(cell, module_name))
        missing = object()
        defined = [value for name, value in shell.user_ns.items() if name in bound or before.get(name, missing) is not value]
        if module_name is not None:
            cell_modules.install(module_name, {name: shell.user_ns[name] for name in bound if name in shell.user_ns})
        # acts = TranslationActivities(session): the instance's activity methods, bound to it.
        defined += [method for value in defined for method in activity_methods(value)]
        if kind == "workflow":
            # Each run of these classes re-runs the cell's definitions in the sandbox.
            register_source(_workflow_classes(shell.user_ns, classes), source, filename, shell.user_ns, shell.compile.flags)
        registration = self.session.define(defined)
        if registration.added or registration.replaced or registration.unchanged:
            print(registration.summary())
        if not registration.names(kind):
            decorator = "@workflow.defn class" if kind == "workflow" else "@activity.defn function"
            raise UsageError(f"This %%{kind} cell defined no {decorator} (it ran as ordinary code).\n{usage}")

        async def update_workers() -> None:
            await self.session.sync_workers()

        return Pending(f"%%{kind} (updating workers)", update_workers)

    # ------------------------------------------------------------ %engine
    @line_magic
    @_help("%engine [--reset] [--time real|skip] [--advance D]: the kernel's engine.", {"": ENGINE_PARSER},
           "\nWithout flags it shows the database path, the clock, workers and runs by status.\n")
    def engine(self, line: str) -> Pending:
        args = ENGINE_PARSER.parse(line)
        advance = _duration(ENGINE_PARSER, "--advance", args.advance)
        session = self.session
        if self.temporal is not None:
            self.temporal.disconnect()  # %engine: %workflow acts on the kernel's engine again

        async def engine() -> Any:
            if args.reset:
                await session.reset()
            if args.time is not None:
                status = await session.set_time_mode(args.time)
                if advance is None:
                    return status
            if advance is not None:
                return await session.advance_time(advance)
            return await session.status()

        return self._pending("%engine", ENGINE_PARSER, engine)


def _run_source(shell: Any, cell: str) -> tuple[set[str], set[str], tuple[str, str]]:
    """Run a cell body in the user's namespace, its source cached as IPython does for cells
    (tracebacks show the lines; ``inspect`` and the replay debugger find the code). Returns
    the names the cell binds at top level (re-importing a definition rebinds the same object,
    which comparing the namespace before and after would miss), the classes it defines, and
    its Python source and file name (for the sandbox)."""
    source = shell.transform_cell(cell)
    # Numbered as the cell that runs the magic, so tracebacks and errors name that cell.
    filename = shell.compile.cache(source, _errors.running_cell_number(shell), raw_code=cell)
    code = shell.compile(source, filename, "exec")
    exec(code, shell.user_global_ns, shell.user_ns)
    tree = ast.parse(source)
    classes = {node.name for node in tree.body if isinstance(node, ast.ClassDef)}
    return _top_level_names(tree), classes, (source, filename)


def _workflow_classes(namespace: Mapping[str, Any], names: set[str]) -> list[type]:
    """The @workflow.defn classes the cell defined (not those it imported)."""
    found = (namespace.get(name) for name in names)
    return [cls for cls in found if isinstance(cls, type) and "__workflow_definition__" in cls.__dict__]


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        match node:
            case ast.ClassDef(name=name) | ast.FunctionDef(name=name) | ast.AsyncFunctionDef(name=name):
                names.add(name)
            case ast.Import(names=aliases) | ast.ImportFrom(names=aliases):
                names.update((a.asname or a.name).split(".")[0] for a in aliases)
            case ast.Assign(targets=targets):
                names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


# ---------------------------------------------------------------------- loading
# asyncio keeps only weak references to tasks: hold closing engines until they are closed.
_closing: set[asyncio.Task[None]] = set()


_NAMES = (("line", ("worker", "workflow", "engine")), ("cell", ("workflow", "activity")))


def load(shell: Any) -> DurableMagics:
    """``%load_ext kernel_ext``: settings, session, magics, input transformer; one line of output."""
    settings = DurableLab(parent=shell)
    try:
        session = Session(settings.db_path, settings.time_mode, settings.data_converter)
    except SessionError as e:
        raise UsageError(str(e)) from None
    settings.session = session
    shell.configurables.append(settings)
    magics = DurableMagics(shell, session, settings)
    shell.register_magics(magics)
    from kernel_ext._fault_magics import FaultMagics

    shell.register_magics(FaultMagics(shell, session))
    from kernel_ext import _replay_magic

    replay_magics = _replay_magic.register(shell, session)
    magics.temporal = replay_magics.temporal = _temporal.TemporalTarget()
    shell.register_magics(_temporal.TemporalMagics(shell, magics.temporal, magics._pending))
    from kernel_ext._check_magic import CheckMagics

    shell.register_magics(CheckMagics(shell, session))
    from kernel_ext._load_magics import LoadTestMagics

    shell.register_magics(LoadTestMagics(shell, session, magics.temporal))
    _code_names.add_namer(magics.namer)
    _transform.install(shell)
    # This cell was transformed before the transformer existed: fix its remaining magics.
    _transform.await_rest_of_cell()
    print(
        f"durable-lab: engine at {session.db_path} ({session.time_mode} time); "
        "magics %worker %workflow %engine %fault %explore %replay %check %loadtest %temporal %%workflow %%activity"
    )
    return magics


def unload(shell: Any) -> None:
    """``%unload_ext kernel_ext``: stop workers, close the engine, remove what ``load`` added."""
    magics = shell.magics_manager.registry.pop(DurableMagics.__name__, None)
    if not isinstance(magics, DurableMagics):
        return
    fault_magics = shell.magics_manager.registry.pop("FaultMagics", None)
    check_magics = shell.magics_manager.registry.pop("CheckMagics", None)
    load_magics = shell.magics_manager.registry.pop("LoadTestMagics", None)
    from kernel_ext import _replay_magic

    _replay_magic.unregister(shell)
    temporal_magics = shell.magics_manager.registry.pop("TemporalMagics", None)
    if getattr(shell.magics_manager.magics["line"].get("temporal"), "__self__", None) is temporal_magics is not None:
        del shell.magics_manager.magics["line"]["temporal"]
    if magics.temporal is not None:
        for temporal_worker in magics.temporal.workers.values():
            temporal_worker.cancel()
        if magics.temporal.server is not None:
            magics.temporal.server.stop()
    line_table = shell.magics_manager.magics["line"]
    for name, owner in (("fault", fault_magics), ("explore", fault_magics), ("check", check_magics), ("loadtest", load_magics)):
        if owner is not None and getattr(line_table.get(name), "__self__", None) is owner:
            del line_table[name]
    for kind, names in _NAMES:
        table = shell.magics_manager.magics[kind]
        for name in names:
            if getattr(table.get(name), "__self__", None) is magics:
                del table[name]
    _transform.uninstall(shell)
    _code_names.remove_namer(magics.namer)
    if magics.settings in shell.configurables:
        shell.configurables.remove(magics.settings)
    magics.settings.session = None
    closing = magics.session.close_soon()
    if closing is not None:
        _closing.add(closing)
        closing.add_done_callback(_forget)


def _forget(task: asyncio.Task[None]) -> None:
    _closing.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it to stderr
