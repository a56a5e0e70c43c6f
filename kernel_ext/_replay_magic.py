"""``%replay``: step through a run's replay in the debugger widget.

``%replay --workflow-id ID [--run-id R]`` replays a run of the kernel's engine against the
workflow class the kernel defines now; ``%replay --file history.json --workflow module:Class``
replays a Temporal JSON history (one downloaded from a Temporal server too). When the code
disagrees with the history, the view opens at the divergence, and shows the code that
recorded the history beside the new code: ``--old module:Class``, or, for a class of a
``%%workflow`` cell, the version of that cell that ran before. ``--compare ID_OR_FILE``
compares two runs step by step instead; ``--diff`` lists the old code's commands against the
new code's, event by event. While ``%temporal`` is connected, ``--workflow-id`` names a run of
that Temporal server: its history is fetched through the temporalio client.

The plain functions (``open_replay``, ``load_workflow_class``) do the work; the magic parses.
"""

from __future__ import annotations

import importlib
import linecache
from typing import Any, NoReturn, Sequence

from IPython.core.magic import Magics, line_magic, magics_class

from engine import temporalio_compat
from engine.converter import DataConverter, decode_history
from engine.errors import EngineError, WorkflowNotFoundError
from engine.history import History, HistoryFormatError, load_history
from engine.replay import Replayer, ReplayDebugger, ReplayTrace
from engine.worker.workflow_sandbox import register_source
from engine._sandbox.runner import compile_definitions
from kernel_ext import _magic_args as _m
from kernel_ext._replay_diff import CodeDiff, RunDiff
from kernel_ext._replay_widget import ReplayView

__all__ = ["REPLAY_PARSER", "ReplayMagics", "open_replay", "load_workflow_class", "previous_definition"]

REPLAY_PARSER = _m._verb(
    "replay",
    "Step through a replay of a run's history against workflow code, forward and back.",
    (("--workflow-id", "-w"), {"metavar": "ID", "help": "A run of the kernel's engine (of the Temporal server while %%temporal is connected)."}),
    _m._RUN,
    (("--file", "-f"), {"metavar": "PATH", "help": "A Temporal JSON history file (temporal workflow show -o json)."}),
    (("--workflow",), {"metavar": "MODULE:CLASS", "help": "The workflow code to replay (default for a run: the class the kernel defines for its type)."}),
    (("--old",), {"metavar": "MODULE:CLASS", "help": "The code that recorded the history, shown beside yours at a divergence."}),
    (("--compare",), {"metavar": "ID_OR_FILE", "help": "Instead of stepping: compare with another run (a workflow id, or a .json history file), step by step."}),
    (("--diff",), {"action": "store_true", "help": "Instead of stepping: the old code's commands against the new code's, event by event (needs --old, or an earlier %%%%workflow cell)."}),
)


def load_workflow_class(spec: str, namespace: dict[str, Any] | None = None) -> type:
    """``module:Class`` imported, or ``Class`` from ``namespace``; ValueError says what is wrong."""
    module_name, colon, class_name = spec.partition(":")
    if not colon:
        found = (namespace or {}).get(spec)
        if not isinstance(found, type):
            raise ValueError(f"No class {spec!r} in the notebook: write module:Class (e.g. myapp.workflows:Approval), or define it in a %%workflow cell.")
        return found
    if not module_name or not class_name:
        raise ValueError(f"--workflow {spec!r} is not module:Class, e.g. myapp.workflows:Approval.")
    try:
        with temporalio_compat.mapped():
            module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"Cannot import module {module_name!r} ({e}); is it on sys.path (the notebook's folder is)?") from None
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise ValueError(f"Module {module_name!r} has no class {class_name!r}.")
    return found


