"""``%fault`` and ``%explore``: the crash lab's magics (engine.faults from a notebook).

``%fault fail|hang|slow --activity A`` makes an activity misbehave, ``%fault crash --after
EVENT`` crashes the worker that writes EVENT, ``%fault list|clear|log`` manage them.
``%explore --type T --input JSON`` crashes a run at every state change and tabulates how
the engine recovered.
"""

from __future__ import annotations

import difflib
import html
from typing import Any, Mapping, Sequence

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from engine import faults
from engine.faults import CRASH_PHASES
from kernel_ext import _magic_args as _m
from kernel_ext._html import cell
from kernel_ext._session import SessionError

FAULT_VERBS: Mapping[str, _m._Parser] = {
    "fail": _m._verb(
        "fault fail", "Make the next attempts of an activity fail (retried by its retry policy).",
        (("--activity", "-a"), {"required": True, "metavar": "A", "help": "Activity type."}),
        (("--times",), {"type": int, "default": 1, "metavar": "N", "help": "How many attempts (default 1)."}),
        (("--error-type",), {"default": faults.INJECTED_TYPE, "metavar": "T", "help": "ApplicationError type to raise."}),
        (("--non-retryable",), {"action": "store_true", "help": "Do not retry: the workflow sees the failure at once."}),
    ),
    "hang": _m._verb(
        "fault hang", "Make the next attempts of an activity hang past their start-to-close timeout.",
        (("--activity", "-a"), {"required": True, "metavar": "A", "help": "Activity type."}),
        (("--times",), {"type": int, "default": 1, "metavar": "N", "help": "How many attempts (default 1)."}),
    ),
    "slow": _m._verb(
        "fault slow", "Delay the next attempts of an activity.",
        (("--activity", "-a"), {"required": True, "metavar": "A", "help": "Activity type."}),
        (("--delay",), {"required": True, "metavar": "D", "help": "Delay, e.g. 2s, 500ms."}),
        (("--times",), {"type": int, "default": 1, "metavar": "N", "help": "How many attempts (default 1)."}),
    ),
    "crash": _m._verb(
        "fault crash", "Crash the worker that writes an event (its cache and in-flight work are lost).",
        (("--after",), {"required": True, "metavar": "EVENT", "help": "Event type a worker writes, e.g. ActivityTaskCompleted, WorkflowTaskCompleted, TimerStarted."}),
        (("--activity", "-a"), {"metavar": "A", "help": "Only for this activity (or child workflow) type."}),
        (("--when",), {"choices": CRASH_PHASES, "default": "after_commit", "help": "Just before or just after the event is committed."}),
        (("--times",), {"type": int, "default": 1, "metavar": "N", "help": "How many crashes (default 1)."}),
    ),
    "list": _m._verb("fault list", "List the faults that will still fire."),
    "clear": _m._verb("fault clear", "Remove one fault, or all.", (("id",), {"nargs": "?", "type": int, "metavar": "ID", "help": "Fault id (default: all)."})),
    "log": _m._verb("fault log", "Show when injected faults fired.", (("--workflow-id", "-w"), {"metavar": "ID", "help": "Only this workflow's."})),
}

EXPLORE_PARSER = _m._verb(
    "explore", "Crash a run of a workflow at every state change, before and after its commit; check recovery.",
    (("--type",), {"required": True, "metavar": "T", "help": "Workflow type (defined in a %%%%workflow cell)."}),
    _m._INPUT,
    (("--setup",), {"metavar": "FUNC", "help": "Name of a function of the notebook run before each run (reset side effects)."}),
    (("--check",), {"metavar": "FUNC", "help": "Name of a function(outcome) -> problem text or None, run after each run."}),
    (("--signal",), {"action": "append", "default": [], "metavar": "NAME[=JSON]", "help": "Send this signal after the start; repeat for more."}),
)


class FaultTable:
    """Faults or fault firings, as text and as an HTML table."""

    def __init__(self, title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
        self.title, self.header, self.rows = title, header, rows

    def text(self) -> str:
        if not self.rows:
            return f"{self.title}: none"
        widths = [max(len(r[i]) for r in [self.header, *self.rows]) for i in range(len(self.header))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [self.header, *self.rows]]
        return "\n".join([self.title, *lines])

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>{html.escape(self.title)}: none</p>"
        head = "".join(cell(html.escape(h), "th") for h in self.header)
        body = "".join("<tr>" + "".join(cell(html.escape(c)) for c in r) + "</tr>" for r in self.rows)
        return f"<p><b>{html.escape(self.title)}</b></p><table><tr>{head}</tr>{body}</table>"


class ExplorationView:
    """An ``Exploration`` in a notebook: one row per crash point, violations in red."""

    def __init__(self, exploration: Any) -> None:
        self.exploration = exploration

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exploration, name)

    def __repr__(self) -> str:
        return str(self.exploration.table())

    def _repr_html_(self) -> str:
        e = self.exploration
        rows = []
        for p in e.points:
            colour = "#fde2e2" if not p.ok else ("#eeeeee" if not p.reached else "#e6f4ea")
            again = ", ".join(p.outcome.reexecuted) if p.outcome and p.outcome.reexecuted else ""
            status = p.status() + (": " + "; ".join(p.violations) if p.violations else "")
            cells = [str(p.index), p.phase.replace("_", " "), p.description, status, again]
            rows.append(f'<tr style="background:{colour}">' + "".join(cell(html.escape(c)) for c in cells) + "</tr>")
        head = "".join(cell(h, "th") for h in ("#", "crash", "state change", "outcome", "re-executed"))
        verdict = "every crash point recovered" if e.ok else f"{len(e.violations)} violation(s)"
        return (
            f"<p><b>Crash exploration of {html.escape(e.workflow_type)}</b>: {len(e.points)} crash points, {verdict}.</p>"
            f"<table><tr>{head}</tr>{''.join(rows)}</table>"
        )


