"""``dlab workflow start|execute|result|show|list|describe|signal|query|cancel|terminate|reset``."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any, Awaitable, Callable

from engine._matching.queries import NoAnswerError
from engine._conversion.search_attributes import shown_memo
from engine.cli import _views as views
from engine.cli._common import CODEC_ENV, EXIT_FAILED, EXIT_OK, CliError, Out, add_common, duration, json_inputs, open_client
from engine.cli._loader import add_source_options, definitions
from engine.client import Client, WorkflowExecutionDescription, WorkflowHandle
from engine.converter import Payload, decode_history
from engine.errors import NotRegisteredError, WorkflowNotFoundError, WorkflowQueryFailedError
from engine.history import History
from engine.worker import Worker

Handler = Callable[[argparse.Namespace, Out], Awaitable[int]]
POLL = 0.25  # how often a followed run's history is read while it runs


# ---------------------------------------------------------------------- flags
def _run_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-w", "--workflow-id", required=True, metavar="ID", help="Workflow id.")
    parser.add_argument("-r", "--run-id", metavar="RUN", help="Run id (default: the latest run of the workflow id).")


def _input_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--input", action="append", default=[], metavar="JSON", help="One argument as JSON; repeat for more (--input '\"Ada\"' --input 3).")


def _start_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", required=True, metavar="TYPE", help="Workflow type name.")
    parser.add_argument("-t", "--task-queue", required=True, metavar="QUEUE", help="Task queue a worker polls.")
    parser.add_argument("-w", "--workflow-id", metavar="ID", help="Workflow id (default: a new UUID).")
    _input_flag(parser)
    parser.add_argument("--execution-timeout", type=duration, metavar="DURATION", help="Fail the execution (all its runs) after this long, e.g. 1h.")
    parser.add_argument("--run-timeout", type=duration, metavar="DURATION", help="Fail one run after this long.")
    parser.add_argument("--task-timeout", type=duration, metavar="DURATION", help="Limit for one workflow task (default 10s).")


def register(sub: Any) -> None:
    """Add ``workflow`` and its verbs to the top-level subparsers."""
    group = sub.add_parser("workflow", help="Start, inspect and control workflow runs.", description="Start, inspect and control workflow runs.")
    verbs = group.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    made: list[tuple[argparse.ArgumentParser, tuple[str, ...]]] = []

    def verb(name: str, handler: Handler, text: str, output: tuple[str, ...] = ("text", "json")) -> argparse.ArgumentParser:
        parser = verbs.add_parser(name, help=text, description=text)
        parser.set_defaults(handler=handler)
        made.append((parser, output))
        return parser

    _start_flags(verb("start", start, "Start a run and print its ids at once."))
    p = verb("execute", execute, "Start a run, print its events as they happen and its result; exit 1 unless it completes.")
    _start_flags(p)
    p.add_argument("--detailed", action="store_true", help="Print each event's attributes.")
    _run_flags(verb("result", result, "Wait for a run to close and print its result; exit 1 unless it completed."))
    p = verb("show", show, "Print a run's event history (-o json: Temporal's JSON history format).", ("text", "json", "jsonl"))
    _run_flags(p)
    p.add_argument("--detailed", action="store_true", help="Print each event's attributes.")
    p.add_argument("-f", "--follow", action="store_true", help="Keep printing events until the run closes.")
    p = verb("list", list_runs, "List runs, newest first.", ("text", "json", "jsonl"))
    p.add_argument(
        "-q", "--query", metavar="FILTER",
        help="Temporal list filter, e.g. \"WorkflowType='Hello' AND ExecutionStatus='Running'\" (WorkflowId, RunId, WorkflowType, "
        "TaskQueue, ExecutionStatus, StartTime, CloseTime; = != < > <= >= BETWEEN IN STARTS_WITH; AND OR and parentheses).",
    )
    p.add_argument("--limit", type=int, metavar="N", help="Print at most N runs.")
    _run_flags(verb("describe", describe, "Print a run's status, times and counts."))
    p = verb("signal", signal, "Send a signal to a running run (recorded in its history).")
    _run_flags(p)
    p.add_argument("--name", "--type", dest="name", required=True, metavar="SIGNAL", help="Signal name.")
    _input_flag(p)
    p = verb(
        "query", query,
        "Ask a run a question. Queries replay the run's history with its workflow code: a running worker of "
        "the run's task queue answers, or give the code with --module or --file to replay it here. Nothing "
        "is written to history.",
    )
    _run_flags(p)
    p.add_argument("--name", "--type", dest="name", required=True, metavar="QUERY", help="Query name.")
    _input_flag(p)
    p.add_argument("--timeout", type=duration, default=timedelta(seconds=10), metavar="DURATION", help="How long to wait for a worker's answer (default 10s).")
    add_source_options(p, required=False, purpose="replay here instead of asking a running worker")
    p = verb("cancel", cancel, "Ask a running run to cancel; its code sees the cancellation and may clean up.")
    _run_flags(p)
    p.add_argument("--reason", default="", help="Why (recorded in the history).")
    p = verb("terminate", terminate, "End a running run at once; no workflow code runs.")
    _run_flags(p)
    p.add_argument("--reason", default="", help="Why (recorded in the history).")
    p = verb(
        "reset", reset,
        "Reset a run to the end of a workflow task: a new run copies its history up to there and the code your worker "
        "runs now takes over (a bug fixed since). Signals received after the point are re-applied; the workflow's "
        "open run is terminated.",
    )
    _run_flags(p)
    point = p.add_mutually_exclusive_group(required=True)
    point.add_argument("-e", "--event-id", type=int, metavar="N", help="Event id to reset to: a WorkflowTaskCompleted (or Failed, TimedOut) event.")
    point.add_argument(
        "-t", "--type", dest="reset_type", choices=("FirstWorkflowTask", "LastWorkflowTask"),
        help="Reset to the first or the last completed workflow task (describe lists the run's auto-reset points).",
    )
    p.add_argument("--reason", required=True, help="Why (recorded in the new run's history, prefixed with your user name).")
    p.add_argument(
        "--reapply-exclude", choices=("All", "Signal", "Update"), metavar="TYPES",
        help="Do not re-apply these events received after the point: All, Signal or Update (the engine re-applies signals only).",
    )
    for parser, output in made:  # last, so that each verb's own flags lead its usage line
        add_common(parser, output=output)


# ---------------------------------------------------------------------- helpers
async def _resolve(client: Client, args: argparse.Namespace) -> tuple[WorkflowHandle, WorkflowExecutionDescription]:
    """The run the flags name, pinned by its run id (so an action hits the run that was looked at)."""
    handle = client.get_workflow_handle(args.workflow_id, run_id=args.run_id)
    try:
        d = await handle.describe()
    except WorkflowNotFoundError:
        d = None
    if d is None or d.id != args.workflow_id:
        if args.run_id:
            raise CliError(f"Workflow {args.workflow_id!r} has no run {args.run_id!r} in {client.store.path!r}. List its runs: dlab workflow list -q \"WorkflowId='{args.workflow_id}'\".")
        raise CliError(f"No workflow with id {args.workflow_id!r} in {client.store.path!r}. Ids are case-sensitive; list runs with: dlab workflow list.")
    return client.get_workflow_handle(d.id, run_id=d.run_id), d


async def _with_client(args: argparse.Namespace, body: Callable[[Client], Awaitable[int]], *, create: bool = False) -> int:
    client = await open_client(args, create=create)
    try:
        return await body(client)
    finally:
        await client.close()


async def _readable(client: Client, history: History) -> History:
    """The history with its payloads (and failure messages) decoded by the ``--codec``, for
    printing; what is exported as Temporal JSON stays as stored."""
    return await decode_history(history, client.data_converter)


def _sealed_hint(client: Client) -> str:
    if client.data_converter.payload_codec is None:
        return f"give dlab the payload codec that wrote it: --codec MODULE:FACTORY or {CODEC_ENV}=MODULE:FACTORY"
    return "the codec given with --codec does not decode it (is it the one that wrote the database?)"


def _warn_if_sealed(out: Out, client: Client, history: History) -> None:
    for event in history.events:
        sealed = views.sealed_encoding(dict(event.attributes))
        if sealed:
            out.warn(f"values of this run are encoded ({sealed}) and shown as <encrypted>; {_sealed_hint(client)}.")
            return


def _refuse_if_sealed(client: Client, history: History) -> None:
    close = views.close_event(history)
    sealed = views.sealed_encoding(dict(close.attributes)) if close is not None else None
    if sealed:
        raise CliError(f"The outcome of workflow {history.workflow_id!r} is encoded ({sealed}): {_sealed_hint(client)}.")


async def _follow(out: Out | None, client: Client, handle: WorkflowHandle, *, detailed: bool) -> History:
    """Print the run's events as they arrive (if ``out``) until it closes; return its history
    (as stored: decode it to print its values).

    A run that continued as new is followed into its next run, as ``handle.result()`` does."""
    printed = 0
    while True:
        closing = asyncio.ensure_future(handle.result(follow_runs=False))
        try:
            while True:
                done, _ = await asyncio.wait({closing}, timeout=POLL)
                history = await handle.fetch_history()
                if out is not None:
                    new = history.events[printed:]
                    if detailed:
                        new = (await _readable(client, History(history.workflow_id, tuple(new)))).events
                    (views.detailed_events if detailed else views.progress_rows)(out, new)
                    printed = len(history.events)
                if done and views.close_event(history) is not None:
                    break
        finally:
            closing.cancel()
            await asyncio.gather(closing, return_exceptions=True)
        last = history.events[-1]
        if last.event_type != "WorkflowExecutionContinuedAsNew":
            return history
        handle = client.get_workflow_handle(handle.id, run_id=last.attributes["newExecutionRunId"])
        printed = 0
        if out is not None:
            out.line(f"Continued as new: run {handle.run_id}")


def _finish(out: Out, args: argparse.Namespace, history: History, header: dict[str, Any] | None = None) -> int:
    """Print the outcome of a closed run; exit 1 (with one stderr line) unless it completed."""
    if args.output == "json":
        out.json({**(header or {}), **views.outcome_json(history)})
    else:
        out.line()
        views.results(out, history)
    problem = views.failed_message(history)
    if problem is not None:
        out.error(problem)
        return EXIT_FAILED
    return EXIT_OK


# ---------------------------------------------------------------------- verbs
async def _start(client: Client, args: argparse.Namespace) -> WorkflowHandle:
    inputs = json_inputs(args.input)
    return await client.start_workflow(
        args.type, args=inputs, id=args.workflow_id or str(uuid.uuid4()), task_queue=args.task_queue,
        execution_timeout=args.execution_timeout, run_timeout=args.run_timeout, task_timeout=args.task_timeout,
    )


async def start(args: argparse.Namespace, out: Out) -> int:
    async def body(client: Client) -> int:
        handle = await _start(client, args)
        ids = (handle.id, handle.run_id or "", args.type, client.namespace, args.task_queue)
        if args.output == "json":
            out.json(views.start_json(*ids))
        else:
            views.start_card(out, *ids)
        return EXIT_OK

    return await _with_client(args, body, create=True)


async def execute(args: argparse.Namespace, out: Out) -> int:
    async def body(client: Client) -> int:
        handle = await _start(client, args)
        ids = (handle.id, handle.run_id or "", args.type, client.namespace, args.task_queue)
        if args.output == "json":
            history = await _readable(client, await _follow(None, client, handle, detailed=False))
            return _finish(out, args, history, views.start_json(*ids))
        views.start_card(out, *ids)
        out.line()
        if args.detailed:
            out.line(out.paint("Progress:", "bold"))
        else:
            views.progress_header(out)
        history = await _readable(client, await _follow(out, client, handle, detailed=args.detailed))
        return _finish(out, args, history)

    return await _with_client(args, body, create=True)


async def result(args: argparse.Namespace, out: Out) -> int:
    async def body(client: Client) -> int:
        handle, d = await _resolve(client, args)
        history = await _readable(client, await _follow(None, client, handle, detailed=False))
        _refuse_if_sealed(client, history)
        header = {"workflowId": d.id, "runId": d.run_id, "type": d.workflow_type}
        if args.output != "json":
            out.fields("Execution:", [("WorkflowId", d.id), ("RunId", d.run_id), ("Type", d.workflow_type)])
        return _finish(out, args, history, header)

    return await _with_client(args, body)


async def show(args: argparse.Namespace, out: Out) -> int:
    async def body(client: Client) -> int:
        handle, d = await _resolve(client, args)
        if args.output in ("json", "jsonl"):
            history = await (_follow(None, client, handle, detailed=False) if args.follow else handle.fetch_history())
            out.json(history.to_json_dict(), compact=args.output == "jsonl")
            return EXIT_OK
        if args.detailed:
            out.line(out.paint("Progress:", "bold"))
        else:
            views.progress_header(out)
        if args.follow:
            history = await _readable(client, await _follow(out, client, handle, detailed=args.detailed))
        else:
            history = await _readable(client, await handle.fetch_history())
            (views.detailed_events if args.detailed else views.progress_rows)(out, history.events)
        if views.close_event(history) is not None:
            out.line()
            views.results(out, history)
        if args.detailed or views.close_event(history) is not None:
            _warn_if_sealed(out, client, history)
        return EXIT_OK

    return await _with_client(args, body)


async def list_runs(args: argparse.Namespace, out: Out) -> int:
    async def body(client: Client) -> int:
        if args.limit is not None and args.limit < 1:
            raise CliError(f"--limit must be at least 1, not {args.limit}.", 2)
        runs = await client.list_workflows(args.query, limit=args.limit)
        if args.output == "json":
            out.json([views.execution_info(r) for r in runs])
        elif args.output == "jsonl":
            for r in runs:
                out.json(views.execution_info(r), compact=True)
        else:
            views.list_table(out, runs)
        return EXIT_OK

    return await _with_client(args, body)


async def describe(args: argparse.Namespace, out: Out) -> int:
    async def body(client: Client) -> int:
        handle, d = await _resolve(client, args)
        history = await _readable(client, await handle.fetch_history())
        if args.output == "json":
            document: dict[str, Any] = {
                "executionConfig": {"taskQueue": {"name": d.task_queue}},
                "workflowExecutionInfo": views.execution_info(d),
                "pendingActivityCount": d.pending_activities,
                "pendingTimerCount": d.pending_timers,
            }
            close = views.close_event(history)
            if close is not None:
                document["closeEvent"] = History(d.id, (close,)).to_json_dict()["events"][0]
            out.json(document)
        else:
            views.describe_text(out, d, client.namespace, history, await shown_memo(d))
            if views.close_event(history) is not None:
                _warn_if_sealed(out, client, history)
        return EXIT_OK

    return await _with_client(args, body)


async def signal(args: argparse.Namespace, out: Out) -> int:
    async def body(client: Client) -> int:
        inputs = json_inputs(args.input)
        handle, _ = await _resolve(client, args)
        await handle.signal(args.name, args=inputs)
        if args.output == "text":
            out.line("Signal workflow succeeded")
        return EXIT_OK

    return await _with_client(args, body)


async def query(args: argparse.Namespace, out: Out) -> int:
    code = definitions(args.module, args.file) if (args.module or args.file) else None
    inputs = json_inputs(args.input)

    async def body(client: Client) -> int:
        handle, d = await _resolve(client, args)
        if code is None:
            try:
                answer = await client.get_workflow_handle(d.id, run_id=d.run_id).query(args.name, args=inputs, rpc_timeout=args.timeout)
            except ValueError as e:
                raise CliError(str(e)) from None
            except NoAnswerError as e:
                raise CliError(f"{e} Or give the code with --module/--file to replay it here.") from None
            except WorkflowQueryFailedError as e:  # no such query, or its handler raised
                raise CliError(str(e)) from None
            return _print_answer(answer, args, out)
        if d.workflow_type not in code.workflow_names():
            raise CliError(
                f"{code.source!r} defines no workflow type {d.workflow_type!r} (it has: {', '.join(code.workflow_names()) or 'none'}); "
                "give the module or file your worker serves this workflow from."
            )
        replayer = Worker(client, task_queue=d.task_queue, workflows=list(code.workflows))
        converter = client.data_converter
        try:
            # The worker takes and gives payloads, as a query crosses Temporal's network.
            payloads = {"payloads": [p.to_json() for p in await converter.encode(inputs)]}
            answer = (await converter.decode([Payload.from_json(await replayer.query(d.run_id, args.name, payloads))]))[0]
        except (WorkflowQueryFailedError, NotRegisteredError) as e:
            raise CliError(str(e)) from None
        return _print_answer(answer, args, out)

    return await _with_client(args, body)


def _print_answer(answer: Any, args: argparse.Namespace, out: Out) -> int:
    value = views.jsonable(answer)
    if args.output == "json":
        out.json({"queryResult": [value]})
    else:
        out.fields("Query result:", [("QueryResult", json.dumps(value, ensure_ascii=False))])
    return EXIT_OK


async def cancel(args: argparse.Namespace, out: Out) -> int:
    async def body(client: Client) -> int:
        handle, _ = await _resolve(client, args)
        await handle.cancel(reason=args.reason)
        if args.output == "text":
            out.line("Canceled workflow")
        return EXIT_OK

    return await _with_client(args, body)


async def terminate(args: argparse.Namespace, out: Out) -> int:
    async def body(client: Client) -> int:
        handle, _ = await _resolve(client, args)
        await handle.terminate(reason=args.reason)
        if args.output == "text":
            out.line("Workflow terminated")
        return EXIT_OK

    return await _with_client(args, body)


async def reset(args: argparse.Namespace, out: Out) -> int:
    from engine._history.resets import ResetError

    async def body(client: Client) -> int:
        handle, _ = await _resolve(client, args)
        reason = _with_user(args.reason)
        try:
            from engine._history.resets import point_for

            # The history only to find a --type's event: the engine then checks the point.
            event_id = args.event_id if args.event_id is not None else point_for((await handle.fetch_history()).events, None, args.reset_type)
            new = await handle.reset(
                reason=reason, event_id=event_id, reapply_signals=args.reapply_exclude not in ("All", "Signal")
            )
        except ResetError as e:
            raise CliError(str(e)) from None
        if args.output == "json":
            out.json({"runId": new.run_id})
        else:
            out.line(f"Resetting workflow {handle.id} to event ID {event_id}")
            out.fields("New run:", [("WorkflowId", handle.id), ("RunId", new.run_id)])
        return EXIT_OK

    return await _with_client(args, body)


def _with_user(reason: str) -> str:
    """The reason as the temporal CLI records it: '<user name>: <reason>'."""
    import getpass

    try:
        return f"{getpass.getuser()}: {reason}"
    except (OSError, KeyError):  # no user name to be found (some containers)
        return reason