def previous_definition(shell: Any, sources: Sequence[str], workflow_type: str, current: type | None) -> type | None:
    """The workflow class ``workflow_type`` as an earlier ``%%workflow`` cell defined it (the
    newest cell whose code differs from ``current``'s), rebuilt from the cell's source."""
    current_text = _source_of(current)
    for source in reversed(sources):
        transformed = shell.transform_cell(source) if shell is not None else source
        if current_text is not None and transformed.strip() == current_text.strip():
            continue
        filename = _cached_filename(transformed) or _cache_source(transformed, workflow_type)
        try:
            code = compile_definitions(transformed, filename, shell.compile.flags if shell is not None else 0)
            namespace = dict(shell.user_ns) if shell is not None else {}
            with temporalio_compat.mapped():
                exec(code, namespace)
        except Exception:  # noqa: BLE001 - an old cell that no longer runs is not the one
            continue
        before = shell.user_ns if shell is not None else {}
        # Only what this cell defines: the namespace also holds every class the notebook has.
        defined = [value for name, value in namespace.items() if before.get(name) is not value]
        for value in defined:
            defn = value.__dict__.get("__workflow_definition__") if isinstance(value, type) else None
            if defn is not None and defn.name == workflow_type and value is not current:
                register_source([value], transformed, filename, shell.user_ns if shell is not None else namespace)
                return value
    return None


def _source_of(cls: type | None) -> str | None:
    if cls is None:
        return None
    run = next((f for f in vars(cls).values() if callable(f) and hasattr(f, "__code__")), None)
    if run is None:
        return None
    return "".join(linecache.getlines(run.__code__.co_filename)) or None


def _cached_filename(source: str) -> str | None:
    for name, entry in list(linecache.cache.items()):
        if len(entry) == 4 and entry[2] and "".join(entry[2]) == source:
            return str(name)
    return None


def _cache_source(source: str, workflow_type: str) -> str:
    name = f"<earlier definition of {workflow_type}>"
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    return name


def _fail(message: str) -> NoReturn:
    """A UsageError with the usage line (what IPython shows without a traceback)."""
    REPLAY_PARSER.error(message)
    raise AssertionError("unreachable: the parser's error() raises")


async def _ready(value: Any) -> Any:
    return value


def _read_file(path: str) -> History:
    try:
        return load_history(path)
    except (OSError, HistoryFormatError) as e:
        _fail(f"cannot read {path}: {e}")


def _trace(history: History, cls: type, converter: DataConverter) -> ReplayTrace:
    try:
        return Replayer(workflows=[cls], data_converter=converter).trace_workflow(history)
    except EngineError as e:
        raise ValueError(str(e)) from None


def open_replay(
    history: History,
    workflow: type,
    *,
    old: type | None = None,
    data_converter: DataConverter = DataConverter.default,
    attempts: Sequence[Any] = (),
    title: str | None = None,
) -> ReplayView:
    """The debugger widget for ``history`` replayed against ``workflow`` (``old``: the code
    that recorded it, shown beside at a divergence)."""
    trace = _trace(history, workflow, data_converter)
    old_trace = _trace(history, old, data_converter) if old is not None and trace.divergence is not None else None
    return ReplayView(ReplayDebugger(trace), old_trace=old_trace, attempts=attempts, title=title)