def _check_target(session: Any, verb: str, name: str, parser: _m._Parser) -> None:
    """A fault on a name nobody registered could never fire: refuse it. The target must be
    defined (in this kernel) before the fault is set, as a notebook reads top to bottom;
    ``engine.faults`` itself takes any name, for activities served only by other processes."""
    known = sorted(session.activities)
    kinds = "activity"
    if verb == "crash":  # --activity also names a child workflow's type there
        known += sorted(session.workflows)
        kinds = "activity or workflow"
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    parser.error(
        f"No {kinds} named {name!r} is registered in this kernel (registered: {', '.join(known) or 'none yet'}), so the "
        f"fault could never fire.{hint} Names are case-sensitive; run the %%activity cell that defines it first."
    )


@magics_class
class FaultMagics(Magics):
    """``%fault`` and ``%explore``, bound to the kernel's session."""

    def __init__(self, shell: Any, session: Any) -> None:
        super().__init__(shell)
        self.session = session

    def _pending(self, what: str, parser: _m._Parser, work: Any) -> _m.Pending:
        async def run() -> Any:
            __tracebackhide__ = True
            try:
                return await work()
            except (ValueError, SessionError) as e:
                raise UsageError(f"{e}\n{parser.usage_line()}") from None

        return _m.Pending(what, run)

    @line_magic
    @_m._help("%fault VERB [flags]: inject faults into the kernel's engine (engine.faults).", FAULT_VERBS)
    def fault(self, line: str) -> _m.Pending:
        verb, args, parser = _m._split_verb("fault", FAULT_VERBS, line)
        session = self.session
        if verb in ("fail", "hang", "slow") or (verb == "crash" and args.activity is not None):
            _check_target(session, verb, args.activity, parser)

        async def work() -> Any:
            client = await session.ensure_ready()
            if verb == "fail":
                made = await faults.fail_activity(client, args.activity, times=args.times, error_type=args.error_type, non_retryable=args.non_retryable)
            elif verb == "hang":
                made = await faults.hang_activity(client, args.activity, times=args.times)
            elif verb == "slow":
                delay = _m._duration(parser, "--delay", args.delay)
                assert delay is not None
                made = await faults.slow_activity(client, args.activity, delay, times=args.times)
            elif verb == "crash":
                made = await faults.crash_worker(client, after=args.after, activity=args.activity, when=args.when, times=args.times)
            elif verb == "list":
                listed = [(str(f.id), f.kind, f.describe()) for f in await faults.list_faults(client)]
                return FaultTable("Faults", ("id", "kind", "what"), listed)
            elif verb == "clear":
                removed = await faults.clear_faults(client, args.id)
                print(f"{removed} fault(s) removed.")
                return None
            else:
                run_id = None
                if args.workflow_id:
                    run_id = (await client.get_workflow_handle(args.workflow_id).describe()).run_id
                rows = [
                    (f.fired_at.strftime("%H:%M:%S.%f")[:-3], f.kind, f.target or "-", f.workflow_id or "-", f.detail)
                    for f in await faults.fault_log(client, run_id=run_id)
                ]
                return FaultTable("Injected faults fired", ("time", "kind", "target", "workflow", "detail"), rows)
            print(f"Fault {made.id}: {made.describe()}.")
            return None

        return self._pending(f"%fault {verb}", parser, work)

    @line_magic
    @_m._help("%explore --type T [--input JSON] [--setup F] [--check F] [--signal NAME=JSON]", {"": EXPLORE_PARSER})
    def explore(self, line: str) -> _m.Pending:
        args = EXPLORE_PARSER.parse(line)
        session = self.session
        namespace = self.shell.user_ns if self.shell is not None else {}

        def function(flag: str, name: str | None) -> Any:
            if name is None:
                return None
            fn = namespace.get(name)
            if not callable(fn):
                raise UsageError(f"{flag} {name}: no function of that name in the notebook. Define it in a cell first.\n{EXPLORE_PARSER.usage_line()}")
            return fn

        signals = []
        for text in args.signal:
            name, _, payload = text.partition("=")
            signals.append((name, _m._json_inputs(EXPLORE_PARSER, [payload]) if payload else []))
        inputs = _m._json_inputs(EXPLORE_PARSER, args.input)
        setup, check = function("--setup", args.setup), function("--check", args.check)
        if args.type not in session.workflows:
            known = ", ".join(sorted(session.workflows)) or "none yet"
            raise UsageError(f"Unknown workflow type {args.type!r} (defined: {known}). Define it in a %%workflow cell.\n{EXPLORE_PARSER.usage_line()}")

        async def work() -> ExplorationView:
            workflow = session.workflows[args.type]
            others = [w for name, w in session.workflows.items() if name != args.type]
            report = await faults.explore(
                workflow, *inputs, workflows=others, activities=list(session.activities.values()),
                id=f"explore-{args.type}", setup=setup, check=check, signals=signals,
            )
            return ExplorationView(report)

        return self._pending("%explore", EXPLORE_PARSER, work)