@magics_class
class ReplayMagics(Magics):
    """``%replay``, bound to the kernel's session."""

    def __init__(self, shell: Any, session: Any) -> None:
        super().__init__(shell)
        self.session = session
        self.temporal: Any = None  # kernel_ext._temporal.TemporalTarget, set by the loader

    @line_magic
    def replay(self, line: str) -> Any:
        args = REPLAY_PARSER.parse(line)
        if (args.workflow_id is None) == (args.file is None):
            _fail("give --workflow-id ID (a run of this kernel's engine) or --file PATH (a history file), one of them.")
        if args.file is not None and args.workflow is None and args.compare is None:
            _fail("--file needs --workflow MODULE:CLASS: the code to replay the history against.")
        if args.file is not None and args.run_id is not None:
            _fail("--run-id goes with --workflow-id, not with --file.")
        namespace = self.shell.user_ns if self.shell is not None else {}
        try:
            workflow = load_workflow_class(args.workflow, namespace) if args.workflow else None
            old = load_workflow_class(args.old, namespace) if args.old else None
        except ValueError as e:
            _fail(str(e))
        if args.compare is not None and args.diff:
            _fail("--compare (two runs) and --diff (two versions of the code) are two views: give one.")
        if args.file is not None:
            history = _read_file(args.file)
            if args.compare is not None:
                compared = RunDiff(history, _read_file(args.compare))
                return _m.Pending("%replay", lambda: _ready(compared))
            result = self._diff(history, workflow, old) if args.diff else self._view(history, workflow, old, (), None)
            return _m.Pending("%replay", lambda: _ready(result))
        return _m.Pending("%replay", lambda: self._from_engine(args.workflow_id, args.run_id, workflow, old, args.compare, args.diff))

    async def _history(self, workflow_id: str, run_id: str | None) -> tuple[History, Sequence[Any]]:
        session = self.session
        if self.temporal is not None and self.temporal.connected:
            # A server keeps each activity's last attempt only (in its history): no side table.
            try:
                return await self.temporal.runs(session.data_converter).readable(workflow_id, run_id), ()
            except EngineError as e:
                _fail(str(e))
        client = await session.ensure_ready()
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        try:
            history = await handle.fetch_history()
            attempts = await handle.activity_attempts()
        except WorkflowNotFoundError:
            _fail(f"no run of workflow {workflow_id!r}{' with run id ' + repr(run_id) if run_id else ''} in this engine; list runs with %workflow list.")
        try:
            history = await decode_history(history, session.data_converter)
        except Exception as e:  # noqa: BLE001 - a codec that cannot read: say which setting fixes it
            _fail(f"cannot decode the history ({e}); set the data converter that wrote it: %config DurableLab.data_converter = ...")
        return history, attempts

    async def _from_engine(
        self, workflow_id: str, run_id: str | None, workflow: type | None, old: type | None, compare: str | None, diff: bool
    ) -> Any:
        __tracebackhide__ = True
        session = self.session
        history, attempts = await self._history(workflow_id, run_id)
        if compare is not None:
            other = _read_file(compare) if compare.endswith(".json") else (await self._history(compare, None))[0]
            return RunDiff(history, other)
        wtype = history.workflow_type
        if workflow is None:
            workflow = session.workflows.get(wtype)
            if workflow is None:
                known = ", ".join(sorted(session.workflows)) or "none yet"
                _fail(f"this kernel defines no workflow {wtype!r} (it defines: {known}); define it in a %%workflow cell or pass --workflow MODULE:CLASS.")
        if old is None:
            old = previous_definition(self.shell, list(session.sources), wtype, workflow)
        if diff:
            return self._diff(history, workflow, old)
        return self._view(history, workflow, old, attempts, f"{wtype} · {workflow_id}")

    def _diff(self, history: History, workflow: Any, old: type | None) -> CodeDiff:
        if old is None:
            _fail("--diff needs the code that recorded the history: --old MODULE:CLASS (no earlier %%workflow cell of this type was found).")
        try:
            converter = self.session.data_converter
            return CodeDiff(_trace(history, old, converter), _trace(history, workflow, converter))
        except ValueError as e:
            _fail(str(e))

    def _view(self, history: History, workflow: Any, old: type | None, attempts: Sequence[Any], title: str | None) -> ReplayView:
        try:
            return open_replay(history, workflow, old=old, data_converter=self.session.data_converter, attempts=attempts, title=title)
        except ValueError as e:
            _fail(str(e))


ReplayMagics.replay.__doc__ = REPLAY_PARSER.format_help()


def register(shell: Any, session: Any) -> ReplayMagics:
    """Called by the extension's loader."""
    magics = ReplayMagics(shell, session)
    shell.register_magics(magics)
    return magics


def unregister(shell: Any) -> None:
    magics = shell.magics_manager.registry.pop(ReplayMagics.__name__, None)
    table = shell.magics_manager.magics["line"]
    if magics is not None and getattr(table.get("replay"), "__self__", None) is magics:
        del table["replay"]

